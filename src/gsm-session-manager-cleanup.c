/* gsm-session-manager-cleanup.c: a session deletes its own VM
 *
 * The seed's cleanup flow: get my VM, delete it through the provider,
 * unregister it only once it is gone. The manager's methods for it live
 * here, apart from the registry operations they are built on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <signal.h>

#include <glib-unix.h>

#include "gsm-audit-private.h"
#include "gsm-error.h"
#include "gsm-session-manager-private.h"

static gboolean
cleanup_my_vm (GsmSessionManager *self,
               GsmProvider       *provider,
               GCancellable      *cancellable,
               GError           **error)
{
  g_autoptr (GsmProvider) configured = NULL;
  g_autoptr (GsmSession) vm = NULL;
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GError) delete_error = NULL;
  g_autoptr (GError) audit_error = NULL;
  g_autofree char *token = g_uuid_string_random ();
  g_auto (GStrv) argv = NULL;
  GsmAuditRecord record = {
    0,
  };
  gboolean deleted;

  vm = gsm_session_manager_get_my_vm_sync (self, cancellable, &local_error);
  if (vm == NULL)
    {
      if (local_error == NULL)
        return TRUE; /* nothing to clean up */
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }

  if (provider == NULL)
    {
      configured = gsm_provider_new_default (error);
      if (configured == NULL)
        return FALSE;
      provider = configured;
    }

  record.action = "cleanup";
  record.vm_id = gsm_session_get_vm_id (vm);
  record.zone = gsm_session_get_zone (vm);
  record.session_id = gsm_session_get_session_id (vm);
  record.pid = gsm_session_manager_get_pid (self);
  record.hostname = gsm_session_manager_get_hostname (self);
  record.attempt = 1;
  record.token = token;

  /* In the audit log before it starts, so that a command whose outcome
   * never comes (this process killed meanwhile) is still on record. */
  argv = gsm_provider_expand (provider, record.vm_id, record.zone, record.session_id, NULL);
  if (argv != NULL)
    {
      record.argv = (const char *const *) argv;
      record.outcome = "started";
      if (!_gsm_audit_append (self, &record, &audit_error))
        g_warning ("%s", audit_error->message);
      g_clear_error (&audit_error);
      record.argv = NULL;
    }

  deleted = gsm_provider_delete_vm_sync (provider, gsm_session_get_vm_id (vm), gsm_session_get_zone (vm),
                                         gsm_session_get_session_id (vm), &result, cancellable,
                                         &delete_error);

  record.result = result;
  record.outcome = result ? gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result))
                          : "failed";
  record.error_message = delete_error ? delete_error->message : NULL;
  if (!_gsm_audit_append (self, &record, &audit_error))
    g_warning ("%s", audit_error->message);

  if (!deleted)
    {
      /* The VM may still exist: keep it registered, so that it is not
       * forgotten (the reaper deletes it once this session is gone). */
      g_propagate_error (error, g_steal_pointer (&delete_error));
      return FALSE;
    }

  return gsm_session_manager_unregister_vm_sync (self, cancellable, error);
}

