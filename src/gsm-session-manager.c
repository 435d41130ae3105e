/* gsm-session-manager.c: this process's session and the registry of VMs
 *
 * A call enters here, is checked, and becomes an operation. An operation
 * runs either in the caller's thread (the _sync variants) or in the
 * manager's single worker thread (the async variants, so that they
 * complete in the order they were issued). It asks the registry store for
 * the entries, decides with the liveness probe, and hands the store a
 * function that makes its changes under the store's lock. What the
 * operation found (VM registered, sessions found stale, a new view of the
 * registry) is then emitted as signals in the manager's main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-process-private.h"
#include "gsm-provider-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define DEFAULT_EXPIRY (12 * 3600.0)

/**
 * GsmSessionManager:
 *
 * The session of this process, and the registry of which session owns
 * which VM.
 *
 * There is one manager per process, from [func@Gsm.SessionManager.get_default].
 * From its first use until [method@Gsm.SessionManager.close_sync] the
 * process has an entry in the registry, so any process can tell which VMs
 * belong to live sessions and which sessions are dead.
 *
 * Every operation has three forms: an asynchronous one built on
 * [iface@Gio.AsyncResult] (async calls complete in the order they were
 * issued), its `_finish()`, and a `_sync()` variant that needs no main
 * loop and can be used from cleanup paths.
 *
 * A session belongs to one process: in a child made by `fork()` without
 * `exec()` (for example Python's multiprocessing with the fork start
 * method), every operation fails with %GSM_ERROR_CLOSED instead of acting
 * as the parent's session, whose VM it would otherwise see as its own.
 *
 * ## Signals and threads
 *
 * Signals and property notifications are emitted in the main context that
 * was the thread-default one when the manager was created (usually the
 * global default context), whatever thread made the call. A `_sync()` call
 * made in that context's thread emits them before it returns.
 *
 * ## Configuration
 *
 * Read from the environment when the manager is created (durations in
 * seconds):
 *
 * - `GSM_RUNTIME_DIR`: where the files live; default
 *   `$XDG_STATE_HOME/gsm-session` (private to the user, mode 0700, kept
 *   across reboots)
 * - `GSM_FILE_PREFIX`: prefix of every file name (`jarvis_` with
 *   `GSM_RUNTIME_DIR=/tmp` uses the original Python files)
 * - `GSM_DURABLE`: `0` turns fsync off (files are still replaced atomically)
 * - `GSM_SESSION_EXPIRY`: age after which the entry of a session whose
 *   liveness cannot be proven from here, and that owns no VM, is dropped
 *   (default 43200); such a session is never taken for dead
 * - `GSM_PROCESS_MATCH`: a local session whose command line does not
 *   contain this text is dead
 * - `GSM_LOCK_TIMEOUT`: how long to wait for the registry lock (default 30)
 * - `GSM_HOSTNAME`: overrides the host name (for tests)
 * - `GSM_REGISTRY`: where the registry lives: `file` (the default: files in
 *   `GSM_RUNTIME_DIR`) or `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` (etcd 3.4
 *   or later, for sessions on many hosts; the members of one cluster,
 *   tried in turn; default prefix `/gsm-session`); `etcds://…` for TLS
 * - `GSM_LEASE_TTL`: with etcd, how long a session outlives its process's
 *   last keepalive (default 15)
 * - `GSM_ETCD_TIMEOUT`: with etcd, how long one request may take,
 *   connecting included (default 5)
 * - `GSM_ETCD_CA_FILE`, `GSM_ETCD_CERT_FILE`, `GSM_ETCD_KEY_FILE`: with
 *   `etcds://`, the PEM files of the CA that signed etcd's certificates (by
 *   default, the system's), and of a client certificate and its key (the key
 *   may be in the certificate's file)
 * - `GSM_ETCD_USER`, and `GSM_ETCD_PASSWORD_FILE` (a file whose first line is
 *   the password) or `GSM_ETCD_PASSWORD`: with etcd, the user to
 *   authenticate as; the password is never logged
 *
 * The registry settings (from `GSM_REGISTRY` on, but for `GSM_ETCD_PASSWORD`)
 * can also be set in the `[registry]` group of the configuration file (see
 * [class@Gsm.Provider]), as `backend`, `lease-ttl`, `etcd-timeout`,
 * `ca-file`, `cert-file`, `key-file`, `user` and `password-file`; the
 * environment wins:
 *
 * ```ini
 * [registry]
 * backend=etcds://etcd1.example.com:2379,etcd2.example.com:2379/team-a
 * lease-ttl=15
 * ca-file=/etc/gsm-session/etcd-ca.pem
 * user=team-a
 * password-file=/etc/gsm-session/etcd-password
 * ```
 *
 * Since: 1.0
 */

struct _GsmSessionManager
{
  GObject               parent_instance;

  GMainContext         *context;
  GThread              *owner_thread;  /* the thread that made the manager */
  GThreadPool          *pool;

  /* Identity; fixed after construction. */
  char                 *session_id;
  guint                 session_id_hash;
  int                   pid;
  char                 *hostname;
  double                created_at;
  guint64               start_time;
  char                 *boot_id;
  char                 *file_prefix;   /* GSM_FILE_PREFIX, with our uid where shared names are taken */
  double                expiry;

  GFile                *runtime_dir;
  GFile                *session_file;
  GFile                *vm_registry;
  GFile                *global_tracker_file;

  GMutex                init_mutex;    /* guards init_error and setting registry */
  GError               *init_error;    /* why the process is not in the registry yet */
  gboolean              runtime_dir_is_default;
  gint                  entered;       /* (atomic) in the registry: init_error unset */
  GsmRegistry          *registry;
  gboolean              has_leases;   /* the registry's, asked once */
  GsmLivenessProbe     *probe;

  GMutex                mutex;         /* guards own and closed */
  GsmSession           *own;           /* our entry as last written */
  gboolean              closed;

  /* Only touched in the owner context. */
  GsmRegistrySnapshot  *view;          /* what ::sessions-changed last reported */
  gboolean              has_vm;        /* what notify::has-vm last reported */
  guint64               has_vm_generation; /* of the view has_vm is as of */
  gint                  refresh_queued;
  GSource              *watch_source;  /* until the watch starts */

  /* Statistics (atomic). */
  gint                  vms_registered;
  gint                  vms_unregistered;
  gint                  registry_cleanups;
  gint                  stale_sessions_removed;
};

enum {
  PROP_0,
  PROP_SESSION_ID,
  PROP_PID,
  PROP_HOSTNAME,
  PROP_CREATED_AT,
  PROP_RUNTIME_DIR,
  PROP_SESSION_FILE,
  PROP_VM_REGISTRY,
  PROP_GLOBAL_TRACKER_FILE,
  PROP_HAS_VM,
  N_PROPS
};

enum {
  VM_REGISTERED,
  VM_UNREGISTERED,
  SESSION_STALE,
  SESSIONS_CHANGED,
  SESSION_ADDED,
  SESSION_REMOVED,
  OWNERSHIP_LAPSED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static GsmSessionManager *default_manager;
static GMutex default_lock;

static GPrivate in_worker;

G_DEFINE_FINAL_TYPE (GsmSessionManager, gsm_session_manager, G_TYPE_OBJECT)

/* ---- events: what an operation hands to the owner context -------------- */

typedef struct
{
  guint    signal_id;
  GObject *object;
} Emission;

typedef struct
{
  GsmSessionManager   *self;
  GArray              *emissions;      /* Emission */
  GsmRegistrySnapshot *snapshot;       /* the registry as the operation left it */
} Events;

static Events *
events_new (GsmSessionManager *self)
{
  Events *ev = g_new0 (Events, 1);

  ev->self = g_object_ref (self);
  ev->emissions = g_array_new (FALSE, FALSE, sizeof (Emission));
  return ev;
}

static void
events_free (gpointer data)
{
  Events *ev = data;

  for (guint i = 0; i < ev->emissions->len; i++)
    g_object_unref (g_array_index (ev->emissions, Emission, i).object);
  g_array_unref (ev->emissions);
  g_clear_pointer (&ev->snapshot, _gsm_registry_snapshot_unref);
  g_object_unref (ev->self);
  g_free (ev);
}

static void
events_add (Events  *ev,
            guint    signal_id,
            gpointer object)
{
  Emission e = { signal_id, g_object_ref (object) };

  g_array_append_val (ev->emissions, e);
}

static void
events_set_snapshot (Events              *ev,
                     GsmRegistrySnapshot *snapshot)
{
  g_clear_pointer (&ev->snapshot, _gsm_registry_snapshot_unref);
  if (snapshot != NULL)
    ev->snapshot = _gsm_registry_snapshot_ref (snapshot);
}

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
  ViewDiff *diff = user_data;
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
  g_autoptr(GPtrArray) added = NULL;
  g_autoptr(GPtrArray) removed = NULL;
  g_autoptr(GPtrArray) lapsed = NULL;
  gboolean changed = FALSE;

  if (self->view != NULL && snapshot->generation <= self->view->generation)
    return;

