/* etcd-test-util.h: throwaway etcd servers and clusters, worker processes,
 * a cuttable proxy
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

/* ---- waiting ----------------------------------------------------------- */

static gboolean
timeout_flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the default main context until *@flag or @seconds passed. */
static inline gboolean
wait_for_flag (gboolean *flag,
               double    seconds)
{
  gboolean timed_out = FALSE;
  guint    id = g_timeout_add ((guint) (seconds * 1000), timeout_flag_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return *flag;
}

static inline void
sleep_in_loop (double seconds)
{
  gboolean never = FALSE;

  wait_for_flag (&never, seconds);
}

static inline void
rm_rf (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);

        rm_rf (child);
      }
  g_remove (path);
}

static inline guint16
free_port (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, FALSE, &error));
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

/* Children die with the test, even if it aborts. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* ---- etcd -------------------------------------------------------------- */

typedef struct
{
  char        *dir;
  guint16      client_port;
  guint16      peer_port;
  char        *endpoint; /* http(s)://127.0.0.1:PORT */
  GSubprocess *process;
  gboolean     exited;
  /* Set before the first start, or left NULL: */
  char    *name;       /* of the member; "default" */
  char    *cluster;    /* --initial-cluster; this member alone */
  char   **extra_args; /* more arguments, such as TLS files */
  gboolean tls;        /* https:// for clients */
  /* How the helpers below reach it with TLS: */
  char *ca_file;
  char *cert_file;
  char *key_file;
} EtcdServer;

static inline gboolean
etcd_available (void)
{
  g_autofree char *etcd = g_find_program_in_path ("etcd");

  return etcd != NULL;
}

static void
etcd_exited_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
  g_object_unref (source);
}

/* A blocking POST to etcd's JSON gateway; the body of the reply, whatever
 * its status (in *@status if not NULL), or NULL if there is none. */
