/* test-records.c: records that hold where users actually run
 *
 *  - bounds at the API: a VM id or zone a provider could never be given
 *    (a leading “-”, white space, a control or invisible character),
 *    too many or too long components and oversized metadata are refused
 *    by register_vm with GSM_ERROR_INVALID_ARGUMENT, and nothing is
 *    written; what is just within the limits is accepted; a registration
 *    that would make the registry larger than readers accept is refused;
 *  - entries other writers may legitimately write (pid 1, another host's
 *    pid above our pid_max) are read as they are, and an entry that truly
 *    cannot be read is kept aside verbatim, alone: every other entry
 *    stays with its VM, nothing is rebuilt;
 *  - a rebuild of a registry file that does not parse keeps what only the
 *    registry knew (stale marks, a reaper's claim and attempts, entries
 *    without a session file), so a claimed VM cannot be taken over;
 *  - a transient failure to enter the registry at start-up (the lock held
 *    by another process past GSM_LOCK_TIMEOUT) does not stick: the first
 *    operation fails with it, a later one succeeds once the lock is free,
 *    and the process is then in the registry; likewise after a directory
 *    whose mode is fixed, and a file system that was full (root only).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "hardening-util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_set_up (Fixture      *f,
                gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("gsm-records-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture      *f,
                   gconstpointer data)
{
  hardening_rm_rf (f->dir);
  g_free (f->dir);
}

/* The text of file @name of the runtime directory, or NULL. */
static char *
read_file (Fixture    *f,
           const char *name)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  char            *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  return contents;
}

/* A dictionary with one string of @size bytes. */
static GVariant *
metadata_of_size (gsize size)
{
  g_autofree char *blob = g_strnfill (size, 'm');
  GVariantBuilder  b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "blob", g_variant_new_string (blob));
  return g_variant_builder_end (&b);
}

