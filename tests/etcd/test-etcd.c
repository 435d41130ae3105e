/* test-etcd.c: the etcd registry against a real etcd
 *
 * One etcd for the whole program, on 127.0.0.1 with free ports and a
 * temporary data directory; each test uses its own key prefix. Sessions of
 * other "hosts" are gsm-test-worker processes with their own GSM_HOSTNAME.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>
#include <json-glib/json-glib.h>

#include "etcd-test-util.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-session-manager-private.h"

#define TTL "2"
/* Generous bounds for what depends on etcd's lease expiry (checked every
 * 500 ms by etcd) on a loaded machine. */
#define STALE_BOUND 15.0
#define READY_BOUND 30.0

static EtcdServer server;
static guint      test_counter;

typedef struct
{
  char      *runtime;
  char      *uri;
  char      *prefix;
  char     **env;   /* for workers */
  GPtrArray *added; /* session ids, in order */
  GPtrArray *removed;
  GPtrArray *stale;
  gint64     last_added_at;
} Fixture;

static void
fixture_set_up_at (Fixture    *f,
                   const char *endpoint)
{
  g_autoptr (GError) error = NULL;

  f->runtime = g_dir_make_tmp ("gsm-etcd-run-XXXXXX", &error);
  g_assert_no_error (error);
  f->prefix = g_strdup_printf ("/test-%u-%d", ++test_counter, getpid ());
  f->uri = g_strdup_printf ("etcd://%s%s", endpoint + strlen ("http://"), f->prefix);
  f->added = g_ptr_array_new_with_free_func (g_free);
  f->removed = g_ptr_array_new_with_free_func (g_free);
  f->stale = g_ptr_array_new_with_free_func (g_free);

  g_setenv ("GSM_RUNTIME_DIR", f->runtime, TRUE);
  g_setenv ("GSM_REGISTRY", f->uri, TRUE);
  g_setenv ("GSM_LEASE_TTL", TTL, TRUE);
  g_setenv ("GSM_ETCD_TIMEOUT", "5", TRUE);
  g_setenv ("GSM_HOSTNAME", "host-test", TRUE);
  g_setenv ("GSM_CONFIG_FILE", "/nonexistent/gsm-etcd-test.ini", TRUE);

  f->env = g_new0 (char *, 2);
  f->env[0] = g_strdup ("GSM_HOSTNAME=host-worker");
}

static void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  fixture_set_up_at (f, server.endpoint);
}

/* This process reaches etcd through the proxy in @data. */
static void
fixture_set_up_proxy (Fixture      *f,
                      gconstpointer data)
{
  const Proxy     *proxy = data;
  g_autofree char *endpoint = g_strdup_printf ("http://127.0.0.1:%u", proxy->port);

  fixture_set_up_at (f, endpoint);
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  rm_rf (f->runtime);
  g_free (f->runtime);
  g_free (f->uri);
  g_free (f->prefix);
  g_strfreev (f->env);
  g_ptr_array_unref (f->added);
  g_ptr_array_unref (f->removed);
  g_ptr_array_unref (f->stale);
}

static const char *const *
env_for (Fixture    *f,
         const char *hostname)
{
  g_free (f->env[0]);
  f->env[0] = g_strdup_printf ("GSM_HOSTNAME=%s", hostname);
  return (const char *const *) f->env;
}

static gboolean
contains (GPtrArray  *ids,
          const char *id)
{
  for (guint i = 0; i < ids->len; i++)
    if (g_str_equal (ids->pdata[i], id))
      return TRUE;
  return FALSE;
}

static void
added_cb (GsmSessionManager *manager,
          GsmSession        *session,
          Fixture           *f)
{
  g_ptr_array_add (f->added, g_strdup (gsm_session_get_session_id (session)));
  f->last_added_at = g_get_monotonic_time ();
}

static void
removed_cb (GsmSessionManager *manager,
            GsmSession        *session,
            Fixture           *f)
{
  g_ptr_array_add (f->removed, g_strdup (gsm_session_get_session_id (session)));
}

static void
stale_cb (GsmSessionManager *manager,
          GsmSession        *session,
          Fixture           *f)
{
  g_assert_cmpstr (gsm_session_get_status (session), ==, "stale");
  g_ptr_array_add (f->stale, g_strdup (gsm_session_get_session_id (session)));
}

static GsmSessionManager *
watching_manager (Fixture *f)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;

  g_signal_connect (manager, "session-added", G_CALLBACK (added_cb), f);
  g_signal_connect (manager, "session-removed", G_CALLBACK (removed_cb), f);
  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  /* Fails if the registry could not be used. */
  sessions = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_hash_table_contains (sessions, gsm_session_manager_get_session_id (manager)));
  /* Let the first view settle. */
  sleep_in_loop (0.1);
  return manager;
}

/* Runs the main context until @ids holds @id, at most @seconds. */
static gboolean
wait_for_id (GPtrArray  *ids,
             const char *id,
             double      seconds)
{
  gboolean timed_out = FALSE;
  guint    source = g_timeout_add ((guint) (seconds * 1000), timeout_flag_cb, &timed_out);

  while (!contains (ids, id) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (source);
  return contains (ids, id);
}

static GsmSession *
lookup_entry (GsmSessionManager *manager,
              const char        *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  GsmSession *session;

  g_assert_no_error (error);
  session = g_hash_table_lookup (sessions, id);
  return session ? g_object_ref (session) : NULL;
}

/* The entry of @id once it shows @vm_id (NULL: no VM) and @status: what
 * another process wrote reaches this process's view through the watch,
 * a few milliseconds later (longer under valgrind). */
static GsmSession *
lookup_entry_once (GsmSessionManager *manager,
                   const char        *id,
                   const char        *vm_id,
                   const char        *status)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (GsmSession) entry = lookup_entry (manager, id);

      if (entry != NULL && g_strcmp0 (gsm_session_get_vm_id (entry), vm_id) == 0 &&
          g_strcmp0 (gsm_session_get_status (entry), status) == 0)
        return g_steal_pointer (&entry);
      if (g_get_monotonic_time () > deadline)
        return g_steal_pointer (&entry);
      sleep_in_loop (0.05);
    }
}

