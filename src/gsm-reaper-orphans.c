/* gsm-reaper-orphans.c: which VMs are orphans
 *
 * The VM of an entry is an orphan when its owner is provably dead (or,
 * only when asked, its liveness cannot be verified and it is older than
 * asked), the grace period since it was found dead and any backoff are
 * over, no reaper may still be deleting it, and no live session records
 * the same VM. A pass decides with the same rules, again, under the
 * registry lock (gsm-reaper-pass.c); here they list the orphans and tell
 * gsmd when the next one is due.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/*
 * Is the process behind @session alive? Decided here, from this host's
 * own probe (or the store's leases), and never from the session's age:
 * %GSM_LIVENESS_UNVERIFIABLE for a session whose liveness cannot be proven
 * either way (another host, no start time recorded).
 */
GsmLiveness
_gsm_reaper_owner_liveness (GsmReaper  *self,
                            GsmSession *session)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (self->manager);

  if (g_strcmp0 (gsm_session_get_session_id (session),
                 gsm_session_manager_get_session_id (self->manager)) == 0)
    return GSM_LIVENESS_ALIVE;
  /* Written by a reconciliation for a VM no entry recorded, whose session
   * it found dead or unknown: no process stands behind it. */
  if (_gsm_session_get_member (session, GSM_REAPER_ADOPTED_MEMBER) != NULL)
    return GSM_LIVENESS_DEAD;
  if (_gsm_registry_has_leases (registry))
    return _gsm_registry_vouches_for (registry, session) ? GSM_LIVENESS_ALIVE : GSM_LIVENESS_DEAD;
  return _gsm_liveness_probe_check (_gsm_session_manager_get_probe (self->manager), session);
}

/* Old enough to be reaped by age, its liveness unknown, as asked? */
static gboolean
old_enough (const GsmReaperSettings *s,
            GsmSession              *session,
            double                   now)
{
  double created_at = _gsm_reaper_clamp_past (gsm_session_get_created_at (session), now);

  return s->unverifiable > 0 && now - created_at >= s->unverifiable;
}

/*
 * Why the owner of @entry rules its VM out, or %NULL if it does not: it
 * is dead, or (only when asked, with unverifiable-older-than) its liveness
 * cannot be proven and it is older than that (@by_age).
 */
char *
_gsm_reaper_check_owner (GsmReaper               *self,
                         const GsmReaperSettings *s,
                         GsmSession              *entry,
                         double                   now,
                         GsmLiveness             *out_liveness,
                         gboolean                *by_age)
{
  GsmLiveness liveness;

  *by_age = FALSE;
  if (gsm_session_get_vm_id (entry) == NULL)
    return g_strdup ("it owns no VM");
  if (g_strcmp0 (gsm_session_get_session_id (entry),
                 gsm_session_manager_get_session_id (self->manager)) == 0)
    return g_strdup ("it is this process's own session");
  if (self->host_only &&
      g_strcmp0 (gsm_session_get_hostname (entry),
                 gsm_session_manager_get_hostname (self->manager)) != 0)
    return g_strdup ("it is another host's session (this pass reaps this host's only)");

  liveness = _gsm_reaper_owner_liveness (self, entry);
  if (out_liveness != NULL)
    *out_liveness = liveness;
  switch (liveness)
    {
    case GSM_LIVENESS_ALIVE:
      return g_strdup ("its owner is alive");
    case GSM_LIVENESS_DEAD:
      return NULL;
    case GSM_LIVENESS_UNVERIFIABLE:
    default:
      if (old_enough (s, entry, now))
        {
          *by_age = TRUE;
          return NULL;
        }
      if (s->unverifiable > 0)
        return g_strdup_printf ("its owner's liveness cannot be verified from this host (another "
                                "host, or no start time recorded) and its session is younger "
                                "than %.0f s",
                                s->unverifiable);
      return g_strdup ("its owner's liveness cannot be verified from this host (another host, or "
                       "no start time recorded); such a VM is deleted only when asked "
                       "(gsmctl reap --unverifiable --older-than SECONDS)");
    }
}

