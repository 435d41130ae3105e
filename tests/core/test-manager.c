/* test-manager.c: the C API of GsmSessionManager in one process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "test-common.h"

/* ---- identity and properties ------------------------------------------- */

static void
test_default_identity (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autofree char   *session_id = NULL;
  g_autofree char   *hostname = NULL;
  g_autoptr (GFile) runtime_dir = NULL, session_file = NULL, registry = NULL, tracker = NULL;
  g_autofree char *expected_session = NULL;
  int              pid;
  double           created_at;
  gboolean         has_vm;

  g_assert_false (gsm_session_manager_is_available ());
  m = gsm_session_manager_get_default ();
  g_assert_nonnull (m);
  g_assert_true (gsm_session_manager_is_available ());
  g_assert_true (m == gsm_session_manager_get_default ());

  g_object_get (m, "session-id", &session_id, "pid", &pid, "hostname", &hostname,
                "created-at", &created_at, "runtime-dir", &runtime_dir,
                "session-file", &session_file, "vm-registry", &registry,
                "global-tracker-file", &tracker, "has-vm", &has_vm, NULL);

  g_assert_true (g_uuid_string_is_valid (session_id));
  g_assert_cmpstr (session_id, ==, gsm_session_manager_get_session_id (m));
  g_assert_cmpint (pid, ==, getpid ());
  g_assert_cmpstr (hostname, ==, g_get_host_name ());
  g_assert_cmpfloat (created_at, <=, g_get_real_time () / 1e6);
  g_assert_cmpfloat (created_at, >, g_get_real_time () / 1e6 - 60);
  g_assert_false (has_vm);

  g_assert_cmpstr (g_file_peek_path (runtime_dir), ==, f->dir);
  /* Named after the session: processes of other pid namespaces have the
   * same pids. */
  expected_session = g_strdup_printf ("session_%d_%s.json", getpid (),
                                      gsm_session_manager_get_session_id (gsm_session_manager_get_default ()));
  {
    g_autofree char *basename = g_file_get_basename (session_file);
    g_assert_cmpstr (basename, ==, expected_session);
  }
  {
    g_autofree char *registry_path = fixture_path (f, "vm_registry.json");
    g_autofree char *tracker_path = fixture_path (f, "global_session.json");

    g_assert_cmpstr (g_file_peek_path (registry), ==, registry_path);
    g_assert_cmpstr (g_file_peek_path (tracker), ==, tracker_path);
  }
}

static gpointer
get_default_thread (gpointer data)
{
  return gsm_session_manager_get_default ();
}

static void
test_default_threads (Fixture *f, gconstpointer data)
{
  GThread *threads[16];
  gpointer first = NULL;
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("get-default", get_default_thread, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      gpointer m = g_thread_join (threads[i]);

      g_assert_nonnull (m);
      if (first == NULL)
        first = m;
      g_assert_true (m == first);
    }

  /* One instance, one entry. */
  registry = read_json_object (path);
  g_assert_cmpint (json_object_get_size (registry), ==, 1);
}

/* ---- signals in the owner context ---------------------------------------- */

typedef struct
{
  GThread *thread; /* where vm-registered ran */
  guint    n;
} Emitted;

static void
record_thread_cb (GsmSessionManager *manager,
                  GsmSession        *vm,
                  Emitted           *emitted)
{
  emitted->thread = g_thread_self ();
  emitted->n++;
}

static gpointer
register_in_thread (gpointer data)
{
  g_autoptr (GError) error = NULL;
  gboolean ok;

  ok = gsm_session_manager_register_vm_sync (gsm_session_manager_get_default (), "vm-thread",
                                             "zone-t", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return GINT_TO_POINTER (ok);
}

/* A _sync call from another thread, while nobody runs the owner context:
 * the signal waits for the owner context, and is never emitted in the
 * calling thread (which could take the idle context). */
static void
test_signals_sync_from_thread (Fixture *f, gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  Emitted            emitted = { NULL, 0 };
  gulong             id;
  GThread           *thread;

  id = g_signal_connect (manager, "vm-registered", G_CALLBACK (record_thread_cb), &emitted);
  thread = g_thread_new ("sync-caller", register_in_thread, NULL);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (thread)));
  g_assert_cmpuint (emitted.n, ==, 0);

  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (emitted.n, ==, 1);
  g_assert_true (emitted.thread == g_thread_self ());
  g_signal_handler_disconnect (manager, id);
}

static void
worker_reached_cb (GTask        *task,
                   gpointer      source_object,
                   gpointer      task_data,
                   GCancellable *cancellable)
{
  g_atomic_int_set ((gint *) task_data, TRUE);
  g_task_return_boolean (task, TRUE);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 guint      *n)
{
  (*n)++;
}

static void
get_my_vm_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = gsm_session_manager_get_my_vm_finish (GSM_SESSION_MANAGER (source),
                                                                    result, &error);

  g_assert_no_error (error);
  g_assert_nonnull (vm);
  *(gboolean *) user_data = TRUE;
}

/* The events of a call the worker ran before a _sync call of the owner
 * thread arrive after that call's own: notify::has-vm must not go back
 * to the older state, nor miss the next change. */
static void
test_signals_older_view_after_sync (Fixture *f, gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GTask) task = NULL;
  gint     reached = FALSE;
  gboolean done = FALSE;
  guint    notified = 0;

  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-older", "z", NULL, NULL,
                                                       NULL, &error));
  g_assert_no_error (error);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_signal_connect (manager, "notify::has-vm", G_CALLBACK (count_notify_cb), &notified);

  /* The worker reads the registry with the VM; its events wait for the
   * owner context, which nobody runs now. */
  gsm_session_manager_get_my_vm (manager, NULL, get_my_vm_done_cb, &done);
  task = g_task_new (manager, NULL, NULL, NULL);
  g_task_set_task_data (task, &reached, NULL);
  _gsm_session_manager_run_in_worker (manager, task, worker_reached_cb);
  while (!g_atomic_int_get (&reached))
    g_usleep (1000);

  g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_false (gsm_session_manager_get_has_vm (manager));

  while (!done)
    g_main_context_iteration (NULL, TRUE);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (notified, ==, 1);

  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-newer", "z", NULL, NULL,
                                                       NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (notified, ==, 2);
  g_assert_true (gsm_session_manager_get_has_vm (manager));
  g_signal_handlers_disconnect_by_data (manager, &notified);
}

/* ---- reserving before the cloud call ------------------------------------ */

static const char *
recorded_status (Fixture *f)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autoptr (JsonObject) registry = read_json_object (path);
  JsonObject *own = json_object_get_object_member (registry, gsm_session_manager_get_session_id (
                                                                 gsm_session_manager_get_default ()));

  return g_intern_string (json_object_get_string_member (own, "status"));
}

