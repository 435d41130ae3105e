/* gsm-json.c: reading untrusted JSON, writing JSON
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
  const char *data;
  const char *p;
  const char *end;
  guint       depth;
  guint       max_depth;
  gboolean    strict;
  const char *key; /* strict: the name of the member being read */
} Scanner;

static gboolean
fail (Scanner    *s,
      GError    **error,
      const char *reason)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
               "Invalid JSON at byte %" G_GSIZE_FORMAT ": %s",
               (gsize) (s->p - s->data), reason);
  return FALSE;
}

/* What json-glib would read differently from what is written: said of the
 * member it is in, as the decoders say what they refuse. */
static gboolean
fail_member (Scanner    *s,
             GError    **error,
             const char *reason)
{
  if (s->key == NULL)
    return fail (s, error, reason);
  g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "member “%s” %s", s->key, reason);
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

/* @p is at the “u” of a \uXXXX escape: returns the character it stands
 * for (a surrogate must come in a pair) and moves @p past it, or returns
 * -1. */
static gint32
read_escaped_char (const char **p,
                   const char  *end)
{
  int unit = read_unicode_escape (*p, end);
  int low;

  if (unit < 0 || (unit >= 0xdc00 && unit <= 0xdfff))
    return -1;
  *p += 5;
  if (unit < 0xd800 || unit > 0xdbff)
    return unit;
  if (end - *p < 6 || **p != '\\')
    return -1;
  low = read_unicode_escape (*p + 1, end);
  if (low < 0xdc00 || low > 0xdfff)
    return -1;
  *p += 6;
  return 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
}

/* On entry s->p is at the opening quote; on success it is past the closing
 * one. Only the runs between escapes that hold a byte ≥ 0x80 are checked
 * for UTF-8 (escapes are ASCII, so checking the runs checks the string).
 * Strict, `\u0000` is refused: json-glib cuts the string there. */
static gboolean
scan_string (Scanner  *s,
             gboolean *has_escapes,
             GError  **error)
{
  for (s->p++; s->p < s->end;)
    {
      const char *q = s->p;
      guchar      high = 0, c = 0;

      while (q < s->end && (c = (guchar) *q) != '"' && c != '\\' && c >= 0x20)
        {
          high |= c;
          q++;
        }
      if (q >= s->end || c < 0x20 ||
          ((high & 0x80) != 0 && !g_utf8_validate_len (s->p, (gsize) (q - s->p), NULL)))
        break;
      s->p = q + 1;
      if (c == '"')
        return TRUE;

      /* A backslash. */
      if (has_escapes != NULL)
        *has_escapes = TRUE;
      if (s->p < s->end && *s->p != '\0' && strchr ("\"\\/bfnrt", *s->p) != NULL)
        s->p++;
      else
        {
          gint32 ch = read_escaped_char (&s->p, s->end);

          if (ch < 0)
            break;
          /* A name holding it is refused when it is decoded. */
          if (ch == 0 && s->strict && has_escapes == NULL)
            return fail_member (s, error, "is not a short printable string");
        }
    }

  return fail (s, error, "bad string");
}

/* Matches exactly the JSON grammar of a number at @p,
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns where it
 * ends, or %NULL. What follows is the caller's to check, so “01” and
 * “1.2.3” fail there, on the “1” and on the second “.”. */
static const char *
match_number (const char *p,
              const char *end,
              gboolean   *is_integer)
{
  *is_integer = TRUE;
  if (p < end && *p == '-')
    p++;
  if (p >= end || !g_ascii_isdigit (*p))
    return NULL;
  if (*p++ != '0')
    while (p < end && g_ascii_isdigit (*p))
      p++;
  if (p < end && *p == '.')
    {
      if (++p >= end || !g_ascii_isdigit (*p))
        return NULL;
      while (p < end && g_ascii_isdigit (*p))
        p++;
      *is_integer = FALSE;
    }
  if (p < end && (*p == 'e' || *p == 'E'))
    {
      if (++p < end && (*p == '+' || *p == '-'))
        p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return NULL;
      while (p < end && g_ascii_isdigit (*p))
        p++;
      *is_integer = FALSE;
    }
  return p;
}

/* Strict, an integer must fit in 64 bits: json-glib reads
 * 99999999999999999999 as -1. */
