/* gsm-etcd-plan.c: the etcd transaction that writes an update
 *
 * The manager decides on a snapshot and hands over what changed, entry by
 * entry. A plan turns that into operations on keys, read against the view
 * the decision was made on: a live entry is put on its session key with
 * the lease of its process, anything else removes that key; the VM an
 * entry owns gets a VM key, created only if nobody has one, and the VM it
 * owned before loses it. Every key touched is compared in the same
 * transaction: its mod_revision as seen in the view, or create_revision 0
 * for a new one, so that the transaction fails if any of them changed
 * since, and a VM can never be taken from another session that did not
 * give it up.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-etcd-plan-private.h"
#include "gsm-session-private.h"

static void
op_free (gpointer data)
{
  GsmEtcdOp *op = data;

  g_clear_object (&op->put);
  g_free (op);
}

void
_gsm_etcd_plan_clear (GsmEtcdPlan *plan)
{
  g_clear_pointer (&plan->ops, g_hash_table_unref);
  g_clear_pointer (&plan->compares, g_hash_table_unref);
}

static void
plan_compare (GsmEtcdPlan *plan,
              const char  *key,
              gint64       mod_revision)
{
  gint64 *revision = g_new (gint64, 1);

  *revision = mod_revision;
  g_hash_table_replace (plan->compares, g_strdup (key), revision);
}

static gboolean
plan_op (GsmEtcdPlan *plan,
         const char  *key,
         GsmSession  *put,
         gint64       lease,
         GError     **error)
{
  GsmEtcdOp *existing = g_hash_table_lookup (plan->ops, key);
  GsmEtcdOp *op;

  if (existing != NULL)
    {
      if (put == NULL)
        return TRUE; /* a put of the same key wins over a delete */
      if (existing->put != NULL && existing->put != put)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED,
                       "Two entries of one update claim the key “%s”", key);
          return FALSE;
        }
    }

  op = g_new0 (GsmEtcdOp, 1);
  op->put = put ? g_object_ref (put) : NULL;
  op->lease = lease;
  g_hash_table_replace (plan->ops, g_strdup (key), op);
  return TRUE;
}

static gboolean
same_text (GsmSession *a,
           GsmSession *b)
{
  gsize       len, b_len;
  const char *text = _gsm_session_get_text (a, &len);
  const char *b_text = _gsm_session_get_text (b, &b_len);

  return a == b || (len == b_len && memcmp (text, b_text, len) == 0);
}

/* Does @txn take @vm_id away from @owner (remove it, or give it another)? */
static gboolean
gives_up (GsmRegistryTxn *txn,
          const char     *owner,
          const char     *vm_id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (_gsm_registry_txn_get_changes (txn), owner, NULL, &value))
    return FALSE;
  return value == NULL || g_strcmp0 (gsm_session_get_vm_id (value), vm_id) != 0;
}

/* The VM key of @vm_id, which session @id owns now (@entry), created only
 * if nobody has it. */
static gboolean
plan_owned_vm (GsmEtcdPlan              *plan,
               const GsmEtcdViewContext *ctx,
               GsmEtcdView              *view,
               GsmRegistryTxn           *txn,
               const char               *id,
               const char               *vm_id,
               GsmSession               *entry,
               GError                  **error)
{
  g_autofree char *vm_key = g_strconcat (ctx->vms_prefix, vm_id, NULL);
  GsmEtcdVmKey    *vk = _gsm_etcd_view_lookup_vm (view, vm_id);

  if (vk != NULL && !g_str_equal (vk->owner, id) && !gives_up (txn, vk->owner, vm_id))
    {
      /* Only a takeover that removes the old owner's claim may overwrite
       * it. */
      g_set_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER,
                   "VM “%s” is owned by session %s", vm_id, vk->owner);
      return FALSE;
    }
  if ((vk == NULL || !g_str_equal (vk->owner, id) || !same_text (vk->entry, entry)) &&
      !plan_op (plan, vm_key, entry, 0, error))
    return FALSE;
  plan_compare (plan, vm_key, vk ? vk->mod_revision : 0);
  return TRUE;
}

/* What the change of session @id to @new (NULL: removed) means for its
 * keys in @view. */
