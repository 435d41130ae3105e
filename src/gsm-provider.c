/* gsm-provider.c: GsmProvider
 *
 * A provider deletes a VM by running a command: an argument vector with
 * placeholders, run with GSubprocess (never through a shell), in a process
 * group of its own so that a timeout or a cancellation kills the command
 * and everything it started. The command is killed when the thread that
 * started it dies (PR_SET_PDEATHSIG), so a reaper killed mid-deletion does
 * not leave it running; what it started itself may outlive it, in its
 * process group, which a reaper taking over waits for
 * (_gsm_provider_group_is_gone()). Both are set by the helper
 * gsm-provider-exec, started with posix_spawn(), or without it by a child
 * setup function after a fork().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gsm-error.h"
#include "gsm-fs-private.h"
#include "gsm-process-private.h"
#include "gsm-inventory-item-private.h"
#include "gsm-labels-private.h"
#include "gsm-provider-presets-private.h"
#include "gsm-provider-private.h"
#include "gsm-provider-result-private.h"

#define DEFAULT_NAME "gcloud"
#define DEFAULT_TIMEOUT 300.0
/* How long to wait for the output pipes to close once the command was
 * killed (a descendant that left the process group may hold them). */
#define DRAIN_TIMEOUT_MS 2000

static const char * const placeholders[] = { "vm_id", "zone", "session_id", NULL };
static const char * const list_placeholders[] = { "registry", NULL };

/**
 * GsmProvider:
 *
 * Deletes VMs by running a command template, and lists the VMs of a
 * registry by running another.
 *
 * The delete template is an argument vector; `{vm_id}`, `{zone}` and
 * `{session_id}` in any argument but the first are replaced by the VM's
 * values. It is run with [class@Gio.Subprocess], never through a shell,
 * in a process group of its own: when the call times out or is cancelled,
 * the whole group is killed, and when the process that started it dies,
 * the command is killed too. Its standard output and error are kept in the
 * [class@Gsm.ProviderResult]; when it fails, the error message carries
 * the line of its standard error that says why (the `ERROR:` line where
 * the CLI prints one, else its last line), and the audit log its whole
 * standard error (up to 64 KiB).
 *
 * A command that exits with [property@Gsm.Provider:not-found-exit-code],
 * or fails with output that matches
 * [property@Gsm.Provider:not-found-pattern], reports that the VM does not
 * exist: that counts as success (the VM is gone).
 *
 * The optional list template ([property@Gsm.Provider:list-command]) prints
 * the VMs that carry a registry's label as JSON; `{registry}` is replaced
 * by the value of the `gsm-registry` label (see
 * [method@Gsm.SessionManager.get_vm_labels]). Its output is read in the
 * [property@Gsm.Provider:list-format]. [method@Gsm.Reaper.reconcile]
 * compares it with the registry.
 *
 * ## Presets
 *
 * Three presets give both commands and the "not found" rules of the real
 * CLIs ([ctor@Gsm.Provider.new_preset]):
 *
 * - `gcloud`: `gcloud compute instances delete {vm_id} --zone {zone} --quiet`
 *   (output matching `was not found` is "not found"), and
 *   `gcloud compute instances list --filter=labels.gsm-registry={registry} --format=json`;
 * - `aws`: `aws ec2 terminate-instances --instance-ids {vm_id} --output json`
 *   (`InvalidInstanceID.NotFound`), and `aws ec2 describe-instances
 *   --filters Name=tag:gsm-registry,Values={registry}
 *   Name=instance-state-name,Values=pending,running,stopping,stopped
 *   --output json`; `{vm_id}` is the instance ID;
 * - `az`: `az vm delete --resource-group {zone} --name {vm_id} --yes
 *   --output json` (exit status 3, or `(ResourceNotFound)` or
 *   `(ResourceGroupNotFound)`), and `az vm list --query
 *   [?tags."gsm-registry"=='{registry}'] --output json`; `{zone}` is the
 *   VM's resource group.
 *
 * The default provider is the `gcloud` preset.
 *
 * ## Configuration
 *
 * [ctor@Gsm.Provider.new_default] reads the key file
 * `$XDG_CONFIG_HOME/gsm-session/config.ini` (or `$GSM_CONFIG_FILE`). The
 * simplest form picks a preset:
 *
 * ```ini
 * [provider]
 * preset=aws
 * ```
 *
 * Several providers can be described, each in a group `[provider NAME]`,
 * and the `provider` key of group `[reaper]` names the one to use:
 *
 * ```ini
 * [reaper]
 * provider=mycloud
 *
 * [provider mycloud]
 * command=mycloud vm delete --zone={zone} {vm_id}
 * list-command=mycloud vm list --label gsm-registry={registry} --json
 * list-format=json
 * timeout=120
 * not-found-exit-code=3
 * not-found-pattern=no such VM
 * ```
 *
 * In either group, `preset` starts from a preset and the other keys
 * override it. `command` and `list-command` are split like a shell would
 * split them (quotes are honoured) but no shell runs them. `list-format`
 * is `gcloud`, `aws`, `az` or `json` (an array of objects with `id`,
 * `name`, `zone`, `state`, `labels` and `created_at`, in seconds or
 * RFC 3339). These environment variables override the file:
 * `GSM_PROVIDER` (the name), `GSM_PROVIDER_COMMAND`,
 * `GSM_PROVIDER_LIST_COMMAND`, `GSM_PROVIDER_LIST_FORMAT`,
 * `GSM_PROVIDER_TIMEOUT` (seconds), `GSM_PROVIDER_NOT_FOUND_EXIT_CODE`,
 * `GSM_PROVIDER_NOT_FOUND_PATTERN`.
 *
 * Since: 1.0
 */
struct _GsmProvider
{
  GObject   parent_instance;

  char     *name;
  char    **command;
  char     *preset;            /* the preset it started from, or NULL */
  GMutex    mutex;             /* guards the settings below */
  char    **list_command;      /* NULL: no inventory */
  char     *list_format;
  double    timeout;
  int       not_found_exit_code;
  char     *not_found_pattern;
  GRegex   *not_found_regex;
};

