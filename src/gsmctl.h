/* gsmctl.h: what the files of gsmctl share
 *
 * gsmctl.c parses the command line and runs one command; gsmctl-output.c
 * prints tables, JSON documents and errors; the commands live in
 * gsmctl-sessions.c (list, stats, cleanup), gsmctl-watch.c,
 * gsmctl-reap.c (reap, reconcile) and gsmctl-history.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "gsm.h"

G_BEGIN_DECLS

#define GSMCTL_BUS_NAME "org.gsm.SessionManager1"
#define GSMCTL_OBJECT_PATH "/org/gsm/SessionManager1"
#define GSMCTL_INTERFACE "org.gsm.SessionManager1"

/* Exit codes (documented in gsmctl(1) and the README). */
enum
{
  GSMCTL_EXIT_OK = 0,
  GSMCTL_EXIT_FAILURE = 1, /* an error, or a deletion that failed */
  GSMCTL_EXIT_USAGE = 2,   /* a bad command line */
};

typedef struct
{
  gboolean json;
  gboolean dry_run;
  gboolean yes;
  gboolean bus;
  gboolean local;
  gboolean system;
  gboolean unverifiable;
  double   older_than;
} GsmctlOptions;

extern GsmctlOptions gsmctl_opt;

/* ---- gsmctl-output.c ---------------------------------------------------- */

void   gsmctl_output_init (void);
void   gsmctl_error (const char *format,
                     ...) G_GNUC_PRINTF (1, 2);
void   gsmctl_gerror (const GError *error);
char  *gsmctl_format_age (double seconds);
double gsmctl_now (void);

typedef struct _GsmctlTable GsmctlTable;

GsmctlTable *gsmctl_table_new (const char *first_header,
                               ...) G_GNUC_NULL_TERMINATED;
void         gsmctl_table_add_row (GsmctlTable *table,
                                   const char  *first_cell,
                                   ...) G_GNUC_NULL_TERMINATED;
void         gsmctl_table_print (GsmctlTable *table);
void         gsmctl_table_free (GsmctlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GsmctlTable, gsmctl_table_free)

void gsmctl_print_json (JsonBuilder *builder);
void gsmctl_json_add_string (JsonBuilder *builder,
                             const char  *member,
                             const char  *value);
void gsmctl_json_add_session (JsonBuilder *builder,
                              GVariant    *session);

/* ---- gsmctl-sessions.c -------------------------------------------------- */

GPtrArray       *gsmctl_read_sessions (char   **location,
                                       GError **error);
GHashTable      *gsmctl_shown_sessions (GsmSessionList *list);
const char      *gsmctl_list_location (GsmSessionList *list);
GDBusConnection *gsmctl_bus_connect (void);
int              gsmctl_cmd_list (void);
int              gsmctl_cmd_stats (void);
int              gsmctl_cmd_cleanup (void);

/* ---- the other commands ------------------------------------------------- */

int gsmctl_cmd_watch (void);
int gsmctl_cmd_reap (void);
int gsmctl_cmd_reconcile (void);
int gsmctl_cmd_history (void);

G_END_DECLS