static void
set_flag (gboolean *flag)
{
  *flag = TRUE;
}

/* ---- faults at start --------------------------------------------------- */

static void
assert_unavailable_output (const char *out,
                           guint16     port,
                           double      started)
{
  g_autofree char *prefix = g_strdup_printf ("ERROR gsm-error-quark %d ", GSM_ERROR_BACKEND_UNAVAILABLE);
  g_autofree char *endpoint = g_strdup_printf ("http://127.0.0.1:%u", port);

  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, endpoint));
}

static void
test_unreachable_refused (Fixture      *f,
                          gconstpointer data)
{
  guint16          port = free_port ();
  g_autofree char *uri = g_strdup_printf ("GSM_REGISTRY=etcd://127.0.0.1:%u/x", port);
  const char      *env[] = { uri, NULL };
  const char      *args[] = { "register", "vm-1", NULL };
  gint64           start = g_get_monotonic_time ();
  g_autofree char *out = worker_run (env, args, NULL);

  assert_unavailable_output (out, port, start);
  /* Refused at once: no retry loop, no hang. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
}

static void
test_unreachable_silent (Fixture      *f,
                         gconstpointer data)
{
  /* A server that accepts connections and never answers. */
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  guint16          port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_autofree char *uri = g_strdup_printf ("GSM_REGISTRY=etcd://127.0.0.1:%u/x", port);
  const char      *env[] = { uri, "GSM_ETCD_TIMEOUT=1", NULL };
  const char      *args[] = { "register", "vm-1", NULL };
  gint64           start = g_get_monotonic_time ();
  g_autofree char *out = NULL;

  g_assert_no_error (error);
  out = worker_run (env, args, NULL);
  assert_unavailable_output (out, port, start);
  /* Bounded by GSM_ETCD_TIMEOUT (one request, and one retry on a fresh
   * connection), far from the 30 s a hang would take here. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 15 * G_USEC_PER_SEC);
}

static void
test_unreachable_in_process (Fixture      *f,
                             gconstpointer data)
{
  guint16          port = free_port ();
  g_autofree char *uri = g_strdup_printf ("etcd://127.0.0.1:%u/x", port);
  g_autofree char *endpoint = g_strdup_printf ("http://127.0.0.1:%u", port);
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmEtcdRegistry) registry = NULL;

  registry = _gsm_etcd_registry_new (uri, "own", 2, 1, NULL, &error);
  g_assert_null (registry);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, endpoint));
}

static void
test_bad_backend (Fixture      *f,
                  gconstpointer data)
{
  const char      *env[] = { "GSM_REGISTRY=zookeeper://127.0.0.1:1", NULL };
  const char      *args[] = { "register", "vm-1", NULL };
  g_autofree char *out = worker_run (env, args, NULL);
  g_autofree char *prefix = g_strdup_printf ("ERROR gsm-error-quark %d ", GSM_ERROR_INVALID_ARGUMENT);

  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "zookeeper://127.0.0.1:1"));
}

static void
test_config_file (Fixture      *f,
                  gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->runtime, "config.ini", NULL);
  g_autofree char *config = g_strdup_printf ("[registry]\nbackend=%s\nlease-ttl=2\n", f->uri);
  g_autofree char *config_env = g_strdup_printf ("GSM_CONFIG_FILE=%s", path);
  g_autofree char *vms = g_strconcat (f->prefix, "/vms/", NULL);
  const char      *env[] = { "GSM_REGISTRY", "GSM_LEASE_TTL", config_env, NULL };
  const char      *args[] = { "register", "vm-config", NULL };
  g_autoptr (Worker) w = NULL;

  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  w = worker_spawn (env, args);
  worker_wait_ready (w, READY_BOUND);
  /* Registered in etcd, from the configuration file alone. */
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 1);
}

/* ---- many hosts -------------------------------------------------------- */

