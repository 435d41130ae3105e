/* test-etcd-cluster.c: the etcd registry against a three-member cluster
 *
 * One cluster (m1, m2, m3 on 127.0.0.1, ports chosen at run time) for the
 * whole program; each test uses its own key prefix. In each test, three
 * simulated hosts (GSM_HOSTNAME host-a, host-b and host-c) run one session
 * each, live the whole time: a gsm-test-worker process that registered a
 * VM with the three endpoints, in an order the test chooses. The workers
 * of host-a and host-c only ever made _sync calls and run no main loop
 * (mode "register": the registry's own thread alone keeps them in);
 * host-b's runs a main loop (mode "watch"). `gsmd --reap` runs as a
 * fourth host (host-reaper), with its defaults (the grace period of fleet
 * mode, MAX (10, 2 × TTL)) on a private bus, and the fake provider of
 * tests/reaper, which records every call, named in its configuration
 * file. This process watches as an observer.
 *
 * Each test stops or kills part or all of the cluster for twice the TTL.
 * Throughout, and after it, the test checks on the members up that no VM
 * key of a live session is lost and that no live session's VM was passed
 * to the provider; where a quorum serves all along, that every session key
 * stays and the observer never sees a session stale; where the whole
 * cluster was down (or a paused leader resumed, which can cost every lease:
 * see test_member_stopped), that every session, this process's and gsmd's
 * included, is back within a renewal period of the cluster answering
 * again. At the end, one worker is killed with
 * SIGKILL: the observer sees it stale, and gsmd --reap deletes its VM, and
 * no other, once the grace period is over.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>
#include <json-glib/json-glib.h>

#include "etcd-test-util.h"
#include "gsm-session-manager-private.h"

/* Short, for a short test, but long enough that an election on a loaded
 * machine (the suites run two at a time, under valgrind too) fits in it. */
#define TTL 5
/* The reaper's default grace period in fleet mode: MAX (10, 2 × TTL). */
#define GRACE 10
#define STALE_BOUND 20.0
#define READY_BOUND 30.0
/* One renewal period (a third of the TTL), and room for a loaded machine
 * (a keepalive that times out on a member not yet serving, a transaction
 * retried after a conflict). Generous: this is not a measure of speed. */
#define RENEWAL_BOUND (TTL / 3.0 + 8.0)
/* From the kill of a session's process to the deletion of its VM: the
 * rest of its lease, the grace period, and ample room. */
#define REAP_BOUND (TTL + GRACE + 40.0)

#define N_HOSTS 3
/* The sessions the test follows: the hosts', each with a VM, then this
 * process's and gsmd's, without. */
#define OBSERVER N_HOSTS
#define REAPER (N_HOSTS + 1)
#define N_SESSIONS (N_HOSTS + 2)

typedef struct
{
  const char *hostname;
  const char *mode; /* of gsm-test-worker */
  const char *vm_id;
} Host;

static const Host hosts[N_HOSTS] = {
  { "host-a", "register", "vm-a" },
  { "host-b", "watch", "vm-b" },
  { "host-c", "register", "vm-c" },
};

static EtcdCluster cluster;
static GTestDBus  *bus;
static guint       test_counter;

typedef struct
{
  char      *runtime;
  char      *cloud; /* FAKE_CLOUD_DIR */
  char      *vms;   /* its running VMs, one file each */
  char      *prefix;
  GPtrArray *added;
  GPtrArray *stale;
  Worker    *workers[N_HOSTS];
  gboolean   killed[N_HOSTS];
  char      *observer_id;
  char      *reaper_id;
  /* gsmd --reap */
  GSubprocess *reaper;
  gboolean     reaper_exited;
  char        *reaper_log;
} Fixture;

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
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ttl = g_strdup_printf ("%d", TTL);

  f->runtime = g_dir_make_tmp ("gsm-etcd-cluster-run-XXXXXX", &error);
  g_assert_no_error (error);
  f->cloud = g_build_filename (f->runtime, "cloud", NULL);
  f->vms = g_build_filename (f->cloud, "vms", NULL);
  g_assert_cmpint (g_mkdir_with_parents (f->vms, 0700), ==, 0);
  f->prefix = g_strdup_printf ("/cluster-%u-%d", ++test_counter, getpid ());
  f->added = g_ptr_array_new_with_free_func (g_free);
  f->stale = g_ptr_array_new_with_free_func (g_free);

  g_setenv ("GSM_RUNTIME_DIR", f->runtime, TRUE);
  g_setenv ("GSM_LEASE_TTL", ttl, TRUE);
  g_setenv ("GSM_ETCD_TIMEOUT", "2", TRUE);
  g_setenv ("GSM_HOSTNAME", "host-observer", TRUE);
  g_setenv ("GSM_CONFIG_FILE", "/nonexistent/gsm-etcd-test.ini", TRUE);
  g_setenv ("FAKE_CLOUD_DIR", f->cloud, TRUE);
}

