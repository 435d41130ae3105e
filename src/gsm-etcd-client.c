/* gsm-etcd-client.c: requests to etcd's v3 JSON gateway
 *
 * The connection layer of the etcd registry: which members to ask, how
 * (libsoup), and what their answers mean (the response parser). It knows
 * nothing of sessions or VMs.
 *
 * Requests are POSTs of JSON bodies. A blocking request (from any thread)
 * and an asynchronous one (in the thread-default main context of the
 * caller) return a parsed #GsmEtcdResponse, or an error naming the
 * endpoint. A stream (the watch) is opened asynchronously and handed over
 * once etcd sent its first message.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "gsm-error.h"
#include "gsm-etcd-client-private.h"
#include "gsm-json-private.h"

/* ---- responses --------------------------------------------------------- */

static void
kv_free (gpointer data)
{
  GsmEtcdKv *kv = data;

  if (kv == NULL)
    return;
  g_free (kv->key);
  g_clear_pointer (&kv->value, g_bytes_unref);
  g_free (kv);
}

static void
event_free (gpointer data)
{
  GsmEtcdEvent *event = data;

  kv_free (event->kv);
  g_free (event);
}

void
_gsm_etcd_response_free (GsmEtcdResponse *response)
{
  if (response == NULL)
    return;
  g_clear_pointer (&response->kvs, g_ptr_array_unref);
  g_clear_pointer (&response->events, g_ptr_array_unref);
  g_free (response->error_message);
  g_free (response);
}

static gboolean
bad_response (GError    **error,
              const char *member,
              const char *what)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
               "Invalid etcd response: “%s” %s", member, what);
  return FALSE;
}

/* etcd writes 64-bit integers as strings; plain numbers are accepted too. */
static gboolean
read_int64 (JsonObject  *obj,
            const char  *member,
            gint64      *out,
            GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = 0;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return bad_response (error, member, "is not a number");

  switch (json_node_get_value_type (node))
    {
    case G_TYPE_STRING:
      if (!g_ascii_string_to_signed (json_node_get_string (node), 10, G_MININT64, G_MAXINT64,
                                     out, NULL))
        return bad_response (error, member, "is not a 64-bit integer");
      return TRUE;
    case G_TYPE_INT64:
      *out = json_node_get_int (node);
      return TRUE;
    default:
      return bad_response (error, member, "is not a number");
    }
}

static gboolean
read_bool (JsonObject  *obj,
           const char  *member,
           gboolean    *out,
           GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = FALSE;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return bad_response (error, member, "is not a boolean");
  *out = json_node_get_boolean (node);
  return TRUE;
}

static gboolean
read_string (JsonObject  *obj,
             const char  *member,
             const char **out,
             GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return bad_response (error, member, "is not a string");
  *out = json_node_get_string (node);
  return TRUE;
}

static gboolean
read_object (JsonObject  *obj,
             const char  *member,
             JsonObject **out,
             GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return bad_response (error, member, "is not an object");
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
read_array (JsonObject  *obj,
            const char  *member,
            JsonArray  **out,
            GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return bad_response (error, member, "is not an array");
  *out = json_node_get_array (node);
  return TRUE;
}

/* Strict base64 (the alphabet, padding only at the end, length a
 * multiple of 4), so that nothing is silently skipped. */
static gboolean
decode_base64 (const char  *text,
               const char  *member,
               guchar     **out,
               gsize       *out_len,
               GError     **error)
{
  gsize len = strlen (text);
  gsize pad = 0;

  if (len % 4 != 0)
    return bad_response (error, member, "is not base64");
  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (c == '=')
        {
          if (i < len - 2)
            return bad_response (error, member, "is not base64");
          pad++;
        }
      else if (pad > 0 || !(g_ascii_isalnum (c) || c == '+' || c == '/'))
        return bad_response (error, member, "is not base64");
    }

  if (len == 0)
    {
      *out = (guchar *) g_strdup ("");
      *out_len = 0;
      return TRUE;
    }

  *out = g_base64_decode (text, out_len);
  /* NUL-terminate, so that keys can be used as strings. */
  *out = g_realloc (*out, *out_len + 1);
  (*out)[*out_len] = '\0';
  return TRUE;
}

