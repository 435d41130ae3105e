/* gsm-etcd-registry.c: the registry in etcd, for many hosts
 *
 * Speaks the v3 JSON gateway of etcd 3.4 (keys and values base64) through
 * the client of gsm-etcd-client.c. Keys, below PREFIX (default
 * /gsm-session):
 *
 *   PREFIX/sessions/<session id>   the session's entry (the same JSON text as
 *                                  in the file registry), attached to the
 *                                  lease its process keeps alive
 *   PREFIX/vms/<vm id>             the owner's entry as of registering the
 *                                  VM (session_id is the owner; vm_id, zone,
 *                                  components, metadata, registered_at);
 *                                  not leased
 *
 * A VM key is only ever created by a transaction that also compares its
 * create_revision with 0, so two sessions can never both own a VM. When a
 * process stops renewing its lease, etcd deletes its session key; its VM
 * keys stay, and are presented as entries with status "stale" (orphans for
 * the reaper), exactly as the file backend presents a dead session.
 *
 * An update maps the manager's read-decide-write model onto optimistic
 * concurrency: one range read of PREFIX/, the manager's function decides
 * on that snapshot, and a transaction writes the changes, comparing the
 * mod_revision of every key it touches (create_revision 0 for new ones).
 * If another host changed one of them, the transaction fails and the whole
 * update runs again on a fresh read.
 *
 * load and update block (the manager calls them from its worker thread or
 * a _sync caller). The lease keepalive (gsm-etcd-lease.c) and the watch of
 * PREFIX/ (gsm-etcd-watch.c) run asynchronously on a private thread's main
 * context, so that a process which never runs a main loop (only _sync
 * calls) still keeps its lease; what they find is emitted as ::changed and
 * ::lapsed in the main context of the creator. What an update writes is
 * planned by gsm-etcd-plan.c, on views made by gsm-etcd-view.c; requests
 * go through the client of gsm-etcd-client.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-plan-private.h"
#include "gsm-etcd-registry-parts-private.h"
#include "gsm-fs-private.h"
#include "gsm-session-private.h"

#define DEFAULT_LOCK_TIMEOUT 30.0
/* Up to this many changed keys are read one by one, more in one range. */
#define MAX_SINGLE_READS 8

/* ---- the object -------------------------------------------------------- */

static void gsm_etcd_registry_iface_init (GsmRegistryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (GsmEtcdRegistry, _gsm_etcd_registry, G_TYPE_OBJECT, G_IMPLEMENT_INTERFACE (GSM_TYPE_REGISTRY, gsm_etcd_registry_iface_init))

static void
_gsm_etcd_registry_init (GsmEtcdRegistry *self)
{
  g_mutex_init (&self->mutex);
  g_mutex_init (&self->grant_mutex);
  self->parsed = _gsm_etcd_parsed_new ();
  g_cond_init (&self->view_cond);
  self->cancellable = g_cancellable_new ();
}

void
_gsm_etcd_registry_clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static gboolean
stop_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  /* In the thread: libsoup completes cancelled messages in the thread
   * that cancels them, which must be the one that sent them. */
  g_atomic_int_set (&self->stopping, 1);
  g_cancellable_cancel (self->cancellable);
  if (self->watch_cancellable != NULL)
    g_cancellable_cancel (self->watch_cancellable);
  return G_SOURCE_REMOVE;
}

static void
stop_thread (GsmEtcdRegistry *self)
{
  GSource *source;

  if (self->thread == NULL)
    return;

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_HIGH);
  g_source_set_callback (source, stop_cb, self, NULL);
  g_source_attach (source, self->context);
  g_source_unref (source);
  g_thread_join (self->thread);
  self->thread = NULL;

  _gsm_etcd_registry_clear_source (&self->keepalive_source);
  _gsm_etcd_watch_clear (self);
}

