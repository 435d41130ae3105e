/* gsm-labels-private.h: the labels (tags) put on a VM at creation
 *
 * Three labels carry ownership in the cloud itself:
 *
 *   gsm-session   the session that created the VM
 *   gsm-host      the host it ran on (informative)
 *   gsm-registry  the registry it belongs to: with the file registry, a
 *                 hash of this host's name and the runtime directory (a
 *                 registry directory shared by several hosts is one
 *                 registry per host here: another host's sessions cannot
 *                 be proven dead from this one); with etcd, a hash of the
 *                 key prefix (the fleet)
 *
 * Every value is valid for GCP labels (lowercase letters, digits, '-' and
 * '_', at most 63 characters, starting with a letter), and so for AWS and
 * Azure tags too.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-session-manager.h"

G_BEGIN_DECLS

#define GSM_LABEL_SESSION "gsm-session"
#define GSM_LABEL_HOST "gsm-host"
#define GSM_LABEL_REGISTRY "gsm-registry"
#define GSM_LABEL_MAX_LEN 63

/* A valid label value (see above). */
G_GNUC_INTERNAL
gboolean _gsm_label_value_is_valid (const char *value);
/* The gsm-session value of @session_id: the id itself if it is a valid
 * value, "s-" + id for an id of valid characters that starts with a
 * digit, else "x-" and a hash. */
G_GNUC_INTERNAL
char *_gsm_label_for_session (const char *session_id);
/* The session ids whose gsm-session value @value may be (one or two), or
 * an empty array for a hash. */
G_GNUC_INTERNAL
char **_gsm_label_session_candidates (const char *value);
G_GNUC_INTERNAL
char *_gsm_label_for_host (const char *hostname);
G_GNUC_INTERNAL
char *_gsm_label_registry_for_files (const char *runtime_dir,
                                     const char *hostname);
G_GNUC_INTERNAL
char *_gsm_label_registry_for_etcd (const char *prefix);
/* The gsm-registry value of @manager's registry. */
G_GNUC_INTERNAL
char *_gsm_session_manager_dup_registry_label (GsmSessionManager *manager);

G_END_DECLS
