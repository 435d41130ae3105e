/* test-cli.c: the conventions of gsmctl and gsmd, with the built programs
 *
 * Each test runs gsmctl or gsmd as a process of its own (under valgrind
 * too, with `meson test --setup=valgrind`) against a registry in a
 * temporary directory, with session processes (gsm-test-worker) that own
 * VMs and are killed, and a provider command that deletes nothing real.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

typedef struct
{
  char      *dir;   /* the registry */
  char      *calls; /* what the provider was asked to delete, one per line */
  GPtrArray *workers;
} Fixture;

typedef struct
{
  int   status; /* exit status, or 128 + signal */
  char *out;
  char *err;
} Run;

static void
run_clear (Run *r)
{
  g_clear_pointer (&r->out, g_free);
  g_clear_pointer (&r->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

/* ---- running the programs ------------------------------------------------ */

/* Under `meson test --setup=valgrind` the programs run under valgrind as
 * well: any report fails the test (exit status 99 and standard error). */
static void
add_valgrind (GPtrArray *argv)
{
  if (g_getenv ("GSM_UNDER_VALGRIND") == NULL)
    return;
  g_ptr_array_add (argv, g_strdup ("valgrind"));
  g_ptr_array_add (argv, g_strdup ("-q"));
  g_ptr_array_add (argv, g_strdup ("--error-exitcode=99"));
  g_ptr_array_add (argv, g_strdup ("--leak-check=full"));
  g_ptr_array_add (argv, g_strdup ("--show-leak-kinds=definite"));
  g_ptr_array_add (argv, g_strdup ("--errors-for-leak-kinds=definite"));
  g_ptr_array_add (argv, g_strdup_printf ("--suppressions=%s/valgrind.supp",
                                          g_getenv ("G_TEST_SRCDIR")));
  g_ptr_array_add (argv, g_strdup ("--suppressions=/usr/share/glib-2.0/valgrind/glib.supp"));
}

static Run
run_program (const char  *program,
             const char **env,
             const char  *first_arg,
             va_list      args)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  Run r = { 0, NULL, NULL };

  add_valgrind (argv);
  g_ptr_array_add (argv, g_strdup (program));
  for (const char *a = first_arg; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (a));
  g_ptr_array_add (argv, NULL);

  /* Never a terminal: output as piped. */
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &r.out, &r.err, &error));
  g_assert_no_error (error);
  if (g_subprocess_get_if_exited (proc))
    r.status = g_subprocess_get_exit_status (proc);
  else
    r.status = 128 + g_subprocess_get_term_sig (proc);
  g_test_message ("%s %s: %d\n%s%s", program, first_arg ? first_arg : "", r.status, r.out, r.err);
  g_assert_cmpint (r.status, !=, 99); /* valgrind */
  return r;
}

static Run
gsmctl_env (const char **env,
            const char  *first_arg,
            ...)
{
  va_list args;
  Run     r;

  va_start (args, first_arg);
  r = run_program (g_getenv ("GSMCTL"), env, first_arg, args);
  va_end (args);
  return r;
}

#define gsmctl(...) gsmctl_env (NULL, __VA_ARGS__)

static Run
gsmd (const char *first_arg,
      ...)
{
  va_list args;
  Run     r;

  va_start (args, first_arg);
  r = run_program (g_getenv ("GSMD"), NULL, first_arg, args);
  va_end (args);
  return r;
}

static const char *const commands[] = {
  "list", "stats", "watch", "cleanup", "reap", "reconcile", "history", NULL
};

/* ---- fixture ------------------------------------------------------------- */

