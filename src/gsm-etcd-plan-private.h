/* gsm-etcd-plan-private.h: the etcd transaction that writes an update
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-etcd-view-private.h"

G_BEGIN_DECLS

/* What a transaction does to one key. */
typedef struct
{
  GsmSession *put; /* NULL: delete */
  gint64      lease;
} GsmEtcdOp;

typedef struct
{
  GHashTable *ops;      /* etcd key → GsmEtcdOp */
  GHashTable *compares; /* etcd key → its mod_revision (0: it must not exist) */
} GsmEtcdPlan;

G_GNUC_INTERNAL
gboolean _gsm_etcd_plan_init (GsmEtcdPlan              *plan,
                              const GsmEtcdViewContext *ctx,
                              GsmEtcdView              *view,
                              GsmRegistryTxn           *txn,
                              gint64                    lease_id,
                              GError                  **error);
G_GNUC_INTERNAL
GString *_gsm_etcd_plan_to_txn (GsmEtcdPlan *plan);
G_GNUC_INTERNAL
void _gsm_etcd_plan_clear (GsmEtcdPlan *plan);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (GsmEtcdPlan, _gsm_etcd_plan_clear)

G_END_DECLS