static void
assert_refused (GsmSessionManager *manager,
                const char        *vm_id,
                const char        *zone,
                const char *const *components,
                GVariant          *metadata,
                const char        *message)
{
  g_autoptr (GError) error = NULL;

  g_test_message ("refused: vm_id “%s”, zone “%s”", vm_id, zone);
  g_assert_false (gsm_session_manager_register_vm_sync (manager, vm_id, zone, components,
                                                        metadata, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  if (strstr (error->message, message) == NULL)
    g_error ("“%s” does not say “%s”", error->message, message);
}

static void
test_bounds (Fixture      *f,
             gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) many = g_ptr_array_new_with_free_func (g_free);
      g_autofree char   *long_component = g_strnfill (256, 'c');
      g_autofree char   *long_id = g_strnfill (256, 'v');
      g_autofree char   *registry = NULL;
      g_autofree char   *session_file = NULL;
      g_autofree char   *session_name = NULL;
      GsmSessionManager *manager;
      const char        *one_long[] = { "ok", long_component, NULL };

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      manager = gsm_session_manager_get_default ();

      /* Names a provider command could never be given. */
      assert_refused (manager, "-vm", "z", NULL, NULL, "starts with “-”");
      assert_refused (manager, "--zone=evil", "z", NULL, NULL, "starts with “-”");
      assert_refused (manager, "vm", "-z", NULL, NULL, "zone “-z” starts with “-”");
      assert_refused (manager, "vm 1", "z", NULL, NULL, "white space");
      assert_refused (manager, " vm", "z", NULL, NULL, "white space");
      assert_refused (manager, "vm", "z\xc2\xa0", NULL, NULL, "white space"); /* U+00A0 */
      assert_refused (manager, "vm\xe2\x80\x8b", "z", NULL, NULL, "U+200B");  /* zero width */
      assert_refused (manager, "vm\x1b[0m", "z", NULL, NULL, "control character");
      assert_refused (manager, "vm\t", "z", NULL, NULL, "control character");
      assert_refused (manager, "vm\xc2\x85", "z", NULL, NULL, "U+0085"); /* C1 */
      assert_refused (manager, long_id, "z", NULL, NULL, "longer than 255 bytes");
      assert_refused (manager, "", "z", NULL, NULL, "vm_id is empty");

      /* Too many or too long components. */
      for (guint i = 0; i < 65; i++)
        g_ptr_array_add (many, g_strdup_printf ("c%u", i));
      g_ptr_array_add (many, NULL);
      assert_refused (manager, "vm", "z", (const char *const *) many->pdata, NULL,
                      "more than 64 components");
      assert_refused (manager, "vm", "z", one_long, NULL, "longer than 255 bytes");

      /* Metadata of 1.5 MiB, and just over the limit. */
      assert_refused (manager, "vm", "z", NULL, metadata_of_size (1536 * 1024), "65536");
      assert_refused (manager, "vm", "z", NULL, metadata_of_size (65536), "more than the 65536 allowed");

      /* Nothing was written: our entry has no VM, nothing moved aside. */
      registry = read_file (f, "vm_registry.json");
      g_assert_nonnull (registry);
      g_assert_nonnull (strstr (registry, gsm_session_manager_get_session_id (manager)));
      g_assert_null (strstr (registry, "vm_id"));
      session_name = g_file_get_basename (gsm_session_manager_get_session_file (manager));
      session_file = read_file (f, session_name);
      g_assert_nonnull (session_file);
      g_assert_null (strstr (session_file, "vm_id"));
      g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, 0);

      /* The limits themselves are accepted, and read back. */
      {
        g_autoptr (GPtrArray) most = g_ptr_array_new_with_free_func (g_free);
        g_autoptr (GsmSession) vm = NULL;
        g_autofree char *id = g_strnfill (255, 'v');
        /* {"blob": "…"} is 12 bytes around the string. */
        GVariant *metadata = metadata_of_size (65536 - 12);

        for (guint i = 0; i < 64; i++)
          {
            char *c = g_strnfill (255, 'c');

            g_snprintf (c, 4, "%03u", i);
            c[3] = 'c';
            g_ptr_array_add (most, c);
          }
        g_ptr_array_add (most, NULL);
        g_assert_true (gsm_session_manager_register_vm_sync (manager, id, "us-central1-a",
                                                             (const char *const *) most->pdata,
                                                             metadata, NULL, &error));
        g_assert_no_error (error);
        vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
        g_assert_no_error (error);
        g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, id);
        g_assert_cmpuint (g_strv_length ((char **) gsm_session_get_components (vm)), ==, 64);
        g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
        g_assert_no_error (error);
      }

      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_startup_lock_timeout (Fixture      *f,
                           gconstpointer data)
{
  if (g_test_subprocess ())
    {
      const char *hold[] = { "hold-lock", NULL };
      g_autoptr (GSubprocess) holder = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GHashTable) entries = NULL;
      g_autofree char   *line = NULL;
      GsmSessionManager *manager;
      GsmSession        *own;

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      g_setenv ("GSM_LOCK_TIMEOUT", "0.3", TRUE);

      /* Another process holds the registry lock. */
      holder = hardening_spawn (f->dir, hold, 0);
      line = hardening_read_line (holder);
      g_assert_cmpstr (line, ==, "LOCKED");

      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*cannot be used now*Timed out*lock*");
      manager = gsm_session_manager_get_default ();
      g_test_assert_expected_messages ();

      /* While it holds it, an operation fails with that reason. */
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-later", "z", NULL, NULL,
                                                            NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_LOCK_TIMEOUT);
      g_clear_error (&error);
      entries = hardening_read_registry (f->dir);
      g_assert_null (g_hash_table_lookup (entries, gsm_session_manager_get_session_id (manager)));
      g_clear_pointer (&entries, g_hash_table_unref);

      /* Released (its holder died): the next operation enters. */
      g_subprocess_send_signal (holder, SIGKILL);
      g_subprocess_wait (holder, NULL, NULL);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-later", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);

      entries = hardening_read_registry (f->dir);
      own = g_hash_table_lookup (entries, gsm_session_manager_get_session_id (manager));
      g_assert_nonnull (own);
      g_assert_cmpint (gsm_session_get_pid (own), ==, getpid ());
      g_assert_cmpstr (gsm_session_get_vm_id (own), ==, "vm-later");

      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* Runs gsmctl (a process of its own) in the runtime directory. */
