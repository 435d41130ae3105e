/* reaper-test-util.h: a fake cloud and worker processes for the reaper tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gsm.h>

typedef struct
{
  char *root;    /* temp dir of the test */
  char *runtime; /* GSM_RUNTIME_DIR */
  char *cloud;   /* FAKE_CLOUD_DIR */
  char *command; /* GSM_PROVIDER_COMMAND */
} Fixture;

static inline const char *
fake_provider_path (void)
{
  return g_test_get_filename (G_TEST_DIST, "reaper", "fake-provider.sh", NULL);
}

static inline void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *vms = NULL;

  f->root = g_dir_make_tmp ("gsm-reaper-XXXXXX", &error);
  g_assert_no_error (error);
  f->runtime = g_build_filename (f->root, "run", NULL);
  f->cloud = g_build_filename (f->root, "cloud", NULL);
  vms = g_build_filename (f->cloud, "vms", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->runtime, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (vms, 0700), ==, 0);
  f->command = g_strdup_printf ("/bin/sh %s delete {vm_id} {zone} {session_id}", fake_provider_path ());

  g_setenv ("GSM_RUNTIME_DIR", f->runtime, TRUE);
  g_setenv ("FAKE_CLOUD_DIR", f->cloud, TRUE);
  g_setenv ("GSM_PROVIDER_COMMAND", f->command, TRUE);
  g_setenv ("GSM_PROVIDER_TIMEOUT", "20", TRUE);
  g_setenv ("GSM_REAP_GRACE", "0", TRUE);
  g_setenv ("GSM_REAP_BACKOFF", "0", TRUE);
  g_unsetenv ("GSM_REAP_MAX_BACKOFF");
  g_unsetenv ("GSM_REAP_CONCURRENCY");
  g_setenv ("GSM_CONFIG_FILE", "/nonexistent/gsm-test-config.ini", TRUE);
  g_unsetenv ("GSM_PROVIDER");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_EXIT_CODE");
  g_setenv ("GSM_PROVIDER_NOT_FOUND_PATTERN", "was not found", TRUE);
  g_unsetenv ("GSM_SESSION_EXPIRY");
  g_unsetenv ("GSM_HOSTNAME");
}

static inline void
rm_rf (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          rm_rf (child);
        }
    }
  g_remove (path);
}

static inline void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  rm_rf (f->root);
  g_free (f->root);
  g_free (f->runtime);
  g_free (f->cloud);
  g_free (f->command);
}

/* The fake cloud ------------------------------------------------------- */

static inline void
cloud_add_vm (Fixture    *f,
              const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->cloud, "vms", vm_id, NULL);

  g_assert_true (g_file_set_contents (path, "running\n", -1, NULL));
}

static inline gboolean
cloud_has_vm (Fixture    *f,
              const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->cloud, "vms", vm_id, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

static inline void
cloud_set_mode (Fixture    *f,
                const char *mode)
{
  g_autofree char *path = g_build_filename (f->cloud, "mode", NULL);

  g_assert_true (g_file_set_contents (path, mode, -1, NULL));
}

static inline void
cloud_set_hold (Fixture *f,
                gboolean hold)
{
  g_autofree char *path = g_build_filename (f->cloud, "hold", NULL);

  if (hold)
    g_assert_true (g_file_set_contents (path, "", -1, NULL));
  else
    g_remove (path);
}

/* The call waits @seconds (in a child of its process group) before it
 * deletes; 0 for none. */
static inline void
cloud_set_delay (Fixture *f,
                 double   seconds)
{
  g_autofree char *path = g_build_filename (f->cloud, "delay", NULL);
  char             text[G_ASCII_DTOSTR_BUF_SIZE];

  if (seconds > 0)
    g_assert_true (g_file_set_contents (path, g_ascii_dtostr (text, sizeof text, seconds), -1, NULL));
  else
    g_remove (path);
}

/* The lines of calls.log, in the order they were appended. */
static inline char **
cloud_log (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);
  g_autofree char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return g_new0 (char *, 1);
  return g_strsplit (g_strchomp (contents), "\n", -1);
}

/* The most calls that ran at once: each runs from its "call" line to its
 * "end" line (appends are ordered as they happened). */
static inline guint
cloud_max_overlap (Fixture *f)
{
  g_auto (GStrv) lines = cloud_log (f);
  guint running = 0, max = 0;

  for (guint i = 0; lines[i]; i++)
    {
      if (g_str_has_prefix (lines[i], "call "))
        {
          running++;
          max = MAX (max, running);
        }
      else if (g_str_has_prefix (lines[i], "end "))
        {
          g_assert_cmpuint (running, >, 0);
          running--;
        }
    }
  return max;
}

