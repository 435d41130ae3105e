/* gsm-etcd-client.c: requests to etcd's v3 JSON gateway
 *
 * The connection layer of the etcd registry: which members to ask, and
 * how (libsoup); what their answers mean is gsm-etcd-response.c's. It
 * knows nothing of sessions or VMs.
 *
 * Requests are POSTs of JSON bodies. A blocking request (from any thread)
 * and an asynchronous one (in the thread-default main context of the
 * caller) return a parsed #GsmEtcdResponse, or an error naming the
 * endpoint. A stream (the watch) is opened asynchronously and handed over
 * once etcd sent its first message.
 *
 * The members of the cluster are asked in turn: first the one that
 * answered last, then the next ones while a member cannot be reached,
 * does not answer in time, or says it cannot serve now. Over TLS, the
 * sessions verify the members against the CA given (or the system's) and
 * every message carries the client certificate given. With a user, a
 * token from /v3/auth/authenticate goes in the Authorization header of
 * every request; a refused token is renewed and the request sent again,
 * once. The password and the token never appear in messages.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-client-private.h"

/* ---- the URI ----------------------------------------------------------- */

static gboolean
bad_uri (const char *uri,
         GError    **error)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
               "Invalid registry URI “%s”: expected etcd://HOST:PORT[,HOST:PORT…][/PREFIX] "
               "(or etcds:// for TLS)",
               uri);
  return FALSE;
}

/*
 * _gsm_etcd_parse_uri:
 * @uri: `etcd://HOST[:PORT][,HOST[:PORT]…][/PREFIX]`, or `etcds://…` for
 *   TLS: the members of one etcd cluster
 * @endpoints: (out) (array zero-terminated=1): `http://HOST:PORT` (or
 *   `https://`), one per member, in the order of @uri
 * @prefix: (out): `/PREFIX` without a trailing slash, or the default
 */
gboolean
_gsm_etcd_parse_uri (const char *uri,
                     char     ***endpoints,
                     char      **prefix,
                     GError    **error)
{
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = NULL;
  g_autofree char *authority = NULL;
  g_auto (GStrv) hosts = NULL;
  const char *scheme, *rest;

  if (g_str_has_prefix (uri, "etcd://"))
    {
      scheme = "http";
      rest = uri + strlen ("etcd://");
    }
  else if (g_str_has_prefix (uri, "etcds://"))
    {
      scheme = "https";
      rest = uri + strlen ("etcds://");
    }
  else
    return bad_uri (uri, error);

  authority = g_strndup (rest, strcspn (rest, "/?#"));
  rest += strlen (authority);
  hosts = g_strsplit (authority, ",", -1);
  if (hosts[0] == NULL)
    return bad_uri (uri, error);

  /* Each member with the path, as a URI of its own. */
  for (guint i = 0; hosts[i] != NULL; i++)
    {
      g_autofree char *one = g_strconcat ("etcd://", hosts[i], rest, NULL);
      g_autoptr (GUri) parsed = NULL;
      g_autoptr (GError) local_error = NULL;
      const char *host;
      int         port;

      parsed = g_uri_parse (one, G_URI_FLAGS_NON_DNS, &local_error);
      if (parsed == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "Invalid registry URI “%s”: %s", uri, local_error->message);
          return FALSE;
        }

      host = g_uri_get_host (parsed);
      if (host == NULL || *host == '\0' || g_uri_get_userinfo (parsed) != NULL ||
          g_uri_get_query (parsed) != NULL || g_uri_get_fragment (parsed) != NULL)
        return bad_uri (uri, error);

      port = g_uri_get_port (parsed);
      if (port <= 0)
        port = GSM_ETCD_DEFAULT_PORT;

      if (path == NULL)
        path = g_strdup (g_uri_get_path (parsed));
      g_ptr_array_add (list, g_uri_join (G_URI_FLAGS_NONE, scheme, NULL, host, port, "", NULL, NULL));
    }

  while (*path != '\0' && g_str_has_suffix (path, "/"))
    path[strlen (path) - 1] = '\0';

  g_ptr_array_add (list, NULL);
  *endpoints = (char **) g_ptr_array_free (g_steal_pointer (&list), FALSE);
  *prefix = *path != '\0' ? g_steal_pointer (&path) : g_strdup (GSM_ETCD_DEFAULT_PREFIX);
  return TRUE;
}

/* ---- request bodies ---------------------------------------------------- */

/* @data as a JSON string, in base64 (as the gateway takes keys and values). */
void
_gsm_etcd_append_base64 (GString      *body,
                         gconstpointer data,
                         gsize         len)
{
  g_autofree char *b64 = g_base64_encode (data, len);

  g_string_append_c (body, '"');
  g_string_append (body, b64);
  g_string_append_c (body, '"');
}

/* `"key": …, "range_end": …`: every key that starts with @prefix, which
 * ends with a slash. */
void
_gsm_etcd_append_range (GString    *body,
                        const char *prefix)
{
  g_autofree char *end = g_strdup (prefix);
  gsize            len = strlen (end);

  /* The keys of PREFIX/ end before PREFIX0 ('/' + 1 == '0'). */
  g_assert (len > 0 && end[len - 1] == '/');
  end[len - 1]++;
  g_string_append (body, "\"key\": ");
  _gsm_etcd_append_base64 (body, prefix, len);
  g_string_append (body, ", \"range_end\": ");
  _gsm_etcd_append_base64 (body, end, len);
}