static inline char *
etcd_post_full (EtcdServer *server,
                const char *path,
                const char *body,
                guint      *status)
{
  g_autoptr (SoupSession) session = soup_session_new_with_options ("timeout", 5, NULL);
  g_autofree char *url = g_strconcat (server->endpoint, path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr (GBytes) request = g_bytes_new (body, strlen (body));
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (GTlsCertificate) certificate = NULL;

  if (server->ca_file != NULL)
    {
      g_autoptr (GTlsDatabase) database = g_tls_file_database_new (server->ca_file, NULL);

      g_assert_nonnull (database);
      soup_session_set_tls_database (session, database);
    }
  if (server->cert_file != NULL)
    {
      certificate = g_tls_certificate_new_from_files (server->cert_file, server->key_file, NULL);
      g_assert_nonnull (certificate);
      soup_message_set_tls_client_certificate (msg, certificate);
    }

  soup_message_set_request_body_from_bytes (msg, "application/json", request);
  reply = soup_session_send_and_read (session, msg, NULL, NULL);
  if (status != NULL)
    *status = soup_message_get_status (msg);
  if (reply == NULL)
    return NULL;
  return g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
}

/* The same, NULL unless the status is 200. */
static inline char *
etcd_post (EtcdServer *server,
           const char *path,
           const char *body)
{
  guint            status = 0;
  g_autofree char *reply = etcd_post_full (server, path, body, &status);

  return status == SOUP_STATUS_OK ? g_steal_pointer (&reply) : NULL;
}

/* Chooses the directory and ports, once. */
static inline void
etcd_server_prepare (EtcdServer *server,
                     const char *parent)
{
  g_autoptr (GError) error = NULL;

  if (server->dir != NULL)
    return;

  if (parent == NULL)
    {
      server->dir = g_dir_make_tmp ("gsm-etcd-XXXXXX", &error);
      g_assert_no_error (error);
    }
  else
    {
      server->dir = g_build_filename (parent, server->name, NULL);
      g_assert_cmpint (g_mkdir_with_parents (server->dir, 0700), ==, 0);
    }
  server->client_port = free_port ();
  do
    server->peer_port = free_port ();
  while (server->peer_port == server->client_port);
  server->endpoint = g_strdup_printf ("%s://127.0.0.1:%u", server->tls ? "https" : "http",
                                      server->client_port);
}

static inline char *
etcd_server_peer_url (EtcdServer *server)
{
  return g_strdup_printf ("http://127.0.0.1:%u", server->peer_port);
}

/* Starts the process, without waiting for it to serve. */
static inline void
etcd_server_spawn (EtcdServer *server)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autofree char *data_dir = NULL, *log = NULL;
  g_autofree char *client = NULL, *peer = NULL;
  g_autofree char *etcd = g_find_program_in_path ("etcd");
  const char      *name = server->name ? server->name : "default";

  if (etcd == NULL)
    g_error ("etcd is not installed (Debian package etcd-server)");

  etcd_server_prepare (server, NULL);
  data_dir = g_build_filename (server->dir, "data", NULL);
  log = g_build_filename (server->dir, "etcd.log", NULL);
  client = g_strdup (server->endpoint);
  peer = etcd_server_peer_url (server);

  g_ptr_array_add (argv, g_strdup (etcd));
  g_ptr_array_add (argv, g_strdup ("--name"));
  g_ptr_array_add (argv, g_strdup (name));
  g_ptr_array_add (argv, g_strdup ("--data-dir"));
  g_ptr_array_add (argv, g_strdup (data_dir));
  g_ptr_array_add (argv, g_strdup ("--listen-client-urls"));
  g_ptr_array_add (argv, g_strdup (client));
  g_ptr_array_add (argv, g_strdup ("--advertise-client-urls"));
  g_ptr_array_add (argv, g_strdup (client));
  g_ptr_array_add (argv, g_strdup ("--listen-peer-urls"));
  g_ptr_array_add (argv, g_strdup (peer));
  g_ptr_array_add (argv, g_strdup ("--initial-advertise-peer-urls"));
  g_ptr_array_add (argv, g_strdup (peer));
  g_ptr_array_add (argv, g_strdup ("--initial-cluster"));
  g_ptr_array_add (argv, server->cluster ? g_strdup (server->cluster)
                                         : g_strdup_printf ("%s=%s", name, peer));
  g_ptr_array_add (argv, g_strdup ("--initial-cluster-state"));
  g_ptr_array_add (argv, g_strdup ("new"));
  for (guint i = 0; server->extra_args != NULL && server->extra_args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (server->extra_args[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  server->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  server->exited = FALSE;
  g_subprocess_wait_async (g_object_ref (server->process), NULL, etcd_exited_cb, &server->exited);
}

/* Ready once it answers a read (or refuses it for want of a token). */
static inline void
etcd_server_wait_ready (EtcdServer *server)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *reply = etcd_post_full (server, "/v3/kv/range", "{\"key\": \"AA==\"}", NULL);

      if (reply != NULL && (strstr (reply, "\"header\"") != NULL ||
                            strstr (reply, "user name is empty") != NULL))
        break;
      if (server->exited || g_get_monotonic_time () > deadline)
        g_error ("etcd did not start on %s (log: %s/etcd.log)", server->endpoint, server->dir);
      sleep_in_loop (0.05);
    }
}

static inline void
etcd_server_start (EtcdServer *server)
{
  etcd_server_spawn (server);
  etcd_server_wait_ready (server);
}

static inline void
etcd_server_stop (EtcdServer *server,
                  int         signum)
{
  if (server->process == NULL)
    return;
  g_subprocess_send_signal (server->process, signum);
  if (!wait_for_flag (&server->exited, 15))
    {
      g_subprocess_force_exit (server->process);
      wait_for_flag (&server->exited, 15);
    }
  g_clear_object (&server->process);
}

static inline void
etcd_server_destroy (EtcdServer *server)
{
  etcd_server_stop (server, SIGTERM);
  if (server->dir != NULL)
    rm_rf (server->dir);
  g_clear_pointer (&server->dir, g_free);
  g_clear_pointer (&server->endpoint, g_free);
  g_clear_pointer (&server->name, g_free);
  g_clear_pointer (&server->cluster, g_free);
  g_clear_pointer (&server->extra_args, g_strfreev);
  g_clear_pointer (&server->ca_file, g_free);
  g_clear_pointer (&server->cert_file, g_free);
  g_clear_pointer (&server->key_file, g_free);
}

/* Pauses (SIGSTOP) or resumes (SIGCONT) the member: it keeps its
 * connections and accepts new ones, and answers nothing meanwhile. */
static inline void
etcd_server_signal (EtcdServer *server,
                    int         signum)
{
  g_assert_nonnull (server->process);
  g_subprocess_send_signal (server->process, signum);
}

/* ---- a cluster of three on loopback ------------------------------------ */

#define ETCD_CLUSTER_SIZE 3

typedef struct
{
  char      *dir;
  EtcdServer members[ETCD_CLUSTER_SIZE];
} EtcdCluster;

/* Starts m1, m2 and m3, and waits until all serve. */
static inline void
etcd_cluster_start (EtcdCluster *cluster)
{
  g_autoptr (GString) initial = g_string_new (NULL);
  g_autoptr (GError) error = NULL;

  if (cluster->dir == NULL)
    {
      cluster->dir = g_dir_make_tmp ("gsm-etcd-cluster-XXXXXX", &error);
      g_assert_no_error (error);
      for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
        {
          EtcdServer      *m = &cluster->members[i];
          g_autofree char *peer = NULL;

          m->name = g_strdup_printf ("m%u", i + 1);
          etcd_server_prepare (m, cluster->dir);
          peer = etcd_server_peer_url (m);
          g_string_append_printf (initial, "%s%s=%s", i > 0 ? "," : "", m->name, peer);
        }
      for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
        cluster->members[i].cluster = g_strdup (initial->str);
    }

  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    etcd_server_spawn (&cluster->members[i]);
  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    etcd_server_wait_ready (&cluster->members[i]);
}

static inline void
etcd_cluster_stop (EtcdCluster *cluster,
                   int          signum)
{
  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      if (cluster->members[i].process != NULL)
        g_subprocess_send_signal (cluster->members[i].process, SIGCONT);
      etcd_server_stop (&cluster->members[i], signum);
    }
}

