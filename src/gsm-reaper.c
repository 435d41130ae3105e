/* gsm-reaper.c: GsmReaper
 *
 * A pass finds the VMs of dead sessions and deletes each through the
 * provider. For each VM, three steps:
 *
 *  1. claim, under the registry lock: the entry must still be there with
 *     the same VM, its owner must still be dead (checked again now), the
 *     grace period and any backoff must be over, and no live reaper may
 *     hold a claim on it. The claim ("reap_claim": who, when, until when)
 *     is written into the entry, so that no other reaper (process or
 *     host) deletes the VM too, and no session can take the VM over.
 *  2. delete, without the lock: run the provider command.
 *  3. settle, under the lock, if the claim is still ours: on success (or
 *     "not found") the entry goes; on failure the claim is dropped and the
 *     attempt recorded ("reap_attempts": count, last error, next retry).
 *
 * Every attempt is appended to the audit log.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "gsm-audit-private.h"
#include "gsm-error.h"
#include "gsm-process-private.h"
#include "gsm-provider-private.h"
#include "gsm-reaper.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define DEFAULT_GRACE 10.0
#define DEFAULT_BACKOFF 30.0
#define MAX_BACKOFF 3600.0
/* A claim outlives the provider's timeout by this much. */
#define CLAIM_MARGIN 60.0
#define CLAIM_MEMBER "reap_claim"
#define ATTEMPTS_MEMBER "reap_attempts"

/**
 * GsmReaper:
 *
 * Deletes the VMs of dead sessions (orphans) through a [class@Gsm.Provider]
 * and removes their registry entries.
 *
 * An orphan is the VM of a session that the registry records as `stale`
 * (see [method@Gsm.SessionManager.cleanup_stale_sessions]) or that is
 * dead but not yet recorded so. A VM is deleted only when, checked again
 * right before the deletion under the registry lock:
 *
 * - its owner is dead: a session whose liveness cannot be decided from
 *   this host (another host, no start time recorded) counts as dead only
 *   after the session expiry (`GSM_SESSION_EXPIRY`);
 * - the grace period ([property@Gsm.Reaper:grace-period]) since the
 *   session was first found dead is over;
 * - after failed attempts, the backoff is over;
 * - no other live reaper claimed it. Each VM is claimed in the registry
 *   before it is deleted, so two reapers (two processes, two hosts, or a
 *   daemon and a command line) never delete the same VM twice; the claim
 *   of a reaper that died can be taken over.
 *
 * A deletion that fails keeps the entry, records the attempt and is
 * retried after an exponential backoff ([property@Gsm.Reaper:backoff],
 * doubling up to an hour). A VM the provider reports as not found is gone:
 * its entry is removed. Every attempt is appended to the audit log
 * ([property@Gsm.Reaper:audit-log]), one JSON object per line.
 *
 * Signals are emitted in the main context that was the thread-default one
 * when the reaper was created.
 *
 * The grace period and backoff come from `GSM_REAP_GRACE` and
 * `GSM_REAP_BACKOFF` (seconds), else keys `grace-period` and `backoff` of
 * group `[reaper]` of the configuration file (see [class@Gsm.Provider]).
 *
 * Since: 1.0
 */
struct _GsmReaper
{
  GObject            parent_instance;

  GMainContext      *context;
  GsmSessionManager *manager;
  GFile             *audit_log;
  guint64            start_time;
  char              *boot_id;

  GMutex             mutex;          /* guards the fields below */
  GsmProvider       *provider;
  double             grace_period;
  double             backoff;
};

enum {
  PROP_0,
  PROP_MANAGER,
  PROP_PROVIDER,
  PROP_GRACE_PERIOD,
  PROP_BACKOFF,
  PROP_AUDIT_LOG,
  N_PROPS
};

enum {
  VM_REAPED,
  REAP_FAILED,
  REAP_SKIPPED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];
static GPrivate in_worker;

G_DEFINE_FINAL_TYPE (GsmReaper, gsm_reaper, G_TYPE_OBJECT)

/* ---- signals, in the owner context ------------------------------------ */

typedef struct
{
  guint              signal_id;
  GsmVm             *vm;
  GsmProviderResult *result;
  GError            *error;
  char              *reason;
} Emission;

static void
emission_free (gpointer data)
{
  Emission *e = data;

  g_clear_object (&e->vm);
  g_clear_object (&e->result);
  g_clear_error (&e->error);
  g_free (e->reason);
  g_free (e);
}

typedef struct
{
  GsmReaper *self;
  GPtrArray *emissions;
} Events;

static void
events_free (gpointer data)
{
  Events *ev = data;

  g_ptr_array_unref (ev->emissions);
  g_object_unref (ev->self);
  g_free (ev);
}

