/* gsm-session-manager.c: this process's session and the registry of VMs
 *
 * The GObject: this session's identity, made at construction, its
 * properties and signals, and the public API. A call enters here, its
 * arguments are checked, and it becomes an operation
 * (gsm-session-manager-ops.c), which asks the registry store for the
 * entries and hands it a function of gsm-session-manager-rules.c that
 * decides under the store's lock. What the operation found is emitted as
 * signals in the manager's main context (gsm-session-manager-events.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-process-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define DEFAULT_EXPIRY (12 * 3600.0)

/**
 * GsmSessionManager:
 *
 * The session of this process, and the registry of which session owns
 * which VM.
 *
 * There is one manager per process, from [func@Gsm.SessionManager.get_default].
 * From its first use until [method@Gsm.SessionManager.close_sync] the
 * process has an entry in the registry, so any process can tell which VMs
 * belong to live sessions and which sessions are dead.
 *
 * Every operation has three forms: an asynchronous one built on
 * [iface@Gio.AsyncResult] (async calls complete in the order they were
 * issued), its `_finish()`, and a `_sync()` variant that needs no main
 * loop and can be used from cleanup paths.
 *
 * A session belongs to one process: in a child made by `fork()` without
 * `exec()` (for example Python's multiprocessing with the fork start
 * method), every operation fails with %GSM_ERROR_CLOSED instead of acting
 * as the parent's session, whose VM it would otherwise see as its own.
 *
 * ## Signals and threads
 *
 * Signals and property notifications are emitted in the main context that
 * was the thread-default one when the manager was created (usually the
 * global default context), whatever thread made the call. A `_sync()` call
 * made in that context's thread emits them before it returns.
 *
 * ## Configuration
 *
 * Read from the environment when the manager is created (durations in
 * seconds):
 *
 * - `GSM_RUNTIME_DIR`: where the files live; default
 *   `$XDG_STATE_HOME/gsm-session` (private to the user, mode 0700, kept
 *   across reboots)
 * - `GSM_FILE_PREFIX`: prefix of every file name (`jarvis_` with
 *   `GSM_RUNTIME_DIR=/tmp` uses the original Python files)
 * - `GSM_DURABLE`: `0` turns fsync off (files are still replaced atomically)
 * - `GSM_SESSION_EXPIRY`: age after which the entry of a session whose
 *   liveness cannot be proven from here, and that owns no VM, is dropped
 *   (default 43200); such a session is never taken for dead
 * - `GSM_PROCESS_MATCH`: a local session whose command line does not
 *   contain this text is dead
 * - `GSM_LOCK_TIMEOUT`: how long to wait for the registry lock (default 30)
 * - `GSM_HOSTNAME`: overrides the host name (for tests)
 * - `GSM_REGISTRY`: where the registry lives: `file` (the default: files in
 *   `GSM_RUNTIME_DIR`) or `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]` (etcd 3.4
 *   or later, for sessions on many hosts; the members of one cluster,
 *   tried in turn; default prefix `/gsm-session`); `etcds://…` for TLS
 * - `GSM_LEASE_TTL`: with etcd, how long a session outlives its process's
 *   last keepalive (default 15)
 * - `GSM_ETCD_TIMEOUT`: with etcd, how long one request may take,
 *   connecting included (default 5)
 * - `GSM_ETCD_CA_FILE`, `GSM_ETCD_CERT_FILE`, `GSM_ETCD_KEY_FILE`: with
 *   `etcds://`, the PEM files of the CA that signed etcd's certificates (by
 *   default, the system's), and of a client certificate and its key (the key
 *   may be in the certificate's file)
 * - `GSM_ETCD_USER`, and `GSM_ETCD_PASSWORD_FILE` (a file whose first line is
 *   the password) or `GSM_ETCD_PASSWORD`: with etcd, the user to
 *   authenticate as; the password is never logged
 *
 * The registry settings (from `GSM_REGISTRY` on, but for `GSM_ETCD_PASSWORD`)
 * can also be set in the `[registry]` group of the configuration file (see
 * [class@Gsm.Provider]), as `backend`, `lease-ttl`, `etcd-timeout`,
 * `ca-file`, `cert-file`, `key-file`, `user` and `password-file`; the
 * environment wins:
 *
 * ```ini
 * [registry]
 * backend=etcds://etcd1.example.com:2379,etcd2.example.com:2379/team-a
 * lease-ttl=15
 * ca-file=/etc/gsm-session/etcd-ca.pem
 * user=team-a
 * password-file=/etc/gsm-session/etcd-password
 * ```
 *
 * Since: 1.0
 */

enum
{
  PROP_0,
  PROP_SESSION_ID,
  PROP_PID,
  PROP_HOSTNAME,
  PROP_CREATED_AT,
  PROP_RUNTIME_DIR,
  PROP_SESSION_FILE,
  PROP_VM_REGISTRY,
  PROP_GLOBAL_TRACKER_FILE,
  PROP_HAS_VM,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];
guint              _gsm_session_manager_signals[GSM_MANAGER_N_SIGNALS];

static GsmSessionManager *default_manager;
static GMutex             default_lock;

G_DEFINE_FINAL_TYPE (GsmSessionManager, gsm_session_manager, G_TYPE_OBJECT)

/* ---- construction ------------------------------------------------------ */

static guint64
own_start_time (void)
{
  char    state;
  guint64 start_time = 0;
  int     saved_errno;

  if (!_gsm_process_read_stat (getpid (), &state, &start_time, &saved_errno))
    return 0;
  return start_time;
}

