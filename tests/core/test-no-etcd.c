/* test-no-etcd.c: a build without the etcd backend (-Detcd=disabled)
 *
 * Built and run only in such a build. The library does not load libsoup,
 * and an etcd registry, through the session manager or a session list,
 * fails with GSM_ERROR_BACKEND_UNAVAILABLE saying the build has no etcd
 * support.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <gsm.h>

#define ETCD_URI "etcd://127.0.0.1:2379/gsm-test"

static void
test_no_soup (void)
{
  g_autofree char *maps = NULL;

  /* This program links the shared library, which would bring libsoup. */
  g_assert_true (g_file_get_contents ("/proc/self/maps", &maps, NULL, NULL));
  g_assert_nonnull (strstr (maps, "libgsm-session-1.0.so"));
  g_assert_null (strstr (maps, "libsoup"));
}

static void
assert_no_etcd_error (const GError *error)
{
  g_assert_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "without etcd support"));
  g_assert_nonnull (strstr (error->message, ETCD_URI));
}

static void
test_manager (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char   *dir = g_dir_make_tmp ("gsm-no-etcd-XXXXXX", &error);
  GsmSessionManager *manager;

  g_assert_no_error (error);
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_REGISTRY", ETCD_URI, TRUE);
  /* The manager also warns that its registry cannot be used. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  manager = gsm_session_manager_get_default ();
  g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-1", "zone-a", NULL, NULL,
                                                        NULL, &error));
  assert_no_etcd_error (error);
  g_unsetenv ("GSM_REGISTRY");
  g_rmdir (dir);
}

static void
test_list (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSessionList) list = gsm_session_list_new_for_etcd (ETCD_URI, NULL, &error);

  g_assert_null (list);
  assert_no_etcd_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/no-etcd/no-libsoup", test_no_soup);
  g_test_add_func ("/no-etcd/manager", test_manager);
  g_test_add_func ("/no-etcd/session-list", test_list);
  return g_test_run ();
}
