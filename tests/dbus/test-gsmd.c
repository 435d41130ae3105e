/* test-gsmd.c: the gsmd daemon, with real processes, on a private bus
 *
 * The test starts its own dbus-daemon (with a policy that lets other users
 * connect, for the uid check) and, for each test, a gsmd serving a fresh
 * registry directory. Sessions are $GSM_TEST_WORKER processes; clients
 * are this process, gsmctl, gdbus, and gdbus run as `nobody`.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "../helpers/gsm-test-other-user.h"
#include "dbus-test-util.h"
#include "dbus-test-worker.h"

#define BUS_NAME "org.gsm.SessionManager1"
/* The bound is 100 ms; the test allows much more for a loaded
 * machine (valgrind, other jobs). The real figure comes from
 * tools/gsm-bench. */
#define STALE_BOUND_US (2 * G_USEC_PER_SEC)

static char *bus_dir;
/* Why `nobody` cannot reach the bus (NULL if it can). */
static char            *bus_closed_reason;
static char            *bus_address;
static GSubprocess     *bus_process;
static GDBusConnection *client;

typedef struct
{
  char        *dir;
  GSubprocess *gsmd;
  Recorder    *rec;
} Fixture;

static gboolean
have_program (const char *name)
{
  g_autofree char *path = g_find_program_in_path (name);

  return path != NULL;
}

/* ---- the bus ----------------------------------------------------------- */

static void
bus_up (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *config = NULL;
  g_autofree char *config_path = NULL;
  g_autoptr (GDataInputStream) out = NULL;

  /* Other users (the `nobody` client) must reach the socket. */
  if (getuid () == 0)
    bus_dir = gsm_test_other_user_make_dir ("gsm-bus-XXXXXX", &bus_closed_reason);
  if (bus_dir == NULL)
    {
      bus_dir = g_dir_make_tmp ("gsm-bus-XXXXXX", &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_chmod (bus_dir, 0755), ==, 0);
    }

  config = g_strdup_printf (
      "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
      " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
      "<busconfig>\n"
      "  <type>session</type>\n"
      "  <listen>unix:dir=%s</listen>\n"
      "  <auth>EXTERNAL</auth>\n"
      "  <servicedir>%s</servicedir>\n"
      "  <policy context=\"default\">\n"
      "    <allow user=\"*\"/>\n"
      "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
      "    <allow eavesdrop=\"true\"/>\n"
      "    <allow own=\"*\"/>\n"
      "  </policy>\n"
      "</busconfig>\n",
      bus_dir, GSM_TEST_SERVICE_DIR);
  config_path = g_build_filename (bus_dir, "bus.conf", NULL);
  g_assert_true (g_file_set_contents (config_path, config, -1, &error));

  bus_process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                       (const char *[]){ "dbus-daemon", "--config-file", config_path, "--nofork",
                                         "--print-address=1", NULL },
                       &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus_process));
  bus_address = read_line (out);
  g_assert_nonnull (bus_address);
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", bus_address, TRUE);

  client = g_dbus_connection_new_for_address_sync (bus_address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
bus_down (void)
{
  g_dbus_connection_close_sync (client, NULL, NULL);
  g_clear_object (&client);
  g_subprocess_send_signal (bus_process, SIGTERM);
  g_subprocess_wait (bus_process, NULL, NULL);
  g_clear_object (&bus_process);
  remove_tree (bus_dir);
  g_free (bus_dir);
  g_free (bus_address);
}

/* ---- gsmd -------------------------------------------------------------- */

static void
appeared_cb (GDBusConnection *connection,
             const char      *name,
             const char      *owner,
             gpointer         user_data)
{
  *(gboolean *) user_data = TRUE;
}

static GSubprocess *
gsmd_start (const char *first_arg)
{
  g_autoptr (GError) error = NULL;
  const char  *path = g_getenv ("GSMD");
  gboolean     appeared = FALSE;
  GSubprocess *process;
  guint        watch_id;

  g_assert_nonnull (path);
  watch_id = g_bus_watch_name_on_connection (client, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             appeared_cb, NULL, &appeared, NULL);
  process = spawn (G_SUBPROCESS_FLAGS_NONE, (const char *[]){ path, first_arg, NULL }, &error);
  g_assert_no_error (error);
  g_assert_true (wait_for_flag (&appeared));
  g_bus_unwatch_name (watch_id);
  return process;
}

static void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  int with_gsmd = GPOINTER_TO_INT (data); /* 0: none, 1: gsmd, 2: --poll, 3: --reap */

  f->dir = make_runtime_dir ();
  /* Subscribed to the well-known name: whoever owns it. */
  f->rec = recorder_new (client, BUS_NAME, TEST_PATH);
  if (with_gsmd == 3)
    {
      /* gsmd --reap, with a fake cloud: one file per running VM. */
      g_autofree char *cloud = g_build_filename (f->dir, "cloud", NULL);
      g_autofree char *vms = g_build_filename (cloud, "vms", NULL);
      g_autofree char *command = g_strdup_printf ("/bin/sh %s/reaper/fake-provider.sh delete {vm_id} {zone}",
                                                  g_getenv ("G_TEST_SRCDIR"));

      g_assert_cmpint (g_mkdir_with_parents (vms, 0700), ==, 0);
      g_setenv ("FAKE_CLOUD_DIR", cloud, TRUE);
      g_setenv ("GSM_PROVIDER_COMMAND", command, TRUE);
      g_setenv ("GSM_PROVIDER_NOT_FOUND_PATTERN", "was not found", TRUE);
      g_setenv ("GSM_REAP_GRACE", "0", TRUE);
      f->gsmd = gsmd_start ("--reap");
    }
  else if (with_gsmd)
    f->gsmd = gsmd_start (with_gsmd == 2 ? "--poll" : NULL);
}