static char *
default_runtime_dir (gboolean *is_default)
{
  const char *env = g_getenv ("GSM_RUNTIME_DIR");

  if (env != NULL && *env != '\0')
    {
      *is_default = FALSE;
      return g_strdup (env);
    }

  *is_default = TRUE;
  return g_build_filename (g_get_user_state_dir (), "gsm-session", NULL);
}

static void
gsm_session_manager_constructed (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);
  g_autofree char   *dir = NULL;
  g_autofree char   *path = NULL;
  g_autofree char   *prefixed = NULL;
  const char        *prefix = g_getenv ("GSM_FILE_PREFIX");
  const char        *hostname = g_getenv ("GSM_HOSTNAME");
  GsmManagerEvents  *events;

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->constructed (object);

  if (prefix == NULL)
    prefix = "";

  self->context = g_main_context_ref_thread_default ();
  self->owner_thread = g_thread_ref (g_thread_self ());
  self->session_id = g_uuid_string_random ();
  self->pid = getpid ();
  self->hostname = g_strdup (hostname && *hostname ? hostname : g_get_host_name ());
  self->created_at = g_get_real_time () / (double) G_USEC_PER_SEC;
  self->start_time = own_start_time ();
  self->boot_id = *_gsm_process_get_boot_id () ? g_strdup (_gsm_process_get_boot_id ()) : NULL;
  self->expiry = _gsm_env_seconds ("GSM_SESSION_EXPIRY", DEFAULT_EXPIRY);
  self->probe = _gsm_liveness_probe_new (self->hostname, g_getenv ("GSM_PROCESS_MATCH"));
  self->pool = g_thread_pool_new (_gsm_manager_worker_func, self, 1, FALSE, NULL);

  dir = default_runtime_dir (&self->runtime_dir_is_default);
  self->runtime_dir = g_file_new_for_path (dir);
  self->file_prefix = _gsm_fs_effective_prefix (dir, prefix);
  prefix = self->file_prefix;
  prefixed = _gsm_file_registry_own_session_file_name (dir, prefix, self->pid, self->session_id);
  self->session_file = g_file_get_child (self->runtime_dir, prefixed);
  g_free (prefixed);
  prefixed = g_strconcat (prefix, "vm_registry.json", NULL);
  self->vm_registry = g_file_get_child (self->runtime_dir, prefixed);
  g_free (prefixed);
  prefixed = g_strconcat (prefix, "global_session.json", NULL);
  self->global_tracker_file = g_file_get_child (self->runtime_dir, prefixed);

  events = _gsm_manager_events_new (self);
  if (!_gsm_manager_init_registry (self, events, &self->init_error))
    {
      _gsm_manager_events_free (events);
      g_warning ("gsm-session: the registry cannot be used now (every operation tries again): %s",
                 self->init_error->message);
      return;
    }
  /* What the entry found is the first view: nothing to report. */
  self->view = _gsm_registry_snapshot_ref (events->snapshot);
  g_clear_pointer (&events->snapshot, _gsm_registry_snapshot_unref);
  _gsm_manager_events_dispatch (events);
  g_atomic_int_set (&self->entered, TRUE);

  _gsm_manager_start_following (self);

  g_mutex_lock (&self->mutex);
  self->has_vm = self->own != NULL && gsm_session_get_has_vm (self->own);
  g_mutex_unlock (&self->mutex);
}

static void
gsm_session_manager_dispose (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  /* Wait for queued operations: each holds a reference, so this only
   * happens when none is left. */
  if (self->pool != NULL)
    {
      /* The worker may drop the last reference itself: never wait for it
       * from inside it. */
      g_thread_pool_free (self->pool, FALSE, !_gsm_manager_in_worker ());
      self->pool = NULL;
    }
  if (self->watch_source != NULL)
    {
      g_source_destroy (self->watch_source);
      g_clear_pointer (&self->watch_source, g_source_unref);
    }
  if (self->registry != NULL)
    g_signal_handlers_disconnect_by_data (self->registry, self);
  g_clear_object (&self->registry);

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->dispose (object);
}

static void
gsm_session_manager_finalize (GObject *object)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  g_clear_pointer (&self->view, _gsm_registry_snapshot_unref);
  g_clear_pointer (&self->listing, _gsm_manager_listing_free);
  g_clear_object (&self->own);
  g_clear_pointer (&self->probe, _gsm_liveness_probe_free);
  g_free (self->file_prefix);
  g_clear_error (&self->init_error);
  g_mutex_clear (&self->init_mutex);
  g_clear_object (&self->runtime_dir);
  g_clear_object (&self->session_file);
  g_clear_object (&self->vm_registry);
  g_clear_object (&self->global_tracker_file);
  g_free (self->session_id);
  g_free (self->hostname);
  g_free (self->boot_id);
  g_main_context_unref (self->context);
  g_thread_unref (self->owner_thread);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (gsm_session_manager_parent_class)->finalize (object);
}

