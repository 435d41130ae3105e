/* gsmd-export.c: gsmd publishes its session manager's view on D-Bus
 *
 * The org.gsm.SessionManager1 interface (data/org.gsm.SessionManager1.xml)
 * is implemented by a skeleton that gdbus-codegen generates at build time;
 * this file fills it from the manager. The manager already follows the
 * registry (its own operations, and the file monitor for every other
 * process) and reports each new view with ::sessions-changed. Here each
 * view is compared with the one last published, and the differences
 * become D-Bus signals: a VM that appeared or went, a session that turned
 * stale, sessions that came or left. The properties are updated from the
 * same view, so GDBus sends PropertiesChanged.
 *
 * Nothing a caller sends is trusted: arguments are validated, and the one
 * method that changes the registry asks the bus (never the message) who
 * the caller is.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "gsm-dbus-generated.h"
#include "gsmd-export.h"
#include "gsm-error.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

#define DEFAULT_OBJECT_PATH "/org/gsm/SessionManager1"
#define INTERFACE_VERSION 1

typedef struct
{
  GsmSessionManager   *manager;          /* not owned: the export is its data */
  GDBusConnection     *connection;
  char                *object_path;
  _GsmSessionManager1 *skeleton;
  GsmRegistrySnapshot *shown;            /* the view last published */
  GHashTable          *variants;         /* GsmSession* → its a{sv}, for shown */
  GHashTable          *reported_stale;   /* ids already sent in SessionStale */
  gulong               changed_id;
  gulong               stale_id;
} Export;

static const char export_key[] = "gsm-dbus-export";

static void
export_free (gpointer data)
{
  Export *exp = data;

  /* When the manager is finalized, its handlers are already gone. */
  if (g_signal_handler_is_connected (exp->manager, exp->changed_id))
    g_signal_handler_disconnect (exp->manager, exp->changed_id);
  if (g_signal_handler_is_connected (exp->manager, exp->stale_id))
    g_signal_handler_disconnect (exp->manager, exp->stale_id);
  g_signal_handlers_disconnect_by_data (exp->skeleton, exp);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (exp->skeleton));
  g_clear_object (&exp->skeleton);
  g_clear_object (&exp->connection);
  g_clear_pointer (&exp->shown, _gsm_registry_snapshot_unref);
  g_clear_pointer (&exp->variants, g_hash_table_unref);
  g_clear_pointer (&exp->reported_stale, g_hash_table_unref);
  g_free (exp->object_path);
  g_free (exp);
}

/* ---- the view as D-Bus values ------------------------------------------ */

static int
compare_sessions (gconstpointer a,
                  gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;
  double d = gsm_session_get_created_at (x) - gsm_session_get_created_at (y);

  return d < 0 ? -1 : d > 0 ? 1 : g_strcmp0 (gsm_session_get_session_id (x),
                                              gsm_session_get_session_id (y));
}

/* The sessions of @snapshot, oldest first (a stable order for clients). */
static GPtrArray *
sorted_sessions (GsmRegistrySnapshot *snapshot)
{
  GPtrArray *array = g_ptr_array_new ();
  GsmRegistrySnapshotIter iter;
  GsmSession *session;

  if (snapshot != NULL)
    {
      _gsm_registry_snapshot_iter_init (&iter, snapshot);
      while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
        g_ptr_array_add (array, session);
    }
  g_ptr_array_sort (array, compare_sessions);

  return array;
}

/* Sessions are immutable and shared between snapshots, so the dictionary
 * of an unchanged one is built only once. */
static GVariant *
session_variant (Export     *exp,
                 GsmSession *session)
{
  GVariant *v = g_hash_table_lookup (exp->variants, session);

  if (v == NULL)
    {
      v = gsm_session_to_variant (session);
      g_hash_table_insert (exp->variants, g_object_ref (session), v);
    }
  return v;
}

