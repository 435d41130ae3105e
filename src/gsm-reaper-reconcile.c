/* gsm-reaper-reconcile.c: comparing the cloud's inventory with the registry
 *
 * A reconciliation asks the provider for the VMs that carry this
 * registry's label (gsm-registry=…, see gsm-labels-private.h) and compares
 * them with the registry:
 *
 *  - a VM some entry records belongs to that entry's session: the
 *    reaper's business if the session is dead, nobody's if it is alive;
 *  - a VM no entry records belongs to the session of its gsm-session
 *    label. If that session is alive (its entry, its lock held, its
 *    session file) the VM is reported and never deleted; if whether it is
 *    alive cannot be told, kept; if it is dead or unknown and the VM is
 *    older than the grace period (by the creation time the inventory
 *    gives), the VM is an orphan. Acting, a reconciliation records it in
 *    the registry (an "adopted" stale entry, so that it is never forgotten
 *    again) and deletes it through the reaper's own pass: claim, audit
 *    log, settle, backoff;
 *  - a VM an entry records that the inventory listed before and no longer
 *    shows is counted missing in the entry; after two passes it is marked
 *    gone there.
 *
 * A VM without this registry's label is never looked at, whatever the
 * provider printed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "gsm-error.h"
#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-inventory-item-private.h"
#include "gsm-json-private.h"
#include "gsm-labels-private.h"
#include "gsm-liveness-lock-private.h"
#include "gsm-reaper-private.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

/* A VM found missing from this many passes in a row is gone. */
#define GONE_AFTER_PASSES 2
/* The pid written in a new adopted entry, which needs one: there is no
 * process. Such an entry is stale from the start, so nothing probes it,
 * and the reaper takes its owner for dead (_gsm_reaper_owner_liveness()). */
#define ADOPTED_PID 1

/* ---- what this host's files say of a session without an entry ---------- */

typedef struct
{
  int         dirfd;    /* borrowed; -1 without a file registry */
  GHashTable *locks;    /* session id → GPtrArray of lock file names */
  GHashTable *sessions; /* session id → GPtrArray of GsmSession read from files */
} Evidence;

static void
evidence_clear (Evidence *ev)
{
  g_clear_pointer (&ev->locks, g_hash_table_unref);
  g_clear_pointer (&ev->sessions, g_hash_table_unref);
}

static void
multimap_add (GHashTable    *map,
              const char    *key,
              gpointer       value,
              GDestroyNotify free_func)
{
  GPtrArray *values = g_hash_table_lookup (map, key);

  if (values == NULL)
    {
      values = g_ptr_array_new_with_free_func (free_func);
      g_hash_table_insert (map, g_strdup (key), values);
    }
  g_ptr_array_add (values, value);
}

/* PREFIX session_<pid>[_<id>].(json|lock): the id ("" for none) and
 * whether it is a lock; FALSE for any other name. */
static gboolean
parse_session_name (const char *name,
                    const char *prefix,
                    char      **id,
                    gboolean   *is_lock)
{
  const char *p, *start, *dot;

  if (!g_str_has_prefix (name, prefix))
    return FALSE;
  p = name + strlen (prefix);
  if (!g_str_has_prefix (p, "session_"))
    return FALSE;
  p += strlen ("session_");
  if (!g_ascii_isdigit (*p))
    return FALSE;
  while (g_ascii_isdigit (*p))
    p++;
  dot = strrchr (p, '.');
  if (dot == NULL || (!g_str_equal (dot, ".json") && !g_str_equal (dot, ".lock")))
    return FALSE;
  *is_lock = g_str_equal (dot, ".lock");
  start = *p == '_' ? p + 1 : p;
  *id = g_strndup (start, dot - start);
  return TRUE;
}

/* The registry's file prefix, from its name (PREFIX vm_registry.json). */
static char *
file_prefix (GsmSessionManager *manager)
{
  g_autofree char *name = g_file_get_basename (gsm_session_manager_get_vm_registry (manager));
  gsize            len = strlen (name), suffix = strlen ("vm_registry.json");

  if (len >= suffix)
    name[len - suffix] = '\0';
  return g_steal_pointer (&name);
}

/* One pass over the runtime directory: the lock files named after a
 * session, and the session files (read, whatever their name says). */
static void
evidence_scan (Evidence          *ev,
               GsmSessionManager *manager)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (manager);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *dir_path = NULL;
  g_autofree char *prefix = NULL;
  struct dirent   *de;
  DIR             *dir;
  int              fd;

  ev->dirfd = -1;
  ev->locks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify) g_ptr_array_unref);
  ev->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_ptr_array_unref);
  if (registry == NULL || !GSM_IS_FILE_REGISTRY (registry))
    return;

  ev->dirfd = _gsm_file_registry_get_dirfd (GSM_FILE_REGISTRY (registry));
  dir_path = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
  prefix = file_prefix (manager);

  fd = openat (ev->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  dir = fd >= 0 ? fdopendir (fd) : NULL;
  if (dir == NULL)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  while ((de = readdir (dir)) != NULL)
    {
      g_autofree char *id = NULL;
      g_autoptr (GBytes) bytes = NULL;
      GsmSession *session;
      gboolean    is_lock;
      const char *data;
      gsize       len;

      if (!parse_session_name (de->d_name, prefix, &id, &is_lock))
        continue;
      if (is_lock)
        {
          if (*id != '\0')
            multimap_add (ev->locks, id, g_strdup (de->d_name), g_free);
          continue;
        }
      bytes = _gsm_fs_read_at (ev->dirfd, dir_path, de->d_name, GSM_MAX_SESSION_FILE_SIZE,
                               NULL, NULL, NULL);
      if (bytes == NULL)
        continue;
      data = g_bytes_get_data (bytes, &len);
      if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, NULL))
        continue;
      session = _gsm_session_new_from_json (NULL, data, len, parser, NULL);
      if (session != NULL)
        multimap_add (ev->sessions, gsm_session_get_session_id (session), session,
                      g_object_unref);
    }
  closedir (dir);
}

