/* gsm-json.c: reading untrusted JSON
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
 * one. Only the runs between escapes that hold a byte ≥ 0x80 are checked
 * for UTF-8: most registry text is ASCII, and its bytes are then read once.
 * (Escapes are ASCII, so checking the runs checks the string.) */
static gboolean
scan_string (Scanner  *s,
             gboolean *has_escapes)
{
  guchar high = 0;

  s->p++;
  while (s->p < s->end)
    {
      const char *q;
      guchar c;

      /* Fast path: run to the next quote or backslash, noting whether
       * the run has any byte outside ASCII. */
      q = s->p;
      while (q < s->end)
        {
          c = (guchar) *q;
          if (c == '"' || c == '\\' || c < 0x20)
            break;
          high |= c;
          q++;
        }
      if (q >= s->end)
        return FALSE;
      if ((high & 0x80) != 0 && !g_utf8_validate_len (s->p, (gsize) (q - s->p), NULL))
        return FALSE;
      high = 0;
      s->p = q;

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

/* Matches exactly the JSON grammar of a number at @p,
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and returns where it
 * ends, or %NULL. What follows is the caller's to check, so “01” and
 * “1.2.3” fail there, on the “1” and on the second “.”. */
static const char *
match_number (const char *p,
              const char *end,
              gboolean   *is_integer)
{
  gboolean integer = TRUE;

  if (p < end && *p == '-')
    p++;
  if (p >= end || !g_ascii_isdigit (*p))
    return NULL;
  if (*p++ != '0')
    while (p < end && g_ascii_isdigit (*p))
      p++;
  if (p < end && *p == '.')
    {
      p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return NULL;
      while (p < end && g_ascii_isdigit (*p))
        p++;
      integer = FALSE;
    }
  if (p < end && (*p == 'e' || *p == 'E'))
    {
      p++;
      if (p < end && (*p == '+' || *p == '-'))
        p++;
      if (p >= end || !g_ascii_isdigit (*p))
        return NULL;
      while (p < end && g_ascii_isdigit (*p))
        p++;
      integer = FALSE;
    }
  if (is_integer != NULL)
    *is_integer = integer;
  return p;
}

static gboolean
scan_number (Scanner *s)
{
  const char *p = match_number (s->p, s->end, NULL);

  if (p == NULL)
    return FALSE;
  s->p = p;
  return TRUE;
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

/* After a member or an element: a ',' (TRUE, *@more set) or @close (TRUE,
 * *@more unset), else an error. */
static gboolean
scan_next (Scanner     *s,
           const char  *data,
           char         close,
           gboolean    *more,
           GError     **error)
{
  skip_ws (s);
  if (s->p < s->end && (*s->p == ',' || *s->p == close))
    {
      *more = *s->p == ',';
      s->p++;
      return TRUE;
    }
  return fail (s, data, error, close == '}' ? "expected “,” or “}”" : "expected “,” or “]”");
}

/* At the top level: blanks, then @open; TRUE with *@empty set if @close
 * follows at once (and is passed). */
static gboolean
scan_open (Scanner     *s,
           const char  *data,
           char         open,
           char         close,
           const char  *what,
           gboolean    *empty,
           GError     **error)
{
  skip_ws (s);
  if (s->p >= s->end || *s->p != open)
    return fail (s, data, error, what);
  s->p++;
  skip_ws (s);
  *empty = s->p < s->end && *s->p == close;
  if (*empty)
    s->p++;
  return TRUE;
}

/* After the top-level value: nothing but blanks. */
static gboolean
scan_end (Scanner     *s,
          const char  *data,
          const char  *what,
          GError     **error)
{
  skip_ws (s);
  if (s->p != s->end)
    return fail (s, data, error, what);
  return TRUE;
}

static gboolean
scan_container (Scanner     *s,
                const char  *data,
                GError     **error)
{
  gboolean is_object = *s->p == '{';
  char close = is_object ? '}' : ']';
  gboolean more;

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
      if (!scan_value (s, data, error) || !scan_next (s, data, close, &more, error))
        return FALSE;
      if (!more)
        {
          s->depth--;
          return TRUE;
        }
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
  gboolean more, empty;

  if (!scan_open (&s, data, '{', '}', "expected an object", &empty, error))
    return FALSE;
  if (!empty)
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
        if (!scan_next (&s, data, '}', &more, error))
          return FALSE;
        if (!more)
          break;
      }

  return scan_end (&s, data, "trailing data after the object", error);
}

/*
 * _gsm_json_scan_array:
 *
 * Checks that @data is one JSON array, nested at most @max_depth deep,
 * and calls @func with the text of each of its elements in order.
 */
gboolean
_gsm_json_scan_array (const char         *data,
                      gsize               len,
                      guint               max_depth,
                      GsmJsonElementFunc  func,
                      gpointer            user_data,
                      GError            **error)
{
  Scanner s = { data, data + len, 1, max_depth, NULL };
  gboolean more, empty;

  if (!scan_open (&s, data, '[', ']', "expected an array", &empty, error))
    return FALSE;
  if (!empty)
    for (;;)
      {
        const char *value;

        skip_ws (&s);
        value = s.p;
        if (!scan_value (&s, data, error))
          return FALSE;
        if (func != NULL && !func (value, (gsize) (s.p - value), user_data, error))
          return FALSE;
        if (!scan_next (&s, data, ']', &more, error))
          return FALSE;
        if (!more)
          break;
      }

  return scan_end (&s, data, "trailing data after the array", error);
}

/* One member at @s->p: its name, “:” and a whole value, into @m. */
static gboolean
salvage_member (Scanner       *s,
                const char    *data,
                GsmJsonMember *m)
{
  s->depth = 1;
  if (s->p >= s->end || *s->p != '"')
    return FALSE;
  m->key = s->p + 1;
  if (!scan_string (s, &m->key_has_escapes))
    return FALSE;
  m->key_len = (gsize) (s->p - 1 - m->key);
  skip_ws (s);
  if (s->p >= s->end || *s->p != ':')
    return FALSE;
  s->p++;
  skip_ws (s);
  m->value = s->p;
  if (!scan_value (s, data, NULL))
    return FALSE;
  m->value_len = (gsize) (s->p - m->value);
  return TRUE;
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
_gsm_json_salvage_object (const char         *data,
                          gsize               len,
                          guint               max_depth,
                          GsmJsonMemberFunc   func,
                          gpointer            user_data)
{
  Scanner s = { data, data + len, 1, max_depth, NULL };
  const char *indent = NULL;
  gsize indent_len = 0;
  gsize budget = 4 * len + 4096;
  guint n = 0;

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
      const char *start = s.p;
      GsmJsonMember m = { 0, };
      gboolean whole = salvage_member (&s, data, &m);
      gsize cost = (gsize) (MIN (s.p, s.end) - start) + 1;

      budget = budget > cost ? budget - cost : 0;
      if (whole)
        {
          n++;
          (void) func (&m, user_data, NULL);
          start = s.p;   /* resume after it, if it is not followed by a comma */
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

/* Checks any single JSON value (not only an object). */
gboolean
_gsm_json_check (const char  *data,
                 gsize        len,
                 guint        max_depth,
                 GError     **error)
{
  Scanner s = { data, data + len, 0, max_depth, NULL };

  skip_ws (&s);
  return scan_value (&s, data, error) && scan_end (&s, data, "trailing data", error);
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

/* ---- decoding values the scanner accepted ------------------------------ */

/* Decodes the bytes between a string's quotes. They are assumed to be
 * valid UTF-8 without raw control characters (the scanner checked); the
 * escapes are checked again here. Returns %NULL for a bad escape and for
 * \u0000, which a C string cannot hold. */
static char *
decode_string_body (const char *p,
                    gsize       len)
{
  const char *end = p + len;
  const char *bs = memchr (p, '\\', len);
  char *out;
  char *o;

  if (bs == NULL)
    return g_strndup (p, len);

  /* Every escape is at least as long as the UTF-8 it stands for. */
  out = g_malloc (len + 1);
  memcpy (out, p, (gsize) (bs - p));
  o = out + (bs - p);
  p = bs;

  while (p < end)
    {
      const char *run = p;

      while (p < end && *p != '\\')
        p++;
      memcpy (o, run, (gsize) (p - run));
      o += p - run;
      if (p >= end)
        break;

      /* A backslash. */
      if (++p >= end)
        goto bad;
      switch (*p)
        {
        case '"': case '\\': case '/':
          *o++ = *p++;
          break;
        case 'b': *o++ = '\b'; p++; break;
        case 'f': *o++ = '\f'; p++; break;
        case 'n': *o++ = '\n'; p++; break;
        case 'r': *o++ = '\r'; p++; break;
        case 't': *o++ = '\t'; p++; break;
        case 'u':
          {
            int unit = read_unicode_escape (p, end);
            gunichar c;

            if (unit < 0 || (unit >= 0xdc00 && unit <= 0xdfff))
              goto bad;
            p += 5;
            c = (gunichar) unit;
            if (unit >= 0xd800 && unit <= 0xdbff)
              {
                int low;

                if (end - p < 6 || *p != '\\')
                  goto bad;
                low = read_unicode_escape (p + 1, end);
                if (low < 0xdc00 || low > 0xdfff)
                  goto bad;
                p += 6;
                c = 0x10000 + (((gunichar) unit - 0xd800) << 10) + ((gunichar) low - 0xdc00);
              }
            if (c == 0)
              goto bad;
            o += g_unichar_to_utf8 (c, o);
          }
          break;
        default:
          goto bad;
        }
    }

  *o = '\0';
  return out;

bad:
  g_free (out);
  return NULL;
}

/*
 * _gsm_json_decode_string:
 * @value: the text of a JSON value the scanner accepted
 *
 * Returns: (transfer full) (nullable): the string @value stands for, or
 *   %NULL if @value is not a string or holds `\u0000`
 */
char *
_gsm_json_decode_string (const char *value,
                         gsize       len)
{
  if (len < 2 || value[0] != '"' || value[len - 1] != '"')
    return NULL;
  return decode_string_body (value + 1, len - 2);
}

/* Whether @value is the literal `null`. */
gboolean
_gsm_json_is_null (const char *value,
                   gsize       len)
{
  return len == 4 && memcmp (value, "null", 4) == 0;
}

/* Whether @value is a JSON number (of any form). */
gboolean
_gsm_json_is_number (const char *value,
                     gsize       len)
{
  return match_number (value, value + len, NULL) == value + len;
}

/*
 * _gsm_json_decode_int64:
 * @value: the text of a JSON value
 * @out: (out): the integer
 * @overflow: (out) (optional): set to whether @value is an integer outside
 *   the range of #gint64
 *
 * Reads a number written as an integer (no fraction, no exponent), as
 * json-glib does. Returns: %FALSE if @value is not such a number or does
 * not fit in 64 bits
 */
gboolean
_gsm_json_decode_int64 (const char *value,
                        gsize       len,
                        gint64     *out,
                        gboolean   *overflow)
{
  const char *p = value;
  const char *end = value + len;
  gboolean negative = FALSE;
  gboolean integer = FALSE;
  guint64 limit;
  guint64 v = 0;

  if (overflow != NULL)
    *overflow = FALSE;
  if (match_number (value, end, &integer) != end || !integer)
    return FALSE;

  if (*p == '-')
    {
      negative = TRUE;
      p++;
    }
  limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  for (; p < end; p++)
    {
      guint digit = (guint) (*p - '0');

      if (v > (limit - digit) / 10)
        {
          if (overflow != NULL)
            *overflow = TRUE;
          return FALSE;
        }
      v = v * 10 + digit;
    }

  if (negative)
    *out = v == (guint64) G_MAXINT64 + 1 ? G_MININT64 : -(gint64) v;
  else
    *out = (gint64) v;
  return TRUE;
}

/*
 * _gsm_json_decode_double:
 * @value: the text of a JSON value
 * @out: (out): the number, ±infinity if it is out of range (`1e400`)
 *
 * Returns: %FALSE if @value is not a JSON number
 */
gboolean
_gsm_json_decode_double (const char *value,
                         gsize       len,
                         double     *out)
{
  char stack[64];
  g_autofree char *heap = NULL;
  char *copy = stack;
  char *endptr = NULL;

  /* Checked first: strtod would also take “inf”, hex and leading space. */
  if (!_gsm_json_is_number (value, len))
    return FALSE;
  if (len >= sizeof stack)
    copy = heap = g_malloc (len + 1);
  memcpy (copy, value, len);
  copy[len] = '\0';
  *out = g_ascii_strtod (copy, &endptr);
  return endptr == copy + len;
}

/* The member's name, decoded; %NULL if it holds `\u0000`. */
char *
_gsm_json_decode_key (const GsmJsonMember *member)
{
  if (!member->key_has_escapes)
    return g_strndup (member->key, member->key_len);
  return decode_string_body (member->key, member->key_len);
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

typedef struct
{
  GString  *out;
  gboolean  first;
  gboolean  ok;
} AppendState;

static void
append_member (JsonObject  *object,
               const char  *name,
               JsonNode    *member,
               gpointer     user_data)
{
  AppendState *st = user_data;

  if (!st->first)
    g_string_append_c (st->out, ',');
  st->first = FALSE;
  _gsm_json_append_string (st->out, name);
  g_string_append_c (st->out, ':');
  st->ok &= _gsm_json_append_node (st->out, member);
}

/*
 * _gsm_json_append_node:
 *
 * Appends @node as JSON text. json-glib 1.6's generator cannot be used for
 * text other readers must parse: it writes 1e22 as `1e+22.0`, which no
 * JSON reader accepts. Doubles are written as _gsm_json_append_double()
 * does.
 *
 * Returns: %FALSE if @node holds a number that is not finite (JSON has
 *   none); @out then holds a 0 in its place
 */
gboolean
_gsm_json_append_node (GString  *out,
                       JsonNode *node)
{
  gboolean ok = TRUE;

  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        AppendState st = { out, TRUE, TRUE };

        /* In the order the members were read or added. */
        g_string_append_c (out, '{');
        json_object_foreach_member (json_node_get_object (node), append_member, &st);
        g_string_append_c (out, '}');
        ok = st.ok;
      }
      break;
    case JSON_NODE_ARRAY:
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
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_STRING:
          _gsm_json_append_string (out, json_node_get_string (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_DOUBLE:
          ok = isfinite (json_node_get_double (node));
          _gsm_json_append_double (out, json_node_get_double (node));
          break;
        default:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        }
      break;
    case JSON_NODE_NULL:
    default:
      g_string_append (out, "null");
      break;
    }

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
      g_ascii_formatd (buf, sizeof buf, precision == 15 ? "%.15g" : precision == 16 ? "%.16g" : "%.17g", value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }

  g_string_append (out, buf);
  /* Keep it a JSON float, so readers that care about the type see one. */
  if (strpbrk (buf, ".eEn") == NULL)
    g_string_append (out, ".0");
}