  /* With leases (etcd), the store finds sessions dead: the diff is how
   * ::session-stale and the statistics learn of it. */
  if (!self->has_leases &&
      !g_signal_has_handler_pending (self, signals[SESSIONS_CHANGED], 0, TRUE) &&
      !g_signal_has_handler_pending (self, signals[SESSION_ADDED], 0, TRUE) &&
      !g_signal_has_handler_pending (self, signals[SESSION_REMOVED], 0, TRUE))
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
    g_signal_emit (self, signals[SESSION_REMOVED], 0, removed->pdata[i]);
  for (guint i = 0; i < added->len; i++)
    g_signal_emit (self, signals[SESSION_ADDED], 0, added->pdata[i]);
  for (guint i = 0; i < lapsed->len; i++)
    {
      g_atomic_int_inc (&self->stale_sessions_removed);
      g_signal_emit (self, signals[SESSION_STALE], 0, lapsed->pdata[i]);
    }
  if (changed || added->len > 0 || removed->len > 0)
    g_signal_emit (self, signals[SESSIONS_CHANGED], 0);
}

static gboolean
emit_events_cb (gpointer data)
{
  Events *ev = data;
  GsmSessionManager *self = ev->self;
  GsmSession *own;
  gboolean has_vm;

  for (guint i = 0; i < ev->emissions->len; i++)
    {
      Emission *e = &g_array_index (ev->emissions, Emission, i);

      g_signal_emit (self, e->signal_id, 0, e->object);
    }

  if (ev->snapshot != NULL)
    apply_view (self, ev->snapshot);

  /* As of this operation, not of whatever the worker did since; and not
   * of a view older than one already reported: the events of what the
   * worker ran before a _sync call of this thread (a refresh, an
   * asynchronous call) can arrive after that call's own, as apply_view()
   * knows too. */
  if (ev->snapshot == NULL || ev->snapshot->generation < self->has_vm_generation)
    return G_SOURCE_REMOVE;
  self->has_vm_generation = ev->snapshot->generation;
  own = _gsm_registry_snapshot_lookup (ev->snapshot, self->session_id);
  has_vm = own != NULL && gsm_session_get_has_vm (own);
  if (has_vm != self->has_vm)
    {
      self->has_vm = has_vm;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HAS_VM]);
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
static void
events_dispatch (Events *ev)
{
  GsmSessionManager *self = ev->self;

  if (ev->emissions->len == 0 && ev->snapshot == NULL)
    {
      events_free (ev);
      return;
    }

  if (g_main_context_is_owner (self->context) ||
      (g_private_get (&in_worker) == NULL && g_thread_self () == self->owner_thread))
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, emit_events_cb, ev, events_free);
  else
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, emit_events_cb, ev, events_free);
      g_source_set_static_name (source, "[gsm] session manager signals");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

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
  if (_gsm_session_id_is (session, self->session_id, self->session_id_hash))
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

/* ---- operations -------------------------------------------------------- */

typedef enum
{
  OP_REGISTER_VM,
  OP_RESERVE_VM,
  OP_CONFIRM_VM,
  OP_GET_MY_VM,
  OP_UNREGISTER_VM,
  OP_GET_ALL_ACTIVE_SESSIONS,
  OP_LIST_SESSIONS,
  OP_CLEANUP_STALE_SESSIONS,
  OP_CLOSE,
  OP_REFRESH,
  OP_RECLAIM,
} OpKind;

typedef struct
{
  OpKind     kind;
  char      *vm_id;
  char      *zone;
  char     **components;
  GVariant  *metadata;
} Op;

typedef struct
{
  gboolean    ok;
  GsmSession      *vm;
  GHashTable *sessions;
  int         count;
} OpResult;

static void
op_free (gpointer data)
{
  Op *op = data;

  g_free (op->vm_id);
  g_free (op->zone);
  g_strfreev (op->components);
  g_clear_pointer (&op->metadata, g_variant_unref);
  g_free (op);
}

static Op *
op_new (OpKind kind)
{
  Op *op = g_new0 (Op, 1);

  op->kind = kind;
  return op;
}

typedef struct
{
  GsmSessionManager *self;
  Op                *op;
  Events            *events;
  double             now;
  guint              n_stale;
} TxnContext;

static GsmSession *
own_entry (TxnContext     *ctx,
           GsmRegistryTxn *txn)
{
  GsmSessionManager *self = ctx->self;
  GsmSession *own = _gsm_registry_txn_lookup (txn, self->session_id);

  if (own == NULL)
    {
      g_autoptr(GsmSession) last = NULL;

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
          g_autoptr(GsmSession) bare = NULL;
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
      g_autoptr(GsmSession) active = _gsm_session_with_stale (own, 0);

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
reconcile (TxnContext     *ctx,
           GsmRegistryTxn *txn)
{
  GsmSessionManager *self = ctx->self;
  GsmRegistrySnapshotIter iter;
  const char *key;
  GsmSession *session;

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
              g_autoptr(GsmSession) active = _gsm_session_with_stale (session, 0);

              g_message ("Session %s (pid %d on %s) was recorded dead but is alive: "
                         "recording it active again", key, gsm_session_get_pid (session),
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
          events_add (ctx->events, signals[SESSION_STALE], session);
        }
      else if (gsm_session_get_has_vm (session))
        {
          g_autoptr(GsmSession) stale = _gsm_session_with_stale (session, ctx->now);

          /* Recorded, so that every process counts the reaper's grace
           * period from now. With leases, every watching process reports
           * the lapse itself. */
          _gsm_registry_txn_put (txn, stale);
          if (!self->has_leases)
            events_add (ctx->events, signals[SESSION_STALE], stale);
        }
      else
        {
          _gsm_registry_txn_remove (txn, key);
          events_add (ctx->events, signals[SESSION_STALE], session);
        }
      ctx->n_stale++;
    }
}

static gboolean
txn_reconcile (GsmRegistryTxn  *txn,
               gpointer         user_data,
               GError         **error)
{
  TxnContext *ctx = user_data;

  own_entry (ctx, txn);
  reconcile (ctx, txn);
  return TRUE;
}

static gboolean
txn_enter (GsmRegistryTxn  *txn,
           gpointer         user_data,
           GError         **error)
{
  own_entry (user_data, txn);
  return TRUE;
}

static gboolean
txn_register_vm (GsmRegistryTxn  *txn,
                 gpointer         user_data,
                 GError         **error)
{
  TxnContext *ctx = user_data;
  GsmSessionManager *self = ctx->self;
  Op *op = ctx->op;
  GsmSession *own = own_entry (ctx, txn);
  g_autoptr(GsmSession) updated = NULL;
  g_autoptr(GsmSession) vm = NULL;
  GsmRegistrySnapshotIter iter;
  GsmSession *other;

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
                       "cannot be proven dead from here", op->vm_id,
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
          events_add (ctx->events, signals[SESSION_STALE], other);
          ctx->n_stale++;
        }
    }

  updated = _gsm_session_with_vm (own, op->vm_id, op->zone, (const char * const *) op->components,
                                  op->metadata, ctx->now);
  /* Reserved before the cloud creates it: recorded all the same, so that
   * a crash before the confirmation leaves an orphan to delete, not a VM
   * nobody knows. */
  if (op->kind == OP_RESERVE_VM)
    {
      GsmSession *reserved = _gsm_session_with_status (updated, GSM_STATUS_CREATING);

      g_object_unref (updated);
      updated = reserved;
    }
  _gsm_registry_txn_put (txn, updated);

  vm = g_object_ref (updated);
  events_add (ctx->events, signals[VM_REGISTERED], vm);

  return TRUE;
}

static gboolean
txn_unregister_vm (GsmRegistryTxn  *txn,
                   gpointer         user_data,
                   GError         **error)
{
  TxnContext *ctx = user_data;
  GsmSession *own = own_entry (ctx, txn);
  g_autoptr(GsmSession) updated = NULL;
  g_autoptr(GsmSession) vm = NULL;

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
  events_add (ctx->events, signals[VM_UNREGISTERED], vm);

  return TRUE;
}

static gboolean
txn_confirm_vm (GsmRegistryTxn  *txn,
                gpointer         user_data,
                GError         **error)
{
  TxnContext *ctx = user_data;
  GsmSession *own = own_entry (ctx, txn);
  g_autoptr(GsmSession) updated = NULL;

  if (!gsm_session_get_has_vm (own))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_NO_VM,
                   "Session %s owns no VM to confirm (a reaper may have taken it over "
                   "after this process was found dead)", ctx->self->session_id);
      return FALSE;
    }
  if (g_strcmp0 (gsm_session_get_status (own), GSM_STATUS_CREATING) != 0)
    return TRUE;   /* confirmed already, or registered without a reservation */

  updated = _gsm_session_with_status (own, GSM_STATUS_ACTIVE);
  _gsm_registry_txn_put (txn, updated);
  return TRUE;
}

static gboolean
txn_close (GsmRegistryTxn  *txn,
           gpointer         user_data,
           GError         **error)
{
  TxnContext *ctx = user_data;
  GsmSession *own = _gsm_registry_txn_lookup (txn, ctx->self->session_id);

  /* A session that still owns a VM stays visible to the cleanup of others. */
  if (own != NULL && !gsm_session_get_has_vm (own))
    _gsm_registry_txn_remove (txn, ctx->self->session_id);

  return TRUE;
}

