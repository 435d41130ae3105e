/* test-hostile.c: a runtime directory or registry path set up by someone else
 *
 *  - a directory other users can write without the sticky bit is refused
 *    (GSM_ERROR_INSECURE_DIRECTORY), in process and through a real session
 *    process; a sticky one (like /tmp) is accepted;
 *  - a symbolic link or a FIFO at the registry path, or a symbolic link at
 *    the lock path, is refused at once (GSM_ERROR_INSECURE_FILE), and what
 *    it points to is untouched;
 *  - a symbolic link at a session file path is replaced, never followed,
 *    also when it appears between two writes of the file in place;
 *  - a registry file owned by another user is refused (root only);
 *  - metadata that would make the registry unreadable (nested too deep,
 *    infinity) is refused by register_vm, and the deepest accepted one
 *    reads back.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

#include <math.h>

typedef struct
{
  char *dir;     /* the runtime directory under test */
  char *outside; /* a file a link points to */
} Fixture;

static void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("gsm-hostile-XXXXXX", &error);
  g_assert_no_error (error);
  f->outside = g_strdup_printf ("%s.outside", f->dir);
  g_assert_true (g_file_set_contents (f->outside, "precious", -1, NULL));
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  hardening_rm_rf (f->dir);
  g_unlink (f->outside);
  g_free (f->dir);
  g_free (f->outside);
}

static void
assert_outside_untouched (Fixture *f)
{
  g_autofree char *contents = NULL;
  struct stat      st;

  g_assert_true (g_file_get_contents (f->outside, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "precious");
  g_assert_cmpint (lstat (f->outside, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
}

static GsmFileRegistry *
open_registry (const char *dir,
               GError    **error)
{
  return _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, error);
}

/* Runs $GSM_TEST_WORKER list in @dir; returns what it printed. */
static char *
worker_list (const char *dir,
             int        *status)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  char *out = NULL;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", dir, TRUE);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"), "list", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  *status = g_subprocess_get_exit_status (proc);
  return out;
}

