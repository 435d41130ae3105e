/* gsm-process.c: is the process behind a session still alive?
 *
 * "Dead" must be a proof: a VM is deleted on it. Two proofs hold:
 *
 * - the liveness lock: every session holds an OFD lock on a file of its
 *   own (its lock_file) for its whole life, and the kernel releases it
 *   exactly when the process is gone, whatever its pid namespace, its pid
 *   (1 in a container) or the state of its main thread. Every process on
 *   the same kernel that shares the directory sees it. A free lock proves
 *   death only to a reader of the same kernel (the same boot id): another
 *   kernel (a gVisor or Kata sandbox, another host on a shared file
 *   system) cannot see the lock at all.
 * - the pid: a session is the process (pid, start time) in a pid
 *   namespace of one boot. Read in that namespace and boot, a pid that is
 *   gone or that belongs to a process with another start time (the kernel
 *   hands pids out again) proves death. Elsewhere a pid means nothing.
 *
 * Everything else is unverifiable (GSM_LIVENESS_UNVERIFIABLE), and is never
 * taken for dead.
 *
 * Every check looks afresh (one read of /proc/PID/stat for a pid that
 * means something here): nothing is cached. A daemon that wants to know
 * of a death at once (gsmd) holds a pidfd of each live session's process,
 * from _gsm_liveness_probe_open_pidfd(), in its main loop.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gsm-liveness-lock-private.h"
#include "gsm-process-private.h"
#include "gsm-session-private.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

struct _GsmLivenessProbe
{
  char       *hostname;
  const char *boot_id;    /* ours, or "" */
  guint64     pid_ns;     /* ours, or 0 */
  int         lock_dirfd; /* where sessions' lock files are, or -1 */
  char       *process_match;
};

/* Reads /proc/PID/stat into @buf; returns its fields after the command
 * name (field 3 on), or NULL with @saved_errno set. The command name
 * (field 2) may hold spaces and parentheses: the rest starts after the
 * last ')'. */
static const char *
read_stat_fields (int   pid,
                  char *buf,
                  gsize size,
                  int  *saved_errno)
{
  char        path[64];
  const char *p;
  ssize_t     n;
  int         fd;

  g_snprintf (path, sizeof path, "/proc/%d/stat", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      *saved_errno = errno;
      return NULL;
    }
  n = read (fd, buf, size - 1);
  *saved_errno = errno;
  close (fd);
  if (n <= 0)
    {
      if (n == 0)
        *saved_errno = ESRCH;
      return NULL;
    }
  buf[n] = '\0';

  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] == '\0')
    {
      *saved_errno = EINVAL;
      return NULL;
    }
  return p + 2;
}

/*
 * _gsm_process_read_stat:
 * @state: (out): the state letter (R, S, Z, X, …)
 * @start_time: (out): field 22, the start time in clock ticks after boot
 *
 * Returns: %TRUE if /proc/PID/stat was read; %FALSE with @saved_errno set
 */
gboolean
_gsm_process_read_stat (int      pid,
                        char    *state,
                        guint64 *start_time,
                        int     *saved_errno)
{
  char        buf[1024];
  const char *p = read_stat_fields (pid, buf, sizeof buf, saved_errno);

  if (p == NULL)
    return FALSE;
  *state = *p;

  /* Skip fields 3..21 to reach field 22. */
  for (int field = 3; field < 22; field++)
    {
      p = strchr (p, ' ');
      if (p == NULL)
        {
          *saved_errno = EINVAL;
          return FALSE;
        }
      p++;
    }
  *start_time = g_ascii_strtoull (p, NULL, 10);

  return TRUE;
}

/*
 * _gsm_process_read_group:
 * @state: (out): the state letter (R, S, Z, X, …)
 * @pgrp: (out): field 5, the process group
 *
 * Returns: %TRUE if /proc/PID/stat was read
 */
