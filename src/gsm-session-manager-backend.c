/* gsm-session-manager-backend.c: which store, opened and entered
 *
 * The store is chosen from GSM_REGISTRY, else from the [registry] group
 * of the configuration: files in the runtime directory (the default) or
 * etcd. Opening it and entering this process's session into it may fail
 * for a while (a lock held too long, a full file system, an unreachable
 * etcd): then every operation tries again first.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-file-registry-private.h"
#include "gsm-session-manager-private.h"

/* The store named by the environment, else by the configuration. */
static GsmRegistry *
open_registry (GsmSessionManager *self,
               GError           **error)
{
  g_autoptr (GsmFileRegistry) file_registry = NULL;
  const char      *prefix = self->file_prefix;
  const char      *durable = g_getenv ("GSM_DURABLE");
  g_autofree char *backend = NULL;
  g_autofree char *dir = NULL;
  g_autoptr (GKeyFile) config = NULL;
  g_autoptr (GError) config_error = NULL;

  /* The environment, else the [registry] group of the configuration. */
  config = _gsm_config_load (&config_error);
  if (config == NULL)
    g_warning ("gsm-session: %s", config_error->message);
  backend = _gsm_config_get_backend (config);

  if (_gsm_backend_is_etcd (backend))
    {
      GsmEtcdRegistry *etcd;

      etcd = _gsm_etcd_registry_new (backend, self->session_id,
                                     _gsm_config_get_seconds (config, "registry", "lease-ttl",
                                                              "GSM_LEASE_TTL", GSM_ETCD_DEFAULT_TTL),
                                     _gsm_config_get_seconds (config, "registry", "etcd-timeout",
                                                              "GSM_ETCD_TIMEOUT", GSM_ETCD_DEFAULT_TIMEOUT),
                                     NULL, error);
      return etcd != NULL ? GSM_REGISTRY (etcd) : NULL;
    }

  if (backend != NULL && *backend != '\0' && !g_str_equal (backend, "file"))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Registry backend “%s” (GSM_REGISTRY, or “backend” in [registry] of the "
                   "configuration file): expected “file”, etcd://HOST:PORT[,HOST:PORT…][/PREFIX] "
                   "or etcds://…",
                   backend);
      return NULL;
    }

  dir = g_file_get_path (self->runtime_dir);
  file_registry = _gsm_file_registry_new (dir, self->runtime_dir_is_default,
                                          prefix ? prefix : "", self->session_id, self->pid,
                                          g_strcmp0 (durable, "0") != 0, error);
  if (file_registry == NULL)
    return NULL;
  _gsm_liveness_probe_set_lock_dir (self->probe, _gsm_file_registry_get_dirfd (file_registry));
  return GSM_REGISTRY (g_steal_pointer (&file_registry));
}

/*
 * Opens the registry (unless an earlier attempt did) and enters this
 * process into it. What the entry found is left in @events for the caller
 * to dispatch. Fails, to be tried again by the next operation, when the
 * registry cannot be used now: a lock held too long, a full or read-only
 * file system, an unreachable etcd, but also an insecure directory, which
 * its owner may fix.
 */
gboolean
_gsm_manager_init_registry (GsmSessionManager *self,
                            GsmManagerEvents  *events,
                            GError           **error)
{
  GsmTxnContext ctx = { self, NULL, events, 0, 0 };

  if (self->registry == NULL)
    {
      self->registry = open_registry (self, error);
      if (self->registry == NULL)
        return FALSE;
      self->has_leases = _gsm_registry_has_leases (self->registry);
    }

  /* Enter the registry now, so that we are known from the first use. */
  return _gsm_manager_run_update (self, _gsm_txn_enter, &ctx, NULL, error);
}

/*
 * The process could not enter the registry when the manager was created
 * (or at the last try): try again, so that a lock held for a while, or a
 * file system full for a while, does not keep the process out for good.
 */
gboolean
_gsm_manager_retry_init (GsmSessionManager *self,
                         GError           **error)
{
  GsmManagerEvents *events = _gsm_manager_events_new (self);
  gboolean          ok;

  g_mutex_lock (&self->init_mutex);
  ok = g_atomic_int_get (&self->entered);
  if (!ok)
    {
      g_autoptr (GError) local_error = NULL;

      ok = _gsm_manager_init_registry (self, events, &local_error);
      g_clear_error (&self->init_error);
      if (ok)
        {
          _gsm_manager_start_following (self);
          g_atomic_int_set (&self->entered, TRUE);
        }
      else
        {
          self->init_error = g_error_copy (local_error);
          g_propagate_error (error, g_steal_pointer (&local_error));
        }
    }
  g_mutex_unlock (&self->init_mutex);

  /* Signals only now: a handler may call the manager again. */
  _gsm_manager_events_dispatch (events);

  return ok;
}