static void
test_reserve_confirm (Fixture *f, gconstpointer data)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = NULL;

  /* Bad names are refused as by register_vm. */
  g_assert_false (gsm_session_manager_reserve_vm_sync (manager, "-rf", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (gsm_session_manager_confirm_vm_sync (manager, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_NO_VM);
  g_clear_error (&error);

  /* Reserved: this session's VM, recorded as being created. */
  g_assert_true (gsm_session_manager_reserve_vm_sync (manager, "vm-new", "zone-r", NULL, NULL,
                                                      NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (recorded_status (f), ==, "creating");
  g_assert_true (gsm_session_manager_get_has_vm (manager));
  vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-new");
  g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-other", "z", NULL, NULL, NULL,
                                                        &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_ALREADY_REGISTERED);
  g_clear_error (&error);

  /* Confirmed: active; confirming again changes nothing. */
  g_assert_true (gsm_session_manager_confirm_vm_sync (manager, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (recorded_status (f), ==, "active");
  g_assert_true (gsm_session_manager_confirm_vm_sync (manager, NULL, &error));
  g_assert_cmpstr (recorded_status (f), ==, "active");
  g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));

  /* Released before the cloud made it: no VM, the session active. */
  g_assert_true (gsm_session_manager_reserve_vm_sync (manager, "vm-failed", "zone-r", NULL, NULL,
                                                      NULL, &error));
  g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (recorded_status (f), ==, "active");
  g_assert_false (gsm_session_manager_get_has_vm (manager));
}

/* ---- the seed's flow, sync ---------------------------------------------- */

static GVariant *
seed_metadata (void)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "trigger", "s", "HIGH_RAM");
  g_variant_dict_insert (&dict, "ram_percent", "d", 87.5);
  return g_variant_dict_end (&dict);
}

static void
test_register_files (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  const char        *components[] = { "voice", "vision", "ml", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = NULL;
  g_autoptr (JsonObject) registry = NULL, session = NULL, tracker = NULL;
  g_autofree char *session_path = g_file_get_path (gsm_session_manager_get_session_file (m));
  g_autofree char *registry_path = fixture_path (f, "vm_registry.json");
  g_autofree char *tracker_path = fixture_path (f, "global_session.json");
  JsonObject      *entry, *metadata;
  JsonArray       *array;
  struct stat      st;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "jarvis-auto-12345", "us-central1-a",
                                                       components, seed_metadata (), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (gsm_session_manager_get_has_vm (m));

  vm = gsm_session_manager_get_my_vm_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (vm);
  g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "jarvis-auto-12345");
  g_assert_cmpstr (gsm_session_get_zone (vm), ==, "us-central1-a");
  g_assert_cmpstrv (gsm_session_get_components (vm), components);
  g_assert_cmpstr (gsm_session_get_session_id (vm), ==, gsm_session_manager_get_session_id (m));
  {
    g_autoptr (GVariant) expected = g_variant_ref_sink (seed_metadata ());
    g_assert_true (g_variant_equal (gsm_session_get_metadata (vm), expected));
  }

  /* Registry: keyed by session id, the seed's fields and types. */
  registry = read_json_object (registry_path);
  g_assert_cmpint (json_object_get_size (registry), ==, 1);
  entry = json_object_get_object_member (registry, gsm_session_manager_get_session_id (m));
  g_assert_nonnull (entry);
  g_assert_cmpstr (json_object_get_string_member (entry, "session_id"), ==,
                   gsm_session_manager_get_session_id (m));
  g_assert_cmpint (json_object_get_int_member (entry, "pid"), ==, getpid ());
  g_assert_cmpstr (json_object_get_string_member (entry, "hostname"), ==, g_get_host_name ());
  g_assert_cmpstr (json_object_get_string_member (entry, "vm_id"), ==, "jarvis-auto-12345");
  g_assert_cmpstr (json_object_get_string_member (entry, "zone"), ==, "us-central1-a");
  array = json_object_get_array_member (entry, "components");
  g_assert_cmpint (json_array_get_length (array), ==, 3);
  g_assert_cmpstr (json_array_get_string_element (array, 2), ==, "ml");
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (entry, "created_at")), ==, G_TYPE_DOUBLE);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (entry, "created_at"),
                                  gsm_session_manager_get_created_at (m), 1e-6);
  g_assert_cmpint (json_node_get_value_type (json_object_get_member (entry, "registered_at")), ==, G_TYPE_DOUBLE);
  g_assert_cmpstr (json_object_get_string_member (entry, "status"), ==, "active");
  g_assert_cmpint (json_object_get_int_member (entry, "start_time"), >, 0);
  metadata = json_object_get_object_member (entry, "metadata");
  g_assert_cmpstr (json_object_get_string_member (metadata, "trigger"), ==, "HIGH_RAM");
  g_assert_cmpfloat (json_object_get_double_member (metadata, "ram_percent"), ==, 87.5);

  /* Session file: the same entry. */
  session = read_json_object (session_path);
  g_assert_cmpstr (json_object_get_string_member (session, "session_id"), ==,
                   gsm_session_manager_get_session_id (m));
  g_assert_cmpstr (json_object_get_string_member (session, "vm_id"), ==, "jarvis-auto-12345");
  g_assert_cmpint (json_object_get_int_member (session, "pid"), ==, getpid ());
  g_assert_true (json_object_has_member (session, "metadata"));
  g_assert_true (json_object_has_member (session, "registered_at"));

  /* Tracker: the seed's quick reference. */
  tracker = read_json_object (tracker_path);
  g_assert_cmpstr (json_object_get_string_member (tracker, "session_id"), ==,
                   gsm_session_manager_get_session_id (m));
  g_assert_cmpint (json_object_get_int_member (tracker, "pid"), ==, getpid ());
  g_assert_cmpstr (json_object_get_string_member (tracker, "hostname"), ==, g_get_host_name ());
  g_assert_cmpstr (json_object_get_string_member (tracker, "vm_id"), ==, "jarvis-auto-12345");
  g_assert_cmpstr (json_object_get_string_member (tracker, "zone"), ==, "us-central1-a");
  g_assert_cmpstr (json_object_get_string_member (tracker, "status"), ==, "active");
  g_assert_true (json_object_has_member (tracker, "created_at"));

  /* Private files and directory. */
  g_assert_cmpint (g_stat (registry_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_cmpint (g_stat (session_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  /* Unregister: the entry stays (the session lives), without a VM. */
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (gsm_session_manager_get_has_vm (m));
  g_clear_object (&vm);
  vm = gsm_session_manager_get_my_vm_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (vm);
  g_clear_pointer (&registry, json_object_unref);
  registry = read_json_object (registry_path);
  entry = json_object_get_object_member (registry, gsm_session_manager_get_session_id (m));
  g_assert_false (json_object_has_member (entry, "vm_id"));

  /* Close without a VM: entry and files go. */
  g_assert_true (gsm_session_manager_close_sync (m, NULL, &error));
  g_assert_no_error (error);
  g_clear_pointer (&registry, json_object_unref);
  registry = read_json_object (registry_path);
  g_assert_cmpint (json_object_get_size (registry), ==, 0);
  g_assert_false (g_file_test (session_path, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (tracker_path, G_FILE_TEST_EXISTS));

  g_assert_false (gsm_session_manager_register_vm_sync (m, "x", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_CLOSED);
}

static void
test_close_keeps_vm (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *registry_path = fixture_path (f, "vm_registry.json");
  g_autofree char *session_path = g_file_get_path (gsm_session_manager_get_session_file (m));

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-kept", "z", NULL, NULL, NULL, &error));
  g_assert_true (gsm_session_manager_close_sync (m, NULL, &error));
  g_assert_no_error (error);

  /* Still owning a VM: stays visible to the cleanup of others. */
  registry = read_json_object (registry_path);
  g_assert_cmpint (json_object_get_size (registry), ==, 1);
  g_assert_true (g_file_test (session_path, G_FILE_TEST_EXISTS));
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autofree char *long_id = g_strnfill (300, 'a');
  const char      *bad_components[] = { "ok", "", NULL };

  g_assert_false (gsm_session_manager_register_vm_sync (m, "", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "vm_id"));
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, long_id, "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm\n1", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-1", "", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "zone"));
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-1", "z", bad_components, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-1", "z", NULL,
                                                        g_variant_new_string ("nope"), NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "a{sv}"));
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_NO_VM);
  g_clear_error (&error);

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-1", "z", NULL, NULL, NULL, &error));
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-2", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_ALREADY_REGISTERED);
  g_assert_nonnull (strstr (error->message, "vm-1"));
  g_clear_error (&error);
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-1", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_ALREADY_REGISTERED);
  g_clear_error (&error);

  /* Nothing was written by the failed calls. */
  {
    g_autoptr (GsmSession) vm = gsm_session_manager_get_my_vm_sync (m, NULL, &error);
    g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-1");
  }
}

static void
test_statistics (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) stats = NULL;
  const char  *keys[] = { "session_id", "pid", "hostname", "uptime_seconds", "has_vm", "vm_id",
                          "vms_registered", "vms_unregistered", "registry_cleanups",
                          "stale_sessions_removed", NULL };
  GVariantDict dict;
  const char  *vm_id = NULL;
  guint        n;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-s", "z", NULL, NULL, NULL, &error));
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-t", "z", NULL, NULL, NULL, &error));

  stats = gsm_session_manager_get_statistics (m);
  g_assert_true (g_variant_is_of_type (stats, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpint (g_variant_n_children (stats), ==, g_strv_length ((char **) keys));
  g_variant_dict_init (&dict, stats);
  for (guint i = 0; keys[i]; i++)
    g_assert_true (g_variant_dict_contains (&dict, keys[i]));
  g_assert_true (g_variant_dict_lookup (&dict, "vms_registered", "u", &n));
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (g_variant_dict_lookup (&dict, "vms_unregistered", "u", &n));
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (g_variant_dict_lookup (&dict, "vm_id", "m&s", &vm_id));
  g_assert_cmpstr (vm_id, ==, "vm-t");
  g_variant_dict_clear (&dict);
}

/* ---- async, ordering, signals ------------------------------------------- */

typedef struct
{
  GPtrArray *log;
  guint      pending;
} AsyncState;

static void
register_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;
  gboolean ok = gsm_session_manager_register_vm_finish (GSM_SESSION_MANAGER (source), result, &error);

  g_ptr_array_add (st->log, g_strdup_printf ("register:%s", ok ? "ok" : error->message));
  st->pending--;
}

static void
get_vm_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = gsm_session_manager_get_my_vm_finish (GSM_SESSION_MANAGER (source), result, &error);

  g_assert_no_error (error);
  g_ptr_array_add (st->log, g_strdup_printf ("vm:%s", vm ? gsm_session_get_vm_id (vm) : "none"));
  st->pending--;
}

static void
unregister_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;
  gboolean ok = gsm_session_manager_unregister_vm_finish (GSM_SESSION_MANAGER (source), result, &error);

  g_assert_no_error (error);
  g_ptr_array_add (st->log, g_strdup_printf ("unregister:%d", ok));
  st->pending--;
}

