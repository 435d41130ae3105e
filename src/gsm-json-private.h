/* gsm-json-private.h: reading untrusted JSON before json-glib sees it
 *
 * json-glib 1.6 has no nesting limit (deep input overflows its stack) and
 * accepts empty input. The scanner here checks the grammar and bounds the
 * nesting in one pass over the bytes, and hands back where each member of
 * the top-level object starts and ends, so that a registry entry whose text
 * has not changed is never parsed again.
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

G_GNUC_INTERNAL
gboolean   _gsm_json_scan_object   (const char         *data,
                                    gsize               len,
                                    guint               max_depth,
                                    GsmJsonMemberFunc   func,
                                    gpointer            user_data,
                                    GError            **error);
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
G_GNUC_INTERNAL
void       _gsm_json_append_string (GString            *out,
                                    const char         *str);
G_GNUC_INTERNAL
void       _gsm_json_append_double (GString            *out,
                                    double              value);

G_END_DECLS
