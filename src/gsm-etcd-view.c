/* gsm-etcd-view.c: what the registry in etcd holds, at one revision
 *
 * A view is the snapshot the manager decides on, plus what a transaction
 * must compare for each key it touches: the mod_revision and lease of each
 * session key, the mod_revision and owner of each VM key.
 *
 * A view is made once from a range read of PREFIX/, and then from the
 * previous view and the events of the watch (the informer pattern): an
 * update decides on the view and compares only the keys it writes, so it
 * costs the same with ten sessions or ten thousand. Successive views share
 * their tables and record only what differs (as registry snapshots do),
 * so applying a change does not copy a table of every key.
 *
 * How keys become entries: a session key is the session's entry (alive
 * while its lease lasts). A VM key whose owner has no session key is the
 * entry of a session whose lease expired: shown as written, it is dead to
 * every reader for want of a lease, until the VM is reaped. Our own VM key
 * marked stale by another process (our lease lapsed while we were cut
 * off) is still ours unless a reaper claimed it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-error.h"
#include "gsm-etcd-view-private.h"
#include "gsm-json-private.h"
#include "gsm-session-private.h"

/* ---- tables that share their bulk ---------------------------------------- */

/*
 * A map from a key to a refcounted value: a base table shared with other
 * maps, and the few keys that differ (a NULL value: removed).
 */
typedef struct
{
  GHashTable *base;
  GHashTable *delta; /* NULL if none differ */
} KeyMap;

static void
session_key_release (gpointer data)
{
  if (data != NULL)
    g_atomic_rc_box_release (data);
}

static void
vm_key_clear (gpointer data)
{
  GsmEtcdVmKey *vk = data;

  g_free (vk->owner);
  g_clear_object (&vk->entry);
}

static void
vm_key_release (gpointer data)
{
  if (data != NULL)
    g_atomic_rc_box_release_full (data, vm_key_clear);
}

static gpointer
acquire (gpointer data)
{
  return data != NULL ? g_atomic_rc_box_acquire (data) : NULL;
}

static GHashTable *
keymap_table_new (GDestroyNotify release)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, release);
}

static gpointer
keymap_lookup (const KeyMap *map,
               const char   *key)
{
  gpointer value;

  if (map->delta != NULL && g_hash_table_lookup_extended (map->delta, key, NULL, &value))
    return value;
  return g_hash_table_lookup (map->base, key);
}

static void
keymap_clear (KeyMap *map)
{
  g_clear_pointer (&map->base, g_hash_table_unref);
  g_clear_pointer (&map->delta, g_hash_table_unref);
}

/* @old with @changes on top. */
static KeyMap
keymap_derive (const KeyMap  *old,
               GHashTable    *changes,
               GDestroyNotify release)
{
  GHashTable    *delta = keymap_table_new (release);
  guint          base_size = g_hash_table_size (old->base);
  GHashTableIter iter;
  gpointer       key, value;
  KeyMap         map;

  if (old->delta != NULL)
    {
      g_hash_table_iter_init (&iter, old->delta);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (delta, g_strdup (key), acquire (value));
    }
  g_hash_table_iter_init (&iter, changes);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (delta, g_strdup (key), acquire (value));

  if (g_hash_table_size (delta) <= MAX (32, base_size / 32))
    {
      map.base = g_hash_table_ref (old->base);
      map.delta = delta;
      return map;
    }

  /* Enough differ: a table of its own. */
  map.base = keymap_table_new (release);
  map.delta = NULL;
  g_hash_table_iter_init (&iter, old->base);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (map.base, g_strdup (key), acquire (value));
  g_hash_table_iter_init (&iter, delta);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (value != NULL)
      g_hash_table_insert (map.base, g_strdup (key), acquire (value));
    else
      g_hash_table_remove (map.base, key);
  g_hash_table_unref (delta);

  return map;
}

/* ---- the view ------------------------------------------------------------ */

struct _GsmEtcdView
{
  gatomicrefcount      ref;
  GsmRegistrySnapshot *snapshot;
  KeyMap               sessions; /* session id → GsmEtcdSessionKey */
  KeyMap               vms;      /* vm id → GsmEtcdVmKey */
  gint64               revision;
};

