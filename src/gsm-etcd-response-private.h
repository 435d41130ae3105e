/* gsm-etcd-response-private.h: what the answers of etcd's v3 JSON gateway mean
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most a response (or one line of the watch stream) may hold. */
#define GSM_ETCD_MAX_RESPONSE (64 * 1024 * 1024)

typedef struct
{
  char   *key; /* decoded; NUL-terminated, may hold NULs */
  gsize   key_len;
  GBytes *value; /* decoded; empty for a delete event */
  gint64  create_revision;
  gint64  mod_revision;
  gint64  lease;
} GsmEtcdKv;

typedef enum
{
  GSM_ETCD_EVENT_PUT,
  GSM_ETCD_EVENT_DELETE,
} GsmEtcdEventType;

typedef struct
{
  GsmEtcdEventType type;
  GsmEtcdKv       *kv;
} GsmEtcdEvent;

typedef struct
{
  gint64 revision; /* header.revision, 0 if absent */
  /* kv/range */
  GPtrArray *kvs; /* GsmEtcdKv */
  /* kv/txn */
  gboolean succeeded;
  /* lease/grant, lease/keepalive */
  gint64 lease_id;
  gint64 ttl; /* 0: the lease does not exist (any more) */
  /* watch */
  gboolean   created;
  gboolean   canceled;
  gint64     compact_revision;
  GPtrArray *events; /* GsmEtcdEvent */
  /* auth/authenticate */
  char *token; /* secret: never in messages */
  /* an error reported by etcd instead of a result */
  gboolean has_error;
  int      error_code; /* gRPC status code */
  char    *error_message;
} GsmEtcdResponse;

G_GNUC_INTERNAL
gboolean _gsm_etcd_response_parse (const char       *data,
                                   gsize             len,
                                   GsmEtcdResponse **out,
                                   GError          **error);
G_GNUC_INTERNAL
void _gsm_etcd_response_free (GsmEtcdResponse *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmEtcdResponse, _gsm_etcd_response_free)

G_END_DECLS