/* Is any of the sessions @ids alive, by this host's files? DEAD when
 * nothing says so (with etcd, a session without an entry has no lease). */
static GsmLiveness
evidence_check (Evidence          *ev,
                GsmReaper         *self,
                const char *const *ids)
{
  GsmLiveness verdict = GSM_LIVENESS_DEAD;

  for (guint i = 0; ids[i] != NULL; i++)
    {
      GPtrArray *locks = g_hash_table_lookup (ev->locks, ids[i]);
      GPtrArray *sessions = g_hash_table_lookup (ev->sessions, ids[i]);

      for (guint k = 0; locks != NULL && k < locks->len; k++)
        if (_gsm_liveness_lock_check (ev->dirfd, locks->pdata[k]) == GSM_LIVENESS_LOCK_HELD)
          return GSM_LIVENESS_ALIVE;
      for (guint k = 0; sessions != NULL && k < sessions->len; k++)
        switch (_gsm_reaper_owner_liveness (self, sessions->pdata[k]))
          {
          case GSM_LIVENESS_ALIVE:
            return GSM_LIVENESS_ALIVE;
          case GSM_LIVENESS_UNVERIFIABLE:
            verdict = GSM_LIVENESS_UNVERIFIABLE;
            break;
          case GSM_LIVENESS_DEAD:
          default:
            break;
          }
    }

  return verdict;
}

/* ---- one pass ------------------------------------------------------------- */

typedef struct
{
  GsmInventoryItem *item;          /* as listed */
  char             *label_session; /* its gsm-session label */
  char            **ids;           /* the sessions that label may stand for */
  char             *key;           /* the entry it is adopted as (last decision) */
} Orphan;

static void
orphan_free (gpointer data)
{
  Orphan *o = data;

  g_object_unref (o->item);
  g_free (o->label_session);
  g_strfreev (o->ids);
  g_free (o->key);
  g_free (o);
}

typedef struct
{
  GsmReaper           *self;
  GsmSessionManager   *manager;
  char                *registry_label;
  double               now;
  double               grace;
  GsmRegistrySnapshot *snapshot;
  GHashTable          *by_vm;    /* vm id → GPtrArray of GsmSession (borrowed) */
  GHashTable          *by_label; /* gsm-session value → GPtrArray of GsmSession */
  GHashTable          *seen;     /* session id → GsmInventoryItem (borrowed): its VM listed */
  Evidence             evidence;
  gboolean             scanned;
  GPtrArray           *results; /* GsmInventoryItem */
  GPtrArray           *orphans; /* Orphan */
  /* the apply decisions, cleared at each call of the update */
  GPtrArray *adopted; /* GsmSession */
} Pass;

static void
pass_clear (Pass *p)
{
  g_free (p->registry_label);
  g_clear_pointer (&p->snapshot, _gsm_registry_snapshot_unref);
  g_clear_pointer (&p->by_vm, g_hash_table_unref);
  g_clear_pointer (&p->by_label, g_hash_table_unref);
  g_clear_pointer (&p->seen, g_hash_table_unref);
  evidence_clear (&p->evidence);
  g_clear_pointer (&p->results, g_ptr_array_unref);
  g_clear_pointer (&p->orphans, g_ptr_array_unref);
  g_clear_pointer (&p->adopted, g_ptr_array_unref);
}

static void
add_borrowed (GHashTable *map,
              const char *key,
              GsmSession *session)
{
  GPtrArray *values = g_hash_table_lookup (map, key);

  if (values == NULL)
    {
      values = g_ptr_array_new ();
      g_hash_table_insert (map, g_strdup (key), values);
    }
  g_ptr_array_add (values, session);
}

static void
index_snapshot (Pass *p)
{
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  p->by_vm = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify) g_ptr_array_unref);
  p->by_label = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_ptr_array_unref);
  _gsm_registry_snapshot_iter_init (&iter, p->snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      g_autofree char *label = _gsm_label_for_session (gsm_session_get_session_id (session));

      add_borrowed (p->by_label, label, session);
      if (session->vm_id != NULL)
        {
          add_borrowed (p->by_vm, session->vm_id, session);
          /* An AWS instance reserved by name, listed before under its
           * instance ID. */
          if (g_strcmp0 (_gsm_reaper_delete_id (session), session->vm_id) != 0)
            add_borrowed (p->by_vm, _gsm_reaper_delete_id (session), session);
        }
    }
}

/* The entries that record @item's VM (by its id or its name). */
static GPtrArray *
entries_of (GHashTable       *by_vm,
            GsmInventoryItem *item)
{
  GPtrArray  *found = g_ptr_array_new ();
  const char *keys[] = { gsm_inventory_item_get_vm_id (item), gsm_inventory_item_get_name (item) };

  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      GPtrArray *entries = keys[k] ? g_hash_table_lookup (by_vm, keys[k]) : NULL;

      for (guint i = 0; entries != NULL && i < entries->len; i++)
        if (!g_ptr_array_find (found, entries->pdata[i], NULL))
          g_ptr_array_add (found, entries->pdata[i]);
    }
  return found;
}