static void
sessions_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions =
      gsm_session_manager_get_all_active_sessions_finish (GSM_SESSION_MANAGER (source), result, &error);

  g_assert_no_error (error);
  g_ptr_array_add (st->log, g_strdup_printf ("sessions:%u", g_hash_table_size (sessions)));
  st->pending--;
}

static void
cleanup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;
  int n = gsm_session_manager_cleanup_stale_sessions_finish (GSM_SESSION_MANAGER (source), result, &error);

  g_assert_no_error (error);
  g_ptr_array_add (st->log, g_strdup_printf ("cleanup:%d", n));
  st->pending--;
}

static void
close_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  AsyncState *st = user_data;
  g_autoptr (GError) error = NULL;

  g_assert_true (gsm_session_manager_close_finish (GSM_SESSION_MANAGER (source), result, &error));
  g_assert_no_error (error);
  g_ptr_array_add (st->log, g_strdup ("closed"));
  st->pending--;
}

static void
on_signal_log (GsmSessionManager *m, GObject *object, gpointer user_data)
{
  AsyncState *st = user_data;

  g_assert_true (g_main_context_is_owner (g_main_context_default ()));
  g_ptr_array_add (st->log, g_strdup_printf ("signal:%s", gsm_session_get_vm_id (GSM_SESSION (object))));
}

static void
on_notify_has_vm (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  AsyncState *st = user_data;

  /* The property is the current state, which the worker may have moved
   * past already; the order of the notifications is what is checked. */
  g_ptr_array_add (st->log, g_strdup ("has-vm"));
}

static void
test_async_order (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  AsyncState         st = { g_ptr_array_new_with_free_func (g_free), 0 };
  const char        *expected[] = {
           "signal:vm-a",
           "has-vm",
           "register:ok",
           "vm:vm-a",
           "register:Session",
           "signal:vm-a",
           "has-vm",
           "unregister:1",
           "vm:none",
           "sessions:1",
           "cleanup:0",
           "closed",
  };

  g_signal_connect (m, "vm-registered", G_CALLBACK (on_signal_log), &st);
  g_signal_connect (m, "vm-unregistered", G_CALLBACK (on_signal_log), &st);
  g_signal_connect (m, "notify::has-vm", G_CALLBACK (on_notify_has_vm), &st);

  /* Issued back to back; must complete in this order. */
  gsm_session_manager_register_vm (m, "vm-a", "z", NULL, NULL, NULL, register_done, &st);
  gsm_session_manager_get_my_vm (m, NULL, get_vm_done, &st);
  gsm_session_manager_register_vm (m, "vm-b", "z", NULL, NULL, NULL, register_done, &st);
  gsm_session_manager_unregister_vm (m, NULL, unregister_done, &st);
  gsm_session_manager_get_my_vm (m, NULL, get_vm_done, &st);
  gsm_session_manager_get_all_active_sessions (m, NULL, sessions_done, &st);
  gsm_session_manager_cleanup_stale_sessions (m, NULL, cleanup_done, &st);
  gsm_session_manager_close (m, NULL, close_done, &st);
  st.pending = 8;

  while (st.pending > 0)
    g_main_context_iteration (NULL, TRUE);

  for (guint i = 0; i < st.log->len; i++)
    g_test_message ("%s", (char *) st.log->pdata[i]);
  g_assert_cmpuint (st.log->len, ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < st.log->len; i++)
    g_assert_true (g_str_has_prefix (st.log->pdata[i], expected[i]));

  g_signal_handlers_disconnect_by_data (m, &st);
  g_ptr_array_unref (st.log);
}

