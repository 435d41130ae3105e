/* gsm-session-manager-rules.c: what the manager decides
 *
 * The business rules: whether a session is alive, dead or unverifiable
 * from here; what entering the registry, registering, unregistering and
 * confirming a VM, cleaning up and closing change (each a function that
 * a store runs under its lock, GsmRegistryUpdateFunc).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-error.h"
#include "gsm-file-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/* ---- liveness ---------------------------------------------------------- */

/*
 * Is @session's process alive, dead, or unverifiable from here? Our own
 * session is alive; with a store that keeps leases (etcd), the store
 * decides alone. Otherwise the probe, whose "dead" is a proof.
 */
static GsmLiveness
session_liveness (GsmSessionManager *self,
                  GsmSession        *session)
{
  if (g_str_equal (session->session_id, self->session_id))
    return GSM_LIVENESS_ALIVE;

  /* A session whose lease expired is dead wherever it ran, one with a
   * lease is alive. */
  if (self->has_leases)
    return _gsm_registry_vouches_for (self->registry, session) ? GSM_LIVENESS_ALIVE
                                                               : GSM_LIVENESS_DEAD;

  return _gsm_liveness_probe_check (self->probe, session);
}

GsmLiveness
_gsm_session_manager_get_liveness (GsmSessionManager *self,
                                   GsmSession        *session)
{
  return session_liveness (self, session);
}

/*
 * Is @session dead? Proven dead here, or recorded dead ("stale") by a
 * process that proved it, and not found alive here since. A session that
 * nothing can prove dead (another host, another kernel) is never dead,
 * whatever its age.
 */
static gboolean
is_session_dead (GsmSessionManager *self,
                 GsmSession        *session)
{
  switch (session_liveness (self, session))
    {
    case GSM_LIVENESS_ALIVE:
      return FALSE;
    case GSM_LIVENESS_DEAD:
      return TRUE;
    case GSM_LIVENESS_UNVERIFIABLE:
    default:
      return _gsm_session_is_stale (session);
    }
}

gboolean
_gsm_session_manager_is_session_dead (GsmSessionManager *self,
                                      GsmSession        *session)
{
  return is_session_dead (self, session);
}

/* ---- transactions ------------------------------------------------------ */

static GsmSession *
own_entry (GsmTxnContext  *ctx,
           GsmRegistryTxn *txn)
{
  GsmSessionManager *self = ctx->self;
  GsmSession        *own = _gsm_registry_txn_lookup (txn, self->session_id);

  if (own == NULL)
    {
      g_autoptr (GsmSession) last = NULL;

      /* Our entry vanished (a registry deleted by hand, or rebuilt without
       * our session file): write it again as we last knew it, VM and all. */
      g_mutex_lock (&self->mutex);
      if (self->own != NULL)
        last = g_object_ref (self->own);
      g_mutex_unlock (&self->mutex);

      /* Unless the store dropped it itself (its lease lapsed): then
       * the VM was free for others to take or reap meanwhile. */
      if (last != NULL && gsm_session_get_has_vm (last) &&
          _gsm_registry_vouches_for (self->registry, last))
        {
          GsmSession *without = _gsm_session_without_vm (last);

          g_object_unref (last);
          last = without;
        }

      if (last == NULL)
        {
          g_autoptr (GsmSession) bare = NULL;
          const char *lock_name = NULL;

          bare = _gsm_session_new (self->session_id, self->pid, self->hostname,
                                   self->created_at, self->start_time, self->boot_id);
          if (GSM_IS_FILE_REGISTRY (self->registry))
            lock_name = _gsm_file_registry_get_lock_name (GSM_FILE_REGISTRY (self->registry));
          last = _gsm_session_with_liveness (bare, _gsm_process_get_pid_ns (), lock_name);
        }
      _gsm_registry_txn_put (txn, last);
      own = _gsm_registry_txn_lookup (txn, self->session_id);
    }
  else if (_gsm_session_is_stale (own) && _gsm_session_get_member (own, "reap_claim") == NULL)
    {
      g_autoptr (GsmSession) active = _gsm_session_with_stale (own, 0);

      /* Recorded dead by a process that could not see us: we are not. */
      _gsm_registry_txn_put (txn, active);
      own = _gsm_registry_txn_lookup (txn, self->session_id);
    }

  return own;
}

