/* gsm-provider-result.c: GsmProviderResult
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-provider-result-private.h"

/* Output kept per stream: the end of it, where errors are. */
#define MAX_OUTPUT (64 * 1024)

/**
 * GsmProviderResult:
 *
 * What one run of a provider command did: how it ended, the exact argument
 * vector that was run, its exit status and what it printed.
 *
 * Since: 1.0
 */
struct _GsmProviderResult
{
  GObject parent_instance;

  GsmProviderOutcome outcome;
  char             **argv;
  int                exit_status;
  int                term_signal;
  char              *stdout_text;
  char              *stderr_text;
  double             duration;
};

enum
{
  PROP_0,
  PROP_OUTCOME,
  PROP_SUCCEEDED,
  PROP_ARGV,
  PROP_EXIT_STATUS,
  PROP_TERM_SIGNAL,
  PROP_STDOUT,
  PROP_STDERR,
  PROP_DURATION,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_ENUM_TYPE (GsmProviderOutcome, gsm_provider_outcome, G_DEFINE_ENUM_VALUE (GSM_PROVIDER_OUTCOME_DELETED, "deleted"), G_DEFINE_ENUM_VALUE (GSM_PROVIDER_OUTCOME_NOT_FOUND, "not-found"), G_DEFINE_ENUM_VALUE (GSM_PROVIDER_OUTCOME_FAILED, "failed"), G_DEFINE_ENUM_VALUE (GSM_PROVIDER_OUTCOME_TIMED_OUT, "timed-out"), G_DEFINE_ENUM_VALUE (GSM_PROVIDER_OUTCOME_CANCELLED, "cancelled"))

G_DEFINE_FINAL_TYPE (GsmProviderResult, gsm_provider_result, G_TYPE_OBJECT)

/**
 * gsm_provider_outcome_to_string:
 * @outcome: a #GsmProviderOutcome
 *
 * Gets the name of @outcome as written in the audit log: `deleted`,
 * `not-found`, `failed`, `timed-out` or `cancelled`.
 *
 * Returns: (transfer none): a static string
 *
 * Since: 1.0
 */
const char *
gsm_provider_outcome_to_string (GsmProviderOutcome outcome)
{
  switch (outcome)
    {
    case GSM_PROVIDER_OUTCOME_DELETED:
      return "deleted";
    case GSM_PROVIDER_OUTCOME_NOT_FOUND:
      return "not-found";
    case GSM_PROVIDER_OUTCOME_FAILED:
      return "failed";
    case GSM_PROVIDER_OUTCOME_TIMED_OUT:
      return "timed-out";
    case GSM_PROVIDER_OUTCOME_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
    }
}

static void
gsm_provider_result_finalize (GObject *object)
{
  GsmProviderResult *self = GSM_PROVIDER_RESULT (object);

  g_strfreev (self->argv);
  g_free (self->stdout_text);
  g_free (self->stderr_text);

  G_OBJECT_CLASS (gsm_provider_result_parent_class)->finalize (object);
}

static void
gsm_provider_result_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  GsmProviderResult *self = GSM_PROVIDER_RESULT (object);