static gboolean
emit_cb (gpointer data)
{
  Events *ev = data;

  for (guint i = 0; i < ev->emissions->len; i++)
    {
      Emission *e = ev->emissions->pdata[i];

      if (e->signal_id == signals[VM_REAPED])
        g_signal_emit (ev->self, e->signal_id, 0, e->vm, e->result);
      else if (e->signal_id == signals[REAP_FAILED])
        g_signal_emit (ev->self, e->signal_id, 0, e->vm, e->error);
      else
        g_signal_emit (ev->self, e->signal_id, 0, e->vm, e->reason);
    }

  return G_SOURCE_REMOVE;
}

static void
emit_later (GsmReaper *self,
            GPtrArray *emissions)
{
  Events *ev;

  if (emissions->len == 0)
    return;

  ev = g_new0 (Events, 1);
  ev->self = g_object_ref (self);
  ev->emissions = g_ptr_array_ref (emissions);

  if (g_private_get (&in_worker) == NULL)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, emit_cb, ev, events_free);
  else
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, emit_cb, ev, events_free);
      g_source_set_static_name (source, "[gsm] reaper signals");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

/* ---- claims and attempts ------------------------------------------------ */

static double
round_up (double seconds)
{
  double whole = (double) (gint64) seconds;

  return whole < seconds ? whole + 1 : whole;
}

static double
now_seconds (void)
{
  return g_get_real_time () / (double) G_USEC_PER_SEC;
}

static double
member_double (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return json_node_get_double (node);
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  return 0;
}

static const char *
member_string (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static JsonObject *
get_object_member (GsmSession *session,
                   const char *name)
{
  JsonNode *node = _gsm_session_get_member (session, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
}

static guint
get_attempts (GsmSession *session)
{
  JsonObject *attempts = get_object_member (session, ATTEMPTS_MEMBER);
  double count = attempts ? member_double (attempts, "count") : 0;

  return count > 0 && count < G_MAXUINT ? (guint) count : 0;
}

static double
get_next_retry (GsmSession *session)
{
  JsonObject *attempts = get_object_member (session, ATTEMPTS_MEMBER);

  return attempts ? member_double (attempts, "next_retry_at") : 0;
}

static JsonNode *
make_claim (GsmReaper  *self,
            const char *token,
            double      now,
            double      timeout)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, token);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, getpid ());
  json_builder_set_member_name (b, "start_time");
  json_builder_add_int_value (b, (gint64) self->start_time);
  json_builder_set_member_name (b, "host");
  json_builder_add_string_value (b, gsm_session_manager_get_hostname (self->manager));
  if (self->boot_id != NULL)
    {
      json_builder_set_member_name (b, "boot_id");
      json_builder_add_string_value (b, self->boot_id);
    }
  json_builder_set_member_name (b, "at");
  json_builder_add_double_value (b, now);
  json_builder_set_member_name (b, "expires_at");
  json_builder_add_double_value (b, now + (timeout > 0 ? timeout : 24 * 3600.0) + CLAIM_MARGIN);
  json_builder_end_object (b);

  return json_builder_get_root (b);
}

/*
 * Does @session carry a claim by a reaper that may still be deleting its
 * VM? The claim of a reaper known dead does not count; one whose liveness
 * cannot be decided here counts until it expires.
 */
static gboolean
claim_blocks (GsmReaper  *self,
              GsmSession *session,
              double      now,
              char      **holder)
{
  JsonObject *claim = get_object_member (session, CLAIM_MEMBER);
  g_autoptr(GsmSession) claimer = NULL;
  const char *host;
  double pid, start_time;
  gboolean blocks;

  if (claim == NULL)
    return FALSE;

  host = member_string (claim, "host");
  pid = member_double (claim, "pid");
  start_time = member_double (claim, "start_time");

  if (host == NULL || pid < 2 || pid > G_MAXINT)
    blocks = now < member_double (claim, "expires_at");
  else if ((int) pid == getpid () && (guint64) start_time == self->start_time &&
           g_strcmp0 (host, gsm_session_manager_get_hostname (self->manager)) == 0)
    blocks = TRUE;   /* another pass of this process */
  else
    {
      claimer = _gsm_session_new ("reap-claim", (int) pid, host, member_double (claim, "at"),
                                  (guint64) start_time, member_string (claim, "boot_id"));
      switch (_gsm_liveness_probe_check (_gsm_session_manager_get_probe (self->manager), claimer))
        {
        case GSM_LIVENESS_ALIVE:
          blocks = TRUE;
          break;
        case GSM_LIVENESS_DEAD:
          blocks = FALSE;
          break;
        case GSM_LIVENESS_UNKNOWN:
        default:
          blocks = now < member_double (claim, "expires_at");
          break;
        }
    }

  if (blocks && holder != NULL)
    *holder = g_strdup_printf ("reaper pid %.0f on %s", pid, host ? host : "?");
  return blocks;
}

/* Never delete a VM that a live session also records as its own: TRUE
 * if @other is such a session for @entry's VM. */