static int
run_gsmctl (Fixture    *f,
            const char *command,
            char      **out,
            char      **err)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *stderr_text = NULL;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", f->dir, TRUE);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSMCTL"), command, "--json", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, out, &stderr_text, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (proc))
    g_error ("gsmctl %s was killed by signal %d; it said: %s", command,
             g_subprocess_get_term_sig (proc), stderr_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  return g_subprocess_get_exit_status (proc);
}

/* Enters a session in the runtime directory (gsm-test-worker list, a
 * process of its own): unlike gsmctl list, which only reads, a session
 * sets unreadable entries aside and rebuilds a corrupt registry. Returns
 * its exit status; @err gets what it printed. */
static int
run_session (Fixture *f,
             char   **err)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *stderr_text = NULL;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", f->dir, TRUE);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"), "list", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

/* The text of one registry member: "ID": {…}, with a VM unless @vm_id is
 * NULL, and @extra members (text) appended. */
static char *
member_text (const char *id,
             const char *pid,
             const char *hostname,
             const char *vm_id,
             const char *extra)
{
  GString *out = g_string_new (NULL);

  g_string_append_printf (out, "\"%s\": {\"session_id\": \"%s\", \"pid\": %s, "
                               "\"hostname\": \"%s\", \"created_at\": %.1f",
                          id, id, pid, hostname,
                          g_get_real_time () / 1e6 - 60);
  if (vm_id != NULL)
    g_string_append_printf (out, ", \"vm_id\": \"%s\", \"zone\": \"zone-a\", \"components\": [], "
                                 "\"metadata\": {}, \"registered_at\": %.1f",
                            vm_id,
                            g_get_real_time () / 1e6 - 50);
  if (extra != NULL)
    g_string_append_printf (out, ", %s", extra);
  g_string_append_c (out, '}');
  return g_string_free (out, FALSE);
}

static void
write_registry (Fixture   *f,
                GPtrArray *members)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autoptr (GString) text = g_string_new ("{");

  for (guint i = 0; i < members->len; i++)
    g_string_append_printf (text, "%s\n  %s", i > 0 ? "," : "", (char *) members->pdata[i]);
  g_string_append (text, "\n}\n");
  g_assert_true (g_file_set_contents (path, text->str, (gssize) text->len, NULL));
}

/* The one quarantine file's text. */
static char *
read_quarantine (Fixture *f)
{
  g_autoptr (GDir) d = g_dir_open (f->dir, 0, NULL);
  const char *name;
  char       *found = NULL;

  while ((name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, "vm_registry.json.quarantine-"))
      {
        g_assert_null (found);
        found = read_file (f, name);
      }
  g_assert_nonnull (found);
  return found;
}

/*
 * What other writers legitimately write is read as it is: a container's
 * main process (pid 1, this host) and another host whose pid_max is above
 * ours (pid 4000000). Entries that truly cannot be read (a pid that is a
 * string, a VM id that is a number) are kept aside verbatim, each alone,
 * and every other entry stays with its VM; nothing is rebuilt.
 */