gboolean
_gsm_process_read_group (int    pid,
                         char  *state,
                         pid_t *pgrp)
{
  char        buf[1024];
  int         saved_errno;
  const char *p = read_stat_fields (pid, buf, sizeof buf, &saved_errno);

  /* State, ppid, pgrp. */
  return p != NULL && sscanf (p, "%c %*d %d", state, pgrp) == 2;
}

/*
 * _gsm_process_get_boot_id:
 *
 * Returns: (transfer none): this boot's id, or "" where the kernel does
 * not say
 */
const char *
_gsm_process_get_boot_id (void)
{
  static gsize boot_id = 0;

  if (g_once_init_enter (&boot_id))
    {
      char *contents = NULL;

      if (!g_file_get_contents ("/proc/sys/kernel/random/boot_id", &contents, NULL, NULL))
        contents = g_strdup ("");
      g_strstrip (contents);
      g_once_init_leave (&boot_id, (gsize) contents);
    }

  return (const char *) boot_id;
}

/*
 * _gsm_process_get_pid_ns:
 *
 * Returns: the inode of this process's pid namespace, or 0 where the
 *   kernel does not say
 */
guint64
_gsm_process_get_pid_ns (void)
{
  static gsize pid_ns = 0;

  if (g_once_init_enter (&pid_ns))
    {
      struct stat st;
      guint64     ino = 0;

      char    self_link[32] = "";
      ssize_t n = readlink ("/proc/self", self_link, sizeof self_link - 1);

      /* A /proc mounted for another pid namespace numbers processes its
       * own way: then no pid read in it means anything to us. */
      if (n > 0)
        self_link[n] = '\0';
      if (n > 0 && g_ascii_strtoll (self_link, NULL, 10) == (gint64) getpid () &&
          stat ("/proc/self/ns/pid", &st) == 0)
        ino = (guint64) st.st_ino;
      /* g_once_init_leave() takes no 0. */
      g_once_init_leave (&pid_ns, (gsize) ino + 1);
    }

  return (guint64) pid_ns - 1;
}

/*
 * _gsm_process_count_threads:
 *
 * Returns: the number of threads of process @pid ("Threads:" in
 *   /proc/PID/status), or 0 if unknown
 */
guint
_gsm_process_count_threads (int pid)
{
  char             path[64];
  g_autofree char *contents = NULL;
  const char      *p;

  g_snprintf (path, sizeof path, "/proc/%d/status", pid);
  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  p = strstr (contents, "\nThreads:");
  if (p == NULL)
    return 0;
  return (guint) g_ascii_strtoull (p + strlen ("\nThreads:"), NULL, 10);
}

GsmLivenessProbe *
_gsm_liveness_probe_new (const char *hostname,
                         const char *process_match)
{
  GsmLivenessProbe *probe = g_new0 (GsmLivenessProbe, 1);

  probe->hostname = g_strdup (hostname);
  probe->process_match = (process_match && *process_match) ? g_strdup (process_match) : NULL;
  probe->boot_id = _gsm_process_get_boot_id ();
  probe->pid_ns = _gsm_process_get_pid_ns ();
  probe->lock_dirfd = -1;

  return probe;
}

void
_gsm_liveness_probe_free (GsmLivenessProbe *probe)
{
  if (probe == NULL)
    return;

  if (probe->lock_dirfd >= 0)
    close (probe->lock_dirfd);
  g_free (probe->hostname);
  g_free (probe->process_match);
  g_free (probe);
}

/*
 * _gsm_liveness_probe_set_lock_dir:
 * @dirfd: the directory that holds the sessions' lock files (duplicated),
 *   or -1
 */
void
_gsm_liveness_probe_set_lock_dir (GsmLivenessProbe *probe,
                                  int               dirfd)
{
  if (probe->lock_dirfd >= 0)
    close (probe->lock_dirfd);
  probe->lock_dirfd = dirfd >= 0 ? fcntl (dirfd, F_DUPFD_CLOEXEC, 3) : -1;
}

