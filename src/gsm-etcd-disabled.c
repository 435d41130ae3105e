/* gsm-etcd-disabled.c: the etcd registry of a build without it
 *
 * Built instead of the other gsm-etcd-*.c files when the build option
 * `etcd` is disabled, so that the library does not link libsoup. An
 * etcd:// or etcds:// registry then fails with
 * GSM_ERROR_BACKEND_UNAVAILABLE, saying so; no object of the type is ever
 * made, so the other functions are never reached.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"

struct _GsmEtcdRegistry
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (GsmEtcdRegistry, _gsm_etcd_registry, G_TYPE_OBJECT)

static void
_gsm_etcd_registry_init (GsmEtcdRegistry *self)
{
}

static void
_gsm_etcd_registry_class_init (GsmEtcdRegistryClass *klass)
{
}

GsmEtcdRegistry *
_gsm_etcd_registry_new (const char   *uri,
                        const char   *own_session_id,
                        double        lease_ttl,
                        double        timeout,
                        GCancellable *cancellable,
                        GError      **error)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
               "Cannot use the registry “%s”: gsm-session %s was built without etcd support "
               "(the build option etcd was disabled)",
               uri, PACKAGE_VERSION);
  return NULL;
}

gint64
_gsm_etcd_registry_get_lease_id (GsmEtcdRegistry *self)
{
  g_return_val_if_reached (0);
}

gboolean
_gsm_etcd_registry_append_audit (GsmEtcdRegistry *self,
                                 const char      *line,
                                 GError         **error)
{
  g_return_val_if_reached (FALSE);
}

char **
_gsm_etcd_registry_read_audit (GsmEtcdRegistry *self,
                               GError         **error)
{
  g_return_val_if_reached (NULL);
}

guint
_gsm_etcd_registry_get_ttl (GsmEtcdRegistry *self)
{
  g_return_val_if_reached (0);
}

guint
_gsm_etcd_registry_get_n_range_reads (GsmEtcdRegistry *self)
{
  g_return_val_if_reached (0);
}

gboolean
_gsm_etcd_parse_uri (const char *uri,
                     char     ***endpoints,
                     char      **prefix,
                     GError    **error)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
               "Cannot use the etcd registry “%s”: gsm-session was built without etcd support",
               uri);
  return FALSE;
}