/* A child made by fork() without exec inherits the parent's manager: its
 * session id, its pid and its VM. Acting on them would make the child
 * unregister (or delete) its parent's VM, and the worker thread did not
 * survive the fork. */
static gboolean
check_not_forked (GsmSessionManager  *self,
                  GError            **error)
{
  if (G_LIKELY (getpid () == self->pid))
    return TRUE;

  g_set_error (error, GSM_ERROR, GSM_ERROR_CLOSED,
               "Process %d was forked from the process of session %s (pid %d): a session does "
               "not cross fork(), and the child has none of its own (exec a new program)",
               (int) getpid (), self->session_id, self->pid);
  return FALSE;
}

static gboolean retry_init (GsmSessionManager  *self,
                            GError            **error);

static gboolean
check_usable (GsmSessionManager  *self,
              GError            **error)
{
  gboolean closed;

  if (!check_not_forked (self, error))
    return FALSE;

  if (G_UNLIKELY (!g_atomic_int_get (&self->entered)) && !retry_init (self, error))
    return FALSE;

  g_mutex_lock (&self->mutex);
  closed = self->closed;
  g_mutex_unlock (&self->mutex);

  if (closed)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CLOSED,
                   "Session %s was closed", self->session_id);
      return FALSE;
    }

  return TRUE;
}

static void
remember_own (GsmSessionManager   *self,
              GsmRegistrySnapshot *snapshot)
{
  GsmSession *own = _gsm_registry_snapshot_lookup (snapshot, self->session_id);

  g_mutex_lock (&self->mutex);
  g_set_object (&self->own, own);
  g_mutex_unlock (&self->mutex);
}

/* A store may call the function more than once (optimistic transactions):
 * each call starts from what was there before the first. */
typedef struct
{
  GsmRegistryUpdateFunc  func;
  TxnContext            *ctx;
  guint                  n_emissions;
  guint                  n_stale;
} Attempt;

static gboolean
txn_attempt (GsmRegistryTxn  *txn,
             gpointer         user_data,
             GError         **error)
{
  Attempt *a = user_data;
  GArray *emissions = a->ctx->events->emissions;

  for (guint i = a->n_emissions; i < emissions->len; i++)
    g_object_unref (g_array_index (emissions, Emission, i).object);
  g_array_set_size (emissions, a->n_emissions);
  a->ctx->n_stale = a->n_stale;

  return a->func (txn, a->ctx, error);
}

static gboolean
run_update (GsmSessionManager      *self,
            GsmRegistryUpdateFunc   func,
            TxnContext             *ctx,
            GCancellable           *cancellable,
            GError                **error)
{
  g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
  Attempt attempt = { func, ctx, ctx->events->emissions->len, ctx->n_stale };

  ctx->now = g_get_real_time () / (double) G_USEC_PER_SEC;

  snapshot = _gsm_registry_update (self->registry, txn_attempt, &attempt, cancellable, error);
  if (snapshot == NULL)
    return FALSE;

  remember_own (self, snapshot);
  events_set_snapshot (ctx->events, snapshot);

  if (ctx->n_stale > 0)
    {
      g_atomic_int_add (&self->stale_sessions_removed, (int) ctx->n_stale);
      g_atomic_int_inc (&self->registry_cleanups);
    }

  return TRUE;
}

/* The hash of the tables listings return: like g_str_hash(), of the
 * whole string, but eight bytes at a time (a listing of 10 000 sessions
 * spent a fifth of its time in g_str_hash()). Lookups go through the
 * table's own function, so callers see no difference. */
static guint
session_id_hash (gconstpointer key)
{
  const char *s = key;
  gsize len = strlen (s);
  guint64 h = len * G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
  guint64 w;

  for (; len >= 8; s += 8, len -= 8)
    {
      memcpy (&w, s, 8);
      h = (h ^ w) * G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
      h ^= h >> 29;
    }
  w = 0;
  memcpy (&w, s, len);
  h = (h ^ w) * G_GUINT64_CONSTANT (0xc4ceb9fe1a85ec53);
  return (guint) (h ^ (h >> 32));
}

/* Active sessions of @snapshot; TRUE in @needs_cleanup if some are dead
 * but not yet recorded so. */
static GHashTable *
collect_sessions (GsmSessionManager   *self,
                  GsmRegistrySnapshot *snapshot,
                  gboolean             include_stale,
                  gboolean            *needs_cleanup)
{
  /* Keys belong to the sessions, as in the registry's own tables:
   * g_hash_table_unref() frees everything. */
  GHashTable *table = g_hash_table_new_full (session_id_hash, g_str_equal, NULL, g_object_unref);
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  GsmRegistrySnapshotIter iter;
  GsmSession *session;

  *needs_cleanup = FALSE;
  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      if (_gsm_session_is_stale (session))
        {
          if (!gsm_session_get_has_vm (session))
            *needs_cleanup = TRUE;
          if (!include_stale)
            continue;
        }
      else
        {
          GsmLiveness liveness = session_liveness (self, session);

          if (liveness == GSM_LIVENESS_DEAD)
            {
              *needs_cleanup = TRUE;
              if (!include_stale)
                continue;
              /* Show it as it will be recorded. */
              session = _gsm_session_with_stale (session, now);
              g_hash_table_insert (table, (gpointer) gsm_session_get_session_id (session), session);
              continue;
            }
          if (liveness == GSM_LIVENESS_UNVERIFIABLE && include_stale)
            {
              if (!gsm_session_get_has_vm (session) && now - session->created_at > self->expiry)
                *needs_cleanup = TRUE;
              session = _gsm_session_shown_as (session, GSM_STATUS_UNVERIFIABLE);
              g_hash_table_insert (table, (gpointer) gsm_session_get_session_id (session), session);
              continue;
            }
        }

      g_hash_table_insert (table, session->session_id, g_object_ref (session));
    }

  return table;
}

static gboolean
run_op (GsmSessionManager  *self,
        Op                 *op,
        OpResult           *result,
        GCancellable       *cancellable,
        GError            **error)
{
  TxnContext ctx = { self, op, events_new (self), 0, 0 };
  g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
  gboolean ok = FALSE;

  memset (result, 0, sizeof *result);

  if (op->kind != OP_REFRESH && op->kind != OP_RECLAIM && !check_usable (self, error))
    goto out;

  switch (op->kind)
    {
    case OP_REGISTER_VM:
    case OP_RESERVE_VM:
      ok = run_update (self, txn_register_vm, &ctx, cancellable, error);
      if (ok)
        g_atomic_int_inc (&self->vms_registered);
      break;

    case OP_CONFIRM_VM:
      ok = run_update (self, txn_confirm_vm, &ctx, cancellable, error);
      break;

    case OP_UNREGISTER_VM:
      ok = run_update (self, txn_unregister_vm, &ctx, cancellable, error);
      if (ok)
        g_atomic_int_inc (&self->vms_unregistered);
      break;

    case OP_GET_MY_VM:
      snapshot = _gsm_registry_load (self->registry, cancellable, error);
      if (snapshot != NULL)
        {
          GsmSession *own = _gsm_registry_snapshot_lookup (snapshot, self->session_id);

          /* The seed's ownership validation: the entry must be ours. */
          if (own != NULL && gsm_session_get_pid (own) == self->pid &&
              g_strcmp0 (gsm_session_get_hostname (own), self->hostname) == 0)
            result->vm = gsm_session_get_has_vm (own) ? g_object_ref (own) : NULL;
          events_set_snapshot (ctx.events, snapshot);
          ok = TRUE;
        }
      break;

    case OP_GET_ALL_ACTIVE_SESSIONS:
    case OP_LIST_SESSIONS:
      {
        gboolean needs_cleanup = FALSE;

        snapshot = _gsm_registry_load (self->registry, cancellable, error);
        if (snapshot == NULL)
          break;
        result->sessions = collect_sessions (self, snapshot, op->kind == OP_LIST_SESSIONS,
                                             &needs_cleanup);
        events_set_snapshot (ctx.events, snapshot);
        ok = TRUE;
        /* As in the seed, listing also cleans up; a failure to do so does
         * not make the listing wrong. */
        if (needs_cleanup && op->kind == OP_GET_ALL_ACTIVE_SESSIONS)
          {
            g_autoptr(GError) local_error = NULL;

            if (!run_update (self, txn_reconcile, &ctx, cancellable, &local_error))
              g_debug ("Cleaning up stale sessions failed: %s", local_error->message);
          }
      }
      break;

    case OP_CLEANUP_STALE_SESSIONS:
      ok = run_update (self, txn_reconcile, &ctx, cancellable, error);
      result->count = (int) ctx.n_stale;
      break;

    case OP_CLOSE:
      ok = run_update (self, txn_close, &ctx, cancellable, error);
      if (ok)
        {
          g_mutex_lock (&self->mutex);
          self->closed = TRUE;
          g_mutex_unlock (&self->mutex);
        }
      break;

    case OP_RECLAIM:
      /* Nothing to enter again after close. */
      if (!check_usable (self, NULL))
        break;
      /* After the store dropped our entry (a lease lapsed): enter again,
       * with the VM if the store still names us its owner. */
      ok = run_update (self, txn_enter, &ctx, cancellable, error);
      if (ok)
        {
          g_autoptr(GsmSession) own = NULL;

          g_mutex_lock (&self->mutex);
          own = self->own ? g_object_ref (self->own) : NULL;
          g_mutex_unlock (&self->mutex);
          if (own != NULL)
            events_add (ctx.events, signals[OWNERSHIP_LAPSED], own);
        }
      break;

    case OP_REFRESH:
      g_atomic_int_set (&self->refresh_queued, 0);
      if (self->registry == NULL)
        break;
      snapshot = _gsm_registry_peek (self->registry, cancellable, NULL);
      if (snapshot != NULL)
        events_set_snapshot (ctx.events, snapshot);
      ok = TRUE;
      break;

    default:
      g_assert_not_reached ();
    }

out:
  result->ok = ok;
  events_dispatch (ctx.events);
  return ok;
}