static void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  if (f->gsmd != NULL)
    {
      /* SIGTERM is a clean exit. */
      g_subprocess_send_signal (f->gsmd, SIGTERM);
      g_assert_true (g_subprocess_wait (f->gsmd, NULL, NULL));
      g_assert_true (g_subprocess_get_if_exited (f->gsmd));
      g_assert_cmpint (g_subprocess_get_exit_status (f->gsmd), ==, 0);
      g_clear_object (&f->gsmd);
    }
  g_unsetenv ("FAKE_CLOUD_DIR");
  g_unsetenv ("GSM_PROVIDER_COMMAND");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");
  g_unsetenv ("GSM_REAP_GRACE");
  recorder_free (f->rec);
  remove_tree (f->dir);
  g_free (f->dir);
}

static GVariant *
list_sessions (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = test_call (client, BUS_NAME, TEST_PATH, TEST_IFACE, "ListSessions", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  return g_variant_get_child_value (reply, 0);
}

/* The entry of @session_id in @sessions, or NULL. */
static GVariant *
find_session (GVariant   *sessions,
              const char *session_id)
{
  for (gsize i = 0; i < g_variant_n_children (sessions); i++)
    {
      GVariant   *dict = g_variant_get_child_value (sessions, i);
      const char *id = NULL;

      if (g_variant_lookup (dict, "session_id", "&s", &id) && g_str_equal (id, session_id))
        return dict;
      g_variant_unref (dict);
    }
  return NULL;
}

/* Member @key (a string) of @session_id's entry in ListSessions; the
 * entry and the member must be there. */
static char *
listed_member (const char *session_id,
               const char *key)
{
  g_autoptr (GVariant) sessions = list_sessions ();
  g_autoptr (GVariant) entry = find_session (sessions, session_id);
  char *value = NULL;

  g_assert_nonnull (entry);
  g_assert_true (g_variant_lookup (entry, key, "s", &value));
  return value;
}

/* ---- tests ------------------------------------------------------------- */

/* Another process registers a VM: the signal arrives, the entry is there. */
static void
test_vm_registered (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (Worker) w = worker_start ("vm-reg");
  g_autofree char *listed_vm = NULL;
  Received        *r;
  const char      *vm, *zone;

  r = recorder_wait (f->rec, NULL, "VmRegistered", w->session_id);
  g_assert_nonnull (r);
  g_variant_get (r->params, "(&s&s&s)", NULL, &vm, &zone);
  g_assert_cmpstr (vm, ==, "vm-reg");
  g_assert_cmpstr (zone, ==, "zone-t");

  listed_vm = listed_member (w->session_id, "vm_id");
  g_assert_cmpstr (listed_vm, ==, "vm-reg");
}

/* Whether process @holder has a pidfd of process @pid open (its fdinfo
 * says "Pid:"). */
static gboolean
holds_pidfd_of (int holder,
                int pid)
{
  g_autofree char *fd_dir = g_strdup_printf ("/proc/%d/fd", holder);
  g_autofree char *wanted = g_strdup_printf ("\nPid:\t%d\n", pid);
  g_autoptr (GDir) dir = g_dir_open (fd_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link_path = g_build_filename (fd_dir, name, NULL);
      g_autofree char *target = g_file_read_link (link_path, NULL);
      g_autofree char *info_path = g_strdup_printf ("/proc/%d/fdinfo/%s", holder, name);
      g_autofree char *info = NULL;

      if (g_strcmp0 (target, "anon_inode:[pidfd]") == 0 &&
          g_file_get_contents (info_path, &info, NULL, NULL) && strstr (info, wanted) != NULL)
        return TRUE;
    }
  return FALSE;
}

/* A session's process is killed: SessionStale follows at once, from the
 * pidfd, with no poll and no client asking. */
static void
test_crash_is_stale (Fixture      *f,
                     gconstpointer data)
{
  g_autoptr (Worker) w = worker_start ("vm-crash");
  g_autofree char *status = NULL;
  Received        *r;
  const char      *vm;
  gint64           killed_us;

  g_assert_nonnull (recorder_wait (f->rec, NULL, "VmRegistered", w->session_id));
  if (GPOINTER_TO_INT (data) == 1)
    {
      /* gsmd pins the live session with a pidfd of its own (it had one
       * announced before it pinned it, so allow it a few turns). */
      int gsmd_pid = atoi (g_subprocess_get_identifier (f->gsmd));

      for (guint i = 0; i < 200 && !holds_pidfd_of (gsmd_pid, w->pid); i++)
        g_usleep (10000);
      g_assert_true (holds_pidfd_of (gsmd_pid, w->pid));
    }

  killed_us = g_get_monotonic_time ();
  g_assert_cmpint (kill (w->pid, SIGKILL), ==, 0);

  r = recorder_wait (f->rec, NULL, "SessionStale", w->session_id);
  g_assert_nonnull (r);
  g_test_message ("kill -9 to SessionStale: %.1f ms", (r->received_us - killed_us) / 1000.0);
  g_assert_cmpint (r->received_us - killed_us, <, STALE_BOUND_US);
  g_variant_get (r->params, "(&s&s)", NULL, &vm);
  g_assert_cmpstr (vm, ==, "vm-crash");

  status = listed_member (w->session_id, "status");
  g_assert_cmpstr (status, ==, "stale");
}

/* The size of the PropertiesChanged that @victim's death sends on its
 * session object (its Status and StaleSince, nothing of the others). */
static gsize
death_change_size (Worker *victim)
{
  Recorder   *rec = recorder_new (client, BUS_NAME, NULL);
  guint       from = 0;
  gsize       size = 0;
  const char *status = NULL;

  g_assert_cmpint (kill (victim->pid, SIGKILL), ==, 0);
  while (status == NULL || !g_str_equal (status, "stale"))
    {
      g_autoptr (GVariant) changed = NULL;
      Received *r = recorder_wait (rec, &from, "PropertiesChanged", TEST_IFACE ".Session");

      g_assert_nonnull (r);
      g_variant_get (r->params, "(&s@a{sv}@as)", NULL, &changed, NULL);
      g_assert_false (g_variant_lookup (changed, "Id", "&s", NULL));
      status = NULL;
      g_variant_lookup (changed, "Status", "&s", &status);
      size = g_variant_get_size (r->params);
    }
  recorder_free (rec);
  return size;
}

/* The object paths `busctl tree` lists below the sessions' root. */
static guint
busctl_session_objects (GPtrArray *session_ids)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autofree char *address = g_strconcat ("--address=", bus_address, NULL);
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;
  guint n = 0;

  process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                   (const char *const[]){ "busctl", address, "tree", "--list", BUS_NAME, NULL }, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (process));
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], TEST_PATH "/session/"))
      n++;
  for (guint i = 0; i < session_ids->len; i++)
    {
      g_autofree char *escaped = g_dbus_escape_object_path (session_ids->pdata[i]);
      g_autofree char *path = g_strconcat (TEST_PATH, "/session/", escaped, "\n", NULL);

      g_assert_nonnull (strstr (out, path));
    }
  return n;
}

