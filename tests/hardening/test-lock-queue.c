/* test-lock-queue.c: the queue in front of the registry lock
 *
 * Writers wait for the registry lock on a robust process-shared mutex in
 * the lock file's first page, then take the OFD lock. A holder killed
 * with SIGKILL leaves both to the next writer, whether that one already
 * waits or comes later; a queue page holding garbage costs a wait, never
 * the lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#define QUEUE_MAGIC "gsm-lock-glibc"

static gboolean
bump (GsmRegistryTxn  *txn,
      gpointer         user_data,
      GError         **error)
{
  const char *id = user_data;
  GsmSession *old = _gsm_registry_txn_lookup (txn, id);
  g_autoptr(GsmSession) session = _gsm_session_new (id, old ? gsm_session_get_pid (old) + 1 : 2,
                                                    "elsewhere.example.org", 1700000000.0, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

static int
bumped (GsmFileRegistry *registry,
        const char      *id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GsmRegistrySnapshot) snapshot = _gsm_registry_update (GSM_REGISTRY (registry), bump,
                                                                  (gpointer) id, NULL, &error);

  g_assert_no_error (error);
  return gsm_session_get_pid (_gsm_registry_snapshot_lookup (snapshot, id));
}

static char *
read_lock_file (const char *dir,
                gsize      *len)
{
  g_autofree char *path = g_build_filename (dir, "vm_registry.lock", NULL);
  char *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, len, NULL));
  return contents;
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

  w->pid = bumped (w->registry, "queued");
  g_atomic_int_set (&w->done, 1);
  return NULL;
}

static GSubprocess *
spawn_holder (const char *dir)
{
  const char *args[] = { "hold-lock", NULL };
  GSubprocess *holder = hardening_spawn (dir, args, 0);
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
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-queue-XXXXXX", &error);
  g_autofree char *page = NULL;
  g_autoptr(GsmFileRegistry) registry = NULL;
  GThread *thread;
  Waiter w = { 0, };
  gsize len;

  g_assert_no_error (error);
  g_setenv ("GSM_LOCK_TIMEOUT", "20", TRUE);
  registry = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bumped (registry, "queued"), ==, 2);

  /* The first writer made the queue: one page, its magic first. */
  page = read_lock_file (dir, &len);
  g_assert_cmpuint (len, ==, 4096);
  g_assert_true (g_str_has_prefix (page, QUEUE_MAGIC));

  /* Killed while a writer waits in the queue: the waiter goes on. */
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

  /* Killed with nobody waiting: the next writer finds the mutex of a dead
   * owner and goes on. */
  kill_holder (spawn_holder (dir));
  g_assert_cmpint (bumped (registry, "queued"), ==, 4);

  /* Other processes (each with its own queue mapping) after that. */
  for (int i = 0; i < 3; i++)
    {
      const char *args[] = { "count", "5", NULL };
      g_autoptr(GSubprocess) counter = hardening_spawn (dir, args, 0);
      g_auto(GStrv) lines = NULL;
      int status;

      lines = hardening_finish (counter, &status);
      g_assert_cmpint (status, ==, 0);
    }
  g_assert_cmpint (bumped (registry, "queued"), ==, 5);

  g_unsetenv ("GSM_LOCK_TIMEOUT");
  hardening_rm_rf (dir);
}

/* A queue page of garbage: its mutex seems held by a live thread that
 * never lets go. A writer waits a while in the queue, finds the lock
 * free, and goes on without the queue. */
static void
test_garbage_queue (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-queue-XXXXXX", &error);
  g_autofree char *path = NULL;
  g_autoptr(GsmFileRegistry) first = NULL;
  g_autoptr(GsmFileRegistry) registry = NULL;
  guint32 owner = (guint32) getppid ();
  int fd;

  g_assert_no_error (error);
  first = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_clear_object (&first);

  /* The mutex's first word is its owner's thread id (glibc). */
  path = g_build_filename (dir, "vm_registry.lock", NULL);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, &owner, sizeof owner, 40), ==, sizeof owner);
  close (fd);

  /* The first lock of a descriptor maps the queue; the next uses it. */
  registry = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*lock queue*is broken*");
  g_assert_cmpint (bumped (registry, "garbage"), ==, 2);
  g_test_assert_expected_messages ();
  /* Once: then the lock alone. */
  g_assert_cmpint (bumped (registry, "garbage"), ==, 3);
  g_assert_cmpint (bumped (registry, "garbage"), ==, 4);

  hardening_rm_rf (dir);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/hardening/lock-queue/holder-killed", test_holder_killed);
  g_test_add_func ("/hardening/lock-queue/garbage", test_garbage_queue);

  return g_test_run ();
}