static void
gsm_etcd_registry_finalize (GObject *object)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (object);

  stop_thread (self);
  g_clear_pointer (&self->client, _gsm_etcd_client_free);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->owner_context, g_main_context_unref);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->view, _gsm_etcd_view_unref);
  g_cond_clear (&self->view_cond);
  g_hash_table_unref (self->parsed);
  g_free (self->endpoint);
  g_free (self->prefix);
  g_free (self->sessions_prefix);
  g_free (self->vms_prefix);
  g_free (self->own_session_id);
  g_clear_object (&self->own_last);
  g_mutex_clear (&self->mutex);
  g_mutex_clear (&self->grant_mutex);

  G_OBJECT_CLASS (_gsm_etcd_registry_parent_class)->finalize (object);
}

static void
_gsm_etcd_registry_class_init (GsmEtcdRegistryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gsm_etcd_registry_finalize;
}

/* ---- emitting in the owner's context ----------------------------------- */

typedef struct
{
  GWeakRef registry;
} EmitData;

static void
emit_data_free (gpointer data)
{
  EmitData *ed = data;

  g_weak_ref_clear (&ed->registry);
  g_free (ed);
}

static gboolean
emit_pending_cb (gpointer data)
{
  EmitData *ed = data;
  g_autoptr (GsmEtcdRegistry) self = g_weak_ref_get (&ed->registry);
  int pending;

  if (self == NULL)
    return G_SOURCE_REMOVE;

  pending = g_atomic_int_and (&self->pending, 0);
  if (pending & GSM_ETCD_PENDING_LAPSED)
    g_signal_emit_by_name (self, "lapsed");
  if (pending & GSM_ETCD_PENDING_CHANGED)
    g_signal_emit_by_name (self, "changed");

  return G_SOURCE_REMOVE;
}

/* Emits @what (GSM_ETCD_PENDING_*) in the owner's context, from any
 * thread. At most one emission is queued at a time, so a process that
 * never runs its main loop does not pile them up. */
void
_gsm_etcd_registry_emit (GsmEtcdRegistry *self,
                         int              what)
{
  GSource  *source;
  EmitData *ed;

  if (g_atomic_int_or (&self->pending, what) != 0)
    return;

  ed = g_new0 (EmitData, 1);
  g_weak_ref_init (&ed->registry, self);
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, emit_pending_cb, ed, emit_data_free);
  g_source_set_static_name (source, "[gsm] etcd registry signals");
  g_source_attach (source, self->owner_context);
  g_source_unref (source);
}

/* ---- reading ----------------------------------------------------------- */

static GsmEtcdResponse *
post_sync (GsmEtcdRegistry *self,
           const char      *path,
           GString         *body,
           GCancellable    *cancellable,
           GError         **error)
{
  return _gsm_etcd_client_post (self->client, path, body->str, body->len, cancellable, error);
}

/* A range of PREFIX/: only keys and revisions with @keys_only, else
 * values too, at @revision if not 0. */
static GString *
range_body (GsmEtcdRegistry *self,
            gboolean         keys_only,
            gint64           revision)
{
  g_autofree char *key = g_strconcat (self->prefix, "/", NULL);
  GString         *body = g_string_new ("{");

  _gsm_etcd_append_range (body, key);
  if (keys_only)
    g_string_append (body, ", \"keys_only\": true");
  if (revision > 0)
    g_string_append_printf (body, ", \"revision\": \"%" G_GINT64_FORMAT "\"", revision);
  g_string_append (body, "}");
  return body;
}

static gboolean
is_entry_key (GsmEtcdRegistry *self,
              GsmEtcdKv       *kv)
{
  return _gsm_etcd_key_is_clean (kv) &&
         (g_str_has_prefix (kv->key, self->sessions_prefix) ||
          g_str_has_prefix (kv->key, self->vms_prefix));
}

/* Keys whose value at their revision was never read. */
static guint
count_unknown (GsmEtcdRegistry *self,
               GsmEtcdResponse *response)
{
  guint n = 0;

  g_mutex_lock (&self->mutex);
  for (guint i = 0; i < response->kvs->len; i++)
    {
      GsmEtcdKv *kv = response->kvs->pdata[i];
      if (is_entry_key (self, kv) && !_gsm_etcd_parsed_has (self->parsed, kv->key, kv->mod_revision))
        n++;
    }
  g_mutex_unlock (&self->mutex);

  return n;
}

/* Fills in the values of the keys that are not cached, read at the
 * revision of @response so that the view stays one consistent revision. */
