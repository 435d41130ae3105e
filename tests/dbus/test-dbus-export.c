/* test-dbus-export.c: gsmd_export() on a private bus
 *
 * One GTestDBus bus for the whole run; each test exports a fresh manager
 * (its own registry directory) on one connection and talks to it from a
 * second connection, as another application would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <signal.h>
#include <unistd.h>

#include "gsm-session-manager-private.h"
#include "gsm.h"
#include "gsmd-export.h"

#include "dbus-test-util.h"
#include "dbus-test-worker.h"

static GTestDBus *bus;

typedef struct
{
  char              *dir;
  GDBusConnection   *server;
  GDBusConnection   *client;
  const char        *dest; /* the server's unique name */
  GsmSessionManager *manager;
  GsmSessionList    *list;
} Fixture;

static GDBusConnection *
connect_bus (void)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (g_test_dbus_get_bus_address (bus),
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                           G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  return connection;
}

static void
fixture_setup (Fixture      *f,
               gconstpointer data)
{
  f->dir = make_runtime_dir ();
  f->server = connect_bus ();
  f->client = connect_bus ();
  f->dest = g_dbus_connection_get_unique_name (f->server);
  f->manager = gsm_session_manager_get_default ();
}

static void
fixture_teardown (Fixture      *f,
                  gconstpointer data)
{
  gsmd_unexport (f->manager);
  g_clear_object (&f->list);
  g_assert_true (gsm_session_manager_close_sync (f->manager, NULL, NULL));
  _gsm_session_manager_reset_for_testing ();
  g_dbus_connection_close_sync (f->server, NULL, NULL);
  g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->server);
  g_clear_object (&f->client);
  remove_tree (f->dir);
  g_free (f->dir);
  /* Let pending idle callbacks (connection teardown) run. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static GVariant *
call (Fixture    *f,
      const char *method,
      GVariant   *params,
      const char *reply_type,
      GError    **error)
{
  return test_call (f->client, f->dest, TEST_PATH, TEST_IFACE, method, params, reply_type, error);
}

static GVariant *
get_property (Fixture    *f,
              const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  GVariant *value;

  reply = test_call (f->client, f->dest, TEST_PATH, "org.freedesktop.DBus.Properties", "Get",
                     g_variant_new ("(ss)", TEST_IFACE, name), "(v)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

/* The list gsmd publishes: the registry of the manager's directory. */
static GsmSessionList *
ensure_list (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;

  if (f->list == NULL)
    {
      /* The manager enters first, as gsmd's does. */
      sessions = gsm_session_manager_get_all_active_sessions_sync (f->manager, NULL, &error);
      g_assert_no_error (error);
      f->list = gsm_session_list_new (f->dir, NULL, &error);
      g_assert_no_error (error);
    }
  return f->list;
}

static void export(Fixture *f)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (gsmd_export (f->manager, ensure_list (f), f->server, NULL, &error));
  g_assert_no_error (error);
}

/* The objects below the root, from its ObjectManager: path → a{sa{sv}}. */
static GVariant *
managed_objects (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  GVariant *objects;

  reply = test_call (f->client, f->dest, TEST_PATH, "org.freedesktop.DBus.ObjectManager",
                     "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{oa{sa{sv}}})", &objects);
  return objects;
}

static char *
session_object_path (const char *session_id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (session_id);

  return g_strconcat (TEST_PATH, "/session/", escaped, NULL);
}

/* Reading: ListSessions, GetSession, GetStatistics, the properties, one
 * object per session; the exporting process itself is not listed. */
