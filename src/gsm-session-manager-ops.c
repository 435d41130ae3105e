/* gsm-session-manager-ops.c: the manager's operations and where they run
 *
 * A call becomes an operation (a GsmOp). It runs either in the caller's
 * thread (the _sync variants) or in the manager's single worker thread
 * (the async variants, so that they complete in the order they were
 * issued). It asks the registry store for the entries, and hands the
 * store a function of gsm-session-manager-rules.c that makes its changes
 * under the store's lock. What the operation found is then emitted by
 * gsm-session-manager-events.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include "gsm-error.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

static GPrivate in_worker;

/* Is this thread the worker of a manager? */
gboolean
_gsm_manager_in_worker (void)
{
  return g_private_get (&in_worker) != NULL;
}

GsmOp *
_gsm_op_new (GsmOpKind kind)
{
  GsmOp *op = g_new0 (GsmOp, 1);

  op->kind = kind;
  return op;
}

void
_gsm_op_free (gpointer data)
{
  GsmOp *op = data;

  g_free (op->vm_id);
  g_free (op->zone);
  g_strfreev (op->components);
  g_clear_pointer (&op->metadata, g_variant_unref);
  g_free (op);
}

/* ---- may the operation run --------------------------------------------- */

/* A child made by fork() without exec inherits the parent's manager: its
 * session id, its pid and its VM. Acting on them would make the child
 * unregister (or delete) its parent's VM, and the worker thread did not
 * survive the fork. */
static gboolean
check_not_forked (GsmSessionManager *self,
                  GError           **error)
{
  if (G_LIKELY (getpid () == self->pid))
    return TRUE;

  g_set_error (error, GSM_ERROR, GSM_ERROR_CLOSED,
               "Process %d was forked from the process of session %s (pid %d): a session does "
               "not cross fork(), and the child has none of its own (exec a new program)",
               (int) getpid (), self->session_id, self->pid);
  return FALSE;
}

static gboolean
check_usable (GsmSessionManager *self,
              GError           **error)
{
  gboolean closed;

  if (!check_not_forked (self, error))
    return FALSE;

  if (G_UNLIKELY (!g_atomic_int_get (&self->entered)) &&
      !_gsm_manager_retry_init (self, error))
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

/* ---- updates ----------------------------------------------------------- */

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
  GsmRegistryUpdateFunc func;
  GsmTxnContext        *ctx;
  guint                 n_emissions;
  guint                 n_stale;
} Attempt;

static gboolean
txn_attempt (GsmRegistryTxn *txn,
             gpointer        user_data,
             GError        **error)
{
  Attempt *a = user_data;

  _gsm_manager_events_truncate (a->ctx->events, a->n_emissions);
  a->ctx->n_stale = a->n_stale;

  return a->func (txn, a->ctx, error);
}

/* Updates the registry with @func (a _gsm_txn_ function), which decides
 * under the store's lock. */
gboolean
_gsm_manager_run_update (GsmSessionManager    *self,
                         GsmRegistryUpdateFunc func,
                         GsmTxnContext        *ctx,
                         GCancellable         *cancellable,
                         GError              **error)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  Attempt attempt = { func, ctx, ctx->events->emissions->len, ctx->n_stale };

  ctx->now = g_get_real_time () / (double) G_USEC_PER_SEC;

  snapshot = _gsm_registry_update (self->registry, txn_attempt, &attempt, cancellable, error);
  if (snapshot == NULL)
    return FALSE;

  remember_own (self, snapshot);
  _gsm_manager_events_set_snapshot (ctx->events, snapshot);

  if (ctx->n_stale > 0)
    {
      g_atomic_int_add (&self->stale_sessions_removed, (int) ctx->n_stale);
      g_atomic_int_inc (&self->registry_cleanups);
    }

  return TRUE;
}

/* ---- operations -------------------------------------------------------- */

static gboolean
op_get_my_vm (GsmTxnContext *ctx,
              GsmOpResult   *result,
              GCancellable  *cancellable,
              GError       **error)
{
  GsmSessionManager *self = ctx->self;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  GsmSession *own;

  snapshot = _gsm_registry_load (self->registry, cancellable, error);
  if (snapshot == NULL)
    return FALSE;

  own = _gsm_registry_snapshot_lookup (snapshot, self->session_id);
  /* The seed's ownership validation: the entry must be ours. */
  if (own != NULL && gsm_session_get_pid (own) == self->pid &&
      g_strcmp0 (gsm_session_get_hostname (own), self->hostname) == 0)
    result->vm = gsm_session_get_has_vm (own) ? g_object_ref (own) : NULL;
  _gsm_manager_events_set_snapshot (ctx->events, snapshot);
  return TRUE;
}

