/* gsm-provider.c: GsmProvider
 *
 * A provider deletes a VM by running a command: an argument vector with
 * placeholders, expanded here and run by gsm-provider-process.c; what the
 * command did decides the outcome (deleted, not found, failed, timed out,
 * cancelled). It lists a registry's VMs the same way, and the output is
 * read by gsm-inventory-item.c. The providers of the configuration are
 * made in gsm-provider-config.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-inventory-item-private.h"
#include "gsm-labels-private.h"
#include "gsm-provider-presets-private.h"
#include "gsm-provider-private.h"
#include "gsm-provider-result-private.h"

#define DEFAULT_TIMEOUT 300.0

static const char *const placeholders[] = { "vm_id", "zone", "session_id", NULL };
static const char *const list_placeholders[] = { "registry", NULL };

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
  GObject parent_instance;

  char   *name;
  char  **command;
  char   *preset;       /* the preset it started from, or NULL */
  GMutex  mutex;        /* guards the settings below */
  char  **list_command; /* NULL: no inventory */
  char   *list_format;
  double  timeout;
  int     not_found_exit_code;
  char   *not_found_pattern;
  GRegex *not_found_regex;
};

enum
{
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
        g_autoptr (GError) error = NULL;

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
describe_placeholders (const char *const *names)
{
  GString *out = g_string_new (NULL);

  for (guint i = 0; names[i]; i++)
    g_string_append_printf (out, "%s{%s}", i ? ", " : "", names[i]);
  return g_string_free (out, FALSE);
}

/* Checks each `{word}` of @arg: one of @names, and allowed in this
 * argument. */
static gboolean
check_placeholders (const char        *what,
                    const char        *arg,
                    gboolean           allowed,
                    const char *const *names,
                    GError           **error)
{
  for (const char *p = strchr (arg, '{'); p != NULL; p = strchr (p + 1, '{'))
    {
      const char *end = strchr (p, '}');
      gboolean    known = FALSE;

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
validate_template (const char        *what,
                   const char *const *command,
                   const char *const *names,
                   GError           **error)
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
validate_command (const char *const *command,
                  GError           **error)
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
gsm_provider_new (const char        *name,
                  const char *const *command,
                  GError           **error)
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

void
_gsm_provider_apply_preset (GsmProvider             *self,
                            const GsmProviderPreset *preset)
{
  g_free (self->preset);
  self->preset = g_strdup (preset->name);
  gsm_provider_set_not_found_exit_code (self, preset->not_found_exit_code);
  gsm_provider_set_not_found_pattern (self, preset->not_found_pattern, NULL);
  gsm_provider_set_list_command (self, preset->list_command, preset->list_format, NULL);
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
const char *const *
gsm_provider_get_command (GsmProvider *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  return (const char *const *) self->command;
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
gsm_provider_set_not_found_pattern (GsmProvider *self,
                                    const char  *pattern,
                                    GError     **error)
{
  GRegex *regex = NULL;
  GRegex *old_regex;
  char   *old_pattern;

  g_return_val_if_fail (GSM_IS_PROVIDER (self), FALSE);

  if (pattern != NULL)
    {
      g_autoptr (GError) local_error = NULL;

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
gsm_provider_set_list_command (GsmProvider       *self,
                               const char *const *command,
                               const char        *format,
                               GError           **error)
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
check_value (const char *what,
             const char *value,
             GError    **error)
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
expand_template (const char *const *command,
                 const char *const *names,
                 const char *const *values,
                 GError           **error)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; command[i]; i++)
    {
      GString    *arg = g_string_new (NULL);
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
gsm_provider_expand (GsmProvider *self,
                     const char  *vm_id,
                     const char  *zone,
                     const char  *session_id,
                     GError     **error)
{
  const char *values[] = { vm_id, zone, session_id };

  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return expand_template ((const char *const *) self->command, placeholders, values, error);
}

/* ---- running ----------------------------------------------------------- */

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

/* Does @regex match @text (valid UTF-8, possibly empty)? */
static gboolean
text_matches (GRegex     *regex,
              const char *text)
{
  return g_regex_match (regex, text ? text : "", 0, NULL);
}

/* What the command that ran did to the VM: from its status first, then by
 * the not-found rules, which read the output as kept in @result. */
static GsmProviderOutcome
classify_outcome (const GsmProviderRan *ran,
                  int                   not_found_exit_code,
                  GRegex               *not_found_regex,
                  GsmProviderResult    *result)
{
  if (ran->cancelled)
    return GSM_PROVIDER_OUTCOME_CANCELLED;
  if (ran->timed_out)
    return GSM_PROVIDER_OUTCOME_TIMED_OUT;
  if (ran->exit_status == 0)
    return GSM_PROVIDER_OUTCOME_DELETED;
  if (ran->exit_status > 0 && ran->exit_status == not_found_exit_code)
    return GSM_PROVIDER_OUTCOME_NOT_FOUND;
  if (ran->exit_status > 0 && not_found_regex != NULL &&
      (text_matches (not_found_regex, gsm_provider_result_get_stdout (result)) ||
       text_matches (not_found_regex, gsm_provider_result_get_stderr (result))))
    return GSM_PROVIDER_OUTCOME_NOT_FOUND;
  return GSM_PROVIDER_OUTCOME_FAILED;
}

/* The error of a deletion that did not succeed. */
static void
set_delete_error (GsmProvider          *self,
                  const char           *program,
                  const char           *vm_id,
                  double                timeout,
                  const GsmProviderRan *ran,
                  GsmProviderResult    *result,
                  GError              **error)
{
  switch (gsm_provider_result_get_outcome (result))
    {
    case GSM_PROVIDER_OUTCOME_DELETED:
    case GSM_PROVIDER_OUTCOME_NOT_FOUND:
      break;
    case GSM_PROVIDER_OUTCOME_CANCELLED:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   "Deleting VM “%s” with provider “%s” was cancelled; “%s” was killed",
                   vm_id, self->name, program);
      break;
    case GSM_PROVIDER_OUTCOME_TIMED_OUT:
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT,
                   "Provider “%s”: “%s” did not delete VM “%s” within %g s and was killed",
                   self->name, program, vm_id, timeout);
      break;
    case GSM_PROVIDER_OUTCOME_FAILED:
    default:
      {
        g_autofree char *why = why_from_output (result);

        if (ran->term_signal != 0)
          g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                       "Provider “%s”: “%s” was killed by signal %d while deleting VM “%s”%s",
                       self->name, program, ran->term_signal, vm_id, why);
        else
          g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                       "Provider “%s”: “%s” exited with status %d deleting VM “%s”%s",
                       self->name, program, ran->exit_status, vm_id, why);
      }
      break;
    }
}

/* Runs the delete command (@expanded, or the template expanded for the
 * VM) and tells what it did. */
static gboolean
run_command (GsmProvider           *self,
             const char            *vm_id,
             const char            *zone,
             const char            *session_id,
             const char *const     *expanded,
             GsmProviderSpawnedFunc spawned,
             gpointer               user_data,
             GsmProviderResult    **out_result,
             GCancellable          *cancellable,
             GError               **error)
{
  g_auto (GStrv) argv = NULL;
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GRegex) regex = NULL;
  double         timeout;
  int            not_found_exit_code;
  GsmProviderRan ran;

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

  _gsm_provider_run_process ((const char *const *) argv, timeout, spawned, user_data,
                             cancellable, &ran);
  if (ran.spawn_error != NULL)
    {
      result = _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, (const char *const *) argv,
                                         -1, 0, NULL, NULL, 0);
      if (out_result)
        *out_result = g_steal_pointer (&result);
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "Provider “%s” could not run “%s” to delete VM “%s”: %s",
                   self->name, argv[0], vm_id, ran.spawn_error->message);
      _gsm_provider_ran_clear (&ran);
      return FALSE;
    }

