/* gsm-session-counts.c: how many sessions and VMs, by state
 *
 * Shared by gsmctl stats and gsmd's GetStatistics, so that both count
 * alike.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-session-counts-private.h"
#include "gsm-session-private.h"

void
_gsm_session_counts_add (GsmSessionCounts *counts,
                         GsmSession       *session)
{
  const char *status = gsm_session_get_status (session);
  gboolean    stale = g_strcmp0 (status, GSM_STATUS_STALE) == 0;
  gboolean    unverifiable = g_strcmp0 (status, GSM_STATUS_UNVERIFIABLE) == 0;

  counts->sessions++;
  if (stale)
    counts->stale++;
  else if (unverifiable)
    counts->unverifiable++;
  else if (g_strcmp0 (status, GSM_STATUS_CREATING) == 0)
    counts->creating++;
  else
    counts->active++;

  if (!gsm_session_get_has_vm (session))
    return;
  counts->vms++;
  if (stale)
    counts->orphan_vms++;
  else if (unverifiable)
    counts->unverifiable_vms++;
}