/* ---- async plumbing ---------------------------------------------------- */

static void
return_result (GTask    *task,
               Op       *op,
               OpResult *result,
               GError   *error)
{
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  switch (op->kind)
    {
    case OP_GET_MY_VM:
      g_task_return_pointer (task, result->vm, g_object_unref);
      break;
    case OP_GET_ALL_ACTIVE_SESSIONS:
    case OP_LIST_SESSIONS:
      g_task_return_pointer (task, result->sessions, (GDestroyNotify) g_hash_table_unref);
      break;
    case OP_CLEANUP_STALE_SESSIONS:
      g_task_return_int (task, result->count);
      break;
    default:
      g_task_return_boolean (task, TRUE);
    }
}

/* The thread function of a task queued with _gsm_session_manager_run_in_worker(). */
static G_DEFINE_QUARK (gsm-worker-func, worker_func)

/*
 * The worker: runs every queued task in order, one at a time. A task is a
 * registry operation (its data an Op), or another operation of the
 * manager's (cleanup_my_vm) queued with _gsm_session_manager_run_in_worker().
 */
static void
worker_func (gpointer data,
             gpointer user_data)
{
  GTask *task = data;
  GsmSessionManager *self = g_task_get_source_object (task);
  GTaskThreadFunc func = g_object_get_qdata (G_OBJECT (task), worker_func_quark ());

  g_private_set (&in_worker, GINT_TO_POINTER (1));

  if (!g_task_return_error_if_cancelled (task))
    {
      if (func != NULL)
        func (task, self, g_task_get_task_data (task), g_task_get_cancellable (task));
      else
        {
          Op *op = g_task_get_task_data (task);
          OpResult result;
          GError *error = NULL;

          run_op (self, op, &result, g_task_get_cancellable (task), &error);
          return_result (task, op, &result, error);
        }
    }

  g_object_unref (task);
}

/*
 * Runs @func in the manager's worker, after every operation queued before
 * and before every one queued after, as g_task_run_in_thread() would run
 * it. What @func does through the manager's _sync functions is signalled
 * in the owner context.
 */
