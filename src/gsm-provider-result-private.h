/* gsm-provider-result-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-provider-result.h"

G_BEGIN_DECLS

G_GNUC_INTERNAL
GsmProviderResult *_gsm_provider_result_new (GsmProviderOutcome outcome,
                                             const char *const *argv,
                                             int                exit_status,
                                             int                term_signal,
                                             GBytes            *stdout_bytes,
                                             GBytes            *stderr_bytes,
                                             double             duration);

G_GNUC_INTERNAL
void _gsm_provider_result_set_outcome (GsmProviderResult *self,
                                       GsmProviderOutcome outcome);

G_END_DECLS
