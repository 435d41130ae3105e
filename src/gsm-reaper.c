/* gsm-reaper.c: GsmReaper
 *
 * A pass finds the VMs of dead sessions and deletes each through the
 * provider. For each VM, three steps:
 *
 *  1. claim, under the registry lock: the entry must still be there with
 *     the same VM, its owner must still be provably dead (checked again
 *     now, by this host's own probe: a session whose liveness cannot be
 *     proven is reaped only when asked, by age), the grace period and any
 *     backoff must be over, and no reaper may hold a claim on it whose
 *     command may still run. The claim ("reap_claim": who, when, until
 *     when, and once it started the provider command's process group) is
 *     written into the entry, so that no other reaper (process or host)
 *     deletes the VM too, and no session can take the VM over.
 *  2. delete, without the lock: run the provider command, recorded in the
 *     audit log before it starts and again with its outcome.
 *  3. settle, under the lock, if the claim is still ours: on success (or
 *     "not found") the entry goes; on failure the claim is dropped and the
 *     attempt recorded ("reap_attempts": count, last error, next retry).
 *
 * Deletions run concurrently, up to the concurrency limit, and the lock
 * rounds are shared: one round settles every deletion that ended since
 * the last, records the commands that started and claims the next batch,
 * so a pass over thousands of orphans rewrites the registry tens of
 * times, not thousands.
 *
 * Times written by others (when a session was found dead, when to retry,
 * a claim's times) may come from a clock that was ahead: one in the future
 * is never a reason to wait longer than the grace period, the longest
 * backoff or a claim's own duration, and a pass rewrites it as now.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "gsm-audit-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-process-private.h"
#include "gsm-provider-private.h"
#include "gsm-reaper-private.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define DEFAULT_GRACE 10.0
/* With etcd, at least this many lease TTLs: a session cut off from every
 * member is found dead a TTL after its last keepalive, and may still come
 * back (its keepalive tries again every third of a TTL). */
#define FLEET_GRACE_TTLS 2
#define DEFAULT_BACKOFF 30.0
#define MAX_BACKOFF 3600.0
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 256
/* The longest a provider's timeout can be (0, no limit, counts as this). */
#define MAX_PROVIDER_TIMEOUT (24 * 3600.0)
/* A claim outlives the provider's timeout by this much... */
#define CLAIM_MARGIN 60.0
/* ...so its command must start within this much of the claim (monotonic
 * clock), else it is claimed again first. */
#define START_WITHIN (CLAIM_MARGIN / 2)
/* The most VMs claimed ahead of the workers in one round. */
#define MAX_CLAIM_BATCH 1024
/* While all workers are busy, a round waits at least this long after the
 * last one (monotonic µs), to settle more deletions at once. */
#define ROUND_GATHER_US (25 * 1000)
#define CLAIM_MEMBER GSM_REAPER_CLAIM_MEMBER
#define ATTEMPTS_MEMBER GSM_REAPER_ATTEMPTS_MEMBER

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
 * - its owner is provably dead: this host's probe found its process gone
 *   (or, with etcd, its lease expired). A session whose liveness cannot
 *   be proven either way (another host, no start time recorded) is never
 *   reaped, whatever its age, unless asked with
 *   [property@Gsm.Reaper:unverifiable-older-than]: then once its session
 *   is older than that;
 * - the grace period ([property@Gsm.Reaper:grace-period]) since the
 *   session was first found dead is over;
 * - after failed attempts, the backoff is over;
 * - no other reaper's command may still be deleting it. Each VM is
 *   claimed in the registry before it is deleted, so two reapers (two
 *   processes, two hosts, or a daemon and a command line) never delete the
 *   same VM at once. The claim of a reaper that died is taken over once
 *   the provider command it started is provably over (its process group
 *   is gone, which the claim records), or else once the claim's deadline
 *   (its time plus the provider's timeout) passed; the dead reaper's
 *   attempt is then recorded with the outcome `unknown`.
 *
 * A deletion that fails keeps the entry, records the attempt and is
 * retried after an exponential backoff ([property@Gsm.Reaper:backoff],
 * doubling up to [property@Gsm.Reaper:max-backoff]). A VM the provider
 * reports as not found is gone: its entry is removed. Every provider
 * command is appended to the audit log ([property@Gsm.Reaper:audit-log])
 * before it starts, and again with its outcome.
 *
 * A pass runs up to [property@Gsm.Reaper:concurrency] provider commands
 * at once. The provider command runs in a process group of its own and is
 * killed if the reaper dies.
 *
 * Signals are emitted in the main context that was the thread-default one
 * when the reaper was created.
 *
 * A VM the registry never recorded (its process crashed after the cloud
 * made it, before it registered it) is found by
 * [method@Gsm.Reaper.reconcile], which compares the cloud's inventory of
 * the VMs carrying this registry's labels (see
 * [method@Gsm.SessionManager.get_vm_labels]) with the registry, and
 * deletes the orphans among them by the same pass.
 *
 * The settings come from the environment (`GSM_REAP_GRACE`,
 * `GSM_REAP_BACKOFF`, `GSM_REAP_MAX_BACKOFF`, in seconds, and
 * `GSM_REAP_CONCURRENCY`), else from keys `grace-period`, `backoff`,
 * `max-backoff` and `concurrency` of group `[reaper]` of the
 * configuration file (see [class@Gsm.Provider]).
 *
 * Nothing reaps by itself unless key `auto` of group `[reaper]` is `true`
 * (or `GSM_REAP_AUTO=1`): then gsmd reaps and reconciles as with
 * `--reap`, and every new session deletes the VMs of this host's dead
 * sessions in the background (see [func@Gsm.SessionManager.get_default]).
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
  double             max_backoff;
  double             unverifiable_older_than;
  guint              concurrency;
  gboolean           host_only;      /* only this host's sessions */
};

