/* gsm-reaper-private.h: what the files of the reaper share, and what gsmd
 * asks it
 *
 * gsm-reaper.c holds the object, its settings, signals and public calls;
 * gsm-reaper-claims.c what a reaper writes in an entry (its claim, its
 * attempts); gsm-reaper-orphans.c which VMs are orphans; gsm-reaper-pass.c
 * one pass that deletes them; gsm-reaper-reconcile.c the comparison with
 * the cloud's inventory; gsm-reaper-auto.c reaping at the start of a
 * session.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "gsm-reaper.h"
#include "gsm-registry-private.h"
#include "gsm-session-list.h" /* GsmLiveness */

G_BEGIN_DECLS

struct _GsmReaper
{
  GObject parent_instance;

  GMainContext      *context;
  GsmSessionManager *manager;
  GFile             *audit_log;
  guint64            start_time;
  char              *boot_id;

  GMutex       mutex; /* guards the fields below */
  GsmProvider *provider;
  double       grace_period;
  double       backoff;
  double       max_backoff;
  double       unverifiable_older_than;
  guint        concurrency;
  gboolean     host_only; /* only this host's sessions */
};

/* The settings a pass works with, read once. */
typedef struct
{
  double grace;
  double backoff;
  double max_backoff;
  double unverifiable; /* 0: never by age */
  double timeout;      /* the provider's, 0 for none */
  guint  concurrency;
} GsmReaperSettings;

/* Members of a registry entry that the reaper writes. */
#define GSM_REAPER_CLAIM_MEMBER "reap_claim"
#define GSM_REAPER_ATTEMPTS_MEMBER "reap_attempts"
/* What the cloud's inventory showed of the entry's VM:
 * {"vm", "id", "registry", "seen_at", "missing", "missing_since",
 *  "gone_at"}. */
#define GSM_REAPER_INVENTORY_MEMBER "inventory"
/* The entry of a VM found by reconciliation that no entry recorded:
 * {"from": "inventory", "session_label", "labels", "vm_created_at",
 *  "found_at"}. Its owner is dead (or unknown): there is no process. */
#define GSM_REAPER_ADOPTED_MEMBER "adopted"
/* A claim outlives the provider's timeout by this much (seconds). */
#define GSM_REAPER_CLAIM_MARGIN 60.0

/* ---- the object (gsm-reaper.c) ------------------------------------------ */

/* What a pass reports, as signals in the reaper's main context. */
typedef enum
{
  GSM_REAPER_EVENT_REAPED,  /* ::vm-reaped */
  GSM_REAPER_EVENT_FAILED,  /* ::reap-failed */
  GSM_REAPER_EVENT_SKIPPED, /* ::reap-skipped */
} GsmReaperEvent;

G_GNUC_INTERNAL
void _gsm_reaper_get_settings (GsmReaper         *self,
                               GsmReaperSettings *s);
/* The provider, the configured one if the reaper was made without. */
G_GNUC_INTERNAL
GsmProvider *_gsm_reaper_dup_provider (GsmReaper *self,
                                       GError   **error);
/* An array to collect events in, for _gsm_reaper_emit_later(). */
G_GNUC_INTERNAL
GPtrArray *_gsm_reaper_events_new (void);
G_GNUC_INTERNAL
void _gsm_reaper_add_event (GPtrArray         *events,
                            GsmReaperEvent     event,
                            GsmSession        *session,
                            GsmProviderResult *result,
                            const GError      *error,
                            const char        *reason);
/* Emits @events in the reaper's main context, in order. */
G_GNUC_INTERNAL
void _gsm_reaper_emit_later (GsmReaper *self,
                             GPtrArray *events);

/* Reap only the sessions of this host (the reaping at the start of a
 * session). */
G_GNUC_INTERNAL
void _gsm_reaper_set_host_only (GsmReaper *self,
                                gboolean   host_only);

/* ---- claims and attempts (gsm-reaper-claims.c) --------------------------- */

/* Now, in seconds since the epoch. */
G_GNUC_INTERNAL
double _gsm_reaper_now (void);
/* @seconds rounded up to a whole second, for messages. */
G_GNUC_INTERNAL
double _gsm_reaper_round_up (double seconds);
/* A time another writer recorded, never later than @now: a clock that was
 * ahead must not make anyone wait longer than the delay it stands for. */
G_GNUC_INTERNAL
double _gsm_reaper_clamp_past (double t,
                               double now);
/* Member @name of @object (which may be %NULL) as a number (0 if it is
 * none), a string or an object (%NULL if it is none). */
G_GNUC_INTERNAL
double _gsm_reaper_json_double (JsonObject *object,
                                const char *name);
G_GNUC_INTERNAL
const char *_gsm_reaper_json_string (JsonObject *object,
                                     const char *name);
/* Member @name of @session if it is an object. */
G_GNUC_INTERNAL
JsonObject *_gsm_reaper_get_object (GsmSession *session,
                                    const char *name);
/* The failed attempts recorded in @session, and when to retry. */
G_GNUC_INTERNAL
guint _gsm_reaper_get_attempts (GsmSession *session);
G_GNUC_INTERNAL
double _gsm_reaper_get_next_retry (GsmSession *session);
/* The identifier the provider deletes @entry's VM by: its vm_id, or the
 * one the inventory listed it under (an AWS instance reserved by name). */
G_GNUC_INTERNAL
const char *_gsm_reaper_delete_id (GsmSession *entry);

/* A claim of this reaper, for the pass @token, made @now. */
G_GNUC_INTERNAL
JsonNode *_gsm_reaper_make_claim (GsmReaper  *self,
                                  const char *token,
                                  double      now,
                                  double      timeout);