/* ---- the client -------------------------------------------------------- */

#define STREAM_READ_SIZE (64 * 1024)
#define AUTHENTICATE "/v3/auth/authenticate"

/* gRPC UNAVAILABLE: what etcd answers when this member cannot serve now
 * ("etcdserver: no leader", "request timed out", "leader changed"…), when
 * another one may. */
#define GRPC_UNAVAILABLE 14
/* gRPC UNAUTHENTICATED: "etcdserver: invalid auth token" */
#define GRPC_UNAUTHENTICATED 16

struct _GsmEtcdClient
{
  char           **endpoints; /* http(s)://HOST:PORT, one per member */
  guint            n_endpoints;
  char            *description;    /* the endpoints, for messages */
  gint             preferred;      /* atomic: the member that answered last */
  guint            timeout_ms;     /* of a request */
  SoupSession     *session;        /* requests, with an I/O timeout */
  SoupSession     *stream_session; /* streams: no I/O timeout */
  gboolean         tls;
  GTlsCertificate *certificate; /* ours, for etcd's --client-cert-auth */
  char            *user;        /* NULL: no authentication */
  char            *password;    /* secret: never in messages */

  GMutex   mutex;         /* guards what follows */
  char    *token;         /* secret: never in messages */
  gboolean auth_disabled; /* etcd said authentication is off */
};

/* What to make of an answer. */
typedef enum
{
  VERDICT_DONE,   /* the answer (or etcd's error) is the request's */
  VERDICT_NEXT,   /* this member cannot serve now: ask the next one */
  VERDICT_REAUTH, /* the token was refused: authenticate again */
} Verdict;

static void
free_secret (char *secret)
{
  if (secret != NULL)
    explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

/* The environment variable @env, else @key of [registry] in @config; NULL
 * if neither is set or empty. */
static char *
get_setting (GKeyFile   *config,
             const char *key,
             const char *env)
{
  const char      *value = g_getenv (env);
  g_autofree char *from_file = NULL;

  if (value != NULL && *value != '\0')
    return g_strdup (value);
  if (config != NULL)
    from_file = g_key_file_get_string (config, "registry", key, NULL);
  if (from_file != NULL && *g_strstrip (from_file) != '\0')
    return g_steal_pointer (&from_file);
  return NULL;
}

/* The password: its first line, from the file given by
 * GSM_ETCD_PASSWORD_FILE, else GSM_ETCD_PASSWORD itself, else the file of
 * password-file in [registry]. */
static gboolean
get_password (GKeyFile *config,
              char    **password,
              GError  **error)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *origin;
  char       *text = NULL;
  gsize       len;

  *password = NULL;
  if (g_getenv ("GSM_ETCD_PASSWORD_FILE") != NULL && *g_getenv ("GSM_ETCD_PASSWORD_FILE") != '\0')
    {
      path = g_strdup (g_getenv ("GSM_ETCD_PASSWORD_FILE"));
      origin = "GSM_ETCD_PASSWORD_FILE";
    }
  else if (g_getenv ("GSM_ETCD_PASSWORD") != NULL && *g_getenv ("GSM_ETCD_PASSWORD") != '\0')
    {
      *password = g_strdup (g_getenv ("GSM_ETCD_PASSWORD"));
      return TRUE;
    }
  else
    {
      path = get_setting (config, "password-file", "GSM_ETCD_PASSWORD_FILE");
      origin = "password-file in [registry] of the configuration file";
    }
  if (path == NULL)
    return TRUE;

  if (!g_file_get_contents (path, &text, &len, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Cannot read the etcd password file (%s): %s", origin, local_error->message);
      return FALSE;
    }
  /* The first line; nothing after a NUL. */
  text[strcspn (text, "\r\n")] = '\0';
  *password = g_strdup (text);
  explicit_bzero (text, len);
  g_free (text);
  return TRUE;
}

/* Reads the TLS and authentication settings; *@database: the CA's, if
 * one is given. */
static gboolean
client_configure (GsmEtcdClient *client,
                  GTlsDatabase **database,
                  GError       **error)
{
  g_autoptr (GKeyFile) config = _gsm_config_load (NULL);
  g_autofree char *ca_file = get_setting (config, "ca-file", "GSM_ETCD_CA_FILE");
  g_autofree char *cert_file = get_setting (config, "cert-file", "GSM_ETCD_CERT_FILE");
  g_autofree char *key_file = get_setting (config, "key-file", "GSM_ETCD_KEY_FILE");
  g_autoptr (GError) local_error = NULL;

  if ((ca_file != NULL || cert_file != NULL || key_file != NULL) && !client->tls)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "A CA file or client certificate is set for etcd (GSM_ETCD_CA_FILE, "
                   "GSM_ETCD_CERT_FILE, GSM_ETCD_KEY_FILE, or in [registry]), but the registry "
                   "URI does not use TLS: use etcds://");
      return FALSE;
    }

  if (ca_file != NULL)
    {
      *database = g_tls_file_database_new (ca_file, &local_error);
      if (*database == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "Cannot read the etcd CA file “%s” (GSM_ETCD_CA_FILE or ca-file): %s",
                       ca_file, local_error->message);
          return FALSE;
        }
    }

  if (key_file != NULL && cert_file == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "An etcd client key is set (GSM_ETCD_KEY_FILE or key-file) without its "
                   "certificate (GSM_ETCD_CERT_FILE or cert-file)");
      return FALSE;
    }
  if (cert_file != NULL)
    {
      /* Without a key file, the key is in the certificate's file. */
      client->certificate = g_tls_certificate_new_from_files (cert_file,
                                                              key_file ? key_file : cert_file,
                                                              &local_error);
      if (client->certificate == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "Cannot read the etcd client certificate “%s” and key “%s” "
                       "(GSM_ETCD_CERT_FILE and GSM_ETCD_KEY_FILE, or cert-file and key-file): %s",
                       cert_file, key_file ? key_file : cert_file, local_error->message);
          return FALSE;
        }
    }

  client->user = get_setting (config, "user", "GSM_ETCD_USER");
  if (!get_password (config, &client->password, error))
    return FALSE;
  if (client->user != NULL && client->password == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "An etcd user is set (GSM_ETCD_USER or user) without a password "
                   "(GSM_ETCD_PASSWORD_FILE, GSM_ETCD_PASSWORD or password-file)");
      return FALSE;
    }
  if (client->user == NULL && client->password != NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "An etcd password is set (GSM_ETCD_PASSWORD_FILE, GSM_ETCD_PASSWORD or "
                   "password-file) without a user (GSM_ETCD_USER or user)");
      return FALSE;
    }

  return TRUE;
}

