/* test-etcd-cluster.c: the etcd registry against a three-member cluster
 *
 * One cluster (m1, m2, m3 on 127.0.0.1, ports chosen at run time) for the
 * whole program; each test uses its own key prefix. A session is a
 * gsm-test-worker process registering a VM with the three endpoints,
 * the member a test stops or kills first in its list. Throughout, the
 * test checks on the members still up that the session's key and its
 * VM's key are there, and its own manager (a watching observer) must
 * never see the session stale; at the end, the reaper with the fake
 * provider must leave the VM alone. Killing the worker then shows that
 * the observer and the reaper do notice a dead session.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm-session.h>

#include "etcd-test-util.h"
#include "gsm-session-manager-private.h"

/* Short, for a short test, but long enough that an election on a loaded
 * machine (the suites run two at a time, under valgrind too) fits in it. */
#define TTL 5
#define STALE_BOUND 20.0
#define READY_BOUND 30.0

static EtcdCluster cluster;
static guint test_counter;

typedef struct
{
  char      *runtime;
  char      *cloud;         /* FAKE_CLOUD_DIR */
  char      *vms;           /* its running VMs, one file each */
  char      *prefix;
  GPtrArray *added;
  GPtrArray *stale;
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
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
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
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
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
  rm_rf (f->runtime);
  g_free (f->runtime);
  g_free (f->cloud);
  g_free (f->vms);
  g_free (f->prefix);
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
}

/* The manager of this process, on the cluster with the members in
 * @order, watching. */
static GsmSessionManager *
observer (Fixture     *f,
          const guint *order)
{
  g_autofree char *uri = etcd_cluster_uri (&cluster, order, f->prefix);
  GsmSessionManager *manager;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) sessions = NULL;

  g_setenv ("GSM_REGISTRY", uri, TRUE);
  manager = gsm_session_manager_get_default ();
  g_signal_connect (manager, "session-added", G_CALLBACK (added_cb), f);
  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), f);
  sessions = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  sleep_in_loop (0.1);
  return manager;
}

/* A worker registering @vm_id on the cluster with the members in @order. */
static Worker *
spawn_session (Fixture     *f,
               const guint *order,
               const char  *hostname,
               const char  *vm_id)
{
  g_autofree char *uri = etcd_cluster_uri (&cluster, order, f->prefix);
  g_autofree char *registry = g_strdup_printf ("GSM_REGISTRY=%s", uri);
  g_autofree char *host = g_strdup_printf ("GSM_HOSTNAME=%s", hostname);
  g_autofree char *cloud_vm = g_build_filename (f->vms, vm_id, NULL);
  const char *env[] = { registry, host, NULL };
  const char *args[] = { "register", vm_id, "zone-a", NULL };
  Worker *w;

  /* The VM "runs" in the fake cloud until the provider deletes it. */
  g_assert_true (g_file_set_contents (cloud_vm, "", 0, NULL));
  w = worker_spawn (env, args);
  worker_wait_ready (w, READY_BOUND);
  return w;
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
                          "\"serializable\": true}", key_b64, end_b64);

  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      g_autofree char *reply = NULL;
      const char *count;

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

/* For @seconds, twice a second: @w's session key and its VM's key are in
 * etcd, and the observer never saw @w stale. */
static void
assert_stays_registered (Fixture    *f,
                         Worker     *w,
                         const char *vm_id,
                         int         avoid,
                         double      seconds)
{
  g_autofree char *session_key = g_strdup_printf ("%s/sessions/%s", f->prefix, w->session_id);
  g_autofree char *vm_key = g_strdup_printf ("%s/vms/%s", f->prefix, vm_id);
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  guint checked = 0;

  while (g_get_monotonic_time () < end)
    {
      int sessions = count_keys (session_key, avoid);
      int vms = count_keys (vm_key, avoid);

      /* -1: no member answered this time (an election under way). */
      if (sessions >= 0)
        {
          g_assert_cmpint (sessions, ==, 1);
          checked++;
        }
      if (vms >= 0)
        g_assert_cmpint (vms, ==, 1);
      g_assert_false (contains (f->stale, w->session_id));
      sleep_in_loop (0.5);
    }
  g_assert_cmpuint (checked, >, 0);
}

/* The reaper, with the fake provider and no grace: deletes the VMs of
 * dead sessions only. */
static guint
reap (GsmSessionManager *manager)
{
  g_autofree char *command = g_strdup_printf ("/bin/sh %s delete {vm_id} {zone} {session_id}",
                                              g_test_get_filename (G_TEST_DIST, "reaper",
                                                                   "fake-provider.sh", NULL));
  g_auto(GStrv) argv = NULL;
  g_autoptr(GsmProvider) provider = NULL;
  g_autoptr(GsmReaper) reaper = NULL;
  g_autoptr(GError) error = NULL;
  guint reaped = 0, failed = 0;

  g_assert_true (g_shell_parse_argv (command, NULL, &argv, NULL));
  g_setenv ("GSM_REAP_GRACE", "0", TRUE);
  g_setenv ("GSM_REAP_BACKOFF", "0", TRUE);
  provider = gsm_provider_new ("fake", (const char * const *) argv, &error);
  g_assert_no_error (error);
  reaper = gsm_reaper_new (manager, provider);
  g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
  g_assert_no_error (error);
  g_unsetenv ("GSM_REAP_GRACE");
  g_unsetenv ("GSM_REAP_BACKOFF");
  g_assert_cmpuint (failed, ==, 0);
  return reaped;
}