enum {
  PROP_0,
  PROP_MANAGER,
  PROP_PROVIDER,
  PROP_GRACE_PERIOD,
  PROP_BACKOFF,
  PROP_MAX_BACKOFF,
  PROP_CONCURRENCY,
  PROP_UNVERIFIABLE_OLDER_THAN,
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

G_DEFINE_FLAGS_TYPE (GsmReconcileFlags, gsm_reconcile_flags,
                     G_DEFINE_ENUM_VALUE (GSM_RECONCILE_FLAGS_NONE, "none"),
                     G_DEFINE_ENUM_VALUE (GSM_RECONCILE_FLAGS_APPLY, "apply"))

/* ---- signals, in the owner context ------------------------------------ */

typedef struct
{
  guint              signal_id;
  GsmSession             *vm;
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

/* ---- time, claims and attempts ------------------------------------------ */

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

/* A time another writer recorded, never later than @now: a clock that was
 * ahead must not make anyone wait longer than the delay it stands for. */
static double
clamp_past (double t,
            double now)
{
  return t > now ? now : t;
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
member_object (JsonObject *object,
               const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
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

/* The settings a pass works with, read once. */
typedef struct
{
  double grace;
  double backoff;
  double max_backoff;
  double unverifiable;   /* 0: never by age */
  double timeout;        /* the provider's, 0 for none */
  guint  concurrency;
} Settings;

/* How long a claim may hold: the provider's timeout, and a margin. */
static double
claim_duration (double timeout)
{
  return (timeout > 0 ? timeout : MAX_PROVIDER_TIMEOUT) + CLAIM_MARGIN;
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
  json_builder_add_double_value (b, now + claim_duration (timeout));
  json_builder_end_object (b);

  return json_builder_get_root (b);
}

/* A copy of @claim with "provider" (the command's first process, which
 * leads its process group) and a deadline counted from its start. */
static JsonNode *
claim_with_provider (JsonObject *claim,
                     int         pid,
                     guint64     start_time,
                     double      started_at,
                     double      timeout)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *copy = json_object_new ();
  JsonObject *provider = json_object_new ();
  GList *members = json_object_get_members (claim);

  for (GList *l = members; l != NULL; l = l->next)
    json_object_set_member (copy, l->data,
                            json_node_copy (json_object_get_member (claim, l->data)));
  g_list_free (members);

  json_object_set_int_member (provider, "pid", pid);
  json_object_set_int_member (provider, "start_time", (gint64) start_time);
  json_object_set_double_member (provider, "started_at", started_at);
  json_object_set_object_member (copy, "provider", provider);
  json_object_set_double_member (copy, "expires_at",
                                 MAX (member_double (claim, "expires_at"),
                                      started_at + claim_duration (timeout)));
  json_node_take_object (node, copy);

  return node;
}

/* The claim's deadline, with a time in the future (a writer whose clock
 * was ahead) counted from @now, and never longer than a claim can hold. */
static double
claim_deadline (JsonObject *claim,
                double      now)
{
  double at = member_double (claim, "at");
  double duration = member_double (claim, "expires_at") - at;

  duration = CLAMP (duration, 0, claim_duration (0));
  return clamp_past (at, now) + duration;
}

typedef enum
{
  CLAIM_NONE,        /* nobody holds it */
  CLAIM_BLOCKS,      /* a reaper may still be deleting the VM */
  CLAIM_TAKE_OVER,   /* held by a reaper whose command is provably over */
} ClaimState;

/*
 * Who holds @session's claim, and may the VM be claimed again? The claim
 * of a reaper that died is taken over only once the command it started
 * (recorded in the claim with its process group) is gone: its first
 * process and everything left in its group. Where that cannot be proven
 * (another host, a claim that never recorded its command), only once the
 * claim's deadline passed. In @lost, on a take-over, what became of the
 * dead reaper's attempt, for the audit log; in @until, when a claim that
 * blocks runs out at the latest (-1 while its reaper lives).
 */
static ClaimState
check_claim (GsmReaper   *self,
             GsmSession  *session,
             double       now,
             char       **reason,
             char       **lost,
             double      *until)
{
  JsonObject *claim = get_object_member (session, CLAIM_MEMBER);
  JsonObject *provider;
  g_autoptr(GsmSession) claimer = NULL;
  const char *host, *boot_id;
  double pid, start_time, deadline, provider_pid = 0;

  if (until != NULL)
    *until = -1;
  if (claim == NULL)
    return CLAIM_NONE;

  host = member_string (claim, "host");
  pid = member_double (claim, "pid");
  start_time = member_double (claim, "start_time");
  boot_id = member_string (claim, "boot_id");
  deadline = claim_deadline (claim, now);
  provider = member_object (claim, "provider");
  if (provider != NULL)
    provider_pid = member_double (provider, "pid");
  if (until != NULL)
    *until = deadline;

  if (host == NULL || pid < 2 || pid > G_MAXINT)
    {
      if (now < deadline)
        {
          *reason = g_strdup_printf ("claimed by an unknown reaper, for %.0f s more",
                                     round_up (deadline - now));
          return CLAIM_BLOCKS;
        }
      *lost = g_strdup ("an unknown reaper's claim passed its deadline; what its command did is "
                        "unknown");
      return CLAIM_TAKE_OVER;
    }

  if ((int) pid == getpid () && (guint64) start_time == self->start_time &&
      g_strcmp0 (host, gsm_session_manager_get_hostname (self->manager)) == 0)
    {
      *reason = g_strdup ("being deleted by another pass of this process");
      if (until != NULL)
        *until = -1;
      return CLAIM_BLOCKS;
    }

  claimer = _gsm_session_new ("reap-claim", (int) pid, host, member_double (claim, "at"),
                              (guint64) start_time, boot_id);
  switch (_gsm_liveness_probe_check (_gsm_session_manager_get_probe (self->manager), claimer))
    {
    case GSM_LIVENESS_ALIVE:
      *reason = g_strdup_printf ("being deleted by reaper pid %.0f on %s", pid, host);
      if (until != NULL)
        *until = -1;
      return CLAIM_BLOCKS;

    case GSM_LIVENESS_DEAD:
      /* A reaper of this host. After a reboot, nothing it ran is left. */
      if (boot_id != NULL && *_gsm_process_get_boot_id () != '\0' &&
          g_strcmp0 (boot_id, _gsm_process_get_boot_id ()) != 0)
        {
          *lost = g_strdup_printf ("reaper pid %.0f on %s held the claim when the host rebooted; "
                                   "what its command did is unknown", pid, host);
          return CLAIM_TAKE_OVER;
        }
      if (provider_pid >= 2 && provider_pid <= G_MAXINT)
        {
          if (_gsm_provider_group_is_gone ((int) provider_pid,
                                           (guint64) member_double (provider, "start_time")))
            {
              *lost = g_strdup_printf ("reaper pid %.0f on %s died while its provider command "
                                       "(pid %.0f) ran; what the command did is unknown",
                                       pid, host, provider_pid);
              return CLAIM_TAKE_OVER;
            }
          if (now < deadline)
            {
              *reason = g_strdup_printf ("reaper pid %.0f died, but the provider command it "
                                         "started (process group %.0f) still runs; left alone "
                                         "until it ends, or for %.0f s at most",
                                         pid, provider_pid, round_up (deadline - now));
              return CLAIM_BLOCKS;
            }
          *lost = g_strdup_printf ("reaper pid %.0f on %s died while its provider command "
                                   "(pid %.0f) ran, and the command still ran at the claim's "
                                   "deadline; what it did is unknown", pid, host, provider_pid);
          return CLAIM_TAKE_OVER;
        }
      if (now < deadline)
        {
          *reason = g_strdup_printf ("reaper pid %.0f died holding the claim before recording "
                                     "its command; left alone until the claim's deadline, in "
                                     "%.0f s", pid, round_up (deadline - now));
          return CLAIM_BLOCKS;
        }
      *lost = g_strdup_printf ("reaper pid %.0f on %s died holding the claim; whether its "
                               "command ran, and what it did, is unknown", pid, host);
      return CLAIM_TAKE_OVER;

    case GSM_LIVENESS_UNVERIFIABLE:
    default:
      if (now < deadline)
        {
          *reason = g_strdup_printf ("being deleted by reaper pid %.0f on %s (for %.0f s at "
                                     "most)", pid, host, round_up (deadline - now));
          return CLAIM_BLOCKS;
        }
      *lost = g_strdup_printf ("reaper pid %.0f on %s held the claim past its deadline; what "
                               "its command did is unknown", pid, host);
      return CLAIM_TAKE_OVER;
    }
}

/*
 * Is the process behind @session alive? Decided here, from this host's
 * own probe (or the store's leases), and never from the session's age:
 * %GSM_LIVENESS_UNVERIFIABLE for a session whose liveness cannot be proven
 * either way (another host, no start time recorded).
 */
static GsmLiveness
owner_liveness (GsmReaper  *self,
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

GsmLiveness
_gsm_reaper_owner_liveness (GsmReaper  *self,
                            GsmSession *session)
{
  return owner_liveness (self, session);
}

/* Old enough to be reaped by age, its liveness unknown, as asked? */
static gboolean
old_enough (const Settings *s,
            GsmSession     *session,
            double          now)
{
  return s->unverifiable > 0 &&
         now - clamp_past (gsm_session_get_created_at (session), now) >= s->unverifiable;
}

/*
 * Why the owner of @entry rules its VM out, or %NULL if it does not: it
 * is dead, or (only when asked, with unverifiable-older-than) its liveness
 * cannot be proven and it is older than that (@by_age).
 */
static char *
check_owner (GsmReaper      *self,
             const Settings *s,
             GsmSession     *entry,
             double          now,
             GsmLiveness    *out_liveness,
             gboolean       *by_age)
{
  GsmLiveness liveness;

  *by_age = FALSE;
  if (gsm_session_get_vm_id (entry) == NULL)
    return g_strdup ("it owns no VM");
  if (g_strcmp0 (gsm_session_get_session_id (entry),
                 gsm_session_manager_get_session_id (self->manager)) == 0)
    return g_strdup ("it is this process's own session");
  if (self->host_only &&
      g_strcmp0 (gsm_session_get_hostname (entry), gsm_session_manager_get_hostname (self->manager)) != 0)
    return g_strdup ("it is another host's session (this pass reaps this host's only)");

  liveness = owner_liveness (self, entry);
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
                                "than %.0f s", s->unverifiable);
      return g_strdup ("its owner's liveness cannot be verified from this host (another host, or "
                       "no start time recorded); such a VM is deleted only when asked "
                       "(gsmctl reap --unverifiable --older-than SECONDS)");
    }
}

/* When a failed deletion may be retried: @next_retry, but never later than
 * the longest backoff from now. */
static double
retry_due (const Settings *s,
           double          next_retry,
           double          now)
{
  return MIN (next_retry, now + s->max_backoff);
}

/* Why @entry's VM must wait (grace period, backoff), or %NULL. A session
 * not yet recorded as dead counts as found dead now. */
static char *
check_timing (const Settings *s,
              GsmSession     *entry,
              double          now,
              gboolean        by_age)
{
  double next_retry = retry_due (s, get_next_retry (entry), now);

  if (!by_age)
    {
      double stale_since = gsm_session_get_stale_since (entry);
      double since = _gsm_session_is_stale (entry) && stale_since > 0
                       ? clamp_past (stale_since, now) : now;

      if (now - since < s->grace)
        return g_strdup_printf ("grace period: %.0f s left",
                                round_up (s->grace - MAX (now - since, 0)));
    }
  if (next_retry > now)
    return g_strdup_printf ("backing off after %u failed attempt%s: retry in %.0f s",
                            get_attempts (entry), get_attempts (entry) == 1 ? "" : "s",
                            round_up (next_retry - now));
  return NULL;
}

/* Does @other, another session recording the same VM, keep it from being
 * deleted? Yes unless it is provably dead (or as old as asked). */
static gboolean
other_blocks (GsmReaper      *self,
              const Settings *s,
              GsmSession     *other,
              double          now)
{
  switch (owner_liveness (self, other))
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

static char *
records_it_too_reason (GsmSession *other)
{
  return g_strdup_printf ("live session %s records it too", gsm_session_get_session_id (other));
}

/*
 * The sessions that record each of the VMs of @vm_ids, in one pass over
 * @snapshot: VM id → GPtrArray of GsmSession (borrowed).
 */
static GHashTable *
index_vm_owners (GsmRegistrySnapshot *snapshot,
                 GHashTable          *vm_ids)
{
  GHashTable *index = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                             (GDestroyNotify) g_ptr_array_unref);
  GsmRegistrySnapshotIter iter;
  GsmSession *session;

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      const char *vm_id = session->vm_id;
      GPtrArray *owners;

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

/* A copy of @entry whose timestamps from a clock that was ahead (when it
 * was found dead, when to retry, a claim's times) are rewritten from @now;
 * %NULL if none is in the future. */
static GsmSession *
normalize_times (const Settings *s,
                 GsmSession     *entry,
                 double          now)
{
  g_autoptr(GsmSession) fixed = NULL;
  JsonObject *attempts, *claim;

  if (_gsm_session_is_stale (entry) && gsm_session_get_stale_since (entry) > now)
    fixed = _gsm_session_with_stale (entry, now);

  attempts = get_object_member (fixed ? fixed : entry, ATTEMPTS_MEMBER);
  if (attempts != NULL && member_double (attempts, "next_retry_at") > now + s->max_backoff)
    {
      g_autoptr(JsonNode) copy = json_node_copy (_gsm_session_get_member (fixed ? fixed : entry,
                                                                           ATTEMPTS_MEMBER));
      GsmSession *next;

      json_object_set_double_member (json_node_get_object (copy), "next_retry_at",
                                     now + s->max_backoff);
      if (member_double (json_node_get_object (copy), "last_attempt_at") > now)
        json_object_set_double_member (json_node_get_object (copy), "last_attempt_at", now);
      next = _gsm_session_with_member (fixed ? fixed : entry, ATTEMPTS_MEMBER, copy);
      g_clear_object (&fixed);
      fixed = next;
    }

  claim = get_object_member (fixed ? fixed : entry, CLAIM_MEMBER);
  if (claim != NULL && member_double (claim, "at") > now)
    {
      g_autoptr(JsonNode) copy = json_node_copy (_gsm_session_get_member (fixed ? fixed : entry,
                                                                           CLAIM_MEMBER));
      GsmSession *next;

      json_object_set_double_member (json_node_get_object (copy), "expires_at",
                                     claim_deadline (claim, now));
      json_object_set_double_member (json_node_get_object (copy), "at", now);
      next = _gsm_session_with_member (fixed ? fixed : entry, CLAIM_MEMBER, copy);
      g_clear_object (&fixed);
      fixed = next;
    }

  return g_steal_pointer (&fixed);
}

static JsonNode *
make_attempts (const Settings *s,
               guint           count,
               double          now,
               const char     *outcome,
               const char     *error_message,
               gboolean        due_now)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  double delay = s->backoff;

  for (guint i = 1; i < count && delay < s->max_backoff; i++)
    delay *= 2;
  delay = MIN (delay, s->max_backoff);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "count");
  json_builder_add_int_value (b, count);
  json_builder_set_member_name (b, "last_attempt_at");
  json_builder_add_double_value (b, now);
  json_builder_set_member_name (b, "last_outcome");
  json_builder_add_string_value (b, outcome);
  json_builder_set_member_name (b, "last_error");
  json_builder_add_string_value (b, error_message ? error_message : "");
  json_builder_set_member_name (b, "next_retry_at");
  json_builder_add_double_value (b, due_now ? now : now + delay);
  json_builder_end_object (b);

  return json_builder_get_root (b);
}

/* ---- a pass: jobs, rounds and workers ------------------------------------ */

/*
 * A pass deletes many VMs at once, up to the concurrency limit, with as
 * few rounds under the registry lock as it can: each round settles every
 * deletion that ended since the last, records the commands that started
 * (their process group, in the claim), and claims the next batch, all in
 * one update. Workers of a thread pool run the commands.
 */
typedef enum
{
  JOB_PENDING,     /* not claimed yet */
  JOB_CLAIMED,     /* claimed, waiting for a worker */
  JOB_RUNNING,     /* its command runs */
  JOB_DONE,        /* its command ended: to settle */
  JOB_UNSTARTED,   /* claimed, not run: its claim is released or renewed */
  JOB_FINISHED,
} JobState;

typedef struct _Pass Pass;

typedef struct
{
  Pass              *pass;
  GsmSession        *candidate;      /* as listed */
  char              *token;
  JobState           state;
  GsmSession        *claimed;        /* the entry as claimed */
  gint64             claimed_mono;   /* monotonic µs */
  /* set by the worker, under the pass's mutex */
  int                provider_pid;
  guint64            provider_start;
  double             provider_started_at;
  gboolean           provider_recorded;
  gboolean           renew;          /* UNSTARTED: claim again, then run */
  gboolean           succeeded;
  const char        *outcome;
  GsmProviderResult *result;
  GError            *error;
} Job;

static void
job_free (gpointer data)
{
  Job *job = data;

  g_clear_object (&job->candidate);
  g_clear_object (&job->claimed);
  g_clear_object (&job->result);
  g_clear_error (&job->error);
  g_free (job->token);
  g_free (job);
}

struct _Pass
{
  GsmReaper    *self;
  GsmProvider  *provider;
  Settings      s;
  GCancellable *cancellable;
  GPtrArray    *jobs;          /* Job*, in the order to claim them */
  guint         next;          /* the first job never offered to a round */
  GPtrArray    *emissions;
  guint         reaped;
  guint         failed;

