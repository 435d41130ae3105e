/* test-json.c: the strict scan in front of json-glib, and registry entries
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <math.h>

#include "gsm-error.h"
#include "gsm-json-private.h"
#include "test-common.h"

static gboolean
check (const char *text)
{
  return _gsm_json_check (text, strlen (text), GSM_JSON_MAX_DEPTH, NULL);
}

static gboolean
check_lax (const char *text)
{
  return _gsm_json_scan (text, strlen (text), GSM_JSON_MAX_DEPTH, FALSE, NULL, NULL, NULL);
}

/* What json-glib reads of text the scan accepted. */
static char *
decode (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (JsonNode) node = _gsm_json_parse (parser, text, strlen (text), NULL);

  return node != NULL ? g_strdup (json_node_get_string (node)) : NULL;
}

static void
test_string_escapes (void)
{
  static const struct
  {
    const char *json;
    const char *expected;
  } cases[] = {
    { "\"\"", "" },
    { "\"plain\"", "plain" },
    { "\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d" },
    { "\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t" },
    { "\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac" },
    { "\"x\\ud83d\\ude00y\"", "x\xf0\x9f\x98\x80y" },
    { "\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf" },
    { "\"caf\xc3\xa9 \\n\"", "caf\xc3\xa9 \n" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *s = decode (cases[i].json);

      g_test_message ("%s", cases[i].json);
      g_assert_true (check (cases[i].json));
      g_assert_cmpstr (s, ==, cases[i].expected);
    }
}

static void
test_string_refused (void)
{
  static const char *const bad_escapes[] = {
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800x\"",
    "\"\\ude00\\ud83d\"",
    "\"\\u12\"",
    "\"\\uzzzz\"",
    "\"\\x\"",
    "\"\\\"",
  };
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad_escapes); i++)
    {
      g_test_message ("%s", bad_escapes[i]);
      g_assert_false (check_lax (bad_escapes[i]));
    }

  /* Valid JSON, but a C string cannot hold it: json-glib cuts it. */
  g_assert_true (check_lax ("\"a\\u0000b\""));
  g_assert_false (check ("\"a\\u0000b\""));
  g_assert_false (_gsm_json_check ("{\"k\": [\"a\\u0000\"]}", 17, GSM_JSON_MAX_DEPTH, &error));
  g_assert_cmpstr (error->message, ==, "member “k” is not a short printable string");
}

