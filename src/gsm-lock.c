/* gsm-lock.c: the registry lock
 *
 * Every write to the registry happens with an exclusive lock on the lock
 * file held. The lock belongs to the open file description (an OFD lock,
 * or flock() where there are none): the kernel releases it when its holder
 * dies, and closing another descriptor of the same file does not drop it.
 * A writer that has to wait tries again with a short backoff, so that a
 * wait can time out and be cancelled without a thread or a signal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gsm-error.h"
#include "gsm-fs-private.h"
#include "gsm-lock-private.h"

/* The longest pause between two tries, in µs. Every waiter that wakes
 * up takes CPU time from the holder: with 64 writers on 2 cores, pauses
 * of at most 2 ms cost four fifths of the throughput, and 10 ms none
 * measurable. A short wait is still seen at once: the pauses start at
 * 10 µs. */
#define MAX_BACKOFF_US 10000

static void
set_lock_error (GError    **error,
                int         saved_errno,
                const char *what,
                const char *doing)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "Cannot %s “%s”: %s", doing, what, g_strerror (saved_errno));
}

/*
 * _gsm_lock_open:
 *
 * Opens (creating it if needed) the lock file, which must be a regular
 * file of this user. It is never replaced, so a lock on it means the same
 * thing to every process.
 *
 * Returns: a descriptor, or -1 with @error set
 */
int
_gsm_lock_open (int         dirfd,
                const char *dir_path,
                const char *name,
                GError    **error)
{
  g_autofree char *path = g_build_filename (dir_path, name, NULL);
  struct stat      st;
  int              fd;

  fd = openat (dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    {
      if (errno == ELOOP)
        g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                     "Refusing lock file “%s”: it is a symbolic link", path);
      else
        set_lock_error (error, errno, path, "open lock file");
      return -1;
    }

  if (fstat (fd, &st) != 0)
    {
      set_lock_error (error, errno, path, "inspect lock file");
      close (fd);
      return -1;
    }

  if (!_gsm_fs_check_regular_file (&st, dir_path, name, error))
    {
      close (fd);
      return -1;
    }

  return fd;
}

/* One try: 0, or an errno (EAGAIN if someone else holds it). */
static int
try_lock (int fd)
{
  struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

  if (fcntl (fd, F_OFD_SETLK, &fl) == 0)
    return 0;
  if (errno != EINVAL)
    return errno == EACCES ? EAGAIN : errno;
  /* No OFD locks (as under valgrind): flock() also belongs to the open
   * file description. */
  if (flock (fd, LOCK_EX | LOCK_NB) == 0)
    return 0;
  return errno == EWOULDBLOCK ? EAGAIN : errno;
}

/*
 * _gsm_lock_acquire:
 * @what: the lock file's path, for messages
 * @cancellable: (nullable): stops the wait with %G_IO_ERROR_CANCELLED
 *
 * Takes the exclusive lock on @fd, waiting for it at most
 * @timeout_seconds (then %GSM_ERROR_LOCK_TIMEOUT). Callers must not take
 * the same descriptor's lock from two threads at once (the registry holds
 * its mutex).
 */
gboolean
_gsm_lock_acquire (int           fd,
                   const char   *what,
                   double        timeout_seconds,
                   GCancellable *cancellable,
                   GError      **error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout_seconds * G_USEC_PER_SEC);
  gulong backoff_us = 10;

  for (;;)
    {
      int r = try_lock (fd);

      if (r == 0)
        return TRUE;
      if (r != EAGAIN && r != EINTR)
        {
          set_lock_error (error, r, what, "lock");
          return FALSE;
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      if (g_get_monotonic_time () >= deadline)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT,
                       "Timed out after %.1f s waiting for the lock on “%s”",
                       timeout_seconds, what);
          return FALSE;
        }
      /* Jittered, so that the writers waiting do not all try at once. */
      g_usleep (backoff_us / 2 + (gulong) g_random_int_range (0, (gint32) backoff_us));
      backoff_us = MIN (backoff_us * 2, MAX_BACKOFF_US);
    }
}

void
_gsm_lock_release (int fd)
{
  struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

  if (fcntl (fd, F_OFD_SETLK, &fl) != 0)
    flock (fd, LOCK_UN);
}
