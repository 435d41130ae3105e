/* gsm-reaper-pass.c: one reap pass
 *
 * A pass deletes the VMs of a list of orphans through the provider. For
 * each VM, three steps:
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
 *     audit log (and logged, with the fields GSM_ACTION, SESSION_ID and
 *     VM_ID for the journal) before it starts and again with its outcome.
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
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-audit-private.h"
#include "gsm-provider-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/* A claimed VM's command must start within this much of the claim
 * (monotonic clock), else it is claimed again first. */
#define START_WITHIN (GSM_REAPER_CLAIM_MARGIN / 2)
/* The most VMs claimed ahead of the workers in one round. */
#define MAX_CLAIM_BATCH 1024
/* While all workers are busy, a round waits at least this long after the
 * last one (monotonic µs), to settle more deletions at once. */
#define ROUND_GATHER_US (25 * 1000)

/*
 * A pass deletes many VMs at once, up to the concurrency limit, with as
 * few rounds under the registry lock as it can: each round settles every
 * deletion that ended since the last, records the commands that started
 * (their process group, in the claim), and claims the next batch, all in
 * one update. Workers of a thread pool run the commands.
 */
typedef enum
{
  JOB_PENDING,   /* not claimed yet */
  JOB_CLAIMED,   /* claimed, waiting for a worker */
  JOB_RUNNING,   /* its command runs */
  JOB_DONE,      /* its command ended: to settle */
  JOB_UNSTARTED, /* claimed, not run: its claim is released or renewed */
  JOB_FINISHED,
} JobState;

typedef struct _Pass Pass;

typedef struct
{
  Pass       *pass;
  GsmSession *candidate; /* as listed */
  char       *token;
  JobState    state;
  GsmSession *claimed;      /* the entry as claimed */
  gint64      claimed_mono; /* monotonic µs */
  /* set by the worker, under the pass's mutex */
  int                provider_pid;
  guint64            provider_start;
  double             provider_started_at;
  gboolean           provider_recorded;
  gboolean           renew; /* UNSTARTED: claim again, then run */
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
  GsmReaper        *self;
  GsmProvider      *provider;
  GsmReaperSettings s;
  GCancellable     *cancellable;
  GPtrArray        *jobs;    /* Job*, in the order to claim them */
  guint             next;    /* the first job never offered to a round */
  GPtrArray        *signals; /* GsmReaperEvent: what to emit */
  guint             reaped;
  guint             failed;

  GMutex       mutex; /* guards the jobs' states and what follows */
  GCond        cond;
  guint        in_workers; /* jobs handed to the pool, not yet back */
  guint        events;     /* bumped whenever a worker changed a job */
  guint        ended;      /* commands ended since the last round */
  gboolean     stop;       /* claim and start nothing more */
  GThreadPool *pool;
};

/* One lock round's work, and its decisions. An update function may be
 * called more than once (etcd retries on a conflict): the decisions are
 * cleared at each call, and only the last call's are applied. */
typedef struct
{
  Pass      *pass;
  double     now;
  gboolean   normalize;
  GPtrArray *to_settle;  /* DONE */
  GPtrArray *to_record;  /* running, command not yet in the claim */
  GPtrArray *to_release; /* UNSTARTED */
  GPtrArray *to_claim;   /* PENDING */
  /* decisions */
  GArray    *settled;      /* gboolean, per to_settle */
  GArray    *released;     /* gboolean, per to_release */
  GPtrArray *claimed;      /* GsmSession* or NULL, per to_claim */
  GPtrArray *skip_reasons; /* char* or NULL, per to_claim */
  GPtrArray *lost;         /* char* or NULL, per to_claim: a dead reaper's attempt */
  GPtrArray *lost_entries; /* GsmSession* or NULL, per to_claim: the entry it held */
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
  claim = _gsm_reaper_get_object (entry, GSM_REAPER_CLAIM_MEMBER);
  if (claim == NULL || g_strcmp0 (_gsm_reaper_json_string (claim, "token"), job->token) != 0)
    return NULL; /* taken over: the new holder settles it */
  return entry;
}

/* Why another session that records @entry's VM keeps it from being
 * deleted, or %NULL. */