static void
gsm_session_manager_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  GsmSessionManager *self = GSM_SESSION_MANAGER (object);

  switch (prop_id)
    {
    case PROP_SESSION_ID:
      g_value_set_string (value, self->session_id);
      break;
    case PROP_PID:
      g_value_set_int (value, self->pid);
      break;
    case PROP_HOSTNAME:
      g_value_set_string (value, self->hostname);
      break;
    case PROP_CREATED_AT:
      g_value_set_double (value, self->created_at);
      break;
    case PROP_RUNTIME_DIR:
      g_value_set_object (value, self->runtime_dir);
      break;
    case PROP_SESSION_FILE:
      g_value_set_object (value, self->session_file);
      break;
    case PROP_VM_REGISTRY:
      g_value_set_object (value, self->vm_registry);
      break;
    case PROP_GLOBAL_TRACKER_FILE:
      g_value_set_object (value, self->global_tracker_file);
      break;
    case PROP_HAS_VM:
      g_value_set_boolean (value, gsm_session_manager_get_has_vm (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
install_properties (GObjectClass *object_class)
{
  /**
   * GsmSessionManager:session-id:
   *
   * This session's UUID, new for every process.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_ID] =
      g_param_spec_string ("session-id", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:pid:
   *
   * The process ID of this process.
   *
   * Since: 1.0
   */
  properties[PROP_PID] =
      g_param_spec_int ("pid", NULL, NULL, 0, G_MAXINT, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:hostname:
   *
   * The name of this host (or `GSM_HOSTNAME`).
   *
   * Since: 1.0
   */
  properties[PROP_HOSTNAME] =
      g_param_spec_string ("hostname", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:created-at:
   *
   * When the session was created, in seconds since the Unix epoch.
   *
   * Since: 1.0
   */
  properties[PROP_CREATED_AT] =
      g_param_spec_double ("created-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:runtime-dir:
   *
   * The directory holding the registry files.
   *
   * Since: 1.0
   */
  properties[PROP_RUNTIME_DIR] =
      g_param_spec_object ("runtime-dir", NULL, NULL, G_TYPE_FILE,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:session-file:
   *
   * This session's own file, `session_<pid>.json`.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_FILE] =
      g_param_spec_object ("session-file", NULL, NULL, G_TYPE_FILE,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:vm-registry:
   *
   * The registry of every session, `vm_registry.json`.
   *
   * Since: 1.0
   */
  properties[PROP_VM_REGISTRY] =
      g_param_spec_object ("vm-registry", NULL, NULL, G_TYPE_FILE,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:global-tracker-file:
   *
   * The quick-reference file of the session that changed last,
   * `global_session.json`.
   *
   * Since: 1.0
   */
  properties[PROP_GLOBAL_TRACKER_FILE] =
      g_param_spec_object ("global-tracker-file", NULL, NULL, G_TYPE_FILE,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionManager:has-vm:
   *
   * Whether this session owns a VM.
   *
   * Since: 1.0
   */
  properties[PROP_HAS_VM] =
      g_param_spec_boolean ("has-vm", NULL, NULL, FALSE,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
install_signals (GType type)
{
  /**
   * GsmSessionManager::vm-registered:
   * @self: the manager
   * @vm: this session's entry, with the VM it now owns
   *
   * Emitted when this session registered (or reserved) a VM.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_VM_REGISTERED] =
      g_signal_new ("vm-registered", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::vm-unregistered:
   * @self: the manager
   * @vm: this session's entry as it was, with the VM it no longer owns
   *
   * Emitted when this session unregistered its VM.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_VM_UNREGISTERED] =
      g_signal_new ("vm-unregistered", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::session-stale:
   * @self: the manager
   * @session: the session found dead
   *
   * Emitted once for each session this process found dead and recorded so:
   * removed from the registry if it owned no VM, or kept with status
   * `stale` if it still owns one. Exactly one process reports each.
   *
   * With the etcd registry, etcd itself finds a session dead (its lease
   * expired) and every process watching the registry reports a session
   * that still owned a VM, within a second; one without a VM is only
   * reported by [signal@Gsm.SessionManager::session-removed].
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_SESSION_STALE] =
      g_signal_new ("session-stale", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::sessions-changed:
   * @self: the manager
   *
   * Emitted when the registry changed, by this process or any other
   * (watched with a #GFileMonitor, or an etcd watch), after ::session-added and
   * ::session-removed.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_SESSIONS_CHANGED] =
      g_signal_new ("sessions-changed", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * GsmSessionManager::session-added:
   * @self: the manager
   * @session: the new entry
   *
   * Emitted when an entry appeared in the registry.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_SESSION_ADDED] =
      g_signal_new ("session-added", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::session-removed:
   * @self: the manager
   * @session: the entry as it was last seen
   *
   * Emitted when an entry left the registry.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_SESSION_REMOVED] =
      g_signal_new ("session-removed", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);

  /**
   * GsmSessionManager::ownership-lapsed:
   * @self: the manager
   * @session: this session's entry, as entered again
   *
   * Emitted when the registry had dropped this session's entry without
   * being asked to, and the session was entered again. This happens with
   * the etcd registry when the process could not renew its lease for
   * longer than `GSM_LEASE_TTL` (it was stopped, or cut off from etcd).
   *
   * Meanwhile other hosts saw the session as stale, and its VM as an
   * orphan that a reaper may delete. If no other session took the VM over,
   * @session still owns it ([method@Gsm.Session.get_has_vm]); check that
   * the VM still exists before using it again. If another session took it,
   * @session owns none.
   *
   * Since: 1.0
   */
  _gsm_session_manager_signals[GSM_MANAGER_SIGNAL_OWNERSHIP_LAPSED] =
      g_signal_new ("ownership-lapsed", type, G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 1, GSM_TYPE_SESSION);
}

static void
gsm_session_manager_class_init (GsmSessionManagerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = gsm_session_manager_constructed;
  object_class->dispose = gsm_session_manager_dispose;
  object_class->finalize = gsm_session_manager_finalize;
  object_class->get_property = gsm_session_manager_get_property;

  install_properties (object_class);
  install_signals (G_TYPE_FROM_CLASS (klass));
}

static void
gsm_session_manager_init (GsmSessionManager *self)
{
  g_mutex_init (&self->mutex);
  g_mutex_init (&self->init_mutex);
}

/* ---- public API -------------------------------------------------------- */

/**
 * gsm_session_manager_get_default:
 *
 * Gets this process's session manager, creating it on the first call
 * (from any thread; concurrent first calls create one instance). Creating
 * it enters this process into the registry.
 *
 * It never fails: if the process cannot enter the registry now (the lock
 * held past `GSM_LOCK_TIMEOUT`, a full or read-only file system, an
 * insecure directory), a warning is logged and every later operation
 * first tries again to enter it, failing with the reason while it still
 * cannot; once one succeeds, the process is in the registry.
 *
 * With `auto=true` in group `[reaper]` of the configuration (see
 * [class@Gsm.Reaper]), creating it also starts, in a thread of its own,
 * the deletion of the VMs of this host's dead sessions once their grace
 * period is over.
 *
 * Returns: (transfer none) (not nullable): the session manager
 *
 * Since: 1.0
 */
GsmSessionManager *
gsm_session_manager_get_default (void)
{
  GsmSessionManager *manager = g_atomic_pointer_get (&default_manager);
  gboolean           created = FALSE;

  if (G_LIKELY (manager != NULL))
    return manager;

  g_mutex_lock (&default_lock);
  manager = g_atomic_pointer_get (&default_manager);
  if (manager == NULL)
    {
      manager = g_object_new (GSM_TYPE_SESSION_MANAGER, NULL);
      g_atomic_pointer_set (&default_manager, manager);
      created = TRUE;
    }
  g_mutex_unlock (&default_lock);

  /* [reaper] auto=true: this host's orphans, in the background. */
  if (created)
    _gsm_reaper_reap_at_start (manager);

  return manager;
}

/**
 * gsm_session_manager_is_available:
 *
 * Tells whether the session manager of this process exists, without
 * creating it.
 *
 * Returns: %TRUE once [func@Gsm.SessionManager.get_default] was called
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_is_available (void)
{
  return g_atomic_pointer_get (&default_manager) != NULL;
}

void
_gsm_session_manager_reset_for_testing (void)
{
  GsmSessionManager *manager;

  g_mutex_lock (&default_lock);
  manager = g_atomic_pointer_get (&default_manager);
  g_atomic_pointer_set (&default_manager, NULL);
  g_mutex_unlock (&default_lock);

  if (manager != NULL)
    g_object_unref (manager);
}

GsmRegistry *
_gsm_session_manager_get_registry (GsmSessionManager *self)
{
  return self->registry;
}

GsmLivenessProbe *
_gsm_session_manager_get_probe (GsmSessionManager *self)
{
  return self->probe;
}

/* The registry as ::sessions-changed last reported it (owner context
 * only); NULL if the registry cannot be used. */
GsmRegistrySnapshot *
_gsm_session_manager_dup_view (GsmSessionManager *self)
{
  return self->view != NULL ? _gsm_registry_snapshot_ref (self->view) : NULL;
}

/**
 * gsm_session_manager_get_session_id:
 * @self: a #GsmSessionManager
 *
 * Gets this session's UUID.
 *
 * Returns: (transfer none): the session identifier
 *
 * Since: 1.0
 */
const char *
gsm_session_manager_get_session_id (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->session_id;
}

/**
 * gsm_session_manager_get_pid:
 * @self: a #GsmSessionManager
 *
 * Gets the process ID recorded for this session.
 *
 * Returns: the pid
 *
 * Since: 1.0
 */
int
gsm_session_manager_get_pid (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), 0);
  return self->pid;
}

/**
 * gsm_session_manager_get_hostname:
 * @self: a #GsmSessionManager
 *
 * Gets the host name recorded for this session.
 *
 * Returns: (transfer none): the host name
 *
 * Since: 1.0
 */
const char *
gsm_session_manager_get_hostname (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->hostname;
}

/**
 * gsm_session_manager_get_created_at:
 * @self: a #GsmSessionManager
 *
 * Gets when this session was created.
 *
 * Returns: seconds since the Unix epoch
 *
 * Since: 1.0
 */
double
gsm_session_manager_get_created_at (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), 0);
  return self->created_at;
}

/**
 * gsm_session_manager_get_runtime_dir:
 * @self: a #GsmSessionManager
 *
 * Gets the directory holding the registry files.
 *
 * Returns: (transfer none): the runtime directory
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_runtime_dir (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->runtime_dir;
}

/**
 * gsm_session_manager_get_session_file:
 * @self: a #GsmSessionManager
 *
 * Gets this session's own file.
 *
 * Returns: (transfer none): the session file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_session_file (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->session_file;
}

/**
 * gsm_session_manager_get_vm_registry:
 * @self: a #GsmSessionManager
 *
 * Gets the registry file.
 *
 * Returns: (transfer none): the registry file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_vm_registry (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->vm_registry;
}

/**
 * gsm_session_manager_get_global_tracker_file:
 * @self: a #GsmSessionManager
 *
 * Gets the global tracker file.
 *
 * Returns: (transfer none): the tracker file
 *
 * Since: 1.0
 */
GFile *
gsm_session_manager_get_global_tracker_file (GsmSessionManager *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  return self->global_tracker_file;
}

/**
 * gsm_session_manager_get_has_vm:
 * @self: a #GsmSessionManager
 *
 * Tells whether this session owns a VM, as of its last operation.
 *
 * Returns: %TRUE if it owns one
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_get_has_vm (GsmSessionManager *self)
{
  gboolean has_vm;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);

  g_mutex_lock (&self->mutex);
  has_vm = self->own != NULL && gsm_session_get_has_vm (self->own);
  g_mutex_unlock (&self->mutex);

  return has_vm;
}

/**
 * gsm_session_manager_get_statistics:
 * @self: a #GsmSessionManager
 *
 * Gets this session's statistics, with the keys of the original design:
 * `session_id` (s), `pid` (i), `hostname` (s), `uptime_seconds` (d),
 * `has_vm` (b), `vm_id` (ms: nothing without a VM), `vms_registered`,
 * `vms_unregistered`, `registry_cleanups`, `stale_sessions_removed` (u).
 *
 * Returns: (transfer full): a new, non-floating `a{sv}`
 *
 * Since: 1.0
 */
GVariant *
gsm_session_manager_get_statistics (GsmSessionManager *self)
{
  GVariantBuilder b;
  g_autoptr (GsmSession) own = NULL;
  const char *vm_id;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);

  g_mutex_lock (&self->mutex);
  own = self->own ? g_object_ref (self->own) : NULL;
  g_mutex_unlock (&self->mutex);
  vm_id = own ? gsm_session_get_vm_id (own) : NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "session_id", g_variant_new_string (self->session_id));
  g_variant_builder_add (&b, "{sv}", "pid", g_variant_new_int32 (self->pid));
  g_variant_builder_add (&b, "{sv}", "hostname", g_variant_new_string (self->hostname));
  g_variant_builder_add (&b, "{sv}", "uptime_seconds",
                         g_variant_new_double (g_get_real_time () / (double) G_USEC_PER_SEC - self->created_at));
  g_variant_builder_add (&b, "{sv}", "has_vm", g_variant_new_boolean (vm_id != NULL));
  g_variant_builder_add (&b, "{sv}", "vm_id",
                         g_variant_new_maybe (G_VARIANT_TYPE_STRING,
                                              vm_id ? g_variant_new_string (vm_id) : NULL));
  g_variant_builder_add (&b, "{sv}", "vms_registered",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->vms_registered)));
  g_variant_builder_add (&b, "{sv}", "vms_unregistered",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->vms_unregistered)));
  g_variant_builder_add (&b, "{sv}", "registry_cleanups",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->registry_cleanups)));
  g_variant_builder_add (&b, "{sv}", "stale_sessions_removed",
                         g_variant_new_uint32 ((guint32) g_atomic_int_get (&self->stale_sessions_removed)));

  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/* -- register_vm -- */

static GsmOp *
make_register_op (GsmOpKind          kind,
                  const char        *vm_id,
                  const char        *zone,
                  const char *const *components,
                  GVariant          *metadata,
                  GError           **error)
{
  /* Sink first: a floating reference is consumed on every path. */
  g_autoptr (GVariant) held = metadata ? g_variant_ref_sink (metadata) : NULL;
  GsmOp *op;

  if (!_gsm_validate_name ("vm_id", vm_id, GSM_MAX_NAME_LEN, error) ||
      !_gsm_validate_name ("zone", zone, GSM_MAX_NAME_LEN, error))
    return NULL;

  for (guint i = 0; components != NULL && components[i] != NULL; i++)
    {
      if (i >= GSM_MAX_COMPONENTS)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "more than %d components", GSM_MAX_COMPONENTS);
          return NULL;
        }
      if (!_gsm_validate_identifier ("a component", components[i], GSM_MAX_COMPONENT_LEN, error))
        return NULL;
    }

  if (metadata != NULL && !g_variant_is_of_type (metadata, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "metadata must be of type a{sv}, not %s", g_variant_get_type_string (metadata));
      return NULL;
    }

  if (metadata != NULL)
    {
      /* It is written into the registry, which must stay readable:
       * nested at most as deep as readers accept (the registry and the
       * entry are two levels), and no infinity or NaN. Its size is
       * bounded so that the entry always fits in its session file, from
       * which a registry is rebuilt. */
      g_autoptr (JsonNode) node = NULL;
      g_autoptr (GString) text = g_string_new (NULL);

      if (g_variant_get_size (metadata) > 16 * GSM_MAX_METADATA_SIZE)
        {
          /* Far too big to be worth writing out as JSON to measure. */
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is larger than %d bytes as JSON", GSM_MAX_METADATA_SIZE);
          return NULL;
        }
      node = json_gvariant_serialize (metadata);
      if (!_gsm_json_append_node (text, node) ||
          !_gsm_json_check (text->str, text->len, GSM_JSON_MAX_DEPTH - 2, NULL))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is nested more than %d levels deep or holds a number "
                       "that is not finite",
                       GSM_JSON_MAX_DEPTH - 2);
          return NULL;
        }
      if (text->len > GSM_MAX_METADATA_SIZE)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "metadata is %" G_GSIZE_FORMAT " bytes as JSON, more than the %d allowed",
                       text->len, GSM_MAX_METADATA_SIZE);
          return NULL;
        }
    }

  op = _gsm_op_new (kind);
  op->vm_id = g_strdup (vm_id);
  op->zone = g_strdup (zone);
  op->components = components ? g_strdupv ((char **) components) : g_new0 (char *, 1);
  op->metadata = g_steal_pointer (&held);

  return op;
}