static inline void
etcd_cluster_destroy (EtcdCluster *cluster)
{
  etcd_cluster_stop (cluster, SIGTERM);
  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    {
      g_clear_pointer (&cluster->members[i].dir, g_free);
      etcd_server_destroy (&cluster->members[i]);
    }
  if (cluster->dir != NULL)
    rm_rf (cluster->dir);
  g_clear_pointer (&cluster->dir, g_free);
}

/* Kills member @i with SIGKILL; etcd_cluster_restart_member() brings it
 * back with its data. */
static inline void
etcd_cluster_kill_member (EtcdCluster *cluster,
                          guint        i)
{
  etcd_server_stop (&cluster->members[i], SIGKILL);
}

static inline void
etcd_cluster_restart_member (EtcdCluster *cluster,
                             guint        i)
{
  etcd_server_start (&cluster->members[i]);
}

/* "member_id" and "leader" of /v3/maintenance/status, or FALSE if the
 * member does not answer. */
static inline gboolean
etcd_member_status (EtcdServer *member,
                    char      **member_id,
                    char      **leader)
{
  g_autofree char *reply = NULL;
  const char      *p;

  if (member->process == NULL)
    return FALSE;
  reply = etcd_post (member, "/v3/maintenance/status", "{}");
  if (reply == NULL)
    return FALSE;

  p = strstr (reply, "\"member_id\":\"");
  if (p == NULL)
    return FALSE;
  p += strlen ("\"member_id\":\"");
  *member_id = g_strndup (p, strcspn (p, "\""));
  p = strstr (reply, "\"leader\":\"");
  *leader = p ? g_strndup (p + strlen ("\"leader\":\""), strcspn (p + strlen ("\"leader\":\""), "\""))
              : g_strdup ("0");
  return TRUE;
}

/* The index of the leader, waiting up to 20 s for one to be elected. */
static inline guint
etcd_cluster_find_leader (EtcdCluster *cluster)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  for (;;)
    {
      for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
        {
          g_autofree char *member_id = NULL, *leader = NULL;

          if (etcd_member_status (&cluster->members[i], &member_id, &leader) &&
              g_str_equal (member_id, leader))
            return i;
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("The etcd cluster in %s has no leader", cluster->dir);
      sleep_in_loop (0.1);
    }
}

/* etcd://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3@prefix, the members in the
 * order of @order (indexes, ETCD_CLUSTER_SIZE of them). */
