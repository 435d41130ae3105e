/* gsm-audit-private.h: the audit log of VM deletions
 *
 * One JSON object per line, appended (O_APPEND, one write per record) to
 * PREFIX reap_audit.log in the runtime directory, mode 0600, never through
 * a symbolic link. A provider command is recorded before it starts
 * (outcome "started"), and again with its outcome once known; both records
 * carry the same "token". A record of a command that ran has its standard
 * error ("stderr", up to 64 KiB) when it printed any.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-etcd-registry-private.h"
#include "gsm-provider-result.h"
#include "gsm-session-manager.h"

G_BEGIN_DECLS

#define GSM_AUDIT_LOG_NAME "reap_audit.log"
#define GSM_AUDIT_MAX_READ (4 * 1024 * 1024)

typedef struct
{
  const char        *action; /* "reap" or "cleanup" */
  const char        *vm_id;
  const char        *zone;
  const char        *session_id; /* the VM's owner */
  int                pid;
  const char        *hostname;
  GsmProviderResult *result;  /* nullable: the command did not run */
  const char *const *argv;    /* nullable: the command, when there is no result */
  const char        *outcome; /* "started", then "deleted", "not-found", "failed",
                               * …, or "unknown" */
  const char *error_message;  /* nullable */
  guint       attempt;        /* 1 for the first */
  const char *token;          /* nullable: ties an outcome to its "started" record */
} GsmAuditRecord;

G_GNUC_INTERNAL
char *_gsm_audit_get_path (GsmSessionManager *manager);
G_GNUC_INTERNAL
gboolean _gsm_audit_append (GsmSessionManager    *manager,
                            const GsmAuditRecord *record,
                            GError              **error);
G_GNUC_INTERNAL
char **_gsm_audit_read (GsmSessionManager *manager,
                        GError           **error);
/* The same without a session: the log named @file_prefix reap_audit.log
 * in @dir (a missing one, or a missing @dir, is empty), merged with the
 * fleet's log in @etcd (nullable), oldest first. Creates nothing. */
G_GNUC_INTERNAL
char **_gsm_audit_read_at (const char      *dir,
                           const char      *file_prefix,
                           GsmEtcdRegistry *etcd,
                           GError         **error);

G_END_DECLS
