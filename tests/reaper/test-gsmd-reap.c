/* test-gsmd-reap.c: gsmd --reap deletes orphan VMs after the grace period
 *
 * A private bus (GTestDBus), gsmd --reap on it, real worker processes and
 * the fake cloud. With [reaper] auto=true in the configuration, gsmd
 * started without arguments (as the installed unit and D-Bus activation
 * start it) does the same, and reconciles the fake clouds' inventory;
 * without it, gsmd, gsmctl stats and gsmctl list say that orphans wait.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "dbus-test-util.h"
#include "fake-cloud-util.h"
#include "reaper-test-util.h"

/* Waits (at most 20 s) for @member with first argument @session_id. */
static Received *
wait_signal (Recorder   *rec,
             const char *member,
             const char *session_id)
{
  Received *r = recorder_wait_ms (rec, NULL, member, session_id, 20 * 1000);

  if (r == NULL)
    g_error ("no %s for %s within 20 s", member, session_id);
  return r;
}

/* gsmd with @arg (NULL for none), its standard error a pipe if
 * @flags say so. */
static GSubprocess *
start_gsmd_full (GDBusConnection *connection,
                 const char      *arg,
                 GSubprocessFlags flags)
{
  g_autoptr (GError) error = NULL;
  GSubprocess *gsmd;

  gsmd = g_subprocess_new (flags, &error, g_getenv ("GSMD"), arg, NULL);
  g_assert_no_error (error);

  for (int i = 0; i < 2000; i++)
    {
      g_autoptr (GVariant) reply =
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

static GSubprocess *
start_gsmd (GDBusConnection *connection)
{
  return start_gsmd_full (connection, "--reap", G_SUBPROCESS_FLAGS_NONE);
}

static void
stop_gsmd (GSubprocess *gsmd)
{
  g_autoptr (GError) error = NULL;

  g_subprocess_send_signal (gsmd, SIGTERM);
  g_subprocess_wait (gsmd, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (gsmd));
  g_assert_cmpint (g_subprocess_get_exit_status (gsmd), ==, 0);
}

static void
test_gsmd_reap (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GSubprocess) gsmd = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) live = NULL, dead = NULL, failing = NULL, early = NULL;
  g_autofree char *out = NULL;
  Recorder        *rec;
  Received        *stale, *reaped, *failed;
  const char      *vm, *zone, *outcome, *message;

  /* A grace period the test can see: the reap comes after it. Without
   * one, a reap follows SessionStale by about a second anyway (the
   * provider's run), so the grace must be well above that. */
  g_setenv ("GSM_REAP_GRACE", "3", TRUE);
  g_test_dbus_up (bus);
  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  rec = recorder_new (connection, NULL, TEST_PATH);

  cloud_add_vm (f, "vm-live");
  cloud_add_vm (f, "vm-dead");
  live = worker_start ("vm-live");
  dead = worker_start ("vm-dead");

  /* Found dead by another process before gsmd runs: gsmd never sees its
   * SessionStale, and still reaps it once the grace period is over (not
   * at its next periodic pass, 30 s later). */
  early = worker_start_orphan (f, "vm-early");
  g_assert_cmpint (run_gsmctl (&out, NULL, "cleanup", "--yes", NULL), ==, 0);

  gsmd = start_gsmd (connection);
  reaped = wait_signal (rec, "VmReaped", early->session_id);
  g_variant_get (reaped->params, "(&s&s&s&s)", NULL, &vm, NULL, NULL);
  g_assert_cmpstr (vm, ==, "vm-early");
  g_assert_false (cloud_has_vm (f, "vm-early"));

  worker_kill (dead);
  stale = wait_signal (rec, "SessionStale", dead->session_id);
  g_variant_get (stale->params, "(&s&s)", NULL, &vm);
  g_assert_cmpstr (vm, ==, "vm-dead");
  reaped = wait_signal (rec, "VmReaped", dead->session_id);
  g_variant_get (reaped->params, "(&s&s&s&s)", NULL, &vm, &zone, &outcome);
  g_assert_cmpstr (vm, ==, "vm-dead");
  g_assert_cmpstr (zone, ==, "zone-a");
  g_assert_cmpstr (outcome, ==, "deleted");
  /* Not before the grace period (3 s from when it was found dead). */
  g_assert_cmpint (reaped->received_us - stale->received_us, >=, G_USEC_PER_SEC * 29 / 10);
  g_assert_false (cloud_has_vm (f, "vm-dead"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-dead"), ==, 1);

  /* A failing provider: ReapFailed, and the VM stays. */
  cloud_add_vm (f, "vm-failing");
  failing = worker_start ("vm-failing");
  cloud_set_mode (f, "fail");
  worker_kill (failing);
  failed = wait_signal (rec, "ReapFailed", failing->session_id);
  g_variant_get (failed->params, "(&s&s&s)", NULL, &vm, &message);
  g_assert_cmpstr (vm, ==, "vm-failing");
  g_assert_nonnull (strstr (message, "quota exceeded"));
  g_assert_true (cloud_has_vm (f, "vm-failing"));

  stop_gsmd (gsmd);

  /* The live worker's VM was never touched. */
  g_assert_true (cloud_has_vm (f, "vm-live"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 0);

  recorder_free (rec);
  g_clear_object (&connection);
  g_test_dbus_down (bus);
}

/* [reaper] auto=true: gsmd as the unit starts it (no --reap) deletes a
 * kill -9'd session's VM with no command typed, and only it. */
static void
test_gsmd_auto (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GSubprocess) gsmd = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) live = NULL, dead = NULL;
  g_autofree char *config = g_build_filename (f->root, "config.ini", NULL);
  Recorder        *rec;
  Received        *reaped;
  const char      *vm;

  g_assert_true (g_file_set_contents (config, "[reaper]\nauto=true\n", -1, NULL));
  g_setenv ("GSM_CONFIG_FILE", config, TRUE);
  g_test_dbus_up (bus);
  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  rec = recorder_new (connection, NULL, TEST_PATH);

  cloud_add_vm (f, "vm-live");
  cloud_add_vm (f, "vm-dead");
  live = worker_start ("vm-live");
  dead = worker_start ("vm-dead");

  gsmd = start_gsmd_full (connection, NULL, G_SUBPROCESS_FLAGS_NONE);
  worker_kill (dead);
  reaped = wait_signal (rec, "VmReaped", dead->session_id);
  g_variant_get (reaped->params, "(&s&s&s&s)", NULL, &vm, NULL, NULL);
  g_assert_cmpstr (vm, ==, "vm-dead");
  g_assert_false (cloud_has_vm (f, "vm-dead"));
  stop_gsmd (gsmd);

  /* Exactly what the provider was asked to delete. */
  g_assert_cmpuint (cloud_count (f, "call", "vm-dead"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 0);
  g_assert_true (cloud_has_vm (f, "vm-live"));

  recorder_free (rec);
  g_clear_object (&connection);
  g_test_dbus_down (bus);
}

/* auto=true with a provider that can list (the fake gcloud): gsmd finds
 * the VM of a process that crashed before registering it, and deletes it
 * once older than the grace period; a live session's VM stays. */
static void
test_gsmd_auto_reconcile (Fixture      *f,
                          gconstpointer data)
{
  const char *crash_env[] = { "GSM_TEST_WORKER_CREATE", "gcloud",
                              "GSM_TEST_WORKER_SKIP_REGISTER", "1", NULL };
  const char *create_env[] = { "GSM_TEST_WORKER_CREATE", "gcloud", NULL };
  const char *expected[] = { "vm-crash zone-a", NULL };
  g_autoptr (GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GSubprocess) gsmd = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) crashed = NULL, live = NULL;
  FakeCloud   fc;
  Recorder   *rec;
  Received   *reaped;
  const char *vm;

  fake_cloud_set_up (&fc, f, "gcloud");
  fake_cloud_configure (&fc, "\n[reaper]\nauto=true\nreconcile-interval=1\n");
  g_setenv ("GSM_REAP_GRACE", "1", TRUE);
  g_test_dbus_up (bus);
  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  rec = recorder_new (connection, NULL, TEST_PATH);

  live = worker_start_env ("vm-live", create_env);
  crashed = worker_start_env ("vm-crash", crash_env);
  worker_kill (crashed);

  gsmd = start_gsmd_full (connection, NULL, G_SUBPROCESS_FLAGS_NONE);
  reaped = wait_signal (rec, "VmReaped", crashed->session_id);
  g_variant_get (reaped->params, "(&s&s&s&s)", NULL, &vm, NULL, NULL);
  g_assert_cmpstr (vm, ==, "vm-crash");
  stop_gsmd (gsmd);

  fake_cloud_assert_deleted (&fc, expected);
  g_assert_false (fake_cloud_has (&fc, "vm-crash"));
  g_assert_true (fake_cloud_has (&fc, "vm-live"));

  recorder_free (rec);
  g_clear_object (&connection);
  g_test_dbus_down (bus);
  fake_cloud_clear (&fc);
}

/* Without auto=true: gsmd, gsmctl stats and gsmctl list say that an orphan
 * waits, and how to have it deleted; nothing is deleted. */
static void
test_orphans_waiting (Fixture      *f,
                      gconstpointer data)
{
  g_autoptr (GTestDBus) bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GSubprocess) gsmd = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) dead = NULL;
  g_autoptr (GDataInputStream) err = NULL;
  g_autofree char *out = NULL;
  gboolean         said = FALSE;

  dead = worker_start_orphan (f, "vm-dead");
  g_assert_cmpint (run_gsmctl (&out, NULL, "cleanup", "--yes", NULL), ==, 0);
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_gsmctl (&out, NULL, "stats", NULL), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "1 orphan VM of dead sessions is waiting"));
  g_assert_nonnull (strstr (out, "auto=true"));
  g_assert_nonnull (strstr (out, "gsmctl reap --yes"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, NULL, "list", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "Note: 1 orphan VM"));
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, NULL, "stats", "--json", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "\"auto_reap\" : false"));
  g_clear_pointer (&out, g_free);

  g_test_dbus_up (bus);
  connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  gsmd = start_gsmd_full (connection, NULL, G_SUBPROCESS_FLAGS_STDERR_PIPE);
  err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (gsmd));
  /* The message comes at start, before the bus name is taken. */
  while (!said)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (err, NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (line);
      g_test_message ("gsmd: %s", line);
      said = strstr (line, "1 orphan VM of dead sessions is waiting") != NULL &&
             strstr (line, "auto=true") != NULL;
    }
  stop_gsmd (gsmd);
  g_assert_cmpuint (cloud_count (f, "call", "vm-dead"), ==, 0);
  g_assert_true (cloud_has_vm (f, "vm-dead"));

  g_clear_object (&connection);
  g_test_dbus_down (bus);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/gsmd/reap", Fixture, NULL, fixture_set_up, test_gsmd_reap, fixture_tear_down);
  g_test_add ("/gsmd/auto", Fixture, NULL, fixture_set_up, test_gsmd_auto, fixture_tear_down);
  g_test_add ("/gsmd/auto-reconcile", Fixture, NULL, fixture_set_up, test_gsmd_auto_reconcile,
              fixture_tear_down);
  g_test_add ("/gsmd/orphans-waiting", Fixture, NULL, fixture_set_up, test_orphans_waiting,
              fixture_tear_down);

  return g_test_run ();
}
