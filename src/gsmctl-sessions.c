/* gsmctl-sessions.c: gsmctl list, stats and cleanup
 *
 * Read without entering the registry (a GsmSessionList: nothing created,
 * no lock, no lease), or from gsmd with --bus. Sessions are sorted by
 * session id; gsmd's own session is never among them.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>

#include "gsm-config-private.h" /* _gsm_config_get_path */
#include "gsm-reaper-private.h" /* [reaper] auto */
#include "gsm-session-counts-private.h"
#include "gsm-session-private.h" /* showing a session as stale or unverifiable */
#include "gsmctl.h"

/* ---- reading the registry ----------------------------------------------- */

/* @s as list shows it: its recorded status, except "stale" for a session
 * proven dead here and "unverifiable" for one whose liveness cannot be
 * told here. */
static GsmSession *
shown_session (GsmSessionList *list,
               GsmSession     *s,
               double          now)
{
  if (_gsm_session_is_stale (s))
    return g_object_ref (s);
  switch (gsm_session_list_get_liveness (list, s))
    {
    case GSM_LIVENESS_DEAD:
      return _gsm_session_with_stale (s, now);
    case GSM_LIVENESS_UNVERIFIABLE:
      return _gsm_session_shown_as (s, GSM_STATUS_UNVERIFIABLE);
    case GSM_LIVENESS_ALIVE:
    default:
      return g_object_ref (s);
    }
}

/* The sessions of @list as list shows them, in the list's order (by
 * session id): session id → session. */
GHashTable *
gsmctl_shown_sessions (GsmSessionList *list)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  double      now = gsmctl_now ();
  guint       n = g_list_model_get_n_items (G_LIST_MODEL (list));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GsmSession) s = g_list_model_get_item (G_LIST_MODEL (list), i);
      GsmSession *shown = shown_session (list, s, now);

      g_hash_table_insert (table, (gpointer) gsm_session_get_session_id (shown), shown);
    }
  return table;
}

/* Where @list reads: the runtime directory, or etcd's URI. */
const char *
gsmctl_list_location (GsmSessionList *list)
{
  const char *dir = gsm_session_list_get_runtime_dir (list);

  return dir != NULL ? dir : gsm_session_list_get_etcd_uri (list);
}

/* The sessions as list shows them, sorted by session id. Fills @location
 * if not NULL. */
GPtrArray *
gsmctl_read_sessions (char   **location,
                      GError **error)
{
  g_autoptr (GsmSessionList) list = gsm_session_list_new (NULL, NULL, error);
  GPtrArray *sessions;
  double     now = gsmctl_now ();
  guint      n;

  if (list == NULL)
    return NULL;
  if (location != NULL)
    *location = g_strdup (gsmctl_list_location (list));
  n = g_list_model_get_n_items (G_LIST_MODEL (list));
  sessions = g_ptr_array_new_full (n, g_object_unref);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GsmSession) s = g_list_model_get_item (G_LIST_MODEL (list), i);

      g_ptr_array_add (sessions, shown_session (list, s, now));
    }
  return sessions;
}

/* ---- asking gsmd -------------------------------------------------------- */

static const char *
bus_name (void)
{
  return gsmctl_opt.system ? "system" : "session";
}

GDBusConnection *
gsmctl_bus_connect (void)
{
  g_autoptr (GError) error = NULL;
  GDBusConnection *connection;

  connection = g_bus_get_sync (gsmctl_opt.system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION, NULL,
                               &error);
  if (connection == NULL)
    gsmctl_error ("cannot connect to the %s bus: %s", bus_name (), error->message);
  return connection;
}

/* Calls @method of gsmd (starting it by bus activation if need be) and
 * returns its single out argument. */
static GVariant *
bus_call (const char *method,
          const char *out_type)
{
  g_autoptr (GDBusConnection) connection = gsmctl_bus_connect ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  g_autofree char *reply_type = g_strdup_printf ("(%s)", out_type);

  if (connection == NULL)
    return NULL;

  reply = g_dbus_connection_call_sync (connection, GSMCTL_BUS_NAME, GSMCTL_OBJECT_PATH,
                                       GSMCTL_INTERFACE, method, NULL,
                                       G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE, 10000,
                                       NULL, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      gsmctl_error ("%s.%s on the %s bus failed: %s", GSMCTL_INTERFACE, method, bus_name (),
                    error->message);
      return NULL;
    }

  return g_variant_get_child_value (reply, 0);
}

