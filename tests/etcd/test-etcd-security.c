/* test-etcd-security.c: the etcd registry over TLS, and with a user
 *
 * Two etcd servers for the whole program, on 127.0.0.1 with free ports:
 * one speaking only TLS and asking clients for a certificate
 * (--client-cert-auth), with a CA, server and client certificates that
 * openssl makes here; one with authentication enabled, where the user
 * "gsm" may only read and write below /gsm-test/. Sessions are
 * gsm-test-worker processes.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>

#include "etcd-test-util.h"
#include "gsm-error.h"
#include "gsm-session-manager-private.h"

#define TTL "3"
#define READY_BOUND 30.0
#define ROOT_PASSWORD "root-Pa55"
#define GSM_PASSWORD "gsm-Pa55 \"quoted\""
#define WRONG_PASSWORD "not-the-Pa55"

static char      *certs; /* the directory of the certificates */
static EtcdServer tls_server;
static EtcdServer auth_server;
static guint      test_counter;

typedef struct
{
  char      *runtime;
  char      *prefix;
  GPtrArray *env; /* NAME=VALUE for workers; NULL-terminated */
} Fixture;

static char *
cert_path (const char *name)
{
  return g_build_filename (certs, name, NULL);
}

static void
fixture_add_env (Fixture    *f,
                 const char *name,
                 const char *value)
{
  /* Before the terminating NULL. */
  g_ptr_array_insert (f->env, (gint) f->env->len - 1, g_strdup_printf ("%s=%s", name, value));
}

static void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->runtime = g_dir_make_tmp ("gsm-etcd-sec-run-XXXXXX", &error);
  g_assert_no_error (error);
  f->prefix = g_strdup_printf ("/gsm-test/t%u-%d", ++test_counter, getpid ());
  f->env = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (f->env, NULL);
  fixture_add_env (f, "GSM_RUNTIME_DIR", f->runtime);
  fixture_add_env (f, "GSM_LEASE_TTL", TTL);
  fixture_add_env (f, "GSM_ETCD_TIMEOUT", "5");
  fixture_add_env (f, "GSM_CONFIG_FILE", "/nonexistent/gsm-etcd-test.ini");
  fixture_add_env (f, "GSM_DURABLE", "0");
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  rm_rf (f->runtime);
  g_free (f->runtime);
  g_free (f->prefix);
  g_ptr_array_unref (f->env);
}

static const char *const *
fixture_env (Fixture *f)
{
  return (const char *const *) f->env->pdata;
}

static void
run_checked (const char *const *argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  int              status = -1;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                     &status, &error))
    g_error ("%s: %s", argv[0], error->message);
  if (!g_spawn_check_wait_status (status, &error))
    g_error ("%s %s failed: %s\n%s%s", argv[0], argv[1], error->message, out, err);
}

/* ---- certificates ------------------------------------------------------ */

static const char make_certs[] =
    "set -e\n"
    "cd \"$1\"\n"
    "key='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
    "openssl req -x509 $key -keyout ca.key -out ca.crt -days 2 -subj /CN=gsm-test-ca\n"
    "openssl req -x509 $key -keyout other-ca.key -out other-ca.crt -days 2 -subj /CN=gsm-other-ca\n"
    "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext\n"
    "openssl req $key -keyout server.key -out server.csr -subj /CN=127.0.0.1\n"
    "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
    "  -extfile server.ext -out server.crt\n"
    "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
    "openssl req $key -keyout client.key -out client.csr -subj /CN=gsm-client\n"
    "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
    "  -extfile client.ext -out client.crt\n"
    "cat client.crt client.key > client.pem\n";

static void
make_certificates (void)
{
  g_autoptr (GError) error = NULL;
  const char *argv[] = { "/bin/sh", "-c", make_certs, "sh", NULL, NULL };

  certs = g_dir_make_tmp ("gsm-etcd-certs-XXXXXX", &error);
  g_assert_no_error (error);
  argv[4] = certs;
  run_checked (argv);
}