static void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autofree char *command = NULL;

  f->dir = g_dir_make_tmp ("gsm-cli-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  f->calls = g_build_filename (f->dir, "provider-calls", NULL);
  f->workers = g_ptr_array_new_with_free_func (g_object_unref);
  command = g_strdup_printf ("/bin/sh -c 'echo \"$1\" >> %s' sh {vm_id}", f->calls);
  g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
  g_setenv ("GSM_PROVIDER_COMMAND", command, TRUE);
  g_setenv ("GSM_CONFIG_FILE", "/nonexistent/gsm-test-config.ini", TRUE);
  g_setenv ("GSM_REAP_GRACE", "0", TRUE);
  g_unsetenv ("GSM_REAP_BACKOFF");
  g_unsetenv ("GSM_PROVIDER");
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", f->dir);

  for (guint i = 0; i < f->workers->len; i++)
    g_subprocess_force_exit (f->workers->pdata[i]);
  for (guint i = 0; i < f->workers->len; i++)
    g_subprocess_wait (f->workers->pdata[i], NULL, NULL);
  g_ptr_array_unref (f->workers);
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  g_free (f->calls);
  g_free (f->dir);
}

static void
die_with_parent (gpointer user_data)
{
  /* A test that fails leaves no worker behind. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* A session process that owns @vm_id; returns its session id. */
static char *
start_worker (Fixture    *f,
              const char *vm_id,
              GPid       *pid)
{
  g_autoptr (GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GDataInputStream) in = NULL;
  g_autofree char *line = NULL;
  GSubprocess     *proc;

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"), "register",
                                      vm_id, NULL);
  g_assert_no_error (error);
  g_ptr_array_add (f->workers, proc);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "READY "));
  if (pid != NULL)
    *pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (proc), NULL, 10);
  /* READY SESSION_ID PID */
  return g_strndup (line + strlen ("READY "), strcspn (line + strlen ("READY "), " "));
}

static char *
start_dead_worker (Fixture    *f,
                   const char *vm_id)
{
  GPid         pid;
  char        *id = start_worker (f, vm_id, &pid);
  GSubprocess *proc = f->workers->pdata[f->workers->len - 1];

  g_assert_cmpint (kill (pid, SIGKILL), ==, 0);
  g_subprocess_wait (proc, NULL, NULL);
  return id;
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* The members of @object, in order, joined by spaces. */
static char *
member_names (JsonObject *object)
{
  g_autoptr (GString) names = g_string_new (NULL);
  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *l = members; l != NULL; l = l->next)
    g_string_append_printf (names, "%s%s", names->len ? " " : "", (char *) l->data);
  return g_string_free (g_steal_pointer (&names), FALSE);
}

static guint
count_lines (const char *text)
{
  guint n = 0;

  for (const char *p = text; *p; p++)
    if (*p == '\n')
      n++;
  return n;
}

/* ---- help, version, usage ------------------------------------------------ */

static void
assert_help (Run        *r,
             const char *usage_line)
{
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->err, ==, "");
  g_assert_true (g_str_has_prefix (r->out, "Usage:\n"));
  g_assert_nonnull (strstr (r->out, usage_line));
}

static void
test_help (Fixture      *f,
           gconstpointer data)
{
  const char *tool_forms[][2] = { { "--help", NULL }, { "-h", NULL }, { "help", NULL } };

  for (guint i = 0; i < G_N_ELEMENTS (tool_forms); i++)
    {
      g_auto (Run) r = gsmctl (tool_forms[i][0], NULL);

      assert_help (&r, "  gsmctl COMMAND [OPTION…]\n");
      for (guint c = 0; commands[c] != NULL; c++)
        g_assert_nonnull (strstr (r.out, commands[c]));
    }

  for (guint c = 0; commands[c] != NULL; c++)
    {
      g_autofree char *usage = g_strdup_printf ("  gsmctl %s [OPTION…]\n", commands[c]);
      g_autofree char *wrong = g_strdup_printf ("Usage:\n  %s ", commands[c]);
      g_auto (Run) a = gsmctl (commands[c], "--help", NULL);
      g_auto (Run) b = gsmctl ("help", commands[c], NULL);
      g_auto (Run) h = gsmctl (commands[c], "-h", NULL);

      assert_help (&a, usage);
      assert_help (&b, usage);
      assert_help (&h, usage);
      g_assert_null (strstr (a.out, wrong));
      /* Every command takes --dry-run and --json. */
      g_assert_nonnull (strstr (a.out, "--dry-run"));
      g_assert_nonnull (strstr (a.out, "--json"));
      g_assert_cmpstr (a.out, ==, b.out);
    }

  {
    g_auto (Run) r = gsmd ("--help", NULL);

    assert_help (&r, "  gsmd [OPTION…]\n");
    g_assert_nonnull (strstr (r.out, "--version"));
  }
}