static void
test_utf8 (void)
{
  static const char *const good[] = {
    "\"caf\xc3\xa9\"",
    "\"\xf0\x9f\x98\x80\"",
    "\"\xef\xbf\xbd\"",
    "{\"\xc3\xa9\": \"\xe2\x82\xac\"}",
    "[\"a\\n\xc3\xa9\\t\xc3\xa9\"]",
  };
  static const char *const bad[] = {
    "\"\xc3\"",             /* truncated */
    "\"h\xe9llo\"",         /* Latin-1 */
    "\"\xc0\xaf\"",         /* overlong */
    "\"\xed\xa0\x80\"",     /* a surrogate, encoded */
    "\"\xf4\x90\x80\x80\"", /* beyond U+10FFFF */
    "\"\xff\"",
    "\"ok\\n\x80\"",  /* after an escape */
    "{\"k\xff\": 1}", /* in a member name */
    "\xc3\xa9",       /* outside a string */
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (check (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("bad #%u", i);
      g_assert_false (check_lax (bad[i]));
    }
}

static void
test_number_grammar (void)
{
  static const char *const good[] = {
    "0",
    "-0",
    "7",
    "-12",
    "10",
    "0.5",
    "-0.0",
    "1e5",
    "1E5",
    "1e+5",
    "1e-5",
    "1.25e-300",
    "1e400",
    "[1,-2.5e3]",
  };
  static const char *const bad[] = {
    "01",
    "-01",
    "00",
    "1.",
    ".5",
    "-.5",
    "1e",
    "1e+",
    "1E-",
    "-",
    "+1",
    "1.2.3",
    "1e5e5",
    "1..2",
    "0x10",
    "Infinity",
    "-Infinity",
    "NaN",
    "1 2",
    "[01]",
    "{\"a\": 1.}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_test_message ("%s", good[i]);
      g_assert_true (check (good[i]));
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("%s", bad[i]);
      g_assert_false (check_lax (bad[i]));
    }
}

/* json-glib reads an integer beyond 64 bits as something else (-1, or
 * with the other sign): the strict scan refuses it. */
static void
test_int64 (void)
{
  static const char *const good[] = {
    "9223372036854775807",
    "-9223372036854775808",
    "1000000000000000000",
    "12345678901234567890123.5",
    "1e30",
  };
  static const char *const beyond[] = {
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999",
    "[123456789012345678901234567890]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (check (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (beyond); i++)
    {
      g_test_message ("%s", beyond[i]);
      g_assert_false (check (beyond[i]));
      g_assert_true (check_lax (beyond[i]));
    }
}

/* json-glib keeps the last of two members of the same name: the strict
 * scan refuses them, at any depth, however the name is written. */
static void
test_duplicates (void)
{
  static const char *const dup[] = {
    "{\"a\": 1, \"a\": 1}",
    "{\"a\": 1, \"\\u0061\": 2}",
    "[{\"x\": {\"b\": [], \"b\": null}}]",
  };
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (dup); i++)
    {
      g_assert_false (check (dup[i]));
      g_assert_true (check_lax (dup[i]));
    }
  g_assert_true (check ("{\"a\": {\"a\": 1}, \"b\": {\"a\": 2}, \"A\": 3}"));
  g_assert_false (_gsm_json_check (dup[2], strlen (dup[2]), GSM_JSON_MAX_DEPTH, &error));
  g_assert_cmpstr (error->message, ==, "member “b” appears twice");
}

static void
test_refused (void)
{
  g_autofree char         *deep = g_strnfill (100000, '[');
  g_autofree char         *open = g_strnfill (GSM_JSON_MAX_DEPTH, '[');
  g_autofree char         *close = g_strnfill (GSM_JSON_MAX_DEPTH, ']');
  g_autofree char         *at_limit = g_strconcat (open, close, NULL);
  g_autofree char         *beyond = g_strconcat ("[", at_limit, "]", NULL);
  static const char *const bad[] = { "", "   ", "{} x", "{}{}", "[1,]", "{\"a\" 1}", "tru", "'a'", "/* */1" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (check_lax (bad[i]));
  g_assert_false (check_lax (deep));
  g_assert_true (check (at_limit));
  g_assert_false (check_lax (beyond));
}

static void
test_decode_key (void)
{
  GsmJsonMember    plain = { "session_id", 10, FALSE, NULL, 0, NULL };
  GsmJsonMember    escaped = { "s\\u00e9\\ud83d\\ude00", 19, TRUE, NULL, 0, NULL };
  GsmJsonMember    nul = { "a\\u0000", 7, TRUE, NULL, 0, NULL };
  g_autofree char *a = _gsm_json_decode_key (&plain);
  g_autofree char *b = _gsm_json_decode_key (&escaped);
  g_autofree char *c = _gsm_json_decode_key (&nul);

  g_assert_cmpstr (a, ==, "session_id");
  g_assert_cmpstr (b, ==, "s\xc3\xa9\xf0\x9f\x98\x80");
  g_assert_null (c);
}

static GsmSession *
read_entry (const char *key,
            const char *text,
            GError    **error)
{
  g_assert_true (check_lax (text));
  return _gsm_session_new_from_json (key, text, strlen (text), NULL, error);
}

static void
assert_corrupt (const char *text,
                const char *message)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) session = read_entry ("s", text, &error);

  g_test_message ("%s", text);
  g_assert_null (session);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY);
  g_assert_cmpstr (error->message, ==, message);
}

#define BASE "\"session_id\": \"s\", \"pid\": 12, \"hostname\": \"h\""