/* `busctl tree` shows one object per session; a session's change sends
 * what changed of that session, as many bytes with 12 sessions as with 3. */
static void
test_objects_per_session (Fixture      *f,
                          gconstpointer data)
{
  g_autoptr (GPtrArray) workers = g_ptr_array_new_with_free_func ((GDestroyNotify) worker_free);
  g_autoptr (GPtrArray) ids = g_ptr_array_new ();
  gsize with_few = 0, with_many;

  if (!have_program ("busctl"))
    {
      g_test_skip ("needs busctl");
      return;
    }

  for (guint i = 0; i < 12; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-object-%u", i);
      Worker *w = worker_start (vm);

      g_ptr_array_add (workers, w);
      g_ptr_array_add (ids, w->session_id);
      g_assert_nonnull (recorder_wait (f->rec, NULL, "VmRegistered", w->session_id));
      if (i == 2)
        {
          g_assert_cmpuint (busctl_session_objects (ids), ==, 3);
          with_few = death_change_size (w);
        }
    }
  g_assert_cmpuint (busctl_session_objects (ids), ==, 12);
  with_many = death_change_size (workers->pdata[11]);
  g_test_message ("PropertiesChanged of a death: %" G_GSIZE_FORMAT " bytes with 3 sessions, %"
                  G_GSIZE_FORMAT " with 12", with_few, with_many);
  g_assert_cmpuint (with_many, ==, with_few);
}

