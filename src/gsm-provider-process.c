/* gsm-provider-process.c: running a provider command
 *
 * A command runs with GSubprocess (never through a shell), in a process
 * group of its own so that a timeout or a cancellation kills the command
 * and everything it started. The command is killed when the thread that
 * started it dies (PR_SET_PDEATHSIG), so a reaper killed mid-deletion does
 * not leave it running; what it started itself may outlive it, in its
 * process group, which a reaper taking over waits for
 * (_gsm_provider_group_is_gone()). Both are set by the helper
 * gsm-provider-exec, started with posix_spawn(), or without it by a child
 * setup function after a fork().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gsm-process-private.h"
#include "gsm-provider-process-private.h"

/* How long to wait for the output pipes to close once the command was
 * killed (a descendant that left the process group may hold them). */
#define DRAIN_TIMEOUT_MS 2000

typedef struct
{
  GMainContext *context;
  GSubprocess  *process;
  pid_t         pgid;
  gint          finished;  /* atomic */
  gint          timed_out; /* atomic */
  gint          cancelled; /* atomic */
  GCancellable *drain;     /* cancels reading the pipes after a kill */
  GBytes       *out;
  GBytes       *err;
  GError       *error;
  gboolean      done;
  gboolean      draining;
} Run;

/*
 * The helper that starts a command in its own group with a parent-death
 * signal (gsm-provider-exec), so that it can be started with posix_spawn():
 * a fork() of a process holding a large registry copies its page tables,
 * and then every page it writes faults once (tens of milliseconds per
 * command with 50 000 entries, when a reaper starts thousands).
 * $GSM_PROVIDER_EXEC, else the installed one; %NULL if there is none:
 * then a child setup function does the same after a fork().
 */
static const char *
exec_helper (void)
{
  static gsize helper = 0;

  if (g_once_init_enter (&helper))
    {
      const char *env = g_getenv ("GSM_PROVIDER_EXEC");
      const char *path = env && *env ? env : GSM_LIBEXECDIR "/gsm-provider-exec";

      g_once_init_leave (&helper, (gsize) g_strdup (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE)
                                                        ? path
                                                        : ""));
    }

  return *(const char *) helper ? (const char *) helper : NULL;
}

static void
child_setup (gpointer user_data)
{
  pid_t parent = GPOINTER_TO_INT (user_data);

  /* A group of its own, so that a kill reaches everything it started. */
  setpgid (0, 0);
  /* Killed when the thread that started it dies: a command must not run
   * on when nobody will record what it did. If that already happened
   * between the fork and now, do not start. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (127);
}

static gboolean
drain_timeout_cb (gpointer data)
{
  Run *run = data;

  g_cancellable_cancel (run->drain);
  return G_SOURCE_REMOVE;
}

static void
kill_group (Run *run)
{
  /* Never kill (-0) or (-1): that would be our own group, or everyone. */
  if (run->pgid > 1 && !g_atomic_int_get (&run->finished))
    kill (-run->pgid, SIGKILL);
}

/* After a kill, give the pipes a bounded time to close. */
static void
start_drain (Run *run)
{
  GSource *source;

  if (run->draining)
    return;
  run->draining = TRUE;
  source = g_timeout_source_new (DRAIN_TIMEOUT_MS);
  g_source_set_callback (source, drain_timeout_cb, run, NULL);
  g_source_attach (source, run->context);
  g_source_unref (source);
}

static gboolean
timeout_cb (gpointer data)
{
  Run *run = data;

  g_atomic_int_set (&run->timed_out, 1);
  kill_group (run);
  start_drain (run);

  return G_SOURCE_REMOVE;
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      data)
{
  Run *run = data;

  /* Any thread: only async-safe work, then wake the loop. */
  g_atomic_int_set (&run->cancelled, 1);
  kill_group (run);
  g_main_context_wakeup (run->context);
}

static void
communicate_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      data)
{
  Run *run = data;

  g_subprocess_communicate_finish (G_SUBPROCESS (object), result, &run->out, &run->err,
                                   &run->error);
  run->done = TRUE;
}

void
_gsm_provider_ran_clear (GsmProviderRan *ran)
{
  g_clear_pointer (&ran->out, g_bytes_unref);
  g_clear_pointer (&ran->err, g_bytes_unref);
  g_clear_error (&ran->spawn_error);
}

/* Starts @argv in a group of its own, through the helper if there is one,
 * and tells @spawned; %FALSE with @error if it could not be started. */