enum {
  PROP_0,
  PROP_NAME,
  PROP_COMMAND,
  PROP_TIMEOUT,
  PROP_NOT_FOUND_EXIT_CODE,
  PROP_NOT_FOUND_PATTERN,
  PROP_LIST_COMMAND,
  PROP_LIST_FORMAT,
  PROP_PRESET,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (GsmProvider, gsm_provider, G_TYPE_OBJECT)

static void
gsm_provider_finalize (GObject *object)
{
  GsmProvider *self = GSM_PROVIDER (object);

  g_free (self->name);
  g_strfreev (self->command);
  g_free (self->preset);
  g_strfreev (self->list_command);
  g_free (self->list_format);
  g_free (self->not_found_pattern);
  g_clear_pointer (&self->not_found_regex, g_regex_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (gsm_provider_parent_class)->finalize (object);
}

static void
gsm_provider_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  GsmProvider *self = GSM_PROVIDER (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_COMMAND:
      g_value_set_boxed (value, self->command);
      break;
    case PROP_TIMEOUT:
      g_value_set_double (value, gsm_provider_get_timeout (self));
      break;
    case PROP_NOT_FOUND_EXIT_CODE:
      g_value_set_int (value, gsm_provider_get_not_found_exit_code (self));
      break;
    case PROP_NOT_FOUND_PATTERN:
      g_mutex_lock (&self->mutex);
      g_value_set_string (value, self->not_found_pattern);
      g_mutex_unlock (&self->mutex);
      break;
    case PROP_LIST_COMMAND:
      g_mutex_lock (&self->mutex);
      g_value_set_boxed (value, self->list_command);
      g_mutex_unlock (&self->mutex);
      break;
    case PROP_LIST_FORMAT:
      g_mutex_lock (&self->mutex);
      g_value_set_string (value, self->list_format);
      g_mutex_unlock (&self->mutex);
      break;
    case PROP_PRESET:
      g_value_set_string (value, self->preset);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_provider_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  GsmProvider *self = GSM_PROVIDER (object);

  switch (prop_id)
    {
    case PROP_TIMEOUT:
      gsm_provider_set_timeout (self, g_value_get_double (value));
      break;
    case PROP_NOT_FOUND_EXIT_CODE:
      gsm_provider_set_not_found_exit_code (self, g_value_get_int (value));
      break;
    case PROP_NOT_FOUND_PATTERN:
      {
        g_autoptr(GError) error = NULL;

        if (!gsm_provider_set_not_found_pattern (self, g_value_get_string (value), &error))
          g_warning ("%s", error->message);
      }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_provider_class_init (GsmProviderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_provider_finalize;
  object_class->get_property = gsm_provider_get_property;
  object_class->set_property = gsm_provider_set_property;

  /**
   * GsmProvider:name:
   *
   * The provider's name, as in the configuration file.
   *
   * Since: 1.0
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProvider:command:
   *
   * The command template: an argument vector with placeholders.
   *
   * Since: 1.0
   */
  properties[PROP_COMMAND] =
    g_param_spec_boxed ("command", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProvider:timeout:
   *
   * How long one call may run, in seconds, before the command is killed;
   * 0 for no limit.
   *
   * Since: 1.0
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_double ("timeout", NULL, NULL, 0, 24 * 3600.0, DEFAULT_TIMEOUT,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmProvider:not-found-exit-code:
   *
   * The exit status by which the command reports that the VM does not
   * exist, or -1 for none.
   *
   * Since: 1.0
   */
  properties[PROP_NOT_FOUND_EXIT_CODE] =
    g_param_spec_int ("not-found-exit-code", NULL, NULL, -1, 255, -1,
                      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmProvider:not-found-pattern:
   *
   * A regular expression: when a failed command's standard output or
   * error matches it, the VM does not exist. %NULL for none.
   *
   * Since: 1.0
   */
  properties[PROP_NOT_FOUND_PATTERN] =
    g_param_spec_string ("not-found-pattern", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmProvider:list-command:
   *
   * The list template: an argument vector that prints, as JSON, the VMs
   * labelled `gsm-registry={registry}`; %NULL if the provider cannot list
   * VMs (then no reconciliation is possible). Set it with
   * [method@Gsm.Provider.set_list_command].
   *
   * Since: 1.0
   */
  properties[PROP_LIST_COMMAND] =
    g_param_spec_boxed ("list-command", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmProvider:list-format:
   *
   * How the list command's output is read: `gcloud`, `aws`, `az` or
   * `json` (see [class@Gsm.Provider]).
   *
   * Since: 1.0
   */
  properties[PROP_LIST_FORMAT] =
    g_param_spec_string ("list-format", NULL, NULL, "json",
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmProvider:preset:
   *
   * The preset the provider was made from (`gcloud`, `aws` or `az`), or
   * %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_PRESET] =
    g_param_spec_string ("preset", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_provider_init (GsmProvider *self)
{
  g_mutex_init (&self->mutex);
  self->timeout = DEFAULT_TIMEOUT;
  self->not_found_exit_code = -1;
  self->list_format = g_strdup ("json");
}

/* ---- the template ------------------------------------------------------ */

/* "{a}, {b}" for @names. */
static char *
describe_placeholders (const char * const *names)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; names[i]; i++)
    g_string_append_printf (out, "%s{%s}", i ? ", " : "", names[i]);
  return g_string_free (out, FALSE);
}

/* Checks each `{word}` of @arg: one of @names, and allowed in this
 * argument. */
static gboolean
check_placeholders (const char          *what,
                    const char          *arg,
                    gboolean             allowed,
                    const char * const  *names,
                    GError             **error)
{
  for (const char *p = strchr (arg, '{'); p != NULL; p = strchr (p + 1, '{'))
    {
      const char *end = strchr (p, '}');
      gboolean known = FALSE;

      if (end == NULL)
        break;
      for (guint i = 0; names[i]; i++)
        if ((gsize) (end - p - 1) == strlen (names[i]) &&
            strncmp (p + 1, names[i], end - p - 1) == 0)
          known = TRUE;

      if (!known)
        {
          /* Only `{word}` is a placeholder; other braces are literal. */
          gboolean word = end > p + 1;

          for (const char *q = p + 1; q < end; q++)
            if (!g_ascii_isalnum (*q) && *q != '_')
              word = FALSE;
          if (word)
            {
              g_autofree char *known_names = describe_placeholders (names);

              g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                           "Unknown placeholder “%.*s” in %s argument “%s” (known: %s)",
                           (int) (end - p + 1), p, what, arg, known_names);
              return FALSE;
            }
        }
      else if (!allowed)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "The program of a %s (“%s”) cannot contain a placeholder", what, arg);
          return FALSE;
        }
    }

  return TRUE;
}

static gboolean
validate_template (const char          *what,
                   const char * const  *command,
                   const char * const  *names,
                   GError             **error)
{
  if (command == NULL || command[0] == NULL || *command[0] == '\0')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT, "The %s is empty", what);
      return FALSE;
    }

  for (guint i = 0; command[i]; i++)
    {
      if (!g_utf8_validate (command[i], -1, NULL))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "Argument %u of the %s is not valid UTF-8", i, what);
          return FALSE;
        }
      if (!check_placeholders (what, command[i], i > 0, names, error))
        return FALSE;
    }

  return TRUE;
}

static gboolean
validate_command (const char * const  *command,
                  GError             **error)
{
  gboolean has_vm_id = FALSE;

  if (!validate_template ("provider command", command, placeholders, error))
    return FALSE;

  for (guint i = 0; command[i]; i++)
    if (strstr (command[i], "{vm_id}") != NULL)
      has_vm_id = TRUE;

  if (!has_vm_id)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "The provider command “%s” never uses {vm_id}", command[0]);
      return FALSE;
    }

  return TRUE;
}

