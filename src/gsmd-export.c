/* gsmd-export.c: gsmd publishes the registry on D-Bus
 *
 * The org.gsm.SessionManager1 interfaces (data/org.gsm.SessionManager1.xml)
 * are implemented by skeletons that gdbus-codegen generates at build
 * time; this file fills them from a GsmSessionList, the read-only view of
 * the registry that follows every process's changes (the file monitor, or
 * the etcd watch). The root object carries the counts, the methods and
 * the signals, and is an org.freedesktop.DBus.ObjectManager; each session
 * is an object of its own below it, as logind does it, so that a change
 * sends the properties of one session, never the whole registry.
 *
 * The list says where it changed (GListModel::items-changed); a mirror of
 * the list as it was tells what was there before, and the difference
 * becomes D-Bus signals: a VM that appeared or went, a session that turned
 * stale, sessions that came or left (SessionsChanged, once per turn of the
 * main loop). gsmd's own session is not published.
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
#include "gsm-error.h"
#include "gsm-session-counts-private.h"
#include "gsm-session-private.h"
#include "gsmd-export.h"

#define DEFAULT_OBJECT_PATH "/org/gsm/SessionManager1"
#define INTERFACE_VERSION 2

typedef struct
{
  GsmSessionManager        *manager; /* not owned: the export is its data */
  GsmSessionList           *list;    /* what is published */
  GDBusConnection          *connection;
  char                     *object_path;
  _GsmSessionManager1      *skeleton;
  GDBusObjectManagerServer *objects;        /* one object per session */
  GPtrArray                *mirror;         /* GsmSession: the list as last seen */
  GHashTable               *reported_stale; /* ids already sent in SessionStale */
  GPtrArray                *added;          /* ids for the next SessionsChanged */
  GPtrArray                *removed;
  guint                     n_sessions; /* published: gsmd's own left out */
  guint                     n_vms;
  gboolean                  populating; /* what was there before: not news */
  guint                     flush_id;
  gulong                    items_id;
  gulong                    stale_id;
} Export;

static const char export_key[] = "gsmd-export";

static void
export_free (gpointer data)
{
  Export *exp = data;

  /* When the manager is finalized, its handlers are already gone. */
  if (g_signal_handler_is_connected (exp->manager, exp->stale_id))
    g_signal_handler_disconnect (exp->manager, exp->stale_id);
  g_clear_signal_handler (&exp->items_id, exp->list);
  g_clear_handle_id (&exp->flush_id, g_source_remove);
  g_signal_handlers_disconnect_by_data (exp->skeleton, exp);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (exp->skeleton));
  g_dbus_object_manager_server_set_connection (exp->objects, NULL);
  g_clear_object (&exp->objects);
  g_clear_object (&exp->skeleton);
  g_clear_object (&exp->list);
  g_clear_object (&exp->connection);
  g_clear_pointer (&exp->mirror, g_ptr_array_unref);
  g_clear_pointer (&exp->reported_stale, g_hash_table_unref);
  g_clear_pointer (&exp->added, g_ptr_array_unref);
  g_clear_pointer (&exp->removed, g_ptr_array_unref);
  g_free (exp->object_path);
  g_free (exp);
}

/* ---- sessions as D-Bus values ------------------------------------------ */

static gboolean
is_hidden (Export     *exp,
           GsmSession *session)
{
  return g_strcmp0 (gsm_session_get_session_id (session),
                    gsm_session_manager_get_session_id (exp->manager)) == 0;
}

/* The session's dictionary, as the interface documents it (pid as u). */
static GVariant *
session_variant (GsmSession *session)
{
  g_autoptr (GVariant) dict = gsm_session_to_variant (session);
  GVariantBuilder b;
  GVariantIter    iter;
  const char     *key;
  GVariant       *value;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      if (g_str_equal (key, "pid") && g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
        g_variant_builder_add (&b, "{sv}", key,
                               g_variant_new_uint32 ((guint32) MAX (g_variant_get_int32 (value), 0)));
      else
        g_variant_builder_add (&b, "{sv}", key, value);
      g_variant_unref (value);
    }
  return g_variant_builder_end (&b);
}

static char *
session_path (Export     *exp,
              const char *session_id)
{
  g_autofree char *escaped = g_dbus_escape_object_path (session_id);

  return g_strconcat (exp->object_path, "/session/", escaped, NULL);
}