static void
dump_reaper_log (Fixture *f)
{
  g_autofree char *log = NULL;

  if (f->reaper_log != NULL && g_file_get_contents (f->reaper_log, &log, NULL, NULL))
    g_test_message ("gsmd --reap said:\n%s", log);
}

static void
stop_reaper (Fixture *f)
{
  if (f->reaper == NULL)
    return;
  g_subprocess_send_signal (f->reaper, SIGTERM);
  if (!wait_for_flag (&f->reaper_exited, 30))
    {
      dump_reaper_log (f);
      g_error ("gsmd --reap did not exit within 30 s of SIGTERM");
    }
  if (!g_subprocess_get_if_exited (f->reaper) || g_subprocess_get_exit_status (f->reaper) != 0)
    dump_reaper_log (f);
  g_assert_true (g_subprocess_get_if_exited (f->reaper));
  g_assert_cmpint (g_subprocess_get_exit_status (f->reaper), ==, 0);
  g_clear_object (&f->reaper);
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  /* Whatever a test stopped or killed is back for the next one. */
  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      if (cluster.members[i].process != NULL)
        etcd_server_signal (&cluster.members[i], SIGCONT);
      else
        etcd_cluster_restart_member (&cluster, i);
    }
  stop_reaper (f);
  for (guint i = 0; i < N_HOSTS; i++)
    g_clear_pointer (&f->workers[i], worker_free);
  rm_rf (f->runtime);
  g_free (f->runtime);
  g_free (f->cloud);
  g_free (f->vms);
  g_free (f->prefix);
  g_free (f->reaper_log);
  g_free (f->observer_id);
  g_free (f->reaper_id);
  g_ptr_array_unref (f->added);
  g_ptr_array_unref (f->stale);
}

static void
added_cb (GsmSessionManager *manager,
          GsmSession        *session,
          Fixture           *f)
{
  g_ptr_array_add (f->added, g_strdup (gsm_session_get_session_id (session)));
}

static void
stale_cb (GsmSessionManager *manager,
          GsmSession        *session,
          Fixture           *f)
{
  g_ptr_array_add (f->stale, g_strdup (gsm_session_get_session_id (session)));
  g_test_message ("this process saw the session %s of %s stale",
                  gsm_session_get_session_id (session), gsm_session_get_hostname (session));
}

/* The manager of this process, on the cluster with the members in
 * @order, watching. */
static GsmSessionManager *
observer (Fixture     *f,
          const guint *order)
{
  g_autofree char   *uri = etcd_cluster_uri (&cluster, order, f->prefix);
  GsmSessionManager *manager;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;

  g_setenv ("GSM_REGISTRY", uri, TRUE);
  manager = gsm_session_manager_get_default ();
  g_signal_connect (manager, "session-added", G_CALLBACK (added_cb), f);
  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  sessions = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  f->observer_id = g_strdup (gsm_session_manager_get_session_id (manager));
  g_assert_true (g_hash_table_contains (sessions, f->observer_id));
  sleep_in_loop (0.1);
  return manager;
}

static char *find_session_of (Fixture *f, const char *hostname);

/* gsmd --reap as host-reaper, on the cluster with the members in @order,
 * with its own runtime directory and a configuration file naming the
 * fake provider; everything else (grace period, backoff, etcd timeout)
 * its default. It needs a session bus: the private one of this program. */