/* ---- list --------------------------------------------------------------- */

static const char *
dict_string (GVariant   *dict,
             const char *key)
{
  const char *value = NULL;

  g_variant_lookup (dict, key, "&s", &value);
  return value;
}

static gint64
dict_pid (GVariant *dict)
{
  g_autoptr (GVariant) value = g_variant_lookup_value (dict, "pid", NULL);

  if (value == NULL)
    return 0;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    return g_variant_get_int32 (value);
  return 0;
}

static int
compare_dicts (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (dict_string (*(GVariant **) a, "session_id"),
                    dict_string (*(GVariant **) b, "session_id"));
}

static guint
count_orphans (GPtrArray *dicts)
{
  guint n = 0;

  for (guint i = 0; i < dicts->len; i++)
    if (dict_string (dicts->pdata[i], "vm_id") != NULL &&
        g_strcmp0 (dict_string (dicts->pdata[i], "status"), GSM_STATUS_STALE) == 0)
      n++;
  return n;
}

/* Without [reaper] auto=true, what to say about orphans left waiting
 * (NULL if none wait, or reaping is on). */
static char *
orphans_waiting_notice (guint n_orphans)
{
  g_autofree char *config = NULL;

  if (n_orphans == 0 || _gsm_reaper_auto_enabled ())
    return NULL;
  config = _gsm_config_get_path ();
  return g_strdup_printf ("%u orphan VM%s of dead sessions %s waiting and nothing deletes "
                          "them automatically: run “gsmctl reap --yes”, or set auto=true in "
                          "[reaper] of %s so that gsmd deletes them (and reconciles the "
                          "cloud's inventory)",
                          n_orphans, n_orphans == 1 ? "" : "s",
                          n_orphans == 1 ? "is" : "are", config);
}

/* Prints sessions, given as their dictionaries sorted by session id. */
static void
print_sessions (GPtrArray *dicts)
{
  double now = gsmctl_now ();
  g_autoptr (GsmctlTable) table = NULL;
  g_autofree char *notice = NULL;

  if (gsmctl_opt.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_array (b);
      for (guint i = 0; i < dicts->len; i++)
        gsmctl_json_add_session (b, dicts->pdata[i]);
      json_builder_end_array (b);
      gsmctl_print_json (b);
      return;
    }

  if (dicts->len == 0)
    {
      printf ("No sessions.\n");
      return;
    }
  table = gsmctl_table_new ("SESSION", ">PID", "HOST", "STATUS", "VM", "ZONE", ">AGE", NULL);
  for (guint i = 0; i < dicts->len; i++)
    {
      GVariant        *dict = dicts->pdata[i];
      g_autofree char *pid = g_strdup_printf ("%" G_GINT64_FORMAT, dict_pid (dict));
      double           created_at = 0;
      g_autofree char *age = NULL;

      g_variant_lookup (dict, "created_at", "d", &created_at);
      age = gsmctl_format_age (MAX (now - created_at, 0));
      gsmctl_table_add_row (table, dict_string (dict, "session_id"), pid,
                            dict_string (dict, "hostname"), dict_string (dict, "status"),
                            dict_string (dict, "vm_id"), dict_string (dict, "zone"), age, NULL);
    }
  gsmctl_table_print (table);
  notice = orphans_waiting_notice (count_orphans (dicts));
  if (notice != NULL)
    printf ("\nNote: %s.\n", notice);
}

static GPtrArray *
list_dicts_from_bus (void)
{
  g_autoptr (GVariant) sessions = bus_call ("ListSessions", "aa{sv}");
  GPtrArray *dicts;

  if (sessions == NULL)
    return NULL;
  dicts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  for (gsize i = 0; i < g_variant_n_children (sessions); i++)
    g_ptr_array_add (dicts, g_variant_get_child_value (sessions, i));
  g_ptr_array_sort (dicts, compare_dicts);
  return dicts;
}

static GPtrArray *
list_dicts_from_registry (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) sessions = gsmctl_read_sessions (NULL, &error);
  GPtrArray *dicts;

  if (sessions == NULL)
    {
      gsmctl_gerror (error);
      return NULL;
    }
  dicts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  for (guint i = 0; i < sessions->len; i++)
    g_ptr_array_add (dicts, gsm_session_to_variant (sessions->pdata[i]));
  return dicts;
}

