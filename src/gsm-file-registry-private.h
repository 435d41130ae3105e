/* gsm-file-registry-private.h: the registry as files in one directory
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-registry-private.h"

G_BEGIN_DECLS

#define GSM_TYPE_FILE_REGISTRY (_gsm_file_registry_get_type ())

G_GNUC_INTERNAL
G_DECLARE_FINAL_TYPE (GsmFileRegistry, _gsm_file_registry, GSM, FILE_REGISTRY, GObject)

G_GNUC_INTERNAL
GsmFileRegistry *_gsm_file_registry_new (const char *dir_path,
                                         gboolean    create_private,
                                         const char *prefix,
                                         const char *own_session_id,
                                         int         own_pid,
                                         gboolean    durable,
                                         GError    **error);
G_GNUC_INTERNAL
GsmFileRegistry *_gsm_file_registry_new_read_only (const char *dir_path,
                                                   const char *prefix,
                                                   GError    **error);
G_GNUC_INTERNAL
char *_gsm_file_registry_get_path (GsmFileRegistry *self,
                                   const char      *which);
G_GNUC_INTERNAL
const char *_gsm_file_registry_get_lock_name (GsmFileRegistry *self);
G_GNUC_INTERNAL
int _gsm_file_registry_get_dirfd (GsmFileRegistry *self);
G_GNUC_INTERNAL
char *_gsm_file_registry_session_file_name (const char *prefix,
                                            int         pid,
                                            const char *session_id,
                                            gboolean    by_pid);
G_GNUC_INTERNAL
char *_gsm_file_registry_own_session_file_name (const char *dir_path,
                                                const char *prefix,
                                                int         pid,
                                                const char *session_id);
G_GNUC_INTERNAL
guint _gsm_file_registry_get_n_parsed (GsmFileRegistry *self);

G_END_DECLS
