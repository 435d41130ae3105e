/* test-lock.c: the registry lock
 *
 * A holder killed with SIGKILL leaves the lock to the next writer,
 * whether that one already waits or comes later; a wait can be cancelled.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "gsm-lock-private.h"
#include "hardening-util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

static gboolean
bump (GsmRegistryTxn *txn,
      gpointer        user_data,
      GError        **error)
{
  const char *id = user_data;
  GsmSession *old = _gsm_registry_txn_lookup (txn, id);
  g_autoptr (GsmSession) session = _gsm_session_new (id, old ? gsm_session_get_pid (old) + 1 : 2,
                                                     "elsewhere.example.org", 1700000000.0, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

static int
bumped (GsmFileRegistry *registry,
        const char      *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = _gsm_registry_update (GSM_REGISTRY (registry), bump,
                                                                   (gpointer) id, NULL, &error);

  g_assert_no_error (error);
  return gsm_session_get_pid (_gsm_registry_snapshot_lookup (snapshot, id));
}

typedef struct
{
  GsmFileRegistry *registry;
  int              pid;
  gint             done;
} Waiter;

static gpointer
waiter_thread (gpointer data)
{
  Waiter *w = data;

  w->pid = bumped (w->registry, "waited");
  g_atomic_int_set (&w->done, 1);
  return NULL;
}

static GSubprocess *
spawn_holder (const char *dir)
{
  const char      *args[] = { "hold-lock", NULL };
  GSubprocess     *holder = hardening_spawn (dir, args, 0);
  g_autofree char *line = hardening_read_line (holder);

  g_assert_cmpstr (line, ==, "LOCKED");
  return holder;
}

static void
kill_holder (GSubprocess *holder)
{
  g_subprocess_send_signal (holder, SIGKILL);
  g_subprocess_wait (holder, NULL, NULL);
  g_object_unref (holder);
}

static void
test_holder_killed (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-lock-XXXXXX", &error);
  g_autoptr (GsmFileRegistry) registry = NULL;
  GThread *thread;
  Waiter   w = {
      0,
  };

  g_assert_no_error (error);
  g_setenv ("GSM_LOCK_TIMEOUT", "20", TRUE);
  registry = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bumped (registry, "waited"), ==, 2);

  /* Killed while a writer waits: the waiter goes on. */
  {
    GSubprocess *holder = spawn_holder (dir);

    w.registry = registry;
    thread = g_thread_new ("waiter", waiter_thread, &w);
    g_usleep (200 * 1000);
    g_assert_cmpint (g_atomic_int_get (&w.done), ==, 0);
    kill_holder (holder);
    g_thread_join (thread);
    g_assert_cmpint (w.pid, ==, 3);
  }

  /* Killed with nobody waiting: the next writer goes on. */
  kill_holder (spawn_holder (dir));
  g_assert_cmpint (bumped (registry, "waited"), ==, 4);

  /* Other processes after that. */
  for (int i = 0; i < 3; i++)
    {
      const char *args[] = { "count", "5", NULL };
      g_autoptr (GSubprocess) counter = hardening_spawn (dir, args, 0);
      g_auto (GStrv) lines = NULL;
      int status;

      lines = hardening_finish (counter, &status);
      g_assert_cmpint (status, ==, 0);
    }
  g_assert_cmpint (bumped (registry, "waited"), ==, 5);

  g_unsetenv ("GSM_LOCK_TIMEOUT");
  hardening_rm_rf (dir);
}

typedef struct
{
  int           fd;
  const char   *path;
  GCancellable *cancellable;
  GError       *error;
} Canceller;

static gpointer
cancelled_waiter_thread (gpointer data)
{
  Canceller *c = data;

  g_assert_false (_gsm_lock_acquire (c->fd, c->path, 600, c->cancellable, &c->error));
  return NULL;
}

/* A writer waiting for a lock that another holds stops when cancelled,
 * without the lock; the timeout (600 s) is far beyond the test's. */
static void
test_wait_cancelled (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-lock-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "vm_registry.lock", NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Canceller c = { -1, path, cancellable, NULL };
  GThread  *thread;
  int       dirfd, holder, other;

  g_assert_no_error (error);
  dirfd = _gsm_fs_open_dir (dir, FALSE, &error);
  g_assert_no_error (error);
  /* Two open files: their locks exclude each other, in one process too. */
  holder = _gsm_lock_open (dirfd, dir, "vm_registry.lock", &error);
  g_assert_no_error (error);
  c.fd = _gsm_lock_open (dirfd, dir, "vm_registry.lock", &error);
  g_assert_no_error (error);
  g_assert_true (_gsm_lock_acquire (holder, path, 0, NULL, &error));

  thread = g_thread_new ("waiter", cancelled_waiter_thread, &c);
  g_usleep (100 * 1000);
  g_cancellable_cancel (cancellable);
  g_thread_join (thread);
  g_assert_error (c.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&c.error);

  /* The lock stayed with its holder, and goes to the next once released. */
  other = _gsm_lock_open (dirfd, dir, "vm_registry.lock", &error);
  g_assert_no_error (error);
  g_assert_false (_gsm_lock_acquire (other, path, 0, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT);
  g_clear_error (&error);
  _gsm_lock_release (holder);
  g_assert_true (_gsm_lock_acquire (other, path, 0, NULL, &error));
  g_assert_no_error (error);

  close (other);
  close (c.fd);
  close (holder);
  close (dirfd);
  hardening_rm_rf (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/hardening/lock/holder-killed", test_holder_killed);
  g_test_add_func ("/hardening/lock/wait-cancelled", test_wait_cancelled);

  return g_test_run ();
}