static void
test_entry_fields (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) s = NULL;
  g_autoptr (GsmSession) vmless = NULL;
  const char *text =
      "{\"session_id\": \"s\", \"pid\": 12, \"hostname\": \"h\\u00e9\", \"vm_id\": \"vm\\/1\", "
      "\"zone\": null, \"components\": [\"a\", \"b\\\"c\"], \"metadata\": null, "
      "\"created_at\": 1700000000, \"registered_at\": 1.7e9, \"status\": \"stale\", "
      "\"stale_since\": 1700000001.5, \"start_time\": 9223372036854775807, \"boot_id\": null, "
      "\"format\": 1, \"x_other\": {\"n\": [1, 2.5]}}";
  const char *const *components;

  s = read_entry ("s", text, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_session_get_session_id (s), ==, "s");
  g_assert_cmpint (gsm_session_get_pid (s), ==, 12);
  g_assert_cmpstr (gsm_session_get_hostname (s), ==, "h\xc3\xa9");
  g_assert_cmpstr (gsm_session_get_vm_id (s), ==, "vm/1");
  g_assert_null (gsm_session_get_zone (s));
  components = gsm_session_get_components (s);
  g_assert_cmpstr (components[0], ==, "a");
  g_assert_cmpstr (components[1], ==, "b\"c");
  g_assert_null (components[2]);
  g_assert_cmpuint (g_variant_n_children (gsm_session_get_metadata (s)), ==, 0);
  g_assert_cmpfloat (gsm_session_get_created_at (s), ==, 1700000000.0);
  g_assert_cmpfloat (gsm_session_get_registered_at (s), ==, 1.7e9);
  g_assert_cmpstr (gsm_session_get_status (s), ==, "stale");
  g_assert_cmpfloat (gsm_session_get_stale_since (s), ==, 1700000001.5);
  g_assert_cmpuint (gsm_session_get_start_time (s), ==, G_MAXINT64);
  g_assert_null (gsm_session_get_boot_id (s));
  g_assert_nonnull (_gsm_session_get_member (s, "x_other"));
  g_assert_cmpint (json_node_get_int (json_array_get_element (json_object_get_array_member (
                                                                  json_node_get_object (_gsm_session_get_member (s, "x_other")), "n"),
                                                              0)),
                   ==, 1);

  /* Without a VM, its fields are dropped; the status defaults to active. */
  vmless = read_entry (NULL, "{" BASE ", \"zone\": \"z\", \"components\": [\"c\"], "
                             "\"metadata\": {\"a\": 1}, \"registered_at\": 5}",
                       &error);
  g_assert_no_error (error);
  g_assert_false (gsm_session_get_has_vm (vmless));
  g_assert_null (gsm_session_get_zone (vmless));
  g_assert_null (gsm_session_get_components (vmless)[0]);
  g_assert_cmpuint (g_variant_n_children (gsm_session_get_metadata (vmless)), ==, 0);
  g_assert_cmpfloat (gsm_session_get_registered_at (vmless), ==, 0);
  g_assert_cmpstr (gsm_session_get_status (vmless), ==, "active");
}

static gboolean
collect_key (const GsmJsonMember *member,
             gpointer             user_data,
             GError             **error)
{
  g_ptr_array_add (user_data, _gsm_json_decode_key (member));
  return FALSE; /* ignored */
}

static char *
salvaged_keys (const char *text)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  guint n = _gsm_json_salvage_object (text, strlen (text), GSM_JSON_MAX_DEPTH, collect_key, keys);

  g_assert_cmpuint (n, ==, keys->len);
  g_ptr_array_add (keys, NULL);
  return g_strjoinv (",", (char **) keys->pdata);
}