static gboolean
scan_number (Scanner *s,
             GError **error)
{
  const char *digits = s->p + (*s->p == '-');
  gboolean    integer;
  const char *p = match_number (s->p, s->end, &integer);
  gsize       n;

  if (p == NULL)
    return fail (s, error, "unexpected character");
  n = (gsize) (p - digits);
  if (s->strict && integer &&
      (n > 19 || (n == 19 && memcmp (digits, digits > s->p ? "9223372036854775808" : "9223372036854775807", 19) > 0)))
    return fail_member (s, error, "is not a 64-bit integer");
  s->p = p;
  return TRUE;
}

static gboolean
scan_literal (Scanner    *s,
              const char *word,
              GError    **error)
{
  gsize len = strlen (word);

  if ((gsize) (s->end - s->p) < len || memcmp (s->p, word, len) != 0)
    return fail (s, error, "bad literal");
  s->p += len;
  return TRUE;
}

/* Decodes the bytes between a string's quotes, which scan_string()
 * accepted. Returns %NULL for \u0000, which a C string cannot hold. */
static char *
decode_string_body (const char *p,
                    gsize       len)
{
  const char *end = p + len;
  char       *out = g_malloc (len + 1); /* an escape is no shorter than its UTF-8 */
  char       *o = out;

  while (p < end)
    {
      gint32 c;

      if (*p != '\\')
        {
          *o++ = *p++;
          continue;
        }
      switch (*++p)
        {
        case 'b':
          c = '\b';
          p++;
          break;
        case 'f':
          c = '\f';
          p++;
          break;
        case 'n':
          c = '\n';
          p++;
          break;
        case 'r':
          c = '\r';
          p++;
          break;
        case 't':
          c = '\t';
          p++;
          break;
        case 'u':
          c = read_escaped_char (&p, end);
          break;
        default:
          c = *p++;
          break;
        }
      if (c <= 0)
        {
          g_free (out);
          return NULL;
        }
      o += g_unichar_to_utf8 ((gunichar) c, o);
    }

  *o = '\0';
  return out;
}

/* The member's name, decoded; %NULL if it holds `\u0000`. */
char *
_gsm_json_decode_key (const GsmJsonMember *member)
{
  if (!member->key_has_escapes)
    return g_strndup (member->key, member->key_len);
  return decode_string_body (member->key, member->key_len);
}

static gboolean scan_value (Scanner *s, GError **error);

/* At a member's name: reads it, the “:” and the blanks after it into @m.
 * Strict, the name is decoded into @names, the names of its object so
 * far, unless it is one of them, and s->key points to it. */
static gboolean
scan_member (Scanner       *s,
             GsmJsonMember *m,
             GHashTable   **names,
             GError       **error)
{
  m->key_has_escapes = FALSE;
  if (s->p >= s->end || *s->p != '"')
    return fail (s, error, "expected a member name");
  m->key = s->p + 1;
  if (!scan_string (s, &m->key_has_escapes, error))
    return FALSE;
  m->key_len = (gsize) (s->p - 1 - m->key);
  if (s->strict)
    {
      char *name = _gsm_json_decode_key (m);

      if (name == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                       "a member name is not a valid string");
          return FALSE;
        }
      if (*names == NULL)
        *names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      if (g_hash_table_contains (*names, name))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                       "member “%s” appears twice", name);
          g_free (name);
          return FALSE;
        }
      g_hash_table_add (*names, name);
      s->key = name;
    }
  skip_ws (s);
  if (s->p >= s->end || *s->p != ':')
    return fail (s, error, "expected “:”");
  s->p++;
  skip_ws (s);
  m->value = s->p;
  return TRUE;
}

/* At '{' or '[': the container and what it holds. At the top level
 * (depth 0), @func is called with each member of an object. */