static gboolean
fetch_unknown (GsmEtcdRegistry *self,
               GsmEtcdResponse *response,
               GCancellable    *cancellable,
               GError         **error)
{
  for (guint i = 0; i < response->kvs->len; i++)
    {
      GsmEtcdKv *kv = response->kvs->pdata[i];
      g_autoptr (GsmEtcdResponse) one = NULL;
      g_autoptr (GString) body = NULL;
      GsmEtcdKv *got;
      gboolean   known;

      if (!is_entry_key (self, kv))
        continue;
      g_mutex_lock (&self->mutex);
      known = _gsm_etcd_parsed_has (self->parsed, kv->key, kv->mod_revision);
      g_mutex_unlock (&self->mutex);
      if (known)
        continue;

      body = g_string_new ("{\"key\": ");
      _gsm_etcd_append_base64 (body, kv->key, kv->key_len);
      g_string_append_printf (body, ", \"revision\": \"%" G_GINT64_FORMAT "\"}", response->revision);
      one = post_sync (self, "/v3/kv/range", body, cancellable, error);
      if (one == NULL)
        return FALSE;
      got = one->kvs->len == 1 ? one->kvs->pdata[0] : NULL;
      if (got == NULL || got->mod_revision != kv->mod_revision)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                       "etcd at %s: key “%s” changed while it was read", self->endpoint, kv->key);
          return FALSE;
        }
      g_bytes_unref (kv->value);
      kv->value = g_bytes_ref (got->value);
    }

  return TRUE;
}

/* Where the registry's keys are, for views and plans. */
GsmEtcdViewContext
_gsm_etcd_registry_view_context (GsmEtcdRegistry *self)
{
  GsmEtcdViewContext ctx = {
    self->endpoint,
    self->sessions_prefix,
    self->vms_prefix,
    self->own_session_id,
    &self->parsed,
  };

  return ctx;
}

/* Makes @view the latest, if it is newer. Under the mutex. */
void
_gsm_etcd_registry_set_view_locked (GsmEtcdRegistry *self,
                                    GsmEtcdView     *view)
{
  if (self->view != NULL && _gsm_etcd_view_get_revision (self->view) >= _gsm_etcd_view_get_revision (view))
    return;
  g_clear_pointer (&self->view, _gsm_etcd_view_unref);
  self->view = _gsm_etcd_view_ref (view);
  g_cond_broadcast (&self->view_cond);
}

/* Reads the whole prefix: a view of the present, which becomes the
 * latest. */