/* What a rebuild still finds in a registry file that does not parse. */
static void
test_salvage (void)
{
  const struct
  {
    const char *text;
    const char *keys;
  } cases[] = {
    /* Cut short: the members before the cut. */
    { "{\n  \"a\": {\"x\": 1},\n  \"b\": [1, 2],\n  \"c\": {\"y\": ", "a,b" },
    { "{\n  \"a\": 1,\n  \"b\": 2,\n  \"c\": 3", "a,b,c" },
    /* Damaged in the middle: the member lines after it too. */
    { "{\n  \"a\": 1,\n  \"b\": {\"x\": 1 garbage},\n  \"c\": {\"z\": [\"\\u00e9\"]}\n}\n", "a,c" },
    { "{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3\n}\n", "a,b,c" },
    { "{\n  \"a\": 1,\n  \"b\": 2,,\n  \"c\": 3\n}\n", "a,b,c" },
    { "{\n  \"a\": 1,\n  \"b\": {\n    \"deeper\": 1,\n  \"c\": 3\n}\n", "a,b" },
    /* Lines of another indentation are inside a member: not resumed at. */
    { "{\n  \"a\": {\n    \"in\": 1 oops\n    \"in2\": 2},\n  \"b\": 2\n}\n", "b" },
    /* On one line: only what comes before the damage. */
    { "{\"a\": 1, \"b\": x, \"c\": 3}", "a" },
    /* Nothing. */
    { "", "" },
    { "[1, 2]", "" },
    { "\0\0\0", "" },
    { "{\n  \"a\": \"unterminated\n  \"b\": 2\n}", "b" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *keys = salvaged_keys (cases[i].text);

      g_test_message ("%s", cases[i].text);
      g_assert_cmpstr (keys, ==, cases[i].keys);
    }
}

/* What other writers may legitimately write: a container's main process
 * (pid 1) and another host's pid above this host's pid_max. */
static void
test_entry_pids (void)
{
  const int pids[] = { 1, 32769, 4000000, 4194304, G_MAXINT };

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text =
          g_strdup_printf ("{\"session_id\": \"s\", \"pid\": %d, \"hostname\": \"h\"}", pids[i]);
      g_autoptr (GsmSession) s = read_entry ("s", text, &error);

      g_assert_no_error (error);
      g_assert_cmpint (gsm_session_get_pid (s), ==, pids[i]);
    }
}

