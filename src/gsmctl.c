/* gsmctl.c: look at and clean up the session registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "gsm.h"
#include "gsm-audit-private.h"      /* reading the audit log */
#include "gsm-etcd-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-config-private.h"
#include "gsm-reaper-private.h"     /* [reaper] auto */
#include "gsm-session-manager-private.h" /* every entry, as cleanup and reap see it */
#include "gsm-session-private.h"    /* showing a session as stale or unverifiable */

#define BUS_NAME "org.gsm.SessionManager1"
#define OBJECT_PATH "/org/gsm/SessionManager1"
#define INTERFACE "org.gsm.SessionManager1"

static gboolean opt_json = FALSE;
static gboolean opt_dry_run = FALSE;
static gboolean opt_yes = FALSE;
static gboolean opt_bus = FALSE;
static gboolean opt_local = FALSE;
static gboolean opt_system = FALSE;
static gboolean opt_unverifiable = FALSE;
static double opt_older_than = 0;

static const GOptionEntry list_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { "bus", 'b', 0, G_OPTION_ARG_NONE, &opt_bus, "Ask gsmd (" BUS_NAME ") instead of reading the registry", NULL },
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "With --bus: use the system bus", NULL },
  { NULL }
};

static const GOptionEntry watch_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print one JSON object per event", NULL },
  { "bus", 'b', 0, G_OPTION_ARG_NONE, &opt_bus, "Only from gsmd; fail if it does not run", NULL },
  { "local", 'l', 0, G_OPTION_ARG_NONE, &opt_local, "Watch the registry files, even if gsmd runs", NULL },
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "Look for gsmd on the system bus", NULL },
  { NULL }
};

static const GOptionEntry cleanup_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { "dry-run", 'n', 0, G_OPTION_ARG_NONE, &opt_dry_run, "Only show what would be cleaned up", NULL },
  { NULL }
};

static const GOptionEntry reconcile_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { "yes", 'y', 0, G_OPTION_ARG_NONE, &opt_yes,
    "Record what the inventory shows and delete the orphans found (default: only report)", NULL },
  { NULL }
};

static const GOptionEntry history_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print the log's JSON lines", NULL },
  { NULL }
};

static const GOptionEntry reap_entries[] = {
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { "yes", 'y', 0, G_OPTION_ARG_NONE, &opt_yes, "Delete the VMs listed (default: only list them)", NULL },
  { "unverifiable", 0, 0, G_OPTION_ARG_NONE, &opt_unverifiable,
    "Also the VMs of sessions whose liveness cannot be verified here (another host, no start "
    "time), older than --older-than: their processes may be alive", NULL },
  { "older-than", 0, 0, G_OPTION_ARG_DOUBLE, &opt_older_than,
    "With --unverifiable: the age of such a session, in seconds", "SECONDS" },
  { NULL }
};

static int
compare_sessions (gconstpointer a,
                  gconstpointer b)
{
  GsmSession *x = *(GsmSession **) a, *y = *(GsmSession **) b;
  double d = gsm_session_get_created_at (x) - gsm_session_get_created_at (y);

  return d < 0 ? -1 : d > 0 ? 1 : g_strcmp0 (gsm_session_get_session_id (x),
                                              gsm_session_get_session_id (y));
}

/* The sessions of @table other than gsmctl's own, oldest first. */
static GPtrArray *
sorted_sessions (GHashTable *table,
                 const char *self_id)
{
  GPtrArray *array = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_strcmp0 (gsm_session_get_session_id (value), self_id) != 0)
      g_ptr_array_add (array, g_object_ref (value));
  g_ptr_array_sort (array, compare_sessions);

  return array;
}

static void
print_json_array (GPtrArray *sessions)
{
  g_autoptr(GString) out = g_string_new ("[");

  for (guint i = 0; i < sessions->len; i++)
    {
      g_autofree char *text = gsm_session_to_json (sessions->pdata[i]);

      g_string_append (out, i ? ",\n  " : "\n  ");
      g_string_append (out, text);
    }
  g_string_append (out, sessions->len ? "\n]\n" : "]\n");
  fputs (out->str, stdout);
}

static char *
format_age (double seconds)
{
  if (seconds < 120)
    return g_strdup_printf ("%.0fs", seconds);
  if (seconds < 7200)
    return g_strdup_printf ("%.0fm", seconds / 60);
  return g_strdup_printf ("%.1fh", seconds / 3600);
}

static void
print_header (void)
{
  printf ("%-8s  %7s  %-16s  %-12s  %-24s  %-16s  %s\n",
          "SESSION", "PID", "HOST", "STATUS", "VM", "ZONE", "AGE");
}

static void
print_row (const char *session_id,
           int         pid,
           const char *hostname,
           const char *status,
           const char *vm_id,
           const char *zone,
           double      created_at)
{
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  g_autofree char *age = format_age (now - created_at);

  printf ("%-8.8s  %7d  %-16.16s  %-12s  %-24.24s  %-16.16s  %s\n",
          session_id, pid, hostname, status, vm_id ? vm_id : "-", zone ? zone : "-", age);
}

static void
print_table (GPtrArray *sessions)
{
  if (sessions->len == 0)
    {
      printf ("No sessions.\n");
      return;
    }

  print_header ();
  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];

      print_row (gsm_session_get_session_id (s), gsm_session_get_pid (s),
                 gsm_session_get_hostname (s), gsm_session_get_status (s),
                 gsm_session_get_vm_id (s), gsm_session_get_zone (s),
                 gsm_session_get_created_at (s));
    }
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
                          "cloud's inventory)", n_orphans, n_orphans == 1 ? "" : "s",
                          n_orphans == 1 ? "is" : "are", config);
}

