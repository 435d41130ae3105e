/* gsm-etcd-lease.c: the lease of the etcd registry's own session
 *
 * A writer's session key is attached to a lease that the registry's
 * thread keeps alive, every TTL/3, whether or not the application runs a
 * main loop. When the lease is found lost (a keepalive says it is gone, or
 * etcd refuses a transaction on it), the registry emits ::lapsed and, in
 * its thread, takes a new lease and enters again with the entry it last
 * wrote, re-asserting its VM unless a reaper claimed it meanwhile.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-etcd-registry-parts-private.h"
#include "gsm-session-private.h"

/* Takes a new lease, which becomes the registry's. */
gboolean
_gsm_etcd_lease_grant (GsmEtcdRegistry *self,
                       GCancellable    *cancellable,
                       GError         **error)
{
  g_autofree char *body = g_strdup_printf ("{\"TTL\": %u}", self->ttl);
  g_autoptr (GsmEtcdResponse) response = NULL;

  response = _gsm_etcd_client_post (self->client, "/v3/lease/grant", body, strlen (body),
                                    cancellable, error);
  if (response == NULL)
    return FALSE;
  if (response->lease_id == 0 || response->ttl <= 0)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_BACKEND_UNAVAILABLE,
                   "etcd at %s granted no lease", self->endpoint);
      return FALSE;
    }

  g_mutex_lock (&self->mutex);
  self->lease_id = response->lease_id;
  self->lease_lost = FALSE;
  /* etcd may raise a TTL below its minimum. */
  self->ttl = (guint) CLAMP (response->ttl, 1, G_MAXINT);
  g_mutex_unlock (&self->mutex);

  g_debug ("etcd at %s: lease %" G_GINT64_FORMAT " granted, TTL %" G_GINT64_FORMAT " s",
           self->endpoint, response->lease_id, response->ttl);
  return TRUE;
}

/*
 * After the lease was lost, the first update takes a new one; the others
 * wait for it and use it. Two updates can find it lost at once: the
 * thread's re-entry and one of the application's (the manager enters
 * again on ::lapsed too, from its worker thread). If each took a lease,
 * the one granted first could be the one an update writes our session key
 * on after the other update made its own lease the one kept alive: the key
 * would then expire with a lease nobody renews, while the keepalive of the
 * other succeeds, so the process, alive, would never enter again and its
 * VM would be reaped.
 */
gboolean
_gsm_etcd_lease_ensure (GsmEtcdRegistry *self,
                        GCancellable    *cancellable,
                        GError         **error)
{
  gboolean lost, ok;

  g_mutex_lock (&self->grant_mutex);
  g_mutex_lock (&self->mutex);
  lost = self->lease_lost;
  g_mutex_unlock (&self->mutex);
  ok = !lost || _gsm_etcd_lease_grant (self, cancellable, error);
  g_mutex_unlock (&self->grant_mutex);

  return ok;
}

/* ---- entering again ---------------------------------------------------- */

/*
 * After our lease lapsed: our entry, as we last wrote it, unless the
 * registry shows it (from the VM key, when the VM key still names us and
 * no reaper claimed it: the update puts it back on the new lease, VM
 * included). Without a VM key of ours, we enter again without the VM.
 */
static gboolean
txn_reenter (GsmRegistryTxn *txn,
             gpointer        user_data,
             GError        **error)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr (GsmSession) last = NULL;

  if (_gsm_registry_txn_lookup (txn, self->own_session_id) != NULL)
    return TRUE;

  g_mutex_lock (&self->mutex);
  last = self->own_last ? g_object_ref (self->own_last) : NULL;
  g_mutex_unlock (&self->mutex);
  if (last == NULL)
    return TRUE;

  if (gsm_session_get_has_vm (last))
    {
      g_autoptr (GsmSession) without = _gsm_session_without_vm (last);

      _gsm_registry_txn_put (txn, without);
    }
  else
    _gsm_registry_txn_put (txn, last);
  return TRUE;
}

