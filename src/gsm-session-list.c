/* gsm-session-list.c: a read-only view of the registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-process-private.h"
#include "gsm-session-list.h"

/**
 * GsmSessionList:
 *
 * The sessions of a registry, for looking only: a [iface@Gio.ListModel]
 * of [class@Gsm.Session], sorted by session id.
 *
 * Unlike [class@Gsm.SessionManager], a session list never enters the
 * calling process into the registry, and it never creates, moves, locks
 * or writes anything: it works on a read-only runtime directory, and on
 * one that belongs to an archive or a copy. This is what `gsmctl list`,
 * `gsmctl stats` and `gsmctl watch` use.
 *
 * The list is kept current: when any process changes the registry, the
 * list emits [signal@Gio.ListModel::items-changed] for exactly the
 * positions that changed, in the thread-default main context of the
 * thread that created it. An entry whose text is unchanged keeps its
 * [class@Gsm.Session] object.
 *
 * The statuses are the recorded ones. Whether a session's process is
 * alive is a question for this host: ask
 * [method@Gsm.SessionList.get_liveness].
 *
 * A registry file that is not a JSON object is an error
 * ([error@Gsm.Error.CORRUPT_REGISTRY]) and is left as it is; entries that
 * cannot be read are left out of the list (and left in the file).
 *
 * A registry in etcd is listed the same way
 * ([ctor@Gsm.SessionList.new_for_etcd]): one read of the prefix, then a
 * watch keeps the list current. The list takes no lease and writes no
 * key.
 *
 * Since: 1.0
 */
struct _GsmSessionList
{
  GObject parent_instance;

  char                *runtime_dir; /* files: the directory */
  char                *etcd_uri;    /* etcd: the URI */
  GsmRegistry         *registry;
  GsmLivenessProbe    *probe; /* files only: etcd's leases tell */
  GPtrArray           *items; /* GsmSession, sorted by session id */
  GsmRegistrySnapshot *shown; /* the registry items show */
};

static void gsm_session_list_model_init (GListModelInterface *iface);

G_DEFINE_ENUM_TYPE (GsmLiveness, gsm_liveness, G_DEFINE_ENUM_VALUE (GSM_LIVENESS_ALIVE, "alive"), G_DEFINE_ENUM_VALUE (GSM_LIVENESS_DEAD, "dead"), G_DEFINE_ENUM_VALUE (GSM_LIVENESS_UNVERIFIABLE, "unverifiable"))

G_DEFINE_FINAL_TYPE_WITH_CODE (GsmSessionList, gsm_session_list, G_TYPE_OBJECT, G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, gsm_session_list_model_init))

enum
{
  PROP_0,
  PROP_RUNTIME_DIR,
  PROP_ETCD_URI,
  PROP_ITEM_TYPE,
  PROP_N_ITEMS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---- GListModel -------------------------------------------------------- */

static GType
gsm_session_list_get_item_type (GListModel *model)
{
  return GSM_TYPE_SESSION;
}

static guint
gsm_session_list_get_n_items (GListModel *model)
{
  return GSM_SESSION_LIST (model)->items->len;
}

static gpointer
gsm_session_list_get_item (GListModel *model,
                           guint       position)
{
  GsmSessionList *self = GSM_SESSION_LIST (model);

  if (position >= self->items->len)
    return NULL;
  return g_object_ref (self->items->pdata[position]);
}

static void
gsm_session_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = gsm_session_list_get_item_type;
  iface->get_n_items = gsm_session_list_get_n_items;
  iface->get_item = gsm_session_list_get_item;
}

/* ---- keeping current --------------------------------------------------- */

static int
compare_by_id (gconstpointer a,
               gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;

  return strcmp (gsm_session_get_session_id (x), gsm_session_get_session_id (y));
}

static GPtrArray *
sorted_items (GsmRegistrySnapshot *snapshot)
{
  GPtrArray              *items = g_ptr_array_new_full (_gsm_registry_snapshot_get_size (snapshot),
                                                        g_object_unref);
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    g_ptr_array_add (items, g_object_ref (session));
  g_ptr_array_sort (items, compare_by_id);

  return items;
}