static GVariant *
build_sessions (Export *exp)
{
  g_autoptr(GPtrArray) sessions = sorted_sessions (exp->shown);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < sessions->len; i++)
    g_variant_builder_add_value (&b, session_variant (exp, sessions->pdata[i]));

  return g_variant_builder_end (&b);
}

static void
publish_properties (Export *exp)
{
  guint n_vms = 0, n_sessions = 0;
  GHashTableIter iter;
  GsmRegistrySnapshotIter shown;
  gpointer key;
  GsmSession *value;

  /* Drop the dictionaries of sessions that left the view. */
  g_hash_table_iter_init (&iter, exp->variants);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      GsmSession *session = key;

      if (exp->shown == NULL ||
          _gsm_registry_snapshot_lookup (exp->shown, gsm_session_get_session_id (session)) != session)
        g_hash_table_iter_remove (&iter);
    }

  if (exp->shown != NULL)
    {
      n_sessions = _gsm_registry_snapshot_get_size (exp->shown);
      _gsm_registry_snapshot_iter_init (&shown, exp->shown);
      while (_gsm_registry_snapshot_iter_next (&shown, NULL, &value))
        if (gsm_session_get_has_vm (value))
          n_vms++;
    }

  _gsm_session_manager1_set_sessions (exp->skeleton, build_sessions (exp));
  _gsm_session_manager1_set_session_count (exp->skeleton, n_sessions);
  _gsm_session_manager1_set_vm_count (exp->skeleton, n_vms);
}

/* ---- following the manager --------------------------------------------- */

static void
report_stale (Export     *exp,
              GsmSession *session)
{
  const char *id = gsm_session_get_session_id (session);
  const char *vm_id = gsm_session_get_vm_id (session);

  if (!g_hash_table_add (exp->reported_stale, g_strdup (id)))
    return;
  _gsm_session_manager1_emit_session_stale (exp->skeleton, id, vm_id ? vm_id : "");
}

static void
session_stale_cb (GsmSessionManager *manager,
                  GsmSession        *session,
                  Export            *exp)
{
  report_stale (exp, session);
}

static void
report_vm_change (Export     *exp,
                  const char *id,
                  GsmSession *old,
                  GsmSession *now)
{
  const char *old_vm = old ? gsm_session_get_vm_id (old) : NULL;
  const char *new_vm = now ? gsm_session_get_vm_id (now) : NULL;

  if (g_strcmp0 (old_vm, new_vm) == 0)
    return;
  if (old_vm != NULL)
    _gsm_session_manager1_emit_vm_unregistered (exp->skeleton, id, old_vm);
  if (new_vm != NULL)
    _gsm_session_manager1_emit_vm_registered (exp->skeleton, id, new_vm,
                                              gsm_session_get_zone (now) ? gsm_session_get_zone (now) : "");
}

