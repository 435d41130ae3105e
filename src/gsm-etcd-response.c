/* gsm-etcd-response.c: what the answers of etcd's v3 JSON gateway mean
 *
 * Parses a response (a whole body, or one line of a stream) into a
 * #GsmEtcdResponse: the results of range, txn, lease grant and keepalive,
 * watch and authenticate requests, or etcd's error. The bytes come from
 * the network and are not trusted: the JSON is checked first (size,
 * depth, grammar), members of the wrong type are refused, and keys and
 * values are decoded from strict base64.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-etcd-response-private.h"
#include "gsm-json-private.h"

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
  if (response->token != NULL)
    explicit_bzero (response->token, strlen (response->token));
  g_free (response->token);
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

/* *@out: @member of @obj, or NULL if it is absent or null. FALSE if it is
 * not of @type (with JSON_NODE_VALUE, a value of @value_type unless that
 * is G_TYPE_INVALID): @member @what. */
static gboolean
read_member (JsonObject  *obj,
             const char  *member,
             JsonNodeType type,
             GType        value_type,
             const char  *what,
             JsonNode   **out,
             GError     **error)
{
  JsonNode *node = json_object_get_member (obj, member);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_TYPE (node) != type ||
      (value_type != G_TYPE_INVALID && json_node_get_value_type (node) != value_type))
    return bad_response (error, member, what);
  *out = node;
  return TRUE;
}

/* etcd writes 64-bit integers as strings; plain numbers are accepted too. */
static gboolean
read_int64 (JsonObject *obj,
            const char *member,
            gint64     *out,
            GError    **error)
{
  JsonNode *node;

  *out = 0;
  if (!read_member (obj, member, JSON_NODE_VALUE, G_TYPE_INVALID, "is not a number", &node, error))
    return FALSE;
  if (node == NULL)
    return TRUE;

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
read_bool (JsonObject *obj,
           const char *member,
           gboolean   *out,
           GError    **error)
{
  JsonNode *node;
  gboolean  ok = read_member (obj, member, JSON_NODE_VALUE, G_TYPE_BOOLEAN, "is not a boolean",
                              &node, error);

  *out = node != NULL && json_node_get_boolean (node);
  return ok;
}

static gboolean
read_string (JsonObject  *obj,
             const char  *member,
             const char **out,
             GError     **error)
{
  JsonNode *node;
  gboolean  ok = read_member (obj, member, JSON_NODE_VALUE, G_TYPE_STRING, "is not a string",
                              &node, error);

  *out = node != NULL ? json_node_get_string (node) : NULL;
  return ok;
}

static gboolean
read_object (JsonObject  *obj,
             const char  *member,
             JsonObject **out,
             GError     **error)
{
  JsonNode *node;
  gboolean  ok = read_member (obj, member, JSON_NODE_OBJECT, G_TYPE_INVALID, "is not an object",
                              &node, error);

  *out = node != NULL ? json_node_get_object (node) : NULL;
  return ok;
}

static gboolean
read_array (JsonObject *obj,
            const char *member,
            JsonArray **out,
            GError    **error)
{
  JsonNode *node;
  gboolean  ok = read_member (obj, member, JSON_NODE_ARRAY, G_TYPE_INVALID, "is not an array",
                              &node, error);

  *out = node != NULL ? json_node_get_array (node) : NULL;
  return ok;
}

/* Strict base64 (the alphabet, padding only at the end, length a
 * multiple of 4), so that nothing is silently skipped. */
static gboolean
decode_base64 (const char *text,
               const char *member,
               guchar    **out,
               gsize      *out_len,
               GError    **error)
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
parse_kv (JsonNode *node,
          GError  **error)
{
  g_autoptr (GError) local_error = NULL;
  GsmEtcdKv  *kv;
  JsonObject *obj;
  const char *key = NULL, *value = NULL;
  guchar     *data = NULL;
  gsize       len = 0;

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
parse_body (JsonObject      *body,
            GsmEtcdResponse *r,
            GError         **error)
{
  JsonObject *header = NULL;
  JsonArray  *array = NULL;
  const char *token = NULL;

  if (!read_object (body, "header", &header, error))
    return FALSE;
  if (header != NULL && !read_int64 (header, "revision", &r->revision, error))
    return FALSE;

  if (!read_bool (body, "succeeded", &r->succeeded, error) ||
      !read_int64 (body, "ID", &r->lease_id, error) ||
      !read_int64 (body, "TTL", &r->ttl, error) ||
      !read_bool (body, "created", &r->created, error) ||
      !read_bool (body, "canceled", &r->canceled, error) ||
      !read_int64 (body, "compact_revision", &r->compact_revision, error) ||
      !read_string (body, "token", &token, error))
    return FALSE;
  r->token = g_strdup (token);

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
      JsonNode                *node = json_array_get_element (array, i);
      g_autofree GsmEtcdEvent *event = NULL;
      JsonObject              *obj, *kv_obj = NULL;
      const char              *type = NULL;

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
parse_error (JsonNode        *node,
             JsonObject      *top,
             GsmEtcdResponse *r,
             GError         **error)
{
  gint64      code = 0;
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
_gsm_etcd_response_parse (const char       *data,
                          gsize             len,
                          GsmEtcdResponse **out,
                          GError          **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GsmEtcdResponse) r = NULL;
  g_autoptr (GError) local_error = NULL;
  JsonObject *top, *body;
  JsonNode   *node;

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