/* ---- the servers ------------------------------------------------------- */

static void
start_tls_server (void)
{
  g_autofree char *server_crt = cert_path ("server.crt");
  g_autofree char *server_key = cert_path ("server.key");
  g_autofree char *ca_crt = cert_path ("ca.crt");
  const char      *args[] = { "--cert-file", server_crt, "--key-file", server_key,
                              "--trusted-ca-file", ca_crt, "--client-cert-auth", NULL };

  tls_server.tls = TRUE;
  tls_server.extra_args = g_strdupv ((char **) args);
  tls_server.ca_file = cert_path ("ca.crt");
  tls_server.cert_file = cert_path ("client.crt");
  tls_server.key_file = cert_path ("client.key");
  etcd_server_start (&tls_server);
}

static void
etcdctl (const char *user,
         ...)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *endpoints = g_strdup_printf ("--endpoints=%s", auth_server.endpoint);
  g_autofree char *user_arg = user ? g_strdup_printf ("--user=%s", user) : NULL;
  const char      *arg;
  va_list          ap;

  g_ptr_array_add (argv, "etcdctl");
  g_ptr_array_add (argv, endpoints);
  if (user_arg != NULL)
    g_ptr_array_add (argv, user_arg);
  va_start (ap, user);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  run_checked ((const char *const *) argv->pdata);
}

/* Authentication on; the user gsm may use /gsm-test/ only. */
static void
start_auth_server (void)
{
  g_setenv ("ETCDCTL_API", "3", TRUE);
  etcd_server_start (&auth_server);
  etcdctl (NULL, "user", "add", "root:" ROOT_PASSWORD, NULL);
  etcdctl (NULL, "role", "add", "gsm", NULL);
  etcdctl (NULL, "role", "grant-permission", "gsm", "--prefix=true", "readwrite", "/gsm-test/", NULL);
  etcdctl (NULL, "user", "add", "gsm:" GSM_PASSWORD, NULL);
  etcdctl (NULL, "user", "grant-role", "gsm", "gsm", NULL);
  etcdctl (NULL, "auth", "enable", NULL);
}

/* ---- helpers ----------------------------------------------------------- */

static char *
error_prefix (int code)
{
  return g_strdup_printf ("ERROR gsm-error-quark %d ", code);
}

/* Runs `list` with @f's environment: its output. */
static char *
list_sessions (Fixture *f)
{
  const char *args[] = { "list", NULL };
  int         status = -1;
  char       *out = worker_run (fixture_env (f), args, &status);

  g_test_message ("list: %s", out);
  g_assert_cmpint (status, ==, 0);
  return out;
}

/* ---- TLS --------------------------------------------------------------- */

static void
set_tls_registry (Fixture    *f,
                  const char *scheme)
{
  g_autofree char *uri = g_strdup_printf ("%s://127.0.0.1:%u%s", scheme, tls_server.client_port,
                                          f->prefix);

  fixture_add_env (f, "GSM_REGISTRY", uri);
}

/* etcds:// with the CA and a client certificate: sessions register, are
 * listed, and their keys are in etcd. */
static void
test_tls (Fixture      *f,
          gconstpointer data)
{
  g_autofree char *ca = cert_path ("ca.crt");
  g_autofree char *crt = cert_path ("client.crt");
  g_autofree char *key = cert_path ("client.key");
  g_autofree char *vms = g_strconcat (f->prefix, "/vms/", NULL);
  g_autofree char *out = NULL;
  const char      *args[] = { "register", "vm-tls", NULL };
  g_autoptr (Worker) w = NULL;

  set_tls_registry (f, "etcds");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", ca);
  fixture_add_env (f, "GSM_ETCD_CERT_FILE", crt);
  fixture_add_env (f, "GSM_ETCD_KEY_FILE", key);

  w = worker_spawn (fixture_env (f), args);
  worker_wait_ready (w, READY_BOUND);
  g_assert_cmpint (etcd_count_keys (&tls_server, vms), ==, 1);
  out = list_sessions (f);
  g_assert_nonnull (strstr (out, w->session_id));

  /* Still there after a few keepalives. */
  sleep_in_loop (4.0);
  g_clear_pointer (&out, g_free);
  out = list_sessions (f);
  g_assert_nonnull (strstr (out, w->session_id));
}

