/* gsm-provider-process-private.h: running a provider command in a process
 * group of its own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Called in the thread that runs the command, right after it started:
 * @pid leads the command's process group; @start_time is field 22 of its
 * /proc/PID/stat (0 if it could not be read). */
typedef void (*GsmProviderSpawnedFunc) (int      pid,
                                        guint64  start_time,
                                        gpointer user_data);

/* What running one argument vector gave. */
typedef struct
{
  GBytes  *out;
  GBytes  *err;
  int      exit_status; /* -1 if it did not exit normally */
  int      term_signal;
  gboolean cancelled;
  gboolean timed_out;
  double   duration;
  GError  *spawn_error; /* it could not be started */
} GsmProviderRan;

/* Runs @argv in a process group of its own, killed with the calling
 * thread, by @timeout (0: none) or by @cancellable, and collects its
 * output. Iterates a private main context: no main loop needed. */
G_GNUC_INTERNAL
void _gsm_provider_run_process (const char *const     *argv,
                                double                 timeout,
                                GsmProviderSpawnedFunc spawned,
                                gpointer               user_data,
                                GCancellable          *cancellable,
                                GsmProviderRan        *ran);
G_GNUC_INTERNAL
void _gsm_provider_ran_clear (GsmProviderRan *ran);

/* TRUE once the command that process @pid (started at @start_time) led,
 * and everything it started in its process group, is gone: the pid is
 * gone or handed to another process, and no process is left in the group
 * but zombies. Never sends a signal. For a command of this host and
 * boot. */
G_GNUC_INTERNAL
gboolean _gsm_provider_group_is_gone (int     pid,
                                      guint64 start_time);

G_END_DECLS
