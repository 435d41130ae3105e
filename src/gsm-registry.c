/* gsm-registry.c: the registry interface, snapshots and transactions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-registry-private.h"
#include "gsm-session-private.h"

G_DEFINE_INTERFACE (GsmRegistry, _gsm_registry, G_TYPE_OBJECT)

static void
_gsm_registry_default_init (GsmRegistryInterface *iface)
{
  /*
   * GsmRegistry::changed:
   *
   * Emitted when any process may have changed the store.
   */
  g_signal_new ("changed", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0,
                NULL, NULL, NULL, G_TYPE_NONE, 0);

  /*
   * GsmRegistry::lapsed:
   *
   * Emitted, in the same context as ::changed, when the store dropped this
   * process's entry without being asked to (a lease expired while the
   * process was paused or cut off). The next update enters it again.
   * Backends whose entries cannot lapse never emit it.
   */
  g_signal_new ("lapsed", G_TYPE_FROM_INTERFACE (iface), G_SIGNAL_RUN_LAST, 0,
                NULL, NULL, NULL, G_TYPE_NONE, 0);
}

GsmRegistrySnapshot *
_gsm_registry_load (GsmRegistry  *self,
                    GCancellable *cancellable,
                    GError      **error)
{
  return GSM_REGISTRY_GET_IFACE (self)->load (self, cancellable, error);
}

GsmRegistrySnapshot *
_gsm_registry_peek (GsmRegistry  *self,
                    GCancellable *cancellable,
                    GError      **error)
{
  GsmRegistryInterface *iface = GSM_REGISTRY_GET_IFACE (self);

  if (iface->peek != NULL)
    return iface->peek (self, cancellable, error);
  return iface->load (self, cancellable, error);
}

GsmRegistrySnapshot *
_gsm_registry_update (GsmRegistry          *self,
                      GsmRegistryUpdateFunc func,
                      gpointer              user_data,
                      GCancellable         *cancellable,
                      GError              **error)
{
  return GSM_REGISTRY_GET_IFACE (self)->update (self, func, user_data, cancellable, error);
}

gboolean
_gsm_registry_start_watch (GsmRegistry *self,
                           GError     **error)
{
  return GSM_REGISTRY_GET_IFACE (self)->start_watch (self, error);
}

gboolean
_gsm_registry_vouches_for (GsmRegistry *self,
                           GsmSession  *session)
{
  GsmRegistryInterface *iface = GSM_REGISTRY_GET_IFACE (self);

  return iface->vouches_for != NULL && iface->vouches_for (self, session);
}

gboolean
_gsm_registry_has_leases (GsmRegistry *self)
{
  return GSM_REGISTRY_GET_IFACE (self)->vouches_for != NULL;
}

/* ---- snapshots --------------------------------------------------------- */

GHashTable *
_gsm_registry_new_table (void)
{
  /* Keys are owned by the sessions they map to. */
  return g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
}

void
_gsm_registry_table_put (GHashTable *table,
                         GsmSession *session)
{
  /* replace, not insert: the key string belongs to the new value. */
  g_hash_table_replace (table, (gpointer) gsm_session_get_session_id (session),
                        g_object_ref (session));
}

GsmRegistrySnapshot *
_gsm_registry_snapshot_new (GHashTable *sessions,
                            guint64     generation)
{
  GsmRegistrySnapshot *snapshot = g_new0 (GsmRegistrySnapshot, 1);

  g_atomic_ref_count_init (&snapshot->ref);
  snapshot->sessions = sessions ? sessions : _gsm_registry_new_table ();
  snapshot->generation = generation;

  return snapshot;
}

GsmRegistrySnapshot *
_gsm_registry_snapshot_ref (GsmRegistrySnapshot *snapshot)
{
  g_atomic_ref_count_inc (&snapshot->ref);
  return snapshot;
}

