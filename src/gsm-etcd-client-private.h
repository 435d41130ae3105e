/* gsm-etcd-client-private.h: requests to etcd's v3 JSON gateway
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "gsm-etcd-response-private.h"

G_BEGIN_DECLS

#define GSM_ETCD_DEFAULT_PREFIX "/gsm-session"
#define GSM_ETCD_DEFAULT_PORT 2379
#define GSM_ETCD_DEFAULT_TTL 15
#define GSM_ETCD_DEFAULT_TIMEOUT 5

/* ---- the URI ----------------------------------------------------------- */

G_GNUC_INTERNAL
gboolean _gsm_etcd_parse_uri (const char *uri,
                              char     ***endpoints,
                              char      **prefix,
                              GError    **error);

/* ---- request bodies ---------------------------------------------------- */

G_GNUC_INTERNAL
void _gsm_etcd_append_base64 (GString      *body,
                              gconstpointer data,
                              gsize         len);
G_GNUC_INTERNAL
void _gsm_etcd_append_range (GString    *body,
                             const char *prefix);

/* ---- the client -------------------------------------------------------- */

typedef struct _GsmEtcdClient GsmEtcdClient;

G_GNUC_INTERNAL
GsmEtcdClient *_gsm_etcd_client_new (const char *uri,
                                     double      timeout,
                                     char      **prefix,
                                     GError    **error);
G_GNUC_INTERNAL
void _gsm_etcd_client_free (GsmEtcdClient *client);
G_GNUC_INTERNAL
const char *_gsm_etcd_client_get_endpoints (GsmEtcdClient *client);
G_GNUC_INTERNAL
guint _gsm_etcd_client_get_preferred (GsmEtcdClient *client);
G_GNUC_INTERNAL
void _gsm_etcd_client_forget_token (GsmEtcdClient *client);
G_GNUC_INTERNAL
GsmEtcdResponse *_gsm_etcd_client_post (GsmEtcdClient *client,
                                        const char    *path,
                                        const char    *body,
                                        gsize          len,
                                        GCancellable  *cancellable,
                                        GError       **error);
G_GNUC_INTERNAL
void _gsm_etcd_client_post_async (GsmEtcdClient      *client,
                                  const char         *path,
                                  const char         *body,
                                  gsize               len,
                                  guint               timeout_ms,
                                  GCancellable       *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer            user_data);
G_GNUC_INTERNAL
GsmEtcdResponse *_gsm_etcd_client_post_finish (GsmEtcdClient *client,
                                               GAsyncResult  *result,
                                               GError       **error);
G_GNUC_INTERNAL
void _gsm_etcd_client_open_stream_async (GsmEtcdClient      *client,
                                         const char         *path,
                                         const char         *body,
                                         gsize               len,
                                         guint               timeout_ms,
                                         GCancellable       *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer            user_data);
G_GNUC_INTERNAL
GInputStream *_gsm_etcd_client_open_stream_finish (GsmEtcdClient *client,
                                                   GAsyncResult  *result,
                                                   guint         *member,
                                                   GBytes       **first,
                                                   GError       **error);

G_END_DECLS