/*
 * Marks dead sessions: an entry without a VM goes, one with a VM stays as
 * stale, for the reaper. Each is reported once, by whoever finds it. A
 * session marked stale that is found alive is active again. An
 * unverifiable session is never marked; once older than the expiry, its
 * entry goes if it owns no VM.
 */
static void
reconcile (GsmTxnContext  *ctx,
           GsmRegistryTxn *txn)
{
  GsmSessionManager      *self = ctx->self;
  GsmRegistrySnapshotIter iter;
  const char             *key;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
  while (_gsm_registry_snapshot_iter_next (&iter, &key, &session))
    {
      GsmLiveness liveness;

      if (_gsm_session_is_stale (session))
        {
          if (!gsm_session_get_has_vm (session))
            _gsm_registry_txn_remove (txn, key);
          else if (_gsm_session_get_member (session, "reap_claim") == NULL &&
                   session_liveness (self, session) == GSM_LIVENESS_ALIVE)
            {
              g_autoptr (GsmSession) active = _gsm_session_with_stale (session, 0);

              g_message ("Session %s (pid %d on %s) was recorded dead but is alive: "
                         "recording it active again",
                         key, gsm_session_get_pid (session),
                         gsm_session_get_hostname (session));
              _gsm_registry_txn_put (txn, active);
            }
          continue;
        }

      liveness = session_liveness (self, session);
      if (liveness == GSM_LIVENESS_ALIVE)
        continue;
      if (liveness == GSM_LIVENESS_UNVERIFIABLE)
        {
          if (gsm_session_get_has_vm (session) || ctx->now - session->created_at <= self->expiry)
            continue;
          _gsm_registry_txn_remove (txn, key);
          _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_SESSION_STALE, session);
        }
      else if (gsm_session_get_has_vm (session))
        {
          g_autoptr (GsmSession) stale = _gsm_session_with_stale (session, ctx->now);

          /* Recorded, so that every process counts the reaper's grace
           * period from now. With leases, every watching process reports
           * the lapse itself. */
          _gsm_registry_txn_put (txn, stale);
          if (!self->has_leases)
            _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_SESSION_STALE, stale);
        }
      else
        {
          _gsm_registry_txn_remove (txn, key);
          _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_SESSION_STALE, session);
        }
      ctx->n_stale++;
    }
}

gboolean
_gsm_txn_reconcile (GsmRegistryTxn *txn,
                    gpointer        user_data,
                    GError        **error)
{
  GsmTxnContext *ctx = user_data;

  own_entry (ctx, txn);
  reconcile (ctx, txn);
  return TRUE;
}

gboolean
_gsm_txn_enter (GsmRegistryTxn *txn,
                gpointer        user_data,
                GError        **error)
{
  own_entry (user_data, txn);
  return TRUE;
}

