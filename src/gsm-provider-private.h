/* gsm-provider-private.h: what the reaper asks a provider
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-provider-presets-private.h"
#include "gsm-provider-process-private.h"
#include "gsm-provider.h"

G_BEGIN_DECLS

/* gsm_provider_delete_vm_sync() of an argument vector already expanded
 * (gsm_provider_expand()), telling @spawned when the command started. */
G_GNUC_INTERNAL
gboolean _gsm_provider_run (GsmProvider           *self,
                            const char *const     *argv,
                            const char            *vm_id,
                            GsmProviderSpawnedFunc spawned,
                            gpointer               user_data,
                            GsmProviderResult    **out_result,
                            GCancellable          *cancellable,
                            GError               **error);
/* Takes @preset's name, "not found" rules and list command. */
G_GNUC_INTERNAL
void _gsm_provider_apply_preset (GsmProvider             *self,
                                 const GsmProviderPreset *preset);

G_END_DECLS