static void
test_async_cancelled (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  AsyncState st = { g_ptr_array_new_with_free_func (g_free), 1 };
  g_autoptr (GsmSession) vm = NULL;

  g_cancellable_cancel (cancellable);
  gsm_session_manager_register_vm (m, "vm-c", "z", NULL, NULL, cancellable, register_done, &st);
  while (st.pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (st.log->pdata[0], ==, "register:Operation was cancelled");

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-c", "z", NULL, NULL, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  /* Nothing registered. */
  vm = gsm_session_manager_get_my_vm_sync (m, NULL, NULL);
  g_assert_null (vm);
  g_ptr_array_unref (st.log);
}

static void
test_async_bad_args (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  AsyncState         st = { g_ptr_array_new_with_free_func (g_free), 1 };

  gsm_session_manager_register_vm (m, "", "z", NULL, NULL, NULL, register_done, &st);
  while (st.pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (g_str_has_prefix (st.log->pdata[0], "register:vm_id is empty"));
  g_ptr_array_unref (st.log);
}

/* ---- signals from the registry ------------------------------------------ */

typedef struct
{
  guint      changed;
  GPtrArray *added;
  GPtrArray *removed;
  GPtrArray *stale;
} ChangeLog;

static void
on_changed (GsmSessionManager *m, gpointer user_data)
{
  ((ChangeLog *) user_data)->changed++;
}

static void
on_added (GsmSessionManager *m, GsmSession *s, gpointer user_data)
{
  g_ptr_array_add (((ChangeLog *) user_data)->added, g_strdup (gsm_session_get_session_id (s)));
}

static void
on_removed (GsmSessionManager *m, GsmSession *s, gpointer user_data)
{
  g_ptr_array_add (((ChangeLog *) user_data)->removed, g_strdup (gsm_session_get_session_id (s)));
}

static void
on_stale (GsmSessionManager *m, GsmSession *s, gpointer user_data)
{
  g_ptr_array_add (((ChangeLog *) user_data)->stale, g_strdup (gsm_session_get_session_id (s)));
}

static void
change_log_init (ChangeLog *log, GsmSessionManager *m)
{
  log->changed = 0;
  log->added = g_ptr_array_new_with_free_func (g_free);
  log->removed = g_ptr_array_new_with_free_func (g_free);
  log->stale = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (m, "sessions-changed", G_CALLBACK (on_changed), log);
  g_signal_connect (m, "session-added", G_CALLBACK (on_added), log);
  g_signal_connect (m, "session-removed", G_CALLBACK (on_removed), log);
  g_signal_connect (m, "session-stale", G_CALLBACK (on_stale), log);
}

static void
change_log_clear (ChangeLog *log, GsmSessionManager *m)
{
  g_signal_handlers_disconnect_by_data (m, log);
  g_ptr_array_unref (log->added);
  g_ptr_array_unref (log->removed);
  g_ptr_array_unref (log->stale);
}

/* Writes entries straight into the registry, as another process would. */
static void
add_raw_entries (Fixture *f, const char *const *entries)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autofree char *contents = NULL;
  g_autoptr (GString) out = NULL;
  g_autofree char *tmp = NULL;
  GError          *error = NULL;
  gsize            len;

  g_assert_true (g_file_get_contents (path, &contents, &len, &error));
  g_strstrip (contents);
  g_assert_true (g_str_has_suffix (contents, "}"));
  out = g_string_new_len (contents, strlen (contents) - 1);
  g_strchomp (out->str);
  out->len = strlen (out->str);
  for (guint i = 0; entries[i]; i++)
    {
      const char *colon = strchr (entries[i], ':');

      g_assert_nonnull (colon);
      g_string_append (out, out->str[out->len - 1] == '{' ? "\n" : ",\n");
      g_string_append (out, entries[i]);
    }
  g_string_append (out, "\n}\n");
  tmp = g_strconcat (path, ".new", NULL);
  g_assert_true (g_file_set_contents_full (tmp, out->str, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error));
  g_assert_cmpint (g_rename (tmp, path), ==, 0);
}

static char *
raw_entry (const char *id, int pid, const char *host, double created_at, guint64 start_time, const char *vm_id, const char *extra)
{
  g_autoptr (GString) s = g_string_new (NULL);

  g_string_append_printf (s, "\"%s\": {\"session_id\": \"%s\", \"pid\": %d, \"hostname\": \"%s\", "
                             "\"created_at\": %.6f, \"status\": \"active\"",
                          id, id, pid, host, created_at);
  if (start_time)
    g_string_append_printf (s, ", \"start_time\": %" G_GUINT64_FORMAT, start_time);
  if (vm_id)
    g_string_append_printf (s, ", \"vm_id\": \"%s\", \"zone\": \"z\", \"components\": [], "
                               "\"registered_at\": %.6f",
                            vm_id, created_at);
  if (extra)
    g_string_append_printf (s, ", %s", extra);
  g_string_append (s, "}");
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static guint64
own_start_time (void)
{
  char    state;
  guint64 start = 0;
  int     e;

  g_assert_true (_gsm_process_read_stat (getpid (), &state, &start, &e));
  return start;
}

static void
test_liveness_rules (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) active = NULL, all = NULL;
  double    now = g_get_real_time () / 1e6;
  guint64   start = own_start_time ();
  int       parent = getppid ();
  char      state;
  guint64   parent_start = 0;
  int       e;
  ChangeLog log;
  int       n;

  g_setenv ("GSM_SESSION_EXPIRY", "3600", TRUE);
  m = gsm_session_manager_get_default ();
  g_assert_true (_gsm_process_read_stat (parent, &state, &parent_start, &e));

  {
    g_autofree char *alive = raw_entry ("alive", parent, g_get_host_name (), now - 100000, parent_start, "vm-alive", NULL);
    /* Our pid, but another start time: a reused pid. */
    g_autofree char *reused = raw_entry ("reused", getpid (), g_get_host_name (), now, start + 7, "vm-reused", NULL);
    g_autofree char *gone = raw_entry ("gone", unused_pid (0), g_get_host_name (), now, 12345, NULL, NULL);
    g_autofree char *remote_new = raw_entry ("remote-new", 4242, "other-host", now - 60, 0, "vm-remote", NULL);
    g_autofree char *remote_old = raw_entry ("remote-old", 4243, "other-host", now - 7200, 0, NULL, NULL);
    g_autofree char *no_start = raw_entry ("no-start", parent, g_get_host_name (), now - 7200, 0, NULL, NULL);
    /* Another boot id (another kernel, or this host before a reboot):
     * its pid proves nothing, but a process seen with that pid and
     * start time is not taken for dead. */
    g_autofree char *old_boot = raw_entry ("old-boot", parent, g_get_host_name (), now, parent_start, "vm-boot",
                                           "\"boot_id\": \"00000000-0000-0000-0000-000000000000\"");
    g_autofree char *old_boot_gone = raw_entry ("old-boot-gone", unused_pid (0), g_get_host_name (), now - 7200,
                                                12345, "vm-boot-gone",
                                                "\"boot_id\": \"00000000-0000-0000-0000-000000000000\"");
    const char      *entries[] = { alive, reused, gone, remote_new, remote_old, no_start, old_boot, old_boot_gone,
                                   NULL };

    add_raw_entries (f, entries);
  }

  change_log_init (&log, m);

  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_hash_table_size (all), ==, 9);
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "alive")), ==, "active");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "reused")), ==, "stale");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "gone")), ==, "stale");
  /* Unverifiable: never stale, whatever their age. */
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "remote-new")), ==, "unverifiable");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "remote-old")), ==, "unverifiable");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "no-start")), ==, "unverifiable");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "old-boot")), ==, "active");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "old-boot-gone")), ==, "unverifiable");

  active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  /* Ours, the live local process (a live session never expires), and
   * every session nothing proves dead. */
  g_assert_cmpint (g_hash_table_size (active), ==, 7);
  g_assert_true (g_hash_table_contains (active, gsm_session_manager_get_session_id (m)));
  g_assert_true (g_hash_table_contains (active, "alive"));
  g_assert_true (g_hash_table_contains (active, "remote-new"));
  g_assert_true (g_hash_table_contains (active, "old-boot-gone"));

  /* The listing cleaned up: VM-less dead sessions gone, VM owners kept as
   * stale; VM-less unverifiable ones past the expiry gone; unverifiable VM
   * owners kept as they were. */
  g_assert_cmpuint (log.stale->len, ==, 4);
  g_clear_pointer (&all, g_hash_table_unref);
  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (all), ==, 6);
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "reused")), ==, "stale");
  g_assert_cmpfloat (gsm_session_get_stale_since (g_hash_table_lookup (all, "reused")), >=, now);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, "reused")), ==, "vm-reused");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "old-boot")), ==, "active");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "old-boot-gone")), ==, "unverifiable");
  g_assert_false (g_hash_table_contains (all, "gone"));
  g_assert_false (g_hash_table_contains (all, "remote-old"));
  g_assert_false (g_hash_table_contains (all, "no-start"));

  /* Found once: a second cleanup finds nothing new. */
  n = gsm_session_manager_cleanup_stale_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (n, ==, 0);
  g_assert_cmpuint (log.stale->len, ==, 4);

  /* Statistics count them. */
  {
    g_autoptr (GVariant) stats = gsm_session_manager_get_statistics (m);
    guint32 removed;

    g_assert_true (g_variant_lookup (stats, "stale_sessions_removed", "u", &removed));
    g_assert_cmpuint (removed, ==, 4);
  }

  /* A stale session's VM may be taken over; a live one's may not. */
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-alive", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER);
  g_assert_nonnull (strstr (error->message, "alive"));
  g_clear_error (&error);
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-remote", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER);
  g_clear_error (&error);
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-reused", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  change_log_clear (&log, m);
}

/* An unchanged registry is listed again from the last listing: a process
 * that died meanwhile is still found dead, and cleaned up. */
static void
test_listed_again_after_death (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "sleep", "600", NULL };
  double      now = g_get_real_time () / 1e6;
  guint64     child_start = 0;
  GPid        child;
  char        state;
  int         e;

  g_assert_true (g_spawn_async (NULL, (char **) argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                NULL, NULL, &child, &error));
  g_assert_no_error (error);
  g_assert_true (_gsm_process_read_stat (child, &state, &child_start, &e));

  {
    g_autofree char *local = raw_entry ("local", child, g_get_host_name (), now, child_start, NULL, NULL);
    g_autofree char *remote = raw_entry ("remote", 4242, "other-host", now, 1, "vm-remote", NULL);
    const char      *entries[] = { local, remote, NULL };

    add_raw_entries (f, entries);
  }

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr (GHashTable) active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_hash_table_size (active), ==, 3);
      g_assert_true (g_hash_table_contains (active, "local"));
      g_assert_true (g_hash_table_contains (active, "remote"));
    }

  kill (child, SIGKILL);
  g_assert_cmpint (waitpid (child, NULL, 0), ==, child);
  g_spawn_close_pid (child);

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (GHashTable) active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (g_hash_table_size (active), ==, 2);
      g_assert_false (g_hash_table_contains (active, "local"));
      g_assert_true (g_hash_table_contains (active, "remote"));
    }
}

static void
test_process_match (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) all = NULL;
  double  now = g_get_real_time () / 1e6;
  int     parent = getppid ();
  guint64 parent_start = 0;
  char    state;
  int     e;

  g_setenv ("GSM_PROCESS_MATCH", "no-such-program-name-here", TRUE);
  m = gsm_session_manager_get_default ();
  g_assert_true (_gsm_process_read_stat (parent, &state, &parent_start, &e));
  {
    g_autofree char *other = raw_entry ("other", parent, g_get_host_name (), now, parent_start, NULL, NULL);
    const char      *entries[] = { other, NULL };

    add_raw_entries (f, entries);
  }

  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, "other")), ==, "stale");
  /* Our own session is alive whatever its command line. */
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, gsm_session_manager_get_session_id (m))),
                   ==, "active");
}

