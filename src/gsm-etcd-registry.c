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
 * a _sync caller). The lease keepalive and the watch of PREFIX/ run
 * asynchronously on a private thread's main context, so that a process
 * which never runs a main loop (only _sync calls) still keeps its lease;
 * what they find is emitted as ::changed and ::lapsed in the main context
 * of the creator.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-etcd-view-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-session-private.h"

#define DEFAULT_LOCK_TIMEOUT 30.0
/* Up to this many changed keys are read one by one, more in one range. */
#define MAX_SINGLE_READS 8
#define WATCH_RETRY_MIN_MS 100
#define WATCH_RETRY_MAX_MS 2000
/* A watch asks for progress notifications, which etcd sends every 10
 * minutes (--experimental-watch-progress-notify-interval) on a watch
 * without events: one that brings nothing for longer is taken for a
 * connection lost without a word, and opened again. */
#define WATCH_IDLE_TIMEOUT_S (11 * 60)

/* ---- the object -------------------------------------------------------- */

enum {
  PENDING_CHANGED = 1 << 0,
  PENDING_LAPSED = 1 << 1,
};

struct _GsmEtcdRegistry
{
  GObject          parent_instance;

  char            *endpoint;        /* the members' endpoints, for messages */
  char            *prefix;          /* /PREFIX */
  char            *sessions_prefix; /* /PREFIX/sessions/ */
  char            *vms_prefix;      /* /PREFIX/vms/ */
  char            *own_session_id;
  guint            ttl;
  guint            timeout_s;
  double           lock_timeout;

  GsmEtcdClient   *client;
  GMainContext    *owner_context;   /* where signals are emitted */
  gint             pending;         /* PENDING_*: emissions queued there */
  GMutex           grant_mutex;     /* one new lease at a time (ensure_lease) */

  GMutex           mutex;           /* guards what follows */
  gint64           lease_id;
  gboolean         lease_lost;
  GHashTable      *parsed;          /* etcd key → its entry, parsed (gsm-etcd-view.c) */
  GsmSession      *own_last;        /* our entry as we last wrote it, or NULL */
  GsmEtcdView     *view;            /* the latest view: a range read, then the watch */
  gboolean         informed;        /* the watch keeps view current */
  gboolean         relist;          /* the watch lost events: read everything again */
  gint             watch_requested;
  gint64           last_write;      /* the revision of our last transaction */
  guint            n_range_reads;   /* reads of the whole prefix, for tests */
  GCond            view_cond;       /* view changed */

  /* The background thread and what only it touches. */
  GThread         *thread;
  GMainContext    *context;
  GCancellable    *cancellable;
  gint             stopping;
  guint            n_inflight;
  GSource         *keepalive_source;
  gboolean         keepalive_inflight;
  gint64           keepalive_lease_id;
  guint            keepalive_timeout_ms;
  gboolean         watching;
  gint64           watch_revision;  /* the last revision the watch delivered */
  guint            watch_member;    /* the member serving the watch */
  GInputStream    *watch_stream;
  GCancellable    *watch_cancellable; /* of reading watch_stream */
  GByteArray      *watch_buffer;
  GSource         *watch_retry_source;
  GSource         *watch_idle_source;
  guint            watch_retry_ms;
  guint            n_watch_connects;
};

