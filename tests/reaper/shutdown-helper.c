/* shutdown-helper.c: a GLib application that cleans up its VM on a signal
 *
 *   shutdown-helper loop VM_ID   install_shutdown_handlers() with a GMainLoop
 *   shutdown-helper func VM_ID   install_shutdown_handlers_full() with a callback
 *   shutdown-helper atexit VM_ID cleanup_my_vm_sync() from an atexit() handler,
 *                                when stdin closes (no main loop ever runs)
 *
 * Registers VM_ID, prints "READY SESSION_ID PID", runs its main loop until
 * the handlers end it, then prints "DONE has_vm=0|1 [ERROR message]".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <gsm.h>

static GMainLoop *loop;
static char      *failure;
static int        received;

static void
shutdown_cb (GsmSessionManager *manager,
             int                signum,
             const GError      *error,
             gpointer           user_data)
{
  received = signum;
  if (error != NULL)
    failure = g_strdup (error->message);
  g_main_loop_quit (loop);
}

static void
cleanup_at_exit (void)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();

  if (gsm_session_manager_cleanup_my_vm_sync (manager, NULL, NULL, &error))
    printf ("DONE has_vm=%d\n", gsm_session_manager_get_has_vm (manager));
  else
    printf ("DONE has_vm=%d ERROR %s\n", gsm_session_manager_get_has_vm (manager), error->message);
  fflush (stdout);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s loop|func VM_ID\n", argv[0]);
      return 2;
    }

  loop = g_main_loop_new (NULL, FALSE);
  manager = gsm_session_manager_get_default ();
  if (!gsm_session_manager_register_vm_sync (manager, argv[2], "zone-a", NULL, NULL, NULL, &error))
    {
      printf ("ERROR %s\n", error->message);
      return 1;
    }

  if (g_str_equal (argv[1], "atexit"))
    {
      char buf[64];

      atexit (cleanup_at_exit);
      printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
      fflush (stdout);
      while (fgets (buf, sizeof buf, stdin) != NULL)
        ;
      g_main_loop_unref (loop);
      exit (0);
    }

  if (g_str_equal (argv[1], "loop"))
    gsm_session_manager_install_shutdown_handlers (manager, NULL, loop);
  else
    gsm_session_manager_install_shutdown_handlers_full (manager, NULL, shutdown_cb, NULL, NULL);

  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  fflush (stdout);
  g_main_loop_run (loop);

  printf ("DONE has_vm=%d signal=%d%s%s\n", gsm_session_manager_get_has_vm (manager), received,
          failure ? " ERROR " : "", failure ? failure : "");
  gsm_session_manager_remove_shutdown_handlers (manager);
  g_main_loop_unref (loop);
  g_free (failure);

  return 0;
}