void
_gsm_session_manager_run_in_worker (GsmSessionManager *self,
                                    GTask             *task,
                                    GTaskThreadFunc    func)
{
  GError *error = NULL;

  if (!check_not_forked (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_object_set_qdata (G_OBJECT (task), worker_func_quark (), func);
  g_thread_pool_push (self->pool, g_object_ref (task), NULL);
}

static void
start_op (GsmSessionManager   *self,
          Op                  *op,
          gpointer             source_tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, op, op_free);
  if (!check_not_forked (self, &error))
    {
      /* No worker thread here to run it. */
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_thread_pool_push (self->pool, task, NULL);
}

static gboolean
check_task (GsmSessionManager *self,
            GAsyncResult      *result,
            gpointer           source_tag)
{
  return g_task_is_valid (result, self) && g_task_get_source_tag (G_TASK (result)) == source_tag;
}

static void
registry_changed_cb (GsmRegistry       *registry,
                     GsmSessionManager *self)
{
  /* Read the new registry in the worker, not in the owner's thread. */
  if (g_atomic_int_compare_and_exchange (&self->refresh_queued, 0, 1))
    {
      GTask *task = g_task_new (self, NULL, NULL, NULL);

      g_task_set_source_tag (task, registry_changed_cb);
      g_task_set_task_data (task, op_new (OP_REFRESH), op_free);
      g_thread_pool_push (self->pool, task, NULL);
    }
}

static gboolean
start_watch_cb (gpointer data)
{
  GsmSessionManager *self = data;
  g_autoptr(GError) error = NULL;
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
  GTask *task = g_task_new (self, NULL, NULL, NULL);

  g_task_set_source_tag (task, registry_lapsed_cb);
  g_task_set_task_data (task, op_new (OP_RECLAIM), op_free);
  g_thread_pool_push (self->pool, task, NULL);
}

/* ---- construction ------------------------------------------------------ */

static guint64
own_start_time (void)
{
  char state;
  guint64 start_time = 0;
  int saved_errno;

  if (!_gsm_process_read_stat (getpid (), &state, &start_time, &saved_errno))
    return 0;
  return start_time;
}

static char *
default_runtime_dir (gboolean *is_default)
{
  const char *env = g_getenv ("GSM_RUNTIME_DIR");

  if (env != NULL && *env != '\0')
    {
      *is_default = FALSE;
      return g_strdup (env);
    }

  *is_default = TRUE;
  return g_build_filename (g_get_user_state_dir (), "gsm-session", NULL);
}

/*
 * Opens the registry (unless an earlier attempt did) and enters this
 * process into it. What the entry found is left in @events for the caller
 * to dispatch. Fails, to be tried again by the next operation, when the
 * registry cannot be used now: a lock held too long, a full or read-only
 * file system, an unreachable etcd, but also an insecure directory, which
 * its owner may fix.
 */
static gboolean
init_registry (GsmSessionManager  *self,
               Events             *events,
               GError            **error)
{
  g_autoptr(GsmFileRegistry) file_registry = NULL;
  const char *prefix = self->file_prefix;
  const char *durable = g_getenv ("GSM_DURABLE");
  g_autofree char *backend = NULL;
  g_autofree char *dir = NULL;
  g_autoptr(GKeyFile) config = NULL;
  g_autoptr(GError) config_error = NULL;
  TxnContext ctx = { self, NULL, events, 0, 0 };

  if (self->registry != NULL)
    goto enter;

  /* The environment, else the [registry] group of the configuration. */
  config = _gsm_config_load (&config_error);
  if (config == NULL)
    g_warning ("gsm-session: %s", config_error->message);
  backend = _gsm_config_get_backend (config);

  if (_gsm_backend_is_etcd (backend))
    {
      GsmEtcdRegistry *etcd;

      etcd = _gsm_etcd_registry_new (backend, self->session_id,
                                     _gsm_config_get_seconds (config, "registry", "lease-ttl",
                                                              "GSM_LEASE_TTL", GSM_ETCD_DEFAULT_TTL),
                                     _gsm_config_get_seconds (config, "registry", "etcd-timeout",
                                                              "GSM_ETCD_TIMEOUT", GSM_ETCD_DEFAULT_TIMEOUT),
                                     NULL, error);
      if (etcd == NULL)
        return FALSE;
      self->registry = GSM_REGISTRY (etcd);
    }
  else if (backend != NULL && *backend != '\0' && !g_str_equal (backend, "file"))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Registry backend “%s” (GSM_REGISTRY, or “backend” in [registry] of the "
                   "configuration file): expected “file”, etcd://HOST:PORT[,HOST:PORT…][/PREFIX] "
                   "or etcds://…", backend);
      return FALSE;
    }
  else
    {
      dir = g_file_get_path (self->runtime_dir);
      file_registry = _gsm_file_registry_new (dir, self->runtime_dir_is_default,
                                              prefix ? prefix : "", self->session_id, self->pid,
                                              g_strcmp0 (durable, "0") != 0, error);
      if (file_registry == NULL)
        return FALSE;
      _gsm_liveness_probe_set_lock_dir (self->probe, _gsm_file_registry_get_dirfd (file_registry));
      self->registry = GSM_REGISTRY (g_steal_pointer (&file_registry));
    }

  self->has_leases = _gsm_registry_has_leases (self->registry);

enter:
  /* Enter the registry now, so that we are known from the first use. */
  return run_update (self, txn_enter, &ctx, NULL, error);
}

/* Once in the registry: follow the changes other processes make. */
static void
start_following (GsmSessionManager *self)
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

/*
 * The process could not enter the registry when the manager was created
 * (or at the last try): try again, so that a lock held for a while, or a
 * file system full for a while, does not keep the process out for good.
 */
static gboolean
retry_init (GsmSessionManager  *self,
            GError            **error)
{
  Events *events = events_new (self);
  gboolean ok;

  g_mutex_lock (&self->init_mutex);
  ok = g_atomic_int_get (&self->entered);
  if (!ok)
    {
      g_autoptr(GError) local_error = NULL;

      ok = init_registry (self, events, &local_error);
      g_clear_error (&self->init_error);
      if (ok)
        {
          start_following (self);
          g_atomic_int_set (&self->entered, TRUE);
        }
      else
        {
          self->init_error = g_error_copy (local_error);
          g_propagate_error (error, g_steal_pointer (&local_error));
        }
    }
  g_mutex_unlock (&self->init_mutex);

  /* Signals only now: a handler may call the manager again. */
  events_dispatch (events);

  return ok;
}

static void
gsm_session_manager_constructed (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *prefixed = NULL;
  const char *prefix = g_getenv ("GSM_FILE_PREFIX");
  const char *hostname = g_getenv ("GSM_HOSTNAME");
  Events *events;

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->constructed (object);

  if (prefix == NULL)
    prefix = "";

  self->context = g_main_context_ref_thread_default ();
  self->owner_thread = g_thread_ref (g_thread_self ());
  self->session_id = g_uuid_string_random ();
  self->session_id_hash = g_str_hash (self->session_id);
  self->pid = getpid ();
  self->hostname = g_strdup (hostname && *hostname ? hostname : g_get_host_name ());
  self->created_at = g_get_real_time () / (double) G_USEC_PER_SEC;
  self->start_time = own_start_time ();
  self->boot_id = *_gsm_process_get_boot_id () ? g_strdup (_gsm_process_get_boot_id ()) : NULL;
  self->expiry = _gsm_env_seconds ("GSM_SESSION_EXPIRY", DEFAULT_EXPIRY);
  self->probe = _gsm_liveness_probe_new (self->hostname, g_getenv ("GSM_PROCESS_MATCH"));
  self->pool = g_thread_pool_new (worker_func, self, 1, FALSE, NULL);

  dir = default_runtime_dir (&self->runtime_dir_is_default);
  self->runtime_dir = g_file_new_for_path (dir);
  self->file_prefix = _gsm_fs_effective_prefix (dir, prefix);
  prefix = self->file_prefix;
  prefixed = _gsm_file_registry_own_session_file_name (dir, prefix, self->pid, self->session_id);
  self->session_file = g_file_get_child (self->runtime_dir, prefixed);
  g_free (prefixed);
  prefixed = g_strconcat (prefix, "vm_registry.json", NULL);
  self->vm_registry = g_file_get_child (self->runtime_dir, prefixed);
  g_free (prefixed);
  prefixed = g_strconcat (prefix, "global_session.json", NULL);
  self->global_tracker_file = g_file_get_child (self->runtime_dir, prefixed);

  events = events_new (self);
  if (!init_registry (self, events, &self->init_error))
    {
      events_free (events);
      g_warning ("gsm-session: the registry cannot be used now (every operation tries again): %s",
                 self->init_error->message);
      return;
    }
  /* What the entry found is the first view: nothing to report. */
  self->view = _gsm_registry_snapshot_ref (events->snapshot);
  g_clear_pointer (&events->snapshot, _gsm_registry_snapshot_unref);
  events_dispatch (events);
  g_atomic_int_set (&self->entered, TRUE);

  start_following (self);

  g_mutex_lock (&self->mutex);
  self->has_vm = self->own != NULL && gsm_session_get_has_vm (self->own);
  g_mutex_unlock (&self->mutex);
}

static void
gsm_session_manager_dispose (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  /* Wait for queued operations: each holds a reference, so this only
   * happens when none is left. */
  if (self->pool != NULL)
    {
      /* The worker may drop the last reference itself: never wait for it
       * from inside it. */
      g_thread_pool_free (self->pool, FALSE, g_private_get (&in_worker) == NULL);
      self->pool = NULL;
    }
  if (self->watch_source != NULL)
    {
      g_source_destroy (self->watch_source);
      g_clear_pointer (&self->watch_source, g_source_unref);
    }
  if (self->registry != NULL)
    g_signal_handlers_disconnect_by_data (self->registry, self);
  g_clear_object (&self->registry);

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->dispose (object);
}

static void
gsm_session_manager_finalize (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  g_clear_pointer (&self->view, _gsm_registry_snapshot_unref);
  g_clear_object (&self->own);
  g_clear_pointer (&self->probe, _gsm_liveness_probe_free);
  g_free (self->file_prefix);
  g_clear_error (&self->init_error);
  g_mutex_clear (&self->init_mutex);
  g_clear_object (&self->runtime_dir);
  g_clear_object (&self->session_file);
  g_clear_object (&self->vm_registry);
  g_clear_object (&self->global_tracker_file);
  g_free (self->session_id);
  g_free (self->hostname);
  g_free (self->boot_id);
  g_main_context_unref (self->context);
  g_thread_unref (self->owner_thread);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->finalize (object);
}

static void
gsm_session_manager_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  switch (prop_id)
    {
    case PROP_SESSION_ID:
      g_value_set_string (value, self->session_id);
      break;
    case PROP_PID:
      g_value_set_int (value, self->pid);
      break;
    case PROP_HOSTNAME:
      g_value_set_string (value, self->hostname);
      break;
    case PROP_CREATED_AT:
      g_value_set_double (value, self->created_at);
      break;
    case PROP_RUNTIME_DIR:
      g_value_set_object (value, self->runtime_dir);
      break;
    case PROP_SESSION_FILE:
      g_value_set_object (value, self->session_file);
      break;
    case PROP_VM_REGISTRY:
      g_value_set_object (value, self->vm_registry);
      break;
    case PROP_GLOBAL_TRACKER_FILE:
      g_value_set_object (value, self->global_tracker_file);
      break;
    case PROP_HAS_VM:
      g_value_set_boolean (value, gsm_session_manager_get_has_vm (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_session_manager_class_init (GsmSessionManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = gsm_session_manager_constructed;
  object_class->dispose = gsm_session_manager_dispose;
  object_class->finalize = gsm_session_manager_finalize;
  object_class->get_property = gsm_session_manager_get_property;

  /**
   * GsmSessionManager:session-id:
   *
   * This session's UUID, new for every process.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_ID] =
    g_param_spec_string ("session-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:pid:
   *
   * The process ID of this process.
   *
   * Since: 1.0
   */
  properties[PROP_PID] =
    g_param_spec_int ("pid", NULL, NULL, 0, G_MAXINT, 0,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:hostname:
   *
   * The name of this host (or `GSM_HOSTNAME`).
   *
   * Since: 1.0
   */
  properties[PROP_HOSTNAME] =
    g_param_spec_string ("hostname", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:created-at:
   *
   * When the session was created, in seconds since the Unix epoch.
   *
   * Since: 1.0
   */
  properties[PROP_CREATED_AT] =
    g_param_spec_double ("created-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:runtime-dir:
   *
   * The directory holding the registry files.
   *
   * Since: 1.0
   */
  properties[PROP_RUNTIME_DIR] =
    g_param_spec_object ("runtime-dir", NULL, NULL, G_TYPE_FILE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:session-file:
   *
   * This session's own file, `session_<pid>.json`.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_FILE] =
    g_param_spec_object ("session-file", NULL, NULL, G_TYPE_FILE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:vm-registry:
   *
   * The registry of every session, `vm_registry.json`.
   *
   * Since: 1.0
   */
  properties[PROP_VM_REGISTRY] =
    g_param_spec_object ("vm-registry", NULL, NULL, G_TYPE_FILE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:global-tracker-file:
   *
   * The quick-reference file of the session that changed last,
   * `global_session.json`.
   *
   * Since: 1.0
   */
  properties[PROP_GLOBAL_TRACKER_FILE] =
    g_param_spec_object ("global-tracker-file", NULL, NULL, G_TYPE_FILE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:has-vm:
   *
   * Whether this session owns a VM.
   *
   * Since: 1.0
   */
  properties[PROP_HAS_VM] =
    g_param_spec_boolean ("has-vm", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GsmSessionManager::vm-registered:
   * @self: the manager
   * @vm: this session's entry, with the VM it now owns
   *
   * Emitted when this session registered (or reserved) a VM.
   *
   * Since: 1.0
   */
  signals[VM_REGISTERED] =
    g_signal_new ("vm-registered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::vm-unregistered:
   * @self: the manager
   * @vm: this session's entry as it was, with the VM it no longer owns
   *
   * Emitted when this session unregistered its VM.
   *
   * Since: 1.0
   */
  signals[VM_UNREGISTERED] =
    g_signal_new ("vm-unregistered", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::session-stale:
   * @self: the manager
   * @session: the session found dead
   *
   * Emitted once for each session this process found dead and recorded so:
   * removed from the registry if it owned no VM, or kept with status
   * `stale` if it still owns one. Exactly one process reports each.
   *
   * With the etcd registry, etcd itself finds a session dead (its lease
   * expired) and every process watching the registry reports a session
   * that still owned a VM, within a second; one without a VM is only
   * reported by [signal@Gsm.SessionManager::session-removed].
   *
   * Since: 1.0
   */
  signals[SESSION_STALE] =
    g_signal_new ("session-stale", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::sessions-changed:
   * @self: the manager
   *
   * Emitted when the registry changed, by this process or any other
   * (watched with a #GFileMonitor, or an etcd watch), after ::session-added and
   * ::session-removed.
   *
   * Since: 1.0
   */
  signals[SESSIONS_CHANGED] =
    g_signal_new ("sessions-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * GsmSessionManager::session-added:
   * @self: the manager
   * @session: the new entry
   *
   * Emitted when an entry appeared in the registry.
   *
   * Since: 1.0
   */
  signals[SESSION_ADDED] =
    g_signal_new ("session-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::session-removed:
   * @self: the manager
   * @session: the entry as it was last seen
   *
   * Emitted when an entry left the registry.
   *
   * Since: 1.0
   */
  signals[SESSION_REMOVED] =
    g_signal_new ("session-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::ownership-lapsed:
   * @self: the manager
   * @session: this session's entry, as entered again
   *
   * Emitted when the registry had dropped this session's entry without
   * being asked to, and the session was entered again. This happens with
   * the etcd registry when the process could not renew its lease for
   * longer than `GSM_LEASE_TTL` (it was stopped, or cut off from etcd).
   *
   * Meanwhile other hosts saw the session as stale, and its VM as an
   * orphan that a reaper may delete. If no other session took the VM over,
   * @session still owns it ([method@Gsm.Session.get_has_vm]); check that
   * the VM still exists before using it again. If another session took it,
   * @session owns none.
   *
   * Since: 1.0
   */
  signals[OWNERSHIP_LAPSED] =
    g_signal_new ("ownership-lapsed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);
}

static void
gsm_session_manager_init (GsmSessionManager *self)
{
  g_mutex_init (&self->mutex);
  g_mutex_init (&self->init_mutex);
}

/* ---- public API -------------------------------------------------------- */

/**
 * gsm_session_manager_get_default:
 *
 * Gets this process's session manager, creating it on the first call
 * (from any thread; concurrent first calls create one instance). Creating
 * it enters this process into the registry.
 *
 * It never fails: if the process cannot enter the registry now (the lock
 * held past `GSM_LOCK_TIMEOUT`, a full or read-only file system, an
 * insecure directory), a warning is logged and every later operation
 * first tries again to enter it, failing with the reason while it still
 * cannot; once one succeeds, the process is in the registry.
 *
 * With `auto=true` in group `[reaper]` of the configuration (see
 * [class@Gsm.Reaper]), creating it also starts, in a thread of its own,
 * the deletion of the VMs of this host's dead sessions once their grace
 * period is over.
 *
 * Returns: (transfer none) (not nullable): the session manager
 *
 * Since: 1.0
 */
GsmSessionManager *
gsm_session_manager_get_default (void)
{
  GsmSessionManager *manager = g_atomic_pointer_get (&default_manager);
  gboolean created = FALSE;

  if (G_LIKELY (manager != NULL))
    return manager;

  g_mutex_lock (&default_lock);
  manager = g_atomic_pointer_get (&default_manager);
  if (manager == NULL)
    {
      manager = g_object_new (GSM_TYPE_SESSION_MANAGER, NULL);
      g_atomic_pointer_set (&default_manager, manager);
      created = TRUE;
    }
  g_mutex_unlock (&default_lock);

  /* [reaper] auto=true: this host's orphans, in the background. */
  if (created)
    _gsm_reaper_reap_at_start (manager);

  return manager;
}

/**
 * gsm_session_manager_is_available:
 *
 * Tells whether the session manager of this process exists, without
 * creating it.
 *
 * Returns: %TRUE once [func@Gsm.SessionManager.get_default] was called
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_is_available (void)
{
  return g_atomic_pointer_get (&default_manager) != NULL;
}

void
_gsm_session_manager_reset_for_testing (void)
{
  GsmSessionManager *manager;

  g_mutex_lock (&default_lock);
  manager = g_atomic_pointer_get (&default_manager);
  g_atomic_pointer_set (&default_manager, NULL);
  g_mutex_unlock (&default_lock);

  if (manager != NULL)
    g_object_unref (manager);
}

GsmRegistry *
_gsm_session_manager_get_registry (GsmSessionManager *self)
{
  return self->registry;
}

GsmLivenessProbe *
_gsm_session_manager_get_probe (GsmSessionManager *self)
{
  return self->probe;
}

/* The registry as ::sessions-changed last reported it (owner context
 * only); NULL if the registry cannot be used. */
GsmRegistrySnapshot *
_gsm_session_manager_dup_view (GsmSessionManager *self)
{
  return self->view != NULL ? _gsm_registry_snapshot_ref (self->view) : NULL;
}

/**
 * gsm_session_manager_get_session_id:
 * @self: a #GsmSessionManager
 *
 * Gets this session's UUID.
 *
 * Returns: (transfer none): the session identifier
 *
 * Since: 1.0
 */
const char *
gsm_session_manager_get_session_id (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->session_id;
}

/**
 * gsm_session_manager_get_pid:
 * @self: a #GsmSessionManager
 *
 * Gets the process ID recorded for this session.
 *
 * Returns: the pid
 *
 * Since: 1.0
 */
int
gsm_session_manager_get_pid (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), 0);
  return self->pid;
}

/**
 * gsm_session_manager_get_hostname:
 * @self: a #GsmSessionManager
 *
 * Gets the host name recorded for this session.
 *
 * Returns: (transfer none): the host name
 *
 * Since: 1.0
 */
const char *
gsm_session_manager_get_hostname (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->hostname;
}

/**
 * gsm_session_manager_get_created_at:
 * @self: a #GsmSessionManager
 *
 * Gets when this session was created.
 *
 * Returns: seconds since the Unix epoch
 *
 * Since: 1.0
 */
double
gsm_session_manager_get_created_at (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), 0);
  return self->created_at;
}

/**
 * gsm_session_manager_get_runtime_dir:
 * @self: a #GsmSessionManager
 *
 * Gets the directory holding the registry files.
 *
 * Returns: (transfer none): the runtime directory
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_runtime_dir (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->runtime_dir;
}

/**
 * gsm_session_manager_get_session_file:
 * @self: a #GsmSessionManager
 *
 * Gets this session's own file.
 *
 * Returns: (transfer none): the session file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_session_file (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->session_file;
}

/**
 * gsm_session_manager_get_vm_registry:
 * @self: a #GsmSessionManager
 *
 * Gets the registry file.
 *
 * Returns: (transfer none): the registry file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_vm_registry (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->vm_registry;
}

/**
 * gsm_session_manager_get_global_tracker_file:
 * @self: a #GsmSessionManager
 *
 * Gets the global tracker file.
 *
 * Returns: (transfer none): the tracker file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_global_tracker_file (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->global_tracker_file;
}

/**
 * gsm_session_manager_get_has_vm:
 * @self: a #GsmSessionManager
 *
 * Tells whether this session owns a VM, as of its last operation.
 *
 * Returns: %TRUE if it owns one
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_get_has_vm (GsmSessionManager *self)
{
  gboolean has_vm;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);

  g_mutex_lock (&self->mutex);
  has_vm = self->own != NULL && gsm_session_get_has_vm (self->own);
  g_mutex_unlock (&self->mutex);

  return has_vm;
}

/**
 * gsm_session_manager_get_statistics:
 * @self: a #GsmSessionManager
 *
 * Gets this session's statistics, with the keys of the original design:
 * `session_id` (s), `pid` (i), `hostname` (s), `uptime_seconds` (d),
 * `has_vm` (b), `vm_id` (ms: nothing without a VM), `vms_registered`,
 * `vms_unregistered`, `registry_cleanups`, `stale_sessions_removed` (u).
 *
 * Returns: (transfer full): a new, non-floating `a{sv}`
 *
 * Since: 1.0
 */
GVariant *
gsm_session_manager_get_statistics (GsmSessionManager *self)
{
  GVariantBuilder b;
  g_autoptr(GsmSession) own = NULL;
  const char *vm_id;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);

  g_mutex_lock (&self->mutex);
  own = self->own ? g_object_ref (self->own) : NULL;
  g_mutex_unlock (&self->mutex);
  vm_id = own ? gsm_session_get_vm_id (own) : NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "session_id", g_variant_new_string (self->session_id));
  g_variant_builder_add (&b, "{sv}", "pid", g_variant_new_int32 (self->pid));
  g_variant_builder_add (&b, "{sv}", "hostname", g_variant_new_string (self->hostname));
  g_variant_builder_add (&b, "{sv}", "uptime_seconds",
                         g_variant_new_double (g_get_real_time () / (double) G_USEC_PER_SEC - self->created_at));
  g_variant_builder_add (&b, "{sv}", "has_vm", g_variant_new_boolean (vm_id != NULL));
  g_variant_builder_add (&b, "{sv}", "vm_id",
                         g_variant_new_maybe (G_VARIANT_TYPE_STRING,
                                              vm_id ? g_variant_new_string (vm_id) : NULL));
  g_variant_builder_add (&b, "{sv}", "vms_registered",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->vms_registered)));
  g_variant_builder_add (&b, "{sv}", "vms_unregistered",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->vms_unregistered)));
  g_variant_builder_add (&b, "{sv}", "registry_cleanups",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->registry_cleanups)));
  g_variant_builder_add (&b, "{sv}", "stale_sessions_removed",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->stale_sessions_removed)));

  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* -- register_vm -- */

static Op *
make_register_op (OpKind               kind,
                  const char          *vm_id,
                  const char          *zone,
                  const char * const  *components,
                  GVariant            *metadata,
                  GError             **error)
{
  /* Sink first: a floating reference is consumed on every path. */
  g_autoptr(GVariant) held = metadata ? g_variant_ref_sink (metadata) : NULL;
  Op *op;

  if (!_gsm_validate_name ("vm_id", vm_id, GSM_MAX_NAME_LEN, error) ||
      !_gsm_validate_name ("zone", zone, GSM_MAX_NAME_LEN, error))
    return NULL;

  for (guint i = 0; components != NULL && components[i] != NULL; i++)
    {
      if (i >= GSM_MAX_COMPONENTS)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "more than %d components", GSM_MAX_COMPONENTS);
          return NULL;
        }
      if (!_gsm_validate_identifier ("a component", components[i], GSM_MAX_COMPONENT_LEN, error))
        return NULL;
    }

  if (metadata != NULL && !g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "metadata must be of type a{sv}, not %s", g_variant_get_type_string (metadata));
      return NULL;
    }

  if (metadata != NULL)
    {
      /* It is written into the registry, which must stay readable:
       * nested at most as deep as readers accept (the registry and the
       * entry are two levels), and no infinity or NaN. Its size is
       * bounded so that the entry always fits in its session file, from
       * which a registry is rebuilt. */
      g_autoptr(JsonNode) node = NULL;
      g_autoptr(GString) text = g_string_new (NULL);

      if (g_variant_get_size (metadata) > 16 * GSM_MAX_METADATA_SIZE)
        {
          /* Far too big to be worth writing out as JSON to measure. */
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is larger than %d bytes as JSON", GSM_MAX_METADATA_SIZE);
          return NULL;
        }
      node = json_gvariant_serialize (metadata);
      if (!_gsm_json_append_node (text, node) ||
          !_gsm_json_check (text->str, text->len, GSM_JSON_MAX_DEPTH - 2, NULL))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is nested more than %d levels deep or holds a number "
                       "that is not finite", GSM_JSON_MAX_DEPTH - 2);
          return NULL;
        }
      if (text->len > GSM_MAX_METADATA_SIZE)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is %" G_GSIZE_FORMAT " bytes as JSON, more than the %d allowed",
                       text->len, GSM_MAX_METADATA_SIZE);
          return NULL;
        }
    }

  op = op_new (kind);
  op->vm_id = g_strdup (vm_id);
  op->zone = g_strdup (zone);
  op->components = components ? g_strdupv ((char **) components) : g_new0 (char *, 1);
  op->metadata = g_steal_pointer (&held);

  return op;
}