static gboolean
plan_session (GsmEtcdPlan              *plan,
              const GsmEtcdViewContext *ctx,
              GsmEtcdView              *view,
              GsmRegistryTxn           *txn,
              gint64                    lease_id,
              const char               *id,
              GsmSession *new,
              GError **error)
{
  GsmSession        *old = _gsm_registry_snapshot_lookup (_gsm_etcd_view_get_snapshot (view), id);
  GsmEtcdSessionKey *sk = _gsm_etcd_view_lookup_session (view, id);
  g_autofree char   *session_key = g_strconcat (ctx->sessions_prefix, id, NULL);
  const char        *old_vm = old ? gsm_session_get_vm_id (old) : NULL;
  const char        *new_vm = new ? gsm_session_get_vm_id (new) : NULL;
  GsmEtcdVmKey      *vk;

  /* The session key: a live entry is leased, anything else has none. */
  if (new != NULL && !_gsm_session_is_stale (new))
    {
      gint64 lease = g_str_equal (id, ctx->own_session_id) ? lease_id : (sk ? sk->lease : 0);

      if (lease == 0)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED,
                       "Cannot write the live entry of session %s: it holds no lease", id);
          return FALSE;
        }
      if (!plan_op (plan, session_key, new, lease, error))
        return FALSE;
    }
  else if (sk != NULL && !plan_op (plan, session_key, NULL, 0, error))
    return FALSE;
  plan_compare (plan, session_key, sk ? sk->mod_revision : 0);

  if (new_vm != NULL && !plan_owned_vm (plan, ctx, view, txn, id, new_vm, new, error))
    return FALSE;

  /* The VM it owned before, if the record still names it. */
  vk = old_vm ? _gsm_etcd_view_lookup_vm (view, old_vm) : NULL;
  if (vk != NULL && g_str_equal (vk->owner, id) && g_strcmp0 (old_vm, new_vm) != 0)
    {
      g_autofree char *vm_key = g_strconcat (ctx->vms_prefix, old_vm, NULL);

      if (!plan_op (plan, vm_key, NULL, 0, error))
        return FALSE;
      plan_compare (plan, vm_key, vk->mod_revision);
    }

  return TRUE;
}

/*
 * _gsm_etcd_plan_init:
 * @ctx: where the keys are, and our session
 * @view: what the changes of @txn were decided on
 * @lease_id: the lease our own live entry goes on
 *
 * Fills @plan (cleared with _gsm_etcd_plan_clear(), even on failure) with
 * what the changes of @txn mean for the keys of @view.
 *
 * Returns: %FALSE with %GSM_ERROR_VM_OWNED_BY_OTHER if a change takes a VM
 *   another session keeps, or %GSM_ERROR_FAILED if it cannot be written
 */
gboolean
_gsm_etcd_plan_init (GsmEtcdPlan              *plan,
                     const GsmEtcdViewContext *ctx,
                     GsmEtcdView              *view,
                     GsmRegistryTxn           *txn,
                     gint64                    lease_id,
                     GError                  **error)
{
  GHashTableIter iter;
  gpointer       key, value;

  plan->ops = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, op_free);
  plan->compares = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_hash_table_iter_init (&iter, _gsm_registry_txn_get_changes (txn));
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!plan_session (plan, ctx, view, txn, lease_id, key, value, error))
      return FALSE;

  return TRUE;
}

/* The body of the kv/txn request that carries out @plan. */
GString *
_gsm_etcd_plan_to_txn (GsmEtcdPlan *plan)
{
  GString       *body = g_string_new ("{\"compare\": [");
  GHashTableIter iter;
  gpointer       key, value;
  gboolean       first = TRUE;

  g_hash_table_iter_init (&iter, plan->compares);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gint64 mod_revision = *(gint64 *) value;

      g_string_append (body, first ? "{\"key\": " : ", {\"key\": ");
      first = FALSE;
      _gsm_etcd_append_base64 (body, key, strlen (key));
      if (mod_revision == 0)
        g_string_append (body, ", \"target\": \"CREATE\", \"create_revision\": \"0\"}");
      else
        g_string_append_printf (body, ", \"target\": \"MOD\", \"mod_revision\": \"%" G_GINT64_FORMAT "\"}",
                                mod_revision);
    }

  g_string_append (body, "], \"success\": [");
  first = TRUE;
  g_hash_table_iter_init (&iter, plan->ops);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GsmEtcdOp *op = value;

      g_string_append (body, first ? "" : ", ");
      first = FALSE;
      if (op->put != NULL)
        {
          gsize       len;
          const char *text = _gsm_session_get_text (op->put, &len);

          g_string_append (body, "{\"request_put\": {\"key\": ");
          _gsm_etcd_append_base64 (body, key, strlen (key));
          g_string_append (body, ", \"value\": ");
          _gsm_etcd_append_base64 (body, text, len);
          if (op->lease != 0)
            g_string_append_printf (body, ", \"lease\": \"%" G_GINT64_FORMAT "\"", op->lease);
          g_string_append (body, "}}");
        }
      else
        {
          g_string_append (body, "{\"request_delete_range\": {\"key\": ");
          _gsm_etcd_append_base64 (body, key, strlen (key));
          g_string_append (body, "}}");
        }
    }
  g_string_append (body, "]}");

  return body;
}