static gboolean
records_it_too (GsmReaper  *self,
                GsmSession *entry,
                GsmSession *other)
{
  return other != entry &&
         g_strcmp0 (gsm_session_get_session_id (other), gsm_session_get_session_id (entry)) != 0 &&
         g_strcmp0 (gsm_session_get_vm_id (other), gsm_session_get_vm_id (entry)) == 0 &&
         !_gsm_session_manager_is_session_dead (self->manager, other);
}

static char *
records_it_too_reason (GsmSession *other)
{
  return g_strdup_printf ("live session %s records it too", gsm_session_get_session_id (other));
}

/*
 * Why @entry's VM may not be deleted now, or %NULL if it may, leaving out
 * the other sessions that record the same VM (see records_it_too()).
 */
static char *
check_eligible (GsmReaper  *self,
                GsmSession *entry,
                double      now,
                double      grace)
{
  g_autofree char *holder = NULL;
  const char *vm_id = gsm_session_get_vm_id (entry);
  double stale_since = gsm_session_get_stale_since (entry);
  double next_retry = get_next_retry (entry);

  if (vm_id == NULL)
    return g_strdup ("it owns no VM");
  if (g_strcmp0 (gsm_session_get_session_id (entry),
                 gsm_session_manager_get_session_id (self->manager)) == 0)
    return g_strdup ("it is this process's own session");
  if (!_gsm_session_manager_is_session_dead (self->manager, entry))
    return g_strdup ("its owner is alive, or cannot be checked from this host before the "
                     "session expiry");
  if (stale_since <= 0 || now - stale_since < grace)
    return g_strdup_printf ("grace period: %.0f s left",
                            round_up (grace - MAX (now - stale_since, 0)));
  if (next_retry > now)
    return g_strdup_printf ("backing off after %u failed attempt%s: retry in %.0f s",
                            get_attempts (entry), get_attempts (entry) == 1 ? "" : "s",
                            round_up (next_retry - now));
  if (claim_blocks (self, entry, now, &holder))
    return g_strdup_printf ("being deleted by %s", holder);

  return NULL;
}

/* ---- the registry transactions ----------------------------------------- */

typedef struct
{
  GsmReaper  *self;
  const char *session_id;
  const char *vm_id;
  double      now;
  double      grace;
  JsonNode   *claim;
  const char *token;
  /* out */
  char       *skip_reason;
  GsmSession *claimed;
  /* settle */
  gboolean    succeeded;
  const char *error_message;
  const char *outcome;
  double      backoff;
  gboolean    settled;
} ReapCtx;

static gboolean
txn_claim (GsmRegistryTxn  *txn,
           gpointer         user_data,
           GError         **error)
{
  ReapCtx *c = user_data;
  GsmSession *entry = _gsm_registry_txn_lookup (txn, c->session_id);
  g_autoptr(GsmSession) claimed = NULL;
  GsmRegistrySnapshotIter iter;
  GsmSession *other;

  if (entry == NULL || g_strcmp0 (gsm_session_get_vm_id (entry), c->vm_id) != 0)
    {
      c->skip_reason = g_strdup ("its entry is gone or the VM was registered again");
      return TRUE;
    }

  if (!_gsm_session_is_stale (entry))
    {
      g_autoptr(GsmSession) marked = NULL;

      if (!_gsm_session_manager_is_session_dead (c->self->manager, entry))
        {
          c->skip_reason = g_strdup ("its owner is alive");
          return TRUE;
        }
      /* Record when it was first found dead: the grace period starts. */
      marked = _gsm_session_with_stale (entry, c->now);
      _gsm_registry_txn_put (txn, marked);
      entry = _gsm_registry_txn_lookup (txn, c->session_id);
    }

  c->skip_reason = check_eligible (c->self, entry, c->now, c->grace);
  if (c->skip_reason != NULL)
    return TRUE;
  _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &other))
    if (records_it_too (c->self, entry, other))
      {
        c->skip_reason = records_it_too_reason (other);
        return TRUE;
      }

  claimed = _gsm_session_with_member (entry, CLAIM_MEMBER, c->claim);
  _gsm_registry_txn_put (txn, claimed);
  c->claimed = g_object_ref (claimed);

  return TRUE;
}

static JsonNode *
make_attempts (ReapCtx *c,
               guint    count)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  double delay = c->backoff;

  for (guint i = 1; i < count && delay < MAX_BACKOFF; i++)
    delay *= 2;
  delay = MIN (delay, MAX_BACKOFF);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "count");
  json_builder_add_int_value (b, count);
  json_builder_set_member_name (b, "last_attempt_at");
  json_builder_add_double_value (b, c->now);
  json_builder_set_member_name (b, "last_outcome");
  json_builder_add_string_value (b, c->outcome);
  json_builder_set_member_name (b, "last_error");
  json_builder_add_string_value (b, c->error_message ? c->error_message : "");
  json_builder_set_member_name (b, "next_retry_at");
  json_builder_add_double_value (b, c->now + delay);
  json_builder_end_object (b);

  return json_builder_get_root (b);
}