static inline char *
etcd_cluster_uri (EtcdCluster *cluster,
                  const guint *order,
                  const char  *prefix)
{
  GString *uri = g_string_new ("etcd://");

  for (guint i = 0; i < ETCD_CLUSTER_SIZE; i++)
    g_string_append_printf (uri, "%s127.0.0.1:%u", i > 0 ? "," : "",
                            cluster->members[order[i]].client_port);
  g_string_append (uri, prefix);
  return g_string_free (uri, FALSE);
}

static inline char *
b64 (const char *text)
{
  return g_base64_encode ((const guchar *) text, strlen (text));
}

/* How many keys below @prefix (or starting with it, if it does not end
 * with a slash). */
static inline int
etcd_count_keys (EtcdServer *server,
                 const char *prefix)
{
  g_autofree char *key = b64 (prefix);
  g_autofree char *end_text = g_strdup (prefix);
  g_autofree char *end = NULL;
  g_autofree char *body = NULL;
  g_autofree char *reply = NULL;
  const char      *count;

  end_text[strlen (end_text) - 1]++;
  end = b64 (end_text);
  body = g_strdup_printf ("{\"key\": \"%s\", \"range_end\": \"%s\", \"count_only\": true}", key, end);
  reply = etcd_post (server, "/v3/kv/range", body);
  g_assert_nonnull (reply);
  count = strstr (reply, "\"count\":\"");
  return count ? atoi (count + strlen ("\"count\":\"")) : 0;
}

static inline gint64
etcd_revision (EtcdServer *server)
{
  g_autofree char *reply = etcd_post (server, "/v3/kv/range", "{\"key\": \"AA==\"}");
  const char      *rev;

  g_assert_nonnull (reply);
  rev = strstr (reply, "\"revision\":\"");
  g_assert_nonnull (rev);
  return g_ascii_strtoll (rev + strlen ("\"revision\":\""), NULL, 10);
}

/* ---- worker processes -------------------------------------------------- */

typedef struct
{
  GSubprocess      *process;
  GDataInputStream *out;
  GOutputStream    *in;
  char             *session_id;
  int               pid;
} Worker;

typedef struct
{
  char    *line;
  gboolean done;
} LineWait;

static void
line_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  LineWait *lw = user_data;

  lw->line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result, NULL, NULL);
  lw->done = TRUE;
}

/* The next line the worker prints, or NULL after @seconds or at its end.
 * The default main context runs meanwhile. */
static inline char *
worker_read_line (Worker *w,
                  double  seconds)
{
  LineWait *lw = g_new0 (LineWait, 1);
  char     *line;

  g_data_input_stream_read_line_async (w->out, G_PRIORITY_DEFAULT, NULL, line_read_cb, lw);
  if (!wait_for_flag (&lw->done, seconds))
    g_error ("worker %d printed nothing within %.0f s", w->pid, seconds);
  line = lw->line;
  g_free (lw);
  return line;
}

/* Reads lines until one starts with @prefix. */
static inline char *
worker_expect (Worker     *w,
               const char *prefix,
               double      seconds)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  for (;;)
    {
      double left = (deadline - g_get_monotonic_time ()) / (double) G_USEC_PER_SEC;
      char  *line;

      if (left <= 0)
        g_error ("worker %d did not print “%s…” within %.0f s", w->pid, prefix, seconds);
      line = worker_read_line (w, left);
      if (line == NULL)
        g_error ("worker %d ended before printing “%s…”", w->pid, prefix);
      if (g_str_has_prefix (line, prefix))
        return line;
      g_free (line);
    }
}

/* Starts gsm-test-worker with @args; its environment is ours plus @env
 * (NAME=VALUE strings, or NAME to unset it; NULL-terminated). */
static inline Worker *
worker_spawn (const char *const *env,
              const char *const *args)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  const char *identifier;
  Worker     *w = g_new0 (Worker, 1);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (env[i], "=", 2);

      /* NAME alone: unset. */
      if (kv[1] == NULL)
        g_subprocess_launcher_unsetenv (launcher, kv[0]);
      else
        g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }

  /* Under AddressSanitizer, workers unwind the stack of every allocation
   * the fast way: the slow way (which the sanitize setup asks for, to
   * match leak suppressions) makes a TLS handshake take half a minute.
   * Their library code is the test process's own, checked there. */
  if (g_getenv ("ASAN_OPTIONS") != NULL)
    {
      g_autofree char *options = g_strconcat (g_getenv ("ASAN_OPTIONS"),
                                              ":fast_unwind_on_malloc=1:detect_leaks=0", NULL);

      g_subprocess_launcher_setenv (launcher, "ASAN_OPTIONS", options, TRUE);
    }

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSM_TEST_WORKER"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  g_assert_nonnull (argv->pdata[0]);
  w->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  w->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (w->process));
  w->in = g_object_ref (g_subprocess_get_stdin_pipe (w->process));
  /* NULL once the child has exited and been reaped, which a worker that
   * fails at once can do before this line (seen under valgrind). */
  identifier = g_subprocess_get_identifier (w->process);
  w->pid = identifier != NULL ? atoi (identifier) : 0;

  return w;
}

