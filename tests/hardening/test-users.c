/* test-users.c: two users, each with the default directory
 *
 * Root only (TAP skip otherwise). One session runs as root, one as nobody
 * (setpriv --reuid nobody --regid nogroup --clear-groups), each with its
 * own HOME and no GSM_RUNTIME_DIR, so each uses its default directory.
 * Shown: each registry is in its user's state directory, private to it;
 * neither user sees the other's session, and neither can read, write or
 * clean the other's registry (nobody is stopped by the permissions, root
 * by the library, which refuses a directory that belongs to someone else);
 * with an unusable HOME nothing falls back to a shared fixed path.
 *
 * nobody runs a copy of the worker (and of the uninstalled library) made
 * where it can reach them, since the build tree may be in a directory
 * closed to it (root's home, a 0700 temporary directory).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "../helpers/gsm-test-other-user.h"
#include "hardening-util.h"

#include <pwd.h>

#define NOBODY_UID 65534

/* The worker as nobody runs it, and its LD_LIBRARY_PATH (or NULL). */
static char *nobody_worker;
static char *nobody_library_path;

static const char *const shared_paths[] = {
  "/tmp/vm_registry.json", "/tmp/jarvis_vm_registry.json", "/tmp/global_session.json",
  "/tmp/gsm-session", "/var/tmp/vm_registry.json", "/var/tmp/gsm-session",
  "/dev/shm/vm_registry.json", "/dev/shm/gsm-session", "/run/user/65534/gsm-session",
  "/nonexistent", NULL
};

/* Runs the test worker as @user ("root" or "nobody") with @home as HOME
 * and no GSM_RUNTIME_DIR unless @runtime_dir is set. */
static GSubprocess *
spawn_worker (const char *user,
              const char *home,
              const char *runtime_dir,
              const char *arg1,
              const char *arg2)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                 G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;

  g_subprocess_launcher_setenv (launcher, "HOME", home, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "XDG_STATE_HOME");
  g_subprocess_launcher_unsetenv (launcher, "XDG_RUNTIME_DIR");
  g_subprocess_launcher_unsetenv (launcher, "GSM_FILE_PREFIX");
  if (runtime_dir != NULL)
    g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", runtime_dir, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "GSM_RUNTIME_DIR");

  if (g_str_equal (user, "nobody"))
    {
      g_ptr_array_add (argv, "setpriv");
      g_ptr_array_add (argv, "--reuid=nobody");
      g_ptr_array_add (argv, "--regid=nogroup");
      g_ptr_array_add (argv, "--clear-groups");
      g_ptr_array_add (argv, "--");
      g_ptr_array_add (argv, nobody_worker);
      if (nobody_library_path != NULL)
        {
          const char      *old = g_getenv ("LD_LIBRARY_PATH");
          g_autofree char *path = old != NULL && *old != '\0'
                                      ? g_strconcat (nobody_library_path, ":", old, NULL)
                                      : g_strdup (nobody_library_path);

          g_subprocess_launcher_setenv (launcher, "LD_LIBRARY_PATH", path, TRUE);
        }
    }
  else
    g_ptr_array_add (argv, (gpointer) g_getenv ("GSM_TEST_WORKER"));
  g_ptr_array_add (argv, (gpointer) arg1);
  if (arg2 != NULL)
    g_ptr_array_add (argv, (gpointer) arg2);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

/* Runs a short command of the worker; returns its output and status. */
static char *
run_worker (const char *user,
            const char *home,
            const char *runtime_dir,
            const char *command,
            int        *status)
{
  g_autoptr (GSubprocess) proc = spawn_worker (user, home, runtime_dir, command, NULL);
  g_autoptr (GError) error = NULL;
  char *out = NULL;

  g_subprocess_communicate_utf8 (proc, "", NULL, &out, NULL, &error);
  g_assert_no_error (error);
  *status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  return out;
}

/* Runs a shell command as @user; returns its exit status. */
static int
run_shell_as (const char *user,
              const char *script,
              const char *arg)
{
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;

  if (g_str_equal (user, "nobody"))
    proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                             &error, "setpriv", "--reuid=nobody", "--regid=nogroup",
                             "--clear-groups", "--", "sh", "-c", script, "sh", arg, NULL);
  else
    proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                             &error, "sh", "-c", script, "sh", arg, NULL);
  g_assert_no_error (error);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  return g_subprocess_get_exit_status (proc);
}

static char *
read_session_id (GSubprocess *proc)
{
  g_autofree char *line = hardening_read_line (proc);
  g_auto (GStrv) words = NULL;

  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "READY "));
  words = g_strsplit (line, " ", -1);
  return g_strdup (words[1]);
}