static gboolean
txn_settle (GsmRegistryTxn  *txn,
            gpointer         user_data,
            GError         **error)
{
  ReapCtx *c = user_data;
  GsmSession *entry = _gsm_registry_txn_lookup (txn, c->session_id);
  JsonObject *claim;

  c->settled = FALSE;
  if (entry == NULL)
    return TRUE;
  claim = get_object_member (entry, CLAIM_MEMBER);
  if (claim == NULL || g_strcmp0 (member_string (claim, "token"), c->token) != 0)
    return TRUE;   /* taken over: the new holder settles it */

  if (c->succeeded)
    _gsm_registry_txn_remove (txn, c->session_id);
  else
    {
      g_autoptr(GsmSession) released = _gsm_session_with_member (entry, CLAIM_MEMBER, NULL);
      g_autoptr(JsonNode) attempts = make_attempts (c, get_attempts (entry) + 1);
      g_autoptr(GsmSession) recorded = _gsm_session_with_member (released, ATTEMPTS_MEMBER, attempts);

      _gsm_registry_txn_put (txn, recorded);
    }
  c->settled = TRUE;

  return TRUE;
}

/* ---- a pass ------------------------------------------------------------- */

static void
add_emission (GPtrArray         *emissions,
              guint              signal_id,
              GsmSession        *session,
              GsmProviderResult *result,
              const GError      *error,
              const char        *reason)
{
  Emission *e = g_new0 (Emission, 1);

  e->signal_id = signal_id;
  e->vm = gsm_session_dup_vm (session);
  e->result = result ? g_object_ref (result) : NULL;
  e->error = error ? g_error_copy (error) : NULL;
  e->reason = g_strdup (reason);
  g_ptr_array_add (emissions, e);
}

static void
get_settings (GsmReaper *self,
              double    *grace,
              double    *backoff)
{
  g_mutex_lock (&self->mutex);
  *grace = self->grace_period;
  *backoff = self->backoff;
  g_mutex_unlock (&self->mutex);
}

static GsmProvider *
dup_provider (GsmReaper  *self,
              GError    **error)
{
  GsmProvider *provider;

  g_mutex_lock (&self->mutex);
  provider = self->provider ? g_object_ref (self->provider) : NULL;
  g_mutex_unlock (&self->mutex);

  if (provider == NULL)
    {
      provider = gsm_provider_new_default (error);
      if (provider == NULL)
        return NULL;
      g_mutex_lock (&self->mutex);
      if (self->provider == NULL)
        self->provider = g_object_ref (provider);
      g_mutex_unlock (&self->mutex);
    }

  return provider;
}

/* Returns FALSE only for an error of the registry (or cancellation). */
static gboolean
reap_one (GsmReaper     *self,
          GsmProvider   *provider,
          GsmSession    *candidate,
          GPtrArray     *emissions,
          guint         *reaped,
          guint         *failed,
          GCancellable  *cancellable,
          GError       **error)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (self->manager);
  g_autofree char *token = g_uuid_string_random ();
  g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr(GsmProviderResult) result = NULL;
  g_autoptr(GError) delete_error = NULL;
  g_autoptr(GError) settle_error = NULL;
  g_autoptr(GError) audit_error = NULL;
  g_autoptr(JsonNode) claim = NULL;
  GsmSession *claimed;
  GsmAuditRecord record = { 0, };
  ReapCtx c = { 0, };
  double backoff;

  c.self = self;
  c.session_id = gsm_session_get_session_id (candidate);
  c.vm_id = gsm_session_get_vm_id (candidate);
  c.now = now_seconds ();
  c.token = token;
  get_settings (self, &c.grace, &backoff);
  claim = make_claim (self, token, c.now, gsm_provider_get_timeout (provider));
  c.claim = claim;

  /* 1. Claim, checking everything again under the lock. */
  _gsm_liveness_probe_dispatch (_gsm_session_manager_get_probe (self->manager));
  snapshot = _gsm_registry_update (registry, txn_claim, &c, cancellable, error);
  if (snapshot == NULL)
    return FALSE;
  if (c.skip_reason != NULL)
    {
      g_debug ("Not reaping VM “%s” of session %s: %s", c.vm_id, c.session_id, c.skip_reason);
      add_emission (emissions, signals[REAP_SKIPPED], candidate, NULL, NULL, c.skip_reason);
      g_free (c.skip_reason);
      return TRUE;
    }
  claimed = c.claimed;

  /* 2. Delete, without the lock. */
  c.succeeded = gsm_provider_delete_vm_sync (provider, c.vm_id, gsm_session_get_zone (claimed),
                                             c.session_id, &result, cancellable, &delete_error);
  c.outcome = result ? gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result))
                     : "failed";
  c.error_message = delete_error ? delete_error->message : NULL;

  /* 3. Settle, whatever happened to the caller's cancellable. */
  c.now = now_seconds ();
  c.backoff = backoff;
  g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);
  snapshot = _gsm_registry_update (registry, txn_settle, &c, NULL, &settle_error);
  if (snapshot == NULL)
    g_warning ("Cannot record the reaping of VM “%s”: %s (its claim stays until this "
               "process exits)", c.vm_id, settle_error->message);

  record.action = "reap";
  record.vm_id = c.vm_id;
  record.zone = gsm_session_get_zone (claimed);
  record.session_id = c.session_id;
  record.pid = gsm_session_get_pid (claimed);
  record.hostname = gsm_session_get_hostname (claimed);
  record.result = result;
  record.outcome = c.outcome;
  record.error_message = c.error_message;
  record.attempt = get_attempts (claimed) + 1;
  if (!_gsm_audit_append (self->manager, &record, &audit_error))
    g_warning ("%s", audit_error->message);

  if (c.succeeded)
    {
      (*reaped)++;
      add_emission (emissions, signals[VM_REAPED], claimed, result, NULL, NULL);
    }
  else
    {
      (*failed)++;
      add_emission (emissions, signals[REAP_FAILED], claimed, NULL, delete_error, NULL);
    }
  g_object_unref (claimed);

  if (g_error_matches (delete_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_propagate_error (error, g_steal_pointer (&delete_error));
      return FALSE;
    }

  return TRUE;
}