static void
test_entries_alone (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (GPtrArray) members = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GHashTable) entries = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *kept = NULL;
  g_autofree char *bad_pid = NULL;
  g_autofree char *bad_vm = NULL;
  const char      *host = g_get_host_name ();
  int              status;

  g_ptr_array_add (members, member_text ("far-0", "4000000", "far-host.example", "vm-far", NULL));
  g_ptr_array_add (members, member_text ("container-0", "1", host, "vm-container", NULL));
  for (guint i = 0; i < 8; i++)
    {
      g_autofree char *id = g_strdup_printf ("other-%u", i);
      g_autofree char *vm = g_strdup_printf ("vm-other-%u", i);

      g_ptr_array_add (members, member_text (id, "4194304", "far-host.example", vm, NULL));
    }
  bad_pid = member_text ("bad-pid", "\"12\"", host, "vm-bad-pid", NULL);
  bad_vm = g_strdup ("\"bad-vm\": {\"session_id\": \"bad-vm\", \"pid\": 12, \"hostname\": \"h\", "
                     "\"vm_id\": 42}");
  g_ptr_array_insert (members, 3, g_strdup (bad_pid));
  g_ptr_array_add (members, g_strdup (bad_vm));
  write_registry (f, members);

  /* gsmctl list only reads: it shows the readable entries and leaves the
   * file as it is. */
  status = run_gsmctl (f, "list", &out, &err);
  g_test_message ("gsmctl list: %s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (out, "bad-pid"));
  g_assert_nonnull (strstr (out, "vm-far"));
  g_assert_cmpuint (hardening_count_files (f->dir, ".quarantine-"), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* Another process enters the registry. */
  status = run_session (f, &err);
  g_test_message ("session: %s", err);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpint (run_gsmctl (f, "list", &out, NULL), ==, 0);

  /* Only those two are out, each named in a warning with the file. */
  /* (The worker keeps the C locale: its quotes are printed as “?”.) */
  g_assert_nonnull (strstr (err, "bad-pid? cannot be read (member ?pid? is not an integer)"));
  g_assert_nonnull (strstr (err, "bad-vm? cannot be read (member ?vm_id? is not a string)"));
  g_assert_nonnull (strstr (err, "vm_registry.json.quarantine-"));
  g_assert_null (strstr (err, "corrupt"));
  g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, 0);
  g_assert_null (strstr (out, "bad-pid"));

  /* Kept verbatim. */
  kept = read_quarantine (f);
  g_assert_nonnull (strstr (kept, bad_pid));
  g_assert_nonnull (strstr (kept, bad_vm));
  g_assert_true (_gsm_json_scan_object (kept, strlen (kept), GSM_JSON_MAX_DEPTH, NULL, NULL, NULL));

  /* Every other entry stays, with its VM, in the file and the listing. */
  entries = hardening_read_registry (f->dir);
  g_assert_null (g_hash_table_lookup (entries, "bad-pid"));
  g_assert_null (g_hash_table_lookup (entries, "bad-vm"));
  g_assert_cmpint (gsm_session_get_pid (g_hash_table_lookup (entries, "far-0")), ==, 4000000);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (entries, "far-0")), ==, "vm-far");
  g_assert_cmpint (gsm_session_get_pid (g_hash_table_lookup (entries, "container-0")), ==, 1);
  g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (entries, "container-0")), ==,
                   "vm-container");
  for (guint i = 0; i < 8; i++)
    {
      g_autofree char *id = g_strdup_printf ("other-%u", i);
      g_autofree char *vm = g_strdup_printf ("vm-other-%u", i);

      g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (entries, id)), ==, vm);
      g_assert_nonnull (strstr (out, vm));
    }
  g_assert_nonnull (strstr (out, "vm-far"));
  g_assert_nonnull (strstr (out, "vm-container"));

  /* Read again by another process: nothing more to keep aside. */
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (run_gsmctl (f, "list", &out, &err), ==, 0);
  g_assert_null (strstr (err, "cannot be read"));
  g_assert_cmpuint (hardening_count_files (f->dir, ".quarantine-"), ==, 1);
}

