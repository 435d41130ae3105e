/* test-cleanup.c: a session deletes its own VM (the seed's cleanup flow)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>
#include <json-glib/json-glib.h>

#include "gsm-session-manager-private.h"
#include "reaper-test-util.h"

static void
cleanup_tear_down (Fixture      *f,
                   gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  fixture_tear_down (f, data);
}

static GsmSession *
my_vm (GsmSessionManager *manager)
{
  g_autoptr (GError) error = NULL;
  GsmSession *vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);

  g_assert_no_error (error);
  return vm;
}

/* The sync form, with no main loop anywhere. */
static void
test_sync (Fixture      *f,
           gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;
  JsonObject *record;

  /* Nothing to clean up: fine. */
  g_assert_true (gsm_session_manager_cleanup_my_vm_sync (manager, NULL, NULL, &error));
  g_assert_no_error (error);

  cloud_add_vm (f, "vm-own");
  cloud_add_vm (f, "vm-other");
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-own", "zone-a", NULL, NULL,
                                                       NULL, &error));

  /* The provider fails: the VM stays registered and the error says why. */
  cloud_set_mode (f, "fail");
  g_assert_false (gsm_session_manager_cleanup_my_vm_sync (manager, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_assert_nonnull (strstr (error->message, "quota exceeded"));
  g_clear_error (&error);
  vm = my_vm (manager);
  g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-own");
  g_clear_object (&vm);

  /* It hangs: killed at the timeout, still registered. */
  cloud_set_mode (f, "hang");
  {
    const char *argv[] = { "/bin/sh", fake_provider_path (), "delete", "{vm_id}", "{zone}",
                           "{session_id}", NULL };
    g_autoptr (GsmProvider) provider = gsm_provider_new ("fake", argv, NULL);

    gsm_provider_set_timeout (provider, 0.5);
    g_assert_false (gsm_session_manager_cleanup_my_vm_sync (manager, provider, NULL, &error));
    g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT);
    g_clear_error (&error);
  }
  vm = my_vm (manager);
  g_assert_nonnull (vm);
  g_clear_object (&vm);

  /* It works: deleted, then unregistered. */
  cloud_set_mode (f, "ok");
  g_assert_true (gsm_session_manager_cleanup_my_vm_sync (manager, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (cloud_has_vm (f, "vm-own"));
  g_assert_true (cloud_has_vm (f, "vm-other"));
  g_assert_null (my_vm (manager));
  g_assert_false (gsm_session_manager_get_has_vm (manager));

  /* Already gone counts as success. */
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-gone", "zone-a", NULL, NULL,
                                                       NULL, &error));
  g_assert_true (gsm_session_manager_cleanup_my_vm_sync (manager, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_null (my_vm (manager));

  reaper = gsm_reaper_new (manager, NULL);
  records = gsm_reaper_read_history_sync (reaper, NULL, &error);
  g_assert_no_error (error);
  /* Each command before it started, then its outcome. */
  g_assert_cmpuint (g_strv_length (records), ==, 8);
  record = json_node_get_object ((json_parser_load_from_data (parser, records[4], -1, NULL),
                                  json_parser_get_root (parser)));
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "started");
  record = json_node_get_object ((json_parser_load_from_data (parser, records[5], -1, NULL),
                                  json_parser_get_root (parser)));
  g_assert_cmpstr (json_object_get_string_member (record, "action"), ==, "cleanup");
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "deleted");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (record, "owner"), "session"),
                   ==, gsm_session_manager_get_session_id (manager));
}

static void
cleanup_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      data)
{
  GError **out = data;

  if (!gsm_session_manager_cleanup_my_vm_finish (GSM_SESSION_MANAGER (object), result, out))
    g_assert_nonnull (*out);
  else
    *out = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "no error"); /* marks done */
}

