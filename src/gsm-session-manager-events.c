/* gsm-session-manager-events.c: what the manager tells, and where
 *
 * An operation collects what it found (a VM registered, sessions found
 * stale, the registry as it left it) in a GsmManagerEvents, emitted as
 * signals in the owner context: the main context that was the
 * thread-default one when the manager was made. The registry as an
 * operation left it is compared with the view last reported, which gives
 * ::session-added, ::session-removed and ::sessions-changed. Changes made
 * by other processes come from the store's watch and are read by a
 * refresh operation in the worker.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define SIGNAL(name) (_gsm_session_manager_signals[GSM_MANAGER_SIGNAL_##name])

GsmManagerEvents *
_gsm_manager_events_new (GsmSessionManager *self)
{
  GsmManagerEvents *ev = g_new0 (GsmManagerEvents, 1);

  ev->self = g_object_ref (self);
  ev->emissions = g_array_new (FALSE, FALSE, sizeof (GsmManagerEmission));
  return ev;
}

void
_gsm_manager_events_free (gpointer data)
{
  GsmManagerEvents *ev = data;

  _gsm_manager_events_truncate (ev, 0);
  g_array_unref (ev->emissions);
  g_clear_pointer (&ev->snapshot, _gsm_registry_snapshot_unref);
  g_object_unref (ev->self);
  g_free (ev);
}

void
_gsm_manager_events_add (GsmManagerEvents *ev,
                         GsmManagerSignal  signal,
                         gpointer          object)
{
  GsmManagerEmission e = { _gsm_session_manager_signals[signal], g_object_ref (object) };

  g_array_append_val (ev->emissions, e);
}

/* Forgets the emissions added after the first @n_emissions. */
void
_gsm_manager_events_truncate (GsmManagerEvents *ev,
                              guint             n_emissions)
{
  for (guint i = n_emissions; i < ev->emissions->len; i++)
    g_object_unref (g_array_index (ev->emissions, GsmManagerEmission, i).object);
  g_array_set_size (ev->emissions, MIN (n_emissions, ev->emissions->len));
}

void
_gsm_manager_events_set_snapshot (GsmManagerEvents    *ev,
                                  GsmRegistrySnapshot *snapshot)
{
  g_clear_pointer (&ev->snapshot, _gsm_registry_snapshot_unref);
  if (snapshot != NULL)
    ev->snapshot = _gsm_registry_snapshot_ref (snapshot);
}

/* ---- the view: the registry as last reported --------------------------- */

typedef struct
{
  GsmSessionManager *self;
  GPtrArray         *added;
  GPtrArray         *removed;
  GPtrArray         *lapsed;
  gboolean           changed;
} ViewDiff;

static void
view_diff_cb (const char *session_id,
              GsmSession *before,
              GsmSession *after,
              gpointer    user_data)
{
  ViewDiff          *diff = user_data;
  GsmSessionManager *self = diff->self;

  if (before == NULL)
    g_ptr_array_add (diff->added, g_object_ref (after));
  else if (after == NULL)
    g_ptr_array_add (diff->removed, g_object_ref (before));
  else
    {
      diff->changed = TRUE;
      /* A session whose liveness the store vouched for (a lease) lost it:
       * the store found it dead, not a process. */
      if (self->registry != NULL && _gsm_registry_vouches_for (self->registry, before) &&
          !_gsm_registry_vouches_for (self->registry, after))
        g_ptr_array_add (diff->lapsed,
                         _gsm_session_is_stale (after)
                             ? g_object_ref (after)
                             : _gsm_session_with_stale (after, g_get_real_time () / (double) G_USEC_PER_SEC));
    }
}

/* In the owner context: report how the registry differs from the view. */
static void
apply_view (GsmSessionManager   *self,
            GsmRegistrySnapshot *snapshot)
{
  g_autoptr (GPtrArray) added = NULL;
  g_autoptr (GPtrArray) removed = NULL;
  g_autoptr (GPtrArray) lapsed = NULL;
  gboolean changed = FALSE;

  if (self->view != NULL && snapshot->generation <= self->view->generation)
    return;

  /* With leases (etcd), the store finds sessions dead: the diff is how
   * ::session-stale and the statistics learn of it. */
  if (!self->has_leases &&
      !g_signal_has_handler_pending (self, SIGNAL (SESSIONS_CHANGED), 0, TRUE) &&
      !g_signal_has_handler_pending (self, SIGNAL (SESSION_ADDED), 0, TRUE) &&
      !g_signal_has_handler_pending (self, SIGNAL (SESSION_REMOVED), 0, TRUE))
    {
      /* Nobody listens: no diff to compute. */
      g_clear_pointer (&self->view, _gsm_registry_snapshot_unref);
      self->view = _gsm_registry_snapshot_ref (snapshot);
      return;
    }

  added = g_ptr_array_new_with_free_func (g_object_unref);
  removed = g_ptr_array_new_with_free_func (g_object_unref);
  lapsed = g_ptr_array_new_with_free_func (g_object_unref);

  if (self->view != NULL)
    {
      ViewDiff diff = { self, added, removed, lapsed, FALSE };

      _gsm_registry_snapshot_diff (self->view, snapshot, view_diff_cb, &diff);
      changed = diff.changed;
    }

  g_clear_pointer (&self->view, _gsm_registry_snapshot_unref);
  self->view = _gsm_registry_snapshot_ref (snapshot);

  for (guint i = 0; i < removed->len; i++)
    g_signal_emit (self, SIGNAL (SESSION_REMOVED), 0, removed->pdata[i]);
  for (guint i = 0; i < added->len; i++)
    g_signal_emit (self, SIGNAL (SESSION_ADDED), 0, added->pdata[i]);
  for (guint i = 0; i < lapsed->len; i++)
    {
      g_atomic_int_inc (&self->stale_sessions_removed);
      g_signal_emit (self, SIGNAL (SESSION_STALE), 0, lapsed->pdata[i]);
    }
  if (changed || added->len > 0 || removed->len > 0)
    g_signal_emit (self, SIGNAL (SESSIONS_CHANGED), 0);
}