static void
die_with_parent (gpointer user_data)
{
  /* A test that fails leaves no worker behind. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* gsm-test-worker register VM_ID in the runtime directory: returns it
 * with the first line it printed (READY ID PID, or ERROR …). */
static GSubprocess *
spawn_register (Fixture    *f,
                const char *vm_id,
                char      **line)
{
  g_autoptr (GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_autoptr (GError) error = NULL;
  GSubprocess *proc;

  g_subprocess_launcher_setenv (launcher, "GSM_RUNTIME_DIR", f->dir, TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"), "register",
                                      vm_id, NULL);
  g_assert_no_error (error);
  *line = hardening_read_line (proc);
  g_assert_nonnull (*line);
  return proc;
}

static char *
registered_id (const char *line)
{
  g_auto (GStrv) parts = g_strsplit (line, " ", 3);

  g_assert_cmpstr (parts[0], ==, "READY");
  return g_strdup (parts[1]);
}

/* What a reaper and other hosts leave in the registry, under its lock:
 * the dead session @user_data marked stale, claimed by a reaper in the
 * middle of deleting its VM, after a failed attempt; and an entry of
 * another host, which has no session file here. */
static gboolean
add_records (GsmRegistryTxn *txn,
             gpointer        user_data,
             GError        **error)
{
  double           now = g_get_real_time () / 1e6;
  GsmSession      *dead = _gsm_registry_txn_lookup (txn, user_data);
  g_autofree char *claim_text =
      g_strdup_printf ("{\"token\": \"t-1\", \"pid\": %d, \"host\": \"%s\", \"at\": %.1f, "
                       "\"expires_at\": %.1f}",
                       getpid (), g_get_host_name (), now, now + 3600);
  g_autoptr (JsonNode) claim = json_from_string (claim_text, NULL);
  g_autoptr (JsonNode) attempts =
      json_from_string ("{\"count\": 1, \"last_outcome\": \"failed\", \"last_error\": \"quota\", "
                        "\"next_retry_at\": 1700000000.5}",
                        NULL);
  g_autoptr (GsmSession) stale = NULL;
  g_autoptr (GsmSession) claimed = NULL;
  g_autoptr (GsmSession) tried = NULL;
  g_autoptr (GsmSession) far = NULL;
  g_autoptr (GsmSession) far_vm = NULL;

  g_assert_nonnull (dead);
  stale = _gsm_session_with_stale (dead, now - 30);
  claimed = _gsm_session_with_member (stale, "reap_claim", claim);
  tried = _gsm_session_with_member (claimed, "reap_attempts", attempts);
  _gsm_registry_txn_put (txn, tried);

  far = _gsm_session_new ("far-0", 4000000, "far-host.example", now - 60, 0, NULL);
  far_vm = _gsm_session_with_vm (far, "vm-far", "zone-b", NULL, NULL, now - 50);
  _gsm_registry_txn_put (txn, far_vm);
  return TRUE;
}

typedef enum
{
  DAMAGE_LINE, /* @victim's line becomes garbage */
  DAMAGE_CUT,  /* @victim's line is moved last, and cut in its middle */
  DAMAGE_ALL,  /* the whole file is garbage (zeros, as after a crash) */
} Damage;

/* Makes the registry unparsable. */
static void
damage_registry (Fixture    *f,
                 const char *victim,
                 Damage      damage)
{
  g_autofree char *text = read_file (f, "vm_registry.json");
  g_autofree char *needle = g_strdup_printf ("\"%s\":", victim);
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_auto (GStrv) lines = NULL;
  g_autoptr (GPtrArray) members = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) out = g_string_new ("{\n");
  char *victim_line = NULL;

  g_assert_nonnull (text);
  if (damage == DAMAGE_ALL)
    {
      g_autofree char *zeros = g_malloc0 (strlen (text));

      g_assert_true (g_file_set_contents (path, zeros, (gssize) strlen (text), NULL));
      return;
    }
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = lines[i];
      gsize len = strlen (line);

      if (!g_str_has_prefix (line, "  \""))
        continue;
      if (len > 0 && line[len - 1] == ',')
        line[len - 1] = '\0';
      if (strstr (line, needle) != NULL)
        victim_line = line;
      else
        g_ptr_array_add (members, g_strdup (line));
    }
  g_assert_nonnull (victim_line);
  g_assert_cmpuint (members->len, >=, 2);

  for (guint i = 0; i < members->len; i++)
    g_string_append_printf (out, "%s,\n", (char *) members->pdata[i]);
  if (damage == DAMAGE_CUT)
    g_string_append_len (out, victim_line, (gssize) strlen (victim_line) / 2);
  else
    g_string_append_printf (out, "  \"%s\": {\"session_id\": \"%s\", \"pid\": oops}\n}\n",
                            victim, victim);
  g_assert_false (_gsm_json_scan_object (out->str, out->len, GSM_JSON_MAX_DEPTH, NULL, NULL, NULL));
  g_assert_true (g_file_set_contents (path, out->str, (gssize) out->len, NULL));
}

