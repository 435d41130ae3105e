/* test-readonly.c: gsmctl list and stats only read
 *
 * They (and watch) work on a runtime directory that cannot be written, leave every
 * file byte-identical with its mtime, and on a directory that does not
 * exist they fail with a message and create nothing.
 *
 * Read-only, for root (whom modes do not stop): a read-only bind mount
 * in a private mount namespace (unshare --mount); and a copy that belongs
 * to nobody, mode 0500 with files 0400, read by gsmctl running as
 * nobody. Both need root and are skipped otherwise. nobody reads the copy,
 * and runs gsmctl, in a directory it can reach (gsm-test-other-user.h),
 * wherever the build tree is.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "../helpers/gsm-test-other-user.h"
#include "hardening-util.h"

#include <sys/prctl.h>

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("gsm-readonly-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  hardening_rm_rf (f->dir);
  g_free (f->dir);
}

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn_register (const char *dir,
                const char *vm_id)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  GSubprocess     *proc;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", dir, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"), "register",
                                      vm_id, NULL);
  g_assert_no_error (error);
  line = hardening_read_line (proc);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "READY "));
  return proc;
}

static int
compare_lines (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char **) a, *(const char **) b);
}

/* Name → checksum, size and mtime of every file of @dir. */
static char *
describe_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *contents = NULL;
      g_autofree char *sum = NULL;
      gsize            len;
      struct stat      st;

      g_assert_cmpint (lstat (path, &st), ==, 0);
      g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
      sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) contents, len);
      g_ptr_array_add (lines, g_strdup_printf ("%s %s %" G_GSIZE_FORMAT " %ld.%09ld %o", name, sum,
                                               len, (long) st.st_mtim.tv_sec,
                                               (long) st.st_mtim.tv_nsec,
                                               (guint) st.st_mode));
    }
  g_ptr_array_sort (lines, compare_lines);
  g_ptr_array_add (lines, NULL);
  return g_strjoinv ("\n", (char **) lines->pdata);
}

/* Runs @argv (NULL-terminated) with GSM_RUNTIME_DIR=@dir; returns the
 * exit status (-1 if killed). */
static int
run (const char        *dir,
     const char *const *argv,
     char             **out,
     char             **err)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;

  if (dir != NULL)
    g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", dir, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc))
    return -1;
  return g_subprocess_get_exit_status (proc);
}

/* A live session with a VM, and a killed one that left its VM. */
static void
populate (const char   *dir,
          GSubprocess **live)
{
  g_autoptr (GSubprocess) dead = spawn_register (dir, "vm-dead");

  g_subprocess_send_signal (dead, SIGKILL);
  g_subprocess_wait (dead, NULL, NULL);
  *live = spawn_register (dir, "vm-live");
}

static void
assert_listing (const char *out_list,
                const char *out_stats)
{
  g_autofree char *live_row = NULL;

  g_assert_nonnull (strstr (out_list, "vm-live"));
  g_assert_nonnull (strstr (out_list, "vm-dead"));
  g_assert_nonnull (strstr (out_list, "STATUS"));
  g_assert_nonnull (strstr (out_list, "stale"));
  g_assert_nonnull (strstr (out_stats, "Sessions:    2 ("));
  g_assert_nonnull (strstr (out_stats, "VMs:         2 ("));
}

static gboolean
have_program (const char *name)
{
  g_autofree char *path = g_find_program_in_path (name);

  return path != NULL;
}

