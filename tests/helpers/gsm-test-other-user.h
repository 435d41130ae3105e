/* gsm-test-other-user.h: running a program of the build as another user
 *
 * A test that runs something as `nobody` (setpriv) cannot assume that
 * nobody can reach the build tree: a checkout in root's home or in a
 * 0700 temporary directory is closed to it. These helpers make a
 * directory every user can enter (under the temporary directory, else
 * /tmp) and copy into it what the other user needs: the program, and
 * each shared library it loads that the other user cannot read (the
 * uninstalled libgsm-session, for one). A test that cannot have such a
 * directory skips, with the reason.
 *
 * GLib and GIO only, so that any test can include it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#define GSM_TEST_OTHER_USER "nobody"
#define GSM_TEST_OTHER_GROUP "nogroup"

/* The argv prefix that runs a command as the other user. */
#define GSM_TEST_AS_OTHER_USER "setpriv", "--reuid=" GSM_TEST_OTHER_USER, \
                               "--regid=" GSM_TEST_OTHER_GROUP, "--clear-groups", "--"

/* Which of @paths the other user cannot reach: test(1) @test_op (-r, -x)
 * fails for it. Returns a NULL-terminated array (empty when all are
 * reachable), or NULL if the check itself could not run. */
static G_GNUC_UNUSED char **
gsm_test_other_user_unreachable (const char *const *paths,
                                 const char        *test_op)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *script = g_strdup_printf ("for f; do test %s \"$f\" || printf '%%s\\n' \"$f\"; done",
                                             test_op);
  g_autofree char *out = NULL;
  const char      *prefix[] = { GSM_TEST_AS_OTHER_USER, "sh", "-c", NULL };
  int              status = 0;

  for (guint i = 0; prefix[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) prefix[i]);
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, (gpointer) "sh");
  for (guint i = 0; paths[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) paths[i]);
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync ("/", (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, &out, NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    return NULL;
  g_strchomp (out);
  return *out == '\0' ? g_new0 (char *, 1) : g_strsplit (out, "\n", -1);
}

static G_GNUC_UNUSED gboolean
gsm_test_other_user_can (const char *test_op,
                         const char *path)
{
  const char *paths[] = { path, NULL };
  g_auto (GStrv) unreachable = gsm_test_other_user_unreachable (paths, test_op);

  return unreachable != NULL && unreachable[0] == NULL;
}

/* A new empty directory (mode 0755) named after @tmpl ("name-XXXXXX")
 * that the other user can enter: under g_get_tmp_dir(), else under /tmp.
 * NULL if there is none; @reason then says why. */
static G_GNUC_UNUSED char *
gsm_test_other_user_make_dir (const char *tmpl,
                              char      **reason)
{
  const char *parents[] = { g_get_tmp_dir (), "/tmp", NULL };

  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *path = NULL;

      if (i > 0 && g_str_equal (parents[i], parents[0]))
        continue;
      path = g_build_filename (parents[i], tmpl, NULL);
      if (g_mkdtemp_full (path, 0755) == NULL)
        continue;
      /* mkdtemp honours the umask. */
      if (g_chmod (path, 0755) == 0 && gsm_test_other_user_can ("-x", path))
        return g_steal_pointer (&path);
      g_rmdir (path);
    }
  if (reason != NULL)
    *reason = g_strdup_printf ("%s cannot enter a directory under %s or /tmp "
                               "(or setpriv is missing), so it cannot run a program of this build",
                               GSM_TEST_OTHER_USER, g_get_tmp_dir ());
  return NULL;
}

/* The shared libraries @program loads (as ldd(1) resolves them in this
 * environment), by file name → path. */
