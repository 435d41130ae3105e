/* gsmd-export.h: gsmd publishes the registry on D-Bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "gsm-session-list.h"
#include "gsm-session-manager.h"

G_BEGIN_DECLS

gboolean gsmd_export (GsmSessionManager *manager,
                      GsmSessionList    *list,
                      GDBusConnection   *connection,
                      const char        *object_path,
                      GError           **error);
void     gsmd_unexport (GsmSessionManager *manager);

G_END_DECLS