static void
cleanup_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GError *error = NULL;

  if (cleanup_my_vm (source_object, task_data, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * gsm_session_manager_cleanup_my_vm:
 * @self: a #GsmSessionManager
 * @provider: (nullable): the provider that deletes the VM, or %NULL for
 *   the configured one ([ctor@Gsm.Provider.new_default])
 * @cancellable: (nullable): a #GCancellable; cancelling kills a running
 *   provider command
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Deletes the VM this session owns and then unregisters it: gets the VM
 * ([method@Gsm.SessionManager.get_my_vm]), deletes it through @provider,
 * and unregisters it only if the deletion succeeded or the provider
 * reported the VM not found. If the deletion failed, the VM stays
 * registered (so that it is not forgotten: once this session is gone, a
 * [class@Gsm.Reaper] deletes it) and the error is returned. The attempt is
 * recorded in the audit log. Without a VM, there is nothing to do.
 *
 * Like the registry operations, it runs after every asynchronous call
 * made before it and before every one made after it.
 *
 * Since: 1.0
 */
void
gsm_session_manager_cleanup_my_vm (GsmSessionManager  *self,
                                   GsmProvider        *provider,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (provider == NULL || GSM_IS_PROVIDER (provider));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_session_manager_cleanup_my_vm);
  if (provider != NULL)
    g_task_set_task_data (task, g_object_ref (provider), g_object_unref);
  g_task_set_check_cancellable (task, FALSE);
  /* In the manager's worker, in order with its other operations. */
  _gsm_session_manager_run_in_worker (self, task, cleanup_thread);
}

/**
 * gsm_session_manager_cleanup_my_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.cleanup_my_vm].
 *
 * Returns: %TRUE if this session owns no VM any more; %FALSE with the
 *   provider's error (%GSM_ERROR_PROVIDER_FAILED,
 *   %GSM_ERROR_PROVIDER_TIMEOUT, …) or the registry's, the VM still
 *   registered
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_cleanup_my_vm_finish (GsmSessionManager *self,
                                          GAsyncResult      *result,
                                          GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                            gsm_session_manager_cleanup_my_vm,
                        FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_cleanup_my_vm_sync:
 * @self: a #GsmSessionManager
 * @provider: (nullable): the provider that deletes the VM, or %NULL for
 *   the configured one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.cleanup_my_vm]. It needs
 * no main loop, so it can run on the deferred path of a signal handler or
 * from an `atexit()` handler. It blocks for at most the provider's
 * timeout plus the registry lock timeout.
 *
 * Returns: %TRUE if this session owns no VM any more
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_cleanup_my_vm_sync (GsmSessionManager *self,
                                        GsmProvider       *provider,
                                        GCancellable      *cancellable,
                                        GError           **error)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  g_return_val_if_fail (provider == NULL || GSM_IS_PROVIDER (provider), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return cleanup_my_vm (self, provider, cancellable, error);
}

/* ---- shutdown handlers -------------------------------------------------- */

static const int shutdown_signals[] = { SIGINT, SIGTERM, SIGHUP };

typedef struct
{
  GsmSessionManager *manager; /* not a reference: the data is the manager's */
  guint64            id;
  GsmProvider       *provider;
  GMainLoop         *loop;
  GsmShutdownFunc    func;
  gpointer           user_data;
  GDestroyNotify     notify;
  GSource           *sources[G_N_ELEMENTS (shutdown_signals)];
  gboolean           running;
} Shutdown;

typedef struct
{
  Shutdown *shutdown;
  int       signum;
} SignalData;

typedef struct
{
  guint64 id;
  int     signum;
} CleanupCall;

static guint64 next_id;

static void
shutdown_free (gpointer data)
{
  Shutdown *s = data;

  for (guint i = 0; i < G_N_ELEMENTS (s->sources); i++)
    if (s->sources[i] != NULL)
      {
        g_source_destroy (s->sources[i]);
        g_source_unref (s->sources[i]);
      }
  g_clear_object (&s->provider);
  g_clear_pointer (&s->loop, g_main_loop_unref);
  if (s->notify != NULL)
    s->notify (s->user_data);
  g_free (s);
}

static GQuark
shutdown_quark (void)
{
  return g_quark_from_static_string ("gsm-shutdown-handlers");
}

static void
cleanup_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      data)
{
  GsmSessionManager      *manager = GSM_SESSION_MANAGER (object);
  g_autofree CleanupCall *call = data;
  g_autoptr (GError) error = NULL;
  Shutdown *s;

  gsm_session_manager_cleanup_my_vm_finish (manager, result, &error);
  if (error != NULL)
    g_warning ("Could not delete this session's VM on shutdown (it stays registered for the "
               "reaper): %s",
               error->message);

  /* Handlers removed or replaced meanwhile: nobody to tell. */
  s = g_object_get_qdata (G_OBJECT (manager), shutdown_quark ());
  if (s == NULL || s->id != call->id)
    return;

  s->running = FALSE;
  if (s->func != NULL)
    s->func (manager, call->signum, error, s->user_data);
  else
    g_main_loop_quit (s->loop);
}

static gboolean
signal_cb (gpointer data)
{
  SignalData  *sd = data;
  Shutdown    *s = sd->shutdown;
  CleanupCall *call;

  if (s->running)
    {
      g_message ("Signal %d received while this session's VM is being cleaned up; "
                 "waiting for the cleanup",
                 sd->signum);
      return G_SOURCE_CONTINUE;
    }

  s->running = TRUE;
  call = g_new0 (CleanupCall, 1);
  call->id = s->id;
  call->signum = sd->signum;
  gsm_session_manager_cleanup_my_vm (s->manager, s->provider, NULL, cleanup_done_cb, call);

  return G_SOURCE_CONTINUE;
}