static char *
blocked_by_other (Round          *r,
                  GsmRegistryTxn *txn,
                  GHashTable     *owners,
                  GsmSession     *entry)
{
  GPtrArray *others = g_hash_table_lookup (owners, gsm_session_get_vm_id (entry));

  for (guint i = 0; others != NULL && i < others->len; i++)
    {
      const char *other_id = gsm_session_get_session_id (others->pdata[i]);
      GsmSession *other = _gsm_registry_txn_lookup (txn, other_id);

      if (other == NULL ||
          g_strcmp0 (other_id, gsm_session_get_session_id (entry)) == 0 ||
          g_strcmp0 (gsm_session_get_vm_id (other), gsm_session_get_vm_id (entry)) != 0)
        continue;
      if (_gsm_reaper_other_blocks (r->pass->self, &r->pass->s, other, r->now))
        return _gsm_reaper_records_it_too (other);
    }

  return NULL;
}

/* Decides whether @job's VM can be claimed now, and claims it. */
static void
claim_one (Round          *r,
           GsmRegistryTxn *txn,
           GHashTable     *owners,
           Job            *job)
{
  Pass       *pass = r->pass;
  GsmReaper  *self = pass->self;
  const char *session_id = job_session_id (job);
  GsmSession *entry = _gsm_registry_txn_lookup (txn, session_id);
  g_autoptr (GsmSession) fixed = NULL;
  g_autoptr (GsmSession) claimed = NULL;
  g_autoptr (JsonNode) claim = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *lost = NULL;
  GsmLiveness      liveness = GSM_LIVENESS_UNVERIFIABLE;
  gboolean         by_age;

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

  reason = _gsm_reaper_check_owner (self, &pass->s, entry, r->now, &liveness, &by_age);
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
  fixed = _gsm_reaper_normalize_times (&pass->s, entry, r->now);
  if (fixed != NULL)
    {
      _gsm_registry_txn_put (txn, fixed);
      entry = _gsm_registry_txn_lookup (txn, session_id);
    }

  reason = _gsm_reaper_check_timing (&pass->s, entry, r->now, by_age);
  if (reason == NULL)
    _gsm_reaper_check_claim (self, entry, r->now, &reason, &lost, NULL);
  if (reason != NULL)
    {
      r->skip_reasons->pdata[r->skip_reasons->len - 1] = g_steal_pointer (&reason);
      return;
    }

  reason = blocked_by_other (r, txn, owners, entry);
  if (reason != NULL)
    {
      r->skip_reasons->pdata[r->skip_reasons->len - 1] = g_steal_pointer (&reason);
      return;
    }

  if (lost != NULL)
    {
      /* The dead reaper's attempt counts, as one whose outcome is unknown;
       * this one follows at once. */
      g_autoptr (JsonNode) attempts =
          _gsm_reaper_make_attempts (&pass->s, _gsm_reaper_get_attempts (entry) + 1, r->now,
                                     "unknown", lost, TRUE);
      g_autoptr (GsmSession) counted =
          _gsm_session_with_member (entry, GSM_REAPER_ATTEMPTS_MEMBER, attempts);

      r->lost_entries->pdata[r->lost_entries->len - 1] = g_object_ref (entry);
      r->lost->pdata[r->lost->len - 1] = g_steal_pointer (&lost);
      _gsm_registry_txn_put (txn, counted);
      entry = _gsm_registry_txn_lookup (txn, session_id);
    }

  claim = _gsm_reaper_make_claim (self, job->token, r->now, pass->s.timeout);
  claimed = _gsm_session_with_member (entry, GSM_REAPER_CLAIM_MEMBER, claim);
  _gsm_registry_txn_put (txn, claimed);
  r->claimed->pdata[r->claimed->len - 1] = g_object_ref (claimed);
}

/* Deletions that ended: the entry goes, or the attempt is recorded. */
static void
settle_ended (Round          *r,
              GsmRegistryTxn *txn)
{
  for (guint i = 0; i < r->to_settle->len; i++)
    {
      Job        *job = r->to_settle->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      gboolean    settled = entry != NULL;

      if (entry != NULL && job->succeeded)
        _gsm_registry_txn_remove (txn, job_session_id (job));
      else if (entry != NULL)
        {
          g_autoptr (GsmSession) released =
              _gsm_session_with_member (entry, GSM_REAPER_CLAIM_MEMBER, NULL);
          g_autoptr (JsonNode) attempts =
              _gsm_reaper_make_attempts (&r->pass->s, _gsm_reaper_get_attempts (entry) + 1, r->now,
                                         job->outcome, job->error ? job->error->message : NULL,
                                         FALSE);
          g_autoptr (GsmSession) recorded =
              _gsm_session_with_member (released, GSM_REAPER_ATTEMPTS_MEMBER, attempts);

          _gsm_registry_txn_put (txn, recorded);
        }
      g_array_append_val (r->settled, settled);
    }
}