static void
test_multi_host (Fixture      *f,
                 gconstpointer data)
{
  const char *watch_a[] = { "watch", "vm-a", "zone-a", NULL };
  const char *register_b[] = { "register", "vm-b", "zone-b", NULL };
  const char *register_b_again[] = { "register", "vm-b", NULL };
  const char *list[] = { "list", NULL };
  g_autoptr (Worker) a = NULL;
  g_autoptr (Worker) b = NULL;
  g_autoptr (Worker) d = NULL;
  g_autoptr (GHashTable) active = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char   *out = NULL;
  g_autofree char   *line = NULL;
  g_autofree char   *refused = NULL;
  g_autofree char   *vms = g_strconcat (f->prefix, "/vms/", NULL);
  GsmSessionManager *manager = watching_manager (f);
  gint64             ready_at;
  int                status;

  /* Two hosts register a VM each; the others hear of it within 1 s. */
  a = worker_spawn (env_for (f, "host-a"), watch_a);
  worker_wait_ready (a, READY_BOUND);
  ready_at = g_get_monotonic_time ();
  g_assert_true (wait_for_id (f->added, a->session_id, 1.0));
  g_test_message ("session-added %.1f ms after READY",
                  (f->last_added_at - ready_at) / 1000.0);

  b = worker_spawn (env_for (f, "host-b"), register_b);
  worker_wait_ready (b, READY_BOUND);
  ready_at = g_get_monotonic_time ();
  g_assert_true (wait_for_id (f->added, b->session_id, 1.0));
  g_test_message ("session-added %.1f ms after READY",
                  (f->last_added_at - ready_at) / 1000.0);
  line = worker_expect (a, "ADDED ", 1.0);
  g_assert_cmpstr (line + strlen ("ADDED "), ==, b->session_id);

  /* What B wrote reaches this process through the watch. */
  entry = lookup_entry_once (manager, b->session_id, "vm-b", "active");
  g_clear_object (&entry);
  active = gsm_session_manager_get_all_active_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (active), ==, 3);
  g_assert_cmpstr (gsm_session_get_hostname (g_hash_table_lookup (active, a->session_id)), ==, "host-a");
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (active, a->session_id)), ==, "vm-a");
  g_assert_cmpstr (gsm_session_get_zone (g_hash_table_lookup (active, a->session_id)), ==, "zone-a");
  g_assert_cmpstr (gsm_session_get_hostname (g_hash_table_lookup (active, b->session_id)), ==, "host-b");
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (active, b->session_id)), ==, "vm-b");

  /* A third host sees both. */
  out = worker_run (env_for (f, "host-c"), list, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, a->session_id));
  g_assert_nonnull (strstr (out, b->session_id));
  g_clear_pointer (&out, g_free);

  /* ... and may not take a VM another live session owns. */
  out = worker_run (env_for (f, "host-c"), register_b_again, NULL);
  refused = g_strdup_printf ("ERROR gsm-error-quark %d ", GSM_ERROR_VM_OWNED_BY_OTHER);
  g_test_message ("%s", out);
  g_assert_true (g_str_has_prefix (out, refused));
  g_assert_nonnull (strstr (out, "host-b"));
  g_clear_pointer (&out, g_free);

  /* B dies: after its lease expires it is stale everywhere, its VM an
   * orphan that is still recorded. */
  worker_signal (b, SIGKILL);
  g_assert_true (wait_for_id (f->stale, b->session_id, STALE_BOUND));
  g_clear_pointer (&line, g_free);
  line = worker_expect (a, "STALE ", 2.0);
  g_assert_cmpstr (line + strlen ("STALE "), ==, b->session_id);

  entry = lookup_entry (manager, b->session_id);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "stale");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-b");
  g_assert_cmpstr (gsm_session_get_hostname (entry), ==, "host-b");
  g_assert_cmpfloat (gsm_session_get_stale_since (entry), >, 0);
  g_clear_pointer (&active, g_hash_table_unref);
  active = gsm_session_manager_get_all_active_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_hash_table_contains (active, b->session_id));
  g_assert_true (g_hash_table_contains (active, a->session_id));
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 2);

  /* A dead owner's VM may be taken over, as with the file backend. */
  d = worker_spawn (env_for (f, "host-d"), register_b_again);
  worker_wait_ready (d, READY_BOUND);
  g_assert_true (wait_for_id (f->removed, b->session_id, 1.0));
  g_clear_object (&entry);
  entry = lookup_entry_once (manager, d->session_id, "vm-b", "active");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-b");
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
}

/* Only ::session-stale is listened to (as a reaper does). */
static void
test_stale_only_listener (Fixture      *f,
                          gconstpointer data)
{
  const char *args[] = { "register", "vm-k", NULL };
  g_autoptr (Worker) k = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;
  g_autoptr (GsmSession) entry = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  guint32            n;

  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  k = worker_spawn (env_for (f, "host-k"), args);
  worker_wait_ready (k, READY_BOUND);
  /* What k wrote reaches this process through the watch. */
  g_clear_object (&entry);
  entry = lookup_entry_once (manager, k->session_id, "vm-k", "active");
  sessions = gsm_session_manager_get_all_active_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_hash_table_contains (sessions, k->session_id));

  worker_signal (k, SIGKILL);
  g_assert_true (wait_for_id (f->stale, k->session_id, STALE_BOUND));
  g_assert_cmpuint (f->stale->len, ==, 1);
  stats = gsm_session_manager_get_statistics (manager);
  g_assert_true (g_variant_lookup (stats, "stale_sessions_removed", "u", &n));
  g_assert_cmpuint (n, ==, 1);
}

/* The reaper deletes the VM of a session whose lease expired on another
 * host, and leaves the VM of a live one alone. */
