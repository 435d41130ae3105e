/* test-containers.c: liveness where users run: containers sharing the
 * runtime directory, pid 1, sandboxes with a boot id of their own, a main
 * thread that exited
 *
 * Every session here is a real process; containers are modelled with
 * unshare(1) (as root): another pid namespace with its own /proc, or
 * another mount namespace where /proc/sys/kernel/random/boot_id shows
 * another id. Both share the runtime directory, as a volume would. Every
 * test asserts what the fake provider was asked to delete: never a live
 * session's VM, and a dead session's VM only once its death is proven.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>

#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"
#include "reaper-test-util.h"

/* unshare(1) prefixes for a container of each kind; NULL-terminated. */
static const char *pid_namespace[] = { "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", NULL };

typedef struct
{
  GSubprocess      *process;
  GOutputStream    *stdin_pipe;
  GDataInputStream *out;
  char             *session_id;
  int               pid; /* as the session sees itself */
} Session;

static void
session_free (Session *s)
{
  if (s == NULL)
    return;
  if (g_subprocess_get_identifier (s->process) != NULL)
    {
      g_subprocess_force_exit (s->process);
      g_subprocess_wait (s->process, NULL, NULL);
    }
  g_clear_object (&s->out);
  g_object_unref (s->process);
  g_free (s->session_id);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Session, session_free)

/* A file that reads as another boot id, for sandboxes. */
static char *
fake_boot_id (Fixture *f)
{
  g_autofree char *id = g_uuid_string_random ();
  char            *path = g_build_filename (f->root, "boot_id", NULL);

  g_assert_true (g_file_set_contents (path, id, -1, NULL));
  return path;
}

/*
 * Starts `gsm-test-worker MODE VM_ID zone-a`, inside @wrapper (an argv
 * prefix) if not NULL, and @boot_id_file bind-mounted over the boot id if
 * not NULL.
 */
static Session *
session_start (const char *const *wrapper,
               const char        *boot_id_file,
               const char        *mode,
               const char        *vm_id,
               const char *const *extra_env)
{
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  g_auto (GStrv) parts = NULL;
  const char *exe = g_getenv ("GSM_TEST_WORKER");
  Session    *s = g_new0 (Session, 1);

  for (guint i = 0; wrapper != NULL && wrapper[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (wrapper[i]));
  if (boot_id_file != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("unshare"));
      g_ptr_array_add (argv, g_strdup ("--mount"));
      g_ptr_array_add (argv, g_strdup ("sh"));
      g_ptr_array_add (argv, g_strdup ("-c"));
      g_ptr_array_add (argv, g_strdup ("mount --bind \"$0\" /proc/sys/kernel/random/boot_id && exec \"$@\""));
      g_ptr_array_add (argv, g_strdup (boot_id_file));
    }
  g_ptr_array_add (argv, g_strdup (exe));
  g_ptr_array_add (argv, g_strdup (mode));
  g_ptr_array_add (argv, g_strdup (vm_id));
  g_ptr_array_add (argv, g_strdup ("zone-a"));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDIN_PIPE);
  for (guint i = 0; extra_env && extra_env[i]; i += 2)
    g_subprocess_launcher_setenv (launcher, extra_env[i], extra_env[i + 1], TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  s->process = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  s->stdin_pipe = g_subprocess_get_stdin_pipe (s->process);

  s->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (s->process));
  line = g_data_input_stream_read_line_utf8 (s->out, NULL, NULL, &error);
  g_assert_no_error (error);
  if (line == NULL || !g_str_has_prefix (line, "READY "))
    g_error ("session for %s said: %s", vm_id, line ? line : "(nothing)");
  parts = g_strsplit (line, " ", 3);
  s->session_id = g_strdup (parts[1]);
  s->pid = atoi (parts[2]);

  return s;
}

/* kill -9 (of the container's init too: --kill-child takes the rest). */
static void
session_kill (Session *s)
{
  g_autoptr (GError) error = NULL;

  g_subprocess_send_signal (s->process, SIGKILL);
  g_subprocess_wait (s->process, NULL, &error);
  g_assert_no_error (error);
  /* The pid namespace's init is killed when unshare dies; wait until the
   * kernel has released what it held. */
  g_usleep (200 * 1000);
}