static void
test_entry_errors (void)
{
  g_autofree char *too_many = NULL;
  g_autoptr (GString) components = g_string_new ("[");

  assert_corrupt ("{" BASE ", \"pid\": 13}", "member “pid” appears twice");
  assert_corrupt ("{" BASE ", \"p\\u0069d\": 13}", "member “pid” appears twice");
  assert_corrupt ("{" BASE ", \"vm_id\": null, \"vm_id\": \"v\"}", "member “vm_id” appears twice");
  assert_corrupt ("{" BASE ", \"format\": 1, \"format\": 1}", "member “format” appears twice");
  assert_corrupt ("{\"session_id\": \"s\", \"hostname\": \"h\"}",
                  "a session entry lacks one of “session_id”, “pid”, “hostname”");
  assert_corrupt ("{\"session_id\": \"t\", \"pid\": 12, \"hostname\": \"h\"}",
                  "entry “s” has session_id “t”");
  assert_corrupt ("[1]", "a session entry is not an object");
  assert_corrupt ("{" BASE ", \"created_at\": \"1\"}", "member “created_at” is not a number");
  assert_corrupt ("{" BASE ", \"created_at\": 1e400}",
                  "member “created_at” is not a time in seconds since the epoch");
  assert_corrupt ("{" BASE ", \"created_at\": -1}",
                  "member “created_at” is not a time in seconds since the epoch");
  assert_corrupt ("{\"session_id\": \"s\", \"pid\": 12.0, \"hostname\": \"h\"}",
                  "member “pid” is not an integer");
  assert_corrupt ("{\"session_id\": \"s\", \"pid\": 0, \"hostname\": \"h\"}",
                  "member “pid” is 0, outside 1…2147483647");
  assert_corrupt ("{\"session_id\": \"s\", \"pid\": 2147483648, \"hostname\": \"h\"}",
                  "member “pid” is 2147483648, outside 1…2147483647");
  assert_corrupt ("{" BASE ", \"start_time\": 9223372036854775808}",
                  "member “start_time” is not a 64-bit integer");
  assert_corrupt ("{" BASE ", \"start_time\": -1}",
                  "member “start_time” is -1, outside 0…9223372036854775807");
  assert_corrupt ("{" BASE ", \"vm_id\": \"v\", \"metadata\": [1]}", "member “metadata” is not an object");
  assert_corrupt ("{" BASE ", \"metadata\": \"{}\"}", "member “metadata” is not an object");
  assert_corrupt ("{" BASE ", \"components\": {}}", "member “components” is not an array of strings");
  assert_corrupt ("{" BASE ", \"components\": [\"a\", 1]}", "member “components” is not a string");
  assert_corrupt ("{" BASE ", \"zone\": \"a\\u0001\"}", "member “zone” is not a short printable string");
  assert_corrupt ("{" BASE ", \"zone\": \"a\\u0000\"}", "member “zone” is not a short printable string");
  assert_corrupt ("{" BASE ", \"status\": null}", "member “status” is not a string");
  assert_corrupt ("{" BASE ", \"x\": 1e400}", "member “x” is not a value of finite numbers");
  /* What json-glib would read as something else, anywhere in the entry. */
  assert_corrupt ("{" BASE ", \"x\": 1, \"x\": 2}", "member “x” appears twice");
  assert_corrupt ("{" BASE ", \"vm_id\": \"v\", \"metadata\": {\"a\": {\"k\": 1, \"k\": 1}}}",
                  "member “k” appears twice");
  assert_corrupt ("{" BASE ", \"vm_id\": \"v\", \"metadata\": {\"n\": [12345678901234567890123]}}",
                  "member “n” is not a 64-bit integer");
  assert_corrupt ("{" BASE ", \"x\": \"\\u0000\"}", "member “x” is not a short printable string");
  assert_corrupt ("{" BASE ", \"x\\u0000\": 1}", "a member name is not a valid string");
  assert_corrupt ("{\"session_id\": \"s\", \"pid\": 12, \"hostname\": \"\"}",
                  "member “hostname” is not a short printable string");

  for (guint i = 0; i <= 1024; i++)
    g_string_append (components, i > 0 ? ", \"c\"" : "\"c\"");
  g_string_append_c (components, ']');
  too_many = g_strdup_printf ("{" BASE ", \"components\": %s}", components->str);
  assert_corrupt (too_many, "member “components” is not an array of at most 1024 strings");
}

/* Metadata is kept as the text it was written as: a number json-glib
 * would read as infinity survives a rewrite byte for byte. (An integer
 * beyond 64 bits, which json-glib would read as another, is refused.) */
static void
test_metadata_verbatim (void)
{
  const char      *metadata = "{\"big\": 1e400, \"n\": [1E2, -0, 12345678901234567890.5], \"s\": \"\\u00e9\"}";
  g_autofree char *text = g_strdup_printf ("{" BASE ", \"vm_id\": \"v\", \"metadata\": %s}", metadata);
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) s = read_entry ("s", text, &error);
  g_autoptr (GsmSession) stale = NULL;
  g_autoptr (GsmSession) claimed = NULL;
  g_autoptr (JsonNode) claim = json_from_string ("{\"token\": \"t\"}", NULL);
  g_autoptr (GVariant) big = NULL;
  g_autofree char *json = NULL;
  const char      *written;
  double           d;

  g_assert_no_error (error);
  g_assert_nonnull (strstr (_gsm_session_get_text (s, NULL), metadata));

  /* Rewritten (twice, each from the previous one) with the same text. */
  stale = _gsm_session_with_stale (s, 1700000000.5);
  claimed = _gsm_session_with_member (stale, "reap_claim", claim);
  for (guint i = 0; i < 2; i++)
    {
      written = _gsm_session_get_text (i == 0 ? stale : claimed, NULL);
      g_assert_nonnull (strstr (written, "\"metadata\": {\"big\": 1e400, \"n\": [1E2, -0, "
                                         "12345678901234567890.5], \"s\": \"\\u00e9\"}"));
    }
  json = gsm_session_to_json (claimed);
  g_assert_true (check (json));
  g_clear_object (&s);
  s = read_entry ("s", json, &error);
  g_assert_no_error (error);
  g_assert_nonnull (_gsm_session_get_member (s, "reap_claim"));

  /* The GVariant is what json-glib makes of the text. */
  big = g_variant_lookup_value (gsm_session_get_metadata (s), "big", G_VARIANT_TYPE_DOUBLE);
  g_assert_nonnull (big);
  d = g_variant_get_double (big);
  g_assert_true (isinf (d));
  g_assert_true (g_variant_lookup (gsm_session_get_metadata (s), "s", "&s", &written));
  g_assert_cmpstr (written, ==, "\xc3\xa9");
}