  GMutex        mutex;         /* guards the jobs' states and what follows */
  GCond         cond;
  guint         in_workers;    /* jobs handed to the pool, not yet back */
  guint         events;        /* bumped whenever a worker changed a job */
  guint         ended;         /* commands ended since the last round */
  gboolean      stop;          /* claim and start nothing more */
  GThreadPool  *pool;
};

/* One lock round's work, and its decisions. An update function may be
 * called more than once (etcd retries on a conflict): the decisions are
 * cleared at each call, and only the last call's are applied. */
typedef struct
{
  Pass      *pass;
  double     now;
  gboolean   normalize;
  GPtrArray *to_settle;        /* DONE */
  GPtrArray *to_record;        /* running, command not yet in the claim */
  GPtrArray *to_release;       /* UNSTARTED */
  GPtrArray *to_claim;         /* PENDING */
  /* decisions */
  GArray    *settled;          /* gboolean, per to_settle */
  GArray    *released;         /* gboolean, per to_release */
  GPtrArray *claimed;          /* GsmSession* or NULL, per to_claim */
  GPtrArray *skip_reasons;     /* char* or NULL, per to_claim */
  GPtrArray *lost;             /* char* or NULL, per to_claim: a dead reaper's attempt */
  GPtrArray *lost_entries;     /* GsmSession* or NULL, per to_claim: the entry it held */
} Round;

static void
unref_nullable (gpointer object)
{
  if (object != NULL)
    g_object_unref (object);
}

static void
round_clear_decisions (Round *r)
{
  g_array_set_size (r->settled, 0);
  g_array_set_size (r->released, 0);
  g_ptr_array_set_size (r->claimed, 0);
  g_ptr_array_set_size (r->skip_reasons, 0);
  g_ptr_array_set_size (r->lost, 0);
  g_ptr_array_set_size (r->lost_entries, 0);
}

static void
round_init (Round *r,
            Pass  *pass)
{
  memset (r, 0, sizeof *r);
  r->pass = pass;
  r->to_settle = g_ptr_array_new ();
  r->to_record = g_ptr_array_new ();
  r->to_release = g_ptr_array_new ();
  r->to_claim = g_ptr_array_new ();
  r->settled = g_array_new (FALSE, FALSE, sizeof (gboolean));
  r->released = g_array_new (FALSE, FALSE, sizeof (gboolean));
  r->claimed = g_ptr_array_new_with_free_func (unref_nullable);
  r->skip_reasons = g_ptr_array_new_with_free_func (g_free);
  r->lost = g_ptr_array_new_with_free_func (g_free);
  r->lost_entries = g_ptr_array_new_with_free_func (unref_nullable);
}

static void
round_free (Round *r)
{
  g_ptr_array_unref (r->to_settle);
  g_ptr_array_unref (r->to_record);
  g_ptr_array_unref (r->to_release);
  g_ptr_array_unref (r->to_claim);
  g_array_unref (r->settled);
  g_array_unref (r->released);
  g_ptr_array_unref (r->claimed);
  g_ptr_array_unref (r->skip_reasons);
  g_ptr_array_unref (r->lost);
  g_ptr_array_unref (r->lost_entries);
}

static gboolean
round_is_empty (Round *r)
{
  return !r->normalize && r->to_settle->len == 0 && r->to_record->len == 0 &&
         r->to_release->len == 0 && r->to_claim->len == 0;
}

static const char *
job_session_id (Job *job)
{
  return gsm_session_get_session_id (job->candidate);
}

/* The entry of @job's session if it still carries @job's claim. */
static GsmSession *
lookup_claimed (GsmRegistryTxn *txn,
                Job            *job)
{
  GsmSession *entry = _gsm_registry_txn_lookup (txn, job_session_id (job));
  JsonObject *claim;

  if (entry == NULL)
    return NULL;
  claim = get_object_member (entry, CLAIM_MEMBER);
  if (claim == NULL || g_strcmp0 (member_string (claim, "token"), job->token) != 0)
    return NULL;   /* taken over: the new holder settles it */
  return entry;
}

/* Decides whether @job's VM can be claimed now, and claims it. */
static void
claim_one (Round          *r,
           GsmRegistryTxn *txn,
           GHashTable     *owners,
           Job            *job)
{
  Pass *pass = r->pass;
  GsmReaper *self = pass->self;
  const char *session_id = job_session_id (job);
  GsmSession *entry = _gsm_registry_txn_lookup (txn, session_id);
  g_autoptr(GsmSession) fixed = NULL;
  g_autoptr(GsmSession) claimed = NULL;
  g_autoptr(JsonNode) claim = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *lost = NULL;
  GsmLiveness liveness = GSM_LIVENESS_UNVERIFIABLE;
  GPtrArray *others;
  gboolean by_age;

  g_ptr_array_add (r->claimed, NULL);
  g_ptr_array_add (r->skip_reasons, NULL);
  g_ptr_array_add (r->lost, NULL);
  g_ptr_array_add (r->lost_entries, NULL);

  if (entry == NULL ||
      g_strcmp0 (gsm_session_get_vm_id (entry), gsm_session_get_vm_id (job->candidate)) != 0)
    {
      r->skip_reasons->pdata[r->skip_reasons->len - 1] =
        g_strdup ("its entry is gone or the VM was registered again");
      return;
    }

  reason = check_owner (self, &pass->s, entry, r->now, &liveness, &by_age);
  if (reason != NULL)
    {
      r->skip_reasons->pdata[r->skip_reasons->len - 1] = g_steal_pointer (&reason);
      return;
    }

  /* Found dead now: record it, and the grace period starts. Times from a
   * clock that was ahead are rewritten from now. */
  if (liveness == GSM_LIVENESS_DEAD && !_gsm_session_is_stale (entry))
    {
      fixed = _gsm_session_with_stale (entry, r->now);
      _gsm_registry_txn_put (txn, fixed);
      entry = _gsm_registry_txn_lookup (txn, session_id);
      g_clear_object (&fixed);
    }
  fixed = normalize_times (&pass->s, entry, r->now);
  if (fixed != NULL)
    {
      _gsm_registry_txn_put (txn, fixed);
      entry = _gsm_registry_txn_lookup (txn, session_id);
    }

  reason = check_timing (&pass->s, entry, r->now, by_age);
  if (reason == NULL)
    check_claim (self, entry, r->now, &reason, &lost, NULL);
  if (reason != NULL)
    {
      r->skip_reasons->pdata[r->skip_reasons->len - 1] = g_steal_pointer (&reason);
      return;
    }

  others = g_hash_table_lookup (owners, gsm_session_get_vm_id (entry));
  for (guint i = 0; others != NULL && i < others->len; i++)
    {
      GsmSession *other = _gsm_registry_txn_lookup (txn,
                                                    gsm_session_get_session_id (others->pdata[i]));

      if (other == NULL || g_strcmp0 (gsm_session_get_session_id (other), session_id) == 0 ||
          g_strcmp0 (gsm_session_get_vm_id (other), gsm_session_get_vm_id (entry)) != 0)
        continue;
      if (other_blocks (self, &pass->s, other, r->now))
        {
          r->skip_reasons->pdata[r->skip_reasons->len - 1] = records_it_too_reason (other);
          g_clear_pointer (&lost, g_free);
          return;
        }
    }

  if (lost != NULL)
    {
      /* The dead reaper's attempt counts, as one whose outcome is unknown;
       * this one follows at once. */
      g_autoptr(JsonNode) attempts = make_attempts (&pass->s, get_attempts (entry) + 1, r->now,
                                                    "unknown", lost, TRUE);
      g_autoptr(GsmSession) counted = _gsm_session_with_member (entry, ATTEMPTS_MEMBER, attempts);

      r->lost_entries->pdata[r->lost_entries->len - 1] = g_object_ref (entry);
      r->lost->pdata[r->lost->len - 1] = g_steal_pointer (&lost);
      _gsm_registry_txn_put (txn, counted);
      entry = _gsm_registry_txn_lookup (txn, session_id);
    }

  claim = make_claim (self, job->token, r->now, pass->s.timeout);
  claimed = _gsm_session_with_member (entry, CLAIM_MEMBER, claim);
  _gsm_registry_txn_put (txn, claimed);
  r->claimed->pdata[r->claimed->len - 1] = g_object_ref (claimed);
}

static gboolean
txn_round (GsmRegistryTxn  *txn,
           gpointer         user_data,
           GError         **error)
{
  Round *r = user_data;
  Pass *pass = r->pass;

  round_clear_decisions (r);

  /* Deletions that ended: the entry goes, or the attempt is recorded. */
  for (guint i = 0; i < r->to_settle->len; i++)
    {
      Job *job = r->to_settle->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      gboolean settled = entry != NULL;

      if (entry != NULL && job->succeeded)
        _gsm_registry_txn_remove (txn, job_session_id (job));
      else if (entry != NULL)
        {
          g_autoptr(GsmSession) released = _gsm_session_with_member (entry, CLAIM_MEMBER, NULL);
          g_autoptr(JsonNode) attempts =
            make_attempts (&pass->s, get_attempts (entry) + 1, r->now, job->outcome,
                           job->error ? job->error->message : NULL, FALSE);
          g_autoptr(GsmSession) recorded = _gsm_session_with_member (released, ATTEMPTS_MEMBER,
                                                                     attempts);

          _gsm_registry_txn_put (txn, recorded);
        }
      g_array_append_val (r->settled, settled);
    }

  /* Commands that started: their process group goes into the claim, so
   * that a reaper taking over after this one died knows what to wait for. */
  for (guint i = 0; i < r->to_record->len; i++)
    {
      Job *job = r->to_record->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      g_autoptr(JsonNode) claim = NULL;
      g_autoptr(GsmSession) recorded = NULL;

      if (entry == NULL)
        continue;
      claim = claim_with_provider (get_object_member (entry, CLAIM_MEMBER), job->provider_pid,
                                   job->provider_start, job->provider_started_at,
                                   pass->s.timeout);
      recorded = _gsm_session_with_member (entry, CLAIM_MEMBER, claim);
      _gsm_registry_txn_put (txn, recorded);
    }

  /* Claims never used: renewed (to run now), or dropped. */
  for (guint i = 0; i < r->to_release->len; i++)
    {
      Job *job = r->to_release->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      gboolean ok = entry != NULL;

      if (entry != NULL)
        {
          g_autoptr(JsonNode) claim = job->renew ? make_claim (pass->self, job->token, r->now,
                                                               pass->s.timeout) : NULL;
          g_autoptr(GsmSession) changed = _gsm_session_with_member (entry, CLAIM_MEMBER, claim);

          _gsm_registry_txn_put (txn, changed);
        }
      g_array_append_val (r->released, ok);
    }

  if (r->to_claim->len > 0 || r->normalize)
    {
      g_autoptr(GHashTable) vm_ids = g_hash_table_new (g_str_hash, g_str_equal);
      g_autoptr(GHashTable) owners = NULL;

      for (guint i = 0; i < r->to_claim->len; i++)
        {
          Job *job = r->to_claim->pdata[i];

          g_hash_table_add (vm_ids, (gpointer) gsm_session_get_vm_id (job->candidate));
        }
      owners = index_vm_owners (_gsm_registry_txn_get_base (txn), vm_ids);

      if (r->normalize)
        {
          GsmRegistrySnapshotIter iter;
          const char *key;
          GsmSession *session;

          _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
          while (_gsm_registry_snapshot_iter_next (&iter, &key, &session))
            {
              g_autoptr(GsmSession) fixed = NULL;
              GsmSession *current;

              if (session->vm_id == NULL)
                continue;
              current = _gsm_registry_txn_lookup (txn, key);
              if (current != NULL && (fixed = normalize_times (&pass->s, current, r->now)) != NULL)
                _gsm_registry_txn_put (txn, fixed);
            }
        }

      for (guint i = 0; i < r->to_claim->len; i++)
        claim_one (r, txn, owners, r->to_claim->pdata[i]);
    }

  return TRUE;
}

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
  e->vm = g_object_ref (session);
  e->result = result ? g_object_ref (result) : NULL;
  e->error = error ? g_error_copy (error) : NULL;
  e->reason = g_strdup (reason);
  g_ptr_array_add (emissions, e);
}