/* Closes stdin: a register-close session unregisters and closes. */
static void
session_close (Session *s)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;

  g_output_stream_close (s->stdin_pipe, NULL, &error);
  g_assert_no_error (error);
  line = g_data_input_stream_read_line_utf8 (s->out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, "CLOSED");
  g_subprocess_wait (s->process, NULL, &error);
  g_assert_no_error (error);
}

/* Runs gsmctl with @args, inside @wrapper if not NULL; returns its exit
 * status. */
static int
gsmctl_in (const char *const *wrapper,
           const char        *boot_id_file,
           const char        *args)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL, *err = NULL;
  g_auto (GStrv) split = g_strsplit (args, " ", -1);

  for (guint i = 0; wrapper != NULL && wrapper[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (wrapper[i]));
  if (boot_id_file != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("unshare"));
      g_ptr_array_add (argv, g_strdup ("--mount"));
      g_ptr_array_add (argv, g_strdup ("sh"));
      g_ptr_array_add (argv, g_strdup ("-c"));
      g_ptr_array_add (argv, g_strdup ("mount --bind \"$0\" /proc/sys/kernel/random/boot_id && exec \"$@\""));
      g_ptr_array_add (argv, g_strdup (boot_id_file));
    }
  g_ptr_array_add (argv, g_strdup (g_getenv ("GSMCTL")));
  for (guint i = 0; split[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (split[i]));
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char *const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_test_message ("gsmctl %s: %s%s", args, out, err);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

/* The registry entry of @session_id, read without entering it, or NULL. */
static GsmSession *
entry_of (const char *session_id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) table =
      _gsm_session_manager_list_sessions_sync (gsm_session_manager_get_default (), NULL, &error);
  GsmSession *s;

  g_assert_no_error (error);
  s = g_hash_table_lookup (table, session_id);
  return s ? g_object_ref (s) : NULL;
}

static gboolean
can_unshare (void)
{
  g_autofree char *out = NULL;
  int              status = -1;

  if (geteuid () != 0)
    return FALSE;
  if (!g_spawn_command_line_sync ("unshare --pid --fork --mount-proc true", &out, NULL, &status, NULL))
    return FALSE;
  return g_spawn_check_wait_status (status, NULL);
}

#define SKIP_UNLESS_UNSHARE()                                                    \
  G_STMT_START                                                                   \
  {                                                                              \
    if (!can_unshare ())                                                         \
      {                                                                          \
        g_test_skip ("needs root and unshare(1) with pid and mount namespaces"); \
        return;                                                                  \
      }                                                                          \
  }                                                                              \
  G_STMT_END

/* A session that is pid 1 of another pid namespace is alive to the host
 * while it runs (its pid means nothing here: the lock says so), and dead
 * once killed; its entry (pid 1) never makes the registry "corrupt". */
static void
test_pid_namespace (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (Session) inside = NULL;
  g_autoptr (GsmSession) entry = NULL;

  SKIP_UNLESS_UNSHARE ();
  cloud_add_vm (f, "vm-container");
  inside = session_start (pid_namespace, NULL, "register", "vm-container", NULL);
  g_assert_cmpint (inside->pid, ==, 1);

  g_assert_cmpint (gsmctl_in (NULL, NULL, "cleanup --yes"), ==, 0);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-container"), ==, 0);
  entry = entry_of (inside->session_id);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
  g_assert_cmpint (gsm_session_get_pid (entry), ==, 1);
  g_clear_object (&entry);

  session_kill (inside);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-container"), ==, 1);
  g_assert_false (cloud_has_vm (f, "vm-container"));
  g_assert_null (entry_of (inside->session_id));
}

/* A reaper inside a container sees the host's live session alive, and a
 * dead one dead. */