static char *
format_age (double seconds)
{
  if (seconds < 120)
    return g_strdup_printf ("%.0f s", seconds);
  if (seconds < 7200)
    return g_strdup_printf ("%.0f min", seconds / 60);
  return g_strdup_printf ("%.1f h", seconds / 3600);
}

static void
add_result (Pass               *p,
            GsmInventoryItem   *item,
            GsmInventoryVerdict verdict,
            const char         *session_id,
            char               *reason)
{
  g_ptr_array_add (p->results, _gsm_inventory_item_with_verdict (item, verdict, session_id, reason));
  g_free (reason);
}

/* The verdict on a VM that entries record: theirs. */
static void
classify_recorded (Pass             *p,
                   GsmInventoryItem *item,
                   GPtrArray        *entries)
{
  GsmSession *alive = NULL, *unverifiable = NULL, *adopted = NULL;

  for (guint i = 0; i < entries->len; i++)
    {
      GsmSession *e = entries->pdata[i];

      g_hash_table_insert (p->seen, g_strdup (gsm_session_get_session_id (e)), item);
      switch (_gsm_reaper_owner_liveness (p->self, e))
        {
        case GSM_LIVENESS_ALIVE:
          alive = alive ? alive : e;
          break;
        case GSM_LIVENESS_UNVERIFIABLE:
          unverifiable = unverifiable ? unverifiable : e;
          break;
        case GSM_LIVENESS_DEAD:
        default:
          if (_gsm_session_get_member (e, GSM_REAPER_ADOPTED_MEMBER) != NULL)
            adopted = e;
          break;
        }
    }
  if (alive != NULL)
    add_result (p, item, GSM_INVENTORY_VERDICT_REGISTERED, gsm_session_get_session_id (alive),
                g_strdup_printf ("recorded by live session %s",
                                 gsm_session_get_session_id (alive)));
  else if (unverifiable != NULL)
    add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE,
                gsm_session_get_session_id (unverifiable),
                g_strdup_printf ("recorded by session %s, whose liveness cannot be verified "
                                 "from this host; kept",
                                 gsm_session_get_session_id (unverifiable)));
  else if (adopted != NULL)
    add_result (p, item, GSM_INVENTORY_VERDICT_DEAD_OWNER, gsm_session_get_session_id (adopted),
                g_strdup ("found by an earlier reconciliation and recorded as an orphan; "
                          "its deletion is retried after the backoff (gsmctl history)"));
  else
    {
      GsmSession *e = entries->pdata[0];

      add_result (p, item, GSM_INVENTORY_VERDICT_DEAD_OWNER, gsm_session_get_session_id (e),
                  g_strdup_printf ("recorded by dead session %s: the reaper deletes it once "
                                   "its grace period is over (gsmctl reap)",
                                   gsm_session_get_session_id (e)));
    }
}

/* The verdict on a VM no entry records, whose session is dead (@known:
 * it has an entry) or unknown: an orphan once older than the grace
 * period, counted from its creation. */
static void
classify_by_age (Pass             *p,
                 GsmInventoryItem *item,
                 const char       *label,
                 const char       *session_id,
                 gboolean          known,
                 char           ***ids)
{
  double created_at, age;

  created_at = gsm_inventory_item_get_created_at (item);
  if (created_at <= 0)
    {
      add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE, session_id,
                  g_strdup_printf ("its session %s is %s, but the inventory gives no creation "
                                   "time to count the grace period from; kept",
                                   session_id, known ? "dead" : "unknown"));
      return;
    }
  if (!_gsm_validate_name ("vm_id", gsm_inventory_item_get_vm_id (item), GSM_MAX_NAME_LEN, NULL) ||
      (gsm_inventory_item_get_zone (item) != NULL &&
       !_gsm_validate_name ("zone", gsm_inventory_item_get_zone (item), GSM_MAX_NAME_LEN, NULL)))
    {
      add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE, session_id,
                  g_strdup ("its identifier or zone cannot be handed to a provider command "
                            "(empty, too long, starting with “-”, or with white space); kept"));
      return;
    }

  age = MAX (p->now - created_at, 0);
  if (age < p->grace)
    {
      g_autofree char *text = format_age (age);

      add_result (p, item, GSM_INVENTORY_VERDICT_YOUNG, session_id,
                  g_strdup_printf ("its session %s is %s and no entry records it, but it was "
                                   "created %s ago: an orphan once older than the grace period "
                                   "(%g s)",
                                   session_id, known ? "dead" : "unknown", text,
                                   p->grace));
      return;
    }

  {
    g_autofree char *text = format_age (age);
    Orphan          *o = g_new0 (Orphan, 1);

    add_result (p, item, GSM_INVENTORY_VERDICT_ORPHAN, session_id,
                g_strdup_printf ("its session %s is %s, no entry records it, and it was created "
                                 "%s ago",
                                 session_id, known ? "dead" : "unknown", text));
    o->item = g_object_ref (item);
    o->label_session = g_strdup (label);
    o->ids = g_steal_pointer (ids);
    g_ptr_array_add (p->orphans, o);
  }
}

