/* gsmctl-output.c: how gsmctl prints tables, JSON documents and errors
 *
 * Tables: one row per line, columns aligned. On a terminal they fit its
 * width, the widest columns cut with an ellipsis; piped, every value is
 * printed whole. JSON: one pretty-printed document per command (see the
 * README for the schema). Errors: one line on standard error, naming
 * gsmctl; a warning the library logs is printed the same way, and an
 * error that repeats it is not printed again.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gsmctl.h"

#define MIN_CUT_WIDTH 6

GsmctlOptions gsmctl_opt;

/* ---- errors ------------------------------------------------------------- */

static GPtrArray *printed; /* messages already on standard error */

static void
print_once (const char *message)
{
  if (printed == NULL)
    printed = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < printed->len; i++)
    if (strstr (printed->pdata[i], message) != NULL)
      return;
  g_ptr_array_add (printed, g_strdup (message));
  fprintf (stderr, "gsmctl: %s\n", message);
}

/* The library's warnings, as one line naming gsmctl (not "Gsm-WARNING"
 * under the name of the command); debug output as GLib prints it. */
static GLogWriterOutput
log_writer (GLogLevelFlags   level,
            const GLogField *fields,
            gsize            n_fields,
            gpointer         user_data)
{
  const char *message = NULL;

  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return g_log_writer_default (level, fields, n_fields, user_data);

  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  if (message == NULL)
    return G_LOG_WRITER_UNHANDLED;
  print_once (message);
  return G_LOG_WRITER_HANDLED;
}

void
gsmctl_output_init (void)
{
  g_log_set_writer_func (log_writer, NULL, NULL);
}

void
gsmctl_error (const char *format,
              ...)
{
  g_autofree char *message = NULL;
  va_list          args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  print_once (message);
}

void
gsmctl_gerror (const GError *error)
{
  print_once (error->message);
}

double
gsmctl_now (void)
{
  return g_get_real_time () / (double) G_USEC_PER_SEC;
}

char *
gsmctl_format_age (double seconds)
{
  if (seconds < 120)
    return g_strdup_printf ("%.0fs", seconds);
  if (seconds < 7200)
    return g_strdup_printf ("%.0fm", seconds / 60);
  return g_strdup_printf ("%.1fh", seconds / 3600);
}

/* ---- tables ------------------------------------------------------------- */

struct _GsmctlTable
{
  GPtrArray *headers; /* "PID" or ">PID" (aligned right) */
  GPtrArray *rows;    /* GStrv */
};

GsmctlTable *
gsmctl_table_new (const char *first_header,
                  ...)
{
  GsmctlTable *table = g_new0 (GsmctlTable, 1);
  va_list      args;

  table->headers = g_ptr_array_new_with_free_func (g_free);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  va_start (args, first_header);
  for (const char *h = first_header; h != NULL; h = va_arg (args, const char *))
    g_ptr_array_add (table->headers, g_strdup (h));
  va_end (args);
  return table;
}

/* One cell per header; NULL cells show as "-". */
void
gsmctl_table_add_row (GsmctlTable *table,
                      const char  *first_cell,
                      ...)
{
  char      **row = g_new0 (char *, table->headers->len + 1);
  const char *cell = first_cell;
  va_list     args;

  va_start (args, first_cell);
  for (guint i = 0; i < table->headers->len; i++)
    {
      row[i] = g_strdup (cell != NULL && *cell != '\0' ? cell : "-");
      if (i + 1 < table->headers->len)
        cell = va_arg (args, const char *);
    }
  va_end (args);
  g_ptr_array_add (table->rows, row);
}

void
gsmctl_table_free (GsmctlTable *table)
{
  g_ptr_array_unref (table->headers);
  g_ptr_array_unref (table->rows);
  g_free (table);
}

static const char *
header_text (GsmctlTable *table,
             guint        column)
{
  const char *h = table->headers->pdata[column];

  return h[0] == '>' ? h + 1 : h;
}