/* The same from the configuration file; the key with the certificate. */
static void
test_tls_config_file (Fixture      *f,
                      gconstpointer data)
{
  g_autofree char *ca = cert_path ("ca.crt");
  g_autofree char *pem = cert_path ("client.pem");
  g_autofree char *path = g_build_filename (f->runtime, "config.ini", NULL);
  g_autofree char *config = NULL;
  g_autofree char *vms = g_strconcat (f->prefix, "/vms/", NULL);
  const char      *args[] = { "register", "vm-config", NULL };
  g_autoptr (Worker) w = NULL;

  config = g_strdup_printf ("[registry]\nbackend=etcds://127.0.0.1:%u%s\nca-file=%s\ncert-file=%s\n",
                            tls_server.client_port, f->prefix, ca, pem);
  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  fixture_add_env (f, "GSM_CONFIG_FILE", path);

  w = worker_spawn (fixture_env (f), args);
  worker_wait_ready (w, READY_BOUND);
  g_assert_cmpint (etcd_count_keys (&tls_server, vms), ==, 1);
}

/* Without a client certificate, etcd closes the connection: a clear
 * error, in bounded time. */
static void
test_tls_no_client_certificate (Fixture      *f,
                                gconstpointer data)
{
  g_autofree char *ca = cert_path ("ca.crt");
  g_autofree char *prefix = error_prefix (GSM_ERROR_BACKEND_UNAVAILABLE);
  const char      *args[] = { "register", "vm-nocert", NULL };
  g_autofree char *out = NULL;

  set_tls_registry (f, "etcds");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", ca);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, tls_server.endpoint));
  g_assert_nonnull (strstr (out, "client certificate"));
}

/* A server certificate from a CA not given: refused. */
static void
test_tls_untrusted (Fixture      *f,
                    gconstpointer data)
{
  g_autofree char *other_ca = cert_path ("other-ca.crt");
  g_autofree char *crt = cert_path ("client.crt");
  g_autofree char *key = cert_path ("client.key");
  g_autofree char *prefix = error_prefix (GSM_ERROR_BACKEND_UNAVAILABLE);
  const char      *args[] = { "register", "vm-untrusted", NULL };
  g_autofree char *out = NULL;

  set_tls_registry (f, "etcds");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", other_ca);
  fixture_add_env (f, "GSM_ETCD_CERT_FILE", crt);
  fixture_add_env (f, "GSM_ETCD_KEY_FILE", key);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "GSM_ETCD_CA_FILE"));
}

/* Certificates with etcd:// (no TLS) are a mistake, not a fallback to
 * plain HTTP; so is a missing file. */
static void
test_tls_misconfigured (Fixture      *f,
                        gconstpointer data)
{
  g_autofree char *ca = cert_path ("ca.crt");
  g_autofree char *missing = cert_path ("missing.crt");
  g_autofree char *prefix = error_prefix (GSM_ERROR_INVALID_ARGUMENT);
  const char      *args[] = { "register", "vm-bad", NULL };
  g_autofree char *out = NULL;

  set_tls_registry (f, "etcd");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", ca);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "etcds://"));
  g_clear_pointer (&out, g_free);

  g_ptr_array_set_size (f->env, 0);
  g_ptr_array_add (f->env, NULL);
  set_tls_registry (f, "etcds");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", missing);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, missing));
}

/* ---- authentication ---------------------------------------------------- */

static void
set_auth_registry (Fixture    *f,
                   const char *prefix)
{
  g_autofree char *uri = g_strdup_printf ("etcd://127.0.0.1:%u%s", auth_server.client_port,
                                          prefix);

  fixture_add_env (f, "GSM_REGISTRY", uri);
  fixture_add_env (f, "GSM_ETCD_USER", "gsm");
}

