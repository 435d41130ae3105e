/* gsm-file-registry.c: the registry as files in one directory
 *
 * Files (PREFIX is GSM_FILE_PREFIX, empty by default):
 *   PREFIX vm_registry.json      every session's entry, keyed by session id
 *   PREFIX session_<pid>.json    one session's own entry
 *   PREFIX global_session.json   the last session that changed, for a quick look
 *   PREFIX vm_registry.lock      the lock file; never replaced
 *
 * Every write happens with the lock on the lock file held (gsm-lock.c),
 * and the registry is replaced atomically (a new file renamed over it, see
 * _gsm_fs_replace_at()), so a reader never sees a half-written registry
 * and needs no lock.
 *
 * Nothing is parsed twice. The last version read or written stays in
 * memory together with the identity of its file (device, inode, size,
 * mtime, ctime), and the descriptor of that file stays open so the inode
 * cannot be freed and handed to a newer file. If the identity is the same
 * the file is not read at all. If it differs, the new bytes are scanned
 * once (checking the grammar and the nesting depth) and only the entries
 * whose text changed are decoded (gsm-json.c's strict scan, then
 * json-glib). Writing joins the entries' cached texts; only a changed
 * entry is generated.
 *
 * The session file and the tracker are small files that are only read
 * with the lock held (by a rebuild, by the next writer): they are
 * rewritten in place, one page padded with blanks, which is all or
 * nothing for a killed writer and costs no new inode (see
 * _gsm_fs_rewrite_at()). They are written without fsync before the
 * registry: after a power failure they may be older, while the registry,
 * which is flushed when durable, stays whole (and a rebuild skips a
 * session file that does not parse).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-liveness-lock-private.h"
#include "gsm-lock-private.h"
#include "gsm-process-private.h"
#include "gsm-session-private.h"

#define REGISTRY_NAME "vm_registry.json"
#define TRACKER_NAME "global_session.json"
#define LOCK_NAME "vm_registry.lock"

struct _GsmFileRegistry
{
  GObject parent_instance;

  char    *dir_path;
  char    *prefix;
  char    *registry_name;
  char    *tracker_name;
  char    *lock_name;
  char    *lock_path; /* for messages */
  char    *own_session_id;
  char    *own_session_name;
  char    *own_lock_name; /* NULL if no liveness lock */
  int      own_lock_fd;   /* holds the liveness lock */
  gboolean own_session_file_checked;
  gboolean durable;
  gboolean read_only; /* a reader's view: no lock file, no writes */
  double   lock_timeout;
  int      dirfd;
  int      lock_fd;
  int      session_fd; /* our session file, rewritten in place */
  int      tracker_fd; /* the tracker, likewise */

  GMutex               mutex; /* guards everything below */
  GsmRegistrySnapshot *cache; /* last version read or written */
  GsmFileIdentity      cache_identity;
  int                  cache_fd;      /* keeps cache_identity's inode alive */
  gboolean             cache_fd_ours; /* ... opened for writing: we wrote that file */
  GsmFsSpare           spare;         /* the registry's last retired file */
  gboolean             leaving;       /* this update removes our own entry */
  guint64              generation;
  JsonParser          *parser;
  GPtrArray           *quarantine;      /* QuarantinedEntry: of cache's file, left out */
  gboolean             quarantine_kept; /* ... and written aside */
  guint                n_parsed;        /* entries decoded, for tests */
  GString             *text;            /* the last text written (its buffer is reused) */

  GFileMonitor *monitor;
};

static void gsm_file_registry_iface_init (GsmRegistryInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (GsmFileRegistry, _gsm_file_registry, G_TYPE_OBJECT, G_IMPLEMENT_INTERFACE (GSM_TYPE_REGISTRY, gsm_file_registry_iface_init))

static void
gsm_file_registry_finalize (GObject *object)
{
  GsmFileRegistry *self = GSM_FILE_REGISTRY (object);

  if (self->monitor != NULL)
    {
      g_file_monitor_cancel (self->monitor);
      g_object_unref (self->monitor);
    }
  g_clear_pointer (&self->cache, _gsm_registry_snapshot_unref);
  if (self->cache_fd >= 0)
    close (self->cache_fd);
  _gsm_fs_spare_clear (self->dirfd, &self->spare);
  if (self->session_fd >= 0)
    close (self->session_fd);
  if (self->own_lock_fd >= 0)
    _gsm_liveness_lock_release (self->own_lock_fd);
  if (self->tracker_fd >= 0)
    close (self->tracker_fd);
  if (self->lock_fd >= 0)
    close (self->lock_fd);
  if (self->dirfd >= 0)
    close (self->dirfd);
  g_clear_object (&self->parser);
  g_clear_pointer (&self->quarantine, g_ptr_array_unref);
  if (self->text != NULL)
    g_string_free (self->text, TRUE);
  g_free (self->dir_path);
  g_free (self->prefix);
  g_free (self->registry_name);
  g_free (self->tracker_name);
  g_free (self->lock_name);
  g_free (self->lock_path);
  g_free (self->own_session_id);
  g_free (self->own_session_name);
  g_free (self->own_lock_name);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (_gsm_file_registry_parent_class)->finalize (object);
}

static void
_gsm_file_registry_class_init (GsmFileRegistryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gsm_file_registry_finalize;
}

static void
_gsm_file_registry_init (GsmFileRegistry *self)
{
  g_mutex_init (&self->mutex);
  self->dirfd = -1;
  self->lock_fd = -1;
  self->cache_fd = -1;
  self->session_fd = -1;
  self->own_lock_fd = -1;
  self->tracker_fd = -1;
  self->spare.fd = -1;
  self->spare.retiring = -1;
  self->text = g_string_sized_new (4096);
}

/* ---- the registry's text ---------------------------------------------- */

/* The text of @snapshot in @out: every entry's cached text, joined. */
static void
build_text (GsmRegistrySnapshot *snapshot,
            GString             *out)
{
  GsmRegistrySnapshotIter iter;
  const char             *key;
  GsmSession             *value;
  gboolean                first = TRUE;

  g_string_truncate (out, 0);
  g_string_append_c (out, '{');
  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, &key, &value))
    {
      gsize       len;
      const char *member = _gsm_session_get_text (value, &len);

      g_string_append (out, first ? "\n  " : ",\n  ");
      first = FALSE;
      _gsm_json_append_string (out, key);
      g_string_append (out, ": ");
      g_string_append_len (out, member, (gssize) len);
    }
  g_string_append (out, first ? "}\n" : "\n}\n");
}