/* The terminal's width, or 0 if standard output is not a terminal. */
static guint
terminal_width (void)
{
  struct winsize ws;

  if (!isatty (STDOUT_FILENO))
    return 0;
  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

/* Narrows the widest columns until the line fits @width. */
static void
fit_widths (guint *widths,
            guint  n,
            guint  width)
{
  guint total = 2 * (n - 1);

  for (guint i = 0; i < n; i++)
    total += widths[i];
  while (total > width)
    {
      guint widest = 0;

      for (guint i = 1; i < n; i++)
        if (widths[i] > widths[widest])
          widest = i;
      if (widths[widest] <= MIN_CUT_WIDTH)
        break;
      widths[widest]--;
      total--;
    }
}

static void
print_cell (const char *text,
            guint       width,
            gboolean    right,
            gboolean    last)
{
  glong len = g_utf8_strlen (text, -1);

  if ((guint) len > width)
    {
      const char *end = g_utf8_offset_to_pointer (text, width - 1);

      fwrite (text, 1, end - text, stdout);
      fputs ("…", stdout);
      return;
    }
  if (right)
    printf ("%*s%s", (int) (width - len), "", text);
  else if (last)
    fputs (text, stdout);
  else
    printf ("%s%*s", text, (int) (width - len), "");
}

static void
print_line (GsmctlTable *table,
            const char **cells,
            const guint *widths)
{
  guint n = table->headers->len;

  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        fputs ("  ", stdout);
      print_cell (cells[i], widths[i], ((char *) table->headers->pdata[i])[0] == '>',
                  i + 1 == n);
    }
  fputc ('\n', stdout);
}

void
gsmctl_table_print (GsmctlTable *table)
{
  guint                   n = table->headers->len;
  g_autofree guint       *widths = g_new0 (guint, n);
  g_autofree const char **headers = g_new0 (const char *, n + 1);
  guint                   width = terminal_width ();

  for (guint i = 0; i < n; i++)
    {
      headers[i] = header_text (table, i);
      widths[i] = g_utf8_strlen (headers[i], -1);
      for (guint r = 0; r < table->rows->len; r++)
        widths[i] = MAX (widths[i], (guint) g_utf8_strlen (((char **) table->rows->pdata[r])[i], -1));
    }
  if (width > 0)
    fit_widths (widths, n, width);

  print_line (table, headers, widths);
  for (guint r = 0; r < table->rows->len; r++)
    print_line (table, table->rows->pdata[r], widths);
}

/* ---- JSON --------------------------------------------------------------- */

/* The document @builder holds, pretty-printed, as every --json does. */
void
gsmctl_print_json (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = json_to_string (root, TRUE);

  printf ("%s\n", text);
}

/* @member: @value, or null if @value is NULL or empty. */
void
gsmctl_json_add_string (JsonBuilder *builder,
                        const char  *member,
                        const char  *value)
{
  json_builder_set_member_name (builder, member);
  if (value != NULL && *value != '\0')
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

/* The members of a session, in this order, null when unknown: the same
 * whether it was read from the registry or from gsmd. */
static const char *const session_members[] = {
  "session_id", "pid", "hostname", "status", "created_at", "vm_id", "zone", "components",
  "metadata", "registered_at", "start_time", "boot_id", "stale_since", NULL
};

/* A session, from its dictionary (gsm_session_to_variant() or gsmd's). */
void
gsmctl_json_add_session (JsonBuilder *builder,
                         GVariant    *session)
{
  json_builder_begin_object (builder);
  for (guint i = 0; session_members[i] != NULL; i++)
    {
      g_autoptr (GVariant) value = g_variant_lookup_value (session, session_members[i], NULL);

      json_builder_set_member_name (builder, session_members[i]);
      if (value == NULL ||
          (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING) &&
           *g_variant_get_string (value, NULL) == '\0'))
        json_builder_add_null_value (builder);
      else
        json_builder_add_value (builder, json_gvariant_serialize (value));
    }
  json_builder_end_object (builder);
}
