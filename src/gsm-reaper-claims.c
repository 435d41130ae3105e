/* gsm-reaper-claims.c: what a reaper writes in an entry
 *
 * Before it deletes a VM, a reaper claims it: member "reap_claim" of the
 * entry says who (token, pid, start time, host, boot), since when and
 * until when, and once it started the provider command's process group.
 * A failed deletion is recorded in member "reap_attempts" (count, last
 * outcome and error, next retry). This file makes, reads and judges those
 * members.
 *
 * Times written by others (when a session was found dead, when to retry,
 * a claim's times) may come from a clock that was ahead: one in the future
 * is never a reason to wait longer than the grace period, the longest
 * backoff or a claim's own duration, and a pass rewrites it as now.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "gsm-process-private.h"
#include "gsm-provider-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/* The longest a provider's timeout can be (0, no limit, counts as this). */
#define MAX_PROVIDER_TIMEOUT (24 * 3600.0)

double
_gsm_reaper_round_up (double seconds)
{
  double whole = (double) (gint64) seconds;

  return whole < seconds ? whole + 1 : whole;
}

double
_gsm_reaper_now (void)
{
  return g_get_real_time () / (double) G_USEC_PER_SEC;
}

/* A time another writer recorded, never later than @now: a clock that was
 * ahead must not make anyone wait longer than the delay it stands for. */
double
_gsm_reaper_clamp_past (double t,
                        double now)
{
  return t > now ? now : t;
}

double
_gsm_reaper_json_double (JsonObject *object,
                         const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return json_node_get_double (node);
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  return 0;
}

