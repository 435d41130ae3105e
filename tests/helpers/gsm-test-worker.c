/* gsm-test-worker.c: a session process for multi-process tests and the demo
 *
 *   gsm-test-worker register VM_ID [ZONE]   register, print READY, wait to be killed
 *                                           (GSM_TEST_WORKER_RESERVE=1: reserve
 *                                           instead, never confirm;
 *                                           GSM_TEST_WORKER_CREATE=gcloud|aws|az:
 *                                           create the VM with that CLI and this
 *                                           session's labels, after reserving or
 *                                           before registering;
 *                                           GSM_TEST_WORKER_SKIP_REGISTER=1:
 *                                           create only, as a process that
 *                                           crashes before it registers)
 *   gsm-test-worker register-main-exits VM_ID [ZONE]
 *                                           the same, but the main thread exits
 *                                           (pthread_exit) while another waits
 *   gsm-test-worker register-fork VM_ID [ZONE]
 *                                           register, fork a child that lives
 *                                           on (no exec), print READY and
 *                                           CHILD PID, wait to be killed
 *   gsm-test-worker register-close VM_ID [ZONE]
 *                                           register, print READY; when stdin
 *                                           closes, unregister, close, print CLOSED
 *   gsm-test-worker cycle N [TAG]           N register+unregister cycles, print OK N
 *   gsm-test-worker list                    print the active sessions, one id per line
 *   gsm-test-worker cleanup                 print the number of stale sessions found
 *   gsm-test-worker watch VM_ID [ZONE]      register, print READY, run a main loop
 *                                           printing the manager's signals (LAPSED
 *                                           HAS_VM VM, STALE ID, ADDED ID, REMOVED ID)
 *                                           until stdin closes or SIGTERM
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gsm.h>

/* Creates @vm_id with the CLI @cli (gcloud, aws or az, found on PATH),
 * labelled with this session's labels, as an application would. */
static gboolean
create_vm (GsmSessionManager *manager,
           const char        *cli,
           const char        *vm_id,
           const char        *zone,
           GError           **error)
{
  g_autoptr (GVariant) labels = gsm_session_manager_get_vm_labels (manager);
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) joined = g_string_new (NULL);
  GVariantIter iter;
  const char  *k, *v;
  int          status;

  g_variant_iter_init (&iter, labels);
  if (g_str_equal (cli, "gcloud"))
    {
      while (g_variant_iter_next (&iter, "{&s&s}", &k, &v))
        g_string_append_printf (joined, "%s%s=%s", joined->len ? "," : "", k, v);
      g_ptr_array_add (argv, g_strdup ("gcloud"));
      g_ptr_array_add (argv, g_strdup ("compute"));
      g_ptr_array_add (argv, g_strdup ("instances"));
      g_ptr_array_add (argv, g_strdup ("create"));
      g_ptr_array_add (argv, g_strdup (vm_id));
      g_ptr_array_add (argv, g_strdup ("--zone"));
      g_ptr_array_add (argv, g_strdup (zone));
      g_ptr_array_add (argv, g_strdup_printf ("--labels=%s", joined->str));
    }
  else if (g_str_equal (cli, "aws"))
    {
      /* The instance ID comes from the cloud: the name is a tag. */
      g_string_append_printf (joined, "ResourceType=instance,Tags=[{Key=Name,Value=%s}", vm_id);
      while (g_variant_iter_next (&iter, "{&s&s}", &k, &v))
        g_string_append_printf (joined, ",{Key=%s,Value=%s}", k, v);
      g_string_append_c (joined, ']');
      g_ptr_array_add (argv, g_strdup ("aws"));
      g_ptr_array_add (argv, g_strdup ("ec2"));
      g_ptr_array_add (argv, g_strdup ("run-instances"));
      g_ptr_array_add (argv, g_strdup ("--tag-specifications"));
      g_ptr_array_add (argv, g_strdup (joined->str));
      g_ptr_array_add (argv, g_strdup ("--placement"));
      g_ptr_array_add (argv, g_strdup_printf ("AvailabilityZone=%s", zone));
    }
  else
    {
      g_ptr_array_add (argv, g_strdup ("az"));
      g_ptr_array_add (argv, g_strdup ("vm"));
      g_ptr_array_add (argv, g_strdup ("create"));
      g_ptr_array_add (argv, g_strdup ("--resource-group"));
      g_ptr_array_add (argv, g_strdup (zone));
      g_ptr_array_add (argv, g_strdup ("--name"));
      g_ptr_array_add (argv, g_strdup (vm_id));
      g_ptr_array_add (argv, g_strdup ("--tags"));
      while (g_variant_iter_next (&iter, "{&s&s}", &k, &v))
        g_ptr_array_add (argv, g_strdup_printf ("%s=%s", k, v));
    }
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                     &status, error) ||
      !g_spawn_check_wait_status (status, error))
    return FALSE;
  return TRUE;
}