/**
 * gsm_provider_new:
 * @name: the provider's name, used in messages
 * @command: (array zero-terminated=1): the command template
 * @error: return location for a #GError
 *
 * Creates a provider that runs @command. Every argument but the first may
 * contain the placeholders `{vm_id}`, `{zone}` and `{session_id}`;
 * `{vm_id}` must appear somewhere. The timeout is 300 seconds and nothing
 * reports "not found" until set.
 *
 * Returns: (transfer full): a new provider, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT if @command is empty or uses an unknown
 *   placeholder
 *
 * Since: 1.0
 */
GsmProvider *
gsm_provider_new (const char          *name,
                  const char * const  *command,
                  GError             **error)
{
  GsmProvider *self;

  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!validate_command (command, error))
    return NULL;

  self = g_object_new (GSM_TYPE_PROVIDER, NULL);
  self->name = g_strdup (name);
  self->command = g_strdupv ((char **) command);

  return self;
}

static char *
group_name (const char *name)
{
  return g_strdup_printf ("provider %s", name);
}

static gboolean
apply_settings (GsmProvider  *self,
                const char   *what,
                const char   *timeout,
                const char   *exit_code,
                const char   *pattern,
                GError      **error)
{
  if (timeout != NULL)
    {
      char *end = NULL;
      double d = g_ascii_strtod (timeout, &end);

      if (end == timeout || *end != '\0' || !(d >= 0 && d <= 24 * 3600.0))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: timeout “%s” is not a number of seconds between 0 and 86400",
                       what, timeout);
          return FALSE;
        }
      self->timeout = d;
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
      self->not_found_exit_code = (int) v;
    }

  if (pattern != NULL)
    {
      g_autoptr(GError) local_error = NULL;

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
apply_list_settings (GsmProvider  *self,
                     const char   *what,
                     const char   *command,
                     const char   *format,
                     GError      **error)
{
  g_auto(GStrv) argv = NULL;
  g_autoptr(GError) local_error = NULL;

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
    {
      g_mutex_lock (&self->mutex);
      argv = g_strdupv (self->list_command);
      g_mutex_unlock (&self->mutex);
    }

  if (!gsm_provider_set_list_command (self, (const char * const *) argv, format, &local_error))
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

  self->preset = g_strdup (preset->name);
  self->not_found_exit_code = preset->not_found_exit_code;
  gsm_provider_set_not_found_pattern (self, preset->not_found_pattern, NULL);
  gsm_provider_set_list_command (self, preset->list_command, preset->list_format, NULL);
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
gsm_provider_new_preset (const char  *preset,
                         GError     **error)
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
gsm_provider_new_from_key_file (GKeyFile    *key_file,
                                const char  *name,
                                GError     **error)
{
  g_autoptr(GsmProvider) self = NULL;
  g_autofree char *group = NULL;
  g_autofree char *configured = NULL;
  g_autofree char *preset_name = NULL;
  g_autofree char *command = NULL;
  g_autofree char *list_command = NULL;
  g_autofree char *list_format = NULL;
  g_autofree char *timeout = NULL;
  g_autofree char *exit_code = NULL;
  g_autofree char *pattern = NULL;
  g_autofree char *what = NULL;
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
      g_auto(GStrv) argv = NULL;
      g_autoptr(GError) local_error = NULL;

      if (!g_shell_parse_argv (command, NULL, &argv, &local_error) ||
          (self = gsm_provider_new (name, (const char * const *) argv, &local_error)) == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s: command “%s”: %s", what, command, local_error->message);
          return NULL;
        }
      /* A preset named explicitly still gives its other rules. */
      if (preset_name != NULL && *preset_name)
        {
          self->preset = g_strdup (preset->name);
          self->not_found_exit_code = preset->not_found_exit_code;
          gsm_provider_set_not_found_pattern (self, preset->not_found_pattern, NULL);
          gsm_provider_set_list_command (self, preset->list_command, preset->list_format, NULL);
        }
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

char *
_gsm_config_get_path (void)
{
  const char *env = g_getenv ("GSM_CONFIG_FILE");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_config_dir (), "gsm-session", "config.ini", NULL);
}

GKeyFile *
_gsm_config_load (GError **error)
{
  g_autoptr(GKeyFile) key_file = g_key_file_new ();
  g_autofree char *path = _gsm_config_get_path ();
  g_autoptr(GError) local_error = NULL;

  if (!g_key_file_load_from_file (key_file, path, G_KEY_FILE_NONE, &local_error) &&
      !g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Cannot read configuration file “%s”: %s", path, local_error->message);
      return NULL;
    }

  return g_steal_pointer (&key_file);
}

char *
_gsm_config_get_backend (GKeyFile *key_file)
{
  const char *env = g_getenv ("GSM_REGISTRY");
  char *backend;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  if (key_file == NULL)
    return NULL;
  backend = g_key_file_get_string (key_file, "registry", "backend", NULL);
  if (backend != NULL)
    g_strstrip (backend);
  return backend;
}

gboolean
_gsm_backend_is_etcd (const char *backend)
{
  return backend != NULL && (g_str_has_prefix (backend, "etcd:") ||
                             g_str_has_prefix (backend, "etcds:"));
}

double
_gsm_config_get_seconds (GKeyFile   *key_file,
                         const char *group,
                         const char *key,
                         const char *env,
                         double      fallback)
{
  g_autofree char *value = NULL;

  if (key_file != NULL)
    value = g_key_file_get_string (key_file, group, key, NULL);
  if (value != NULL)
    {
      char *end = NULL;
      double d = g_ascii_strtod (value, &end);

      if (end != value && *end == '\0' && d >= 0 && d <= 10 * 365 * 24 * 3600.0)
        fallback = d;
      else
        g_warning ("Ignoring %s=%s in [%s] of the configuration: not a number of seconds",
                   key, value, group);
    }

  return _gsm_env_seconds (env, fallback);
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
  g_autoptr(GKeyFile) key_file = NULL;
  g_autoptr(GsmProvider) self = NULL;
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
      g_auto(GStrv) argv = NULL;
      g_autoptr(GError) local_error = NULL;
      g_autofree char *configured = g_key_file_get_string (key_file, "reaper", "provider", NULL);
      const char *use = name ? name : configured && *configured ? configured : "custom";

      if (!g_shell_parse_argv (command, NULL, &argv, &local_error) ||
          (self = gsm_provider_new (use, (const char * const *) argv, &local_error)) == NULL)
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

/**
 * gsm_provider_get_name:
 * @self: a #GsmProvider
 *
 * Gets the provider's name.
 *
 * Returns: (transfer none): the name
 *
 * Since: 1.0
 */
const char *
gsm_provider_get_name (GsmProvider *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  return self->name;
}

/**
 * gsm_provider_get_command:
 * @self: a #GsmProvider
 *
 * Gets the command template.
 *
 * Returns: (transfer none) (array zero-terminated=1): the template
 *
 * Since: 1.0
 */
const char * const *
gsm_provider_get_command (GsmProvider *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  return (const char * const *) self->command;
}

/**
 * gsm_provider_get_timeout:
 * @self: a #GsmProvider
 *
 * Gets how long one call may run.
 *
 * Returns: seconds, 0 for no limit
 *
 * Since: 1.0
 */
double
gsm_provider_get_timeout (GsmProvider *self)
{
  double timeout;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), 0);
  g_mutex_lock (&self->mutex);
  timeout = self->timeout;
  g_mutex_unlock (&self->mutex);
  return timeout;
}

/**
 * gsm_provider_set_timeout:
 * @self: a #GsmProvider
 * @timeout: seconds, 0 for no limit
 *
 * Sets how long one call may run before the command is killed. Calls
 * already running keep their timeout.
 *
 * Since: 1.0
 */
void
gsm_provider_set_timeout (GsmProvider *self,
                          double       timeout)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_PROVIDER (self));
  g_return_if_fail (timeout >= 0 && timeout <= 24 * 3600.0);

  g_mutex_lock (&self->mutex);
  changed = self->timeout != timeout;
  self->timeout = timeout;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT]);
}