static void
test_read (Fixture      *f,
           gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) sessions = NULL;
  g_autoptr (GVariant) session = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (GVariant) prop = NULL;
  g_autoptr (GVariant) objects = NULL;
  g_autoptr (GVariant) interfaces = NULL;
  g_autoptr (Worker) w = NULL;
  g_autofree char *path = NULL;
  const char      *own_id = gsm_session_manager_get_session_id (f->manager);
  const char      *s;
  guint32          u;

  ensure_list (f);
  w = worker_start ("vm-read");
  for (GsmSession *found = NULL; found == NULL; g_main_context_iteration (NULL, TRUE))
    {
      found = gsm_session_list_lookup_vm (f->list, "vm-read");
      if (found != NULL)
        {
          g_object_unref (found);
          break;
        }
    }
  export(f);

  reply = call (f, "ListSessions", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  sessions = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (sessions), ==, 1);
  session = g_variant_get_child_value (sessions, 0);
  g_assert_true (g_variant_lookup (session, "session_id", "&s", &s));
  g_assert_cmpstr (s, ==, w->session_id);
  g_clear_pointer (&reply, g_variant_unref);
  g_clear_pointer (&session, g_variant_unref);

  reply = call (f, "GetSession", g_variant_new ("(s)", w->session_id), "(a{sv})", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{sv})", &session);
  g_assert_true (g_variant_lookup (session, "pid", "u", &u));
  g_assert_cmpuint (u, ==, (guint32) w->pid);
  g_assert_true (g_variant_lookup (session, "status", "&s", &s));
  g_assert_cmpstr (s, ==, "active");
  g_assert_true (g_variant_lookup (session, "vm_id", "&s", &s));
  g_assert_cmpstr (s, ==, "vm-read");
  g_clear_pointer (&reply, g_variant_unref);

  /* gsmd's own session is not one of the registry's, for its clients. */
  reply = call (f, "GetSession", g_variant_new ("(s)", own_id), "(a{sv})", &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_NOT_FOUND);
  g_clear_error (&error);

  reply = call (f, "GetStatistics", NULL, "(a{sv})", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a{sv})", &stats);
  g_assert_true (g_variant_lookup (stats, "sessions", "u", &u));
  g_assert_cmpuint (u, ==, 1);
  g_assert_true (g_variant_lookup (stats, "vms", "u", &u));
  g_assert_cmpuint (u, ==, 1);
  g_assert_false (g_variant_lookup (stats, "session_id", "&s", &s));
  g_assert_true (g_variant_lookup (stats, "runtime_dir", "&s", &s));
  g_assert_cmpstr (s, ==, f->dir);
  g_clear_pointer (&reply, g_variant_unref);

  prop = get_property (f, "Version");
  g_assert_cmpuint (g_variant_get_uint32 (prop), ==, 2);
  g_clear_pointer (&prop, g_variant_unref);
  prop = get_property (f, "SessionCount");
  g_assert_cmpuint (g_variant_get_uint32 (prop), ==, 1);
  g_clear_pointer (&prop, g_variant_unref);
  prop = get_property (f, "VmCount");
  g_assert_cmpuint (g_variant_get_uint32 (prop), ==, 1);
  g_clear_pointer (&prop, g_variant_unref);

  /* One object per session, with its own properties. */
  objects = managed_objects (f);
  g_assert_cmpuint (g_variant_n_children (objects), ==, 1);
  path = session_object_path (w->session_id);
  g_assert_true (g_variant_lookup (objects, path, "@a{sa{sv}}", &interfaces));
  {
    g_autoptr (GVariant) props = NULL;

    g_assert_true (g_variant_lookup (interfaces, TEST_IFACE ".Session", "@a{sv}", &props));
    g_assert_true (g_variant_lookup (props, "Pid", "u", &u));
    g_assert_cmpuint (u, ==, (guint32) w->pid);
    g_assert_true (g_variant_lookup (props, "VmId", "&s", &s));
    g_assert_cmpstr (s, ==, "vm-read");
    g_assert_true (g_variant_lookup (props, "Id", "&s", &s));
    g_assert_cmpstr (s, ==, w->session_id);
  }
}