static guint
count_orphans (GPtrArray *sessions)
{
  guint n = 0;

  for (guint i = 0; i < sessions->len; i++)
    if (gsm_session_get_has_vm (sessions->pdata[i]) &&
        g_strcmp0 (gsm_session_get_status (sessions->pdata[i]), "stale") == 0)
      n++;
  return n;
}

/* ---- reading the registry ---------------------------------------------- */

/*
 * The sessions of @list as list shows them: session id → session, whose
 * status is the recorded one, except "stale" for a session proven dead
 * here and "unverifiable" for one whose liveness cannot be told here.
 */
static GHashTable *
shown_sessions (GsmSessionList *list)
{
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (list));

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GsmSession) s = g_list_model_get_item (G_LIST_MODEL (list), i);
      GsmSession *shown;

      if (g_strcmp0 (gsm_session_get_status (s), GSM_STATUS_STALE) == 0)
        shown = g_object_ref (s);
      else
        switch (gsm_session_list_get_liveness (list, s))
          {
          case GSM_LIVENESS_DEAD:
            shown = _gsm_session_with_stale (s, now);
            break;
          case GSM_LIVENESS_UNVERIFIABLE:
            shown = _gsm_session_shown_as (s, GSM_STATUS_UNVERIFIABLE);
            break;
          case GSM_LIVENESS_ALIVE:
          default:
            shown = g_object_ref (s);
            break;
          }
      g_hash_table_insert (table, (gpointer) gsm_session_get_session_id (shown), shown);
    }

  return table;
}

/* Where @list reads: the runtime directory, or etcd's URI. */
static const char *
list_location (GsmSessionList *list)
{
  const char *dir = gsm_session_list_get_runtime_dir (list);

  return dir != NULL ? dir : gsm_session_list_get_etcd_uri (list);
}

/*
 * Lists the sessions without entering the registry (a GsmSessionList):
 * on files it works on a read-only directory and creates nothing, on etcd
 * it takes no lease and writes nothing. Fills @location if not NULL.
 */
static GHashTable *
read_sessions (char    **location,
               GError  **error)
{
  g_autoptr(GsmSessionList) list = NULL;

  list = gsm_session_list_new (NULL, NULL, error);
  if (list == NULL)
    return NULL;
  if (location != NULL)
    *location = g_strdup (list_location (list));
  return shown_sessions (list);
}

/* ---- asking gsmd ------------------------------------------------------- */

static GDBusConnection *
bus_connect (void)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_bus_get_sync (opt_system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION, NULL, &error);
  if (connection == NULL)
    g_printerr ("gsmctl: cannot connect to the %s bus: %s\n", opt_system ? "system" : "session",
                error->message);
  return connection;
}

/* Calls @method of gsmd (starting it by bus activation if need be) and
 * returns its single out argument. */
static GVariant *
bus_call (const char *method,
          const char *out_type)
{
  g_autoptr(GDBusConnection) connection = bus_connect ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *reply_type = g_strdup_printf ("(%s)", out_type);

  if (connection == NULL)
    return NULL;

  reply = g_dbus_connection_call_sync (connection, BUS_NAME, OBJECT_PATH, INTERFACE, method, NULL,
                                       G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE, 10000,
                                       NULL, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr ("gsmctl: %s.%s on the %s bus failed: %s\n", INTERFACE, method,
                  opt_system ? "system" : "session", error->message);
      return NULL;
    }

  return g_variant_get_child_value (reply, 0);
}

static const char *
dict_string (GVariant   *dict,
             const char *key)
{
  const char *value = NULL;

  g_variant_lookup (dict, key, "&s", &value);
  return value;
}

static void
print_json_variant (GVariant *value,
                    gboolean  pretty)
{
  g_autoptr(JsonNode) node = json_gvariant_serialize (value);
  g_autofree char *text = json_to_string (node, pretty);

  printf ("%s\n", text);
}

static int
list_from_bus (void)
{
  g_autoptr(GVariant) sessions = bus_call ("ListSessions", "aa{sv}");
  gsize n;

  if (sessions == NULL)
    return 1;
  n = g_variant_n_children (sessions);

  if (opt_json)
    {
      g_autoptr(GString) out = g_string_new ("[");

      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) dict = g_variant_get_child_value (sessions, i);
          g_autoptr(JsonNode) node = json_gvariant_serialize (dict);
          g_autofree char *text = json_to_string (node, FALSE);

          g_string_append (out, i ? ",\n  " : "\n  ");
          g_string_append (out, text);
        }
      g_string_append (out, n ? "\n]\n" : "]\n");
      fputs (out->str, stdout);
      return 0;
    }

  if (n == 0)
    {
      printf ("No sessions.\n");
      return 0;
    }
  print_header ();
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) dict = g_variant_get_child_value (sessions, i);
      guint32 pid = 0;
      double created_at = 0;

      g_variant_lookup (dict, "pid", "u", &pid);
      g_variant_lookup (dict, "created_at", "d", &created_at);
      print_row (dict_string (dict, "session_id"), pid, dict_string (dict, "hostname"),
                 dict_string (dict, "status"), dict_string (dict, "vm_id"),
                 dict_string (dict, "zone"), created_at);
    }
  return 0;
}