/* In the owner context: notify::has-vm if the operation changed it. */
static void
apply_has_vm (GsmSessionManager   *self,
              GsmRegistrySnapshot *snapshot)
{
  GsmSession *own;
  gboolean    has_vm;

  /* As of this operation, not of whatever the worker did since; and not
   * of a view older than one already reported: the events of what the
   * worker ran before a _sync call of this thread (a refresh, an
   * asynchronous call) can arrive after that call's own, as apply_view()
   * knows too. */
  if (snapshot->generation < self->has_vm_generation)
    return;
  self->has_vm_generation = snapshot->generation;
  own = _gsm_registry_snapshot_lookup (snapshot, self->session_id);
  has_vm = own != NULL && gsm_session_get_has_vm (own);
  if (has_vm != self->has_vm)
    {
      self->has_vm = has_vm;
      g_object_notify (G_OBJECT (self), "has-vm");
    }
}

static gboolean
emit_events_cb (gpointer data)
{
  GsmManagerEvents  *ev = data;
  GsmSessionManager *self = ev->self;

  for (guint i = 0; i < ev->emissions->len; i++)
    {
      GsmManagerEmission *e = &g_array_index (ev->emissions, GsmManagerEmission, i);

      g_signal_emit (self, e->signal_id, 0, e->object);
    }

  if (ev->snapshot != NULL)
    {
      apply_view (self, ev->snapshot);
      apply_has_vm (self, ev->snapshot);
    }

  return G_SOURCE_REMOVE;
}

/*
 * Emits @ev in the owner context: right away if this thread is running
 * that context, or is the thread that made the manager and may run it
 * now; else from an idle callback there. Any other thread (the worker, a
 * thread making a _sync call) always defers, so that signals never run in
 * it, even when nobody runs the owner context at that moment.
 */
void
_gsm_manager_events_dispatch (GsmManagerEvents *ev)
{
  GsmSessionManager *self = ev->self;

  if (ev->emissions->len == 0 && ev->snapshot == NULL)
    {
      _gsm_manager_events_free (ev);
      return;
    }

  if (g_main_context_is_owner (self->context) ||
      (!_gsm_manager_in_worker () && g_thread_self () == self->owner_thread))
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, emit_events_cb, ev,
                                _gsm_manager_events_free);
  else
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, emit_events_cb, ev, _gsm_manager_events_free);
      g_source_set_static_name (source, "[gsm] session manager signals");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

/* ---- changes made by other processes ----------------------------------- */

static void
registry_changed_cb (GsmRegistry       *registry,
                     GsmSessionManager *self)
{
  /* Read the new registry in the worker, not in the owner's thread. */
  if (g_atomic_int_compare_and_exchange (&self->refresh_queued, 0, 1))
    _gsm_manager_queue_op (self, GSM_OP_REFRESH, registry_changed_cb);
}

static gboolean
start_watch_cb (gpointer data)
{
  GsmSessionManager *self = data;
  g_autoptr (GError) error = NULL;
  gboolean ok;

  g_clear_pointer (&self->watch_source, g_source_unref);

  g_main_context_push_thread_default (self->context);
  ok = _gsm_registry_start_watch (self->registry, &error);
  g_main_context_pop_thread_default (self->context);

  if (!ok)
    g_warning ("gsm-session: cannot watch the registry for changes by other processes: %s",
               error->message);

  /* Report what changed before the watch started. */
  registry_changed_cb (self->registry, self);

  return G_SOURCE_REMOVE;
}

static void
registry_lapsed_cb (GsmRegistry       *registry,
                    GsmSessionManager *self)
{
  _gsm_manager_queue_op (self, GSM_OP_RECLAIM, registry_lapsed_cb);
}

/* Once in the registry: follow the changes other processes make. */
void
_gsm_manager_start_following (GsmSessionManager *self)
{
  g_signal_connect_object (self->registry, "changed", G_CALLBACK (registry_changed_cb), self, 0);
  g_signal_connect_object (self->registry, "lapsed", G_CALLBACK (registry_lapsed_cb), self, 0);

  /* Watching only helps a process that runs the main context (that is
   * where the signals go), and costs one that does not on every write:
   * start when the context first runs. */
  self->watch_source = g_idle_source_new ();
  g_source_set_priority (self->watch_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->watch_source, start_watch_cb, self, NULL);
  g_source_set_static_name (self->watch_source, "[gsm] start watching the registry");
  g_source_attach (self->watch_source, self->context);
}