/*
 * _gsm_etcd_client_new:
 * @uri: the registry URI (see _gsm_etcd_parse_uri())
 * @timeout: seconds a request may take (connecting included)
 * @prefix: (out): the key prefix of @uri
 *
 * Reads the TLS and authentication settings: the environment variables
 * `GSM_ETCD_CA_FILE`, `GSM_ETCD_CERT_FILE`, `GSM_ETCD_KEY_FILE`,
 * `GSM_ETCD_USER`, `GSM_ETCD_PASSWORD_FILE` and `GSM_ETCD_PASSWORD`, else
 * `ca-file`, `cert-file`, `key-file`, `user` and `password-file` in
 * `[registry]` of the configuration file.
 *
 * Returns: (transfer full): a client, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT; nothing is sent yet
 */
GsmEtcdClient *
_gsm_etcd_client_new (const char *uri,
                      double      timeout,
                      char      **prefix,
                      GError    **error)
{
  g_auto (GStrv) endpoints = NULL;
  g_autofree char *parsed_prefix = NULL;
  g_autoptr (GTlsDatabase) database = NULL;
  guint          timeout_s = (guint) CLAMP (timeout + 0.999, 1, 3600);
  GsmEtcdClient *client;

  if (!_gsm_etcd_parse_uri (uri, &endpoints, &parsed_prefix, error))
    return NULL;

  client = g_new0 (GsmEtcdClient, 1);
  g_mutex_init (&client->mutex);
  client->n_endpoints = g_strv_length (endpoints);
  client->endpoints = g_steal_pointer (&endpoints);
  client->description = g_strjoinv (",", client->endpoints);
  client->tls = g_str_has_prefix (client->endpoints[0], "https:");
  client->timeout_ms = timeout_s * 1000;
  if (!client_configure (client, &database, error))
    {
      _gsm_etcd_client_free (client);
      return NULL;
    }

  /* Without a CA file (the list of properties then ends early), the
   * system's CAs: libsoup's default. */
  client->session = soup_session_new_with_options ("timeout", timeout_s,
                                                   "idle-timeout", 60,
                                                   "user-agent", "gsm-session/" PACKAGE_VERSION,
                                                   database ? "tls-database" : NULL, database,
                                                   NULL);
  client->stream_session = soup_session_new_with_options ("timeout", 0,
                                                          "user-agent", "gsm-session/" PACKAGE_VERSION,
                                                          database ? "tls-database" : NULL, database,
                                                          NULL);

  *prefix = g_steal_pointer (&parsed_prefix);
  return client;
}

void
_gsm_etcd_client_free (GsmEtcdClient *client)
{
  if (client == NULL)
    return;
  g_clear_object (&client->session);
  g_clear_object (&client->stream_session);
  g_clear_object (&client->certificate);
  g_strfreev (client->endpoints);
  g_free (client->description);
  g_free (client->user);
  free_secret (client->password);
  free_secret (client->token);
  g_mutex_clear (&client->mutex);
  g_free (client);
}

/* The endpoints of all members, comma-separated: for messages. */
const char *
_gsm_etcd_client_get_endpoints (GsmEtcdClient *client)
{
  return client->description;
}

/* The member requests go to first: the one that answered last. */
guint
_gsm_etcd_client_get_preferred (GsmEtcdClient *client)
{
  return (guint) g_atomic_int_get (&client->preferred);
}

/* @member failed: if requests went to it first, they now go to the next
 * member first. */
