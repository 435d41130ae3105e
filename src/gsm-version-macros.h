/* gsm-version-macros.h: symbol visibility
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <glib.h>

#ifndef _GSM_EXTERN
#define _GSM_EXTERN __attribute__ ((visibility ("default"))) extern
#endif

#define GSM_AVAILABLE_IN_ALL _GSM_EXTERN
#define GSM_AVAILABLE_IN_1_0 _GSM_EXTERN