static int
stats_from_bus (void)
{
  g_autoptr(GVariant) stats = bus_call ("GetStatistics", "a{sv}");
  guint32 sessions = 0, active = 0, creating = 0, stale = 0, vms = 0, orphans = 0;

  if (stats == NULL)
    return 1;

  if (opt_json)
    {
      print_json_variant (stats, TRUE);
      return 0;
    }

  g_variant_lookup (stats, "sessions", "u", &sessions);
  g_variant_lookup (stats, "active", "u", &active);
  g_variant_lookup (stats, "stale", "u", &stale);
  g_variant_lookup (stats, "vms", "u", &vms);
  g_variant_lookup (stats, "orphan_vms", "u", &orphans);
  g_variant_lookup (stats, "creating", "u", &creating);
  printf ("Registry:    %s (served by gsmd)\n", dict_string (stats, "runtime_dir"));
  printf ("Sessions:    %u (%u active, %u creating, %u stale)\n", sessions, active, creating, stale);
  printf ("VMs:         %u (%u orphaned)\n", vms, orphans);
  return 0;
}

static int
cmd_list (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GPtrArray) sessions = NULL;

  if (opt_bus)
    return list_from_bus ();

  table = read_sessions (NULL, &error);
  if (table == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  sessions = sorted_sessions (table, NULL);
  if (opt_json)
    print_json_array (sessions);
  else
    {
      g_autofree char *notice = orphans_waiting_notice (count_orphans (sessions));

      print_table (sessions);
      if (notice != NULL)
        printf ("\nNote: %s.\n", notice);
    }

  return 0;
}

static int
cmd_cleanup (void)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr(GError) error = NULL;
  int removed;

  if (opt_dry_run)
    {
      g_autoptr(GHashTable) table = NULL;
      g_autoptr(GPtrArray) all = NULL;
      g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func (g_object_unref);

      table = _gsm_session_manager_list_sessions_sync (manager, NULL, &error);
      if (table == NULL)
        {
          g_printerr ("gsmctl: %s\n", error->message);
          return 1;
        }
      all = sorted_sessions (table, gsm_session_manager_get_session_id (manager));
      for (guint i = 0; i < all->len; i++)
        if (g_strcmp0 (gsm_session_get_status (all->pdata[i]), "stale") == 0)
          g_ptr_array_add (stale, g_object_ref (all->pdata[i]));

      if (opt_json)
        print_json_array (stale);
      else if (stale->len == 0)
        printf ("No stale sessions.\n");
      else
        for (guint i = 0; i < stale->len; i++)
          {
            GsmSession *s = stale->pdata[i];

            printf ("would %s session %s (pid %d on %s)%s%s\n",
                    gsm_session_get_has_vm (s) ? "mark stale" : "remove",
                    gsm_session_get_session_id (s), gsm_session_get_pid (s),
                    gsm_session_get_hostname (s),
                    gsm_session_get_has_vm (s) ? ", keeping orphan VM " : "",
                    gsm_session_get_has_vm (s) ? gsm_session_get_vm_id (s) : "");
          }
      return 0;
    }

  removed = gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error);
  if (removed < 0)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  if (opt_json)
    printf ("{\"stale_sessions\": %d}\n", removed);
  else
    printf ("Cleaned up %d stale session%s.\n", removed, removed == 1 ? "" : "s");

  return 0;
}

static int
cmd_stats (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) table = NULL;
  g_autoptr(GPtrArray) sessions = NULL;
  g_autofree char *dir = NULL;
  guint n_active = 0, n_stale = 0, n_unverifiable = 0, n_vms = 0, n_orphans = 0;
  guint n_unverifiable_vms = 0;

  if (opt_bus)
    return stats_from_bus ();

  table = read_sessions (&dir, &error);
  if (table == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }
  sessions = sorted_sessions (table, NULL);
  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];
      gboolean stale = g_strcmp0 (gsm_session_get_status (s), "stale") == 0;
      gboolean unverifiable = g_strcmp0 (gsm_session_get_status (s), "unverifiable") == 0;

      if (stale)
        n_stale++;
      else if (unverifiable)
        n_unverifiable++;
      else
        n_active++;
      if (gsm_session_get_has_vm (s))
        {
          n_vms++;
          if (stale)
            n_orphans++;
          if (unverifiable)
            n_unverifiable_vms++;
        }
    }

  if (opt_json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "runtime_dir");
      json_builder_add_string_value (b, dir);
      json_builder_set_member_name (b, "sessions");
      json_builder_add_int_value (b, sessions->len);
      json_builder_set_member_name (b, "active");
      json_builder_add_int_value (b, n_active);
      json_builder_set_member_name (b, "stale");
      json_builder_add_int_value (b, n_stale);
      json_builder_set_member_name (b, "unverifiable");
      json_builder_add_int_value (b, n_unverifiable);
      json_builder_set_member_name (b, "vms");
      json_builder_add_int_value (b, n_vms);
      json_builder_set_member_name (b, "orphan_vms");
      json_builder_add_int_value (b, n_orphans);
      json_builder_set_member_name (b, "unverifiable_vms");
      json_builder_add_int_value (b, n_unverifiable_vms);
      json_builder_set_member_name (b, "auto_reap");
      json_builder_add_boolean_value (b, _gsm_reaper_auto_enabled ());
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, TRUE);
      printf ("%s\n", text);
    }
  else
    {
      printf ("Registry:    %s\n", dir);
      printf ("Sessions:    %u (%u active, %u stale, %u unverifiable)\n", sessions->len, n_active,
              n_stale, n_unverifiable);
      g_autofree char *notice = orphans_waiting_notice (n_orphans);

      printf ("VMs:         %u (%u orphaned, %u of unverifiable sessions)\n", n_vms, n_orphans,
              n_unverifiable_vms);
      printf ("Reaping:     %s\n", _gsm_reaper_auto_enabled ()
                                     ? "automatic ([reaper] auto=true)"
                                     : "off (gsmctl reap --yes, or [reaper] auto=true)");
      if (notice != NULL)
        printf ("\nNote: %s.\n", notice);
    }

  return 0;
}

