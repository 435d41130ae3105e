/* gsmctl.c: look at and clean up the session registry
 *
 * The command line: `gsmctl COMMAND [OPTION…]`, `gsmctl help [COMMAND]`,
 * `gsmctl --version`. Help goes to standard output with exit status 0;
 * a bad command line to standard error with 2 (see gsmctl(1)). The
 * commands are in gsmctl-*.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "gsm-reaper-private.h" /* _gsm_reaper_inhibit_reap_at_start */
#include "gsmctl.h"

#define JSON_ENTRY                                                                       \
  {                                                                                      \
    "json", 'j', 0, G_OPTION_ARG_NONE, &gsmctl_opt.json, "Print one JSON document", NULL \
  }
#define DRY_RUN_ENTRY                                                   \
  {                                                                     \
    "dry-run", 'n', 0, G_OPTION_ARG_NONE, &gsmctl_opt.dry_run,          \
        "Change nothing (the default; accepted by every command)", NULL \
  }
#define YES_ENTRY(what)                                                                   \
  {                                                                                       \
    "yes", 'y', 0, G_OPTION_ARG_NONE, &gsmctl_opt.yes, what " (default: a dry run)", NULL \
  }
#define BUS_ENTRIES(bus_help)                                                                     \
  { "bus", 'b', 0, G_OPTION_ARG_NONE, &gsmctl_opt.bus, bus_help, NULL },                          \
  {                                                                                               \
    "system", 0, 0, G_OPTION_ARG_NONE, &gsmctl_opt.system, "With --bus: use the system bus", NULL \
  }

static const GOptionEntry list_entries[] = {
  JSON_ENTRY,
  BUS_ENTRIES ("Ask gsmd (" GSMCTL_BUS_NAME ") instead of reading the registry"),
  DRY_RUN_ENTRY,
  { NULL }
};

static const GOptionEntry watch_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &gsmctl_opt.json, "Print one JSON object per line and event", NULL },
  BUS_ENTRIES ("Only from gsmd; fail if it does not run"),
  { "local", 'l', 0, G_OPTION_ARG_NONE, &gsmctl_opt.local, "Watch the registry files, even if gsmd runs", NULL },
  DRY_RUN_ENTRY,
  { NULL }
};

static const GOptionEntry cleanup_entries[] = {
  JSON_ENTRY,
  YES_ENTRY ("Remove the dead sessions (keeping those that own a VM, as stale)"),
  DRY_RUN_ENTRY,
  { NULL }
};

static const GOptionEntry reconcile_entries[] = {
  JSON_ENTRY,
  YES_ENTRY ("Record what the inventory shows and delete the orphans found"),
  DRY_RUN_ENTRY,
  { NULL }
};

static const GOptionEntry history_entries[] = {
  JSON_ENTRY,
  DRY_RUN_ENTRY,
  { NULL }
};

static const GOptionEntry reap_entries[] = {
  JSON_ENTRY,
  YES_ENTRY ("Delete the VMs listed"),
  DRY_RUN_ENTRY,
  { "unverifiable", 0, 0, G_OPTION_ARG_NONE, &gsmctl_opt.unverifiable,
    "Also the VMs of sessions whose liveness cannot be verified here (another host, no start "
    "time), older than --older-than: their processes may be alive",
    NULL },
  { "older-than", 0, 0, G_OPTION_ARG_DOUBLE, &gsmctl_opt.older_than,
    "With --unverifiable: the age of such a session, in seconds", "SECONDS" },
  { NULL }
};

typedef struct
{
  const char         *name;
  const char         *summary;
  const GOptionEntry *entries;
  int (*run) (void);
} Command;

static const Command commands[] = {
  { "list", "List every session in the registry, live or stale", list_entries, gsmctl_cmd_list },
  { "stats", "Count sessions and VMs", list_entries, gsmctl_cmd_stats },
  { "watch", "Print sessions and VMs as they appear, change and die", watch_entries, gsmctl_cmd_watch },
  { "cleanup", "Show (with --yes, record) the sessions found dead", cleanup_entries, gsmctl_cmd_cleanup },
  { "reap", "Show (with --yes, delete) the VMs of dead sessions", reap_entries, gsmctl_cmd_reap },
  { "reconcile", "Compare the cloud's inventory with the registry (with --yes, delete the orphans found)", reconcile_entries, gsmctl_cmd_reconcile },
  { "history", "Show the audit log of VM deletions", history_entries, gsmctl_cmd_history },
};