void
_gsm_registry_snapshot_unref (GsmRegistrySnapshot *snapshot)
{
  if (snapshot != NULL && g_atomic_ref_count_dec (&snapshot->ref))
    {
      g_hash_table_unref (snapshot->sessions);
      g_free (snapshot);
    }
}

/*
 * Calls @func for every session id whose entry differs between @before
 * (may be %NULL: empty) and @after. An entry that did not change is the
 * same object in both: it costs a lookup and a pointer comparison.
 */
void
_gsm_registry_snapshot_diff (GsmRegistrySnapshot *before,
                             GsmRegistrySnapshot *after,
                             GsmRegistryDiffFunc  func,
                             gpointer             user_data)
{
  GHashTableIter iter;
  gpointer       key, value;

  if (before == after)
    return;

  g_hash_table_iter_init (&iter, after->sessions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GsmSession *old = before != NULL ? g_hash_table_lookup (before->sessions, key) : NULL;

      if (old != value)
        func (key, old, value, user_data);
    }

  if (before == NULL)
    return;
  g_hash_table_iter_init (&iter, before->sessions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (after->sessions, key))
      func (key, value, NULL, user_data);
}

/* ---- transactions ------------------------------------------------------ */

struct _GsmRegistryTxn
{
  GsmRegistrySnapshot *base;
  GHashTable          *changes; /* session id → GsmSession, or NULL: removed */
};

static void
unref_if_set (gpointer p)
{
  if (p != NULL)
    g_object_unref (p);
}

GsmRegistryTxn *
_gsm_registry_txn_new (GsmRegistrySnapshot *base)
{
  GsmRegistryTxn *txn = g_new0 (GsmRegistryTxn, 1);

  txn->base = _gsm_registry_snapshot_ref (base);
  txn->changes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_if_set);

  return txn;
}

void
_gsm_registry_txn_free (GsmRegistryTxn *txn)
{
  if (txn == NULL)
    return;
  _gsm_registry_snapshot_unref (txn->base);
  g_hash_table_unref (txn->changes);
  g_free (txn);
}

GsmRegistrySnapshot *
_gsm_registry_txn_get_base (GsmRegistryTxn *txn)
{
  return txn->base;
}

GsmSession *
_gsm_registry_txn_lookup (GsmRegistryTxn *txn,
                          const char     *session_id)
{
  gpointer value;

  if (g_hash_table_lookup_extended (txn->changes, session_id, NULL, &value))
    return value;
  return _gsm_registry_snapshot_lookup (txn->base, session_id);
}

void
_gsm_registry_txn_put (GsmRegistryTxn *txn,
                       GsmSession     *session)
{
  g_hash_table_replace (txn->changes, g_strdup (gsm_session_get_session_id (session)),
                        g_object_ref (session));
}

void
_gsm_registry_txn_remove (GsmRegistryTxn *txn,
                          const char     *session_id)
{
  if (_gsm_registry_snapshot_contains (txn->base, session_id))
    g_hash_table_replace (txn->changes, g_strdup (session_id), NULL);
  else
    g_hash_table_remove (txn->changes, session_id);
}

/* session id → GsmSession (put) or NULL (removed) */
GHashTable *
_gsm_registry_txn_get_changes (GsmRegistryTxn *txn)
{
  return txn->changes;
}

/* The entries of the base with the changes applied, in a table of their
 * own: the base does not change. */
GsmRegistrySnapshot *
_gsm_registry_txn_apply (GsmRegistryTxn *txn,
                         guint64         generation)
{
  GHashTable    *table = _gsm_registry_new_table ();
  GHashTableIter iter;
  gpointer       key, value;

  g_hash_table_iter_init (&iter, txn->base->sessions);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (table, key, g_object_ref (value));
  g_hash_table_iter_init (&iter, txn->changes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value != NULL)
      _gsm_registry_table_put (table, value);
    else
      g_hash_table_remove (table, key);

  return _gsm_registry_snapshot_new (table, generation);
}