/* get_all_active_sessions() and list_sessions() */
static gboolean
op_list (GsmTxnContext *ctx,
         GsmOpResult   *result,
         GCancellable  *cancellable,
         GError       **error)
{
  GsmSessionManager *self = ctx->self;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  gboolean needs_cleanup = FALSE;

  snapshot = _gsm_registry_load (self->registry, cancellable, error);
  if (snapshot == NULL)
    return FALSE;

  if (ctx->op->kind == GSM_OP_LIST_SESSIONS)
    result->sessions = _gsm_manager_collect_all (self, snapshot);
  else
    result->sessions = _gsm_manager_collect_active (self, snapshot, &needs_cleanup);
  _gsm_manager_events_set_snapshot (ctx->events, snapshot);

  /* As in the seed, listing also cleans up; a failure to do so does not
   * make the listing wrong. */
  if (needs_cleanup)
    {
      g_autoptr (GError) local_error = NULL;

      if (!_gsm_manager_run_update (self, _gsm_txn_reconcile, ctx, cancellable,
                                    &local_error))
        g_debug ("Cleaning up stale sessions failed: %s", local_error->message);
    }

  return TRUE;
}

static gboolean
op_close (GsmTxnContext *ctx,
          GCancellable  *cancellable,
          GError       **error)
{
  GsmSessionManager *self = ctx->self;

  if (!_gsm_manager_run_update (self, _gsm_txn_close, ctx, cancellable, error))
    return FALSE;

  g_mutex_lock (&self->mutex);
  self->closed = TRUE;
  g_mutex_unlock (&self->mutex);
  return TRUE;
}

/* After the store dropped our entry (a lease lapsed): enter again, with
 * the VM if the store still names us its owner. */
static gboolean
op_reclaim (GsmTxnContext *ctx,
            GCancellable  *cancellable,
            GError       **error)
{
  GsmSessionManager *self = ctx->self;
  g_autoptr (GsmSession) own = NULL;

  /* Nothing to enter again after close. */
  if (!check_usable (self, NULL))
    return FALSE;
  if (!_gsm_manager_run_update (self, _gsm_txn_enter, ctx, cancellable, error))
    return FALSE;

  g_mutex_lock (&self->mutex);
  own = self->own ? g_object_ref (self->own) : NULL;
  g_mutex_unlock (&self->mutex);
  if (own != NULL)
    _gsm_manager_events_add (ctx->events, GSM_MANAGER_SIGNAL_OWNERSHIP_LAPSED, own);
  return TRUE;
}

/* After ::changed of the store: the registry as another process left it. */
static gboolean
op_refresh (GsmTxnContext *ctx,
            GCancellable  *cancellable)
{
  GsmSessionManager *self = ctx->self;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;

  g_atomic_int_set (&self->refresh_queued, 0);
  if (self->registry == NULL)
    return FALSE;

  snapshot = _gsm_registry_peek (self->registry, cancellable, NULL);
  if (snapshot != NULL)
    _gsm_manager_events_set_snapshot (ctx->events, snapshot);
  return TRUE;
}

static gboolean
run_kind (GsmTxnContext *ctx,
          GsmOpResult   *result,
          GCancellable  *cancellable,
          GError       **error)
{
  GsmSessionManager *self = ctx->self;
  gboolean           ok;

  switch (ctx->op->kind)
    {
    case GSM_OP_REGISTER_VM:
    case GSM_OP_RESERVE_VM:
      ok = _gsm_manager_run_update (self, _gsm_txn_register_vm, ctx, cancellable, error);
      if (ok)
        g_atomic_int_inc (&self->vms_registered);
      return ok;

    case GSM_OP_CONFIRM_VM:
      return _gsm_manager_run_update (self, _gsm_txn_confirm_vm, ctx, cancellable, error);

    case GSM_OP_UNREGISTER_VM:
      ok = _gsm_manager_run_update (self, _gsm_txn_unregister_vm, ctx, cancellable, error);
      if (ok)
        g_atomic_int_inc (&self->vms_unregistered);
      return ok;

    case GSM_OP_GET_MY_VM:
      return op_get_my_vm (ctx, result, cancellable, error);

    case GSM_OP_GET_ALL_ACTIVE_SESSIONS:
    case GSM_OP_LIST_SESSIONS:
      return op_list (ctx, result, cancellable, error);

    case GSM_OP_CLEANUP_STALE_SESSIONS:
      ok = _gsm_manager_run_update (self, _gsm_txn_reconcile, ctx, cancellable, error);
      result->count = (int) ctx->n_stale;
      return ok;

    case GSM_OP_CLOSE:
      return op_close (ctx, cancellable, error);

    case GSM_OP_RECLAIM:
      return op_reclaim (ctx, cancellable, error);

    case GSM_OP_REFRESH:
      return op_refresh (ctx, cancellable);

    default:
      g_assert_not_reached ();
    }
}