static void gsm_etcd_registry_iface_init (GsmRegistryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (GsmEtcdRegistry, _gsm_etcd_registry, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (GSM_TYPE_REGISTRY,
                                                      gsm_etcd_registry_iface_init))

static void
_gsm_etcd_registry_init (GsmEtcdRegistry *self)
{
  g_mutex_init (&self->mutex);
  g_mutex_init (&self->grant_mutex);
  self->parsed = _gsm_etcd_parsed_new ();
  g_cond_init (&self->view_cond);
  self->cancellable = g_cancellable_new ();
  self->watch_retry_ms = WATCH_RETRY_MIN_MS;
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

  if (self->keepalive_source != NULL)
    {
      g_source_destroy (self->keepalive_source);
      g_clear_pointer (&self->keepalive_source, g_source_unref);
    }
  if (self->watch_retry_source != NULL)
    {
      g_source_destroy (self->watch_retry_source);
      g_clear_pointer (&self->watch_retry_source, g_source_unref);
    }
  if (self->watch_idle_source != NULL)
    {
      g_source_destroy (self->watch_idle_source);
      g_clear_pointer (&self->watch_idle_source, g_source_unref);
    }
  g_clear_object (&self->watch_stream);
  g_clear_object (&self->watch_cancellable);
  g_clear_pointer (&self->watch_buffer, g_byte_array_unref);
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
  g_autoptr(GsmEtcdRegistry) self = g_weak_ref_get (&ed->registry);
  int pending;

  if (self == NULL)
    return G_SOURCE_REMOVE;

  pending = g_atomic_int_and (&self->pending, 0);
  if (pending & PENDING_LAPSED)
    g_signal_emit_by_name (self, "lapsed");
  if (pending & PENDING_CHANGED)
    g_signal_emit_by_name (self, "changed");

  return G_SOURCE_REMOVE;
}

/* From any thread. At most one emission is queued at a time, so a process
 * that never runs its main loop does not pile them up. */
static void
schedule_emit (GsmEtcdRegistry *self,
               int              what)
{
  GSource *source;
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

static gboolean reenter_cb (gpointer user_data);

/* Under the mutex. */
static void
mark_lease_lost_locked (GsmEtcdRegistry *self,
                        gint64           lease_id)
{
  if (self->lease_lost || lease_id != self->lease_id)
    return;
  self->lease_lost = TRUE;
  g_debug ("etcd at %s: lease %" G_GINT64_FORMAT " expired", self->endpoint, lease_id);
  schedule_emit (self, PENDING_LAPSED);
  if (self->context != NULL)
    {
      /* Never at once: the mutex is held here. */
      GSource *source = g_idle_source_new ();

      g_source_set_callback (source, reenter_cb, self, NULL);
      g_source_set_static_name (source, "[gsm] etcd enter again");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

/* ---- blocking requests ------------------------------------------------- */

static void
append_base64 (GString      *out,
               gconstpointer data,
               gsize         len)
{
  g_autofree char *b64 = g_base64_encode (data, len);

  g_string_append_c (out, '"');
  g_string_append (out, b64);
  g_string_append_c (out, '"');
}

static GsmEtcdResponse *
post_sync (GsmEtcdRegistry  *self,
           const char       *path,
           GString          *body,
           GCancellable     *cancellable,
           GError          **error)
{
  return _gsm_etcd_client_post (self->client, path, body->str, body->len, cancellable, error);
}

static gboolean
grant_lease (GsmEtcdRegistry  *self,
             GCancellable     *cancellable,
             GError          **error)
{
  g_autoptr(GString) body = g_string_new (NULL);
  g_autoptr(GsmEtcdResponse) response = NULL;

  g_string_printf (body, "{\"TTL\": %u}", self->ttl);
  response = post_sync (self, "/v3/lease/grant", body, cancellable, error);
  if (response == NULL)
    return FALSE;
  if (response->lease_id == 0 || response->ttl <= 0)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "etcd at %s granted no lease", self->endpoint);
      return FALSE;
    }

  g_mutex_lock (&self->mutex);
  self->lease_id = response->lease_id;
  self->lease_lost = FALSE;
  /* etcd may raise a TTL below its minimum. */
  self->ttl = (guint) CLAMP (response->ttl, 1, G_MAXINT);
  g_mutex_unlock (&self->mutex);

  g_debug ("etcd at %s: lease %" G_GINT64_FORMAT " granted, TTL %" G_GINT64_FORMAT " s",
           self->endpoint, response->lease_id, response->ttl);
  return TRUE;
}

/*
 * After the lease was lost, the first update takes a new one; the others
 * wait for it and use it. Two updates can find it lost at once: the
 * thread's re-entry and one of the application's (the manager enters
 * again on ::lapsed too, from its worker thread). If each took a lease,
 * the one granted first could be the one an update writes our session key
 * on after the other update made its own lease the one kept alive: the key
 * would then expire with a lease nobody renews, while the keepalive of the
 * other succeeds, so the process, alive, would never enter again and its
 * VM would be reaped.
 */
static gboolean
ensure_lease (GsmEtcdRegistry  *self,
              GCancellable     *cancellable,
              GError          **error)
{
  gboolean lost, ok;

  g_mutex_lock (&self->grant_mutex);
  g_mutex_lock (&self->mutex);
  lost = self->lease_lost;
  g_mutex_unlock (&self->mutex);
  ok = !lost || grant_lease (self, cancellable, error);
  g_mutex_unlock (&self->grant_mutex);

  return ok;
}

/* ---- reading ----------------------------------------------------------- */

static char *
prefix_end (const char *key)
{
  char *end = g_strdup (key);
  gsize len = strlen (end);

  /* The keys of PREFIX/ end before PREFIX0 ('/' + 1 == '0'). */
  g_assert (len > 0 && end[len - 1] == '/');
  end[len - 1]++;
  return end;
}

/* A range of PREFIX/: only keys and revisions with @keys_only, else
 * values too, at @revision if not 0. */
static GString *
range_body (GsmEtcdRegistry *self,
            gboolean         keys_only,
            gint64           revision)
{
  g_autofree char *key = g_strconcat (self->prefix, "/", NULL);
  g_autofree char *end = prefix_end (key);
  GString *body = g_string_new ("{\"key\": ");

  append_base64 (body, key, strlen (key));
  g_string_append (body, ", \"range_end\": ");
  append_base64 (body, end, strlen (end));
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
fetch_unknown (GsmEtcdRegistry  *self,
               GsmEtcdResponse  *response,
               GCancellable     *cancellable,
               GError          **error)
{
  for (guint i = 0; i < response->kvs->len; i++)
    {
      GsmEtcdKv *kv = response->kvs->pdata[i];
      g_autoptr(GsmEtcdResponse) one = NULL;
      g_autoptr(GString) body = NULL;
      GsmEtcdKv *got;
      gboolean known;

      if (!is_entry_key (self, kv))
        continue;
      g_mutex_lock (&self->mutex);
      known = _gsm_etcd_parsed_has (self->parsed, kv->key, kv->mod_revision);
      g_mutex_unlock (&self->mutex);
      if (known)
        continue;

      body = g_string_new ("{\"key\": ");
      append_base64 (body, kv->key, kv->key_len);
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

static GsmEtcdViewContext
view_context (GsmEtcdRegistry *self)
{
  GsmEtcdViewContext ctx = {
    self->endpoint, self->sessions_prefix, self->vms_prefix, self->own_session_id, &self->parsed,
  };

  return ctx;
}

/* Makes @view the latest, if it is newer. Under the mutex. */
static void
set_view_locked (GsmEtcdRegistry *self,
                 GsmEtcdView     *view)
{
  if (self->view != NULL && _gsm_etcd_view_get_revision (self->view) >= _gsm_etcd_view_get_revision (view))
    return;
  g_clear_pointer (&self->view, _gsm_etcd_view_unref);
  self->view = _gsm_etcd_view_ref (view);
  g_cond_broadcast (&self->view_cond);
}

static GsmEtcdView *
range_view (GsmEtcdRegistry  *self,
           GCancellable     *cancellable,
           GError          **error)
{
  g_autoptr(GString) body = range_body (self, TRUE, 0);
  g_autoptr(GsmEtcdResponse) response = NULL;
  GsmEtcdView *view;
  guint unknown;

  /* Keys and revisions first: the values of the keys already parsed at
   * their revision need not travel again. The few others are read one by
   * one, many at once by a full read at the same revision. */
  response = post_sync (self, "/v3/kv/range", body, cancellable, error);
  if (response == NULL)
    return NULL;

  unknown = count_unknown (self, response);
  if (unknown > MAX_SINGLE_READS)
    {
      g_autoptr(GString) full = range_body (self, FALSE, response->revision);
      g_autoptr(GError) local_error = NULL;
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
      GsmEtcdViewContext ctx = view_context (self);

      view = _gsm_etcd_view_new_from_range (&ctx, response);
      set_view_locked (self, view);
    }
  g_mutex_unlock (&self->mutex);

  return view;
}

static gboolean watch_start_cb (gpointer user_data);

/* Starts the watch that keeps the view current, once. */
static void
start_informer (GsmEtcdRegistry *self)
{
  GSource *source;

  if (!g_atomic_int_compare_and_exchange (&self->watch_requested, 0, 1))
    return;

  /* From the revision of the view, so that nothing written since is
   * missed. */
  g_mutex_lock (&self->mutex);
  if (self->view != NULL && self->watch_revision == 0)
    self->watch_revision = _gsm_etcd_view_get_revision (self->view);
  g_mutex_unlock (&self->mutex);

  source = g_idle_source_new ();
  g_source_set_callback (source, watch_start_cb, self, NULL);
  g_source_attach (source, self->context);
  g_source_unref (source);
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
load_view (GsmEtcdRegistry  *self,
           gboolean          fresh,
           GCancellable     *cancellable,
           GError          **error)
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

  view = range_view (self, cancellable, error);
  if (view != NULL)
    start_informer (self);
  return view;
}

/* ---- writing ----------------------------------------------------------- */

typedef struct
{
  GsmSession *put;       /* NULL: delete */
  gint64      lease;
} Op;

typedef struct
{
  gboolean    create;    /* compare create_revision == 0, else mod_revision */
  gint64      mod_revision;
} Compare;

typedef struct
{
  GHashTable *ops;       /* etcd key → Op */
  GHashTable *compares;  /* etcd key → Compare */
} Plan;

static void
plan_clear (Plan *plan)
{
  g_clear_pointer (&plan->ops, g_hash_table_unref);
  g_clear_pointer (&plan->compares, g_hash_table_unref);
}

static void
op_free (gpointer data)
{
  Op *op = data;

  g_clear_object (&op->put);
  g_free (op);
}

static void
plan_compare (Plan       *plan,
              const char *key,
              gint64      mod_revision)
{
  Compare *c = g_new0 (Compare, 1);

  c->create = mod_revision == 0;
  c->mod_revision = mod_revision;
  g_hash_table_replace (plan->compares, g_strdup (key), c);
}

static gboolean
plan_op (Plan        *plan,
         const char  *key,
         GsmSession  *put,
         gint64       lease,
         GError     **error)
{
  Op *existing = g_hash_table_lookup (plan->ops, key);
  Op *op;

  if (existing != NULL)
    {
      if (put == NULL)
        return TRUE;         /* a put of the same key wins over a delete */
      if (existing->put != NULL && existing->put != put)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED,
                       "Two entries of one update claim the key “%s”", key);
          return FALSE;
        }
    }

  op = g_new0 (Op, 1);
  op->put = put ? g_object_ref (put) : NULL;
  op->lease = lease;
  g_hash_table_replace (plan->ops, g_strdup (key), op);
  return TRUE;
}

static gboolean
same_text (GsmSession *a,
           GsmSession *b)
{
  gsize len, b_len;
  const char *text = _gsm_session_get_text (a, &len);
  const char *b_text = _gsm_session_get_text (b, &b_len);

  return a == b || (len == b_len && memcmp (text, b_text, len) == 0);
}

/* Does @txn take @vm_id away from @owner (remove it, or give it another)? */
static gboolean
gives_up (GsmRegistryTxn *txn,
          const char     *owner,
          const char     *vm_id)
{
  gpointer value;

  if (!g_hash_table_lookup_extended (_gsm_registry_txn_get_changes (txn), owner, NULL, &value))
    return FALSE;
  return value == NULL || g_strcmp0 (gsm_session_get_vm_id (value), vm_id) != 0;
}

/* What the changes of @txn mean for the keys of @view. */
static gboolean
plan_txn (GsmEtcdRegistry  *self,
          GsmEtcdView      *view,
          GsmRegistryTxn   *txn,
          gint64            lease_id,
          Plan             *plan,
          GError          **error)
{
  GHashTableIter iter;
  gpointer key, value;

  plan->ops = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, op_free);
  plan->compares = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  g_hash_table_iter_init (&iter, _gsm_registry_txn_get_changes (txn));
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      const char *id = key;
      GsmSession *new = value;
      GsmSession *old = _gsm_registry_snapshot_lookup (_gsm_etcd_view_get_snapshot (view), id);
      GsmEtcdSessionKey *sk = _gsm_etcd_view_lookup_session (view, id);
      g_autofree char *session_key = g_strconcat (self->sessions_prefix, id, NULL);
      const char *old_vm = old ? gsm_session_get_vm_id (old) : NULL;
      const char *new_vm = new ? gsm_session_get_vm_id (new) : NULL;
      GsmEtcdVmKey *vk;

      /* The session key: a live entry is leased, anything else has none. */
      if (new != NULL && !_gsm_session_is_stale (new))
        {
          gint64 lease = g_str_equal (id, self->own_session_id) ? lease_id : (sk ? sk->lease : 0);

          if (lease == 0)
            {
              g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED,
                           "Cannot write the live entry of session %s: it holds no lease", id);
              return FALSE;
            }
          if (!plan_op (plan, session_key, new, lease, error))
            return FALSE;
        }
      else if (sk != NULL && !plan_op (plan, session_key, NULL, 0, error))
        return FALSE;
      plan_compare (plan, session_key, sk ? sk->mod_revision : 0);

      /* The VM it owns now, created only if nobody has it. */
      if (new_vm != NULL)
        {
          g_autofree char *vm_key = g_strconcat (self->vms_prefix, new_vm, NULL);

          vk = _gsm_etcd_view_lookup_vm (view, new_vm);
          if (vk != NULL && !g_str_equal (vk->owner, id) && !gives_up (txn, vk->owner, new_vm))
            {
              /* Only a takeover that removes the old owner's claim may
               * overwrite it. */
              g_set_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER,
                           "VM “%s” is owned by session %s", new_vm, vk->owner);
              return FALSE;
            }
          if ((vk == NULL || !g_str_equal (vk->owner, id) || !same_text (vk->entry, new)) &&
              !plan_op (plan, vm_key, new, 0, error))
            return FALSE;
          plan_compare (plan, vm_key, vk ? vk->mod_revision : 0);
        }

      /* The VM it owned before, if the record still names it. */
      vk = old_vm ? _gsm_etcd_view_lookup_vm (view, old_vm) : NULL;
      if (vk != NULL && g_str_equal (vk->owner, id) && g_strcmp0 (old_vm, new_vm) != 0)
        {
          g_autofree char *vm_key = g_strconcat (self->vms_prefix, old_vm, NULL);

          if (!plan_op (plan, vm_key, NULL, 0, error))
            return FALSE;
          plan_compare (plan, vm_key, vk->mod_revision);
        }
    }

  return TRUE;
}

