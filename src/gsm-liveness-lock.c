/* gsm-liveness-lock.c: a lock each session holds while it lives
 *
 * A session creates a file of its own in the runtime directory and holds
 * an OFD write lock on it from before its entry is first written until the
 * process is gone. The kernel releases an OFD lock when the last
 * descriptor of its open file goes, which is when the process exits or is
 * killed, whatever its pid namespace, its pid (1 in a container) or the
 * state of its main thread. So a reader that shares the file system and
 * the kernel tests the lock (F_OFD_GETLK, which takes nothing) and knows,
 * without a pid: held is alive, free is gone. A reader of another kernel
 * (another host, a sandbox with a kernel of its own) sees no lock at all:
 * to it, free proves nothing.
 *
 * A child made by fork() shares the open file: it closes its copy, so that
 * the lock goes with the session's own process.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gsm-liveness-lock-private.h"

/* The descriptors this process holds locks through; a fixed table, since a
 * child of fork() must close them without taking a mutex. */
#define MAX_HELD 16
static int held[MAX_HELD];

static void
close_held_in_child (void)
{
  for (guint i = 0; i < MAX_HELD; i++)
    {
      int fd = g_atomic_int_get (&held[i]);

      if (fd > 0)
        close (fd);
      held[i] = 0;
    }
}

static void
remember (int fd)
{
  static gsize registered = 0;

  if (g_once_init_enter (&registered))
    {
      pthread_atfork (NULL, NULL, close_held_in_child);
      g_once_init_leave (&registered, 1);
    }

  for (guint i = 0; i < MAX_HELD; i++)
    if (g_atomic_int_compare_and_exchange (&held[i], 0, fd))
      return;
}

static void
forget (int fd)
{
  for (guint i = 0; i < MAX_HELD; i++)
    if (g_atomic_int_compare_and_exchange (&held[i], fd, 0))
      return;
}

/*
 * _gsm_liveness_lock_take:
 * @dirfd: the runtime directory
 * @name: a name no other session uses (it holds the session id)
 *
 * Creates @name and locks it for as long as this process lives.
 *
 * Returns: the descriptor that holds the lock, or -1 where the file system
 *   takes no OFD lock (then the session has none)
 */
int
_gsm_liveness_lock_take (int         dirfd,
                         const char *name)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  int          fd;

  fd = openat (dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    return -1;

  if (fcntl (fd, F_OFD_SETLK, &fl) != 0)
    {
      g_debug ("No liveness lock on “%s”: %s", name, g_strerror (errno));
      unlinkat (dirfd, name, 0);
      close (fd);
      return -1;
    }

  remember (fd);
  return fd;
}

void
_gsm_liveness_lock_release (int fd)
{
  if (fd < 0)
    return;
  forget (fd);
  close (fd);
}

/*
 * _gsm_liveness_lock_check:
 *
 * Tests the lock on @name without taking it.
 */
GsmLivenessLockState
_gsm_liveness_lock_check (int         dirfd,
                          const char *name)
{
  struct flock         fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
  GsmLivenessLockState state = GSM_LIVENESS_LOCK_NONE;
  struct stat          st;
  int                  fd;

  if (dirfd < 0 || name == NULL || *name == '\0' || *name == '.' || strchr (name, '/') != NULL)
    return GSM_LIVENESS_LOCK_NONE;

  fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return GSM_LIVENESS_LOCK_NONE;
  if (fstat (fd, &st) == 0 && S_ISREG (st.st_mode) && st.st_uid == geteuid () &&
      fcntl (fd, F_OFD_GETLK, &fl) == 0)
    state = fl.l_type == F_UNLCK ? GSM_LIVENESS_LOCK_FREE : GSM_LIVENESS_LOCK_HELD;
  close (fd);

  return state;
}
