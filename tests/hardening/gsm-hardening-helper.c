/* gsm-hardening-helper.c: processes for the crash, load and fault tests
 *
 * Every line is flushed as soon as it is printed, so whatever a killed
 * process printed is exactly what it had done.
 *
 *   writer TAG N [keep|hold]  the session manager in $GSM_RUNTIME_DIR: prints
 *                         "SESSION <id>", then N cycles (0: until killed)
 *                         of "REG-START vm", register, "REG vm",
 *                         "UNREG-START vm", unregister, "UNREG vm"; then
 *                         "DONE N" and closes; with keep, registers
 *                         TAG-final instead of closing, prints
 *                         "FINAL <vm>" and exits without closing; with
 *                         hold, keeps each VM up to 1 ms before
 *                         unregistering it, as a real process would
 *   hold-lock [tmp]       takes the registry lock (private API), with tmp
 *                         also creates a temporary file as a writer killed
 *                         before its rename would leave, prints "LOCKED"
 *                         and waits to be killed
 *   count N               N updates that each add one to the counter
 *                         entry (a read-modify-write under the lock);
 *                         prints "COUNTED N"
 *   read-raw STOPFILE     reads the registry file as any reader would,
 *                         without the lock, until STOPFILE exists; every
 *                         read must be a whole registry whose entries all
 *                         parse; prints "READS n BAD m EMPTY k"
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsm.h>

#include "gsm-file-registry-private.h"
#include "gsm-fs-private.h"
#include "gsm-json-private.h"
#include "gsm-session-private.h"

#define COUNTER_ID "counter"

static void
say (const char *fmt,
     ...) G_GNUC_PRINTF (1, 2);

static void
say (const char *fmt,
     ...)
{
  va_list args;

  va_start (args, fmt);
  vprintf (fmt, args);
  va_end (args);
  putchar ('\n');
  fflush (stdout);
}

static const char *
runtime_dir (void)
{
  const char *dir = g_getenv ("GSM_RUNTIME_DIR");

  if (dir == NULL || *dir == '\0')
    {
      say ("ERROR GSM_RUNTIME_DIR is not set");
      exit (2);
    }
  return dir;
}

static int
do_writer (const char *tag,
           int         n,
           gboolean    keep,
           gboolean    hold)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  g_autofree char   *final_vm = g_strdup_printf ("%s-final", tag);

  say ("SESSION %s", gsm_session_manager_get_session_id (manager));

  for (int i = 0; n == 0 || i < n; i++)
    {
      g_autofree char *vm_id = g_strdup_printf ("%s-%d", tag, i);

      say ("REG-START %s", vm_id);
      if (!gsm_session_manager_register_vm_sync (manager, vm_id, "zone-a", NULL, NULL, NULL, &error))
        {
          say ("ERROR register %s: %s", vm_id, error->message);
          return 1;
        }
      say ("REG %s", vm_id);
      if (hold)
        g_usleep (g_random_int_range (0, 1000));
      say ("UNREG-START %s", vm_id);
      if (!gsm_session_manager_unregister_vm_sync (manager, NULL, &error))
        {
          say ("ERROR unregister %s: %s", vm_id, error->message);
          return 1;
        }
      say ("UNREG %s", vm_id);
    }
  say ("DONE %d", n);

  if (keep)
    {
      if (!gsm_session_manager_register_vm_sync (manager, final_vm, "zone-a", NULL, NULL, NULL, &error))
        {
          say ("ERROR register %s: %s", final_vm, error->message);
          return 1;
        }
      say ("FINAL %s", final_vm);
      _exit (0);
    }

  if (!gsm_session_manager_close_sync (manager, NULL, &error))
    {
      say ("ERROR close: %s", error->message);
      return 1;
    }
  return 0;
}

static GsmFileRegistry *
open_registry (void)
{
  g_autoptr (GError) error = NULL;
  GsmFileRegistry *registry;

  registry = _gsm_file_registry_new (runtime_dir (), FALSE, "", NULL, getpid (), FALSE, &error);
  if (registry == NULL)
    {
      say ("ERROR open: %s", error->message);
      exit (1);
    }
  return registry;
}

static gboolean
hold (GsmRegistryTxn *txn,
      gpointer        user_data,
      GError        **error)
{
  gboolean make_tmp = GPOINTER_TO_INT (user_data);

  if (make_tmp)
    {
      g_autofree char *path = g_build_filename (runtime_dir (), "vm_registry.json.tmp-0badf00d", NULL);
      int              fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

      if (fd < 0 || write (fd, "{\"half", 6) != 6)
        {
          say ("ERROR cannot create %s: %s", path, g_strerror (errno));
          exit (1);
        }
    }
  say ("LOCKED");
  for (;;)
    pause ();
  return TRUE;
}

static int
do_hold_lock (gboolean make_tmp)
{
  g_autoptr (GsmFileRegistry) registry = open_registry ();

  _gsm_registry_update (GSM_REGISTRY (registry), hold, GINT_TO_POINTER (make_tmp), NULL, NULL);
  return 1;
}

static gboolean
increment (GsmRegistryTxn *txn,
           gpointer        user_data,
           GError        **error)
{
  GsmSession *counter = _gsm_registry_txn_lookup (txn, COUNTER_ID);
  int         value = counter != NULL ? gsm_session_get_pid (counter) : 2;
  g_autoptr (GsmSession) next = _gsm_session_new (COUNTER_ID, value + 1, "counter-host",
                                                  1700000000.0, 0, NULL);

  _gsm_registry_txn_put (txn, next);
  return TRUE;
}

static int
do_count (int n)
{
  g_autoptr (GsmFileRegistry) registry = open_registry ();

  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GsmRegistrySnapshot) snapshot = NULL;

      snapshot = _gsm_registry_update (GSM_REGISTRY (registry), increment, NULL, NULL, &error);
      if (snapshot == NULL)
        {
          say ("ERROR count %d: %s", i, error->message);
          return 1;
        }
    }
  say ("COUNTED %d", n);
  return 0;
}

static gboolean
parse_entry (const GsmJsonMember *member,
             gpointer             user_data,
             GError             **error)
{
  g_autofree char *key = _gsm_json_decode_key (member);
  g_autoptr (GsmSession) session = NULL;

  if (key == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "bad key");
      return FALSE;
    }
  session = _gsm_session_new_from_json (key, member->value, member->value_len, user_data, error);
  return session != NULL;
}

static int
do_read_raw (const char *stop_file)
{
  g_autofree char *path = g_build_filename (runtime_dir (), "vm_registry.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  guint reads = 0, bad = 0, empty = 0;

  do
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *contents = NULL;
      gsize            len;

      if (!g_file_get_contents (path, &contents, &len, &error))
        {
          if (!g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            {
              say ("BAD read: %s", error->message);
              bad++;
            }
          empty++;
          g_usleep (100);
          continue;
        }
      reads++;
      if (!_gsm_json_scan_object (contents, len, GSM_JSON_MAX_DEPTH, parse_entry, parser, &error))
        {
          say ("BAD %s (%" G_GSIZE_FORMAT " bytes)", error->message, len);
          bad++;
        }
      /* Leave the writers some CPU: the machine may have two cores. */
      g_usleep (100);
    }
  while (!g_file_test (stop_file, G_FILE_TEST_EXISTS));

  say ("READS %u BAD %u EMPTY %u", reads, bad, empty);
  return bad == 0 ? 0 : 1;
}

int
main (int   argc,
      char *argv[])
{
  if (argc >= 4 && g_str_equal (argv[1], "writer"))
    return do_writer (argv[2], atoi (argv[3]), argc >= 5 && g_str_equal (argv[4], "keep"),
                      argc >= 5 && g_str_equal (argv[4], "hold"));
  if (argc >= 2 && g_str_equal (argv[1], "hold-lock"))
    return do_hold_lock (argc >= 3 && g_str_equal (argv[2], "tmp"));
  if (argc >= 3 && g_str_equal (argv[1], "count"))
    return do_count (atoi (argv[2]));
  if (argc >= 3 && g_str_equal (argv[1], "read-raw"))
    return do_read_raw (argv[2]);

  fprintf (stderr, "usage: %s writer TAG N [keep|hold] | hold-lock [tmp] | count N | read-raw STOPFILE\n",
           argv[0]);
  return 2;
}