/* Runs @op in this thread; what it found is then emitted in the owner
 * context. */
gboolean
_gsm_manager_run_op (GsmSessionManager *self,
                     GsmOp             *op,
                     GsmOpResult       *result,
                     GCancellable      *cancellable,
                     GError           **error)
{
  GsmTxnContext ctx = { self, op, _gsm_manager_events_new (self), 0, 0 };
  gboolean      ok = FALSE;

  memset (result, 0, sizeof *result);

  /* A refresh or a reclaim is the manager's own, not a call. */
  if (op->kind == GSM_OP_REFRESH || op->kind == GSM_OP_RECLAIM || check_usable (self, error))
    ok = run_kind (&ctx, result, cancellable, error);

  _gsm_manager_events_dispatch (ctx.events);
  return ok;
}

gboolean
_gsm_manager_run_sync (GsmSessionManager *self,
                       GsmOpKind          kind,
                       GsmOpResult       *result,
                       GCancellable      *cancellable,
                       GError           **error)
{
  GsmOp   *op = _gsm_op_new (kind);
  gboolean ok = _gsm_manager_run_op (self, op, result, cancellable, error);

  _gsm_op_free (op);
  return ok;
}

/* ---- the worker -------------------------------------------------------- */

static void
return_result (GTask       *task,
               GsmOp       *op,
               GsmOpResult *result,
               GError      *error)
{
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  switch (op->kind)
    {
    case GSM_OP_GET_MY_VM:
      g_task_return_pointer (task, result->vm, g_object_unref);
      break;
    case GSM_OP_GET_ALL_ACTIVE_SESSIONS:
    case GSM_OP_LIST_SESSIONS:
      g_task_return_pointer (task, result->sessions, (GDestroyNotify) g_hash_table_unref);
      break;
    case GSM_OP_CLEANUP_STALE_SESSIONS:
      g_task_return_int (task, result->count);
      break;
    default:
      g_task_return_boolean (task, TRUE);
    }
}

/* The thread function of a task queued with _gsm_session_manager_run_in_worker(). */
static G_DEFINE_QUARK (gsm - worker - func, worker_func)

    /*
     * The worker: runs every queued task in order, one at a time. A task is a
     * registry operation (its data a GsmOp), or another operation of the
     * manager's (cleanup_my_vm) queued with _gsm_session_manager_run_in_worker().
     */
    void _gsm_manager_worker_func (gpointer data,
                                   gpointer user_data)
{
  GTask             *task = data;
  GsmSessionManager *self = g_task_get_source_object (task);
  GTaskThreadFunc    func = g_object_get_qdata (G_OBJECT (task), worker_func_quark ());

  g_private_set (&in_worker, GINT_TO_POINTER (1));

  if (!g_task_return_error_if_cancelled (task))
    {
      if (func != NULL)
        func (task, self, g_task_get_task_data (task), g_task_get_cancellable (task));
      else
        {
          GsmOp      *op = g_task_get_task_data (task);
          GsmOpResult result;
          GError     *error = NULL;

          _gsm_manager_run_op (self, op, &result, g_task_get_cancellable (task), &error);
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

/* Queues @op (taken) in the worker, for an async call. */
void
_gsm_manager_start_op (GsmSessionManager  *self,
                       GsmOp              *op,
                       gpointer            source_tag,
                       GCancellable       *cancellable,
                       GAsyncReadyCallback callback,
                       gpointer            user_data)
{
  GTask  *task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, op, _gsm_op_free);
  if (!check_not_forked (self, &error))
    {
      /* No worker thread here to run it. */
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_thread_pool_push (self->pool, task, NULL);
}

/* Queues an operation of the manager's own (a refresh, a reclaim), whose
 * result nobody waits for. */
void
_gsm_manager_queue_op (GsmSessionManager *self,
                       GsmOpKind          kind,
                       gpointer           source_tag)
{
  GTask *task = g_task_new (self, NULL, NULL, NULL);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, _gsm_op_new (kind), _gsm_op_free);
  g_thread_pool_push (self->pool, task, NULL);
}

gboolean
_gsm_manager_check_task (GsmSessionManager *self,
                         GAsyncResult      *result,
                         gpointer           source_tag)
{
  return g_task_is_valid (result, self) && g_task_get_source_tag (G_TASK (result)) == source_tag;
}