static void
start_reaper (Fixture     *f,
              const guint *order)
{
  g_autofree char *uri = etcd_cluster_uri (&cluster, order, f->prefix);
  g_autofree char *runtime = g_build_filename (f->runtime, "host-reaper", NULL);
  g_autofree char *config = g_build_filename (f->runtime, "reaper.ini", NULL);
  g_autofree char *config_text = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GError) error = NULL;
  const char *unset[] = { "GSM_ETCD_TIMEOUT", "GSM_REAP_GRACE", "GSM_REAP_BACKOFF",
                          "GSM_REAP_MAX_BACKOFF", "GSM_REAP_CONCURRENCY", "GSM_PROVIDER",
                          "GSM_PROVIDER_COMMAND", "GSM_PROVIDER_TIMEOUT",
                          "GSM_PROVIDER_NOT_FOUND_EXIT_CODE", "GSM_PROVIDER_NOT_FOUND_PATTERN",
                          "GSM_SESSION_EXPIRY", NULL };
  gint64      deadline = g_get_monotonic_time () + (gint64) (READY_BOUND * G_USEC_PER_SEC);

  g_assert_null (f->reaper);
  g_assert_cmpint (g_mkdir_with_parents (runtime, 0700), ==, 0);
  config_text = g_strdup_printf ("[reaper]\n"
                                 "provider=fake\n"
                                 "\n"
                                 "[provider fake]\n"
                                 "command=/bin/sh %s delete {vm_id} {zone} {session_id}\n"
                                 "not-found-pattern=was not found\n",
                                 g_test_get_filename (G_TEST_DIST, "reaper", "fake-provider.sh",
                                                      NULL));
  g_assert_true (g_file_set_contents (config, config_text, -1, NULL));
  f->reaper_log = g_build_filename (f->runtime, "gsmd.log", NULL);

  /* Its messages and debug messages (on stdout), in one log. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_subprocess_launcher_set_stdout_file_path (launcher, f->reaper_log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  for (guint i = 0; unset[i] != NULL; i++)
    g_subprocess_launcher_unsetenv (launcher, unset[i]);
  g_subprocess_launcher_setenv (launcher, "GSM_HOSTNAME", "host-reaper", TRUE);
  g_subprocess_launcher_setenv (launcher, "GSM_REGISTRY", uri, TRUE);
  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", runtime, TRUE);
  g_subprocess_launcher_setenv (launcher, "GSM_CONFIG_FILE", config, TRUE);
  g_subprocess_launcher_setenv (launcher, "G_MESSAGES_DEBUG", "Gsm", TRUE);
  f->reaper = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSMD"),
                                           "--reap", NULL);
  g_assert_no_error (error);
  f->reaper_exited = FALSE;
  g_subprocess_wait_async (g_object_ref (f->reaper), NULL, etcd_exited_cb, &f->reaper_exited);

  /* Serving once it owns its name (after its first reap pass began). */
  for (;;)
    {
      g_autofree char *log = NULL;

      if (g_file_get_contents (f->reaper_log, &log, NULL, NULL) &&
          strstr (log, "Serving the registry") != NULL)
        {
          g_autofree char *grace = g_strdup_printf ("(grace period %d s)", GRACE);

          /* The default of fleet mode, from the TTL. */
          g_assert_nonnull (strstr (log, grace));
          break;
        }
      if (f->reaper_exited || g_get_monotonic_time () > deadline)
        {
          dump_reaper_log (f);
          g_error ("gsmd --reap did not start");
        }
      sleep_in_loop (0.05);
    }
  f->reaper_id = find_session_of (f, "host-reaper");
}

/* Reads the READY line of a worker started with register or watch (the
 * latter may print other lines first). */
static void
wait_ready (Worker *w)
{
  g_autofree char *line = worker_expect (w, "READY ", READY_BOUND);
  g_auto (GStrv) parts = g_strsplit (line, " ", 3);

  w->session_id = g_strdup (parts[1]);
}

/* A worker of @hostname registering @vm_id on the cluster with the
 * members in @order. */
static Worker *
spawn_session (Fixture     *f,
               const guint *order,
               const char  *hostname,
               const char  *mode,
               const char  *vm_id)
{
  g_autofree char *uri = etcd_cluster_uri (&cluster, order, f->prefix);
  g_autofree char *registry = g_strdup_printf ("GSM_REGISTRY=%s", uri);
  g_autofree char *host = g_strdup_printf ("GSM_HOSTNAME=%s", hostname);
  g_autofree char *cloud_vm = g_build_filename (f->vms, vm_id, NULL);
  const char      *env[] = { registry, host, NULL };
  const char      *args[] = { mode, vm_id, "zone-a", NULL };
  Worker          *w;

  /* The VM "runs" in the fake cloud until the provider deletes it. */
  g_assert_true (g_file_set_contents (cloud_vm, "", 0, NULL));
  w = worker_spawn (env, args);
  wait_ready (w);
  return w;
}

/* The sessions of the three hosts, each on the cluster with the members
 * in its row of @orders. */
