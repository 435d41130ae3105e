/* fuzz-json.c: the registry's bytes in memory
 *
 * The scanner that guards json-glib (grammar, nesting), key decoding, and
 * the parse of each entry: the path every registry, session file and
 * tracker read takes, without the file system, so it runs fast.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

static gboolean
member_cb (const GsmJsonMember  *member,
           gpointer              user_data,
           GError              **error)
{
  JsonParser *parser = user_data;
  g_autofree char *key = _gsm_json_decode_key (member);
  g_autoptr(GsmSession) session = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize len;

  FUZZ_CHECK (member->value_len > 0);
  FUZZ_CHECK (_gsm_json_check (member->value, member->value_len, GSM_JSON_MAX_DEPTH, NULL));
  if (key == NULL)
    return TRUE;

  session = _gsm_session_new_from_json (key, member->value, member->value_len, parser,
                                        &local_error);
  if (session == NULL)
    {
      FUZZ_CHECK (local_error != NULL);
      return TRUE;
    }
  FUZZ_CHECK (g_str_equal (gsm_session_get_session_id (session), key));
  /* The entry keeps its exact text, so an unchanged entry is rewritten
   * byte for byte. */
  FUZZ_CHECK (memcmp (_gsm_session_get_text (session, &len), member->value, member->value_len) == 0);
  FUZZ_CHECK (len == member->value_len);
  fuzz_check_session (session, parser);

  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) error = NULL;
  gboolean is_object;

  fuzz_init ();
  parser = json_parser_new_immutable ();

  (void) _gsm_json_check ((const char *) data, size, GSM_JSON_MAX_DEPTH, NULL);
  is_object = _gsm_json_scan_object ((const char *) data, size, GSM_JSON_MAX_DEPTH,
                                     member_cb, parser, &error);
  FUZZ_CHECK (is_object == (error == NULL));
  /* An object is also a value, with the same nesting limit. */
  if (is_object)
    FUZZ_CHECK (_gsm_json_check ((const char *) data, size, GSM_JSON_MAX_DEPTH, NULL));

  return 0;
}
