/* gsm-reaper-private.h: what gsmd asks the reaper
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-reaper.h"
#include "gsm-registry-private.h"
#include "gsm-session-list.h"   /* GsmLiveness */

G_BEGIN_DECLS

/* When the next VM of @snapshot is due to be reaped (its owner dead, its
 * grace period, backoff and any claim of a dead reaper over), by the same
 * rules and clamps as a pass, in seconds since the epoch; -1 if none is.
 * A VM whose claim a live reaper holds is left out: that reaper's change
 * of the entry comes first. */
G_GNUC_INTERNAL
double _gsm_reaper_get_next_due (GsmReaper           *self,
                                 GsmRegistrySnapshot *snapshot,
                                 double               now);

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

/* Is the owner of @session alive? This host's own probe, the store's
 * leases; an entry adopted from the inventory has no owner (dead). */
G_GNUC_INTERNAL
GsmLiveness  _gsm_reaper_owner_liveness (GsmReaper           *self,
                                         GsmSession          *session);
/* The provider, the configured one if the reaper was made without. */
G_GNUC_INTERNAL
GsmProvider *_gsm_reaper_dup_provider   (GsmReaper           *self,
                                         GError             **error);
/* The identifier the provider deletes @entry's VM by: its vm_id, or the
 * one the inventory listed it under (an AWS instance reserved by name). */
G_GNUC_INTERNAL
const char  *_gsm_reaper_delete_id      (GsmSession          *entry);

/* Reap only the sessions of this host (the reaping at the start of a
 * session). */
G_GNUC_INTERNAL
void         _gsm_reaper_set_host_only  (GsmReaper           *self,
                                         gboolean             host_only);

/* Turns off the reaping of this host's dead sessions at the start of a
 * session (reaper auto=true), for the tools that reap themselves. */
G_GNUC_INTERNAL
void         _gsm_reaper_inhibit_reap_at_start (void);
/* With [reaper] auto=true: reaps this host's dead sessions in the
 * background, once their grace period is over. Called when a session
 * starts. */
G_GNUC_INTERNAL
void         _gsm_reaper_reap_at_start  (GsmSessionManager   *manager);
/* [reaper] auto of the configuration (GSM_REAP_AUTO overrides). */
G_GNUC_INTERNAL
gboolean     _gsm_reaper_auto_enabled   (void);

G_END_DECLS
