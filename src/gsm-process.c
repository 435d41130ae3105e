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
 * Pid verdicts are cached per (pid, start time). A process found alive is
 * pinned with a pidfd that sits in an epoll set; the kernel makes it
 * readable when the process exits, so checking N live sessions again
 * costs one epoll_wait() and no /proc read. A dead (pid, start time) stays
 * dead forever, so that verdict is cached too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gsm-liveness-lock-private.h"
#include "gsm-process-private.h"
#include "gsm-session-private.h"

#ifndef SYS_pidfd_open
# define SYS_pidfd_open 434
#endif

/* Keep well below the usual soft limit of 1024 descriptors. */
#define MAX_PIDFDS 512
#define MAX_DEAD_CACHE 4096

typedef struct
{
  int         pid;
  guint64     start_time;
  GsmLiveness verdict;
  int         pidfd;
} CacheEntry;

struct _GsmLivenessProbe
{
  GMutex      mutex;
  char       *hostname;
  const char *boot_id;        /* ours, or "" */
  guint64     pid_ns;         /* ours, or 0 */
  int         lock_dirfd;     /* where sessions' lock files are, or -1 */
  char       *process_match;
  int         epfd;
  guint       n_pidfds;
  guint       n_probed;       /* processes looked up in /proc, for tests */
  guint       n_dead;
  GHashTable *cache;   /* CacheEntry* → itself, keyed by (pid, start_time) */
};

static guint
cache_hash (gconstpointer p)
{
  const CacheEntry *e = p;

  return (guint) e->pid ^ (guint) (e->start_time * 2654435761u);
}

static gboolean
cache_equal (gconstpointer a,
             gconstpointer b)
{
  const CacheEntry *x = a, *y = b;

  return x->pid == y->pid && x->start_time == y->start_time;
}

static void
cache_entry_free (gpointer p)
{
  CacheEntry *e = p;

  if (e->pidfd >= 0)
    close (e->pidfd);
  g_free (e);
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
  char path[64];
  char buf[1024];
  const char *p;
  ssize_t n;
  int fd;

  g_snprintf (path, sizeof path, "/proc/%d/stat", pid);
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      *saved_errno = errno;
      return FALSE;
    }
  n = read (fd, buf, sizeof buf - 1);
  *saved_errno = errno;
  close (fd);
  if (n <= 0)
    {
      if (n == 0)
        *saved_errno = ESRCH;
      return FALSE;
    }
  buf[n] = '\0';

  /* The command name (field 2) may hold spaces and parentheses: the rest
   * starts after the last ')'. */
  p = strrchr (buf, ')');
  if (p == NULL || p[1] != ' ' || p[2] == '\0')
    {
      *saved_errno = EINVAL;
      return FALSE;
    }
  p += 2;
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
      guint64 ino = 0;

      char self_link[32] = "";
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
  char path[64];
  g_autofree char *contents = NULL;
  const char *p;

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

  g_mutex_init (&probe->mutex);
  probe->hostname = g_strdup (hostname);
  probe->process_match = (process_match && *process_match) ? g_strdup (process_match) : NULL;
  probe->boot_id = _gsm_process_get_boot_id ();
  probe->pid_ns = _gsm_process_get_pid_ns ();
  probe->lock_dirfd = -1;
  probe->epfd = epoll_create1 (EPOLL_CLOEXEC);
  probe->cache = g_hash_table_new_full (cache_hash, cache_equal, cache_entry_free, NULL);

  return probe;
}