/* Runs gdbus as `nobody` against the test bus. */
static int
run_as_nobody (const char *const *gdbus_args,
               char             **out,
               char             **err)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) process = NULL;

  g_ptr_array_add (argv, (gpointer) "setpriv");
  g_ptr_array_add (argv, (gpointer) "--reuid=nobody");
  g_ptr_array_add (argv, (gpointer) "--regid=nogroup");
  g_ptr_array_add (argv, (gpointer) "--clear-groups");
  g_ptr_array_add (argv, (gpointer) "--");
  g_ptr_array_add (argv, (gpointer) "gdbus");
  for (guint i = 0; gdbus_args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) gdbus_args[i]);
  g_ptr_array_add (argv, NULL);

  process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                   (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, out, err, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  return g_subprocess_get_exit_status (process);
}

/* Reading is open to everyone; cleaning up only to the daemon's uid. */
static void
test_cleanup_other_uid (Fixture      *f,
                        gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  const char      *list[] = { "call", "--address", bus_address, "--dest", BUS_NAME, "--object-path", TEST_PATH,
                              "--timeout", "10", "--method", TEST_IFACE ".ListSessions", NULL };
  const char      *cleanup[] = { "call", "--address", bus_address, "--dest", BUS_NAME, "--object-path", TEST_PATH,
                                 "--timeout", "10", "--method", TEST_IFACE ".CleanupStaleSessions", NULL };
  g_autoptr (Worker) w = NULL;
  guint32 count = 99;

  if (getuid () != 0)
    {
      g_test_skip ("needs root, to run a client as another user");
      return;
    }
  if (!have_program ("setpriv") || !have_program ("gdbus"))
    {
      g_test_skip ("needs setpriv and gdbus");
      return;
    }
  if (bus_closed_reason != NULL)
    {
      g_test_skip (bus_closed_reason);
      return;
    }

  w = worker_start ("vm-read-by-nobody");
  g_assert_nonnull (recorder_wait (f->rec, NULL, "VmRegistered", w->session_id));
  g_assert_cmpint (run_as_nobody (list, &out, &err), ==, 0);
  g_assert_true (g_str_has_prefix (out, "([{"));
  g_assert_nonnull (strstr (out, "vm-read-by-nobody"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  g_assert_cmpint (run_as_nobody (cleanup, &out, &err), !=, 0);
  g_test_message ("nobody got: %s", err);
  g_assert_nonnull (strstr (err, "org.gsm.SessionManager1.Error.PermissionDenied"));

  /* The daemon's own uid may. */
  reply = test_call (client, BUS_NAME, TEST_PATH, TEST_IFACE, "CleanupStaleSessions", NULL, "(u)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &count);
  g_assert_cmpuint (count, ==, 0);
}

static gboolean
interface_args_equal (GDBusArgInfo **a,
                      GDBusArgInfo **b)
{
  guint i;

  for (i = 0; a != NULL && a[i] != NULL; i++)
    if (b == NULL || b[i] == NULL || g_strcmp0 (a[i]->name, b[i]->name) != 0 ||
        g_strcmp0 (a[i]->signature, b[i]->signature) != 0)
      return FALSE;
  return b == NULL || b[i] == NULL;
}

/* What the running daemon says about itself is what the XML says. */
static void
test_introspect_matches_xml (Fixture      *f,
                             gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = NULL;
  g_autofree char *out = NULL;
  g_autofree char *xml = NULL;
  g_autoptr (GDBusNodeInfo) live_node = NULL;
  g_autoptr (GDBusNodeInfo) file_node = NULL;
  GDBusInterfaceInfo *live, *file;
  guint               i;

  if (!have_program ("gdbus"))
    {
      g_test_skip ("needs gdbus");
      return;
    }

  process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                   (const char *[]){ "gdbus", "introspect", "--address", bus_address, "--dest", BUS_NAME,
                                     "--object-path", TEST_PATH, "--xml", NULL },
                   &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (process));

  g_assert_true (g_file_get_contents (GSM_DBUS_XML, &xml, NULL, &error));
  g_assert_no_error (error);

  live_node = g_dbus_node_info_new_for_xml (out, &error);
  g_assert_no_error (error);
  file_node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  live = g_dbus_node_info_lookup_interface (live_node, TEST_IFACE);
  file = g_dbus_node_info_lookup_interface (file_node, TEST_IFACE);
  g_assert_nonnull (live);
  g_assert_nonnull (file);

  for (i = 0; file->methods[i] != NULL; i++)
    {
      GDBusMethodInfo *m = g_dbus_interface_info_lookup_method (live, file->methods[i]->name);

      g_assert_nonnull (m);
      g_assert_true (interface_args_equal (m->in_args, file->methods[i]->in_args));
      g_assert_true (interface_args_equal (m->out_args, file->methods[i]->out_args));
    }
  g_assert_null (live->methods[i]);

  for (i = 0; file->signals[i] != NULL; i++)
    {
      GDBusSignalInfo *s = g_dbus_interface_info_lookup_signal (live, file->signals[i]->name);

      g_assert_nonnull (s);
      g_assert_true (interface_args_equal (s->args, file->signals[i]->args));
    }
  g_assert_null (live->signals[i]);

  for (i = 0; file->properties[i] != NULL; i++)
    {
      GDBusPropertyInfo *p = g_dbus_interface_info_lookup_property (live, file->properties[i]->name);

      g_assert_nonnull (p);
      g_assert_cmpstr (p->signature, ==, file->properties[i]->signature);
      g_assert_cmpint (p->flags, ==, file->properties[i]->flags);
    }
  g_assert_null (live->properties[i]);
}

/* Runs gsmctl with @args and returns its standard output. */
static char *
run_gsmctl (const char *const *args)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) process = NULL;
  char *out = NULL;

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSMCTL"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (process, NULL, NULL, &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_successful (process));
  return out;
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* gsmctl list/stats --bus ask the daemon. */
static void
test_gsmctl_bus (Fixture      *f,
                 gconstpointer data)
{
  g_autoptr (Worker) w = worker_start ("vm-ctl");
  const char      *list_args[] = { "list", "--bus", "--json", NULL };
  const char      *stats_args[] = { "stats", "--bus", "--json", NULL };
  g_autofree char *list_out = NULL;
  g_autofree char *stats_out = NULL;
  g_autoptr (JsonNode) list = NULL;
  g_autoptr (JsonNode) stats = NULL;
  JsonArray *array;
  gboolean   found = FALSE;

  g_assert_nonnull (recorder_wait (f->rec, NULL, "VmRegistered", w->session_id));

  list_out = run_gsmctl (list_args);
  list = parse_json (list_out);
  array = json_node_get_array (list);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *o = json_array_get_object_element (array, i);

      if (g_strcmp0 (json_object_get_string_member (o, "session_id"), w->session_id) == 0)
        {
          found = TRUE;
          g_assert_cmpstr (json_object_get_string_member (o, "vm_id"), ==, "vm-ctl");
          g_assert_cmpint (json_object_get_int_member (o, "pid"), ==, w->pid);
        }
    }
  g_assert_true (found);

  stats_out = run_gsmctl (stats_args);
  stats = parse_json (stats_out);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats), "vms"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (stats), "runtime_dir"), ==, f->dir);
}

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
} Watcher;

