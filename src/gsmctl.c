/* gsmctl.c: look at and clean up the session registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "gsm-session.h"

static gboolean opt_json = FALSE;
static gboolean opt_dry_run = FALSE;

static const GOptionEntry list_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { NULL }
};

static const GOptionEntry cleanup_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_dry_run, "Only show what would be cleaned up", NULL },
  { NULL }
};

static int
compare_sessions (gconstpointer a,
                  gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;
  double d = gsm_session_get_created_at (x) - gsm_session_get_created_at (y);

  return d < 0 ? -1 : d > 0 ? 1 : g_strcmp0 (gsm_session_get_session_id (x),
                                              gsm_session_get_session_id (y));
}

/* The sessions of @table other than gsmctl's own, oldest first. */
static GPtrArray *
sorted_sessions (GHashTable *table,
                 const char *self_id)
{
  GPtrArray *array = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_strcmp0 (gsm_session_get_session_id (value), self_id) != 0)
      g_ptr_array_add (array, g_object_ref (value));
  g_ptr_array_sort (array, compare_sessions);

  return array;
}

static void
print_json_array (GPtrArray *sessions)
{
  g_autoptr(GString) out = g_string_new ("[");

  for (guint i = 0; i < sessions->len; i++)
    {
      g_autofree char *text = gsm_session_to_json (sessions->pdata[i]);

      g_string_append (out, i ? ",\n  " : "\n  ");
      g_string_append (out, text);
    }
  g_string_append (out, sessions->len ? "\n]\n" : "]\n");
  fputs (out->str, stdout);
}

static char *
format_age (double seconds)
{
  if (seconds < 120)
    return g_strdup_printf ("%.0fs", seconds);
  if (seconds < 7200)
    return g_strdup_printf ("%.0fm", seconds / 60);
  return g_strdup_printf ("%.1fh", seconds / 3600);
}

static void
print_table (GPtrArray *sessions)
{
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;

  if (sessions->len == 0)
    {
      printf ("No sessions.\n");
      return;
    }

  printf ("%-8s  %7s  %-16s  %-6s  %-24s  %-16s  %s\n",
          "SESSION", "PID", "HOST", "STATUS", "VM", "ZONE", "AGE");
  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];
      g_autofree char *age = format_age (now - gsm_session_get_created_at (s));

      printf ("%-8.8s  %7d  %-16.16s  %-6s  %-24.24s  %-16.16s  %s\n",
              gsm_session_get_session_id (s), gsm_session_get_pid (s),
              gsm_session_get_hostname (s), gsm_session_get_status (s),
              gsm_session_get_vm_id (s) ? gsm_session_get_vm_id (s) : "-",
              gsm_session_get_zone (s) ? gsm_session_get_zone (s) : "-", age);
    }
}

static int
cmd_list (GsmSessionManager *manager)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GPtrArray) sessions = NULL;

  table = gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  if (table == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  sessions = sorted_sessions (table, gsm_session_manager_get_session_id (manager));
  if (opt_json)
    print_json_array (sessions);
  else
    print_table (sessions);

  return 0;
}

static int
cmd_cleanup (GsmSessionManager *manager)
{
  g_autoptr(GError) error = NULL;
  int removed;

  if (opt_dry_run)
    {
      g_autoptr(GHashTable) table = NULL;
      g_autoptr(GPtrArray) all = NULL;
      g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func (g_object_unref);

      table = gsm_session_manager_list_sessions_sync (manager, NULL, &error);
      if (table == NULL)
        {
          g_printerr ("gsmctl: %s\n", error->message);
          return 1;
        }
      all = sorted_sessions (table, gsm_session_manager_get_session_id (manager));
      for (guint i = 0; i < all->len; i++)
        if (g_strcmp0 (gsm_session_get_status (all->pdata[i]), "stale") == 0)
          g_ptr_array_add (stale, g_object_ref (all->pdata[i]));

      if (opt_json)
        print_json_array (stale);
      else if (stale->len == 0)
        printf ("No stale sessions.\n");
      else
        for (guint i = 0; i < stale->len; i++)
          {
            GsmSession *s = stale->pdata[i];

            printf ("would %s session %s (pid %d on %s)%s%s\n",
                    gsm_session_get_has_vm (s) ? "mark stale" : "remove",
                    gsm_session_get_session_id (s), gsm_session_get_pid (s),
                    gsm_session_get_hostname (s),
                    gsm_session_get_has_vm (s) ? ", keeping orphan VM " : "",
                    gsm_session_get_has_vm (s) ? gsm_session_get_vm_id (s) : "");
          }
      return 0;
    }

  removed = gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error);
  if (removed < 0)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  if (opt_json)
    printf ("{\"stale_sessions\": %d}\n", removed);
  else
    printf ("Cleaned up %d stale session%s.\n", removed, removed == 1 ? "" : "s");

  return 0;
}

