/* gsm-inventory-item.h: one VM as the cloud's inventory lists it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <glib-object.h>

#include "gsm-version-macros.h"

G_BEGIN_DECLS

/**
 * GsmInventoryVerdict:
 * @GSM_INVENTORY_VERDICT_LISTED: listed by the provider; not yet compared
 *   with the registry.
 * @GSM_INVENTORY_VERDICT_REGISTERED: the registry records the VM for a
 *   live session: all is well.
 * @GSM_INVENTORY_VERDICT_DEAD_OWNER: the registry records the VM for a
 *   session that is dead; the reaper ([method@Gsm.Reaper.reap]) deletes
 *   it after its grace period.
 * @GSM_INVENTORY_VERDICT_ORPHAN: carries this registry's labels, no entry
 *   records it, its session is dead or unknown, and it is older than the
 *   grace period: reconciliation deletes it.
 * @GSM_INVENTORY_VERDICT_YOUNG: would be an orphan, but was created less
 *   than the grace period ago: left alone for now.
 * @GSM_INVENTORY_VERDICT_UNREGISTERED: carries the labels of a session
 *   that is alive, but no entry records it: reported, never deleted.
 * @GSM_INVENTORY_VERDICT_UNVERIFIABLE: whether its session is alive
 *   cannot be told from here (or its labels or creation time are
 *   missing): kept.
 * @GSM_INVENTORY_VERDICT_MISSING: the registry records the VM, the
 *   inventory listed it before, and this listing does not show it.
 * @GSM_INVENTORY_VERDICT_GONE: the registry records the VM and the
 *   inventory has not shown it in two passes or more: marked gone in its
 *   entry.
 *
 * What a reconciliation found about one VM.
 *
 * Since: 1.0
 */
typedef enum
{
  GSM_INVENTORY_VERDICT_LISTED,
  GSM_INVENTORY_VERDICT_REGISTERED,
  GSM_INVENTORY_VERDICT_DEAD_OWNER,
  GSM_INVENTORY_VERDICT_ORPHAN,
  GSM_INVENTORY_VERDICT_YOUNG,
  GSM_INVENTORY_VERDICT_UNREGISTERED,
  GSM_INVENTORY_VERDICT_UNVERIFIABLE,
  GSM_INVENTORY_VERDICT_MISSING,
  GSM_INVENTORY_VERDICT_GONE,
} GsmInventoryVerdict;

#define GSM_TYPE_INVENTORY_VERDICT (gsm_inventory_verdict_get_type ())
GSM_AVAILABLE_IN_ALL
GType gsm_inventory_verdict_get_type (void) G_GNUC_CONST;
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_verdict_to_string (GsmInventoryVerdict verdict);

#define GSM_TYPE_INVENTORY_ITEM (gsm_inventory_item_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmInventoryItem, gsm_inventory_item, GSM, INVENTORY_ITEM, GObject)

GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_vm_id (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_name (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_zone (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_state (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
double gsm_inventory_item_get_created_at (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
GVariant *gsm_inventory_item_get_labels (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_label (GsmInventoryItem *self,
                                          const char       *key);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_session_id (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
GsmInventoryVerdict gsm_inventory_item_get_verdict (GsmInventoryItem *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_inventory_item_get_reason (GsmInventoryItem *self);

G_END_DECLS