static void
set_session_properties (_GsmSessionManager1Session *iface,
                        GsmSession                 *session)
{
  const char *const  empty[] = { NULL };
  const char *const *components = gsm_session_get_components (session);
  const char        *vm_id = gsm_session_get_vm_id (session);
  const char        *zone = gsm_session_get_zone (session);

  _gsm_session_manager1_session_set_id (iface, gsm_session_get_session_id (session));
  _gsm_session_manager1_session_set_pid (iface, (guint) MAX (gsm_session_get_pid (session), 0));
  _gsm_session_manager1_session_set_hostname (iface, gsm_session_get_hostname (session));
  _gsm_session_manager1_session_set_created_at (iface, gsm_session_get_created_at (session));
  _gsm_session_manager1_session_set_status (iface, gsm_session_get_status (session));
  _gsm_session_manager1_session_set_vm_id (iface, vm_id ? vm_id : "");
  _gsm_session_manager1_session_set_zone (iface, zone ? zone : "");
  _gsm_session_manager1_session_set_components (iface, components ? components : empty);
  _gsm_session_manager1_session_set_registered_at (iface, gsm_session_get_registered_at (session));
  _gsm_session_manager1_session_set_stale_since (iface, gsm_session_get_stale_since (session));
}

static void
publish_counts (Export *exp)
{
  _gsm_session_manager1_set_session_count (exp->skeleton, exp->n_sessions);
  _gsm_session_manager1_set_vm_count (exp->skeleton, exp->n_vms);
}

/* ---- following the list ------------------------------------------------ */

static void
report_stale (Export     *exp,
              GsmSession *session)
{
  const char *id = gsm_session_get_session_id (session);
  const char *vm_id = gsm_session_get_vm_id (session);

  if (is_hidden (exp, session) || !g_hash_table_add (exp->reported_stale, g_strdup (id)) ||
      exp->populating)
    return;
  _gsm_session_manager1_emit_session_stale (exp->skeleton, id, vm_id ? vm_id : "");
}

static void session_changed (Export *exp, GsmSession *old, GsmSession *now);

/*
 * gsmd's manager found @session dead and recorded it: told at once (the
 * list hears of it through the file monitor, up to ~100 ms later), and
 * shown so in the mirror meanwhile, so that a client that reads right
 * after SessionStale reads it stale. The list's version replaces it when
 * it comes (same id, same position).
 */
static void
session_stale_cb (GsmSessionManager *manager,
                  GsmSession        *session,
                  Export            *exp)
{
  const char *id = gsm_session_get_session_id (session);

  report_stale (exp, session);
  for (guint i = 0; i < exp->mirror->len; i++)
    {
      GsmSession *old = exp->mirror->pdata[i];

      if (!g_str_equal (gsm_session_get_session_id (old), id) || is_hidden (exp, old) ||
          _gsm_session_is_stale (old))
        continue;
      exp->mirror->pdata[i] = _gsm_session_is_stale (session)
                                  ? g_object_ref (session)
                                  : _gsm_session_with_stale (session, g_get_real_time () / (double) G_USEC_PER_SEC);
      session_changed (exp, old, exp->mirror->pdata[i]);
      g_object_unref (old);
      publish_counts (exp);
      break;
    }
}

static void
report_vm_change (Export     *exp,
                  const char *id,
                  GsmSession *old,
                  GsmSession *now)
{
  const char *old_vm = old ? gsm_session_get_vm_id (old) : NULL;
  const char *new_vm = now ? gsm_session_get_vm_id (now) : NULL;

  if (g_strcmp0 (old_vm, new_vm) == 0 || exp->populating)
    return;
  if (old_vm != NULL)
    _gsm_session_manager1_emit_vm_unregistered (exp->skeleton, id, old_vm);
  if (new_vm != NULL)
    _gsm_session_manager1_emit_vm_registered (exp->skeleton, id, new_vm,
                                              gsm_session_get_zone (now) ? gsm_session_get_zone (now) : "");
}

static gboolean
flush_cb (gpointer user_data)
{
  Export *exp = user_data;

  exp->flush_id = 0;
  g_ptr_array_add (exp->added, NULL);
  g_ptr_array_add (exp->removed, NULL);
  _gsm_session_manager1_emit_sessions_changed (exp->skeleton,
                                               (const char *const *) exp->added->pdata,
                                               (const char *const *) exp->removed->pdata);
  g_ptr_array_set_size (exp->added, 0);
  g_ptr_array_set_size (exp->removed, 0);
  return G_SOURCE_REMOVE;
}

