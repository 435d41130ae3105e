/* gsm-provider-presets-private.h: the gcloud, aws and az presets, the
 * inventory formats they print, and reading a failed command's output
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most output a list command may print (its JSON is parsed whole). */
#define GSM_INVENTORY_MAX_OUTPUT (64 * 1024 * 1024)

typedef struct
{
  const char        *name;
  const char *const *delete_command;
  const char *const *list_command;
  const char        *list_format;
  int                not_found_exit_code; /* -1 for none */
  const char        *not_found_pattern;
} GsmProviderPreset;

/* The preset called @name, or %NULL. */
G_GNUC_INTERNAL
const GsmProviderPreset *_gsm_provider_preset_lookup (const char *name);
/* "gcloud, aws, az", for messages. */
G_GNUC_INTERNAL
const char *_gsm_provider_preset_names (void);

/* gcloud, aws, az or json. */
G_GNUC_INTERNAL
gboolean _gsm_inventory_format_is_known (const char *format);
/*
 * The VMs in the output of a list command in @format, as
 * GsmInventoryItems. Output that is not what the format prints is an
 * error (GSM_ERROR_PROVIDER_FAILED) naming what is wrong; an entry
 * without an identifier is left out.
 */
G_GNUC_INTERNAL
GPtrArray *_gsm_inventory_parse (const char *format,
                                 const char *data,
                                 gsize       len,
                                 GError    **error);

/*
 * The line of a failed command's standard error that says what went
 * wrong: the first line starting with "ERROR:" (with the indented lines
 * that continue it, when it ends with ':'), else the last line that is
 * not blank; at most 1000 bytes. "" for empty output.
 */
G_GNUC_INTERNAL
char *_gsm_provider_relevant_line (const char *text);

G_END_DECLS