static void
test_reaper (Fixture      *f,
             gconstpointer data)
{
  const char      *dead_args[] = { "register", "vm-orphan", NULL };
  const char      *live_args[] = { "register", "vm-live", NULL };
  g_autofree char *deleted = g_build_filename (f->runtime, "deleted.txt", NULL);
  g_autofree char *script = g_strdup_printf ("echo \"$0\" >> '%s'", deleted);
  const char      *command[] = { "/bin/sh", "-c", script, "{vm_id}", NULL };
  g_autofree char *vms = g_strconcat (f->prefix, "/vms/", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (Worker) dead = NULL;
  g_autoptr (Worker) live = NULL;
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  guint              reaped = 0, failed = 0;

  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  live = worker_spawn (env_for (f, "host-live"), live_args);
  worker_wait_ready (live, READY_BOUND);
  dead = worker_spawn (env_for (f, "host-dead"), dead_args);
  worker_wait_ready (dead, READY_BOUND);
  worker_signal (dead, SIGKILL);
  g_assert_true (wait_for_id (f->stale, dead->session_id, STALE_BOUND));

  g_setenv ("GSM_REAP_GRACE", "0", TRUE);
  g_setenv ("GSM_REAP_BACKOFF", "0", TRUE);
  provider = gsm_provider_new ("test", command, &error);
  g_assert_no_error (error);
  reaper = gsm_reaper_new (manager, provider);
  g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
  g_assert_no_error (error);
  g_unsetenv ("GSM_REAP_GRACE");
  g_unsetenv ("GSM_REAP_BACKOFF");

  g_assert_cmpuint (reaped, ==, 1);
  g_assert_cmpuint (failed, ==, 0);
  g_assert_true (g_file_get_contents (deleted, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "vm-orphan\n");
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 1);
}

/* Without a configured grace period, a reaper of a fleet waits twice the
 * lease TTL: long enough for a session cut off from etcd to come back. */
static void
test_fleet_grace_default (Fixture      *f,
                          gconstpointer data)
{
  g_autoptr (GsmReaper) reaper = NULL;

  g_unsetenv ("GSM_REAP_GRACE");
  g_setenv ("GSM_LEASE_TTL", "20", TRUE);
  reaper = gsm_reaper_new (gsm_session_manager_get_default (), NULL);
  g_assert_cmpfloat (gsm_reaper_get_grace_period (reaper), ==, 40);
}

/* The value of @key, decoded, or NULL. */
static char *
etcd_get_value (EtcdServer *srv,
                const char *key)
{
  g_autofree char *k = g_base64_encode ((const guchar *) key, strlen (key));
  g_autofree char *body = g_strdup_printf ("{\"key\": \"%s\"}", k);
  g_autofree char *reply = etcd_post (srv, "/v3/kv/range", body);
  g_autoptr (JsonNode) root = reply ? json_from_string (reply, NULL) : NULL;
  JsonObject        *obj = root ? json_node_get_object (root) : NULL;
  JsonArray         *kvs;
  gsize              len;
  g_autofree guchar *value = NULL;

  if (obj == NULL || !json_object_has_member (obj, "kvs"))
    return NULL;
  kvs = json_object_get_array_member (obj, "kvs");
  value = g_base64_decode (json_object_get_string_member (json_array_get_object_element (kvs, 0), "value"),
                           &len);
  return g_strndup ((char *) value, len);
}

/* The moment a session was first found dead is kept in etcd: the grace
 * period counts from it in every process, so that two reapers run a
 * while apart (or on two hosts) agree, and neither restarts it. */
static void
test_grace_recorded (Fixture      *f,
                     gconstpointer data)
{
  const char      *dead_args[] = { "register", "vm-graced", NULL };
  g_autofree char *deleted = g_build_filename (f->runtime, "deleted.txt", NULL);
  g_autofree char *script = g_strdup_printf ("echo \"$0\" >> '%s'", deleted);
  const char      *command[] = { "/bin/sh", "-c", script, "{vm_id}", NULL };
  g_autofree char *vm_key = g_strconcat (f->prefix, "/vms/vm-graced", NULL);
  g_autofree char *value = NULL;
  g_autoptr (Worker) dead = NULL;
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  guint              reaped = 0, failed = 0;

  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  dead = worker_spawn (env_for (f, "host-dead"), dead_args);
  worker_wait_ready (dead, READY_BOUND);
  worker_signal (dead, SIGKILL);
  g_assert_true (wait_for_id (f->stale, dead->session_id, STALE_BOUND));

  g_setenv ("GSM_REAP_GRACE", "3", TRUE);
  g_setenv ("GSM_REAP_BACKOFF", "0", TRUE);
  provider = gsm_provider_new ("test", command, &error);
  g_assert_no_error (error);

  /* The first pass records the moment and waits. */
  {
    g_autoptr (GsmReaper) reaper = gsm_reaper_new (manager, provider);
    gint64 t0 = g_get_monotonic_time ();

    g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
    g_test_message ("first pass: %.0f ms", (g_get_monotonic_time () - t0) / 1000.0);
    g_assert_no_error (error);
    g_assert_cmpuint (reaped, ==, 0);
  }
  value = etcd_get_value (&server, vm_key);
  g_assert_nonnull (value);
  g_assert_nonnull (strstr (value, "\"stale_since\""));
  g_assert_false (g_file_test (deleted, G_FILE_TEST_EXISTS));

  /* Another reaper, started after the grace period: it deletes. */
  sleep_in_loop (3.5);
  {
    g_autoptr (GsmReaper) reaper = gsm_reaper_new (manager, provider);

    g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (reaped, ==, 1);
  }
  g_unsetenv ("GSM_REAP_GRACE");
  g_unsetenv ("GSM_REAP_BACKOFF");
  g_assert_true (g_file_test (deleted, G_FILE_TEST_EXISTS));

  /* Another host's history shows the deletion: the audit log of the
   * fleet is in etcd. */
  {
    g_autofree char *elsewhere = g_dir_make_tmp ("gsm-etcd-other-XXXXXX", NULL);
    g_autofree char *runtime_env = g_strdup_printf ("GSM_RUNTIME_DIR=%s", elsewhere);
    g_autofree char *registry_env = g_strdup_printf ("GSM_REGISTRY=%s", f->uri);
    g_autofree char *history = NULL;
    const char      *argv[] = { g_getenv ("GSMCTL"), "history", "--json", NULL };
    const char      *envp[] = { runtime_env, registry_env, "GSM_HOSTNAME=host-other",
                                "GSM_CONFIG_FILE=/nonexistent/gsm-etcd-test.ini", NULL };
    int              wait_status = 0;

    g_assert_true (g_spawn_sync (NULL, (char **) argv, (char **) envp, G_SPAWN_DEFAULT, NULL, NULL,
                                 &history, NULL, &wait_status, &error));
    g_assert_no_error (error);
    g_test_message ("history elsewhere: %s", history);
    g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
    g_assert_nonnull (strstr (history, "vm-graced"));
    g_assert_nonnull (strstr (history, "\"deleted\""));
    rm_rf (elsewhere);
  }
}

static guint
count_leases (void)
{
  g_autofree char *reply = etcd_post (&server, "/v3/lease/leases", "{}");
  guint            n = 0;

  g_assert_nonnull (reply);
  for (const char *p = reply; (p = strstr (p, "\"ID\"")) != NULL; p++)
    n++;
  return n;
}

static void
items_changed_cb (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  guint      *n_signals)
{
  (*n_signals)++;
}

/* Runs gsmctl with @args (NULL-terminated) as a process of another host;
 * returns its standard output, and asserts that it succeeded. */
static char *
run_gsmctl (Fixture           *f,
            const char *const *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *registry_env = g_strdup_printf ("GSM_REGISTRY=%s", f->uri);
  g_autofree char *runtime_env = g_strdup_printf ("GSM_RUNTIME_DIR=%s", f->runtime);
  const char      *envp[] = { registry_env, runtime_env, "GSM_HOSTNAME=host-reader",
                              "GSM_CONFIG_FILE=/nonexistent/gsm-etcd-test.ini",
                              "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent", NULL };
  g_autoptr (GError) error = NULL;
  char            *out = NULL;
  g_autofree char *err = NULL;
  int              wait_status = 0;

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSMCTL"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  g_assert_true (g_spawn_sync (NULL, (char **) argv->pdata, (char **) envp, G_SPAWN_DEFAULT,
                               NULL, NULL, &out, &err, &wait_status, &error));
  g_assert_no_error (error);
  g_test_message ("gsmctl %s: %s%s", args[0], out, err);
  g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
  return out;
}