static void
test_version (Fixture      *f,
              gconstpointer data)
{
  g_autofree char *ctl_version = g_strdup_printf ("gsmctl %s\n", PACKAGE_VERSION);
  g_autofree char *d_version = g_strdup_printf ("gsmd %s\n", PACKAGE_VERSION);
  g_auto (Run) a = gsmctl ("--version", NULL);
  g_auto (Run) b = gsmd ("--version", NULL);

  g_assert_cmpint (a.status, ==, 0);
  g_assert_cmpstr (a.out, ==, ctl_version);
  g_assert_cmpstr (a.err, ==, "");
  g_assert_cmpint (b.status, ==, 0);
  g_assert_cmpstr (b.out, ==, d_version);
  g_assert_cmpstr (b.err, ==, "");
}

/* A bad command line: exit status 2, one line on standard error naming
 * gsmctl, nothing on standard output. */
static void
assert_usage_error (Run *r)
{
  g_assert_cmpint (r->status, ==, 2);
  g_assert_cmpstr (r->out, ==, "");
  g_assert_true (g_str_has_prefix (r->err, "gsmctl: "));
  g_assert_cmpuint (count_lines (r->err), ==, 1);
}

static void
test_usage_errors (Fixture      *f,
                   gconstpointer data)
{
  g_auto (Run) none = gsmctl (NULL, NULL);
  g_auto (Run) unknown = gsmctl ("frobnicate", NULL);
  g_auto (Run) option = gsmctl ("list", "--frobnicate", NULL);
  g_auto (Run) argument = gsmctl ("list", "extra", NULL);
  g_auto (Run) help = gsmctl ("help", "frobnicate", NULL);
  g_auto (Run) both = gsmctl ("reap", "--yes", "--dry-run", NULL);
  g_auto (Run) half = gsmctl ("reap", "--unverifiable", NULL);
  g_auto (Run) daemon = gsmd ("--frobnicate", NULL);

  /* Without a command: the usage, on standard error. */
  g_assert_cmpint (none.status, ==, 2);
  g_assert_cmpstr (none.out, ==, "");
  g_assert_true (g_str_has_prefix (none.err, "Usage:\n"));

  assert_usage_error (&unknown);
  g_assert_nonnull (strstr (unknown.err, "frobnicate"));
  assert_usage_error (&option);
  g_assert_true (g_str_has_prefix (option.err, "gsmctl: list: "));
  assert_usage_error (&argument);
  assert_usage_error (&help);
  assert_usage_error (&both);
  assert_usage_error (&half);
  g_assert_cmpint (daemon.status, ==, 2);
  g_assert_true (g_str_has_prefix (daemon.err, "gsmd: "));
}

/* --dry-run is accepted by every command (list, stats, history read). */
static void
test_dry_run_everywhere (Fixture      *f,
                         gconstpointer data)
{
  const char *reading[] = { "list", "stats", "cleanup", "reap", "history", NULL };

  for (guint i = 0; reading[i] != NULL; i++)
    {
      g_auto (Run) r = gsmctl (reading[i], "--dry-run", NULL);

      g_assert_cmpint (r.status, ==, 0);
      g_assert_cmpstr (r.err, ==, "");
    }
}

/* ---- errors --------------------------------------------------------------- */