static void
test_unknown_fields_preserved (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  double           now = g_get_real_time () / 1e6;
  JsonObject      *entry;

  {
    /* A dead session with a VM and fields we do not know. */
    g_autofree char *dead = raw_entry ("dead", unused_pid (1), g_get_host_name (), now, 99, "vm-d",
                                       "\"x_custom\": {\"nested\": [1, 2, 3]}, \"x_note\": \"keep me\"");
    const char      *entries[] = { dead, NULL };

    add_raw_entries (f, entries);
  }

  /* Marking it stale rewrites the entry. */
  g_assert_cmpint (gsm_session_manager_cleanup_stale_sessions_sync (m, NULL, &error), ==, 1);
  registry = read_json_object (path);
  entry = json_object_get_object_member (registry, "dead");
  g_assert_cmpstr (json_object_get_string_member (entry, "status"), ==, "stale");
  g_assert_cmpstr (json_object_get_string_member (entry, "x_note"), ==, "keep me");
  g_assert_cmpint (json_array_get_length (json_object_get_array_member (
                       json_object_get_object_member (entry, "x_custom"), "nested")),
                   ==, 3);
}

/* ---- the files as untrusted input ---------------------------------------- */

static guint
count_files (Fixture    *f,
             const char *prefix)
{
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;
  guint       n = 0;

  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix))
      n++;
  return n;
}

static void
test_corrupt_registry (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) all = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autofree char *deep = NULL;
  const char      *bad[] = {
         "{\"a\": ", /* truncated */
         "",         /* empty */
         "[1, 2]",   /* not an object */
         NULL,       /* deep nesting, below */
  };
  /* A whole object with one entry that cannot be read: that entry alone
   * is kept aside, verbatim. */
  const char *bad_entry[] = {
    "\"x\": {\"session_id\": \"x\", \"pid\": 99999999999999999999, \"hostname\": \"h\"}",
    "\"x\": {\"session_id\": \"y\", \"pid\": 5, \"hostname\": \"h\"}",
    "\"x\": {\"session_id\": \"x\", \"pid\": \"5\", \"hostname\": \"h\"}",
  };

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-live", "z", NULL, NULL, NULL, &error));

  deep = g_strnfill (100000, '[');
  bad[3] = deep;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_true (g_file_set_contents (path, bad[i], -1, &error));
      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*corrupt*Moved it to*rebuilt it from 1 session files*");
      g_clear_pointer (&all, g_hash_table_unref);
      all = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
      g_test_assert_expected_messages ();
      g_assert_no_error (error);

      /* Nothing live lost: rebuilt from the session file. */
      g_assert_cmpint (g_hash_table_size (all), ==, 1);
      g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, gsm_session_manager_get_session_id (m))),
                       ==, "vm-live");

      /* The bad file is kept for inspection. */
      g_assert_cmpuint (count_files (f, "vm_registry.json.corrupt-"), ==, i + 1);
    }

  for (guint i = 0; i < G_N_ELEMENTS (bad_entry); i++)
    {
      g_autoptr (GDir) dir = NULL;
      g_autofree char *kept = NULL;
      g_autofree char *expected = g_strdup_printf ("{\n  %s\n}\n", bad_entry[i]);
      g_autofree char *contents = NULL;
      g_autofree char *edited = NULL;
      const char      *name;

      /* Before our own entry. */
      g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
      g_assert_true (contents[0] == '{');
      edited = g_strdup_printf ("{%s, %s", bad_entry[i], contents + 1);
      g_assert_true (g_file_set_contents (path, edited, -1, &error));
      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING,
                             "*entry “x” cannot be read*Moved it to*every other entry is kept*");
      g_clear_pointer (&all, g_hash_table_unref);
      all = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
      g_test_assert_expected_messages ();
      g_assert_no_error (error);
      g_assert_cmpint (g_hash_table_size (all), ==, 1);
      g_assert_cmpuint (count_files (f, "vm_registry.json.corrupt-"), ==, G_N_ELEMENTS (bad));
      g_assert_cmpuint (count_files (f, "vm_registry.json.quarantine-"), ==, 1);

      dir = g_dir_open (f->dir, 0, NULL);
      while ((name = g_dir_read_name (dir)) != NULL)
        if (g_str_has_prefix (name, "vm_registry.json.quarantine-"))
          {
            g_autofree char *aside = fixture_path (f, name);

            g_assert_true (g_file_get_contents (aside, &kept, NULL, NULL));
            g_unlink (aside);
          }
      g_assert_cmpstr (kept, ==, expected);
    }

  /* A key that appears twice: the first entry is read, the second kept
   * aside. */
  {
    g_autofree char *contents = NULL;
    g_autofree char *edited = NULL;
    g_autofree char *kept = NULL;
    g_autoptr (GDir) dir = NULL;
    const char *name;

    g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
    edited = g_strdup_printf ("{\"x\": {\"session_id\": \"x\", \"pid\": 7, \"hostname\": \"h\", "
                              "\"vm_id\": \"vm-first\"}, \"x\": {\"session_id\": \"x\", \"pid\": 8, "
                              "\"hostname\": \"h\", \"vm_id\": \"vm-second\"}, %s",
                              contents + 1);
    g_assert_true (g_file_set_contents (path, edited, -1, &error));
    g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING,
                           "*entry “x” cannot be read (a second entry with the same key)*");
    g_clear_pointer (&all, g_hash_table_unref);
    all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
    g_test_assert_expected_messages ();
    g_assert_no_error (error);
    g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, "x")), ==, "vm-first");
    g_assert_nonnull (g_hash_table_lookup (all, gsm_session_manager_get_session_id (m)));

    dir = g_dir_open (f->dir, 0, NULL);
    while ((name = g_dir_read_name (dir)) != NULL)
      if (g_str_has_prefix (name, "vm_registry.json.quarantine-"))
        {
          g_autofree char *aside = fixture_path (f, name);

          g_assert_true (g_file_get_contents (aside, &kept, NULL, NULL));
        }
    g_assert_nonnull (strstr (kept, "vm-second"));
    g_assert_null (strstr (kept, "vm-first"));
  }
}

static void
test_symlink_refused (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autofree char *target = fixture_path (f, "precious");
  g_autofree char *contents = NULL;
  g_autoptr (GHashTable) all = NULL;

  g_assert_true (g_file_set_contents (target, "do not touch", -1, NULL));
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (symlink (target, path), ==, 0);

  all = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_null (all);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_nonnull (strstr (error->message, "vm_registry.json"));
  g_clear_error (&error);

  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);

  g_assert_true (g_file_test (path, G_FILE_TEST_IS_SYMLINK));
  g_assert_true (g_file_get_contents (target, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "do not touch");
}

static void
test_fifo_refused (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autoptr (GHashTable) all = NULL;

  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (mkfifo (path, 0600), ==, 0);

  /* Refused at once: no blocking open of the FIFO. */
  all = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_null (all);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
}

static void
test_insecure_directory (Fixture *f, gconstpointer data)
{
  g_autofree char   *open_dir = fixture_path (f, "open");
  g_autofree char   *sticky_dir = fixture_path (f, "sticky");
  g_autofree char   *link_dir = fixture_path (f, "link");
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir (open_dir, 0700), ==, 0);
  g_assert_cmpint (chmod (open_dir, 0777), ==, 0);
  g_setenv ("GSM_RUNTIME_DIR", open_dir, TRUE);
  _gsm_session_manager_reset_for_testing ();
  g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*can be written by other users*");
  m = gsm_session_manager_get_default ();
  g_test_assert_expected_messages ();
  g_assert_nonnull (m);
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY);
  g_assert_nonnull (strstr (error->message, open_dir));
  g_clear_error (&error);
  /* Nothing was written there. */
  {
    g_autofree char *reg = g_build_filename (open_dir, "vm_registry.json", NULL);
    g_assert_false (g_file_test (reg, G_FILE_TEST_EXISTS));
  }

  /* A sticky shared directory, like /tmp, is fine. */
  g_assert_cmpint (g_mkdir (sticky_dir, 0700), ==, 0);
  g_assert_cmpint (chmod (sticky_dir, 01777), ==, 0);
  g_setenv ("GSM_RUNTIME_DIR", sticky_dir, TRUE);
  _gsm_session_manager_reset_for_testing ();
  m = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  /* A symlink as the directory is refused. */
  g_assert_cmpint (symlink (sticky_dir, link_dir), ==, 0);
  g_setenv ("GSM_RUNTIME_DIR", link_dir, TRUE);
  _gsm_session_manager_reset_for_testing ();
  g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*symbolic link*");
  m = gsm_session_manager_get_default ();
  g_test_assert_expected_messages ();
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY);
  g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
}

