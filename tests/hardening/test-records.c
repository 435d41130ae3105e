/* test-records.c: records that hold where users actually run
 *
 *  - bounds at the API: a VM id or zone a provider could never be given
 *    (a leading “-”, white space, a control or invisible character),
 *    too many or too long components and oversized metadata are refused
 *    by register_vm with GSM_ERROR_INVALID_ARGUMENT, and nothing is
 *    written; what is just within the limits is accepted;
 *  - a transient failure to enter the registry at start-up (the lock held
 *    by another process past GSM_LOCK_TIMEOUT) does not stick: the first
 *    operation fails with it, a later one succeeds once the lock is free,
 *    and the process is then in the registry.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("gsm-records-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  hardening_rm_rf (f->dir);
  g_free (f->dir);
}

/* The text of file @name of the runtime directory, or NULL. */
static char *
read_file (Fixture    *f,
           const char *name)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  return contents;
}

/* A dictionary with one string of @size bytes. */
static GVariant *
metadata_of_size (gsize size)
{
  g_autofree char *blob = g_strnfill (size, 'm');
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "blob", g_variant_new_string (blob));
  return g_variant_builder_end (&b);
}

static void
assert_refused (GsmSessionManager  *manager,
                const char         *vm_id,
                const char         *zone,
                const char * const *components,
                GVariant           *metadata,
                const char         *message)
{
  g_autoptr(GError) error = NULL;

  g_test_message ("refused: vm_id “%s”, zone “%s”", vm_id, zone);
  g_assert_false (gsm_session_manager_register_vm_sync (manager, vm_id, zone, components,
                                                        metadata, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  if (strstr (error->message, message) == NULL)
    g_error ("“%s” does not say “%s”", error->message, message);
}

static void
test_bounds (Fixture       *f,
             gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func (g_free);
      g_autofree char *long_component = g_strnfill (256, 'c');
      g_autofree char *long_id = g_strnfill (256, 'v');
      g_autofree char *registry = NULL;
      g_autofree char *session_file = NULL;
      g_autofree char *session_name = NULL;
      GsmSessionManager *manager;
      const char *one_long[] = { "ok", long_component, NULL };

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      manager = gsm_session_manager_get_default ();

      /* Names a provider command could never be given. */
      assert_refused (manager, "-vm", "z", NULL, NULL, "starts with “-”");
      assert_refused (manager, "--zone=evil", "z", NULL, NULL, "starts with “-”");
      assert_refused (manager, "vm", "-z", NULL, NULL, "zone “-z” starts with “-”");
      assert_refused (manager, "vm 1", "z", NULL, NULL, "white space");
      assert_refused (manager, " vm", "z", NULL, NULL, "white space");
      assert_refused (manager, "vm", "z\xc2\xa0", NULL, NULL, "white space");   /* U+00A0 */
      assert_refused (manager, "vm\xe2\x80\x8b", "z", NULL, NULL, "U+200B");   /* zero width */
      assert_refused (manager, "vm\x1b[0m", "z", NULL, NULL, "control character");
      assert_refused (manager, "vm\t", "z", NULL, NULL, "control character");
      assert_refused (manager, "vm\xc2\x85", "z", NULL, NULL, "U+0085");       /* C1 */
      assert_refused (manager, long_id, "z", NULL, NULL, "longer than 255 bytes");
      assert_refused (manager, "", "z", NULL, NULL, "vm_id is empty");

      /* Too many or too long components. */
      for (guint i = 0; i < 65; i++)
        g_ptr_array_add (many, g_strdup_printf ("c%u", i));
      g_ptr_array_add (many, NULL);
      assert_refused (manager, "vm", "z", (const char * const *) many->pdata, NULL,
                      "more than 64 components");
      assert_refused (manager, "vm", "z", one_long, NULL, "longer than 255 bytes");

      /* Metadata of 1.5 MiB, and just over the limit. */
      assert_refused (manager, "vm", "z", NULL, metadata_of_size (1536 * 1024), "65536");
      assert_refused (manager, "vm", "z", NULL, metadata_of_size (65536), "more than the 65536 allowed");

      /* Nothing was written: our entry has no VM, nothing moved aside. */
      registry = read_file (f, "vm_registry.json");
      g_assert_nonnull (registry);
      g_assert_nonnull (strstr (registry, gsm_session_manager_get_session_id (manager)));
      g_assert_null (strstr (registry, "vm_id"));
      session_name = g_strdup_printf ("session_%d.json", getpid ());
      session_file = read_file (f, session_name);
      g_assert_null (strstr (session_file, "vm_id"));
      g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, 0);

      /* The limits themselves are accepted, and read back. */
      {
        g_autoptr(GPtrArray) most = g_ptr_array_new_with_free_func (g_free);
        g_autoptr(GsmVm) vm = NULL;
        g_autofree char *id = g_strnfill (255, 'v');
        /* {"blob": "…"} is 12 bytes around the string. */
        GVariant *metadata = metadata_of_size (65536 - 12);

        for (guint i = 0; i < 64; i++)
          {
            char *c = g_strnfill (255, 'c');

            g_snprintf (c, 4, "%03u", i);
            c[3] = 'c';
            g_ptr_array_add (most, c);
          }
        g_ptr_array_add (most, NULL);
        g_assert_true (gsm_session_manager_register_vm_sync (manager, id, "us-central1-a",
                                                             (const char * const *) most->pdata,
                                                             metadata, NULL, &error));
        g_assert_no_error (error);
        vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpstr (gsm_vm_get_vm_id (vm), ==, id);
        g_assert_cmpuint (g_strv_length ((char **) gsm_vm_get_components (vm)), ==, 64);
        g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
        g_assert_no_error (error);
      }

      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_startup_lock_timeout (Fixture       *f,
                           gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      const char *hold[] = { "hold-lock", NULL };
      g_autoptr(GSubprocess) holder = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GHashTable) entries = NULL;
      g_autofree char *line = NULL;
      GsmSessionManager *manager;
      GsmSession *own;

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      g_setenv ("GSM_LOCK_TIMEOUT", "0.3", TRUE);

      /* Another process holds the registry lock. */
      holder = hardening_spawn (f->dir, hold, 0);
      line = hardening_read_line (holder);
      g_assert_cmpstr (line, ==, "LOCKED");

      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*cannot be used now*Timed out*lock*");
      manager = gsm_session_manager_get_default ();
      g_test_assert_expected_messages ();

      /* While it holds it, an operation fails with that reason. */
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-later", "z", NULL, NULL,
                                                            NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT);
      g_clear_error (&error);
      entries = hardening_read_registry (f->dir);
      g_assert_null (g_hash_table_lookup (entries, gsm_session_manager_get_session_id (manager)));
      g_clear_pointer (&entries, g_hash_table_unref);

      /* Released (its holder died): the next operation enters. */
      g_subprocess_send_signal (holder, SIGKILL);
      g_subprocess_wait (holder, NULL, NULL);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-later", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);

      entries = hardening_read_registry (f->dir);
      own = g_hash_table_lookup (entries, gsm_session_manager_get_session_id (manager));
      g_assert_nonnull (own);
      g_assert_cmpint (gsm_session_get_pid (own), ==, getpid ());
      g_assert_cmpstr (gsm_session_get_vm_id (own), ==, "vm-later");

      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add ("/hardening/records/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("bounds", test_bounds);
  ADD ("startup-lock-timeout", test_startup_lock_timeout);
#undef ADD
  return g_test_run ();
}
