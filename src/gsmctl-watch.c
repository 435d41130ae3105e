/* gsmctl-watch.c: gsmctl watch, events as they happen
 *
 * From gsmd's signals when it runs (or only from it, with --bus), else
 * from the registry through a GsmSessionList, which reads only. With
 * --json, a stream: one compact JSON object per line and per event (the
 * one output of gsmctl that is not a single document, as it never ends).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <signal.h>
#include <stdio.h>

#include <glib-unix.h>

#include "gsm-session-private.h"
#include "gsmctl.h"

typedef struct
{
  GMainLoop      *loop;
  GHashTable     *known; /* local mode: session id → GsmSession */
  GsmSessionList *list;  /* local mode: what is read */
} Watch;

/* One event, as a line of text or a JSON object. @vm_id and @zone may be
 * NULL; @added and @removed are for sessions-changed only; @detail_key,
 * if not NULL, names one more string member (@detail). */
static void
print_event_full (const char        *event,
                  const char        *session_id,
                  const char        *vm_id,
                  const char        *zone,
                  const char *const *added,
                  const char *const *removed,
                  const char        *detail_key,
                  const char        *detail)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_local ();

  if (gsmctl_opt.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "event");
      json_builder_add_string_value (b, event);
      json_builder_set_member_name (b, "time");
      json_builder_add_double_value (b, g_get_real_time () / (double) G_USEC_PER_SEC);
      if (session_id != NULL)
        {
          json_builder_set_member_name (b, "session_id");
          json_builder_add_string_value (b, session_id);
          json_builder_set_member_name (b, "vm_id");
          if (vm_id != NULL && *vm_id != '\0')
            json_builder_add_string_value (b, vm_id);
          else
            json_builder_add_null_value (b);
        }
      if (zone != NULL)
        {
          json_builder_set_member_name (b, "zone");
          json_builder_add_string_value (b, zone);
        }
      if (detail_key != NULL)
        {
          json_builder_set_member_name (b, detail_key);
          json_builder_add_string_value (b, detail);
        }
      for (guint k = 0; k < 2; k++)
        {
          const char *const *ids = k == 0 ? added : removed;

          if (ids == NULL)
            continue;
          json_builder_set_member_name (b, k == 0 ? "added" : "removed");
          json_builder_begin_array (b);
          for (guint i = 0; ids[i] != NULL; i++)
            json_builder_add_string_value (b, ids[i]);
          json_builder_end_array (b);
        }
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, FALSE);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *time = g_date_time_format (now, "%H:%M:%S.%f");

      time[12] = '\0'; /* milliseconds */
      if (added != NULL)
        printf ("%s  %-16s  +%u -%u\n", time, event, g_strv_length ((char **) added),
                g_strv_length ((char **) removed));
      else
        printf ("%s  %-16s  %s%s%s%s%s%s%s%s%s\n", time, event, session_id,
                vm_id && *vm_id ? "  vm " : "", vm_id && *vm_id ? vm_id : "",
                zone && *zone ? "  zone " : "", zone && *zone ? zone : "",
                detail_key ? "  " : "", detail_key ? detail_key : "", detail_key ? ": " : "",
                detail_key ? detail : "");
    }
  fflush (stdout);
}

static void
print_event (const char        *event,
             const char        *session_id,
             const char        *vm_id,
             const char        *zone,
             const char *const *added,
             const char *const *removed)
{
  print_event_full (event, session_id, vm_id, zone, added, removed, NULL, NULL);
}

static void
print_watching (const char *source,
                const char *where)
{
  if (gsmctl_opt.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "event");
      json_builder_add_string_value (b, "watching");
      json_builder_set_member_name (b, "source");
      json_builder_add_string_value (b, source);
      json_builder_set_member_name (b, "where");
      json_builder_add_string_value (b, where);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, FALSE);
      printf ("%s\n", text);
    }
  else
    printf ("Watching %s (%s); Ctrl+C to stop.\n", where, source);
  fflush (stdout);
}

static gboolean
watch_quit_cb (gpointer user_data)
{
  g_main_loop_quit (((Watch *) user_data)->loop);
  return G_SOURCE_CONTINUE;
}

/* -- from gsmd -- */