/* As gsm, with the password given either way: register, watch, list.
 * Leases and tokens survive a restart of etcd; a change of its users and
 * roles makes it refuse the tokens given before, which are renewed. */
static void
test_auth (Fixture      *f,
           gconstpointer data)
{
  g_autofree char *password_file = g_build_filename (f->runtime, "password", NULL);
  const char      *watch_a[] = { "watch", "vm-a", NULL };
  const char      *register_b[] = { "register", "vm-b", NULL };
  const char      *register_c[] = { "register", "vm-c", NULL };
  g_autoptr (Worker) a = NULL;
  g_autoptr (Worker) b = NULL;
  g_autoptr (Worker) c = NULL;
  g_autofree char *line = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;

  set_auth_registry (f, f->prefix);
  fixture_add_env (f, "GSM_ETCD_PASSWORD", GSM_PASSWORD);
  a = worker_spawn (fixture_env (f), watch_a);
  worker_wait_ready (a, READY_BOUND);

  /* The other from a password file (with a newline, as editors leave). */
  g_assert_true (g_file_set_contents (password_file, GSM_PASSWORD "\n", -1, NULL));
  g_ptr_array_set_size (f->env, 0);
  g_ptr_array_add (f->env, NULL);
  fixture_add_env (f, "GSM_RUNTIME_DIR", f->runtime);
  fixture_add_env (f, "GSM_LEASE_TTL", TTL);
  fixture_add_env (f, "GSM_CONFIG_FILE", "/nonexistent/gsm-etcd-test.ini");
  fixture_add_env (f, "GSM_HOSTNAME", "host-b");
  set_auth_registry (f, f->prefix);
  fixture_add_env (f, "GSM_ETCD_PASSWORD_FILE", password_file);
  b = worker_spawn (fixture_env (f), register_b);
  worker_wait_ready (b, READY_BOUND);

  /* a's watch, with its token, saw b. */
  expected = g_strdup_printf ("ADDED %s", b->session_id);
  /* (Other lines: the sessions of the list commands.) */
  line = worker_expect (a, expected, 10.0);
  g_assert_cmpstr (line, ==, expected);

  out = list_sessions (f);
  g_assert_nonnull (strstr (out, a->session_id));
  g_assert_nonnull (strstr (out, b->session_id));
  g_clear_pointer (&out, g_free);

  /* A restart of etcd: both sessions stay. */
  etcd_server_stop (&auth_server, SIGTERM);
  etcd_server_start (&auth_server);
  sleep_in_loop (2.0 * atoi (TTL));
  out = list_sessions (f);
  g_assert_nonnull (strstr (out, a->session_id));
  g_assert_nonnull (strstr (out, b->session_id));
  g_clear_pointer (&out, g_free);

  /* After a change of the auth store, etcd refuses older tokens ("revision
   * of auth store is old"): a reads the registry again when c comes, with
   * a new token. */
  etcdctl ("root:" ROOT_PASSWORD, "role", "add", "unrelated", NULL);
  c = worker_spawn (fixture_env (f), register_c);
  worker_wait_ready (c, READY_BOUND);
  g_clear_pointer (&expected, g_free);
  g_clear_pointer (&line, g_free);
  expected = g_strdup_printf ("ADDED %s", c->session_id);
  /* (Other lines: the sessions of the list commands.) */
  line = worker_expect (a, expected, 10.0);
  g_assert_cmpstr (line, ==, expected);
  sleep_in_loop (2.0 * atoi (TTL));
  out = list_sessions (f);
  g_assert_nonnull (strstr (out, a->session_id));
  g_assert_nonnull (strstr (out, b->session_id));
  g_assert_nonnull (strstr (out, c->session_id));
}