/* SessionsChanged, once for the changes of this turn of the main loop,
 * after their more specific signals; @ids NULL for a session that
 * changed. */
static void
note_change (Export     *exp,
             GPtrArray  *ids,
             const char *id)
{
  if (exp->populating)
    return;
  if (ids != NULL)
    g_ptr_array_add (ids, g_strdup (id));
  if (exp->flush_id == 0)
    exp->flush_id = g_idle_add (flush_cb, exp);
}

static void
session_added (Export     *exp,
               GsmSession *session)
{
  const char      *id = gsm_session_get_session_id (session);
  g_autofree char *path = session_path (exp, id);
  g_autoptr (GDBusObjectSkeleton) object = g_dbus_object_skeleton_new (path);
  g_autoptr (_GsmSessionManager1Session) iface = _gsm_session_manager1_session_skeleton_new ();

  set_session_properties (iface, session);
  g_dbus_object_skeleton_add_interface (object, G_DBUS_INTERFACE_SKELETON (iface));
  g_dbus_object_manager_server_export (exp->objects, object);

  exp->n_sessions++;
  if (gsm_session_get_has_vm (session))
    exp->n_vms++;
  report_vm_change (exp, id, NULL, session);
  if (_gsm_session_is_stale (session))
    report_stale (exp, session);
  note_change (exp, exp->added, id);
}

static void
session_removed (Export     *exp,
                 GsmSession *old)
{
  const char      *id = gsm_session_get_session_id (old);
  g_autofree char *path = session_path (exp, id);

  g_dbus_object_manager_server_unexport (exp->objects, path);
  exp->n_sessions--;
  if (gsm_session_get_has_vm (old))
    exp->n_vms--;
  report_vm_change (exp, id, old, NULL);
  g_hash_table_remove (exp->reported_stale, id);
  note_change (exp, exp->removed, id);
}

static void
session_changed (Export     *exp,
                 GsmSession *old,
                 GsmSession *now)
{
  const char      *id = gsm_session_get_session_id (now);
  g_autofree char *path = session_path (exp, id);
  g_autoptr (GDBusObject) object = g_dbus_object_manager_get_object (G_DBUS_OBJECT_MANAGER (exp->objects),
                                                                     path);

  if (object != NULL)
    {
      g_autoptr (GDBusInterface) iface =
          g_dbus_object_get_interface (object, "org.gsm.SessionManager1.Session");

      /* Only what changed is sent in PropertiesChanged. */
      if (iface != NULL)
        set_session_properties (_GSM_SESSION_MANAGER1_SESSION (iface), now);
    }
  exp->n_vms += (gsm_session_get_has_vm (now) ? 1 : 0) - (gsm_session_get_has_vm (old) ? 1 : 0);
  report_vm_change (exp, id, old, now);
  /* Found dead by another process (gsmd reports its own finds through
   * ::session-stale, before the list shows them). */
  if (_gsm_session_is_stale (now) && !_gsm_session_is_stale (old))
    report_stale (exp, now);
  note_change (exp, NULL, id);
}

static GsmSession *
take_by_id (GPtrArray  *sessions,
            const char *id)
{
  for (guint i = 0; i < sessions->len; i++)
    if (sessions->pdata[i] != NULL &&
        g_str_equal (gsm_session_get_session_id (sessions->pdata[i]), id))
      {
        GsmSession *found = sessions->pdata[i];

        sessions->pdata[i] = NULL;
        return found;
      }
  return NULL;
}

static void
items_changed_cb (GListModel *list,
                  guint       position,
                  guint       n_removed,
                  guint       n_added,
                  Export     *exp)
{
  /* Entries taken by take_by_id() are NULL: no free function. */
  g_autoptr (GPtrArray) gone = g_ptr_array_new ();

  /* What the mirror held there is what the list no longer holds. */
  for (guint i = 0; i < n_removed; i++)
    g_ptr_array_add (gone, g_object_ref (exp->mirror->pdata[position + i]));
  g_ptr_array_remove_range (exp->mirror, position, n_removed);

  for (guint i = 0; i < n_added; i++)
    {
      GsmSession *now = g_list_model_get_item (list, position + i);
      g_autoptr (GsmSession) old = take_by_id (gone, gsm_session_get_session_id (now));

      g_ptr_array_insert (exp->mirror, position + i, now);
      if (is_hidden (exp, now))
        continue;
      if (old != NULL)
        session_changed (exp, old, now);
      else
        session_added (exp, now);
    }

  for (guint i = 0; i < gone->len; i++)
    if (gone->pdata[i] != NULL)
      {
        g_autoptr (GsmSession) old = gone->pdata[i];

        if (!is_hidden (exp, old))
          session_removed (exp, old);
      }

  publish_counts (exp);
}