static GsmEtcdKv *
parse_kv (JsonNode  *node,
          GError   **error)
{
  g_autoptr(GError) local_error = NULL;
  GsmEtcdKv *kv;
  JsonObject *obj;
  const char *key = NULL, *value = NULL;
  guchar *data = NULL;
  gsize len = 0;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      bad_response (error, "kv", "is not an object");
      return NULL;
    }
  obj = json_node_get_object (node);

  kv = g_new0 (GsmEtcdKv, 1);
  if (!read_string (obj, "key", &key, &local_error) ||
      !read_string (obj, "value", &value, &local_error) ||
      !read_int64 (obj, "create_revision", &kv->create_revision, &local_error) ||
      !read_int64 (obj, "mod_revision", &kv->mod_revision, &local_error) ||
      !read_int64 (obj, "lease", &kv->lease, &local_error))
    goto fail;

  if (key == NULL)
    {
      bad_response (&local_error, "kv", "has no key");
      goto fail;
    }
  if (!decode_base64 (key, "key", &data, &len, &local_error))
    goto fail;
  kv->key = (char *) data;
  kv->key_len = len;

  if (value != NULL)
    {
      if (!decode_base64 (value, "value", &data, &len, &local_error))
        goto fail;
      kv->value = g_bytes_new_take (data, len);
    }
  else
    kv->value = g_bytes_new_static ("", 0);

  return kv;

fail:
  kv_free (kv);
  g_propagate_error (error, g_steal_pointer (&local_error));
  return NULL;
}

static gboolean
parse_body (JsonObject       *body,
            GsmEtcdResponse  *r,
            GError          **error)
{
  JsonObject *header = NULL;
  JsonArray *array = NULL;

  if (!read_object (body, "header", &header, error))
    return FALSE;
  if (header != NULL && !read_int64 (header, "revision", &r->revision, error))
    return FALSE;

  if (!read_bool (body, "succeeded", &r->succeeded, error) ||
      !read_int64 (body, "ID", &r->lease_id, error) ||
      !read_int64 (body, "TTL", &r->ttl, error) ||
      !read_bool (body, "created", &r->created, error) ||
      !read_bool (body, "canceled", &r->canceled, error) ||
      !read_int64 (body, "compact_revision", &r->compact_revision, error))
    return FALSE;

  if (!read_array (body, "kvs", &array, error))
    return FALSE;
  r->kvs = g_ptr_array_new_with_free_func (kv_free);
  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      GsmEtcdKv *kv = parse_kv (json_array_get_element (array, i), error);

      if (kv == NULL)
        return FALSE;
      g_ptr_array_add (r->kvs, kv);
    }

  if (!read_array (body, "events", &array, error))
    return FALSE;
  r->events = g_ptr_array_new_with_free_func (event_free);
  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);
      g_autofree GsmEtcdEvent *event = NULL;
      JsonObject *obj, *kv_obj = NULL;
      const char *type = NULL;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return bad_response (error, "events", "holds something other than objects");
      obj = json_node_get_object (node);
      if (!read_string (obj, "type", &type, error) ||
          !read_object (obj, "kv", &kv_obj, error))
        return FALSE;

      event = g_new0 (GsmEtcdEvent, 1);
      if (type == NULL || g_str_equal (type, "PUT"))
        event->type = GSM_ETCD_EVENT_PUT;
      else if (g_str_equal (type, "DELETE"))
        event->type = GSM_ETCD_EVENT_DELETE;
      else
        return bad_response (error, "type", "is neither PUT nor DELETE");
      if (kv_obj == NULL)
        return bad_response (error, "events", "has an event without a kv");
      event->kv = parse_kv (json_object_get_member (obj, "kv"), error);
      if (event->kv == NULL)
        return FALSE;
      g_ptr_array_add (r->events, g_steal_pointer (&event));
    }

  return TRUE;
}