static int
compare_sessions (gconstpointer a,
                  gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;
  double d = gsm_session_get_stale_since (x) - gsm_session_get_stale_since (y);

  if (d != 0)
    return d < 0 ? -1 : 1;
  return g_strcmp0 (gsm_session_get_vm_id (x), gsm_session_get_vm_id (y));
}

static GPtrArray *
list_orphans (GsmReaper     *self,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autoptr(GHashTable) table = NULL;
  GPtrArray *orphans;
  GHashTableIter iter;
  gpointer value;
  double now;
  double grace, backoff;

  get_settings (self, &grace, &backoff);

  table = gsm_session_manager_list_sessions_sync (self->manager, cancellable, error);
  if (table == NULL)
    return NULL;
  /* After the listing, which shows newly dead sessions as dead from now. */
  now = now_seconds ();

  _gsm_liveness_probe_dispatch (_gsm_session_manager_get_probe (self->manager));
  orphans = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      g_autofree char *reason = NULL;

      if (!gsm_session_get_has_vm (value))
        continue;
      reason = check_eligible (self, value, now, grace);
      if (reason == NULL)
        {
          GHashTableIter others;
          gpointer other;

          g_hash_table_iter_init (&others, table);
          while (reason == NULL && g_hash_table_iter_next (&others, NULL, &other))
            if (records_it_too (self, value, other))
              reason = records_it_too_reason (other);
        }
      if (reason == NULL)
        g_ptr_array_add (orphans, g_object_ref (value));
      else
        g_debug ("VM “%s” of session %s is not reaped now: %s", gsm_session_get_vm_id (value),
                 gsm_session_get_session_id (value), reason);
    }
  g_ptr_array_sort (orphans, compare_sessions);

  return orphans;
}

typedef struct
{
  GPtrArray *orphans;   /* nullable */
  guint      reaped;
  guint      failed;
} ReapData;

static void
reap_data_free (gpointer data)
{
  ReapData *d = data;

  g_clear_pointer (&d->orphans, g_ptr_array_unref);
  g_free (d);
}

static gboolean
reap (GsmReaper     *self,
      ReapData      *d,
      GCancellable  *cancellable,
      GError       **error)
{
  g_autoptr(GsmProvider) provider = NULL;
  g_autoptr(GPtrArray) orphans = NULL;
  g_autoptr(GPtrArray) emissions = g_ptr_array_new_with_free_func (emission_free);
  gboolean ok = TRUE;

  provider = dup_provider (self, error);
  if (provider == NULL)
    return FALSE;

  if (d->orphans != NULL)
    orphans = g_ptr_array_ref (d->orphans);
  else
    {
      /* Record newly dead sessions first: their grace period starts. */
      if (gsm_session_manager_cleanup_stale_sessions_sync (self->manager, cancellable, error) < 0)
        return FALSE;
      orphans = list_orphans (self, cancellable, error);
      if (orphans == NULL)
        return FALSE;
    }

  for (guint i = 0; i < orphans->len && ok; i++)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        ok = FALSE;
      else
        ok = reap_one (self, provider, orphans->pdata[i], emissions, &d->reaped, &d->failed,
                       cancellable, error);
    }

  emit_later (self, emissions);

  return ok;
}

/* ---- GObject ------------------------------------------------------------ */

