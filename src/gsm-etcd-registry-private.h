/* gsm-etcd-registry-private.h: the registry in etcd, for many hosts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-etcd-client-private.h"
#include "gsm-registry-private.h"

G_BEGIN_DECLS

/* ---- the registry ------------------------------------------------------ */

#define GSM_TYPE_ETCD_REGISTRY (_gsm_etcd_registry_get_type ())

G_GNUC_INTERNAL
G_DECLARE_FINAL_TYPE (GsmEtcdRegistry, _gsm_etcd_registry, GSM, ETCD_REGISTRY, GObject)

G_GNUC_INTERNAL
GsmEtcdRegistry *_gsm_etcd_registry_new (const char   *uri,
                                         const char   *own_session_id,
                                         double        lease_ttl,
                                         double        timeout,
                                         GCancellable *cancellable,
                                         GError      **error);
G_GNUC_INTERNAL
gint64 _gsm_etcd_registry_get_lease_id (GsmEtcdRegistry *self);
G_GNUC_INTERNAL
gboolean _gsm_etcd_registry_append_audit (GsmEtcdRegistry *self,
                                          const char      *line,
                                          GError         **error);
G_GNUC_INTERNAL
char **_gsm_etcd_registry_read_audit (GsmEtcdRegistry *self,
                                      GError         **error);
G_GNUC_INTERNAL
guint _gsm_etcd_registry_get_ttl (GsmEtcdRegistry *self);
G_GNUC_INTERNAL
guint _gsm_etcd_registry_get_n_range_reads (GsmEtcdRegistry *self);

G_END_DECLS