/**
 * gsm_provider_get_not_found_exit_code:
 * @self: a #GsmProvider
 *
 * Gets the exit status that reports a VM that does not exist.
 *
 * Returns: the exit status, or -1
 *
 * Since: 1.0
 */
int
gsm_provider_get_not_found_exit_code (GsmProvider *self)
{
  int code;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), -1);
  g_mutex_lock (&self->mutex);
  code = self->not_found_exit_code;
  g_mutex_unlock (&self->mutex);
  return code;
}

/**
 * gsm_provider_set_not_found_exit_code:
 * @self: a #GsmProvider
 * @exit_code: an exit status (1 to 255), or -1 for none
 *
 * Sets the exit status by which the command reports that the VM does not
 * exist.
 *
 * Since: 1.0
 */
void
gsm_provider_set_not_found_exit_code (GsmProvider *self,
                                      int          exit_code)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_PROVIDER (self));
  g_return_if_fail (exit_code >= -1 && exit_code <= 255);

  g_mutex_lock (&self->mutex);
  changed = self->not_found_exit_code != exit_code;
  self->not_found_exit_code = exit_code;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NOT_FOUND_EXIT_CODE]);
}

/**
 * gsm_provider_get_not_found_pattern:
 * @self: a #GsmProvider
 *
 * Gets the regular expression that recognizes "not found" in the output
 * of a failed command.
 *
 * Returns: (transfer none) (nullable): the pattern, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_provider_get_not_found_pattern (GsmProvider *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  return self->not_found_pattern;
}

/**
 * gsm_provider_set_not_found_pattern:
 * @self: a #GsmProvider
 * @pattern: (nullable): a Perl-compatible regular expression, or %NULL
 * @error: return location for a #GError
 *
 * Sets the regular expression that, when it matches the standard output
 * or error of a command that failed, means that the VM does not exist.
 *
 * Returns: %TRUE, or %FALSE with @error set if @pattern does not compile
 *
 * Since: 1.0
 */
gboolean
gsm_provider_set_not_found_pattern (GsmProvider  *self,
                                    const char   *pattern,
                                    GError      **error)
{
  GRegex *regex = NULL;
  GRegex *old_regex;
  char *old_pattern;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), FALSE);

  if (pattern != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      /* Not JIT-compiled (G_REGEX_OPTIMIZE): one match per command needs no
       * speed, and the JIT reads past the end of the text it matches. */
      regex = g_regex_new (pattern, 0, 0, &local_error);
      if (regex == NULL)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "not-found pattern “%s” is not a regular expression: %s",
                       pattern, local_error->message);
          return FALSE;
        }
    }

  /* The old pattern is kept alive by the object: callers hold the string
   * only until they change it again, as with any getter. */
  g_mutex_lock (&self->mutex);
  old_regex = self->not_found_regex;
  old_pattern = self->not_found_pattern;
  self->not_found_regex = regex;
  self->not_found_pattern = g_strdup (pattern);
  g_mutex_unlock (&self->mutex);

  g_clear_pointer (&old_regex, g_regex_unref);
  g_free (old_pattern);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NOT_FOUND_PATTERN]);

  return TRUE;
}

/**
 * gsm_provider_get_list_command:
 * @self: a #GsmProvider
 *
 * Gets the list template (see [property@Gsm.Provider:list-command]).
 *
 * Returns: (transfer full) (nullable) (array zero-terminated=1): a copy
 *   of the template, or %NULL if the provider cannot list VMs
 *
 * Since: 1.0
 */
char **
gsm_provider_get_list_command (GsmProvider *self)
{
  char **command;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_mutex_lock (&self->mutex);
  command = g_strdupv (self->list_command);
  g_mutex_unlock (&self->mutex);
  return command;
}

/**
 * gsm_provider_get_list_format:
 * @self: a #GsmProvider
 *
 * Gets how the list command's output is read (see
 * [property@Gsm.Provider:list-format]).
 *
 * Returns: (transfer full): `gcloud`, `aws`, `az` or `json`
 *
 * Since: 1.0
 */
char *
gsm_provider_get_list_format (GsmProvider *self)
{
  char *format;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_mutex_lock (&self->mutex);
  format = g_strdup (self->list_format);
  g_mutex_unlock (&self->mutex);
  return format;
}

/**
 * gsm_provider_set_list_command:
 * @self: a #GsmProvider
 * @command: (nullable) (array zero-terminated=1): the list template, or
 *   %NULL for none
 * @format: (nullable): how its output is read: `gcloud`, `aws`, `az` or
 *   `json`; %NULL keeps the current one
 * @error: return location for a #GError
 *
 * Sets the command that lists the VMs carrying a registry's label. Every
 * argument but the first may contain `{registry}`, the value of the
 * `gsm-registry` label. The command must print only VMs it was asked for
 * (a reconciliation checks each VM's labels again, and never touches one
 * without this registry's).
 *
 * Returns: %TRUE, or %FALSE with %GSM_ERROR_INVALID_ARGUMENT if @command
 *   is empty or uses another placeholder, or @format is unknown
 *
 * Since: 1.0
 */
gboolean
gsm_provider_set_list_command (GsmProvider         *self,
                               const char * const  *command,
                               const char          *format,
                               GError             **error)
{
  char **old_command, *old_format = NULL;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (command != NULL && !validate_template ("list command", command, list_placeholders, error))
    return FALSE;
  if (format != NULL && !_gsm_inventory_format_is_known (format))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "List format “%s” is not one of gcloud, aws, az, json", format);
      return FALSE;
    }

  g_mutex_lock (&self->mutex);
  old_command = self->list_command;
  self->list_command = g_strdupv ((char **) command);
  if (format != NULL)
    {
      old_format = self->list_format;
      self->list_format = g_strdup (format);
    }
  g_mutex_unlock (&self->mutex);

  g_strfreev (old_command);
  g_free (old_format);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LIST_COMMAND]);
  if (format != NULL)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_LIST_FORMAT]);

  return TRUE;
}