/* register_vm() and reserve_vm(): the same operation, @kind apart. */
static void
start_register (GsmSessionManager  *self,
                GsmOpKind           kind,
                gpointer            source_tag,
                const char         *vm_id,
                const char         *zone,
                const char *const  *components,
                GVariant           *metadata,
                GCancellable       *cancellable,
                GAsyncReadyCallback callback,
                gpointer            user_data)
{
  GError *error = NULL;
  GsmOp  *op;

  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  op = make_register_op (kind, vm_id, zone, components, metadata, &error);
  if (op == NULL)
    {
      g_task_report_error (self, callback, user_data, source_tag, error);
      return;
    }

  _gsm_manager_start_op (self, op, source_tag, cancellable, callback, user_data);
}

static gboolean
register_sync (GsmSessionManager *self,
               GsmOpKind          kind,
               const char        *vm_id,
               const char        *zone,
               const char *const *components,
               GVariant          *metadata,
               GCancellable      *cancellable,
               GError           **error)
{
  GsmOp      *op;
  GsmOpResult result;
  gboolean    ok;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  op = make_register_op (kind, vm_id, zone, components, metadata, error);
  if (op == NULL)
    return FALSE;
  ok = _gsm_manager_run_op (self, op, &result, cancellable, error);
  _gsm_op_free (op);
  return ok;
}

