/* test-faults.c: writes that fail leave the previous registry intact
 *
 * Two ways to make a write fail, neither of which needs a hook in the
 * library:
 *  - a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored): every write past
 *    it fails with EFBIG, the way a quota does; works for any user;
 *  - a full file system: a 64 KiB tmpfs mounted by the test (root only;
 *    skipped otherwise).
 * Each time the call returns a GError naming the file, the registry file
 * holds exactly its previous bytes, no temporary file is left, and the
 * library's own view is still the previous one.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>

static gboolean
add_big_entry (GsmRegistryTxn *txn,
               gpointer        user_data,
               GError        **error)
{
  const char      *id = user_data;
  g_autofree char *host = g_strnfill (250, 'h');
  g_autoptr (GsmSession) session = _gsm_session_new (id, 4242, host, 1700000000.0, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

static char *
read_file (const char *dir,
           const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char            *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  return contents;
}

/* Fills @dir's registry until a write fails; checks what the failure left. */
static void
write_until_failure (const char *dir,
                     guint       max_entries)
{
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmFileRegistry) reader = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  guint            n_ok = 0;

  registry = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);

  for (guint i = 0; i < max_entries; i++)
    {
      g_autofree char *id = g_strdup_printf ("session-%04u", i);

      g_clear_pointer (&before, g_free);
      if (n_ok > 0)
        before = read_file (dir, "vm_registry.json");
      snapshot = _gsm_registry_update (GSM_REGISTRY (registry), add_big_entry, id, NULL, &error);
      if (snapshot == NULL)
        break;
      g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);
      n_ok++;
    }

  g_test_message ("%u writes succeeded, then: %s", n_ok, error ? error->message : "(none)");
  g_assert_cmpuint (n_ok, >, 0);
  g_assert_nonnull (error);
  g_assert_true (error->domain == G_IO_ERROR);
  g_assert_nonnull (strstr (error->message, "vm_registry.json"));
  g_clear_error (&error);

  /* The previous version, byte for byte, and nothing half-written. */
  after = read_file (dir, "vm_registry.json");
  g_assert_cmpstr (after, ==, before);
  g_assert_cmpuint (hardening_count_files (dir, ".tmp-"), ==, 0);

  /* The writer's own view and a new reader's agree with the file. */
  snapshot = _gsm_registry_load (GSM_REGISTRY (registry), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (_gsm_registry_snapshot_get_size (snapshot), ==, n_ok);
  g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);
  /* Opening takes the lock but writes nothing: it works on a full disk. */
  reader = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  snapshot = _gsm_registry_load (GSM_REGISTRY (reader), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (_gsm_registry_snapshot_get_size (snapshot), ==, n_ok);
}

static void
set_file_size_limit (rlim_t limit)
{
  struct rlimit rl;

  /* Only the soft limit, so that it can be raised again. */
  signal (SIGXFSZ, SIG_IGN);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &rl), ==, 0);
  rl.rlim_cur = MIN (limit, rl.rlim_max);
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &rl), ==, 0);
}

static void
test_file_size_limit (void)
{
  if (g_test_subprocess ())
    {
      g_autofree char *dir = g_dir_make_tmp ("gsm-faults-XXXXXX", NULL);

      set_file_size_limit (8 * 1024);
      write_until_failure (dir, 1000);
      hardening_rm_rf (dir);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* The same through the public API: a register that cannot be written
 * fails, and the session still owns no VM, in the file and in memory. */
static void
test_register_fails_cleanly (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("gsm-faults-XXXXXX", NULL);
      g_autofree char *before = NULL;
      g_autofree char *after = NULL;
      g_autofree char *big = g_strnfill (16 * 1024, 'm');
      g_autoptr (GsmSession) vm = NULL;
      g_autoptr (GVariantBuilder) b = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
      GsmSessionManager *manager;
      struct stat        st;
      g_autofree char   *path = g_build_filename (dir, "vm_registry.json", NULL);

      g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
      manager = gsm_session_manager_get_default ();
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-small", "zone-a", NULL,
                                                           NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      before = read_file (dir, "vm_registry.json");

      g_assert_cmpint (stat (path, &st), ==, 0);
      set_file_size_limit ((rlim_t) st.st_size + 2048);
      g_variant_builder_add (b, "{sv}", "blob", g_variant_new_string (big));
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-big", "zone-a", NULL,
                                                            g_variant_builder_end (b), NULL, &error));
      g_assert_nonnull (error);
      g_test_message ("register failed with: %s", error->message);
      g_assert_nonnull (strstr (error->message, dir));
      g_clear_error (&error);

      after = read_file (dir, "vm_registry.json");
      g_assert_cmpstr (after, ==, before);
      g_assert_cmpuint (hardening_count_files (dir, ".tmp-"), ==, 0);
      vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
      g_assert_no_error (error);
      g_assert_null (vm);
      g_assert_false (gsm_session_manager_get_has_vm (manager));

      /* Room again: the same call works. */
      set_file_size_limit (RLIM_INFINITY);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-big", "zone-a", NULL,
                                                           NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      hardening_rm_rf (dir);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_full_tmpfs (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *mnt = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("mounting a tmpfs needs root");
      return;
    }

  mnt = g_dir_make_tmp ("gsm-tmpfs-XXXXXX", &error);
  g_assert_no_error (error);
  if (mount ("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") != 0)
    {
      g_autofree char *msg = g_strdup_printf ("cannot mount a tmpfs: %s", g_strerror (errno));

      g_rmdir (mnt);
      g_test_skip (msg);
      return;
    }

  write_until_failure (mnt, 10000);

  g_assert_cmpint (umount (mnt), ==, 0);
  g_rmdir (mnt);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hardening/faults/file-size-limit", test_file_size_limit);
  g_test_add_func ("/hardening/faults/register-fails-cleanly", test_register_fails_cleanly);
  g_test_add_func ("/hardening/faults/full-tmpfs", test_full_tmpfs);
  return g_test_run ();
}