/* ---- watch ------------------------------------------------------------- */

typedef struct
{
  GMainLoop  *loop;
  GHashTable *known;     /* local mode: session id → GsmSession */
  GsmSessionList *list;  /* local mode: what is read */
} Watch;

/* One event, as a line of text or a JSON object. @vm_id and @zone may be
 * NULL; @added and @removed are for sessions-changed only; @detail_key,
 * if not NULL, names one more string member (@detail). */
static void
print_event_full (const char         *event,
                  const char         *session_id,
                  const char         *vm_id,
                  const char         *zone,
                  const char * const *added,
                  const char * const *removed,
                  const char         *detail_key,
                  const char         *detail)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  if (opt_json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
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
          const char * const *ids = k == 0 ? added : removed;

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

      time[12] = '\0';   /* milliseconds */
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
print_event (const char         *event,
             const char         *session_id,
             const char         *vm_id,
             const char         *zone,
             const char * const *added,
             const char * const *removed)
{
  print_event_full (event, session_id, vm_id, zone, added, removed, NULL, NULL);
}

static void
print_watching (const char *source,
                const char *where)
{
  if (opt_json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
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
  g_printerr ("gsmctl: gsmd (%s) left the bus; waiting for it to return\n", name);
}

/* TRUE if gsmd runs, with the subscription in place; FALSE (and nothing
 * printed) if it does not. */
static gboolean
watch_bus (Watch           *watch,
           GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean has_owner = FALSE;
  guint subscription, watch_id;

  /* Subscribe first, so that nothing between the check and the
   * subscription is lost. */
  subscription = g_dbus_connection_signal_subscribe (connection, BUS_NAME, INTERFACE, NULL, OBJECT_PATH,
                                                     NULL, G_DBUS_SIGNAL_FLAGS_NONE, bus_signal_cb,
                                                     watch, NULL);
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", BUS_NAME), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  if (!has_owner)
    {
      g_dbus_connection_signal_unsubscribe (connection, subscription);
      return FALSE;
    }

  watch_id = g_bus_watch_name_on_connection (connection, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                             NULL, name_vanished_cb, watch, NULL);
  print_watching ("bus", BUS_NAME);
  g_main_loop_run (watch->loop);
  g_bus_unwatch_name (watch_id);
  g_dbus_connection_signal_unsubscribe (connection, subscription);
  return TRUE;
}

/* -- from the registry files -- */

static GHashTable *
list_others (Watch    *watch,
             GError  **error)
{
  return shown_sessions (watch->list);
}

static gboolean
is_stale (GsmSession *s)
{
  return g_strcmp0 (gsm_session_get_status (s), "stale") == 0;
}

/* Reports how the registry differs from what was last seen. Sessions found
 * dead show as stale here even before anyone records it. */
static void
local_refresh (Watch *watch)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) now = list_others (watch, &error);
  g_autoptr(GPtrArray) added = g_ptr_array_new ();
  g_autoptr(GPtrArray) removed = g_ptr_array_new ();
  g_autoptr(GPtrArray) sessions = NULL;
  GHashTableIter iter;
  gpointer key, value;
  gboolean changed = FALSE;

  if (now == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return;
    }

  g_hash_table_iter_init (&iter, watch->known);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (!g_hash_table_contains (now, key))
      {
        if (gsm_session_get_has_vm (value))
          print_event ("vm-unregistered", key, gsm_session_get_vm_id (value), NULL, NULL, NULL);
        g_ptr_array_add (removed, key);
      }

  sessions = sorted_sessions (now, NULL);
  for (guint i = 0; i < sessions->len; i++)
    {
      GsmSession *s = sessions->pdata[i];
      const char *id = gsm_session_get_session_id (s);
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
      print_event ("sessions-changed", NULL, NULL, NULL, (const char * const *) added->pdata,
                   (const char * const *) removed->pdata);
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
  g_autoptr(GError) error = NULL;
  gulong handler;
  guint poll_id;

  watch->list = gsm_session_list_new (NULL, NULL, &error);
  if (watch->list == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  watch->known = list_others (watch, &error);
  if (watch->known == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      g_clear_object (&watch->list);
      return 1;
    }

  /* The list tells of every change; the poll finds processes that died
   * without anyone writing the registry. */
  handler = g_signal_connect (watch->list, "items-changed", G_CALLBACK (list_changed_cb), watch);
  poll_id = g_timeout_add_seconds (1, local_poll_cb, watch);
  print_watching ("local", list_location (watch->list));
  g_main_loop_run (watch->loop);
  g_source_remove (poll_id);
  g_signal_handler_disconnect (watch->list, handler);
  g_clear_pointer (&watch->known, g_hash_table_unref);
  g_clear_object (&watch->list);

  return 0;
}

static int
cmd_watch (void)
{
  Watch watch = { 0 };
  g_autoptr(GDBusConnection) connection = NULL;
  int status = 0;
  guint sigint_id, sigterm_id;

  watch.loop = g_main_loop_new (NULL, FALSE);
  sigint_id = g_unix_signal_add (SIGINT, watch_quit_cb, &watch);
  sigterm_id = g_unix_signal_add (SIGTERM, watch_quit_cb, &watch);

  if (!opt_local)
    {
      if (opt_bus)
        connection = bus_connect ();
      else
        connection = g_bus_get_sync (opt_system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION, NULL, NULL);
    }

  if (connection != NULL && watch_bus (&watch, connection))
    status = 0;
  else if (opt_bus)
    {
      if (connection != NULL)
        g_printerr ("gsmctl: gsmd (%s) does not run on the %s bus\n", BUS_NAME,
                    opt_system ? "system" : "session");
      status = 1;
    }
  else
    status = watch_local (&watch);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  g_main_loop_unref (watch.loop);
  return status;
}

/* ---- reap and history ---- */

static void
print_orphan (GsmSession *s,
              double      now)
{
  g_autofree char *age = NULL;

  /* Listed with --unverifiable: its liveness could not be verified here
   * (another host, or no start time), only its age. */
  if (opt_unverifiable &&
      (gsm_session_get_start_time (s) == 0 ||
       g_strcmp0 (gsm_session_get_hostname (s),
                  gsm_session_manager_get_hostname (gsm_session_manager_get_default ())) != 0))
    {
      age = format_age (MAX (now - gsm_session_get_created_at (s), 0));
      printf ("  %-24s  %-16s  session %s (pid %d on %s), liveness unverifiable, %s old\n",
              gsm_session_get_vm_id (s), gsm_session_get_zone (s) ? gsm_session_get_zone (s) : "-",
              gsm_session_get_session_id (s), gsm_session_get_pid (s), gsm_session_get_hostname (s),
              age);
      return;
    }

  age = format_age (MAX (now - gsm_session_get_stale_since (s), 0));
  printf ("  %-24s  %-16s  session %s (pid %d on %s), dead for %s\n",
          gsm_session_get_vm_id (s), gsm_session_get_zone (s) ? gsm_session_get_zone (s) : "-",
          gsm_session_get_session_id (s), gsm_session_get_pid (s), gsm_session_get_hostname (s),
          age);
}

/* Why a stale session's VM is not on the list, from its registry entry. */
static char *
explain_waiting (GsmSession *s,
                 GsmReaper  *reaper,
                 double      now)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *text = gsm_session_to_json (s);
  JsonObject *entry, *attempts = NULL, *claim = NULL;
  /* Times from a clock that was ahead count from now, as the reaper's. */
  double stale_since = MIN (gsm_session_get_stale_since (s), now);
  double grace = gsm_reaper_get_grace_period (reaper);
  double next_retry;

  if (json_parser_load_from_data (parser, text, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      JsonNode *node;

      entry = json_node_get_object (json_parser_get_root (parser));
      node = json_object_get_member (entry, "reap_attempts");
      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        attempts = json_node_get_object (node);
      node = json_object_get_member (entry, "reap_claim");
      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        claim = json_node_get_object (node);
    }

  if (now - stale_since < grace)
    return g_strdup_printf ("grace period, %.0f s left", grace - (now - stale_since) + 0.5);
  next_retry = attempts == NULL ? 0 :
    MIN (json_object_get_double_member_with_default (attempts, "next_retry_at", 0),
         now + gsm_reaper_get_max_backoff (reaper));
  if (next_retry > now)
    return g_strdup_printf ("%" G_GINT64_FORMAT " failed attempt(s), next in %.0f s; last error: %s",
                            json_object_get_int_member_with_default (attempts, "count", 0),
                            next_retry - now + 0.5,
                            json_object_get_string_member_with_default (attempts, "last_error", "?"));
  if (claim != NULL)
    return g_strdup_printf ("being deleted by the reaper pid %" G_GINT64_FORMAT " on %s",
                            json_object_get_int_member_with_default (claim, "pid", 0),
                            json_object_get_string_member_with_default (claim, "host", "?"));
  return g_strdup ("its owner's liveness cannot be verified here (another host, or no start "
                   "time recorded; see --unverifiable), or it was found alive again");
}

typedef struct
{
  JsonBuilder *json;     /* results, with --json */
  guint        skipped;
} ReapReport;

static void
vm_reaped_cb (GsmReaper         *reaper,
              GsmSession             *vm,
              GsmProviderResult *result,
              ReapReport        *report)
{
  const char *outcome = gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result));

  if (report->json)
    {
      json_builder_begin_object (report->json);
      json_builder_set_member_name (report->json, "vm");
      json_builder_add_string_value (report->json, gsm_session_get_vm_id (vm));
      json_builder_set_member_name (report->json, "result");
      json_builder_add_string_value (report->json, outcome);
      json_builder_end_object (report->json);
    }
  else
    printf ("%s %s (%s)\n",
            gsm_provider_result_get_outcome (result) == GSM_PROVIDER_OUTCOME_DELETED
              ? "deleted" : "gone   ",
            gsm_session_get_vm_id (vm), outcome);
}

