/* fuzz-json.c: the registry's bytes in memory
 *
 * The scan (grammar, nesting, what json-glib would misread), key
 * decoding, the decoding of each entry, and the generator: the path every
 * registry, session file and tracker read takes, without the file system,
 * so it runs fast. json-glib is the oracle: what the strict scan accepts
 * json-glib must read, as one value, with the members the scan saw; what
 * json-glib refuses the scan must refuse; what we write of a tree must
 * read back as the same tree.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

/* The member @name of @object as json-glib reads it, %NULL if absent or
 * null. */
static JsonNode *
oracle_member (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && !JSON_NODE_HOLDS_NULL (node) ? node : NULL;
}

static void
oracle_check_string (JsonObject *object,
                     const char *name,
                     const char *ours)
{
  JsonNode *node = oracle_member (object, name);

  if (ours == NULL)
    {
      FUZZ_CHECK (node == NULL);
      return;
    }
  FUZZ_CHECK (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
              json_node_get_value_type (node) == G_TYPE_STRING);
  FUZZ_CHECK (g_str_equal (json_node_get_string (node), ours));
}

static void
oracle_check_number (JsonObject *object,
                     const char *name,
                     double      ours)
{
  JsonNode *node = oracle_member (object, name);

  if (node == NULL)
    {
      FUZZ_CHECK (ours == 0);
      return;
    }
  FUZZ_CHECK (JSON_NODE_HOLDS_VALUE (node));
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    FUZZ_CHECK ((double) json_node_get_int (node) == ours);
  else
    FUZZ_CHECK (json_node_get_double (node) == ours);
}

/* Differential check: json-glib (the reader every entry went through
 * before) must see the same session in text our decoder accepted. */
static void
oracle_check (GsmSession *session,
              const char *text,
              gsize       len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GVariant) expected_metadata = NULL;
  const char *const *components;
  JsonObject        *object;
  JsonNode          *node;
  gboolean           has_vm = gsm_session_get_has_vm (session);

  if (!json_parser_load_from_data (parser, text, (gssize) len, NULL) ||
      json_parser_get_root (parser) == NULL)
    return;
  FUZZ_CHECK (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  object = json_node_get_object (json_parser_get_root (parser));

  oracle_check_string (object, "session_id", gsm_session_get_session_id (session));
  oracle_check_string (object, "hostname", gsm_session_get_hostname (session));
  node = oracle_member (object, "pid");
  FUZZ_CHECK (node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
              json_node_get_value_type (node) == G_TYPE_INT64);
  FUZZ_CHECK (json_node_get_int (node) == gsm_session_get_pid (session));
  oracle_check_string (object, "vm_id", gsm_session_get_vm_id (session));
  if (oracle_member (object, "status") != NULL)
    oracle_check_string (object, "status", gsm_session_get_status (session));
  else
    FUZZ_CHECK (g_str_equal (gsm_session_get_status (session), GSM_STATUS_ACTIVE));
  oracle_check_string (object, "boot_id", gsm_session_get_boot_id (session));
  oracle_check_number (object, "created_at", gsm_session_get_created_at (session));
  oracle_check_number (object, "stale_since", gsm_session_get_stale_since (session));
  node = oracle_member (object, "start_time");
  FUZZ_CHECK ((node != NULL ? (guint64) json_node_get_int (node) : 0) ==
              gsm_session_get_start_time (session));

  /* Without a VM its fields are cleared, whatever the entry says. */
  components = gsm_session_get_components (session);
  if (!has_vm)
    {
      FUZZ_CHECK (gsm_session_get_zone (session) == NULL);
      FUZZ_CHECK (components[0] == NULL);
      FUZZ_CHECK (g_variant_n_children (gsm_session_get_metadata (session)) == 0);
      FUZZ_CHECK (gsm_session_get_registered_at (session) == 0);
      return;
    }

  oracle_check_string (object, "zone", gsm_session_get_zone (session));
  oracle_check_number (object, "registered_at", gsm_session_get_registered_at (session));
  node = oracle_member (object, "components");
  if (node == NULL)
    FUZZ_CHECK (components[0] == NULL);
  else
    {
      JsonArray *array = json_node_get_array (node);

      FUZZ_CHECK (json_array_get_length (array) == g_strv_length ((char **) components));
      for (guint i = 0; components[i] != NULL; i++)
        FUZZ_CHECK (g_str_equal (json_array_get_string_element (array, i), components[i]));
    }

  node = oracle_member (object, "metadata");
  if (node != NULL)
    expected_metadata = json_gvariant_deserialize (node, "a{sv}", NULL);
  if (expected_metadata == NULL)
    expected_metadata = g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
  g_variant_ref_sink (expected_metadata);
  FUZZ_CHECK (g_variant_equal (expected_metadata, gsm_session_get_metadata (session)));
}