int
gsmctl_cmd_list (void)
{
  g_autoptr (GPtrArray) dicts = gsmctl_opt.bus ? list_dicts_from_bus ()
                                               : list_dicts_from_registry ();

  if (dicts == NULL)
    return GSMCTL_EXIT_FAILURE;
  print_sessions (dicts);
  return GSMCTL_EXIT_OK;
}

/* ---- stats -------------------------------------------------------------- */

/* @known is FALSE for what gsmd does not count (null in JSON). */
static void
add_count (JsonBuilder *b,
           const char  *member,
           guint        value,
           gboolean     known)
{
  json_builder_set_member_name (b, member);
  if (known)
    json_builder_add_int_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
print_stats (const char             *source,
             const char             *where,
             const GsmSessionCounts *c)
{
  gboolean         local = g_str_equal (source, "registry");
  gboolean         auto_reap = _gsm_reaper_auto_enabled ();
  g_autofree char *notice = NULL;

  if (gsmctl_opt.json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      gsmctl_json_add_string (b, "source", source);
      gsmctl_json_add_string (b, "runtime_dir", where);
      add_count (b, "sessions", c->sessions, TRUE);
      add_count (b, "active", c->active, TRUE);
      add_count (b, "creating", c->creating, TRUE);
      add_count (b, "stale", c->stale, TRUE);
      add_count (b, "unverifiable", c->unverifiable, local);
      add_count (b, "vms", c->vms, TRUE);
      add_count (b, "orphan_vms", c->orphan_vms, TRUE);
      add_count (b, "unverifiable_vms", c->unverifiable_vms, local);
      json_builder_set_member_name (b, "auto_reap");
      json_builder_add_boolean_value (b, auto_reap);
      json_builder_end_object (b);
      gsmctl_print_json (b);
      return;
    }

  printf ("Registry:    %s%s\n", where, local ? "" : " (served by gsmd)");
  if (local)
    {
      printf ("Sessions:    %u (%u active, %u creating, %u stale, %u unverifiable)\n",
              c->sessions, c->active, c->creating, c->stale, c->unverifiable);
      printf ("VMs:         %u (%u orphaned, %u of unverifiable sessions)\n", c->vms,
              c->orphan_vms, c->unverifiable_vms);
    }
  else
    {
      printf ("Sessions:    %u (%u active, %u creating, %u stale)\n", c->sessions, c->active,
              c->creating, c->stale);
      printf ("VMs:         %u (%u orphaned)\n", c->vms, c->orphan_vms);
    }
  printf ("Reaping:     %s\n", auto_reap ? "automatic ([reaper] auto=true)"
                                         : "off (gsmctl reap --yes, or [reaper] auto=true)");
  notice = orphans_waiting_notice (c->orphan_vms);
  if (notice != NULL)
    printf ("\nNote: %s.\n", notice);
}

/* gsmd's counters, and nothing else of its reply. */
static int
stats_from_bus (void)
{
  g_autoptr (GVariant) stats = bus_call ("GetStatistics", "a{sv}");
  GsmSessionCounts c = { 0 };

  if (stats == NULL)
    return GSMCTL_EXIT_FAILURE;
  g_variant_lookup (stats, "sessions", "u", &c.sessions);
  g_variant_lookup (stats, "active", "u", &c.active);
  g_variant_lookup (stats, "creating", "u", &c.creating);
  g_variant_lookup (stats, "stale", "u", &c.stale);
  g_variant_lookup (stats, "vms", "u", &c.vms);
  g_variant_lookup (stats, "orphan_vms", "u", &c.orphan_vms);
  print_stats ("gsmd", dict_string (stats, "runtime_dir"), &c);
  return GSMCTL_EXIT_OK;
}

int
gsmctl_cmd_stats (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) sessions = NULL;
  g_autofree char *where = NULL;
  GsmSessionCounts c = { 0 };

  if (gsmctl_opt.bus)
    return stats_from_bus ();

  sessions = gsmctl_read_sessions (&where, &error);
  if (sessions == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  for (guint i = 0; i < sessions->len; i++)
    _gsm_session_counts_add (&c, sessions->pdata[i]);
  print_stats ("registry", where, &c);
  return GSMCTL_EXIT_OK;
}

/* ---- cleanup ------------------------------------------------------------ */

/* The sessions found dead and not yet recorded: what a cleanup changes. */
static GPtrArray *
cleanup_plan (GError **error)
{
  g_autoptr (GsmSessionList) list = gsm_session_list_new (NULL, NULL, error);
  GPtrArray *plan;
  guint      n;

  if (list == NULL)
    return NULL;
  plan = g_ptr_array_new_with_free_func (g_object_unref);
  n = g_list_model_get_n_items (G_LIST_MODEL (list));
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GsmSession) s = g_list_model_get_item (G_LIST_MODEL (list), i);

      if (!_gsm_session_is_stale (s) &&
          gsm_session_list_get_liveness (list, s) == GSM_LIVENESS_DEAD)
        g_ptr_array_add (plan, g_steal_pointer (&s));
    }
  return plan;
}