static GString *
txn_body (Plan *plan)
{
  GString *body = g_string_new ("{\"compare\": [");
  GHashTableIter iter;
  gpointer key, value;
  gboolean first = TRUE;

  g_hash_table_iter_init (&iter, plan->compares);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Compare *c = value;

      g_string_append (body, first ? "{\"key\": " : ", {\"key\": ");
      first = FALSE;
      append_base64 (body, key, strlen (key));
      if (c->create)
        g_string_append (body, ", \"target\": \"CREATE\", \"create_revision\": \"0\"}");
      else
        g_string_append_printf (body, ", \"target\": \"MOD\", \"mod_revision\": \"%" G_GINT64_FORMAT "\"}",
                                c->mod_revision);
    }

  g_string_append (body, "], \"success\": [");
  first = TRUE;
  g_hash_table_iter_init (&iter, plan->ops);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Op *op = value;

      g_string_append (body, first ? "" : ", ");
      first = FALSE;
      if (op->put != NULL)
        {
          gsize len;
          const char *text = _gsm_session_get_text (op->put, &len);

          g_string_append (body, "{\"request_put\": {\"key\": ");
          append_base64 (body, key, strlen (key));
          g_string_append (body, ", \"value\": ");
          append_base64 (body, text, len);
          if (op->lease != 0)
            g_string_append_printf (body, ", \"lease\": \"%" G_GINT64_FORMAT "\"", op->lease);
          g_string_append (body, "}}");
        }
      else
        {
          g_string_append (body, "{\"request_delete_range\": {\"key\": ");
          append_base64 (body, key, strlen (key));
          g_string_append (body, "}}");
        }
    }
  g_string_append (body, "]}");

  return body;
}