static void
member_failed (GsmEtcdClient *client,
               guint          member)
{
  g_atomic_int_compare_and_exchange (&client->preferred, (gint) member,
                                     (gint) ((member + 1) % client->n_endpoints));
}

/* ---- authentication ---------------------------------------------------- */

/* Whether a token must be obtained before the next request. */
static gboolean
needs_token (GsmEtcdClient *client)
{
  gboolean needed;

  if (client->user == NULL)
    return FALSE;
  g_mutex_lock (&client->mutex);
  needed = client->token == NULL && !client->auth_disabled;
  g_mutex_unlock (&client->mutex);
  return needed;
}

static void
drop_token (GsmEtcdClient *client)
{
  g_mutex_lock (&client->mutex);
  g_clear_pointer (&client->token, free_secret);
  g_mutex_unlock (&client->mutex);
}

/*
 * _gsm_etcd_client_forget_token:
 *
 * etcd refused a stream with our token without saying so in an error (a
 * watch created and cancelled at once, after a restart or a change of its
 * users): the next request authenticates again.
 */
void
_gsm_etcd_client_forget_token (GsmEtcdClient *client)
{
  if (client->user != NULL)
    drop_token (client);
}

static void
append_json_string (GString    *out,
                    const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_printf (out, "\\%c", *p);
      else if ((guchar) *p < 0x20)
        g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

static void
free_secret_bytes (gpointer data)
{
  free_secret (data);
}

/* {"name": USER, "password": PASSWORD}, wiped when freed. */
static GBytes *
auth_body (GsmEtcdClient *client)
{
  GString *body = g_string_new ("{\"name\": ");
  gsize    len;
  char    *text;

  append_json_string (body, client->user);
  g_string_append (body, ", \"password\": ");
  append_json_string (body, client->password);
  g_string_append_c (body, '}');
  len = body->len;
  text = g_string_free (body, FALSE);
  return g_bytes_new_with_free_func (text, len, free_secret_bytes, text);
}

/* ---- messages and answers ---------------------------------------------- */

static SoupMessage *
new_message (GsmEtcdClient *client,
             guint          member,
             const char    *path,
             GBytes        *body)
{
  g_autofree char *url = g_strconcat (client->endpoints[member], path, NULL);
  SoupMessage     *msg = soup_message_new ("POST", url);

  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  if (client->certificate != NULL)
    soup_message_set_tls_client_certificate (msg, client->certificate);
  if (client->user != NULL && !g_str_equal (path, AUTHENTICATE))
    {
      g_mutex_lock (&client->mutex);
      if (client->token != NULL)
        soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                      client->token);
      g_mutex_unlock (&client->mutex);
    }
  return msg;
}

static gboolean
token_refused (GsmEtcdClient   *client,
               GsmEtcdResponse *response)
{
  /* "etcdserver: invalid auth token" (expired, or from before a restart),
   * "etcdserver: revision of auth store is old", "etcdserver: user name is
   * empty" (no token). */
  return client->user != NULL &&
         (response->error_code == GRPC_UNAUTHENTICATED ||
          strstr (response->error_message, "auth token") != NULL ||
          strstr (response->error_message, "auth store is old") != NULL ||
          strstr (response->error_message, "user name is empty") != NULL);
}

/* Turns a body into a response, or an error naming the endpoint. An error
 * reported by etcd about a missing lease becomes
 * %GSM_ERROR_OWNERSHIP_LAPSED. */
static GsmEtcdResponse *
finish_response (GsmEtcdClient *client,
                 guint          member,
                 const char    *path,
                 SoupMessage   *msg,
                 GBytes        *body,
                 Verdict       *verdict,
                 GError       **error)
{
  const char *endpoint = client->endpoints[member];
  g_autoptr (GError) local_error = NULL;
  GsmEtcdResponse *response = NULL;
  guint            status = soup_message_get_status (msg);
  gsize            len;
  const char      *data = g_bytes_get_data (body, &len);

  *verdict = VERDICT_DONE;
  if (!_gsm_etcd_response_parse (data, len, &response, &local_error))
    {
      /* Not etcd's answer: a proxy, or a server in trouble. */
      if (SOUP_STATUS_IS_SERVER_ERROR (status))
        *verdict = VERDICT_NEXT;
      if (status != SOUP_STATUS_OK)
        g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                     "etcd at %s: %s failed: HTTP %u %s", endpoint, path, status,
                     soup_message_get_reason_phrase (msg));
      else
        g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                     "etcd at %s: %s: %s", endpoint, path, local_error->message);
      return NULL;
    }

  if (response->has_error)
    {
      /* gRPC NOT_FOUND: "etcdserver: requested lease not found" */
      gboolean lapsed = response->error_code == 5 &&
                        strstr (response->error_message, "lease not found") != NULL;

      if (response->error_code == GRPC_UNAVAILABLE)
        *verdict = VERDICT_NEXT;
      else if (!g_str_equal (path, AUTHENTICATE) && token_refused (client, response))
        *verdict = VERDICT_REAUTH;
      g_set_error (error, GSM_ERROR, lapsed ? GSM_ERROR_OWNERSHIP_LAPSED : GSM_ERROR_BACKEND_UNAVAILABLE,
                   "etcd at %s: %s failed: %s", endpoint, path, response->error_message);
      _gsm_etcd_response_free (response);
      return NULL;
    }

  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "etcd at %s: %s failed: HTTP %u %s", endpoint, path, status,
                   soup_message_get_reason_phrase (msg));
      _gsm_etcd_response_free (response);
      return NULL;
    }

  return response;
}