/* Commands that started: their process group goes into the claim, so
 * that a reaper taking over after this one died knows what to wait for. */
static void
record_started (Round          *r,
                GsmRegistryTxn *txn)
{
  for (guint i = 0; i < r->to_record->len; i++)
    {
      Job        *job = r->to_record->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      g_autoptr (JsonNode) claim = NULL;
      g_autoptr (GsmSession) recorded = NULL;

      if (entry == NULL)
        continue;
      claim = _gsm_reaper_claim_with_provider (_gsm_reaper_get_object (entry,
                                                                       GSM_REAPER_CLAIM_MEMBER),
                                               job->provider_pid, job->provider_start,
                                               job->provider_started_at, r->pass->s.timeout);
      recorded = _gsm_session_with_member (entry, GSM_REAPER_CLAIM_MEMBER, claim);
      _gsm_registry_txn_put (txn, recorded);
    }
}

/* Claims never used: renewed (to run now), or dropped. */
static void
release_unused (Round          *r,
                GsmRegistryTxn *txn)
{
  for (guint i = 0; i < r->to_release->len; i++)
    {
      Job        *job = r->to_release->pdata[i];
      GsmSession *entry = lookup_claimed (txn, job);
      gboolean    ok = entry != NULL;

      if (entry != NULL)
        {
          g_autoptr (JsonNode) claim =
              job->renew ? _gsm_reaper_make_claim (r->pass->self, job->token, r->now,
                                                   r->pass->s.timeout)
                         : NULL;
          g_autoptr (GsmSession) changed =
              _gsm_session_with_member (entry, GSM_REAPER_CLAIM_MEMBER, claim);

          _gsm_registry_txn_put (txn, changed);
        }
      g_array_append_val (r->released, ok);
    }
}

/* Rewrites as now the times from a clock that was ahead, in every entry
 * with a VM (the first round of a pass). */
static void
normalize_all (Round          *r,
               GsmRegistryTxn *txn)
{
  GsmRegistrySnapshotIter iter;
  const char             *key;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
  while (_gsm_registry_snapshot_iter_next (&iter, &key, &session))
    {
      g_autoptr (GsmSession) fixed = NULL;
      GsmSession *current;

      if (session->vm_id == NULL)
        continue;
      current = _gsm_registry_txn_lookup (txn, key);
      if (current != NULL &&
          (fixed = _gsm_reaper_normalize_times (&r->pass->s, current, r->now)) != NULL)
        _gsm_registry_txn_put (txn, fixed);
    }
}

/* Claims the VMs of the round that can be claimed now. */
static void
claim_batch (Round          *r,
             GsmRegistryTxn *txn)
{
  g_autoptr (GHashTable) vm_ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) owners = NULL;

  for (guint i = 0; i < r->to_claim->len; i++)
    {
      Job *job = r->to_claim->pdata[i];

      g_hash_table_add (vm_ids, (gpointer) gsm_session_get_vm_id (job->candidate));
    }
  owners = _gsm_reaper_index_vm_owners (_gsm_registry_txn_get_base (txn), vm_ids);

  for (guint i = 0; i < r->to_claim->len; i++)
    claim_one (r, txn, owners, r->to_claim->pdata[i]);
}

static gboolean
txn_round (GsmRegistryTxn *txn,
           gpointer        user_data,
           GError        **error)
{
  Round *r = user_data;

  round_clear_decisions (r);
  settle_ended (r, txn);
  record_started (r, txn);
  release_unused (r, txn);
  if (r->normalize)
    normalize_all (r, txn);
  if (r->to_claim->len > 0)
    claim_batch (r, txn);

  return TRUE;
}

/* Logs an event of the pass for the journal: GSM_ACTION (`reap-start`,
 * `reap`, `reap-failed`, `reap-unknown`, `skip`), SESSION_ID, VM_ID and
 * GSM_OUTCOME, with the message. */
