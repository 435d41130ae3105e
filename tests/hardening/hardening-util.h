/* hardening-util.h: shared by the hardening tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <gsm.h>

#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-session-private.h"

/* The helper program (gsm-hardening-helper), from the build. */
static inline const char *
hardening_helper (void)
{
  const char *helper = g_getenv ("GSM_HARDENING_HELPER");

  g_assert_nonnull (helper);
  return helper;
}

/* Starts the helper with @args in runtime directory @dir, stdout piped. */
static inline GSubprocess *
hardening_spawn (const char        *dir,
                 const char *const *args,
                 GSubprocessFlags   extra_flags)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | extra_flags);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", dir, TRUE);
  g_ptr_array_add (argv, (gpointer) hardening_helper ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

/* Waits for @proc to end and returns every line it printed. */
static inline char **
hardening_finish (GSubprocess *proc,
                  int         *out_status)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;

  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  if (out_status != NULL)
    *out_status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  return g_strsplit (out ? g_strchomp (out) : "", "\n", -1);
}

/* Reads one line printed by @proc (blocks until it prints it). */
static inline char *
hardening_read_line (GSubprocess *proc)
{
  g_autoptr (GDataInputStream) in =
      g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_autoptr (GError) error = NULL;
  char *line;

  /* One byte at a time, so that nothing after the line is consumed. */
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (in), 1);
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (in), FALSE);
  return line;
}

/* How many names in @dir contain @needle. */
static inline guint
hardening_count_files (const char *dir,
                       const char *needle)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint       n = 0;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    if (strstr (name, needle) != NULL)
      n++;
  return n;
}

static gboolean
hardening_parse_member (const GsmJsonMember *member,
                        gpointer             user_data,
                        GError             **error)
{
  GHashTable      *table = user_data;
  g_autofree char *key = _gsm_json_decode_key (member);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  GsmSession *session;

  g_assert_nonnull (key);
  session = _gsm_session_new_from_json (key, member->value, member->value_len, parser, error);
  if (session == NULL)
    return FALSE;
  g_hash_table_replace (table, g_strdup (key), session);
  return TRUE;
}

/* Reads the registry file of @dir directly, as bytes, and parses every
 * entry: it must be whole. Returns session id → GsmSession. */
static inline GHashTable *
hardening_read_registry (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "vm_registry.json", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  GHashTable *table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  gsize       len;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      g_assert_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
      return table;
    }
  _gsm_json_scan_object (contents, len, GSM_JSON_MAX_DEPTH, hardening_parse_member, table, &error);
  g_assert_no_error (error);
  return table;
}

static inline void
hardening_rm_rf (const char *path)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileEnumerator) e = NULL;
  GFileInfo *info;

  e = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                 G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  while (e != NULL && (info = g_file_enumerator_next_file (e, NULL, NULL)) != NULL)
    {
      g_autoptr (GFile) child = g_file_get_child (file, g_file_info_get_name (info));
      g_autofree char *child_path = g_file_get_path (child);

      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        hardening_rm_rf (child_path);
      else
        g_unlink (child_path);
      g_object_unref (info);
    }
  g_rmdir (path);
}

/* An integer from the environment (the long forms in tools/stress.sh). */
static inline int
hardening_env_int (const char *name,
                   int         fallback)
{
  const char *value = g_getenv (name);

  return value != NULL && *value != '\0' ? atoi (value) : fallback;
}