/* The answer to an authentication: keeps the token. */
static gboolean
take_token (GsmEtcdClient *client,
            guint          member,
            SoupMessage   *msg,
            GBytes        *body,
            Verdict       *verdict,
            GError       **error)
{
  g_autoptr (GsmEtcdResponse) response = NULL;
  g_autoptr (GError) local_error = NULL;

  response = finish_response (client, member, AUTHENTICATE, msg, body, verdict, &local_error);
  if (response == NULL && *verdict == VERDICT_DONE &&
      strstr (local_error->message, "authentication is not enabled") != NULL)
    {
      /* Nothing to authenticate: requests go without a token. */
      g_mutex_lock (&client->mutex);
      client->auth_disabled = TRUE;
      g_mutex_unlock (&client->mutex);
      return TRUE;
    }
  if (response == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                  "Authentication as etcd user “%s” failed: ", client->user);
      return FALSE;
    }
  if (response->token == NULL || *response->token == '\0')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "Authentication as etcd user “%s” failed: etcd at %s gave no token",
                   client->user, client->endpoints[member]);
      return FALSE;
    }

  g_mutex_lock (&client->mutex);
  free_secret (client->token);
  client->token = g_steal_pointer (&response->token);
  g_mutex_unlock (&client->mutex);
  return TRUE;
}

/* A transport error after which the same member is asked once more, on a
 * new connection: a pooled connection the server closed (it restarted). A
 * refused or timed-out connection is final. */
static gboolean
worth_retrying_here (const GError *error)
{
  return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) &&
         !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) &&
         !g_error_matches (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND) &&
         error->domain != G_TLS_ERROR;
}

/* A transport failure, with a hint at the setting that may be at fault. */
static void
add_failure (GString       *failures,
             GsmEtcdClient *client,
             guint          member,
             const GError  *error)
{
  if (failures->len > 0)
    g_string_append (failures, "; ");
  if (client->n_endpoints > 1)
    g_string_append_printf (failures, "%s: ", client->endpoints[member]);
  g_string_append (failures, error->message);

  if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    g_string_append (failures, " (the server's certificate is not signed by the CA given by "
                               "GSM_ETCD_CA_FILE or ca-file, or does not name this host)");
  else if (client->tls && client->certificate == NULL &&
           (error->domain == G_TLS_ERROR ||
            g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
            g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE)))
    g_string_append (failures, " (does etcd require a client certificate? "
                               "GSM_ETCD_CERT_FILE or cert-file)");
  else if (client->tls && error->domain == G_TLS_ERROR)
    g_string_append (failures, " (TLS: check the client certificate and the CA)");
}

static void
set_unreachable (GsmEtcdClient *client,
                 GString       *failures,
                 GError       **error)
{
  if (client->n_endpoints == 1)
    g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                 "etcd at %s is unreachable: %s", client->endpoints[0], failures->str);
  else
    g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                 "etcd is unreachable at every member (%s)", failures->str);
}

/* ---- blocking requests ------------------------------------------------- */

/* Sends @path to @member and waits: *@response (none for an
 * authentication, which keeps the token), or an error. With *@verdict
 * VERDICT_NEXT, the failure is recorded in @failures. */
static gboolean
send_sync (GsmEtcdClient    *client,
           guint             member,
           const char       *path,
           GBytes           *body,
           GString          *failures,
           GCancellable     *cancellable,
           GsmEtcdResponse **response,
           Verdict          *verdict,
           GError          **error)
{
  *response = NULL;

  for (int attempt = 0;; attempt++)
    {
      g_autoptr (SoupMessage) msg = new_message (client, member, path, body);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) reply = NULL;

      reply = soup_session_send_and_read (client->session, msg, cancellable, &local_error);
      if (reply != NULL)
        {
          gboolean ok;

          if (g_str_equal (path, AUTHENTICATE))
            ok = take_token (client, member, msg, reply, verdict, &local_error);
          else
            ok = (*response = finish_response (client, member, path, msg, reply, verdict,
                                               &local_error)) != NULL;
          if (!ok && *verdict == VERDICT_NEXT)
            {
              add_failure (failures, client, member, local_error);
              member_failed (client, member);
            }
          if (!ok)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return ok;
        }

      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          *verdict = VERDICT_DONE;
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      if (attempt == 0 && worth_retrying_here (local_error))
        continue;

      *verdict = VERDICT_NEXT;
      add_failure (failures, client, member, local_error);
      member_failed (client, member);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
}

