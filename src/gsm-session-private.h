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

#include "gsm-session.h"

G_BEGIN_DECLS

#define GSM_STATUS_ACTIVE "active"
#define GSM_STATUS_STALE "stale"
/* A VM reserved before the cloud call that creates it, not yet confirmed. */
#define GSM_STATUS_CREATING "creating"
#define GSM_STATUS_UNVERIFIABLE "unverifiable"
#define GSM_FORMAT_VERSION 1

G_GNUC_INTERNAL
GsmSession *_gsm_session_new_from_json (const char *key,
                                        const char *text,
                                        gsize       len,
                                        JsonParser *parser,
                                        GError    **error);
G_GNUC_INTERNAL
GsmSession *_gsm_session_new (const char *session_id,
                              int         pid,
                              const char *hostname,
                              double      created_at,
                              guint64     start_time,
                              const char *boot_id);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_vm (GsmSession        *base,
                                  const char        *vm_id,
                                  const char        *zone,
                                  const char *const *components,
                                  GVariant          *metadata,
                                  double             registered_at);
G_GNUC_INTERNAL
GsmSession *_gsm_session_without_vm (GsmSession *base);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_liveness (GsmSession *base,
                                        guint64     pid_ns,
                                        const char *lock_file);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_status (GsmSession *base,
                                      const char *status);
GsmSession *_gsm_session_shown_as (GsmSession *base,
                                   const char *status);
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_stale (GsmSession *base,
                                     double      stale_since);
/* Members the core does not interpret (such as the reaper's "reap_claim"
 * and "reap_attempts"), kept with the entry. @value NULL removes it. */
G_GNUC_INTERNAL
GsmSession *_gsm_session_with_member (GsmSession *base,
                                      const char *name,
                                      JsonNode   *value);
G_GNUC_INTERNAL
JsonNode *_gsm_session_get_member (GsmSession *self,
                                   const char *name);
G_GNUC_INTERNAL
const char *_gsm_session_get_text (GsmSession *self,
                                   gsize      *len);
/* What register_vm() accepts: far below what readers accept of other
 * writers (1024 components, files of 1 MiB and 64 MiB), so that an entry
 * written through the API always fits in its session file. */
#define GSM_MAX_NAME_LEN 255
#define GSM_MAX_COMPONENTS 64
#define GSM_MAX_COMPONENT_LEN 255
#define GSM_MAX_METADATA_SIZE (64 * 1024)

G_GNUC_INTERNAL
gboolean _gsm_validate_identifier (const char *what,
                                   const char *value,
                                   gsize       max_len,
                                   GError    **error);
G_GNUC_INTERNAL
gboolean _gsm_validate_name (const char *what,
                             const char *value,
                             gsize       max_len,
                             GError    **error);

/*
 * The entry's fields, for the library's own loops over thousands of
 * entries (listings, liveness), which read them without a call or a type
 * check. Outside gsm-session.c, read only.
 */
struct _GsmSession
{
  GObject parent_instance;

  char       *session_id;
  int         pid;
  char       *hostname;
  double      created_at;
  const char *status; /* status_active, status_stale or status_other */
  char       *status_other;
  char       *vm_id;
  char       *zone;
  char      **components;
  const char *metadata_text; /* the metadata object as written, in text */
  gsize       metadata_len;
  GVariant   *metadata; /* built lazily from metadata_text */
  double      registered_at;
  guint64     start_time;
  char       *boot_id;
  guint64     pid_ns;    /* inode of its pid namespace, 0 if unknown */
  char       *lock_file; /* held (OFD lock) while the process lives */
  double      stale_since;
  gboolean    leased; /* etcd: read from (or written to) a leased key */
  JsonObject *extra;  /* members we do not know, kept verbatim */

  char *text; /* the entry's JSON text */
  gsize text_len;
};

G_GNUC_INTERNAL
extern const char _gsm_status_stale[];

static inline gboolean
_gsm_session_is_stale (GsmSession *self)
{
  return self->status == _gsm_status_stale;
}

G_END_DECLS
