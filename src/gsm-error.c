/* gsm-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gio/gio.h>

#include "gsm-error.h"

static const GDBusErrorEntry gsm_dbus_error_entries[] = {
  { GSM_ERROR_FAILED, "org.gsm.SessionManager1.Error.Failed" },
  { GSM_ERROR_INVALID_ARGUMENT, "org.gsm.SessionManager1.Error.InvalidArgument" },
  { GSM_ERROR_VM_ALREADY_REGISTERED, "org.gsm.SessionManager1.Error.VmAlreadyRegistered" },
  { GSM_ERROR_VM_OWNED_BY_OTHER, "org.gsm.SessionManager1.Error.VmOwnedByOther" },
  { GSM_ERROR_INSECURE_DIRECTORY, "org.gsm.SessionManager1.Error.InsecureDirectory" },
  { GSM_ERROR_INSECURE_FILE, "org.gsm.SessionManager1.Error.InsecureFile" },
  { GSM_ERROR_CORRUPT_REGISTRY, "org.gsm.SessionManager1.Error.CorruptRegistry" },
  { GSM_ERROR_LOCK_TIMEOUT, "org.gsm.SessionManager1.Error.LockTimeout" },
  { GSM_ERROR_NO_VM, "org.gsm.SessionManager1.Error.NoVm" },
  { GSM_ERROR_CLOSED, "org.gsm.SessionManager1.Error.Closed" },
  { GSM_ERROR_NOT_FOUND, "org.gsm.SessionManager1.Error.NotFound" },
  { GSM_ERROR_PERMISSION_DENIED, "org.gsm.SessionManager1.Error.PermissionDenied" },
  { GSM_ERROR_PROVIDER_FAILED, "org.gsm.SessionManager1.Error.ProviderFailed" },
  { GSM_ERROR_PROVIDER_TIMEOUT, "org.gsm.SessionManager1.Error.ProviderTimeout" },
  { GSM_ERROR_BACKEND_UNAVAILABLE, "org.gsm.SessionManager1.Error.BackendUnavailable" },
  { GSM_ERROR_OWNERSHIP_LAPSED, "org.gsm.SessionManager1.Error.OwnershipLapsed" },
};

/**
 * gsm_error_quark:
 *
 * Returns the quark of the %GSM_ERROR domain. The domain is registered with
 * GDBus, so a [class@Gio.DBusConnection] peer sees each code as a stable
 * error name such as `org.gsm.SessionManager1.Error.NotFound`.
 *
 * Returns: the error quark
 *
 * Since: 1.0
 */
GQuark
gsm_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("gsm-error-quark",
                                      &quark,
                                      gsm_dbus_error_entries,
                                      G_N_ELEMENTS (gsm_dbus_error_entries));
  return (GQuark) quark;
}