/* ---- reading ----------------------------------------------------------- */

static void
unref_if_set (gpointer p)
{
  if (p != NULL)
    g_object_unref (p);
}

typedef struct
{
  char         *key;
  GsmJsonMember member;
} ChangedEntry;

/*
 * An entry of the registry file that cannot be read (a member of the
 * wrong type, a session id that is not its key, a key that appears
 * twice): it is left out, and kept verbatim in a file of its own, while
 * every other entry stays (see quarantine_locked()).
 */
typedef struct
{
  char *key;        /* decoded, or NULL if it cannot be */
  char *key_text;   /* as written, quotes included */
  char *value_text; /* as written */
  char *message;    /* why it cannot be read */
} QuarantinedEntry;

static void
quarantined_entry_free (gpointer data)
{
  QuarantinedEntry *q = data;

  g_free (q->key);
  g_free (q->key_text);
  g_free (q->value_text);
  g_free (q->message);
  g_free (q);
}

static void
quarantine_add (GPtrArray           *quarantine,
                const char          *key,
                const GsmJsonMember *member,
                const char          *message)
{
  QuarantinedEntry *q = g_new0 (QuarantinedEntry, 1);

  q->key = g_strdup (key);
  q->key_text = g_strndup (member->key - 1, member->key_len + 2);
  q->value_text = g_strndup (member->value, member->value_len);
  q->message = g_strdup (message);
  g_ptr_array_add (quarantine, q);
}

typedef struct
{
  GsmFileRegistry *self;
  GHashTable      *table;   /* key → GsmSession (unchanged) or NULL (changed) */
  GArray          *changed; /* ChangedEntry */
  GPtrArray       *quarantine;
} ScanState;

static void
changed_entry_clear (gpointer data)
{
  g_free (((ChangedEntry *) data)->key);
}

static gboolean
scan_member (const GsmJsonMember *member,
             gpointer             user_data,
             GError             **error)
{
  ScanState       *st = user_data;
  GsmFileRegistry *self = st->self;
  char            *key = _gsm_json_decode_key (member);
  GsmSession      *cached = NULL;
  ChangedEntry     entry;

  if (key == NULL)
    {
      quarantine_add (st->quarantine, NULL, member, "its key is not a valid string");
      return TRUE;
    }

  if (g_hash_table_contains (st->table, key))
    {
      /* We never write one; json-glib and others disagree on which wins:
       * the first is read, as our scan and most readers do. */
      quarantine_add (st->quarantine, key, member, "a second entry with the same key");
      g_free (key);
      return TRUE;
    }

  if (self->cache != NULL)
    cached = _gsm_registry_snapshot_lookup (self->cache, key);

  if (cached != NULL)
    {
      gsize       len;
      const char *text = _gsm_session_get_text (cached, &len);

      if (len == member->value_len && memcmp (text, member->value, len) == 0)
        {
          /* Keyed by the session's own string, like every table. */
          g_hash_table_insert (st->table, key, g_object_ref (cached));
          return TRUE;
        }
    }

  g_hash_table_insert (st->table, key, NULL);
  entry.key = g_strdup (key);
  entry.member = *member;
  g_array_append_val (st->changed, entry);

  return TRUE;
}

/* Builds the sessions of the changed entries into @table; one that
 * cannot be read goes to @quarantine instead, and out of @table. */
static void
parse_changed (GsmFileRegistry *self,
               GArray          *changed,
               GHashTable      *table,
               GPtrArray       *quarantine)
{
  for (guint i = 0; i < changed->len; i++)
    {
      ChangedEntry *e = &g_array_index (changed, ChangedEntry, i);
      g_autoptr (GError) local_error = NULL;
      GsmSession *session;

      self->n_parsed++;
      session = _gsm_session_new_from_json (e->key, e->member.value, e->member.value_len,
                                            self->parser, &local_error);
      if (session == NULL)
        {
          quarantine_add (quarantine, e->key, &e->member, local_error->message);
          g_hash_table_remove (table, e->key);
          continue;
        }
      g_hash_table_insert (table, g_strdup (e->key), session);
    }
}

/* The scan's table (owned keys) as a snapshot table (keys owned by the
 * sessions). */
static GHashTable *
to_snapshot_table (GHashTable *scanned)
{
  GHashTable    *table = _gsm_registry_new_table ();
  GHashTableIter iter;
  gpointer       value;

  g_hash_table_iter_init (&iter, scanned);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    _gsm_registry_table_put (table, value);

  return table;
}

/*
 * Returns the current entries, reading the file only if it is not the one
 * cached. With the mutex held.
 */