/* register_vm() and reserve_vm(): the same operation, @kind apart. */
static void
start_register (GsmSessionManager   *self,
                OpKind               kind,
                gpointer             source_tag,
                const char          *vm_id,
                const char          *zone,
                const char * const  *components,
                GVariant            *metadata,
                GCancellable        *cancellable,
                GAsyncReadyCallback  callback,
                gpointer             user_data)
{
  GError *error = NULL;
  Op *op;

  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  op = make_register_op (kind, vm_id, zone, components, metadata, &error);
  if (op == NULL)
    {
      g_task_report_error (self, callback, user_data, source_tag, error);
      return;
    }

  start_op (self, op, source_tag, cancellable, callback, user_data);
}

static gboolean
register_sync (GsmSessionManager   *self,
               OpKind               kind,
               const char          *vm_id,
               const char          *zone,
               const char * const  *components,
               GVariant            *metadata,
               GCancellable        *cancellable,
               GError             **error)
{
  Op *op;
  OpResult result;
  gboolean ok;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  op = make_register_op (kind, vm_id, zone, components, metadata, error);
  if (op == NULL)
    return FALSE;
  ok = run_op (self, op, &result, cancellable, error);
  op_free (op);
  return ok;
}

/**
 * gsm_session_manager_register_vm:
 * @self: a #GsmSessionManager
 * @vm_id: the VM's identifier: 1 to 255 bytes of UTF-8, without white
 *   space or control characters, not starting with `-`
 * @zone: the zone it runs in, with the same limits as @vm_id
 * @components: (array zero-terminated=1) (nullable): what runs on it: at
 *   most 64 names of 1 to 255 bytes of UTF-8 without control characters
 * @metadata: (nullable): free-form metadata, of type `a{sv}`, at most
 *   64 KiB once written as JSON and nested at most 30 levels deep, without
 *   infinities or NaNs; a floating reference is sunk
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that this session owns @vm_id. Fails with
 * %GSM_ERROR_VM_ALREADY_REGISTERED if this session already owns a VM
 * (unregister it first) and with %GSM_ERROR_VM_OWNED_BY_OTHER if a live
 * session owns @vm_id. A VM whose owner is dead is taken over.
 *
 * Arguments beyond the limits above fail with %GSM_ERROR_INVALID_ARGUMENT
 * before anything is written: @vm_id and @zone are passed to the provider's
 * command when the VM is deleted, where a leading `-` would be read as an
 * option, and the limits keep every entry small enough for the files a
 * registry is rebuilt from. A C string cannot hold a NUL byte; from
 * Python, check that a `str` holds none before passing it (PyGObject
 * passes the text up to the first NUL).
 *
 * Since: 1.0
 */