/**
 * gsm_session_manager_register_vm:
 * @self: a #GsmSessionManager
 * @vm_id: the VM's identifier: 1 to 255 bytes of UTF-8, without white
 *   space or control characters, not starting with `-`
 * @zone: the zone it runs in, with the same limits as @vm_id
 * @components: (array zero-terminated=1) (nullable): what runs on it: at
 *   most 64 names of 1 to 255 bytes of UTF-8 without control characters
 * @metadata: (nullable): free-form metadata, of type `a{sv}`, at most
 *   64 KiB once written as JSON and nested at most 30 levels deep, without
 *   infinities or NaNs; a floating reference is sunk
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that this session owns @vm_id. Fails with
 * %GSM_ERROR_VM_ALREADY_REGISTERED if this session already owns a VM
 * (unregister it first) and with %GSM_ERROR_VM_OWNED_BY_OTHER if a live
 * session owns @vm_id. A VM whose owner is dead is taken over.
 *
 * Arguments beyond the limits above fail with %GSM_ERROR_INVALID_ARGUMENT
 * before anything is written: @vm_id and @zone are passed to the provider's
 * command when the VM is deleted, where a leading `-` would be read as an
 * option, and the limits keep every entry small enough for the files a
 * registry is rebuilt from. A C string cannot hold a NUL byte; from
 * Python, check that a `str` holds none before passing it (PyGObject
 * passes the text up to the first NUL).
 *
 * Since: 1.0
 */