static void
test_default_directory (Fixture *f, gconstpointer data)
{
  g_autofree char   *state = fixture_path (f, "state");
  g_autofree char   *expected = NULL;
  GsmSessionManager *m;
  struct stat        st;

  /* g_get_user_state_dir() is cached per process: run this in a child. */
  if (g_test_subprocess ())
    {
      g_unsetenv ("GSM_RUNTIME_DIR");
      m = gsm_session_manager_get_default ();
      g_assert_true (gsm_session_manager_register_vm_sync (m, "vm", "z", NULL, NULL, NULL, NULL));
      printf ("%s\n", g_file_peek_path (gsm_session_manager_get_runtime_dir (m)));
      return;
    }

  g_setenv ("XDG_STATE_HOME", state, TRUE);
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
  expected = g_build_filename (state, "gsm-session", NULL);
  g_test_trap_assert_stdout_unmatched ("*/tmp/vm_registry*");
  g_assert_cmpint (g_stat (expected, &st), ==, 0);
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  {
    g_autofree char *reg = g_build_filename (expected, "vm_registry.json", NULL);
    g_assert_true (g_file_test (reg, G_FILE_TEST_IS_REGULAR));
  }
  g_unsetenv ("XDG_STATE_HOME");
}

static void
test_prefix_seed_files (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;
  g_autofree char *seed_registry = fixture_path (f, "jarvis_vm_registry.json");
  g_autofree char *expected_session = g_strdup_printf ("jarvis_session_%d.json", getpid ());
  g_autofree char *session_path = fixture_path (f, expected_session);
  g_autofree char *tracker_path = fixture_path (f, "jarvis_global_session.json");
  g_autoptr (GHashTable) active = NULL;
  /* Written by the Python design (its own example). */
  const char *seed =
      "{\n"
      "    \"8f16bfd8-1234-5678-9abc-def012345678\": {\n"
      "        \"session_id\": \"8f16bfd8-1234-5678-9abc-def012345678\",\n"
      "        \"pid\": 12345,\n"
      "        \"hostname\": \"macbook.local\",\n"
      "        \"vm_id\": \"jarvis-auto-12345\",\n"
      "        \"zone\": \"us-central1-a\",\n"
      "        \"components\": [\"voice\", \"vision\", \"ml\"],\n"
      "        \"created_at\": %f,\n"
      "        \"registered_at\": %f,\n"
      "        \"status\": \"active\"\n"
      "    }\n"
      "}\n";
  g_autofree char *text = g_strdup_printf (seed, g_get_real_time () / 1e6, g_get_real_time () / 1e6);

  g_assert_true (g_file_set_contents (seed_registry, text, -1, NULL));
  g_setenv ("GSM_FILE_PREFIX", "jarvis_", TRUE);
  m = gsm_session_manager_get_default ();

  active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_hash_table_size (active), ==, 2);
  {
    GsmSession *s = g_hash_table_lookup (active, "8f16bfd8-1234-5678-9abc-def012345678");

    g_assert_nonnull (s);
    g_assert_cmpstr (gsm_session_get_vm_id (s), ==, "jarvis-auto-12345");
    g_assert_cmpint (gsm_session_get_pid (s), ==, 12345);
  }

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-j", "z", NULL, NULL, NULL, &error));
  g_assert_true (g_file_test (session_path, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (tracker_path, G_FILE_TEST_IS_REGULAR));
  g_unsetenv ("GSM_FILE_PREFIX");
}

static void
test_lost_entry_restored (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  JsonObject      *entry;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-mine", "z", NULL, NULL, NULL, &error));

  /* Someone deletes the registry: our next write puts our entry back,
   * still owning its VM. */
  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (gsm_session_manager_cleanup_stale_sessions_sync (m, NULL, &error), ==, 0);
  g_assert_no_error (error);
  registry = read_json_object (path);
  entry = json_object_get_object_member (registry, gsm_session_manager_get_session_id (m));
  g_assert_nonnull (entry);
  g_assert_cmpstr (json_object_get_string_member (entry, "vm_id"), ==, "vm-mine");
}

static void
test_dead_session_file_removed (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  int              pid = unused_pid (0);
  g_autofree char *entry = raw_entry ("dead-one", pid, g_get_host_name (), g_get_real_time () / 1e6, 77, NULL, NULL);
  g_autofree char *name = g_strdup_printf ("session_%d.json", pid);
  g_autofree char *path = fixture_path (f, name);
  const char      *entries[] = { entry, NULL };

  add_raw_entries (f, entries);
  /* Its session file: the entry's value. */
  g_assert_true (g_file_set_contents (path, strchr (entry, '{'), -1, NULL));

  g_assert_cmpint (gsm_session_manager_cleanup_stale_sessions_sync (m, NULL, &error), ==, 1);
  g_assert_no_error (error);
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
}

static void
test_reused_pid_keeps_session_file (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) all = NULL;
  /* Before a reboot, a process with our pid died owning a VM. */
  g_autofree char *entry = raw_entry ("0ld5e551-0000-4000-8000-000000000000", getpid (), g_get_host_name (),
                                      g_get_real_time () / 1e6 - 100, 1, "vm-before-reboot",
                                      "\"boot_id\": \"00000000-0000-0000-0000-000000000000\"");
  /* The seed's layout names session files by pid alone. */
  g_autofree char *name = g_strdup_printf ("jarvis_session_%d.json", getpid ());
  g_autofree char *path = fixture_path (f, name);
  g_autofree char *aside_name = g_strdup_printf ("jarvis_session_%d_%08x.json", getpid (),
                                                 g_str_hash ("0ld5e551-0000-4000-8000-000000000000"));
  g_autofree char *aside = fixture_path (f, aside_name);
  g_autofree char *registry = fixture_path (f, "jarvis_vm_registry.json");
  g_autofree char *text = g_strdup_printf ("{%s}", entry);

  g_assert_true (g_file_set_contents (registry, text, -1, NULL));
  g_assert_true (g_file_set_contents (path, strchr (entry, '{'), -1, NULL));

  g_setenv ("GSM_FILE_PREFIX", "jarvis_", TRUE);
  m = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-now", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  /* Our file took the name; the old one is kept aside. */
  g_assert_true (g_file_test (aside, G_FILE_TEST_IS_REGULAR));
  {
    g_autoptr (JsonObject) ours = read_json_object (path);
    g_assert_cmpstr (json_object_get_string_member (ours, "vm_id"), ==, "vm-now");
  }

  /* So a rebuild still knows the orphan VM. */
  g_assert_true (g_file_set_contents (registry, "{ broken", -1, NULL));
  g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*rebuilt it from 2 session files*");
  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_test_assert_expected_messages ();
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, "0ld5e551-0000-4000-8000-000000000000")),
                   ==, "vm-before-reboot");
  g_unsetenv ("GSM_FILE_PREFIX");
}

/* ---- the cache ----------------------------------------------------------- */

static void
test_cache_same_size_and_mtime (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) before = NULL, after = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autofree char *tmp = fixture_path (f, "replacement");
  g_autofree char *contents = NULL;
  char            *p;
  struct stat      st;
  struct timespec  times[2];

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-aaaa", "z", NULL, NULL, NULL, &error));
  before = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (before, gsm_session_manager_get_session_id (m))),
                   ==, "vm-aaaa");

  /* Another writer replaces the file with one of the same size and mtime. */
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  p = strstr (contents, "vm-aaaa");
  g_assert_nonnull (p);
  memcpy (p, "vm-bbbb", 7);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_true (g_file_set_contents (tmp, contents, -1, NULL));
  times[0] = st.st_atim;
  times[1] = st.st_mtim;
  g_assert_cmpint (utimensat (AT_FDCWD, tmp, times, 0), ==, 0);
  g_assert_cmpint (chmod (tmp, 0600), ==, 0);
  g_assert_cmpint (g_rename (tmp, path), ==, 0);

  after = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (after, gsm_session_manager_get_session_id (m))),
                   ==, "vm-bbbb");
}