/* For a worker started with register or watch: waits for READY. */
static inline void
worker_wait_ready (Worker *w,
                   double  seconds)
{
  g_autofree char *line = worker_read_line (w, seconds);
  g_auto (GStrv) parts = NULL;

  if (line == NULL || !g_str_has_prefix (line, "READY "))
    g_error ("worker %d: expected READY, got “%s”", w->pid, line ? line : "(end)");
  parts = g_strsplit (line, " ", 3);
  w->session_id = g_strdup (parts[1]);
}

static inline void
worker_signal (Worker *w,
               int     signum)
{
  /* Never kill (0, …): that is the whole process group. */
  if (w->pid > 0)
    kill (w->pid, signum);
}

static inline void
worker_free (Worker *w)
{
  if (w == NULL)
    return;
  g_subprocess_send_signal (w->process, SIGCONT);
  g_subprocess_force_exit (w->process);
  g_subprocess_wait (w->process, NULL, NULL);
  g_clear_object (&w->out);
  g_clear_object (&w->in);
  g_clear_object (&w->process);
  g_free (w->session_id);
  g_free (w);
}

/* Runs a worker to its end; its whole output. */
static inline char *
worker_run (const char *const *env,
            const char *const *args,
            int               *exit_status)
{
  Worker *w = worker_spawn (env, args);
  g_autoptr (GString) out = g_string_new (NULL);
  char *line;

  g_output_stream_close (w->in, NULL, NULL);
  while ((line = worker_read_line (w, 30)) != NULL)
    {
      g_string_append (out, line);
      g_string_append_c (out, '\n');
      g_free (line);
    }
  g_subprocess_wait (w->process, NULL, NULL);
  if (exit_status != NULL)
    *exit_status = g_subprocess_get_if_exited (w->process) ? g_subprocess_get_exit_status (w->process) : -1;
  worker_free (w);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Worker, worker_free)

/* ---- a TCP proxy that can cut its connections -------------------------- */

typedef struct
{
  GThread        *thread;
  GMainContext   *context;
  GMainLoop      *loop;
  GSocketService *service;
  gint            port; /* set by the proxy thread */
  guint16         target_port;
  GMutex          mutex;
  gboolean        refusing;    /* close new connections at once */
  GCancellable   *cancellable; /* of the connections now open */
  guint           n_accepted;
  guint           n_pending; /* connects and splices under way (proxy thread) */
} Proxy;

typedef struct
{
  Proxy             *proxy;
  GSocketConnection *downstream;
} ProxyConn;

static void
proxy_splice_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Proxy *proxy = user_data;

  g_io_stream_splice_finish (result, NULL);
  proxy->n_pending--;
}

static void
proxy_connected_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  ProxyConn *pc = user_data;
  g_autoptr (GSocketConnection) upstream = NULL;
  g_autoptr (GCancellable) cancellable = NULL;

  upstream = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, NULL);
  pc->proxy->n_pending--;
  g_mutex_lock (&pc->proxy->mutex);
  cancellable = g_object_ref (pc->proxy->cancellable);
  g_mutex_unlock (&pc->proxy->mutex);

  if (upstream != NULL && !g_cancellable_is_cancelled (cancellable))
    {
      pc->proxy->n_pending++;
      g_io_stream_splice_async (G_IO_STREAM (pc->downstream), G_IO_STREAM (upstream),
                                G_IO_STREAM_SPLICE_CLOSE_STREAM1 | G_IO_STREAM_SPLICE_CLOSE_STREAM2,
                                G_PRIORITY_DEFAULT, cancellable, proxy_splice_cb, pc->proxy);
    }
  else
    g_io_stream_close (G_IO_STREAM (pc->downstream), NULL, NULL);

  g_object_unref (pc->downstream);
  g_free (pc);
}

