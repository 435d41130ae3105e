/* gsm-audit.c: the audit log of VM deletions
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "gsm-audit-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-session-manager-private.h"

static char *
audit_name (GsmSessionManager *manager)
{
  /* The registry's name carries the file prefix. */
  g_autofree char *registry = g_file_get_basename (gsm_session_manager_get_vm_registry (manager));
  gsize            len = strlen (registry);
  gsize            suffix = strlen ("vm_registry.json");

  if (len >= suffix)
    registry[len - suffix] = '\0';
  return g_strconcat (registry, GSM_AUDIT_LOG_NAME, NULL);
}

char *
_gsm_audit_get_path (GsmSessionManager *manager)
{
  g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
  g_autofree char *name = audit_name (manager);

  return g_build_filename (dir, name, NULL);
}

static void
add_string (JsonBuilder *b,
            const char  *name,
            const char  *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

/* @record as one line of the log, with the session that acted. */
static char *
format_record (GsmSessionManager    *manager,
               const GsmAuditRecord *record)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char   *time = g_date_time_format_iso8601 (now);
  GsmProviderResult *result = record->result;

  json_builder_begin_object (b);
  add_string (b, "time", time);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_double_value (b, g_date_time_to_unix (now) +
                                        g_date_time_get_microsecond (now) / (double) G_USEC_PER_SEC);
  add_string (b, "action", record->action);
  add_string (b, "vm", record->vm_id);
  add_string (b, "zone", record->zone);
  json_builder_set_member_name (b, "owner");
  json_builder_begin_object (b);
  add_string (b, "session", record->session_id);
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, record->pid);
  add_string (b, "host", record->hostname);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "command");
  if (result != NULL || record->argv != NULL)
    {
      const char *const *argv = result ? gsm_provider_result_get_argv (result) : record->argv;

      json_builder_begin_array (b);
      for (guint i = 0; argv && argv[i]; i++)
        json_builder_add_string_value (b, argv[i]);
      json_builder_end_array (b);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "exit_status");
  if (result != NULL && gsm_provider_result_get_exit_status (result) >= 0)
    json_builder_add_int_value (b, gsm_provider_result_get_exit_status (result));
  else
    json_builder_add_null_value (b);
  if (result != NULL && gsm_provider_result_get_term_signal (result) != 0)
    {
      json_builder_set_member_name (b, "signal");
      json_builder_add_int_value (b, gsm_provider_result_get_term_signal (result));
    }
  if (result != NULL)
    {
      json_builder_set_member_name (b, "duration");
      json_builder_add_double_value (b, gsm_provider_result_get_duration (result));
    }
  add_string (b, "outcome", record->outcome);
  add_string (b, "error", record->error_message);
  /* What the command said, whole (the result keeps its last 64 KiB): the
   * error message has only the line that says why. */
  if (result != NULL && *gsm_provider_result_get_stderr (result) != '\0')
    add_string (b, "stderr", gsm_provider_result_get_stderr (result));
  json_builder_set_member_name (b, "attempt");
  json_builder_add_int_value (b, record->attempt);
  if (record->token != NULL)
    add_string (b, "token", record->token);
  json_builder_set_member_name (b, "by");
  json_builder_begin_object (b);
  add_string (b, "session", gsm_session_manager_get_session_id (manager));
  json_builder_set_member_name (b, "pid");
  json_builder_add_int_value (b, gsm_session_manager_get_pid (manager));
  add_string (b, "host", gsm_session_manager_get_hostname (manager));
  json_builder_end_object (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

/* The etcd registry, if this manager's registry is one. */
static GsmEtcdRegistry *
fleet_registry (GsmSessionManager *manager)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (manager);

  return registry != NULL && GSM_IS_ETCD_REGISTRY (registry) ? GSM_ETCD_REGISTRY (registry) : NULL;
}

static int
open_log_at (const char *dir,
             const char *name,
             int         flags,
             char      **out_path,
             GError    **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  struct stat      st;
  int              dirfd, fd, saved_errno;

  dirfd = _gsm_fs_open_dir (dir, FALSE, error);
  if (dirfd < 0)
    return -1;

  fd = openat (dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
  saved_errno = errno;
  close (dirfd);
  if (fd < 0)
    {
      if (saved_errno == ELOOP)
        g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                     "Audit log “%s” is a symbolic link; left untouched", path);
      else
        g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                     "Cannot open audit log “%s”: %s", path, g_strerror (saved_errno));
      return -1;
    }

  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_uid != geteuid ())
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                   "Audit log “%s” is not a regular file owned by this user; left untouched",
                   path);
      close (fd);
      return -1;
    }
  if ((st.st_mode & 077) != 0 && (flags & O_ACCMODE) != O_RDONLY)
    fchmod (fd, 0600);
  /* Blocking from now on (O_NONBLOCK only kept a FIFO from hanging us). */
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);

  if (out_path)
    *out_path = g_steal_pointer (&path);
  return fd;
}

static int
open_log (GsmSessionManager *manager,
          int                flags,
          char             **out_path,
          GError           **error)
{
  g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
  g_autofree char *name = audit_name (manager);

  return open_log_at (dir, name, flags, out_path, error);
}

