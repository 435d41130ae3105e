/* gsm-inventory-item-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-inventory-item.h"

G_BEGIN_DECLS

/* @labels: (nullable): label key → value, copied. */
G_GNUC_INTERNAL
GsmInventoryItem *_gsm_inventory_item_new (const char *vm_id,
                                           const char *name,
                                           const char *zone,
                                           const char *state,
                                           double      created_at,
                                           GHashTable *labels);
/* A copy of @base with a verdict, the session it was attributed to, and
 * why. */
G_GNUC_INTERNAL
GsmInventoryItem *_gsm_inventory_item_with_verdict (GsmInventoryItem   *base,
                                                    GsmInventoryVerdict verdict,
                                                    const char         *session_id,
                                                    const char         *reason);

G_END_DECLS