static gboolean
proxy_incoming_cb (GSocketService    *service,
                   GSocketConnection *connection,
                   GObject           *source_object,
                   gpointer           user_data)
{
  Proxy *proxy = user_data;
  g_autoptr (GSocketClient) client = NULL;
  ProxyConn *pc;
  gboolean   refusing;

  g_mutex_lock (&proxy->mutex);
  refusing = proxy->refusing;
  proxy->n_accepted++;
  g_mutex_unlock (&proxy->mutex);

  if (refusing)
    {
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return TRUE;
    }

  pc = g_new0 (ProxyConn, 1);
  pc->proxy = proxy;
  pc->downstream = g_object_ref (connection);
  client = g_socket_client_new ();
  proxy->n_pending++;
  g_socket_client_connect_to_host_async (client, "127.0.0.1", proxy->target_port, NULL,
                                         proxy_connected_cb, pc);
  return TRUE;
}

static gpointer
proxy_thread (gpointer data)
{
  Proxy *proxy = data;

  g_main_context_push_thread_default (proxy->context);
  g_main_loop_run (proxy->loop);
  g_main_context_pop_thread_default (proxy->context);
  return NULL;
}

static gboolean
proxy_start_cb (gpointer data)
{
  Proxy *proxy = data;
  g_autoptr (GError) error = NULL;
  guint16 port;

  proxy->service = g_socket_service_new ();
  port = g_socket_listener_add_any_inet_port (G_SOCKET_LISTENER (proxy->service), NULL, &error);
  g_assert_no_error (error);
  g_atomic_int_set (&proxy->port, port);
  g_signal_connect (proxy->service, "incoming", G_CALLBACK (proxy_incoming_cb), proxy);
  g_socket_service_start (proxy->service);
  return G_SOURCE_REMOVE;
}

static inline Proxy *
proxy_new (guint16 target_port)
{
  Proxy *proxy = g_new0 (Proxy, 1);

  g_mutex_init (&proxy->mutex);
  proxy->target_port = target_port;
  proxy->cancellable = g_cancellable_new ();
  proxy->context = g_main_context_new ();
  proxy->loop = g_main_loop_new (proxy->context, FALSE);
  proxy->thread = g_thread_new ("proxy", proxy_thread, proxy);
  g_main_context_invoke (proxy->context, proxy_start_cb, proxy);
  while (g_atomic_int_get (&proxy->port) == 0)
    g_usleep (1000);
  return proxy;
}

/* Closes every open connection; with @refuse, new ones are closed at once
 * until proxy_set_refusing (proxy, FALSE). */
static inline void
proxy_cut (Proxy   *proxy,
           gboolean refuse)
{
  g_mutex_lock (&proxy->mutex);
  proxy->refusing = refuse;
  g_cancellable_cancel (proxy->cancellable);
  g_object_unref (proxy->cancellable);
  proxy->cancellable = g_cancellable_new ();
  g_mutex_unlock (&proxy->mutex);
}

static inline void
proxy_set_refusing (Proxy   *proxy,
                    gboolean refuse)
{
  g_mutex_lock (&proxy->mutex);
  proxy->refusing = refuse;
  g_mutex_unlock (&proxy->mutex);
}

static gboolean
proxy_stop_cb (gpointer data)
{
  Proxy *proxy = data;

  g_socket_service_stop (proxy->service);
  g_socket_listener_close (G_SOCKET_LISTENER (proxy->service));
  g_main_loop_quit (proxy->loop);
  return G_SOURCE_REMOVE;
}

static inline void
proxy_free (Proxy *proxy)
{
  proxy_cut (proxy, TRUE);
  g_main_context_invoke (proxy->context, proxy_stop_cb, proxy);
  g_thread_join (proxy->thread);
  /* Let the cancelled connects and splices finish. */
  while (proxy->n_pending > 0)
    g_main_context_iteration (proxy->context, TRUE);
  g_clear_object (&proxy->service);
  g_main_loop_unref (proxy->loop);
  g_main_context_unref (proxy->context);
  g_object_unref (proxy->cancellable);
  g_mutex_clear (&proxy->mutex);
  g_free (proxy);
}