/* Readers (gsmctl list, stats; a GsmSessionList) take no lease and write
 * no key, and still tell live sessions from dead ones. */
static void
test_readers_write_nothing (Fixture      *f,
                            gconstpointer data)
{
  const char *live_args[] = { "register", "vm-live", NULL };
  const char *dead_args[] = { "register", "vm-dead", NULL };
  const char *later_args[] = { "register", "vm-later", NULL };
  const char *list_args[] = { "list", "--json", NULL };
  const char *stats_args[] = { "stats", "--json", NULL };
  const char *history_args[] = { "history", "--json", NULL };
  g_autoptr (Worker) live = NULL;
  g_autoptr (Worker) dead = NULL;
  g_autoptr (Worker) later = NULL;
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GsmSession) s = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *listed = NULL;
  g_autofree char *stats = NULL;
  gint64           revision;
  guint            leases, n_signals = 0;

  live = worker_spawn (env_for (f, "host-live"), live_args);
  worker_wait_ready (live, READY_BOUND);
  dead = worker_spawn (env_for (f, "host-dead"), dead_args);
  worker_wait_ready (dead, READY_BOUND);
  worker_signal (dead, SIGKILL);
  /* etcd deletes the dead session's key once its lease expires. */
  {
    g_autofree char *key = g_strdup_printf ("%s/sessions/%s", f->prefix, dead->session_id);
    gint64           deadline = g_get_monotonic_time () + STALE_BOUND * G_USEC_PER_SEC;

    while (etcd_count_keys (&server, key) > 0 && g_get_monotonic_time () < deadline)
      sleep_in_loop (0.2);
    g_assert_cmpint (etcd_count_keys (&server, key), ==, 0);
  }

  revision = etcd_revision (&server);
  leases = count_leases ();

  list = gsm_session_list_new (NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (gsm_session_list_get_runtime_dir (list));
  g_assert_cmpstr (gsm_session_list_get_etcd_uri (list), ==, f->uri);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 2);
  s = gsm_session_list_lookup_vm (list, "vm-live");
  g_assert_nonnull (s);
  g_assert_cmpstr (gsm_session_get_session_id (s), ==, live->session_id);
  g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_ALIVE);
  g_clear_object (&s);
  /* Only the VM key is left: dead to every host. */
  s = gsm_session_list_lookup_vm (list, "vm-dead");
  g_assert_nonnull (s);
  g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_DEAD);
  g_clear_object (&s);

  listed = run_gsmctl (f, list_args);
  g_assert_nonnull (strstr (listed, live->session_id));
  g_assert_nonnull (strstr (listed, "vm-dead"));
  stats = run_gsmctl (f, stats_args);
  {
    g_autoptr (JsonParser) parser = json_parser_new ();
    JsonObject *object;

    g_assert_true (json_parser_load_from_data (parser, stats, -1, &error));
    object = json_node_get_object (json_parser_get_root (parser));
    g_assert_cmpint (json_object_get_int_member (object, "orphan_vms"), ==, 1);
    g_assert_cmpint (json_object_get_int_member (object, "active"), ==, 1);
  }

  g_free (run_gsmctl (f, history_args));

  /* Nothing was written and no lease granted by any reader. */
  g_assert_cmpint (etcd_revision (&server), ==, revision);
  g_assert_cmpuint (count_leases (), ==, leases);

  /* The watch keeps the list current. */
  g_signal_connect (list, "items-changed", G_CALLBACK (items_changed_cb), &n_signals);
  later = worker_spawn (env_for (f, "host-later"), later_args);
  worker_wait_ready (later, READY_BOUND);
  {
    gint64 deadline = g_get_monotonic_time () + READY_BOUND * G_USEC_PER_SEC;

    while ((s = gsm_session_list_lookup_vm (list, "vm-later")) == NULL &&
           g_get_monotonic_time () < deadline)
      sleep_in_loop (0.05);
  }
  g_assert_nonnull (s);
  g_assert_cmpuint (n_signals, >, 0);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 3);
  g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_ALIVE);
}

static void
test_concurrent_register (Fixture      *f,
                          gconstpointer data)
{
  const char      *args[] = { "register", "vm-contended", NULL };
  Worker          *workers[4];
  guint            n_ready = 0, n_refused = 0;
  g_autofree char *refused = g_strdup_printf ("ERROR gsm-error-quark %d ", GSM_ERROR_VM_OWNED_BY_OTHER);

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      g_autofree char *host = g_strdup_printf ("host-%u", i);

      workers[i] = worker_spawn (env_for (f, host), args);
    }

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      g_autofree char *line = worker_read_line (workers[i], READY_BOUND);

      g_assert_nonnull (line);
      if (g_str_has_prefix (line, "READY "))
        n_ready++;
      else if (g_str_has_prefix (line, refused))
        n_refused++;
      else
        g_error ("unexpected: %s", line);
    }

  g_assert_cmpuint (n_ready, ==, 1);
  g_assert_cmpuint (n_refused, ==, G_N_ELEMENTS (workers) - 1);

  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    worker_free (workers[i]);
}

