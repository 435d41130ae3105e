/* gsmctl-reap.c: gsmctl reap and reconcile, the commands that delete VMs
 *
 * Both are dry runs unless --yes is given. Their reports, as text or as
 * one JSON array, name every VM of a dead session: those deleted (or that
 * would be), and those left for now with the reason (grace period,
 * backoff after a failure, another reaper's claim, liveness that cannot
 * be verified here). Sorted by session id (reap) or VM id (reconcile).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <stdio.h>

#include "gsm-session-manager-private.h" /* every entry, as reap sees it */
#include "gsm-session-private.h"
#include "gsmctl.h"

/* One VM of a dead session, and what became (or would become) of it. */
typedef struct
{
  GsmSession *session;
  const char *result; /* planned, pending, deleted, gone, failed, skipped */
  char       *reason; /* why pending, failed or skipped; how long dead */
} ReapItem;

static void
reap_item_free (ReapItem *item)
{
  g_object_unref (item->session);
  g_free (item->reason);
  g_free (item);
}

static ReapItem *
reap_item_new (GsmSession *session,
               const char *result,
               char       *reason)
{
  ReapItem *item = g_new0 (ReapItem, 1);

  item->session = g_object_ref (session);
  item->result = result;
  item->reason = reason;
  return item;
}

static int
compare_items (gconstpointer a,
               gconstpointer b)
{
  const ReapItem *x = *(ReapItem **) a, *y = *(ReapItem **) b;
  int             c = g_strcmp0 (gsm_session_get_session_id (x->session),
                                 gsm_session_get_session_id (y->session));

  return c != 0 ? c : g_strcmp0 (gsm_session_get_vm_id (x->session), gsm_session_get_vm_id (y->session));
}

/* How a listed orphan qualifies: dead for how long, or (with
 * --unverifiable) how old a session whose liveness cannot be told here. */
static char *
describe_orphan (GsmSession *s,
                 double      now)
{
  g_autofree char *age = NULL;

  if (gsmctl_opt.unverifiable &&
      (gsm_session_get_start_time (s) == 0 ||
       g_strcmp0 (gsm_session_get_hostname (s),
                  gsm_session_manager_get_hostname (gsm_session_manager_get_default ())) != 0))
    {
      age = gsmctl_format_age (MAX (now - gsm_session_get_created_at (s), 0));
      return g_strdup_printf ("liveness unverifiable, %s old", age);
    }
  age = gsmctl_format_age (MAX (now - gsm_session_get_stale_since (s), 0));
  return g_strdup_printf ("dead for %s", age);
}

/* Why a stale session's VM is not on the list, from its registry entry. */
static char *
explain_waiting (GsmSession *s,
                 GsmReaper  *reaper,
                 double      now)
{
  JsonNode   *node;
  JsonObject *attempts = NULL, *claim = NULL;
  /* Times from a clock that was ahead count from now, as the reaper's. */
  double stale_since = MIN (gsm_session_get_stale_since (s), now);
  double grace = gsm_reaper_get_grace_period (reaper);
  double next_retry;

  node = _gsm_session_get_member (s, "reap_attempts");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    attempts = json_node_get_object (node);
  node = _gsm_session_get_member (s, "reap_claim");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    claim = json_node_get_object (node);

  if (now - stale_since < grace)
    return g_strdup_printf ("grace period, %.0f s left", grace - (now - stale_since) + 0.5);
  next_retry = attempts == NULL ? 0 : MIN (json_object_get_double_member_with_default (attempts, "next_retry_at", 0), now + gsm_reaper_get_max_backoff (reaper));
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

/* The VMs of stale sessions that are not in @orphans, as pending items. */
static void
add_pending (GPtrArray *items,
             GPtrArray *orphans,
             GsmReaper *reaper,
             double     now)
{
  g_autoptr (GHashTable) listed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) table = NULL;
  GHashTableIter iter;
  gpointer       value;

  for (guint i = 0; i < orphans->len; i++)
    g_hash_table_add (listed, (gpointer) gsm_session_get_session_id (orphans->pdata[i]));
  table = _gsm_session_manager_list_sessions_sync (gsm_session_manager_get_default (), NULL, NULL);
  if (table == NULL)
    return;
  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (gsm_session_get_has_vm (value) && _gsm_session_is_stale (value) &&
        !g_hash_table_contains (listed, gsm_session_get_session_id (value)))
      g_ptr_array_add (items, reap_item_new (value, "pending", explain_waiting (value, reaper, now)));
}