/* Bad arguments get registered error names, and the service survives. */
static void
test_bad_arguments (Fixture      *f,
                    gconstpointer data)
{
  const char      *bad[] = { "", "tab\there", "no-such-session", NULL };
  const GsmError   expected[] = { GSM_ERROR_INVALID_ARGUMENT, GSM_ERROR_INVALID_ARGUMENT,
                                  GSM_ERROR_NOT_FOUND };
  g_autofree char *long_id = g_strnfill (300, 'x');
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  export(f);

  for (guint i = 0; bad[i] != NULL; i++)
    {
      g_autofree char *remote = NULL;

      reply = call (f, "GetSession", g_variant_new ("(s)", bad[i]), "(a{sv})", &error);
      g_assert_null (reply);
      g_assert_error (error, GSM_ERROR, (int) expected[i]);
      remote = g_dbus_error_get_remote_error (error);
      g_assert_true (g_str_has_prefix (remote, "org.gsm.SessionManager1.Error."));
      g_clear_error (&error);
    }

  reply = call (f, "GetSession", g_variant_new ("(s)", long_id), "(a{sv})", &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* Wrong signature: GDBus refuses it before it reaches the manager. */
  reply = call (f, "GetSession", g_variant_new ("(i)", 42), NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  g_clear_error (&error);

  reply = call (f, "ListSessions", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
}

/* Calls to the manager's object fail: it is not exported (any more). */
static void
assert_not_exported (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = call (f, "ListSessions", NULL, "(aa{sv})", &error);

  g_assert_null (reply);
  g_assert_true (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
                 g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT));
}

/* Export twice, bad path, unexport, export elsewhere. */
static void
test_export_unexport (Fixture      *f,
                      gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  g_assert_false (gsmd_export (f->manager, ensure_list (f), f->server, "not/a/path", &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  export(f);
  g_assert_false (gsmd_export (f->manager, f->list, f->server, "/other", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS);
  g_clear_error (&error);

  reply = call (f, "ListSessions", NULL, "(aa{sv})", &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  gsmd_unexport (f->manager);
  gsmd_unexport (f->manager); /* harmless */
  assert_not_exported (f);

  g_assert_true (gsmd_export (f->manager, f->list, f->server, "/org/example/Sessions", &error));
  g_assert_no_error (error);
  reply = test_call (f->client, f->dest, "/org/example/Sessions", TEST_IFACE, "ListSessions", NULL,
                     "(aa{sv})", &error);
  g_assert_no_error (error);
}

/* The object goes when the manager does. */
static void
test_unexport_on_finalize (Fixture      *f,
                           gconstpointer data)
{
  export(f);
  g_assert_true (gsm_session_manager_close_sync (f->manager, NULL, NULL));
  _gsm_session_manager_reset_for_testing ();
  assert_not_exported (f);

  f->manager = gsm_session_manager_get_default (); /* for the teardown */
}

/* Changes of other processes become signals, and PropertiesChanged on the
 * object of the session that changed, with what changed only; the
 * exporting process's own registration is not announced. */
static void
test_signals (Fixture      *f,
              gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) quiet = NULL;
  g_autoptr (Worker) w = NULL;
  g_autofree char *path = NULL;
  const char      *own_id = gsm_session_manager_get_session_id (f->manager);
  Recorder        *rec;
  Received        *r;
  const char      *id, *vm, *zone;
  guint            from = 0;

  quiet = worker_start ("vm-quiet");
  export(f);
  rec = recorder_new (f->client, f->dest, NULL);

  g_assert_true (gsm_session_manager_register_vm_sync (f->manager, "vm-own", "zone-a", NULL, NULL,
                                                       NULL, &error));
  g_assert_no_error (error);
  w = worker_start ("vm-other");

  r = recorder_wait (rec, &from, "VmRegistered", w->session_id);
  g_assert_nonnull (r);
  g_variant_get (r->params, "(&s&s&s)", &id, &vm, &zone);
  g_assert_cmpstr (vm, ==, "vm-other");
  g_assert_cmpstr (zone, ==, "zone-t");
  for (guint i = 0; i < rec->received->len; i++)
    {
      Received *any = rec->received->pdata[i];

      if (g_str_equal (any->member, "VmRegistered"))
        {
          g_variant_get (any->params, "(&s&s&s)", &id, &vm, &zone);
          g_assert_cmpstr (id, !=, own_id);
        }
    }

  /* The new session's object appears; a change of it sends its changed
   * properties only, whatever the number of sessions. */
  {
    guint ifrom = 0;

    g_assert_nonnull (recorder_wait (rec, &ifrom, "InterfacesAdded", NULL));
  }
  path = session_object_path (w->session_id);
  {
    GPid pid = w->pid;
    g_autoptr (GVariant) reply = NULL;
    guint    pfrom = rec->received->len;
    gboolean saw = FALSE;

    kill (pid, SIGKILL);
    g_assert_true (g_subprocess_wait (w->process, NULL, NULL));
    g_clear_object (&w->process);
    reply = call (f, "CleanupStaleSessions", NULL, "(u)", &error);
    g_assert_no_error (error);

    while (!saw)
      {
        g_autoptr (GVariant) changed = NULL;
        const char *iface;

        r = recorder_wait (rec, &pfrom, "PropertiesChanged", TEST_IFACE ".Session");
        g_assert_nonnull (r);
        g_variant_get (r->params, "(&s@a{sv}@as)", &iface, &changed, NULL);
        /* Only fields of one session, never the registry. */
        g_assert_cmpuint (g_variant_n_children (changed), <=, 3);
        g_assert_false (g_variant_lookup (changed, "Id", "&s", &id));
        g_assert_false (g_variant_lookup (changed, "Pid", "u", NULL));
        saw = g_variant_lookup (changed, "Status", "&s", &id) && g_str_equal (id, "stale");
      }
  }

  recorder_free (rec);
}

/* Another process registers and dies: the exporting process sees both
 * through the file monitor, and CleanupStaleSessions (same uid) records the
 * death and announces it. */
static void
test_other_process (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (Worker) w = NULL;
  Recorder   *rec;
  Received   *r;
  const char *id, *vm;
  guint       from = 0;
  guint32     count = 0;

  export(f);
  rec = recorder_new (f->client, f->dest, TEST_PATH);

  w = worker_start ("vm-other");
  r = recorder_wait (rec, &from, "VmRegistered", w->session_id);
  g_assert_nonnull (r);
  g_variant_get (r->params, "(&s&s&s)", &id, &vm, NULL);
  g_assert_cmpstr (vm, ==, "vm-other");

  kill (w->pid, SIGKILL);
  g_assert_true (g_subprocess_wait (w->process, NULL, NULL));
  g_clear_object (&w->process);

  reply = call (f, "CleanupStaleSessions", NULL, "(u)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &count);
  g_assert_cmpuint (count, ==, 1);

  r = recorder_wait (rec, &from, "SessionStale", w->session_id);
  g_assert_nonnull (r);
  g_variant_get (r->params, "(&s&s)", &id, &vm);
  g_assert_cmpstr (vm, ==, "vm-other");

  /* Reported once only, though the view also shows it stale. */
  from = 0;
  g_assert_nonnull (recorder_wait (rec, &from, "SessionStale", w->session_id));
  {
    guint after = from;

    g_assert_nonnull (recorder_wait (rec, &after, "SessionsChanged", NULL));
  }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  for (guint i = from; i < rec->received->len; i++)
    g_assert_cmpstr (((Received *) rec->received->pdata[i])->member, !=, "SessionStale");

  recorder_free (rec);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_test_summary ("gsmd_export() on a private bus");

  bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (bus);

  g_test_add ("/dbus/export/read", Fixture, NULL, fixture_setup, test_read, fixture_teardown);
  g_test_add ("/dbus/export/bad-arguments", Fixture, NULL, fixture_setup, test_bad_arguments, fixture_teardown);
  g_test_add ("/dbus/export/export-unexport", Fixture, NULL, fixture_setup, test_export_unexport,
              fixture_teardown);
  g_test_add ("/dbus/export/unexport-on-finalize", Fixture, NULL, fixture_setup,
              test_unexport_on_finalize, fixture_teardown);
  g_test_add ("/dbus/export/signals", Fixture, NULL, fixture_setup, test_signals,
              fixture_teardown);
  g_test_add ("/dbus/export/other-process", Fixture, NULL, fixture_setup, test_other_process,
              fixture_teardown);

  status = g_test_run ();

  g_test_dbus_down (bus);
  g_object_unref (bus);

  return status;
}