static void
test_cycles (Fixture      *f,
             gconstpointer data)
{
  const char      *args[] = { "cycle", "25", NULL };
  g_autofree char *vms = g_strconcat (f->prefix, "/vms/", NULL);
  g_autofree char *sessions = g_strconcat (f->prefix, "/sessions/", NULL);
  g_autofree char *out = NULL;
  g_autoptr (GVariant) stats = NULL;
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager;
  guint32            n;
  int                status;

  out = worker_run (env_for (f, "host-c"), args, &status);
  g_assert_cmpstr (out, ==, "OK 25\n");
  g_assert_cmpint (status, ==, 0);
  /* Closed without a VM: nothing left. */
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 0);
  g_assert_cmpint (etcd_count_keys (&server, sessions), ==, 0);

  manager = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-s", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (gsm_session_manager_get_has_vm (manager));
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 1);
  g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (etcd_count_keys (&server, vms), ==, 0);
  stats = gsm_session_manager_get_statistics (manager);
  g_assert_true (g_variant_lookup (stats, "vms_registered", "u", &n));
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (g_variant_lookup (stats, "vms_unregistered", "u", &n));
  g_assert_cmpuint (n, ==, 1);
}

/* ---- faults while running ---------------------------------------------- */

static void
test_etcd_restart (Fixture      *f,
                   gconstpointer data)
{
  const char *watch_w[] = { "watch", "vm-w", NULL };
  const char *list[] = { "list", NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmSession) vm = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char   *out = NULL;
  GsmSessionManager *manager = watching_manager (f);
  const char        *own_id = gsm_session_manager_get_session_id (manager);
  GsmEtcdRegistry   *registry = GSM_ETCD_REGISTRY (_gsm_session_manager_get_registry (manager));
  gint64             lease_id = _gsm_etcd_registry_get_lease_id (registry);
  gboolean           lapsed = FALSE;

  g_signal_connect_swapped (manager, "ownership-lapsed", G_CALLBACK (set_flag), &lapsed);
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-r", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  /* Down for longer than the lease's TTL. */
  etcd_server_stop (&server, SIGKILL);
  sleep_in_loop (3.0);
  g_assert_false (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE);
  g_clear_error (&error);
  etcd_server_start (&server);

  /* etcd restores leases with a fresh TTL; our keepalive resumes, so we
   * stay alive well past it. */
  sleep_in_loop (5.0);
  out = worker_run (env_for (f, "host-c"), list, NULL);
  g_assert_nonnull (strstr (out, own_id));
  entry = lookup_entry (manager, own_id);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-r");
  vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (vm);
  g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-r");
  g_assert_cmpuint (f->stale->len, ==, 0);
  /* Kept alive, never lapsed. */
  g_assert_cmpint (_gsm_etcd_registry_get_lease_id (registry), ==, lease_id);
  g_assert_false (lapsed);

  /* The watch is back too. */
  w = worker_spawn (env_for (f, "host-w"), watch_w);
  worker_wait_ready (w, READY_BOUND);
  g_assert_true (wait_for_id (f->added, w->session_id, 5.0));
}

static void
test_lease_lapsed (Fixture      *f,
                   gconstpointer data)
{
  const char *watch_l[] = { "watch", "vm-l", NULL };
  const char *watch_m[] = { "watch", "vm-m", NULL };
  const char *take_m[] = { "register", "vm-m", NULL };
  g_autoptr (Worker) l = NULL;
  g_autoptr (Worker) m = NULL;
  g_autoptr (Worker) taker = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autofree char   *line = NULL;
  GsmSessionManager *manager = watching_manager (f);

  /* Paused longer than the TTL: the others see it stale; resumed, it
   * enters again with its VM and is told. */
  l = worker_spawn (env_for (f, "host-l"), watch_l);
  worker_wait_ready (l, READY_BOUND);
  worker_signal (l, SIGSTOP);
  g_assert_true (wait_for_id (f->stale, l->session_id, STALE_BOUND));
  entry = lookup_entry (manager, l->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "stale");
  g_clear_object (&entry);

  worker_signal (l, SIGCONT);
  line = worker_expect (l, "LAPSED ", 10.0);
  g_assert_cmpstr (line, ==, "LAPSED 1 vm-l");
  g_clear_pointer (&line, g_free);
  entry = lookup_entry_once (manager, l->session_id, "vm-l", "active");
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-l");
  g_clear_object (&entry);

  /* Paused while another session takes its orphaned VM: it enters again
   * without it. */
  m = worker_spawn (env_for (f, "host-m"), watch_m);
  worker_wait_ready (m, READY_BOUND);
  worker_signal (m, SIGSTOP);
  g_assert_true (wait_for_id (f->stale, m->session_id, STALE_BOUND));
  taker = worker_spawn (env_for (f, "host-t"), take_m);
  worker_wait_ready (taker, READY_BOUND);
  worker_signal (m, SIGCONT);
  line = worker_expect (m, "LAPSED ", 10.0);
  g_assert_cmpstr (line, ==, "LAPSED 0 -");
  entry = lookup_entry_once (manager, taker->session_id, "vm-m", "active");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-m");
  g_clear_object (&entry);
  entry = lookup_entry_once (manager, m->session_id, NULL, "active");
  g_assert_nonnull (entry);
  g_assert_false (gsm_session_get_has_vm (entry));
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
}

/* Once the watch keeps the view current, an update reads only the keys
 * it decides on (its transaction compares them), and a listing reads
 * nothing: neither reads the whole prefix, however many sessions it
 * holds. */