/* A session built from a GVariant writes text that reads back as an equal
 * GVariant, and shows what it wrote: the types every other process sees,
 * not the ones it was given. */
static void
test_metadata_from_variant (void)
{
  g_autoptr (GsmSession) base = _gsm_session_new ("s", 12, "h", 1700000000.0, 0, NULL);
  g_autoptr (GsmSession) with = NULL;
  g_autoptr (GsmSession) without = NULL;
  g_autoptr (GsmSession) reread = NULL;
  g_autoptr (GVariant) metadata = NULL;
  g_autoptr (GError) error = NULL;
  const char *text;
  gsize       len;

  metadata = g_variant_ref_sink (g_variant_new_parsed (
      "{'cpu': <int64 4>, 'name': <'n\\u00e9\"q'>, 'ratio': <0.5>, 'on': <true>, "
      "'tags': <{'a': <'b'>}>}"));
  with = _gsm_session_with_vm (base, "vm", "z", NULL, metadata, 1700000001.0);
  g_assert_true (g_variant_equal (gsm_session_get_metadata (with), metadata));
  {
    g_autoptr (GVariant) given = g_variant_ref_sink (g_variant_new_parsed ("{'n': <int32 7>}"));
    g_autoptr (GsmSession) int32 = _gsm_session_with_vm (base, "vm", "z", NULL, given, 1700000001.0);
    gint64 n = 0;

    g_assert_true (g_variant_lookup (gsm_session_get_metadata (int32), "n", "x", &n));
    g_assert_cmpint (n, ==, 7);
  }
  text = _gsm_session_get_text (with, &len);
  g_assert_true (_gsm_json_check (text, len, GSM_JSON_MAX_DEPTH, NULL));
  reread = _gsm_session_new_from_json ("s", text, len, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (gsm_session_get_metadata (reread), metadata));

  without = _gsm_session_without_vm (with);
  g_assert_cmpuint (g_variant_n_children (gsm_session_get_metadata (without)), ==, 0);
  g_assert_null (strstr (_gsm_session_get_text (without, NULL), "metadata"));
}

#define ROUND_TRIP_METADATA                                                 \
  "{'cpu': <int64 8>, 'name': <'builder \\u00e9'>, 'ram_percent': <87.5>, " \
  "'spot': <false>, 'labels': <{'team': <'x'>, 'n': <int64 -3>}>, 'ids': <[<int64 1>, <'two'>]>}"

/* The other process of /json/metadata/round-trip: lists the sessions and
 * writes the metadata of the one named in $TEST_JSON_SESSION. */
static void
test_metadata_reader (void)
{
  GsmSessionManager *m;
  g_autoptr (GHashTable) sessions = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *printed = NULL;
  GsmSession      *s;

  if (!g_test_subprocess ())
    {
      g_test_skip ("run by /json/metadata/round-trip");
      return;
    }

  m = gsm_session_manager_get_default ();
  sessions = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
  g_assert_no_error (error);
  s = g_hash_table_lookup (sessions, g_getenv ("TEST_JSON_SESSION"));
  g_assert_nonnull (s);
  printed = g_variant_print (gsm_session_get_metadata (s), TRUE);
  g_assert_true (g_file_set_contents (g_getenv ("TEST_JSON_OUTPUT"), printed, -1, &error));
}

