/* gsm.h: umbrella header of libgsm-session
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#define GSM_INSIDE

#include "gsm-error.h"
#include "gsm-inventory-item.h"
#include "gsm-provider-result.h"
#include "gsm-provider.h"
#include "gsm-reaper.h"
#include "gsm-session-list.h"
#include "gsm-session-manager.h"
#include "gsm-session.h"
#include "gsm-version-macros.h"

#undef GSM_INSIDE
