/* gsm-registry-private.h: the store of sessions, behind a small interface
 *
 * A registry holds one entry per session (a GsmSession), keyed by session
 * id. It offers three things: load the current entries, update them under
 * the registry's lock (read, let a function decide, write), and tell when
 * any process changed them. The file registry is the default backend; a
 * distributed one implements the same interface.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "gsm-session.h"

G_BEGIN_DECLS

/*
 * An immutable set of entries: a table of session id → GsmSession that is
 * never changed once made. An update makes a new snapshot, a copy of the
 * table with its changes; the sessions are shared, so an entry that did
 * not change is the same object in both.
 */
typedef struct _GsmRegistrySnapshot GsmRegistrySnapshot;

struct _GsmRegistrySnapshot
{
  gatomicrefcount ref;
  GHashTable     *sessions;   /* session id → GsmSession; keys owned by the values */
  guint64         generation; /* grows with every new view of the store */
};

/* Entries come in no particular order. */
typedef GHashTableIter GsmRegistrySnapshotIter;

/* Called for each session id whose entry differs between two snapshots;
 * @before or @after is %NULL where it has no entry. */
typedef void (*GsmRegistryDiffFunc) (const char *session_id,
                                     GsmSession *before,
                                     GsmSession *after,
                                     gpointer    user_data);

G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_snapshot_new (GHashTable *sessions,
                                                 guint64     generation);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_snapshot_ref (GsmRegistrySnapshot *snapshot);
G_GNUC_INTERNAL
void _gsm_registry_snapshot_unref (GsmRegistrySnapshot *snapshot);
G_GNUC_INTERNAL
void _gsm_registry_snapshot_diff (GsmRegistrySnapshot *before,
                                  GsmRegistrySnapshot *after,
                                  GsmRegistryDiffFunc  func,
                                  gpointer             user_data);
G_GNUC_INTERNAL
GHashTable *_gsm_registry_new_table (void);
G_GNUC_INTERNAL
void _gsm_registry_table_put (GHashTable *table,
                              GsmSession *session);

static inline GsmSession *
_gsm_registry_snapshot_lookup (GsmRegistrySnapshot *snapshot,
                               const char          *session_id)
{
  return g_hash_table_lookup (snapshot->sessions, session_id);
}

static inline gboolean
_gsm_registry_snapshot_contains (GsmRegistrySnapshot *snapshot,
                                 const char          *session_id)
{
  return g_hash_table_contains (snapshot->sessions, session_id);
}

static inline guint
_gsm_registry_snapshot_get_size (GsmRegistrySnapshot *snapshot)
{
  return g_hash_table_size (snapshot->sessions);
}

static inline void
_gsm_registry_snapshot_iter_init (GsmRegistrySnapshotIter *iter,
                                  GsmRegistrySnapshot     *snapshot)
{
  g_hash_table_iter_init (iter, snapshot->sessions);
}

static inline gboolean
_gsm_registry_snapshot_iter_next (GsmRegistrySnapshotIter *iter,
                                  const char             **session_id,
                                  GsmSession             **session)
{
  return g_hash_table_iter_next (iter, (gpointer *) session_id, (gpointer *) session);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmRegistrySnapshot, _gsm_registry_snapshot_unref)

/* The changes an update makes on top of the entries it read. */
typedef struct _GsmRegistryTxn GsmRegistryTxn;

G_GNUC_INTERNAL
GsmRegistryTxn *_gsm_registry_txn_new (GsmRegistrySnapshot *base);
G_GNUC_INTERNAL
void _gsm_registry_txn_free (GsmRegistryTxn *txn);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_txn_get_base (GsmRegistryTxn *txn);
G_GNUC_INTERNAL
GsmSession *_gsm_registry_txn_lookup (GsmRegistryTxn *txn,
                                      const char     *session_id);
G_GNUC_INTERNAL
void _gsm_registry_txn_put (GsmRegistryTxn *txn,
                            GsmSession     *session);
G_GNUC_INTERNAL
void _gsm_registry_txn_remove (GsmRegistryTxn *txn,
                               const char     *session_id);
G_GNUC_INTERNAL
GHashTable *_gsm_registry_txn_get_changes (GsmRegistryTxn *txn);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_txn_apply (GsmRegistryTxn *txn,
                                              guint64         generation);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmRegistryTxn, _gsm_registry_txn_free)

/*
 * GsmRegistryUpdateFunc:
 *
 * Decides the changes of an update from the entries read under the lock.
 * Called in the thread that called update, with the lock held: no I/O
 * except liveness checks. Return %FALSE with @error set to write nothing.
 * A backend without a lock (etcd: optimistic transactions) calls it again
 * on a fresh read when another process wrote first; only the decisions of
 * the last call are written.
 */
typedef gboolean (*GsmRegistryUpdateFunc) (GsmRegistryTxn *txn,
                                           gpointer        user_data,
                                           GError        **error);

#define GSM_TYPE_REGISTRY (_gsm_registry_get_type ())

G_GNUC_INTERNAL
G_DECLARE_INTERFACE (GsmRegistry, _gsm_registry, GSM, REGISTRY, GObject)

struct _GsmRegistryInterface
{
  GTypeInterface g_iface;

  /* Thread-safe; may block. */
  GsmRegistrySnapshot *(*load) (GsmRegistry  *self,
                                GCancellable *cancellable,
                                GError      **error);
  GsmRegistrySnapshot *(*update) (GsmRegistry          *self,
                                  GsmRegistryUpdateFunc func,
                                  gpointer              user_data,
                                  GCancellable         *cancellable,
                                  GError              **error);
  /* Emit ::changed, in the thread-default main context of the caller, when
   * any process changes the store. */
  gboolean (*start_watch) (GsmRegistry *self,
                           GError     **error);
  /* The entries as last seen, when the store keeps them current itself
   * (a watch): for refreshing a view after ::changed without asking the
   * store again. Optional; load otherwise. */
  GsmRegistrySnapshot *(*peek) (GsmRegistry  *self,
                                GCancellable *cancellable,
                                GError      **error);
  /* TRUE if the store itself guarantees that @session is alive (a lease),
   * so no local probe or expiry applies. Optional. */
  gboolean (*vouches_for) (GsmRegistry *self,
                           GsmSession  *session);
};

G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_load (GsmRegistry  *self,
                                         GCancellable *cancellable,
                                         GError      **error);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_peek (GsmRegistry  *self,
                                         GCancellable *cancellable,
                                         GError      **error);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_registry_update (GsmRegistry          *self,
                                           GsmRegistryUpdateFunc func,
                                           gpointer              user_data,
                                           GCancellable         *cancellable,
                                           GError              **error);
G_GNUC_INTERNAL
gboolean _gsm_registry_start_watch (GsmRegistry *self,
                                    GError     **error);
G_GNUC_INTERNAL
gboolean _gsm_registry_vouches_for (GsmRegistry *self,
                                    GsmSession  *session);
/* TRUE if the store keeps entries alive itself (leases): then it alone
 * decides liveness, and an entry it does not vouch for is dead. */
G_GNUC_INTERNAL
gboolean _gsm_registry_has_leases (GsmRegistry *self);

G_END_DECLS