/* After a successful transaction: the objects written are what the next
 * read of those keys shows. */
static void
remember_writes (GsmEtcdRegistry *self,
                 Plan            *plan,
                 gint64           revision)
{
  GHashTableIter iter;
  gpointer key, value;

  g_autofree char *own_key = g_strconcat (self->sessions_prefix, self->own_session_id, NULL);

  g_mutex_lock (&self->mutex);
  g_hash_table_iter_init (&iter, plan->ops);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Op *op = value;

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

static GsmRegistrySnapshot *
gsm_etcd_registry_update (GsmRegistry            *registry,
                          GsmRegistryUpdateFunc   func,
                          gpointer                user_data,
                          GCancellable           *cancellable,
                          GError                **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);
  gint64 deadline = g_get_monotonic_time () + (gint64) (self->lock_timeout * G_USEC_PER_SEC);
  guint attempts = 0;
  gboolean fresh = FALSE;

  for (;;)
    {
      g_autoptr(GsmEtcdView) view = NULL;
      g_autoptr(GsmRegistryTxn) txn = NULL;
      g_autoptr(GString) body = NULL;
      g_autoptr(GsmEtcdResponse) response = NULL;
      g_autoptr(GError) local_error = NULL;
      Plan plan = { NULL, NULL };
      GsmSession *own;
      GsmEtcdSessionKey *own_key;
      gint64 lease_id;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return NULL;
      if (self->own_session_id == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                       "etcd at %s is open for reading only", self->endpoint);
          return NULL;
        }
      if (!ensure_lease (self, cancellable, error))
        return NULL;
      g_mutex_lock (&self->mutex);
      lease_id = self->lease_id;
      g_mutex_unlock (&self->mutex);

      view = load_view (self, fresh, cancellable, error);
      if (view == NULL)
        return NULL;

      txn = _gsm_registry_txn_new (_gsm_etcd_view_get_snapshot (view));
      if (!func (txn, user_data, error))
        return NULL;

      own = _gsm_registry_txn_lookup (txn, self->own_session_id);
      /* Our live entry must be on our current lease (it is not after the
       * lease lapsed). */
      own_key = _gsm_etcd_view_lookup_session (view, self->own_session_id);
      if (own != NULL && !_gsm_session_is_stale (own) &&
          (own_key == NULL || own_key->lease != lease_id))
        _gsm_registry_txn_put (txn, own);

      if (g_hash_table_size (_gsm_registry_txn_get_changes (txn)) == 0)
        return _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (view));

      if (!plan_txn (self, view, txn, lease_id, &plan, error))
        {
          plan_clear (&plan);
          return NULL;
        }

      body = txn_body (&plan);
      response = post_sync (self, "/v3/kv/txn", body, cancellable, &local_error);
      if (response != NULL && response->succeeded)
        {
          GsmRegistrySnapshot *result = _gsm_registry_txn_apply (txn, (guint64) response->revision);

          remember_writes (self, &plan, response->revision);
          plan_clear (&plan);
          return result;
        }
      plan_clear (&plan);

      /* What the transaction found differs from our view: decide again on
       * a read of the store itself. */
      fresh = TRUE;

      if (response == NULL)
        {
          if (!g_error_matches (local_error, GSM_ERROR, GSM_ERROR_OWNERSHIP_LAPSED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          /* Our lease expired under us: take a new one and start over. */
          g_mutex_lock (&self->mutex);
          mark_lease_lost_locked (self, lease_id);
          g_mutex_unlock (&self->mutex);
        }

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
gsm_etcd_registry_load (GsmRegistry   *registry,
                        GCancellable  *cancellable,
                        GError       **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);
  g_autoptr(GsmEtcdView) view = load_view (self, FALSE, cancellable, error);

  return view ? _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (view)) : NULL;
}

