/* gsm-error.h: the GSM_ERROR domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(GSM_INSIDE) && !defined(GSM_COMPILATION)
#error "Only <gsm-session/gsm.h> can be included directly."
#endif

#include <glib.h>

#include "gsm-version-macros.h"

G_BEGIN_DECLS

/**
 * GSM_ERROR:
 *
 * The error domain of gsm-session. Errors in this domain are from the
 * [error@Gsm.Error] enumeration.
 *
 * Since: 1.0
 */
#define GSM_ERROR (gsm_error_quark ())

/**
 * GsmError:
 * @GSM_ERROR_FAILED: a failure with no more specific code, such as an I/O
 *   error on a registry file; the message names the file.
 * @GSM_ERROR_INVALID_ARGUMENT: an argument was empty, too long, not valid
 *   UTF-8, or of the wrong #GVariant type.
 * @GSM_ERROR_VM_ALREADY_REGISTERED: this session already owns a VM;
 *   unregister it first.
 * @GSM_ERROR_VM_OWNED_BY_OTHER: the VM is owned by another session that is
 *   alive (or whose liveness cannot be decided from this host).
 * @GSM_ERROR_INSECURE_DIRECTORY: the runtime directory can be written by
 *   other users (and has no sticky bit), is owned by another user, or is
 *   not a directory.
 * @GSM_ERROR_INSECURE_FILE: a registry path is a symbolic link, FIFO,
 *   device or a file owned by another user; it was left untouched.
 * @GSM_ERROR_CORRUPT_REGISTRY: a registry, session or tracker file does not
 *   parse or has members of the wrong type or range.
 * @GSM_ERROR_LOCK_TIMEOUT: the registry lock could not be taken in time
 *   (`GSM_LOCK_TIMEOUT`, seconds).
 * @GSM_ERROR_NO_VM: the operation needs a VM and this session owns none.
 * @GSM_ERROR_CLOSED: the session manager was closed.
 * @GSM_ERROR_NOT_FOUND: no session or VM with that identifier.
 * @GSM_ERROR_PERMISSION_DENIED: the caller may not perform this operation.
 * @GSM_ERROR_PROVIDER_FAILED: the VM provider command failed.
 * @GSM_ERROR_PROVIDER_TIMEOUT: the VM provider command did not finish in
 *   time and was killed.
 * @GSM_ERROR_BACKEND_UNAVAILABLE: the registry backend (such as an etcd
 *   server) could not be reached.
 * @GSM_ERROR_OWNERSHIP_LAPSED: the registry no longer records this session
 *   as the owner (for example its lease expired).
 *
 * Error codes in the %GSM_ERROR domain. Messages are for people; the code
 * is what a program should act on.
 *
 * Since: 1.0
 */
typedef enum
{
  GSM_ERROR_FAILED,
  GSM_ERROR_INVALID_ARGUMENT,
  GSM_ERROR_VM_ALREADY_REGISTERED,
  GSM_ERROR_VM_OWNED_BY_OTHER,
  GSM_ERROR_INSECURE_DIRECTORY,
  GSM_ERROR_INSECURE_FILE,
  GSM_ERROR_CORRUPT_REGISTRY,
  GSM_ERROR_LOCK_TIMEOUT,
  GSM_ERROR_NO_VM,
  GSM_ERROR_CLOSED,
  GSM_ERROR_NOT_FOUND,
  GSM_ERROR_PERMISSION_DENIED,
  GSM_ERROR_PROVIDER_FAILED,
  GSM_ERROR_PROVIDER_TIMEOUT,
  GSM_ERROR_BACKEND_UNAVAILABLE,
  GSM_ERROR_OWNERSHIP_LAPSED,
} GsmError;

GSM_AVAILABLE_IN_ALL
GQuark gsm_error_quark (void);

G_END_DECLS