/* How many lines of calls.log start with "@what @vm_id ". */
static inline guint
cloud_count (Fixture    *f,
             const char *what,
             const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *prefix = g_strdup_printf ("%s %s", what, vm_id);
  g_auto (GStrv) lines = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix) &&
        (lines[i][strlen (prefix)] == ' ' || lines[i][strlen (prefix)] == '\0'))
      n++;

  return n;
}

/* Waits (at most 10 s) until calls.log has a "@what @vm_id" line. */
static inline void
cloud_wait_for (Fixture    *f,
                const char *what,
                const char *vm_id)
{
  for (int i = 0; i < 1000 && cloud_count (f, what, vm_id) == 0; i++)
    g_usleep (10000);
  g_assert_cmpuint (cloud_count (f, what, vm_id), >, 0);
}

/* Waits (at most 10 s) until calls.log has a "call @vm_id" line. */
static inline void
cloud_wait_for_call (Fixture    *f,
                     const char *vm_id)
{
  cloud_wait_for (f, "call", vm_id);
}

/* A pass over @orphans (%NULL: every orphan) that reaps and fails as
 * many as expected. */
static inline void
reap_pass (GsmReaper *reaper,
           GPtrArray *orphans,
           guint      expect_reaped,
           guint      expect_failed)
{
  g_autoptr (GError) error = NULL;
  guint reaped = 99, failed = 99;

  g_assert_true (gsm_reaper_reap_sync (reaper, orphans, &reaped, &failed, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (reaped, ==, expect_reaped);
  g_assert_cmpuint (failed, ==, expect_failed);
}

/* Worker processes ------------------------------------------------------- */

typedef struct
{
  GSubprocess *process;
  char        *session_id;
  int          pid;
} Worker;

/* Workers die with the test, even when it fails. */
static inline void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static inline Worker *
worker_start_env (const char        *vm_id,
                  const char *const *extra_env)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree char *line = NULL;
  g_auto (GStrv) parts = NULL;
  const char *exe = g_getenv ("GSM_TEST_WORKER");
  Worker     *w = g_new0 (Worker, 1);

  g_assert_nonnull (exe);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDIN_PIPE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    g_subprocess_launcher_setenv (launcher, extra_env[i], extra_env[i + 1], TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  w->process = g_subprocess_launcher_spawn (launcher, &error, exe, "register", vm_id, "zone-a", NULL);
  g_assert_no_error (error);

  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (w->process));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  if (!g_str_has_prefix (line, "READY "))
    g_error ("worker for %s said: %s", vm_id, line);
  parts = g_strsplit (line, " ", 3);
  w->session_id = g_strdup (parts[1]);
  w->pid = atoi (parts[2]);

  return w;
}

static inline Worker *
worker_start (const char *vm_id)
{
  return worker_start_env (vm_id, NULL);
}

static inline void
worker_kill (Worker *w)
{
  g_autoptr (GError) error = NULL;

  g_subprocess_send_signal (w->process, SIGKILL);
  g_subprocess_wait (w->process, NULL, &error);
  g_assert_no_error (error);
}

static inline void
worker_free (Worker *w)
{
  if (w == NULL)
    return;
  if (g_subprocess_get_identifier (w->process) != NULL)
    worker_kill (w);
  g_object_unref (w->process);
  g_free (w->session_id);
  g_free (w);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Worker, worker_free)

/* An orphan VM: @vm_id in the fake cloud, registered by a worker that is
 * then killed. Returns the dead worker (for its session id). */
static inline Worker *
worker_start_orphan (Fixture    *f,
                     const char *vm_id)
{
  Worker *w;

  cloud_add_vm (f, vm_id);
  w = worker_start (vm_id);
  worker_kill (w);
  return w;
}

/* Runs gsmctl with @argv (NULL-terminated after "gsmctl"); returns its
 * exit status and its output in @out. */
static inline int
run_gsmctl (char             **out,
            const char *const *extra_env,
            ...)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;
  const char      *arg;
  va_list          ap;

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSMCTL"));
  va_start (ap, extra_env);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    g_subprocess_launcher_setenv (launcher, extra_env[i], extra_env[i + 1], TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, &err, &error);
  g_assert_no_error (error);
  if (err && *err)
    g_test_message ("gsmctl stderr: %s", err);

  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}