GsmEtcdView *
_gsm_etcd_registry_read_view (GsmEtcdRegistry *self,
                              GCancellable    *cancellable,
                              GError         **error)
{
  g_autoptr (GString) body = range_body (self, TRUE, 0);
  g_autoptr (GsmEtcdResponse) response = NULL;
  GsmEtcdView *view;
  guint        unknown;

  /* Keys and revisions first: the values of the keys already parsed at
   * their revision need not travel again. The few others are read one by
   * one, many at once by a full read at the same revision. */
  g_atomic_int_inc (&self->n_range_reads);
  response = post_sync (self, "/v3/kv/range", body, cancellable, error);
  if (response == NULL)
    return NULL;

  unknown = count_unknown (self, response);
  if (unknown > MAX_SINGLE_READS)
    {
      g_autoptr (GString) full = range_body (self, FALSE, response->revision);
      g_autoptr (GError) local_error = NULL;
      GsmEtcdResponse *values;

      values = post_sync (self, "/v3/kv/range", full, cancellable, &local_error);
      if (values == NULL && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      if (values == NULL)
        {
          /* That revision was compacted meanwhile, say: read the present. */
          g_string_free (g_steal_pointer (&full), TRUE);
          full = range_body (self, FALSE, 0);
          values = post_sync (self, "/v3/kv/range", full, cancellable, error);
          if (values == NULL)
            return NULL;
        }
      _gsm_etcd_response_free (g_steal_pointer (&response));
      response = values;
    }
  else if (unknown > 0 && !fetch_unknown (self, response, cancellable, error))
    return NULL;

  g_mutex_lock (&self->mutex);
  if (self->view != NULL && _gsm_etcd_view_get_revision (self->view) == response->revision)
    view = _gsm_etcd_view_ref (self->view);
  else
    {
      GsmEtcdViewContext ctx = _gsm_etcd_registry_view_context (self);

      view = _gsm_etcd_view_new_from_range (&ctx, response);
      _gsm_etcd_registry_set_view_locked (self, view);
    }
  g_mutex_unlock (&self->mutex);

  return view;
}

/*
 * The view to decide on. While the watch keeps the view current this reads
 * nothing from etcd: it waits (a few milliseconds at most) for the watch
 * to deliver our own last write, so that we read what we wrote. The watch
 * cannot tell when it has delivered what other processes wrote under the
 * prefix (etcd 3.4's gateway sends no progress marks on request), so a
 * view may lag their writes by the watch's delay; every decision is
 * checked by the transaction's compares, and after a failed one,
 * @fresh asks for a read of the whole prefix. Without a watch (not yet,
 * one that lost events, or in the watch's own thread) it reads the whole
 * prefix.
 */
static GsmEtcdView *
load_view (GsmEtcdRegistry *self,
           gboolean         fresh,
           GCancellable    *cancellable,
           GError         **error)
{
  GsmEtcdView *view = NULL;

  if (!fresh && !g_main_context_is_owner (self->context))
    {
      gint64 deadline = g_get_monotonic_time () + (gint64) self->timeout_s * G_USEC_PER_SEC;

      g_mutex_lock (&self->mutex);
      while (self->informed && self->view != NULL &&
             _gsm_etcd_view_get_revision (self->view) < self->last_write &&
             g_cond_wait_until (&self->view_cond, &self->mutex, deadline))
        ;
      if (self->informed && self->view != NULL &&
          _gsm_etcd_view_get_revision (self->view) >= self->last_write)
        view = _gsm_etcd_view_ref (self->view);
      g_mutex_unlock (&self->mutex);
      if (view != NULL)
        return view;
    }

  view = _gsm_etcd_registry_read_view (self, cancellable, error);
  if (view != NULL)
    _gsm_etcd_watch_start (self);
  return view;
}

/* ---- writing ----------------------------------------------------------- */

/* After a successful transaction: the objects written are what the next
 * read of those keys shows. */
static void
remember_writes (GsmEtcdRegistry *self,
                 GsmEtcdPlan     *plan,
                 gint64           revision)
{
  GHashTableIter iter;
  gpointer       key, value;

  g_autofree char *own_key = g_strconcat (self->sessions_prefix, self->own_session_id, NULL);

  g_mutex_lock (&self->mutex);
  g_hash_table_iter_init (&iter, plan->ops);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GsmEtcdOp *op = value;

      if (g_str_equal (key, own_key))
        g_set_object (&self->own_last, op->put);
      if (op->put != NULL)
        {
          if (op->lease != 0)
            _gsm_etcd_mark_leased (op->put);
          _gsm_etcd_parsed_put (self->parsed, key, revision, op->put);
        }
      else
        g_hash_table_remove (self->parsed, key);
    }
  self->last_write = MAX (self->last_write, revision);
  g_mutex_unlock (&self->mutex);
}

/*
 * One read-decide-write: @func decides on a view (@fresh: read from etcd
 * itself), and a transaction writes what it changed. Returns the snapshot
 * written (or the one read, if nothing changed); %NULL with *@again set if
 * the transaction found a key changed since the view or our lease gone, so
 * that the update runs again; else %NULL with @error.
 */