static int
do_register (const char *vm_id,
             const char *zone)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  const char        *components[] = { "voice", "vision", NULL };
  const char        *create = g_getenv ("GSM_TEST_WORKER_CREATE");
  gboolean           reserve = g_strcmp0 (g_getenv ("GSM_TEST_WORKER_RESERVE"), "1") == 0;
  gboolean           ok = TRUE;

  /* GSM_TEST_WORKER_RESERVE=1: reserved before a cloud call that this
   * process never confirms (it crashes before, or lives on). */
  if (reserve)
    ok = gsm_session_manager_reserve_vm_sync (manager, vm_id, zone, components, NULL, NULL, &error);
  if (ok && create != NULL && *create != '\0')
    ok = create_vm (manager, create, vm_id, zone, &error);
  if (ok && !reserve && g_strcmp0 (g_getenv ("GSM_TEST_WORKER_SKIP_REGISTER"), "1") != 0)
    ok = gsm_session_manager_register_vm_sync (manager, vm_id, zone, components, NULL, NULL, &error);
  if (!ok)
    {
      printf ("ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
      fflush (stdout);
      return 1;
    }

  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  fflush (stdout);

  /* Live until killed, or until stdin closes (then exit without cleanup,
   * like a crash that still lets the process exit normally). */
  {
    char buf[64];

    while (fgets (buf, sizeof buf, stdin) != NULL)
      ;
  }
  for (;;)
    pause ();

  return 0;
}

static gpointer
wait_for_stdin (gpointer data)
{
  char buf[64];

  while (fgets (buf, sizeof buf, stdin) != NULL)
    ;
  for (;;)
    pause ();
  return NULL;
}

/* register, then the main thread exits: /proc shows the process as a
 * zombie while its other thread lives on. */
static int
do_register_main_exits (const char *vm_id,
                        const char *zone)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();

  if (!gsm_session_manager_register_vm_sync (manager, vm_id, zone, NULL, NULL, NULL, &error))
    {
      printf ("ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
      fflush (stdout);
      return 1;
    }
  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  fflush (stdout);

  g_thread_unref (g_thread_new ("waiter", wait_for_stdin, NULL));
  pthread_exit (NULL);
}

/* A child made by fork() without exec: it shares the parent's open files
 * but must not keep its session alive once the parent is gone. */
static int
do_register_fork (const char *vm_id,
                  const char *zone)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  pid_t              child;

  if (!gsm_session_manager_register_vm_sync (manager, vm_id, zone, NULL, NULL, NULL, &error))
    {
      printf ("ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
      fflush (stdout);
      return 1;
    }
  fflush (stdout);
  child = fork ();
  if (child == 0)
    {
      for (;;)
        pause ();
    }
  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  printf ("CHILD %d\n", (int) child);
  fflush (stdout);
  for (;;)
    pause ();
  return 0;
}

static int
do_register_close (const char *vm_id,
                   const char *zone)
{
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  char               buf[64];

  if (!gsm_session_manager_register_vm_sync (manager, vm_id, zone, NULL, NULL, NULL, &error))
    {
      printf ("ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
      fflush (stdout);
      return 1;
    }
  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  fflush (stdout);

  while (fgets (buf, sizeof buf, stdin) != NULL)
    ;
  if (!gsm_session_manager_unregister_vm_sync (manager, NULL, &error) ||
      !gsm_session_manager_close_sync (manager, NULL, &error))
    {
      printf ("ERROR %s\n", error->message);
      return 1;
    }
  printf ("CLOSED\n");
  return 0;
}

static int
do_cycle (int         n,
          const char *tag)
{
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  int                done = 0;

  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *vm_id = g_strdup_printf ("vm-%s-%d-%d", tag, getpid (), i);

      if (!gsm_session_manager_register_vm_sync (manager, vm_id, "zone-a", NULL, NULL, NULL, &error) ||
          !gsm_session_manager_unregister_vm_sync (manager, NULL, &error))
        {
          printf ("ERROR %s\n", error->message);
          fflush (stdout);
          return 1;
        }
      done++;
    }

  printf ("OK %d\n", done);
  return gsm_session_manager_close_sync (manager, NULL, NULL) ? 0 : 1;
}