/* A wrong password: a clear error, which does not show the password. */
static void
test_auth_wrong_password (Fixture      *f,
                          gconstpointer data)
{
  g_autofree char *prefix = error_prefix (GSM_ERROR_BACKEND_UNAVAILABLE);
  const char      *args[] = { "register", "vm-wrong", NULL };
  g_autofree char *out = NULL;

  set_auth_registry (f, f->prefix);
  fixture_add_env (f, "GSM_ETCD_PASSWORD", WRONG_PASSWORD);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "Authentication as etcd user “gsm” failed"));
  g_assert_null (strstr (out, WRONG_PASSWORD));
}

/* The user and the password file from the configuration file. */
static void
test_auth_config_file (Fixture      *f,
                       gconstpointer data)
{
  g_autofree char *password_file = g_build_filename (f->runtime, "password", NULL);
  g_autofree char *path = g_build_filename (f->runtime, "config.ini", NULL);
  g_autofree char *config = NULL;
  g_autofree char *out = NULL;
  const char      *args[] = { "register", "vm-config", NULL };
  g_autoptr (Worker) w = NULL;

  g_assert_true (g_file_set_contents (password_file, GSM_PASSWORD, -1, NULL));
  config = g_strdup_printf ("[registry]\nbackend=etcd://127.0.0.1:%u%s\nuser=gsm\npassword-file=%s\n",
                            auth_server.client_port, f->prefix, password_file);
  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  fixture_add_env (f, "GSM_CONFIG_FILE", path);

  w = worker_spawn (fixture_env (f), args);
  worker_wait_ready (w, READY_BOUND);
  out = list_sessions (f);
  g_assert_nonnull (strstr (out, w->session_id));
}

/* A user without a password, or a password file that cannot be read: a
 * mistake, told before anything is sent. */
static void
test_auth_misconfigured (Fixture      *f,
                         gconstpointer data)
{
  g_autofree char *prefix = error_prefix (GSM_ERROR_INVALID_ARGUMENT);
  g_autofree char *missing = g_build_filename (f->runtime, "no-such-password", NULL);
  const char      *args[] = { "register", "vm-bad", NULL };
  g_autofree char *out = NULL;

  set_auth_registry (f, f->prefix);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "without a password"));
  g_clear_pointer (&out, g_free);

  fixture_add_env (f, "GSM_ETCD_PASSWORD_FILE", missing);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "GSM_ETCD_PASSWORD_FILE"));
}

/* Outside what the role allows: etcd's refusal, as an error. */
static void
test_auth_outside_role (Fixture      *f,
                        gconstpointer data)
{
  g_autofree char *prefix = error_prefix (GSM_ERROR_BACKEND_UNAVAILABLE);
  const char      *args[] = { "register", "vm-outside", NULL };
  g_autofree char *out = NULL;

  set_auth_registry (f, "/elsewhere");
  fixture_add_env (f, "GSM_ETCD_PASSWORD", GSM_PASSWORD);
  out = worker_run (fixture_env (f), args, NULL);
  g_test_message ("output: %s", out);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "permission denied"));
  g_assert_null (strstr (out, GSM_PASSWORD));
}

/* ---- in this process ---------------------------------------------------- */

/* Sets @f's environment in this process, for as long as the test runs. */
static void
setenv_from_fixture (Fixture *f)
{
  for (guint i = 0; f->env->pdata[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (f->env->pdata[i], "=", 2);

      g_setenv (kv[0], kv[1], TRUE);
    }
}

static void
unsetenv_from_fixture (Fixture *f)
{
  for (guint i = 0; f->env->pdata[i] != NULL; i++)
    {
      g_auto (GStrv) kv = g_strsplit (f->env->pdata[i], "=", 2);

      g_unsetenv (kv[0]);
    }
}

/* A manager of this process registers, lists, and keeps its lease for a
 * few renewals; @between runs in the middle. (A longer TTL: this is what
 * runs under valgrind.) */
static void
run_manager (Fixture *f,
             void (*between) (void))
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;
  GsmSessionManager *manager;
  gboolean           unregistered;

  fixture_add_env (f, "GSM_LEASE_TTL", "6");
  setenv_from_fixture (f);
  manager = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-in", "z", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  sleep_in_loop (2.5);
  if (between != NULL)
    between ();
  sessions = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_hash_table_contains (sessions, gsm_session_manager_get_session_id (manager)));
  sleep_in_loop (2.5);
  g_assert_true (gsm_session_manager_get_has_vm (manager));
  unregistered = gsm_session_manager_unregister_vm_sync (manager, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (unregistered);
  _gsm_session_manager_reset_for_testing ();
  unsetenv_from_fixture (f);
}

