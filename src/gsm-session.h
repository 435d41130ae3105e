/* gsm-session.h: one session as recorded in the registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Before 1.0 this name was the umbrella header, and programs include
 * <gsm-session/gsm-session.h>: included from outside, it still brings in
 * the whole library (<gsm-session/gsm.h>). Hence include guards rather than
 * #pragma once: gsm.h includes this file again, with GSM_INSIDE defined. */
#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#include "gsm.h"
#elif !defined(GSM_SESSION_H)
#define GSM_SESSION_H

#include <glib-object.h>

#include "gsm-version-macros.h"

G_BEGIN_DECLS

#define GSM_TYPE_SESSION (gsm_session_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmSession, gsm_session, GSM, SESSION, GObject)

GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_session_id (GsmSession *self);
GSM_AVAILABLE_IN_ALL
int gsm_session_get_pid (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_hostname (GsmSession *self);
GSM_AVAILABLE_IN_ALL
double gsm_session_get_created_at (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_status (GsmSession *self);
GSM_AVAILABLE_IN_ALL
gboolean gsm_session_get_has_vm (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_vm_id (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_zone (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *const *gsm_session_get_components (GsmSession *self);
GSM_AVAILABLE_IN_ALL
GVariant *gsm_session_get_metadata (GsmSession *self);
GSM_AVAILABLE_IN_ALL
double gsm_session_get_registered_at (GsmSession *self);
GSM_AVAILABLE_IN_ALL
guint64 gsm_session_get_start_time (GsmSession *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_session_get_boot_id (GsmSession *self);
GSM_AVAILABLE_IN_ALL
double gsm_session_get_stale_since (GsmSession *self);
GSM_AVAILABLE_IN_ALL
GVariant *gsm_session_to_variant (GsmSession *self);
GSM_AVAILABLE_IN_ALL
char *gsm_session_to_json (GsmSession *self);

G_END_DECLS

#endif /* GSM_SESSION_H */