static void
print_session (const char *what,
               GsmSession *session)
{
  printf ("%s %s\n", what, gsm_session_get_session_id (session));
  fflush (stdout);
}

static void
lapsed_cb (GsmSessionManager *manager,
           GsmSession        *session)
{
  printf ("LAPSED %d %s\n", gsm_session_get_has_vm (session),
          gsm_session_get_has_vm (session) ? gsm_session_get_vm_id (session) : "-");
  fflush (stdout);
}

static void
stale_cb (GsmSessionManager *manager,
          GsmSession        *session)
{
  print_session ("STALE", session);
}

static void
added_cb (GsmSessionManager *manager,
          GsmSession        *session)
{
  print_session ("ADDED", session);
}

static void
removed_cb (GsmSessionManager *manager,
            GsmSession        *session)
{
  print_session ("REMOVED", session);
}

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
stdin_cb (int          fd,
          GIOCondition condition,
          gpointer     user_data)
{
  char buf[64];

  if (read (fd, buf, sizeof buf) > 0)
    return G_SOURCE_CONTINUE;
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static int
do_watch (const char *vm_id,
          const char *zone)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  GsmSessionManager *manager = gsm_session_manager_get_default ();

  g_signal_connect (manager, "ownership-lapsed", G_CALLBACK (lapsed_cb), NULL);
  g_signal_connect (manager, "session-stale", G_CALLBACK (stale_cb), NULL);
  g_signal_connect (manager, "session-added", G_CALLBACK (added_cb), NULL);
  g_signal_connect (manager, "session-removed", G_CALLBACK (removed_cb), NULL);

  if (!gsm_session_manager_register_vm_sync (manager, vm_id, zone, NULL, NULL, NULL, &error))
    {
      printf ("ERROR %s %d %s\n", g_quark_to_string (error->domain), error->code, error->message);
      fflush (stdout);
      return 1;
    }
  printf ("READY %s %d\n", gsm_session_manager_get_session_id (manager), getpid ());
  fflush (stdout);

  g_unix_signal_add (SIGTERM, quit_cb, loop);
  g_unix_fd_add (0, G_IO_IN | G_IO_HUP | G_IO_ERR, stdin_cb, loop);
  g_main_loop_run (loop);

  return 0;
}

int
main (int   argc,
      char *argv[])
{
  if (argc >= 3 && g_str_equal (argv[1], "register"))
    return do_register (argv[2], argc >= 4 ? argv[3] : "us-central1-a");

  if (argc >= 3 && g_str_equal (argv[1], "register-main-exits"))
    return do_register_main_exits (argv[2], argc >= 4 ? argv[3] : "us-central1-a");

  if (argc >= 3 && g_str_equal (argv[1], "register-fork"))
    return do_register_fork (argv[2], argc >= 4 ? argv[3] : "us-central1-a");

  if (argc >= 3 && g_str_equal (argv[1], "register-close"))
    return do_register_close (argv[2], argc >= 4 ? argv[3] : "us-central1-a");

  if (argc >= 3 && g_str_equal (argv[1], "watch"))
    return do_watch (argv[2], argc >= 4 ? argv[3] : "us-central1-a");

  if (argc >= 3 && g_str_equal (argv[1], "cycle"))
    return do_cycle (atoi (argv[2]), argc >= 4 ? argv[3] : "c");

  if (argc >= 2 && g_str_equal (argv[1], "list"))
    {
      g_autoptr (GError) error = NULL;
      GsmSessionManager *manager = gsm_session_manager_get_default ();
      g_autoptr (GHashTable) sessions = gsm_session_manager_get_all_active_sessions_sync (manager, NULL, &error);
      GHashTableIter iter;
      gpointer       key;

      if (sessions == NULL)
        {
          printf ("ERROR %s\n", error->message);
          return 1;
        }
      g_hash_table_iter_init (&iter, sessions);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        if (!g_str_equal (key, gsm_session_manager_get_session_id (manager)))
          printf ("%s\n", (char *) key);
      gsm_session_manager_close_sync (manager, NULL, NULL);
      return 0;
    }

  if (argc >= 2 && g_str_equal (argv[1], "cleanup"))
    {
      g_autoptr (GError) error = NULL;
      GsmSessionManager *manager = gsm_session_manager_get_default ();
      int                n = gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error);

      printf ("%d\n", n);
      gsm_session_manager_close_sync (manager, NULL, NULL);
      return n < 0;
    }

  fprintf (stderr, "usage: %s register VM_ID [ZONE] | watch VM_ID [ZONE] | cycle N [TAG] | list | cleanup\n", argv[0]);
  return 2;
}