static void
test_tls_in_process (Fixture      *f,
                     gconstpointer data)
{
  g_autofree char *ca = cert_path ("ca.crt");
  g_autofree char *crt = cert_path ("client.crt");
  g_autofree char *key = cert_path ("client.key");

  set_tls_registry (f, "etcds");
  fixture_add_env (f, "GSM_ETCD_CA_FILE", ca);
  fixture_add_env (f, "GSM_ETCD_CERT_FILE", crt);
  fixture_add_env (f, "GSM_ETCD_KEY_FILE", key);
  run_manager (f, NULL);
}

static void
change_auth_store (void)
{
  g_autofree char *role = g_strdup_printf ("unrelated-%u", ++test_counter);

  etcdctl ("root:" ROOT_PASSWORD, "role", "add", role, NULL);
}

static void
test_auth_in_process (Fixture      *f,
                      gconstpointer data)
{
  set_auth_registry (f, f->prefix);
  fixture_add_env (f, "GSM_ETCD_PASSWORD", GSM_PASSWORD);
  run_manager (f, change_auth_store);
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

  if (!etcd_available ())
    {
      g_test_add_func ("/etcd/security/skipped", test_skip);
      return g_test_run ();
    }

  make_certificates ();
  start_tls_server ();
  start_auth_server ();

  g_test_add ("/etcd/tls/register-list", Fixture, NULL, fixture_set_up,
              test_tls, fixture_tear_down);
  g_test_add ("/etcd/tls/config-file", Fixture, NULL, fixture_set_up,
              test_tls_config_file, fixture_tear_down);
  g_test_add ("/etcd/tls/no-client-certificate", Fixture, NULL, fixture_set_up,
              test_tls_no_client_certificate, fixture_tear_down);
  g_test_add ("/etcd/tls/untrusted", Fixture, NULL, fixture_set_up,
              test_tls_untrusted, fixture_tear_down);
  g_test_add ("/etcd/tls/misconfigured", Fixture, NULL, fixture_set_up,
              test_tls_misconfigured, fixture_tear_down);
  g_test_add ("/etcd/tls/in-process", Fixture, NULL, fixture_set_up,
              test_tls_in_process, fixture_tear_down);
  g_test_add ("/etcd/auth/in-process", Fixture, NULL, fixture_set_up,
              test_auth_in_process, fixture_tear_down);
  g_test_add ("/etcd/auth/user", Fixture, NULL, fixture_set_up,
              test_auth, fixture_tear_down);
  g_test_add ("/etcd/auth/config-file", Fixture, NULL, fixture_set_up,
              test_auth_config_file, fixture_tear_down);
  g_test_add ("/etcd/auth/misconfigured", Fixture, NULL, fixture_set_up,
              test_auth_misconfigured, fixture_tear_down);
  g_test_add ("/etcd/auth/wrong-password", Fixture, NULL, fixture_set_up,
              test_auth_wrong_password, fixture_tear_down);
  g_test_add ("/etcd/auth/outside-role", Fixture, NULL, fixture_set_up,
              test_auth_outside_role, fixture_tear_down);

  ret = g_test_run ();

  etcd_server_destroy (&tls_server);
  etcd_server_destroy (&auth_server);
  rm_rf (certs);
  g_free (certs);
  return ret;
}
