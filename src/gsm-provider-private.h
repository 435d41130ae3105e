/* gsm-provider-private.h: the configuration file
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
/* A duration: the environment variable @env, else @key of @group, else
 * @fallback. */
G_GNUC_INTERNAL
double    _gsm_config_get_seconds (GKeyFile    *key_file,
                                   const char  *group,
                                   const char  *key,
                                   const char  *env,
                                   double       fallback);

G_END_DECLS