/* When a failed deletion may be retried: @next_retry, but never later than
 * the longest backoff from now. */
static double
retry_due (const GsmReaperSettings *s,
           double                   next_retry,
           double                   now)
{
  return MIN (next_retry, now + s->max_backoff);
}

/* Why @entry's VM must wait (grace period, backoff), or %NULL. A session
 * not yet recorded as dead counts as found dead now. */
char *
_gsm_reaper_check_timing (const GsmReaperSettings *s,
                          GsmSession              *entry,
                          double                   now,
                          gboolean                 by_age)
{
  double next_retry = retry_due (s, _gsm_reaper_get_next_retry (entry), now);

  if (!by_age)
    {
      double stale_since = gsm_session_get_stale_since (entry);
      double since = _gsm_session_is_stale (entry) && stale_since > 0
                         ? _gsm_reaper_clamp_past (stale_since, now)
                         : now;

      if (now - since < s->grace)
        return g_strdup_printf ("grace period: %.0f s left",
                                _gsm_reaper_round_up (s->grace - MAX (now - since, 0)));
    }
  if (next_retry > now)
    return g_strdup_printf ("backing off after %u failed attempt%s: retry in %.0f s",
                            _gsm_reaper_get_attempts (entry),
                            _gsm_reaper_get_attempts (entry) == 1 ? "" : "s",
                            _gsm_reaper_round_up (next_retry - now));
  return NULL;
}

/* Does @other, another session recording the same VM, keep it from being
 * deleted? Yes unless it is provably dead (or as old as asked). */
gboolean
_gsm_reaper_other_blocks (GsmReaper               *self,
                          const GsmReaperSettings *s,
                          GsmSession              *other,
                          double                   now)
{
  switch (_gsm_reaper_owner_liveness (self, other))
    {
    case GSM_LIVENESS_DEAD:
      return FALSE;
    case GSM_LIVENESS_UNVERIFIABLE:
      return !old_enough (s, other, now);
    case GSM_LIVENESS_ALIVE:
    default:
      return TRUE;
    }
}

char *
_gsm_reaper_records_it_too (GsmSession *other)
{
  return g_strdup_printf ("live session %s records it too", gsm_session_get_session_id (other));
}

/*
 * The sessions that record each of the VMs of @vm_ids, in one pass over
 * @snapshot: VM id → GPtrArray of GsmSession (borrowed).
 */
GHashTable *
_gsm_reaper_index_vm_owners (GsmRegistrySnapshot *snapshot,
                             GHashTable          *vm_ids)
{
  GHashTable             *index = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                         (GDestroyNotify) g_ptr_array_unref);
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      const char *vm_id = session->vm_id;
      GPtrArray  *owners;

      if (vm_id == NULL || !g_hash_table_contains (vm_ids, vm_id))
        continue;
      owners = g_hash_table_lookup (index, vm_id);
      if (owners == NULL)
        {
          owners = g_ptr_array_new ();
          g_hash_table_insert (index, (gpointer) vm_id, owners);
        }
      g_ptr_array_add (owners, session);
    }

  return index;
}

static int
compare_sessions (gconstpointer a,
                  gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;
  double      d = gsm_session_get_stale_since (x) - gsm_session_get_stale_since (y);

  if (d != 0)
    return d < 0 ? -1 : 1;
  return g_strcmp0 (gsm_session_get_vm_id (x), gsm_session_get_vm_id (y));
}

/* Why @entry's VM is not deleted now, apart from the other sessions that
 * record the same VM; %NULL if it would be. Changes nothing. */
static char *
check_eligible (GsmReaper               *self,
                const GsmReaperSettings *s,
                GsmSession              *entry,
                double                   now)
{
  g_autofree char *lost = NULL;
  char            *reason;
  gboolean         by_age;

  reason = _gsm_reaper_check_owner (self, s, entry, now, NULL, &by_age);
  if (reason == NULL)
    reason = _gsm_reaper_check_timing (s, entry, now, by_age);
  if (reason == NULL)
    _gsm_reaper_check_claim (self, entry, now, &reason, &lost, NULL);
  return reason;
}

