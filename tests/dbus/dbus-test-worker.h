/* dbus-test-worker.h: session processes for the D-Bus tests
 *
 * Kept apart from dbus-test-util.h so that tests with worker helpers of
 * their own (the reaper's) can use the bus helpers alone.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "dbus-test-util.h"

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* g_subprocess_newv(), but the child is killed if the test dies (an
 * assertion aborts it): no bus, daemon or session outlives a failed run. */
static G_GNUC_UNUSED GSubprocess *
spawn (GSubprocessFlags   flags,
       const char *const *argv,
       GError           **error)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  return g_subprocess_launcher_spawnv (launcher, argv, error);
}

typedef struct
{
  gboolean done;
  char    *line;
} LineState;

static void
line_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LineState *state = user_data;

  state->line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                           NULL, NULL);
  state->done = TRUE;
}

/* Reads one line of @stream, running the main loop meanwhile; NULL on
 * end of file or if nothing came within TEST_WAIT_MS. */
static G_GNUC_UNUSED char *
read_line (GDataInputStream *stream)
{
  LineState     state = { 0 };
  GCancellable *cancellable = g_cancellable_new ();

  g_data_input_stream_read_line_async (stream, G_PRIORITY_DEFAULT, cancellable, line_done_cb, &state);
  if (!wait_for_flag (&state.done))
    {
      g_cancellable_cancel (cancellable);
      while (!state.done)
        g_main_context_iteration (NULL, TRUE);
    }
  g_object_unref (cancellable);
  return state.line;
}

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  char             *session_id;
  int               pid;
} Worker;

static G_GNUC_UNUSED void
worker_free (Worker *w)
{
  if (w == NULL)
    return;
  if (w->process != NULL)
    {
      g_subprocess_force_exit (w->process);
      g_subprocess_wait (w->process, NULL, NULL);
    }
  g_clear_object (&w->process);
  g_clear_object (&w->out);
  g_free (w->session_id);
  g_free (w);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Worker, worker_free)

/* Starts `$GSM_TEST_WORKER register VM_ID` (a session that registers a VM
 * and lives until killed) and waits for its READY line. */
static G_GNUC_UNUSED Worker *
worker_start (const char *vm_id)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  const char      *path = g_getenv ("GSM_TEST_WORKER");
  Worker          *w = g_new0 (Worker, 1);
  g_auto (GStrv) fields = NULL;

  g_assert_nonnull (path);
  w->process = spawn (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                      (const char *[]){ path, "register", vm_id, "zone-t", NULL }, &error);
  g_assert_no_error (error);
  w->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (w->process));
  line = read_line (w->out);
  g_assert_nonnull (line);
  fields = g_strsplit (line, " ", 3);
  g_assert_cmpstr (fields[0], ==, "READY");
  w->session_id = g_strdup (fields[1]);
  w->pid = atoi (fields[2]);
  return w;
}
