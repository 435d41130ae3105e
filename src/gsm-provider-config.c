/* gsm-provider-config.c: the providers the configuration describes
 *
 * A provider from a preset, from a group of the configuration file, or
 * from the configuration file with the GSM_PROVIDER* environment
 * variables on top (see the "Configuration" section of GsmProvider).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-provider-presets-private.h"
#include "gsm-provider-private.h"

#define DEFAULT_NAME "gcloud"

static char *
group_name (const char *name)
{
  return g_strdup_printf ("provider %s", name);
}

static gboolean
apply_settings (GsmProvider *self,
                const char  *what,
                const char  *timeout,
                const char  *exit_code,
                const char  *pattern,
                GError     **error)
{
  if (timeout != NULL)
    {
      char  *end = NULL;
      double d = g_ascii_strtod (timeout, &end);

      if (end == timeout || *end != '\0' || !(d >= 0 && d <= 24 * 3600.0))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: timeout “%s” is not a number of seconds between 0 and 86400",
                       what, timeout);
          return FALSE;
        }
      gsm_provider_set_timeout (self, d);
    }

  if (exit_code != NULL)
    {
      gint64 v;

      if (!g_ascii_string_to_signed (exit_code, 10, -1, 255, &v, NULL))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: not-found exit code “%s” is not between -1 and 255", what, exit_code);
          return FALSE;
        }
      gsm_provider_set_not_found_exit_code (self, (int) v);
    }

  if (pattern != NULL)
    {
      g_autoptr (GError) local_error = NULL;

      if (!gsm_provider_set_not_found_pattern (self, *pattern ? pattern : NULL, &local_error))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: %s", what, local_error->message);
          return FALSE;
        }
    }

  return TRUE;
}

/* The list command given as text (split as a shell would), and its
 * format; either may be NULL (unchanged). An empty command removes it. */
static gboolean
apply_list_settings (GsmProvider *self,
                     const char  *what,
                     const char  *command,
                     const char  *format,
                     GError     **error)
{
  g_auto (GStrv) argv = NULL;
  g_autoptr (GError) local_error = NULL;

  if (format != NULL && *format == '\0')
    format = NULL;
  if (command == NULL && format == NULL)
    return TRUE;

  if (command != NULL && *command != '\0' &&
      !g_shell_parse_argv (command, NULL, &argv, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "%s: list command “%s”: %s", what, command, local_error->message);
      return FALSE;
    }

  if (command == NULL)
    argv = gsm_provider_get_list_command (self);

  if (!gsm_provider_set_list_command (self, (const char *const *) argv, format, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "%s: %s", what, local_error->message);
      return FALSE;
    }

  return TRUE;
}

static GsmProvider *
new_from_preset (const char              *name,
                 const GsmProviderPreset *preset)
{
  GsmProvider *self = gsm_provider_new (name, preset->delete_command, NULL);

  _gsm_provider_apply_preset (self, preset);
  return self;
}

/**
 * gsm_provider_new_preset:
 * @preset: `gcloud`, `aws` or `az`
 * @error: return location for a #GError
 *
 * Creates a provider named @preset that runs that cloud's CLI, with its
 * delete and list commands and its "not found" rules (see
 * [class@Gsm.Provider]).
 *
 * Returns: (transfer full): a new provider, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT if there is no such preset
 *
 * Since: 1.0
 */
GsmProvider *
gsm_provider_new_preset (const char *preset,
                         GError    **error)
{
  const GsmProviderPreset *p;

  g_return_val_if_fail (preset != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  p = _gsm_provider_preset_lookup (preset);
  if (p == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "There is no provider preset “%s” (presets: %s)", preset,
                   _gsm_provider_preset_names ());
      return NULL;
    }

  return new_from_preset (p->name, p);
}

/* The provider of group @group of @key_file, which exists; @name is
 * %NULL for group `[provider]`. */