static gboolean
can_unshare (void)
{
  const char      *argv[] = { "unshare", "--mount", "true", NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  return geteuid () == 0 && have_program ("unshare") &&
         run (NULL, argv, &out, &err) == 0;
}

/* Through a read-only bind mount of the directory over itself. */
static void
test_bind_mount (Fixture      *f,
                 gconstpointer data)
{
  /* The touch proves the directory is read-only for this root. */
  const char *script =
      "mount --bind -o ro \"$1\" \"$1\" || exit 97; "
      "if touch \"$1/probe\" 2>/dev/null; then exit 98; fi; "
      "shift; exec \"$@\"";
  g_autoptr (GSubprocess) live = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  const char      *commands[] = { "list", "stats", "list", NULL };
  char            *out[3] = {
               NULL,
  };

  if (!can_unshare ())
    {
      g_test_skip ("needs root and unshare --mount");
      return;
    }

  populate (f->dir, &live);
  before = describe_dir (f->dir);

  for (guint i = 0; commands[i] != NULL; i++)
    {
      const char      *argv[] = { "unshare", "--mount", "sh", "-c", script, "sh", f->dir,
                                  g_getenv ("GSMCTL"), commands[i], i == 2 ? "--json" : NULL, NULL };
      g_autofree char *err = NULL;
      int              status = run (f->dir, argv, &out[i], &err);

      g_test_message ("gsmctl %s: %d\n%s%s", commands[i], status, out[i], err);
      g_assert_cmpint (status, ==, 0);
      g_assert_cmpstr (err, ==, "");
    }
  assert_listing (out[0], out[1]);
  g_assert_nonnull (strstr (out[2], "\"status\" : \"stale\""));

  /* watch, stopped by SIGINT after a while. */
  {
    const char      *argv[] = { "unshare", "--mount", "sh", "-c", script, "sh", f->dir,
                                "timeout", "--preserve-status", "-s", "INT", "1.5",
                                g_getenv ("GSMCTL"), "watch", "--local", "--json", NULL };
    g_autofree char *watch_out = NULL;
    g_autofree char *err = NULL;
    int              status = run (f->dir, argv, &watch_out, &err);

    g_test_message ("gsmctl watch: %d\n%s%s", status, watch_out, err);
    g_assert_cmpint (status, ==, 0);
    g_assert_nonnull (strstr (watch_out, "\"event\":\"watching\""));
    g_assert_cmpstr (err, ==, "");
  }

  after = describe_dir (f->dir);
  g_assert_cmpstr (after, ==, before);

  for (guint i = 0; i < G_N_ELEMENTS (out); i++)
    g_free (out[i]);
  g_subprocess_send_signal (live, SIGKILL);
  g_subprocess_wait (live, NULL, NULL);
}

/* A copy that belongs to nobody, 0500 with files 0400, read as nobody. */
static void
test_nobody (Fixture      *f,
             gconstpointer data)
{
  g_autoptr (GSubprocess) live = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *src = g_build_filename (f->dir, "src", NULL);
  g_autofree char *shared = NULL;
  g_autofree char *copy = NULL;
  g_autofree char *gsmctl = NULL;
  g_autofree char *library_path = NULL;
  g_autofree char *library_env = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  const char      *commands[] = { "list", "stats", NULL };
  char            *out[2] = {
               NULL,
  };

  if (geteuid () != 0 || !have_program ("setpriv"))
    {
      g_test_skip ("needs root and setpriv");
      return;
    }
  shared = gsm_test_other_user_make_dir ("gsm-readonly-nobody-XXXXXX", &reason);
  if (shared == NULL)
    {
      g_test_skip (reason);
      return;
    }
  copy = g_build_filename (shared, "copy", NULL);
  gsmctl = gsm_test_other_user_stage (shared, g_getenv ("GSMCTL"), &library_path, &error);
  g_assert_no_error (error);
  g_test_message ("nobody runs %s", gsmctl);
  /* Only what was staged: the build tree is not for nobody. */
  library_env = g_strdup_printf ("LD_LIBRARY_PATH=%s", library_path != NULL ? library_path : "");

  g_assert_cmpint (g_mkdir (src, 0700), ==, 0);
  populate (src, &live);
  {
    const char      *argv[] = { "sh", "-c",
                                "cp -a \"$1\" \"$2\" && chown -R nobody:nogroup \"$2\" && "
                                     "chmod 0400 \"$2\"/* && chmod 0500 \"$2\"",
                                "sh", src, copy, NULL };
    g_autofree char *o = NULL;
    g_autofree char *e = NULL;

    g_assert_cmpint (run (NULL, argv, &o, &e), ==, 0);
  }
  before = describe_dir (copy);

  for (guint i = 0; commands[i] != NULL; i++)
    {
      const char      *argv[] = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                  "--", "env", library_env, gsmctl, commands[i], NULL };
      g_autofree char *err = NULL;
      int              status = run (copy, argv, &out[i], &err);

      g_test_message ("gsmctl %s as nobody: %d\n%s%s", commands[i], status, out[i], err);
      g_assert_cmpint (status, ==, 0);
    }
  g_assert_nonnull (strstr (out[0], "vm-live"));
  g_assert_nonnull (strstr (out[0], "vm-dead"));
  g_assert_nonnull (strstr (out[1], "Sessions:    2 ("));

  after = describe_dir (copy);
  g_assert_cmpstr (after, ==, before);

  for (guint i = 0; i < G_N_ELEMENTS (out); i++)
    g_free (out[i]);

  g_subprocess_send_signal (live, SIGKILL);
  g_subprocess_wait (live, NULL, NULL);
  hardening_rm_rf (shared);
}

/* A directory that does not exist, named or the default: exit 1, a
 * message, nothing created. */
static void
test_missing (Fixture      *f,
              gconstpointer data)
{
  g_autofree char *missing = g_build_filename (f->dir, "missing", "run", NULL);
  g_autofree char *state = g_build_filename (f->dir, "state", NULL);
  const char      *commands[] = { "list", "stats", NULL };

  for (guint i = 0; commands[i] != NULL; i++)
    {
      const char      *argv[] = { g_getenv ("GSMCTL"), commands[i], NULL };
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;

      g_assert_cmpint (run (missing, argv, &out, &err), ==, 1);
      g_test_message ("gsmctl %s: %s", commands[i], err);
      g_assert_nonnull (strstr (err, "does not exist"));
      g_assert_nonnull (strstr (err, missing));
      g_assert_cmpstr (out, ==, "");
    }

  /* The default directory, under XDG_STATE_HOME. */
  for (guint i = 0; commands[i] != NULL; i++)
    {
      g_autoptr (GSubprocessLauncher) launcher =
          g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
      g_autoptr (GSubprocess) proc = NULL;
      g_autoptr (GError) error = NULL;
      g_autofree char *err = NULL;

      g_subprocess_launcher_unsetenv (launcher, "GSM_RUNTIME_DIR");
      g_subprocess_launcher_setenv (launcher, "XDG_STATE_HOME", state, TRUE);
      proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSMCTL"), commands[i], NULL);
      g_assert_no_error (error);
      g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err, &error);
      g_assert_no_error (error);
      g_assert_true (g_subprocess_get_if_exited (proc));
      g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
      g_assert_nonnull (strstr (err, "does not exist"));
    }

  g_assert_cmpuint (hardening_count_files (f->dir, ""), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/readonly/bind-mount", Fixture, NULL, fixture_setup, test_bind_mount,
              fixture_teardown);
  g_test_add ("/readonly/nobody", Fixture, NULL, fixture_setup, test_nobody, fixture_teardown);
  g_test_add ("/readonly/missing", Fixture, NULL, fixture_setup, test_missing, fixture_teardown);

  return g_test_run ();
}
