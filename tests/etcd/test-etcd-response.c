/* test-etcd-response.c: reading etcd's JSON gateway responses, and the URI
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"

static GsmEtcdResponse *
parse_ok (const char *text)
{
  g_autoptr (GError) error = NULL;
  GsmEtcdResponse *response = NULL;

  g_assert_true (_gsm_etcd_response_parse (text, strlen (text), &response, &error));
  g_assert_no_error (error);
  g_assert_nonnull (response);
  return response;
}

static void
parse_fails (const char *text,
             gsize       len)
{
  g_autoptr (GError) error = NULL;
  GsmEtcdResponse *response = NULL;

  g_assert_false (_gsm_etcd_response_parse (text, len, &response, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE);
  g_assert_null (response);
}

static void
test_range (void)
{
  /* Recorded from etcd 3.4.23; key "/p/sessions/a", value "{}" */
  g_autoptr (GsmEtcdResponse) r = parse_ok (
      "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\","
      "\"revision\":\"12\",\"raft_term\":\"2\"},\"kvs\":[{\"key\":\"L3Avc2Vzc2lvbnMvYQ==\","
      "\"create_revision\":\"6\",\"mod_revision\":\"7\",\"version\":\"2\",\"value\":\"e30=\","
      "\"lease\":\"4111120216717236487\"}],\"count\":\"1\"}");
  GsmEtcdKv *kv;

  g_assert_cmpint (r->revision, ==, 12);
  g_assert_false (r->has_error);
  g_assert_cmpuint (r->kvs->len, ==, 1);
  kv = r->kvs->pdata[0];
  g_assert_cmpstr (kv->key, ==, "/p/sessions/a");
  g_assert_cmpuint (kv->key_len, ==, strlen ("/p/sessions/a"));
  g_assert_cmpint (kv->create_revision, ==, 6);
  g_assert_cmpint (kv->mod_revision, ==, 7);
  g_assert_cmpint (kv->lease, ==, G_GINT64_CONSTANT (4111120216717236487));
  g_assert_cmpmem (g_bytes_get_data (kv->value, NULL), g_bytes_get_size (kv->value), "{}", 2);
  g_assert_cmpuint (r->events->len, ==, 0);
}

static void
test_empty_range (void)
{
  g_autoptr (GsmEtcdResponse) r = parse_ok (
      "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"2\",\"raft_term\":\"2\"}}");

  g_assert_cmpint (r->revision, ==, 2);
  g_assert_cmpuint (r->kvs->len, ==, 0);
}

static void
test_txn (void)
{
  g_autoptr (GsmEtcdResponse) ok = parse_ok (
      "{\"header\":{\"revision\":\"2\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
      "{\"header\":{\"revision\":\"2\"}}}]}");
  /* A failed compare: "succeeded" is left out. */
  g_autoptr (GsmEtcdResponse) failed = parse_ok ("{\"header\":{\"revision\":\"2\"}}");

  g_assert_true (ok->succeeded);
  g_assert_cmpint (ok->revision, ==, 2);
  g_assert_false (failed->succeeded);
}

static void
test_lease (void)
{
  g_autoptr (GsmEtcdResponse) grant = parse_ok (
      "{\"header\":{\"revision\":\"1\"},\"ID\":\"4111120216717236485\",\"TTL\":\"3\"}");
  g_autoptr (GsmEtcdResponse) alive = parse_ok (
      "{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"4111120216717236487\",\"TTL\":\"3\"}}");
  /* Keepalive of a lease that expired: no TTL. */
  g_autoptr (GsmEtcdResponse) gone = parse_ok (
      "{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"12345\"}}");

  g_assert_cmpint (grant->lease_id, ==, G_GINT64_CONSTANT (4111120216717236485));
  g_assert_cmpint (grant->ttl, ==, 3);
  g_assert_cmpint (alive->lease_id, ==, G_GINT64_CONSTANT (4111120216717236487));
  g_assert_cmpint (alive->ttl, ==, 3);
  g_assert_cmpint (gone->lease_id, ==, 12345);
  g_assert_cmpint (gone->ttl, ==, 0);
}