void
gsm_session_manager_register_vm (GsmSessionManager   *self,
                                 const char          *vm_id,
                                 const char          *zone,
                                 const char * const  *components,
                                 GVariant            *metadata,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  start_register (self, OP_REGISTER_VM, gsm_session_manager_register_vm, vm_id, zone, components,
                  metadata, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_register_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.register_vm].
 *
 * Returns: %TRUE if the VM is now owned by this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_register_vm_finish (GsmSessionManager  *self,
                                        GAsyncResult       *result,
                                        GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_register_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_register_vm_sync:
 * @self: a #GsmSessionManager
 * @vm_id: the VM's identifier
 * @zone: the zone it runs in
 * @components: (array zero-terminated=1) (nullable): what runs on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.register_vm].
 *
 * Returns: %TRUE if the VM is now owned by this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_register_vm_sync (GsmSessionManager   *self,
                                      const char          *vm_id,
                                      const char          *zone,
                                      const char * const  *components,
                                      GVariant            *metadata,
                                      GCancellable        *cancellable,
                                      GError             **error)
{
  return register_sync (self, OP_REGISTER_VM, vm_id, zone, components, metadata, cancellable,
                        error);
}

/* -- the others share one shape -- */

static gboolean run_sync (GsmSessionManager  *self,
                          OpKind              kind,
                          OpResult           *result,
                          GCancellable       *cancellable,
                          GError            **error);

/**
 * gsm_session_manager_reserve_vm:
 * @self: a #GsmSessionManager
 * @vm_id: the name the VM will be created with, with the limits of
 *   [method@Gsm.SessionManager.register_vm]
 * @zone: the zone it will run in
 * @components: (array zero-terminated=1) (nullable): what will run on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records @vm_id as this session's VM before the cloud call that creates
 * it, with status `creating`; once the VM exists, confirm it with
 * [method@Gsm.SessionManager.confirm_vm], or, if the creation failed,
 * release it with [method@Gsm.SessionManager.unregister_vm].
 *
 * This is the recommended flow: a process that crashes between the
 * cloud's answer and the registration (or whose create call timed out
 * while the cloud went on) leaves an entry that a [class@Gsm.Reaper]
 * treats like any orphan once the process is dead: it asks the provider
 * to delete @vm_id, and "not found" (the VM was never made) counts as
 * done. Registering after the creation instead
 * ([method@Gsm.SessionManager.register_vm]) leaves a window in which a
 * crash forgets the VM.
 *
 * It fails as [method@Gsm.SessionManager.register_vm] does. On success
 * the VM is this session's: [signal@Gsm.SessionManager::vm-registered] is
 * emitted and [method@Gsm.SessionManager.get_my_vm] returns it.
 *
 * Since: 1.0
 */
void
gsm_session_manager_reserve_vm (GsmSessionManager   *self,
                                const char          *vm_id,
                                const char          *zone,
                                const char * const  *components,
                                GVariant            *metadata,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  start_register (self, OP_RESERVE_VM, gsm_session_manager_reserve_vm, vm_id, zone, components,
                  metadata, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_reserve_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.reserve_vm].
 *
 * Returns: %TRUE if the VM is now reserved for this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_reserve_vm_finish (GsmSessionManager  *self,
                                       GAsyncResult       *result,
                                       GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_reserve_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_reserve_vm_sync:
 * @self: a #GsmSessionManager
 * @vm_id: the name the VM will be created with
 * @zone: the zone it will run in
 * @components: (array zero-terminated=1) (nullable): what will run on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.reserve_vm].
 *
 * Returns: %TRUE if the VM is now reserved for this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_reserve_vm_sync (GsmSessionManager   *self,
                                     const char          *vm_id,
                                     const char          *zone,
                                     const char * const  *components,
                                     GVariant            *metadata,
                                     GCancellable        *cancellable,
                                     GError             **error)
{
  return register_sync (self, OP_RESERVE_VM, vm_id, zone, components, metadata, cancellable,
                        error);
}

/**
 * gsm_session_manager_confirm_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that the VM reserved with [method@Gsm.SessionManager.reserve_vm]
 * now exists: its status becomes `active`. Confirming a VM registered
 * with [method@Gsm.SessionManager.register_vm], or one confirmed already,
 * changes nothing. Fails with %GSM_ERROR_NO_VM if this session owns no VM.
 *
 * Since: 1.0
 */
void
gsm_session_manager_confirm_vm (GsmSessionManager   *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  start_op (self, op_new (OP_CONFIRM_VM), gsm_session_manager_confirm_vm, cancellable, callback,
            user_data);
}

/**
 * gsm_session_manager_confirm_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.confirm_vm].
 *
 * Returns: %TRUE if this session's VM is recorded as created
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_confirm_vm_finish (GsmSessionManager  *self,
                                       GAsyncResult       *result,
                                       GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_confirm_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_confirm_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.confirm_vm].
 *
 * Returns: %TRUE if this session's VM is recorded as created
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_confirm_vm_sync (GsmSessionManager  *self,
                                     GCancellable       *cancellable,
                                     GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return run_sync (self, OP_CONFIRM_VM, &result, cancellable, error);
}

static gboolean
run_sync (GsmSessionManager  *self,
          OpKind              kind,
          OpResult           *result,
          GCancellable       *cancellable,
          GError            **error)
{
  Op *op = op_new (kind);
  gboolean ok = run_op (self, op, result, cancellable, error);

  op_free (op);
  return ok;
}

/**
 * gsm_session_manager_get_my_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Gets the VM this session owns, read from the registry and validated as
 * this session's (session id, pid and hostname): this session's entry, as
 * the Python design's `get_my_vm()` returns it, with the VM's fields
 * ([method@Gsm.Session.get_vm_id], [method@Gsm.Session.get_zone], …) and
 * its status (`creating` until a reserved VM is confirmed).
 *
 * Since: 1.0
 */
void
gsm_session_manager_get_my_vm (GsmSessionManager   *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  start_op (self, op_new (OP_GET_MY_VM), gsm_session_manager_get_my_vm, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_get_my_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.get_my_vm].
 *
 * Returns: (transfer full) (nullable): this session's entry with its VM,
 *   or %NULL if this session owns none (then @error is not set)
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_manager_get_my_vm_finish (GsmSessionManager  *self,
                                      GAsyncResult       *result,
                                      GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_get_my_vm), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_session_manager_get_my_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.get_my_vm], for cleanup
 * paths that have no main loop.
 *
 * Returns: (transfer full) (nullable): this session's entry with its VM,
 *   or %NULL if this session owns none (then @error is not set)
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_manager_get_my_vm_sync (GsmSessionManager  *self,
                                    GCancellable       *cancellable,
                                    GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!run_sync (self, OP_GET_MY_VM, &result, cancellable, error))
    return NULL;
  return result.vm;
}

/**
 * gsm_session_manager_unregister_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that this session no longer owns a VM (call it once the VM is
 * deleted). Fails with %GSM_ERROR_NO_VM if it owns none.
 *
 * Since: 1.0
 */
void
gsm_session_manager_unregister_vm (GsmSessionManager   *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  start_op (self, op_new (OP_UNREGISTER_VM), gsm_session_manager_unregister_vm, cancellable,
            callback, user_data);
}

/**
 * gsm_session_manager_unregister_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.unregister_vm].
 *
 * Returns: %TRUE if the VM was unregistered
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_unregister_vm_finish (GsmSessionManager  *self,
                                          GAsyncResult       *result,
                                          GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_unregister_vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_unregister_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.unregister_vm].
 *
 * Returns: %TRUE if the VM was unregistered
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_unregister_vm_sync (GsmSessionManager  *self,
                                        GCancellable       *cancellable,
                                        GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return run_sync (self, OP_UNREGISTER_VM, &result, cancellable, error);
}

/**
 * gsm_session_manager_get_all_active_sessions:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Lists the live sessions of the registry (stale ones are left out). As in
 * the original design, dead sessions found on the way are cleaned up as
 * [method@Gsm.SessionManager.cleanup_stale_sessions] does.
 *
 * Since: 1.0
 */
void
gsm_session_manager_get_all_active_sessions (GsmSessionManager   *self,
                                             GCancellable        *cancellable,
                                             GAsyncReadyCallback  callback,
                                             gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  start_op (self, op_new (OP_GET_ALL_ACTIVE_SESSIONS), gsm_session_manager_get_all_active_sessions,
            cancellable, callback, user_data);
}

/**
 * gsm_session_manager_get_all_active_sessions_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.get_all_active_sessions].
 *
 * Returns: (transfer container) (element-type utf8 GsmSession): session id
 *   → session; the table owns its keys and values, g_hash_table_unref()
 *   frees everything
 *
 * Since: 1.0
 */
GHashTable *
gsm_session_manager_get_all_active_sessions_finish (GsmSessionManager  *self,
                                                    GAsyncResult       *result,
                                                    GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_get_all_active_sessions), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_session_manager_get_all_active_sessions_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.get_all_active_sessions].
 *
 * Returns: (transfer container) (element-type utf8 GsmSession): session id
 *   → session; the table owns its keys and values, g_hash_table_unref()
 *   frees everything
 *
 * Since: 1.0
 */