static void
test_single_error (Fixture      *f,
                   gconstpointer data)
{
  g_autofree char *registry = g_build_filename (f->dir, "vm_registry.json", NULL);

  g_assert_true (g_file_set_contents (registry, "{\"a\": 1", -1, NULL));

  /* Reading: the error, once, naming gsmctl and the file. */
  {
    g_auto (Run) r = gsmctl ("list", NULL);

    g_assert_cmpint (r.status, ==, 1);
    g_assert_cmpstr (r.out, ==, "");
    g_assert_true (g_str_has_prefix (r.err, "gsmctl: "));
    g_assert_nonnull (strstr (r.err, registry));
    g_assert_cmpuint (count_lines (r.err), ==, 1);
  }

  /* Repairing (cleanup --yes moves it aside): the library's warning is
   * printed once, as gsmctl's, never as a Gsm-WARNING of "cleanup". */
  {
    g_auto (Run) r = gsmctl ("cleanup", "--yes", NULL);

    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.err, "gsmctl: "));
    g_assert_nonnull (strstr (r.err, registry));
    g_assert_null (strstr (r.err, "WARNING"));
    g_assert_null (strstr (r.err, "(cleanup:"));
    g_assert_cmpuint (count_lines (r.err), ==, 1);
  }

  /* A directory that is not there. */
  {
    g_autofree char *missing = g_build_filename (f->dir, "missing", NULL);
    const char      *env[] = { "GSM_RUNTIME_DIR", missing, NULL };
    g_auto (Run) r = gsmctl_env (env, "stats", NULL);

    g_assert_cmpint (r.status, ==, 1);
    g_assert_true (g_str_has_prefix (r.err, "gsmctl: "));
    g_assert_nonnull (strstr (r.err, missing));
    g_assert_cmpuint (count_lines (r.err), ==, 1);
  }
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char **) a, *(const char **) b);
}

/* ---- tables ----------------------------------------------------------------- */

static void
test_table_piped (Fixture      *f,
                  gconstpointer data)
{
  g_autoptr (GString) long_vm = g_string_new ("vm-long");
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) lines = NULL;

  while (long_vm->len < 150)
    g_string_append (long_vm, "-abcdefghij");
  g_ptr_array_add (ids, start_worker (f, "vm-b", NULL));
  g_ptr_array_add (ids, start_worker (f, long_vm->str, NULL));
  g_ptr_array_add (ids, start_worker (f, "vm-a", NULL));
  g_ptr_array_add (ids, start_dead_worker (f, "vm-c"));
  g_ptr_array_sort (ids, compare_strings);

  {
    g_auto (Run) r = gsmctl ("list", NULL);

    g_assert_cmpint (r.status, ==, 0);
    lines = g_strsplit (r.out, "\n", -1);
    /* A header, then one row per session, sorted by session id, whole. */
    g_assert_true (g_str_has_prefix (lines[0], "SESSION "));
    for (guint i = 0; i < ids->len; i++)
      g_assert_true (g_str_has_prefix (lines[i + 1], ids->pdata[i]));
    g_assert_nonnull (strstr (r.out, long_vm->str));
    g_assert_null (strstr (r.out, "…"));
    for (guint i = 1; i <= ids->len; i++)
      if (strstr (lines[i], "vm-c") != NULL)
        g_assert_nonnull (strstr (lines[i], " stale "));
  }

  /* The same order in JSON. */
  {
    g_auto (Run) r = gsmctl ("list", "--json", NULL);
    g_autoptr (JsonNode) root = parse_json (r.out);
    JsonArray *array = json_node_get_array (root);

    g_assert_cmpuint (json_array_get_length (array), ==, ids->len);
    for (guint i = 0; i < ids->len; i++)
      g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, i),
                                                      "session_id"),
                       ==, ids->pdata[i]);
  }
}

/* ---- JSON schema -------------------------------------------------------------- */

