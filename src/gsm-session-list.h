/* gsm-session-list.h: a read-only view of the registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <gio/gio.h>

#include "gsm-session.h"
#include "gsm-version-macros.h"

G_BEGIN_DECLS

/**
 * GsmLiveness:
 * @GSM_LIVENESS_ALIVE: the session's process runs.
 * @GSM_LIVENESS_DEAD: the session's process is proven gone (it exited, or
 *   its pid now belongs to another process).
 * @GSM_LIVENESS_UNVERIFIABLE: nothing can be proven from here either way,
 *   for example for a session of another host.
 *
 * Whether the process behind a session is alive, as this host can tell.
 *
 * Since: 1.0
 */
typedef enum
{
  GSM_LIVENESS_ALIVE,
  GSM_LIVENESS_DEAD,
  GSM_LIVENESS_UNVERIFIABLE,
} GsmLiveness;

#define GSM_TYPE_LIVENESS (gsm_liveness_get_type ())

GSM_AVAILABLE_IN_ALL
GType gsm_liveness_get_type (void) G_GNUC_CONST;

#define GSM_TYPE_SESSION_LIST (gsm_session_list_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmSessionList, gsm_session_list, GSM, SESSION_LIST, GObject)

GSM_AVAILABLE_IN_ALL
GsmSessionList *gsm_session_list_new (const char   *runtime_dir,
                                      GCancellable *cancellable,
                                      GError      **error);
GSM_AVAILABLE_IN_ALL
GsmSessionList *gsm_session_list_new_for_etcd (const char   *uri,
                                               GCancellable *cancellable,
                                               GError      **error);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_list_get_runtime_dir (GsmSessionList *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_list_get_etcd_uri (GsmSessionList *self);
GSM_AVAILABLE_IN_ALL
GsmSession *gsm_session_list_lookup (GsmSessionList *self,
                                     const char     *session_id);
GSM_AVAILABLE_IN_ALL
GsmSession *gsm_session_list_lookup_vm (GsmSessionList *self,
                                        const char     *vm_id);
GSM_AVAILABLE_IN_ALL
GsmLiveness gsm_session_list_get_liveness (GsmSessionList *self,
                                           GsmSession     *session);

G_END_DECLS
