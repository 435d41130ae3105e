/* gsm-provider-private.h: the configuration file, and running a command
 * for the reaper
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-provider.h"

G_BEGIN_DECLS

/* $GSM_CONFIG_FILE, else $XDG_CONFIG_HOME/gsm-session/config.ini. */
G_GNUC_INTERNAL
char     *_gsm_config_get_path    (void);
/* The configuration file, or an empty key file if there is none. */
G_GNUC_INTERNAL
GKeyFile *_gsm_config_load        (GError     **error);
/* The registry backend: $GSM_REGISTRY, else `backend` of [registry] in
 * @key_file (which may be %NULL); %NULL for the default, files. */
G_GNUC_INTERNAL
char     *_gsm_config_get_backend (GKeyFile    *key_file);
/* @backend names etcd (`etcd://…` or `etcds://…`). */
G_GNUC_INTERNAL
gboolean  _gsm_backend_is_etcd    (const char  *backend);
/* A duration: the environment variable @env, else @key of @group, else
 * @fallback. */
G_GNUC_INTERNAL
double    _gsm_config_get_seconds (GKeyFile    *key_file,
                                   const char  *group,
                                   const char  *key,
                                   const char  *env,
                                   double       fallback);

/* Called in the thread that runs the command, right after it started:
 * @pid leads the command's process group; @start_time is field 22 of its
 * /proc/PID/stat (0 if it could not be read). */
typedef void (*GsmProviderSpawnedFunc) (int      pid,
                                        guint64  start_time,
                                        gpointer user_data);

/* gsm_provider_delete_vm_sync() of an argument vector already expanded
 * (gsm_provider_expand()), telling @spawned when the command started. */
G_GNUC_INTERNAL
gboolean  _gsm_provider_run            (GsmProvider             *self,
                                        const char * const      *argv,
                                        const char              *vm_id,
                                        GsmProviderSpawnedFunc   spawned,
                                        gpointer                 user_data,
                                        GsmProviderResult      **out_result,
                                        GCancellable            *cancellable,
                                        GError                 **error);
/* TRUE once the command that process @pid (started at @start_time) led,
 * and everything it started in its process group, is gone: the pid is
 * gone or handed to another process, and no process is left in the group
 * but zombies. Never sends a signal. For a command of this host and
 * boot. */
G_GNUC_INTERNAL
gboolean  _gsm_provider_group_is_gone  (int                      pid,
                                        guint64                  start_time);

G_END_DECLS