static void
test_reaper_in_container (Fixture      *f,
                          gconstpointer data)
{
  g_autoptr (Session) live = NULL, dead = NULL;
  g_autoptr (GsmSession) entry = NULL;

  SKIP_UNLESS_UNSHARE ();
  cloud_add_vm (f, "vm-host-live");
  cloud_add_vm (f, "vm-host-dead");
  live = session_start (NULL, NULL, "register", "vm-host-live", NULL);
  dead = session_start (NULL, NULL, "register", "vm-host-dead", NULL);
  session_kill (dead);

  g_assert_cmpint (gsmctl_in (pid_namespace, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-host-live"), ==, 0);
  g_assert_true (cloud_has_vm (f, "vm-host-live"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-host-dead"), ==, 1);
  g_assert_false (cloud_has_vm (f, "vm-host-dead"));

  entry = entry_of (live->session_id);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
}

/* A session whose boot id differs from the reader's (a sandbox with a
 * kernel of its own, modelled here on the same kernel) is alive while it
 * runs. Once it is gone nothing here can prove it dead: it is listed,
 * never marked stale, and its VM is kept. */
static void
test_other_boot_id (Fixture      *f,
                    gconstpointer data)
{
  g_autofree char *boot_id = NULL;
  g_autoptr (Session) sandboxed = NULL, host = NULL;
  g_autoptr (GsmSession) entry = NULL;

  SKIP_UNLESS_UNSHARE ();
  boot_id = fake_boot_id (f);
  cloud_add_vm (f, "vm-sandboxed");
  cloud_add_vm (f, "vm-host");
  sandboxed = session_start (NULL, boot_id, "register", "vm-sandboxed", NULL);
  host = session_start (NULL, NULL, "register", "vm-host", NULL);

  /* Each side's reaper leaves the other's live VM alone. */
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpint (gsmctl_in (NULL, boot_id, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-sandboxed"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-host"), ==, 0);

  /* Gone: unverifiable from the host, so never reaped by it. */
  session_kill (sandboxed);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "cleanup --yes"), ==, 0);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-sandboxed"), ==, 0);
  entry = entry_of (sandboxed->session_id);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-sandboxed");
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "unverifiable");
  g_clear_object (&entry);

  /* But a reader of its own kernel (the same boot id) proves it dead. */
  g_assert_cmpint (gsmctl_in (NULL, boot_id, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-sandboxed"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-host"), ==, 0);
}

/* A process whose main thread exited while another runs shows as a
 * zombie in /proc: it is alive. */
static void
test_main_thread_exited (Fixture      *f,
                         gconstpointer data)
{
  g_autoptr (Session) s = NULL;
  g_autofree char *stat_path = NULL;
  g_autofree char *stat = NULL;

  cloud_add_vm (f, "vm-threads");
  s = session_start (NULL, NULL, "register-main-exits", "vm-threads", NULL);

  /* Wait for the main thread to be gone. */
  stat_path = g_strdup_printf ("/proc/%d/stat", s->pid);
  for (guint i = 0; i < 100; i++)
    {
      g_clear_pointer (&stat, g_free);
      g_assert_true (g_file_get_contents (stat_path, &stat, NULL, NULL));
      if (strstr (stat, ") Z ") != NULL)
        break;
      g_usleep (20 * 1000);
    }
  g_assert_nonnull (strstr (stat, ") Z "));

  g_assert_cmpint (gsmctl_in (NULL, NULL, "cleanup --yes"), ==, 0);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-threads"), ==, 0);

  session_kill (s);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-threads"), ==, 1);
}

/* Two containers on one volume, both pid 1: the second, started after the
 * first crashed, closes cleanly without touching the first one's files;
 * the first's VM is still known, and reaped. @data: a file prefix (the
 * seed's layout) or "". */
static void
test_same_pid_same_volume (Fixture      *f,
                           gconstpointer data)
{
  const char *prefix = data;
  const char *env[] = { "GSM_FILE_PREFIX", prefix, NULL };
  g_autoptr (Session) first = NULL, second = NULL;
  g_autoptr (GDir) dir = NULL;
  const char *name;
  guint       n_first = 0;

  SKIP_UNLESS_UNSHARE ();
  g_setenv ("GSM_FILE_PREFIX", prefix, TRUE);

  cloud_add_vm (f, "vm-first");
  cloud_add_vm (f, "vm-second");
  first = session_start (pid_namespace, NULL, "register", "vm-first", env);
  session_kill (first);
  second = session_start (pid_namespace, NULL, "register-close", "vm-second", env);
  g_assert_cmpint (first->pid, ==, second->pid);
  session_close (second);

  /* The first session's own file is still there. */
  dir = g_dir_open (f->runtime, 0, NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strstr (name, first->session_id) != NULL && g_str_has_suffix (name, ".json"))
      n_first++;
  g_assert_cmpuint (n_first, ==, 1);

  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-first"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-second"), ==, 0);

  g_unsetenv ("GSM_FILE_PREFIX");
}

