/* gsm-json.c: reading untrusted JSON before json-glib sees it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <math.h>
#include <string.h>

#include "gsm-error.h"
#include "gsm-json-private.h"

typedef struct
{
  const char *p;
  const char *end;
  guint       depth;
  guint       max_depth;
  const char *what;
} Scanner;

static gboolean
fail (Scanner     *s,
      const char  *data,
      GError     **error,
      const char  *reason)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
               "Invalid JSON at byte %" G_GSIZE_FORMAT ": %s",
               (gsize) (s->p - data), reason);
  return FALSE;
}

static inline void
skip_ws (Scanner *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

/* @p is at the “u” of a \uXXXX escape: returns the code unit, or -1. */
static int
read_unicode_escape (const char *p,
                     const char *end)
{
  int unit = 0;

  if (end - p < 5 || *p != 'u')
    return -1;
  for (int i = 1; i <= 4; i++)
    {
      if (!g_ascii_isxdigit (p[i]))
        return -1;
      unit = unit * 16 + g_ascii_xdigit_value (p[i]);
    }
  return unit;
}

/* On entry s->p is at the opening quote; on success it is past the closing
 * one. */
static gboolean
scan_string (Scanner  *s,
             gboolean *has_escapes)
{
  s->p++;
  while (s->p < s->end)
    {
      const char *q;
      guchar c;

      /* Fast path: run to the next quote or backslash. */
      q = s->p;
      while (q < s->end && *q != '"' && *q != '\\' && (guchar) *q >= 0x20)
        q++;
      s->p = q;
      if (s->p >= s->end)
        return FALSE;

      c = (guchar) *s->p;
      if (c == '"')
        {
          s->p++;
          return TRUE;
        }
      if (c < 0x20)
        return FALSE;

      /* A backslash. */
      if (has_escapes)
        *has_escapes = TRUE;
      s->p++;
      if (s->p >= s->end)
        return FALSE;
      switch (*s->p)
        {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          s->p++;
          break;
        case 'u':
          {
            int unit = read_unicode_escape (s->p, s->end);

            /* A surrogate must come in a pair (json-glib 1.6 leaks on a
             * broken one, and the text could not be valid UTF-8). */
            if (unit < 0 || (unit >= 0xdc00 && unit <= 0xdfff))
              return FALSE;
            s->p += 5;
            if (unit >= 0xd800 && unit <= 0xdbff)
              {
                if (s->end - s->p < 1 || *s->p != '\\')
                  return FALSE;
                unit = read_unicode_escape (s->p + 1, s->end);
                if (unit < 0xdc00 || unit > 0xdfff)
                  return FALSE;
                s->p += 6;
              }
          }
          break;
        default:
          return FALSE;
        }
    }

  return FALSE;
}

static gboolean
scan_number (Scanner *s)
{
  const char *start = s->p;

  if (s->p < s->end && *s->p == '-')
    s->p++;
  if (s->p >= s->end || !g_ascii_isdigit (*s->p))
    return FALSE;
  while (s->p < s->end && (g_ascii_isdigit (*s->p) || *s->p == '.' || *s->p == 'e' ||
                           *s->p == 'E' || *s->p == '+' || *s->p == '-'))
    s->p++;
  return s->p > start;
}

static gboolean
scan_literal (Scanner    *s,
              const char *word)
{
  gsize len = strlen (word);

  if ((gsize) (s->end - s->p) < len || memcmp (s->p, word, len) != 0)
    return FALSE;
  s->p += len;
  return TRUE;
}

static gboolean scan_value (Scanner *s, const char *data, GError **error);

static gboolean
scan_container (Scanner     *s,
                const char  *data,
                GError     **error)
{
  gboolean is_object = *s->p == '{';
  char close = is_object ? '}' : ']';

  if (++s->depth > s->max_depth)
    return fail (s, data, error, "nested too deeply");

  s->p++;
  skip_ws (s);
  if (s->p < s->end && *s->p == close)
    {
      s->p++;
      s->depth--;
      return TRUE;
    }

  for (;;)
    {
      skip_ws (s);
      if (is_object)
        {
          if (s->p >= s->end || *s->p != '"' || !scan_string (s, NULL))
            return fail (s, data, error, "expected a member name");
          skip_ws (s);
          if (s->p >= s->end || *s->p != ':')
            return fail (s, data, error, "expected “:”");
          s->p++;
          skip_ws (s);
        }
      if (!scan_value (s, data, error))
        return FALSE;
      skip_ws (s);
      if (s->p < s->end && *s->p == ',')
        {
          s->p++;
          continue;
        }
      if (s->p < s->end && *s->p == close)
        {
          s->p++;
          s->depth--;
          return TRUE;
        }
      return fail (s, data, error, is_object ? "expected “,” or “}”" : "expected “,” or “]”");
    }
}