static void
audit (GsmReaper          *self,
       GsmSession         *entry,
       guint               attempt,
       const char         *token,
       const char * const *argv,
       GsmProviderResult  *result,
       const char         *outcome,
       const char         *error_message)
{
  g_autoptr(GError) error = NULL;
  GsmAuditRecord record = { 0, };

  record.action = "reap";
  record.vm_id = gsm_session_get_vm_id (entry);
  record.zone = gsm_session_get_zone (entry);
  record.session_id = gsm_session_get_session_id (entry);
  record.pid = gsm_session_get_pid (entry);
  record.hostname = gsm_session_get_hostname (entry);
  record.result = result;
  record.argv = argv;
  record.outcome = outcome;
  record.error_message = error_message;
  record.attempt = attempt;
  record.token = token;
  if (!_gsm_audit_append (self->manager, &record, &error))
    g_warning ("%s", error->message);
}

static void
spawned_cb (int      pid,
            guint64  start_time,
            gpointer user_data)
{
  Job *job = user_data;
  Pass *pass = job->pass;

  g_mutex_lock (&pass->mutex);
  job->provider_pid = pid;
  job->provider_start = start_time;
  job->provider_started_at = now_seconds ();
  pass->events++;
  g_cond_signal (&pass->cond);
  g_mutex_unlock (&pass->mutex);
}

