/* gsm-reaper.h: deletes the VMs of dead sessions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <gio/gio.h>

#include "gsm-provider.h"
#include "gsm-session-manager.h"
#include "gsm-version-macros.h"

G_BEGIN_DECLS

/**
 * GsmReconcileFlags:
 * @GSM_RECONCILE_FLAGS_NONE: a dry run: compare the inventory with the
 *   registry and report, changing nothing.
 * @GSM_RECONCILE_FLAGS_APPLY: also record in the registry which VMs the
 *   inventory showed or no longer shows (marking gone those missing from
 *   two passes), and delete the orphans it found.
 *
 * How [method@Gsm.Reaper.reconcile] acts.
 *
 * Since: 1.0
 */
typedef enum /*< flags >*/
{
  GSM_RECONCILE_FLAGS_NONE = 0,
  GSM_RECONCILE_FLAGS_APPLY = 1 << 0,
} GsmReconcileFlags;

#define GSM_TYPE_RECONCILE_FLAGS (gsm_reconcile_flags_get_type ())
GSM_AVAILABLE_IN_ALL
GType gsm_reconcile_flags_get_type (void) G_GNUC_CONST;

#define GSM_TYPE_REAPER (gsm_reaper_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmReaper, gsm_reaper, GSM, REAPER, GObject)

GSM_AVAILABLE_IN_ALL
GsmReaper *gsm_reaper_new (GsmSessionManager *manager,
                           GsmProvider       *provider);
GSM_AVAILABLE_IN_ALL
GsmSessionManager *gsm_reaper_get_manager (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
GsmProvider *gsm_reaper_get_provider (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
double gsm_reaper_get_grace_period (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
void gsm_reaper_set_grace_period (GsmReaper *self,
                                  double     seconds);
GSM_AVAILABLE_IN_ALL
double gsm_reaper_get_backoff (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
void gsm_reaper_set_backoff (GsmReaper *self,
                             double     seconds);
GSM_AVAILABLE_IN_ALL
double gsm_reaper_get_max_backoff (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
void gsm_reaper_set_max_backoff (GsmReaper *self,
                                 double     seconds);
GSM_AVAILABLE_IN_ALL
guint gsm_reaper_get_concurrency (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
void gsm_reaper_set_concurrency (GsmReaper *self,
                                 guint      concurrency);
GSM_AVAILABLE_IN_ALL
double gsm_reaper_get_unverifiable_older_than (GsmReaper *self);
GSM_AVAILABLE_IN_ALL
void gsm_reaper_set_unverifiable_older_than (GsmReaper *self,
                                             double     seconds);
GSM_AVAILABLE_IN_ALL
GFile *gsm_reaper_get_audit_log (GsmReaper *self);

GSM_AVAILABLE_IN_ALL
void gsm_reaper_list_orphans (GsmReaper          *self,
                              GCancellable       *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer            user_data);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_reaper_list_orphans_finish (GsmReaper    *self,
                                           GAsyncResult *result,
                                           GError      **error);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_reaper_list_orphans_sync (GsmReaper    *self,
                                         GCancellable *cancellable,
                                         GError      **error);

GSM_AVAILABLE_IN_ALL
void gsm_reaper_reap (GsmReaper          *self,
                      GPtrArray          *orphans,
                      GCancellable       *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer            user_data);
GSM_AVAILABLE_IN_ALL
gboolean gsm_reaper_reap_finish (GsmReaper    *self,
                                 GAsyncResult *result,
                                 guint        *out_reaped,
                                 guint        *out_failed,
                                 GError      **error);
GSM_AVAILABLE_IN_ALL
gboolean gsm_reaper_reap_sync (GsmReaper    *self,
                               GPtrArray    *orphans,
                               guint        *out_reaped,
                               guint        *out_failed,
                               GCancellable *cancellable,
                               GError      **error);

GSM_AVAILABLE_IN_ALL
void gsm_reaper_reconcile (GsmReaper          *self,
                           GsmReconcileFlags   flags,
                           GCancellable       *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer            user_data);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_reaper_reconcile_finish (GsmReaper    *self,
                                        GAsyncResult *result,
                                        GError      **error);
GSM_AVAILABLE_IN_ALL
GPtrArray *gsm_reaper_reconcile_sync (GsmReaper        *self,
                                      GsmReconcileFlags flags,
                                      GCancellable     *cancellable,
                                      GError          **error);

GSM_AVAILABLE_IN_ALL
char **gsm_reaper_read_history_sync (GsmReaper    *self,
                                     GCancellable *cancellable,
                                     GError      **error);

G_END_DECLS
