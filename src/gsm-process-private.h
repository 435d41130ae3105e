/* gsm-process-private.h: is the process behind a session still alive?
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

#include "gsm-session-list.h" /* GsmLiveness, the probe's answer */
#include "gsm-session.h"

G_BEGIN_DECLS

typedef struct _GsmLivenessProbe GsmLivenessProbe;

/* The inode of the host's own pid namespace (PROC_PID_INIT_INO). */
#define GSM_INITIAL_PID_NS 0xEFFFFFFCu

G_GNUC_INTERNAL
gboolean _gsm_process_read_stat (int      pid,
                                 char    *state,
                                 guint64 *start_time,
                                 int     *saved_errno);
G_GNUC_INTERNAL
gboolean _gsm_process_read_group (int    pid,
                                  char  *state,
                                  pid_t *pgrp);
G_GNUC_INTERNAL
const char *_gsm_process_get_boot_id (void);

G_GNUC_INTERNAL
guint64 _gsm_process_get_pid_ns (void);
G_GNUC_INTERNAL
guint _gsm_process_count_threads (int pid);
G_GNUC_INTERNAL
GsmLivenessProbe *_gsm_liveness_probe_new (const char *hostname,
                                           const char *process_match);
G_GNUC_INTERNAL
void _gsm_liveness_probe_free (GsmLivenessProbe *probe);
G_GNUC_INTERNAL
GsmLiveness _gsm_liveness_probe_check (GsmLivenessProbe *probe,
                                       GsmSession       *session);
G_GNUC_INTERNAL
GsmLiveness _gsm_liveness_probe_check_proof (GsmLivenessProbe *probe,
                                             GsmSession       *session);
G_GNUC_INTERNAL
void _gsm_liveness_probe_set_lock_dir (GsmLivenessProbe *probe,
                                       int               dirfd);
G_GNUC_INTERNAL
int _gsm_liveness_probe_open_pidfd (GsmLivenessProbe *probe,
                                    GsmSession       *session);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmLivenessProbe, _gsm_liveness_probe_free)

G_END_DECLS