/*
 * A rebuild keeps what only the registry knew. A dead session's VM is
 * being deleted by a reaper (stale mark, claim, an earlier attempt), and
 * another host's entry has no session file here; the registry file is
 * then damaged around a live session's entry, or cut short in it. After
 * the rebuild (by another process) every record is there, the live
 * session is back from its session file, and a new process that tries to
 * register the claimed VM is refused. Even from a file with nothing whole
 * left, the dead session comes back with its mark and claim, which its
 * session file received with them.
 */
static void
test_rebuild_keeps_records (Fixture      *f,
                            gconstpointer data)
{
  g_autoptr (GSubprocess) dead = NULL;
  g_autoptr (GSubprocess) live = NULL;
  g_autoptr (GsmFileRegistry) registry = NULL;
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *dead_id = NULL;
  g_autofree char *live_id = NULL;

  dead = spawn_register (f, "vm-orphan", &line);
  dead_id = registered_id (line);
  g_clear_pointer (&line, g_free);
  g_subprocess_send_signal (dead, SIGKILL);
  g_subprocess_wait (dead, NULL, NULL);
  live = spawn_register (f, "vm-live", &line);
  live_id = registered_id (line);
  g_clear_pointer (&line, g_free);

  registry = _gsm_file_registry_new (f->dir, FALSE, "", NULL, getpid (), FALSE, &error);
  g_assert_no_error (error);
  snapshot = _gsm_registry_update (GSM_REGISTRY (registry), add_records, dead_id, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&snapshot, _gsm_registry_snapshot_unref);
  g_clear_object (&registry);

  for (Damage damage = DAMAGE_LINE; damage <= DAMAGE_ALL; damage++)
    {
      g_autoptr (GHashTable) entries = NULL;
      g_autoptr (GSubprocess) taker = NULL;
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;
      GsmSession      *s;

      g_test_message ("damage %d", damage);
      damage_registry (f, live_id, damage);
      g_assert_cmpint (run_session (f, &err), ==, 0);
      g_test_message ("session: %s", err);
      g_assert_cmpint (run_gsmctl (f, "list", &out, NULL), ==, 0);
      g_assert_nonnull (strstr (err, "Moved it to"));
      g_assert_nonnull (strstr (err, "rebuilt it from"));
      g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, (guint) damage + 1);

      entries = hardening_read_registry (f->dir);
      s = g_hash_table_lookup (entries, dead_id);
      g_assert_nonnull (s);
      g_assert_cmpstr (gsm_session_get_vm_id (s), ==, "vm-orphan");
      g_assert_cmpstr (gsm_session_get_status (s), ==, "stale");
      g_assert_cmpfloat (gsm_session_get_stale_since (s), >, 0);
      g_assert_nonnull (_gsm_session_get_member (s, "reap_claim"));
      g_assert_nonnull (_gsm_session_get_member (s, "reap_attempts"));
      s = g_hash_table_lookup (entries, live_id);
      g_assert_nonnull (s);
      g_assert_cmpstr (gsm_session_get_vm_id (s), ==, "vm-live");
      g_assert_nonnull (strstr (out, "vm-orphan"));
      /* Only the registry held it: it is kept while some of the file is
       * whole (a file of zeros holds none of it). */
      if (damage != DAMAGE_ALL)
        {
          s = g_hash_table_lookup (entries, "far-0");
          g_assert_nonnull (s);
          g_assert_cmpstr (gsm_session_get_vm_id (s), ==, "vm-far");
          g_assert_nonnull (strstr (out, "vm-far"));
        }

      /* The VM a reaper is deleting cannot be taken over. */
      taker = spawn_register (f, "vm-orphan", &line);
      g_assert_true (g_str_has_prefix (line, "ERROR"));
      g_assert_nonnull (strstr (line, "being deleted by a reaper"));
      g_clear_pointer (&line, g_free);
      g_subprocess_wait (taker, NULL, NULL);
    }

  g_subprocess_send_signal (live, SIGKILL);
  g_subprocess_wait (live, NULL, NULL);
}