GHashTable *
gsm_session_manager_get_all_active_sessions_sync (GsmSessionManager  *self,
                                                  GCancellable       *cancellable,
                                                  GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!run_sync (self, OP_GET_ALL_ACTIVE_SESSIONS, &result, cancellable, error))
    return NULL;
  return result.sessions;
}

/*
 * Lists every entry of the registry, live or not, without changing it: a
 * session found dead but not yet recorded so is shown with status
 * `stale`, one whose liveness cannot be proven from here as
 * `unverifiable`. Returns a table of session id → session that owns its
 * keys and values, or %NULL with @error set.
 *
 * Not public API: applications read the registry through #GsmSessionList
 * (recorded statuses, and gsm_session_list_get_liveness()).
 */
GHashTable *
_gsm_session_manager_list_sessions_sync (GsmSessionManager  *self,
                                         GCancellable       *cancellable,
                                         GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!run_sync (self, OP_LIST_SESSIONS, &result, cancellable, error))
    return NULL;
  return result.sessions;
}

/**
 * gsm_session_manager_cleanup_stale_sessions:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Finds dead sessions: one that owns no VM is removed; one that still owns
 * a VM is kept with status `stale` (its VM is an orphan for the reaper).
 * Emits [signal@Gsm.SessionManager::session-stale] for each.
 *
 * Since: 1.0
 */
void
gsm_session_manager_cleanup_stale_sessions (GsmSessionManager   *self,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  start_op (self, op_new (OP_CLEANUP_STALE_SESSIONS), gsm_session_manager_cleanup_stale_sessions,
            cancellable, callback, user_data);
}

/**
 * gsm_session_manager_cleanup_stale_sessions_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.cleanup_stale_sessions].
 *
 * Returns: the number of sessions newly found stale, or -1 on error
 *
 * Since: 1.0
 */
int
gsm_session_manager_cleanup_stale_sessions_finish (GsmSessionManager  *self,
                                                   GAsyncResult       *result,
                                                   GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_cleanup_stale_sessions), -1);
  return (int) g_task_propagate_int (G_TASK (result), error);
}

/**
 * gsm_session_manager_cleanup_stale_sessions_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.cleanup_stale_sessions].
 *
 * Returns: the number of sessions newly found stale, or -1 on error
 *
 * Since: 1.0
 */
int
gsm_session_manager_cleanup_stale_sessions_sync (GsmSessionManager  *self,
                                                 GCancellable       *cancellable,
                                                 GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), -1);
  if (!run_sync (self, OP_CLEANUP_STALE_SESSIONS, &result, cancellable, error))
    return -1;
  return result.count;
}

/**
 * gsm_session_manager_close:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Ends this session. If it owns no VM, its entry, session file and (if it
 * is about this session) the tracker are removed. If it still owns a VM,
 * they stay, so that the cleanup of other processes sees the VM. Further
 * operations fail with %GSM_ERROR_CLOSED.
 *
 * Since: 1.0
 */
void
gsm_session_manager_close (GsmSessionManager   *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  start_op (self, op_new (OP_CLOSE), gsm_session_manager_close, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_close_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.close].
 *
 * Returns: %TRUE if the session was closed
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_close_finish (GsmSessionManager  *self,
                                  GAsyncResult       *result,
                                  GError            **error)
{
  g_return_val_if_fail (check_task (self, result, gsm_session_manager_close), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_close_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.close].
 *
 * Returns: %TRUE if the session was closed
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_close_sync (GsmSessionManager  *self,
                                GCancellable       *cancellable,
                                GError            **error)
{
  OpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return run_sync (self, OP_CLOSE, &result, cancellable, error);
}