/**
 * gsm_provider_get_preset:
 * @self: a #GsmProvider
 *
 * Gets the preset the provider was made from.
 *
 * Returns: (transfer none) (nullable): `gcloud`, `aws`, `az`, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_provider_get_preset (GsmProvider *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  return self->preset;
}

static gboolean
check_value (const char  *what,
             const char  *value,
             GError     **error)
{
  if (value == NULL || *value == '\0')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "The provider command needs {%s}, which is empty", what);
      return FALSE;
    }
  /* No shell runs the command, but a value must not turn into an option. */
  if (value[0] == '-')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "{%s} “%s” starts with “-” and would be read as an option", what, value);
      return FALSE;
    }
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "{%s} is not valid UTF-8", what);
      return FALSE;
    }
  for (const char *p = value; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                     "{%s} contains a control character", what);
        return FALSE;
      }

  return TRUE;
}

/* @command with each `{NAME}` of @names (after the program) replaced by
 * the value at the same index of @values, each checked. */
static char **
expand_template (const char * const  *command,
                 const char * const  *names,
                 const char * const  *values,
                 GError             **error)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; command[i]; i++)
    {
      GString *arg = g_string_new (NULL);
      const char *p = command[i];

      while (*p)
        {
          gboolean replaced = FALSE;

          if (*p == '{' && i > 0)
            for (guint k = 0; names[k]; k++)
              {
                gsize n = strlen (names[k]);

                if (strncmp (p + 1, names[k], n) == 0 && p[n + 1] == '}')
                  {
                    if (!check_value (names[k], values[k], error))
                      {
                        g_string_free (arg, TRUE);
                        g_ptr_array_unref (argv);
                        return NULL;
                      }
                    g_string_append (arg, values[k]);
                    p += n + 2;
                    replaced = TRUE;
                    break;
                  }
              }
          if (!replaced)
            g_string_append_c (arg, *p++);
        }
      g_ptr_array_add (argv, g_string_free (arg, FALSE));
    }
  g_ptr_array_add (argv, NULL);

  return (char **) g_ptr_array_free (argv, FALSE);
}

/**
 * gsm_provider_expand:
 * @self: a #GsmProvider
 * @vm_id: the VM's identifier
 * @zone: (nullable): its zone
 * @session_id: (nullable): the session that owns it
 * @error: return location for a #GError
 *
 * Builds the argument vector a call would run. A placeholder whose value
 * is missing, empty, starts with `-` or contains a control character is
 * an error.
 *
 * Returns: (transfer full) (array zero-terminated=1): the arguments, or
 *   %NULL with %GSM_ERROR_INVALID_ARGUMENT
 *
 * Since: 1.0
 */
char **
gsm_provider_expand (GsmProvider  *self,
                     const char   *vm_id,
                     const char   *zone,
                     const char   *session_id,
                     GError      **error)
{
  const char *values[] = { vm_id, zone, session_id };

  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return expand_template ((const char * const *) self->command, placeholders, values, error);
}

/* ---- running ----------------------------------------------------------- */

typedef struct
{
  GMainContext *context;
  GSubprocess  *process;
  pid_t         pgid;
  gint          finished;      /* atomic */
  gint          timed_out;     /* atomic */
  gint          cancelled;     /* atomic */
  GCancellable *drain;         /* cancels reading the pipes after a kill */
  GBytes       *out;
  GBytes       *err;
  GError       *error;
  gboolean      done;
  gboolean      draining;
} Run;

/*
 * The helper that starts a command in its own group with a parent-death
 * signal (gsm-provider-exec), so that it can be started with posix_spawn():
 * a fork() of a process holding a large registry copies its page tables,
 * and then every page it writes faults once (tens of milliseconds per
 * command with 50 000 entries, when a reaper starts thousands).
 * $GSM_PROVIDER_EXEC, else the installed one; %NULL if there is none:
 * then a child setup function does the same after a fork().
 */
static const char *
exec_helper (void)
{
  static gsize helper = 0;

  if (g_once_init_enter (&helper))
    {
      const char *env = g_getenv ("GSM_PROVIDER_EXEC");
      const char *path = env && *env ? env : GSM_LIBEXECDIR "/gsm-provider-exec";

      g_once_init_leave (&helper, (gsize) g_strdup (g_file_test (path, G_FILE_TEST_IS_EXECUTABLE)
                                                      ? path : ""));
    }

  return *(const char *) helper ? (const char *) helper : NULL;
}

static void
child_setup (gpointer user_data)
{
  pid_t parent = GPOINTER_TO_INT (user_data);

  /* A group of its own, so that a kill reaches everything it started. */
  setpgid (0, 0);
  /* Killed when the thread that started it dies: a command must not run
   * on when nobody will record what it did. If that already happened
   * between the fork and now, do not start. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != parent)
    _exit (127);
}

static gboolean
drain_timeout_cb (gpointer data)
{
  Run *run = data;

  g_cancellable_cancel (run->drain);
  return G_SOURCE_REMOVE;
}

static void
kill_group (Run *run)
{
  /* Never kill (-0) or (-1): that would be our own group, or everyone. */
  if (run->pgid > 1 && !g_atomic_int_get (&run->finished))
    kill (-run->pgid, SIGKILL);
}

/* After a kill, give the pipes a bounded time to close. */
static void
start_drain (Run *run)
{
  GSource *source;

  if (run->draining)
    return;
  run->draining = TRUE;
  source = g_timeout_source_new (DRAIN_TIMEOUT_MS);
  g_source_set_callback (source, drain_timeout_cb, run, NULL);
  g_source_attach (source, run->context);
  g_source_unref (source);
}

static gboolean
timeout_cb (gpointer data)
{
  Run *run = data;

  g_atomic_int_set (&run->timed_out, 1);
  kill_group (run);
  start_drain (run);

  return G_SOURCE_REMOVE;
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      data)
{
  Run *run = data;

  /* Any thread: only async-safe work, then wake the loop. */
  g_atomic_int_set (&run->cancelled, 1);
  kill_group (run);
  g_main_context_wakeup (run->context);
}

static void
communicate_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      data)
{
  Run *run = data;

  g_subprocess_communicate_finish (G_SUBPROCESS (object), result, &run->out, &run->err,
                                   &run->error);
  run->done = TRUE;
}

/* Does @regex match @text (valid UTF-8, possibly empty)? */
static gboolean
text_matches (GRegex     *regex,
              const char *text)
{
  return g_regex_match (regex, text ? text : "", 0, NULL);
}

/* What running one argument vector gave. */
typedef struct
{
  GBytes *out;
  GBytes *err;
  int     exit_status;     /* -1 if it did not exit normally */
  int     term_signal;
  gboolean cancelled;
  gboolean timed_out;
  double  duration;
  GError *spawn_error;     /* it could not be started */
} Ran;

static void
ran_clear (Ran *ran)
{
  g_clear_pointer (&ran->out, g_bytes_unref);
  g_clear_pointer (&ran->err, g_bytes_unref);
  g_clear_error (&ran->spawn_error);
}

/*
 * Runs @argv in a process group of its own, killed with the calling
 * thread, by @timeout (0: none) or by @cancellable, and collects its
 * output. Iterates a private main context: no main loop needed.
 */