static GsmProvider *
new_from_group (GKeyFile   *key_file,
                const char *name,
                const char *group,
                GError    **error)
{
  g_autoptr (GsmProvider) self = NULL;
  g_autofree char         *preset_name = NULL;
  g_autofree char         *command = NULL;
  g_autofree char         *list_command = NULL;
  g_autofree char         *list_format = NULL;
  g_autofree char         *timeout = NULL;
  g_autofree char         *exit_code = NULL;
  g_autofree char         *pattern = NULL;
  g_autofree char         *what = NULL;
  const GsmProviderPreset *preset;

  preset_name = g_key_file_get_string (key_file, group, "preset", NULL);
  if (preset_name != NULL)
    g_strstrip (preset_name);
  if (name == NULL)
    name = preset_name != NULL && *preset_name ? preset_name : "custom";
  what = g_strdup_printf ("Provider “%s” (group [%s])", name, group);

  if (preset_name != NULL && *preset_name)
    {
      preset = _gsm_provider_preset_lookup (preset_name);
      if (preset == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: there is no preset “%s” (presets: %s)", what, preset_name,
                       _gsm_provider_preset_names ());
          return NULL;
        }
    }
  else
    preset = _gsm_provider_preset_lookup (name);

  command = g_key_file_get_string (key_file, group, "command", NULL);
  if (command != NULL)
    {
      g_auto (GStrv) argv = NULL;
      g_autoptr (GError) local_error = NULL;

      if (!g_shell_parse_argv (command, NULL, &argv, &local_error) ||
          (self = gsm_provider_new (name, (const char *const *) argv, &local_error)) == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: command “%s”: %s", what, command, local_error->message);
          return NULL;
        }
      /* A preset named explicitly still gives its other rules. */
      if (preset_name != NULL && *preset_name)
        _gsm_provider_apply_preset (self, preset);
    }
  else if (preset != NULL)
    self = new_from_preset (name, preset);
  else
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "%s has neither “command” nor “preset” (presets: %s)", what,
                   _gsm_provider_preset_names ());
      return NULL;
    }

  list_command = g_key_file_get_string (key_file, group, "list-command", NULL);
  list_format = g_key_file_get_string (key_file, group, "list-format", NULL);
  if (list_format != NULL)
    g_strstrip (list_format);
  if (!apply_list_settings (self, what, list_command, list_format, error))
    return NULL;

  timeout = g_key_file_get_string (key_file, group, "timeout", NULL);
  exit_code = g_key_file_get_string (key_file, group, "not-found-exit-code", NULL);
  pattern = g_key_file_get_string (key_file, group, "not-found-pattern", NULL);
  if (!apply_settings (self, what, timeout, exit_code, pattern, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * gsm_provider_new_from_key_file:
 * @key_file: a #GKeyFile
 * @name: (nullable): the provider's name; %NULL for the `provider` key of
 *   group `[reaper]`, else group `[provider]`, else `gcloud`
 * @error: return location for a #GError
 *
 * Creates the provider described by group `[provider NAME]` of @key_file
 * (or `[provider]`): keys `preset` (`gcloud`, `aws` or `az`: the commands
 * and rules to start from), `command` (split as a shell would, never run
 * by one), `list-command`, `list-format`, `timeout` (seconds),
 * `not-found-exit-code` and `not-found-pattern`. A missing group is an
 * error, except for a name that is a preset's. The environment is not
 * consulted.
 *
 * Returns: (transfer full): a new provider, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT
 *
 * Since: 1.0
 */
GsmProvider *
gsm_provider_new_from_key_file (GKeyFile   *key_file,
                                const char *name,
                                GError    **error)
{
  g_autofree char         *group = NULL;
  g_autofree char         *configured = NULL;
  const GsmProviderPreset *preset;

  g_return_val_if_fail (key_file != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (name == NULL)
    {
      configured = g_key_file_get_string (key_file, "reaper", "provider", NULL);
      if (configured != NULL)
        g_strstrip (configured);
      if (configured != NULL && *configured)
        name = configured;
      else if (g_key_file_has_group (key_file, "provider"))
        group = g_strdup ("provider");
      else
        name = DEFAULT_NAME;
    }

  if (group == NULL)
    group = group_name (name);
  if (!g_key_file_has_group (key_file, group))
    {
      preset = _gsm_provider_preset_lookup (name);
      if (preset != NULL)
        return new_from_preset (name, preset);
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Provider “%s” (group [%s]): no such group in the configuration", name, group);
      return NULL;
    }

  return new_from_group (key_file, name, group, error);
}

/**
 * gsm_provider_new_default:
 * @error: return location for a #GError
 *
 * Creates the provider the configuration asks for: the configuration file
 * (see [class@Gsm.Provider]) with the `GSM_PROVIDER*` environment
 * variables applied on top. Without any configuration, this is the
 * `gcloud` provider.
 *
 * Returns: (transfer full): a new provider, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT naming the file or variable at fault
 *
 * Since: 1.0
 */
GsmProvider *
gsm_provider_new_default (GError **error)
{
  g_autoptr (GKeyFile) key_file = NULL;
  g_autoptr (GsmProvider) self = NULL;
  const char *name = g_getenv ("GSM_PROVIDER");
  const char *command = g_getenv ("GSM_PROVIDER_COMMAND");

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  key_file = _gsm_config_load (error);
  if (key_file == NULL)
    return NULL;

  if (name != NULL && *name == '\0')
    name = NULL;

  if (command != NULL && *command != '\0')
    {
      g_auto (GStrv) argv = NULL;
      g_autoptr (GError) local_error = NULL;
      g_autofree char *configured = g_key_file_get_string (key_file, "reaper", "provider", NULL);
      const char      *use = name ? name : configured && *configured ? configured
                                                                     : "custom";

      if (!g_shell_parse_argv (command, NULL, &argv, &local_error) ||
          (self = gsm_provider_new (use, (const char *const *) argv, &local_error)) == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "GSM_PROVIDER_COMMAND=%s: %s", command, local_error->message);
          return NULL;
        }
    }
  else
    {
      self = gsm_provider_new_from_key_file (key_file, name, error);
      if (self == NULL)
        return NULL;
    }

  if (!apply_settings (self, "Environment", g_getenv ("GSM_PROVIDER_TIMEOUT"),
                       g_getenv ("GSM_PROVIDER_NOT_FOUND_EXIT_CODE"),
                       g_getenv ("GSM_PROVIDER_NOT_FOUND_PATTERN"), error) ||
      !apply_list_settings (self, "Environment (GSM_PROVIDER_LIST_COMMAND)",
                            g_getenv ("GSM_PROVIDER_LIST_COMMAND"),
                            g_getenv ("GSM_PROVIDER_LIST_FORMAT"), error))
    return NULL;

  return g_steal_pointer (&self);
}