/* A copy of @claim with "provider" (the command's first process, which
 * leads its process group) and a deadline counted from its start. */
G_GNUC_INTERNAL
JsonNode *_gsm_reaper_claim_with_provider (JsonObject *claim,
                                           int         pid,
                                           guint64     start_time,
                                           double      started_at,
                                           double      timeout);

typedef enum
{
  GSM_REAPER_CLAIM_NONE,      /* nobody holds it */
  GSM_REAPER_CLAIM_BLOCKS,    /* a reaper may still be deleting the VM */
  GSM_REAPER_CLAIM_TAKE_OVER, /* held by a reaper whose command is provably over */
} GsmReaperClaimState;

/* Who holds @session's claim, and may the VM be claimed again? In
 * @reason, why it may not; in @lost, on a take-over, what became of the
 * dead reaper's attempt; in @until, when a claim that blocks runs out at
 * the latest (-1 while its reaper lives). */
G_GNUC_INTERNAL
GsmReaperClaimState _gsm_reaper_check_claim (GsmReaper  *self,
                                             GsmSession *session,
                                             double      now,
                                             char      **reason,
                                             char      **lost,
                                             double     *until);
/* A copy of @entry whose timestamps from a clock that was ahead are
 * rewritten from @now; %NULL if none is in the future. */
G_GNUC_INTERNAL
GsmSession *_gsm_reaper_normalize_times (const GsmReaperSettings *s,
                                         GsmSession              *entry,
                                         double                   now);
/* The member "reap_attempts" after attempt @count. */
G_GNUC_INTERNAL
JsonNode *_gsm_reaper_make_attempts (const GsmReaperSettings *s,
                                     guint                    count,
                                     double                   now,
                                     const char              *outcome,
                                     const char              *error_message,
                                     gboolean                 due_now);

/* ---- orphans (gsm-reaper-orphans.c) -------------------------------------- */

/* Is the owner of @session alive? This host's own probe, the store's
 * leases; an entry adopted from the inventory has no owner (dead). */
G_GNUC_INTERNAL
GsmLiveness _gsm_reaper_owner_liveness (GsmReaper  *self,
                                        GsmSession *session);
/* Why the owner of @entry rules its VM out, or %NULL if it does not. */
G_GNUC_INTERNAL
char *_gsm_reaper_check_owner (GsmReaper               *self,
                               const GsmReaperSettings *s,
                               GsmSession              *entry,
                               double                   now,
                               GsmLiveness             *out_liveness,
                               gboolean                *by_age);
/* Why @entry's VM must wait (grace period, backoff), or %NULL. */
G_GNUC_INTERNAL
char *_gsm_reaper_check_timing (const GsmReaperSettings *s,
                                GsmSession              *entry,
                                double                   now,
                                gboolean                 by_age);
/* Does @other, another session recording the same VM, keep it from being
 * deleted? */
G_GNUC_INTERNAL
gboolean _gsm_reaper_other_blocks (GsmReaper               *self,
                                   const GsmReaperSettings *s,
                                   GsmSession              *other,
                                   double                   now);
G_GNUC_INTERNAL
char *_gsm_reaper_records_it_too (GsmSession *other);
/* VM id → GPtrArray of the sessions of @snapshot (borrowed) that record
 * each VM of @vm_ids. */
G_GNUC_INTERNAL
GHashTable *_gsm_reaper_index_vm_owners (GsmRegistrySnapshot *snapshot,
                                         GHashTable          *vm_ids);
/* The orphans of the registry as it is now, oldest first. */
G_GNUC_INTERNAL
GPtrArray *_gsm_reaper_list_orphans (GsmReaper    *self,
                                     GCancellable *cancellable,
                                     GError      **error);
/* When the next VM of @snapshot is due to be reaped (its owner dead, its
 * grace period, backoff and any claim of a dead reaper over), by the same
 * rules and clamps as a pass, in seconds since the epoch; -1 if none is.
 * A VM whose claim a live reaper holds is left out: that reaper's change
 * of the entry comes first. */
G_GNUC_INTERNAL
double _gsm_reaper_get_next_due (GsmReaper           *self,
                                 GsmRegistrySnapshot *snapshot,
                                 double               now);

/* ---- a pass (gsm-reaper-pass.c) ------------------------------------------ */

/* Deletes the VMs of @orphans (%NULL: first record newly dead sessions,
 * then every orphan), counting them in @reaped and @failed; the events go
 * to the reaper's main context. FALSE for an error of the registry, or
 * when cancelled. */
G_GNUC_INTERNAL
gboolean _gsm_reaper_reap (GsmReaper    *self,
                           GPtrArray    *orphans,
                           guint        *reaped,
                           guint        *failed,
                           GCancellable *cancellable,
                           GError      **error);

/* ---- at the start of a session (gsm-reaper-auto.c) ----------------------- */

/* Turns off the reaping of this host's dead sessions at the start of a
 * session (reaper auto=true), for the tools that reap themselves. */
G_GNUC_INTERNAL
void _gsm_reaper_inhibit_reap_at_start (void);
/* With [reaper] auto=true: reaps this host's dead sessions in the
 * background, once their grace period is over. Called when a session
 * starts. */
G_GNUC_INTERNAL
void _gsm_reaper_reap_at_start (GsmSessionManager *manager);
/* [reaper] auto of the configuration (GSM_REAP_AUTO overrides). */
G_GNUC_INTERNAL
gboolean _gsm_reaper_auto_enabled (void);

G_END_DECLS