GsmEtcdView *
_gsm_etcd_view_ref (GsmEtcdView *view)
{
  g_atomic_ref_count_inc (&view->ref);
  return view;
}

void
_gsm_etcd_view_unref (GsmEtcdView *view)
{
  if (view != NULL && g_atomic_ref_count_dec (&view->ref))
    {
      _gsm_registry_snapshot_unref (view->snapshot);
      keymap_clear (&view->sessions);
      keymap_clear (&view->vms);
      g_free (view);
    }
}

GsmRegistrySnapshot *
_gsm_etcd_view_get_snapshot (GsmEtcdView *view)
{
  return view->snapshot;
}

gint64
_gsm_etcd_view_get_revision (GsmEtcdView *view)
{
  return view->revision;
}

GsmEtcdSessionKey *
_gsm_etcd_view_lookup_session (GsmEtcdView *view,
                               const char  *session_id)
{
  return keymap_lookup (&view->sessions, session_id);
}

GsmEtcdVmKey *
_gsm_etcd_view_lookup_vm (GsmEtcdView *view,
                          const char  *vm_id)
{
  return keymap_lookup (&view->vms, vm_id);
}

/* Set once, before the session is shared. */
void
_gsm_etcd_mark_leased (GsmSession *session)
{
  session->leased = TRUE;
}

gboolean
_gsm_etcd_is_leased (GsmSession *session)
{
  return session->leased;
}

/* ---- keys to entries ----------------------------------------------------- */

/* Is the key free of NULs (and so usable as a C string)? */
gboolean
_gsm_etcd_key_is_clean (GsmEtcdKv *kv)
{
  return strlen (kv->key) == kv->key_len;
}

typedef struct
{
  gint64      mod_revision;
  GsmSession *session;
} Parsed;

static void
parsed_free (gpointer data)
{
  Parsed *p = data;

  g_object_unref (p->session);
  g_free (p);
}

GHashTable *
_gsm_etcd_parsed_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, parsed_free);
}

/* Is @key's entry at @mod_revision already parsed? */
gboolean
_gsm_etcd_parsed_has (GHashTable *parsed,
                      const char *key,
                      gint64      mod_revision)
{
  Parsed *p = g_hash_table_lookup (parsed, key);

  return p != NULL && p->mod_revision == mod_revision;
}

/* After a write: what the key holds at @mod_revision, already parsed. */
void
_gsm_etcd_parsed_put (GHashTable *parsed,
                      const char *key,
                      gint64      mod_revision,
                      GsmSession *session)
{
  Parsed *p = g_new0 (Parsed, 1);

  p->mod_revision = mod_revision;
  p->session = g_object_ref (session);
  g_hash_table_replace (parsed, g_strdup (key), p);
}

/* The entry behind a key, parsed once per revision of the key (looked up
 * in the context's cache); recorded in @parsed. */
static GsmSession *
parse_entry (GsmEtcdViewContext *ctx,
             GHashTable         *parsed,
             GsmEtcdKv          *kv,
             const char         *expected_id,
             GError            **error)
{
  Parsed     *p = g_hash_table_lookup (*ctx->parsed, kv->key);
  GsmSession *session;
  gsize       len;
  const char *data = g_bytes_get_data (kv->value, &len);

  if (p != NULL && p->mod_revision == kv->mod_revision)
    session = g_object_ref (p->session);
  else
    {
      g_autoptr (JsonParser) parser = NULL;

      if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, error))
        return NULL;
      parser = json_parser_new_immutable ();
      session = _gsm_session_new_from_json (expected_id, data, len, parser, error);
      if (session == NULL)
        return NULL;
    }

  _gsm_etcd_parsed_put (parsed, kv->key, kv->mod_revision, session);
  return session;
}

/*
 * What the snapshot shows for the owner of @vk, whose session key is gone:
 * the VM key's entry, or %NULL for our own VM claimed by a reaper (no
 * longer ours: we enter again without it).
 */