static void
bus_signal_cb (GDBusConnection *connection,
               const char      *sender,
               const char      *path,
               const char      *iface,
               const char      *member,
               GVariant        *params,
               gpointer         user_data)
{
  const char *id = NULL, *vm = NULL, *zone = NULL;

  if (g_str_equal (member, "VmRegistered") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")))
    {
      g_variant_get (params, "(&s&s&s)", &id, &vm, &zone);
      print_event ("vm-registered", id, vm, zone, NULL, NULL);
    }
  else if (g_str_equal (member, "VmUnregistered") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(ss)")))
    {
      g_variant_get (params, "(&s&s)", &id, &vm);
      print_event ("vm-unregistered", id, vm, NULL, NULL, NULL);
    }
  else if (g_str_equal (member, "SessionStale") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(ss)")))
    {
      g_variant_get (params, "(&s&s)", &id, &vm);
      print_event ("session-stale", id, vm, NULL, NULL, NULL);
    }
  else if (g_str_equal (member, "VmReaped") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(ssss)")))
    {
      const char *outcome = NULL;

      g_variant_get (params, "(&s&s&s&s)", &id, &vm, &zone, &outcome);
      print_event_full ("vm-reaped", id, vm, zone, NULL, NULL, "outcome", outcome);
    }
  else if (g_str_equal (member, "ReapFailed") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")))
    {
      const char *message = NULL;

      g_variant_get (params, "(&s&s&s)", &id, &vm, &message);
      print_event_full ("reap-failed", id, vm, NULL, NULL, NULL, "message", message);
    }
  else if (g_str_equal (member, "SessionsChanged") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(asas)")))
    {
      g_autofree const char **added = NULL;
      g_autofree const char **removed = NULL;

      g_variant_get (params, "(^a&s^a&s)", &added, &removed);
      print_event ("sessions-changed", NULL, NULL, NULL, added, removed);
    }
}

static void
name_vanished_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  gsmctl_error ("gsmd (%s) left the bus; waiting for it to return", name);
}

/* TRUE if gsmd runs, with the subscription in place; FALSE (and nothing
 * printed) if it does not. */
static gboolean
watch_bus (Watch           *watch,
           GDBusConnection *connection)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;
  gboolean has_owner = FALSE;
  guint    subscription, watch_id;

  /* Subscribe first, so that nothing between the check and the
   * subscription is lost. */
  subscription = g_dbus_connection_signal_subscribe (connection, GSMCTL_BUS_NAME, GSMCTL_INTERFACE, NULL, GSMCTL_OBJECT_PATH,
                                                     NULL, G_DBUS_SIGNAL_FLAGS_NONE, bus_signal_cb,
                                                     watch, NULL);
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", GSMCTL_BUS_NAME), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  if (!has_owner)
    {
      g_dbus_connection_signal_unsubscribe (connection, subscription);
      return FALSE;
    }

  watch_id = g_bus_watch_name_on_connection (connection, GSMCTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             NULL, name_vanished_cb, watch, NULL);
  print_watching ("bus", GSMCTL_BUS_NAME);
  g_main_loop_run (watch->loop);
  g_bus_unwatch_name (watch_id);
  g_dbus_connection_signal_unsubscribe (connection, subscription);
  return TRUE;
}

/* -- from the registry files -- */

static gboolean
is_stale (GsmSession *s)
{
  return _gsm_session_is_stale (s);
}

/* Reports how the registry differs from what was last seen. Sessions found
 * dead show as stale here even before anyone records it. */
static void
local_refresh (Watch *watch)
{
  g_autoptr (GHashTable) now = gsmctl_shown_sessions (watch->list);
  g_autoptr (GPtrArray) added = g_ptr_array_new ();
  g_autoptr (GPtrArray) removed = g_ptr_array_new ();
  guint          n = g_list_model_get_n_items (G_LIST_MODEL (watch->list));
  GHashTableIter iter;
  gpointer       key, value;
  gboolean       changed = FALSE;

  g_hash_table_iter_init (&iter, watch->known);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (now, key))
      {
        if (gsm_session_get_has_vm (value))
          print_event ("vm-unregistered", key, gsm_session_get_vm_id (value), NULL, NULL, NULL);
        g_ptr_array_add (removed, key);
      }

  /* In the list's order: by session id. */
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GsmSession) item = g_list_model_get_item (G_LIST_MODEL (watch->list), i);
      GsmSession *s = g_hash_table_lookup (now, gsm_session_get_session_id (item));
      const char *id = gsm_session_get_session_id (s); /* lives as long as @now */
      GsmSession *old = g_hash_table_lookup (watch->known, id);
      const char *old_vm = old ? gsm_session_get_vm_id (old) : NULL;
      const char *new_vm = gsm_session_get_vm_id (s);

      if (old == NULL)
        g_ptr_array_add (added, (gpointer) id);
      if (g_strcmp0 (old_vm, new_vm) != 0)
        {
          if (old_vm != NULL)
            print_event ("vm-unregistered", id, old_vm, NULL, NULL, NULL);
          if (new_vm != NULL)
            print_event ("vm-registered", id, new_vm, gsm_session_get_zone (s), NULL, NULL);
          changed = TRUE;
        }
      if (is_stale (s) && (old == NULL || !is_stale (old)))
        {
          print_event ("session-stale", id, new_vm, NULL, NULL, NULL);
          changed = TRUE;
        }
    }

  if (added->len > 0 || removed->len > 0 || changed)
    {
      g_ptr_array_add (added, NULL);
      g_ptr_array_add (removed, NULL);
      print_event ("sessions-changed", NULL, NULL, NULL, (const char *const *) added->pdata,
                   (const char *const *) removed->pdata);
    }

  /* The ids in added/removed point into the tables: swap them last. */
  g_hash_table_unref (watch->known);
  watch->known = g_steal_pointer (&now);
}

static void
list_changed_cb (GListModel *model,
                 guint       position,
                 guint       removed,
                 guint       added,
                 Watch      *watch)
{
  local_refresh (watch);
}

static gboolean
local_poll_cb (gpointer user_data)
{
  local_refresh (user_data);
  return G_SOURCE_CONTINUE;
}

/* Through a GsmSessionList: gsmctl reads only, and never enters a
 * session (no lock, no lease). */
static int
watch_local (Watch *watch)
{
  g_autoptr (GError) error = NULL;
  gulong handler;
  guint  poll_id;

  watch->list = gsm_session_list_new (NULL, NULL, &error);
  if (watch->list == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }

  watch->known = gsmctl_shown_sessions (watch->list);

  /* The list tells of every change; the poll finds processes that died
   * without anyone writing the registry. */
  handler = g_signal_connect (watch->list, "items-changed", G_CALLBACK (list_changed_cb), watch);
  poll_id = g_timeout_add_seconds (1, local_poll_cb, watch);
  print_watching ("local", gsmctl_list_location (watch->list));
  g_main_loop_run (watch->loop);
  g_source_remove (poll_id);
  g_signal_handler_disconnect (watch->list, handler);
  g_clear_pointer (&watch->known, g_hash_table_unref);
  g_clear_object (&watch->list);

  return 0;
}

int
gsmctl_cmd_watch (void)
{
  Watch watch = { 0 };
  g_autoptr (GDBusConnection) connection = NULL;
  int   status = 0;
  guint sigint_id, sigterm_id;

  watch.loop = g_main_loop_new (NULL, FALSE);
  sigint_id = g_unix_signal_add (SIGINT, watch_quit_cb, &watch);
  sigterm_id = g_unix_signal_add (SIGTERM, watch_quit_cb, &watch);

  if (!gsmctl_opt.local)
    {
      if (gsmctl_opt.bus)
        connection = gsmctl_bus_connect ();
      else
        connection = g_bus_get_sync (gsmctl_opt.system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION, NULL, NULL);
    }

  if (connection != NULL && watch_bus (&watch, connection))
    status = 0;
  else if (gsmctl_opt.bus)
    {
      if (connection != NULL)
        gsmctl_error ("gsmd (%s) does not run on the %s bus", GSMCTL_BUS_NAME,
                      gsmctl_opt.system ? "system" : "session");
      status = 1;
    }
  else
    status = watch_local (&watch);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  g_main_loop_unref (watch.loop);
  return status;
}