static Watcher *
watcher_start (const char *mode)
{
  g_autoptr (GError) error = NULL;
  Watcher *wa = g_new0 (Watcher, 1);

  wa->process = spawn (G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                       (const char *[]){ g_getenv ("GSMCTL"), "watch", "--json", mode, NULL }, &error);
  g_assert_no_error (error);
  wa->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (wa->process));
  return wa;
}

/* Reads events until one named @event about @session_id (any if NULL). */
static JsonNode *
watcher_expect (Watcher    *wa,
                const char *event,
                const char *session_id)
{
  for (;;)
    {
      g_autofree char *line = read_line (wa->out);
      JsonNode        *node;
      JsonObject      *o;

      g_assert_nonnull (line);
      node = parse_json (line);
      o = json_node_get_object (node);
      if (g_strcmp0 (json_object_get_string_member (o, "event"), event) == 0 &&
          (session_id == NULL ||
           g_strcmp0 (json_object_get_string_member_with_default (o, "session_id", ""), session_id) == 0))
        return node;
      json_node_unref (node);
    }
}

static void
watcher_stop (Watcher *wa)
{
  g_subprocess_send_signal (wa->process, SIGTERM);
  g_assert_true (g_subprocess_wait (wa->process, NULL, NULL));
  g_assert_true (g_subprocess_get_successful (wa->process));
  g_object_unref (wa->process);
  g_object_unref (wa->out);
  g_free (wa);
}