/* The text of member @id of the registry file, compact, by json-glib. */
static char *
registry_member_text (Fixture *f, const char *id)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *root;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  root = json_node_get_object (json_parser_get_root (parser));
  if (!json_object_has_member (root, id))
    return NULL;
  return json_to_string (json_object_get_member (root, id), FALSE);
}

/* The members of the registry file, by json-glib: id → compact text. */
static GHashTable *
registry_members (Fixture *f)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  GHashTable    *members = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObjectIter iter;
  const char    *name;
  JsonNode      *node;

  g_assert_true (json_parser_load_from_file (parser, path, &error));
  g_assert_no_error (error);
  json_object_iter_init (&iter, json_node_get_object (json_parser_get_root (parser)));
  while (json_object_iter_next (&iter, &name, &node))
    g_assert_true (g_hash_table_insert (members, g_strdup (name), json_to_string (node, FALSE)));
  return members;
}

/*
 * An update of this process's entry alone leaves every other entry as it
 * was: whatever the layout of the file (written by another tool) and
 * wherever the entry is in it, the others keep the exact text of their
 * values.
 */
static void
test_other_entries_kept (Fixture *f, gconstpointer data)
{
  /* Members joined by: separators of another tool's layouts. */
  static const struct
  {
    const char *open, *colon, *comma, *close;
  } layouts[] = {
    { "{\n  ", ": ", ",\n  ", "\n}\n" },           /* ours */
    { "{", ":", ",", "}" },                        /* compact */
    { " \t{ \r\n", " :\t", " ,\r\n ", "  }\n\n" }, /* odd whitespace */
  };
  GsmSessionManager *m = gsm_session_manager_get_default ();
  const char        *own_id = gsm_session_manager_get_session_id (m);
  g_autofree char   *path = fixture_path (f, "vm_registry.json");
  g_autofree char   *tmp = g_strconcat (path, ".new", NULL);
  g_autofree char   *own_text = registry_member_text (f, own_id);
  double             now = g_get_real_time () / 1e6;
  g_autoptr (GError) error = NULL;
  guint round = 0;

  g_assert_nonnull (own_text);

  for (guint l = 0; l < G_N_ELEMENTS (layouts); l++)
    for (guint n_others = 0; n_others <= 3; n_others++)
      for (guint pos = 0; pos <= n_others; pos++)
        {
          g_autoptr (GString) file = g_string_new (layouts[l].open);
          g_autoptr (GPtrArray) others = g_ptr_array_new_with_free_func (g_free);
          g_autoptr (GHashTable) members = NULL;
          g_autofree char *vm = g_strdup_printf ("vm-edit-%u", round++);
          guint            k = 0;

          /* Others are on another host, alive until the expiry. */
          for (guint i = 0; i <= n_others; i++)
            {
              g_autofree char *id = NULL;
              g_autofree char *entry = NULL;
              g_autofree char *member = NULL;

              if (i > 0)
                g_string_append (file, layouts[l].comma);
              if (i == pos)
                {
                  g_string_append_printf (file, "\"%s\"%s%s", own_id, layouts[l].colon, own_text);
                  continue;
                }
              id = g_strdup_printf ("other-%u", k++);
              entry = raw_entry (id, 5000 + k, "other-host", now, 0, k % 2 ? "vm-other" : NULL, NULL);
              /* raw_entry() gives "id": {...}; use this layout's colon. */
              member = g_strdup_printf ("\"%s\"%s%s", id, layouts[l].colon, strchr (entry, '{'));
              g_string_append (file, member);
              g_ptr_array_add (others, g_strdup (strchr (entry, '{')));
            }
          g_string_append (file, layouts[l].close);
          g_assert_true (g_file_set_contents_full (tmp, file->str, -1, G_FILE_SET_CONTENTS_NONE,
                                                   0600, &error));
          g_assert_cmpint (g_rename (tmp, path), ==, 0);

          for (guint step = 0; step < 3; step++)
            {
              g_autofree char *contents = NULL;
              g_autofree char *own_now = NULL;
              g_autoptr (JsonParser) parser = json_parser_new ();
              JsonObject *own;

              if (step == 1)
                g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
              else
                g_assert_true (gsm_session_manager_register_vm_sync (m, step ? "vm-again" : vm, "z",
                                                                     NULL, NULL, NULL, &error));
              g_assert_no_error (error);

              /* Every other entry as it was, byte for byte. */
              g_assert_true (g_file_get_contents (path, &contents, NULL, &error));
              for (guint i = 0; i < others->len; i++)
                g_assert_nonnull (strstr (contents, others->pdata[i]));

              members = registry_members (f);
              g_assert_cmpuint (g_hash_table_size (members), ==, n_others + 1);
              own_now = registry_member_text (f, own_id);
              g_assert_true (json_parser_load_from_data (parser, own_now, -1, &error));
              own = json_node_get_object (json_parser_get_root (parser));
              if (step == 1)
                g_assert_false (json_object_has_member (own, "vm_id"));
              else
                g_assert_cmpstr (json_object_get_string_member (own, "vm_id"), ==,
                                 step ? "vm-again" : vm);
              g_clear_pointer (&members, g_hash_table_unref);
            }

          g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
          g_assert_no_error (error);
        }

  /* Closing removes the entry for good. */
  {
    g_autoptr (GHashTable) members = NULL;

    g_assert_true (gsm_session_manager_close_sync (m, NULL, &error));
    g_assert_no_error (error);
    members = registry_members (f);
    g_assert_false (g_hash_table_contains (members, own_id));
  }
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The names in the runtime directory, sorted and joined by spaces. */
static char *
dir_names (Fixture *f)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  GDir       *d = g_dir_open (f->dir, 0, NULL);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_dir_close (d);
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

/* After a clean close of the default manager, durable (the default) or
 * not, the runtime directory holds the registry and its lock, and
 * nothing else. */
static void
test_close_leaves_registry_only (Fixture *f, gconstpointer data)
{
  for (guint durable = 0; durable < 2; durable++)
    {
      GsmSessionManager *m;
      g_autoptr (GError) error = NULL;
      g_autofree char *names = NULL;

      if (durable)
        g_unsetenv ("GSM_DURABLE");
      _gsm_session_manager_reset_for_testing ();
      m = gsm_session_manager_get_default ();
      for (guint i = 0; i < 3; i++)
        {
          g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-close", "z", NULL, NULL, NULL,
                                                               &error));
          g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
          g_assert_no_error (error);
        }
      g_assert_true (gsm_session_manager_close_sync (m, NULL, &error));
      g_assert_no_error (error);

      names = dir_names (f);
      g_assert_cmpstr (names, ==, "vm_registry.json vm_registry.lock");
    }
  _gsm_session_manager_reset_for_testing ();
}

/* A starting writer removes the temporary files killed writers left, and
 * nothing else (spares: test_dead_spares_removed). */
static void
test_leftovers_removed (Fixture *f, gconstpointer data)
{
  const char *leftovers[] = {
    "vm_registry.json.tmp-0123abcd",
    "session_42.json.tmp-89abcdef",
  };
  const char *kept[] = {
    "notes.spare-42-0123abcd",
    "notes.tmp-0123abcd",
    "vm_registry.json.tmp-0123",
    "vm_registry.json.spare-x-0123abcd",
  };
  GsmSessionManager *m;

  for (guint i = 0; i < G_N_ELEMENTS (leftovers); i++)
    {
      g_autofree char *path = fixture_path (f, leftovers[i]);

      g_assert_true (g_file_set_contents (path, "{}", -1, NULL));
    }
  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    {
      g_autofree char *path = fixture_path (f, kept[i]);

      g_assert_true (g_file_set_contents (path, "{}", -1, NULL));
    }

  m = gsm_session_manager_get_default ();
  g_assert_nonnull (m);
  for (guint i = 0; i < G_N_ELEMENTS (leftovers); i++)
    {
      g_autofree char *path = fixture_path (f, leftovers[i]);

      g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
    }
  for (guint i = 0; i < G_N_ELEMENTS (kept); i++)
    {
      g_autofree char *path = fixture_path (f, kept[i]);

      g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
    }
}