static GsmSession *
orphan_entry (GsmEtcdViewContext *ctx,
              GsmEtcdVmKey       *vk)
{
  if (g_strcmp0 (vk->owner, ctx->own_session_id) == 0 && _gsm_session_is_stale (vk->entry))
    {
      /* Our lease lapsed and another process recorded the VM as an
       * orphan: still ours unless a reaper claimed it. The next update
       * (the keepalive thread makes one) writes it back as live. */
      if (_gsm_session_get_member (vk->entry, "reap_claim") != NULL)
        return NULL;
      return _gsm_session_with_stale (vk->entry, 0);
    }

  /* Its process is dead, or cut off from etcd for longer than the TTL:
   * without a lease it is dead to every reader, and the first process that
   * finds it records when (stale_since, in the VM key), so that every host
   * counts the reaper's grace period from that moment. */
  return g_object_ref (vk->entry);
}

static GsmEtcdVmKey *
vm_key_new (GsmEtcdKv  *kv,
            GsmSession *entry)
{
  GsmEtcdVmKey *vk = g_atomic_rc_box_new0 (GsmEtcdVmKey);

  vk->mod_revision = kv->mod_revision;
  vk->owner = g_strdup (gsm_session_get_session_id (entry));
  vk->entry = g_object_ref (entry);
  return vk;
}

static GsmEtcdSessionKey *
session_key_new (GsmEtcdKv *kv)
{
  GsmEtcdSessionKey *sk = g_atomic_rc_box_new0 (GsmEtcdSessionKey);

  sk->mod_revision = kv->mod_revision;
  sk->lease = kv->lease;
  return sk;
}

/* A VM key's entry, checked to be about that VM. */
static GsmSession *
parse_vm_entry (GsmEtcdViewContext *ctx,
                GHashTable         *parsed,
                GsmEtcdKv          *kv,
                const char         *vm_id)
{
  g_autoptr (GError) error = NULL;
  GsmSession *entry = parse_entry (ctx, parsed, kv, NULL, &error);

  if (entry != NULL && g_strcmp0 (gsm_session_get_vm_id (entry), vm_id) != 0)
    {
      g_set_error (&error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "the record is about VM “%s”", gsm_session_get_vm_id (entry));
      g_clear_object (&entry);
    }
  if (entry == NULL)
    g_warning ("etcd at %s: ignoring key “%s”: %s", ctx->endpoint, kv->key, error->message);
  return entry;
}

/*
 * _gsm_etcd_view_new_from_range:
 * @range: a range read of PREFIX/, values included
 *
 * Builds the view of a range read. The entries parsed before at the same
 * revision of their key are reused; *@ctx->parsed afterwards holds exactly
 * the keys of @range.
 */
GsmEtcdView *
_gsm_etcd_view_new_from_range (GsmEtcdViewContext *ctx,
                               GsmEtcdResponse    *range)
{
  GHashTable  *parsed = _gsm_etcd_parsed_new ();
  GHashTable  *table = _gsm_registry_new_table ();
  GsmEtcdView *view = g_new0 (GsmEtcdView, 1);
  gsize        sessions_len = strlen (ctx->sessions_prefix);
  gsize        vms_len = strlen (ctx->vms_prefix);

  g_atomic_ref_count_init (&view->ref);
  view->sessions.base = keymap_table_new (session_key_release);
  view->vms.base = keymap_table_new (vm_key_release);
  view->revision = range->revision;

  /* Sessions first: they decide whether a VM's owner is alive. */
  for (guint i = 0; i < range->kvs->len; i++)
    {
      GsmEtcdKv *kv = range->kvs->pdata[i];
      g_autoptr (GsmSession) session = NULL;
      g_autoptr (GError) error = NULL;
      const char *id;

      if (!_gsm_etcd_key_is_clean (kv) || !g_str_has_prefix (kv->key, ctx->sessions_prefix))
        continue;
      id = kv->key + sessions_len;
      g_hash_table_replace (view->sessions.base, g_strdup (id), session_key_new (kv));

      session = parse_entry (ctx, parsed, kv, id, &error);
      if (session == NULL)
        {
          g_warning ("etcd at %s: ignoring key “%s”: %s", ctx->endpoint, kv->key, error->message);
          continue;
        }
      if (kv->lease != 0 && !_gsm_session_is_stale (session))
        _gsm_etcd_mark_leased (session);
      _gsm_registry_table_put (table, session);
    }

  for (guint i = 0; i < range->kvs->len; i++)
    {
      GsmEtcdKv *kv = range->kvs->pdata[i];
      g_autoptr (GsmSession) entry = NULL;
      g_autoptr (GsmSession) shown = NULL;
      GsmEtcdVmKey *vk;
      const char   *vm_id;

      if (!_gsm_etcd_key_is_clean (kv) || !g_str_has_prefix (kv->key, ctx->vms_prefix))
        continue;
      vm_id = kv->key + vms_len;
      entry = parse_vm_entry (ctx, parsed, kv, vm_id);
      if (entry == NULL)
        continue;

      vk = vm_key_new (kv, entry);
      g_hash_table_replace (view->vms.base, g_strdup (vm_id), vk);
      if (g_hash_table_contains (view->sessions.base, vk->owner))
        continue;
      shown = orphan_entry (ctx, vk);
      if (shown != NULL)
        _gsm_registry_table_put (table, shown);
    }

  g_hash_table_unref (*ctx->parsed);
  *ctx->parsed = parsed;

  view->snapshot = _gsm_registry_snapshot_new (table, (guint64) MAX (range->revision, 0));
  return view;
}