/* After a cleanup: "done" if @s is gone or recorded stale, else why not. */
static const char *
cleanup_result (GsmSessionList *after,
                GsmSession     *s,
                const char    **reason)
{
  g_autoptr (GsmSession) now = gsm_session_list_lookup (after, gsm_session_get_session_id (s));

  *reason = NULL;
  if (now == NULL || _gsm_session_is_stale (now))
    return "done";
  *reason = "found alive again, or changed by another process meanwhile";
  return "skipped";
}

static void
print_cleanup_json (GPtrArray      *plan,
                    GsmSessionList *after)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; i < plan->len; i++)
    {
      GsmSession *s = plan->pdata[i];
      const char *reason = NULL;
      const char *result = after ? cleanup_result (after, s, &reason) : "planned";

      json_builder_begin_object (b);
      gsmctl_json_add_string (b, "session_id", gsm_session_get_session_id (s));
      json_builder_set_member_name (b, "pid");
      json_builder_add_int_value (b, gsm_session_get_pid (s));
      gsmctl_json_add_string (b, "hostname", gsm_session_get_hostname (s));
      gsmctl_json_add_string (b, "vm_id", gsm_session_get_vm_id (s));
      gsmctl_json_add_string (b, "action", gsm_session_get_has_vm (s) ? "mark-stale" : "remove");
      gsmctl_json_add_string (b, "result", result);
      gsmctl_json_add_string (b, "reason", reason);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  gsmctl_print_json (b);
}

static void
print_cleanup_plan (GPtrArray *plan)
{
  g_autoptr (GsmctlTable) table = NULL;

  if (plan->len == 0)
    {
      printf ("No dead sessions to clean up.\n");
      return;
    }
  printf ("Would clean up %u dead session%s (dry run; pass --yes to clean up):\n", plan->len,
          plan->len == 1 ? "" : "s");
  table = gsmctl_table_new ("ACTION", "SESSION", ">PID", "HOST", "VM", NULL);
  for (guint i = 0; i < plan->len; i++)
    {
      GsmSession      *s = plan->pdata[i];
      g_autofree char *pid = g_strdup_printf ("%d", gsm_session_get_pid (s));

      gsmctl_table_add_row (table, gsm_session_get_has_vm (s) ? "mark-stale" : "remove",
                            gsm_session_get_session_id (s), pid, gsm_session_get_hostname (s),
                            gsm_session_get_vm_id (s), NULL);
    }
  gsmctl_table_print (table);
}

int
gsmctl_cmd_cleanup (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) plan = cleanup_plan (&error);
  g_autoptr (GsmSessionList) after = NULL;
  int removed;

  if (plan == NULL && !gsmctl_opt.yes)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  /* A registry a reader cannot use (a damaged file): the cleanup itself
   * repairs it, and says so. */
  if (plan == NULL)
    {
      plan = g_ptr_array_new_with_free_func (g_object_unref);
      g_clear_error (&error);
    }
  if (!gsmctl_opt.yes)
    {
      if (gsmctl_opt.json)
        print_cleanup_json (plan, NULL);
      else
        print_cleanup_plan (plan);
      return GSMCTL_EXIT_OK;
    }

  removed = gsm_session_manager_cleanup_stale_sessions_sync (gsm_session_manager_get_default (),
                                                             NULL, &error);
  if (removed < 0)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  if (!gsmctl_opt.json)
    {
      printf ("Cleaned up %d stale session%s.\n", removed, removed == 1 ? "" : "s");
      return GSMCTL_EXIT_OK;
    }
  after = gsm_session_list_new (NULL, NULL, &error);
  if (after == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  print_cleanup_json (plan, after);
  return GSMCTL_EXIT_OK;
}