/*
 * In the thread, when the lease is found lost: take a new one and enter
 * again, re-asserting our VM, without waiting for the application's main
 * loop (a process that only makes _sync calls never runs one). Tried again
 * on every keepalive tick until it succeeds.
 */
static void
reenter (GsmEtcdRegistry *self)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  gboolean entered;

  g_mutex_lock (&self->mutex);
  entered = self->own_last != NULL;
  g_mutex_unlock (&self->mutex);
  if (!entered || g_atomic_int_get (&self->stopping))
    return;

  snapshot = _gsm_registry_update (GSM_REGISTRY (self), txn_reenter, self, self->cancellable, &error);
  if (snapshot == NULL)
    g_debug ("etcd at %s: entering again after the lease lapsed failed: %s", self->endpoint,
             error->message);
  else
    _gsm_etcd_registry_emit (self, GSM_ETCD_PENDING_CHANGED);
}

static gboolean
reenter_cb (gpointer user_data)
{
  reenter (user_data);
  return G_SOURCE_REMOVE;
}

/* @lease_id, if it is still ours, is gone: say so, and enter again. Under
 * the mutex. */
void
_gsm_etcd_lease_mark_lost_locked (GsmEtcdRegistry *self,
                                  gint64           lease_id)
{
  if (self->lease_lost || lease_id != self->lease_id)
    return;
  self->lease_lost = TRUE;
  g_debug ("etcd at %s: lease %" G_GINT64_FORMAT " expired", self->endpoint, lease_id);
  _gsm_etcd_registry_emit (self, GSM_ETCD_PENDING_LAPSED);
  if (self->context != NULL)
    {
      /* Never at once: the mutex is held here. */
      GSource *source = g_idle_source_new ();

      g_source_set_callback (source, reenter_cb, self, NULL);
      g_source_set_static_name (source, "[gsm] etcd enter again");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

/* ---- the keepalive ----------------------------------------------------- */

static void
keepalive_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmEtcdResponse) response = NULL;
  gint64 lease_id = self->keepalive_lease_id;

  self->n_inflight--;
  self->keepalive_inflight = FALSE;

  response = _gsm_etcd_client_post_finish (self->client, result, &error);
  _gsm_etcd_watch_check_member (self);
  if (response == NULL)
    {
      /* etcd down or restarting: the next tick tries again. */
      if (!g_atomic_int_get (&self->stopping))
        g_debug ("Keepalive of lease %" G_GINT64_FORMAT " failed: %s", lease_id, error->message);
      return;
    }

  if (response->ttl <= 0)
    {
      g_mutex_lock (&self->mutex);
      _gsm_etcd_lease_mark_lost_locked (self, lease_id);
      g_mutex_unlock (&self->mutex);
    }
}

static gboolean
keepalive_tick_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autofree char *body = NULL;
  gint64           lease_id;
  gboolean         lost;

  if (self->keepalive_inflight)
    return G_SOURCE_CONTINUE;

  g_mutex_lock (&self->mutex);
  lease_id = self->lease_id;
  lost = self->lease_lost;
  g_mutex_unlock (&self->mutex);
  if (lost)
    {
      reenter (self);
      return G_SOURCE_CONTINUE;
    }

  body = g_strdup_printf ("{\"ID\": \"%" G_GINT64_FORMAT "\"}", lease_id);
  self->keepalive_lease_id = lease_id;
  self->keepalive_inflight = TRUE;
  self->n_inflight++;
  _gsm_etcd_client_post_async (self->client, "/v3/lease/keepalive", body, strlen (body),
                               self->keepalive_timeout_ms, self->cancellable,
                               keepalive_done_cb, self);

  return G_SOURCE_CONTINUE;
}

/* In the thread: renews the lease every TTL/3 from now on. */
void
_gsm_etcd_lease_start_keepalive (GsmEtcdRegistry *self)
{
  self->keepalive_source = g_timeout_source_new (MAX (self->ttl * 1000 / 3, 100));
  g_source_set_callback (self->keepalive_source, keepalive_tick_cb, self, NULL);
  g_source_set_static_name (self->keepalive_source, "[gsm] etcd lease keepalive");
  g_source_attach (self->keepalive_source, self->context);
}