static GsmRegistrySnapshot *
gsm_etcd_registry_peek (GsmRegistry   *registry,
                        GCancellable  *cancellable,
                        GError       **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);
  GsmRegistrySnapshot *snapshot = NULL;

  g_mutex_lock (&self->mutex);
  if (self->informed && self->view != NULL)
    snapshot = _gsm_registry_snapshot_ref (_gsm_etcd_view_get_snapshot (self->view));
  g_mutex_unlock (&self->mutex);

  return snapshot ? snapshot : gsm_etcd_registry_load (registry, cancellable, error);
}

/* ---- the background thread: keepalive and watch ------------------------ */

/*
 * After our lease lapsed: our entry, as we last wrote it, unless the
 * registry shows it (from the VM key, when the VM key still names us and
 * no reaper claimed it: the update puts it back on the new lease, VM
 * included). Without a VM key of ours, we enter again without the VM.
 */
static gboolean
txn_reenter (GsmRegistryTxn  *txn,
             gpointer         user_data,
             GError         **error)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr(GsmSession) last = NULL;

  if (_gsm_registry_txn_lookup (txn, self->own_session_id) != NULL)
    return TRUE;

  g_mutex_lock (&self->mutex);
  last = self->own_last ? g_object_ref (self->own_last) : NULL;
  g_mutex_unlock (&self->mutex);
  if (last == NULL)
    return TRUE;

  if (gsm_session_get_has_vm (last))
    {
      g_autoptr(GsmSession) without = _gsm_session_without_vm (last);

      _gsm_registry_txn_put (txn, without);
    }
  else
    _gsm_registry_txn_put (txn, last);
  return TRUE;
}

/*
 * In the thread, when the lease is found lost: take a new one and enter
 * again, re-asserting our VM, without waiting for the application's main
 * loop (a process that only makes _sync calls never runs one). Tried again
 * on every keepalive tick until it succeeds.
 */
static void
reenter (GsmEtcdRegistry *self)
{
  g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr(GError) error = NULL;
  gboolean entered;

  g_mutex_lock (&self->mutex);
  entered = self->own_last != NULL;
  g_mutex_unlock (&self->mutex);
  if (!entered || g_atomic_int_get (&self->stopping))
    return;

  snapshot = gsm_etcd_registry_update (GSM_REGISTRY (self), txn_reenter, self, self->cancellable, &error);
  if (snapshot == NULL)
    g_debug ("etcd at %s: entering again after the lease lapsed failed: %s", self->endpoint,
             error->message);
  else
    schedule_emit (self, PENDING_CHANGED);
}