static void
watch_register_and_crash (Watcher    *wa,
                          const char *expected_source)
{
  g_autoptr (JsonNode) first = NULL;
  g_autoptr (JsonNode) registered = NULL;
  g_autoptr (JsonNode) stale = NULL;
  g_autoptr (Worker) w = NULL;

  first = watcher_expect (wa, "watching", NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (first), "source"), ==,
                   expected_source);

  w = worker_start ("vm-watch");
  registered = watcher_expect (wa, "vm-registered", w->session_id);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (registered), "vm_id"), ==,
                   "vm-watch");

  g_assert_cmpint (kill (w->pid, SIGKILL), ==, 0);
  stale = watcher_expect (wa, "session-stale", w->session_id);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (stale), "vm_id"), ==, "vm-watch");
}

/* gsmctl watch, with gsmd running: events come from the bus. */
static void
test_gsmctl_watch_bus (Fixture      *f,
                       gconstpointer data)
{
  Watcher *wa = watcher_start ("--bus");

  watch_register_and_crash (wa, "bus");
  watcher_stop (wa);
}

/* gsmctl watch without gsmd: from the registry files; --bus refuses. */
static void
test_gsmctl_watch_local (Fixture      *f,
                         gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) bus_only = NULL;
  Watcher *wa;

  bus_only = spawn (G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                    (const char *[]){ g_getenv ("GSMCTL"), "watch", "--bus", NULL }, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait (bus_only, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (bus_only));
  g_assert_cmpint (g_subprocess_get_exit_status (bus_only), ==, 1);

  /* No option: it looks for gsmd, finds none, and watches the files. */
  wa = watcher_start (NULL);
  watch_register_and_crash (wa, "local");
  watcher_stop (wa);
}