/*
 * _gsm_etcd_client_post:
 * @path: such as `/v3/kv/range`
 * @body: the JSON request
 *
 * Sends a request and waits for its response: to the member that answered
 * last, then to the others in turn while they cannot be reached, do not
 * answer in time or cannot serve now. With a user, authenticates first,
 * and again (once) if etcd refuses the token. From any thread.
 *
 * Returns: (transfer full): the response, or %NULL with
 *   %GSM_ERROR_BACKEND_UNAVAILABLE naming the endpoint (or
 *   %GSM_ERROR_OWNERSHIP_LAPSED if etcd knows no such lease)
 */
GsmEtcdResponse *
_gsm_etcd_client_post (GsmEtcdClient *client,
                       const char    *path,
                       const char    *body,
                       gsize          len,
                       GCancellable  *cancellable,
                       GError       **error)
{
  g_autoptr (GBytes) bytes = g_bytes_new (body, len);
  g_autoptr (GString) failures = g_string_new (NULL);
  guint    first = _gsm_etcd_client_get_preferred (client);
  gboolean reauthenticated = FALSE;

  for (guint i = 0; i < client->n_endpoints; i++)
    {
      guint member = (first + i) % client->n_endpoints;

      for (;;)
        {
          g_autoptr (GError) local_error = NULL;
          GsmEtcdResponse *response = NULL;
          Verdict          verdict = VERDICT_DONE;

          if (needs_token (client))
            {
              g_autoptr (GBytes) auth = auth_body (client);

              if (!send_sync (client, member, AUTHENTICATE, auth, failures, cancellable, &response,
                              &verdict, &local_error))
                {
                  if (verdict == VERDICT_NEXT)
                    break;
                  g_propagate_error (error, g_steal_pointer (&local_error));
                  return NULL;
                }
            }

          send_sync (client, member, path, bytes, failures, cancellable, &response, &verdict,
                     &local_error);
          if (verdict == VERDICT_NEXT)
            break;
          if (verdict == VERDICT_REAUTH && !reauthenticated)
            {
              reauthenticated = TRUE;
              drop_token (client);
              continue;
            }

          if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_atomic_int_set (&client->preferred, (gint) member);
          if (response == NULL)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return response;
        }
    }

  set_unreachable (client, failures, error);
  return NULL;
}

/* ---- asynchronous requests and streams --------------------------------- */

typedef struct
{
  GsmEtcdClient *client;
  char          *path;
  GBytes        *body;
  gboolean       stream;
  guint          timeout_ms; /* per member; 0: the session's */
  guint          first;
  guint          tried;   /* members asked so far */
  int            attempt; /* on this member */
  guint          member;
  gboolean       authenticating; /* the message is the authentication */
  gboolean       reauthenticated;
  GString       *failures;
  GCancellable  *attempt_cancellable;
  gulong         cancelled_id;
  GSource       *timer;
  guint          attempt_timeout_ms;
  gint64         deadline; /* monotonic: no new round after it */
  gboolean       timed_out;
  SoupMessage   *msg;
  GInputStream  *stream_in;
  GByteArray    *head; /* what the stream brought so far */
} Call;

static void
call_end_attempt (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  if (call->timer != NULL)
    {
      g_source_destroy (call->timer);
      g_clear_pointer (&call->timer, g_source_unref);
    }
  if (call->cancelled_id != 0)
    g_cancellable_disconnect (g_task_get_cancellable (task), call->cancelled_id);
  call->cancelled_id = 0;
  g_clear_object (&call->attempt_cancellable);
  g_clear_object (&call->msg);
  g_clear_object (&call->stream_in);
}

static void
call_free (gpointer data)
{
  Call *call = data;

  g_assert (call->timer == NULL && call->attempt_cancellable == NULL);
  g_free (call->path);
  g_bytes_unref (call->body);
  g_string_free (call->failures, TRUE);
  g_byte_array_unref (call->head);
  g_free (call);
}

static gboolean
call_timeout_cb (gpointer user_data)
{
  Call *call = user_data;

  call->timed_out = TRUE;
  g_cancellable_cancel (call->attempt_cancellable);
  g_clear_pointer (&call->timer, g_source_unref);
  return G_SOURCE_REMOVE;
}

static void
call_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static void call_attempt (GTask *task);

static void
call_return_error (GTask  *task,
                   GError *error)
{
  call_end_attempt (task);
  g_task_return_error (task, error);
  g_object_unref (task);
}

/* The attempt on this member failed with @error: the next attempt, or the
 * end. Takes @error. With @transport, a transport error that is worth it
 * is retried on the same member first. */
static void
call_failed_full (GTask   *task,
                  GError  *error,
                  gboolean transport)
{
  Call          *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  gboolean       timed_out = call->timed_out;

  call_end_attempt (task);
  call->authenticating = FALSE;

  if (g_task_return_error_if_cancelled (task))
    {
      g_error_free (error);
      g_object_unref (task);
      return;
    }

  if (timed_out)
    {
      g_clear_error (&error);
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "No answer within %u ms", call->attempt_timeout_ms);
    }

  if (transport && call->attempt++ == 0 && worth_retrying_here (error))
    {
      g_error_free (error);
      call_attempt (task);
      return;
    }

  add_failure (call->failures, client, call->member, error);
  member_failed (client, call->member);
  g_error_free (error);
  call->tried++;
  call->attempt = 0;
  call_attempt (task);
}

static void
call_failed (GTask  *task,
             GError *error)
{
  call_failed_full (task, error, TRUE);
}