static void
reap_failed_cb (GsmReaper  *reaper,
                GsmSession      *vm,
                GError     *error,
                ReapReport *report)
{
  if (report->json)
    {
      json_builder_begin_object (report->json);
      json_builder_set_member_name (report->json, "vm");
      json_builder_add_string_value (report->json, gsm_session_get_vm_id (vm));
      json_builder_set_member_name (report->json, "result");
      json_builder_add_string_value (report->json, "failed");
      json_builder_set_member_name (report->json, "error");
      json_builder_add_string_value (report->json, error->message);
      json_builder_end_object (report->json);
    }
  else
    printf ("FAILED  %s: %s\n", gsm_session_get_vm_id (vm), error->message);
}

static void
reap_skipped_cb (GsmReaper  *reaper,
                 GsmSession      *vm,
                 const char *reason,
                 ReapReport *report)
{
  report->skipped++;
  if (report->json)
    {
      json_builder_begin_object (report->json);
      json_builder_set_member_name (report->json, "vm");
      json_builder_add_string_value (report->json, gsm_session_get_vm_id (vm));
      json_builder_set_member_name (report->json, "result");
      json_builder_add_string_value (report->json, "skipped");
      json_builder_set_member_name (report->json, "reason");
      json_builder_add_string_value (report->json, reason);
      json_builder_end_object (report->json);
    }
  else
    printf ("skipped %s: %s\n", gsm_session_get_vm_id (vm), reason);
}

