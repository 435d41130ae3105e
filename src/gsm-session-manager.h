/* gsm-session-manager.h: this process's session and the registry of VMs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <gio/gio.h>

#include "gsm-provider.h"
#include "gsm-session.h"
#include "gsm-version-macros.h"

G_BEGIN_DECLS

#define GSM_TYPE_SESSION_MANAGER (gsm_session_manager_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmSessionManager, gsm_session_manager, GSM, SESSION_MANAGER, GObject)

GSM_AVAILABLE_IN_ALL
GsmSessionManager *gsm_session_manager_get_default (void);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_is_available (void);

GSM_AVAILABLE_IN_ALL
const char *gsm_session_manager_get_session_id (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
int gsm_session_manager_get_pid (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_manager_get_hostname (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
double gsm_session_manager_get_created_at (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GFile *gsm_session_manager_get_runtime_dir (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GFile *gsm_session_manager_get_session_file (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GFile *gsm_session_manager_get_vm_registry (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GFile *gsm_session_manager_get_global_tracker_file (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_get_has_vm (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GVariant *gsm_session_manager_get_statistics (GsmSessionManager *self);
GSM_AVAILABLE_IN_ALL
GVariant *gsm_session_manager_get_vm_labels (GsmSessionManager *self);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_register_vm (GsmSessionManager  *self,
                                      const char         *vm_id,
                                      const char         *zone,
                                      const char *const  *components,
                                      GVariant           *metadata,
                                      GCancellable       *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_register_vm_finish (GsmSessionManager *self,
                                                 GAsyncResult      *result,
                                                 GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_register_vm_sync (GsmSessionManager *self,
                                               const char        *vm_id,
                                               const char        *zone,
                                               const char *const *components,
                                               GVariant          *metadata,
                                               GCancellable      *cancellable,
                                               GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_reserve_vm (GsmSessionManager  *self,
                                     const char         *vm_id,
                                     const char         *zone,
                                     const char *const  *components,
                                     GVariant           *metadata,
                                     GCancellable       *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_reserve_vm_finish (GsmSessionManager *self,
                                                GAsyncResult      *result,
                                                GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_reserve_vm_sync (GsmSessionManager *self,
                                              const char        *vm_id,
                                              const char        *zone,
                                              const char *const *components,
                                              GVariant          *metadata,
                                              GCancellable      *cancellable,
                                              GError           **error);
GSM_AVAILABLE_IN_ALL
void gsm_session_manager_confirm_vm (GsmSessionManager  *self,
                                     GCancellable       *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_confirm_vm_finish (GsmSessionManager *self,
                                                GAsyncResult      *result,
                                                GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_confirm_vm_sync (GsmSessionManager *self,
                                              GCancellable      *cancellable,
                                              GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_get_my_vm (GsmSessionManager  *self,
                                    GCancellable       *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer            user_data);
GSM_AVAILABLE_IN_ALL
GsmSession *gsm_session_manager_get_my_vm_finish (GsmSessionManager *self,
                                                  GAsyncResult      *result,
                                                  GError           **error);
GSM_AVAILABLE_IN_ALL
GsmSession *gsm_session_manager_get_my_vm_sync (GsmSessionManager *self,
                                                GCancellable      *cancellable,
                                                GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_unregister_vm (GsmSessionManager  *self,
                                        GCancellable       *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_unregister_vm_finish (GsmSessionManager *self,
                                                   GAsyncResult      *result,
                                                   GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_unregister_vm_sync (GsmSessionManager *self,
                                                 GCancellable      *cancellable,
                                                 GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_get_all_active_sessions (GsmSessionManager  *self,
                                                  GCancellable       *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer            user_data);
GSM_AVAILABLE_IN_ALL
GHashTable *gsm_session_manager_get_all_active_sessions_finish (GsmSessionManager *self,
                                                                GAsyncResult      *result,
                                                                GError           **error);
GSM_AVAILABLE_IN_ALL
GHashTable *gsm_session_manager_get_all_active_sessions_sync (GsmSessionManager *self,
                                                              GCancellable      *cancellable,
                                                              GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_cleanup_stale_sessions (GsmSessionManager  *self,
                                                 GCancellable       *cancellable,
                                                 GAsyncReadyCallback callback,
                                                 gpointer            user_data);
GSM_AVAILABLE_IN_ALL
int gsm_session_manager_cleanup_stale_sessions_finish (GsmSessionManager *self,
                                                       GAsyncResult      *result,
                                                       GError           **error);
GSM_AVAILABLE_IN_ALL
int gsm_session_manager_cleanup_stale_sessions_sync (GsmSessionManager *self,
                                                     GCancellable      *cancellable,
                                                     GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_close (GsmSessionManager  *self,
                                GCancellable       *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_close_finish (GsmSessionManager *self,
                                           GAsyncResult      *result,
                                           GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_close_sync (GsmSessionManager *self,
                                         GCancellable      *cancellable,
                                         GError           **error);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_cleanup_my_vm (GsmSessionManager  *self,
                                        GsmProvider        *provider,
                                        GCancellable       *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_cleanup_my_vm_finish (GsmSessionManager *self,
                                                   GAsyncResult      *result,
                                                   GError           **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_manager_cleanup_my_vm_sync (GsmSessionManager *self,
                                                 GsmProvider       *provider,
                                                 GCancellable      *cancellable,
                                                 GError           **error);

/**
 * GsmShutdownFunc:
 * @manager: the session manager
 * @signum: the signal that was received (`SIGINT`, `SIGTERM` or `SIGHUP`)
 * @error: (nullable): why the cleanup of this session's VM failed, or
 *   %NULL if it succeeded (or there was no VM)
 * @user_data: the data given when the handlers were installed
 *
 * Called by the handlers of [method@Gsm.SessionManager.install_shutdown_handlers_full]
 * once the cleanup that a signal started has finished: the application
 * should now quit.
 *
 * Since: 1.0
 */
typedef void (*GsmShutdownFunc) (GsmSessionManager *manager,
                                 int                signum,
                                 const GError      *error,
                                 gpointer           user_data);

GSM_AVAILABLE_IN_ALL
void gsm_session_manager_install_shutdown_handlers (GsmSessionManager *self,
                                                    GsmProvider       *provider,
                                                    GMainLoop         *loop);
GSM_AVAILABLE_IN_ALL
void gsm_session_manager_install_shutdown_handlers_full (GsmSessionManager *self,
                                                         GsmProvider       *provider,
                                                         GsmShutdownFunc    func,
                                                         gpointer           user_data,
                                                         GDestroyNotify     notify);
GSM_AVAILABLE_IN_ALL
void gsm_session_manager_remove_shutdown_handlers (GsmSessionManager *self);

G_END_DECLS