static void
sessions_changed_cb (GsmSessionManager *manager,
                     Export            *exp)
{
  g_autoptr(GsmRegistrySnapshot) view = _gsm_session_manager_dup_view (manager);
  g_autoptr(GPtrArray) now = NULL;
  g_autoptr(GPtrArray) before = NULL;
  g_autoptr(GPtrArray) added = g_ptr_array_new ();
  g_autoptr(GPtrArray) removed = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  if (view == NULL || (exp->shown != NULL && view->generation <= exp->shown->generation))
    return;

  now = sorted_sessions (view);
  before = sorted_sessions (exp->shown);

  /* Gone: a VM it owned is no longer owned by anyone through it. */
  for (guint i = 0; i < before->len; i++)
    {
      GsmSession *old = before->pdata[i];
      const char *id = gsm_session_get_session_id (old);

      if (_gsm_registry_snapshot_contains (view, id))
        continue;
      report_vm_change (exp, id, old, NULL);
      g_ptr_array_add (removed, (gpointer) id);
    }

  for (guint i = 0; i < now->len; i++)
    {
      GsmSession *session = now->pdata[i];
      const char *id = gsm_session_get_session_id (session);
      GsmSession *old = exp->shown ? _gsm_registry_snapshot_lookup (exp->shown, id) : NULL;

      if (old == session)
        continue;
      if (old == NULL)
        g_ptr_array_add (added, (gpointer) id);
      report_vm_change (exp, id, old, session);
      /* Found dead by another process (this one reports its own finds
       * through ::session-stale, before the view that records them). */
      if (_gsm_session_is_stale (session) && (old == NULL || !_gsm_session_is_stale (old)))
        report_stale (exp, session);
    }

  g_ptr_array_add (added, NULL);
  g_ptr_array_add (removed, NULL);
  _gsm_session_manager1_emit_sessions_changed (exp->skeleton,
                                               (const char * const *) added->pdata,
                                               (const char * const *) removed->pdata);

  /* The ids in added/removed point into the snapshots: swap them last. */
  g_clear_pointer (&exp->shown, _gsm_registry_snapshot_unref);
  exp->shown = g_steal_pointer (&view);

  g_hash_table_iter_init (&iter, exp->reported_stale);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!_gsm_registry_snapshot_contains (exp->shown, key))
      g_hash_table_iter_remove (&iter);

  publish_properties (exp);
}

/* ---- methods ----------------------------------------------------------- */

static gboolean
handle_list_sessions (_GsmSessionManager1    *skeleton,
                      GDBusMethodInvocation  *invocation,
                      Export                 *exp)
{
  _gsm_session_manager1_complete_list_sessions (skeleton, invocation, build_sessions (exp));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_session (_GsmSessionManager1    *skeleton,
                    GDBusMethodInvocation  *invocation,
                    const char             *session_id,
                    Export                 *exp)
{
  g_autoptr(GError) error = NULL;
  GsmSession *session;

  if (!_gsm_validate_identifier ("session_id", session_id, 255, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  session = exp->shown ? _gsm_registry_snapshot_lookup (exp->shown, session_id) : NULL;
  if (session == NULL)
    {
      g_dbus_method_invocation_return_error (invocation, GSM_ERROR, GSM_ERROR_NOT_FOUND,
                                             "No session “%s” in the registry", session_id);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  _gsm_session_manager1_complete_get_session (skeleton, invocation, session_variant (exp, session));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_statistics (_GsmSessionManager1    *skeleton,
                       GDBusMethodInvocation  *invocation,
                       Export                 *exp)
{
  g_autoptr(GVariant) own = gsm_session_manager_get_statistics (exp->manager);
  g_autoptr(GPtrArray) sessions = sorted_sessions (exp->shown);
  g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (exp->manager));
  guint n_active = 0, n_stale = 0, n_vms = 0, n_orphans = 0;
  GVariantBuilder b;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];
      gboolean stale = _gsm_session_is_stale (s);

      if (stale)
        n_stale++;
      else
        n_active++;
      if (gsm_session_get_has_vm (s))
        {
          n_vms++;
          if (stale)
            n_orphans++;
        }
    }

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "runtime_dir", g_variant_new_string (dir ? dir : ""));
  g_variant_builder_add (&b, "{sv}", "sessions", g_variant_new_uint32 (sessions->len));
  g_variant_builder_add (&b, "{sv}", "active", g_variant_new_uint32 (n_active));
  g_variant_builder_add (&b, "{sv}", "stale", g_variant_new_uint32 (n_stale));
  g_variant_builder_add (&b, "{sv}", "vms", g_variant_new_uint32 (n_vms));
  g_variant_builder_add (&b, "{sv}", "orphan_vms", g_variant_new_uint32 (n_orphans));
  g_variant_iter_init (&iter, own);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      /* D-Bus has no maybe type: a missing value is a missing key. */
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_MAYBE))
        {
          GVariant *inner = g_variant_get_maybe (value);

          g_variant_unref (value);
          value = inner;
        }
      if (value != NULL)
        {
          g_variant_builder_add (&b, "{sv}", key, value);
          g_variant_unref (value);
        }
    }

  _gsm_session_manager1_complete_get_statistics (skeleton, invocation, g_variant_builder_end (&b));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  GsmSessionManager     *manager;
  GDBusMethodInvocation *invocation;
} Call;