const char *
_gsm_reaper_delete_id (GsmSession *entry)
{
  JsonObject *inventory = get_object_member (entry, GSM_REAPER_INVENTORY_MEMBER);
  const char *id = inventory ? member_string (inventory, "id") : NULL;

  /* Only what the inventory said about this very VM, and only an id that
   * can be handed to the command. */
  if (id != NULL && *id != '\0' && *id != '-' &&
      g_strcmp0 (member_string (inventory, "vm"), gsm_session_get_vm_id (entry)) == 0 &&
      _gsm_validate_name ("id", id, GSM_MAX_NAME_LEN, NULL))
    return id;
  return gsm_session_get_vm_id (entry);
}

/* A worker: runs @job's command, recorded in the audit log before it
 * starts and once it ended. */
static void
worker_func (gpointer data,
             gpointer user_data)
{
  Job *job = data;
  Pass *pass = user_data;
  GsmSession *claimed = job->claimed;
  g_auto(GStrv) argv = NULL;
  g_autoptr(GsmProviderResult) result = NULL;
  g_autoptr(GError) error = NULL;
  guint attempt = get_attempts (claimed) + 1;
  gboolean succeeded = FALSE;
  const char *outcome;

  g_mutex_lock (&pass->mutex);
  if (pass->stop || g_cancellable_is_cancelled (pass->cancellable) ||
      g_get_monotonic_time () - job->claimed_mono > START_WITHIN * G_USEC_PER_SEC)
    {
      /* Too late for its claim's deadline: claimed again, then run. */
      job->renew = !pass->stop && !g_cancellable_is_cancelled (pass->cancellable);
      job->state = JOB_UNSTARTED;
      pass->in_workers--;
      pass->events++;
      g_cond_signal (&pass->cond);
      g_mutex_unlock (&pass->mutex);
      return;
    }
  job->state = JOB_RUNNING;
  g_mutex_unlock (&pass->mutex);

  argv = gsm_provider_expand (pass->provider, _gsm_reaper_delete_id (claimed),
                              gsm_session_get_zone (claimed), gsm_session_get_session_id (claimed),
                              &error);
  if (argv != NULL)
    {
      audit (pass->self, claimed, attempt, job->token, (const char * const *) argv, NULL,
             "started", NULL);
      succeeded = _gsm_provider_run (pass->provider, (const char * const *) argv,
                                     gsm_session_get_vm_id (claimed), spawned_cb, job, &result,
                                     pass->cancellable, &error);
    }
  outcome = result ? gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result))
                   : "failed";
  audit (pass->self, claimed, attempt, job->token, (const char * const *) argv, result, outcome,
         error ? error->message : NULL);

  g_mutex_lock (&pass->mutex);
  job->succeeded = succeeded;
  job->outcome = outcome;
  job->result = g_steal_pointer (&result);
  job->error = g_steal_pointer (&error);
  job->state = JOB_DONE;
  pass->in_workers--;
  pass->ended++;
  pass->events++;
  g_cond_signal (&pass->cond);
  g_mutex_unlock (&pass->mutex);
}

/* With the mutex held: what the next round has to do. */
static void
collect_locked (Pass  *pass,
                Round *r)
{
  guint want;

  for (guint i = 0; i < pass->next; i++)
    {
      Job *job = pass->jobs->pdata[i];

      if (job->state == JOB_DONE)
        g_ptr_array_add (r->to_settle, job);
      else if (job->state == JOB_UNSTARTED)
        g_ptr_array_add (r->to_release, job);
      else if (job->state == JOB_RUNNING && job->provider_pid > 0 && !job->provider_recorded)
        g_ptr_array_add (r->to_record, job);
    }

  if (pass->stop || g_cancellable_is_cancelled (pass->cancellable))
    return;

  /* Keep every worker busy, and claim ahead as many as ended since the
   * last round (twice that): the batches grow with the provider's pace,
   * and a slow provider never has claims waiting long. */
  want = pass->s.concurrency + MIN (2 * pass->ended, MAX_CLAIM_BATCH);
  for (guint n = pass->in_workers + r->to_release->len;
       n < want && pass->next < pass->jobs->len; n++)
    g_ptr_array_add (r->to_claim, pass->jobs->pdata[pass->next++]);
  pass->ended = 0;
}

