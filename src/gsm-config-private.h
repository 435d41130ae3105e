/* gsm-config-private.h: the configuration file and the environment
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* $GSM_CONFIG_FILE, else $XDG_CONFIG_HOME/gsm-session/config.ini. */
G_GNUC_INTERNAL
char *_gsm_config_get_path (void);
/* The configuration file, or an empty key file if there is none. */
G_GNUC_INTERNAL
GKeyFile *_gsm_config_load (GError **error);
/* The registry backend: $GSM_REGISTRY, else `backend` of [registry] in
 * @key_file (which may be %NULL); %NULL for the default, files. */
G_GNUC_INTERNAL
char *_gsm_config_get_backend (GKeyFile *key_file);
/* @backend names etcd (`etcd://…` or `etcds://…`). */
G_GNUC_INTERNAL
gboolean _gsm_backend_is_etcd (const char *backend);
/* A duration in seconds: the environment variable @name, else @fallback.
 * A value that is not a number of seconds is ignored with a warning. */
G_GNUC_INTERNAL
double _gsm_env_seconds (const char *name,
                         double      fallback);
/* A duration: the environment variable @env, else @key of @group, else
 * @fallback. */
G_GNUC_INTERNAL
double _gsm_config_get_seconds (GKeyFile   *key_file,
                                const char *group,
                                const char *key,
                                const char *env,
                                double      fallback);
/* A count: the environment variable @env, else @key of @group, else
 * @fallback; one out of [@min, @max] is ignored with a warning. */
G_GNUC_INTERNAL
guint _gsm_config_get_count (GKeyFile   *key_file,
                             const char *group,
                             const char *key,
                             const char *env,
                             guint       min,
                             guint       max,
                             guint       fallback);
/* A switch: the environment variable @env (on for `1`, `true` or `yes`,
 * off for anything else), else boolean @key of @group of the
 * configuration file, else off. A key that is not a boolean is ignored
 * with a warning. */
G_GNUC_INTERNAL
gboolean _gsm_config_get_switch (const char *group,
                                 const char *key,
                                 const char *env);

G_END_DECLS
