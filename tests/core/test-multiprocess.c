/* test-multiprocess.c: many real processes on one registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "test-common.h"

#include <sys/wait.h>

#define N_CONCURRENT 32

static void
test_concurrent_registration (Fixture *f, gconstpointer data)
{
  GSubprocess *procs[N_CONCURRENT];
  char        *ids[N_CONCURRENT];
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");

  /* All start at once and register while the others do. */
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);
      const char      *args[] = { "register", vm, NULL };

      procs[i] = spawn_worker (args);
    }
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      g_autofree char *line = worker_read_line (procs[i]);
      g_auto (GStrv) parts = g_strsplit (line, " ", 3);

      g_assert_cmpstr (parts[0], ==, "READY");
      ids[i] = g_strdup (parts[1]);
    }

  /* No entry lost. */
  registry = read_json_object (path);
  g_assert_cmpint (json_object_get_size (registry), ==, N_CONCURRENT);
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      JsonObject      *entry = json_object_get_object_member (registry, ids[i]);
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      g_assert_nonnull (entry);
      g_assert_cmpstr (json_object_get_string_member (entry, "vm_id"), ==, vm);
      g_assert_cmpint (json_object_get_int_member (entry, "pid"), ==,
                       g_ascii_strtoll (g_subprocess_get_identifier (procs[i]), NULL, 10));
    }

  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      kill_worker (procs[i]);
      g_object_unref (procs[i]);
      g_free (ids[i]);
    }
}

static void
test_concurrent_cycles (Fixture *f, gconstpointer data)
{
  GSubprocess *procs[8];
  g_autoptr (JsonObject) registry = NULL;
  g_autofree char *path = fixture_path (f, "vm_registry.json");

  for (guint i = 0; i < G_N_ELEMENTS (procs); i++)
    {
      const char *args[] = { "cycle", "40", NULL };

      procs[i] = spawn_worker (args);
    }
  for (guint i = 0; i < G_N_ELEMENTS (procs); i++)
    {
      g_autofree char *line = worker_read_line (procs[i]);

      g_assert_cmpstr (line, ==, "OK 40");
      g_assert_true (g_subprocess_wait_check (procs[i], NULL, NULL));
      g_object_unref (procs[i]);
    }

  /* Every worker closed its session: nothing left behind, no temp file. */
  registry = read_json_object (path);
  g_assert_cmpint (json_object_get_size (registry), ==, 0);
  {
    g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (dir)) != NULL)
      g_assert_null (strstr (name, ".tmp-"));
  }
}

typedef struct
{
  guint      changed;
  GPtrArray *stale;
  GPtrArray *added;
} Seen;

static void
on_changed (GsmSessionManager *m, gpointer user_data)
{
  ((Seen *) user_data)->changed++;
}

static void
on_stale (GsmSessionManager *m, GsmSession *s, gpointer user_data)
{
  g_ptr_array_add (((Seen *) user_data)->stale, g_strdup (gsm_session_get_session_id (s)));
}

static void
on_added (GsmSessionManager *m, GsmSession *s, gpointer user_data)
{
  g_ptr_array_add (((Seen *) user_data)->added, g_strdup (gsm_session_get_session_id (s)));
}

static gboolean
seen_added (gpointer data)
{
  return ((Seen *) data)->added->len > 0;
}