void
gsm_session_manager_register_vm (GsmSessionManager  *self,
                                 const char         *vm_id,
                                 const char         *zone,
                                 const char *const  *components,
                                 GVariant           *metadata,
                                 GCancellable       *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer            user_data)
{
  start_register (self, GSM_OP_REGISTER_VM, gsm_session_manager_register_vm, vm_id, zone, components,
                  metadata, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_register_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.register_vm].
 *
 * Returns: %TRUE if the VM is now owned by this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_register_vm_finish (GsmSessionManager *self,
                                        GAsyncResult      *result,
                                        GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_register_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_register_vm_sync:
 * @self: a #GsmSessionManager
 * @vm_id: the VM's identifier
 * @zone: the zone it runs in
 * @components: (array zero-terminated=1) (nullable): what runs on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.register_vm].
 *
 * Returns: %TRUE if the VM is now owned by this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_register_vm_sync (GsmSessionManager *self,
                                      const char        *vm_id,
                                      const char        *zone,
                                      const char *const *components,
                                      GVariant          *metadata,
                                      GCancellable      *cancellable,
                                      GError           **error)
{
  return register_sync (self, GSM_OP_REGISTER_VM, vm_id, zone, components, metadata, cancellable,
                        error);
}

/* -- the others share one shape -- */

/**
 * gsm_session_manager_reserve_vm:
 * @self: a #GsmSessionManager
 * @vm_id: the name the VM will be created with, with the limits of
 *   [method@Gsm.SessionManager.register_vm]
 * @zone: the zone it will run in
 * @components: (array zero-terminated=1) (nullable): what will run on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records @vm_id as this session's VM before the cloud call that creates
 * it, with status `creating`; once the VM exists, confirm it with
 * [method@Gsm.SessionManager.confirm_vm], or, if the creation failed,
 * release it with [method@Gsm.SessionManager.unregister_vm].
 *
 * This is the recommended flow: a process that crashes between the
 * cloud's answer and the registration (or whose create call timed out
 * while the cloud went on) leaves an entry that a [class@Gsm.Reaper]
 * treats like any orphan once the process is dead: it asks the provider
 * to delete @vm_id, and "not found" (the VM was never made) counts as
 * done. Registering after the creation instead
 * ([method@Gsm.SessionManager.register_vm]) leaves a window in which a
 * crash forgets the VM.
 *
 * It fails as [method@Gsm.SessionManager.register_vm] does. On success
 * the VM is this session's: [signal@Gsm.SessionManager::vm-registered] is
 * emitted and [method@Gsm.SessionManager.get_my_vm] returns it.
 *
 * Since: 1.0
 */
void
gsm_session_manager_reserve_vm (GsmSessionManager  *self,
                                const char         *vm_id,
                                const char         *zone,
                                const char *const  *components,
                                GVariant           *metadata,
                                GCancellable       *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer            user_data)
{
  start_register (self, GSM_OP_RESERVE_VM, gsm_session_manager_reserve_vm, vm_id, zone, components,
                  metadata, cancellable, callback, user_data);
}

/**
 * gsm_session_manager_reserve_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.reserve_vm].
 *
 * Returns: %TRUE if the VM is now reserved for this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_reserve_vm_finish (GsmSessionManager *self,
                                       GAsyncResult      *result,
                                       GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_reserve_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_reserve_vm_sync:
 * @self: a #GsmSessionManager
 * @vm_id: the name the VM will be created with
 * @zone: the zone it will run in
 * @components: (array zero-terminated=1) (nullable): what will run on it
 * @metadata: (nullable): free-form metadata, of type `a{sv}`
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.reserve_vm].
 *
 * Returns: %TRUE if the VM is now reserved for this session
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_reserve_vm_sync (GsmSessionManager *self,
                                     const char        *vm_id,
                                     const char        *zone,
                                     const char *const *components,
                                     GVariant          *metadata,
                                     GCancellable      *cancellable,
                                     GError           **error)
{
  return register_sync (self, GSM_OP_RESERVE_VM, vm_id, zone, components, metadata, cancellable,
                        error);
}

/**
 * gsm_session_manager_confirm_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that the VM reserved with [method@Gsm.SessionManager.reserve_vm]
 * now exists: its status becomes `active`. Confirming a VM registered
 * with [method@Gsm.SessionManager.register_vm], or one confirmed already,
 * changes nothing. Fails with %GSM_ERROR_NO_VM if this session owns no VM.
 *
 * Since: 1.0
 */
void
gsm_session_manager_confirm_vm (GsmSessionManager  *self,
                                GCancellable       *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_CONFIRM_VM), gsm_session_manager_confirm_vm,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_confirm_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.confirm_vm].
 *
 * Returns: %TRUE if this session's VM is recorded as created
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_confirm_vm_finish (GsmSessionManager *self,
                                       GAsyncResult      *result,
                                       GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_confirm_vm), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_confirm_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.confirm_vm].
 *
 * Returns: %TRUE if this session's VM is recorded as created
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_confirm_vm_sync (GsmSessionManager *self,
                                     GCancellable      *cancellable,
                                     GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return _gsm_manager_run_sync (self, GSM_OP_CONFIRM_VM, &result, cancellable, error);
}

