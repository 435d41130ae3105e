/* gsm-etcd-client-private.h: requests to etcd's v3 JSON gateway
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define GSM_ETCD_DEFAULT_PREFIX "/gsm-session"
#define GSM_ETCD_DEFAULT_PORT 2379
#define GSM_ETCD_DEFAULT_TTL 15
#define GSM_ETCD_DEFAULT_TIMEOUT 5
/* The most a response (or one line of the watch stream) may hold. */
#define GSM_ETCD_MAX_RESPONSE (64 * 1024 * 1024)

/* ---- responses of the v3 JSON gateway ---------------------------------- */

typedef struct
{
  char   *key;              /* decoded; NUL-terminated, may hold NULs */
  gsize   key_len;
  GBytes *value;            /* decoded; empty for a delete event */
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
  GsmEtcdEventType  type;
  GsmEtcdKv        *kv;
} GsmEtcdEvent;

typedef struct
{
  gint64      revision;          /* header.revision, 0 if absent */
  /* kv/range */
  GPtrArray  *kvs;               /* GsmEtcdKv */
  /* kv/txn */
  gboolean    succeeded;
  /* lease/grant, lease/keepalive */
  gint64      lease_id;
  gint64      ttl;               /* 0: the lease does not exist (any more) */
  /* watch */
  gboolean    created;
  gboolean    canceled;
  gint64      compact_revision;
  GPtrArray  *events;            /* GsmEtcdEvent */
  /* auth/authenticate */
  char       *token;             /* secret: never in messages */
  /* an error reported by etcd instead of a result */
  gboolean    has_error;
  int         error_code;        /* gRPC status code */
  char       *error_message;
} GsmEtcdResponse;

G_GNUC_INTERNAL
gboolean  _gsm_etcd_response_parse (const char        *data,
                                    gsize              len,
                                    GsmEtcdResponse  **out,
                                    GError           **error);
G_GNUC_INTERNAL
void      _gsm_etcd_response_free  (GsmEtcdResponse   *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmEtcdResponse, _gsm_etcd_response_free)


/* ---- the URI ----------------------------------------------------------- */

G_GNUC_INTERNAL
gboolean  _gsm_etcd_parse_uri      (const char        *uri,
                                    char            ***endpoints,
                                    char             **prefix,
                                    GError           **error);

/* ---- the client -------------------------------------------------------- */

typedef struct _GsmEtcdClient GsmEtcdClient;

G_GNUC_INTERNAL
GsmEtcdClient   *_gsm_etcd_client_new                (const char           *uri,
                                                      double                timeout,
                                                      char                **prefix,
                                                      GError              **error);
G_GNUC_INTERNAL
void             _gsm_etcd_client_free               (GsmEtcdClient        *client);
G_GNUC_INTERNAL
const char      *_gsm_etcd_client_get_endpoints      (GsmEtcdClient        *client);
G_GNUC_INTERNAL
guint            _gsm_etcd_client_get_preferred      (GsmEtcdClient        *client);
G_GNUC_INTERNAL
void             _gsm_etcd_client_forget_token       (GsmEtcdClient        *client);
G_GNUC_INTERNAL
GsmEtcdResponse *_gsm_etcd_client_post               (GsmEtcdClient        *client,
                                                      const char           *path,
                                                      const char           *body,
                                                      gsize                 len,
                                                      GCancellable         *cancellable,
                                                      GError              **error);
G_GNUC_INTERNAL
void             _gsm_etcd_client_post_async         (GsmEtcdClient        *client,
                                                      const char           *path,
                                                      const char           *body,
                                                      gsize                 len,
                                                      guint                 timeout_ms,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
G_GNUC_INTERNAL
GsmEtcdResponse *_gsm_etcd_client_post_finish        (GsmEtcdClient        *client,
                                                      GAsyncResult         *result,
                                                      GError              **error);
G_GNUC_INTERNAL
void             _gsm_etcd_client_open_stream_async  (GsmEtcdClient        *client,
                                                      const char           *path,
                                                      const char           *body,
                                                      gsize                 len,
                                                      guint                 timeout_ms,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
G_GNUC_INTERNAL
GInputStream    *_gsm_etcd_client_open_stream_finish (GsmEtcdClient        *client,
                                                      GAsyncResult         *result,
                                                      guint                *member,
                                                      GBytes              **first,
                                                      GError              **error);

G_END_DECLS