static void
test_kill_and_cleanup (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  GSubprocess *procs[3];
  char        *ids[3];
  Seen         seen = { 0, g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func (g_free) };
  g_autoptr (GHashTable) active = NULL, all = NULL;
  g_autofree char *out = NULL;
  int              n;

  g_signal_connect (m, "sessions-changed", G_CALLBACK (on_changed), &seen);
  g_signal_connect (m, "session-stale", G_CALLBACK (on_stale), &seen);
  g_signal_connect (m, "session-added", G_CALLBACK (on_added), &seen);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-worker-%u", i);

      procs[i] = spawn_registered_worker (vm, &ids[i]);
    }

  /* The file monitor tells us about the other processes. */
  wait_until (seen_added, &seen, 5000);
  g_assert_cmpuint (seen.changed, >, 0);

  active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (active), ==, 4);

  /* A VM owned by a live session is refused. */
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-worker-1", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER);
  g_clear_error (&error);

  kill_worker (procs[1]);

  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, ids[1])), ==, "stale");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, ids[0])), ==, "active");

  /* gsmctl, another process, does the cleanup and reports it once. */
  {
    const char *argv[] = { g_getenv ("GSMCTL"), "cleanup", "--yes", NULL };
    g_autoptr (GSubprocess) ctl = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);

    g_assert_no_error (error);
    g_assert_true (g_subprocess_communicate_utf8 (ctl, NULL, NULL, &out, NULL, &error));
    g_assert_cmpstr (out, ==, "Cleaned up 1 stale session.\n");
  }
  n = gsm_session_manager_cleanup_stale_sessions_sync (m, NULL, &error);
  g_assert_cmpint (n, ==, 0);
  g_assert_cmpuint (seen.stale->len, ==, 0);

  /* The dead worker's VM is kept, marked stale; the others are untouched. */
  g_clear_pointer (&all, g_hash_table_unref);
  all = _gsm_session_manager_list_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (all), ==, 4);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, ids[1])), ==, "vm-worker-1");
  g_assert_cmpstr (gsm_session_get_status (g_hash_table_lookup (all, ids[1])), ==, "stale");
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, ids[0])), ==, "vm-worker-0");
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (all, ids[2])), ==, "vm-worker-2");
  g_clear_pointer (&active, g_hash_table_unref);
  active = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (active), ==, 3);
  g_assert_false (g_hash_table_contains (active, ids[1]));

  /* Its VM may now be taken over. */
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-worker-1", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < 3; i++)
    {
      if (i != 1)
        kill_worker (procs[i]);
      g_object_unref (procs[i]);
      g_free (ids[i]);
    }
  g_signal_handlers_disconnect_by_data (m, &seen);
  g_ptr_array_unref (seen.stale);
  g_ptr_array_unref (seen.added);
}

static void
test_cleanup_reports_once (Fixture *f, gconstpointer data)
{
  GSubprocess *workers[4];
  GSubprocess *cleaners[4];
  int          total = 0;

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      workers[i] = spawn_registered_worker (vm, NULL);
      kill_worker (workers[i]);
      g_object_unref (workers[i]);
    }

  /* Four cleaners at once: each dead session is reported by exactly one. */
  for (guint i = 0; i < G_N_ELEMENTS (cleaners); i++)
    {
      const char *args[] = { "cleanup", NULL };

      cleaners[i] = spawn_worker (args);
    }
  for (guint i = 0; i < G_N_ELEMENTS (cleaners); i++)
    {
      g_autofree char *line = worker_read_line (cleaners[i]);

      total += atoi (line);
      g_subprocess_wait (cleaners[i], NULL, NULL);
      g_object_unref (cleaners[i]);
    }
  g_assert_cmpint (total, ==, 4);
}

static gboolean
changed_at_least_once (gpointer data)
{
  return *(guint *) data > 0;
}

static void
count_changed (GsmSessionManager *m, gpointer data)
{
  (*(guint *) data)++;
}

static void
test_other_process_change_invalidates_cache (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) first = NULL, second = NULL;
  g_autofree char *id = NULL;
  GSubprocess     *proc;
  guint            changed = 0;

  first = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (first), ==, 1);

  g_signal_connect (m, "sessions-changed", G_CALLBACK (count_changed), &changed);
  proc = spawn_registered_worker ("vm-other", &id);

  /* Right away, without waiting for the monitor: the file changed. */
  second = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_cmpint (g_hash_table_size (second), ==, 2);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (second, id)), ==, "vm-other");

  wait_until (changed_at_least_once, &changed, 5000);
  kill_worker (proc);
  g_object_unref (proc);
  g_signal_handlers_disconnect_by_data (m, &changed);
}

static void
test_lock_timeout (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) holder = NULL;
  g_autofree char *lock_path = fixture_path (f, "vm_registry.lock");
  g_autofree char *line = NULL;
  /* A POSIX record lock conflicts with our OFD lock, flock() with the
   * fallback used where OFD locks are missing (valgrind). */
  const char *argv[] = { "/usr/bin/python3", "-c",
                         "import fcntl, sys, time\n"
                         "f = open(sys.argv[1], 'r+')\n"
                         "fcntl.lockf(f, fcntl.LOCK_EX)\n"
                         "fcntl.flock(f, fcntl.LOCK_EX)\n"
                         "print('LOCKED', flush=True)\n"
                         "time.sleep(60)\n",
                         lock_path, NULL };
  gint64      t0;
  double      waited;

  if (g_getenv ("GSM_UNDER_VALGRIND") != NULL)
    {
      /* valgrind 3.19 lets F_OFD_SETLKW through without waiting. */
      g_test_skip ("valgrind does not emulate blocking OFD locks");
      return;
    }

  g_setenv ("GSM_LOCK_TIMEOUT", "0.5", TRUE);
  m = gsm_session_manager_get_default ();
  g_unsetenv ("GSM_LOCK_TIMEOUT");

  holder = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  line = worker_read_line (holder);
  g_assert_cmpstr (line, ==, "LOCKED");

  t0 = g_get_monotonic_time ();
  g_assert_false (gsm_session_manager_register_vm_sync (m, "vm-l", "z", NULL, NULL, NULL, &error));
  waited = (g_get_monotonic_time () - t0) / 1e6;
  g_assert_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "vm_registry.lock"));
  g_assert_cmpfloat (waited, >=, 0.4);
  g_clear_error (&error);

  /* The holder dies: the lock is free again and the next call gets it. */
  kill_worker (holder);
  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-l", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_assert_no_error (error);
}