static void
install (GsmSessionManager *self,
         GsmProvider       *provider,
         GMainLoop         *loop,
         GsmShutdownFunc    func,
         gpointer           user_data,
         GDestroyNotify     notify)
{
  Shutdown     *s = g_new0 (Shutdown, 1);
  GMainContext *context = g_main_context_ref_thread_default ();

  s->manager = self;
  s->provider = provider ? g_object_ref (provider) : NULL;
  s->loop = loop ? g_main_loop_ref (loop) : NULL;
  s->func = func;
  s->user_data = user_data;
  s->notify = notify;
  s->id = ++next_id;

  for (guint i = 0; i < G_N_ELEMENTS (shutdown_signals); i++)
    {
      SignalData *sd = g_new0 (SignalData, 1);

      sd->shutdown = s;
      sd->signum = shutdown_signals[i];
      s->sources[i] = g_unix_signal_source_new (shutdown_signals[i]);
      g_source_set_callback (s->sources[i], signal_cb, sd, g_free);
      g_source_set_static_name (s->sources[i], "[gsm] shutdown signal");
      g_source_attach (s->sources[i], loop ? g_main_loop_get_context (loop) : context);
    }
  g_main_context_unref (context);

  /* Replaces (and removes) handlers installed before. */
  g_object_set_qdata_full (G_OBJECT (self), shutdown_quark (), s, shutdown_free);
}

/**
 * gsm_session_manager_install_shutdown_handlers:
 * @self: a #GsmSessionManager
 * @provider: (nullable): the provider that deletes the VM, or %NULL for
 *   the configured one
 * @loop: the application's main loop
 *
 * Handles `SIGINT`, `SIGTERM` and `SIGHUP` (with g_unix_signal_add(), in
 * @loop's context) for a GLib application: the first such signal starts
 * [method@Gsm.SessionManager.cleanup_my_vm]; when it has finished (or
 * failed, which is logged: the VM then stays registered for the reaper),
 * @loop is quit. Signals that arrive meanwhile are ignored.
 *
 * Installing handlers again replaces the previous ones. See
 * [method@Gsm.SessionManager.install_shutdown_handlers_full] to be called
 * back instead.
 *
 * Since: 1.0
 */
void
gsm_session_manager_install_shutdown_handlers (GsmSessionManager *self,
                                               GsmProvider       *provider,
                                               GMainLoop         *loop)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (provider == NULL || GSM_IS_PROVIDER (provider));
  g_return_if_fail (loop != NULL);

  install (self, provider, loop, NULL, NULL, NULL);
}

/**
 * gsm_session_manager_install_shutdown_handlers_full:
 * @self: a #GsmSessionManager
 * @provider: (nullable): the provider that deletes the VM, or %NULL for
 *   the configured one
 * @func: (scope notified) (closure user_data) (destroy notify): called
 *   once the cleanup has finished
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data when the handlers are removed
 *
 * Like [method@Gsm.SessionManager.install_shutdown_handlers], in the
 * thread-default main context of the caller, but calls @func (with the
 * signal and the cleanup's error, if any) instead of quitting a loop: for
 * a #GApplication, @func would call g_application_quit().
 *
 * Since: 1.0
 */
void
gsm_session_manager_install_shutdown_handlers_full (GsmSessionManager *self,
                                                    GsmProvider       *provider,
                                                    GsmShutdownFunc    func,
                                                    gpointer           user_data,
                                                    GDestroyNotify     notify)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (provider == NULL || GSM_IS_PROVIDER (provider));
  g_return_if_fail (func != NULL);

  install (self, provider, NULL, func, user_data, notify);
}

/**
 * gsm_session_manager_remove_shutdown_handlers:
 * @self: a #GsmSessionManager
 *
 * Removes the handlers installed by
 * [method@Gsm.SessionManager.install_shutdown_handlers]: the signals get
 * their default behaviour back. A cleanup already running completes, but
 * no callback is called and no loop is quit.
 *
 * Since: 1.0
 */
void
gsm_session_manager_remove_shutdown_handlers (GsmSessionManager *self)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));

  g_object_set_qdata (G_OBJECT (self), shutdown_quark (), NULL);
}