/* The verdict on one VM carrying this registry's label. */
static void
classify (Pass             *p,
          GsmInventoryItem *item)
{
  g_autoptr (GPtrArray) entries = entries_of (p->by_vm, item);
  const char *label = gsm_inventory_item_get_label (item, GSM_LABEL_SESSION);
  g_auto (GStrv) ids = NULL;
  GPtrArray  *owners;
  GsmSession *alive = NULL, *unverifiable = NULL;
  const char *session_id;
  gboolean    known;

  if (entries->len > 0)
    {
      classify_recorded (p, item, entries);
      return;
    }

  if (label == NULL || !_gsm_label_value_is_valid (label))
    {
      add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE, NULL,
                  g_strdup ("it carries this registry's label but no valid “" GSM_LABEL_SESSION
                            "” label: whose it is cannot be told; kept"));
      return;
    }

  ids = _gsm_label_session_candidates (label);
  session_id = ids[0] != NULL ? ids[g_strv_length (ids) - 1] : label;
  owners = g_hash_table_lookup (p->by_label, label);
  known = owners != NULL && owners->len > 0;
  for (guint i = 0; owners != NULL && i < owners->len; i++)
    switch (_gsm_reaper_owner_liveness (p->self, owners->pdata[i]))
      {
      case GSM_LIVENESS_ALIVE:
        alive = alive ? alive : owners->pdata[i];
        break;
      case GSM_LIVENESS_UNVERIFIABLE:
        unverifiable = unverifiable ? unverifiable : owners->pdata[i];
        break;
      case GSM_LIVENESS_DEAD:
      default:
        break;
      }
  if (known)
    session_id = gsm_session_get_session_id (owners->pdata[0]);

  if (alive != NULL)
    {
      add_result (p, item, GSM_INVENTORY_VERDICT_UNREGISTERED, gsm_session_get_session_id (alive),
                  g_strdup_printf ("its session %s is alive but its entry does not record this "
                                   "VM; reported, never deleted",
                                   gsm_session_get_session_id (alive)));
      return;
    }
  if (unverifiable != NULL)
    {
      add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE,
                  gsm_session_get_session_id (unverifiable),
                  g_strdup_printf ("its session %s's liveness cannot be verified from this host; "
                                   "kept",
                                   gsm_session_get_session_id (unverifiable)));
      return;
    }
  if (!known)
    {
      if (!p->scanned)
        {
          evidence_scan (&p->evidence, p->manager);
          p->scanned = TRUE;
        }
      switch (evidence_check (&p->evidence, p->self, (const char *const *) ids))
        {
        case GSM_LIVENESS_ALIVE:
          add_result (p, item, GSM_INVENTORY_VERDICT_UNREGISTERED, session_id,
                      g_strdup_printf ("its session %s has no registry entry but is alive (its "
                                       "lock is held); reported, never deleted",
                                       session_id));
          return;
        case GSM_LIVENESS_UNVERIFIABLE:
          add_result (p, item, GSM_INVENTORY_VERDICT_UNVERIFIABLE, session_id,
                      g_strdup_printf ("its session %s has no registry entry, and its session "
                                       "file's liveness cannot be verified here; kept",
                                       session_id));
          return;
        case GSM_LIVENESS_DEAD:
        default:
          break;
        }
    }

  classify_by_age (p, item, label, session_id, known, &ids);
}

/* What an earlier pass recorded of @entry's VM, if it is about this VM and
 * this registry. */
static JsonObject *
valid_inventory (Pass       *p,
                 GsmSession *entry)
{
  JsonObject *inv = _gsm_reaper_get_object (entry, GSM_REAPER_INVENTORY_MEMBER);

  if (inv == NULL ||
      g_strcmp0 (_gsm_reaper_json_string (inv, "vm"), gsm_session_get_vm_id (entry)) != 0 ||
      g_strcmp0 (_gsm_reaper_json_string (inv, "registry"), p->registry_label) != 0 ||
      _gsm_reaper_json_double (inv, "seen_at") <= 0)
    return NULL;
  return inv;
}

/* The VMs the registry records, the inventory showed before and does not
 * now. */
