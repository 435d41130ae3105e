/* gsm-session-private.h: registry entries
 *
 * A GsmSession is also the store's record of one registry entry: it keeps
 * the exact JSON text it was read from (or written as), so an unchanged
 * entry is never parsed or generated twice, and it keeps members it does
 * not know so that rewriting an entry preserves them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "gsm-session-info.h"

G_BEGIN_DECLS

#define GSM_STATUS_ACTIVE "active"
#define GSM_STATUS_STALE "stale"
#define GSM_FORMAT_VERSION 1

G_GNUC_INTERNAL
GsmSession *_gsm_session_new_from_json (const char  *key,
                                        const char  *text,
                                        gsize        len,
                                        JsonParser  *parser,
                                        GError     **error);
G_GNUC_INTERNAL
GsmSession *_gsm_session_new           (const char  *session_id,
                                        int          pid,
                                        const char  *hostname,
                                        double       created_at,
                                        guint64      start_time,
                                        const char  *boot_id);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_vm       (GsmSession         *base,
                                        const char         *vm_id,
                                        const char         *zone,
                                        const char * const *components,
                                        GVariant           *metadata,
                                        double              registered_at);
G_GNUC_INTERNAL
GsmSession *_gsm_session_without_vm    (GsmSession  *base);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_stale    (GsmSession  *base,
                                        double       stale_since);
/* Members the core does not interpret (such as the reaper's "reap_claim"
 * and "reap_attempts"), kept with the entry. @value NULL removes it. */
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_member   (GsmSession  *base,
                                        const char  *name,
                                        JsonNode    *value);
G_GNUC_INTERNAL
JsonNode   *_gsm_session_get_member    (GsmSession  *self,
                                        const char  *name);
G_GNUC_INTERNAL
const char *_gsm_session_get_text      (GsmSession  *self,
                                        gsize       *len);
G_GNUC_INTERNAL
gboolean    _gsm_session_is_stale      (GsmSession  *self);
G_GNUC_INTERNAL
gboolean    _gsm_session_id_is         (GsmSession  *self,
                                        const char  *session_id,
                                        guint        hash);
G_GNUC_INTERNAL
guint       _gsm_session_get_id_hash   (GsmSession  *self);
G_GNUC_INTERNAL
gboolean    _gsm_session_hostname_is   (GsmSession  *self,
                                        const char  *hostname,
                                        guint        hash);
G_GNUC_INTERNAL
gboolean    _gsm_validate_identifier   (const char  *what,
                                        const char  *value,
                                        gsize        max_len,
                                        GError     **error);

G_END_DECLS