static void
spawn_hosts (Fixture    *f,
             const guint orders[N_HOSTS][ETCD_CLUSTER_SIZE])
{
  for (guint i = 0; i < N_HOSTS; i++)
    f->workers[i] = spawn_session (f, orders[i], hosts[i].hostname, hosts[i].mode,
                                   hosts[i].vm_id);
}

/* How many keys start with @key, read (serializable) from the first member
 * up that is not @avoid; -1 if none answers. */
static int
count_keys (const char *key,
            int         avoid)
{
  g_autofree char *key_b64 = b64 (key);
  g_autofree char *end_text = g_strdup (key);
  g_autofree char *end_b64 = NULL;
  g_autofree char *body = NULL;

  end_text[strlen (end_text) - 1]++;
  end_b64 = b64 (end_text);
  body = g_strdup_printf ("{\"key\": \"%s\", \"range_end\": \"%s\", \"count_only\": true, "
                          "\"serializable\": true}",
                          key_b64, end_b64);

  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      g_autofree char *reply = NULL;
      const char      *count;

      if ((int) i == avoid || cluster.members[i].process == NULL)
        continue;
      reply = etcd_post (&cluster.members[i], "/v3/kv/range", body);
      if (reply == NULL)
        continue;
      count = strstr (reply, "\"count\":\"");
      return count ? atoi (count + strlen ("\"count\":\"")) : 0;
    }
  return -1;
}

/* The lease of @session_id's key, read (serializable) from the first
 * member up; 0 if the key is not there, -1 if no member answers. */
static gint64
session_lease (Fixture    *f,
               const char *session_id)
{
  g_autofree char *key = g_strdup_printf ("%s/sessions/%s", f->prefix, session_id);
  g_autofree char *key_b64 = b64 (key);
  g_autofree char *body = g_strdup_printf ("{\"key\": \"%s\", \"serializable\": true}", key_b64);

  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      g_autofree char *reply = NULL;
      const char      *lease;

      if (cluster.members[i].process == NULL)
        continue;
      reply = etcd_post (&cluster.members[i], "/v3/kv/range", body);
      if (reply == NULL)
        continue;
      if (strstr (reply, "\"kvs\"") == NULL)
        return 0;
      lease = strstr (reply, "\"lease\":\"");
      return lease ? g_ascii_strtoll (lease + strlen ("\"lease\":\""), NULL, 10) : 0;
    }
  return -1;
}

static int
count_session_key (Fixture    *f,
                   const char *session_id,
                   int         avoid)
{
  g_autofree char *key = g_strdup_printf ("%s/sessions/%s", f->prefix, session_id);

  return count_keys (key, avoid);
}

static int
count_vm_key (Fixture    *f,
              const char *vm_id,
              int         avoid)
{
  g_autofree char *key = g_strdup_printf ("%s/vms/%s", f->prefix, vm_id);

  return count_keys (key, avoid);
}

/* The id of the session of @hostname, read from etcd once it is there. */
static char *
find_session_of (Fixture    *f,
                 const char *hostname)
{
  g_autofree char *key = g_strdup_printf ("%s/sessions/", f->prefix);
  g_autofree char *end = g_strdup_printf ("%s/sessions0", f->prefix);
  g_autofree char *key_b64 = b64 (key);
  g_autofree char *end_b64 = b64 (end);
  g_autofree char *body = g_strdup_printf ("{\"key\": \"%s\", \"range_end\": \"%s\"}",
                                           key_b64, end_b64);
  gint64           deadline = g_get_monotonic_time () + (gint64) (READY_BOUND * G_USEC_PER_SEC);

  for (;;)
    {
      g_autofree char *reply = etcd_post (&cluster.members[0], "/v3/kv/range", body);
      g_autoptr (JsonNode) root = reply ? json_from_string (reply, NULL) : NULL;
      JsonObject *obj = root ? json_node_get_object (root) : NULL;
      JsonArray  *kvs = obj && json_object_has_member (obj, "kvs")
                            ? json_object_get_array_member (obj, "kvs")
                            : NULL;

      for (guint i = 0; kvs != NULL && i < json_array_get_length (kvs); i++)
        {
          JsonObject        *kv = json_array_get_object_element (kvs, i);
          gsize              len;
          g_autofree guchar *value = g_base64_decode (json_object_get_string_member (kv, "value"),
                                                      &len);
          g_autofree char   *text = g_strndup ((char *) value, len);
          g_autoptr (JsonNode) entry = json_from_string (text, NULL);

          if (entry != NULL && JSON_NODE_HOLDS_OBJECT (entry) &&
              g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (entry),
                                                                     "hostname", NULL),
                         hostname) == 0)
            return g_strdup (json_object_get_string_member (json_node_get_object (entry),
                                                            "session_id"));
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("no session of %s in etcd", hostname);
      sleep_in_loop (0.1);
    }
}