static int
cmd_reap (void)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GsmProvider) provider = NULL;
  g_autoptr(GsmReaper) reaper = NULL;
  g_autoptr(GPtrArray) orphans = NULL;
  g_autoptr(GHashTable) table = NULL;
  ReapReport report = { NULL, 0 };
  g_autoptr(GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  guint reaped = 0, failed = 0, waiting = 0;

  if (opt_unverifiable != (opt_older_than != 0) || opt_older_than < 0)
    {
      g_printerr ("gsmctl reap: --unverifiable needs --older-than SECONDS (more than 0), and "
                  "--older-than needs --unverifiable\n");
      return 2;
    }

  provider = gsm_provider_new_default (&error);
  if (provider == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }
  reaper = gsm_reaper_new (manager, provider);
  if (opt_unverifiable)
    gsm_reaper_set_unverifiable_older_than (reaper, opt_older_than);

  /* Acting: record newly dead sessions first, as every pass does. */
  if (opt_yes && gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error) < 0)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, &error);
  if (orphans == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  /* Orphans left alone for now, and why, on standard error. */
  for (guint i = 0; i < orphans->len; i++)
    g_hash_table_add (listed, (gpointer) gsm_session_get_session_id (orphans->pdata[i]));
  table = _gsm_session_manager_list_sessions_sync (manager, NULL, NULL);
  if (table != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, table);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (gsm_session_get_has_vm (value) &&
            g_strcmp0 (gsm_session_get_status (value), "stale") == 0)
          {
            if (!g_hash_table_contains (listed, gsm_session_get_session_id (value)))
              {
                g_autofree char *why = explain_waiting (value, reaper, now);

                if (waiting++ == 0)
                  g_printerr ("Not reaped now:\n");
                g_printerr ("  %-24s  session %s: %s\n", gsm_session_get_vm_id (value),
                            gsm_session_get_session_id (value), why);
              }
          }
    }

  if (!opt_yes)
    {
      if (opt_json)
        print_json_array (orphans);
      else if (orphans->len == 0)
        printf ("No VM to reap.\n");
      else
        {
          printf ("Would delete %u VM%s (dry run; pass --yes to delete):\n", orphans->len,
                  orphans->len == 1 ? "" : "s");
          for (guint i = 0; i < orphans->len; i++)
            print_orphan (orphans->pdata[i], now);
        }
      return 0;
    }

  if (opt_json)
    {
      report.json = json_builder_new ();
      json_builder_begin_array (report.json);
    }
  else if (orphans->len == 0)
    printf ("No VM to reap.\n");
  else
    {
      printf ("Deleting %u VM%s:\n", orphans->len, orphans->len == 1 ? "" : "s");
      for (guint i = 0; i < orphans->len; i++)
        print_orphan (orphans->pdata[i], now);
    }

  g_signal_connect (reaper, "vm-reaped", G_CALLBACK (vm_reaped_cb), &report);
  g_signal_connect (reaper, "reap-failed", G_CALLBACK (reap_failed_cb), &report);
  g_signal_connect (reaper, "reap-skipped", G_CALLBACK (reap_skipped_cb), &report);

  /* Exactly the list printed above, nothing else (an empty one still
   * rewrites times that a clock ahead recorded, so that they end). */
  if (!gsm_reaper_reap_sync (reaper, orphans, &reaped, &failed, NULL, &error))
    {
      g_printerr ("gsmctl: %s\n", error->message);
      g_clear_object (&report.json);
      return 1;
    }
  /* Signals of a sync call made here were emitted before it returned. */
  while (g_main_context_iteration (NULL, FALSE))
    ;

  if (report.json)
    {
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_end_array (report.json);
      root = json_builder_get_root (report.json);
      text = json_to_string (root, TRUE);
      printf ("%s\n", text);
      g_clear_object (&report.json);
    }
  else if (orphans->len > 0)
    printf ("Reaped %u, failed %u, skipped %u.\n", reaped, failed, report.skipped);

  return failed > 0 ? 1 : 0;
}