  result = _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, (const char *const *) argv,
                                     ran.exit_status, ran.term_signal, ran.out, ran.err,
                                     ran.duration);
  _gsm_provider_result_set_outcome (result,
                                    classify_outcome (&ran, not_found_exit_code, regex, result));
  _gsm_provider_ran_clear (&ran);
  set_delete_error (self, argv[0], vm_id, timeout, &ran, result, error);

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
  DeleteData    *d = task_data;
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
gsm_provider_delete_vm (GsmProvider        *self,
                        const char         *vm_id,
                        const char         *zone,
                        const char         *session_id,
                        GCancellable       *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;
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
gsm_provider_delete_vm_finish (GsmProvider        *self,
                               GAsyncResult       *result,
                               GsmProviderResult **out_result,
                               GError            **error)
{
  DeleteOutcome *o;
  gboolean       ok;

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
gsm_provider_delete_vm_sync (GsmProvider        *self,
                             const char         *vm_id,
                             const char         *zone,
                             const char         *session_id,
                             GsmProviderResult **out_result,
                             GCancellable       *cancellable,
                             GError            **error)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return run_command (self, vm_id, zone, session_id, NULL, NULL, NULL, out_result, cancellable,
                      error);
}

/* ---- listing ------------------------------------------------------------ */

/* The VMs the list command printed, or %NULL with an error that says why
 * it did not print them. */
static GPtrArray *
read_listing (GsmProvider          *self,
              const char *const    *argv,
              const char           *what,
              const char           *format,
              double                timeout,
              const GsmProviderRan *ran,
              GError              **error)
{
  g_autoptr (GError) local_error = NULL;
  GPtrArray *items = NULL;

  if (ran->spawn_error != NULL)
    g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                 "Provider “%s” could not run “%s” to list %s: %s",
                 self->name, argv[0], what, ran->spawn_error->message);
  else if (ran->cancelled)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                 "Listing %s with provider “%s” was cancelled; “%s” was killed",
                 what, self->name, argv[0]);
  else if (ran->timed_out)
    g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT,
                 "Provider “%s”: “%s” did not list %s within %g s and was killed",
                 self->name, argv[0], what, timeout);
  else if (ran->exit_status != 0)
    {
      g_autoptr (GsmProviderResult) result =
          _gsm_provider_result_new (GSM_PROVIDER_OUTCOME_FAILED, argv,
                                    ran->exit_status, ran->term_signal, ran->out, ran->err,
                                    ran->duration);
      g_autofree char *why = why_from_output (result);

      if (ran->term_signal != 0)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” was killed by signal %d while listing %s%s",
                     self->name, argv[0], ran->term_signal, what, why);
      else
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” exited with status %d listing %s%s",
                     self->name, argv[0], ran->exit_status, what, why);
    }
  else
    {
      gsize       len = 0;
      const char *data = ran->out ? g_bytes_get_data (ran->out, &len) : NULL;

      if (len > GSM_INVENTORY_MAX_OUTPUT)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” printed more than %d MiB listing %s",
                     self->name, argv[0], GSM_INVENTORY_MAX_OUTPUT / (1024 * 1024), what);
      else if ((items = _gsm_inventory_parse (format, data, len, &local_error)) == NULL)
        g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                     "Provider “%s”: “%s” listing %s: %s (list format “%s”)",
                     self->name, argv[0], what, local_error->message, format);
    }

  return items;
}