static gboolean
parse_error (JsonNode         *node,
             JsonObject       *top,
             GsmEtcdResponse  *r,
             GError          **error)
{
  gint64 code = 0;
  const char *message = NULL;

  r->has_error = TRUE;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      /* In a stream: {"error": {"grpc_code": N, "message": "…"}} */
      JsonObject *obj = json_node_get_object (node);

      if (!read_int64 (obj, "grpc_code", &code, error) ||
          !read_string (obj, "message", &message, error))
        return FALSE;
    }
  else
    {
      /* {"error": "…", "message": "…", "code": N} */
      if (!read_string (top, "error", &message, error) ||
          !read_int64 (top, "code", &code, error))
        return FALSE;
    }

  r->error_code = (int) CLAMP (code, G_MININT, G_MAXINT);
  r->error_message = g_strdup (message ? message : "unknown error");
  return TRUE;
}

/*
 * _gsm_etcd_response_parse:
 * @data: the raw bytes of one response of the JSON gateway (a whole body,
 *   or one line of the watch or keepalive stream); untrusted
 * @len: the length of @data
 * @out: (out): the response
 *
 * Reads any response of the endpoints this backend uses: range, txn, lease
 * grant and keepalive, watch (wrapped in "result"), and errors. Bounded
 * nesting (json-glib 1.6 has no limit); keys and values are decoded.
 *
 * Returns: %FALSE with %GSM_ERROR_BACKEND_UNAVAILABLE if @data is not
 *   such a response
 */
gboolean
_gsm_etcd_response_parse (const char        *data,
                          gsize              len,
                          GsmEtcdResponse  **out,
                          GError           **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GsmEtcdResponse) r = NULL;
  g_autoptr(GError) local_error = NULL;
  JsonObject *top, *body;
  JsonNode *node;

  *out = NULL;

  if (len > GSM_ETCD_MAX_RESPONSE)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "Invalid etcd response: larger than %d bytes", GSM_ETCD_MAX_RESPONSE);
      return FALSE;
    }

  if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "Invalid etcd response: %s", local_error->message);
      return FALSE;
    }

  parser = json_parser_new_immutable ();
  root = _gsm_json_parse (parser, data, len, &local_error);
  if (root == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "Invalid etcd response: %s", local_error->message);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    return bad_response (error, "response", "is not an object");
  top = json_node_get_object (root);

  r = g_new0 (GsmEtcdResponse, 1);

  node = json_object_get_member (top, "error");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      if (!parse_error (node, top, r, error))
        return FALSE;
      *out = g_steal_pointer (&r);
      return TRUE;
    }

  /* Streams wrap each message in "result". */
  if (!read_object (top, "result", &body, error))
    return FALSE;
  if (!parse_body (body != NULL ? body : top, r, error))
    return FALSE;

  *out = g_steal_pointer (&r);
  return TRUE;
}

/* ---- the URI ----------------------------------------------------------- */