/*
 * The audit log, read without entering a session (no lock, no lease,
 * nothing created): this host's log in the runtime directory, and with
 * etcd the fleet's, through a reader that holds no lease.
 */
static char **
read_history (GError **error)
{
  g_autoptr(GKeyFile) config = _gsm_config_load (NULL);
  g_autofree char *backend = _gsm_config_get_backend (config);
  g_autoptr(GsmEtcdRegistry) etcd = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *prefix = NULL;
  const char *env = g_getenv ("GSM_RUNTIME_DIR");

  if (env != NULL && *env != '\0')
    dir = g_strdup (env);
  else
    dir = g_build_filename (g_get_user_state_dir (), "gsm-session", NULL);
  prefix = _gsm_fs_effective_prefix (dir, g_getenv ("GSM_FILE_PREFIX"));

  if (_gsm_backend_is_etcd (backend))
    {
      etcd = _gsm_etcd_registry_new (backend, NULL, GSM_ETCD_DEFAULT_TTL,
                                     _gsm_config_get_seconds (config, "registry", "etcd-timeout",
                                                              "GSM_ETCD_TIMEOUT",
                                                              GSM_ETCD_DEFAULT_TIMEOUT),
                                     NULL, error);
      if (etcd == NULL)
        return NULL;
    }

  return _gsm_audit_read_at (dir, prefix, etcd, error);
}

static int
cmd_reconcile (void)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GsmProvider) provider = NULL;
  g_autoptr(GsmReaper) reaper = NULL;
  g_autoptr(GPtrArray) items = NULL;
  ReapReport report = { NULL, 0 };
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  guint n_orphans = 0;

  provider = gsm_provider_new_default (&error);
  if (provider == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }
  reaper = gsm_reaper_new (manager, provider);
  if (opt_yes && !opt_json)
    {
      g_signal_connect (reaper, "vm-reaped", G_CALLBACK (vm_reaped_cb), &report);
      g_signal_connect (reaper, "reap-failed", G_CALLBACK (reap_failed_cb), &report);
      g_signal_connect (reaper, "reap-skipped", G_CALLBACK (reap_skipped_cb), &report);
    }

  items = gsm_reaper_reconcile_sync (reaper, opt_yes ? GSM_RECONCILE_FLAGS_APPLY
                                                     : GSM_RECONCILE_FLAGS_NONE, NULL, &error);
  /* Signals of a sync call made here were emitted before it returned. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  if (items == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  for (guint i = 0; i < items->len; i++)
    if (gsm_inventory_item_get_verdict (items->pdata[i]) == GSM_INVENTORY_VERDICT_ORPHAN)
      n_orphans++;

  if (opt_json)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) root = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_array (b);
      for (guint i = 0; i < items->len; i++)
        {
          GsmInventoryItem *item = items->pdata[i];
          g_autoptr(JsonNode) labels = json_gvariant_serialize (gsm_inventory_item_get_labels (item));

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "vm");
          json_builder_add_string_value (b, gsm_inventory_item_get_vm_id (item));
          json_builder_set_member_name (b, "name");
          json_builder_add_string_value (b, gsm_inventory_item_get_name (item));
          json_builder_set_member_name (b, "zone");
          if (gsm_inventory_item_get_zone (item) != NULL)
            json_builder_add_string_value (b, gsm_inventory_item_get_zone (item));
          else
            json_builder_add_null_value (b);
          json_builder_set_member_name (b, "session");
          if (gsm_inventory_item_get_session_id (item) != NULL)
            json_builder_add_string_value (b, gsm_inventory_item_get_session_id (item));
          else
            json_builder_add_null_value (b);
          json_builder_set_member_name (b, "created_at");
          json_builder_add_double_value (b, gsm_inventory_item_get_created_at (item));
          json_builder_set_member_name (b, "labels");
          json_builder_add_value (b, g_steal_pointer (&labels));
          json_builder_set_member_name (b, "verdict");
          json_builder_add_string_value (b, gsm_inventory_verdict_to_string (
                                              gsm_inventory_item_get_verdict (item)));
          json_builder_set_member_name (b, "reason");
          json_builder_add_string_value (b, gsm_inventory_item_get_reason (item));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      root = json_builder_get_root (b);
      text = json_to_string (root, TRUE);
      printf ("%s\n", text);
      return 0;
    }

  if (items->len == 0)
    printf ("The inventory shows no VM with this registry's label.\n");
  else
    {
      printf ("%-12s  %-24s  %-16s  %-8s  %6s  %s\n", "VERDICT", "VM", "ZONE", "SESSION", "AGE",
              "WHY");
      for (guint i = 0; i < items->len; i++)
        {
          GsmInventoryItem *item = items->pdata[i];
          double created_at = gsm_inventory_item_get_created_at (item);
          g_autofree char *age = created_at > 0 ? format_age (MAX (now - created_at, 0))
                                                : g_strdup ("-");
          const char *zone = gsm_inventory_item_get_zone (item);
          const char *session = gsm_inventory_item_get_session_id (item);

          printf ("%-12s  %-24.24s  %-16.16s  %-8.8s  %6s  %s\n",
                  gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (item)),
                  gsm_inventory_item_get_vm_id (item), zone ? zone : "-", session ? session : "-",
                  age, gsm_inventory_item_get_reason (item));
        }
    }
  if (!opt_yes && n_orphans > 0)
    printf ("\nDry run: %u orphan VM%s would be deleted; pass --yes to delete %s.\n", n_orphans,
            n_orphans == 1 ? "" : "s", n_orphans == 1 ? "it" : "them");

  return 0;
}

static int
cmd_history (void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) records = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();

  records = read_history (&error);
  if (records == NULL)
    {
      g_printerr ("gsmctl: %s\n", error->message);
      return 1;
    }

  if (opt_json)
    {
      /* The log's own lines: one JSON object per line. */
      for (guint i = 0; records[i]; i++)
        printf ("%s\n", records[i]);
      return 0;
    }

  if (records[0] == NULL)
    {
      printf ("No VM deletions recorded.\n");
      return 0;
    }

  printf ("%-20s  %-7s  %-24s  %-14s  %-8s  %-22s  %4s  %s\n",
          "TIME", "ACTION", "VM", "ZONE", "OWNER", "PID@HOST", "EXIT", "OUTCOME");
  for (guint i = 0; records[i]; i++)
    {
      JsonObject *o, *owner;
      JsonNode *exit_node;
      g_autofree char *where = NULL;
      g_autofree char *exit_text = NULL;
      const char *time;

      if (!json_parser_load_from_data (parser, records[i], -1, NULL) ||
          !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        continue;
      o = json_node_get_object (json_parser_get_root (parser));
      exit_node = json_object_get_member (o, "owner");
      owner = exit_node && JSON_NODE_HOLDS_OBJECT (exit_node) ? json_node_get_object (exit_node) : NULL;
      where = g_strdup_printf ("%" G_GINT64_FORMAT "@%s",
                               owner ? json_object_get_int_member_with_default (owner, "pid", 0) : 0,
                               owner ? json_object_get_string_member_with_default (owner, "host", "?") : "?");
      exit_node = json_object_get_member (o, "exit_status");
      exit_text = exit_node && JSON_NODE_HOLDS_VALUE (exit_node)
                    ? g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (exit_node))
                    : g_strdup ("-");
      time = json_object_get_string_member_with_default (o, "time", "?");

      printf ("%-20.19s  %-7s  %-24.24s  %-14.14s  %-8.8s  %-22.22s  %4s  %s%s%s\n", time,
              json_object_get_string_member_with_default (o, "action", "?"),
              json_object_get_string_member_with_default (o, "vm", "?"),
              json_object_get_string_member_with_default (o, "zone", "-"),
              owner ? json_object_get_string_member_with_default (owner, "session", "?") : "?",
              where, exit_text,
              json_object_get_string_member_with_default (o, "outcome", "?"),
              json_object_get_string_member_with_default (o, "error", NULL) ? ": " : "",
              json_object_get_string_member_with_default (o, "error", NULL)
                ? json_object_get_string_member_with_default (o, "error", NULL) : "");
    }

  return 0;
}