static void
test_updates_read_no_prefix (Fixture      *f,
                             gconstpointer data)
{
  const char *args[] = { "register", "vm-other", NULL };
  g_autoptr (Worker) other = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  GsmEtcdRegistry   *registry;
  g_autoptr (GError) error = NULL;
  guint before;

  other = worker_spawn (env_for (f, "host-other"), args);
  worker_wait_ready (other, READY_BOUND);
  registry = GSM_ETCD_REGISTRY (_gsm_session_manager_get_registry (manager));
  /* The watch is in place once a cycle reads no prefix (it delivered our
   * own writes). */
  for (gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;;)
    {
      before = _gsm_etcd_registry_get_n_range_reads (registry);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-0", "z", NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      if (_gsm_etcd_registry_get_n_range_reads (registry) == before)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      sleep_in_loop (0.05);
    }
  before = _gsm_etcd_registry_get_n_range_reads (registry);

  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i + 1);
      g_autoptr (GHashTable) sessions = NULL;

      g_assert_true (gsm_session_manager_register_vm_sync (manager, vm, "z", NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      sessions = gsm_session_manager_get_all_active_sessions_sync (manager, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_hash_table_contains (sessions, other->session_id));
      g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (sessions, gsm_session_manager_get_session_id (manager))),
                       ==, vm);
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
    }
  /* And still refused where another owns the VM. */
  g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-other", "z", NULL, NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER);

  g_assert_cmpuint (_gsm_etcd_registry_get_n_range_reads (registry), ==, before);
}

/* A process that only makes _sync calls (no main loop) is back in the
 * registry, with its VM, within one renewal period of etcd answering
 * again after its lease lapsed. */
static void
test_sync_only_reenters (Fixture      *f,
                         gconstpointer data)
{
  const char *args[] = { "register", "vm-sync", NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmSession) entry = NULL;
  GsmSessionManager *manager = watching_manager (f);
  gint64             deadline;

  w = worker_spawn (env_for (f, "host-sync"), args);
  worker_wait_ready (w, READY_BOUND);
  worker_signal (w, SIGSTOP);
  g_assert_true (wait_for_id (f->stale, w->session_id, STALE_BOUND));

  worker_signal (w, SIGCONT);
  /* One renewal period is a third of the TTL; allow another, and time
   * for a loaded machine. */
  deadline = g_get_monotonic_time () + (gint64) (2 * atof (TTL) / 3 * G_USEC_PER_SEC) +
             3 * G_USEC_PER_SEC;
  for (;;)
    {
      g_clear_object (&entry);
      entry = lookup_entry (manager, w->session_id);
      if (entry != NULL && g_strcmp0 (gsm_session_get_status (entry), "active") == 0 &&
          _gsm_registry_vouches_for (_gsm_session_manager_get_registry (manager), entry))
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      sleep_in_loop (0.1);
    }
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-sync");
}

/* The lease of @session_id's key, 0 if there is no such key. */
static gint64
session_key_lease (Fixture    *f,
                   const char *session_id)
{
  g_autofree char *key = g_strdup_printf ("%s/sessions/%s", f->prefix, session_id);
  g_autofree char *k = g_base64_encode ((const guchar *) key, strlen (key));
  g_autofree char *body = g_strdup_printf ("{\"key\": \"%s\"}", k);
  g_autofree char *reply = etcd_post (&server, "/v3/kv/range", body);
  g_autoptr (JsonNode) root = reply ? json_from_string (reply, NULL) : NULL;
  JsonObject *obj = root ? json_node_get_object (root) : NULL;
  JsonObject *kv;

  g_assert_nonnull (obj);
  if (!json_object_has_member (obj, "kvs"))
    return 0;
  kv = json_array_get_object_element (json_object_get_array_member (obj, "kvs"), 0);
  if (!json_object_has_member (kv, "lease"))
    return 0;
  return g_ascii_strtoll (json_object_get_string_member (kv, "lease"), NULL, 10);
}

/*
 * etcd revokes the leases of processes that run a main loop, again and
 * again: each time, each enters again on a new lease, which it keeps
 * alive, so that its session key is still there after a TTL. Both its
 * registry's thread and its manager (on ::lapsed) set out to enter again;
 * each used to take a lease of its own, and the key could end up on the
 * one nobody renewed: gone a TTL later, the process alive and never
 * entering again. (A race: several processes, several times.)
 */
static void
test_lease_revoked (Fixture      *f,
                    gconstpointer data)
{
  Worker *w[3];

  for (guint k = 0; k < G_N_ELEMENTS (w); k++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-revoked-%u", k);
      g_autofree char *host = g_strdup_printf ("host-revoked-%u", k);
      const char      *args[] = { "watch", vm, NULL };

      w[k] = worker_spawn (env_for (f, host), args);
      worker_wait_ready (w[k], READY_BOUND);
    }

  for (guint i = 0; i < 6; i++)
    {
      gint64 leases[G_N_ELEMENTS (w)];

      for (guint k = 0; k < G_N_ELEMENTS (w); k++)
        {
          g_autofree char *body = NULL;
          g_autofree char *reply = NULL;

          leases[k] = session_key_lease (f, w[k]->session_id);
          g_assert_cmpint (leases[k], >, 0);
          body = g_strdup_printf ("{\"ID\": \"%" G_GINT64_FORMAT "\"}", leases[k]);
          reply = etcd_post (&server, "/v3/lease/revoke", body);
          g_assert_nonnull (reply);
        }
      for (guint k = 0; k < G_N_ELEMENTS (w); k++)
        {
          g_autofree char *line = worker_expect (w[k], "LAPSED ", 10.0);
          g_autofree char *expected = g_strdup_printf ("LAPSED 1 vm-revoked-%u", k);

          g_assert_cmpstr (line, ==, expected);
        }

      /* Longer than a lease taken meanwhile and never renewed lasts. */
      sleep_in_loop (atof (TTL) + 1.5);
      for (guint k = 0; k < G_N_ELEMENTS (w); k++)
        {
          gint64 lease = session_key_lease (f, w[k]->session_id);

          g_assert_cmpint (lease, >, 0);
          g_assert_cmpint (lease, !=, leases[k]);
        }
    }

  for (guint k = 0; k < G_N_ELEMENTS (w); k++)
    worker_free (w[k]);
}

