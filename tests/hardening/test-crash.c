/* test-crash.c: writers killed with SIGKILL at random moments
 *
 * Each round starts two writers that run a few register/unregister cycles
 * to the end and a victim, then kills the victim with SIGKILL: either a
 * writer in an endless loop, after a random delay (so in the middle of
 * anything, start-up included), or a process holding the registry lock
 * (sometimes with a half-written temporary file, as a writer killed before
 * its rename leaves). Then:
 *  - the next writer gets the lock at once (a single try, no waiting);
 *  - at most the one temporary file of the victim is there, and opening
 *    the registry removes it: nothing piles up;
 *  - the registry file is whole and every entry parses, nothing was moved
 *    aside as corrupt;
 *  - the victim's entry agrees with the last line it printed (each line
 *    is printed, flushed, after the call returned or before it started):
 *    a VM it registered and did not start to unregister is there;
 *  - the other writers finished every cycle and left.
 *
 * GSM_CRASH_ROUNDS sets the number of rounds (100; tools/stress.sh 1000).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "gsm-lock-private.h"
#include "hardening-util.h"

typedef struct
{
  guint rounds;
  guint killed_writers;
  guint killed_lock_holders;
  guint temp_files_left;
  guint vms_held_at_kill;
  guint killed_with_session;
  guint killed_mid_call;
} Figures;

static gboolean
remove_session (GsmRegistryTxn *txn,
                gpointer        user_data,
                GError        **error)
{
  _gsm_registry_txn_remove (txn, user_data);
  return TRUE;
}

/* What the victim's entry may hold, from the last line it printed. */
static void
check_victim (GHashTable *registry,
              char      **lines,
              Figures    *figures)
{
  const char      *session_id = NULL;
  const char      *last = NULL;
  g_autofree char *must_have = NULL; /* this VM, surely */
  g_autofree char *may_have = NULL;  /* this VM or none */
  GsmSession      *entry;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] == '\0')
        continue;
      g_assert_false (g_str_has_prefix (lines[i], "ERROR"));
      if (g_str_has_prefix (lines[i], "SESSION "))
        session_id = lines[i] + strlen ("SESSION ");
      last = lines[i];
    }

  if (session_id == NULL)
    return; /* killed while starting: nothing was promised */
  figures->killed_with_session++;
  if (strstr (last, "-START ") != NULL)
    figures->killed_mid_call++;

  if (g_str_has_prefix (last, "REG "))
    must_have = g_strdup (last + strlen ("REG "));
  else if (g_str_has_prefix (last, "REG-START "))
    may_have = g_strdup (last + strlen ("REG-START "));
  else if (g_str_has_prefix (last, "UNREG-START "))
    may_have = g_strdup (last + strlen ("UNREG-START "));
  else
    g_assert_true (g_str_has_prefix (last, "SESSION ") || g_str_has_prefix (last, "UNREG "));

  entry = g_hash_table_lookup (registry, session_id);
  if (must_have != NULL)
    {
      g_assert_nonnull (entry);
      g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, must_have);
      figures->vms_held_at_kill++;
    }
  else if (entry != NULL && gsm_session_get_vm_id (entry) != NULL)
    g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, may_have);
}

/* A single try, no waiting: a lock left by a killed process is free. */
static void
check_lock_free (const char *dir)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *lock_path = g_build_filename (dir, "vm_registry.lock", NULL);
  int              dirfd, lock_fd;

  dirfd = _gsm_fs_open_dir (dir, FALSE, &error);
  g_assert_no_error (error);
  lock_fd = _gsm_lock_open (dirfd, dir, "vm_registry.lock", &error);
  g_assert_no_error (error);
  _gsm_lock_acquire (lock_fd, lock_path, 0, NULL, &error);
  g_assert_no_error (error);
  _gsm_lock_release (lock_fd);
  close (lock_fd);
  close (dirfd);
}