typedef struct
{
  const char         *name;
  const char         *summary;
  const GOptionEntry *entries;
  int               (*run) (void);
} Command;

static const Command commands[] = {
  { "list", "List every session in the registry, live or stale", list_entries, cmd_list },
  { "cleanup", "Remove dead sessions (keeping those that still own a VM, as stale)", cleanup_entries, cmd_cleanup },
  { "stats", "Count sessions and VMs", list_entries, cmd_stats },
  { "watch", "Print sessions and VMs as they appear, change and die", watch_entries, cmd_watch },
  { "reap", "List (or with --yes, delete) the VMs of dead sessions", reap_entries, cmd_reap },
  { "reconcile", "Compare the cloud's inventory with the registry (with --yes, delete the orphans found)", reconcile_entries, cmd_reconcile },
  { "history", "Show the audit log of VM deletions", history_entries, cmd_history },
};

static void
usage (void)
{
  g_printerr ("Usage: gsmctl COMMAND [OPTION…]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    g_printerr ("  %-10s %s\n", commands[i].name, commands[i].summary);
  g_printerr ("\nRun “gsmctl COMMAND --help” for the options of a command.\n");
}

int
main (int   argc,
      char *argv[])
{
  const Command *command = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  setlocale (LC_ALL, "");

  if (argc < 2 || g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h"))
    {
      usage ();
      return argc < 2 ? 2 : 0;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      command = &commands[i];
  if (command == NULL)
    {
      g_printerr ("gsmctl: unknown command “%s”\n\n", argv[1]);
      usage ();
      return 2;
    }

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, command->summary);
  g_option_context_add_main_entries (context, command->entries, NULL);
  {
    /* Parse "gsmctl COMMAND ARGS" as "COMMAND ARGS". */
    char **sub_argv = argv + 1;
    int sub_argc = argc - 1;

    if (!g_option_context_parse (context, &sub_argc, &sub_argv, &error))
      {
        g_printerr ("gsmctl %s: %s\n", command->name, error->message);
        return 2;
      }
    if (sub_argc > 1)
      {
        g_printerr ("gsmctl %s: unexpected argument “%s”\n", command->name, sub_argv[1]);
        return 2;
      }
  }
  if (opt_bus && opt_local)
    {
      g_printerr ("gsmctl %s: --bus and --local exclude each other\n", command->name);
      return 2;
    }

  /* gsmctl reaps only when asked, never when its session starts. */
  _gsm_reaper_inhibit_reap_at_start ();
  status = command->run ();
  /* With the registry, gsmctl is a session of its own while it runs;
   * leave no trace. */
  if (gsm_session_manager_is_available ())
    gsm_session_manager_close_sync (gsm_session_manager_get_default (), NULL, NULL);

  return status;
}
