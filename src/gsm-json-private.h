/* gsm-json-private.h: reading untrusted JSON
 *
 * The scanner checks the whole JSON grammar (numbers exactly as RFC 8259
 * writes them, strings valid UTF-8 with well-formed escapes) and bounds the
 * nesting in one pass over the bytes (json-glib 1.6 has no nesting limit:
 * deep input overflows its stack). It hands back where each member of the
 * top-level object starts and ends, so that a registry entry whose text has
 * not changed is never read again, and the decoders below turn the text of
 * single values into C values without building a json-glib tree.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define GSM_JSON_MAX_DEPTH 32

/* One member of the top-level object: the key as raw bytes between its
 * quotes (escapes not decoded) and the raw text of its value. */
typedef struct
{
  const char *key;
  gsize       key_len;
  gboolean    key_has_escapes;
  const char *value;
  gsize       value_len;
} GsmJsonMember;

typedef gboolean (*GsmJsonMemberFunc) (const GsmJsonMember *member,
                                       gpointer             user_data,
                                       GError             **error);

/* One element of an array: the raw text of its value. */
typedef gboolean (*GsmJsonElementFunc) (const char  *value,
                                        gsize        value_len,
                                        gpointer     user_data,
                                        GError     **error);

G_GNUC_INTERNAL
gboolean   _gsm_json_scan_object   (const char         *data,
                                    gsize               len,
                                    guint               max_depth,
                                    GsmJsonMemberFunc   func,
                                    gpointer            user_data,
                                    GError            **error);
G_GNUC_INTERNAL
gboolean   _gsm_json_scan_array    (const char         *data,
                                    gsize               len,
                                    guint               max_depth,
                                    GsmJsonElementFunc  func,
                                    gpointer            user_data,
                                    GError            **error);
G_GNUC_INTERNAL
guint      _gsm_json_salvage_object (const char        *data,
                                    gsize               len,
                                    guint               max_depth,
                                    GsmJsonMemberFunc   func,
                                    gpointer            user_data);
G_GNUC_INTERNAL
gboolean   _gsm_json_check         (const char         *data,
                                    gsize               len,
                                    guint               max_depth,
                                    GError            **error);
G_GNUC_INTERNAL
JsonNode  *_gsm_json_parse         (JsonParser         *parser,
                                    const char         *data,
                                    gsize               len,
                                    GError            **error);
G_GNUC_INTERNAL
char      *_gsm_json_decode_key    (const GsmJsonMember *member);

/* Decoders for the text of single values the scanner accepted (so it is
 * valid UTF-8 and its numbers follow the grammar); none uses json-glib. */
G_GNUC_INTERNAL
char      *_gsm_json_decode_string (const char         *value,
                                    gsize               len);
G_GNUC_INTERNAL
gboolean   _gsm_json_decode_int64  (const char         *value,
                                    gsize               len,
                                    gint64             *out,
                                    gboolean           *overflow);
G_GNUC_INTERNAL
gboolean   _gsm_json_decode_double (const char         *value,
                                    gsize               len,
                                    double             *out);
G_GNUC_INTERNAL
gboolean   _gsm_json_is_number     (const char         *value,
                                    gsize               len);
G_GNUC_INTERNAL
gboolean   _gsm_json_is_null       (const char         *value,
                                    gsize               len);
G_GNUC_INTERNAL
void       _gsm_json_append_string (GString            *out,
                                    const char         *str);
G_GNUC_INTERNAL
gboolean   _gsm_json_append_node   (GString            *out,
                                    JsonNode           *node);
G_GNUC_INTERNAL
void       _gsm_json_append_double (GString            *out,
                                    double              value);

G_END_DECLS