static GsmRegistrySnapshot *
load_locked (GsmFileRegistry *self,
             GError         **error)
{
  GsmFileIdentity identity;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GHashTable) table = NULL;
  g_autoptr (GHashTable) scanned = NULL;
  g_autoptr (GArray) changed = NULL;
  g_autoptr (GPtrArray) quarantine = NULL;
  ScanState   st;
  const char *data;
  gsize       len;
  int         fd = -1;

  if (!_gsm_fs_stat_at (self->dirfd, self->registry_name, &identity, &local_error))
    {
      if (local_error != NULL)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      /* No registry yet. */
      if (self->cache == NULL || _gsm_registry_snapshot_get_size (self->cache) != 0 ||
          self->cache_identity.ino != 0)
        {
          g_clear_pointer (&self->cache, _gsm_registry_snapshot_unref);
          self->cache = _gsm_registry_snapshot_new (NULL, ++self->generation);
          memset (&self->cache_identity, 0, sizeof self->cache_identity);
          if (self->cache_fd >= 0)
            close (self->cache_fd);
          self->cache_fd = -1;
          g_clear_pointer (&self->quarantine, g_ptr_array_unref);
        }
      return _gsm_registry_snapshot_ref (self->cache);
    }

  if (self->cache != NULL && self->cache_fd >= 0 &&
      _gsm_fs_identity_equal (&identity, &self->cache_identity))
    return _gsm_registry_snapshot_ref (self->cache);

  bytes = _gsm_fs_read_at (self->dirfd, self->dir_path, self->registry_name,
                           GSM_MAX_REGISTRY_SIZE, &identity, &fd, &local_error);
  if (bytes == NULL)
    {
      if (local_error == NULL)
        return load_locked (self, error); /* removed in between */
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  data = g_bytes_get_data (bytes, &len);
  scanned = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unref_if_set);
  changed = g_array_new (FALSE, FALSE, sizeof (ChangedEntry));
  g_array_set_clear_func (changed, changed_entry_clear);
  quarantine = g_ptr_array_new_with_free_func (quarantined_entry_free);
  memset (&st, 0, sizeof st);
  st.self = self;
  st.table = scanned;
  st.changed = changed;
  st.quarantine = quarantine;
  /* Only a file that is not one JSON object as a whole is corrupt; an
   * entry that cannot be read costs that entry alone. */
  if (!_gsm_json_scan_object (data, len, GSM_JSON_MAX_DEPTH, scan_member, &st, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "Registry “%s/%s” is corrupt: %s", self->dir_path, self->registry_name,
                   local_error->message);
      close (fd);
      return NULL;
    }
  parse_changed (self, changed, scanned, quarantine);
  table = to_snapshot_table (scanned);

  g_clear_pointer (&self->cache, _gsm_registry_snapshot_unref);
  self->cache = _gsm_registry_snapshot_new (g_steal_pointer (&table), ++self->generation);
  self->cache_identity = identity;
  if (self->cache_fd >= 0)
    close (self->cache_fd);
  self->cache_fd = fd;
  self->cache_fd_ours = FALSE;

  g_clear_pointer (&self->quarantine, g_ptr_array_unref);
  if (quarantine->len > 0)
    {
      /* The next write leaves them out. */
      self->quarantine = g_steal_pointer (&quarantine);
      self->quarantine_kept = FALSE;
    }

  return _gsm_registry_snapshot_ref (self->cache);
}

/* ---- writing ----------------------------------------------------------- */

static gboolean
write_registry_locked (GsmFileRegistry     *self,
                       GsmRegistrySnapshot *snapshot,
                       GError             **error)
{
  GString        *out = self->text;
  GsmFileIdentity identity;
  int             fd = -1;

  build_text (snapshot, out);
  if (out->len > GSM_MAX_REGISTRY_SIZE)
    {
      /* Every reader would refuse it, and rebuild the registry from the
       * session files alone. */
      g_set_error (error, GSM_ERROR, GSM_ERROR_FAILED,
                   "Registry “%s/%s” would be %" G_GSIZE_FORMAT " bytes, more than the limit of "
                   "%d: not written",
                   self->dir_path, self->registry_name, out->len,
                   GSM_MAX_REGISTRY_SIZE);
      return FALSE;
    }
  /* A session that leaves keeps no spare behind it. */
  if (self->leaving)
    _gsm_fs_spare_clear (self->dirfd, &self->spare);
  else if (self->cache_fd >= 0 && self->cache_fd_ours)
    {
      /* The file this write retires: it becomes the spare. Without its
       * descriptor the cache cannot be trusted, so it is read again
       * should the write fail. */
      self->spare.retiring = self->cache_fd;
      self->cache_fd = -1;
    }
  if (!_gsm_fs_replace_at (self->dirfd, self->dir_path, self->registry_name, out->str, out->len,
                           self->durable, self->leaving ? NULL : &self->spare, &identity, &fd,
                           error))
    return FALSE;
  g_clear_pointer (&self->quarantine, g_ptr_array_unref);

  g_clear_pointer (&self->cache, _gsm_registry_snapshot_unref);
  self->cache = _gsm_registry_snapshot_ref (snapshot);
  self->cache_identity = identity;
  if (self->cache_fd >= 0)
    close (self->cache_fd);
  self->cache_fd = fd;
  self->cache_fd_ours = TRUE;

  return TRUE;
}

static void
append_tracker_string (GString    *out,
                       const char *key,
                       const char *value)
{
  g_string_append_printf (out, ",\n  \"%s\": ", key);
  if (value != NULL)
    _gsm_json_append_string (out, value);
  else
    g_string_append (out, "null");
}

static gboolean
write_tracker_locked (GsmFileRegistry *self,
                      GsmSession      *session,
                      GError         **error)
{
  g_autoptr (GString) out = g_string_sized_new (256);

  g_string_append (out, "{\n  \"session_id\": ");
  _gsm_json_append_string (out, gsm_session_get_session_id (session));
  g_string_append_printf (out, ",\n  \"pid\": %d", gsm_session_get_pid (session));
  append_tracker_string (out, "hostname", gsm_session_get_hostname (session));
  g_string_append (out, ",\n  \"created_at\": ");
  _gsm_json_append_double (out, gsm_session_get_created_at (session));
  append_tracker_string (out, "vm_id", gsm_session_get_vm_id (session));
  append_tracker_string (out, "zone", gsm_session_get_zone (session));
  append_tracker_string (out, "status", gsm_session_get_status (session));
  g_string_append (out, "\n}\n");

  return _gsm_fs_rewrite_at (self->dirfd, self->dir_path, self->tracker_name, out->str, out->len,
                             &self->tracker_fd, error);
}

