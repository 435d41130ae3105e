/* gsm-vm-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-vm.h"

G_BEGIN_DECLS

G_GNUC_INTERNAL
GsmVm *_gsm_vm_new (const char         *vm_id,
                    const char         *zone,
                    const char * const *components,
                    GVariant           *metadata,
                    double              registered_at,
                    const char         *session_id);

G_END_DECLS