/* The id of session @i (of the hosts', this process's or gsmd's) while it
 * lives, else NULL. */
static const char *
live_session (Fixture *f,
              guint    i)
{
  if (i < N_HOSTS)
    return f->workers[i] != NULL && !f->killed[i] ? f->workers[i]->session_id : NULL;
  return i == OBSERVER ? f->observer_id : f->reaper_id;
}

static const char *
session_name (guint i)
{
  if (i < N_HOSTS)
    return hosts[i].hostname;
  return i == OBSERVER ? "host-observer (this process)" : "host-reaper (gsmd --reap)";
}

/* The VM ids the fake provider was called for, in order, one per call. */
static GPtrArray *
provider_calls (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);
  g_autofree char *log = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *calls = g_ptr_array_new_with_free_func (g_free);

  if (!g_file_get_contents (path, &log, NULL, NULL))
    return calls;
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) words = g_strsplit (lines[i], " ", 3);

      if (g_strv_length (words) >= 2 && g_str_equal (words[0], "call"))
        g_ptr_array_add (calls, g_strdup (words[1]));
    }
  return calls;
}

static gboolean
vm_runs (Fixture    *f,
         const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->vms, vm_id, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* No VM of a live session was passed to the provider, and each still
 * runs. */
static void
assert_no_live_vm_reaped (Fixture *f)
{
  g_autoptr (GPtrArray) calls = provider_calls (f);

  for (guint i = 0; i < N_HOSTS; i++)
    {
      if (f->workers[i] == NULL || f->killed[i])
        continue;
      if (contains (calls, hosts[i].vm_id))
        {
          dump_reaper_log (f);
          g_error ("the VM %s of live session %s (%s) was passed to the provider",
                   hosts[i].vm_id, f->workers[i]->session_id, hosts[i].hostname);
        }
      g_assert_true (vm_runs (f, hosts[i].vm_id));
    }
}

/*
 * One look at etcd, on the first member up that is not @avoid: the VM key
 * of every live session is there, and no live session's VM reached the
 * provider. In @present, whether each live session's key is there (TRUE
 * for a session that is not live). FALSE if no member answered.
 */
static gboolean
look (Fixture *f,
      int      avoid,
      gboolean present[N_SESSIONS])
{
  gboolean answered = FALSE;

  assert_no_live_vm_reaped (f);
  for (guint i = 0; i < N_SESSIONS; i++)
    {
      const char *id = live_session (f, i);
      int         sessions;

      present[i] = TRUE;
      if (id == NULL)
        continue;

      /* -1: no member answered this time (an election under way). */
      if (i < N_HOSTS)
        {
          int vms = count_vm_key (f, hosts[i].vm_id, avoid);

          if (vms >= 0)
            {
              if (vms != 1)
                dump_reaper_log (f);
              g_assert_cmpint (vms, ==, 1);
              answered = TRUE;
            }
        }
      sessions = count_session_key (f, id, avoid);
      if (sessions >= 0)
        answered = TRUE;
      present[i] = sessions != 0;
    }
  return answered;
}

/* For @seconds, twice a second: every live session's key and its VM's key
 * are in etcd, no live VM went to the provider, and the observer never
 * saw a live session stale. */
static void
assert_stays_registered (Fixture *f,
                         int      avoid,
                         double   seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  guint  checked = 0;

  do
    {
      gboolean present[N_SESSIONS];

      if (look (f, avoid, present))
        checked++;
      for (guint i = 0; i < N_SESSIONS; i++)
        {
          const char *id = live_session (f, i);

          if (id == NULL)
            continue;
          if (!present[i])
            {
              dump_reaper_log (f);
              g_error ("the session %s of %s is not in etcd", id, session_name (i));
            }
          if (contains (f->stale, id))
            {
              dump_reaper_log (f);
              g_error ("this process saw the session %s of %s stale", id, session_name (i));
            }
        }
      sleep_in_loop (0.5);
    }
  while (g_get_monotonic_time () < end);
  g_assert_cmpuint (checked, >, 0);
}

/* While nothing of the cluster serves, for @seconds: no live VM goes to
 * the provider. */
static void
assert_outage_harmless (Fixture *f,
                        double   seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end)
    {
      assert_no_live_vm_reaped (f);
      sleep_in_loop (0.25);
    }
}