static gboolean
scan_container (Scanner          *s,
                GsmJsonMemberFunc func,
                gpointer          user_data,
                GError          **error)
{
  g_autoptr (GHashTable) names = NULL;
  const char *outer_key = s->key; /* an element is said of the array's member */
  gboolean    is_object = *s->p == '{';
  char        close = is_object ? '}' : ']';

  if (++s->depth > s->max_depth)
    return fail (s, error, "nested too deeply");
  s->p++;
  skip_ws (s);
  if (s->p < s->end && *s->p == close)
    s->p++;
  else
    for (;;)
      {
        GsmJsonMember m;

        skip_ws (s);
        if (is_object && !scan_member (s, &m, &names, error))
          return FALSE;
        m.value = s->p;
        if (!scan_value (s, error))
          return FALSE;
        m.value_len = (gsize) (s->p - m.value);
        m.name = s->key;
        if (func != NULL && s->depth == 1 && !func (&m, user_data, error))
          return FALSE;
        skip_ws (s);
        if (s->p < s->end && *s->p == ',')
          s->p++;
        else if (s->p < s->end && *s->p == close)
          {
            s->p++;
            break;
          }
        else
          return fail (s, error, is_object ? "expected “,” or “}”" : "expected “,” or “]”");
      }

  s->key = outer_key;
  s->depth--;
  return TRUE;
}

static gboolean
scan_value (Scanner *s,
            GError **error)
{
  if (s->p >= s->end)
    return fail (s, error, "unexpected end of input");

  switch (*s->p)
    {
    case '{':
    case '[':
      return scan_container (s, NULL, NULL, error);
    case '"':
      return scan_string (s, NULL, error);
    case 't':
      return scan_literal (s, "true", error);
    case 'f':
      return scan_literal (s, "false", error);
    case 'n':
      return scan_literal (s, "null", error);
    default:
      return scan_number (s, error);
    }
}

/*
 * _gsm_json_scan:
 * @max_depth: how deep containers may nest (json-glib 1.6 has no limit:
 *   deep input overflows its stack)
 * @strict: also refuse what json-glib would read as something else than
 *   what is written: an object member whose name appears twice (json-glib
 *   keeps the last), a string holding `\u0000` (it cuts the string
 *   there), an integer beyond 64 bits (it reads 99999999999999999999 as
 *   -1)
 * @func: (nullable): if set, @data must be one object, and @func is
 *   called with each of its members in order
 *
 * Checks in one pass that @data is one JSON value exactly as RFC 8259
 * writes it (valid UTF-8, well-formed escapes, numbers of the JSON
 * grammar, nothing after it), so that json-glib, which accepts more, only
 * sees JSON.
 */
gboolean
_gsm_json_scan (const char       *data,
                gsize             len,
                guint             max_depth,
                gboolean          strict,
                GsmJsonMemberFunc func,
                gpointer          user_data,
                GError          **error)
{
  Scanner  s = { data, data, data + len, 0, max_depth, strict, NULL };
  gboolean ok;

  skip_ws (&s);
  if (func != NULL && (s.p >= s.end || *s.p != '{'))
    return fail (&s, error, "expected an object");
  ok = func != NULL ? scan_container (&s, func, user_data, error) : scan_value (&s, error);
  skip_ws (&s);
  if (ok && s.p != s.end)
    return fail (&s, error, "trailing data");
  return ok;
}

/* The next line after @from that starts with @indent and a quote. */
static const char *
next_member_line (const char *from,
                  const char *end,
                  const char *indent,
                  gsize       indent_len)
{
  const char *p = from;

  while ((p = memchr (p, '\n', (gsize) (end - p))) != NULL)
    {
      p++;
      if ((gsize) (end - p) > indent_len && memcmp (p, indent, indent_len) == 0 &&
          p[indent_len] == '"')
        return p + indent_len;
    }
  return NULL;
}

/*
 * _gsm_json_salvage_object:
 *
 * For a text that is not one JSON object (truncated, or damaged in
 * places), calls @func for each member of its top-level object that is
 * whole: those before the damage and, when the object has one member per
 * line (as every registry writer lays it out), those on the lines after a
 * damaged one that start with the first member's indentation. What @func
 * is given is only known to be valid JSON on its own; @func's errors are
 * ignored. The work is bounded by a few passes over @data.
 *
 * Returns: the number of members @func was called for
 */