void
_gsm_liveness_probe_free (GsmLivenessProbe *probe)
{
  if (probe == NULL)
    return;

  g_hash_table_unref (probe->cache);
  if (probe->epfd >= 0)
    close (probe->epfd);
  if (probe->lock_dirfd >= 0)
    close (probe->lock_dirfd);
  g_free (probe->hostname);
  g_free (probe->process_match);
  g_mutex_clear (&probe->mutex);
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

/*
 * _gsm_liveness_probe_get_fd:
 *
 * A descriptor that becomes readable when a process the probe found
 * alive exits; call _gsm_liveness_probe_dispatch() then. For a main loop
 * source (g_unix_fd_add()) in a daemon that wants to know at once.
 */
int
_gsm_liveness_probe_get_fd (GsmLivenessProbe *probe)
{
  return probe->epfd;
}

static void
mark_dead_locked (GsmLivenessProbe *probe,
                  CacheEntry       *e)
{
  if (e->pidfd >= 0)
    {
      epoll_ctl (probe->epfd, EPOLL_CTL_DEL, e->pidfd, NULL);
      close (e->pidfd);
      e->pidfd = -1;
      probe->n_pidfds--;
    }
  if (e->verdict != GSM_LIVENESS_DEAD)
    probe->n_dead++;
  e->verdict = GSM_LIVENESS_DEAD;
}

static guint
dispatch_locked (GsmLivenessProbe *probe)
{
  struct epoll_event events[64];
  guint total = 0;
  int n;

  if (probe->n_pidfds == 0)
    return 0;

  do
    {
      n = epoll_wait (probe->epfd, events, G_N_ELEMENTS (events), 0);
      for (int i = 0; i < n; i++)
        mark_dead_locked (probe, events[i].data.ptr);
      if (n > 0)
        total += (guint) n;
    }
  while (n == G_N_ELEMENTS (events));

  return total;
}

/*
 * _gsm_liveness_probe_dispatch:
 *
 * Records the exits the kernel reported since the last call.
 *
 * Returns: the number of processes found dead
 */
guint
_gsm_liveness_probe_dispatch (GsmLivenessProbe *probe)
{
  guint n;

  g_mutex_lock (&probe->mutex);
  n = dispatch_locked (probe);
  g_mutex_unlock (&probe->mutex);

  return n;
}

guint
_gsm_liveness_probe_get_n_opened (GsmLivenessProbe *probe)
{
  return probe->n_pidfds;
}

/* How many times a process was looked up in /proc (tests). */
guint
_gsm_liveness_probe_get_n_probed (GsmLivenessProbe *probe)
{
  guint n;

  g_mutex_lock (&probe->mutex);
  n = probe->n_probed;
  g_mutex_unlock (&probe->mutex);

  return n;
}

static gboolean
cmdline_matches (int         pid,
                 const char *match,
                 gboolean   *readable)
{
  char path[64];
  g_autofree char *contents = NULL;
  gsize len = 0;

  g_snprintf (path, sizeof path, "/proc/%d/cmdline", pid);
  if (!g_file_get_contents (path, &contents, &len, NULL))
    {
      *readable = FALSE;
      return TRUE;
    }
  *readable = TRUE;
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

/* Looks at the process afresh. Called with the mutex held. */
static GsmLiveness
probe_process (GsmLivenessProbe *probe,
               CacheEntry       *e,
               gboolean         *cacheable)
{
  char state = '?';
  guint64 start_time = 0;
  int saved_errno = 0;
  int pidfd;

  *cacheable = FALSE;
  probe->n_probed++;

  if (!_gsm_process_read_stat (e->pid, &state, &start_time, &saved_errno))
    {
      if (saved_errno == ENOENT || saved_errno == ESRCH)
        {
          /* Gone, or hidden from us by hidepid=: the kernel tells which
           * without /proc. pidfd_open() does not signal the process. */
          pidfd = pidfd_open (e->pid);
          if (pidfd >= 0)
            {
              close (pidfd);
              return GSM_LIVENESS_ALIVE;
            }
          /* Without pidfd_open() (before Linux 5.3, or under valgrind),
           * a missing /proc entry means gone unless /proc hides other
           * users' processes, which shows on pid 1. */
          if (errno == ESRCH || access ("/proc/1/stat", F_OK) == 0)
            {
              *cacheable = TRUE;
              return GSM_LIVENESS_DEAD;
            }
          return GSM_LIVENESS_ALIVE;
        }
      /* EPERM/EACCES: it exists, but is not ours to inspect. */
      return GSM_LIVENESS_ALIVE;
    }

  if (start_time != e->start_time)
    {
      *cacheable = TRUE;   /* the pid was reused */
      return GSM_LIVENESS_DEAD;
    }

  if (state == 'Z' || state == 'X' || state == 'x')
    {
      /* A main thread that called pthread_exit() leaves the process a
       * zombie in /proc/PID/stat while its other threads run. */
      if (_gsm_process_count_threads (e->pid) > 1)
        return GSM_LIVENESS_ALIVE;
      *cacheable = TRUE;
      return GSM_LIVENESS_DEAD;
    }

  if (probe->process_match != NULL)
    {
      gboolean readable;

      if (!cmdline_matches (e->pid, probe->process_match, &readable))
        {
          *cacheable = TRUE;
          return GSM_LIVENESS_DEAD;
        }
    }

  /* Alive. Pin it with a pidfd, then make sure the pidfd is the process we
   * just looked at and not a successor that took the pid in between. */
  if (probe->epfd >= 0 && probe->n_pidfds < MAX_PIDFDS)
    {
      pidfd = pidfd_open (e->pid);
      if (pidfd >= 0)
        {
          guint64 again = 0;

          if (_gsm_process_read_stat (e->pid, &state, &again, &saved_errno) &&
              again == e->start_time)
            {
              struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };

              if (epoll_ctl (probe->epfd, EPOLL_CTL_ADD, pidfd, &ev) == 0)
                {
                  e->pidfd = pidfd;
                  probe->n_pidfds++;
                  *cacheable = TRUE;
                  return GSM_LIVENESS_ALIVE;
                }
            }
          close (pidfd);
        }
    }

  return GSM_LIVENESS_ALIVE;
}

/* ---- proofs ------------------------------------------------------------ */

/* Is the process we see as @pid the one that started at @start_time, and
 * not a zombie? (A process whose main thread exited while others run
 * shows as a zombie too.) */
static gboolean
pid_is_visible (int     pid,
                guint64 start_time)
{
  char state = '?';
  guint64 seen = 0;
  int saved_errno;

  if (!_gsm_process_read_stat (pid, &state, &seen, &saved_errno) || seen != start_time)
    return FALSE;
  return (state != 'Z' && state != 'X' && state != 'x') || _gsm_process_count_threads (pid) > 1;
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
 * Verdicts of pinned processes are as of the last
 * _gsm_liveness_probe_dispatch(): call it once before a batch of checks.
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
  CacheEntry key, *e;
  const char *boot_id = gsm_session_get_boot_id (session);
  gboolean same_boot, cacheable;
  GsmLiveness verdict;

  same_boot = boot_id != NULL && *probe->boot_id != '\0' && strcmp (boot_id, probe->boot_id) == 0;
  key.pid = gsm_session_get_pid (session);
  key.start_time = gsm_session_get_start_time (session);

  if (key.start_time == 0 || !pid_is_meaningful_here (probe, session, same_boot))
    {
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
      if (tell_alive && key.start_time != 0 && key.pid > 0 &&
          pid_is_visible (key.pid, key.start_time))
        return GSM_LIVENESS_ALIVE;
      return GSM_LIVENESS_UNVERIFIABLE;
    }

  g_mutex_lock (&probe->mutex);

  e = g_hash_table_lookup (probe->cache, &key);
  if (e != NULL)
    {
      verdict = e->verdict;
      g_mutex_unlock (&probe->mutex);
      return verdict;
    }

  e = g_new (CacheEntry, 1);
  *e = key;
  e->pidfd = -1;
  e->verdict = probe_process (probe, e, &cacheable);
  verdict = e->verdict;

  if (cacheable)
    {
      if (verdict == GSM_LIVENESS_DEAD && ++probe->n_dead > MAX_DEAD_CACHE)
        {
          GHashTableIter iter;
          CacheEntry *old;

          g_hash_table_iter_init (&iter, probe->cache);
          while (g_hash_table_iter_next (&iter, (gpointer *) &old, NULL))
            if (old->verdict == GSM_LIVENESS_DEAD)
              g_hash_table_iter_remove (&iter);
          probe->n_dead = 1;
        }
      g_hash_table_add (probe->cache, e);
    }
  else
    cache_entry_free (e);

  g_mutex_unlock (&probe->mutex);

  return verdict;
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