static const char description[] =
    "Exit status: 0 on success (a dry run included), 1 on an error or a deletion that failed,\n"
    "2 on a bad command line. See gsmctl(1).";

static void
usage (FILE *out)
{
  fprintf (out, "Usage:\n  gsmctl COMMAND [OPTION…]\n  gsmctl help [COMMAND]\n"
                "  gsmctl --version\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "  %-10s %s\n", "help", "Show this help, or a command's");
  fprintf (out, "\nRun “gsmctl help COMMAND” for the options of a command.\n\n%s\n", description);
}

static const Command *
find_command (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (name, commands[i].name))
      return &commands[i];
  return NULL;
}

/* Its usage line reads "gsmctl COMMAND [OPTION…]". */
static GOptionContext *
command_context (const Command *command)
{
  GOptionContext  *context = g_option_context_new (NULL);
  g_autofree char *prgname = g_strdup_printf ("gsmctl %s", command->name);

  g_set_prgname (prgname);
  g_option_context_set_summary (context, command->summary);
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, command->entries, NULL);
  return context;
}

/* gsmctl help [COMMAND] */
static int
help (int    argc,
      char **argv)
{
  const Command *command;
  g_autoptr (GOptionContext) context = NULL;
  g_autofree char *text = NULL;

  if (argc < 3)
    {
      usage (stdout);
      return GSMCTL_EXIT_OK;
    }
  command = find_command (argv[2]);
  if (command == NULL || argc > 3)
    {
      gsmctl_error ("help: %s “%s”", command == NULL ? "unknown command" : "unexpected argument",
                    argv[command == NULL ? 2 : 3]);
      return GSMCTL_EXIT_USAGE;
    }
  context = command_context (command);
  text = g_option_context_get_help (context, TRUE, NULL);
  fputs (text, stdout);
  return GSMCTL_EXIT_OK;
}

/* Parses "gsmctl COMMAND ARGS" as "COMMAND ARGS". */
static gboolean
parse_command_line (const Command *command,
                    int            argc,
                    char         **argv)
{
  g_autoptr (GOptionContext) context = command_context (command);
  g_autoptr (GError) error = NULL;
  char **sub_argv = argv + 1;
  int    sub_argc = argc - 1;

  if (!g_option_context_parse (context, &sub_argc, &sub_argv, &error))
    {
      gsmctl_error ("%s: %s", command->name, error->message);
      return FALSE;
    }
  g_set_prgname ("gsmctl");
  if (sub_argc > 1)
    {
      gsmctl_error ("%s: unexpected argument “%s”", command->name, sub_argv[1]);
      return FALSE;
    }
  if (gsmctl_opt.bus && gsmctl_opt.local)
    {
      gsmctl_error ("%s: --bus and --local exclude each other", command->name);
      return FALSE;
    }
  if (gsmctl_opt.yes && gsmctl_opt.dry_run)
    {
      gsmctl_error ("%s: --yes and --dry-run exclude each other", command->name);
      return FALSE;
    }
  return TRUE;
}

int
main (int   argc,
      char *argv[])
{
  const Command *command;
  int            status;

  setlocale (LC_ALL, "");
  g_set_prgname ("gsmctl");
  gsmctl_output_init ();

  if (argc < 2)
    {
      usage (stderr);
      return GSMCTL_EXIT_USAGE;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") ||
      g_str_equal (argv[1], "help"))
    return help (argc, argv);
  if (g_str_equal (argv[1], "--version"))
    {
      printf ("gsmctl %s\n", PACKAGE_VERSION);
      return GSMCTL_EXIT_OK;
    }

  command = find_command (argv[1]);
  if (command == NULL)
    {
      gsmctl_error ("unknown command “%s” (see “gsmctl help”)", argv[1]);
      return GSMCTL_EXIT_USAGE;
    }
  if (!parse_command_line (command, argc, argv))
    return GSMCTL_EXIT_USAGE;

  /* gsmctl reaps only when asked, never when its session starts. */
  _gsm_reaper_inhibit_reap_at_start ();
  status = command->run ();
  /* With the registry, gsmctl is a session of its own while it runs;
   * leave no trace. */
  if (gsm_session_manager_is_available ())
    gsm_session_manager_close_sync (gsm_session_manager_get_default (), NULL, NULL);

  return status;
}
