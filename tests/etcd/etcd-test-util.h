/* etcd-test-util.h: a throwaway etcd, worker processes, a cuttable proxy
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
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
  guint id = g_timeout_add ((guint) (seconds * 1000), timeout_flag_cb, &timed_out);

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
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
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
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

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
  char        *endpoint;     /* http://127.0.0.1:PORT */
  GSubprocess *process;
  gboolean     exited;
} EtcdServer;

static void
etcd_exited_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
  g_object_unref (source);
}

/* A blocking POST to etcd's JSON gateway; the body of the reply. */
static inline char *
etcd_post (EtcdServer *server,
           const char *path,
           const char *body)
{
  g_autoptr(SoupSession) session = soup_session_new_with_options ("timeout", 5, NULL);
  g_autofree char *url = g_strconcat (server->endpoint, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr(GBytes) request = g_bytes_new (body, strlen (body));
  g_autoptr(GBytes) reply = NULL;

  soup_message_set_request_body_from_bytes (msg, "application/json", request);
  reply = soup_session_send_and_read (session, msg, NULL, NULL);
  if (reply == NULL || soup_message_get_status (msg) != SOUP_STATUS_OK)
    return NULL;
  return g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
}

static inline void
etcd_server_start (EtcdServer *server)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *data_dir = NULL, *log = NULL;
  g_autofree char *client = NULL, *peer = NULL, *cluster = NULL;
  g_autofree char *etcd = g_find_program_in_path ("etcd");
  gint64 deadline;

  if (etcd == NULL)
    g_error ("etcd is not installed (Debian package etcd-server)");

  if (server->dir == NULL)
    {
      server->dir = g_dir_make_tmp ("gsm-etcd-XXXXXX", &error);
      g_assert_no_error (error);
      server->client_port = free_port ();
      do
        server->peer_port = free_port ();
      while (server->peer_port == server->client_port);
      server->endpoint = g_strdup_printf ("http://127.0.0.1:%u", server->client_port);
    }

  data_dir = g_build_filename (server->dir, "data", NULL);
  log = g_build_filename (server->dir, "etcd.log", NULL);
  client = g_strdup_printf ("http://127.0.0.1:%u", server->client_port);
  peer = g_strdup_printf ("http://127.0.0.1:%u", server->peer_port);
  cluster = g_strdup_printf ("default=%s", peer);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_stderr_file_path (launcher, log);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  server->process = g_subprocess_launcher_spawn (launcher, &error, etcd,
                                                 "--name", "default",
                                                 "--data-dir", data_dir,
                                                 "--listen-client-urls", client,
                                                 "--advertise-client-urls", client,
                                                 "--listen-peer-urls", peer,
                                                 "--initial-advertise-peer-urls", peer,
                                                 "--initial-cluster", cluster,
                                                 NULL);
  g_assert_no_error (error);
  server->exited = FALSE;
  g_subprocess_wait_async (g_object_ref (server->process), NULL, etcd_exited_cb, &server->exited);

  /* Ready once it answers a read. */
  deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *reply = etcd_post (server, "/v3/kv/range", "{\"key\": \"AA==\"}");

      if (reply != NULL && strstr (reply, "\"header\"") != NULL)
        break;
      if (server->exited || g_get_monotonic_time () > deadline)
        g_error ("etcd did not start on %s (log: %s)", server->endpoint, log);
      sleep_in_loop (0.05);
    }
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
}

static inline char *
b64 (const char *text)
{
  return g_base64_encode ((const guchar *) text, strlen (text));
}

/* How many keys below @prefix. */
static inline int
etcd_count_keys (EtcdServer *server,
                 const char *prefix)
{
  g_autofree char *key = b64 (prefix);
  g_autofree char *end_text = g_strdup (prefix);
  g_autofree char *end = NULL;
  g_autofree char *body = NULL;
  g_autofree char *reply = NULL;
  const char *count;

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
  const char *rev;

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
  char     *line;
  gboolean  done;
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
  char *line;

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
      char *line;

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
worker_spawn (const char * const *env,
              const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *identifier;
  Worker *w = g_new0 (Worker, 1);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  for (guint i = 0; env != NULL && env[i] != NULL; i++)
    {
      g_auto(GStrv) kv = g_strsplit (env[i], "=", 2);

      /* NAME alone: unset. */
      if (kv[1] == NULL)
        g_subprocess_launcher_unsetenv (launcher, kv[0]);
      else
        g_subprocess_launcher_setenv (launcher, kv[0], kv[1], TRUE);
    }

  g_ptr_array_add (argv, (gpointer) g_getenv ("GSM_TEST_WORKER"));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  g_assert_nonnull (argv->pdata[0]);
  w->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
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
  g_auto(GStrv) parts = NULL;

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
worker_run (const char * const *env,
            const char * const *args,
            int                *exit_status)
{
  Worker *w = worker_spawn (env, args);
  g_autoptr(GString) out = g_string_new (NULL);
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
  gint            port;         /* set by the proxy thread */
  guint16         target_port;
  GMutex          mutex;
  gboolean        refusing;     /* close new connections at once */
  GCancellable   *cancellable;  /* of the connections now open */
  guint           n_accepted;
  guint           n_pending;    /* connects and splices under way (proxy thread) */
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
  g_autoptr(GSocketConnection) upstream = NULL;
  g_autoptr(GCancellable) cancellable = NULL;

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
  g_autoptr(GSocketClient) client = NULL;
  ProxyConn *pc;
  gboolean refusing;

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
  g_autoptr(GError) error = NULL;
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
proxy_cut (Proxy    *proxy,
           gboolean  refuse)
{
  g_mutex_lock (&proxy->mutex);
  proxy->refusing = refuse;
  g_cancellable_cancel (proxy->cancellable);
  g_object_unref (proxy->cancellable);
  proxy->cancellable = g_cancellable_new ();
  g_mutex_unlock (&proxy->mutex);
}

static inline void
proxy_set_refusing (Proxy    *proxy,
                    gboolean  refuse)
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