/* A child made by fork() without exec outlives the session's process: the
 * session is dead all the same, seen from a container (where only the
 * lock can tell). */
static void
test_forked_child_outlives (Fixture      *f,
                            gconstpointer data)
{
  g_autoptr (Session) s = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  int              child;

  SKIP_UNLESS_UNSHARE ();
  cloud_add_vm (f, "vm-forked");
  s = session_start (NULL, NULL, "register-fork", "vm-forked", NULL);
  line = g_data_input_stream_read_line_utf8 (s->out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (line, "CHILD "));
  child = atoi (line + strlen ("CHILD "));
  g_assert_cmpint (child, >, 1);

  session_kill (s);
  g_assert_cmpint (kill (child, 0), ==, 0);
  g_assert_cmpint (gsmctl_in (pid_namespace, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-forked"), ==, 1);
  kill (child, SIGKILL);
}

/* A file of another user (nobody), as if made before us in a shared
 * directory. */
static void
plant_foreign_file (const char *dir,
                    const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  g_assert_true (g_file_set_contents (path, "{}", -1, NULL));
  g_assert_cmpint (chown (path, 65534, 65534), ==, 0);
}

static char *
read_file (const char *dir,
           const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char            *contents = NULL;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  return contents;
}

/* In a shared sticky directory (/tmp and the seed's own layout), another
 * user who made our file names first blocks nothing: our files carry our
 * uid, theirs stay as they were, and a crash is still found and reaped. */
static void
test_shared_sticky_directory (Fixture      *f,
                              gconstpointer data)
{
  const char      *env[] = { "GSM_FILE_PREFIX", "jarvis_", NULL };
  const char      *planted[] = { "jarvis_vm_registry.lock", "jarvis_vm_registry.json",
                                 "jarvis_global_session.json", NULL };
  g_autofree char *own_session = g_strdup_printf ("jarvis_session_%d.json", getpid ());
  g_autofree char *registry = NULL;
  g_autoptr (Session) s = NULL;
  g_autoptr (GError) error = NULL;
  GsmSessionManager *manager;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root, to make files of another user");
      return;
    }
  g_assert_cmpint (chmod (f->runtime, 01777), ==, 0);
  g_setenv ("GSM_FILE_PREFIX", "jarvis_", TRUE);

  /* This process's session file, by pid, the seed's way, taken: the
   * session's file is named after the session, which no one can guess. */
  plant_foreign_file (f->runtime, own_session);
  manager = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-first", "zone-a", NULL, NULL,
                                                       NULL, &error));
  g_assert_no_error (error);
  registry = g_file_get_basename (gsm_session_manager_get_vm_registry (manager));
  g_assert_cmpstr (registry, ==, "jarvis_vm_registry.json");
  {
    g_autofree char *session_file = g_file_get_basename (gsm_session_manager_get_session_file (manager));

    g_assert_nonnull (strstr (session_file, gsm_session_manager_get_session_id (manager)));
  }
  g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
  g_assert_no_error (error);
  _gsm_session_manager_reset_for_testing ();

  /* The registry's names taken too (by a user who came first): ours carry
   * our uid. */
  for (guint i = 0; planted[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (f->runtime, planted[i], NULL);

      g_unlink (path);
      plant_foreign_file (f->runtime, planted[i]);
    }
  cloud_add_vm (f, "vm-shared");
  s = session_start (NULL, NULL, "register", "vm-shared", env);
  manager = gsm_session_manager_get_default ();
  g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-mine", "zone-a", NULL, NULL,
                                                       NULL, &error));
  g_assert_no_error (error);
  g_clear_pointer (&registry, g_free);
  registry = g_file_get_basename (gsm_session_manager_get_vm_registry (manager));
  g_assert_cmpstr (registry, ==, "jarvis_u0_vm_registry.json");

  /* Theirs, untouched. */
  for (guint i = 0; planted[i] != NULL; i++)
    {
      g_autofree char *contents = read_file (f->runtime, planted[i]);

      g_assert_cmpstr (contents, ==, "{}");
    }
  {
    g_autofree char *contents = read_file (f->runtime, own_session);

    g_assert_cmpstr (contents, ==, "{}");
  }

  /* The crash of the other session is found, and its VM reaped. */
  session_kill (s);
  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-shared"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-mine"), ==, 0);
  g_unsetenv ("GSM_FILE_PREFIX");
}