guint
_gsm_json_salvage_object (const char       *data,
                          gsize             len,
                          guint             max_depth,
                          GsmJsonMemberFunc func,
                          gpointer          user_data)
{
  Scanner     s = { data, data, data + len, 1, max_depth, FALSE, NULL };
  const char *indent = NULL;
  gsize       indent_len = 0;
  gsize       budget = 4 * len + 4096;
  guint       n = 0;

  skip_ws (&s);
  if (s.p >= s.end || *s.p != '{')
    return 0;
  s.p++;
  {
    const char *first = s.p;
    const char *nl = NULL;

    skip_ws (&s);
    for (const char *q = first; q < s.p; q++)
      if (*q == '\n')
        nl = q;
    if (nl != NULL)
      {
        indent = nl + 1;
        indent_len = (gsize) (s.p - indent);
      }
  }

  while (s.p < s.end)
    {
      const char   *start = s.p;
      GsmJsonMember m = {
        0,
      };
      gboolean whole;
      gsize    cost;

      s.depth = 1;
      whole = scan_member (&s, &m, NULL, NULL) && scan_value (&s, NULL);
      cost = (gsize) (MIN (s.p, s.end) - start) + 1;
      budget = budget > cost ? budget - cost : 0;
      if (whole)
        {
          m.value_len = (gsize) (s.p - m.value);
          n++;
          (void) func (&m, user_data, NULL);
          start = s.p; /* resume after it, if it is not followed by a comma */
          skip_ws (&s);
          if (s.p < s.end && *s.p == ',')
            {
              s.p++;
              skip_ws (&s);
              continue;
            }
        }
      /* Damaged here (or ended): on to the next member's line. */
      if (indent == NULL || budget == 0)
        break;
      s.p = next_member_line (start, s.end, indent, indent_len);
      if (s.p == NULL)
        break;
    }

  return n;
}

/*
 * _gsm_json_parse:
 *
 * Reads one JSON value with json-glib, after _gsm_json_check() (strict).
 * Returns a new node, never %NULL on success.
 */
JsonNode *
_gsm_json_parse (JsonParser *parser,
                 const char *data,
                 gsize       len,
                 GError    **error)
{
  g_autoptr (GError) local_error = NULL;

  if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, error))
    return NULL;
  if (!json_parser_load_from_data (parser, data, (gssize) len, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "%s", local_error->message);
      return NULL;
    }
  return json_node_ref (json_parser_get_root (parser));
}

/* ---- writing ------------------------------------------------------------ */

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
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          g_string_append_printf (out, "\\u%04x", (guint) (guchar) *p);
          break;
        }
      p++;
    }
  g_string_append_c (out, '"');
}

/*
 * _gsm_json_append_node:
 *
 * Appends @node as JSON text, object members in the order they were read
 * or added. json-glib 1.6's generator cannot be used for text other
 * readers must parse: it writes 1e22 as `1e+22.0`, which no JSON reader
 * accepts. Doubles are written as _gsm_json_append_double() does.
 *
 * Returns: %FALSE if @node holds a number that is not finite (JSON has
 *   none); @out then holds a 0 in its place
 */
gboolean
_gsm_json_append_node (GString  *out,
                       JsonNode *node)
{
  gboolean ok = TRUE;

  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      const char    *name;
      JsonNode      *member;

      g_string_append_c (out, '{');
      json_object_iter_init_ordered (&iter, json_node_get_object (node));
      while (json_object_iter_next_ordered (&iter, &name, &member))
        {
          if (out->str[out->len - 1] != '{')
            g_string_append_c (out, ',');
          _gsm_json_append_string (out, name);
          g_string_append_c (out, ':');
          ok &= _gsm_json_append_node (out, member);
        }
      g_string_append_c (out, '}');
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      g_string_append_c (out, '[');
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          if (i > 0)
            g_string_append_c (out, ',');
          ok &= _gsm_json_append_node (out, json_array_get_element (array, i));
        }
      g_string_append_c (out, ']');
    }
  else if (JSON_NODE_HOLDS_NULL (node))
    g_string_append (out, "null");
  else if (json_node_get_value_type (node) == G_TYPE_STRING)
    _gsm_json_append_string (out, json_node_get_string (node));
  else if (json_node_get_value_type (node) == G_TYPE_BOOLEAN)
    g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
  else if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    {
      ok = isfinite (json_node_get_double (node));
      _gsm_json_append_double (out, json_node_get_double (node));
    }
  else
    g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));

  return ok;
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
      g_ascii_formatd (buf, sizeof buf, precision == 15 ? "%.15g" : precision == 16 ? "%.16g"
                                                                                    : "%.17g",
                       value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }

  g_string_append (out, buf);
  /* Keep it a JSON float, so readers that care about the type see one. */
  if (strpbrk (buf, ".eEn") == NULL)
    g_string_append (out, ".0");
}