/*
 * The whole cluster answers again (a leader is elected) after an outage
 * longer than the TTL (@leases: those of the sessions before it): for
 * @seconds from then, every live session whose key is missing must be
 * back within a renewal period (its lease may have expired meanwhile, and
 * then its process enters again, with its VM), VM keys are never missing,
 * and no live VM goes to the provider.
 */
static void
assert_back_after_outage (Fixture     *f,
                          const gint64 leases[N_SESSIONS],
                          double       seconds)
{
  gint64   answering, end;
  gint64   missing_since[N_SESSIONS] = { 0 };
  gint64   longest[N_SESSIONS] = { 0 };
  gboolean present[N_SESSIONS];

  etcd_cluster_find_leader (&cluster);
  answering = g_get_monotonic_time ();
  end = answering + (gint64) (seconds * G_USEC_PER_SEC);

  while (g_get_monotonic_time () < end)
    {
      gint64 now;

      look (f, -1, present);
      now = g_get_monotonic_time ();
      for (guint i = 0; i < N_SESSIONS; i++)
        {
          if (present[i])
            {
              missing_since[i] = 0;
              continue;
            }
          if (missing_since[i] == 0)
            missing_since[i] = now;
          longest[i] = MAX (longest[i], now - MAX (missing_since[i], answering));
          if (now - MAX (missing_since[i], answering) > RENEWAL_BOUND * G_USEC_PER_SEC)
            {
              dump_reaper_log (f);
              g_error ("the session %s of %s was not back within %.1f s of the cluster answering",
                       live_session (f, i), session_name (i), RENEWAL_BOUND);
            }
        }
      sleep_in_loop (0.2);
    }

  /* And all are there at the end. */
  g_assert_true (look (f, -1, present));
  for (guint i = 0; i < N_SESSIONS; i++)
    {
      gint64 lease = session_lease (f, live_session (f, i));

      g_assert_true (present[i]);
      g_assert_cmpint (lease, >, 0);
      g_test_message ("the session of %s is there%s; it was missing for %.1f s after the cluster "
                      "answered again",
                      session_name (i),
                      lease != leases[i] ? ", on a new lease" : "",
                      longest[i] / (double) G_USEC_PER_SEC);
    }
}

/* Runs the main context until @ids holds @id, at most @seconds. */
static gboolean
wait_for_id (GPtrArray  *ids,
             const char *id,
             double      seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (!contains (ids, id) && g_get_monotonic_time () < end)
    sleep_in_loop (0.05);
  return contains (ids, id);
}

/*
 * The end of every test: the session of host @victim is killed; the
 * observer sees it stale, and gsmd --reap deletes its VM (the provider is
 * called for it, once) after the grace period, and nothing else, while
 * the other sessions stay registered.
 */
static void
assert_reaped_only_when_dead (Fixture *f,
                              guint    victim)
{
  Worker     *w = f->workers[victim];
  const char *vm_id = hosts[victim].vm_id;
  g_autoptr (GPtrArray) calls = NULL;
  gint64 killed_at, deleted_at = 0;
  gint64 deadline;

  assert_stays_registered (f, -1, 1.0);
  calls = provider_calls (f);
  g_assert_cmpuint (calls->len, ==, 0);
  g_clear_pointer (&calls, g_ptr_array_unref);

  worker_signal (w, SIGKILL);
  killed_at = g_get_monotonic_time ();
  f->killed[victim] = TRUE;
  g_assert_true (wait_for_id (f->stale, w->session_id, STALE_BOUND));

  deadline = killed_at + (gint64) (REAP_BOUND * G_USEC_PER_SEC);
  while (vm_runs (f, vm_id))
    {
      if (g_get_monotonic_time () > deadline)
        {
          dump_reaper_log (f);
          g_error ("gsmd --reap did not delete the VM %s of dead session %s within %.0f s",
                   vm_id, w->session_id, REAP_BOUND);
        }
      /* Meanwhile the others stay, and so does everything of theirs. */
      assert_stays_registered (f, -1, 0.5);
    }
  deleted_at = g_get_monotonic_time ();

  /* Not before the grace period: its lease outlived the process, and the
   * grace period runs from when it was found dead. */
  g_assert_cmpint (deleted_at - killed_at, >=, GRACE * G_USEC_PER_SEC);

  /* Its VM key goes once the provider reported the VM deleted. */
  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (count_vm_key (f, vm_id, -1) != 0 && g_get_monotonic_time () < deadline)
    sleep_in_loop (0.2);
  g_assert_cmpint (count_vm_key (f, vm_id, -1), ==, 0);

  /* The provider was asked about that VM, once, and about nothing else. */
  assert_stays_registered (f, -1, 1.0);
  calls = provider_calls (f);
  g_assert_cmpuint (calls->len, ==, 1);
  g_assert_cmpstr (calls->pdata[0], ==, vm_id);
}