/* Is the tracker about @session_id? Read without trusting it. */
static gboolean
tracker_is_about (GsmFileRegistry *self,
                  const char      *session_id)
{
  g_autoptr (GBytes) bytes = NULL;
  gsize            len;
  const char      *data;
  g_autofree char *needle = g_strdup_printf ("\"session_id\": \"%s\"", session_id);

  bytes = _gsm_fs_read_at (self->dirfd, self->dir_path, self->tracker_name,
                           GSM_MAX_SESSION_FILE_SIZE, NULL, NULL, NULL);
  if (bytes == NULL)
    return FALSE;
  data = g_bytes_get_data (bytes, &len);
  return g_strstr_len (data, (gssize) len, needle) != NULL;
}

/* Whose is the session file @name? Returns its session id, or %NULL if it
 * is missing or unreadable. */
static char *
session_file_owner (GsmFileRegistry *self,
                    const char      *name)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GsmSession) session = NULL;
  const char *data;
  gsize       len;

  bytes = _gsm_fs_read_at (self->dirfd, self->dir_path, name, GSM_MAX_SESSION_FILE_SIZE,
                           NULL, NULL, NULL);
  if (bytes == NULL)
    return NULL;
  data = g_bytes_get_data (bytes, &len);
  if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, NULL))
    return NULL;
  session = _gsm_session_new_from_json (NULL, data, len, self->parser, NULL);
  return session ? g_strdup (gsm_session_get_session_id (session)) : NULL;
}

static char *
aside_session_file_name (GsmFileRegistry *self,
                         int              pid,
                         const char      *session_id)
{
  /* A hash, not the id itself: an id read from a file may hold anything,
   * "/" included. */
  return g_strdup_printf ("%ssession_%d_%08x.json", self->prefix, pid, g_str_hash (session_id));
}

/*
 * Our session file's name is that of a session of an earlier process with
 * our pid (pids are reused, and the directory outlives reboots). If that
 * session is still in the registry (a dead one still owning a VM), its
 * file is its recovery copy: keep it under another name.
 */
static void
keep_previous_session_file (GsmFileRegistry *self,
                            GsmRegistryTxn  *txn,
                            int              pid)
{
  g_autofree char *owner = session_file_owner (self, self->own_session_name);
  g_autofree char *aside = NULL;

  if (owner == NULL || g_str_equal (owner, self->own_session_id) ||
      _gsm_registry_txn_lookup (txn, owner) == NULL)
    return;

  aside = aside_session_file_name (self, pid, owner);
  if (renameat (self->dirfd, self->own_session_name, self->dirfd, aside) != 0)
    g_warning ("Cannot keep the session file of session %s as “%s/%s”: %s",
               owner, self->dir_path, aside, g_strerror (errno));
}

/* Removes the files of sessions this update removed: only those that are
 * theirs (a session file naming that session, a lock file no process
 * holds). */
static void
remove_session_files (GsmFileRegistry *self,
                      GsmRegistryTxn  *txn)
{
  GHashTableIter iter;
  gpointer       key, value;

  g_hash_table_iter_init (&iter, _gsm_registry_txn_get_changes (txn));
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GsmSession      *gone;
      char            *names[2];
      g_autofree char *aside = NULL;

      if (value != NULL || g_strcmp0 (key, self->own_session_id) == 0)
        continue;
      gone = _gsm_registry_snapshot_lookup (_gsm_registry_txn_get_base (txn), key);
      if (gone == NULL)
        continue;

      names[0] = _gsm_file_registry_session_file_name (self->prefix, gsm_session_get_pid (gone),
                                                       key, FALSE);
      names[1] = _gsm_file_registry_session_file_name (self->prefix, gsm_session_get_pid (gone),
                                                       key, TRUE);
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        {
          g_autofree char *owner = names[i] ? session_file_owner (self, names[i]) : NULL;

          if (g_strcmp0 (owner, key) == 0)
            unlinkat (self->dirfd, names[i], 0);
          g_clear_pointer (&names[i], g_free);
        }
      aside = aside_session_file_name (self, gsm_session_get_pid (gone), key);
      unlinkat (self->dirfd, aside, 0);

      if (gone->lock_file != NULL && g_str_has_prefix (gone->lock_file, self->prefix) &&
          _gsm_liveness_lock_check (self->dirfd, gone->lock_file) == GSM_LIVENESS_LOCK_FREE)
        unlinkat (self->dirfd, gone->lock_file, 0);
    }
}

/*
 * What only the registry knew of a dead session that still owns a VM (its
 * stale mark, a reaper's claim and attempts) is also written to its
 * session file, so that a rebuild from the session files keeps it. One
 * without a session file here (another host's) gets one.
 */
static void
write_stale_session_files (GsmFileRegistry *self,
                           GsmRegistryTxn  *txn)
{
  GHashTableIter iter;
  gpointer       key, value;

  g_hash_table_iter_init (&iter, _gsm_registry_txn_get_changes (txn));
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autoptr (GError) local_error = NULL;
      g_autofree char *name = NULL;
      g_autofree char *owner = NULL;
      const char      *text;
      gsize            len;
      int              pid, fd = -1;

      if (value == NULL || g_strcmp0 (key, self->own_session_id) == 0 ||
          !gsm_session_get_has_vm (value) || !_gsm_session_is_stale (value))
        continue;

      /* Its file in the seed's layout if it has one, else the one named
       * after it (made now if it had none). */
      pid = gsm_session_get_pid (value);
      name = _gsm_file_registry_session_file_name (self->prefix, pid, key, TRUE);
      owner = session_file_owner (self, name);
      if (g_strcmp0 (owner, key) != 0)
        {
          g_free (name);
          name = _gsm_file_registry_session_file_name (self->prefix, pid, key, FALSE);
        }
      text = _gsm_session_get_text (value, &len);
      if (!_gsm_fs_rewrite_at (self->dirfd, self->dir_path, name, text, len, &fd, &local_error))
        g_warning ("Cannot keep the entry of stale session %s in “%s/%s” for a rebuild: %s",
                   (const char *) key, self->dir_path, name, local_error->message);
      if (fd >= 0)
        close (fd);
    }
}