static void
assert_members (JsonNode   *node,
                const char *expected)
{
  g_autofree char *names = NULL;

  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  names = member_names (json_node_get_object (node));
  g_assert_cmpstr (names, ==, expected);
}

#define SESSION_MEMBERS                                                                     \
  "session_id pid hostname status created_at vm_id zone components metadata registered_at " \
  "start_time boot_id stale_since"
#define STATS_MEMBERS                                                              \
  "source runtime_dir sessions active creating stale unverifiable vms orphan_vms " \
  "unverifiable_vms auto_reap"
#define CLEANUP_MEMBERS "session_id pid hostname vm_id action result reason"
#define REAP_MEMBERS "session_id pid hostname vm_id zone action result reason"

/* Every --json prints one document, with the same members every time. */
static void
test_json_schema (Fixture      *f,
                  gconstpointer data)
{
  g_autofree char *live = start_worker (f, "vm-live", NULL);
  g_autofree char *dead = start_dead_worker (f, "vm-dead");
  g_autoptr (JsonNode) node = NULL;

  {
    g_auto (Run) r = gsmctl ("list", "--json", NULL);

    node = parse_json (r.out);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (node)), ==, 2);
    assert_members (json_array_get_element (json_node_get_array (node), 0), SESSION_MEMBERS);
    assert_members (json_array_get_element (json_node_get_array (node), 1), SESSION_MEMBERS);
    g_clear_pointer (&node, json_node_unref);
  }
  {
    g_auto (Run) r = gsmctl ("stats", "--json", NULL);

    node = parse_json (r.out);
    assert_members (node, STATS_MEMBERS);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "sessions"), ==, 2);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (node), "orphan_vms"), ==, 1);
    g_clear_pointer (&node, json_node_unref);
  }
  {
    g_auto (Run) r = gsmctl ("cleanup", "--json", NULL);
    JsonObject *o;

    node = parse_json (r.out);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (node)), ==, 1);
    assert_members (json_array_get_element (json_node_get_array (node), 0), CLEANUP_MEMBERS);
    o = json_array_get_object_element (json_node_get_array (node), 0);
    g_assert_cmpstr (json_object_get_string_member (o, "session_id"), ==, dead);
    g_assert_cmpstr (json_object_get_string_member (o, "action"), ==, "mark-stale");
    g_assert_cmpstr (json_object_get_string_member (o, "result"), ==, "planned");
    g_clear_pointer (&node, json_node_unref);
  }
  {
    g_auto (Run) r = gsmctl ("cleanup", "--yes", "--json", NULL);
    JsonObject *o;

    node = parse_json (r.out);
    o = json_array_get_object_element (json_node_get_array (node), 0);
    g_assert_cmpstr (json_object_get_string_member (o, "result"), ==, "done");
    g_clear_pointer (&node, json_node_unref);
  }
  {
    g_auto (Run) r = gsmctl ("reap", "--json", NULL);

    node = parse_json (r.out);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (node)), ==, 1);
    assert_members (json_array_get_element (json_node_get_array (node), 0), REAP_MEMBERS);
    g_clear_pointer (&node, json_node_unref);
  }
  {
    g_auto (Run) r = gsmctl ("history", "--json", NULL);

    node = parse_json (r.out);
    g_assert_true (JSON_NODE_HOLDS_ARRAY (node));
    g_clear_pointer (&node, json_node_unref);
  }
}

/* ---- dry runs ---------------------------------------------------------------- */