/*
 * The member the sessions of host-a talk to (the leader with @data, else
 * a follower) is paused for twice the TTL, while host-b and host-c talk
 * to the others first: host-a's leases are renewed through the others,
 * and the observer's watch (on the same member) moves on and still
 * reports new sessions. gsmd --reap too talks to that member first.
 *
 * A leader resumed after longer than the TTL takes itself for the leader
 * for a moment: its lessor finds every lease expired (renewals went to
 * the new leader) and revokes them all, through the new leader. That is
 * etcd's bug (etcd-io/etcd issues 12528 and 15247, fixed by pull request
 * 16822 in releases later than Debian 12's 3.4.23), and the same as the
 * whole cluster coming back after an outage longer than the TTL: every
 * process enters again, with its VM, within a renewal period, and gsmd
 * leaves their VMs alone.
 */
static void
test_member_stopped (Fixture      *f,
                     gconstpointer data)
{
  guint       leader = etcd_cluster_find_leader (&cluster);
  guint       stopped = data != NULL ? leader : (leader + 1) % ETCD_CLUSTER_SIZE;
  const guint order[] = { stopped, (stopped + 1) % ETCD_CLUSTER_SIZE,
                          (stopped + 2) % ETCD_CLUSTER_SIZE };
  const guint other_first[] = { order[1], order[2], order[0] };
  const guint orders[N_HOSTS][ETCD_CLUSTER_SIZE] = {
    { order[0], order[1], order[2] },
    { order[1], order[2], order[0] },
    { order[2], order[0], order[1] },
  };
  g_autoptr (Worker) x = NULL;
  gint64 leases[N_SESSIONS];

  observer (f, order);
  start_reaper (f, order);
  spawn_hosts (f, orders);
  assert_stays_registered (f, -1, 1.0);
  for (guint i = 0; i < N_SESSIONS; i++)
    leases[i] = session_lease (f, live_session (f, i));

  etcd_server_signal (&cluster.members[stopped], SIGSTOP);
  assert_stays_registered (f, (int) stopped, 2.0 * TTL);

  /* Registered meanwhile, through another member: the observer hears of
   * it. */
  x = spawn_session (f, other_first, "host-x", "register", "vm-x");
  g_assert_true (wait_for_id (f->added, x->session_id, 4.0 * TTL));
  assert_stays_registered (f, (int) stopped, 1.0);

  etcd_server_signal (&cluster.members[stopped], SIGCONT);
  if (data == NULL)
    {
      /* A follower holds no leases: nothing changes. */
      assert_stays_registered (f, -1, 1.0);
      g_assert_false (contains (f->stale, x->session_id));
    }
  else
    {
      /* Every lease may have been revoked: what the observer saw
       * meanwhile is no longer of interest. */
      assert_back_after_outage (f, leases, 2.0 * TTL);
      g_ptr_array_set_size (f->stale, 0);
    }
  g_assert_cmpint (count_session_key (f, x->session_id, -1), ==, 1);

  assert_reaped_only_when_dead (f, 0);
  g_assert_true (vm_runs (f, "vm-x"));
}

/* The leader is killed, and comes back later: the sessions of host-a,
 * which talk to it first, keep their leases through the others. */
