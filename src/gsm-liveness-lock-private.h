/* gsm-liveness-lock-private.h: a lock each session holds while it lives
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  GSM_LIVENESS_LOCK_NONE, /* no such file, or it cannot be checked */
  GSM_LIVENESS_LOCK_HELD,
  GSM_LIVENESS_LOCK_FREE,
} GsmLivenessLockState;

G_GNUC_INTERNAL
int _gsm_liveness_lock_take (int         dirfd,
                             const char *name);
G_GNUC_INTERNAL
void _gsm_liveness_lock_release (int fd);
G_GNUC_INTERNAL
GsmLivenessLockState _gsm_liveness_lock_check (int         dirfd,
                                               const char *name);

G_END_DECLS