gboolean
_gsm_audit_append (GsmSessionManager    *manager,
                   const GsmAuditRecord *record,
                   GError              **error)
{
  g_autofree char *line = format_record (manager, record);
  g_autofree char *path = NULL;
  g_autofree char *text = g_strconcat (line, "\n", NULL);
  gsize            len = strlen (text);
  ssize_t          n;
  int              fd;

  fd = open_log (manager, O_WRONLY | O_APPEND | O_CREAT, &path, error);
  if (fd < 0)
    return FALSE;

  /* One write: concurrent appenders never interleave within a record. */
  do
    n = write (fd, text, len);
  while (n < 0 && errno == EINTR);

  if (n != (ssize_t) len)
    {
      int saved_errno = n < 0 ? errno : ENOSPC;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "Cannot append to audit log “%s”: %s", path, g_strerror (saved_errno));
      close (fd);
      return FALSE;
    }

  close (fd);

  /* In a fleet, every host's history shows it. The local log has it
   * whatever happens to etcd. */
  {
    GsmEtcdRegistry *etcd = fleet_registry (manager);
    g_autoptr (GError) fleet_error = NULL;

    if (etcd != NULL && !_gsm_etcd_registry_append_audit (etcd, line, &fleet_error))
      g_warning ("The audit record of VM %s is only in “%s”: %s", record->vm_id, path,
                 fleet_error->message);
  }
  return TRUE;
}

static char **read_local (const char *dir,
                          const char *name,
                          GError    **error);

static double
record_time (JsonParser *parser,
             const char *line)
{
  g_autoptr (JsonNode) root = _gsm_json_parse (parser, line, strlen (line), NULL);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  JsonNode   *t = o ? json_object_get_member (o, "timestamp") : NULL;

  return t && JSON_NODE_HOLDS_VALUE (t) && json_node_get_value_type (t) == G_TYPE_DOUBLE
             ? json_node_get_double (t)
             : 0;
}

typedef struct
{
  double time;
  char  *line;
} Timed;

static int
compare_timed (gconstpointer a,
               gconstpointer b)
{
  const Timed *x = a, *y = b;

  return (x->time > y->time) - (x->time < y->time);
}

/*
 * _gsm_audit_read:
 *
 * Returns: the records of this host's audit log and, in a fleet (etcd),
 *   those every host recorded there, each once, oldest first
 */
char **
_gsm_audit_read (GsmSessionManager *manager,
                 GError           **error)
{
  g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
  g_autofree char *name = audit_name (manager);
  g_autofree char *prefix = NULL;

  prefix = g_strndup (name, strlen (name) - strlen (GSM_AUDIT_LOG_NAME));
  return _gsm_audit_read_at (dir, prefix, fleet_registry (manager), error);
}

char **
_gsm_audit_read_at (const char      *dir,
                    const char      *file_prefix,
                    GsmEtcdRegistry *etcd,
                    GError         **error)
{
  g_autofree char *name = g_strconcat (file_prefix ? file_prefix : "", GSM_AUDIT_LOG_NAME, NULL);
  g_auto (GStrv) local = read_local (dir, name, error);
  g_auto (GStrv) fleet = NULL;
  g_autoptr (GHashTable) seen = NULL;
  g_autoptr (GArray) all = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) fleet_error = NULL;
  GPtrArray *out;

  if (local == NULL || etcd == NULL)
    return g_steal_pointer (&local);

  fleet = _gsm_etcd_registry_read_audit (etcd, &fleet_error);
  if (fleet == NULL)
    {
      g_warning ("Showing this host's audit log only: %s", fleet_error->message);
      return g_steal_pointer (&local);
    }

  parser = json_parser_new ();
  seen = g_hash_table_new (g_str_hash, g_str_equal);
  all = g_array_new (FALSE, FALSE, sizeof (Timed));
  for (guint pass = 0; pass < 2; pass++)
    for (char **l = pass == 0 ? local : fleet; *l != NULL; l++)
      {
        Timed t = { record_time (parser, *l), *l };

        if (g_hash_table_add (seen, *l))
          g_array_append_val (all, t);
      }
  g_array_sort (all, compare_timed);

  out = g_ptr_array_new ();
  for (guint i = 0; i < all->len; i++)
    g_ptr_array_add (out, g_strdup (g_array_index (all, Timed, i).line));
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static char **
read_local (const char *dir,
            const char *name,
            GError    **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GPtrArray) records = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GString) data = g_string_new (NULL);
  g_autofree char *path = NULL;
  g_auto (GStrv) lines = NULL;
  struct stat st;
  off_t       start = 0;
  char        buf[65536];
  ssize_t     n;
  int         fd;

  fd = open_log_at (dir, name, O_RDONLY, &path, &local_error);
  if (fd < 0)
    {
      /* No log, or not even the directory: nothing deleted from here. */
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return g_new0 (char *, 1);
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  /* Only the end of a very long log. */
  if (fstat (fd, &st) == 0 && st.st_size > GSM_AUDIT_MAX_READ)
    start = st.st_size - GSM_AUDIT_MAX_READ;
  if (lseek (fd, start, SEEK_SET) < 0)
    start = 0;

  while ((n = read (fd, buf, sizeof buf)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "Cannot read audit log “%s”: %s", path, g_strerror (saved_errno));
          close (fd);
          return NULL;
        }
      g_string_append_len (data, buf, n);
      if (data->len > GSM_AUDIT_MAX_READ)
        break;
    }
  close (fd);

  lines = g_strsplit (data->str, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      g_autoptr (JsonNode) root = NULL;

      if (i == 0 && start > 0)
        continue; /* a partial line */
      if (*lines[i] == '\0' || !g_utf8_validate (lines[i], -1, NULL))
        continue;
      root = _gsm_json_parse (parser, lines[i], strlen (lines[i]), NULL);
      if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
        continue; /* not ours: skipped, never shown raw */
      g_ptr_array_add (records, g_strdup (lines[i]));
    }
  g_ptr_array_add (records, NULL);

  return (char **) g_ptr_array_free (g_steal_pointer (&records), FALSE);
}