static void
test_async (Fixture      *f,
            gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  GError *done = NULL;

  cloud_add_vm (f, "vm-own");
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-own", "zone-a", NULL, NULL,
                                                       NULL, &error));
  gsm_session_manager_cleanup_my_vm (manager, NULL, NULL, cleanup_done_cb, &done);
  while (done == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (done, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error (&done);
  g_assert_false (cloud_has_vm (f, "vm-own"));
  g_assert_null (my_vm (manager));
}

static void
order_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      data)
{
  GPtrArray         *order = data;
  GsmSessionManager *manager = GSM_SESSION_MANAGER (object);
  g_autoptr (GError) error = NULL;

  if (g_async_result_is_tagged (result, gsm_session_manager_register_vm))
    {
      g_assert_true (gsm_session_manager_register_vm_finish (manager, result, &error));
      g_ptr_array_add (order, (gpointer) "register");
    }
  else
    {
      if (!gsm_session_manager_cleanup_my_vm_finish (manager, result, &error))
        g_error ("cleanup: %s", error->message);
      g_ptr_array_add (order, (gpointer) "cleanup");
    }
  g_assert_no_error (error);
}

/* Asynchronous calls complete in the order issued, cleanup_my_vm too: a
 * cleanup issued right after a registration deletes that VM. */
static void
test_async_ordered (Fixture      *f,
                    gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;

  cloud_add_vm (f, "vm-ordered");
  gsm_session_manager_register_vm (manager, "vm-ordered", "zone-a", NULL, NULL, NULL,
                                   order_cb, order);
  gsm_session_manager_cleanup_my_vm (manager, NULL, NULL, order_cb, order);
  while (order->len < 2)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (order->pdata[0], ==, "register");
  g_assert_cmpstr (order->pdata[1], ==, "cleanup");
  g_assert_false (cloud_has_vm (f, "vm-ordered"));
  g_assert_null (my_vm (manager));
}

static char *
run_helper (Fixture    *f,
            const char *mode,
            const char *vm_id,
            int         signum)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *ready = NULL;
  g_autofree char *helper = g_build_filename (g_getenv ("G_TEST_BUILDDIR"), "reaper",
                                              "shutdown-helper", NULL);
  char            *done;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, helper, mode, vm_id, NULL);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  ready = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (ready, "READY "));

  if (signum != 0)
    g_subprocess_send_signal (proc, signum);
  else
    g_output_stream_close (g_subprocess_get_stdin_pipe (proc), NULL, NULL);
  done = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);

  return done;
}

/* SIGTERM to a GLib application: its VM is deleted, then its loop quits. */
static void
test_shutdown_handlers (Fixture      *f,
                        gconstpointer data)
{
  g_autofree char *done = NULL;

  cloud_add_vm (f, "vm-term");
  done = run_helper (f, "loop", "vm-term", SIGTERM);
  g_assert_cmpstr (done, ==, "DONE has_vm=0 signal=0");
  g_assert_false (cloud_has_vm (f, "vm-term"));
  g_clear_pointer (&done, g_free);

  cloud_add_vm (f, "vm-int");
  done = run_helper (f, "func", "vm-int", SIGINT);
  g_assert_cmpstr (done, ==, "DONE has_vm=0 signal=2");
  g_assert_false (cloud_has_vm (f, "vm-int"));
  g_clear_pointer (&done, g_free);

  /* The provider fails on SIGHUP: the application is told, the VM stays
   * registered (for the reaper) and exists. */
  cloud_add_vm (f, "vm-hup");
  cloud_set_mode (f, "fail");
  done = run_helper (f, "func", "vm-hup", SIGHUP);
  g_assert_true (g_str_has_prefix (done, "DONE has_vm=1 signal=1 ERROR "));
  g_assert_nonnull (strstr (done, "quota exceeded"));
  g_assert_true (cloud_has_vm (f, "vm-hup"));
}

/* From an atexit() handler, with no main loop: the sync form works. */
static void
test_atexit (Fixture      *f,
             gconstpointer data)
{
  g_autofree char *done = NULL;

  cloud_add_vm (f, "vm-exit");
  done = run_helper (f, "atexit", "vm-exit", 0);
  g_assert_cmpstr (done, ==, "DONE has_vm=0");
  g_assert_false (cloud_has_vm (f, "vm-exit"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, cleanup_tear_down)
  ADD ("/cleanup/sync", test_sync);
  ADD ("/cleanup/async", test_async);
  ADD ("/cleanup/async-ordered", test_async_ordered);
  ADD ("/cleanup/shutdown-handlers", test_shutdown_handlers);
  ADD ("/cleanup/atexit", test_atexit);
#undef ADD

  return g_test_run ();
}