static gboolean
cmdline_matches (int         pid,
                 const char *match)
{
  char             path[64];
  g_autofree char *contents = NULL;
  gsize            len = 0;

  g_snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
  if (!g_file_get_contents (path, &contents, &len, NULL))
    return TRUE;
  for (gsize i = 0; i < len; i++)
    if (contents[i] == '\0')
      contents[i] = ' ';
  return strstr (contents, match) != NULL;
}

static int
pidfd_open (int pid)
{
  return (int) syscall (SYS_pidfd_open, pid, 0);
}

/* Is process @pid, in @state, running? A main thread that called
 * pthread_exit() leaves the process a zombie in /proc/PID/stat while its
 * other threads run. */
static gboolean
is_running (int  pid,
            char state)
{
  return (state != 'Z' && state != 'X' && state != 'x') || _gsm_process_count_threads (pid) > 1;
}

/* Is the process we see as @pid the one that started at @start_time, and
 * running? */
static gboolean
pid_is_visible (int     pid,
                guint64 start_time)
{
  char    state = '?';
  guint64 seen = 0;
  int     saved_errno;

  return _gsm_process_read_stat (pid, &state, &seen, &saved_errno) && seen == start_time &&
         is_running (pid, state);
}

/* Whether the process (@pid, @start_time) of this pid namespace and boot
 * is alive: a proof either way. */
static GsmLiveness
probe_process (GsmLivenessProbe *probe,
               int               pid,
               guint64           start_time)
{
  char    state = '?';
  guint64 seen = 0;
  int     saved_errno = 0;
  int     pidfd;

  if (!_gsm_process_read_stat (pid, &state, &seen, &saved_errno))
    {
      /* EPERM/EACCES: it exists, but is not ours to inspect. */
      if (saved_errno != ENOENT && saved_errno != ESRCH)
        return GSM_LIVENESS_ALIVE;
      /* Gone, or hidden from us by hidepid=: the kernel tells which
       * without /proc. pidfd_open() does not signal the process. */
      pidfd = pidfd_open (pid);
      if (pidfd >= 0)
        {
          close (pidfd);
          return GSM_LIVENESS_ALIVE;
        }
      /* Without pidfd_open() (before Linux 5.3, or under valgrind), a
       * missing /proc entry means gone unless /proc hides other users'
       * processes, which shows on pid 1. */
      if (errno == ESRCH || access ("/proc/1/stat", F_OK) == 0)
        return GSM_LIVENESS_DEAD;
      return GSM_LIVENESS_ALIVE;
    }

  /* Another start time: the kernel handed the pid out again. */
  if (seen != start_time || !is_running (pid, state))
    return GSM_LIVENESS_DEAD;
  if (probe->process_match != NULL && !cmdline_matches (pid, probe->process_match))
    return GSM_LIVENESS_DEAD;
  return GSM_LIVENESS_ALIVE;
}

/* ---- proofs ------------------------------------------------------------ */

static gboolean
is_same_boot (GsmLivenessProbe *probe,
              GsmSession       *session)
{
  const char *boot_id = gsm_session_get_boot_id (session);

  return boot_id != NULL && *probe->boot_id != '\0' && strcmp (boot_id, probe->boot_id) == 0;
}

/* Does @session's pid mean the same process here as where it was
 * recorded: the same kernel boot and the same pid namespace? */
static gboolean
pid_is_meaningful_here (GsmLivenessProbe *probe,
                        GsmSession       *session,
                        gboolean          same_boot)
{
  /* probe->pid_ns is 0 also when our /proc is another namespace's. */
  if (probe->pid_ns == 0)
    return FALSE;
  if (session->pid_ns != 0)
    return same_boot && session->pid_ns == probe->pid_ns;
  /* Written without its namespace (by an earlier version, or by hand): as
   * then, by host name, and by boot id where it has one. */
  return (same_boot || gsm_session_get_boot_id (session) == NULL) &&
         g_strcmp0 (session->hostname, probe->hostname) == 0;
}