/* The session file and tracker follow this process's own entry. */
static gboolean
write_own_files_locked (GsmFileRegistry *self,
                        GsmRegistryTxn  *txn,
                        GError         **error)
{
  GsmSession *before;
  gpointer    value;
  gsize       len;
  const char *text;

  if (self->own_session_id == NULL ||
      !g_hash_table_lookup_extended (_gsm_registry_txn_get_changes (txn),
                                     self->own_session_id, NULL, &value))
    return TRUE;

  if (value == NULL)
    {
      if (tracker_is_about (self, self->own_session_id) &&
          !_gsm_fs_unlink_at (self->dirfd, self->dir_path, self->tracker_name, error))
        return FALSE;
      /* No entry names the lock any more: its file can go (the lock
       * itself stays held until the registry is freed). */
      if (self->own_lock_name != NULL)
        unlinkat (self->dirfd, self->own_lock_name, 0);
      return _gsm_fs_unlink_at (self->dirfd, self->dir_path, self->own_session_name, error);
    }

  if (!self->own_session_file_checked)
    {
      keep_previous_session_file (self, txn, gsm_session_get_pid (value));
      self->own_session_file_checked = TRUE;
    }

  text = _gsm_session_get_text (value, &len);
  if (!_gsm_fs_rewrite_at (self->dirfd, self->dir_path, self->own_session_name, text, len,
                           &self->session_fd, error))
    return FALSE;

  /* The tracker shows the session whose VM changed last. */
  before = _gsm_registry_snapshot_lookup (_gsm_registry_txn_get_base (txn), self->own_session_id);
  if (g_strcmp0 (before ? gsm_session_get_vm_id (before) : NULL, gsm_session_get_vm_id (value)) == 0)
    return TRUE;

  return write_tracker_locked (self, value, error);
}

/* ---- recovery ---------------------------------------------------------- */

static gboolean
is_session_file_name (const char *name,
                      const char *prefix)
{
  const char *p;

  /* PREFIX session_<pid>.json, PREFIX session_<pid>_<session id>.json,
   * or PREFIX session_<pid>_<hash>.json for the file of an earlier session
   * whose pid was reused. */
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
  if (*p == '_')
    {
      p++;
      while (g_ascii_isxdigit (*p) || *p == '-')
        p++;
    }
  return g_str_equal (p, ".json");
}

/* A name for a file kept aside: REGISTRY.WHAT-<time>-<random>. */
static char *
aside_name (GsmFileRegistry *self,
            const char      *what)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *stamp = g_date_time_format (now, "%Y%m%dT%H%M%S");

  return g_strdup_printf ("%s.%s-%s-%06x", self->registry_name, what, stamp,
                          g_random_int_range (0, 0xffffff));
}

/*
 * Writes the entries of the cached file that cannot be read, verbatim, to
 * a file of their own (REGISTRY.quarantine-<time>-<random>, a JSON object
 * of them), with a warning naming it and each entry. The next write of
 * the registry leaves them out. With the lock and the mutex held.
 */
static gboolean
quarantine_locked (GsmFileRegistry *self,
                   GError         **error)
{
  g_autofree char *name = aside_name (self, "quarantine");
  g_autoptr (GString) out = g_string_new ("{");

  for (guint i = 0; i < self->quarantine->len; i++)
    {
      QuarantinedEntry *q = self->quarantine->pdata[i];

      g_string_append (out, i > 0 ? ",\n  " : "\n  ");
      g_string_append (out, q->key_text);
      g_string_append (out, ": ");
      g_string_append (out, q->value_text);
    }
  g_string_append (out, "\n}\n");

  if (!_gsm_fs_replace_at (self->dirfd, self->dir_path, name, out->str, out->len,
                           self->durable, NULL, NULL, NULL, error))
    {
      g_prefix_error (error, "Registry “%s/%s” has %u entries that cannot be read, which "
                             "cannot be kept aside: ",
                      self->dir_path, self->registry_name,
                      self->quarantine->len);
      return FALSE;
    }

  for (guint i = 0; i < self->quarantine->len; i++)
    {
      QuarantinedEntry *q = self->quarantine->pdata[i];

      g_warning ("Registry “%s/%s”: entry “%s” cannot be read (%s). Moved it to “%s/%s”; "
                 "every other entry is kept.",
                 self->dir_path, self->registry_name,
                 q->key != NULL ? q->key : "(a key that is not a valid string)", q->message,
                 self->dir_path, name);
    }

  return TRUE;
}

typedef struct
{
  GsmFileRegistry *self;
  GHashTable      *table;
  guint            n;
} SalvageState;

static gboolean
salvage_entry (const GsmJsonMember *member,
               gpointer             user_data,
               GError             **error)
{
  SalvageState    *st = user_data;
  g_autofree char *key = _gsm_json_decode_key (member);
  g_autoptr (GsmSession) session = NULL;

  if (key == NULL || g_hash_table_contains (st->table, key))
    return TRUE;
  session = _gsm_session_new_from_json (key, member->value, member->value_len,
                                        st->self->parser, NULL);
  if (session != NULL)
    {
      _gsm_registry_table_put (st->table, session);
      st->n++;
    }
  return TRUE;
}

/*
 * Moves a corrupt registry aside and builds a new one: first from every
 * entry of the corrupt file that is still whole (a file cut short, or
 * damaged in places, still holds most of them, with what only the
 * registry knows: stale marks, reapers' claims and attempts, entries
 * without a session file), then from the session files, for the entries
 * it lost. With the lock and the mutex held.
 */