/* The same with a directory other users can write, until its owner fixes
 * its mode (and without a lock, so that it also runs under valgrind,
 * which does not emulate blocking OFD locks). */
static void
test_startup_insecure_directory (Fixture      *f,
                                 gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GHashTable) entries = NULL;
      g_autoptr (GsmSession) vm = NULL;
      GsmSessionManager *manager;

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      g_assert_cmpint (chmod (f->dir, 0777), ==, 0);

      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*cannot be used now*other users*");
      manager = gsm_session_manager_get_default ();
      g_test_assert_expected_messages ();

      for (guint i = 0; i < 2; i++)
        {
          g_assert_null (gsm_session_manager_get_my_vm_sync (manager, NULL, &error));
          g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY);
          g_clear_error (&error);
        }
      g_assert_cmpuint (hardening_count_files (f->dir, ""), ==, 0);

      g_assert_cmpint (chmod (f->dir, 0700), ==, 0);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-fixed", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);
      vm = gsm_session_manager_get_my_vm_sync (manager, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (gsm_session_get_vm_id (vm), ==, "vm-fixed");
      entries = hardening_read_registry (f->dir);
      g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (entries,
                                                                   gsm_session_manager_get_session_id (manager))),
                       ==, "vm-fixed");

      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* The same with a full file system: a tmpfs of 256 KiB in a mount
 * namespace of the test's own (root only), filled before the process
 * starts and emptied after its first call. */
static void
test_startup_no_space (Fixture      *f,
                       gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GHashTable) entries = NULL;
      g_autofree char   *filler = g_build_filename (f->dir, "filler", NULL);
      g_autofree char   *block = g_malloc0 (4096);
      GsmSessionManager *manager;
      int                fd;

      if (unshare (CLONE_NEWNS) != 0 ||
          mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
          mount ("tmpfs", f->dir, "tmpfs", 0, "size=256k,mode=0700") != 0)
        {
          g_test_skip ("a private tmpfs needs root (CAP_SYS_ADMIN)");
          return;
        }

      fd = open (filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      g_assert_cmpint (fd, >=, 0);
      while (write (fd, block, 4096) == 4096)
        ;
      g_assert_cmpint (errno, ==, ENOSPC);
      close (fd);

      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      g_test_expect_message ("Gsm", G_LOG_LEVEL_WARNING, "*cannot be used now*No space left*");
      manager = gsm_session_manager_get_default ();
      g_test_assert_expected_messages ();
      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-space", "z", NULL, NULL,
                                                            NULL, &error));
      g_assert_nonnull (error);
      g_assert_nonnull (strstr (error->message, "No space left"));
      g_clear_error (&error);

      /* Space again. */
      g_assert_cmpint (unlink (filler), ==, 0);
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-space", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);
      entries = hardening_read_registry (f->dir);
      g_assert_cmpstr (gsm_session_get_vm_id (g_hash_table_lookup (entries,
                                                                   gsm_session_manager_get_session_id (manager))),
                       ==, "vm-space");
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/*
 * Many entries each within the bounds can still add up to a registry
 * larger than readers accept (64 MiB), which every reader would then
 * rebuild from the session files alone, forgetting other hosts' VMs. A
 * registration that would make it so is refused, and the registry stays
 * as it was.
 */
