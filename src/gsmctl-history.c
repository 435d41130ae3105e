/* gsmctl-history.c: gsmctl history, the audit log of VM deletions
 *
 * Read without entering a session (no lock, no lease, nothing created):
 * this host's log in the runtime directory, and with etcd the fleet's,
 * through a reader that holds no lease. In the log's order (oldest
 * first).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>

#include "gsm-audit-private.h"
#include "gsm-config-private.h" /* _gsm_config_load */
#include "gsm-etcd-registry-private.h"
#include "gsm-fs-private.h"
#include "gsmctl.h"

static char **
read_history (GError **error)
{
  g_autoptr (GKeyFile) config = _gsm_config_load (NULL);
  g_autofree char *backend = _gsm_config_get_backend (config);
  g_autoptr (GsmEtcdRegistry) etcd = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *prefix = NULL;
  const char      *env = g_getenv ("GSM_RUNTIME_DIR");

  if (env != NULL && *env != '\0')
    dir = g_strdup (env);
  else
    dir = g_build_filename (g_get_user_state_dir (), "gsm-session", NULL);
  prefix = _gsm_fs_effective_prefix (dir, g_getenv ("GSM_FILE_PREFIX"));

  if (_gsm_backend_is_etcd (backend))
    {
      etcd = _gsm_etcd_registry_new (backend, NULL, GSM_ETCD_DEFAULT_TTL,
                                     _gsm_config_get_seconds (config, "registry", "etcd-timeout",
                                                              "GSM_ETCD_TIMEOUT",
                                                              GSM_ETCD_DEFAULT_TIMEOUT),
                                     NULL, error);
      if (etcd == NULL)
        return NULL;
    }

  return _gsm_audit_read_at (dir, prefix, etcd, error);
}

/* The records that parse as JSON objects, in the log's order. */
static GPtrArray *
parse_records (char **records)
{
  GPtrArray *parsed = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);

  for (guint i = 0; records[i] != NULL; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();

      if (json_parser_load_from_data (parser, records[i], -1, NULL) &&
          JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        g_ptr_array_add (parsed, json_node_copy (json_parser_get_root (parser)));
    }
  return parsed;
}

static const char *
member_string (JsonObject *o,
               const char *name)
{
  return o ? json_object_get_string_member_with_default (o, name, NULL) : NULL;
}

static void
print_history_table (GPtrArray *records)
{
  g_autoptr (GsmctlTable) table = gsmctl_table_new ("TIME", "ACTION", "VM", "ZONE", "OWNER",
                                                    "PID@HOST", ">EXIT", "OUTCOME", NULL);

  for (guint i = 0; i < records->len; i++)
    {
      JsonObject      *o = json_node_get_object (records->pdata[i]);
      JsonNode        *node = json_object_get_member (o, "owner");
      JsonObject      *owner = node && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      g_autofree char *time = g_strndup (member_string (o, "time") ?: "?", 19);
      g_autofree char *where = NULL;
      g_autofree char *exit_text = NULL;
      g_autofree char *outcome = NULL;

      where = g_strdup_printf ("%" G_GINT64_FORMAT "@%s",
                               owner ? json_object_get_int_member_with_default (owner, "pid", 0) : 0,
                               member_string (owner, "host") ?: "?");
      node = json_object_get_member (o, "exit_status");
      if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
        exit_text = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
      outcome = g_strdup_printf ("%s%s%s", member_string (o, "outcome") ?: "?",
                                 member_string (o, "error") ? ": " : "",
                                 member_string (o, "error") ?: "");
      gsmctl_table_add_row (table, time, member_string (o, "action"), member_string (o, "vm"),
                            member_string (o, "zone"), member_string (owner, "session"), where,
                            exit_text, outcome, NULL);
    }
  gsmctl_table_print (table);
}

int
gsmctl_cmd_history (void)
{
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) records = read_history (&error);
  g_autoptr (GPtrArray) parsed = NULL;

  if (records == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  parsed = parse_records (records);

  if (gsmctl_opt.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      /* The log's records as they are, in one array. */
      json_builder_begin_array (b);
      for (guint i = 0; i < parsed->len; i++)
        json_builder_add_value (b, json_node_copy (parsed->pdata[i]));
      json_builder_end_array (b);
      gsmctl_print_json (b);
    }
  else if (parsed->len == 0)
    printf ("No VM deletions recorded.\n");
  else
    print_history_table (parsed);
  return GSMCTL_EXIT_OK;
}