static GsmRegistrySnapshot *
rebuild_locked (GsmFileRegistry *self,
                const GError    *why,
                GError         **error)
{
  g_autofree char     *aside = aside_name (self, "corrupt");
  GHashTable          *table = _gsm_registry_new_table ();
  GsmRegistrySnapshot *snapshot;
  DIR                 *dir;
  struct dirent       *de;
  guint                n_files = 0;
  SalvageState         salvage = { self, table, 0 };
  g_autoptr (GBytes) corrupt = NULL;
  int fd;

  corrupt = _gsm_fs_read_at (self->dirfd, self->dir_path, self->registry_name,
                             GSM_MAX_REGISTRY_SIZE, NULL, NULL, NULL);
  if (corrupt != NULL)
    {
      gsize       len;
      const char *data = g_bytes_get_data (corrupt, &len);

      _gsm_json_salvage_object (data, len, GSM_JSON_MAX_DEPTH, salvage_entry, &salvage);
    }

  if (renameat (self->dirfd, self->registry_name, self->dirfd, aside) != 0 && errno != ENOENT)
    {
      int saved_errno = errno;

      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "%s; moving it aside failed: %s", why->message, g_strerror (saved_errno));
      g_hash_table_unref (table);
      return NULL;
    }

  fd = openat (self->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  dir = fd >= 0 ? fdopendir (fd) : NULL;
  if (dir == NULL && fd >= 0)
    close (fd);
  while (dir != NULL && (de = readdir (dir)) != NULL)
    {
      g_autoptr (GBytes) bytes = NULL;
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GsmSession) session = NULL;
      const char *data;
      gsize       len;

      if (!is_session_file_name (de->d_name, self->prefix))
        continue;

      bytes = _gsm_fs_read_at (self->dirfd, self->dir_path, de->d_name, GSM_MAX_SESSION_FILE_SIZE,
                               NULL, NULL, &local_error);
      if (bytes != NULL)
        {
          data = g_bytes_get_data (bytes, &len);
          if (_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, &local_error))
            session = _gsm_session_new_from_json (NULL, data, len, self->parser, &local_error);
        }
      if (session == NULL)
        {
          if (local_error != NULL)
            g_warning ("Skipping session file “%s/%s”: %s", self->dir_path, de->d_name,
                       local_error->message);
          continue;
        }
      /* The registry's own entry knows more (marks, claims). */
      if (g_hash_table_contains (table, gsm_session_get_session_id (session)))
        continue;
      _gsm_registry_table_put (table, session);
      n_files++;
    }
  if (dir != NULL)
    closedir (dir);

  g_warning ("%s. Moved it to “%s/%s” and rebuilt it from %u session files and the %u "
             "entries it still held whole.",
             why->message, self->dir_path, aside, n_files,
             salvage.n);

  snapshot = _gsm_registry_snapshot_new (table, ++self->generation);
  if (!write_registry_locked (self, snapshot, error))
    {
      _gsm_registry_snapshot_unref (snapshot);
      return NULL;
    }

  return snapshot;
}

/* ---- the interface ----------------------------------------------------- */

static GsmRegistrySnapshot *
gsm_file_registry_update (GsmRegistry          *registry,
                          GsmRegistryUpdateFunc func,
                          gpointer              user_data,
                          GCancellable         *cancellable,
                          GError              **error)
{
  GsmFileRegistry *self = GSM_FILE_REGISTRY (registry);
  g_autoptr (GsmRegistrySnapshot) base = NULL;
  g_autoptr (GsmRegistryTxn) txn = NULL;
  g_autoptr (GError) local_error = NULL;
  GsmRegistrySnapshot *result = NULL;
  gboolean             quarantined;
  gpointer             value;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  if (self->read_only)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PERMISSION_DENIED,
                   "Registry “%s/%s” was opened read-only", self->dir_path, self->registry_name);
      return NULL;
    }

  g_mutex_lock (&self->mutex);

  if (!_gsm_lock_acquire (self->lock_fd, self->lock_path, self->lock_timeout, cancellable, error))
    {
      g_mutex_unlock (&self->mutex);
      return NULL;
    }

  base = load_locked (self, &local_error);
  if (base == NULL && g_error_matches (local_error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY))
    base = rebuild_locked (self, local_error, error);
  else if (base == NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  if (base == NULL)
    goto out;

  /* Entries that cannot be read: kept aside, then left out of the write. */
  quarantined = self->quarantine != NULL;
  if (quarantined && !self->quarantine_kept)
    {
      if (!quarantine_locked (self, error))
        goto out;
      self->quarantine_kept = TRUE;
    }

  txn = _gsm_registry_txn_new (base);
  if (!func (txn, user_data, error))
    {
      /* They are kept aside now: do not keep them twice. */
      if (quarantined)
        (void) write_registry_locked (self, base, NULL);
      goto out;
    }

  if (g_hash_table_size (_gsm_registry_txn_get_changes (txn)) == 0)
    {
      g_autoptr (GError) write_error = NULL;

      /* Kept aside: the registry without them is written now, or by
       * the next write that can. */
      if (quarantined && !write_registry_locked (self, base, &write_error))
        g_debug ("Cannot write “%s/%s” without its entries that cannot be read: %s",
                 self->dir_path, self->registry_name, write_error->message);
      result = g_steal_pointer (&base);
      goto out;
    }

  result = _gsm_registry_txn_apply (txn, ++self->generation);
  self->leaving = self->own_session_id != NULL &&
                  g_hash_table_lookup_extended (_gsm_registry_txn_get_changes (txn),
                                                self->own_session_id, NULL, &value) &&
                  value == NULL;
  if (!write_own_files_locked (self, txn, error) ||
      !write_registry_locked (self, result, error))
    g_clear_pointer (&result, _gsm_registry_snapshot_unref);
  else
    {
      remove_session_files (self, txn);
      write_stale_session_files (self, txn);
    }
  self->leaving = FALSE;

out:
  _gsm_lock_release (self->lock_fd);
  g_mutex_unlock (&self->mutex);

  return result;
}

static gboolean
nothing_to_change (GsmRegistryTxn *txn,
                   gpointer        user_data,
                   GError        **error)
{
  return TRUE;
}