typedef struct
{
  GsmEtcdView *base;
  GHashTable  *sessions; /* changes: session id → GsmEtcdSessionKey, NULL if deleted */
  GHashTable  *vms;      /* changes: vm id → GsmEtcdVmKey, NULL if deleted */
} Changes;

static gboolean
session_key_exists (Changes    *c,
                    const char *id)
{
  gpointer value;

  if (g_hash_table_lookup_extended (c->sessions, id, NULL, &value))
    return value != NULL;
  return keymap_lookup (&c->base->sessions, id) != NULL;
}

static GsmEtcdVmKey *
current_vm_key (Changes    *c,
                const char *vm_id)
{
  gpointer value;

  if (g_hash_table_lookup_extended (c->vms, vm_id, NULL, &value))
    return value;
  return keymap_lookup (&c->base->vms, vm_id);
}

static void
apply_session_event (GsmEtcdViewContext *ctx,
                     Changes            *c,
                     GsmRegistryTxn     *txn,
                     GsmEtcdEvent       *ev,
                     const char         *id)
{
  GsmEtcdKv *kv = ev->kv;

  if (ev->type == GSM_ETCD_EVENT_PUT)
    {
      g_autoptr (GsmSession) session = NULL;
      g_autoptr (GError) error = NULL;

      g_hash_table_replace (c->sessions, g_strdup (id), session_key_new (kv));
      session = parse_entry (ctx, *ctx->parsed, kv, id, &error);
      if (session == NULL)
        {
          g_warning ("etcd at %s: ignoring key “%s”: %s", ctx->endpoint, kv->key, error->message);
          _gsm_registry_txn_remove (txn, id);
          return;
        }
      if (kv->lease != 0 && !_gsm_session_is_stale (session))
        _gsm_etcd_mark_leased (session);
      _gsm_registry_txn_put (txn, session);
    }
  else
    {
      GsmSession   *old = _gsm_registry_txn_lookup (txn, id);
      const char   *vm_id = old ? gsm_session_get_vm_id (old) : NULL;
      GsmEtcdVmKey *vk = vm_id ? current_vm_key (c, vm_id) : NULL;
      g_autoptr (GsmSession) shown = NULL;

      g_hash_table_replace (c->sessions, g_strdup (id), NULL);
      g_hash_table_remove (*ctx->parsed, kv->key);
      /* Its lease expired (or it closed): its VM key, if it still names
       * it, is what is left of it. */
      if (vk != NULL && g_str_equal (vk->owner, id))
        shown = orphan_entry (ctx, vk);
      if (shown != NULL)
        _gsm_registry_txn_put (txn, shown);
      else
        _gsm_registry_txn_remove (txn, id);
    }
}

