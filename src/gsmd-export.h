/* gsmd-export.h: gsmd publishes its session manager's view on D-Bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "gsm-session-manager.h"

G_BEGIN_DECLS

gboolean gsmd_export   (GsmSessionManager  *manager,
                        GDBusConnection    *connection,
                        const char         *object_path,
                        GError            **error);
void     gsmd_unexport (GsmSessionManager  *manager);

G_END_DECLS