static gboolean
reenter_cb (gpointer user_data)
{
  reenter (user_data);
  return G_SOURCE_REMOVE;
}

/* The watch follows the member that answers: once requests moved away
 * from the member serving the watch (it stopped answering, or refused),
 * the watch is left and opened again, on the member now preferred. etcd
 * sends nothing on a watch without events, so this is how a stalled
 * member is noticed: the keepalive, every TTL/3, asks the preferred member
 * first. */
static void
watch_check_member (GsmEtcdRegistry *self)
{
  if (self->watch_stream == NULL || self->watch_cancellable == NULL ||
      self->watch_member == _gsm_etcd_client_get_preferred (self->client))
    return;

  g_debug ("etcd at %s: leaving the watch on member %u, which no longer answers first",
           self->endpoint, self->watch_member);
  g_cancellable_cancel (self->watch_cancellable);
}

static void
keepalive_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GsmEtcdResponse) response = NULL;
  gint64 lease_id = self->keepalive_lease_id;

  self->n_inflight--;
  self->keepalive_inflight = FALSE;

  response = _gsm_etcd_client_post_finish (self->client, result, &error);
  watch_check_member (self);
  if (response == NULL)
    {
      /* etcd down or restarting: the next tick tries again. */
      if (!g_atomic_int_get (&self->stopping))
        g_debug ("Keepalive of lease %" G_GINT64_FORMAT " failed: %s", lease_id, error->message);
      return;
    }

  if (response->ttl <= 0)
    {
      g_mutex_lock (&self->mutex);
      mark_lease_lost_locked (self, lease_id);
      g_mutex_unlock (&self->mutex);
    }
}

static gboolean
keepalive_tick_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autofree char *body = NULL;
  gint64 lease_id;
  gboolean lost;

  if (self->keepalive_inflight)
    return G_SOURCE_CONTINUE;

  g_mutex_lock (&self->mutex);
  lease_id = self->lease_id;
  lost = self->lease_lost;
  g_mutex_unlock (&self->mutex);
  if (lost)
    {
      reenter (self);
      return G_SOURCE_CONTINUE;
    }

  body = g_strdup_printf ("{\"ID\": \"%" G_GINT64_FORMAT "\"}", lease_id);
  self->keepalive_lease_id = lease_id;
  self->keepalive_inflight = TRUE;
  self->n_inflight++;
  _gsm_etcd_client_post_async (self->client, "/v3/lease/keepalive", body, strlen (body),
                               self->keepalive_timeout_ms, self->cancellable,
                               keepalive_done_cb, self);

  return G_SOURCE_CONTINUE;
}

static void watch_connect (GsmEtcdRegistry *self);

static gboolean
watch_retry_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_clear_pointer (&self->watch_retry_source, g_source_unref);
  watch_connect (self);
  return G_SOURCE_REMOVE;
}

static gboolean
watch_idle_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_clear_pointer (&self->watch_idle_source, g_source_unref);
  g_debug ("etcd at %s: the watch brought nothing for %d s", self->endpoint, WATCH_IDLE_TIMEOUT_S);
  if (self->watch_cancellable != NULL)
    g_cancellable_cancel (self->watch_cancellable);
  return G_SOURCE_REMOVE;
}

/* The stream brought something (or was opened): the idle time starts
 * again; with @on FALSE, it is not counted. */
static void
watch_set_idle (GsmEtcdRegistry *self,
                gboolean         on)
{
  if (self->watch_idle_source != NULL)
    {
      g_source_destroy (self->watch_idle_source);
      g_clear_pointer (&self->watch_idle_source, g_source_unref);
    }
  if (!on)
    return;

  self->watch_idle_source = g_timeout_source_new_seconds (WATCH_IDLE_TIMEOUT_S);
  g_source_set_callback (self->watch_idle_source, watch_idle_cb, self, NULL);
  g_source_set_static_name (self->watch_idle_source, "[gsm] etcd watch idle");
  g_source_attach (self->watch_idle_source, self->context);
}

static void
watch_broken (GsmEtcdRegistry *self,
              const char      *why)
{
  if (g_atomic_int_get (&self->stopping))
    return;

  watch_set_idle (self, FALSE);

  g_debug ("etcd at %s: watch broken (%s); reconnecting in %u ms", self->endpoint, why,
           self->watch_retry_ms);
  g_clear_object (&self->watch_stream);
  if (self->watch_buffer != NULL)
    g_byte_array_set_size (self->watch_buffer, 0);

  if (self->watch_retry_source == NULL)
    {
      self->watch_retry_source = g_timeout_source_new (self->watch_retry_ms);
      g_source_set_callback (self->watch_retry_source, watch_retry_cb, self, NULL);
      g_source_set_static_name (self->watch_retry_source, "[gsm] etcd watch retry");
      g_source_attach (self->watch_retry_source, self->context);
    }
  self->watch_retry_ms = MIN (self->watch_retry_ms * 2, WATCH_RETRY_MAX_MS);
}