static gboolean
bad_uri (const char  *uri,
         GError     **error)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
               "Invalid registry URI “%s”: expected etcd://HOST:PORT[,HOST:PORT…][/PREFIX] "
               "(or etcds:// for TLS)", uri);
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
_gsm_etcd_parse_uri (const char   *uri,
                     char       ***endpoints,
                     char        **prefix,
                     GError      **error)
{
  g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = NULL;
  g_autofree char *authority = NULL;
  g_auto(GStrv) hosts = NULL;
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
      g_autoptr(GUri) parsed = NULL;
      g_autoptr(GError) local_error = NULL;
      const char *host;
      int port;

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

/* ---- the client -------------------------------------------------------- */

#define STREAM_READ_SIZE (64 * 1024)

struct _GsmEtcdClient
{
  char        **endpoints;      /* http(s)://HOST:PORT, one per member */
  guint         n_endpoints;
  char         *description;    /* the endpoints, for messages */
  gint          preferred;      /* atomic: the member that answered last */
  SoupSession  *session;        /* requests, with an I/O timeout */
  SoupSession  *stream_session; /* streams: no I/O timeout */
};

/*
 * _gsm_etcd_client_new:
 * @uri: the registry URI (see _gsm_etcd_parse_uri())
 * @timeout: seconds a request may take (connecting included)
 * @prefix: (out): the key prefix of @uri
 *
 * Returns: (transfer full): a client; nothing is sent yet
 */
GsmEtcdClient *
_gsm_etcd_client_new (const char  *uri,
                      double       timeout,
                      char       **prefix,
                      GError     **error)
{
  g_auto(GStrv) endpoints = NULL;
  guint timeout_s = (guint) CLAMP (timeout + 0.999, 1, 3600);
  GsmEtcdClient *client;

  if (!_gsm_etcd_parse_uri (uri, &endpoints, prefix, error))
    return NULL;

  client = g_new0 (GsmEtcdClient, 1);
  client->n_endpoints = g_strv_length (endpoints);
  client->endpoints = g_steal_pointer (&endpoints);
  client->description = g_strjoinv (",", client->endpoints);
  client->session = soup_session_new_with_options ("timeout", timeout_s,
                                                   "idle-timeout", 60,
                                                   "user-agent", "gsm-session/" PACKAGE_VERSION,
                                                   NULL);
  client->stream_session = soup_session_new_with_options ("timeout", 0,
                                                          "user-agent", "gsm-session/" PACKAGE_VERSION,
                                                          NULL);
  return client;
}

void
_gsm_etcd_client_free (GsmEtcdClient *client)
{
  if (client == NULL)
    return;
  g_clear_object (&client->session);
  g_clear_object (&client->stream_session);
  g_strfreev (client->endpoints);
  g_free (client->description);
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

static SoupMessage *
new_message (GsmEtcdClient *client,
             guint          member,
             const char    *path,
             GBytes        *body)
{
  g_autofree char *url = g_strconcat (client->endpoints[member], path, NULL);
  SoupMessage *msg = soup_message_new ("POST", url);

  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  return msg;
}

/* gRPC UNAVAILABLE: what etcd answers when this member cannot serve now
 * ("etcdserver: no leader", "request timed out", "leader changed"…), when
 * another one may. */
#define GRPC_UNAVAILABLE 14

/* Turns a body into a response, or an error naming the endpoint. An error
 * reported by etcd about a missing lease becomes
 * %GSM_ERROR_OWNERSHIP_LAPSED. *@try_next: the error is this member's, not
 * the request's: another member may serve it. */
static GsmEtcdResponse *
finish_response (GsmEtcdClient  *client,
                 guint           member,
                 const char     *path,
                 SoupMessage    *msg,
                 GBytes         *body,
                 gboolean       *try_next,
                 GError        **error)
{
  const char *endpoint = client->endpoints[member];
  g_autoptr(GError) local_error = NULL;
  GsmEtcdResponse *response = NULL;
  guint status = soup_message_get_status (msg);
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  *try_next = FALSE;
  if (!_gsm_etcd_response_parse (data, len, &response, &local_error))
    {
      /* Not etcd's answer: a proxy, or a server in trouble. */
      *try_next = SOUP_STATUS_IS_SERVER_ERROR (status);
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

      *try_next = response->error_code == GRPC_UNAVAILABLE;

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

/* A transport error after which the same member is asked once more, on a
 * new connection: a pooled connection the server closed (it restarted). A
 * refused or timed-out connection is final. */
static gboolean
worth_retrying_here (const GError *error)
{
  return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) &&
         !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) &&
         !g_error_matches (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND);
}

static void
add_failure (GString      *failures,
             GsmEtcdClient *client,
             guint         member,
             const char   *message)
{
  if (failures->len > 0)
    g_string_append (failures, "; ");
  if (client->n_endpoints > 1)
    g_string_append_printf (failures, "%s: ", client->endpoints[member]);
  g_string_append (failures, message);
}

static void
set_unreachable (GsmEtcdClient  *client,
                 GString        *failures,
                 GError        **error)
{
  if (client->n_endpoints == 1)
    g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                 "etcd at %s is unreachable: %s", client->endpoints[0], failures->str);
  else
    g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                 "etcd is unreachable at every member (%s)", failures->str);
}

/*
 * _gsm_etcd_client_post:
 * @path: such as `/v3/kv/range`
 * @body: the JSON request
 *
 * Sends a request and waits for its response. From any thread.
 *
 * Returns: (transfer full): the response, or %NULL with
 *   %GSM_ERROR_BACKEND_UNAVAILABLE naming the endpoint (or
 *   %GSM_ERROR_OWNERSHIP_LAPSED if etcd knows no such lease)
 */
