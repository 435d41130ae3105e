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
_gsm_registry_load (GsmRegistry   *self,
                    GCancellable  *cancellable,
                    GError       **error)
{
  return GSM_REGISTRY_GET_IFACE (self)->load (self, cancellable, error);
}

GsmRegistrySnapshot *
_gsm_registry_peek (GsmRegistry   *self,
                    GCancellable  *cancellable,
                    GError       **error)
{
  GsmRegistryInterface *iface = GSM_REGISTRY_GET_IFACE (self);

  if (iface->peek != NULL)
    return iface->peek (self, cancellable, error);
  return iface->load (self, cancellable, error);
}

GsmRegistrySnapshot *
_gsm_registry_update (GsmRegistry            *self,
                      GsmRegistryUpdateFunc   func,
                      gpointer                user_data,
                      GCancellable           *cancellable,
                      GError                **error)
{
  return GSM_REGISTRY_GET_IFACE (self)->update (self, func, user_data, cancellable, error);
}

gboolean
_gsm_registry_start_watch (GsmRegistry  *self,
                           GError      **error)
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
  snapshot->base = sessions ? sessions : _gsm_registry_new_table ();
  snapshot->size = g_hash_table_size (snapshot->base);
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
      g_hash_table_unref (snapshot->base);
      g_clear_pointer (&snapshot->delta, g_hash_table_unref);
      g_free (snapshot);
    }
}

GsmSession *
_gsm_registry_snapshot_lookup (GsmRegistrySnapshot *snapshot,
                               const char          *session_id)
{
  gpointer value;

  if (snapshot->delta != NULL &&
      g_hash_table_lookup_extended (snapshot->delta, session_id, NULL, &value))
    return value;
  return g_hash_table_lookup (snapshot->base, session_id);
}

gboolean
_gsm_registry_snapshot_contains (GsmRegistrySnapshot *snapshot,
                                 const char          *session_id)
{
  return _gsm_registry_snapshot_lookup (snapshot, session_id) != NULL;
}

guint
_gsm_registry_snapshot_get_size (GsmRegistrySnapshot *snapshot)
{
  return snapshot->size;
}

static inline void
filter_add (guint64 *filter,
            guint    hash)
{
  filter[(hash >> 6) & 3] |= G_GUINT64_CONSTANT (1) << (hash & 63);
}

static inline gboolean
filter_may_have (const guint64 *filter,
                 guint          hash)
{
  return (filter[(hash >> 6) & 3] & (G_GUINT64_CONSTANT (1) << (hash & 63))) != 0;
}

/* Entries come in no particular order: those that differ from the base
 * first, then the rest of the base. */
void
_gsm_registry_snapshot_iter_init (GsmRegistrySnapshotIter *iter,
                                  GsmRegistrySnapshot     *snapshot)
{
  iter->snapshot = snapshot;
  iter->in_base = snapshot->delta == NULL;
  g_hash_table_iter_init (&iter->iter, iter->in_base ? snapshot->base : snapshot->delta);
}

gboolean
_gsm_registry_snapshot_iter_next (GsmRegistrySnapshotIter  *iter,
                                  const char              **session_id,
                                  GsmSession              **session)
{
  GsmRegistrySnapshot *snapshot = iter->snapshot;
  gpointer key, value;

  while (!iter->in_base)
    {
      if (!g_hash_table_iter_next (&iter->iter, &key, &value))
        {
          iter->in_base = TRUE;
          g_hash_table_iter_init (&iter->iter, snapshot->base);
          break;
        }
      if (value == NULL)
        continue;   /* removed */
      goto found;
    }

  /* Skip the base's entries the delta has: the filter answers most
   * without hashing the id again. */
  do
    if (!g_hash_table_iter_next (&iter->iter, &key, &value))
      return FALSE;
  while (snapshot->delta != NULL &&
         filter_may_have (snapshot->delta_filter, _gsm_session_get_id_hash (value)) &&
         g_hash_table_contains (snapshot->delta, key));

found:
  if (session_id != NULL)
    *session_id = key;
  if (session != NULL)
    *session = value;
  return TRUE;
}

static void
diff_key (GsmRegistrySnapshot *before,
          GsmRegistrySnapshot *after,
          const char          *session_id,
          GsmRegistryDiffFunc  func,
          gpointer             user_data)
{
  GsmSession *b = _gsm_registry_snapshot_lookup (before, session_id);
  GsmSession *a = _gsm_registry_snapshot_lookup (after, session_id);

  if (a != b)
    func (session_id, b, a, user_data);
}

/*
 * Calls @func for every session id whose entry differs between @before
 * (may be %NULL: empty) and @after. When both were made from the same
 * table only the entries either changed are compared, so following a
 * registry through its updates costs what changed, not its size.
 */
