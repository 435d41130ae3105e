/* gsm-session-manager-listing.c: what a listing of the registry shows
 *
 * get_all_active_sessions() lists the live sessions, alive and
 * unverifiable alike, and tells whether some are dead but not yet
 * recorded so (the listing then cleans up). list_sessions() shows every
 * entry with the status it would be recorded with.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/*
 * The last get_all_active_sessions(), to list the same registry (the same
 * snapshot) again without deciding on every entry anew: the sessions it
 * listed and, among them, those whose death a proof could show later,
 * checked again each time. No proof applies to the others (sessions of
 * other hosts, other kernels, other pid namespaces without a lock to
 * test), and that does not change while their entries do not.
 */
struct _GsmManagerListing
{
  GsmRegistrySnapshot *snapshot;
  GPtrArray           *listed;   /* GsmSession */
  GPtrArray           *provable; /* GsmSession, of those listed */
};

void
_gsm_manager_listing_free (GsmManagerListing *listing)
{
  if (listing == NULL)
    return;
  _gsm_registry_snapshot_unref (listing->snapshot);
  g_ptr_array_unref (listing->listed);
  g_ptr_array_unref (listing->provable);
  g_free (listing);
}

/*
 * Is @session, not ours, proven dead now? What
 * _gsm_session_manager_get_liveness() == DEAD says, without telling alive
 * from unverifiable (which costs a /proc read for each session of another
 * host). Else TRUE in @provable if a proof could show it dead later.
 */
static gboolean
is_proven_dead (GsmSessionManager *self,
                GsmSession        *session,
                gboolean          *provable)
{
  GsmLiveness liveness;

  /* With leases, the entry alone tells. */
  if (self->has_leases)
    {
      *provable = FALSE;
      return !_gsm_registry_vouches_for (self->registry, session);
    }

  liveness = _gsm_liveness_probe_check_proof (self->probe, session);
  *provable = liveness != GSM_LIVENESS_UNVERIFIABLE;
  return liveness == GSM_LIVENESS_DEAD;
}

static GHashTable *
new_session_table (void)
{
  /* Keys belong to the sessions, as in the registry's own tables:
   * g_hash_table_unref() frees everything. */
  return g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
}

/* Has one of the sessions of @listing died since? */
static gboolean
any_died (GsmSessionManager *self,
          GsmManagerListing *listing)
{
  gboolean provable;

  for (guint i = 0; i < listing->provable->len; i++)
    if (is_proven_dead (self, listing->provable->pdata[i], &provable))
      return TRUE;
  return FALSE;
}

/* Memory order: listing again then reads the sessions in the order they
 * were made, which the processor's prefetcher can follow. */
static int
compare_addresses (gconstpointer a,
                   gconstpointer b)
{
  guintptr x = (guintptr) * (gpointer *) a, y = (guintptr) * (gpointer *) b;

  return x < y ? -1 : x > y;
}

static GHashTable *
table_of (GsmManagerListing *listing)
{
  GHashTable *table = new_session_table ();

  for (guint i = 0; i < listing->listed->len; i++)
    {
      GsmSession *session = listing->listed->pdata[i];

      g_hash_table_insert (table, session->session_id, g_object_ref (session));
    }
  return table;
}

/* The live sessions of @snapshot, alive and unverifiable alike, in
 * @listing; TRUE in @needs_cleanup if some are dead but not yet recorded
 * so. */
static void
list_active (GsmSessionManager   *self,
             GsmRegistrySnapshot *snapshot,
             GsmManagerListing   *listing,
             gboolean            *needs_cleanup)
{
  GsmSession             *own = _gsm_registry_snapshot_lookup (snapshot, self->session_id);
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  *needs_cleanup = FALSE;
  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      gboolean provable = FALSE;

      if (_gsm_session_is_stale (session))
        {
          if (session->vm_id == NULL)
            *needs_cleanup = TRUE;
          continue;
        }
      if (session != own && is_proven_dead (self, session, &provable))
        {
          *needs_cleanup = TRUE;
          continue;
        }
      g_ptr_array_add (listing->listed, g_object_ref (session));
      if (provable)
        g_ptr_array_add (listing->provable, g_object_ref (session));
    }
}

/*
 * For get_all_active_sessions(): the live sessions of @snapshot, alive
 * and unverifiable alike, in a new table; TRUE in @needs_cleanup if some
 * are dead but not yet recorded so. The same snapshot is listed again
 * from the last listing of it.
 */
GHashTable *
_gsm_manager_collect_active (GsmSessionManager   *self,
                             GsmRegistrySnapshot *snapshot,
                             gboolean            *needs_cleanup)
{
  GsmManagerListing *listing = NULL;
  GHashTable        *table;

  *needs_cleanup = FALSE;

  /* Taken: a listing running meanwhile in another thread makes its own. */
  g_mutex_lock (&self->mutex);
  if (self->listing != NULL && self->listing->snapshot == snapshot)
    listing = g_steal_pointer (&self->listing);
  g_mutex_unlock (&self->mutex);

  if (listing != NULL && any_died (self, listing))
    g_clear_pointer (&listing, _gsm_manager_listing_free);
  if (listing == NULL)
    {
      listing = g_new0 (GsmManagerListing, 1);
      listing->snapshot = _gsm_registry_snapshot_ref (snapshot);
      listing->listed = g_ptr_array_new_with_free_func (g_object_unref);
      listing->provable = g_ptr_array_new_with_free_func (g_object_unref);
      list_active (self, snapshot, listing, needs_cleanup);
      g_ptr_array_sort (listing->listed, compare_addresses);
    }
  table = table_of (listing);

  /* Kept for the next listing, unless the registry is about to change. */
  if (!*needs_cleanup)
    {
      GsmManagerListing *old;

      g_mutex_lock (&self->mutex);
      old = self->listing;
      self->listing = g_steal_pointer (&listing);
      g_mutex_unlock (&self->mutex);
      listing = old;
    }
  _gsm_manager_listing_free (listing);

  return table;
}

/*
 * For list_sessions(): every entry of @snapshot, one found dead but not
 * yet recorded so shown as it will be recorded (stale), one whose
 * liveness cannot be proven from here as unverifiable.
 */
GHashTable *
_gsm_manager_collect_all (GsmSessionManager   *self,
                          GsmRegistrySnapshot *snapshot)
{
  GHashTable             *table = new_session_table ();
  double                  now = g_get_real_time () / (double) G_USEC_PER_SEC;
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      GsmLiveness liveness = GSM_LIVENESS_ALIVE;

      if (!_gsm_session_is_stale (session))
        liveness = _gsm_session_manager_get_liveness (self, session);

      if (liveness == GSM_LIVENESS_DEAD)
        session = _gsm_session_with_stale (session, now);
      else if (liveness == GSM_LIVENESS_UNVERIFIABLE)
        session = _gsm_session_shown_as (session, GSM_STATUS_UNVERIFIABLE);
      else
        g_object_ref (session);
      g_hash_table_insert (table, session->session_id, session);
    }

  return table;
}