static void
run_process (const char * const      *argv,
             double                   timeout,
             GsmProviderSpawnedFunc   spawned,
             gpointer                 user_data,
             GCancellable            *cancellable,
             Ran                     *ran)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) spawn_argv = NULL;
  const char *helper;
  Run run = { 0, };
  GSource *timeout_source = NULL;
  gulong cancel_id = 0;
  gint64 started;

  memset (ran, 0, sizeof *ran);
  ran->exit_status = -1;

  run.context = g_main_context_new ();
  g_main_context_push_thread_default (run.context);

  helper = exec_helper ();
  if (helper != NULL)
    {
      /* GLib spawns without fork() only when the child inherits the
       * descriptors; the helper closes them. */
      launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                            G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                            G_SUBPROCESS_FLAGS_INHERIT_FDS);
      spawn_argv = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (spawn_argv, g_strdup (helper));
      g_ptr_array_add (spawn_argv, g_strdup_printf ("%d", (int) getpid ()));
      for (guint i = 0; argv[i]; i++)
        g_ptr_array_add (spawn_argv, g_strdup (argv[i]));
      g_ptr_array_add (spawn_argv, NULL);
    }
  else
    {
      launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                            G_SUBPROCESS_FLAGS_STDERR_PIPE);
      g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (getpid ()),
                                             NULL);
    }

  started = g_get_monotonic_time ();
  run.process = g_subprocess_launcher_spawnv (launcher,
                                              spawn_argv ? (const char * const *) spawn_argv->pdata
                                                         : argv,
                                              &ran->spawn_error);
  if (run.process == NULL)
    {
      g_main_context_pop_thread_default (run.context);
      g_main_context_unref (run.context);
      return;
    }
  /* The command leads its own process group. If it already exited (and
   * was reaped), there is no identifier and nothing left to kill. */
  if (g_subprocess_get_identifier (run.process) != NULL)
    run.pgid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (run.process), NULL, 10);
  /* The helper makes its group too; whoever comes first wins, so that the
   * group exists before anything may kill it. */
  if (helper != NULL && run.pgid > 1)
    setpgid (run.pgid, run.pgid);
  if (spawned != NULL && run.pgid > 1)
    {
      char state;
      guint64 start_time = 0;
      int saved_errno;

      /* Our child, not yet waited for: its entry in /proc is still there. */
      if (!_gsm_process_read_stat (run.pgid, &state, &start_time, &saved_errno))
        start_time = 0;
      spawned (run.pgid, start_time, user_data);
    }
  run.drain = g_cancellable_new ();

  if (timeout > 0)
    {
      timeout_source = g_timeout_source_new ((guint) MIN (timeout * 1000, G_MAXUINT));
      g_source_set_callback (timeout_source, timeout_cb, &run, NULL);
      g_source_attach (timeout_source, run.context);
    }
  if (cancellable != NULL)
    cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), &run, NULL);

  g_subprocess_communicate_async (run.process, NULL, run.drain, communicate_cb, &run);
  while (!run.done)
    {
      g_main_context_iteration (run.context, TRUE);
      if (g_atomic_int_get (&run.cancelled))
        start_drain (&run);
    }

  if (run.error != NULL)
    {
      /* The pipes were abandoned: the command itself is dead or dying. */
      kill_group (&run);
      g_subprocess_wait (run.process, NULL, NULL);
    }
  g_atomic_int_set (&run.finished, 1);
  ran->duration = (g_get_monotonic_time () - started) / (double) G_USEC_PER_SEC;

  g_cancellable_disconnect (cancellable, cancel_id);
  if (timeout_source != NULL)
    {
      g_source_destroy (timeout_source);
      g_source_unref (timeout_source);
    }
  /* Let pending callbacks of the private context go before it does. */
  while (g_main_context_iteration (run.context, FALSE))
    ;
  g_main_context_pop_thread_default (run.context);
  g_main_context_unref (run.context);

  if (g_subprocess_get_if_exited (run.process))
    ran->exit_status = g_subprocess_get_exit_status (run.process);
  else if (g_subprocess_get_if_signaled (run.process))
    ran->term_signal = g_subprocess_get_term_sig (run.process);
  ran->cancelled = g_atomic_int_get (&run.cancelled);
  ran->timed_out = g_atomic_int_get (&run.timed_out);
  ran->out = g_steal_pointer (&run.out);
  ran->err = g_steal_pointer (&run.err);

  g_clear_error (&run.error);
  g_clear_object (&run.drain);
  g_clear_object (&run.process);
}

/* " (its standard error: …)", for an error message: the line that says
 * what went wrong; "" when it printed nothing. */
static char *
why_from_output (GsmProviderResult *result)
{
  g_autofree char *line = _gsm_provider_relevant_line (gsm_provider_result_get_stderr (result));

  if (*line == '\0')
    {
      g_free (line);
      line = _gsm_provider_relevant_line (gsm_provider_result_get_stdout (result));
    }
  return *line ? g_strconcat (": ", line, NULL) : g_strdup ("");
}

static gboolean
run_command (GsmProvider             *self,
             const char              *vm_id,
             const char              *zone,
             const char              *session_id,
             const char * const      *expanded,
             GsmProviderSpawnedFunc   spawned,
             gpointer                 user_data,
             GsmProviderResult      **out_result,
             GCancellable            *cancellable,
             GError                 **error)
{
  g_auto(GStrv) argv = NULL;
  g_autoptr(GsmProviderResult) result = NULL;
  g_autoptr(GRegex) regex = NULL;
  GsmProviderOutcome outcome;
  double timeout;
  int not_found_exit_code;
  Ran ran;

  if (out_result)
    *out_result = NULL;

  argv = expanded != NULL ? g_strdupv ((char **) expanded)
                          : gsm_provider_expand (self, vm_id, zone, session_id, error);
  if (argv == NULL)
    return FALSE;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  g_mutex_lock (&self->mutex);
  timeout = self->timeout;
  not_found_exit_code = self->not_found_exit_code;
  regex = self->not_found_regex ? g_regex_ref (self->not_found_regex) : NULL;
  g_mutex_unlock (&self->mutex);

  run_process ((const char * const *) argv, timeout, spawned, user_data, cancellable, &ran);
  if (ran.spawn_error != NULL)
    {
      result = _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, (const char * const *) argv,
                                         -1, 0, NULL, NULL, 0);
      if (out_result)
        *out_result = g_steal_pointer (&result);
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "Provider “%s” could not run “%s” to delete VM “%s”: %s",
                   self->name, argv[0], vm_id, ran.spawn_error->message);
      ran_clear (&ran);
      return FALSE;
    }

  /* Outcome first from the status; the not-found rules read the output
   * as kept in the result (valid UTF-8, possibly empty). */
  result = _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, (const char * const *) argv,
                                     ran.exit_status, ran.term_signal, ran.out, ran.err,
                                     ran.duration);
  if (ran.cancelled)
    outcome = GSM_PROVIDER_OUTCOME_CANCELLED;
  else if (ran.timed_out)
    outcome = GSM_PROVIDER_OUTCOME_TIMED_OUT;
  else if (ran.exit_status == 0)
    outcome = GSM_PROVIDER_OUTCOME_DELETED;
  else if (ran.exit_status > 0 && ran.exit_status == not_found_exit_code)
    outcome = GSM_PROVIDER_OUTCOME_NOT_FOUND;
  else if (ran.exit_status > 0 && regex != NULL &&
           (text_matches (regex, gsm_provider_result_get_stdout (result)) ||
            text_matches (regex, gsm_provider_result_get_stderr (result))))
    outcome = GSM_PROVIDER_OUTCOME_NOT_FOUND;
  else
    outcome = GSM_PROVIDER_OUTCOME_FAILED;
  _gsm_provider_result_set_outcome (result, outcome);
  ran_clear (&ran);

  switch (outcome)
    {
    case GSM_PROVIDER_OUTCOME_DELETED:
    case GSM_PROVIDER_OUTCOME_NOT_FOUND:
      break;
    case GSM_PROVIDER_OUTCOME_CANCELLED:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   "Deleting VM “%s” with provider “%s” was cancelled; “%s” was killed",
                   vm_id, self->name, argv[0]);
      break;
    case GSM_PROVIDER_OUTCOME_TIMED_OUT:
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT,
                   "Provider “%s”: “%s” did not delete VM “%s” within %g s and was killed",
                   self->name, argv[0], vm_id, timeout);
      break;
    case GSM_PROVIDER_OUTCOME_FAILED:
    default:
      {
        g_autofree char *why = why_from_output (result);

        if (ran.term_signal != 0)
          g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                       "Provider “%s”: “%s” was killed by signal %d while deleting VM “%s”%s",
                       self->name, argv[0], ran.term_signal, vm_id, why);
        else
          g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                       "Provider “%s”: “%s” exited with status %d deleting VM “%s”%s",
                       self->name, argv[0], ran.exit_status, vm_id, why);
      }
      break;
    }

  if (out_result)
    *out_result = g_object_ref (result);

  return gsm_provider_result_get_succeeded (result);
}