/* One message of the stream. FALSE: reconnect. */
static gboolean
watch_handle_line (GsmEtcdRegistry *self,
                   const char      *line,
                   gsize            len)
{
  g_autoptr(GsmEtcdResponse) response = NULL;
  g_autoptr(GError) error = NULL;

  if (len == 0)
    return TRUE;

  if (!_gsm_etcd_response_parse (line, len, &response, &error))
    {
      g_warning ("etcd at %s: watch: %s", self->endpoint, error->message);
      return FALSE;
    }
  if (response->has_error)
    {
      g_debug ("etcd at %s: watch: %s", self->endpoint, response->error_message);
      return FALSE;
    }
  if (response->canceled)
    {
      /* Compacted past where we were: start from now, and read everything
       * again once the new watch is in place. */
      if (response->compact_revision > 0)
        {
          self->watch_revision = 0;
          self->relist = TRUE;
          g_mutex_lock (&self->mutex);
          self->informed = FALSE;
          g_mutex_unlock (&self->mutex);
        }
      else
        {
          /* Refused (etcd restarted, or its users changed): with a new
           * token next time. */
          _gsm_etcd_client_forget_token (self->client);
        }
      schedule_emit (self, PENDING_CHANGED);
      return FALSE;
    }
  if (response->created)
    {
      self->watch_retry_ms = WATCH_RETRY_MIN_MS;
      if (self->relist || self->watch_revision == 0)
        {
          /* Events from here on are delivered: a read now closes the gap
           * (the events it already shows are skipped below). */
          g_autoptr(GsmEtcdView) view = range_view (self, self->cancellable, NULL);

          if (view == NULL)
            return FALSE;
          self->relist = FALSE;
          self->watch_revision = _gsm_etcd_view_get_revision (view);
          schedule_emit (self, PENDING_CHANGED);
        }
      g_mutex_lock (&self->mutex);
      self->informed = TRUE;
      g_mutex_unlock (&self->mutex);
      self->n_watch_connects++;
    }
  if (response->events->len > 0)
    {
      g_mutex_lock (&self->mutex);
      if (self->view != NULL)
        {
          GsmEtcdViewContext ctx = view_context (self);
          gint64 at = _gsm_etcd_view_get_revision (self->view);
          g_autoptr(GPtrArray) newer = g_ptr_array_new ();

          /* What the view already shows (it came from a read at a later
           * revision than the watch) is not applied twice. */
          for (guint i = 0; i < response->events->len; i++)
            {
              GsmEtcdEvent *ev = response->events->pdata[i];

              if (ev->kv->mod_revision > at)
                g_ptr_array_add (newer, ev);
            }
          if (newer->len > 0)
            {
              g_autoptr(GsmEtcdView) view =
                _gsm_etcd_view_apply_events (&ctx, self->view, newer, response->revision);

              set_view_locked (self, view);
            }
        }
      g_mutex_unlock (&self->mutex);
      schedule_emit (self, PENDING_CHANGED);
    }
  if (response->revision > self->watch_revision)
    self->watch_revision = response->revision;
  if (self->informed)
    {
      /* Progress with no event of ours: the view is as recent. */
      g_mutex_lock (&self->mutex);
      if (self->view != NULL && response->revision > _gsm_etcd_view_get_revision (self->view) &&
          response->events->len == 0 && !response->created)
        {
          GsmEtcdViewContext ctx = view_context (self);
          g_autoptr(GPtrArray) none = g_ptr_array_new ();
          g_autoptr(GsmEtcdView) view =
            _gsm_etcd_view_apply_events (&ctx, self->view, none, response->revision);

          set_view_locked (self, view);
        }
      g_mutex_unlock (&self->mutex);
    }

  return TRUE;
}

static void watch_read (GsmEtcdRegistry *self);

/* Handles the whole lines of what the stream brought. FALSE: the watch
 * broke. */
static gboolean
watch_take (GsmEtcdRegistry *self,
            GBytes          *bytes)
{
  const guint8 *data;
  gsize len, start = 0;

  data = g_bytes_get_data (bytes, &len);
  g_byte_array_append (self->watch_buffer, data, (guint) len);
  for (gsize i = 0; i < self->watch_buffer->len; i++)
    if (self->watch_buffer->data[i] == '\n')
      {
        if (!watch_handle_line (self, (const char *) self->watch_buffer->data + start, i - start))
          {
            watch_broken (self, "invalid message");
            return FALSE;
          }
        start = i + 1;
      }
  g_byte_array_remove_range (self->watch_buffer, 0, (guint) start);

  if (self->watch_buffer->len > GSM_ETCD_MAX_RESPONSE)
    {
      watch_broken (self, "message too large");
      return FALSE;
    }

  return TRUE;
}

static void
watch_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  self->n_inflight--;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (bytes == NULL)
    {
      watch_broken (self, error->message);
      return;
    }
  if (g_atomic_int_get (&self->stopping))
    return;
  if (g_bytes_get_size (bytes) == 0)
    {
      watch_broken (self, "end of stream");
      return;
    }

  watch_set_idle (self, TRUE);
  if (watch_take (self, bytes))
    watch_read (self);
}

static void
watch_read (GsmEtcdRegistry *self)
{
  self->n_inflight++;
  g_input_stream_read_bytes_async (self->watch_stream, 64 * 1024, G_PRIORITY_DEFAULT,
                                   self->watch_cancellable, watch_read_cb, self);
}