static void
write_big_registry (Fixture *f,
                    gsize    target)
{
  g_autofree char *path = g_build_filename (f->dir, "vm_registry.json", NULL);
  g_autofree char *blob = g_strnfill (60000, 'm');
  g_autoptr (GString) text = g_string_sized_new (target + 70000);

  g_string_append_c (text, '{');
  for (guint i = 0; text->len < target; i++)
    {
      /* The last blob is cut to end near the target. */
      gsize room = target - text->len;
      int   blob_len = room > 60500 ? 60000 : (int) MAX (room, 500) - 400;

      g_string_append_printf (text, "%s\n  \"far-%u\": {\"session_id\": \"far-%u\", \"pid\": %u, "
                                    "\"hostname\": \"far-host.example\", \"created_at\": 1700000000, "
                                    "\"vm_id\": \"vm-far-%u\", \"zone\": \"z\", "
                                    "\"metadata\": {\"blob\": \"%.*s\"}}",
                              i > 0 ? "," : "", i, i, 1000 + i, i, blob_len, blob);
    }
  g_string_append (text, "\n}\n");
  g_assert_cmpuint (text->len, >, target - 1000);
  g_assert_cmpuint (text->len, <, target + 1000);
  g_assert_true (g_file_set_contents (path, text->str, (gssize) text->len, NULL));
}

/*
 * Many entries each within the bounds can still add up to a registry
 * larger than readers accept (64 MiB), which every reader would then
 * rebuild from the session files alone, forgetting other hosts' VMs. A
 * registration that would make it so is refused, and the registry stays
 * as it was.
 */
static void
test_registry_size_cap (Fixture      *f,
                        gconstpointer data)
{
  const gsize cap = 64 * 1024 * 1024;

  if (g_test_subprocess ())
    {
      g_autoptr (GError) error = NULL;
      g_autofree char   *path = g_build_filename (f->dir, "vm_registry.json", NULL);
      GsmSessionManager *manager;
      struct stat        before, after;

      /* Room for the process's own entry, not for its metadata. */
      write_big_registry (f, cap - 20000);
      g_setenv ("GSM_RUNTIME_DIR", f->dir, TRUE);
      manager = gsm_session_manager_get_default ();
      g_assert_cmpint (stat (path, &before), ==, 0);
      g_assert_cmpint (before.st_size, <=, cap);
      g_assert_cmpint (before.st_size, >, cap - 20000);

      g_assert_false (gsm_session_manager_register_vm_sync (manager, "vm-too-much", "z", NULL,
                                                            metadata_of_size (60000), NULL, &error));
      g_assert_error (error, GSM_ERROR, GSM_ERROR_FAILED);
      g_assert_nonnull (strstr (error->message, "more than the limit of 67108864"));
      g_clear_error (&error);
      g_assert_cmpint (stat (path, &after), ==, 0);
      g_assert_cmpint (after.st_ino, ==, before.st_ino);
      g_assert_cmpint (after.st_size, ==, before.st_size);

      /* What fits is still written. */
      g_assert_true (gsm_session_manager_register_vm_sync (manager, "vm-small", "z", NULL, NULL,
                                                           NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (hardening_count_files (f->dir, ".corrupt-"), ==, 0);
      g_assert_true (gsm_session_manager_unregister_vm_sync (manager, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (gsm_session_manager_close_sync (manager, NULL, &error));
      g_assert_no_error (error);
      return;
    }

  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, func) \
  g_test_add ("/hardening/records/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("bounds", test_bounds);
  ADD ("registry-size-cap", test_registry_size_cap);
  ADD ("startup-lock-timeout", test_startup_lock_timeout);
  ADD ("startup-insecure-directory", test_startup_insecure_directory);
  ADD ("startup-no-space", test_startup_no_space);
  ADD ("entries-alone", test_entries_alone);
  ADD ("rebuild-keeps-records", test_rebuild_keeps_records);
#undef ADD
  return g_test_run ();
}