static GsmRegistrySnapshot *
try_update (GsmEtcdRegistry      *self,
            GsmRegistryUpdateFunc func,
            gpointer              user_data,
            gboolean              fresh,
            gboolean             *again,
            GCancellable         *cancellable,
            GError              **error)
{
  GsmEtcdViewContext ctx = _gsm_etcd_registry_view_context (self);
  g_autoptr (GsmEtcdView) view = NULL;
  g_autoptr (GsmRegistryTxn) txn = NULL;
  g_auto (GsmEtcdPlan) plan = { NULL, NULL };
  g_autoptr (GString) body = NULL;
  g_autoptr (GsmEtcdResponse) response = NULL;
  g_autoptr (GError) local_error = NULL;
  GsmSession        *own;
  GsmEtcdSessionKey *own_key;
  gint64             lease_id;

  *again = FALSE;
  if (!_gsm_etcd_lease_ensure (self, cancellable, error))
    return NULL;
  lease_id = _gsm_etcd_registry_get_lease_id (self);

  view = load_view (self, fresh, cancellable, error);
  if (view == NULL)
    return NULL;

  txn = _gsm_registry_txn_new (_gsm_etcd_view_get_snapshot (view));
  if (!func (txn, user_data, error))
    return NULL;

  own = _gsm_registry_txn_lookup (txn, self->own_session_id);
  /* Our live entry must be on our current lease (it is not after the lease
   * lapsed). */
  own_key = _gsm_etcd_view_lookup_session (view, self->own_session_id);
  if (own != NULL && !_gsm_session_is_stale (own) &&
      (own_key == NULL || own_key->lease != lease_id))
    _gsm_registry_txn_put (txn, own);

  if (g_hash_table_size (_gsm_registry_txn_get_changes (txn)) == 0)
    return _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (view));

  if (!_gsm_etcd_plan_init (&plan, &ctx, view, txn, lease_id, error))
    return NULL;

  body = _gsm_etcd_plan_to_txn (&plan);
  response = post_sync (self, "/v3/kv/txn", body, cancellable, &local_error);
  if (response != NULL && response->succeeded)
    {
      GsmRegistrySnapshot *result = _gsm_registry_txn_apply (txn, (guint64) response->revision);

      remember_writes (self, &plan, response->revision);
      return result;
    }

  if (response == NULL)
    {
      if (!g_error_matches (local_error, GSM_ERROR, GSM_ERROR_OWNERSHIP_LAPSED))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      /* Our lease expired under us: take a new one and start over. */
      g_mutex_lock (&self->mutex);
      _gsm_etcd_lease_mark_lost_locked (self, lease_id);
      g_mutex_unlock (&self->mutex);
    }

  /* What the transaction found differs from our view. */
  *again = TRUE;
  return NULL;
}

static GsmRegistrySnapshot *
gsm_etcd_registry_update (GsmRegistry          *registry,
                          GsmRegistryUpdateFunc func,
                          gpointer              user_data,
                          GCancellable         *cancellable,
                          GError              **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);
  gint64           deadline = g_get_monotonic_time () + (gint64) (self->lock_timeout * G_USEC_PER_SEC);
  guint            attempts = 0;

  for (;;)
    {
      GsmRegistrySnapshot *snapshot;
      gboolean             again;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      if (self->own_session_id == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                       "etcd at %s is open for reading only", self->endpoint);
          return NULL;
        }

      /* After a failed transaction, decide again on a read of the store
       * itself. */
      snapshot = try_update (self, func, user_data, attempts > 0, &again, cancellable, error);
      if (!again)
        return snapshot;

      /* Another process changed one of the keys: read again. */
      attempts++;
      if (g_get_monotonic_time () > deadline)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT,
                       "etcd at %s: gave up after %u conflicting transactions in %.0f s",
                       self->endpoint, attempts, self->lock_timeout);
          return NULL;
        }
      if (attempts > 1)
        g_usleep (g_random_int_range (1, 1000 * (int) MIN (attempts, 20)));
    }
}

static GsmRegistrySnapshot *
gsm_etcd_registry_load (GsmRegistry  *registry,
                        GCancellable *cancellable,
                        GError      **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);
  g_autoptr (GsmEtcdView) view = load_view (self, FALSE, cancellable, error);

  return view ? _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (view)) : NULL;
}

static GsmRegistrySnapshot *
gsm_etcd_registry_peek (GsmRegistry  *registry,
                        GCancellable *cancellable,
                        GError      **error)
{
  GsmEtcdRegistry     *self = GSM_ETCD_REGISTRY (registry);
  GsmRegistrySnapshot *snapshot = NULL;

  g_mutex_lock (&self->mutex);
  if (self->informed && self->view != NULL)
    snapshot = _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (self->view));
  g_mutex_unlock (&self->mutex);

  return snapshot ? snapshot : gsm_etcd_registry_load (registry, cancellable, error);
}