/* ---- methods ----------------------------------------------------------- */

static gboolean
handle_list_sessions (_GsmSessionManager1   *skeleton,
                      GDBusMethodInvocation *invocation,
                      Export                *exp)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < exp->mirror->len; i++)
    if (!is_hidden (exp, exp->mirror->pdata[i]))
      g_variant_builder_add_value (&b, session_variant (exp->mirror->pdata[i]));

  _gsm_session_manager1_complete_list_sessions (skeleton, invocation, g_variant_builder_end (&b));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_session (_GsmSessionManager1   *skeleton,
                    GDBusMethodInvocation *invocation,
                    const char            *session_id,
                    Export                *exp)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) session = NULL;

  if (!_gsm_validate_identifier ("session_id", session_id, 255, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  session = gsm_session_list_lookup (exp->list, session_id);
  if (session == NULL || is_hidden (exp, session))
    {
      g_dbus_method_invocation_return_error (invocation, GSM_ERROR, GSM_ERROR_NOT_FOUND,
                                             "No session “%s” in the registry", session_id);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  _gsm_session_manager1_complete_get_session (skeleton, invocation, session_variant (session));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_statistics (_GsmSessionManager1   *skeleton,
                       GDBusMethodInvocation *invocation,
                       Export                *exp)
{
  const char      *where = gsm_session_list_get_runtime_dir (exp->list);
  GsmSessionCounts counts = { 0 };
  GVariantBuilder  b;

  for (guint i = 0; i < exp->mirror->len; i++)
    if (!is_hidden (exp, exp->mirror->pdata[i]))
      _gsm_session_counts_add (&counts, exp->mirror->pdata[i]);

  if (where == NULL)
    where = gsm_session_list_get_etcd_uri (exp->list);
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "runtime_dir", g_variant_new_string (where ? where : ""));
  g_variant_builder_add (&b, "{sv}", "sessions", g_variant_new_uint32 (counts.sessions));
  g_variant_builder_add (&b, "{sv}", "active", g_variant_new_uint32 (counts.active));
  g_variant_builder_add (&b, "{sv}", "creating", g_variant_new_uint32 (counts.creating));
  g_variant_builder_add (&b, "{sv}", "stale", g_variant_new_uint32 (counts.stale));
  g_variant_builder_add (&b, "{sv}", "vms", g_variant_new_uint32 (counts.vms));
  g_variant_builder_add (&b, "{sv}", "orphan_vms", g_variant_new_uint32 (counts.orphan_vms));

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
  g_autoptr (Call) call = user_data;
  g_autoptr (GError) error = NULL;
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
authorize_cleanup (Call *call,
                   uid_t caller_uid)
{
  uid_t       own_uid = geteuid ();
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
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
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
handle_cleanup_stale_sessions (_GsmSessionManager1   *skeleton,
                               GDBusMethodInvocation *invocation,
                               Export                *exp)
{
  GDBusConnection *connection = g_dbus_method_invocation_get_connection (invocation);
  const char      *sender = g_dbus_method_invocation_get_sender (invocation);
  Call            *call = g_new0 (Call, 1);

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
      g_autoptr (GError) error = NULL;
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

/* ---- entry points ------------------------------------------------------ */

/*
 * gsmd_export:
 * @manager: gsmd's session manager: it runs `CleanupStaleSessions`, and
 *   its own session is left out of what is published
 * @list: the registry to publish (the same one as @manager's)
 * @connection: the connection to export on (a message bus or a peer)
 * @object_path: (nullable): where to export; %NULL for
 *   `/org/gsm/SessionManager1`
 * @error: return location for a #GError
 *
 * Publishes @list on @connection: at @object_path the
 * `org.gsm.SessionManager1` interface (the properties `SessionCount` and
 * `VmCount`, the methods `ListSessions`, `GetSession`, `GetStatistics` and
 * `CleanupStaleSessions`, the signals `VmRegistered`, `VmUnregistered`,
 * `SessionStale` and `SessionsChanged`) and an
 * `org.freedesktop.DBus.ObjectManager`; below it, one object per session
 * with the `org.gsm.SessionManager1.Session` interface.
 *
 * Reading is open to every caller. `CleanupStaleSessions` is only for
 * callers whose uid, as the bus (or the peer's socket) reports it, is this
 * process's effective uid; others get
 * `org.gsm.SessionManager1.Error.PermissionDenied`. Errors of the
 * %GSM_ERROR domain reach callers under the names registered for them.
 *
 * Method calls are handled in the thread-default main context of the
 * caller, which must be the one @manager and @list were created in.
 * Owning a bus name is up to the caller. A manager is exported on at most
 * one connection at a time; call gsmd_unexport() first to move it.
 *
 * Returns: %TRUE if the objects are exported; %FALSE with @error set if
 *   the manager is already exported, @object_path is not a valid object
 *   path, or the path is taken on @connection
 */
gboolean
gsmd_export (GsmSessionManager *manager,
             GsmSessionList    *list,
             GDBusConnection   *connection,
             const char        *object_path,
             GError           **error)
{
  Export *exp;
  guint   n;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (manager), FALSE);
  g_return_val_if_fail (GSM_IS_SESSION_LIST (list), FALSE);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (object_path == NULL)
    object_path = DEFAULT_OBJECT_PATH;

  if (!g_variant_is_object_path (object_path) || g_str_equal (object_path, "/"))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "“%s” is not a valid D-Bus object path for the registry", object_path);
      return FALSE;
    }

  exp = g_object_get_data (G_OBJECT (manager), export_key);
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
  exp->manager = manager;
  exp->list = g_object_ref (list);
  exp->connection = g_object_ref (connection);
  exp->object_path = g_strdup (object_path);
  exp->skeleton = _gsm_session_manager1_skeleton_new ();
  exp->objects = g_dbus_object_manager_server_new (object_path);
  exp->mirror = g_ptr_array_new_with_free_func (g_object_unref);
  exp->reported_stale = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  exp->added = g_ptr_array_new_with_free_func (g_free);
  exp->removed = g_ptr_array_new_with_free_func (g_free);

  _gsm_session_manager1_set_version (exp->skeleton, INTERFACE_VERSION);

  g_signal_connect (exp->skeleton, "handle-list-sessions", G_CALLBACK (handle_list_sessions), exp);
  g_signal_connect (exp->skeleton, "handle-get-session", G_CALLBACK (handle_get_session), exp);
  g_signal_connect (exp->skeleton, "handle-get-statistics", G_CALLBACK (handle_get_statistics), exp);
  g_signal_connect (exp->skeleton, "handle-cleanup-stale-sessions",
                    G_CALLBACK (handle_cleanup_stale_sessions), exp);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (exp->skeleton), connection,
                                         object_path, error))
    {
      g_prefix_error (error, "Cannot export the registry at %s: ", object_path);
      export_free (exp);
      return FALSE;
    }

  /* The sessions as they are now (not news: no signal), then every
   * change. */
  exp->populating = TRUE;
  n = g_list_model_get_n_items (G_LIST_MODEL (list));
  for (guint i = 0; i < n; i++)
    {
      GsmSession *session = g_list_model_get_item (G_LIST_MODEL (list), i);

      g_ptr_array_add (exp->mirror, session);
      if (!is_hidden (exp, session))
        session_added (exp, session);
    }
  exp->populating = FALSE;
  publish_counts (exp);
  g_dbus_object_manager_server_set_connection (exp->objects, connection);

  exp->items_id = g_signal_connect (list, "items-changed", G_CALLBACK (items_changed_cb), exp);
  exp->stale_id = g_signal_connect (manager, "session-stale", G_CALLBACK (session_stale_cb), exp);

  g_object_set_data_full (G_OBJECT (manager), export_key, exp, export_free);

  return TRUE;
}

/*
 * gsmd_unexport:
 * @manager: a #GsmSessionManager
 *
 * Stops publishing, if gsmd_export() did. Method calls already being
 * handled still get their reply.
 */
void
gsmd_unexport (GsmSessionManager *manager)
{
  g_return_if_fail (GSM_IS_SESSION_MANAGER (manager));

  g_object_set_data (G_OBJECT (manager), export_key, NULL);
}