static void
test_dry_run_default (Fixture      *f,
                      gconstpointer data)
{
  g_autofree char *registry = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autofree char *dead = start_dead_worker (f, "vm-dead");
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  g_assert_true (g_file_get_contents (registry, &before, NULL, NULL));

  /* cleanup: shows the dead session, changes nothing. */
  {
    g_auto (Run) r = gsmctl ("cleanup", NULL);

    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "dry run"));
    g_assert_nonnull (strstr (r.out, dead));
    g_assert_true (g_file_get_contents (registry, &after, NULL, NULL));
    g_assert_cmpstr (after, ==, before);
    g_clear_pointer (&after, g_free);
  }

  /* reap: shows the VM, deletes nothing. */
  {
    g_auto (Run) r = gsmctl ("reap", NULL);

    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "dry run"));
    g_assert_nonnull (strstr (r.out, "vm-dead"));
    g_assert_false (g_file_test (f->calls, G_FILE_TEST_EXISTS));
  }

  /* --yes acts. */
  {
    g_auto (Run) r = gsmctl ("reap", "--yes", "--json", NULL);
    g_autoptr (JsonNode) node = parse_json (r.out);
    JsonObject *o = json_array_get_object_element (json_node_get_array (node), 0);

    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (json_object_get_string_member (o, "vm_id"), ==, "vm-dead");
    g_assert_cmpstr (json_object_get_string_member (o, "result"), ==, "deleted");
    g_assert_true (g_file_get_contents (f->calls, &after, NULL, NULL));
    g_assert_cmpstr (after, ==, "vm-dead\n");
  }
}

/* A deletion that failed waits for its backoff: reap --yes --json shows it
 * as pending, with why, not as an empty list. */
static void
test_reap_pending (Fixture      *f,
                   gconstpointer data)
{
  const char      *failing[] = { "GSM_PROVIDER_COMMAND", "/bin/sh -c 'echo no quota >&2; exit 3' sh {vm_id}",
                                 "GSM_REAP_BACKOFF", "3600", NULL };
  g_autofree char *dead = start_dead_worker (f, "vm-stuck");

  {
    g_auto (Run) r = gsmctl_env (failing, "reap", "--yes", "--json", NULL);
    g_autoptr (JsonNode) node = parse_json (r.out);
    JsonObject *o = json_array_get_object_element (json_node_get_array (node), 0);

    g_assert_cmpint (r.status, ==, 1);
    g_assert_cmpstr (json_object_get_string_member (o, "result"), ==, "failed");
    g_assert_nonnull (strstr (json_object_get_string_member (o, "reason"), "no quota"));
  }
  {
    g_auto (Run) r = gsmctl_env (failing, "reap", "--yes", "--json", NULL);
    g_autoptr (JsonNode) node = parse_json (r.out);
    JsonArray  *array = json_node_get_array (node);
    JsonObject *o;

    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpuint (json_array_get_length (array), ==, 1);
    o = json_array_get_object_element (array, 0);
    g_assert_cmpstr (json_object_get_string_member (o, "session_id"), ==, dead);
    g_assert_cmpstr (json_object_get_string_member (o, "vm_id"), ==, "vm-stuck");
    g_assert_cmpstr (json_object_get_string_member (o, "result"), ==, "pending");
    g_assert_nonnull (strstr (json_object_get_string_member (o, "reason"), "failed attempt"));
    g_assert_nonnull (strstr (json_object_get_string_member (o, "reason"), "no quota"));
  }
  /* The same as text, on standard output. */
  {
    g_auto (Run) r = gsmctl_env (failing, "reap", NULL);

    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "vm-stuck"));
    g_assert_nonnull (strstr (r.out, "pending"));
    g_assert_nonnull (strstr (r.out, "failed attempt"));
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

  ADD ("/cli/help", test_help);
  ADD ("/cli/version", test_version);
  ADD ("/cli/usage-errors", test_usage_errors);
  ADD ("/cli/dry-run-everywhere", test_dry_run_everywhere);
  ADD ("/cli/single-error", test_single_error);
  ADD ("/cli/table-piped", test_table_piped);
  ADD ("/cli/json-schema", test_json_schema);
  ADD ("/cli/dry-run-default", test_dry_run_default);
  ADD ("/cli/reap-pending", test_reap_pending);

  return g_test_run ();
}
