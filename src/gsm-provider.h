/* gsm-provider.h: deletes VMs by running a command
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <gio/gio.h>

#include "gsm-inventory-item.h"
#include "gsm-provider-result.h"
#include "gsm-version-macros.h"

G_BEGIN_DECLS

#define GSM_TYPE_PROVIDER (gsm_provider_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmProvider, gsm_provider, GSM, PROVIDER, GObject)

GSM_AVAILABLE_IN_ALL
GsmProvider *gsm_provider_new (const char        *name,
                               const char *const *command,
                               GError           **error);
GSM_AVAILABLE_IN_ALL
GsmProvider *gsm_provider_new_from_key_file (GKeyFile   *key_file,
                                             const char *name,
                                             GError    **error);
GSM_AVAILABLE_IN_ALL
GsmProvider *gsm_provider_new_default (GError **error);
GSM_AVAILABLE_IN_ALL
GsmProvider *gsm_provider_new_preset (const char *preset,
                                      GError    **error);

GSM_AVAILABLE_IN_ALL
const char *gsm_provider_get_name (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
const char *const *gsm_provider_get_command (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
double gsm_provider_get_timeout (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
void gsm_provider_set_timeout (GsmProvider *self,
                               double       timeout);
GSM_AVAILABLE_IN_ALL
int gsm_provider_get_not_found_exit_code (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
void gsm_provider_set_not_found_exit_code (GsmProvider *self,
                                           int          exit_code);
GSM_AVAILABLE_IN_ALL
const char *gsm_provider_get_not_found_pattern (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
gboolean gsm_provider_set_not_found_pattern (GsmProvider *self,
                                             const char  *pattern,
                                             GError     **error);

GSM_AVAILABLE_IN_ALL
const char *gsm_provider_get_preset (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
char **gsm_provider_get_list_command (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
char *gsm_provider_get_list_format (GsmProvider *self);
GSM_AVAILABLE_IN_ALL
gboolean gsm_provider_set_list_command (GsmProvider       *self,
                                        const char *const *command,
                                        const char        *format,
                                        GError           **error);

GSM_AVAILABLE_IN_ALL
char **gsm_provider_expand (GsmProvider *self,
                            const char  *vm_id,
                            const char  *zone,
                            const char  *session_id,
                            GError     **error);

GSM_AVAILABLE_IN_ALL
void gsm_provider_delete_vm (GsmProvider        *self,
                             const char         *vm_id,
                             const char         *zone,
                             const char         *session_id,
                             GCancellable       *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_provider_delete_vm_finish (GsmProvider        *self,
                                        GAsyncResult       *result,
                                        GsmProviderResult **out_result,
                                        GError            **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_provider_delete_vm_sync (GsmProvider        *self,
                                      const char         *vm_id,
                                      const char         *zone,
                                      const char         *session_id,
                                      GsmProviderResult **out_result,
                                      GCancellable       *cancellable,
                                      GError            **error);

GSM_AVAILABLE_IN_ALL
void gsm_provider_list_vms (GsmProvider        *self,
                            const char         *registry,
                            GCancellable       *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer            user_data);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_provider_list_vms_finish (GsmProvider  *self,
                                         GAsyncResult *result,
                                         GError      **error);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_provider_list_vms_sync (GsmProvider  *self,
                                       const char   *registry,
                                       GCancellable *cancellable,
                                       GError      **error);

G_END_DECLS