/* gsmctl watch shows what gsmd --reap does with a crashed session's VM. */
static void
test_gsmctl_watch_reaped (Fixture      *f,
                          gconstpointer data)
{
  g_autofree char *vm_file = g_build_filename (f->dir, "cloud", "vms", "vm-reap", NULL);
  g_autoptr (JsonNode) first = NULL;
  g_autoptr (JsonNode) stale = NULL;
  g_autoptr (JsonNode) reaped = NULL;
  g_autoptr (Worker) w = NULL;
  Watcher    *wa = watcher_start ("--bus");
  JsonObject *o;

  first = watcher_expect (wa, "watching", NULL);
  g_assert_true (g_file_set_contents (vm_file, "running\n", -1, NULL));
  w = worker_start ("vm-reap");
  g_assert_cmpint (kill (w->pid, SIGKILL), ==, 0);

  stale = watcher_expect (wa, "session-stale", w->session_id);
  reaped = watcher_expect (wa, "vm-reaped", w->session_id);
  o = json_node_get_object (reaped);
  g_assert_cmpstr (json_object_get_string_member (o, "vm_id"), ==, "vm-reap");
  g_assert_cmpstr (json_object_get_string_member (o, "zone"), ==, "zone-t");
  g_assert_cmpstr (json_object_get_string_member (o, "outcome"), ==, "deleted");
  g_assert_false (g_file_test (vm_file, G_FILE_TEST_EXISTS));

  watcher_stop (wa);
}

/* A second gsmd does not steal the name. */
static void
test_name_taken (Fixture      *f,
                 gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) second = NULL;
  g_autofree char *err = NULL;

  second = spawn (G_SUBPROCESS_FLAGS_STDERR_PIPE, (const char *[]){ g_getenv ("GSMD"), NULL }, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (second, NULL, NULL, NULL, &err, &error));
  g_assert_true (g_subprocess_get_if_exited (second));
  g_assert_cmpint (g_subprocess_get_exit_status (second), ==, 1);
  g_assert_nonnull (strstr (err, "owned by another process"));

  /* The first still answers. */
  g_variant_unref (list_sessions ());
}

static void
vanished_cb (GDBusConnection *connection,
             const char      *name,
             gpointer         user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* The D-Bus activation file starts gsmd on the first call. */
static void
test_activation (Fixture      *f,
                 gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (JsonNode) stats = NULL;
  g_autofree char *out = NULL;
  GVariantBuilder  env;
  const char      *stats_args[] = { "stats", "--bus", "--json", NULL };
  gboolean         vanished = FALSE;
  guint32          pid = 0;
  guint            watch_id;

  /* Activated services get the bus's environment: point it at this
   * test's registry. */
  g_variant_builder_init (&env, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&env, "{ss}", "GSM_RUNTIME_DIR", f->dir);
  g_variant_builder_add (&env, "{ss}", "GSM_DURABLE", "0");
  reply = test_call (client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                     "UpdateActivationEnvironment", g_variant_new ("(@a{ss})", g_variant_builder_end (&env)),
                     NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  out = run_gsmctl (stats_args);
  stats = parse_json (out);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (stats), "runtime_dir"), ==, f->dir);

  /* Stop the activated daemon. */
  reply = test_call (client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                     "GetConnectionUnixProcessID", g_variant_new ("(s)", BUS_NAME), "(u)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &pid);
  g_assert_cmpuint (pid, >, 0);
  /* The registry's counts only: gsmd's own session is not one of them. */
  g_assert_false (json_object_has_member (json_node_get_object (stats), "pid"));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (stats), "sessions"), ==, 0);
  watch_id = g_bus_watch_name_on_connection (client, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                             vanished_cb, &vanished, NULL);
  g_assert_cmpint (kill ((pid_t) pid, SIGTERM), ==, 0);
  g_assert_true (wait_for_flag (&vanished));
  g_bus_unwatch_name (watch_id);
}