static gboolean
vm_runs (Fixture    *f,
         const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->vms, vm_id, NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
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

/* The live session's VM survives the reaper; once the session is killed,
 * the observer sees it stale and the reaper deletes its VM. */
static void
assert_reaped_only_when_dead (Fixture           *f,
                              GsmSessionManager *manager,
                              Worker            *w,
                              const char        *vm_id)
{
  g_assert_cmpuint (reap (manager), ==, 0);
  g_assert_true (vm_runs (f, vm_id));

  worker_signal (w, SIGKILL);
  g_assert_true (wait_for_id (f->stale, w->session_id, STALE_BOUND));
  g_assert_cmpuint (reap (manager), ==, 1);
  g_assert_false (vm_runs (f, vm_id));
}

/* The member the session talks to (the leader with @data, else a
 * follower) is paused for twice the TTL: its lease is renewed through the
 * others, and the observer's watch (on the same member) moves on and
 * still reports new sessions. */
static void
test_member_stopped (Fixture       *f,
                     gconstpointer  data)
{
  guint leader = etcd_cluster_find_leader (&cluster);
  guint stopped = data != NULL ? leader : (leader + 1) % ETCD_CLUSTER_SIZE;
  const guint order[] = { stopped, (stopped + 1) % ETCD_CLUSTER_SIZE,
                          (stopped + 2) % ETCD_CLUSTER_SIZE };
  const guint other_first[] = { order[1], order[2], order[0] };
  GsmSessionManager *manager = observer (f, order);
  g_autoptr(Worker) s = NULL;
  g_autoptr(Worker) x = NULL;

  s = spawn_session (f, order, "host-s", "vm-s");
  assert_stays_registered (f, s, "vm-s", -1, 1.0);

  etcd_server_signal (&cluster.members[stopped], SIGSTOP);
  assert_stays_registered (f, s, "vm-s", (int) stopped, 2.0 * TTL);

  /* Registered meanwhile, through another member: the observer hears of
   * it. */
  x = spawn_session (f, other_first, "host-x", "vm-x");
  g_assert_true (wait_for_id (f->added, x->session_id, 4.0 * TTL));
  assert_stays_registered (f, s, "vm-s", (int) stopped, 1.0);

  etcd_server_signal (&cluster.members[stopped], SIGCONT);
  assert_stays_registered (f, s, "vm-s", -1, 1.0);
  g_assert_false (contains (f->stale, x->session_id));

  assert_reaped_only_when_dead (f, manager, s, "vm-s");
  g_assert_true (vm_runs (f, "vm-x"));
}

/* The leader is killed, and comes back later: the session, which talks to
 * it first, keeps its lease through the others. */
static void
test_leader_killed (Fixture       *f,
                    gconstpointer  data)
{
  guint leader = etcd_cluster_find_leader (&cluster);
  const guint order[] = { leader, (leader + 1) % ETCD_CLUSTER_SIZE,
                          (leader + 2) % ETCD_CLUSTER_SIZE };
  const guint observer_order[] = { (leader + 1) % ETCD_CLUSTER_SIZE, leader,
                                   (leader + 2) % ETCD_CLUSTER_SIZE };
  GsmSessionManager *manager = observer (f, observer_order);
  g_autoptr(Worker) s = NULL;
  guint new_leader;

  s = spawn_session (f, order, "host-l", "vm-l");
  assert_stays_registered (f, s, "vm-l", -1, 1.0);

  etcd_cluster_kill_member (&cluster, leader);
  assert_stays_registered (f, s, "vm-l", (int) leader, 2.0 * TTL);
  new_leader = etcd_cluster_find_leader (&cluster);
  g_assert_cmpuint (new_leader, !=, leader);

  etcd_cluster_restart_member (&cluster, leader);
  assert_stays_registered (f, s, "vm-l", -1, 1.0);

  assert_reaped_only_when_dead (f, manager, s, "vm-l");
}

/* The whole cluster is stopped and started again (shorter than the TTL
 * plus etcd's lease renewal on restart): the session is still there. */
static void
test_cluster_restart (Fixture       *f,
                      gconstpointer  data)
{
  const guint order[] = { 2, 0, 1 };
  GsmSessionManager *manager = observer (f, order);
  g_autoptr(Worker) s = NULL;

  s = spawn_session (f, order, "host-r", "vm-r");
  etcd_cluster_stop (&cluster, SIGTERM);
  etcd_cluster_start (&cluster);
  assert_stays_registered (f, s, "vm-r", -1, 2.0 * TTL);

  assert_reaped_only_when_dead (f, manager, s, "vm-r");
}

static void
test_skip (void)
{
  g_test_skip ("etcd is not installed (Debian package etcd-server)");
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  g_setenv ("GSM_DURABLE", "0", TRUE);

  if (!etcd_available ())
    {
      g_test_add_func ("/etcd/cluster/skipped", test_skip);
      return g_test_run ();
    }

  etcd_cluster_start (&cluster);

  g_test_add ("/etcd/cluster/follower-stopped", Fixture, NULL, fixture_set_up,
              test_member_stopped, fixture_tear_down);
  g_test_add ("/etcd/cluster/leader-stopped", Fixture, "leader", fixture_set_up,
              test_member_stopped, fixture_tear_down);
  g_test_add ("/etcd/cluster/leader-killed", Fixture, NULL, fixture_set_up,
              test_leader_killed, fixture_tear_down);
  g_test_add ("/etcd/cluster/restart", Fixture, NULL, fixture_set_up,
              test_cluster_restart, fixture_tear_down);

  ret = g_test_run ();

  etcd_cluster_destroy (&cluster);
  return ret;
}