static gpointer
thread_func (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_main_context_push_thread_default (self->context);

  /* A reader holds no lease: it only watches. */
  if (self->own_session_id != NULL)
    _gsm_etcd_lease_start_keepalive (self);

  while (!g_atomic_int_get (&self->stopping) || self->n_inflight > 0)
    g_main_context_iteration (self->context, TRUE);

  /* Closing the stream completes its message: in this thread too. */
  g_clear_object (&self->watch_stream);
  while (g_main_context_iteration (self->context, FALSE))
    ;

  g_main_context_pop_thread_default (self->context);
  return NULL;
}

/* ---- the interface ----------------------------------------------------- */

static gboolean
gsm_etcd_registry_start_watch (GsmRegistry *registry,
                               GError     **error)
{
  _gsm_etcd_watch_start (GSM_ETCD_REGISTRY (registry));
  return TRUE;
}

static gboolean
gsm_etcd_registry_vouches_for (GsmRegistry *registry,
                               GsmSession  *session)
{
  /* Entries read from (or written to) a leased session key: etcd deletes
   * them when their process stops renewing. */
  return _gsm_etcd_is_leased (session) && !_gsm_session_is_stale (session);
}

static void
gsm_etcd_registry_iface_init (GsmRegistryInterface *iface)
{
  iface->load = gsm_etcd_registry_load;
  iface->peek = gsm_etcd_registry_peek;
  iface->update = gsm_etcd_registry_update;
  iface->start_watch = gsm_etcd_registry_start_watch;
  iface->vouches_for = gsm_etcd_registry_vouches_for;
}

/* ---- construction ------------------------------------------------------ */

/*
 * _gsm_etcd_registry_new:
 * @uri: `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`, or `etcds://…`
 * @own_session_id: (nullable): the session of this process, or %NULL for
 *   a reader, which takes no lease and never writes (updates fail with
 *   %GSM_ERROR_PERMISSION_DENIED)
 * @lease_ttl: seconds a session outlives its last keepalive
 * @timeout: seconds any request may take (connecting included)
 *
 * Connects and takes a lease. Fails with %GSM_ERROR_BACKEND_UNAVAILABLE,
 * naming the endpoints, if no member of etcd can be reached within
 * @timeout (each), or with %GSM_ERROR_INVALID_ARGUMENT if the URI or the
 * TLS and authentication settings (see _gsm_etcd_client_new()) are wrong.
 */