static void
test_metadata_round_trip (Fixture      *f,
                          gconstpointer data)
{
  GsmSessionManager *m = gsm_session_manager_get_default ();
  g_autofree char   *output = fixture_path (f, "metadata.txt");
  g_autofree char   *printed = NULL;
  g_autoptr (GVariant) metadata = g_variant_ref_sink (g_variant_new_parsed (ROUND_TRIP_METADATA));
  g_autoptr (GVariant) read_back = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (gsm_session_manager_register_vm_sync (m, "vm-meta", "z", NULL, metadata,
                                                       NULL, &error));
  g_assert_no_error (error);

  g_setenv ("TEST_JSON_SESSION", gsm_session_manager_get_session_id (m), TRUE);
  g_setenv ("TEST_JSON_OUTPUT", output, TRUE);
  g_test_trap_subprocess ("/json/metadata/reader", 30 * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();

  g_assert_true (g_file_get_contents (output, &printed, NULL, &error));
  read_back = g_variant_parse (G_VARIANT_TYPE_VARDICT, printed, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_equal (read_back, metadata));
}

/* json-glib 1.6's generator writes 1e22 as `1e+22.0`, which no JSON
 * reader accepts: a member we keep for another writer, or metadata we
 * were given, must be written so that it reads back (found by fuzz-json). */
static void
test_big_numbers_written_back (void)
{
  const char *entry = "{" BASE ", \"n\": [1E22, -0.5e-1, {\"x\": null, \"y\": true}]}";
  g_autoptr (GsmSession) session = NULL;
  g_autoptr (GsmSession) stale = NULL;
  g_autoptr (GsmSession) base = _gsm_session_new ("s", 12, "h", 1700000000.0, 0, NULL);
  g_autoptr (GsmSession) with = NULL;
  g_autoptr (GVariant) metadata = NULL;
  g_autoptr (GError) error = NULL;
  const char *text;
  gsize       len;
  double      d = 0;

  session = _gsm_session_new_from_json ("s", entry, strlen (entry), NULL, &error);
  g_assert_no_error (error);
  stale = _gsm_session_with_stale (session, 1700000000.5);
  text = _gsm_session_get_text (stale, &len);
  g_assert_true (_gsm_json_check (text, len, GSM_JSON_MAX_DEPTH, NULL));
  g_assert_nonnull (strstr (text, "\"n\": [1e+22,-0.05,{\"x\":null,\"y\":true}]"));

  metadata = g_variant_ref_sink (g_variant_new_parsed ("{'big': <1e22>}"));
  with = _gsm_session_with_vm (base, "vm", "z", NULL, metadata, 1700000001.0);
  text = _gsm_session_get_text (with, &len);
  g_assert_true (_gsm_json_check (text, len, GSM_JSON_MAX_DEPTH, NULL));
  g_assert_true (g_variant_lookup (gsm_session_get_metadata (with), "big", "d", &d));
  g_assert_cmpfloat (d, ==, 1e22);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/json/string/escapes", test_string_escapes);
  g_test_add_func ("/json/string/refused", test_string_refused);
  g_test_add_func ("/json/string/utf8", test_utf8);
  g_test_add_func ("/json/number/grammar", test_number_grammar);
  g_test_add_func ("/json/number/int64", test_int64);
  g_test_add_func ("/json/duplicates", test_duplicates);
  g_test_add_func ("/json/refused", test_refused);
  g_test_add_func ("/json/key", test_decode_key);
  g_test_add_func ("/json/entry/fields", test_entry_fields);
  g_test_add_func ("/json/entry/errors", test_entry_errors);
  g_test_add_func ("/json/entry/pids", test_entry_pids);
  g_test_add_func ("/json/salvage", test_salvage);
  g_test_add_func ("/json/metadata/verbatim", test_metadata_verbatim);
  g_test_add_func ("/json/metadata/from-variant", test_metadata_from_variant);
  g_test_add_func ("/json/metadata/reader", test_metadata_reader);
  g_test_add_func ("/json/big-numbers-written-back", test_big_numbers_written_back);
  g_test_add ("/json/metadata/round-trip", Fixture, NULL, fixture_setup,
              test_metadata_round_trip, fixture_teardown);

  return g_test_run ();
}