static void
gsm_reaper_constructed (GObject *object)
{
  GsmReaper *self = GSM_REAPER (object);
  g_autoptr(GKeyFile) key_file = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  char state;
  int saved_errno;

  G_OBJECT_CLASS (gsm_reaper_parent_class)->constructed (object);

  g_assert (self->manager != NULL);
  self->context = g_main_context_ref_thread_default ();
  if (!_gsm_process_read_stat (getpid (), &state, &self->start_time, &saved_errno))
    self->start_time = 0;
  if (*_gsm_process_get_boot_id () != '\0')
    self->boot_id = g_strdup (_gsm_process_get_boot_id ());
  path = _gsm_audit_get_path (self->manager);
  self->audit_log = g_file_new_for_path (path);

  key_file = _gsm_config_load (&error);
  if (key_file == NULL)
    g_warning ("%s", error->message);
  self->grace_period = _gsm_config_get_seconds (key_file, "reaper", "grace-period",
                                                "GSM_REAP_GRACE", DEFAULT_GRACE);
  self->backoff = _gsm_config_get_seconds (key_file, "reaper", "backoff",
                                           "GSM_REAP_BACKOFF", DEFAULT_BACKOFF);
}

static void
gsm_reaper_finalize (GObject *object)
{
  GsmReaper *self = GSM_REAPER (object);

  g_clear_object (&self->manager);
  g_clear_object (&self->provider);
  g_clear_object (&self->audit_log);
  g_free (self->boot_id);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (gsm_reaper_parent_class)->finalize (object);
}