static void
hand_to_worker (Pass *pass,
                Job  *job)
{
  g_autoptr(GError) error = NULL;

  job->state = JOB_CLAIMED;
  job->claimed_mono = g_get_monotonic_time ();
  pass->in_workers++;
  if (!g_thread_pool_push (pass->pool, job, &error))
    {
      /* No thread: the claim is dropped in the next round. */
      g_warning ("Cannot start the deletion of VM “%s”: %s",
                 gsm_session_get_vm_id (job->claimed), error->message);
      pass->in_workers--;
      job->renew = FALSE;
      job->state = JOB_UNSTARTED;
    }
}

/* With the mutex held: applies the decisions of a round that was written. */
static void
apply_locked (Pass  *pass,
              Round *r)
{
  GsmReaper *self = pass->self;

  for (guint i = 0; i < r->to_settle->len; i++)
    {
      Job *job = r->to_settle->pdata[i];

      if (!g_array_index (r->settled, gboolean, i))
        g_debug ("The claim on VM “%s” was taken over while it was being deleted",
                 gsm_session_get_vm_id (job->candidate));
      if (job->succeeded)
        {
          pass->reaped++;
          add_emission (pass->emissions, signals[VM_REAPED], job->claimed, job->result, NULL, NULL);
        }
      else
        {
          pass->failed++;
          add_emission (pass->emissions, signals[REAP_FAILED], job->claimed, NULL, job->error,
                        NULL);
        }
      job->state = JOB_FINISHED;
    }

  for (guint i = 0; i < r->to_record->len; i++)
    ((Job *) r->to_record->pdata[i])->provider_recorded = TRUE;

  for (guint i = 0; i < r->to_release->len; i++)
    {
      Job *job = r->to_release->pdata[i];

      if (job->renew && g_array_index (r->released, gboolean, i) && !pass->stop)
        hand_to_worker (pass, job);
      else
        job->state = JOB_FINISHED;
    }

  /* The "started" records of dead reapers' commands get their outcome,
   * before any command of this round starts. */
  for (guint i = 0; i < r->to_claim->len; i++)
    {
      GsmSession *entry = r->lost_entries->pdata[i];
      JsonObject *old;

      if (r->lost->pdata[i] == NULL)
        continue;
      old = get_object_member (entry, CLAIM_MEMBER);
      audit (self, entry, get_attempts (entry) + 1, old ? member_string (old, "token") : NULL,
             NULL, NULL, "unknown", r->lost->pdata[i]);
    }

  for (guint i = 0; i < r->to_claim->len; i++)
    {
      Job *job = r->to_claim->pdata[i];
      GsmSession *claimed = r->claimed->pdata[i];

      if (claimed == NULL)
        {
          const char *reason = r->skip_reasons->pdata[i];

          g_debug ("Not reaping VM “%s” of session %s: %s",
                   gsm_session_get_vm_id (job->candidate), job_session_id (job), reason);
          add_emission (pass->emissions, signals[REAP_SKIPPED], job->candidate, NULL, NULL, reason);
          job->state = JOB_FINISHED;
          continue;
        }
      job->claimed = g_object_ref (claimed);
      if (pass->stop)
        {
          job->renew = FALSE;
          job->state = JOB_UNSTARTED;
        }
      else
        hand_to_worker (pass, job);
    }
}

/* Runs the pass to its end. FALSE for an error of the registry, or when
 * cancelled; the deletions that ran are settled either way. */
static gboolean
run_pass (Pass    *pass,
          GError **error)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (pass->self->manager);
  g_autoptr(GError) round_error = NULL;
  gboolean first = TRUE;
  guint failed_at_events = G_MAXUINT;
  guint n_rounds = 0;
  gint64 last_round = 0, last_round_took = 0, round_started;

  g_mutex_lock (&pass->mutex);
  for (;;)
    {
      g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
      g_autoptr(GError) local_error = NULL;
      Round r;

      /* After a failed round, try again only once something changed, or
       * when nothing is left running. */
      if (failed_at_events == pass->events && pass->in_workers > 0)
        {
          g_cond_wait (&pass->cond, &pass->mutex);
          continue;
        }

      /* While every worker has a command to run, gather what ended for a
       * while, as long as the last round took at least: fewer rounds,
       * each settling more, and never more than half the time spent
       * writing the registry. */
      if (!first && pass->in_workers >= pass->s.concurrency &&
          g_get_monotonic_time () < last_round + MAX (ROUND_GATHER_US, last_round_took))
        {
          g_cond_wait_until (&pass->cond, &pass->mutex,
                             last_round + MAX (ROUND_GATHER_US, last_round_took));
          continue;
        }

      round_init (&r, pass);
      r.normalize = first;
      collect_locked (pass, &r);
      if (round_is_empty (&r))
        {
          round_free (&r);
          if (pass->in_workers == 0)
            break;
          g_cond_wait (&pass->cond, &pass->mutex);
          continue;
        }
      g_mutex_unlock (&pass->mutex);

      r.now = now_seconds ();
      round_started = g_get_monotonic_time ();
      snapshot = _gsm_registry_update (registry, txn_round, &r, NULL, &local_error);

      g_mutex_lock (&pass->mutex);
      n_rounds++;
      last_round = g_get_monotonic_time ();
      last_round_took = last_round - round_started;
      if (snapshot != NULL)
        {
          apply_locked (pass, &r);
          first = FALSE;
          failed_at_events = G_MAXUINT;
        }
      else
        {
          /* Claim nothing more; what was to be claimed stays as it is. */
          pass->stop = TRUE;
          for (guint i = 0; i < r.to_claim->len; i++)
            ((Job *) r.to_claim->pdata[i])->state = JOB_FINISHED;
          failed_at_events = pass->events;
          if (round_error == NULL)
            round_error = g_steal_pointer (&local_error);
          if (pass->in_workers == 0)
            {
              round_free (&r);
              break;
            }
        }
      round_free (&r);
    }
  g_mutex_unlock (&pass->mutex);
  g_debug ("Reap pass: %u VM%s, %u lock round%s", pass->jobs->len,
           pass->jobs->len == 1 ? "" : "s", n_rounds, n_rounds == 1 ? "" : "s");

  if (round_error != NULL)
    {
      guint unsettled = 0;

      for (guint i = 0; i < pass->jobs->len; i++)
        if (((Job *) pass->jobs->pdata[i])->state != JOB_FINISHED &&
            ((Job *) pass->jobs->pdata[i])->state != JOB_PENDING)
          unsettled++;
      if (unsettled > 0)
        g_warning ("Cannot record the outcome of %u VM deletion%s: %s (their claims stay until "
                   "this process exits)", unsettled, unsettled == 1 ? "" : "s",
                   round_error->message);
      g_propagate_error (error, g_steal_pointer (&round_error));
      return FALSE;
    }

  return !g_cancellable_set_error_if_cancelled (pass->cancellable, error);
}

/* ---- listing -------------------------------------------------------------- */

static void
get_settings (GsmReaper *self,
              Settings  *s)
{
  g_mutex_lock (&self->mutex);
  s->grace = self->grace_period;
  s->backoff = self->backoff;
  s->max_backoff = self->max_backoff;
  s->unverifiable = self->unverifiable_older_than;
  s->concurrency = self->concurrency;
  s->timeout = 0;
  g_mutex_unlock (&self->mutex);
}