static void
emit_items_changed (GsmSessionList *self,
                    guint           position,
                    guint           removed,
                    guint           added)
{
  g_list_model_items_changed (G_LIST_MODEL (self), position, removed, added);
  if (removed != added)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_ITEMS]);
}

/*
 * Makes the list @next, one step at a time: a walk of both sorted arrays
 * that removes, inserts or replaces one item and tells at once, so that
 * every signal describes the list as it is when emitted. An entry that
 * did not change is the same object in both (snapshots share them) and
 * costs no signal.
 */
static void
apply (GsmSessionList *self,
       GPtrArray      *next)
{
  GPtrArray *items = self->items;
  guint      i = 0, j = 0;

  while (i < items->len || j < next->len)
    {
      int cmp;

      if (j >= next->len)
        cmp = -1;
      else if (i >= items->len)
        cmp = 1;
      else
        cmp = compare_by_id (&items->pdata[i], &next->pdata[j]);

      if (cmp < 0)
        {
          g_ptr_array_remove_index (items, i);
          emit_items_changed (self, i, 1, 0);
        }
      else if (cmp > 0)
        {
          g_ptr_array_insert (items, i, g_object_ref (next->pdata[j]));
          emit_items_changed (self, i, 0, 1);
          i++;
          j++;
        }
      else
        {
          if (items->pdata[i] != next->pdata[j])
            {
              GsmSession *old = items->pdata[i];

              items->pdata[i] = g_object_ref (next->pdata[j]);
              g_object_unref (old);
              emit_items_changed (self, i, 1, 1);
            }
          i++;
          j++;
        }
    }
}

static void
registry_changed_cb (GsmRegistry *registry,
                     gpointer     user_data)
{
  GsmSessionList *self = user_data;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GPtrArray) next = NULL;
  g_autoptr (GError) error = NULL;

  snapshot = _gsm_registry_load (registry, NULL, &error);
  if (snapshot == NULL)
    {
      /* Keep showing the last version read; the next change tries again. */
      g_debug ("Session list of “%s”: %s",
               self->runtime_dir ? self->runtime_dir : self->etcd_uri, error->message);
      return;
    }

  /* The store's snapshot as last read: nothing changed. */
  if (snapshot == self->shown)
    return;

  next = sorted_items (snapshot);
  apply (self, next);
  g_clear_pointer (&self->shown, _gsm_registry_snapshot_unref);
  self->shown = g_steal_pointer (&snapshot);
}

/* ---- GObject ----------------------------------------------------------- */

static void
gsm_session_list_finalize (GObject *object)
{
  GsmSessionList *self = GSM_SESSION_LIST (object);

  if (self->registry != NULL)
    g_signal_handlers_disconnect_by_data (self->registry, self);
  g_clear_object (&self->registry);
  g_clear_pointer (&self->probe, _gsm_liveness_probe_free);
  g_clear_pointer (&self->items, g_ptr_array_unref);
  g_clear_pointer (&self->shown, _gsm_registry_snapshot_unref);
  g_free (self->runtime_dir);
  g_free (self->etcd_uri);

  G_OBJECT_CLASS (gsm_session_list_parent_class)->finalize (object);
}