static void
gsm_reaper_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  GsmReaper *self = GSM_REAPER (object);

  switch (prop_id)
    {
    case PROP_MANAGER:
      g_value_set_object (value, self->manager);
      break;
    case PROP_PROVIDER:
      g_mutex_lock (&self->mutex);
      g_value_set_object (value, self->provider);
      g_mutex_unlock (&self->mutex);
      break;
    case PROP_GRACE_PERIOD:
      g_value_set_double (value, gsm_reaper_get_grace_period (self));
      break;
    case PROP_BACKOFF:
      g_value_set_double (value, gsm_reaper_get_backoff (self));
      break;
    case PROP_AUDIT_LOG:
      g_value_set_object (value, self->audit_log);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_reaper_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  GsmReaper *self = GSM_REAPER (object);

  switch (prop_id)
    {
    case PROP_MANAGER:
      self->manager = g_value_dup_object (value);
      break;
    case PROP_PROVIDER:
      self->provider = g_value_dup_object (value);
      break;
    case PROP_GRACE_PERIOD:
      gsm_reaper_set_grace_period (self, g_value_get_double (value));
      break;
    case PROP_BACKOFF:
      gsm_reaper_set_backoff (self, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_reaper_class_init (GsmReaperClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = gsm_reaper_constructed;
  object_class->finalize = gsm_reaper_finalize;
  object_class->get_property = gsm_reaper_get_property;
  object_class->set_property = gsm_reaper_set_property;

  /**
   * GsmReaper:manager:
   *
   * The session manager whose registry is reaped.
   *
   * Since: 1.0
   */
  properties[PROP_MANAGER] =
    g_param_spec_object ("manager", NULL, NULL, GSM_TYPE_SESSION_MANAGER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * GsmReaper:provider:
   *
   * The provider that deletes VMs; %NULL until the first pass if the
   * reaper was created without one (it then uses
   * [ctor@Gsm.Provider.new_default]).
   *
   * Since: 1.0
   */
  properties[PROP_PROVIDER] =
    g_param_spec_object ("provider", NULL, NULL, GSM_TYPE_PROVIDER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * GsmReaper:grace-period:
   *
   * How long after a session was first found dead its VM is left alone,
   * in seconds (so that a slow restart, or a registration during a pass,
   * is not reaped).
   *
   * Since: 1.0
   */
  properties[PROP_GRACE_PERIOD] =
    g_param_spec_double ("grace-period", NULL, NULL, 0, 10 * 365 * 24 * 3600.0, DEFAULT_GRACE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:backoff:
   *
   * The delay before retrying a failed deletion, in seconds; it doubles
   * with every further failure, up to an hour.
   *
   * Since: 1.0
   */
  properties[PROP_BACKOFF] =
    g_param_spec_double ("backoff", NULL, NULL, 0, MAX_BACKOFF, DEFAULT_BACKOFF,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:audit-log:
   *
   * The audit log, `reap_audit.log` in the runtime directory (with the
   * file prefix): one JSON object per line and per attempt, with members
   * `time`, `timestamp`, `action` (`reap`, or `cleanup` for a session
   * deleting its own VM), `vm`, `zone`, `owner` (`session`, `pid`,
   * `host`), `command` (the argument vector), `exit_status`, `outcome`
   * (`deleted`, `not-found`, `failed`, `timed-out`, `cancelled`), `error`,
   * `attempt` and `by` (the session that acted).
   *
   * Since: 1.0
   */
  properties[PROP_AUDIT_LOG] =
    g_param_spec_object ("audit-log", NULL, NULL, G_TYPE_FILE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GsmReaper::vm-reaped:
   * @self: the reaper
   * @vm: the VM, as its dead owner recorded it
   * @result: what the provider command did
   *
   * Emitted when a VM was deleted (or the provider reported it gone) and
   * its entry removed.
   *
   * Since: 1.0
   */
  signals[VM_REAPED] =
    g_signal_new ("vm-reaped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_VM, GSM_TYPE_PROVIDER_RESULT);

  /**
   * GsmReaper::reap-failed:
   * @self: the reaper
   * @vm: the VM
   * @error: why it could not be deleted
   *
   * Emitted when deleting a VM failed; its entry stays and the deletion
   * is retried after the backoff.
   *
   * Since: 1.0
   */
  signals[REAP_FAILED] =
    g_signal_new ("reap-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_VM, G_TYPE_ERROR);

  /**
   * GsmReaper::reap-skipped:
   * @self: the reaper
   * @vm: the VM
   * @reason: why it was left alone
   *
   * Emitted when a VM of the list given to [method@Gsm.Reaper.reap] was
   * left alone after all, because the checks made right before deleting
   * it failed (its owner is alive again, another reaper claimed it, …).
   *
   * Since: 1.0
   */
  signals[REAP_SKIPPED] =
    g_signal_new ("reap-skipped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_VM, G_TYPE_STRING);
}

static void
gsm_reaper_init (GsmReaper *self)
{
  g_mutex_init (&self->mutex);
  self->grace_period = DEFAULT_GRACE;
  self->backoff = DEFAULT_BACKOFF;
}

/* ---- public ------------------------------------------------------------- */

/**
 * gsm_reaper_new:
 * @manager: the session manager
 * @provider: (nullable): the provider that deletes VMs, or %NULL for the
 *   configured one
 *
 * Creates a reaper for @manager's registry.
 *
 * Returns: (transfer full): a new reaper
 *
 * Since: 1.0
 */
GsmReaper *
gsm_reaper_new (GsmSessionManager *manager,
                GsmProvider       *provider)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (manager), NULL);
  g_return_val_if_fail (provider == NULL || GSM_IS_PROVIDER (provider), NULL);

  return g_object_new (GSM_TYPE_REAPER, "manager", manager, "provider", provider, NULL);
}

/**
 * gsm_reaper_get_manager:
 * @self: a #GsmReaper
 *
 * Gets the session manager.
 *
 * Returns: (transfer none): the manager
 *
 * Since: 1.0
 */
GsmSessionManager *
gsm_reaper_get_manager (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  return self->manager;
}

/**
 * gsm_reaper_get_provider:
 * @self: a #GsmReaper
 *
 * Gets the provider.
 *
 * Returns: (transfer none) (nullable): the provider, or %NULL before the
 *   first pass of a reaper created without one
 *
 * Since: 1.0
 */
GsmProvider *
gsm_reaper_get_provider (GsmReaper *self)
{
  GsmProvider *provider;

  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  g_mutex_lock (&self->mutex);
  provider = self->provider;
  g_mutex_unlock (&self->mutex);
  return provider;
}

/**
 * gsm_reaper_get_grace_period:
 * @self: a #GsmReaper
 *
 * Gets the grace period.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_grace_period (GsmReaper *self)
{
  double v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  g_mutex_lock (&self->mutex);
  v = self->grace_period;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_grace_period:
 * @self: a #GsmReaper
 * @seconds: the grace period
 *
 * Sets how long after a session was first found dead its VM is left
 * alone.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_grace_period (GsmReaper *self,
                             double     seconds)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0);

  g_mutex_lock (&self->mutex);
  changed = self->grace_period != seconds;
  self->grace_period = seconds;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_GRACE_PERIOD]);
}

/**
 * gsm_reaper_get_backoff:
 * @self: a #GsmReaper
 *
 * Gets the delay before the first retry of a failed deletion.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_backoff (GsmReaper *self)
{
  double v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  g_mutex_lock (&self->mutex);
  v = self->backoff;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_backoff:
 * @self: a #GsmReaper
 * @seconds: the delay, at most 3600
 *
 * Sets the delay before the first retry of a failed deletion; it doubles
 * with each further failure, up to an hour.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_backoff (GsmReaper *self,
                        double     seconds)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0 && seconds <= MAX_BACKOFF);

  g_mutex_lock (&self->mutex);
  changed = self->backoff != seconds;
  self->backoff = seconds;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BACKOFF]);
}

/**
 * gsm_reaper_get_audit_log:
 * @self: a #GsmReaper
 *
 * Gets the audit log file (see [property@Gsm.Reaper:audit-log]).
 *
 * Returns: (transfer none): the file
 *
 * Since: 1.0
 */
GFile *
gsm_reaper_get_audit_log (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  return self->audit_log;
}

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *orphans = list_orphans (source_object, cancellable, &error);

  if (orphans == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, orphans, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * gsm_reaper_list_orphans:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Lists the entries whose VM a pass would delete now: owner dead, grace
 * period and backoff over, not claimed by a live reaper. Changes nothing.
 *
 * Since: 1.0
 */
void
gsm_reaper_list_orphans (GsmReaper           *self,
                         GCancellable        *cancellable,
                         GAsyncReadyCallback  callback,
                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (GSM_IS_REAPER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_reaper_list_orphans);
  g_task_run_in_thread (task, list_thread);
}

/**
 * gsm_reaper_list_orphans_finish:
 * @self: a #GsmReaper
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Reaper.list_orphans].
 *
 * Returns: (transfer container) (element-type GsmSession): the entries,
 *   oldest first, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_list_orphans_finish (GsmReaper     *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_reaper_list_orphans, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_reaper_list_orphans_sync:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Reaper.list_orphans].
 *
 * Returns: (transfer container) (element-type GsmSession): the entries,
 *   oldest first, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_list_orphans_sync (GsmReaper     *self,
                              GCancellable  *cancellable,
                              GError       **error)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return list_orphans (self, cancellable, error);
}

static void
reap_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;

  g_private_set (&in_worker, GINT_TO_POINTER (1));
  if (reap (source_object, task_data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
  g_private_set (&in_worker, NULL);
}

static ReapData *
reap_data_new (GPtrArray *orphans)
{
  ReapData *d = g_new0 (ReapData, 1);

  if (orphans != NULL)
    {
      d->orphans = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < orphans->len; i++)
        g_ptr_array_add (d->orphans, g_object_ref (orphans->pdata[i]));
    }
  return d;
}

/**
 * gsm_reaper_reap:
 * @self: a #GsmReaper
 * @orphans: (nullable) (element-type GsmSession): the entries to act on,
 *   as listed by [method@Gsm.Reaper.list_orphans]; %NULL to first record
 *   newly dead sessions and then act on every orphan
 * @cancellable: (nullable): a #GCancellable; cancelling kills a running
 *   provider command and ends the pass
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Runs a pass: deletes the VM of each orphan through the provider and
 * removes its entry. Nothing outside @orphans is touched, and each entry
 * is checked again right before its VM is deleted (see [class@Gsm.Reaper]).
 * A failed deletion does not end the pass: it is reported by
 * [signal@Gsm.Reaper::reap-failed] and counted.
 *
 * Since: 1.0
 */
void
gsm_reaper_reap (GsmReaper           *self,
                 GPtrArray           *orphans,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (GSM_IS_REAPER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_reaper_reap);
  g_task_set_task_data (task, reap_data_new (orphans), reap_data_free);
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, reap_thread);
}

/**
 * gsm_reaper_reap_finish:
 * @self: a #GsmReaper
 * @result: the #GAsyncResult
 * @out_reaped: (out) (optional): the number of VMs deleted (or reported
 *   gone)
 * @out_failed: (out) (optional): the number of VMs whose deletion failed
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Reaper.reap].
 *
 * Returns: %TRUE if the pass ran to its end (some deletions may have
 *   failed: see @out_failed); %FALSE if the registry could not be used or
 *   the pass was cancelled
 *
 * Since: 1.0
 */
gboolean
gsm_reaper_reap_finish (GsmReaper     *self,
                        GAsyncResult  *result,
                        guint         *out_reaped,
                        guint         *out_failed,
                        GError       **error)
{
  ReapData *d;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_reaper_reap, FALSE);

  d = g_task_get_task_data (G_TASK (result));
  if (out_reaped)
    *out_reaped = d->reaped;
  if (out_failed)
    *out_failed = d->failed;
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_reaper_reap_sync:
 * @self: a #GsmReaper
 * @orphans: (nullable) (element-type GsmSession): the entries to act on,
 *   or %NULL for every orphan
 * @out_reaped: (out) (optional): the number of VMs deleted (or reported
 *   gone)
 * @out_failed: (out) (optional): the number of VMs whose deletion failed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Reaper.reap]. Needs no main loop;
 * called in the reaper's main context, it emits the signals before it
 * returns.
 *
 * Returns: %TRUE if the pass ran to its end
 *
 * Since: 1.0
 */
gboolean
gsm_reaper_reap_sync (GsmReaper     *self,
                      GPtrArray     *orphans,
                      guint         *out_reaped,
                      guint         *out_failed,
                      GCancellable  *cancellable,
                      GError       **error)
{
  ReapData *d;
  gboolean ok;

  g_return_val_if_fail (GSM_IS_REAPER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  d = reap_data_new (orphans);
  ok = reap (self, d, cancellable, error);
  if (out_reaped)
    *out_reaped = d->reaped;
  if (out_failed)
    *out_failed = d->failed;
  reap_data_free (d);

  return ok;
}

/**
 * gsm_reaper_read_history_sync:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the audit log (its last 4 MiB): one JSON object per attempt,
 * oldest first. Lines that are not JSON objects are left out.
 *
 * Returns: (transfer full) (array zero-terminated=1): the records, empty
 *   if there is no log yet, or %NULL with @error set (an unsafe file is
 *   %GSM_ERROR_INSECURE_FILE)
 *
 * Since: 1.0
 */
char **
gsm_reaper_read_history_sync (GsmReaper     *self,
                              GCancellable  *cancellable,
                              GError       **error)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  return _gsm_audit_read (self->manager, error);
}