GsmEtcdResponse *
_gsm_etcd_client_post (GsmEtcdClient  *client,
                       const char     *path,
                       const char     *body,
                       gsize           len,
                       GCancellable   *cancellable,
                       GError        **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new (body, len);
  g_autoptr(GString) failures = g_string_new (NULL);
  guint first = _gsm_etcd_client_get_preferred (client);

  for (guint i = 0; i < client->n_endpoints; i++)
    {
      guint member = (first + i) % client->n_endpoints;

      for (int attempt = 0;; attempt++)
        {
          g_autoptr(SoupMessage) msg = new_message (client, member, path, bytes);
          g_autoptr(GError) local_error = NULL;
          g_autoptr(GBytes) reply = NULL;

          reply = soup_session_send_and_read (client->session, msg, cancellable, &local_error);
          if (reply != NULL)
            {
              GsmEtcdResponse *response;
              gboolean try_next;

              response = finish_response (client, member, path, msg, reply, &try_next, &local_error);
              if (!try_next)
                {
                  g_atomic_int_set (&client->preferred, (gint) member);
                  if (response == NULL)
                    g_propagate_error (error, g_steal_pointer (&local_error));
                  return response;
                }
              add_failure (failures, client, member, local_error->message);
              break;
            }

          if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            {
              g_propagate_error (error, g_steal_pointer (&local_error));
              return NULL;
            }
          if (attempt == 0 && worth_retrying_here (local_error))
            continue;

          add_failure (failures, client, member, local_error->message);
          break;
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
  guint          timeout_ms;      /* per member; 0: the session's */
  guint          first;
  guint          tried;           /* members asked so far */
  int            attempt;         /* on this member */
  guint          member;
  GString       *failures;
  GCancellable  *attempt_cancellable;
  gulong         cancelled_id;
  GSource       *timer;
  gboolean       timed_out;
  SoupMessage   *msg;
  GInputStream  *stream_in;
  GByteArray    *head;            /* what the stream brought so far */
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

/* The attempt on this member failed with @error: the next attempt, or the
 * end. Takes @error. With @retry_here, a transport error that is worth it
 * is retried on the same member first. */
static void
call_failed_full (GTask    *task,
                  GError   *error,
                  gboolean  retry_here)
{
  Call *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  gboolean timed_out = call->timed_out;

  call_end_attempt (task);

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
                   "No answer within %u ms", call->timeout_ms);
    }

  if (retry_here && call->attempt++ == 0 && worth_retrying_here (error))
    {
      g_error_free (error);
      call_attempt (task);
      return;
    }

  add_failure (call->failures, client, call->member, error->message);
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

static void
post_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  Call *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(SoupMessage) msg = g_object_ref (call->msg);
  GError *error = NULL;
  GsmEtcdResponse *response;
  gboolean try_next;

  reply = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  if (reply == NULL)
    {
      call_failed (task, error);
      return;
    }

  response = finish_response (client, call->member, call->path, msg, reply, &try_next, &error);
  if (try_next)
    {
      call_failed_full (task, error, FALSE);
      return;
    }

  call_end_attempt (task);
  g_atomic_int_set (&client->preferred, (gint) call->member);
  if (response != NULL)
    g_task_return_pointer (task, response, (GDestroyNotify) _gsm_etcd_response_free);
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static void stream_read (GTask *task);

/* Whether the first message of the stream shows a member that serves; if
 * not, the call goes on with the next member. */
static gboolean
stream_check_first (GTask *task)
{
  Call *call = g_task_get_task_data (task);
  g_autoptr(GsmEtcdResponse) response = NULL;
  const char *data = (const char *) call->head->data;
  const char *end = memchr (data, '\n', call->head->len);

  /* Anything else is for the caller to judge. */
  if (end == NULL || !_gsm_etcd_response_parse (data, end - data, &response, NULL) ||
      !response->has_error)
    return TRUE;

  if (response->error_code == GRPC_UNAVAILABLE)
    {
      call_failed_full (task, g_error_new (GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                                           "etcd at %s: %s failed: %s",
                                           call->client->endpoints[call->member], call->path,
                                           response->error_message),
                        FALSE);
      return FALSE;
    }

  return TRUE;
}

static void
stream_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  Call *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  gsize len;
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
  Call *call = g_task_get_task_data (task);
  g_autoptr(GInputStream) stream = NULL;
  GError *error = NULL;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (stream == NULL)
    {
      call_failed (task, error);
      return;
    }
  if (soup_message_get_status (call->msg) != SOUP_STATUS_OK)
    {
      GsmEtcdClient *client = call->client;

      /* Not a failure of the member: etcd refused the request. */
      error = g_error_new (GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                           "etcd at %s: %s failed: HTTP %u %s", client->endpoints[call->member],
                           call->path, soup_message_get_status (call->msg),
                           soup_message_get_reason_phrase (call->msg));
      call_end_attempt (task);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  call->stream_in = g_steal_pointer (&stream);
  g_byte_array_set_size (call->head, 0);
  stream_read (task);
}

static void
call_attempt (GTask *task)
{
  Call *call = g_task_get_task_data (task);
  GsmEtcdClient *client = call->client;
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (call->tried >= client->n_endpoints)
    {
      GError *error = NULL;

      set_unreachable (client, call->failures, &error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  call->member = (call->first + call->tried) % client->n_endpoints;
  call->msg = new_message (client, call->member, call->path, call->body);
  call->attempt_cancellable = g_cancellable_new ();
  call->timed_out = FALSE;
  if (cancellable != NULL)
    call->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (call_cancelled_cb),
                                                g_object_ref (call->attempt_cancellable),
                                                g_object_unref);
  if (call->timeout_ms > 0)
    {
      call->timer = g_timeout_source_new (call->timeout_ms);
      g_source_set_callback (call->timer, call_timeout_cb, call, NULL);
      g_source_set_static_name (call->timer, "[gsm] etcd request timeout");
      g_source_attach (call->timer, g_task_get_context (task));
    }

  if (call->stream)
    soup_session_send_async (client->stream_session, call->msg, G_PRIORITY_DEFAULT,
                             call->attempt_cancellable, stream_sent_cb, task);
  else
    soup_session_send_and_read_async (client->session, call->msg, G_PRIORITY_DEFAULT,
                                      call->attempt_cancellable, post_read_cb, task);
}

static void
call_start (GsmEtcdClient       *client,
            const char          *path,
            const char          *body,
            gsize                len,
            gboolean             stream,
            guint                timeout_ms,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data,
            gpointer             source_tag)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Call *call = g_new0 (Call, 1);

  g_task_set_source_tag (task, source_tag);
  call->client = client;
  call->path = g_strdup (path);
  call->body = g_bytes_new (body, len);
  call->stream = stream;
  call->timeout_ms = timeout_ms;
  call->first = _gsm_etcd_client_get_preferred (client);
  call->failures = g_string_new (NULL);
  call->head = g_byte_array_new ();
  g_task_set_task_data (task, call, call_free);
  call_attempt (task);
}

/*
 * _gsm_etcd_client_post_async:
 * @timeout_ms: how long one member may take to answer before the next is
 *   asked; 0 for the timeout of the client
 *
 * Sends a request; @callback runs in the thread-default main context of
 * the caller.
 */
void
_gsm_etcd_client_post_async (GsmEtcdClient       *client,
                             const char          *path,
                             const char          *body,
                             gsize                len,
                             guint                timeout_ms,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  call_start (client, path, body, len, FALSE, timeout_ms, cancellable, callback, user_data,
              _gsm_etcd_client_post_async);
}

GsmEtcdResponse *
_gsm_etcd_client_post_finish (GsmEtcdClient  *client,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == _gsm_etcd_client_post_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/*
 * _gsm_etcd_client_open_stream_async:
 * @timeout_ms: how long one member may take to send the first message of
 *   the stream before the next is asked; 0: no limit
 *
 * Sends a request whose response is a stream of messages, one a line (a
 * watch), and completes once the first message arrived.
 */
void
_gsm_etcd_client_open_stream_async (GsmEtcdClient       *client,
                                    const char          *path,
                                    const char          *body,
                                    gsize                len,
                                    guint                timeout_ms,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
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
_gsm_etcd_client_open_stream_finish (GsmEtcdClient  *client,
                                     GAsyncResult   *result,
                                     guint          *member,
                                     GBytes        **first,
                                     GError        **error)
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