static void
gsm_session_list_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  GsmSessionList *self = GSM_SESSION_LIST (object);

  switch (prop_id)
    {
    case PROP_RUNTIME_DIR:
      g_value_set_string (value, self->runtime_dir);
      break;
    case PROP_ETCD_URI:
      g_value_set_string (value, self->etcd_uri);
      break;
    case PROP_ITEM_TYPE:
      g_value_set_gtype (value, GSM_TYPE_SESSION);
      break;
    case PROP_N_ITEMS:
      g_value_set_uint (value, self->items->len);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_session_list_class_init (GsmSessionListClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_session_list_finalize;
  object_class->get_property = gsm_session_list_get_property;

  /**
   * GsmSessionList:runtime-dir:
   *
   * The directory of the registry files, or %NULL for a registry in
   * etcd.
   *
   * Since: 1.0
   */
  properties[PROP_RUNTIME_DIR] =
      g_param_spec_string ("runtime-dir", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionList:etcd-uri:
   *
   * The URI of the registry in etcd, or %NULL for a registry in files.
   *
   * Since: 1.0
   */
  properties[PROP_ETCD_URI] =
      g_param_spec_string ("etcd-uri", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionList:item-type:
   *
   * The type of the items: always [class@Gsm.Session].
   *
   * Since: 1.0
   */
  properties[PROP_ITEM_TYPE] =
      g_param_spec_gtype ("item-type", NULL, NULL, GSM_TYPE_SESSION,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSessionList:n-items:
   *
   * The number of sessions in the list.
   *
   * Since: 1.0
   */
  properties[PROP_N_ITEMS] =
      g_param_spec_uint ("n-items", NULL, NULL, 0, G_MAXUINT, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_session_list_init (GsmSessionList *self)
{
  self->items = g_ptr_array_new_with_free_func (g_object_unref);
}

/* ---- public ------------------------------------------------------------ */

/* Watch first, then read: a change in between is not missed. */
static gboolean
start (GsmSessionList *self,
       GCancellable   *cancellable,
       GError        **error)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;

  g_signal_connect (self->registry, "changed", G_CALLBACK (registry_changed_cb), self);
  if (!_gsm_registry_start_watch (self->registry, error))
    return FALSE;

  snapshot = _gsm_registry_load (self->registry, cancellable, error);
  if (snapshot == NULL)
    return FALSE;
  g_ptr_array_unref (self->items);
  self->items = sorted_items (snapshot);
  self->shown = g_steal_pointer (&snapshot);
  return TRUE;
}

static GsmSessionList *
new_for_etcd (const char   *uri,
              GKeyFile     *config,
              GCancellable *cancellable,
              GError      **error)
{
  g_autoptr (GsmSessionList) self = g_object_new (GSM_TYPE_SESSION_LIST, NULL);
  double           timeout = _gsm_config_get_seconds (config, "registry", "etcd-timeout",
                                                      "GSM_ETCD_TIMEOUT", GSM_ETCD_DEFAULT_TIMEOUT);
  GsmEtcdRegistry *etcd;

  self->etcd_uri = g_strdup (uri);
  /* No session: no lease, and nothing is ever written. */
  etcd = _gsm_etcd_registry_new (uri, NULL, GSM_ETCD_DEFAULT_TTL, timeout, cancellable, error);
  if (etcd == NULL)
    return NULL;
  self->registry = GSM_REGISTRY (etcd);

  if (!start (self, cancellable, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * gsm_session_list_new:
 * @runtime_dir: (nullable) (type filename): the directory of the registry
 *   files, or %NULL for the registry [class@Gsm.SessionManager] uses
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the registry in @runtime_dir and starts watching it. Nothing is
 * created, locked or written, and the calling process does not become a
 * session. File names carry the prefix `GSM_FILE_PREFIX`, as for the
 * session manager.
 *
 * With @runtime_dir %NULL, the registry is the one a session manager of
 * this process would use: etcd if `GSM_REGISTRY` (or `backend` in the
 * `[registry]` group of the configuration file) names it, as with
 * [ctor@Gsm.SessionList.new_for_etcd]; else the files in
 * `GSM_RUNTIME_DIR`, else in `$XDG_STATE_HOME/gsm-session`.
 *
 * The call blocks while the registry is read. Changes are signalled in
 * the thread-default main context of the calling thread.
 *
 * A directory that does not exist is %G_IO_ERROR_NOT_FOUND (and is not
 * created); one that other users can write or that belongs to another
 * user is [error@Gsm.Error.INSECURE_DIRECTORY]; a registry file that is
 * not a JSON object is [error@Gsm.Error.CORRUPT_REGISTRY]. A directory
 * without a registry file is an empty list.
 *
 * Returns: (transfer full): a new #GsmSessionList, or %NULL with @error
 *   set
 *
 * Since: 1.0
 */
GsmSessionList *
gsm_session_list_new (const char   *runtime_dir,
                      GCancellable *cancellable,
                      GError      **error)
{
  g_autoptr (GsmSessionList) self = NULL;
  g_autoptr (GsmFileRegistry) files = NULL;
  const char *prefix = g_getenv ("GSM_FILE_PREFIX");
  const char *hostname = g_getenv ("GSM_HOSTNAME");
  const char *env = g_getenv ("GSM_RUNTIME_DIR");

  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  if (runtime_dir == NULL)
    {
      g_autoptr (GError) config_error = NULL;
      g_autoptr (GKeyFile) config = _gsm_config_load (&config_error);
      g_autofree char *backend = NULL;

      /* As for the session manager: the environment still tells. */
      if (config == NULL)
        g_warning ("gsm-session: %s", config_error->message);
      backend = _gsm_config_get_backend (config);
      if (_gsm_backend_is_etcd (backend))
        return new_for_etcd (backend, config, cancellable, error);
      if (backend != NULL && *backend != '\0' && !g_str_equal (backend, "file"))
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "Registry backend “%s” (GSM_REGISTRY, or “backend” in [registry] of the "
                       "configuration file): expected “file”, etcd://HOST:PORT[,HOST:PORT…][/PREFIX] "
                       "or etcds://…",
                       backend);
          return NULL;
        }
    }

  self = g_object_new (GSM_TYPE_SESSION_LIST, NULL);
  if (runtime_dir != NULL)
    self->runtime_dir = g_strdup (runtime_dir);
  else if (env != NULL && *env != '\0')
    self->runtime_dir = g_strdup (env);
  else
    self->runtime_dir = g_build_filename (g_get_user_state_dir (), "gsm-session", NULL);

  {
    g_autofree char *effective = _gsm_fs_effective_prefix (self->runtime_dir, prefix);

    files = _gsm_file_registry_new_read_only (self->runtime_dir, effective, error);
  }
  if (files == NULL)
    return NULL;

  /* The probe reads the liveness lock files; it never takes one. */
  self->probe = _gsm_liveness_probe_new (hostname && *hostname ? hostname : g_get_host_name (),
                                         g_getenv ("GSM_PROCESS_MATCH"));
  _gsm_liveness_probe_set_lock_dir (self->probe, _gsm_file_registry_get_dirfd (files));
  self->registry = GSM_REGISTRY (g_steal_pointer (&files));

  if (!start (self, cancellable, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * gsm_session_list_new_for_etcd:
 * @uri: `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`, or `etcds://…` for TLS
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the registry kept in etcd under @uri's prefix and starts
 * watching it. The list takes no lease and writes nothing; the calling
 * process does not become a session. TLS and authentication settings
 * come from the environment and the configuration file, as for
 * [class@Gsm.SessionManager] (`GSM_ETCD_CA_FILE`, `GSM_ETCD_USER`, …).
 *
 * The call blocks while the prefix is read, up to `GSM_ETCD_TIMEOUT`
 * per member. Changes are signalled in the thread-default main context
 * of the calling thread.
 *
 * A URI that is not one of etcd is [error@Gsm.Error.INVALID_ARGUMENT];
 * an etcd of which no member answers is
 * [error@Gsm.Error.BACKEND_UNAVAILABLE].
 *
 * Returns: (transfer full): a new #GsmSessionList, or %NULL with @error
 *   set
 *
 * Since: 1.0
 */
GsmSessionList *
gsm_session_list_new_for_etcd (const char   *uri,
                               GCancellable *cancellable,
                               GError      **error)
{
  g_autoptr (GKeyFile) config = NULL;
  g_autoptr (GError) config_error = NULL;

  g_return_val_if_fail (uri != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  if (!_gsm_backend_is_etcd (uri))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "“%s” is not the URI of an etcd registry: expected "
                   "etcd://HOST:PORT[,HOST:PORT…][/PREFIX] or etcds://…",
                   uri);
      return NULL;
    }
  config = _gsm_config_load (&config_error);
  if (config == NULL)
    g_warning ("gsm-session: %s", config_error->message);
  return new_for_etcd (uri, config, cancellable, error);
}

/**
 * gsm_session_list_get_runtime_dir:
 * @self: a #GsmSessionList
 *
 * Gets the directory of the registry files.
 *
 * Returns: (transfer none) (type filename) (nullable): the runtime
 *   directory, or %NULL for a registry in etcd
 *
 * Since: 1.0
 */
const char *
gsm_session_list_get_runtime_dir (GsmSessionList *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_LIST (self), NULL);
  return self->runtime_dir;
}

/**
 * gsm_session_list_get_etcd_uri:
 * @self: a #GsmSessionList
 *
 * Gets the URI of the registry in etcd.
 *
 * Returns: (transfer none) (nullable): the URI, or %NULL for a registry
 *   in files
 *
 * Since: 1.0
 */
const char *
gsm_session_list_get_etcd_uri (GsmSessionList *self)
{
  g_return_val_if_fail (GSM_IS_SESSION_LIST (self), NULL);
  return self->etcd_uri;
}

static int
find_id (GsmSessionList *self,
         const char     *session_id)
{
  guint lo = 0, hi = self->items->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      int   cmp = strcmp (gsm_session_get_session_id (self->items->pdata[mid]), session_id);

      if (cmp == 0)
        return (int) mid;
      if (cmp < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return -1;
}

/**
 * gsm_session_list_lookup:
 * @self: a #GsmSessionList
 * @session_id: a session id
 *
 * Finds the session with id @session_id in the list as it is now.
 *
 * Returns: (transfer full) (nullable): the session, or %NULL if the list
 *   has none with that id
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_list_lookup (GsmSessionList *self,
                         const char     *session_id)
{
  int i;

  g_return_val_if_fail (GSM_IS_SESSION_LIST (self), NULL);
  g_return_val_if_fail (session_id != NULL, NULL);

  i = find_id (self, session_id);
  return i >= 0 ? g_object_ref (self->items->pdata[i]) : NULL;
}

/**
 * gsm_session_list_lookup_vm:
 * @self: a #GsmSessionList
 * @vm_id: a VM id
 *
 * Finds the session recorded as the owner of the VM @vm_id, live or
 * stale.
 *
 * Returns: (transfer full) (nullable): the session, or %NULL if no session
 *   of the list owns @vm_id
 *
 * Since: 1.0
 */
GsmSession *
gsm_session_list_lookup_vm (GsmSessionList *self,
                            const char     *vm_id)
{
  g_return_val_if_fail (GSM_IS_SESSION_LIST (self), NULL);
  g_return_val_if_fail (vm_id != NULL, NULL);

  for (guint i = 0; i < self->items->len; i++)
    {
      GsmSession *session = self->items->pdata[i];

      if (gsm_session_get_has_vm (session) &&
          g_strcmp0 (gsm_session_get_vm_id (session), vm_id) == 0)
        return g_object_ref (session);
    }
  return NULL;
}

/**
 * gsm_session_list_get_liveness:
 * @self: a #GsmSessionList
 * @session: a session, usually of this list
 *
 * Tells whether the process behind @session is alive, as this host can
 * prove: by its pid, start time, boot id and pid namespace, and by the
 * liveness lock it holds in the runtime directory. A session of another
 * host, or one recorded without the facts a proof needs, is
 * %GSM_LIVENESS_UNVERIFIABLE.
 *
 * In etcd, the lease is the proof, for every host alike: a session whose
 * key etcd still keeps on its lease is alive, one whose lease expired
 * (only its VM key is left) is dead.
 *
 * This looks at the process only: a session recorded `stale` whose pid
 * was reused may read alive. Use the recorded status too.
 *
 * Returns: the liveness of @session's process
 *
 * Since: 1.0
 */
GsmLiveness
gsm_session_list_get_liveness (GsmSessionList *self,
                               GsmSession     *session)
{
  g_return_val_if_fail (GSM_IS_SESSION_LIST (self), GSM_LIVENESS_UNVERIFIABLE);
  g_return_val_if_fail (GSM_IS_SESSION (session), GSM_LIVENESS_UNVERIFIABLE);

  if (self->probe == NULL)
    return _gsm_registry_vouches_for (self->registry, session) ? GSM_LIVENESS_ALIVE
                                                               : GSM_LIVENESS_DEAD;

  return _gsm_liveness_probe_check (self->probe, session);
}