static gboolean
member_cb (const GsmJsonMember *member,
           gpointer             user_data,
           GError             **error)
{
  JsonParser      *parser = user_data;
  g_autofree char *key = _gsm_json_decode_key (member);
  g_autoptr (GsmSession) session = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize len;

  FUZZ_CHECK (member->value_len > 0);
  FUZZ_CHECK (_gsm_json_scan (member->value, member->value_len, GSM_JSON_MAX_DEPTH, FALSE,
                              NULL, NULL, NULL));
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
  oracle_check (session, member->value, member->value_len);
  fuzz_check_session (session, parser);

  return TRUE;
}

static gboolean
count_member (const GsmJsonMember *member,
              gpointer             user_data,
              GError             **error)
{
  (*(guint *) user_data)++;
  return TRUE;
}

/* The strict scan's verdict against json-glib's. */
static void
oracle_verdict (const char *data,
                size_t      size)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonParser) reparser = json_parser_new ();
  g_autoptr (GString) written = g_string_new (NULL);
  gboolean  strict = _gsm_json_check (data, size, GSM_JSON_MAX_DEPTH, NULL);
  guint     members = 0;
  JsonNode *root;

  /* Deeper input would overflow json-glib's stack. */
  if (!_gsm_json_scan (data, size, GSM_JSON_MAX_DEPTH, FALSE, NULL, NULL, NULL))
    return;
  if (!json_parser_load_from_data (parser, data, (gssize) size, NULL))
    {
      FUZZ_CHECK (!strict);
      return;
    }
  root = json_parser_get_root (parser);
  if (!strict)
    return;
  FUZZ_CHECK (root != NULL);
  if (JSON_NODE_HOLDS_OBJECT (root))
    {
      FUZZ_CHECK (_gsm_json_scan (data, size, GSM_JSON_MAX_DEPTH, TRUE, count_member, &members, NULL));
      FUZZ_CHECK (json_object_get_size (json_node_get_object (root)) == members);
    }

  /* Written back (unless it holds a number beyond a double's range), it
   * reads back as the same tree. */
  if (!_gsm_json_append_node (written, root))
    return;
  FUZZ_CHECK (_gsm_json_check (written->str, written->len, GSM_JSON_MAX_DEPTH, NULL));
  FUZZ_CHECK (json_parser_load_from_data (reparser, written->str, (gssize) written->len, NULL));
  FUZZ_CHECK (json_node_equal (root, json_parser_get_root (reparser)));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) error = NULL;
  gboolean is_object;

  fuzz_init ();
  parser = json_parser_new_immutable ();

  oracle_verdict ((const char *) data, size);
  is_object = _gsm_json_scan_object ((const char *) data, size, GSM_JSON_MAX_DEPTH,
                                     member_cb, parser, &error);
  FUZZ_CHECK (is_object == (error == NULL));
  /* An object is also a value, with the same nesting limit. */
  if (is_object)
    FUZZ_CHECK (_gsm_json_scan ((const char *) data, size, GSM_JSON_MAX_DEPTH, FALSE,
                                NULL, NULL, NULL));

  return 0;
}