/* ---- what became of each VM (--yes) -------------------------------------- */

static ReapItem *
find_item (GPtrArray  *items,
           GsmSession *vm)
{
  for (guint i = 0; i < items->len; i++)
    {
      ReapItem *item = items->pdata[i];

      if (g_strcmp0 (gsm_session_get_session_id (item->session),
                     gsm_session_get_session_id (vm)) == 0 &&
          g_strcmp0 (gsm_session_get_vm_id (item->session), gsm_session_get_vm_id (vm)) == 0)
        return item;
    }
  return NULL;
}

static void
set_result (GPtrArray  *items,
            GsmSession *vm,
            const char *result,
            const char *reason)
{
  ReapItem *item = find_item (items, vm);

  if (item == NULL)
    return;
  item->result = result;
  g_free (item->reason);
  item->reason = g_strdup (reason);
}

static void
vm_reaped_cb (GsmReaper         *reaper,
              GsmSession        *vm,
              GsmProviderResult *result,
              GPtrArray         *items)
{
  set_result (items, vm, gsm_provider_result_get_outcome (result) == GSM_PROVIDER_OUTCOME_DELETED ? "deleted" : "gone",
              gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result)));
}

static void
reap_failed_cb (GsmReaper  *reaper,
                GsmSession *vm,
                GError     *error,
                GPtrArray  *items)
{
  set_result (items, vm, "failed", error->message);
}

static void
reap_skipped_cb (GsmReaper  *reaper,
                 GsmSession *vm,
                 const char *reason,
                 GPtrArray  *items)
{
  set_result (items, vm, "skipped", reason);
}

/* ---- the report ---------------------------------------------------------- */

static void
print_items_json (GPtrArray *items)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; i < items->len; i++)
    {
      ReapItem   *item = items->pdata[i];
      GsmSession *s = item->session;

      json_builder_begin_object (b);
      gsmctl_json_add_string (b, "session_id", gsm_session_get_session_id (s));
      json_builder_set_member_name (b, "pid");
      json_builder_add_int_value (b, gsm_session_get_pid (s));
      gsmctl_json_add_string (b, "hostname", gsm_session_get_hostname (s));
      gsmctl_json_add_string (b, "vm_id", gsm_session_get_vm_id (s));
      gsmctl_json_add_string (b, "zone", gsm_session_get_zone (s));
      gsmctl_json_add_string (b, "action", "delete");
      gsmctl_json_add_string (b, "result", item->result);
      gsmctl_json_add_string (b, "reason", item->reason);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  gsmctl_print_json (b);
}

static void
print_items_table (GPtrArray *items)
{
  g_autoptr (GsmctlTable) table = gsmctl_table_new ("VM", "ZONE", "SESSION", ">PID", "HOST",
                                                    "RESULT", "WHY", NULL);

  for (guint i = 0; i < items->len; i++)
    {
      ReapItem        *item = items->pdata[i];
      GsmSession      *s = item->session;
      g_autofree char *pid = g_strdup_printf ("%d", gsm_session_get_pid (s));

      gsmctl_table_add_row (table, gsm_session_get_vm_id (s), gsm_session_get_zone (s),
                            gsm_session_get_session_id (s), pid, gsm_session_get_hostname (s),
                            item->result, item->reason, NULL);
    }
  gsmctl_table_print (table);
}

static guint
count_result (GPtrArray  *items,
              const char *result)
{
  guint n = 0;

  for (guint i = 0; i < items->len; i++)
    if (g_str_equal (((ReapItem *) items->pdata[i])->result, result))
      n++;
  return n;
}

static void
print_reap_report (GPtrArray *items,
                   guint      n_orphans)
{
  if (gsmctl_opt.json)
    {
      print_items_json (items);
      return;
    }
  if (n_orphans == 0)
    printf ("No VM to reap.\n");
  else if (!gsmctl_opt.yes)
    printf ("Would delete %u VM%s (dry run; pass --yes to delete):\n", n_orphans,
            n_orphans == 1 ? "" : "s");
  if (items->len > 0)
    print_items_table (items);
  if (gsmctl_opt.yes && n_orphans > 0)
    printf ("Reaped %u, failed %u, skipped %u.\n",
            count_result (items, "deleted") + count_result (items, "gone"),
            count_result (items, "failed"), count_result (items, "skipped"));
}

/* ---- reap ---------------------------------------------------------------- */