static void
classify_missing (Pass *p)
{
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;

  _gsm_registry_snapshot_iter_init (&iter, p->snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    {
      g_autoptr (GsmInventoryItem) item = NULL;
      JsonObject *inv;
      double      missing;

      if (session->vm_id == NULL ||
          g_hash_table_contains (p->seen, gsm_session_get_session_id (session)) ||
          (inv = valid_inventory (p, session)) == NULL)
        continue;
      missing = _gsm_reaper_json_double (inv, "missing") + 1;
      item = _gsm_inventory_item_new (_gsm_reaper_delete_id (session), session->vm_id,
                                      gsm_session_get_zone (session), NULL, 0, NULL);
      if (missing >= GONE_AFTER_PASSES)
        add_result (p, item, GSM_INVENTORY_VERDICT_GONE, gsm_session_get_session_id (session),
                    g_strdup_printf ("recorded by session %s; the inventory has not shown it in "
                                     "%.0f passes: gone (deleted behind the registry's back?)",
                                     gsm_session_get_session_id (session), missing));
      else
        add_result (p, item, GSM_INVENTORY_VERDICT_MISSING, gsm_session_get_session_id (session),
                    g_strdup_printf ("recorded by session %s; the inventory listed it before and "
                                     "does not now (gone once missing from %d passes)",
                                     gsm_session_get_session_id (session), GONE_AFTER_PASSES));
    }
}

/* ---- acting, under the registry's lock ------------------------------------ */

static JsonNode *
seen_node (JsonObject *old,
           const char *vm,
           const char *id,
           const char *registry,
           double      now)
{
  JsonObject *o = json_object_new ();
  JsonNode   *node = json_node_new (JSON_NODE_OBJECT);
  double      seen_at = old ? _gsm_reaper_json_double (old, "seen_at") : 0;

  json_object_set_string_member (o, "vm", vm);
  json_object_set_string_member (o, "id", id);
  json_object_set_string_member (o, "registry", registry);
  json_object_set_double_member (o, "seen_at", seen_at > 0 ? seen_at : now);
  json_node_take_object (node, o);
  return node;
}

static JsonNode *
missing_node (JsonObject *old,
              double      now)
{
  JsonNode   *node = json_node_new (JSON_NODE_OBJECT);
  JsonObject *o = json_object_new ();
  double      missing = _gsm_reaper_json_double (old, "missing") + 1;
  double      since = _gsm_reaper_json_double (old, "missing_since");
  double      gone_at = _gsm_reaper_json_double (old, "gone_at");

  json_object_set_string_member (o, "vm", _gsm_reaper_json_string (old, "vm"));
  if (_gsm_reaper_json_string (old, "id") != NULL)
    json_object_set_string_member (o, "id", _gsm_reaper_json_string (old, "id"));
  json_object_set_string_member (o, "registry", _gsm_reaper_json_string (old, "registry"));
  json_object_set_double_member (o, "seen_at", _gsm_reaper_json_double (old, "seen_at"));
  json_object_set_int_member (o, "missing", (gint64) MIN (missing, 1000000));
  json_object_set_double_member (o, "missing_since", since > 0 ? MIN (since, now) : now);
  if (missing >= GONE_AFTER_PASSES)
    json_object_set_double_member (o, "gone_at", gone_at > 0 ? MIN (gone_at, now) : now);
  json_node_take_object (node, o);
  return node;
}

/* Is any session that records one of @vms (through @txn) alive or
 * unverifiable? Or any at all, if @any. */
static gboolean
recorded_in_txn (Pass             *p,
                 GsmRegistryTxn   *txn,
                 GHashTable       *vm_owners,
                 GsmInventoryItem *item)
{
  const char *keys[] = { gsm_inventory_item_get_vm_id (item), gsm_inventory_item_get_name (item) };

  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      GPtrArray *ids = keys[k] ? g_hash_table_lookup (vm_owners, keys[k]) : NULL;

      for (guint i = 0; ids != NULL && i < ids->len; i++)
        {
          GsmSession *e = _gsm_registry_txn_lookup (txn, ids->pdata[i]);

          if (e != NULL && (g_strcmp0 (e->vm_id, keys[0]) == 0 ||
                            g_strcmp0 (e->vm_id, keys[1]) == 0 ||
                            g_strcmp0 (_gsm_reaper_delete_id (e), keys[0]) == 0))
            return TRUE;
        }
    }
  return FALSE;
}

static char *
adoption_key (Pass           *p,
              GsmRegistryTxn *txn,
              Orphan         *o)
{
  g_autofree char *hash = NULL;
  guint            n = o->ids ? g_strv_length (o->ids) : 0;

  /* The session's own id, when it has no entry, or a dead one without a
   * VM: what gsmctl list and the audit log then show. */
  for (guint i = n; i > 0; i--)
    {
      GsmSession *e = _gsm_registry_txn_lookup (txn, o->ids[i - 1]);

      if ((e == NULL && i == n && _gsm_validate_name ("session_id", o->ids[i - 1], 128, NULL)) ||
          (e != NULL && e->vm_id == NULL &&
           _gsm_reaper_owner_liveness (p->self, e) == GSM_LIVENESS_DEAD))
        return g_strdup (o->ids[i - 1]);
    }

  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256,
                                        gsm_inventory_item_get_vm_id (o->item), -1);
  hash[24] = '\0';
  return g_strconcat ("inventory-", hash, NULL);
}

/* @key's entry for the VM of @o: a new stale entry, or @existing (a dead
 * session without a VM) given the VM. */
static GsmSession *
make_adopted (Pass       *p,
              Orphan     *o,
              const char *key,
              GsmSession *existing)
{
  GsmInventoryItem *item = o->item;
  double            created_at = MIN (gsm_inventory_item_get_created_at (item), p->now);
  const char       *host = gsm_inventory_item_get_label (item, GSM_LABEL_HOST);
  g_autoptr (GsmSession) base = NULL;
  g_autoptr (GsmSession) with_vm = NULL;
  g_autoptr (GsmSession) stale = NULL;
  g_autoptr (GsmSession) marked = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) marker = NULL;
  g_autoptr (JsonNode) seen = NULL;
  GVariantIter iter;
  const char  *k, *v;

  /* This host's name with the file registry (the label is this host's);
   * with etcd, the host the label names. */
  if (GSM_IS_FILE_REGISTRY (_gsm_session_manager_get_registry (p->manager)) || host == NULL)
    host = gsm_session_manager_get_hostname (p->manager);

  base = existing ? g_object_ref (existing)
                  : _gsm_session_new (key, ADOPTED_PID, host, created_at, 0, NULL);
  with_vm = _gsm_session_with_vm (base, gsm_inventory_item_get_vm_id (item),
                                  gsm_inventory_item_get_zone (item), NULL, NULL, p->now);
  /* Dead since the VM was made: the grace period counted from then is
   * over, which is why it is adopted. */
  stale = _gsm_session_with_stale (with_vm, MAX (created_at, 1));

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "from");
  json_builder_add_string_value (b, "inventory");
  json_builder_set_member_name (b, "session_label");
  json_builder_add_string_value (b, o->label_session);
  json_builder_set_member_name (b, "labels");
  json_builder_begin_object (b);
  g_variant_iter_init (&iter, gsm_inventory_item_get_labels (item));
  while (g_variant_iter_next (&iter, "{&s&s}", &k, &v))
    {
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, v);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "vm_created_at");
  json_builder_add_double_value (b, created_at);
  json_builder_set_member_name (b, "found_at");
  json_builder_add_double_value (b, p->now);
  json_builder_end_object (b);
  marker = json_builder_get_root (b);

  marked = _gsm_session_with_member (stale, GSM_REAPER_ADOPTED_MEMBER, marker);
  seen = seen_node (NULL, gsm_inventory_item_get_vm_id (item), gsm_inventory_item_get_vm_id (item),
                    p->registry_label, p->now);
  return _gsm_session_with_member (marked, GSM_REAPER_INVENTORY_MEMBER, seen);
}

