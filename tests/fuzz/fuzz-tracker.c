/* fuzz-tracker.c: a global tracker file written by anyone
 *
 * PREFIX global_session.json is only read when a session leaves the
 * registry: it is removed if it is about that session, else left alone.
 * The input is written as the tracker while a session is registered, then
 * the session leaves.
 *
 * Checked: nothing crashes or leaks; the tracker is removed exactly when
 * it names the leaving session, and otherwise kept byte for byte.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

#include "gsm-file-registry-private.h"

#define OWN_ID "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define TRACKER "global_session.json"

static gboolean
enter (GsmRegistryTxn *txn,
       gpointer        user_data,
       GError        **error)
{
  g_autoptr (GsmSession) session = _gsm_session_new (OWN_ID, 4242, "fuzz-host",
                                                     1700000000.25, 0, NULL);

  _gsm_registry_txn_put (txn, session);
  return TRUE;
}

static gboolean
leave (GsmRegistryTxn *txn,
       gpointer        user_data,
       GError        **error)
{
  _gsm_registry_txn_remove (txn, OWN_ID);
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static GsmFileRegistry *registry;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *tracker_path = NULL;
  const char      *needle = "\"session_id\": \"" OWN_ID "\"";
  gboolean         about_us;

  fuzz_init ();
  if (registry == NULL)
    {
      registry = _gsm_file_registry_new (fuzz_get_dir (), FALSE, "", OWN_ID, 4242, FALSE, &error);
      FUZZ_CHECK (registry != NULL);
    }

  snapshot = _gsm_registry_update (GSM_REGISTRY (registry), enter, NULL, NULL, &error);
  FUZZ_CHECK (snapshot != NULL);
  g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);

  fuzz_write_file (TRACKER, data, size);
  snapshot = _gsm_registry_update (GSM_REGISTRY (registry), leave, NULL, NULL, &error);
  FUZZ_CHECK (snapshot != NULL);
  FUZZ_CHECK (!_gsm_registry_snapshot_contains (snapshot, OWN_ID));

  /* The tracker is text: what follows a NUL byte does not count. */
  about_us = memmem (data, strnlen ((const char *) data, size), needle, strlen (needle)) != NULL;
  tracker_path = _gsm_file_registry_get_path (registry, "tracker");
  FUZZ_CHECK (g_file_test (tracker_path, G_FILE_TEST_EXISTS) == !about_us);
  if (!about_us)
    FUZZ_CHECK (fuzz_file_equals (TRACKER, data, size));
  FUZZ_CHECK (fuzz_count_files (".tmp-") == 0);

  return 0;
}