/**
 * gsm_session_manager_get_my_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Gets the VM this session owns, read from the registry and validated as
 * this session's (session id, pid and hostname): this session's entry, as
 * the Python design's `get_my_vm()` returns it, with the VM's fields
 * ([method@Gsm.Session.get_vm_id], [method@Gsm.Session.get_zone], …) and
 * its status (`creating` until a reserved VM is confirmed).
 *
 * Since: 1.0
 */
void
gsm_session_manager_get_my_vm (GsmSessionManager  *self,
                               GCancellable       *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_GET_MY_VM), gsm_session_manager_get_my_vm,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_get_my_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.get_my_vm].
 *
 * Returns: (transfer full) (nullable): this session's entry with its VM,
 *   or %NULL if this session owns none (then @error is not set)
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_manager_get_my_vm_finish (GsmSessionManager *self,
                                      GAsyncResult      *result,
                                      GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_get_my_vm), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_session_manager_get_my_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.get_my_vm], for cleanup
 * paths that have no main loop.
 *
 * Returns: (transfer full) (nullable): this session's entry with its VM,
 *   or %NULL if this session owns none (then @error is not set)
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_manager_get_my_vm_sync (GsmSessionManager *self,
                                    GCancellable      *cancellable,
                                    GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!_gsm_manager_run_sync (self, GSM_OP_GET_MY_VM, &result, cancellable, error))
    return NULL;
  return result.vm;
}

/**
 * gsm_session_manager_unregister_vm:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Records that this session no longer owns a VM (call it once the VM is
 * deleted). Fails with %GSM_ERROR_NO_VM if it owns none.
 *
 * Since: 1.0
 */
void
gsm_session_manager_unregister_vm (GsmSessionManager  *self,
                                   GCancellable       *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_UNREGISTER_VM), gsm_session_manager_unregister_vm,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_unregister_vm_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.unregister_vm].
 *
 * Returns: %TRUE if the VM was unregistered
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_unregister_vm_finish (GsmSessionManager *self,
                                          GAsyncResult      *result,
                                          GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_unregister_vm), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_unregister_vm_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.unregister_vm].
 *
 * Returns: %TRUE if the VM was unregistered
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_unregister_vm_sync (GsmSessionManager *self,
                                        GCancellable      *cancellable,
                                        GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return _gsm_manager_run_sync (self, GSM_OP_UNREGISTER_VM, &result, cancellable, error);
}