GsmProvider *
_gsm_reaper_dup_provider (GsmReaper  *self,
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

/* Why @entry's VM is not deleted now, apart from the other sessions that
 * record the same VM; %NULL if it would be. Changes nothing. */
static char *
check_eligible (GsmReaper      *self,
                const Settings *s,
                GsmSession     *entry,
                double          now)
{
  g_autofree char *lost = NULL;
  char *reason;
  gboolean by_age;

  reason = check_owner (self, s, entry, now, NULL, &by_age);
  if (reason == NULL)
    reason = check_timing (s, entry, now, by_age);
  if (reason == NULL)
    check_claim (self, entry, now, &reason, &lost, NULL);
  return reason;
}

/*
 * The orphans of the registry as it is now, oldest first: one pass over
 * the entries to decide each, and one more over those that record the
 * same VMs (the VM of a dead session that a live one records too stays).
 */
static GPtrArray *
list_orphans (GsmReaper     *self,
              GCancellable  *cancellable,
              GError       **error)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (self->manager);
  g_autoptr(GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr(GHashTable) vm_ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) owners = NULL;
  g_autoptr(GPtrArray) candidates = g_ptr_array_new ();
  GsmRegistrySnapshotIter iter;
  GsmSession *session;
  GPtrArray *orphans;
  Settings s;
  double now;

  get_settings (self, &s);

  snapshot = _gsm_registry_load (registry, cancellable, error);
  if (snapshot == NULL)
    return NULL;
  now = now_seconds ();

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

  owners = index_vm_owners (snapshot, vm_ids);
  orphans = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < candidates->len; i++)
    {
      GsmSession *candidate = candidates->pdata[i];
      GPtrArray *others = g_hash_table_lookup (owners, candidate->vm_id);
      GsmSession *blocker = NULL;

      for (guint k = 0; blocker == NULL && others != NULL && k < others->len; k++)
        if (others->pdata[k] != candidate && other_blocks (self, &s, others->pdata[k], now))
          blocker = others->pdata[k];

      if (blocker == NULL)
        {
          /* Shown as it would be recorded: dead since now. */
          if (!_gsm_session_is_stale (candidate) || gsm_session_get_stale_since (candidate) > now)
            {
              GsmLiveness liveness = owner_liveness (self, candidate);

              if (liveness == GSM_LIVENESS_DEAD)
                g_ptr_array_add (orphans, _gsm_session_with_stale (candidate, now));
              else
                g_ptr_array_add (orphans, g_object_ref (candidate));
            }
          else
            g_ptr_array_add (orphans, g_object_ref (candidate));
        }
      else
        g_debug ("VM “%s” of session %s is not reaped now: live session %s records it too",
                 candidate->vm_id, gsm_session_get_session_id (candidate),
                 gsm_session_get_session_id (blocker));
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
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GError) pool_error = NULL;
  Pass pass = { 0, };
  gboolean ok;

  provider = _gsm_reaper_dup_provider (self, error);
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

  pass.self = self;
  pass.provider = provider;
  get_settings (self, &pass.s);
  pass.s.timeout = gsm_provider_get_timeout (provider);
  pass.cancellable = cancellable;
  pass.jobs = g_ptr_array_new_with_free_func (job_free);
  pass.emissions = g_ptr_array_new_with_free_func (emission_free);
  g_mutex_init (&pass.mutex);
  g_cond_init (&pass.cond);
  for (guint i = 0; i < orphans->len; i++)
    {
      GsmSession *candidate = orphans->pdata[i];
      Job *job;

      if (!gsm_session_get_has_vm (candidate) ||
          !g_hash_table_add (seen, (gpointer) gsm_session_get_session_id (candidate)))
        continue;
      job = g_new0 (Job, 1);
      job->pass = &pass;
      job->candidate = g_object_ref (candidate);
      job->token = g_uuid_string_random ();
      g_ptr_array_add (pass.jobs, job);
    }

  pass.pool = g_thread_pool_new (worker_func, &pass,
                                 (int) MIN (pass.s.concurrency, pass.jobs->len + 1), FALSE,
                                 &pool_error);
  if (pass.pool == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&pool_error));
      ok = FALSE;
    }
  else
    {
      ok = run_pass (&pass, error);
      g_thread_pool_free (pass.pool, FALSE, TRUE);
    }

  d->reaped = pass.reaped;
  d->failed = pass.failed;
  emit_later (self, pass.emissions);

  g_ptr_array_unref (pass.emissions);
  g_ptr_array_unref (pass.jobs);
  g_mutex_clear (&pass.mutex);
  g_cond_clear (&pass.cond);

  return ok;
}

/* ---- for gsmd ------------------------------------------------------------ */

void
_gsm_reaper_set_host_only (GsmReaper *self,
                           gboolean   host_only)
{
  g_mutex_lock (&self->mutex);
  self->host_only = host_only;
  g_mutex_unlock (&self->mutex);
}