static void
assert_private (const char *dir,
                uid_t       uid)
{
  g_autofree char *registry = g_build_filename (dir, "vm_registry.json", NULL);
  struct stat      st;

  g_assert_cmpint (lstat (dir, &st), ==, 0);
  g_assert_cmpuint (st.st_uid, ==, uid);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (lstat (registry, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_cmpuint (st.st_uid, ==, uid);
  g_assert_cmpuint (st.st_mode & 077, ==, 0);
}

static char *
read_file (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "vm_registry.json", NULL);
  char            *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  return contents;
}

static void
test_two_users (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) root_session = NULL;
  g_autoptr (GSubprocess) nobody_session = NULL;
  g_autofree char *base = NULL;
  g_autofree char *root_home = NULL;
  g_autofree char *nobody_home = NULL;
  g_autofree char *root_dir = NULL;
  g_autofree char *nobody_dir = NULL;
  g_autofree char *root_id = NULL;
  g_autofree char *nobody_id = NULL;
  g_autofree char *out = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *setpriv = NULL;
  g_autofree char *reason = NULL;
  gboolean         existed[G_N_ELEMENTS (shared_paths)];
  int              status;

  if (geteuid () != 0)
    {
      g_test_skip ("running a session as another user needs root");
      return;
    }
  setpriv = g_find_program_in_path ("setpriv");
  if (setpriv == NULL || getpwnam ("nobody") == NULL)
    {
      g_test_skip ("needs setpriv and the user nobody");
      return;
    }

  for (guint i = 0; shared_paths[i] != NULL; i++)
    existed[i] = g_file_test (shared_paths[i], G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK);

  /* A directory nobody can enter, with what it runs copied there. */
  base = gsm_test_other_user_make_dir ("gsm-users-XXXXXX", &reason);
  if (base == NULL)
    {
      g_test_skip (reason);
      return;
    }
  nobody_worker = gsm_test_other_user_stage (base, g_getenv ("GSM_TEST_WORKER"),
                                             &nobody_library_path, &error);
  g_assert_no_error (error);
  g_test_message ("nobody runs %s%s%s", nobody_worker,
                  nobody_library_path ? " with libraries from " : "",
                  nobody_library_path ? nobody_library_path : "");
  root_home = g_build_filename (base, "root-home", NULL);
  nobody_home = g_build_filename (base, "nobody-home", NULL);
  g_assert_cmpint (g_mkdir (root_home, 0700), ==, 0);
  g_assert_cmpint (g_mkdir (nobody_home, 0700), ==, 0);
  g_assert_cmpint (chown (nobody_home, NOBODY_UID, NOBODY_UID), ==, 0);
  root_dir = g_build_filename (root_home, ".local", "state", "gsm-session", NULL);
  nobody_dir = g_build_filename (nobody_home, ".local", "state", "gsm-session", NULL);

  /* One live session each, in its default directory. */
  root_session = spawn_worker ("root", root_home, NULL, "register", "vm-of-root");
  root_id = read_session_id (root_session);
  nobody_session = spawn_worker ("nobody", nobody_home, NULL, "register", "vm-of-nobody");
  nobody_id = read_session_id (nobody_session);
  assert_private (root_dir, 0);
  assert_private (nobody_dir, NOBODY_UID);

  /* Neither sees the other's session. */
  out = run_worker ("root", root_home, NULL, "list", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, root_id));
  g_assert_null (strstr (out, nobody_id));
  g_clear_pointer (&out, g_free);
  out = run_worker ("nobody", nobody_home, NULL, "list", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, nobody_id));
  g_assert_null (strstr (out, root_id));
  g_clear_pointer (&out, g_free);

  /* nobody cannot read, write or clean root's registry. */
  before = read_file (root_dir);
  g_assert_cmpint (run_shell_as ("nobody", "cat \"$1/vm_registry.json\"", root_dir), !=, 0);
  g_assert_cmpint (run_shell_as ("nobody", "echo '{}' > \"$1/vm_registry.json\"", root_dir), !=, 0);
  g_assert_cmpint (run_shell_as ("nobody", "rm -f \"$1/vm_registry.json\"", root_dir), !=, 0);
  out = run_worker ("nobody", nobody_home, root_dir, "cleanup", &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (out, "Permission denied"));
  g_clear_pointer (&out, g_free);
  out = run_worker ("nobody", nobody_home, root_dir, "list", &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_null (strstr (out, root_id));
  g_clear_pointer (&out, g_free);
  after = read_file (root_dir);
  g_assert_cmpstr (after, ==, before);
  g_clear_pointer (&before, g_free);
  g_clear_pointer (&after, g_free);

  /* root could bypass the permissions, but the library will not use a
   * directory that belongs to another user. */
  before = read_file (nobody_dir);
  out = run_worker ("root", root_home, nobody_dir, "cleanup", &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (out, "belongs to uid 65534"));
  g_clear_pointer (&out, g_free);
  out = run_worker ("root", root_home, nobody_dir, "list", &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_null (strstr (out, nobody_id));
  g_clear_pointer (&out, g_free);
  after = read_file (nobody_dir);
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpuint (hardening_count_files (nobody_dir, ".lock"), ==, 2); /* the registry's and the session's */
  g_assert_cmpuint (hardening_count_files (nobody_dir, "session_"), ==, 2);

  /* With a HOME it cannot use, nobody gets an error, not a shared path. */
  out = run_worker ("nobody", "/nonexistent", NULL, "list", &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (out, "/nonexistent/.local/state/gsm-session"));
  g_clear_pointer (&out, g_free);
  for (guint i = 0; shared_paths[i] != NULL; i++)
    if (!existed[i])
      g_assert_false (g_file_test (shared_paths[i], G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK));

  g_subprocess_force_exit (root_session);
  g_subprocess_force_exit (nobody_session);
  g_subprocess_wait (root_session, NULL, NULL);
  g_subprocess_wait (nobody_session, NULL, NULL);
  hardening_rm_rf (base);
  g_clear_pointer (&nobody_worker, g_free);
  g_clear_pointer (&nobody_library_path, g_free);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hardening/users/root-and-nobody", test_two_users);
  return g_test_run ();
}