const char *
_gsm_reaper_json_string (JsonObject *object,
                         const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

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

JsonObject *
_gsm_reaper_get_object (GsmSession *session,
                        const char *name)
{
  JsonNode *node = _gsm_session_get_member (session, name);

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  return json_node_get_object (node);
}

guint
_gsm_reaper_get_attempts (GsmSession *session)
{
  JsonObject *attempts = _gsm_reaper_get_object (session, GSM_REAPER_ATTEMPTS_MEMBER);
  double      count = attempts ? _gsm_reaper_json_double (attempts, "count") : 0;

  return count > 0 && count < G_MAXUINT ? (guint) count : 0;
}

double
_gsm_reaper_get_next_retry (GsmSession *session)
{
  JsonObject *attempts = _gsm_reaper_get_object (session, GSM_REAPER_ATTEMPTS_MEMBER);

  return attempts ? _gsm_reaper_json_double (attempts, "next_retry_at") : 0;
}

/* How long a claim may hold: the provider's timeout, and a margin. */
static double
claim_duration (double timeout)
{
  return (timeout > 0 ? timeout : MAX_PROVIDER_TIMEOUT) + GSM_REAPER_CLAIM_MARGIN;
}

JsonNode *
_gsm_reaper_make_claim (GsmReaper  *self,
                        const char *token,
                        double      now,
                        double      timeout)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

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
JsonNode *
_gsm_reaper_claim_with_provider (JsonObject *claim,
                                 int         pid,
                                 guint64     start_time,
                                 double      started_at,
                                 double      timeout)
{
  JsonNode   *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *copy = json_object_new ();
  JsonObject *provider = json_object_new ();
  GList      *members = json_object_get_members (claim);

  for (GList *l = members; l != NULL; l = l->next)
    json_object_set_member (copy, l->data,
                            json_node_copy (json_object_get_member (claim, l->data)));
  g_list_free (members);

  json_object_set_int_member (provider, "pid", pid);
  json_object_set_int_member (provider, "start_time", (gint64) start_time);
  json_object_set_double_member (provider, "started_at", started_at);
  json_object_set_object_member (copy, "provider", provider);
  json_object_set_double_member (copy, "expires_at",
                                 MAX (_gsm_reaper_json_double (claim, "expires_at"),
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
  double at = _gsm_reaper_json_double (claim, "at");
  double duration = _gsm_reaper_json_double (claim, "expires_at") - at;

  duration = CLAMP (duration, 0, claim_duration (0));
  return _gsm_reaper_clamp_past (at, now) + duration;
}

/* The claim of a reaper of this host that is dead: taken over once the
 * command it started is provably over (or the host rebooted), else once
 * the claim's deadline passed. */
static GsmReaperClaimState
check_dead_reaper (JsonObject *claim,
                   const char *host,
                   double      pid,
                   double      now,
                   double      deadline,
                   char      **reason,
                   char      **lost)
{
  const char *boot_id = _gsm_reaper_json_string (claim, "boot_id");
  JsonObject *provider = member_object (claim, "provider");
  double      provider_pid = provider ? _gsm_reaper_json_double (provider, "pid") : 0;

  /* A reaper of this host. After a reboot, nothing it ran is left. */
  if (boot_id != NULL && *_gsm_process_get_boot_id () != '\0' &&
      g_strcmp0 (boot_id, _gsm_process_get_boot_id ()) != 0)
    {
      *lost = g_strdup_printf ("reaper pid %.0f on %s held the claim when the host rebooted; "
                               "what its command did is unknown",
                               pid, host);
      return GSM_REAPER_CLAIM_TAKE_OVER;
    }
  if (provider_pid >= 2 && provider_pid <= G_MAXINT)
    {
      if (_gsm_provider_group_is_gone ((int) provider_pid,
                                       (guint64) _gsm_reaper_json_double (provider, "start_time")))
        {
          *lost = g_strdup_printf ("reaper pid %.0f on %s died while its provider command "
                                   "(pid %.0f) ran; what the command did is unknown",
                                   pid, host, provider_pid);
          return GSM_REAPER_CLAIM_TAKE_OVER;
        }
      if (now < deadline)
        {
          *reason = g_strdup_printf ("reaper pid %.0f died, but the provider command it "
                                     "started (process group %.0f) still runs; left alone "
                                     "until it ends, or for %.0f s at most",
                                     pid, provider_pid, _gsm_reaper_round_up (deadline - now));
          return GSM_REAPER_CLAIM_BLOCKS;
        }
      *lost = g_strdup_printf ("reaper pid %.0f on %s died while its provider command "
                               "(pid %.0f) ran, and the command still ran at the claim's "
                               "deadline; what it did is unknown",
                               pid, host, provider_pid);
      return GSM_REAPER_CLAIM_TAKE_OVER;
    }
  if (now < deadline)
    {
      *reason = g_strdup_printf ("reaper pid %.0f died holding the claim before recording "
                                 "its command; left alone until the claim's deadline, in "
                                 "%.0f s",
                                 pid, _gsm_reaper_round_up (deadline - now));
      return GSM_REAPER_CLAIM_BLOCKS;
    }
  *lost = g_strdup_printf ("reaper pid %.0f on %s died holding the claim; whether its "
                           "command ran, and what it did, is unknown",
                           pid, host);
  return GSM_REAPER_CLAIM_TAKE_OVER;
}

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
GsmReaperClaimState
_gsm_reaper_check_claim (GsmReaper  *self,
                         GsmSession *session,
                         double      now,
                         char      **reason,
                         char      **lost,
                         double     *until)
{
  JsonObject *claim = _gsm_reaper_get_object (session, GSM_REAPER_CLAIM_MEMBER);
  g_autoptr (GsmSession) claimer = NULL;
  const char *host;
  double      pid, start_time, deadline;

  if (until != NULL)
    *until = -1;
  if (claim == NULL)
    return GSM_REAPER_CLAIM_NONE;

  host = _gsm_reaper_json_string (claim, "host");
  pid = _gsm_reaper_json_double (claim, "pid");
  start_time = _gsm_reaper_json_double (claim, "start_time");
  deadline = claim_deadline (claim, now);
  if (until != NULL)
    *until = deadline;

  if (host == NULL || pid < 2 || pid > G_MAXINT)
    {
      if (now < deadline)
        {
          *reason = g_strdup_printf ("claimed by an unknown reaper, for %.0f s more",
                                     _gsm_reaper_round_up (deadline - now));
          return GSM_REAPER_CLAIM_BLOCKS;
        }
      *lost = g_strdup ("an unknown reaper's claim passed its deadline; what its command did is "
                        "unknown");
      return GSM_REAPER_CLAIM_TAKE_OVER;
    }

  if ((int) pid == getpid () && (guint64) start_time == self->start_time &&
      g_strcmp0 (host, gsm_session_manager_get_hostname (self->manager)) == 0)
    {
      *reason = g_strdup ("being deleted by another pass of this process");
      if (until != NULL)
        *until = -1;
      return GSM_REAPER_CLAIM_BLOCKS;
    }

  claimer = _gsm_session_new ("reap-claim", (int) pid, host,
                              _gsm_reaper_json_double (claim, "at"), (guint64) start_time,
                              _gsm_reaper_json_string (claim, "boot_id"));
  switch (_gsm_liveness_probe_check (_gsm_session_manager_get_probe (self->manager), claimer))
    {
    case GSM_LIVENESS_ALIVE:
      *reason = g_strdup_printf ("being deleted by reaper pid %.0f on %s", pid, host);
      if (until != NULL)
        *until = -1;
      return GSM_REAPER_CLAIM_BLOCKS;

    case GSM_LIVENESS_DEAD:
      return check_dead_reaper (claim, host, pid, now, deadline, reason, lost);

    case GSM_LIVENESS_UNVERIFIABLE:
    default:
      if (now < deadline)
        {
          *reason = g_strdup_printf ("being deleted by reaper pid %.0f on %s (for %.0f s at "
                                     "most)",
                                     pid, host, _gsm_reaper_round_up (deadline - now));
          return GSM_REAPER_CLAIM_BLOCKS;
        }
      *lost = g_strdup_printf ("reaper pid %.0f on %s held the claim past its deadline; what "
                               "its command did is unknown",
                               pid, host);
      return GSM_REAPER_CLAIM_TAKE_OVER;
    }
}

/* A copy of @entry whose timestamps from a clock that was ahead (when it
 * was found dead, when to retry, a claim's times) are rewritten from @now;
 * %NULL if none is in the future. */
GsmSession *
_gsm_reaper_normalize_times (const GsmReaperSettings *s,
                             GsmSession              *entry,
                             double                   now)
{
  g_autoptr (GsmSession) fixed = NULL;
  JsonObject *attempts, *claim;

  if (_gsm_session_is_stale (entry) && gsm_session_get_stale_since (entry) > now)
    fixed = _gsm_session_with_stale (entry, now);

  attempts = _gsm_reaper_get_object (fixed ? fixed : entry, GSM_REAPER_ATTEMPTS_MEMBER);
  if (attempts != NULL &&
      _gsm_reaper_json_double (attempts, "next_retry_at") > now + s->max_backoff)
    {
      g_autoptr (JsonNode) copy =
          json_node_copy (_gsm_session_get_member (fixed ? fixed : entry,
                                                   GSM_REAPER_ATTEMPTS_MEMBER));
      GsmSession *next;

      json_object_set_double_member (json_node_get_object (copy), "next_retry_at",
                                     now + s->max_backoff);
      if (_gsm_reaper_json_double (json_node_get_object (copy), "last_attempt_at") > now)
        json_object_set_double_member (json_node_get_object (copy), "last_attempt_at", now);
      next = _gsm_session_with_member (fixed ? fixed : entry, GSM_REAPER_ATTEMPTS_MEMBER, copy);
      g_clear_object (&fixed);
      fixed = next;
    }

  claim = _gsm_reaper_get_object (fixed ? fixed : entry, GSM_REAPER_CLAIM_MEMBER);
  if (claim != NULL && _gsm_reaper_json_double (claim, "at") > now)
    {
      g_autoptr (JsonNode) copy =
          json_node_copy (_gsm_session_get_member (fixed ? fixed : entry, GSM_REAPER_CLAIM_MEMBER));
      GsmSession *next;

      json_object_set_double_member (json_node_get_object (copy), "expires_at",
                                     claim_deadline (claim, now));
      json_object_set_double_member (json_node_get_object (copy), "at", now);
      next = _gsm_session_with_member (fixed ? fixed : entry, GSM_REAPER_CLAIM_MEMBER, copy);
      g_clear_object (&fixed);
      fixed = next;
    }

  return g_steal_pointer (&fixed);
}

JsonNode *
_gsm_reaper_make_attempts (const GsmReaperSettings *s,
                           guint                    count,
                           double                   now,
                           const char              *outcome,
                           const char              *error_message,
                           gboolean                 due_now)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
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

const char *
_gsm_reaper_delete_id (GsmSession *entry)
{
  JsonObject *inventory = _gsm_reaper_get_object (entry, GSM_REAPER_INVENTORY_MEMBER);
  const char *id = inventory ? _gsm_reaper_json_string (inventory, "id") : NULL;

  /* Only what the inventory said about this very VM, and only an id that
   * can be handed to the command. */
  if (id != NULL && *id != '\0' && *id != '-' &&
      g_strcmp0 (_gsm_reaper_json_string (inventory, "vm"), gsm_session_get_vm_id (entry)) == 0 &&
      _gsm_validate_name ("id", id, GSM_MAX_NAME_LEN, NULL))
    return id;
  return gsm_session_get_vm_id (entry);
}
