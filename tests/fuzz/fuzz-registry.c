/* fuzz-registry.c: a registry file written by anyone
 *
 * The input is written as the registry file of a private directory and
 * read the way every process reads it: a new file registry (lock, read,
 * scan, parse each entry; a file that is not one JSON object is moved
 * aside and rebuilt from the session files, an entry that cannot be read
 * is kept aside alone). If the input holds two NUL bytes in a row, what
 * follows them is a second version of the file, read by the same
 * registry, so that the per-entry cache (an entry whose text did not
 * change is not parsed again) is compared with hostile bytes too.
 *
 * Checked: nothing crashes or leaks; a file that was accepted can be
 * written back with one more entry and read again by a new reader without
 * being found corrupt; every entry of an accepted file is read or kept
 * aside in a quarantine file; a rejected file is moved aside, never lost.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

#include "gsm-file-registry-private.h"

#define REGISTRY "vm_registry.json"

static gboolean
add_entry (GsmRegistryTxn *txn,
           gpointer        user_data,
           GError        **error)
{
  g_autoptr (GsmSession) session = _gsm_session_new ("fuzz-extra-entry", 4242, "fuzz-host",
                                                     1700000000.25, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

static void
check_snapshot (GsmRegistrySnapshot *snapshot,
                JsonParser          *parser)
{
  GsmRegistrySnapshotIter iter;
  const char             *key;
  GsmSession             *value;

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, &key, &value))
    {
      FUZZ_CHECK (g_str_equal (key, gsm_session_get_session_id (value)));
      fuzz_check_session (value, parser);
    }
}

/* Reads the current file with @registry; returns the number of entries,
 * or -1 if it was found corrupt (and moved aside, then rebuilt). */
static int
load (GsmRegistry *registry,
      JsonParser  *parser)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  guint corrupt_before = fuzz_count_files (".corrupt-");

  snapshot = _gsm_registry_load (registry, NULL, &error);
  if (snapshot == NULL)
    {
      fprintf (stderr, "load failed: %s\n", error->message);
      abort ();
    }
  check_snapshot (snapshot, parser);
  /* A corrupt file is moved aside; the snapshot then holds what it still
   * held whole (checked above like any other entry). */
  if (fuzz_count_files (".corrupt-") != corrupt_before)
    return -1;
  return (int) _gsm_registry_snapshot_get_size (snapshot);
}

static gboolean
count_member (const GsmJsonMember *member,
              gpointer             user_data,
              GError             **error)
{
  (*(guint *) user_data)++;
  return TRUE;
}

/* The members of every file of entries kept aside, each of which must be
 * one JSON object. */
static guint
count_quarantined (void)
{
  g_autoptr (GDir) dir = g_dir_open (fuzz_get_dir (), 0, NULL);
  const char *name;
  guint       n = 0;

  FUZZ_CHECK (dir != NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strstr (name, ".quarantine-") != NULL)
      {
        g_autofree char *path = g_build_filename (fuzz_get_dir (), name, NULL);
        g_autofree char *contents = NULL;
        gsize            len;

        FUZZ_CHECK (g_file_get_contents (path, &contents, &len, NULL));
        FUZZ_CHECK (_gsm_json_scan_object (contents, len, GSM_JSON_MAX_DEPTH, count_member, &n, NULL));
      }
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmFileRegistry) reader = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  const uint8_t *second = NULL;
  size_t         first_size = size;
  int            n;

  fuzz_init ();
  fuzz_remove_files ("");

  for (size_t i = 0; i + 1 < size; i++)
    if (data[i] == 0 && data[i + 1] == 0)
      {
        first_size = i;
        second = data + i + 2;
        break;
      }

  fuzz_write_file (REGISTRY, data, first_size);
  /* Opening reads the file (and recovers it if it is corrupt). */
  registry = _gsm_file_registry_new (fuzz_get_dir (), FALSE, "", NULL, 1, FALSE, &error);
  if (registry == NULL)
    {
      fprintf (stderr, "open failed: %s\n", error->message);
      abort ();
    }
  n = fuzz_count_files (".corrupt-") > 0 ? -1 : load (GSM_REGISTRY (registry), parser);
  FUZZ_CHECK (fuzz_count_files (".tmp-") == 0);
  if (n >= 0)
    {
      guint members = 0;

      /* Every entry is read, or kept aside: none is lost. */
      FUZZ_CHECK (_gsm_json_scan_object ((const char *) data, first_size, GSM_JSON_MAX_DEPTH,
                                         count_member, &members, NULL));
      FUZZ_CHECK (members == (guint) n + count_quarantined ());
    }
  if (n < 0)
    {
      /* Moved aside, and replaced by the entries it still held whole,
       * which read back without being found corrupt again. */
      FUZZ_CHECK (fuzz_count_files (".corrupt-") == 1);
      FUZZ_CHECK (load (GSM_REGISTRY (registry), parser) >= 0);
    }

  if (second != NULL)
    {
      size_t second_size = size - (size_t) (second - data);

      /* A new inode, so the cached identity differs. */
      fuzz_remove_files (".corrupt-");
      fuzz_write_file (REGISTRY, second, second_size);
      n = load (GSM_REGISTRY (registry), parser);
    }

  if (n < 0)
    return 0;

  /* Accepted: adding an entry writes the others back from their cached
   * text; a fresh reader must accept the result as it is. */
  snapshot = _gsm_registry_update (GSM_REGISTRY (registry), add_entry, NULL, NULL, &error);
  FUZZ_CHECK (snapshot != NULL);
  FUZZ_CHECK (_gsm_registry_snapshot_contains (snapshot, "fuzz-extra-entry"));
  n = (int) _gsm_registry_snapshot_get_size (snapshot);
  g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);

  reader = _gsm_file_registry_new (fuzz_get_dir (), FALSE, "", NULL, 1, FALSE, &error);
  FUZZ_CHECK (reader != NULL);
  FUZZ_CHECK (fuzz_count_files (".corrupt-") == 0);
  FUZZ_CHECK (load (GSM_REGISTRY (reader), parser) == n);

  return 0;
}