  switch (prop_id)
    {
    case PROP_OUTCOME:
      g_value_set_enum (value, self->outcome);
      break;
    case PROP_SUCCEEDED:
      g_value_set_boolean (value, gsm_provider_result_get_succeeded (self));
      break;
    case PROP_ARGV:
      g_value_set_boxed (value, self->argv);
      break;
    case PROP_EXIT_STATUS:
      g_value_set_int (value, self->exit_status);
      break;
    case PROP_TERM_SIGNAL:
      g_value_set_int (value, self->term_signal);
      break;
    case PROP_STDOUT:
      g_value_set_string (value, self->stdout_text);
      break;
    case PROP_STDERR:
      g_value_set_string (value, self->stderr_text);
      break;
    case PROP_DURATION:
      g_value_set_double (value, self->duration);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_provider_result_class_init (GsmProviderResultClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_provider_result_finalize;
  object_class->get_property = gsm_provider_result_get_property;

  /**
   * GsmProviderResult:outcome:
   *
   * How the call ended.
   *
   * Since: 1.0
   */
  properties[PROP_OUTCOME] =
      g_param_spec_enum ("outcome", NULL, NULL, GSM_TYPE_PROVIDER_OUTCOME,
                         GSM_PROVIDER_OUTCOME_FAILED,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:succeeded:
   *
   * Whether the VM is gone: deleted, or reported not found.
   *
   * Since: 1.0
   */
  properties[PROP_SUCCEEDED] =
      g_param_spec_boolean ("succeeded", NULL, NULL, FALSE,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:argv:
   *
   * The argument vector that was run, placeholders expanded.
   *
   * Since: 1.0
   */
  properties[PROP_ARGV] =
      g_param_spec_boxed ("argv", NULL, NULL, G_TYPE_STRV,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:exit-status:
   *
   * The command's exit status, or -1 if it did not exit normally (killed,
   * or never started).
   *
   * Since: 1.0
   */
  properties[PROP_EXIT_STATUS] =
      g_param_spec_int ("exit-status", NULL, NULL, -1, 255, -1,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:term-signal:
   *
   * The signal that ended the command, or 0.
   *
   * Since: 1.0
   */
  properties[PROP_TERM_SIGNAL] =
      g_param_spec_int ("term-signal", NULL, NULL, 0, G_MAXINT, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:stdout:
   *
   * What the command wrote to its standard output (the last 64 KiB, made
   * valid UTF-8).
   *
   * Since: 1.0
   */
  properties[PROP_STDOUT] =
      g_param_spec_string ("stdout", NULL, NULL, "",
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:stderr:
   *
   * What the command wrote to its standard error (the last 64 KiB, made
   * valid UTF-8).
   *
   * Since: 1.0
   */
  properties[PROP_STDERR] =
      g_param_spec_string ("stderr", NULL, NULL, "",
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmProviderResult:duration:
   *
   * How long the command ran, in seconds.
   *
   * Since: 1.0
   */
  properties[PROP_DURATION] =
      g_param_spec_double ("duration", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_provider_result_init (GsmProviderResult *self)
{
  self->exit_status = -1;
}

static char *
bytes_to_text (GBytes *bytes)
{
  const char *data;
  gsize       len;

  if (bytes == NULL)
    return g_strdup ("");

  data = g_bytes_get_data (bytes, &len);
  if (data == NULL || len == 0)
    return g_strdup ("");
  if (len > MAX_OUTPUT)
    {
      data += len - MAX_OUTPUT;
      len = MAX_OUTPUT;
    }

  return g_utf8_make_valid (data, len);
}

GsmProviderResult *
_gsm_provider_result_new (GsmProviderOutcome outcome,
                          const char *const *argv,
                          int                exit_status,
                          int                term_signal,
                          GBytes            *stdout_bytes,
                          GBytes            *stderr_bytes,
                          double             duration)
{
  GsmProviderResult *self = g_object_new (GSM_TYPE_PROVIDER_RESULT, NULL);

  self->outcome = outcome;
  self->argv = g_strdupv ((char **) argv);
  self->exit_status = exit_status;
  self->term_signal = term_signal;
  self->stdout_text = bytes_to_text (stdout_bytes);
  self->stderr_text = bytes_to_text (stderr_bytes);
  self->duration = duration;

  return self;
}

/* Only before the result is handed out: it is immutable from then on. */
void
_gsm_provider_result_set_outcome (GsmProviderResult *self,
                                  GsmProviderOutcome outcome)
{
  self->outcome = outcome;
}

/**
 * gsm_provider_result_get_outcome:
 * @self: a #GsmProviderResult
 *
 * Gets how the call ended.
 *
 * Returns: the outcome
 *
 * Since: 1.0
 */
GsmProviderOutcome
gsm_provider_result_get_outcome (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), GSM_PROVIDER_OUTCOME_FAILED);
  return self->outcome;
}

/**
 * gsm_provider_result_get_succeeded:
 * @self: a #GsmProviderResult
 *
 * Tells whether the VM is gone: deleted, or reported not found.
 *
 * Returns: %TRUE for %GSM_PROVIDER_OUTCOME_DELETED and
 *   %GSM_PROVIDER_OUTCOME_NOT_FOUND
 *
 * Since: 1.0
 */
gboolean
gsm_provider_result_get_succeeded (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), FALSE);
  return self->outcome == GSM_PROVIDER_OUTCOME_DELETED ||
         self->outcome == GSM_PROVIDER_OUTCOME_NOT_FOUND;
}

/**
 * gsm_provider_result_get_argv:
 * @self: a #GsmProviderResult
 *
 * Gets the argument vector that was run.
 *
 * Returns: (transfer none) (array zero-terminated=1): the arguments
 *
 * Since: 1.0
 */
const char *const *
gsm_provider_result_get_argv (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), NULL);
  return (const char *const *) self->argv;
}

/**
 * gsm_provider_result_get_exit_status:
 * @self: a #GsmProviderResult
 *
 * Gets the command's exit status.
 *
 * Returns: the exit status, or -1 if the command did not exit normally
 *
 * Since: 1.0
 */
int
gsm_provider_result_get_exit_status (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), -1);
  return self->exit_status;
}

/**
 * gsm_provider_result_get_term_signal:
 * @self: a #GsmProviderResult
 *
 * Gets the signal that ended the command.
 *
 * Returns: the signal number, or 0
 *
 * Since: 1.0
 */
int
gsm_provider_result_get_term_signal (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), 0);
  return self->term_signal;
}

/**
 * gsm_provider_result_get_stdout:
 * @self: a #GsmProviderResult
 *
 * Gets what the command wrote to its standard output.
 *
 * Returns: (transfer none): the output, possibly empty
 *
 * Since: 1.0
 */
const char *
gsm_provider_result_get_stdout (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), NULL);
  return self->stdout_text;
}

/**
 * gsm_provider_result_get_stderr:
 * @self: a #GsmProviderResult
 *
 * Gets what the command wrote to its standard error.
 *
 * Returns: (transfer none): the output, possibly empty
 *
 * Since: 1.0
 */
const char *
gsm_provider_result_get_stderr (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), NULL);
  return self->stderr_text;
}

/**
 * gsm_provider_result_get_duration:
 * @self: a #GsmProviderResult
 *
 * Gets how long the command ran.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_provider_result_get_duration (GsmProviderResult *self)
{
  g_return_val_if_fail (GSM_IS_PROVIDER_RESULT (self), 0);
  return self->duration;
}
