/* test-load.c: many writers at once, readers without the lock
 *
 * Started together:
 *  - P session processes (the session manager), each M register and
 *    unregister cycles, then one last VM kept as it exits;
 *  - C counter processes, each K read-modify-write updates of one shared
 *    counter entry under the registry lock;
 *  - R readers reading the registry file in a loop without the lock,
 *    checking every version they see is whole and every entry parses.
 * Then: the counter is exactly 2 + C × K and every session process's last
 * VM is in the registry (no lost update), no reader ever saw a partial
 * file, and no temporary file is left once the registry is opened.
 *
 * GSM_LOAD_PROCS, GSM_LOAD_CYCLES, GSM_LOAD_COUNTERS, GSM_LOAD_COUNTS,
 * GSM_LOAD_READERS set P, M, C, K, R (8, 10, 4, 25, 2; tools/stress.sh
 * runs 64 × 100).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

static void
test_load (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-load-XXXXXX", &error);
  g_autofree char *stop = NULL;
  g_autofree char *cycles = NULL;
  g_autofree char *counts = NULL;
  g_autoptr (GPtrArray) writers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GPtrArray) counters = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GPtrArray) readers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GHashTable) registry = NULL;
  g_autoptr (GsmFileRegistry) opened = NULL;
  int         n_procs = hardening_env_int ("GSM_LOAD_PROCS", 8);
  int         n_cycles = hardening_env_int ("GSM_LOAD_CYCLES", 10);
  int         n_counters = hardening_env_int ("GSM_LOAD_COUNTERS", 4);
  int         n_counts = hardening_env_int ("GSM_LOAD_COUNTS", 25);
  int         n_readers = hardening_env_int ("GSM_LOAD_READERS", 2);
  guint       reads = 0, bad_reads = 0, lost = 0, found = 0;
  GsmSession *counter;
  gint64      start = g_get_monotonic_time ();

  g_assert_no_error (error);
  stop = g_build_filename (dir, "stop-readers", NULL);
  cycles = g_strdup_printf ("%d", n_cycles);
  counts = g_strdup_printf ("%d", n_counts);

  for (int i = 0; i < n_readers; i++)
    {
      const char *args[] = { "read-raw", stop, NULL };
      g_ptr_array_add (readers, hardening_spawn (dir, args, 0));
    }
  for (int i = 0; i < n_procs; i++)
    {
      g_autofree char *tag = g_strdup_printf ("w%d", i);
      const char      *args[] = { "writer", tag, cycles, "keep", NULL };
      g_ptr_array_add (writers, hardening_spawn (dir, args, 0));
    }
  for (int i = 0; i < n_counters; i++)
    {
      const char *args[] = { "count", counts, NULL };
      g_ptr_array_add (counters, hardening_spawn (dir, args, 0));
    }

  for (guint i = 0; i < counters->len; i++)
    {
      g_auto (GStrv) lines = NULL;
      g_autofree char *expected = g_strdup_printf ("COUNTED %d", n_counts);
      int              status;

      lines = hardening_finish (counters->pdata[i], &status);
      g_assert_cmpint (status, ==, 0);
      g_assert_cmpstr (lines[0], ==, expected);
    }

  for (guint i = 0; i < writers->len; i++)
    {
      g_auto (GStrv) lines = NULL;
      g_autofree char *done = g_strdup_printf ("DONE %d", n_cycles);
      g_autofree char *final = g_strdup_printf ("FINAL w%u-final", i);
      guint            n;
      int              status;

      lines = hardening_finish (writers->pdata[i], &status);
      n = g_strv_length (lines);
      g_assert_cmpint (status, ==, 0);
      g_assert_cmpuint (n, >=, 3);
      g_assert_cmpstr (lines[n - 2], ==, done);
      g_assert_cmpstr (lines[n - 1], ==, final);
    }

  g_assert_true (g_file_set_contents (stop, "", 0, NULL));
  for (guint i = 0; i < readers->len; i++)
    {
      g_auto (GStrv) lines = NULL;
      guint r = 0, b = 0, e = 0;
      int   status;

      lines = hardening_finish (readers->pdata[i], &status);
      for (guint k = 0; lines[k] != NULL; k++)
        if (sscanf (lines[k], "READS %u BAD %u EMPTY %u", &r, &b, &e) != 3)
          g_test_message ("reader: %s", lines[k]);
      reads += r;
      bad_reads += b;
      g_assert_cmpint (status, ==, 0);
    }

  registry = hardening_read_registry (dir);
  counter = g_hash_table_lookup (registry, "counter");
  g_assert_nonnull (counter);
  lost += (guint) (2 + n_counters * n_counts - gsm_session_get_pid (counter));
  for (int i = 0; i < n_procs; i++)
    {
      g_autofree char *vm_id = g_strdup_printf ("w%d-final", i);
      GHashTableIter   iter;
      gpointer         value;
      gboolean         here = FALSE;

      g_hash_table_iter_init (&iter, registry);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (g_strcmp0 (gsm_session_get_vm_id (value), vm_id) == 0)
          here = TRUE;
      if (here)
        found++;
      else
        lost++;
    }

  opened = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hardening_count_files (dir, ".tmp-"), ==, 0);
  g_assert_cmpuint (hardening_count_files (dir, ".corrupt-"), ==, 0);

  g_test_message ("FIGURES load procs=%d cycles=%d counters=%dx%d readers=%d: "
                  "%d registry updates in %.1f s, lost updates=%u, final VMs found=%u/%d, "
                  "reads=%u partial_reads=%u",
                  n_procs, n_cycles, n_counters, n_counts, n_readers,
                  n_procs * (2 * n_cycles + 2) + n_counters * n_counts,
                  (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC,
                  lost, found, n_procs, reads, bad_reads);
  g_assert_cmpuint (lost, ==, 0);
  g_assert_cmpuint (bad_reads, ==, 0);
  g_assert_cmpuint (reads, >, 0);

  hardening_rm_rf (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hardening/load/no-lost-update", test_load);
  return g_test_run ();
}
