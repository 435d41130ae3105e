/* gsm-reaper-private.h: what gsmd asks the reaper
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-reaper.h"
#include "gsm-registry-private.h"

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

G_END_DECLS