/* gsmd --replace takes the name over; the old one leaves cleanly. */
static void
test_replace (Fixture      *f,
              gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) second = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint32 pid = 0;

  second = spawn (G_SUBPROCESS_FLAGS_NONE, (const char *[]){ g_getenv ("GSMD"), "--replace", NULL }, &error);
  g_assert_no_error (error);

  g_assert_true (g_subprocess_wait (f->gsmd, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (f->gsmd));
  g_assert_cmpint (g_subprocess_get_exit_status (f->gsmd), ==, 0);

  /* The name now belongs to the second one (it may still be taking it). */
  for (int i = 0; i < 100 && pid != (guint32) atoi (g_subprocess_get_identifier (second)); i++)
    {
      g_clear_pointer (&reply, g_variant_unref);
      g_clear_error (&error);
      reply = test_call (client, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "GetConnectionUnixProcessID", g_variant_new ("(s)", BUS_NAME), "(u)", &error);
      if (reply != NULL)
        g_variant_get (reply, "(u)", &pid);
      else
        g_usleep (20 * 1000);
    }
  g_assert_cmpuint (pid, ==, (guint32) atoi (g_subprocess_get_identifier (second)));
  g_variant_unref (list_sessions ());

  /* The teardown stops whichever gsmd the fixture holds. */
  g_object_unref (f->gsmd);
  f->gsmd = g_steal_pointer (&second);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_summary ("gsmd on a private bus, with real session processes");

  if (!have_program ("dbus-daemon"))
    {
      g_test_skip ("needs dbus-daemon");
      return g_test_run ();
    }
  bus_up ();

#define ADD(path, func, with_gsmd) \
  g_test_add (path, Fixture, GINT_TO_POINTER (with_gsmd), fixture_setup, func, fixture_teardown)

  ADD ("/dbus/gsmd/vm-registered", test_vm_registered, TRUE);
  ADD ("/dbus/gsmd/crash-is-stale", test_crash_is_stale, TRUE);
  /* Where pidfds are unavailable: the same within the same bound. */
  ADD ("/dbus/gsmd/crash-is-stale-polling", test_crash_is_stale, 2);
  ADD ("/dbus/gsmd/objects-per-session", test_objects_per_session, TRUE);
  ADD ("/dbus/gsmd/cleanup-other-uid", test_cleanup_other_uid, TRUE);
  ADD ("/dbus/gsmd/introspect-matches-xml", test_introspect_matches_xml, TRUE);
  ADD ("/dbus/gsmd/gsmctl-bus", test_gsmctl_bus, TRUE);
  ADD ("/dbus/gsmd/gsmctl-watch-bus", test_gsmctl_watch_bus, TRUE);
  ADD ("/dbus/gsmd/gsmctl-watch-local", test_gsmctl_watch_local, FALSE);
  ADD ("/dbus/gsmd/gsmctl-watch-reaped", test_gsmctl_watch_reaped, 3);
  ADD ("/dbus/gsmd/name-taken", test_name_taken, TRUE);
  ADD ("/dbus/gsmd/replace", test_replace, TRUE);
  ADD ("/dbus/gsmd/activation", test_activation, FALSE);

  status = g_test_run ();

  bus_down ();
  return status;
}