static gboolean
spawn_in_group (Run                   *run,
                const char *const     *argv,
                GsmProviderSpawnedFunc spawned,
                gpointer               user_data,
                GError               **error)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GPtrArray) spawn_argv = NULL;
  const char *helper = exec_helper ();

  if (helper != NULL)
    {
      /* GLib spawns without fork() only when the child inherits the
       * descriptors; the helper closes them. */
      launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                            G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                            G_SUBPROCESS_FLAGS_INHERIT_FDS);
      spawn_argv = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (spawn_argv, g_strdup (helper));
      g_ptr_array_add (spawn_argv, g_strdup_printf ("%d", (int) getpid ()));
      for (guint i = 0; argv[i]; i++)
        g_ptr_array_add (spawn_argv, g_strdup (argv[i]));
      g_ptr_array_add (spawn_argv, NULL);
    }
  else
    {
      launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                            G_SUBPROCESS_FLAGS_STDERR_PIPE);
      g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (getpid ()),
                                             NULL);
    }

  run->process = g_subprocess_launcher_spawnv (launcher,
                                               spawn_argv ? (const char *const *) spawn_argv->pdata
                                                          : argv,
                                               error);
  if (run->process == NULL)
    return FALSE;

  /* The command leads its own process group. If it already exited (and
   * was reaped), there is no identifier and nothing left to kill. */
  if (g_subprocess_get_identifier (run->process) != NULL)
    run->pgid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (run->process), NULL, 10);
  /* The helper makes its group too; whoever comes first wins, so that the
   * group exists before anything may kill it. */
  if (helper != NULL && run->pgid > 1)
    setpgid (run->pgid, run->pgid);
  if (spawned != NULL && run->pgid > 1)
    {
      char    state;
      guint64 start_time = 0;
      int     saved_errno;

      /* Our child, not yet waited for: its entry in /proc is still there. */
      if (!_gsm_process_read_stat (run->pgid, &state, &start_time, &saved_errno))
        start_time = 0;
      spawned (run->pgid, start_time, user_data);
    }

  return TRUE;
}

/* Reads the command's output until it closed it, or until a timeout or a
 * cancellation killed it and its pipes were drained. */
static void
wait_for_output (Run          *run,
                 double        timeout,
                 GCancellable *cancellable)
{
  GSource *timeout_source = NULL;
  gulong   cancel_id = 0;

  run->drain = g_cancellable_new ();
  if (timeout > 0)
    {
      timeout_source = g_timeout_source_new ((guint) MIN (timeout * 1000, G_MAXUINT));
      g_source_set_callback (timeout_source, timeout_cb, run, NULL);
      g_source_attach (timeout_source, run->context);
    }
  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), run, NULL);

  g_subprocess_communicate_async (run->process, NULL, run->drain, communicate_cb, run);
  while (!run->done)
    {
      g_main_context_iteration (run->context, TRUE);
      if (g_atomic_int_get (&run->cancelled))
        start_drain (run);
    }

  if (run->error != NULL)
    {
      /* The pipes were abandoned: the command itself is dead or dying. */
      kill_group (run);
      g_subprocess_wait (run->process, NULL, NULL);
    }
  g_atomic_int_set (&run->finished, 1);

  g_cancellable_disconnect (cancellable, cancel_id);
  if (timeout_source != NULL)
    {
      g_source_destroy (timeout_source);
      g_source_unref (timeout_source);
    }
  /* Let pending callbacks of the private context go before it does. */
  while (g_main_context_iteration (run->context, FALSE))
    ;
}

void
_gsm_provider_run_process (const char *const     *argv,
                           double                 timeout,
                           GsmProviderSpawnedFunc spawned,
                           gpointer               user_data,
                           GCancellable          *cancellable,
                           GsmProviderRan        *ran)
{
  Run run = {
    0,
  };
  gint64 started;

  memset (ran, 0, sizeof *ran);
  ran->exit_status = -1;

  run.context = g_main_context_new ();
  g_main_context_push_thread_default (run.context);

  started = g_get_monotonic_time ();
  if (!spawn_in_group (&run, argv, spawned, user_data, &ran->spawn_error))
    {
      g_main_context_pop_thread_default (run.context);
      g_main_context_unref (run.context);
      return;
    }
  wait_for_output (&run, timeout, cancellable);
  ran->duration = (g_get_monotonic_time () - started) / (double) G_USEC_PER_SEC;

  g_main_context_pop_thread_default (run.context);
  g_main_context_unref (run.context);

  if (g_subprocess_get_if_exited (run.process))
    ran->exit_status = g_subprocess_get_exit_status (run.process);
  else if (g_subprocess_get_if_signaled (run.process))
    ran->term_signal = g_subprocess_get_term_sig (run.process);
  ran->cancelled = g_atomic_int_get (&run.cancelled);
  ran->timed_out = g_atomic_int_get (&run.timed_out);
  ran->out = g_steal_pointer (&run.out);
  ran->err = g_steal_pointer (&run.err);

  g_clear_error (&run.error);
  g_clear_object (&run.drain);
  g_clear_object (&run.process);
}

gboolean
_gsm_provider_group_is_gone (int     pid,
                             guint64 start_time)
{
  g_autoptr (GDir) proc = NULL;
  const char *name;
  char        state = '?';
  guint64     now_start = 0;
  int         saved_errno = 0;

  if (pid < 2)
    return FALSE;

  if (_gsm_process_read_stat (pid, &state, &now_start, &saved_errno))
    {
      if (start_time != 0 && now_start != start_time)
        return TRUE; /* the pid was handed out again: the group is gone */
      if (state != 'Z' && state != 'X')
        return FALSE; /* the command itself still runs */
    }
  else if (saved_errno != ENOENT && saved_errno != ESRCH)
    return FALSE; /* cannot tell */

  /* The first process is gone (or a zombie): anything left in its group? */
  proc = g_dir_open ("/proc", 0, NULL);
  if (proc == NULL)
    return FALSE;
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      pid_t pgrp;
      char  member_state;

      if (!g_ascii_isdigit (*name) || atoi (name) == pid)
        continue;
      /* The group of a command is its first process's pid, which the
       * kernel does not hand out again while any member lives. A zombie
       * does nothing more: it only waits for its parent. */
      if (_gsm_process_read_group (atoi (name), &member_state, &pgrp) && pgrp == pid &&
          member_state != 'Z' && member_state != 'X')
        return FALSE;
    }

  return TRUE;
}