static GsmReaper *
new_reaper (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmProvider) provider = gsm_provider_new_default (&error);

  if (provider == NULL)
    {
      gsmctl_gerror (error);
      return NULL;
    }
  return gsm_reaper_new (gsm_session_manager_get_default (), provider);
}

/* Deletes exactly @orphans, nothing else (an empty list still rewrites
 * times that a clock ahead recorded, so that they end). */
static gboolean
reap_listed (GsmReaper *reaper,
             GPtrArray *orphans,
             GPtrArray *items)
{
  g_autoptr (GError) error = NULL;

  g_signal_connect (reaper, "vm-reaped", G_CALLBACK (vm_reaped_cb), items);
  g_signal_connect (reaper, "reap-failed", G_CALLBACK (reap_failed_cb), items);
  g_signal_connect (reaper, "reap-skipped", G_CALLBACK (reap_skipped_cb), items);
  if (!gsm_reaper_reap_sync (reaper, orphans, NULL, NULL, NULL, &error))
    {
      gsmctl_gerror (error);
      return FALSE;
    }
  /* Signals of a sync call made here were emitted before it returned. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_signal_handlers_disconnect_by_data (reaper, items);
  return TRUE;
}

int
gsmctl_cmd_reap (void)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) reap_item_free);
  double now = gsmctl_now ();

  if (gsmctl_opt.unverifiable != (gsmctl_opt.older_than != 0) || gsmctl_opt.older_than < 0)
    {
      gsmctl_error ("reap: --unverifiable needs --older-than SECONDS (more than 0), and "
                    "--older-than needs --unverifiable");
      return GSMCTL_EXIT_USAGE;
    }

  reaper = new_reaper ();
  if (reaper == NULL)
    return GSMCTL_EXIT_FAILURE;
  if (gsmctl_opt.unverifiable)
    gsm_reaper_set_unverifiable_older_than (reaper, gsmctl_opt.older_than);

  /* Acting: record newly dead sessions first, as every pass does. */
  if (gsmctl_opt.yes && gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error) < 0)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, &error);
  if (orphans == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  for (guint i = 0; i < orphans->len; i++)
    g_ptr_array_add (items, reap_item_new (orphans->pdata[i], "planned",
                                           describe_orphan (orphans->pdata[i], now)));
  if (gsmctl_opt.yes && !reap_listed (reaper, orphans, items))
    return GSMCTL_EXIT_FAILURE;
  add_pending (items, orphans, reaper, now);
  g_ptr_array_sort (items, compare_items);

  print_reap_report (items, orphans->len);
  return count_result (items, "failed") > 0 ? GSMCTL_EXIT_FAILURE : GSMCTL_EXIT_OK;
}

/* ---- reconcile ----------------------------------------------------------- */

static int
compare_inventory_items (gconstpointer a,
                         gconstpointer b)
{
  return g_strcmp0 (gsm_inventory_item_get_vm_id (*(GsmInventoryItem **) a),
                    gsm_inventory_item_get_vm_id (*(GsmInventoryItem **) b));
}

/* What became of an inventory item's VM: null if nothing is done to it. */
static const char *
inventory_result (GsmInventoryItem *item,
                  GPtrArray        *reaped)
{
  for (guint i = 0; i < reaped->len; i++)
    {
      ReapItem *r = reaped->pdata[i];

      if (g_strcmp0 (gsm_session_get_vm_id (r->session), gsm_inventory_item_get_vm_id (item)) == 0)
        return r->result;
    }
  if (gsm_inventory_item_get_verdict (item) == GSM_INVENTORY_VERDICT_ORPHAN)
    return gsmctl_opt.yes ? "skipped" : "planned";
  return NULL;
}

static void
print_inventory_json (GPtrArray *items,
                      GPtrArray *reaped)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  for (guint i = 0; i < items->len; i++)
    {
      GsmInventoryItem *item = items->pdata[i];

      json_builder_begin_object (b);
      gsmctl_json_add_string (b, "vm", gsm_inventory_item_get_vm_id (item));
      gsmctl_json_add_string (b, "name", gsm_inventory_item_get_name (item));
      gsmctl_json_add_string (b, "zone", gsm_inventory_item_get_zone (item));
      gsmctl_json_add_string (b, "session", gsm_inventory_item_get_session_id (item));
      json_builder_set_member_name (b, "created_at");
      json_builder_add_double_value (b, gsm_inventory_item_get_created_at (item));
      json_builder_set_member_name (b, "labels");
      json_builder_add_value (b, json_gvariant_serialize (gsm_inventory_item_get_labels (item)));
      gsmctl_json_add_string (b, "verdict", gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (item)));
      gsmctl_json_add_string (b, "reason", gsm_inventory_item_get_reason (item));
      gsmctl_json_add_string (b, "result", inventory_result (item, reaped));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  gsmctl_print_json (b);
}

