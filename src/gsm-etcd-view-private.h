/* gsm-etcd-view-private.h: what the registry in etcd holds, at one revision
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-etcd-client-private.h"
#include "gsm-registry-private.h"

G_BEGIN_DECLS

/* A session key: PREFIX/sessions/<id>. */
typedef struct
{
  gint64 mod_revision;
  gint64 lease;
} GsmEtcdSessionKey;

/* A VM key: PREFIX/vms/<vm id>, naming its owner. */
typedef struct
{
  gint64      mod_revision;
  char       *owner;
  GsmSession *entry; /* what the key holds (its text is the value) */
} GsmEtcdVmKey;

/* Where the keys are, and the entries already parsed (etcd key → their
 * mod_revision and GsmSession, made by _gsm_etcd_parsed_new()), shared by
 * successive views. */
typedef struct
{
  const char  *endpoint;        /* for messages */
  const char  *sessions_prefix; /* PREFIX/sessions/ */
  const char  *vms_prefix;      /* PREFIX/vms/ */
  const char  *own_session_id;
  GHashTable **parsed;
} GsmEtcdViewContext;

G_GNUC_INTERNAL
GHashTable *_gsm_etcd_parsed_new (void);
G_GNUC_INTERNAL
gboolean _gsm_etcd_parsed_has (GHashTable *parsed,
                               const char *key,
                               gint64      mod_revision);
G_GNUC_INTERNAL
void _gsm_etcd_parsed_put (GHashTable *parsed,
                           const char *key,
                           gint64      mod_revision,
                           GsmSession *session);

/* Immutable once made; successive views share what did not change. */
typedef struct _GsmEtcdView GsmEtcdView;

G_GNUC_INTERNAL
GsmEtcdView *_gsm_etcd_view_new_from_range (GsmEtcdViewContext *ctx,
                                            GsmEtcdResponse    *range);
G_GNUC_INTERNAL
GsmEtcdView *_gsm_etcd_view_apply_events (GsmEtcdViewContext *ctx,
                                          GsmEtcdView        *base,
                                          GPtrArray          *events,
                                          gint64              revision);
G_GNUC_INTERNAL
GsmEtcdView *_gsm_etcd_view_ref (GsmEtcdView *view);
G_GNUC_INTERNAL
void _gsm_etcd_view_unref (GsmEtcdView *view);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_etcd_view_get_snapshot (GsmEtcdView *view);
G_GNUC_INTERNAL
gint64 _gsm_etcd_view_get_revision (GsmEtcdView *view);
G_GNUC_INTERNAL
GsmEtcdSessionKey *_gsm_etcd_view_lookup_session (GsmEtcdView *view,
                                                  const char  *session_id);
G_GNUC_INTERNAL
GsmEtcdVmKey *_gsm_etcd_view_lookup_vm (GsmEtcdView *view,
                                        const char  *vm_id);

G_GNUC_INTERNAL
gboolean _gsm_etcd_key_is_clean (GsmEtcdKv *kv);

/* Entries read from (or written to) a leased session key. */
G_GNUC_INTERNAL
void _gsm_etcd_mark_leased (GsmSession *session);
G_GNUC_INTERNAL
gboolean _gsm_etcd_is_leased (GsmSession *session);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmEtcdView, _gsm_etcd_view_unref)

G_END_DECLS
