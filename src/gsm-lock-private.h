/* gsm-lock-private.h: the registry lock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

G_GNUC_INTERNAL
int _gsm_lock_open (int         dirfd,
                    const char *dir_path,
                    const char *name,
                    GError    **error);
G_GNUC_INTERNAL
gboolean _gsm_lock_acquire (int           fd,
                            const char   *what,
                            double        timeout_seconds,
                            GCancellable *cancellable,
                            GError      **error);
G_GNUC_INTERNAL
void _gsm_lock_release (int fd);

G_END_DECLS