static GsmRegistrySnapshot *
gsm_file_registry_load (GsmRegistry  *registry,
                        GCancellable *cancellable,
                        GError      **error)
{
  GsmFileRegistry *self = GSM_FILE_REGISTRY (registry);
  g_autoptr (GError) local_error = NULL;
  GsmRegistrySnapshot *snapshot;
  gboolean             quarantine;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  /* Files are replaced atomically, so reading needs no lock. */
  g_mutex_lock (&self->mutex);
  snapshot = load_locked (self, &local_error);
  quarantine = snapshot != NULL && self->quarantine != NULL;
  g_mutex_unlock (&self->mutex);

  /* A read-only view repairs nothing: entries that cannot be read are
   * left out of @snapshot (but stay in the file), and a registry that is
   * not one JSON object is an error. */
  if (self->read_only)
    {
      if (snapshot == NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      return snapshot;
    }

  if (quarantine)
    {
      g_autoptr (GError) quarantine_error = NULL;
      GsmRegistrySnapshot *written;

      /* Entries that cannot be read are left out of @snapshot: keep them
       * aside and write the registry without them, under the lock. */
      written = gsm_file_registry_update (registry, nothing_to_change, NULL, cancellable,
                                          &quarantine_error);
      if (written == NULL)
        g_warning ("Registry “%s/%s”: entries that cannot be read were left out: %s",
                   self->dir_path, self->registry_name, quarantine_error->message);
      else
        {
          _gsm_registry_snapshot_unref (snapshot);
          snapshot = written;
        }
    }

  if (snapshot != NULL)
    return snapshot;

  if (!g_error_matches (local_error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  /* Corrupt: recover under the lock (which reads it again first). */
  return gsm_file_registry_update (registry, nothing_to_change, NULL, cancellable, error);
}

static void
monitor_changed_cb (GFileMonitor     *monitor,
                    GFile            *file,
                    GFile            *other_file,
                    GFileMonitorEvent event,
                    gpointer          user_data)
{
  GsmFileRegistry *self = user_data;
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *other_name = other_file ? g_file_get_basename (other_file) : NULL;

  switch (event)
    {
    case G_FILE_MONITOR_EVENT_RENAMED:
      /* Our atomic replace: NAME.tmp-XXXX renamed to NAME. */
      if (g_strcmp0 (other_name, self->registry_name) == 0 ||
          g_strcmp0 (name, self->registry_name) == 0)
        g_signal_emit_by_name (self, "changed");
      break;
    case G_FILE_MONITOR_EVENT_MOVED_IN:
    case G_FILE_MONITOR_EVENT_CREATED:
    case G_FILE_MONITOR_EVENT_DELETED:
    case G_FILE_MONITOR_EVENT_MOVED_OUT:
    case G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT:
      if (g_strcmp0 (name, self->registry_name) == 0)
        g_signal_emit_by_name (self, "changed");
      break;
    default:
      break;
    }
}

static gboolean
gsm_file_registry_start_watch (GsmRegistry *registry,
                               GError     **error)
{
  GsmFileRegistry *self = GSM_FILE_REGISTRY (registry);
  g_autoptr (GFile) dir = NULL;

  if (self->monitor != NULL)
    return TRUE;

  /* A file monitor, not a directory one: GLib's inotify backend drops
   * the events of every other file (session files, temporary files) in
   * its own thread, before they cost the main context anything. */
  dir = g_file_new_build_filename (self->dir_path, self->registry_name, NULL);
  self->monitor = g_file_monitor_file (dir, G_FILE_MONITOR_WATCH_MOVES, NULL, error);
  if (self->monitor == NULL)
    return FALSE;
  g_signal_connect_object (self->monitor, "changed", G_CALLBACK (monitor_changed_cb), self, 0);

  return TRUE;
}

static void
gsm_file_registry_iface_init (GsmRegistryInterface *iface)
{
  iface->load = gsm_file_registry_load;
  iface->update = gsm_file_registry_update;
  iface->start_watch = gsm_file_registry_start_watch;
}

/* ---- construction ------------------------------------------------------ */

static gboolean
remove_temp_files (GsmRegistryTxn *txn,
                   gpointer        user_data,
                   GError        **error)
{
  GsmFileRegistry *self = user_data;

  _gsm_fs_remove_temp_files (self->dirfd, self->prefix);
  return TRUE;
}

/*
 * _gsm_file_registry_new:
 * @dir_path: the runtime directory
 * @create_private: create @dir_path with mode 0700 if missing
 * @prefix: prefix of every file name (GSM_FILE_PREFIX)
 * @own_session_id: (nullable): the session whose session file and tracker
 *   this registry keeps, or %NULL for a reader
 * @durable: fsync the registry on every write
 */
GsmFileRegistry *
_gsm_file_registry_new (const char *dir_path,
                        gboolean    create_private,
                        const char *prefix,
                        const char *own_session_id,
                        int         own_pid,
                        gboolean    durable,
                        GError    **error)
{
  g_autoptr (GsmFileRegistry) self = g_object_new (GSM_TYPE_FILE_REGISTRY, NULL);
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;

  self->dir_path = g_strdup (dir_path);
  self->prefix = g_strdup (prefix ? prefix : "");
  self->registry_name = g_strconcat (self->prefix, REGISTRY_NAME, NULL);
  self->tracker_name = g_strconcat (self->prefix, TRACKER_NAME, NULL);
  self->lock_name = g_strconcat (self->prefix, LOCK_NAME, NULL);
  self->lock_path = g_build_filename (dir_path, self->lock_name, NULL);
  self->own_session_id = g_strdup (own_session_id);
  if (own_session_id != NULL)
    {
      self->own_session_name = _gsm_file_registry_own_session_file_name (dir_path, self->prefix, own_pid,
                                                                         own_session_id);
      g_autofree char *base = _gsm_file_registry_session_file_name ("", own_pid,
                                                                    own_session_id, FALSE);

      /* session_<pid>_<id>.json → session_<pid>_<id>.lock */
      base[strlen (base) - strlen (".json")] = '\0';
      self->own_lock_name = g_strconcat (self->prefix, base, ".lock", NULL);
    }
  self->durable = durable;
  self->lock_timeout = _gsm_env_seconds ("GSM_LOCK_TIMEOUT", 30);
  self->parser = json_parser_new_immutable ();

  if (strchr (self->prefix, '/') != NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "File prefix “%s” must not contain “/”", self->prefix);
      return NULL;
    }

  self->dirfd = _gsm_fs_open_dir (dir_path, create_private, error);
  if (self->dirfd < 0)
    return NULL;

  self->lock_fd = _gsm_lock_open (self->dirfd, dir_path, self->lock_name, error);
  if (self->lock_fd < 0)
    return NULL;

  /* Held before our entry is written, for as long as the process lives. */
  if (self->own_lock_name != NULL)
    {
      self->own_lock_fd = _gsm_liveness_lock_take (self->dirfd, self->own_lock_name);
      if (self->own_lock_fd < 0)
        g_clear_pointer (&self->own_lock_name, g_free);
    }

  /* Clear what killed writers left, and check the registry can be read. */
  snapshot = gsm_file_registry_update (GSM_REGISTRY (self), remove_temp_files, self, NULL, error);
  if (snapshot == NULL)
    return NULL;

  return g_steal_pointer (&self);
}

/*
 * _gsm_file_registry_new_read_only:
 * @dir_path: the runtime directory; it must exist
 * @prefix: prefix of every file name (GSM_FILE_PREFIX)
 *
 * A registry for looking only, as `gsmctl list` does: @dir_path is opened
 * without being created or made private, the lock file is neither created
 * nor opened, and nothing is ever written (update fails with
 * %GSM_ERROR_PERMISSION_DENIED; load neither rebuilds a corrupt registry
 * nor sets unreadable entries aside). It works on a read-only directory.
 */
GsmFileRegistry *
_gsm_file_registry_new_read_only (const char *dir_path,
                                  const char *prefix,
                                  GError    **error)
{
  g_autoptr (GsmFileRegistry) self = g_object_new (GSM_TYPE_FILE_REGISTRY, NULL);
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;

  self->read_only = TRUE;
  self->dir_path = g_strdup (dir_path);
  self->prefix = g_strdup (prefix ? prefix : "");
  self->registry_name = g_strconcat (self->prefix, REGISTRY_NAME, NULL);
  self->tracker_name = g_strconcat (self->prefix, TRACKER_NAME, NULL);
  self->lock_name = g_strconcat (self->prefix, LOCK_NAME, NULL);
  self->lock_path = g_build_filename (dir_path, self->lock_name, NULL);
  self->parser = json_parser_new_immutable ();

  if (strchr (self->prefix, '/') != NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "File prefix “%s” must not contain “/”", self->prefix);
      return NULL;
    }

  self->dirfd = _gsm_fs_open_existing_dir (dir_path, error);
  if (self->dirfd < 0)
    return NULL;

  /* Check the registry can be read (a missing one is empty). */
  snapshot = gsm_file_registry_load (GSM_REGISTRY (self), NULL, error);
  if (snapshot == NULL)
    return NULL;

  return g_steal_pointer (&self);
}

/*
 * _gsm_file_registry_session_file_name:
 * @by_pid: the seed's name, `PREFIX session_<pid>.json`
 *
 * The name of a session's own file. Processes of different pid namespaces
 * (containers sharing the directory) have the same pids, so the name
 * carries the session id; the seed's name by pid alone is used only in the
 * seed's layout (a file prefix), by a process of the host's own pid
 * namespace, where no other live process can have the same pid.
 */
char *
_gsm_file_registry_session_file_name (const char *prefix,
                                      int         pid,
                                      const char *session_id,
                                      gboolean    by_pid)
{
  if (by_pid)
    return g_strdup_printf ("%ssession_%d.json", prefix, pid);
  /* A hash where the id is not a plain name (read from a file, it may
   * hold anything). */
  if (strspn (session_id, "0123456789abcdef-") != strlen (session_id) || strlen (session_id) > 64)
    return g_strdup_printf ("%ssession_%d_%08x.json", prefix, pid, g_str_hash (session_id));
  return g_strdup_printf ("%ssession_%d_%s.json", prefix, pid, session_id);
}

/*
 * _gsm_file_registry_own_session_file_name:
 *
 * The name this process's session file gets (see
 * _gsm_file_registry_session_file_name()).
 */
char *
_gsm_file_registry_own_session_file_name (const char *dir_path,
                                          const char *prefix,
                                          int         pid,
                                          const char *session_id)
{
  gboolean seed_layout = prefix != NULL && *prefix != '\0' &&
                         _gsm_process_get_pid_ns () == GSM_INITIAL_PID_NS;

  if (seed_layout && dir_path != NULL)
    {
      /* In a shared directory, another user may have made a file of that
       * name before us: then the name by session id, which no one can
       * guess. */
      g_autofree char *name = _gsm_file_registry_session_file_name (prefix, pid, session_id, TRUE);
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      struct stat      st;

      if (lstat (path, &st) == 0 && (!S_ISREG (st.st_mode) || st.st_uid != geteuid ()))
        seed_layout = FALSE;
    }

  return _gsm_file_registry_session_file_name (prefix ? prefix : "", pid, session_id, seed_layout);
}

/*
 * _gsm_file_registry_get_lock_name:
 *
 * Returns: (nullable): the name of the file whose OFD lock this process
 *   holds while it lives, or %NULL if the file system took no lock
 */
const char *
_gsm_file_registry_get_lock_name (GsmFileRegistry *self)
{
  return self->own_lock_name;
}

int
_gsm_file_registry_get_dirfd (GsmFileRegistry *self)
{
  return self->dirfd;
}

/* which: "registry", "tracker", "session" or "lock" */
char *
_gsm_file_registry_get_path (GsmFileRegistry *self,
                             const char      *which)
{
  const char *name = self->registry_name;

  if (g_str_equal (which, "tracker"))
    name = self->tracker_name;
  else if (g_str_equal (which, "session"))
    name = self->own_session_name;
  else if (g_str_equal (which, "lock"))
    name = self->lock_name;

  return g_build_filename (self->dir_path, name, NULL);
}

guint
_gsm_file_registry_get_n_parsed (GsmFileRegistry *self)
{
  return self->n_parsed;
}