static G_GNUC_UNUSED GHashTable *
gsm_test_other_user_libraries (const char *program,
                               GError    **error)
{
  const char      *argv[] = { "ldd", program, NULL };
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;
  GHashTable *libs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  int         status;

  /* A static program makes ldd exit 1 ("not a dynamic executable"). */
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                     NULL, NULL, &out, NULL, &status, error))
    {
      g_hash_table_unref (libs);
      return NULL;
    }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      /* "\tlibfoo.so.1 => /path/libfoo.so.1 (0x…)" */
      const char      *arrow = strstr (lines[i], " => ");
      g_autofree char *name = NULL;
      const char      *path;
      const char      *end;

      if (arrow == NULL)
        continue;
      name = g_strstrip (g_strndup (lines[i], arrow - lines[i]));
      path = arrow + 4;
      if (*path != '/')
        continue; /* "not found": the program fails the same way for anyone */
      end = strstr (path, " (");
      g_hash_table_replace (libs, g_steal_pointer (&name),
                            end != NULL ? g_strndup (path, end - path) : g_strdup (path));
    }
  return libs;
}

/* Makes @program runnable by the other user: if it, or a library it loads,
 * cannot be reached by that user, copies it into @dir/bin (the libraries
 * into @dir/lib, which *@ld_library_path is then set to, else NULL).
 * Returns the path to run (a new string). @dir must be reachable by the
 * other user (gsm_test_other_user_make_dir()). */
static G_GNUC_UNUSED char *
gsm_test_other_user_stage (const char *dir,
                           const char *program,
                           char      **ld_library_path,
                           GError    **error)
{
  g_autoptr (GHashTable) libs = gsm_test_other_user_libraries (program, error);
  g_autoptr (GPtrArray) paths = g_ptr_array_new ();
  g_autofree char *bindir = g_build_filename (dir, "bin", NULL);
  g_autofree char *libdir = g_build_filename (dir, "lib", NULL);
  g_autofree char *staged = NULL;
  g_auto (GStrv) unreachable = NULL;
  GHashTableIter iter;
  gpointer       name, path;
  gboolean       copy_program = FALSE;
  gboolean       copied_library = FALSE;

  *ld_library_path = NULL;
  if (libs == NULL)
    return NULL;

  g_ptr_array_add (paths, (gpointer) program);
  g_hash_table_iter_init (&iter, libs);
  while (g_hash_table_iter_next (&iter, &name, &path))
    g_ptr_array_add (paths, path);
  g_ptr_array_add (paths, NULL);
  unreachable = gsm_test_other_user_unreachable ((const char *const *) paths->pdata, "-r");
  if (unreachable == NULL)
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                   "cannot run setpriv to check what %s can read", GSM_TEST_OTHER_USER);
      return NULL;
    }

  if (g_mkdir_with_parents (bindir, 0755) != 0 || g_mkdir_with_parents (libdir, 0755) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot make %s: %s",
                   libdir, g_strerror (errno));
      return NULL;
    }

  g_hash_table_iter_init (&iter, libs);
  while (g_hash_table_iter_next (&iter, &name, &path))
    {
      g_autoptr (GFile) from = NULL;
      g_autoptr (GFile) to = NULL;
      g_autofree char *dest = NULL;

      if (!g_strv_contains ((const char *const *) unreachable, path))
        continue;
      dest = g_build_filename (libdir, name, NULL);
      from = g_file_new_for_path (path);
      to = g_file_new_for_path (dest);
      if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error) ||
          g_chmod (dest, 0755) != 0)
        return NULL;
      copied_library = TRUE;
    }

  copy_program = g_strv_contains ((const char *const *) unreachable, program) ||
                 !gsm_test_other_user_can ("-x", program);
  if (copy_program || copied_library)
    {
      g_autoptr (GFile) from = g_file_new_for_path (program);
      g_autofree char *base = g_path_get_basename (program);
      g_autoptr (GFile) to = NULL;

      staged = g_build_filename (bindir, base, NULL);
      to = g_file_new_for_path (staged);
      if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error) ||
          g_chmod (staged, 0755) != 0)
        return NULL;
    }
  else
    staged = g_strdup (program);

  if (copied_library)
    *ld_library_path = g_steal_pointer (&libdir);
  return g_steal_pointer (&staged);
}