static void
call_free (Call *call)
{
  g_object_unref (call->manager);
  g_object_unref (call->invocation);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Call, call_free)

static void
cleanup_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Call) call = user_data;
  g_autoptr(GError) error = NULL;
  int count;

  count = gsm_session_manager_cleanup_stale_sessions_finish (call->manager, result, &error);
  if (count < 0)
    {
      g_dbus_method_invocation_return_gerror (call->invocation, error);
      return;
    }

  g_dbus_method_invocation_return_value (call->invocation, g_variant_new ("(u)", (guint32) count));
}

static void
authorize_cleanup (Call  *call,
                   uid_t  caller_uid)
{
  uid_t own_uid = geteuid ();
  const char *sender = g_dbus_method_invocation_get_sender (call->invocation);

  if (caller_uid != own_uid)
    {
      g_dbus_method_invocation_return_error (call->invocation, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                                             "CleanupStaleSessions is only for uid %u; caller %s runs as uid %u",
                                             (guint) own_uid,
                                             sender != NULL ? sender : "(peer)",
                                             (guint) caller_uid);
      call_free (call);
      return;
    }

  gsm_session_manager_cleanup_stale_sessions (call->manager, NULL, cleanup_done_cb, call);
}

static void
caller_uid_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Call *call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 uid;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      g_dbus_method_invocation_return_error (call->invocation, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                                             "Cannot tell the uid of caller %s: %s",
                                             g_dbus_method_invocation_get_sender (call->invocation),
                                             error->message);
      call_free (call);
      return;
    }

  g_variant_get (reply, "(u)", &uid);
  authorize_cleanup (call, (uid_t) uid);
}

static gboolean
handle_cleanup_stale_sessions (_GsmSessionManager1    *skeleton,
                               GDBusMethodInvocation  *invocation,
                               Export                 *exp)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  Call *call = g_new0 (Call, 1);

  call->manager = g_object_ref (exp->manager);
  call->invocation = g_object_ref (invocation);

  if (sender != NULL && g_dbus_connection_get_unique_name (connection) != NULL)
    {
      /* On a message bus: the bus daemon knows who is behind the sender. */
      g_dbus_connection_call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                              "org.freedesktop.DBus", "GetConnectionUnixUser",
                              g_variant_new ("(s)", sender), G_VARIANT_TYPE ("(u)"),
                              G_DBUS_CALL_FLAGS_NONE, 10000, NULL, caller_uid_cb, call);
    }
  else
    {
      /* A peer-to-peer connection: the credentials of its socket. */
      GCredentials *credentials = g_dbus_connection_get_peer_credentials (connection);
      g_autoptr(GError) error = NULL;
      uid_t uid = credentials ? g_credentials_get_unix_user (credentials, &error) : (uid_t) -1;

      if (uid == (uid_t) -1)
        {
          g_dbus_method_invocation_return_error (invocation, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                                                 "Cannot tell the uid of the peer: %s",
                                                 error ? error->message : "no credentials");
          call_free (call);
        }
      else
        authorize_cleanup (call, uid);
    }

  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- public API -------------------------------------------------------- */