/* etcd refused the token: once per call, authenticate again and resend. */
static gboolean
call_reauthenticate (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  if (call->reauthenticated)
    return FALSE;
  call->reauthenticated = TRUE;
  drop_token (call->client);
  call_end_attempt (task);
  call_attempt (task);
  return TRUE;
}

static void
post_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask         *task = user_data;
  Call          *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (SoupMessage) msg = g_object_ref (call->msg);
  GError          *error = NULL;
  GsmEtcdResponse *response;
  Verdict          verdict;

  reply = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (reply == NULL)
    {
      call_failed (task, error);
      return;
    }

  if (call->authenticating)
    {
      call->authenticating = FALSE;
      if (take_token (client, call->member, msg, reply, &verdict, &error))
        {
          /* Now the request itself. */
          call_end_attempt (task);
          call_attempt (task);
        }
      else if (verdict == VERDICT_NEXT)
        call_failed_full (task, error, FALSE);
      else
        call_return_error (task, error);
      return;
    }

  response = finish_response (client, call->member, call->path, msg, reply, &verdict, &error);
  if (verdict == VERDICT_NEXT)
    {
      call_failed_full (task, error, FALSE);
      return;
    }
  if (verdict == VERDICT_REAUTH && call_reauthenticate (task))
    {
      g_error_free (error);
      return;
    }

  g_atomic_int_set (&client->preferred, (gint) call->member);
  if (response == NULL)
    {
      call_return_error (task, error);
      return;
    }
  call_end_attempt (task);
  g_task_return_pointer (task, response, (GDestroyNotify) _gsm_etcd_response_free);
  g_object_unref (task);
}

static void stream_read (GTask *task);

/* Whether the first message of the stream shows a member that serves,
 * with a token it accepts; if not, the call goes on. */
static gboolean
stream_check_first (GTask *task)
{
  Call *call = g_task_get_task_data (task);
  g_autoptr (GsmEtcdResponse) response = NULL;
  const char *data = (const char *) call->head->data;
  const char *end = memchr (data, '\n', call->head->len);

  /* Anything else is for the caller to judge. */
  if (end == NULL || !_gsm_etcd_response_parse (data, end - data, &response, NULL) ||
      !response->has_error)
    return TRUE;

  if (response->error_code == GRPC_UNAVAILABLE)
    {
      call_failed_full (task, g_error_new (GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE, "etcd at %s: %s failed: %s", call->client->endpoints[call->member], call->path, response->error_message),
                        FALSE);
      return FALSE;
    }
  if (token_refused (call->client, response) && call_reauthenticate (task))
    return FALSE;

  return TRUE;
}

static void
stream_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask         *task = user_data;
  Call          *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  g_autoptr (GBytes) bytes = NULL;
  GError       *error = NULL;
  gsize         len;
  const guint8 *data;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (bytes == NULL)
    {
      call_failed (task, error);
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      call_failed (task, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                              "The stream ended before its first message"));
      return;
    }

  data = g_bytes_get_data (bytes, &len);
  g_byte_array_append (call->head, data, (guint) len);
  if (memchr (data, '\n', len) == NULL && call->head->len < GSM_ETCD_MAX_RESPONSE)
    {
      stream_read (task);
      return;
    }

  /* The first message is there: etcd's answer to the request. */
  if (!stream_check_first (task))
    return;
  g_atomic_int_set (&client->preferred, (gint) call->member);
  g_task_return_pointer (task, g_object_ref (call->stream_in), g_object_unref);
  call_end_attempt (task);
  g_object_unref (task);
}

static void
stream_read (GTask *task)
{
  Call *call = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (call->stream_in, STREAM_READ_SIZE, G_PRIORITY_DEFAULT,
                                   call->attempt_cancellable, stream_read_cb, task);
}

static void
stream_sent_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  Call  *call = g_task_get_task_data (task);
  g_autoptr (GInputStream) stream = NULL;
  GError *error = NULL;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (stream == NULL)
    {
      call_failed (task, error);
      return;
    }
  if (soup_message_get_status (call->msg) != SOUP_STATUS_OK)
    {
      /* Not a failure of the member: etcd refused the request. */
      call_return_error (task, g_error_new (GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                                            "etcd at %s: %s failed: HTTP %u %s",
                                            call->client->endpoints[call->member], call->path,
                                            soup_message_get_status (call->msg),
                                            soup_message_get_reason_phrase (call->msg)));
      return;
    }

  call->stream_in = g_steal_pointer (&stream);
  g_byte_array_set_size (call->head, 0);
  stream_read (task);
}