/* What the inventory showed of @entry's VM goes into its member
 * "inventory": seen now, or missing once more. */
static void
record_inventory (Pass           *p,
                  GsmRegistryTxn *txn,
                  const char     *key,
                  GsmSession     *entry)
{
  GsmInventoryItem *item;
  JsonObject       *inv;

  item = g_hash_table_lookup (p->seen, key);
  inv = _gsm_reaper_get_object (entry, GSM_REAPER_INVENTORY_MEMBER);
  if (item != NULL &&
      (g_strcmp0 (entry->vm_id, gsm_inventory_item_get_vm_id (item)) == 0 ||
       g_strcmp0 (entry->vm_id, gsm_inventory_item_get_name (item)) == 0))
    {
      /* Shown: recorded (once; again only when something changed). */
      JsonObject *valid = valid_inventory (p, entry);

      if (valid == NULL ||
          g_strcmp0 (_gsm_reaper_json_string (valid, "id"),
                     gsm_inventory_item_get_vm_id (item)) != 0 ||
          json_object_has_member (valid, "missing") || json_object_has_member (valid, "gone_at"))
        {
          g_autoptr (JsonNode) node = seen_node (valid, entry->vm_id,
                                                 gsm_inventory_item_get_vm_id (item),
                                                 p->registry_label, p->now);
          g_autoptr (GsmSession) changed = _gsm_session_with_member (entry,
                                                                     GSM_REAPER_INVENTORY_MEMBER,
                                                                     node);

          _gsm_registry_txn_put (txn, changed);
        }
    }
  else if (item == NULL && inv != NULL && valid_inventory (p, entry) != NULL &&
           _gsm_registry_snapshot_lookup (p->snapshot, key) != NULL)
    {
      /* Listed before, not now: one more pass missing. (Only entries
       * this pass compared: one written since is counted next time.) */
      g_autoptr (JsonNode) node = missing_node (inv, p->now);
      g_autoptr (GsmSession) changed = _gsm_session_with_member (entry,
                                                                 GSM_REAPER_INVENTORY_MEMBER,
                                                                 node);

      _gsm_registry_txn_put (txn, changed);
    }
}

/* The orphans, checked again under the lock, each recorded as a stale
 * entry of its own (member "adopted"). */
static void
adopt_orphans (Pass           *p,
               GsmRegistryTxn *txn,
               GHashTable     *vm_owners,
               GHashTable     *label_owners)
{
  /* The orphans, checked again now: no entry records the VM (a session
   * may have registered it since), no session its label may stand for is
   * alive or unverifiable, and no lock of such a session is held. */
  for (guint i = 0; i < p->orphans->len; i++)
    {
      Orphan    *o = p->orphans->pdata[i];
      GPtrArray *owners = g_hash_table_lookup (label_owners, o->label_session);
      g_autoptr (GsmSession) adopted = NULL;
      GsmSession *existing;
      gboolean    blocked = FALSE;

      g_clear_pointer (&o->key, g_free);
      if (recorded_in_txn (p, txn, vm_owners, o->item))
        continue;
      for (guint k = 0; owners != NULL && k < owners->len && !blocked; k++)
        {
          GsmSession *e = _gsm_registry_txn_lookup (txn, owners->pdata[k]);

          if (e != NULL && _gsm_reaper_owner_liveness (p->self, e) != GSM_LIVENESS_DEAD)
            blocked = TRUE;
        }
      if (blocked || (owners == NULL &&
                      evidence_check (&p->evidence, p->self, (const char *const *) o->ids) !=
                          GSM_LIVENESS_DEAD))
        continue;

      o->key = adoption_key (p, txn, o);
      existing = _gsm_registry_txn_lookup (txn, o->key);
      if (existing != NULL && existing->vm_id != NULL)
        continue;
      adopted = make_adopted (p, o, o->key, existing);
      _gsm_registry_txn_put (txn, adopted);
      g_ptr_array_add (p->adopted, g_object_ref (adopted));
      multimap_add (vm_owners, gsm_inventory_item_get_vm_id (o->item), g_strdup (o->key), g_free);
    }
}

static gboolean
txn_apply (GsmRegistryTxn *txn,
           gpointer        user_data,
           GError        **error)
{
  Pass *p = user_data;
  g_autoptr (GHashTable) vm_owners = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                            (GDestroyNotify) g_ptr_array_unref);
  g_autoptr (GHashTable) label_owners = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                               (GDestroyNotify) g_ptr_array_unref);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  GsmRegistrySnapshotIter iter;
  const char             *key;
  GsmSession             *session;

  g_ptr_array_set_size (p->adopted, 0);

  /* The entries as they are now, under the lock. */
  _gsm_registry_snapshot_iter_init (&iter, _gsm_registry_txn_get_base (txn));
  while (_gsm_registry_snapshot_iter_next (&iter, &key, &session))
    g_ptr_array_add (keys, g_strdup (key));

  for (guint i = 0; i < keys->len; i++)
    {
      GsmSession      *entry = _gsm_registry_txn_lookup (txn, keys->pdata[i]);
      g_autofree char *label = NULL;

      if (entry == NULL)
        continue;
      label = _gsm_label_for_session (gsm_session_get_session_id (entry));
      multimap_add (label_owners, label, g_strdup (keys->pdata[i]), g_free);
      if (entry->vm_id == NULL)
        continue;
      multimap_add (vm_owners, entry->vm_id, g_strdup (keys->pdata[i]), g_free);
      if (g_strcmp0 (_gsm_reaper_delete_id (entry), entry->vm_id) != 0)
        multimap_add (vm_owners, _gsm_reaper_delete_id (entry), g_strdup (keys->pdata[i]), g_free);

      record_inventory (p, txn, keys->pdata[i], entry);
    }

  adopt_orphans (p, txn, vm_owners, label_owners);

  return TRUE;
}