/*
 * gsmd_export:
 * @self: a #GsmSessionManager
 * @connection: the connection to export on (a message bus or a peer)
 * @object_path: (nullable): where to export; %NULL for
 *   `/org/gsm/SessionManager1`
 * @error: return location for a #GError
 *
 * Publishes the manager's view of the registry on @connection, as the
 * `org.gsm.SessionManager1` D-Bus interface: the properties `Sessions`,
 * `SessionCount` and `VmCount` (with `PropertiesChanged`), the methods
 * `ListSessions`, `GetSession`, `GetStatistics` and
 * `CleanupStaleSessions`, and the signals `VmRegistered`,
 * `VmUnregistered`, `SessionStale` and `SessionsChanged`, sent when the
 * manager sees a change by any process (see
 * [signal@Gsm.SessionManager::sessions-changed]).
 *
 * Reading is open to every caller. `CleanupStaleSessions` is only for
 * callers whose uid, as the bus (or the peer's socket) reports it, is this
 * process's effective uid; others get
 * `org.gsm.SessionManager1.Error.PermissionDenied`. Errors of the
 * %GSM_ERROR domain reach callers under the names registered for them.
 *
 * Method calls are handled in the thread-default main context of the
 * caller of this function, which must be the one the manager was created
 * in. Owning a bus name is up to the application.
 *
 * A manager is exported on at most one connection at a time; call
 * gsmd_unexport() first to move it.
 *
 * Returns: %TRUE if the object is exported; %FALSE with @error set if the
 *   manager is already exported, @object_path is not a valid object path,
 *   or the path is taken on @connection
 */
gboolean
gsmd_export (GsmSessionManager  *self,
             GDBusConnection    *connection,
             const char         *object_path,
             GError            **error)
{
  Export *exp;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), FALSE);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (object_path == NULL)
    object_path = DEFAULT_OBJECT_PATH;

  if (!g_variant_is_object_path (object_path))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a valid D-Bus object path", object_path);
      return FALSE;
    }

  exp = g_object_get_data (G_OBJECT (self), export_key);
  if (exp != NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                   "The session manager is already exported at %s; unexport it first",
                   exp->object_path);
      return FALSE;
    }

  /* Register the error names before the first reply can need them. */
  (void) GSM_ERROR;

  exp = g_new0 (Export, 1);
  exp->manager = self;
  exp->connection = g_object_ref (connection);
  exp->object_path = g_strdup (object_path);
  exp->skeleton = _gsm_session_manager1_skeleton_new ();
  exp->shown = _gsm_session_manager_dup_view (self);
  exp->variants = g_hash_table_new_full (NULL, NULL, g_object_unref, (GDestroyNotify) g_variant_unref);
  exp->reported_stale = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  _gsm_session_manager1_set_version (exp->skeleton, INTERFACE_VERSION);
  publish_properties (exp);

  g_signal_connect (exp->skeleton, "handle-list-sessions", G_CALLBACK (handle_list_sessions), exp);
  g_signal_connect (exp->skeleton, "handle-get-session", G_CALLBACK (handle_get_session), exp);
  g_signal_connect (exp->skeleton, "handle-get-statistics", G_CALLBACK (handle_get_statistics), exp);
  g_signal_connect (exp->skeleton, "handle-cleanup-stale-sessions",
                    G_CALLBACK (handle_cleanup_stale_sessions), exp);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (exp->skeleton), connection,
                                         object_path, error))
    {
      g_prefix_error (error, "Cannot export the session manager at %s: ", object_path);
      export_free (exp);
      return FALSE;
    }

  exp->changed_id = g_signal_connect (self, "sessions-changed", G_CALLBACK (sessions_changed_cb), exp);
  exp->stale_id = g_signal_connect (self, "session-stale", G_CALLBACK (session_stale_cb), exp);

  g_object_set_data_full (G_OBJECT (self), export_key, exp, export_free);

  return TRUE;
}

/*
 * gsmd_unexport:
 * @self: a #GsmSessionManager
 *
 * Stops publishing the manager on D-Bus, if
 * gsmd_export() did. Method calls already being
 * handled still get their reply.
 */
void
gsmd_unexport (GsmSessionManager *self)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (self));

  g_object_set_data (G_OBJECT (self), export_key, NULL);
}