static void
log_event (GLogLevelFlags level,
           const char    *action,
           GsmSession    *entry,
           const char    *outcome,
           const char    *format,
           ...) G_GNUC_PRINTF (5, 6);

static void
log_event (GLogLevelFlags level,
           const char    *action,
           GsmSession    *entry,
           const char    *outcome,
           const char    *format,
           ...)
{
  g_autofree char *message = NULL;
  va_list          args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_log_structured (G_LOG_DOMAIN, level,
                    "GSM_ACTION", action,
                    "SESSION_ID", gsm_session_get_session_id (entry),
                    "VM_ID", gsm_session_get_vm_id (entry),
                    "GSM_OUTCOME", outcome,
                    "MESSAGE", "%s", message);
}

/* Records an attempt on @entry's VM in the audit log (before its command
 * starts, with the outcome `started`, and once it ended), and logs it. */
static void
record_attempt (GsmReaper         *self,
                GsmSession        *entry,
                guint              attempt,
                const char        *token,
                const char *const *argv,
                GsmProviderResult *result,
                const char        *outcome,
                const char        *error_message)
{
  g_autoptr (GError) error = NULL;
  GsmAuditRecord record = {
    0,
  };
  const char *vm_id = gsm_session_get_vm_id (entry);
  const char *session_id = gsm_session_get_session_id (entry);

  record.action = "reap";
  record.vm_id = vm_id;
  record.zone = gsm_session_get_zone (entry);
  record.session_id = session_id;
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

  if (g_strcmp0 (outcome, "started") == 0)
    log_event (G_LOG_LEVEL_INFO, "reap-start", entry, outcome,
               "Deleting VM “%s” of dead session %s (attempt %u)", vm_id, session_id, attempt);
  else if (g_strcmp0 (outcome, "deleted") == 0 || g_strcmp0 (outcome, "not-found") == 0)
    log_event (G_LOG_LEVEL_INFO, "reap", entry, outcome,
               "Reaped VM “%s” of dead session %s (%s)", vm_id, session_id, outcome);
  else if (g_strcmp0 (outcome, "unknown") == 0)
    log_event (G_LOG_LEVEL_INFO, "reap-unknown", entry, outcome,
               "VM “%s” of dead session %s: %s", vm_id, session_id,
               error_message ? error_message : "what an earlier attempt did is unknown");
  else
    log_event (G_LOG_LEVEL_INFO, "reap-failed", entry, outcome,
               "Could not delete VM “%s” of dead session %s (%s): %s", vm_id, session_id,
               outcome, error_message ? error_message : "no reason given");
}

static void
spawned_cb (int      pid,
            guint64  start_time,
            gpointer user_data)
{
  Job  *job = user_data;
  Pass *pass = job->pass;

  g_mutex_lock (&pass->mutex);
  job->provider_pid = pid;
  job->provider_start = start_time;
  job->provider_started_at = _gsm_reaper_now ();
  pass->events++;
  g_cond_signal (&pass->cond);
  g_mutex_unlock (&pass->mutex);
}

/* A worker: runs @job's command, recorded in the audit log before it
 * starts and once it ended. */
