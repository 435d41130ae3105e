/* gsm-vm.h: a VM owned by a session
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
# error "Only <gsm-session/gsm-session.h> can be included directly."
#endif

#include <glib-object.h>

#include "gsm-version-macros.h"

G_BEGIN_DECLS

#define GSM_TYPE_VM (gsm_vm_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmVm, gsm_vm, GSM, VM, GObject)

GSM_AVAILABLE_IN_ALL
const char          *gsm_vm_get_vm_id         (GsmVm *self);
GSM_AVAILABLE_IN_ALL
const char          *gsm_vm_get_zone          (GsmVm *self);
GSM_AVAILABLE_IN_ALL
const char * const  *gsm_vm_get_components    (GsmVm *self);
GSM_AVAILABLE_IN_ALL
GVariant            *gsm_vm_get_metadata      (GsmVm *self);
GSM_AVAILABLE_IN_ALL
double               gsm_vm_get_registered_at (GsmVm *self);
GSM_AVAILABLE_IN_ALL
const char          *gsm_vm_get_session_id    (GsmVm *self);

G_END_DECLS