typedef struct
{
  char *vm_id;
  char *zone;
  char *session_id;
} DeleteData;

static void
delete_data_free (gpointer data)
{
  DeleteData *d = data;

  g_free (d->vm_id);
  g_free (d->zone);
  g_free (d->session_id);
  g_free (d);
}

typedef struct
{
  gboolean           ok;
  GsmProviderResult *result;
  GError            *error;
} DeleteOutcome;

static void
delete_outcome_free (gpointer data)
{
  DeleteOutcome *o = data;

  g_clear_object (&o->result);
  g_clear_error (&o->error);
  g_free (o);
}

static void
delete_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  DeleteData *d = task_data;
  DeleteOutcome *o = g_new0 (DeleteOutcome, 1);

  o->ok = run_command (source_object, d->vm_id, d->zone, d->session_id, NULL, NULL, NULL,
                       &o->result, cancellable, &o->error);
  g_task_return_pointer (task, o, delete_outcome_free);
}

/**
 * gsm_provider_delete_vm:
 * @self: a #GsmProvider
 * @vm_id: the VM's identifier
 * @zone: (nullable): its zone
 * @session_id: (nullable): the session that owns it
 * @cancellable: (nullable): a #GCancellable; cancelling kills the command
 * @callback: (scope async): called when the command ended
 * @user_data: data for @callback
 *
 * Runs the command template for the VM, in a worker thread. The command
 * is killed after [property@Gsm.Provider:timeout] seconds.
 *
 * Since: 1.0
 */
void
gsm_provider_delete_vm (GsmProvider         *self,
                        const char          *vm_id,
                        const char          *zone,
                        const char          *session_id,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  DeleteData *d;

  g_return_if_fail (GSM_IS_PROVIDER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_provider_delete_vm);
  d = g_new0 (DeleteData, 1);
  d->vm_id = g_strdup (vm_id);
  d->zone = g_strdup (zone);
  d->session_id = g_strdup (session_id);
  g_task_set_task_data (task, d, delete_data_free);
  g_task_set_return_on_cancel (task, FALSE);
  /* What the command did is worth returning even when cancelled. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, delete_thread);
}

/**
 * gsm_provider_delete_vm_finish:
 * @self: a #GsmProvider
 * @result: the #GAsyncResult
 * @out_result: (out) (optional) (nullable) (transfer full): what the
 *   command did, or %NULL if it was not run (an invalid argument)
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Provider.delete_vm].
 *
 * Returns: %TRUE if the VM is gone (deleted, or reported not found);
 *   %FALSE with %GSM_ERROR_PROVIDER_FAILED, %GSM_ERROR_PROVIDER_TIMEOUT,
 *   %GSM_ERROR_INVALID_ARGUMENT or %G_IO_ERROR_CANCELLED
 *
 * Since: 1.0
 */
gboolean
gsm_provider_delete_vm_finish (GsmProvider         *self,
                               GAsyncResult        *result,
                               GsmProviderResult  **out_result,
                               GError             **error)
{
  DeleteOutcome *o;
  gboolean ok;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_provider_delete_vm, FALSE);

  if (out_result)
    *out_result = NULL;

  o = g_task_propagate_pointer (G_TASK (result), error);
  if (o == NULL)
    return FALSE;

  ok = o->ok;
  if (out_result)
    *out_result = g_steal_pointer (&o->result);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&o->error));
  delete_outcome_free (o);

  return ok;
}

/**
 * gsm_provider_delete_vm_sync:
 * @self: a #GsmProvider
 * @vm_id: the VM's identifier
 * @zone: (nullable): its zone
 * @session_id: (nullable): the session that owns it
 * @out_result: (out) (optional) (nullable) (transfer full): what the
 *   command did, or %NULL if it was not run (an invalid argument)
 * @cancellable: (nullable): a #GCancellable; cancelling kills the command
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Provider.delete_vm]. It needs no main
 * loop (it iterates a private main context) and can be used from cleanup
 * paths.
 *
 * Returns: %TRUE if the VM is gone (deleted, or reported not found)
 *
 * Since: 1.0
 */
gboolean
gsm_provider_delete_vm_sync (GsmProvider         *self,
                             const char          *vm_id,
                             const char          *zone,
                             const char          *session_id,
                             GsmProviderResult  **out_result,
                             GCancellable        *cancellable,
                             GError             **error)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return run_command (self, vm_id, zone, session_id, NULL, NULL, NULL, out_result, cancellable,
                      error);
}

/* ---- listing ------------------------------------------------------------ */