GsmEtcdRegistry *
_gsm_etcd_registry_new (const char   *uri,
                        const char   *own_session_id,
                        double        lease_ttl,
                        double        timeout,
                        GCancellable *cancellable,
                        GError      **error)
{
  g_autoptr (GsmEtcdRegistry) self = NULL;
  GsmEtcdClient   *client;
  g_autofree char *prefix = NULL;

  g_return_val_if_fail (uri != NULL, NULL);

  client = _gsm_etcd_client_new (uri, timeout, &prefix, error);
  if (client == NULL)
    return NULL;

  self = g_object_new (GSM_TYPE_ETCD_REGISTRY, NULL);
  self->client = client;
  self->endpoint = g_strdup (_gsm_etcd_client_get_endpoints (client));
  self->prefix = g_steal_pointer (&prefix);
  self->sessions_prefix = g_strconcat (self->prefix, "/sessions/", NULL);
  self->vms_prefix = g_strconcat (self->prefix, "/vms/", NULL);
  self->own_session_id = g_strdup (own_session_id);
  self->ttl = (guint) CLAMP (lease_ttl + 0.5, 1, 24 * 3600);
  self->timeout_s = (guint) CLAMP (timeout + 0.999, 1, 3600);
  self->lock_timeout = _gsm_env_seconds ("GSM_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT);
  self->owner_context = g_main_context_ref_thread_default ();

  if (own_session_id != NULL && !_gsm_etcd_lease_grant (self, cancellable, error))
    return NULL;
  /* One member may take this long to renew the lease before the next is
   * asked, so that a stalled member costs a fraction of the TTL. */
  self->keepalive_timeout_ms = (guint) CLAMP (self->ttl * 1000 / 6, 1000,
                                              MAX (timeout, 1) * 1000);

  self->context = g_main_context_new ();
  self->thread = g_thread_new ("gsm-etcd", thread_func, self);

  if (own_session_id == NULL)
    {
      /* A reader proves that etcd answers by reading. */
      g_autoptr (GsmEtcdView) view = load_view (self, FALSE, cancellable, error);

      if (view == NULL)
        return NULL;
    }

  return g_steal_pointer (&self);
}

gint64
_gsm_etcd_registry_get_lease_id (GsmEtcdRegistry *self)
{
  gint64 lease_id;

  g_mutex_lock (&self->mutex);
  lease_id = self->lease_id;
  g_mutex_unlock (&self->mutex);
  return lease_id;
}

/* How many times the whole prefix was read (tests). */
guint
_gsm_etcd_registry_get_n_range_reads (GsmEtcdRegistry *self)
{
  return (guint) g_atomic_int_get (&self->n_range_reads);
}

/* The lease's TTL, in seconds (as etcd granted it). */
guint
_gsm_etcd_registry_get_ttl (GsmEtcdRegistry *self)
{
  guint ttl;

  g_mutex_lock (&self->mutex);
  ttl = self->ttl;
  g_mutex_unlock (&self->mutex);

  return ttl;
}

/* ---- the fleet's audit log --------------------------------------------- */

/* How long etcd keeps an audit record: the log is bounded by age. */
#define AUDIT_TTL (30 * 24 * 3600)

/*
 * _gsm_etcd_registry_append_audit:
 * @line: one record of the audit log, JSON on one line
 *
 * Keeps @line under PREFIX/audit/, where every host's `gsmctl history`
 * reads it, for 30 days (on a lease of its own).
 */
gboolean
_gsm_etcd_registry_append_audit (GsmEtcdRegistry *self,
                                 const char      *line,
                                 GError         **error)
{
  g_autoptr (GString) grant = g_string_new (NULL);
  g_autoptr (GString) body = g_string_new ("{\"key\": ");
  g_autoptr (GsmEtcdResponse) lease = NULL;
  g_autoptr (GsmEtcdResponse) put = NULL;
  g_autofree char *key = NULL;

  g_string_printf (grant, "{\"TTL\": %d}", AUDIT_TTL);
  lease = post_sync (self, "/v3/lease/grant", grant, NULL, error);
  if (lease == NULL)
    return FALSE;

  /* Ordered by time, then unique. */
  key = g_strdup_printf ("%s/audit/%016" G_GINT64_MODIFIER "x-%08x", self->prefix,
                         g_get_real_time (), g_random_int ());
  _gsm_etcd_append_base64 (body, key, strlen (key));
  g_string_append (body, ", \"value\": ");
  _gsm_etcd_append_base64 (body, line, strlen (line));
  g_string_append_printf (body, ", \"lease\": \"%" G_GINT64_FORMAT "\"}", lease->lease_id);
  put = post_sync (self, "/v3/kv/put", body, NULL, error);
  return put != NULL;
}

/*
 * _gsm_etcd_registry_read_audit:
 *
 * Returns: (transfer full): every host's audit records, oldest first
 */
char **
_gsm_etcd_registry_read_audit (GsmEtcdRegistry *self,
                               GError         **error)
{
  g_autofree char *key = g_strconcat (self->prefix, "/audit/", NULL);
  g_autoptr (GString) body = g_string_new ("{");
  g_autoptr (GsmEtcdResponse) response = NULL;
  GPtrArray *lines;

  _gsm_etcd_append_range (body, key);
  g_string_append (body, "}");
  response = post_sync (self, "/v3/kv/range", body, NULL, error);
  if (response == NULL)
    return NULL;

  lines = g_ptr_array_new ();
  for (guint i = 0; i < response->kvs->len; i++)
    {
      GsmEtcdKv  *kv = response->kvs->pdata[i];
      gsize       len;
      const char *data = g_bytes_get_data (kv->value, &len);

      if (data != NULL && len > 0 && memchr (data, '\0', len) == NULL)
        g_ptr_array_add (lines, g_strndup (data, len));
    }
  g_ptr_array_add (lines, NULL);
  return (char **) g_ptr_array_free (lines, FALSE);
}