static GPtrArray *
list_vms (GsmProvider  *self,
          const char   *registry,
          GCancellable *cancellable,
          GError      **error)
{
  const char *values[] = { registry };
  g_auto (GStrv) template = NULL;
  g_auto (GStrv) argv = NULL;
  g_autofree char *format = NULL;
  g_autofree char *what = NULL;
  GPtrArray       *items;
  double           timeout;
  GsmProviderRan   ran;

  g_mutex_lock (&self->mutex);
  template = g_strdupv (self->list_command);
  format = g_strdup (self->list_format);
  timeout = self->timeout;
  g_mutex_unlock (&self->mutex);

  if (template == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Provider “%s” cannot list VMs: it has no list command (use a preset, %s, "
                   "or set list-command in its group of the configuration)",
                   self->name,
                   _gsm_provider_preset_names ());
      return NULL;
    }

  /* It goes into a query (az's JMESPath, gcloud's filter): a label value
   * only, nothing that could change the query. */
  if (!_gsm_label_value_is_valid (registry))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a registry label value (lowercase letters, digits, “-” and “_”, "
                   "at most 63, starting with a letter)",
                   registry);
      return NULL;
    }

  argv = expand_template ((const char *const *) template, list_placeholders, values, error);
  if (argv == NULL)
    return NULL;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  what = g_strdup_printf ("the VMs labelled gsm-registry=%s", registry);
  _gsm_provider_run_process ((const char *const *) argv, timeout, NULL, NULL, cancellable, &ran);
  items = read_listing (self, (const char *const *) argv, what, format, timeout, &ran, error);
  _gsm_provider_ran_clear (&ran);
  return items;
}

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError    *error = NULL;
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
gsm_provider_list_vms (GsmProvider        *self,
                       const char         *registry,
                       GCancellable       *cancellable,
                       GAsyncReadyCallback callback,
                       gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;

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
gsm_provider_list_vms_finish (GsmProvider  *self,
                              GAsyncResult *result,
                              GError      **error)
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
gsm_provider_list_vms_sync (GsmProvider  *self,
                            const char   *registry,
                            GCancellable *cancellable,
                            GError      **error)
{
  g_return_val_if_fail (GSM_IS_PROVIDER (self), NULL);
  g_return_val_if_fail (registry != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return list_vms (self, registry, cancellable, error);
}

gboolean
_gsm_provider_run (GsmProvider           *self,
                   const char *const     *argv,
                   const char            *vm_id,
                   GsmProviderSpawnedFunc spawned,
                   gpointer               user_data,
                   GsmProviderResult    **out_result,
                   GCancellable          *cancellable,
                   GError               **error)
{
  return run_command (self, vm_id, NULL, NULL, argv, spawned, user_data, out_result, cancellable,
                      error);
}
