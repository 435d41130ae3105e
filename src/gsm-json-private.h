/* gsm-json-private.h: reading untrusted JSON, writing JSON
 *
 * json-glib 1.6 reads JSON, but no bytes reach it unchecked: it has no
 * nesting limit (deep input overflows its stack), accepts what is not
 * JSON, returns no error for empty input, and reads some JSON as
 * something else (see _gsm_json_scan()). The scan checks the bytes in one
 * pass first; it also hands back where each member of the top-level
 * object starts and ends, so that a registry entry whose text has not
 * changed is never read again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define GSM_JSON_MAX_DEPTH 32

/* One member of the top-level object: the key as raw bytes between its
 * quotes (escapes not decoded), the raw text of its value, and (if the
 * scan is strict) the decoded key. */
typedef struct
{
  const char *key;
  gsize       key_len;
  gboolean    key_has_escapes;
  const char *value;
  gsize       value_len;
  const char *name;
} GsmJsonMember;

typedef gboolean (*GsmJsonMemberFunc) (const GsmJsonMember *member,
                                       gpointer             user_data,
                                       GError             **error);

G_GNUC_INTERNAL
gboolean _gsm_json_scan (const char       *data,
                         gsize             len,
                         guint             max_depth,
                         gboolean          strict,
                         GsmJsonMemberFunc func,
                         gpointer          user_data,
                         GError          **error);

/* Any one value, strictly. */
#define _gsm_json_check(data, len, max_depth, error) \
  _gsm_json_scan ((data), (len), (max_depth), TRUE, NULL, NULL, (error))

/* One object, calling @func with each member; duplicate names, `\u0000`
 * and integers beyond 64 bits are left to the caller (a registry's bad
 * entry costs that entry alone). */
#define _gsm_json_scan_object(data, len, max_depth, func, user_data, error) \
  _gsm_json_scan ((data), (len), (max_depth), FALSE, (func), (user_data), (error))

G_GNUC_INTERNAL
guint _gsm_json_salvage_object (const char       *data,
                                gsize             len,
                                guint             max_depth,
                                GsmJsonMemberFunc func,
                                gpointer          user_data);
G_GNUC_INTERNAL
JsonNode *_gsm_json_parse (JsonParser *parser,
                           const char *data,
                           gsize       len,
                           GError    **error);
G_GNUC_INTERNAL
char *_gsm_json_decode_key (const GsmJsonMember *member);

G_GNUC_INTERNAL
void _gsm_json_append_string (GString    *out,
                              const char *str);
G_GNUC_INTERNAL
gboolean _gsm_json_append_node (GString  *out,
                                JsonNode *node);
G_GNUC_INTERNAL
void _gsm_json_append_double (GString *out,
                              double   value);

G_END_DECLS