/*
 * _gsm_liveness_probe_check:
 *
 * Decides whether @session's process is alive. Never sends a signal.
 *
 * %GSM_LIVENESS_DEAD is a proof, made in this kernel: the session's
 * liveness lock is free while the session ran on this kernel (same boot
 * id), or its pid, in the same pid namespace and boot, is gone or belongs
 * to another process. %GSM_LIVENESS_ALIVE: its lock is held, or its
 * process is visible here. Anything else is %GSM_LIVENESS_UNVERIFIABLE
 * (unverifiable): another host, another kernel (a sandbox with a boot id
 * of its own, or this host before a reboot), another pid namespace without
 * a lock to check, or no start time recorded.
 */
static GsmLiveness
probe_check (GsmLivenessProbe *probe,
             GsmSession       *session,
             gboolean          tell_alive)
{
  gboolean same_boot = is_same_boot (probe, session);
  int      pid = gsm_session_get_pid (session);
  guint64  start_time = gsm_session_get_start_time (session);

  if (start_time != 0 && pid_is_meaningful_here (probe, session, same_boot))
    return probe_process (probe, pid, start_time);

  /* The pid proves nothing here: the lock may. */
  switch (_gsm_liveness_lock_check (probe->lock_dirfd, session->lock_file))
    {
    case GSM_LIVENESS_LOCK_HELD:
      return GSM_LIVENESS_ALIVE;
    case GSM_LIVENESS_LOCK_FREE:
      /* Released by this kernel, or held in another one. */
      if (same_boot)
        return GSM_LIVENESS_DEAD;
      break;
    case GSM_LIVENESS_LOCK_NONE:
    default:
      break;
    }
  /* Not a proof, but never take a process we can see for dead. */
  if (tell_alive && start_time != 0 && pid > 0 && pid_is_visible (pid, start_time))
    return GSM_LIVENESS_ALIVE;
  return GSM_LIVENESS_UNVERIFIABLE;
}

GsmLiveness
_gsm_liveness_probe_check (GsmLivenessProbe *probe,
                           GsmSession       *session)
{
  return probe_check (probe, session, TRUE);
}

/*
 * _gsm_liveness_probe_check_proof:
 *
 * Like _gsm_liveness_probe_check(), but answers
 * %GSM_LIVENESS_UNVERIFIABLE wherever no proof applies, without looking
 * for the process in /proc (a read per session of another host or boot).
 * That answer does not change for as long as the entry does not.
 */
GsmLiveness
_gsm_liveness_probe_check_proof (GsmLivenessProbe *probe,
                                 GsmSession       *session)
{
  return probe_check (probe, session, FALSE);
}

/*
 * _gsm_liveness_probe_open_pidfd:
 *
 * For a daemon that wants to know at once when a session's process exits:
 * the kernel makes the descriptor readable then (g_unix_fd_add()).
 *
 * Returns: a pidfd of @session's process, if its pid means that process
 *   here (the same boot and pid namespace) and it is running; else -1
 */
int
_gsm_liveness_probe_open_pidfd (GsmLivenessProbe *probe,
                                GsmSession       *session)
{
  int     pid = gsm_session_get_pid (session);
  guint64 start_time = gsm_session_get_start_time (session);
  int     pidfd;

  if (start_time == 0 || pid <= 0 ||
      !pid_is_meaningful_here (probe, session, is_same_boot (probe, session)))
    return -1;

  /* The pidfd pins the pid: then make sure it is the session's process,
   * not a successor that took the pid. */
  pidfd = pidfd_open (pid);
  if (pidfd >= 0 && !pid_is_visible (pid, start_time))
    {
      close (pidfd);
      return -1;
    }
  return pidfd;
}