double
_gsm_reaper_get_next_due (GsmReaper           *self,
                          GsmRegistrySnapshot *snapshot,
                          double               now)
{
  GsmRegistrySnapshotIter iter;
  GsmSession *session;
  double soonest = -1;
  Settings s;

  g_return_val_if_fail (GSM_IS_REAPER (self), -1);

  get_settings (self, &s);
  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      g_autofree char *reason = NULL;
      g_autofree char *lost = NULL;
      gboolean by_age;
      double due = now, until;

      if (session->vm_id == NULL)
        continue;
      reason = check_owner (self, &s, session, now, NULL, &by_age);
      if (reason != NULL)
        continue;
      if (!by_age && _gsm_session_is_stale (session) && gsm_session_get_stale_since (session) > 0)
        due = clamp_past (gsm_session_get_stale_since (session), now) + s.grace;
      else if (!by_age)
        due = now + s.grace;
      due = MAX (due, retry_due (&s, get_next_retry (session), now));
      if (due <= now && check_claim (self, session, now, &reason, &lost, &until) == CLAIM_BLOCKS)
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

/* ---- GObject ------------------------------------------------------------ */

/* A count: the environment variable @env, else @key of @group, else
 * @fallback; one out of [@min, @max] is ignored with a warning. */
static guint
config_get_count (GKeyFile   *key_file,
                  const char *group,
                  const char *key,
                  const char *env,
                  guint       min,
                  guint       max,
                  guint       fallback)
{
  g_autofree char *value = NULL;
  const char *env_value = g_getenv (env);
  guint64 n;

  if (key_file != NULL)
    value = g_key_file_get_string (key_file, group, key, NULL);
  if (value != NULL)
    {
      if (g_ascii_string_to_unsigned (value, 10, min, max, &n, NULL))
        fallback = (guint) n;
      else
        g_warning ("Ignoring %s=%s in [%s] of the configuration: not a number from %u to %u",
                   key, value, group, min, max);
    }
  if (env_value != NULL && *env_value != '\0')
    {
      if (g_ascii_string_to_unsigned (env_value, 10, min, max, &n, NULL))
        fallback = (guint) n;
      else
        g_warning ("Ignoring %s=%s: not a number from %u to %u", env, env_value, min, max);
    }

  return fallback;
}

/* The grace period when none is configured: with leases (etcd), twice the
 * TTL, so that a session whose lease lapsed while it was cut off from etcd
 * has time to come back before its VM is claimed. */
static double
default_grace (GsmSessionManager *manager)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (manager);

  if (registry != NULL && GSM_IS_ETCD_REGISTRY (registry))
    return MAX (DEFAULT_GRACE,
                FLEET_GRACE_TTLS * (double) _gsm_etcd_registry_get_ttl (GSM_ETCD_REGISTRY (registry)));
  return DEFAULT_GRACE;
}

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
                                                "GSM_REAP_GRACE", default_grace (self->manager));
  self->backoff = MIN (_gsm_config_get_seconds (key_file, "reaper", "backoff",
                                                "GSM_REAP_BACKOFF", DEFAULT_BACKOFF), MAX_BACKOFF);
  self->max_backoff = MIN (_gsm_config_get_seconds (key_file, "reaper", "max-backoff",
                                                    "GSM_REAP_MAX_BACKOFF", MAX_BACKOFF),
                           MAX_BACKOFF);
  self->concurrency = config_get_count (key_file, "reaper", "concurrency", "GSM_REAP_CONCURRENCY",
                                        1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY);
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
    case PROP_MAX_BACKOFF:
      g_value_set_double (value, gsm_reaper_get_max_backoff (self));
      break;
    case PROP_CONCURRENCY:
      g_value_set_uint (value, gsm_reaper_get_concurrency (self));
      break;
    case PROP_UNVERIFIABLE_OLDER_THAN:
      g_value_set_double (value, gsm_reaper_get_unverifiable_older_than (self));
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
    case PROP_MAX_BACKOFF:
      gsm_reaper_set_max_backoff (self, g_value_get_double (value));
      break;
    case PROP_CONCURRENCY:
      gsm_reaper_set_concurrency (self, g_value_get_uint (value));
      break;
    case PROP_UNVERIFIABLE_OLDER_THAN:
      gsm_reaper_set_unverifiable_older_than (self, g_value_get_double (value));
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
   * is not reaped). The moment it was first found dead is recorded in the
   * registry, so every reaper counts from the same moment. Unless
   * configured, 10, or with the etcd registry twice the lease TTL (30 with
   * the default TTL), so that a session cut off from etcd has time to come
   * back.
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
   * with every further failure, up to [property@Gsm.Reaper:max-backoff].
   *
   * Since: 1.0
   */
  properties[PROP_BACKOFF] =
    g_param_spec_double ("backoff", NULL, NULL, 0, MAX_BACKOFF, DEFAULT_BACKOFF,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:max-backoff:
   *
   * The longest delay before retrying a failed deletion, in seconds (at
   * most an hour). A retry time that another writer recorded further
   * ahead than this (a clock that was ahead) counts as due this long
   * from now.
   *
   * Since: 1.0
   */
  properties[PROP_MAX_BACKOFF] =
    g_param_spec_double ("max-backoff", NULL, NULL, 0, MAX_BACKOFF, MAX_BACKOFF,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:concurrency:
   *
   * How many provider commands a pass runs at once (1 to 256; 8 unless
   * `GSM_REAP_CONCURRENCY` or key `concurrency` of group `[reaper]` of the
   * configuration file says otherwise).
   *
   * Since: 1.0
   */
  properties[PROP_CONCURRENCY] =
    g_param_spec_uint ("concurrency", NULL, NULL, 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:unverifiable-older-than:
   *
   * Also reap the VMs of sessions whose liveness cannot be proven either
   * way from this host (a session of another host, or one recorded
   * without a start time) once their session is older than this, in
   * seconds; 0 (the default) never does. Such a session's process may
   * well be alive: set this only when sure that no session lives that
   * long (`gsmctl reap --unverifiable --older-than SECONDS`).
   *
   * Since: 1.0
   */
  properties[PROP_UNVERIFIABLE_OLDER_THAN] =
    g_param_spec_double ("unverifiable-older-than", NULL, NULL, 0, 10 * 365 * 24 * 3600.0, 0,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:audit-log:
   *
   * The audit log, `reap_audit.log` in the runtime directory (with the
   * file prefix): one JSON object per line, with members `time`,
   * `timestamp`, `action` (`reap`, or `cleanup` for a session deleting its
   * own VM), `vm`, `zone`, `owner` (`session`, `pid`, `host`), `command`
   * (the argument vector), `exit_status`, `outcome`, `error`, `attempt`,
   * `token` and `by` (the session that acted). Each provider command is
   * recorded before it starts, with the outcome `started`, and again once
   * it ended (`deleted`, `not-found`, `failed`, `timed-out`, `cancelled`),
   * with the same `token`. When a reaper died while its command ran, the
   * reaper that takes its claim over records that attempt's outcome as
   * `unknown`, with the dead reaper's `token`.
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
   * @vm: the dead owner's entry, with the VM, as it recorded it
   * @result: what the provider command did
   *
   * Emitted when a VM was deleted (or the provider reported it gone) and
   * its entry removed.
   *
   * Since: 1.0
   */
  signals[VM_REAPED] =
    g_signal_new ("vm-reaped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, GSM_TYPE_PROVIDER_RESULT);

  /**
   * GsmReaper::reap-failed:
   * @self: the reaper
   * @vm: the owner's entry, with the VM
   * @error: why it could not be deleted
   *
   * Emitted when deleting a VM failed; its entry stays and the deletion
   * is retried after the backoff.
   *
   * Since: 1.0
   */
  signals[REAP_FAILED] =
    g_signal_new ("reap-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, G_TYPE_ERROR);

  /**
   * GsmReaper::reap-skipped:
   * @self: the reaper
   * @vm: the owner's entry, with the VM
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
                  NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, G_TYPE_STRING);
}

static void
gsm_reaper_init (GsmReaper *self)
{
  g_mutex_init (&self->mutex);
  self->grace_period = DEFAULT_GRACE;
  self->backoff = DEFAULT_BACKOFF;
  self->max_backoff = MAX_BACKOFF;
  self->concurrency = DEFAULT_CONCURRENCY;
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
 * gsm_reaper_get_max_backoff:
 * @self: a #GsmReaper
 *
 * Gets the longest delay before retrying a failed deletion.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_max_backoff (GsmReaper *self)
{
  double v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  g_mutex_lock (&self->mutex);
  v = self->max_backoff;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_max_backoff:
 * @self: a #GsmReaper
 * @seconds: the longest delay, at most 3600
 *
 * Sets the longest delay before retrying a failed deletion (see
 * [property@Gsm.Reaper:max-backoff]).
 *
 * Since: 1.0
 */
void
gsm_reaper_set_max_backoff (GsmReaper *self,
                            double     seconds)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0 && seconds <= MAX_BACKOFF);

  g_mutex_lock (&self->mutex);
  changed = self->max_backoff != seconds;
  self->max_backoff = seconds;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_BACKOFF]);
}

/**
 * gsm_reaper_get_concurrency:
 * @self: a #GsmReaper
 *
 * Gets how many provider commands a pass runs at once.
 *
 * Returns: the limit
 *
 * Since: 1.0
 */
guint
gsm_reaper_get_concurrency (GsmReaper *self)
{
  guint v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 1);
  g_mutex_lock (&self->mutex);
  v = self->concurrency;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_concurrency:
 * @self: a #GsmReaper
 * @concurrency: 1 to 256
 *
 * Sets how many provider commands a pass runs at once. A pass already
 * running keeps its limit.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_concurrency (GsmReaper *self,
                            guint      concurrency)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (concurrency >= 1 && concurrency <= MAX_CONCURRENCY);

  g_mutex_lock (&self->mutex);
  changed = self->concurrency != concurrency;
  self->concurrency = concurrency;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONCURRENCY]);
}

/**
 * gsm_reaper_get_unverifiable_older_than:
 * @self: a #GsmReaper
 *
 * Gets the age past which the VM of a session whose liveness cannot be
 * proven is reaped (see [property@Gsm.Reaper:unverifiable-older-than]).
 *
 * Returns: seconds, 0 for never
 *
 * Since: 1.0
 */
double
gsm_reaper_get_unverifiable_older_than (GsmReaper *self)
{
  double v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  g_mutex_lock (&self->mutex);
  v = self->unverifiable_older_than;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_unverifiable_older_than:
 * @self: a #GsmReaper
 * @seconds: an age in seconds, or 0 for never
 *
 * Asks the reaper to also delete the VMs of sessions whose liveness
 * cannot be proven from this host (another host, no start time recorded)
 * once their session is older than @seconds. Their processes may be
 * alive: see [property@Gsm.Reaper:unverifiable-older-than].
 *
 * Since: 1.0
 */
void
gsm_reaper_set_unverifiable_older_than (GsmReaper *self,
                                        double     seconds)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0);

  g_mutex_lock (&self->mutex);
  changed = self->unverifiable_older_than != seconds;
  self->unverifiable_older_than = seconds;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_UNVERIFIABLE_OLDER_THAN]);
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
 * Lists the entries whose VM a pass would delete now: owner provably dead
 * (or as old as [property@Gsm.Reaper:unverifiable-older-than] asks),
 * grace period and backoff over, not claimed by a reaper whose command
 * may still run. Changes nothing.
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
 * Runs a pass: deletes the VM of each orphan through the provider, up to
 * [property@Gsm.Reaper:concurrency] at once, and removes its entry. No VM
 * outside @orphans is deleted, and each entry is checked again right
 * before its VM is deleted (see [class@Gsm.Reaper]); the pass also
 * rewrites as now any time in the future that another writer recorded in
 * an entry with a VM. A failed deletion does not end the pass: it is
 * reported by [signal@Gsm.Reaper::reap-failed] and counted.
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