static void
call_attempt (GTask *task)
{
  Call          *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  GCancellable  *cancellable = g_task_get_cancellable (task);

  /* Every member once; then, with a short timeout per member, round after
   * round until the deadline (a member may hang while it waits for a
   * leader that stopped, and answer at once the next time), at most three
   * rounds so that refusals do not spin. */
  if (call->tried >= client->n_endpoints &&
      (call->timeout_ms == 0 || g_get_monotonic_time () >= call->deadline ||
       call->tried >= 3 * client->n_endpoints))
    {
      GError *error = NULL;

      set_unreachable (client, call->failures, &error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  call->member = (call->first + call->tried) % client->n_endpoints;
  call->authenticating = needs_token (client);
  if (call->authenticating)
    {
      g_autoptr (GBytes) auth = auth_body (client);

      call->msg = new_message (client, call->member, AUTHENTICATE, auth);
    }
  else
    call->msg = new_message (client, call->member, call->path, call->body);
  call->attempt_cancellable = g_cancellable_new ();
  call->timed_out = FALSE;
  if (cancellable != NULL)
    call->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (call_cancelled_cb),
                                                g_object_ref (call->attempt_cancellable),
                                                g_object_unref);
  /* The short timeout is for moving on to another member; a single one
   * gets the time of a request. */
  call->attempt_timeout_ms = call->timeout_ms;
  if (client->n_endpoints == 1)
    call->attempt_timeout_ms = MAX (call->timeout_ms, client->timeout_ms);
  if (call->timeout_ms > 0)
    {
      call->timer = g_timeout_source_new (call->attempt_timeout_ms);
      g_source_set_callback (call->timer, call_timeout_cb, call, NULL);
      g_source_set_static_name (call->timer, "[gsm] etcd request timeout");
      g_source_attach (call->timer, g_task_get_context (task));
    }

  if (call->stream && !call->authenticating)
    soup_session_send_async (client->stream_session, call->msg, G_PRIORITY_DEFAULT,
                             call->attempt_cancellable, stream_sent_cb, task);
  else
    soup_session_send_and_read_async (client->session, call->msg, G_PRIORITY_DEFAULT,
                                      call->attempt_cancellable, post_read_cb, task);
}

static void
call_start (GsmEtcdClient      *client,
            const char         *path,
            const char         *body,
            gsize               len,
            gboolean            stream,
            guint               timeout_ms,
            GCancellable       *cancellable,
            GAsyncReadyCallback callback,
            gpointer            user_data,
            gpointer            source_tag)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Call  *call = g_new0 (Call, 1);

  g_task_set_source_tag (task, source_tag);
  call->client = client;
  call->path = g_strdup (path);
  call->body = g_bytes_new (body, len);
  call->stream = stream;
  call->timeout_ms = timeout_ms;
  call->first = _gsm_etcd_client_get_preferred (client);
  call->deadline = g_get_monotonic_time () +
                   (gint64) MAX (client->timeout_ms, timeout_ms * client->n_endpoints) * 1000;
  call->failures = g_string_new (NULL);
  call->head = g_byte_array_new ();
  g_task_set_task_data (task, call, call_free);
  call_attempt (task);
}

/*
 * _gsm_etcd_client_post_async:
 * @timeout_ms: how long one member may take to answer before the next is
 *   asked; members are asked in turn until one answers or the timeout of
 *   the client (at least one round) passed. 0: each member once, with the
 *   timeout of the client
 *
 * Sends a request; @callback runs in the thread-default main context of
 * the caller.
 */
void
_gsm_etcd_client_post_async (GsmEtcdClient      *client,
                             const char         *path,
                             const char         *body,
                             gsize               len,
                             guint               timeout_ms,
                             GCancellable       *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer            user_data)
{
  call_start (client, path, body, len, FALSE, timeout_ms, cancellable, callback, user_data,
              _gsm_etcd_client_post_async);
}

GsmEtcdResponse *
_gsm_etcd_client_post_finish (GsmEtcdClient *client,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == _gsm_etcd_client_post_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/*
 * _gsm_etcd_client_open_stream_async:
 * @timeout_ms: how long one member may take to send the first message of
 *   the stream before the next is asked, as for
 *   _gsm_etcd_client_post_async(); 0: each member once, without a limit
 *
 * Sends a request whose response is a stream of messages, one a line (a
 * watch), and completes once the first message arrived.
 */
void
_gsm_etcd_client_open_stream_async (GsmEtcdClient      *client,
                                    const char         *path,
                                    const char         *body,
                                    gsize               len,
                                    guint               timeout_ms,
                                    GCancellable       *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer            user_data)
{
  call_start (client, path, body, len, TRUE, timeout_ms, cancellable, callback, user_data,
              _gsm_etcd_client_open_stream_async);
}

/*
 * _gsm_etcd_client_open_stream_finish:
 * @member: (out) (optional): the member that serves the stream
 * @first: (out): what the stream brought so far: its first message (and
 *   possibly more), up to a newline
 *
 * Returns: (transfer full): the rest of the stream; closing it ends the
 *   request
 */
GInputStream *
_gsm_etcd_client_open_stream_finish (GsmEtcdClient *client,
                                     GAsyncResult  *result,
                                     guint         *member,
                                     GBytes       **first,
                                     GError       **error)
{
  Call *call;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == _gsm_etcd_client_open_stream_async, NULL);

  call = g_task_get_task_data (G_TASK (result));
  if (member != NULL)
    *member = call->member;
  *first = NULL;
  if (g_task_had_error (G_TASK (result)))
    return g_task_propagate_pointer (G_TASK (result), error);
  *first = g_bytes_new (call->head->data, call->head->len);
  return g_task_propagate_pointer (G_TASK (result), error);
}
