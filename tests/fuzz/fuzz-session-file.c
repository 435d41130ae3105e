/* fuzz-session-file.c: session files written by anyone
 *
 * A process's own entry is also kept in PREFIX session_<pid>.json; when
 * the registry is found corrupt it is rebuilt from those files. The input
 * is split at each pair of NUL bytes into up to four session files, the
 * registry is made corrupt, and a new reader rebuilds it from them.
 *
 * Checked: nothing crashes or leaks; the rebuilt registry holds exactly
 * the sessions of the files that parse on their own, and a fresh reader
 * accepts it without finding it corrupt.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

#include "gsm-file-registry-private.h"

#define MAX_FILES 4

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmFileRegistry) reader = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GsmRegistrySnapshot) reread = NULL;
  g_autoptr (GHashTable) expected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  size_t start = 0;
  guint  n_files = 0;

  fuzz_init ();
  fuzz_remove_files ("");

  while (start <= size && n_files < MAX_FILES)
    {
      size_t           end = start;
      g_autofree char *name = NULL;
      g_autoptr (GsmSession) session = NULL;

      while (end + 1 < size && !(data[end] == 0 && data[end + 1] == 0))
        end++;
      if (end + 1 >= size || n_files == MAX_FILES - 1)
        end = size;

      name = g_strdup_printf ("session_%u.json", 100 + n_files);
      fuzz_write_file (name, data + start, end - start);
      n_files++;
      if (_gsm_json_check ((const char *) data + start, end - start, GSM_JSON_MAX_DEPTH, NULL))
        session = _gsm_session_new_from_json (NULL, (const char *) data + start, end - start,
                                              parser, NULL);
      if (session != NULL)
        {
          fuzz_check_session (session, parser);
          g_hash_table_add (expected, g_strdup (gsm_session_get_session_id (session)));
        }
      start = end + 2;
    }

  fuzz_write_file ("vm_registry.json", (const uint8_t *) "{\"x\": [}", 8);
  registry = _gsm_file_registry_new (fuzz_get_dir (), FALSE, "", NULL, 1, FALSE, &error);
  if (registry == NULL)
    {
      fprintf (stderr, "open failed: %s\n", error->message);
      abort ();
    }
  FUZZ_CHECK (fuzz_count_files (".corrupt-") == 1);
  FUZZ_CHECK (fuzz_count_files (".tmp-") == 0);

  snapshot = _gsm_registry_load (GSM_REGISTRY (registry), NULL, &error);
  FUZZ_CHECK (snapshot != NULL);
  FUZZ_CHECK (_gsm_registry_snapshot_get_size (snapshot) == g_hash_table_size (expected));
  {
    GHashTableIter iter;
    gpointer       key;

    g_hash_table_iter_init (&iter, expected);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      FUZZ_CHECK (_gsm_registry_snapshot_contains (snapshot, key));
  }

  reader = _gsm_file_registry_new (fuzz_get_dir (), FALSE, "", NULL, 1, FALSE, &error);
  FUZZ_CHECK (reader != NULL);
  FUZZ_CHECK (fuzz_count_files (".corrupt-") == 1);
  reread = _gsm_registry_load (GSM_REGISTRY (reader), NULL, &error);
  FUZZ_CHECK (reread != NULL);
  FUZZ_CHECK (_gsm_registry_snapshot_get_size (reread) == g_hash_table_size (expected));

  return 0;
}
