/* test-common.h: helpers shared by the core tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "gsm-file-registry-private.h"
#include "gsm-process-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"
#include "gsm.h"

/* A fresh runtime directory and a fresh default manager in it. */
typedef struct
{
  char *dir;
} Fixture;

static inline void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  GError *error = NULL;

  f->dir = g_dir_make_tmp ("gsm-test-XXXXXX", &error);
  g_assert_no_error (error);
  g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
  g_setenv ("GSM_DURABLE", "0", TRUE);
  g_unsetenv ("GSM_FILE_PREFIX");
  g_unsetenv ("GSM_SESSION_EXPIRY");
  g_unsetenv ("GSM_PROCESS_MATCH");
  _gsm_session_manager_reset_for_testing ();
}

static inline void
remove_tree (const char *dir)
{
  GDir       *d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        remove_tree (path);
      else
        g_unlink (path);
    }
  g_dir_close (d);
  g_rmdir (dir);
}

static inline void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  /* Let idle callbacks that hold references run. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  remove_tree (f->dir);
  g_free (f->dir);
}

static inline char *
fixture_path (Fixture    *f,
              const char *name)
{
  return g_build_filename (f->dir, name, NULL);
}

/* Parses a file of the runtime directory; asserts it is a JSON object. */
static inline JsonObject *
read_json_object (const char *path)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  GError   *error = NULL;
  JsonNode *root;

  json_parser_load_from_file (parser, path, &error);
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_object_ref (json_node_get_object (root));
}

static inline void
wait_until (gboolean (*cond) (gpointer), gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * 1000;

  while (!cond (data))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, FALSE);
      g_usleep (1000);
    }
}

static void
die_with_parent (gpointer user_data)
{
  /* A test that fails leaves no worker behind to keep meson waiting. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Spawns the worker helper with @argv (NULL-terminated, without the
 * program); returns it with stdout piped. */
static inline GSubprocess *
spawn_worker (const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  GError      *error = NULL;
  GSubprocess *proc;

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSM_TEST_WORKER"));
  for (guint i = 0; args[i]; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

/* Reads the worker's first line. */
static inline char *
worker_read_line (GSubprocess *proc)
{
  g_autoptr (GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  GError *error = NULL;
  char   *line;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

/* Spawns `register VM_ID` and waits for READY; returns its session id. */
static inline GSubprocess *
spawn_registered_worker (const char *vm_id,
                         char      **session_id)
{
  const char      *args[] = { "register", vm_id, NULL };
  GSubprocess     *proc = spawn_worker (args);
  g_autofree char *line = worker_read_line (proc);
  g_auto (GStrv) parts = g_strsplit (line, " ", 3);

  g_assert_cmpstr (parts[0], ==, "READY");
  if (session_id)
    *session_id = g_strdup (parts[1]);
  return proc;
}

static inline void
kill_worker (GSubprocess *proc)
{
  g_subprocess_send_signal (proc, SIGKILL);
  g_subprocess_wait (proc, NULL, NULL);
}

/* A pid no process has now. */
static inline int
unused_pid (int skip)
{
  g_autofree char *contents = NULL;
  int              pid_max = 32768;

  if (g_file_get_contents ("/proc/sys/kernel/pid_max", &contents, NULL, NULL))
    pid_max = atoi (contents);
  for (int pid = pid_max - 1; pid > 300; pid--)
    {
      char path[64];

      g_snprintf (path, sizeof path, "/proc/%d", pid);
      if (!g_file_test (path, G_FILE_TEST_EXISTS) && skip-- <= 0)
        return pid;
    }
  g_assert_not_reached ();
}
