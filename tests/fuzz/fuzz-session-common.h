/* fuzz-session-common.h: what every target checks on an accepted entry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "fuzz-common.h"

#include <gsm.h>

#include "gsm-json-private.h"
#include "gsm-session-private.h"

/* An entry that was accepted must be usable through every getter, and
 * what we would write back for it must read back as the same session. */
G_GNUC_UNUSED static void
fuzz_check_session (GsmSession *session,
                    JsonParser *parser)
{
  g_autoptr (GVariant) metadata = NULL;
  g_autoptr (GVariant) variant = NULL;
  g_autoptr (GsmSession) stale = NULL;
  g_autoptr (GsmSession) reread = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char   *json = NULL;
  const char *const *components;
  const char        *text;
  gsize              len;

  FUZZ_CHECK (gsm_session_get_session_id (session) != NULL);
  FUZZ_CHECK (gsm_session_get_hostname (session) != NULL);
  FUZZ_CHECK (gsm_session_get_pid (session) >= 1);
  FUZZ_CHECK (gsm_session_get_status (session) != NULL);
  components = gsm_session_get_components (session);
  FUZZ_CHECK (components != NULL);
  for (guint i = 0; components[i] != NULL; i++)
    FUZZ_CHECK (g_utf8_validate (components[i], -1, NULL));
  metadata = gsm_session_get_metadata (session);
  FUZZ_CHECK (metadata != NULL && !g_variant_is_floating (metadata));
  g_variant_ref (metadata);
  FUZZ_CHECK ((gsm_session_get_vm_id (session) != NULL) == gsm_session_get_has_vm (session));
  variant = gsm_session_to_variant (session);
  FUZZ_CHECK (variant != NULL && !g_variant_is_floating (variant));
  json = gsm_session_to_json (session);
  FUZZ_CHECK (json != NULL);
  (void) gsm_session_get_created_at (session);
  (void) gsm_session_get_registered_at (session);
  (void) gsm_session_get_start_time (session);
  (void) gsm_session_get_boot_id (session);
  (void) gsm_session_get_stale_since (session);

  /* Rewriting an entry (as marking it stale does) generates its text
   * from the fields; that text must read back. */
  stale = _gsm_session_with_stale (session, 1700000000.5);
  text = _gsm_session_get_text (stale, &len);
  FUZZ_CHECK (_gsm_json_check (text, len, GSM_JSON_MAX_DEPTH, NULL));
  reread = _gsm_session_new_from_json (gsm_session_get_session_id (session), text, len,
                                       parser, &error);
  if (reread == NULL)
    fprintf (stderr, "rewritten entry does not read back: %s\n%.*s\n",
             error->message, (int) len, text);
  FUZZ_CHECK (reread != NULL);
  FUZZ_CHECK (g_str_equal (gsm_session_get_hostname (reread), gsm_session_get_hostname (session)));
  FUZZ_CHECK (gsm_session_get_pid (reread) == gsm_session_get_pid (session));
  FUZZ_CHECK (g_strcmp0 (gsm_session_get_vm_id (reread), gsm_session_get_vm_id (session)) == 0);
  FUZZ_CHECK (g_strcmp0 (gsm_session_get_zone (reread), gsm_session_get_zone (session)) == 0);
}