static void
print_inventory_table (GPtrArray *items)
{
  g_autoptr (GsmctlTable) table = gsmctl_table_new ("VERDICT", "VM", "ZONE", "SESSION", ">AGE",
                                                    "WHY", NULL);
  double now = gsmctl_now ();

  for (guint i = 0; i < items->len; i++)
    {
      GsmInventoryItem *item = items->pdata[i];
      double            created_at = gsm_inventory_item_get_created_at (item);
      g_autofree char  *age = created_at > 0 ? gsmctl_format_age (MAX (now - created_at, 0)) : NULL;

      gsmctl_table_add_row (table,
                            gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (item)),
                            gsm_inventory_item_get_vm_id (item), gsm_inventory_item_get_zone (item),
                            gsm_inventory_item_get_session_id (item), age,
                            gsm_inventory_item_get_reason (item), NULL);
    }
  gsmctl_table_print (table);
}

static void
print_reconcile_report (GPtrArray *items,
                        GPtrArray *reaped)
{
  guint n_orphans = 0;

  if (gsmctl_opt.json)
    {
      print_inventory_json (items, reaped);
      return;
    }
  for (guint i = 0; i < items->len; i++)
    if (gsm_inventory_item_get_verdict (items->pdata[i]) == GSM_INVENTORY_VERDICT_ORPHAN)
      n_orphans++;
  if (items->len == 0)
    printf ("The inventory shows no VM with this registry's label.\n");
  else
    print_inventory_table (items);
  for (guint i = 0; i < reaped->len; i++)
    {
      ReapItem *r = reaped->pdata[i];

      printf ("%s %s%s%s\n", r->result, gsm_session_get_vm_id (r->session),
              r->reason ? ": " : "", r->reason ? r->reason : "");
    }
  if (!gsmctl_opt.yes && n_orphans > 0)
    printf ("\nDry run: %u orphan VM%s would be deleted; pass --yes to delete %s.\n", n_orphans,
            n_orphans == 1 ? "" : "s", n_orphans == 1 ? "it" : "them");
}

static void
reconcile_outcome_cb (GsmReaper  *reaper,
                      GsmSession *vm,
                      gpointer    detail,
                      GPtrArray  *reaped)
{
  g_ptr_array_add (reaped, reap_item_new (vm, "planned", NULL));
}

int
gsmctl_cmd_reconcile (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmReaper) reaper = new_reaper ();
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GPtrArray) reaped = g_ptr_array_new_with_free_func ((GDestroyNotify) reap_item_free);

  if (reaper == NULL)
    return GSMCTL_EXIT_FAILURE;
  /* What the reaper did with each orphan it deleted (with --yes). */
  g_signal_connect (reaper, "vm-reaped", G_CALLBACK (reconcile_outcome_cb), reaped);
  g_signal_connect (reaper, "reap-failed", G_CALLBACK (reconcile_outcome_cb), reaped);
  g_signal_connect (reaper, "reap-skipped", G_CALLBACK (reconcile_outcome_cb), reaped);
  g_signal_connect_after (reaper, "vm-reaped", G_CALLBACK (vm_reaped_cb), reaped);
  g_signal_connect_after (reaper, "reap-failed", G_CALLBACK (reap_failed_cb), reaped);
  g_signal_connect_after (reaper, "reap-skipped", G_CALLBACK (reap_skipped_cb), reaped);

  items = gsm_reaper_reconcile_sync (reaper, gsmctl_opt.yes ? GSM_RECONCILE_FLAGS_APPLY : GSM_RECONCILE_FLAGS_NONE,
                                     NULL, &error);
  /* Signals of a sync call made here were emitted before it returned. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_signal_handlers_disconnect_by_data (reaper, reaped);
  if (items == NULL)
    {
      gsmctl_gerror (error);
      return GSMCTL_EXIT_FAILURE;
    }
  g_ptr_array_sort (items, compare_inventory_items);
  print_reconcile_report (items, reaped);
  return count_result (reaped, "failed") > 0 ? GSMCTL_EXIT_FAILURE : GSMCTL_EXIT_OK;
}
