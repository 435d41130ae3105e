/* test-gsmd-reap.c: gsmd --reap deletes orphan VMs after the grace period
 *
 * A private bus (GTestDBus), gsmd --reap on it, real worker processes and
 * the fake cloud.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "reaper-test-util.h"

typedef struct
{
  char   *name;
  char  **args;
  gint64  when;
} BusSignal;

static void
bus_signal_free (gpointer data)
{
  BusSignal *s = data;

  g_free (s->name);
  g_strfreev (s->args);
  g_free (s);
}

static void
on_signal (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *iface,
           const char      *name,
           GVariant        *parameters,
           gpointer         user_data)
{
  GPtrArray *log = user_data;
  BusSignal *s = g_new0 (BusSignal, 1);
  GPtrArray *args = g_ptr_array_new ();
  GVariantIter iter;
  GVariant *child;

  s->name = g_strdup (name);
  s->when = g_get_monotonic_time ();
  g_variant_iter_init (&iter, parameters);
  while ((child = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_ptr_array_add (args, g_variant_is_of_type (child, G_VARIANT_TYPE_STRING)
                               ? g_variant_dup_string (child, NULL) : g_variant_print (child, FALSE));
      g_variant_unref (child);
    }
  g_ptr_array_add (args, NULL);
  s->args = (char **) g_ptr_array_free (args, FALSE);
  g_ptr_array_add (log, s);
}

/* Waits (at most 20 s) for @name with first argument @session_id. */
static BusSignal *
wait_signal (GPtrArray  *log,
             const char *name,
             const char *session_id)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      for (guint i = 0; i < log->len; i++)
        {
          BusSignal *s = log->pdata[i];

          if (g_str_equal (s->name, name) && g_strcmp0 (s->args[0], session_id) == 0)
            return s;
        }
      g_main_context_iteration (NULL, FALSE);
      g_usleep (5000);
    }
  g_error ("no %s for %s within 20 s", name, session_id);
  return NULL;
}

static GSubprocess *
start_gsmd (GDBusConnection *connection)
{
  g_autoptr(GError) error = NULL;
  GSubprocess *gsmd;

  gsmd = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, g_getenv ("GSMD"), "--reap", NULL);
  g_assert_no_error (error);

  for (int i = 0; i < 2000; i++)
    {
      g_autoptr(GVariant) reply =
        g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "NameHasOwner",
                                     g_variant_new ("(s)", "org.gsm.SessionManager1"),
                                     G_VARIANT_TYPE ("(b)"), 0, 5000, NULL, &error);
      gboolean owned = FALSE;

      g_assert_no_error (error);
      g_variant_get (reply, "(b)", &owned);
      if (owned)
        return gsmd;
      g_usleep (10000);
    }
  g_error ("gsmd did not take its bus name within 20 s");
  return NULL;
}

static void
stop_gsmd (GSubprocess *gsmd)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (gsmd, SIGTERM);
  g_subprocess_wait (gsmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (gsmd));
  g_assert_cmpint (g_subprocess_get_exit_status (gsmd), ==, 0);
}

static void
test_gsmd_reap (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GPtrArray) log = g_ptr_array_new_with_free_func (bus_signal_free);
  g_autoptr(GSubprocess) gsmd = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Worker) live = NULL, dead = NULL, failing = NULL, early = NULL;
  g_autofree char *out = NULL;
  BusSignal *stale, *reaped, *failed;
  guint sub;

  /* A grace period the test can see: the reap comes after it. */
  g_setenv ("GSM_REAP_GRACE", "1", TRUE);
  g_test_dbus_up (bus);
  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  sub = g_dbus_connection_signal_subscribe (connection, NULL, "org.gsm.SessionManager1", NULL,
                                            "/org/gsm/SessionManager1", NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, on_signal, log, NULL);

  cloud_add_vm (f, "vm-live");
  cloud_add_vm (f, "vm-dead");
  live = worker_start ("vm-live");
  dead = worker_start ("vm-dead");

  /* Found dead by another process before gsmd runs: gsmd never sees its
   * SessionStale, and still reaps it once the grace period is over (not
   * at its next periodic pass, 30 s later). */
  cloud_add_vm (f, "vm-early");
  early = worker_start ("vm-early");
  worker_kill (early);
  g_assert_cmpint (run_gsmctl (&out, NULL, "cleanup", NULL), ==, 0);

  gsmd = start_gsmd (connection);
  reaped = wait_signal (log, "VmReaped", early->session_id);
  g_assert_cmpstr (reaped->args[1], ==, "vm-early");
  g_assert_false (cloud_has_vm (f, "vm-early"));

  worker_kill (dead);
  stale = wait_signal (log, "SessionStale", dead->session_id);
  g_assert_cmpstr (stale->args[1], ==, "vm-dead");
  reaped = wait_signal (log, "VmReaped", dead->session_id);
  g_assert_cmpstr (reaped->args[1], ==, "vm-dead");
  g_assert_cmpstr (reaped->args[2], ==, "zone-a");
  g_assert_cmpstr (reaped->args[3], ==, "deleted");
  /* Not before the grace period (1 s from when it was found dead). */
  g_assert_cmpint (reaped->when - stale->when, >=, G_USEC_PER_SEC * 9 / 10);
  g_assert_false (cloud_has_vm (f, "vm-dead"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-dead"), ==, 1);

  /* A failing provider: ReapFailed, and the VM stays. */
  cloud_add_vm (f, "vm-failing");
  failing = worker_start ("vm-failing");
  cloud_set_mode (f, "fail");
  worker_kill (failing);
  failed = wait_signal (log, "ReapFailed", failing->session_id);
  g_assert_cmpstr (failed->args[1], ==, "vm-failing");
  g_assert_nonnull (strstr (failed->args[2], "quota exceeded"));
  g_assert_true (cloud_has_vm (f, "vm-failing"));

  stop_gsmd (gsmd);

  /* The live worker's VM was never touched. */
  g_assert_true (cloud_has_vm (f, "vm-live"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 0);

  g_dbus_connection_signal_unsubscribe (connection, sub);
  g_clear_object (&connection);
  g_test_dbus_down (bus);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/gsmd/reap", Fixture, NULL, fixture_set_up, test_gsmd_reap, fixture_tear_down);

  return g_test_run ();
}