static void
test_watch_broken (Fixture      *f,
                   gconstpointer data)
{
  const char *watch_x[] = { "watch", "vm-x", NULL };
  const char *watch_y[] = { "watch", "vm-y", NULL };
  const char *watch_z[] = { "watch", "vm-z", NULL };
  g_autoptr (Worker) x = NULL;
  g_autoptr (Worker) y = NULL;
  g_autoptr (Worker) z = NULL;
  g_autofree char   *body = NULL;
  g_autofree char   *reply = NULL;
  Proxy             *proxy = (Proxy *) data;
  GsmSessionManager *manager;
  const char        *direct[3];
  g_autofree char   *direct_uri = g_strdup_printf ("GSM_REGISTRY=etcd://127.0.0.1:%u%s",
                                                   server.client_port, f->prefix);

  /* This process reaches etcd through the proxy; the workers directly. */
  g_setenv ("GSM_LEASE_TTL", "6", TRUE);
  manager = watching_manager (f);
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-p", "z", NULL, NULL, NULL, NULL));
  direct[0] = direct_uri;
  direct[1] = "GSM_HOSTNAME=host-x";
  direct[2] = NULL;

  /* Cut, and changed meanwhile: the resync reports it. */
  proxy_cut (proxy, TRUE);
  x = worker_spawn (direct, watch_x);
  worker_wait_ready (x, READY_BOUND);
  g_assert_false (contains (f->added, x->session_id));
  proxy_set_refusing (proxy, FALSE);
  g_assert_true (wait_for_id (f->added, x->session_id, 5.0));

  /* The watch is live again. */
  direct[1] = "GSM_HOSTNAME=host-y";
  y = worker_spawn (direct, watch_y);
  worker_wait_ready (y, READY_BOUND);
  g_assert_true (wait_for_id (f->added, y->session_id, 1.0));

  /* Cut while etcd compacts past what the watch saw: it starts again from
   * the present and the resync still reports the change. */
  proxy_cut (proxy, TRUE);
  direct[1] = "GSM_HOSTNAME=host-z";
  z = worker_spawn (direct, watch_z);
  worker_wait_ready (z, READY_BOUND);
  body = g_strdup_printf ("{\"revision\": \"%" G_GINT64_FORMAT "\", \"physical\": true}",
                          etcd_revision (&server));
  reply = etcd_post (&server, "/v3/kv/compaction", body);
  g_assert_nonnull (reply);
  proxy_set_refusing (proxy, FALSE);
  g_assert_true (wait_for_id (f->added, z->session_id, 5.0));

  /* None of it cost this session its entry. */
  g_assert_true (gsm_session_manager_get_has_vm (manager));
  g_assert_cmpuint (f->stale->len, ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *proxy_endpoint = NULL;
  Proxy           *proxy;
  int              ret;

  g_test_init (&argc, &argv, NULL);
  g_setenv ("GSM_DURABLE", "0", TRUE);

  etcd_server_start (&server);
  proxy = proxy_new (server.client_port);
  proxy_endpoint = g_strdup_printf ("http://127.0.0.1:%u", proxy->port);

  g_test_add ("/etcd/unreachable/refused", Fixture, NULL, fixture_set_up,
              test_unreachable_refused, fixture_tear_down);
  g_test_add ("/etcd/unreachable/silent", Fixture, NULL, fixture_set_up,
              test_unreachable_silent, fixture_tear_down);
  g_test_add ("/etcd/unreachable/in-process", Fixture, NULL, fixture_set_up,
              test_unreachable_in_process, fixture_tear_down);
  g_test_add ("/etcd/bad-backend", Fixture, NULL, fixture_set_up,
              test_bad_backend, fixture_tear_down);
  g_test_add ("/etcd/config-file", Fixture, NULL, fixture_set_up,
              test_config_file, fixture_tear_down);
  g_test_add ("/etcd/multi-host", Fixture, NULL, fixture_set_up,
              test_multi_host, fixture_tear_down);
  g_test_add ("/etcd/stale-only-listener", Fixture, NULL, fixture_set_up,
              test_stale_only_listener, fixture_tear_down);
  g_test_add ("/etcd/readers-write-nothing", Fixture, NULL, fixture_set_up,
              test_readers_write_nothing, fixture_tear_down);
  g_test_add ("/etcd/reaper", Fixture, NULL, fixture_set_up,
              test_reaper, fixture_tear_down);
  g_test_add ("/etcd/updates-read-no-prefix", Fixture, NULL, fixture_set_up,
              test_updates_read_no_prefix, fixture_tear_down);
  g_test_add ("/etcd/sync-only-reenters", Fixture, NULL, fixture_set_up,
              test_sync_only_reenters, fixture_tear_down);
  g_test_add ("/etcd/lease-revoked", Fixture, NULL, fixture_set_up,
              test_lease_revoked, fixture_tear_down);
  g_test_add ("/etcd/fleet-grace-default", Fixture, NULL, fixture_set_up,
              test_fleet_grace_default, fixture_tear_down);
  g_test_add ("/etcd/grace-recorded", Fixture, NULL, fixture_set_up,
              test_grace_recorded, fixture_tear_down);
  g_test_add ("/etcd/concurrent-register", Fixture, NULL, fixture_set_up,
              test_concurrent_register, fixture_tear_down);
  g_test_add ("/etcd/cycles", Fixture, NULL, fixture_set_up,
              test_cycles, fixture_tear_down);
  g_test_add ("/etcd/lease-lapsed", Fixture, NULL, fixture_set_up,
              test_lease_lapsed, fixture_tear_down);
  g_test_add ("/etcd/watch-broken", Fixture, proxy, fixture_set_up_proxy,
              test_watch_broken, fixture_tear_down);
  g_test_add ("/etcd/restart", Fixture, NULL, fixture_set_up,
              test_etcd_restart, fixture_tear_down);

  ret = g_test_run ();

  proxy_free (proxy);
  etcd_server_destroy (&server);
  return ret;
}