/* ---- the pass ------------------------------------------------------------- */

/* Says in the results what became of each orphan the pass deleted, by
 * @after, the registry once it ended (%NULL if it cannot be read). */
static void
report_adopted (Pass                *p,
                GsmRegistrySnapshot *after)
{
  for (guint i = 0; i < p->results->len; i++)
    {
      GsmInventoryItem *r = p->results->pdata[i];
      GsmSession       *entry = NULL;
      Orphan           *o = NULL;

      if (gsm_inventory_item_get_verdict (r) != GSM_INVENTORY_VERDICT_ORPHAN)
        continue;
      for (guint k = 0; k < p->orphans->len && o == NULL; k++)
        if (g_strcmp0 (gsm_inventory_item_get_vm_id (((Orphan *) p->orphans->pdata[k])->item),
                       gsm_inventory_item_get_vm_id (r)) == 0)
          o = p->orphans->pdata[k];
      if (o == NULL || o->key == NULL)
        continue;
      entry = after ? _gsm_registry_snapshot_lookup (after, o->key) : NULL;
      {
        g_autofree char *reason = NULL;
        JsonObject      *attempts =
            entry ? _gsm_reaper_get_object (entry, GSM_REAPER_ATTEMPTS_MEMBER) : NULL;

        if (entry == NULL)
          reason = g_strdup_printf ("%s; deleted (recorded as %s)",
                                    gsm_inventory_item_get_reason (r), o->key);
        else if (attempts != NULL)
          {
            const char *last = _gsm_reaper_json_string (attempts, "last_error");

            reason = g_strdup_printf ("%s; recorded as %s, deleting it failed: %s",
                                      gsm_inventory_item_get_reason (r), o->key,
                                      last ? last : "?");
          }
        else
          reason = g_strdup_printf ("%s; recorded as %s, not deleted yet",
                                    gsm_inventory_item_get_reason (r), o->key);
        p->results->pdata[i] =
            _gsm_inventory_item_with_verdict (r, GSM_INVENTORY_VERDICT_ORPHAN,
                                              gsm_inventory_item_get_session_id (r), reason);
        g_object_unref (r);
      }
    }
}

static GPtrArray *
reconcile (GsmReaper        *self,
           GsmReconcileFlags flags,
           GCancellable     *cancellable,
           GError          **error)
{
  GsmSessionManager *manager = gsm_reaper_get_manager (self);
  GsmRegistry       *registry = _gsm_session_manager_get_registry (manager);
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GPtrArray) listed = NULL;
  g_autoptr (GsmRegistrySnapshot) written = NULL;
  Pass p = {
    0,
  };
  GPtrArray *results;

  provider = _gsm_reaper_dup_provider (self, error);
  if (provider == NULL)
    return NULL;

  p.self = self;
  p.manager = manager;
  p.registry_label = _gsm_session_manager_dup_registry_label (manager);
  p.evidence.dirfd = -1;

  listed = gsm_provider_list_vms_sync (provider, p.registry_label, cancellable, error);
  if (listed == NULL)
    {
      pass_clear (&p);
      return NULL;
    }

  /* Acting: record newly dead sessions first, as every reaper pass does. */
  if ((flags & GSM_RECONCILE_FLAGS_APPLY) &&
      gsm_session_manager_cleanup_stale_sessions_sync (manager, cancellable, error) < 0)
    {
      pass_clear (&p);
      return NULL;
    }

  p.snapshot = registry ? _gsm_registry_load (registry, cancellable, error) : NULL;
  if (p.snapshot == NULL)
    {
      if (registry == NULL)
        g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED, "The registry cannot be used");
      pass_clear (&p);
      return NULL;
    }

  p.now = g_get_real_time () / (double) G_USEC_PER_SEC;
  p.grace = gsm_reaper_get_grace_period (self);
  p.seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  p.results = g_ptr_array_new_with_free_func (g_object_unref);
  p.orphans = g_ptr_array_new_with_free_func (orphan_free);
  p.adopted = g_ptr_array_new_with_free_func (g_object_unref);
  index_snapshot (&p);

  for (guint i = 0; i < listed->len; i++)
    {
      GsmInventoryItem *item = listed->pdata[i];

      /* Never a VM without this registry's label, whatever was printed. */
      if (g_strcmp0 (gsm_inventory_item_get_label (item, GSM_LABEL_REGISTRY),
                     p.registry_label) != 0)
        {
          g_debug ("Ignoring VM “%s”: it does not carry " GSM_LABEL_REGISTRY "=%s",
                   gsm_inventory_item_get_vm_id (item), p.registry_label);
          continue;
        }
      classify (&p, item);
    }
  classify_missing (&p);

  if (!(flags & GSM_RECONCILE_FLAGS_APPLY))
    goto done;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    {
      pass_clear (&p);
      return NULL;
    }
  if (!p.scanned && p.orphans->len > 0)
    {
      evidence_scan (&p.evidence, manager);
      p.scanned = TRUE;
    }
  written = _gsm_registry_update (registry, txn_apply, &p, cancellable, error);
  if (written == NULL)
    {
      pass_clear (&p);
      return NULL;
    }

  if (p.adopted->len > 0)
    {
      g_autoptr (GError) reap_error = NULL;
      g_autoptr (GsmRegistrySnapshot) after = NULL;
      guint reaped = 0, failed = 0;

      /* Deleted through the reaper's own pass: claimed, audited, settled. */
      if (!gsm_reaper_reap_sync (self, p.adopted, &reaped, &failed, cancellable, &reap_error))
        g_warning ("Deleting the orphans the inventory showed: %s", reap_error->message);
      g_debug ("Reconciliation: %u orphan VM(s) deleted, %u failed", reaped, failed);

      /* Say in the results what became of each. */
      after = _gsm_registry_load (registry, NULL, NULL);
      report_adopted (&p, after);
    }