/*
 * The VM key of @vm_id changes hands (to @new_owner) or goes (%NULL): its
 * previous owner, shown only through that key (no session key), is gone
 * from the snapshot.
 */
static void
forget_previous_owner (Changes        *c,
                       GsmRegistryTxn *txn,
                       const char     *vm_id,
                       const char     *new_owner)
{
  GsmEtcdVmKey *old = current_vm_key (c, vm_id);
  GsmSession   *shown;

  if (old == NULL || g_strcmp0 (old->owner, new_owner) == 0 || session_key_exists (c, old->owner))
    return;
  shown = _gsm_registry_txn_lookup (txn, old->owner);
  if (shown != NULL && g_strcmp0 (gsm_session_get_vm_id (shown), vm_id) == 0)
    _gsm_registry_txn_remove (txn, old->owner);
}

static void
apply_vm_event (GsmEtcdViewContext *ctx,
                Changes            *c,
                GsmRegistryTxn     *txn,
                GsmEtcdEvent       *ev,
                const char         *vm_id)
{
  GsmEtcdKv *kv = ev->kv;

  if (ev->type == GSM_ETCD_EVENT_PUT)
    {
      g_autoptr (GsmSession) entry = parse_vm_entry (ctx, *ctx->parsed, kv, vm_id);
      g_autoptr (GsmSession) shown = NULL;
      GsmEtcdVmKey *vk;

      if (entry == NULL)
        return;
      forget_previous_owner (c, txn, vm_id, gsm_session_get_session_id (entry));
      vk = vm_key_new (kv, entry);
      g_hash_table_replace (c->vms, g_strdup (vm_id), vk);
      if (session_key_exists (c, vk->owner))
        return;
      shown = orphan_entry (ctx, vk);
      if (shown != NULL)
        _gsm_registry_txn_put (txn, shown);
      else
        _gsm_registry_txn_remove (txn, vk->owner);
    }
  else
    {
      /* Reaped (or unregistered): a session without a session key had
       * nothing else. */
      forget_previous_owner (c, txn, vm_id, NULL);
      g_hash_table_replace (c->vms, g_strdup (vm_id), NULL);
      g_hash_table_remove (*ctx->parsed, kv->key);
    }
}

/*
 * _gsm_etcd_view_apply_events:
 * @events: (element-type GsmEtcdEvent): the events of one watch response,
 *   in order
 * @revision: the revision they bring the view to
 *
 * Returns: (transfer full): @base with @events applied
 */
GsmEtcdView *
_gsm_etcd_view_apply_events (GsmEtcdViewContext *ctx,
                             GsmEtcdView        *base,
                             GPtrArray          *events,
                             gint64              revision)
{
  g_autoptr (GsmRegistryTxn) txn = _gsm_registry_txn_new (base->snapshot);
  gsize        sessions_len = strlen (ctx->sessions_prefix);
  gsize        vms_len = strlen (ctx->vms_prefix);
  GsmEtcdView *view;
  Changes      c;

  c.base = base;
  c.sessions = keymap_table_new (session_key_release);
  c.vms = keymap_table_new (vm_key_release);

  for (guint i = 0; i < events->len; i++)
    {
      GsmEtcdEvent *ev = events->pdata[i];

      if (!_gsm_etcd_key_is_clean (ev->kv))
        continue;
      if (g_str_has_prefix (ev->kv->key, ctx->sessions_prefix))
        apply_session_event (ctx, &c, txn, ev, ev->kv->key + sessions_len);
      else if (g_str_has_prefix (ev->kv->key, ctx->vms_prefix))
        apply_vm_event (ctx, &c, txn, ev, ev->kv->key + vms_len);
    }

  view = g_new0 (GsmEtcdView, 1);
  g_atomic_ref_count_init (&view->ref);
  view->revision = MAX (revision, base->revision);
  view->snapshot = _gsm_registry_txn_apply (txn, (guint64) MAX (view->revision, 0));
  view->sessions = keymap_derive (&base->sessions, c.sessions, session_key_release);
  view->vms = keymap_derive (&base->vms, c.vms, vm_key_release);
  g_hash_table_unref (c.sessions);
  g_hash_table_unref (c.vms);

  return view;
}