/* Live sessions stay listed while we list again and cycle our own VM,
 * and a kill is seen at the next listing. */
static void
test_kill_seen_at_next_listing (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  GSubprocess       *workers[6];
  char              *ids[G_N_ELEMENTS (workers)];
  g_autoptr (GError) error = NULL;
  GHashTable *sessions;

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-live-%u", i);

      workers[i] = spawn_registered_worker (vm, &ids[i]);
    }

  for (guint i = 0; i < 3; i++)
    {
      sessions = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_hash_table_size (sessions), ==, G_N_ELEMENTS (workers) + 1);
      g_hash_table_unref (sessions);
      g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-own", "z", NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
      g_assert_no_error (error);
    }
  kill_worker (workers[0]);
  sessions = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_hash_table_contains (sessions, ids[0]));
  g_assert_true (g_hash_table_contains (sessions, ids[1]));
  g_hash_table_unref (sessions);

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      if (i > 0)
        kill_worker (workers[i]);
      g_object_unref (workers[i]);
      g_free (ids[i]);
    }
}

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A child forked without exec inherits the manager but not the session:
 * sync and async calls fail, and the parent's entry and VM are untouched. */
static void
test_forked_child (Fixture *f, gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) vm = NULL;
  int   status = 0, fds[2];
  char  verdict = -1;
  pid_t child;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-parent", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  /* The child reports through a pipe: under valgrind its exit status is
   * valgrind's verdict on the parent's heap it inherited. */
  g_assert_cmpint (pipe (fds), ==, 0);
  child = fork ();
  g_assert_cmpint (child, >=, 0);
  if (child == 0)
    {
      GError       *e = NULL;
      GAsyncResult *result = NULL;
      int           code = 0;

      /* Each way the parent's VM could be taken for the child's. */
      if (gsm_session_manager_get_my_vm_sync (m, NULL, &e) != NULL ||
          !g_error_matches (e, GSM_ERROR, GSM_ERROR_CLOSED))
        code |= 1;
      g_clear_error (&e);
      if (gsm_session_manager_unregister_vm_sync (m, NULL, &e) ||
          !g_error_matches (e, GSM_ERROR, GSM_ERROR_CLOSED))
        code |= 2;
      g_clear_error (&e);
      gsm_session_manager_unregister_vm (m, NULL, store_result, &result);
      while (result == NULL)
        g_main_context_iteration (NULL, TRUE);
      if (gsm_session_manager_unregister_vm_finish (m, result, &e) ||
          !g_error_matches (e, GSM_ERROR, GSM_ERROR_CLOSED))
        code |= 4;
      g_clear_error (&e);
      if (gsm_session_manager_close_sync (m, NULL, &e) ||
          !g_error_matches (e, GSM_ERROR, GSM_ERROR_CLOSED))
        code |= 8;
      verdict = (char) code;
      (void) !write (fds[1], &verdict, 1);
      _exit (code);
    }

  close (fds[1]);
  g_assert_cmpint (read (fds[0], &verdict, 1), ==, 1);
  close (fds[0]);
  g_assert_cmpint (verdict, ==, 0);
  g_assert_cmpint (waitpid (child, &status, 0), ==, child);

  vm = gsm_session_manager_get_my_vm_sync (m, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (vm);
  g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-parent");
  g_assert_true (gsm_session_manager_unregister_vm_sync (m, NULL, &error));
  g_assert_no_error (error);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/multiprocess/concurrent-registration", test_concurrent_registration);
  ADD ("/multiprocess/concurrent-cycles", test_concurrent_cycles);
  ADD ("/multiprocess/kill-and-cleanup", test_kill_and_cleanup);
  ADD ("/multiprocess/cleanup-reports-once", test_cleanup_reports_once);
  ADD ("/multiprocess/cache-invalidated-by-other-process", test_other_process_change_invalidates_cache);
  ADD ("/multiprocess/lock-timeout", test_lock_timeout);
  ADD ("/multiprocess/forked-child", test_forked_child);
  ADD ("/multiprocess/kill-seen-at-next-listing", test_kill_seen_at_next_listing);
#undef ADD

  return g_test_run ();
}
