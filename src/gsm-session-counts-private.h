/* gsm-session-counts-private.h: how many sessions and VMs, by state
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-session.h"

G_BEGIN_DECLS

/*
 * GsmSessionCounts:
 *
 * What gsmctl stats and gsmd's GetStatistics report, counted the same way
 * by both: a session is stale, unverifiable, creating or else active (by
 * its status as shown), and its VM, if any, counts as an orphan when the
 * session is stale and as unverifiable when the session is.
 */
typedef struct
{
  guint sessions;
  guint active;
  guint creating;
  guint stale;
  guint unverifiable;
  guint vms;
  guint orphan_vms;
  guint unverifiable_vms;
} GsmSessionCounts;

void _gsm_session_counts_add (GsmSessionCounts *counts,
                              GsmSession       *session);

G_END_DECLS