static void
run_round (const char *dir,
           guint       round,
           Figures    *figures)
{
  g_autofree char *tag_a = g_strdup_printf ("r%u-a", round);
  g_autofree char *tag_b = g_strdup_printf ("r%u-b", round);
  g_autofree char *tag_v = g_strdup_printf ("r%u-v", round);
  const char      *writer_a[] = { "writer", tag_a, "5", NULL };
  const char      *writer_b[] = { "writer", tag_b, "5", NULL };
  const char      *victim_writer[] = { "writer", tag_v, "0", "hold", NULL };
  const char      *holder[] = { "hold-lock", NULL };
  const char      *holder_tmp[] = { "hold-lock", "tmp", NULL };
  g_autoptr (GSubprocess) a = NULL;
  g_autoptr (GSubprocess) b = NULL;
  g_autoptr (GSubprocess) victim = NULL;
  g_auto (GStrv) victim_lines = NULL;
  g_auto (GStrv) lines_a = NULL;
  g_auto (GStrv) lines_b = NULL;
  g_autoptr (GHashTable) registry = NULL;
  g_autoptr (GsmFileRegistry) next = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  gboolean lock_holder = g_test_rand_int_range (0, 4) == 0;
  gboolean killed = FALSE;
  guint    temp_files;
  int      status;

  if (lock_holder)
    {
      g_autofree char *line = NULL;
      gboolean         with_tmp = g_test_rand_bit ();

      victim = hardening_spawn (dir, with_tmp ? holder_tmp : holder, 0);
      line = hardening_read_line (victim);
      g_assert_cmpstr (line, ==, "LOCKED");
      figures->killed_lock_holders++;
      if (g_test_rand_bit ())
        {
          /* Writers that wait for the lock while it is held. */
          a = hardening_spawn (dir, writer_a, 0);
          b = hardening_spawn (dir, writer_b, 0);
          g_usleep (g_test_rand_int_range (0, 5000));
        }
      else
        {
          /* Nobody else around: what the victim left is seen as it is. */
          g_subprocess_send_signal (victim, SIGKILL);
          killed = TRUE;
          g_subprocess_wait (victim, NULL, &error);
          g_assert_no_error (error);
          check_lock_free (dir);
          temp_files = hardening_count_files (dir, ".tmp-");
          g_assert_cmpuint (temp_files, ==, with_tmp ? 1 : 0);
          figures->temp_files_left += temp_files;
          a = hardening_spawn (dir, writer_a, 0);
          b = hardening_spawn (dir, writer_b, 0);
        }
    }
  else
    {
      a = hardening_spawn (dir, writer_a, 0);
      victim = hardening_spawn (dir, victim_writer, 0);
      b = hardening_spawn (dir, writer_b, 0);
      g_usleep (g_test_rand_int_range (0, 80000));
      figures->killed_writers++;
    }

  if (!killed)
    g_subprocess_send_signal (victim, SIGKILL);
  victim_lines = hardening_finish (victim, NULL);
  g_assert_true (g_subprocess_get_if_signaled (victim));
  g_assert_cmpint (g_subprocess_get_term_sig (victim), ==, SIGKILL);

  lines_a = hardening_finish (a, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (lines_a[g_strv_length (lines_a) - 1], ==, "DONE 5");
  lines_b = hardening_finish (b, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (lines_b[g_strv_length (lines_b) - 1], ==, "DONE 5");

  /* Nobody holds the lock now: it must be free at once. */
  check_lock_free (dir);

  /* At most the one temporary file of a writer killed before its rename
   * (the others had opened the registry before); the next one to open the
   * registry removes it, below. */
  temp_files = hardening_count_files (dir, ".tmp-");
  g_assert_cmpuint (temp_files, <=, 1);
  figures->temp_files_left += temp_files;

  registry = hardening_read_registry (dir);
  g_assert_cmpuint (hardening_count_files (dir, ".corrupt-"), ==, 0);
  if (!lock_holder)
    check_victim (registry, victim_lines, figures);
  for (guint i = 0; lines_a[i] != NULL; i++)
    if (g_str_has_prefix (lines_a[i], "SESSION "))
      g_assert_false (g_hash_table_contains (registry, lines_a[i] + strlen ("SESSION ")));
  for (guint i = 0; lines_b[i] != NULL; i++)
    if (g_str_has_prefix (lines_b[i], "SESSION "))
      g_assert_false (g_hash_table_contains (registry, lines_b[i] + strlen ("SESSION ")));

  next = _gsm_file_registry_new (dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hardening_count_files (dir, ".tmp-"), ==, 0);

  /* Leave the next round a registry without the dead victim. */
  for (guint i = 0; victim_lines[i] != NULL; i++)
    if (g_str_has_prefix (victim_lines[i], "SESSION "))
      {
        snapshot = _gsm_registry_update (GSM_REGISTRY (next), remove_session,
                                         victim_lines[i] + strlen ("SESSION "), NULL, &error);
        g_assert_no_error (error);
      }

  figures->rounds++;
}

static void
test_crash_rounds (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("gsm-crash-XXXXXX", &error);
  guint            rounds = (guint) hardening_env_int ("GSM_CRASH_ROUNDS", 100);
  Figures          figures = {
             0,
  };

  g_assert_no_error (error);
  for (guint r = 0; r < rounds; r++)
    run_round (dir, r, &figures);

  g_assert_cmpuint (figures.rounds, ==, rounds);
  /* A killed writer leaves its session file (for a rebuild); the writers
   * that finished leave nothing. */
  g_assert_cmpuint (hardening_count_files (dir, "session_"), <=, figures.killed_writers);
  g_test_message ("FIGURES crash rounds=%u killed_writers=%u (after start-up %u, in the middle "
                  "of a call %u, holding a VM %u, every VM found) killed_lock_holders=%u "
                  "temp_files_left=%u (all removed by the next writer)",
                  figures.rounds, figures.killed_writers, figures.killed_with_session,
                  figures.killed_mid_call, figures.vms_held_at_kill, figures.killed_lock_holders,
                  figures.temp_files_left);
  hardening_rm_rf (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/hardening/crash/rounds", test_crash_rounds);
  return g_test_run ();
}