static GPtrArray *
list_vms (GsmProvider   *self,
          const char    *registry,
          GCancellable  *cancellable,
          GError       **error)
{
  const char *values[] = { registry };
  g_auto(GStrv) template = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *format = NULL;
  g_autofree char *what = NULL;
  g_autoptr(GError) local_error = NULL;
  GPtrArray *items = NULL;
  double timeout;
  Ran ran;

  g_mutex_lock (&self->mutex);
  template = g_strdupv (self->list_command);
  format = g_strdup (self->list_format);
  timeout = self->timeout;
  g_mutex_unlock (&self->mutex);

  if (template == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Provider “%s” cannot list VMs: it has no list command (use a preset, %s, "
                   "or set list-command in its group of the configuration)", self->name,
                   _gsm_provider_preset_names ());
      return NULL;
    }

  /* It goes into a query (az's JMESPath, gcloud's filter): a label value
   * only, nothing that could change the query. */
  if (!_gsm_label_value_is_valid (registry))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a registry label value (lowercase letters, digits, “-” and “_”, "
                   "at most 63, starting with a letter)", registry);
      return NULL;
    }

  argv = expand_template ((const char * const *) template, list_placeholders, values, error);
  if (argv == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  what = g_strdup_printf ("the VMs labelled gsm-registry=%s", registry);
  run_process ((const char * const *) argv, timeout, NULL, NULL, cancellable, &ran);
  if (ran.spawn_error != NULL)
    g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                 "Provider “%s” could not run “%s” to list %s: %s",
                 self->name, argv[0], what, ran.spawn_error->message);
  else if (ran.cancelled)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                 "Listing %s with provider “%s” was cancelled; “%s” was killed",
                 what, self->name, argv[0]);
  else if (ran.timed_out)
    g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT,
                 "Provider “%s”: “%s” did not list %s within %g s and was killed",
                 self->name, argv[0], what, timeout);
  else if (ran.exit_status != 0)
    {
      g_autoptr(GsmProviderResult) result =
        _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, (const char * const *) argv,
                                  ran.exit_status, ran.term_signal, ran.out, ran.err,
                                  ran.duration);
      g_autofree char *why = why_from_output (result);

      if (ran.term_signal != 0)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” was killed by signal %d while listing %s%s",
                     self->name, argv[0], ran.term_signal, what, why);
      else
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” exited with status %d listing %s%s",
                     self->name, argv[0], ran.exit_status, what, why);
    }
  else
    {
      gsize len = 0;
      const char *data = ran.out ? g_bytes_get_data (ran.out, &len) : NULL;

      if (len > GSM_INVENTORY_MAX_OUTPUT)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” printed more than %d MiB listing %s",
                     self->name, argv[0], GSM_INVENTORY_MAX_OUTPUT / (1024 * 1024), what);
      else if ((items = _gsm_inventory_parse (format, data, len, &local_error)) == NULL)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” listing %s: %s (list format “%s”)",
                     self->name, argv[0], what, local_error->message, format);
    }

  ran_clear (&ran);
  return items;
}

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *items = list_vms (source_object, task_data, cancellable, &error);

  if (items == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, items, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * gsm_provider_list_vms:
 * @self: a #GsmProvider
 * @registry: the value of the `gsm-registry` label to list (see
 *   [method@Gsm.SessionManager.get_vm_labels]): lowercase letters,
 *   digits, `-` and `_`, starting with a letter
 * @cancellable: (nullable): a #GCancellable; cancelling kills the command
 * @callback: (scope async): called when the command ended
 * @user_data: data for @callback
 *
 * Runs the list template ([property@Gsm.Provider:list-command]) in a
 * worker thread and reads what it printed. The command is killed after
 * [property@Gsm.Provider:timeout] seconds.
 *
 * Since: 1.0
 */
void
gsm_provider_list_vms (GsmProvider         *self,
                       const char          *registry,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (GSM_IS_PROVIDER (self));
  g_return_if_fail (registry != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_provider_list_vms);
  g_task_set_task_data (task, g_strdup (registry), g_free);
  g_task_run_in_thread (task, list_thread);
}

/**
 * gsm_provider_list_vms_finish:
 * @self: a #GsmProvider
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Provider.list_vms].
 *
 * Returns: (transfer container) (element-type GsmInventoryItem): the VMs
 *   the command printed, in its order, or %NULL with
 *   %GSM_ERROR_INVALID_ARGUMENT (no list command, or an invalid
 *   @registry), %GSM_ERROR_PROVIDER_FAILED (the command failed, or
 *   printed something other than its format), %GSM_ERROR_PROVIDER_TIMEOUT
 *   or %G_IO_ERROR_CANCELLED
 *
 * Since: 1.0
 */
GPtrArray *
gsm_provider_list_vms_finish (GsmProvider   *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_provider_list_vms, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_provider_list_vms_sync:
 * @self: a #GsmProvider
 * @registry: the value of the `gsm-registry` label to list
 * @cancellable: (nullable): a #GCancellable; cancelling kills the command
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Provider.list_vms]; needs no main loop.
 *
 * Returns: (transfer container) (element-type GsmInventoryItem): the
 *   VMs, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_provider_list_vms_sync (GsmProvider   *self,
                            const char    *registry,
                            GCancellable  *cancellable,
                            GError       **error)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (registry != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return list_vms (self, registry, cancellable, error);
}

gboolean
_gsm_provider_run (GsmProvider             *self,
                   const char * const      *argv,
                   const char              *vm_id,
                   GsmProviderSpawnedFunc   spawned,
                   gpointer                 user_data,
                   GsmProviderResult      **out_result,
                   GCancellable            *cancellable,
                   GError                 **error)
{
  return run_command (self, vm_id, NULL, NULL, argv, spawned, user_data, out_result, cancellable,
                      error);
}

/* The process group of a command is that of its first process, whose pid
 * is the group's id; the kernel does not hand that pid out again while
 * any process of the group lives. */
static gboolean
read_pgrp (const char *name,
           char       *state,
           pid_t      *pgrp)
{
  char path[64];
  char buf[512];
  const char *p;
  ssize_t n;
  int fd;

  g_snprintf (path, sizeof path, "/proc/%s/stat", name);
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return FALSE;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return FALSE;
  buf[n] = '\0';
  /* After the command name: state, ppid, pgrp. */
  p = strrchr (buf, ')');
  if (p == NULL || sscanf (p + 1, " %c %*d %d", state, pgrp) != 2)
    return FALSE;
  return TRUE;
}

gboolean
_gsm_provider_group_is_gone (int     pid,
                             guint64 start_time)
{
  g_autoptr(GDir) proc = NULL;
  const char *name;
  char state = '?';
  guint64 now_start = 0;
  int saved_errno = 0;

  if (pid < 2)
    return FALSE;

  if (_gsm_process_read_stat (pid, &state, &now_start, &saved_errno))
    {
      if (start_time != 0 && now_start != start_time)
        return TRUE;   /* the pid was handed out again: the group is gone */
      if (state != 'Z' && state != 'X')
        return FALSE;  /* the command itself still runs */
    }
  else if (saved_errno != ENOENT && saved_errno != ESRCH)
    return FALSE;      /* cannot tell */

  /* The first process is gone (or a zombie): anything left in its group? */
  proc = g_dir_open ("/proc", 0, NULL);
  if (proc == NULL)
    return FALSE;
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      pid_t pgrp;
      char member_state;

      if (!g_ascii_isdigit (*name) || atoi (name) == pid)
        continue;
      /* A zombie does nothing more: it only waits for its parent. */
      if (read_pgrp (name, &member_state, &pgrp) && pgrp == pid &&
          member_state != 'Z' && member_state != 'X')
        return FALSE;
    }

  return TRUE;
}
