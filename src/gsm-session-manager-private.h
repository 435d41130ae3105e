/* gsm-session-manager-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-session-manager.h"
#include "gsm-registry-private.h"
#include "gsm-process-private.h"

G_BEGIN_DECLS

G_GNUC_INTERNAL
void                 _gsm_session_manager_reset_for_testing (void);
G_GNUC_INTERNAL
GsmRegistry         *_gsm_session_manager_get_registry      (GsmSessionManager *self);
G_GNUC_INTERNAL
GsmLivenessProbe    *_gsm_session_manager_get_probe         (GsmSessionManager *self);
G_GNUC_INTERNAL
GsmLiveness          _gsm_session_manager_get_liveness      (GsmSessionManager *self,
                                                             GsmSession        *session);
G_GNUC_INTERNAL
gboolean             _gsm_session_manager_is_session_dead   (GsmSessionManager *self,
                                                             GsmSession        *session);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_session_manager_dup_view          (GsmSessionManager *self);
G_GNUC_INTERNAL
void                 _gsm_session_manager_run_in_worker     (GsmSessionManager *self,
                                                             GTask             *task,
                                                             GTaskThreadFunc    func);
G_GNUC_INTERNAL
GHashTable          *_gsm_session_manager_list_sessions_sync (GsmSessionManager  *self,
                                                              GCancellable       *cancellable,
                                                              GError            **error);

G_END_DECLS