/**
 * gsm_session_manager_get_all_active_sessions:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Lists the live sessions of the registry (stale ones are left out). As in
 * the original design, dead sessions found on the way are cleaned up as
 * [method@Gsm.SessionManager.cleanup_stale_sessions] does.
 *
 * Since: 1.0
 */
void
gsm_session_manager_get_all_active_sessions (GsmSessionManager  *self,
                                             GCancellable       *cancellable,
                                             GAsyncReadyCallback callback,
                                             gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_GET_ALL_ACTIVE_SESSIONS), gsm_session_manager_get_all_active_sessions,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_get_all_active_sessions_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.get_all_active_sessions].
 *
 * Returns: (transfer container) (element-type utf8 GsmSession): session id
 *   → session; the table owns its keys and values, g_hash_table_unref()
 *   frees everything
 *
 * Since: 1.0
 */
GHashTable *
gsm_session_manager_get_all_active_sessions_finish (GsmSessionManager *self,
                                                    GAsyncResult      *result,
                                                    GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_get_all_active_sessions), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_session_manager_get_all_active_sessions_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.get_all_active_sessions].
 *
 * Returns: (transfer container) (element-type utf8 GsmSession): session id
 *   → session; the table owns its keys and values, g_hash_table_unref()
 *   frees everything
 *
 * Since: 1.0
 */
GHashTable *
gsm_session_manager_get_all_active_sessions_sync (GsmSessionManager *self,
                                                  GCancellable      *cancellable,
                                                  GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!_gsm_manager_run_sync (self, GSM_OP_GET_ALL_ACTIVE_SESSIONS, &result, cancellable, error))
    return NULL;
  return result.sessions;
}

/*
 * Lists every entry of the registry, live or not, without changing it: a
 * session found dead but not yet recorded so is shown with status
 * `stale`, one whose liveness cannot be proven from here as
 * `unverifiable`. Returns a table of session id → session that owns its
 * keys and values, or %NULL with @error set.
 *
 * Not public API: applications read the registry through #GsmSessionList
 * (recorded statuses, and gsm_session_list_get_liveness()).
 */
GHashTable *
_gsm_session_manager_list_sessions_sync (GsmSessionManager *self,
                                         GCancellable      *cancellable,
                                         GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);
  if (!_gsm_manager_run_sync (self, GSM_OP_LIST_SESSIONS, &result, cancellable, error))
    return NULL;
  return result.sessions;
}

/**
 * gsm_session_manager_cleanup_stale_sessions:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Finds dead sessions: one that owns no VM is removed; one that still owns
 * a VM is kept with status `stale` (its VM is an orphan for the reaper).
 * Emits [signal@Gsm.SessionManager::session-stale] for each.
 *
 * Since: 1.0
 */
void
gsm_session_manager_cleanup_stale_sessions (GsmSessionManager  *self,
                                            GCancellable       *cancellable,
                                            GAsyncReadyCallback callback,
                                            gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_CLEANUP_STALE_SESSIONS), gsm_session_manager_cleanup_stale_sessions,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_cleanup_stale_sessions_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.cleanup_stale_sessions].
 *
 * Returns: the number of sessions newly found stale, or -1 on error
 *
 * Since: 1.0
 */
int
gsm_session_manager_cleanup_stale_sessions_finish (GsmSessionManager *self,
                                                   GAsyncResult      *result,
                                                   GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_cleanup_stale_sessions), -1);
  return (int) g_task_propagate_int (G_TASK (result), error);
}

/**
 * gsm_session_manager_cleanup_stale_sessions_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.cleanup_stale_sessions].
 *
 * Returns: the number of sessions newly found stale, or -1 on error
 *
 * Since: 1.0
 */
int
gsm_session_manager_cleanup_stale_sessions_sync (GsmSessionManager *self,
                                                 GCancellable      *cancellable,
                                                 GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), -1);
  if (!_gsm_manager_run_sync (self, GSM_OP_CLEANUP_STALE_SESSIONS, &result, cancellable, error))
    return -1;
  return result.count;
}

/**
 * gsm_session_manager_close:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Ends this session. If it owns no VM, its entry, session file and (if it
 * is about this session) the tracker are removed. If it still owns a VM,
 * they stay, so that the cleanup of other processes sees the VM. Further
 * operations fail with %GSM_ERROR_CLOSED.
 *
 * Since: 1.0
 */
void
gsm_session_manager_close (GsmSessionManager  *self,
                           GCancellable       *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer            user_data)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));
  _gsm_manager_start_op (self, _gsm_op_new (GSM_OP_CLOSE), gsm_session_manager_close,
                         cancellable, callback, user_data);
}

/**
 * gsm_session_manager_close_finish:
 * @self: a #GsmSessionManager
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.SessionManager.close].
 *
 * Returns: %TRUE if the session was closed
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_close_finish (GsmSessionManager *self,
                                  GAsyncResult      *result,
                                  GError           **error)
{
  g_return_val_if_fail (_gsm_manager_check_task (self, result, gsm_session_manager_close), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_session_manager_close_sync:
 * @self: a #GsmSessionManager
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.SessionManager.close].
 *
 * Returns: %TRUE if the session was closed
 *
 * Since: 1.0
 */
gboolean
gsm_session_manager_close_sync (GsmSessionManager *self,
                                GCancellable      *cancellable,
                                GError           **error)
{
  GsmOpResult result;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  return _gsm_manager_run_sync (self, GSM_OP_CLOSE, &result, cancellable, error);
}