gboolean
_gsm_txn_register_vm (GsmRegistryTxn *txn,
                      gpointer        user_data,
                      GError        **error)
{
  GsmTxnContext     *ctx = user_data;
  GsmSessionManager *self = ctx->self;
  GsmOp             *op = ctx->op;
  GsmSession        *own = own_entry (ctx, txn);
  g_autoptr (GsmSession) updated = NULL;
  g_autoptr (GsmSession) vm = NULL;
  GsmRegistrySnapshotIter iter;
  GsmSession             *other;

  if (gsm_session_get_has_vm (own))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_VM_ALREADY_REGISTERED,
                   "Session %s already owns VM “%s”; unregister it before registering “%s”",
                   self->session_id, gsm_session_get_vm_id (own), op->vm_id);
      return FALSE;
    }

  _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &other))
    {
      if (other == own || g_strcmp0 (gsm_session_get_vm_id (other), op->vm_id) != 0)
        continue;

      /* Checked again now, as the reaper does: a stale mark is not taken
       * on trust when the owner can be seen alive. */
      if (!is_session_dead (self, other))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER,
                       "VM “%s” is owned by session %s (pid %d on %s), which is alive or "
                       "cannot be proven dead from here",
                       op->vm_id,
                       gsm_session_get_session_id (other), gsm_session_get_pid (other),
                       gsm_session_get_hostname (other));
          return FALSE;
        }

      /* A reaper is deleting it: it cannot be taken over. */
      if (_gsm_session_get_member (other, "reap_claim") != NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER,
                       "VM “%s” is being deleted by a reaper (its owner %s is dead)",
                       op->vm_id, gsm_session_get_session_id (other));
          return FALSE;
        }

      /* The owner is dead: take the VM over, so that no reaper deletes it
       * under us. The dead session has nothing left and goes. */
      _gsm_registry_txn_remove (txn, gsm_session_get_session_id (other));
      if (!_gsm_session_is_stale (other))
        {
          _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_SESSION_STALE, other);
          ctx->n_stale++;
        }
    }

  updated = _gsm_session_with_vm (own, op->vm_id, op->zone, (const char *const *) op->components,
                                  op->metadata, ctx->now);
  /* Reserved before the cloud creates it: recorded all the same, so that
   * a crash before the confirmation leaves an orphan to delete, not a VM
   * nobody knows. */
  if (op->kind == GSM_OP_RESERVE_VM)
    {
      GsmSession *reserved = _gsm_session_with_status (updated, GSM_STATUS_CREATING);

      g_object_unref (updated);
      updated = reserved;
    }
  _gsm_registry_txn_put (txn, updated);

  vm = g_object_ref (updated);
  _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_VM_REGISTERED, vm);

  return TRUE;
}

gboolean
_gsm_txn_unregister_vm (GsmRegistryTxn *txn,
                        gpointer        user_data,
                        GError        **error)
{
  GsmTxnContext *ctx = user_data;
  GsmSession    *own = own_entry (ctx, txn);
  g_autoptr (GsmSession) updated = NULL;
  g_autoptr (GsmSession) vm = NULL;

  if (!gsm_session_get_has_vm (own))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_NO_VM,
                   "Session %s owns no VM", ctx->self->session_id);
      return FALSE;
    }

  vm = g_object_ref (own);
  updated = _gsm_session_without_vm (own);
  if (g_strcmp0 (gsm_session_get_status (updated), GSM_STATUS_CREATING) == 0)
    {
      GsmSession *active = _gsm_session_with_status (updated, GSM_STATUS_ACTIVE);

      g_object_unref (updated);
      updated = active;
    }
  _gsm_registry_txn_put (txn, updated);
  _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_VM_UNREGISTERED, vm);

  return TRUE;
}

gboolean
_gsm_txn_confirm_vm (GsmRegistryTxn *txn,
                     gpointer        user_data,
                     GError        **error)
{
  GsmTxnContext *ctx = user_data;
  GsmSession    *own = own_entry (ctx, txn);
  g_autoptr (GsmSession) updated = NULL;

  if (!gsm_session_get_has_vm (own))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_NO_VM,
                   "Session %s owns no VM to confirm (a reaper may have taken it over "
                   "after this process was found dead)",
                   ctx->self->session_id);
      return FALSE;
    }
  if (g_strcmp0 (gsm_session_get_status (own), GSM_STATUS_CREATING) != 0)
    return TRUE; /* confirmed already, or registered without a reservation */

  updated = _gsm_session_with_status (own, GSM_STATUS_ACTIVE);
  _gsm_registry_txn_put (txn, updated);
  return TRUE;
}

gboolean
_gsm_txn_close (GsmRegistryTxn *txn,
                gpointer        user_data,
                GError        **error)
{
  GsmTxnContext *ctx = user_data;
  GsmSession    *own = _gsm_registry_txn_lookup (txn, ctx->self->session_id);

  /* A session that still owns a VM stays visible to the cleanup of others. */
  if (own != NULL && !gsm_session_get_has_vm (own))
    _gsm_registry_txn_remove (txn, ctx->self->session_id);

  return TRUE;
}