static void
test_watch (void)
{
  g_autoptr (GsmEtcdResponse) created = parse_ok (
      "{\"result\":{\"header\":{\"revision\":\"2\"},\"created\":true}}");
  g_autoptr (GsmEtcdResponse) events = parse_ok (
      "{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":[{\"kv\":{\"key\":\"YQ==\","
      "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"eA==\"}},"
      "{\"type\":\"DELETE\",\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"3\"}}]}}");
  g_autoptr (GsmEtcdResponse) canceled = parse_ok (
      "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"3\"}}");
  GsmEtcdEvent *e;

  g_assert_true (created->created);
  g_assert_cmpint (created->revision, ==, 2);

  g_assert_cmpuint (events->events->len, ==, 2);
  e = events->events->pdata[0];
  g_assert_cmpint (e->type, ==, GSM_ETCD_EVENT_PUT);
  g_assert_cmpstr (e->kv->key, ==, "a");
  e = events->events->pdata[1];
  g_assert_cmpint (e->type, ==, GSM_ETCD_EVENT_DELETE);
  g_assert_cmpint (e->kv->mod_revision, ==, 3);
  g_assert_cmpuint (g_bytes_get_size (e->kv->value), ==, 0);

  g_assert_true (canceled->canceled);
  g_assert_cmpint (canceled->compact_revision, ==, 3);
}

static void
test_errors (void)
{
  g_autoptr (GsmEtcdResponse) lease = parse_ok (
      "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested "
      "lease not found\",\"code\":5}");
  g_autoptr (GsmEtcdResponse) stream = parse_ok (
      "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\","
      "\"http_status\":\"Service Unavailable\"}}");

  g_assert_true (lease->has_error);
  g_assert_cmpint (lease->error_code, ==, 5);
  g_assert_cmpstr (lease->error_message, ==, "etcdserver: requested lease not found");
  g_assert_true (stream->has_error);
  g_assert_cmpint (stream->error_code, ==, 14);
  g_assert_cmpstr (stream->error_message, ==, "transport is closing");
}

static void
test_invalid (void)
{
  g_autofree char *deep = NULL;
  GString         *nested = g_string_new ("{\"kvs\":");

  parse_fails ("", 0);
  parse_fails ("[]", 2);
  parse_fails ("{\"header\":", 10);
  parse_fails ("{} {}", 5);
  parse_fails ("{\"header\":{\"revision\":\"12x\"}}", strlen ("{\"header\":{\"revision\":\"12x\"}}"));
  parse_fails ("{\"header\":{\"revision\":\"99999999999999999999\"}}",
               strlen ("{\"header\":{\"revision\":\"99999999999999999999\"}}"));
  parse_fails ("{\"header\":[]}", strlen ("{\"header\":[]}"));
  parse_fails ("{\"succeeded\":\"yes\"}", strlen ("{\"succeeded\":\"yes\"}"));
  parse_fails ("{\"kvs\":{}}", strlen ("{\"kvs\":{}}"));
  parse_fails ("{\"kvs\":[1]}", strlen ("{\"kvs\":[1]}"));
  parse_fails ("{\"kvs\":[{\"value\":\"eA==\"}]}", strlen ("{\"kvs\":[{\"value\":\"eA==\"}]}"));
  parse_fails ("{\"kvs\":[{\"key\":\"Y*==\"}]}", strlen ("{\"kvs\":[{\"key\":\"Y*==\"}]}"));
  parse_fails ("{\"kvs\":[{\"key\":\"YQ=a\"}]}", strlen ("{\"kvs\":[{\"key\":\"YQ=a\"}]}"));
  parse_fails ("{\"kvs\":[{\"key\":\"YQ\"}]}", strlen ("{\"kvs\":[{\"key\":\"YQ\"}]}"));
  parse_fails ("{\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"YQ==\"}}]}",
               strlen ("{\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"YQ==\"}}]}"));
  parse_fails ("{\"events\":[{\"type\":\"PUT\"}]}", strlen ("{\"events\":[{\"type\":\"PUT\"}]}"));
  parse_fails ("{\"result\":7}", strlen ("{\"result\":7}"));
  parse_fails ("{\"a\":\"\0\"}", 8);

  /* json-glib 1.6 would crash on this; it must be refused first. */
  for (int i = 0; i < 100000; i++)
    g_string_append_c (nested, '[');
  deep = g_string_free (nested, FALSE);
  parse_fails (deep, strlen (deep));
}

static void
test_key_with_nul (void)
{
  /* "a\0b": kept whole, with its length. */
  g_autoptr (GsmEtcdResponse) r = parse_ok ("{\"kvs\":[{\"key\":\"YQBi\"}]}");
  GsmEtcdKv *kv = r->kvs->pdata[0];

  g_assert_cmpuint (kv->key_len, ==, 3);
  g_assert_cmpuint (strlen (kv->key), ==, 1);
}

static void
test_uri (void)
{
  struct
  {
    const char *uri;
    const char *endpoint;
    const char *prefix;
  } good[] = {
    { "etcd://127.0.0.1:2379", "http://127.0.0.1:2379", "/gsm-session" },
    { "etcd://127.0.0.1:2379/", "http://127.0.0.1:2379", "/gsm-session" },
    { "etcd://etcd.example.com/team-a", "http://etcd.example.com:2379", "/team-a" },
    { "etcd://localhost:1234/a/b/", "http://localhost:1234", "/a/b" },
    { "etcd://[::1]:2379/x", "http://[::1]:2379", "/x" },
    { "etcd://a:1,b:2,c/p/", "http://a:1,http://b:2,http://c:2379", "/p" },
    { "etcd://[::1]:1,127.0.0.1:2", "http://[::1]:1,http://127.0.0.1:2", "/gsm-session" },
    { "etcds://h1:2379,h2:2380/team-a", "https://h1:2379,https://h2:2380", "/team-a" },
  };
  const char *bad[] = {
    "http://127.0.0.1:2379",
    "etcd://",
    "etcd:///x",
    "etcd://h:notaport",
    "etcd://user@h:1",
    "etcd://h:1/x?y=1",
    "etcd://h:1/x#frag",
    "not a uri",
    "etcd://a:1,/x",
    "etcd://a:1,,b:2",
    "etcd://,a:1",
    "etcd://a:1,user@b:2",
    "etcd://a:1,b:x",
    "etcds://",
    "https://h:1",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) endpoints = NULL;
      g_autofree char *prefix = NULL, *joined = NULL;

      g_assert_true (_gsm_etcd_parse_uri (good[i].uri, &endpoints, &prefix, &error));
      g_assert_no_error (error);
      joined = g_strjoinv (",", endpoints);
      g_assert_cmpstr (joined, ==, good[i].endpoint);
      g_assert_cmpstr (prefix, ==, good[i].prefix);
    }

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) endpoints = NULL;
      g_autofree char *prefix = NULL;

      g_assert_false (_gsm_etcd_parse_uri (bad[i], &endpoints, &prefix, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, bad[i]));
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/etcd/response/range", test_range);
  g_test_add_func ("/etcd/response/empty-range", test_empty_range);
  g_test_add_func ("/etcd/response/txn", test_txn);
  g_test_add_func ("/etcd/response/lease", test_lease);
  g_test_add_func ("/etcd/response/watch", test_watch);
  g_test_add_func ("/etcd/response/errors", test_errors);
  g_test_add_func ("/etcd/response/invalid", test_invalid);
  g_test_add_func ("/etcd/response/key-with-nul", test_key_with_nul);
  g_test_add_func ("/etcd/uri", test_uri);

  return g_test_run ();
}