done:
  results = g_steal_pointer (&p.results);
  pass_clear (&p);
  return results;
}

static void
reconcile_thread (GTask        *task,
                  gpointer      source_object,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  GError    *error = NULL;
  GPtrArray *results;

  results = reconcile (source_object, GPOINTER_TO_UINT (task_data), cancellable, &error);
  if (results == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, results, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * gsm_reaper_reconcile:
 * @self: a #GsmReaper
 * @flags: %GSM_RECONCILE_FLAGS_NONE for a dry run, or
 *   %GSM_RECONCILE_FLAGS_APPLY to act
 * @cancellable: (nullable): a #GCancellable; cancelling kills a running
 *   provider command
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Compares the cloud's inventory with the registry: lists the VMs that
 * carry this registry's `gsm-registry` label (the provider's
 * [property@Gsm.Provider:list-command]) and gives each a
 * [enum@Gsm.InventoryVerdict]:
 *
 * - a VM an entry records belongs to that entry's session
 *   (%GSM_INVENTORY_VERDICT_REGISTERED, or
 *   %GSM_INVENTORY_VERDICT_DEAD_OWNER when it is dead: the reaper's);
 * - a VM no entry records belongs to the session of its `gsm-session`
 *   label. If that session is alive (its entry, or without one its lock
 *   or session file in the runtime directory), the VM is
 *   %GSM_INVENTORY_VERDICT_UNREGISTERED: reported, never deleted; if its
 *   liveness cannot be verified, %GSM_INVENTORY_VERDICT_UNVERIFIABLE:
 *   kept. If it is dead or unknown, the VM is an orphan once it is older
 *   than [property@Gsm.Reaper:grace-period], counted from the creation
 *   time the inventory gives (%GSM_INVENTORY_VERDICT_ORPHAN; before that,
 *   %GSM_INVENTORY_VERDICT_YOUNG);
 * - a VM an entry records, that an earlier pass saw and this one does not,
 *   is %GSM_INVENTORY_VERDICT_MISSING, and after two passes
 *   %GSM_INVENTORY_VERDICT_GONE.
 *
 * A VM without this registry's label is never considered, whatever the
 * list command printed; it is left out of the result.
 *
 * With %GSM_RECONCILE_FLAGS_APPLY, the pass records the newly dead
 * sessions, then writes under the registry's lock which VMs the inventory
 * showed (member `inventory` of their entries: once seen, then missing,
 * then `gone_at`), checks each orphan again (no entry records it, its
 * session is not alive) and records it as a stale entry of its own
 * (member `adopted`), and deletes those orphans through the reaper's
 * pass: claimed, recorded in the audit log, retried after a backoff, with
 * [signal@Gsm.Reaper::vm-reaped] and [signal@Gsm.Reaper::reap-failed].
 * VMs of dead sessions that entries record are left to
 * [method@Gsm.Reaper.reap]. Without it, nothing is changed.
 *
 * Since: 1.0
 */
void
gsm_reaper_reconcile (GsmReaper          *self,
                      GsmReconcileFlags   flags,
                      GCancellable       *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (GSM_IS_REAPER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_reaper_reconcile);
  g_task_set_task_data (task, GUINT_TO_POINTER (flags), NULL);
  g_task_run_in_thread (task, reconcile_thread);
}

/**
 * gsm_reaper_reconcile_finish:
 * @self: a #GsmReaper
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Reaper.reconcile].
 *
 * Returns: (transfer container) (element-type GsmInventoryItem): one item
 *   per VM carrying this registry's label, in the order listed, then one
 *   per VM missing from the inventory; %NULL with @error set if the
 *   provider could not list the VMs (%GSM_ERROR_INVALID_ARGUMENT when it
 *   has no list command), the registry could not be used, or the call was
 *   cancelled
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_reconcile_finish (GsmReaper    *self,
                             GAsyncResult *result,
                             GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_reaper_reconcile, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_reaper_reconcile_sync:
 * @self: a #GsmReaper
 * @flags: %GSM_RECONCILE_FLAGS_NONE for a dry run, or
 *   %GSM_RECONCILE_FLAGS_APPLY to act
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Reaper.reconcile]. Needs no main loop.
 *
 * Returns: (transfer container) (element-type GsmInventoryItem): the
 *   verdicts, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_reconcile_sync (GsmReaper        *self,
                           GsmReconcileFlags flags,
                           GCancellable     *cancellable,
                           GError          **error)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return reconcile (self, flags, cancellable, error);
}