static void
watch_sent_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GBytes) first = NULL;

  self->n_inflight--;

  stream = _gsm_etcd_client_open_stream_finish (self->client, result, &self->watch_member,
                                                &first, &error);
  if (stream == NULL)
    {
      watch_broken (self, error->message);
      return;
    }
  if (g_atomic_int_get (&self->stopping))
    return;

  self->watch_stream = g_steal_pointer (&stream);
  g_clear_object (&self->watch_cancellable);
  self->watch_cancellable = g_cancellable_new ();
  if (self->watch_buffer == NULL)
    self->watch_buffer = g_byte_array_new ();
  g_byte_array_set_size (self->watch_buffer, 0);
  watch_set_idle (self, TRUE);
  if (watch_take (self, first))
    watch_read (self);
}

static void
watch_connect (GsmEtcdRegistry *self)
{
  g_autofree char *key = g_strconcat (self->prefix, "/", NULL);
  g_autofree char *end = prefix_end (key);
  g_autoptr(GString) body = g_string_new ("{\"create_request\": {\"key\": ");

  if (g_atomic_int_get (&self->stopping))
    return;

  append_base64 (body, key, strlen (key));
  g_string_append (body, ", \"range_end\": ");
  append_base64 (body, end, strlen (end));
  if (self->watch_revision > 0)
    g_string_append_printf (body, ", \"start_revision\": \"%" G_GINT64_FORMAT "\"",
                            self->watch_revision + 1);
  /* etcd then also says how far it got when there is nothing to say. */
  g_string_append (body, ", \"progress_notify\": true}}");

  self->n_inflight++;
  _gsm_etcd_client_open_stream_async (self->client, "/v3/watch", body->str, body->len,
                                      self->keepalive_timeout_ms, self->cancellable,
                                      watch_sent_cb, self);
}

static gboolean
watch_start_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  if (!self->watching)
    {
      self->watching = TRUE;
      watch_connect (self);
    }
  return G_SOURCE_REMOVE;
}

static gpointer
thread_func (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_main_context_push_thread_default (self->context);

  /* A reader holds no lease: it only watches. */
  if (self->own_session_id == NULL)
    goto run;

  self->keepalive_source = g_timeout_source_new (MAX (self->ttl * 1000 / 3, 100));
  g_source_set_callback (self->keepalive_source, keepalive_tick_cb, self, NULL);
  g_source_set_static_name (self->keepalive_source, "[gsm] etcd lease keepalive");
  g_source_attach (self->keepalive_source, self->context);

run:
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
gsm_etcd_registry_start_watch (GsmRegistry  *registry,
                               GError      **error)
{
  GsmEtcdRegistry *self = GSM_ETCD_REGISTRY (registry);

  start_informer (self);
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
_gsm_etcd_registry_new (const char    *uri,
                        const char    *own_session_id,
                        double         lease_ttl,
                        double         timeout,
                        GCancellable  *cancellable,
                        GError       **error)
{
  g_autoptr(GsmEtcdRegistry) self = NULL;
  GsmEtcdClient *client;
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

  if (own_session_id != NULL && !grant_lease (self, cancellable, error))
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
      g_autoptr(GsmEtcdView) view = load_view (self, FALSE, cancellable, error);

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
_gsm_etcd_registry_append_audit (GsmEtcdRegistry  *self,
                                 const char       *line,
                                 GError          **error)
{
  g_autoptr(GString) grant = g_string_new (NULL);
  g_autoptr(GString) body = g_string_new ("{\"key\": ");
  g_autoptr(GsmEtcdResponse) lease = NULL;
  g_autoptr(GsmEtcdResponse) put = NULL;
  g_autofree char *key = NULL;

  g_string_printf (grant, "{\"TTL\": %d}", AUDIT_TTL);
  lease = post_sync (self, "/v3/lease/grant", grant, NULL, error);
  if (lease == NULL)
    return FALSE;

  /* Ordered by time, then unique. */
  key = g_strdup_printf ("%s/audit/%016" G_GINT64_MODIFIER "x-%08x", self->prefix,
                         g_get_real_time (), g_random_int ());
  append_base64 (body, key, strlen (key));
  g_string_append (body, ", \"value\": ");
  append_base64 (body, line, strlen (line));
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
_gsm_etcd_registry_read_audit (GsmEtcdRegistry  *self,
                               GError          **error)
{
  g_autofree char *key = g_strconcat (self->prefix, "/audit/", NULL);
  g_autofree char *end = prefix_end (key);
  g_autoptr(GString) body = g_string_new ("{\"key\": ");
  g_autoptr(GsmEtcdResponse) response = NULL;
  GPtrArray *lines;

  append_base64 (body, key, strlen (key));
  g_string_append (body, ", \"range_end\": ");
  append_base64 (body, end, strlen (end));
  g_string_append (body, "}");
  response = post_sync (self, "/v3/kv/range", body, NULL, error);
  if (response == NULL)
    return NULL;

  lines = g_ptr_array_new ();
  for (guint i = 0; i < response->kvs->len; i++)
    {
      GsmEtcdKv *kv = response->kvs->pdata[i];
      gsize len;
      const char *data = g_bytes_get_data (kv->value, &len);

      if (data != NULL && len > 0 && memchr (data, '\0', len) == NULL)
        g_ptr_array_add (lines, g_strndup (data, len));
    }
  g_ptr_array_add (lines, NULL);
  return (char **) g_ptr_array_free (lines, FALSE);
}