static int
cmd_stats (GsmSessionManager *manager)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GPtrArray) sessions = NULL;
  guint n_active = 0, n_stale = 0, n_vms = 0, n_orphans = 0;

  table = gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  if (table == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }
  sessions = sorted_sessions (table, gsm_session_manager_get_session_id (manager));
  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];
      gboolean stale = g_strcmp0 (gsm_session_get_status (s), "stale") == 0;

      if (stale)
        n_stale++;
      else
        n_active++;
      if (gsm_session_get_has_vm (s))
        {
          n_vms++;
          if (stale)
            n_orphans++;
        }
    }

  if (opt_json)
    {
      g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "runtime_dir");
      json_builder_add_string_value (b, dir);
      json_builder_set_member_name (b, "sessions");
      json_builder_add_int_value (b, sessions->len);
      json_builder_set_member_name (b, "active");
      json_builder_add_int_value (b, n_active);
      json_builder_set_member_name (b, "stale");
      json_builder_add_int_value (b, n_stale);
      json_builder_set_member_name (b, "vms");
      json_builder_add_int_value (b, n_vms);
      json_builder_set_member_name (b, "orphan_vms");
      json_builder_add_int_value (b, n_orphans);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));

      printf ("Registry:    %s\n", dir);
      printf ("Sessions:    %u (%u active, %u stale)\n", sessions->len, n_active, n_stale);
      printf ("VMs:         %u (%u orphaned)\n", n_vms, n_orphans);
    }

  return 0;
}

typedef struct
{
  const char         *name;
  const char         *summary;
  const GOptionEntry *entries;
  int               (*run) (GsmSessionManager *manager);
} Command;

static const Command commands[] = {
  { "list", "List every session in the registry, live or stale", list_entries, cmd_list },
  { "cleanup", "Remove dead sessions (keeping those that still own a VM, as stale)", cleanup_entries, cmd_cleanup },
  { "stats", "Count sessions and VMs", list_entries, cmd_stats },
};

static void
usage (void)
{
  g_printerr ("Usage: gsmctl COMMAND [OPTION…]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_printerr ("  %-10s %s\n", commands[i].name, commands[i].summary);
  g_printerr ("\nRun “gsmctl COMMAND --help” for the options of a command.\n");
}

int
main (int   argc,
      char *argv[])
{
  const Command *command = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  GsmSessionManager *manager;
  int status;

  setlocale (LC_ALL, "");

  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      usage ();
      return argc < 2 ? 2 : 0;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      command = &commands[i];
  if (command == NULL)
    {
      g_printerr ("gsmctl: unknown command “%s”\n\n", argv[1]);
      usage ();
      return 2;
    }

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, command->summary);
  g_option_context_add_main_entries (context, command->entries, NULL);
  {
    /* Parse "gsmctl COMMAND ARGS" as "COMMAND ARGS". */
    char **sub_argv = argv + 1;
    int sub_argc = argc - 1;

    if (!g_option_context_parse (context, &sub_argc, &sub_argv, &error))
      {
        g_printerr ("gsmctl %s: %s\n", command->name, error->message);
        return 2;
      }
    if (sub_argc > 1)
      {
        g_printerr ("gsmctl %s: unexpected argument “%s”\n", command->name, sub_argv[1]);
        return 2;
      }
  }
  if (FALSE)
    {
      g_printerr ("gsmctl %s: %s\n", command->name, error->message);
      return 2;
    }

  manager = gsm_session_manager_get_default ();
  status = command->run (manager);
  /* gsmctl is a session of its own while it runs; leave no trace. */
  gsm_session_manager_close_sync (manager, NULL, NULL);

  return status;
}