static void
worker_func (gpointer data,
             gpointer user_data)
{
  Job        *job = data;
  Pass       *pass = user_data;
  GsmSession *claimed = job->claimed;
  g_auto (GStrv) argv = NULL;
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;
  guint       attempt = _gsm_reaper_get_attempts (claimed) + 1;
  gboolean    succeeded = FALSE;
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
      record_attempt (pass->self, claimed, attempt, job->token, (const char *const *) argv,
                      NULL, "started", NULL);
      succeeded = _gsm_provider_run (pass->provider, (const char *const *) argv,
                                     gsm_session_get_vm_id (claimed), spawned_cb, job, &result,
                                     pass->cancellable, &error);
    }
  outcome = result ? gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result))
                   : "failed";
  record_attempt (pass->self, claimed, attempt, job->token, (const char *const *) argv, result,
                  outcome, error ? error->message : NULL);

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
  g_autoptr (GError) error = NULL;

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
          _gsm_reaper_add_event (pass->signals, GSM_REAPER_EVENT_REAPED, job->claimed,
                                 job->result, NULL, NULL);
        }
      else
        {
          pass->failed++;
          _gsm_reaper_add_event (pass->signals, GSM_REAPER_EVENT_FAILED, job->claimed, NULL,
                                 job->error, NULL);
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
      old = _gsm_reaper_get_object (entry, GSM_REAPER_CLAIM_MEMBER);
      record_attempt (self, entry, _gsm_reaper_get_attempts (entry) + 1,
                      old ? _gsm_reaper_json_string (old, "token") : NULL, NULL, NULL, "unknown",
                      r->lost->pdata[i]);
    }

  for (guint i = 0; i < r->to_claim->len; i++)
    {
      Job        *job = r->to_claim->pdata[i];
      GsmSession *claimed = r->claimed->pdata[i];

      if (claimed == NULL)
        {
          const char *reason = r->skip_reasons->pdata[i];

          log_event (G_LOG_LEVEL_DEBUG, "skip", job->candidate, "skipped",
                     "Not reaping VM “%s” of session %s: %s",
                     gsm_session_get_vm_id (job->candidate), job_session_id (job), reason);
          _gsm_reaper_add_event (pass->signals, GSM_REAPER_EVENT_SKIPPED, job->candidate, NULL,
                                 NULL, reason);
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

/* After a round failed: the deletions whose outcome stays unrecorded. */
static void
warn_unsettled (Pass         *pass,
                const GError *error)
{
  guint unsettled = 0;

  for (guint i = 0; i < pass->jobs->len; i++)
    if (((Job *) pass->jobs->pdata[i])->state != JOB_FINISHED &&
        ((Job *) pass->jobs->pdata[i])->state != JOB_PENDING)
      unsettled++;
  if (unsettled > 0)
    g_warning ("Cannot record the outcome of %u VM deletion%s: %s (their claims stay until "
               "this process exits)",
               unsettled, unsettled == 1 ? "" : "s", error->message);
}

/* Runs the pass to its end. FALSE for an error of the registry, or when
 * cancelled; the deletions that ran are settled either way. */
static gboolean
run_pass (Pass    *pass,
          GError **error)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (pass->self->manager);
  g_autoptr (GError) round_error = NULL;
  gboolean first = TRUE;
  guint    failed_at_events = G_MAXUINT;
  guint    n_rounds = 0;
  gint64   last_round = 0, last_round_took = 0, round_started;

  g_mutex_lock (&pass->mutex);
  for (;;)
    {
      g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
      g_autoptr (GError) local_error = NULL;
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

      r.now = _gsm_reaper_now ();
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
      warn_unsettled (pass, round_error);
      g_propagate_error (error, g_steal_pointer (&round_error));
      return FALSE;
    }

  return !g_cancellable_set_error_if_cancelled (pass->cancellable, error);
}

gboolean
_gsm_reaper_reap (GsmReaper    *self,
                  GPtrArray    *list,
                  guint        *reaped,
                  guint        *failed,
                  GCancellable *cancellable,
                  GError      **error)
{
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GError) pool_error = NULL;
  Pass pass = {
    0,
  };
  gboolean ok;

  *reaped = *failed = 0;
  provider = _gsm_reaper_dup_provider (self, error);
  if (provider == NULL)
    return FALSE;

  if (list != NULL)
    orphans = g_ptr_array_ref (list);
  else
    {
      /* Record newly dead sessions first: their grace period starts. */
      if (gsm_session_manager_cleanup_stale_sessions_sync (self->manager, cancellable, error) < 0)
        return FALSE;
      orphans = _gsm_reaper_list_orphans (self, cancellable, error);
      if (orphans == NULL)
        return FALSE;
    }

  pass.self = self;
  pass.provider = provider;
  _gsm_reaper_get_settings (self, &pass.s);
  pass.s.timeout = gsm_provider_get_timeout (provider);
  pass.cancellable = cancellable;
  pass.jobs = g_ptr_array_new_with_free_func (job_free);
  pass.signals = _gsm_reaper_events_new ();
  g_mutex_init (&pass.mutex);
  g_cond_init (&pass.cond);
  for (guint i = 0; i < orphans->len; i++)
    {
      GsmSession *candidate = orphans->pdata[i];
      Job        *job;

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

  *reaped = pass.reaped;
  *failed = pass.failed;
  _gsm_reaper_emit_later (self, pass.signals);

  g_ptr_array_unref (pass.signals);
  g_ptr_array_unref (pass.jobs);
  g_mutex_clear (&pass.mutex);
  g_cond_clear (&pass.cond);

  return ok;
}