static gboolean
scan_value (Scanner     *s,
            const char  *data,
            GError     **error)
{
  if (s->p >= s->end)
    return fail (s, data, error, "unexpected end of input");

  switch (*s->p)
    {
    case '{':
    case '[':
      return scan_container (s, data, error);
    case '"':
      if (!scan_string (s, NULL))
        return fail (s, data, error, "bad string");
      return TRUE;
    case 't':
      return scan_literal (s, "true") || fail (s, data, error, "bad literal");
    case 'f':
      return scan_literal (s, "false") || fail (s, data, error, "bad literal");
    case 'n':
      return scan_literal (s, "null") || fail (s, data, error, "bad literal");
    default:
      return scan_number (s) || fail (s, data, error, "unexpected character");
    }
}

/*
 * _gsm_json_scan_object:
 *
 * Checks that @data is one JSON object, nested at most @max_depth deep,
 * and calls @func for each of its members in order.
 */
gboolean
_gsm_json_scan_object (const char         *data,
                       gsize               len,
                       guint               max_depth,
                       GsmJsonMemberFunc   func,
                       gpointer            user_data,
                       GError            **error)
{
  Scanner s = { data, data + len, 1, max_depth, NULL };

  skip_ws (&s);
  if (s.p >= s.end || *s.p != '{')
    return fail (&s, data, error, "expected an object");
  s.p++;
  skip_ws (&s);

  if (s.p < s.end && *s.p == '}')
    s.p++;
  else
    for (;;)
      {
        GsmJsonMember m = { 0, };

        skip_ws (&s);
        if (s.p >= s.end || *s.p != '"')
          return fail (&s, data, error, "expected a member name");
        m.key = s.p + 1;
        if (!scan_string (&s, &m.key_has_escapes))
          return fail (&s, data, error, "bad member name");
        m.key_len = (gsize) (s.p - 1 - m.key);
        skip_ws (&s);
        if (s.p >= s.end || *s.p != ':')
          return fail (&s, data, error, "expected “:”");
        s.p++;
        skip_ws (&s);
        m.value = s.p;
        if (!scan_value (&s, data, error))
          return FALSE;
        m.value_len = (gsize) (s.p - m.value);
        if (func != NULL && !func (&m, user_data, error))
          return FALSE;
        skip_ws (&s);
        if (s.p < s.end && *s.p == ',')
          {
            s.p++;
            continue;
          }
        if (s.p < s.end && *s.p == '}')
          {
            s.p++;
            break;
          }
        return fail (&s, data, error, "expected “,” or “}”");
      }

  skip_ws (&s);
  if (s.p != s.end)
    return fail (&s, data, error, "trailing data after the object");

  return TRUE;
}

/* Checks any single JSON value (not only an object). */
gboolean
_gsm_json_check (const char  *data,
                 gsize        len,
                 guint        max_depth,
                 GError     **error)
{
  Scanner s = { data, data + len, 0, max_depth, NULL };

  skip_ws (&s);
  if (!scan_value (&s, data, error))
    return FALSE;
  skip_ws (&s);
  if (s.p != s.end)
    return fail (&s, data, error, "trailing data");
  return TRUE;
}

/*
 * _gsm_json_parse:
 *
 * Parses bytes that were already checked by the scanner. Returns a new
 * node, never %NULL on success.
 */
JsonNode *
_gsm_json_parse (JsonParser  *parser,
                 const char  *data,
                 gsize        len,
                 GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  JsonNode *root;

  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "%s", local_error->message);
      return NULL;
    }

  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "Empty JSON document");
      return NULL;
    }

  return json_node_ref (root);
}

char *
_gsm_json_decode_key (const GsmJsonMember *member)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autofree char *quoted = NULL;
  JsonNode *root;

  if (!member->key_has_escapes)
    return g_strndup (member->key, member->key_len);

  parser = json_parser_new_immutable ();
  quoted = g_strdup_printf ("\"%.*s\"", (int) member->key_len, member->key);
  if (!json_parser_load_from_data (parser, quoted, -1, NULL))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_VALUE (root) ||
      json_node_get_value_type (root) != G_TYPE_STRING)
    return NULL;
  return g_strdup (json_node_get_string (root));
}

void
_gsm_json_append_string (GString    *out,
                         const char *str)
{
  const char *p = str;

  g_string_append_c (out, '"');
  while (*p)
    {
      const char *run = p;

      while (*p && *p != '"' && *p != '\\' && (guchar) *p >= 0x20)
        p++;
      g_string_append_len (out, run, p - run);
      if (*p == '\0')
        break;
      switch (*p)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default: g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p); break;
        }
      p++;
    }
  g_string_append_c (out, '"');
}

/* The shortest text that reads back as the same double, like Python's
 * repr(): 1699999999.123, not 1699999999.1229999. */
void
_gsm_json_append_double (GString *out,
                         double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "0");
      return;
    }

  for (int precision = 15; precision <= 17; precision++)
    {
      g_ascii_formatd (buf, sizeof buf, precision == 15 ? "%.15g" : precision == 16 ? "%.16g" : "%.17g", value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }

  g_string_append (out, buf);
  /* Keep it a JSON float, so readers that care about the type see one. */
  if (strpbrk (buf, ".eEn") == NULL)
    g_string_append (out, ".0");
}