typedef struct
{
  const char *session_id;
} MarkStale;

static gboolean
txn_mark_stale (GsmRegistryTxn *txn,
                gpointer        user_data,
                GError        **error)
{
  MarkStale  *m = user_data;
  GsmSession *entry = _gsm_registry_txn_lookup (txn, m->session_id);
  g_autoptr (GsmSession) stale = NULL;

  g_assert_nonnull (entry);
  stale = _gsm_session_with_stale (entry, g_get_real_time () / (double) G_USEC_PER_SEC - 3600);
  _gsm_registry_txn_put (txn, stale);
  return TRUE;
}

/* A live session wrongly recorded stale (by an earlier version, or by
 * hand) keeps its VM: registration checks its owner again, the reaper
 * too, and a cleanup records it active again. */
static void
test_wrong_stale_mark (Fixture      *f,
                       gconstpointer data)
{
  g_autoptr (Session) owner = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  MarkStale          m;
  GsmSessionManager *manager = gsm_session_manager_get_default ();

  cloud_add_vm (f, "vm-marked");
  owner = session_start (NULL, NULL, "register", "vm-marked", NULL);
  m.session_id = owner->session_id;
  snapshot = _gsm_registry_update (_gsm_session_manager_get_registry (manager),
                                   txn_mark_stale, &m, NULL, &error);
  g_assert_no_error (error);

  g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-marked", "zone-a", NULL,
                                                        NULL, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_VM_OWNED_BY_OTHER);
  g_clear_error (&error);

  g_assert_cmpint (gsmctl_in (NULL, NULL, "reap --yes"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-marked"), ==, 0);

  g_assert_cmpint (gsm_session_manager_cleanup_stale_sessions_sync (manager, NULL, &error), ==, 0);
  g_assert_no_error (error);
  entry = entry_of (owner->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "active");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-marked");
}

/* Each test has its own runtime directory, and its own manager in it. */
static void
set_up (Fixture      *f,
        gconstpointer data)
{
  fixture_set_up (f, data);
  _gsm_session_manager_reset_for_testing ();
}

static void
tear_down (Fixture      *f,
           gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  fixture_tear_down (f, data);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func, data) \
  g_test_add (path, Fixture, data, set_up, func, tear_down)
  ADD ("/containers/pid-namespace", test_pid_namespace, NULL);
  ADD ("/containers/reaper-in-container", test_reaper_in_container, NULL);
  ADD ("/containers/other-boot-id", test_other_boot_id, NULL);
  ADD ("/containers/main-thread-exited", test_main_thread_exited, NULL);
  ADD ("/containers/same-pid-same-volume", test_same_pid_same_volume, "");
  ADD ("/containers/same-pid-same-volume-seed-layout", test_same_pid_same_volume, "jarvis_");
  ADD ("/containers/wrong-stale-mark", test_wrong_stale_mark, NULL);
  ADD ("/containers/forked-child-outlives", test_forked_child_outlives, NULL);
  ADD ("/containers/shared-sticky-directory", test_shared_sticky_directory, NULL);
#undef ADD

  return g_test_run ();
}