static void
test_insecure_directory (Fixture      *f,
                         gconstpointer data)
{
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  int              status;

  g_assert_cmpint (chmod (f->dir, 0777), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY);
  g_assert_nonnull (strstr (error->message, f->dir));
  g_assert_null (registry);
  g_clear_error (&error);

  /* A real session process refuses it too, and writes nothing there. */
  out = worker_list (f->dir, &status);
  g_assert_cmpint (status, !=, 0);
  g_assert_nonnull (strstr (out, "can be written by other users"));
  g_assert_cmpuint (hardening_count_files (f->dir, ""), ==, 0);

  g_assert_cmpint (chmod (f->dir, 0770), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY);
  g_clear_error (&error);

  /* Sticky, like /tmp: others cannot replace our files there. */
  g_assert_cmpint (chmod (f->dir, 01777), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (registry);
}

static void
test_symlink_registry (Fixture      *f,
                       gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;
  struct stat st;

  g_assert_cmpint (symlink (f->outside, path), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_nonnull (strstr (error->message, "symbolic link"));
  g_assert_null (registry);
  assert_outside_untouched (f);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISLNK (st.st_mode));
}

static void
test_fifo_registry (Fixture      *f,
                    gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;

  /* Reading a FIFO with nobody at the other end would block forever:
   * this returns at once, or the test times out. */
  g_assert_cmpint (mkfifo (path, 0600), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_nonnull (strstr (error->message, "not a regular file"));
  g_assert_null (registry);
}

static void
test_symlink_lock (Fixture      *f,
                   gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.lock", NULL);
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (symlink (f->outside, path), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_null (registry);
  assert_outside_untouched (f);
}

static gboolean
enter (GsmRegistryTxn *txn,
       gpointer        user_data,
       GError        **error)
{
  g_autoptr (GsmSession) session = _gsm_session_new (user_data, 4242, "host", 1700000000.0, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

/* Where the file registry below keeps the session file of "own-session". */
static char *
own_session_path (Fixture *f)
{
  g_autofree char *name = _gsm_file_registry_own_session_file_name (f->dir, "", 4242, "own-session");

  return g_build_filename (f->dir, name, NULL);
}

static void
test_symlink_session_file (Fixture      *f,
                           gconstpointer data)
{
  g_autofree char *path = own_session_path (f);
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  struct stat st;

  g_assert_cmpint (symlink (f->outside, path), ==, 0);
  registry = _gsm_file_registry_new (f->dir, FALSE, "", "own-session", 4242, FALSE, &error);
  g_assert_no_error (error);
  snapshot = _gsm_registry_update (GSM_REGISTRY (registry), enter, "own-session", NULL, &error);
  g_assert_no_error (error);

  assert_outside_untouched (f);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
}

static gboolean
enter_with_vm (GsmRegistryTxn *txn,
               gpointer        user_data,
               GError        **error)
{
  g_autoptr (GsmSession) session = _gsm_session_new (user_data, 4242, "host", 1700000000.0, 0, NULL);
  g_autoptr (GsmSession) with_vm = _gsm_session_with_vm (session, "vm-after-swap", "zone-a", NULL,
                                                         NULL, 1700000001.0);

  _gsm_registry_txn_put (txn, with_vm);
  return TRUE;
}

/* The session file is rewritten in place through a descriptor kept
 * between writes: when someone put another file or a link at its path
 * in between, the new text goes to the path, and neither the file that
 * was moved away nor what the link points to is written. */
static void
test_session_file_swapped (Fixture      *f,
                           gconstpointer data)
{
  g_autofree char *path = own_session_path (f);
  g_autofree char *moved = g_build_filename (f->dir, "moved-away.json", NULL);
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *contents = NULL;
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmRegistrySnapshot) first = NULL;
  g_autoptr (GsmRegistrySnapshot) second = NULL;
  g_autoptr (GsmRegistrySnapshot) third = NULL;
  g_autoptr (GError) error = NULL;
  struct stat st;

  registry = _gsm_file_registry_new (f->dir, FALSE, "", "own-session", 4242, FALSE, &error);
  g_assert_no_error (error);
  first = _gsm_registry_update (GSM_REGISTRY (registry), enter, "own-session", NULL, &error);
  g_assert_no_error (error);

  /* Moved away and replaced by a link. */
  g_assert_cmpint (rename (path, moved), ==, 0);
  g_assert_true (g_file_get_contents (moved, &before, NULL, NULL));
  g_assert_cmpint (symlink (f->outside, path), ==, 0);
  second = _gsm_registry_update (GSM_REGISTRY (registry), enter_with_vm, "own-session", NULL, &error);
  g_assert_no_error (error);

  assert_outside_untouched (f);
  g_assert_true (g_file_get_contents (moved, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISREG (st.st_mode));
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "\"vm-after-swap\""));
  g_assert_true (_gsm_json_check (contents, strlen (contents), GSM_JSON_MAX_DEPTH, NULL));
  g_clear_pointer (&contents, g_free);

  /* A shorter text in place: padded, still one JSON value, no VM. */
  third = _gsm_registry_update (GSM_REGISTRY (registry), enter, "own-session", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_null (strstr (contents, "vm-after-swap"));
  g_assert_true (_gsm_json_check (contents, strlen (contents), GSM_JSON_MAX_DEPTH, NULL));
  g_clear_pointer (&after, g_free);
  g_assert_true (g_file_get_contents (moved, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, before);
}

static void
test_foreign_owner (Fixture      *f,
                    gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("giving a file to another user needs root");
      return;
    }

  g_assert_true (g_file_set_contents (path, "{}", -1, NULL));
  g_assert_cmpint (chown (path, 65534, 65534), ==, 0);
  registry = open_registry (f->dir, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_nonnull (strstr (error->message, "owned by uid 65534"));
}

static GVariant *
nested_metadata (guint  depth,
                 double leaf)
{
  GVariant *v = g_variant_new_double (leaf);

  /* depth objects: {"k": {"k": … leaf}} */
  for (guint i = 0; i < depth; i++)
    {
      GVariantBuilder b;

      g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&b, "{sv}", "k", v);
      v = g_variant_builder_end (&b);
    }
  return v;
}

/* Regression: register_vm used to accept metadata that made every later
 * read of the registry fail. */
static void
test_unreadable_metadata (Fixture      *f,
                          gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GsmFileRegistry) reader = NULL;
      g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
      GsmSessionManager *manager;

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      manager = gsm_session_manager_get_default ();

      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-deep", "z", NULL,
                                                            nested_metadata (31, 1), NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-inf", "z", NULL,
                                                            nested_metadata (1, INFINITY), NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-nan", "z", NULL,
                                                            nested_metadata (3, NAN), NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);

      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-deepest", "z", NULL,
                                                           nested_metadata (30, 1), NULL, &error));
      g_assert_no_error (error);
      reader = open_registry (f->dir, &error);
      g_assert_no_error (error);
      snapshot = _gsm_registry_load (GSM_REGISTRY (reader), NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, 0);
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      gsm_session_manager_close_sync (manager, NULL, NULL);
      return;
    }

  g_test_trap_subprocess (NULL, 30 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add ("/hardening/hostile/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("insecure-directory", test_insecure_directory);
  ADD ("symlink-registry", test_symlink_registry);
  ADD ("fifo-registry", test_fifo_registry);
  ADD ("symlink-lock", test_symlink_lock);
  ADD ("symlink-session-file", test_symlink_session_file);
  ADD ("session-file-swapped", test_session_file_swapped);
  ADD ("foreign-owner", test_foreign_owner);
  ADD ("unreadable-metadata", test_unreadable_metadata);
#undef ADD
  return g_test_run ();
}