/*
 * The orphans of the registry as it is now, oldest first: one pass over
 * the entries to decide each, and one more over those that record the
 * same VMs (the VM of a dead session that a live one records too stays).
 */
GPtrArray *
_gsm_reaper_list_orphans (GsmReaper    *self,
                          GCancellable *cancellable,
                          GError      **error)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (self->manager);
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GHashTable) vm_ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) owners = NULL;
  g_autoptr (GPtrArray) candidates = g_ptr_array_new ();
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;
  GPtrArray              *orphans;
  GsmReaperSettings       s;
  double                  now;

  _gsm_reaper_get_settings (self, &s);

  snapshot = _gsm_registry_load (registry, cancellable, error);
  if (snapshot == NULL)
    return NULL;
  now = _gsm_reaper_now ();

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      g_autofree char *reason = NULL;

      if (session->vm_id == NULL)
        continue;
      /* Most entries of a large registry are live or another host's:
       * left out without a word. */
      reason = check_eligible (self, &s, session, now);
      if (reason == NULL)
        {
          g_ptr_array_add (candidates, session);
          g_hash_table_add (vm_ids, session->vm_id);
        }
    }

  owners = _gsm_reaper_index_vm_owners (snapshot, vm_ids);
  orphans = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < candidates->len; i++)
    {
      GsmSession *candidate = candidates->pdata[i];
      GPtrArray  *others = g_hash_table_lookup (owners, candidate->vm_id);
      GsmSession *blocker = NULL;

      for (guint k = 0; blocker == NULL && others != NULL && k < others->len; k++)
        if (others->pdata[k] != candidate &&
            _gsm_reaper_other_blocks (self, &s, others->pdata[k], now))
          blocker = others->pdata[k];

      if (blocker != NULL)
        {
          g_debug ("VM “%s” of session %s is not reaped now: live session %s records it too",
                   candidate->vm_id, gsm_session_get_session_id (candidate),
                   gsm_session_get_session_id (blocker));
          continue;
        }

      /* Shown as it would be recorded: dead since now. */
      if ((!_gsm_session_is_stale (candidate) || gsm_session_get_stale_since (candidate) > now) &&
          _gsm_reaper_owner_liveness (self, candidate) == GSM_LIVENESS_DEAD)
        g_ptr_array_add (orphans, _gsm_session_with_stale (candidate, now));
      else
        g_ptr_array_add (orphans, g_object_ref (candidate));
    }
  g_ptr_array_sort (orphans, compare_sessions);

  return orphans;
}

double
_gsm_reaper_get_next_due (GsmReaper           *self,
                          GsmRegistrySnapshot *snapshot,
                          double               now)
{
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;
  double                  soonest = -1;
  GsmReaperSettings       s;

  g_return_val_if_fail (GSM_IS_REAPER (self), -1);

  _gsm_reaper_get_settings (self, &s);
  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      g_autofree char *reason = NULL;
      g_autofree char *lost = NULL;
      gboolean         by_age;
      double           due = now, until;

      if (session->vm_id == NULL)
        continue;
      reason = _gsm_reaper_check_owner (self, &s, session, now, NULL, &by_age);
      if (reason != NULL)
        continue;
      if (!by_age && _gsm_session_is_stale (session) && gsm_session_get_stale_since (session) > 0)
        due = _gsm_reaper_clamp_past (gsm_session_get_stale_since (session), now) + s.grace;
      else if (!by_age)
        due = now + s.grace;
      due = MAX (due, retry_due (&s, _gsm_reaper_get_next_retry (session), now));
      if (due <= now &&
          _gsm_reaper_check_claim (self, session, now, &reason, &lost,
                                   &until) == GSM_REAPER_CLAIM_BLOCKS)
        {
          /* Held by a live reaper: it settles the entry, and that change
           * schedules again. Otherwise, when the claim runs out. */
          if (until < 0)
            continue;
          due = until;
        }
      if (soonest < 0 || due < soonest)
        soonest = due;
    }

  return soonest;
}