static void
test_leader_killed (Fixture      *f,
                    gconstpointer data)
{
  guint       leader = etcd_cluster_find_leader (&cluster);
  const guint orders[N_HOSTS][ETCD_CLUSTER_SIZE] = {
    { leader, (leader + 1) % ETCD_CLUSTER_SIZE, (leader + 2) % ETCD_CLUSTER_SIZE },
    { (leader + 1) % ETCD_CLUSTER_SIZE, leader, (leader + 2) % ETCD_CLUSTER_SIZE },
    { (leader + 2) % ETCD_CLUSTER_SIZE, (leader + 1) % ETCD_CLUSTER_SIZE, leader },
  };
  guint new_leader;

  observer (f, orders[1]);
  start_reaper (f, orders[0]);
  spawn_hosts (f, orders);
  assert_stays_registered (f, -1, 1.0);

  etcd_cluster_kill_member (&cluster, leader);
  assert_stays_registered (f, (int) leader, 2.0 * TTL);
  new_leader = etcd_cluster_find_leader (&cluster);
  g_assert_cmpuint (new_leader, !=, leader);

  etcd_cluster_restart_member (&cluster, leader);
  assert_stays_registered (f, -1, 1.0);

  assert_reaped_only_when_dead (f, 1);
}

/*
 * The whole cluster is stopped for twice the TTL: with SIGTERM and started
 * again after (@data NULL; etcd restores the leases with a fresh TTL when
 * a leader is elected), or paused with SIGSTOP and resumed (the leader
 * finds the leases expired and revokes them: every process enters again,
 * with its VM, once it hears so). gsmd --reap, which finds the sessions
 * gone too, must leave their VMs alone.
 */
static void
test_cluster_stopped (Fixture      *f,
                      gconstpointer data)
{
  gboolean    pause = data != NULL;
  const guint orders[N_HOSTS][ETCD_CLUSTER_SIZE] = {
    { 2, 0, 1 },
    { 0, 1, 2 },
    { 1, 2, 0 },
  };

  gint64 leases[N_SESSIONS];

  observer (f, orders[0]);
  start_reaper (f, orders[1]);
  spawn_hosts (f, orders);
  assert_stays_registered (f, -1, 1.0);
  for (guint i = 0; i < N_SESSIONS; i++)
    leases[i] = session_lease (f, live_session (f, i));

  if (pause)
    {
      for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
        etcd_server_signal (&cluster.members[i], SIGSTOP);
      assert_outage_harmless (f, 2.0 * TTL);
      for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
        etcd_server_signal (&cluster.members[i], SIGCONT);
    }
  else
    {
      etcd_cluster_stop (&cluster, SIGTERM);
      assert_outage_harmless (f, 2.0 * TTL);
      etcd_cluster_start (&cluster);
    }
  assert_back_after_outage (f, leases, 2.0 * TTL);

  /* The observer's own lease may have lapsed as well: what it saw
   * meanwhile is no longer of interest. */
  g_ptr_array_set_size (f->stale, 0);

  assert_reaped_only_when_dead (f, pause ? 2 : 0);
}

static void
test_skip (gconstpointer data)
{
  g_test_skip (data);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *dbus_daemon = NULL;
  int              ret;

  g_test_init (&argc, &argv, NULL);
  g_setenv ("GSM_DURABLE", "0", TRUE);

  if (!etcd_available ())
    {
      g_test_add_data_func ("/etcd/cluster/skipped",
                            "etcd is not installed (Debian package etcd-server)", test_skip);
      return g_test_run ();
    }
  /* gsmd serves on a bus: a private one (GTestDBus) for the program. */
  dbus_daemon = g_find_program_in_path ("dbus-daemon");
  if (dbus_daemon == NULL)
    {
      g_test_add_data_func ("/etcd/cluster/skipped",
                            "dbus-daemon is not installed (Debian package dbus-daemon)", test_skip);
      return g_test_run ();
    }

  bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (bus);
  etcd_cluster_start (&cluster);

  g_test_add ("/etcd/cluster/follower-stopped", Fixture, NULL, fixture_set_up,
              test_member_stopped, fixture_tear_down);
  g_test_add ("/etcd/cluster/leader-stopped", Fixture, "leader", fixture_set_up,
              test_member_stopped, fixture_tear_down);
  g_test_add ("/etcd/cluster/leader-killed", Fixture, NULL, fixture_set_up,
              test_leader_killed, fixture_tear_down);
  g_test_add ("/etcd/cluster/restart", Fixture, NULL, fixture_set_up,
              test_cluster_stopped, fixture_tear_down);
  g_test_add ("/etcd/cluster/paused", Fixture, "pause", fixture_set_up,
              test_cluster_stopped, fixture_tear_down);

  ret = g_test_run ();

  etcd_cluster_destroy (&cluster);
  g_test_dbus_down (bus);
  g_object_unref (bus);
  return ret;
}
