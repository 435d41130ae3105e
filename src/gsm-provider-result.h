/* gsm-provider-result.h: what one run of a provider command did
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <glib-object.h>

#include "gsm-version-macros.h"

G_BEGIN_DECLS

/**
 * GsmProviderOutcome:
 * @GSM_PROVIDER_OUTCOME_DELETED: the command succeeded: the VM was deleted.
 * @GSM_PROVIDER_OUTCOME_NOT_FOUND: the provider reported that the VM does
 *   not exist (any more); this counts as success.
 * @GSM_PROVIDER_OUTCOME_FAILED: the command could not be started, exited
 *   with another status, or was killed by a signal.
 * @GSM_PROVIDER_OUTCOME_TIMED_OUT: the command did not finish in time and
 *   was killed.
 * @GSM_PROVIDER_OUTCOME_CANCELLED: the call was cancelled and the command
 *   was killed.
 *
 * How a provider call ended.
 *
 * Since: 1.0
 */
typedef enum
{
  GSM_PROVIDER_OUTCOME_DELETED,
  GSM_PROVIDER_OUTCOME_NOT_FOUND,
  GSM_PROVIDER_OUTCOME_FAILED,
  GSM_PROVIDER_OUTCOME_TIMED_OUT,
  GSM_PROVIDER_OUTCOME_CANCELLED,
} GsmProviderOutcome;

#define GSM_TYPE_PROVIDER_OUTCOME (gsm_provider_outcome_get_type ())
GSM_AVAILABLE_IN_ALL
GType gsm_provider_outcome_get_type (void) G_GNUC_CONST;

GSM_AVAILABLE_IN_ALL
const char *gsm_provider_outcome_to_string (GsmProviderOutcome outcome);

#define GSM_TYPE_PROVIDER_RESULT (gsm_provider_result_get_type ())

GSM_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (GsmProviderResult, gsm_provider_result, GSM, PROVIDER_RESULT, GObject)

GSM_AVAILABLE_IN_ALL
GsmProviderOutcome gsm_provider_result_get_outcome (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
gboolean gsm_provider_result_get_succeeded (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
const char *const *gsm_provider_result_get_argv (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
int gsm_provider_result_get_exit_status (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
int gsm_provider_result_get_term_signal (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_provider_result_get_stdout (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
const char *gsm_provider_result_get_stderr (GsmProviderResult *self);
GSM_AVAILABLE_IN_ALL
double gsm_provider_result_get_duration (GsmProviderResult *self);

G_END_DECLS