void
_gsm_registry_snapshot_diff (GsmRegistrySnapshot *before,
                             GsmRegistrySnapshot *after,
                             GsmRegistryDiffFunc  func,
                             gpointer             user_data)
{
  GsmRegistrySnapshotIter iter;
  GHashTableIter hiter;
  const char *id;
  GsmSession *session;
  gpointer key;

  if (before == after)
    return;

  if (before == NULL)
    {
      _gsm_registry_snapshot_iter_init (&iter, after);
      while (_gsm_registry_snapshot_iter_next (&iter, &id, &session))
        func (id, NULL, session, user_data);
      return;
    }

  if (before->base == after->base)
    {
      if (before->delta != NULL)
        {
          g_hash_table_iter_init (&hiter, before->delta);
          while (g_hash_table_iter_next (&hiter, &key, NULL))
            diff_key (before, after, key, func, user_data);
        }
      if (after->delta != NULL)
        {
          g_hash_table_iter_init (&hiter, after->delta);
          while (g_hash_table_iter_next (&hiter, &key, NULL))
            if (before->delta == NULL || !g_hash_table_contains (before->delta, key))
              diff_key (before, after, key, func, user_data);
        }
      return;
    }

  _gsm_registry_snapshot_iter_init (&iter, after);
  while (_gsm_registry_snapshot_iter_next (&iter, &id, &session))
    {
      GsmSession *old = _gsm_registry_snapshot_lookup (before, id);

      if (old != session)
        func (id, old, session, user_data);
    }
  _gsm_registry_snapshot_iter_init (&iter, before);
  while (_gsm_registry_snapshot_iter_next (&iter, &id, &session))
    if (!_gsm_registry_snapshot_contains (after, id))
      func (id, session, NULL, user_data);
}

/* ---- transactions ------------------------------------------------------ */

struct _GsmRegistryTxn
{
  GsmRegistrySnapshot *base;
  GHashTable          *changes;  /* session id → GsmSession, or NULL: removed */
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

/* Records in @delta that @session_id maps to @session (NULL: removed) on
 * top of @base, or forgets the difference if there is none. */
static void
delta_put (GHashTable *delta,
           GHashTable *base,
           const char *session_id,
           GsmSession *session)
{
  if (g_hash_table_lookup (base, session_id) == (gpointer) session)
    g_hash_table_remove (delta, session_id);
  else
    g_hash_table_replace (delta, g_strdup (session_id), session ? g_object_ref (session) : NULL);
}

/*
 * The entries of the base with the changes applied. The result shares
 * the base's table and records only what differs from it; once that
 * grows past a share of the table, it gets a table of its own (so an
 * update costs what it changed, plus a copy every so many updates).
 */
GsmRegistrySnapshot *
_gsm_registry_txn_apply (GsmRegistryTxn *txn,
                         guint64         generation)
{
  GsmRegistrySnapshot *base = txn->base;
  GsmRegistrySnapshot *snapshot;
  GHashTable *delta = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_if_set);
  guint base_size = g_hash_table_size (base->base);
  GHashTableIter iter;
  gpointer key, value;
  int size;

  if (base->delta != NULL)
    {
      g_hash_table_iter_init (&iter, base->delta);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (delta, g_strdup (key), value ? g_object_ref (value) : NULL);
    }
  g_hash_table_iter_init (&iter, txn->changes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    delta_put (delta, base->base, key, value);

  if (g_hash_table_size (delta) > MAX (32, base_size / 32))
    {
      /* Everything, then the differences over it: one hash per entry. */
      GHashTable *table = _gsm_registry_new_table ();

      g_hash_table_iter_init (&iter, base->base);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (table, key, g_object_ref (value));
      g_hash_table_iter_init (&iter, delta);
      while (g_hash_table_iter_next (&iter, &key, &value))
        if (value != NULL)
          _gsm_registry_table_put (table, value);
        else
          g_hash_table_remove (table, key);
      g_hash_table_unref (delta);
      return _gsm_registry_snapshot_new (table, generation);
    }

  size = base_size;
  g_hash_table_iter_init (&iter, delta);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      gboolean in_base = g_hash_table_contains (base->base, key);

      if (value != NULL && !in_base)
        size++;
      else if (value == NULL && in_base)
        size--;
    }

  snapshot = _gsm_registry_snapshot_new (g_hash_table_ref (base->base), generation);
  snapshot->size = size;
  if (g_hash_table_size (delta) > 0)
    {
      snapshot->delta = delta;
      g_hash_table_iter_init (&iter, delta);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        filter_add (snapshot->delta_filter, g_str_hash (key));
    }
  else
    g_hash_table_unref (delta);

  return snapshot;
}