static ino_t
registry_ino (Fixture *f)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  struct stat      st;

  g_assert_cmpint (g_lstat (path, &st), ==, 0);
  return st.st_ino;
}

static guint
count_names (Fixture *f, const char *part)
{
  GDir       *d = g_dir_open (f->dir, 0, NULL);
  const char *name;
  guint       n = 0;

  while ((name = g_dir_read_name (d)) != NULL)
    if (strstr (name, part) != NULL)
      n++;
  g_dir_close (d);
  return n;
}

/*
 * A write puts the registry's new text into the file the write before
 * retired (kept as a spare) instead of a new one. Never into a file
 * anyone still has open: a reader that opened the registry before those
 * writes goes on reading exactly what it opened.
 */
static void
test_retired_file_reused_unless_open (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autofree char   *path = fixture_path (f, "vm_registry.json");
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  ino_t            first, second;
  gsize            len;
  char            *held;
  int              fd;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-spare-1", "z", NULL, NULL, NULL, &error));
  first = registry_ino (f);
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  second = registry_ino (f);
  g_assert_cmpuint (first, !=, second);
  /* One spare, named after this process. */
  g_assert_cmpuint (count_names (f, ".spare-"), ==, 1);
  g_assert_cmpuint (count_names (f, ".tmp-"), ==, 0);

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-spare-2", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  if (registry_ino (f) != first)
    g_test_message ("no write leases here: every write makes a new file");
  else
    {
      /* The two files take turns. */
      g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
      g_assert_cmpuint (registry_ino (f), ==, second);
      g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-spare-2", "z", NULL, NULL, NULL, &error));
      g_assert_cmpuint (registry_ino (f), ==, first);
    }

  /* Someone opens the registry and reads slowly. */
  g_assert_true (g_file_get_contents (path, &before, &len, &error));
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);

  for (guint i = 0; i < 4; i++)
    {
      g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
      g_assert_true (gsm_session_manager_register_vm_sync (m, i % 2 ? "vm-x" : "vm-yy", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);
    }

  /* What it holds was not written again. */
  held = g_malloc (len + 16);
  g_assert_cmpint (pread (fd, held, len + 16, 0), ==, (gssize) len);
  g_assert_cmpmem (held, len, before, len);
  g_free (held);
  close (fd);

  /* Once it closed it, the turns go on; still one spare. */
  for (guint i = 0; i < 3; i++)
    {
      g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
      g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-z", "z", NULL, NULL, NULL, &error));
    }
  g_assert_cmpuint (count_names (f, ".spare-"), ==, 1);
  g_assert_cmpuint (count_names (f, ".tmp-"), ==, 0);

  /* Closing the manager removes it. */
  _gsm_session_manager_reset_for_testing ();
  g_assert_cmpuint (count_names (f, ".spare-"), ==, 0);
}

/* A starting writer removes the spares of dead processes, and only
 * those. */
static void
test_dead_spares_removed (Fixture *f, gconstpointer data)
{
  g_autofree char   *dead = NULL;
  g_autofree char   *live = NULL;
  g_autofree char   *other = NULL;
  GsmSessionManager *m;
  GPid               pid;
  const char        *argv[] = { "/bin/true", NULL };
  int                status;

  /* A pid that is surely free: a child that has been reaped. */
  g_assert_true (g_spawn_async (NULL, (char **) argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, NULL));
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);

  dead = g_strdup_printf ("%s/vm_registry.json.spare-%d-0123abcd", f->dir, (int) pid);
  live = g_strdup_printf ("%s/vm_registry.json.spare-%d-0123abcd", f->dir, (int) getppid ());
  other = g_strdup_printf ("%s/notes.spare-%d-0123abcd", f->dir, (int) pid);
  g_assert_true (g_file_set_contents (dead, "{}", -1, NULL));
  g_assert_true (g_file_set_contents (live, "{}", -1, NULL));
  g_assert_true (g_file_set_contents (other, "{}", -1, NULL));

  m = gsm_session_manager_get_default ();
  g_assert_nonnull (m);
  g_assert_false (g_file_test (dead, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (live, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
}

static void
test_cache_no_reparse (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  GsmFileRegistry   *registry = (GsmFileRegistry *) _gsm_session_manager_get_registry (m);
  g_autoptr (GError) error = NULL;
  double now = g_get_real_time () / 1e6;
  guint  parsed;

  {
    g_autofree char *a = raw_entry ("remote-a", 4242, "other-host", now, 0, "vm-ra", NULL);
    g_autofree char *b = raw_entry ("remote-b", 4243, "other-host", now, 0, "vm-rb", NULL);
    const char      *entries[] = { a, b, NULL };

    add_raw_entries (f, entries);
  }

  g_hash_table_unref (gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error));
  parsed = _gsm_file_registry_get_n_parsed (registry);

  /* Unchanged file: nothing parsed. */
  for (int i = 0; i < 5; i++)
    g_hash_table_unref (gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error));
  g_assert_cmpuint (_gsm_file_registry_get_n_parsed (registry), ==, parsed);

  /* Our own change: written from the cache, nothing parsed. */
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-own", "z", NULL, NULL, NULL, &error));
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_hash_table_unref (gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error));
  g_assert_cmpuint (_gsm_file_registry_get_n_parsed (registry), ==, parsed);

  /* Another writer adds one entry: only that one is parsed. */
  {
    g_autofree char *c = raw_entry ("remote-c", 4244, "other-host", now, 0, NULL, NULL);
    const char      *entries[] = { c, NULL };

    add_raw_entries (f, entries);
  }
  g_hash_table_unref (gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error));
  g_assert_cmpuint (_gsm_file_registry_get_n_parsed (registry), ==, parsed + 1);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/manager/default/identity", test_default_identity);
  ADD ("/manager/default/threads", test_default_threads);
  ADD ("/manager/default/directory", test_default_directory);
  ADD ("/manager/signals/sync-from-thread", test_signals_sync_from_thread);
  ADD ("/manager/signals/older-view-after-sync", test_signals_older_view_after_sync);
  ADD ("/manager/reserve-confirm", test_reserve_confirm);
  ADD ("/manager/sync/register-files", test_register_files);
  ADD ("/manager/sync/close-keeps-vm", test_close_keeps_vm);
  ADD ("/manager/sync/errors", test_errors);
  ADD ("/manager/sync/statistics", test_statistics);
  ADD ("/manager/async/order-and-signals", test_async_order);
  ADD ("/manager/async/cancelled", test_async_cancelled);
  ADD ("/manager/async/bad-args", test_async_bad_args);
  ADD ("/manager/liveness/rules", test_liveness_rules);
  ADD ("/manager/liveness/process-match", test_process_match);
  ADD ("/manager/liveness/listed-again-after-death", test_listed_again_after_death);
  ADD ("/manager/files/unknown-fields", test_unknown_fields_preserved);
  ADD ("/manager/files/corrupt-registry", test_corrupt_registry);
  ADD ("/manager/files/symlink", test_symlink_refused);
  ADD ("/manager/files/fifo", test_fifo_refused);
  ADD ("/manager/files/insecure-directory", test_insecure_directory);
  ADD ("/manager/files/seed-prefix", test_prefix_seed_files);
  ADD ("/manager/files/lost-entry-restored", test_lost_entry_restored);
  ADD ("/manager/files/dead-session-file-removed", test_dead_session_file_removed);
  ADD ("/manager/files/reused-pid-keeps-session-file", test_reused_pid_keeps_session_file);
  ADD ("/manager/cache/same-size-and-mtime", test_cache_same_size_and_mtime);
  ADD ("/manager/cache/no-reparse", test_cache_no_reparse);
  ADD ("/manager/files/other-entries-kept", test_other_entries_kept);
  ADD ("/manager/files/close-leaves-registry-only", test_close_leaves_registry_only);
  ADD ("/manager/files/leftovers-removed", test_leftovers_removed);
  ADD ("/manager/files/retired-file-reused-unless-open", test_retired_file_reused_unless_open);
  ADD ("/manager/files/dead-spares-removed", test_dead_spares_removed);
#undef ADD

  return g_test_run ();
}
