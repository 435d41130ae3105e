/* test-reaper.c: orphan reaping with real processes and a fake cloud
 *
 * Each safeguard of GsmReaper has a test here that fails without it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <sys/stat.h>

#include <gsm.h>
#include <json-glib/json-glib.h>

#include "gsm-reaper-private.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"
#include "reaper-test-util.h"

static void
reaper_tear_down (Fixture      *f,
                  gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  fixture_tear_down (f, data);
}

static GsmReaper *
new_reaper (void)
{
  return gsm_reaper_new (gsm_session_manager_get_default (), NULL);
}

/* The registry entry of @session_id, or NULL. */
static GsmSession *
lookup (const char *session_id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) table =
      _gsm_session_manager_list_sessions_sync (gsm_session_manager_get_default (), NULL, &error);
  GsmSession *s;

  g_assert_no_error (error);
  s = g_hash_table_lookup (table, session_id);
  return s ? g_object_ref (s) : NULL;
}

static guint
count_vm_owners (const char *vm_id)
{
  g_autoptr (GHashTable) table =
      _gsm_session_manager_list_sessions_sync (gsm_session_manager_get_default (), NULL, NULL);
  GHashTableIter iter;
  gpointer       value;
  guint          n = 0;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (g_strcmp0 (gsm_session_get_vm_id (value), vm_id) == 0)
      n++;
  return n;
}

/* Records the dead sessions as stale, as any process may: @expected of
 * them are. */
static void
cleanup_stale (int expected)
{
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (gsm_session_manager_cleanup_stale_sessions_sync (gsm_session_manager_get_default (),
                                                                    NULL, &error),
                   ==, expected);
}

static char **
history (GsmReaper *reaper)
{
  g_autoptr (GError) error = NULL;
  char **records = gsm_reaper_read_history_sync (reaper, NULL, &error);

  g_assert_no_error (error);
  return records;
}

static JsonObject *
parse_record (JsonParser *parser,
              const char *line)
{
  g_assert_true (json_parser_load_from_data (parser, line, -1, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

typedef struct
{
  GPtrArray *reaped; /* vm ids */
  GPtrArray *failed;
  GPtrArray *skipped;
} Seen;

static void
on_reaped (GsmReaper *r, GsmSession *vm, GsmProviderResult *result, Seen *seen)
{
  g_assert_true (gsm_provider_result_get_succeeded (result));
  g_ptr_array_add (seen->reaped, g_strdup (gsm_session_get_vm_id (vm)));
}

static void
on_failed (GsmReaper *r, GsmSession *vm, GError *error, Seen *seen)
{
  g_assert_nonnull (error);
  g_ptr_array_add (seen->failed, g_strdup (gsm_session_get_vm_id (vm)));
}

static void
on_skipped (GsmReaper *r, GsmSession *vm, const char *reason, Seen *seen)
{
  g_test_message ("skipped %s: %s", gsm_session_get_vm_id (vm), reason);
  g_ptr_array_add (seen->skipped, g_strdup (gsm_session_get_vm_id (vm)));
}

static void
seen_init (Seen      *seen,
           GsmReaper *reaper)
{
  seen->reaped = g_ptr_array_new_with_free_func (g_free);
  seen->failed = g_ptr_array_new_with_free_func (g_free);
  seen->skipped = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (reaper, "vm-reaped", G_CALLBACK (on_reaped), seen);
  g_signal_connect (reaper, "reap-failed", G_CALLBACK (on_failed), seen);
  g_signal_connect (reaper, "reap-skipped", G_CALLBACK (on_skipped), seen);
}

static void
seen_clear (Seen *seen)
{
  g_ptr_array_unref (seen->reaped);
  g_ptr_array_unref (seen->failed);
  g_ptr_array_unref (seen->skipped);
}

/* kill -9 one of three workers: its VM, and only its VM, is deleted. */
static void
test_killed_worker (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL, w2 = NULL, w3 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;
  JsonObject *record, *owner;
  Seen        seen;

  cloud_add_vm (f, "vm-1");
  cloud_add_vm (f, "vm-2");
  cloud_add_vm (f, "vm-3");
  w1 = worker_start ("vm-1");
  w2 = worker_start ("vm-2");
  w3 = worker_start ("vm-3");
  worker_kill (w2);

  reaper = new_reaper ();
  seen_init (&seen, reaper);
  reap_pass (reaper, NULL, 1, 0);

  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_false (cloud_has_vm (f, "vm-2"));
  g_assert_true (cloud_has_vm (f, "vm-3"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-2"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-3"), ==, 0);
  g_assert_cmpuint (seen.reaped->len, ==, 1);
  g_assert_cmpstr (seen.reaped->pdata[0], ==, "vm-2");

  /* The dead session's entry is gone; the live ones keep their VMs. */
  g_assert_null (lookup (w2->session_id));
  entry = lookup (w1->session_id);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-1");
  g_clear_object (&entry);
  entry = lookup (w3->session_id);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-3");

  /* The audit log tells who owned it and what ran: before it ran, and
   * once it ended, under the same token. */
  records = history (reaper);
  g_assert_cmpuint (g_strv_length (records), ==, 2);
  record = parse_record (parser, records[0]);
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "started");
  g_assert_cmpstr (json_object_get_string_member (record, "vm"), ==, "vm-2");
  g_assert_true (json_object_get_null_member (record, "exit_status"));
  g_assert_cmpstr (json_node_get_string (json_array_get_element (
                       json_object_get_array_member (record, "command"), 3)),
                   ==, "vm-2");
  {
    g_autofree char *token = g_strdup (json_object_get_string_member (record, "token"));

    record = parse_record (parser, records[1]);
    g_assert_cmpstr (json_object_get_string_member (record, "token"), ==, token);
  }
  g_assert_cmpstr (json_object_get_string_member (record, "action"), ==, "reap");
  g_assert_cmpstr (json_object_get_string_member (record, "vm"), ==, "vm-2");
  g_assert_cmpstr (json_object_get_string_member (record, "zone"), ==, "zone-a");
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "deleted");
  g_assert_cmpint (json_object_get_int_member (record, "exit_status"), ==, 0);
  owner = json_object_get_object_member (record, "owner");
  g_assert_cmpstr (json_object_get_string_member (owner, "session"), ==, w2->session_id);
  g_assert_cmpint (json_object_get_int_member (owner, "pid"), ==, w2->pid);
  g_assert_cmpstr (json_node_get_string (json_array_get_element (
                       json_object_get_array_member (record, "command"), 3)),
                   ==, "vm-2");
  {
    g_autofree char *path = g_file_get_path (gsm_reaper_get_audit_log (reaper));
    struct stat      st;

    g_assert_cmpint (lstat (path, &st), ==, 0);
    g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  }

  seen_clear (&seen);
}

/* A live worker's VM survives every kind of pass, including a list that
 * names it: the owner is checked again right before each deletion. */
static void
test_live_vm_survives (Fixture      *f,
                       gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL, w2 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) forged = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *out = NULL;
  Seen             seen;

  cloud_add_vm (f, "vm-1");
  cloud_add_vm (f, "vm-2");
  w1 = worker_start ("vm-1");
  w2 = worker_start ("vm-2");

  reaper = new_reaper ();
  seen_init (&seen, reaper);
  reap_pass (reaper, NULL, 0, 0);
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--yes", NULL), ==, 0);
  g_clear_pointer (&out, g_free);

  /* Hand the reaper the live entries themselves. */
  g_ptr_array_add (forged, lookup (w1->session_id));
  g_ptr_array_add (forged, lookup (w2->session_id));
  reap_pass (reaper, forged, 0, 0);
  g_assert_cmpuint (seen.skipped->len, ==, 2);

  /* Even entries marked stale (as by a process with a broken probe). */
  g_ptr_array_set_size (forged, 0);
  {
    g_autoptr (GsmSession) entry = lookup (w1->session_id);

    g_ptr_array_add (forged, _gsm_session_with_stale (entry, 1));
  }
  reap_pass (reaper, forged, 0, 0);

  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_true (cloud_has_vm (f, "vm-2"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-2"), ==, 0);
  seen_clear (&seen);
}

/* The list was made while the owner was dead; before the pass reaches it,
 * a new live session takes the VM over. The re-check spares it. */
static void
test_recheck_before_delete (Fixture      *f,
                            gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL, w2 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmSession) entry = NULL;

  w1 = worker_start_orphan (f, "vm-1");

  reaper = new_reaper ();
  cleanup_stale (1);
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (orphans->len, ==, 1);

  /* A restarted process registers the same VM (taking it over). */
  w2 = worker_start ("vm-1");
  reap_pass (reaper, orphans, 0, 0);

  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);
  entry = lookup (w2->session_id);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-1");
}

/* Default grace period: a session just found dead is not reaped. */
static void
test_grace_period (Fixture      *f,
                   gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GPtrArray) forged = g_ptr_array_new_with_free_func (g_object_unref);

  g_unsetenv ("GSM_REAP_GRACE");
  w1 = worker_start_orphan (f, "vm-1");

  reaper = new_reaper ();
  g_assert_cmpfloat (gsm_reaper_get_grace_period (reaper), ==, 10);
  reap_pass (reaper, NULL, 0, 0);
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);
  g_assert_cmpuint (orphans->len, ==, 0);
  /* Recorded as stale now, and the grace period runs from then. */
  entry = lookup (w1->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "stale");
  g_assert_cmpfloat (gsm_session_get_stale_since (entry), >, 0);
  /* Even when handed to the reaper explicitly. */
  g_ptr_array_add (forged, g_object_ref (entry));
  reap_pass (reaper, forged, 0, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);

  /* Once the grace period is over, it goes. */
  gsm_reaper_set_grace_period (reaper, 0);
  reap_pass (reaper, NULL, 1, 0);
  g_assert_false (cloud_has_vm (f, "vm-1"));
}

typedef struct
{
  const char *session_id;
  double      created_at;      /* > 0: the new created_at */
  gboolean    drop_start_time; /* the seed's own layout */
  double      stale_since;     /* > 0: recorded stale since then */
  const char *attempts;        /* non-NULL: "reap_attempts", as JSON */
  gboolean    foreign;         /* as written by another kernel: nothing here can check it */
} Rewrite;

static gboolean
txn_rewrite (GsmRegistryTxn *txn,
             gpointer        user_data,
             GError        **error)
{
  Rewrite    *rw = user_data;
  GsmSession *entry = _gsm_registry_txn_lookup (txn, rw->session_id);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GsmSession) rewritten = NULL;
  JsonObject *object;

  g_assert_nonnull (entry);
  text = gsm_session_to_json (entry);
  root = json_from_string (text, NULL);
  object = json_node_get_object (root);
  if (rw->created_at > 0)
    json_object_set_double_member (object, "created_at", rw->created_at);
  if (rw->drop_start_time)
    {
      /* The seed's files have neither. */
      json_object_remove_member (object, "start_time");
      json_object_remove_member (object, "lock_file");
    }
  if (rw->foreign)
    {
      json_object_set_string_member (object, "boot_id", "0ther000-0000-4000-8000-000000000000");
      json_object_set_int_member (object, "pid", 4000000);
      json_object_remove_member (object, "lock_file");
      json_object_remove_member (object, "pid_ns");
    }
  if (rw->stale_since > 0)
    {
      json_object_set_string_member (object, "status", "stale");
      json_object_set_double_member (object, "stale_since", rw->stale_since);
    }
  if (rw->attempts != NULL)
    json_object_set_member (object, "reap_attempts", json_from_string (rw->attempts, NULL));
  g_free (text);
  text = json_to_string (root, FALSE);
  rewritten = _gsm_session_new_from_json (rw->session_id, text, strlen (text), parser, error);
  g_assert_nonnull (rewritten);
  _gsm_registry_txn_put (txn, rewritten);
  return TRUE;
}

static void
rewrite_entry (const Rewrite *rw)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;

  snapshot = _gsm_registry_update (_gsm_session_manager_get_registry (gsm_session_manager_get_default ()),
                                   txn_rewrite, (gpointer) rw, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
calls_log_exists (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/*
 * A session whose liveness cannot be verified here (another host; this
 * host without a start time, the seed's own layout) is never reaped by a
 * plain pass, whatever its age and even when recorded as stale (as a
 * process with a 12 h expiry did): its process may be alive. Asked with
 * --unverifiable --older-than, those older than that go, and only those.
 */
static void
test_undecidable_liveness (Fixture      *f,
                           gconstpointer data)
{
  const char *elsewhere[] = { "GSM_HOSTNAME", "build-host-2", NULL };
  const char *short_expiry[] = { "GSM_SESSION_EXPIRY", "0", NULL };
  double      now = g_get_real_time () / (double) G_USEC_PER_SEC;
  double      old = now - 13 * 3600;
  g_autoptr (Worker) live = NULL, dead = NULL, young = NULL, seed = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autofree char *out = NULL;

  cloud_add_vm (f, "vm-live");
  cloud_add_vm (f, "vm-dead");
  cloud_add_vm (f, "vm-young");
  cloud_add_vm (f, "vm-seed");
  live = worker_start_env ("vm-live", elsewhere);
  dead = worker_start_env ("vm-dead", elsewhere);
  young = worker_start_env ("vm-young", elsewhere);
  seed = worker_start ("vm-seed");
  worker_kill (dead);

  /* As written on another kernel (another host, or a sandbox), 13 h old,
   * and recorded stale as the 12 h expiry did; the local one without a
   * start time or a lock, as the seed's own files are. */
  rewrite_entry (&(Rewrite){ live->session_id, old, FALSE, old + 12 * 3600, NULL, TRUE });
  rewrite_entry (&(Rewrite){ dead->session_id, old, FALSE, old + 12 * 3600, NULL, TRUE });
  rewrite_entry (&(Rewrite){ young->session_id, 0, FALSE, now, NULL, TRUE });
  rewrite_entry (&(Rewrite){ seed->session_id, 0, TRUE, now, NULL });

  /* Plain passes, in this process and by gsmctl (even one whose expiry
   * is 0): the provider is never called. */
  reaper = new_reaper ();
  g_assert_cmpfloat (gsm_reaper_get_unverifiable_older_than (reaper), ==, 0);
  reap_pass (reaper, NULL, 0, 0);
  {
    g_autoptr (GPtrArray) forged = g_ptr_array_new_with_free_func (g_object_unref);

    g_ptr_array_add (forged, lookup (live->session_id));
    g_ptr_array_add (forged, lookup (dead->session_id));
    g_ptr_array_add (forged, lookup (seed->session_id));
    reap_pass (reaper, forged, 0, 0);
  }
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--yes", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, short_expiry, "reap", "--yes", NULL), ==, 0);
  g_clear_pointer (&out, g_free);
  g_assert_false (calls_log_exists (f));

  /* Half-asked is a usage error. */
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--unverifiable", "--yes", NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--older-than", "43200", "--yes", NULL), ==, 2);
  g_clear_pointer (&out, g_free);
  g_assert_false (calls_log_exists (f));

  /* The dry run lists the two older than 12 h, and deletes nothing. */
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--unverifiable", "--older-than", "43200", NULL), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "vm-live"));
  g_assert_nonnull (strstr (out, "vm-dead"));
  {
    /* The others are shown as left for now, with why, never as planned. */
    g_auto (GStrv) lines = g_strsplit (out, "\n", -1);

    for (guint i = 0; lines[i] != NULL; i++)
      if (strstr (lines[i], "vm-young") != NULL || strstr (lines[i], "vm-seed") != NULL)
        g_assert_nonnull (strstr (lines[i], " pending "));
      else if (g_str_has_prefix (lines[i], "vm-"))
        g_assert_nonnull (strstr (lines[i], " planned "));
  }
  g_clear_pointer (&out, g_free);
  g_assert_false (calls_log_exists (f));

  /* Asked: those two, and only those, are deleted. */
  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--unverifiable", "--older-than", "43200",
                               "--yes", NULL),
                   ==, 0);
  g_test_message ("%s", out);
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-dead"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-young"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-seed"), ==, 0);
  g_assert_false (cloud_has_vm (f, "vm-live"));
  g_assert_false (cloud_has_vm (f, "vm-dead"));
  g_assert_true (cloud_has_vm (f, "vm-young"));
  g_assert_true (cloud_has_vm (f, "vm-seed"));
  g_assert_null (lookup (live->session_id));
  g_assert_null (lookup (dead->session_id));
}

static JsonObject *
attempts_of (GsmSession *entry)
{
  JsonNode *node = _gsm_session_get_member (entry, "reap_attempts");

  g_assert_nonnull (node);
  return json_node_get_object (node);
}

/* A failed deletion keeps the entry and records the attempt; a later pass
 * succeeds. */
static void
test_failure_then_retry (Fixture      *f,
                         gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;
  JsonObject *attempts;
  Seen        seen;

  w1 = worker_start_orphan (f, "vm-1");

  reaper = new_reaper ();
  seen_init (&seen, reaper);
  cloud_set_mode (f, "fail");
  reap_pass (reaper, NULL, 0, 1);
  reap_pass (reaper, NULL, 0, 1);
  g_assert_cmpuint (seen.failed->len, ==, 2);
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 2);

  entry = lookup (w1->session_id);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-1");
  g_assert_null (_gsm_session_get_member (entry, "reap_claim"));
  attempts = attempts_of (entry);
  g_assert_cmpint (json_object_get_int_member (attempts, "count"), ==, 2);
  g_assert_nonnull (strstr (json_object_get_string_member (attempts, "last_error"), "quota exceeded"));
  g_assert_cmpstr (json_object_get_string_member (attempts, "last_outcome"), ==, "failed");
  g_assert_true (json_object_has_member (attempts, "next_retry_at"));

  cloud_set_mode (f, "ok");
  reap_pass (reaper, NULL, 1, 0);
  g_assert_false (cloud_has_vm (f, "vm-1"));
  g_assert_null (lookup (w1->session_id));

  /* Each attempt: "started", then its outcome. */
  records = history (reaper);
  g_assert_cmpuint (g_strv_length (records), ==, 6);
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[0]), "outcome"), ==, "started");
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[1]), "outcome"), ==, "failed");
  g_assert_cmpint (json_object_get_int_member (parse_record (parser, records[1]), "exit_status"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (parse_record (parser, records[4]), "attempt"), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[4]), "outcome"), ==, "started");
  g_assert_cmpint (json_object_get_int_member (parse_record (parser, records[5]), "attempt"), ==, 3);
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[5]), "outcome"), ==, "deleted");
  seen_clear (&seen);
}

/* After a failure, the next attempt waits for the backoff. */
static void
test_backoff (Fixture      *f,
              gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  JsonObject *attempts;

  w1 = worker_start_orphan (f, "vm-1");

  reaper = new_reaper ();
  gsm_reaper_set_backoff (reaper, 60);
  cloud_set_mode (f, "fail");
  reap_pass (reaper, NULL, 0, 1);
  cloud_set_mode (f, "ok");
  reap_pass (reaper, NULL, 0, 0);
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);
  g_assert_cmpuint (orphans->len, ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 1);

  entry = lookup (w1->session_id);
  attempts = attempts_of (entry);
  g_assert_cmpfloat_with_epsilon (json_object_get_double_member (attempts, "next_retry_at") -
                                      json_object_get_double_member (attempts, "last_attempt_at"),
                                  60, 0.01);
}

/* A hanging provider is killed at its timeout; the entry stays. */
static void
test_hanging_provider (Fixture      *f,
                       gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;

  g_setenv ("GSM_PROVIDER_TIMEOUT", "0.5", TRUE);
  w1 = worker_start_orphan (f, "vm-1");
  cloud_set_mode (f, "hang");

  reaper = new_reaper ();
  reap_pass (reaper, NULL, 0, 1);
  entry = lookup (w1->session_id);
  g_assert_nonnull (entry);
  g_assert_null (_gsm_session_get_member (entry, "reap_claim"));
  g_assert_cmpstr (json_object_get_string_member (attempts_of (entry), "last_outcome"), ==, "timed-out");
  records = history (reaper);
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[1]), "outcome"), ==, "timed-out");
  g_assert_true (cloud_has_vm (f, "vm-1"));
}

/* The provider says the VM is already gone: the entry is cleared. */
static void
test_already_gone (Fixture      *f,
                   gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;

  w1 = worker_start ("vm-1"); /* never in the cloud */
  worker_kill (w1);

  reaper = new_reaper ();
  reap_pass (reaper, NULL, 1, 0);
  g_assert_null (lookup (w1->session_id));
  records = history (reaper);
  g_assert_cmpstr (json_object_get_string_member (parse_record (parser, records[1]), "outcome"), ==, "not-found");
}

/* Reserved before the cloud call, never confirmed: a process killed after
 * the cloud made its VM, and one killed before it did. Both are orphans:
 * the first VM is deleted, the second one's "not found" counts as done;
 * a live process's reservation is left alone. */
static void
test_reserved_then_killed (Fixture      *f,
                           gconstpointer data)
{
  const char *reserve_env[] = { "GSM_TEST_WORKER_RESERVE", "1", NULL };
  g_autoptr (Worker) made = NULL;
  g_autoptr (Worker) never = NULL;
  g_autoptr (Worker) live = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;

  cloud_add_vm (f, "vm-made");
  cloud_add_vm (f, "vm-live");
  made = worker_start_env ("vm-made", reserve_env);
  never = worker_start_env ("vm-never", reserve_env);
  live = worker_start_env ("vm-live", reserve_env);
  entry = lookup (made->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "creating");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-made");
  g_clear_object (&entry);
  worker_kill (made);
  worker_kill (never);

  reaper = new_reaper ();
  reap_pass (reaper, NULL, 2, 0);

  /* Exactly what the provider was asked to delete. */
  g_assert_cmpuint (cloud_count (f, "call", "vm-made"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-never"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 0);
  g_assert_false (cloud_has_vm (f, "vm-made"));
  g_assert_true (cloud_has_vm (f, "vm-live"));
  g_assert_null (lookup (made->session_id));
  g_assert_null (lookup (never->session_id));
  entry = lookup (live->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "creating");

  records = history (reaper);
  g_assert_cmpuint (g_strv_length (records), ==, 4);
  for (guint i = 0; records[i] != NULL; i++)
    {
      JsonObject *record = parse_record (parser, records[i]);
      const char *vm = json_object_get_string_member (record, "vm");
      const char *outcome = json_object_get_string_member (record, "outcome");

      if (g_str_equal (outcome, "started"))
        continue;
      g_assert_cmpstr (outcome, ==, g_str_equal (vm, "vm-made") ? "deleted" : "not-found");
    }
}

static GSubprocess *
spawn_gsmctl_reap (void)
{
  g_autoptr (GError) error = NULL;
  GSubprocess *proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error,
                                        g_getenv ("GSMCTL"), "reap", "--yes", NULL);

  g_assert_no_error (error);
  return proc;
}

/* Two reapers (two processes) at once: each VM is deleted exactly once. */
static void
test_two_reapers (Fixture      *f,
                  gconstpointer data)
{
  const char *vms[] = { "vm-1", "vm-2", "vm-3" };
  Worker     *workers[3];
  g_autoptr (GSubprocess) a = NULL, b = NULL;
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < 3; i++)
    workers[i] = worker_start_orphan (f, vms[i]);
  cleanup_stale (3);

  /* A holds vm-1 (the oldest) in its provider while B starts. */
  cloud_set_hold (f, TRUE);
  a = spawn_gsmctl_reap ();
  cloud_wait_for_call (f, "vm-1");
  b = spawn_gsmctl_reap ();
  /* B passes vm-1 by and holds another. */
  for (int i = 0; i < 1000 && cloud_count (f, "call", "vm-2") + cloud_count (f, "call", "vm-3") == 0; i++)
    g_usleep (10000);

  /* Meanwhile, nobody can take a claimed VM over. */
  {
    g_autoptr (GsmSession) entry = lookup (workers[0]->session_id);

    g_assert_nonnull (_gsm_session_get_member (entry, "reap_claim"));
  }

  cloud_set_hold (f, FALSE);
  g_subprocess_wait (a, NULL, &error);
  g_subprocess_wait (b, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (a), ==, 0);
  g_assert_cmpint (g_subprocess_get_exit_status (b), ==, 0);

  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpuint (cloud_count (f, "call", vms[i]), ==, 1);
      g_assert_cmpuint (cloud_count (f, "deleted", vms[i]), ==, 1);
      g_assert_null (lookup (workers[i]->session_id));
      worker_free (workers[i]);
    }
}

/* Waits (at most 10 s) until the claim on @session_id's entry records the
 * provider command that runs; returns its process group. */
static int
claim_wait_for_provider (const char *session_id)
{
  for (int i = 0; i < 1000; i++)
    {
      g_autoptr (GsmSession) entry = lookup (session_id);
      JsonNode *claim = entry ? _gsm_session_get_member (entry, "reap_claim") : NULL;

      if (claim != NULL && json_object_has_member (json_node_get_object (claim), "provider"))
        return (int) json_object_get_int_member (json_object_get_object_member (json_node_get_object (claim),
                                                                                "provider"),
                                                 "pid");
      g_usleep (10000);
    }
  g_error ("the claim on session %s never recorded its provider command", session_id);
  return -1;
}

/* The claim of a reaper that died is taken over; a live claim blocks a
 * session from taking the VM over. */
/* Until process @pid has exited (a zombie, or gone): a signal is not
 * delivered at once on a loaded machine. */
static void
wait_until_gone (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);

  for (guint i = 0; i < 500; i++)
    {
      g_autofree char *stat = NULL;

      if (!g_file_get_contents (path, &stat, NULL, NULL) || strstr (stat, ") Z ") != NULL)
        return;
      g_usleep (10 * 1000);
    }
  g_error ("process %d did not exit", pid);
}

static void
test_dead_reaper_claim (Fixture      *f,
                        gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GSubprocess) a = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocessLauncher) launcher = NULL;
  g_autoptr (GSubprocess) taker = NULL;
  g_autofree char *taker_out = NULL;
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);
  g_autofree char *log = NULL;
  int              provider_pid;

  w1 = worker_start_orphan (f, "vm-1");

  cloud_set_hold (f, TRUE);
  a = spawn_gsmctl_reap ();
  cloud_wait_for_call (f, "vm-1");

  /* A live claim: a new session cannot register the VM being deleted. */
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
  taker = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("GSM_TEST_WORKER"),
                                       "register", "vm-1", "zone-a", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (taker, "", NULL, &taker_out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (taker_out, "ERROR "));
  g_assert_nonnull (strstr (taker_out, "being deleted by a reaper"));

  /* The reaper and its provider die mid-deletion, once the claim records
   * the command. */
  claim_wait_for_provider (w1->session_id);
  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  provider_pid = atoi (strrchr (g_strstrip (log), ' ') + 1);
  g_subprocess_send_signal (a, SIGKILL);
  g_subprocess_wait (a, NULL, NULL);
  kill (-provider_pid, SIGKILL);
  wait_until_gone (provider_pid);
  cloud_set_hold (f, FALSE);

  entry = lookup (w1->session_id);
  g_assert_nonnull (_gsm_session_get_member (entry, "reap_claim"));

  reaper = new_reaper ();
  reap_pass (reaper, NULL, 1, 0);
  g_assert_false (cloud_has_vm (f, "vm-1"));
  g_assert_null (lookup (w1->session_id));
  g_assert_cmpuint (count_vm_owners ("vm-1"), ==, 0);
}

typedef struct
{
  const char *session_id;
  JsonNode   *claim;
} Inject;

static gboolean
txn_inject_claim (GsmRegistryTxn *txn,
                  gpointer        user_data,
                  GError        **error)
{
  Inject     *in = user_data;
  GsmSession *entry = _gsm_registry_txn_lookup (txn, in->session_id);
  g_autoptr (GsmSession) claimed = _gsm_session_with_member (entry, "reap_claim", in->claim);

  _gsm_registry_txn_put (txn, claimed);
  return TRUE;
}

static void
inject_claim_at (const char *session_id,
                 const char *host,
                 double      at,
                 double      expires_at)
{
  g_autofree char *text = g_strdup_printf ("{\"token\": \"t\", \"pid\": 4242, \"start_time\": 1, "
                                           "\"host\": \"%s\", \"at\": %f, \"expires_at\": %f}",
                                           host, at, expires_at);
  g_autoptr (JsonNode) claim = json_from_string (text, NULL);
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;
  Inject in = { session_id, claim };

  snapshot = _gsm_registry_update (_gsm_session_manager_get_registry (gsm_session_manager_get_default ()),
                                   txn_inject_claim, &in, NULL, &error);
  g_assert_no_error (error);
}

static void
inject_claim (const char *session_id,
              const char *host,
              double      expires_in)
{
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;

  inject_claim_at (session_id, host, now, now + expires_in);
}

/* A claim by a reaper on another host (its liveness unknown here) holds
 * until it expires, then is taken over. */
static void
test_remote_claim_expires (Fixture      *f,
                           gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;

  w1 = worker_start_orphan (f, "vm-1");
  cleanup_stale (1);

  inject_claim (w1->session_id, "reaper-host-2", 3600);
  reaper = new_reaper ();
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);
  g_assert_cmpuint (orphans->len, ==, 0);
  reap_pass (reaper, NULL, 0, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);

  inject_claim (w1->session_id, "reaper-host-2", -1);
  reap_pass (reaper, NULL, 1, 0);
  g_assert_false (cloud_has_vm (f, "vm-1"));
  g_assert_null (lookup (w1->session_id));
}

/* The records of the audit log, parsed. */
static GPtrArray *
history_objects (GsmReaper *reaper)
{
  g_auto (GStrv) records = history (reaper);
  GPtrArray *objects = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);

  for (guint i = 0; records[i]; i++)
    g_ptr_array_add (objects, json_from_string (records[i], NULL));
  return objects;
}

static const char *
record_string (GPtrArray  *objects,
               guint       i,
               const char *member)
{
  return json_object_get_string_member_with_default (json_node_get_object (objects->pdata[i]),
                                                     member, NULL);
}

/* Where the line starting with @prefix is in @lines, or -1. */
static int
line_index (char      **lines,
            const char *prefix,
            guint       nth)
{
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], prefix) && nth-- == 0)
      return (int) i;
  return -1;
}

/* The state letter of /proc/PID/stat, or 0 if there is none. */
static char
process_state (int pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *contents = NULL;
  const char      *p;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  p = strrchr (contents, ')');
  return p && p[1] == ' ' ? p[2] : '?';
}

/*
 * A reaper killed (SIGKILL) while its provider command runs: the command
 * dies with it, but what the command started lives on in its process
 * group. A second reaper leaves the VM alone until that is over, records
 * the first attempt's outcome as unknown, then deletes it: the two
 * deletions never overlap, and the audit log has both.
 */
static void
test_killed_reaper (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GSubprocess) a = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_auto (GStrv) lines = NULL;
  g_autofree char *first_token = NULL;
  Seen             seen;
  int              provider_pid;
  int              a_call, slept, b_call;
  char             state = 'R';

  w1 = worker_start_orphan (f, "vm-1");
  cleanup_stale (1);

  /* The call waits 4 s in a child of its group before deleting. */
  cloud_set_delay (f, 4);
  a = spawn_gsmctl_reap ();
  cloud_wait_for (f, "sleeping", "vm-1");
  provider_pid = claim_wait_for_provider (w1->session_id);
  g_assert_cmpint (provider_pid, >, 1);

  g_subprocess_send_signal (a, SIGKILL);
  g_subprocess_wait (a, NULL, NULL);

  /* The command itself is gone within moments (PR_SET_PDEATHSIG). */
  for (int i = 0; i < 200; i++)
    {
      state = process_state (provider_pid);
      if (state == 0 || state == 'Z' || state == 'X')
        break;
      g_usleep (10000);
    }
  g_assert_true (state == 0 || state == 'Z' || state == 'X');
  g_assert_cmpuint (cloud_count (f, "slept", "vm-1"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "end", "vm-1"), ==, 0);

  /* What it started still runs: a second reaper leaves the VM alone. */
  reaper = new_reaper ();
  seen_init (&seen, reaper);
  {
    g_autoptr (GPtrArray) orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);

    g_assert_cmpuint (orphans->len, ==, 0);
  }
  {
    g_autoptr (GPtrArray) forged = g_ptr_array_new_with_free_func (g_object_unref);

    g_ptr_array_add (forged, lookup (w1->session_id));
    reap_pass (reaper, forged, 0, 0);
  }
  g_assert_cmpuint (seen.skipped->len, ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 1);
  g_assert_true (cloud_has_vm (f, "vm-1"));
  entry = lookup (w1->session_id);
  g_assert_nonnull (_gsm_session_get_member (entry, "reap_claim"));

  /* Once the whole group is gone, it is taken over at once. */
  cloud_wait_for (f, "slept", "vm-1");
  for (int i = 0; i < 200; i++)
    {
      g_autoptr (GPtrArray) orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);

      if (orphans->len == 1)
        break;
      g_usleep (10000);
    }
  cloud_set_delay (f, 0);
  reap_pass (reaper, NULL, 1, 0);
  g_assert_false (cloud_has_vm (f, "vm-1"));
  g_assert_null (lookup (w1->session_id));

  /* Two calls, never at once: the second came after the first's group
   * was gone. */
  lines = cloud_log (f);
  a_call = line_index (lines, "call vm-1 ", 0);
  slept = line_index (lines, "slept vm-1 ", 0);
  b_call = line_index (lines, "call vm-1 ", 1);
  g_assert_cmpint (a_call, >=, 0);
  g_assert_cmpint (slept, >, a_call);
  g_assert_cmpint (b_call, >, slept);
  g_assert_cmpint (line_index (lines, "call vm-1 ", 2), ==, -1);
  g_assert_cmpuint (cloud_count (f, "deleted", "vm-1"), ==, 1);

  /* The audit log: the first command before it started, its outcome
   * unknown, then the second's. */
  records = history_objects (reaper);
  g_assert_cmpuint (records->len, ==, 4);
  g_assert_cmpstr (record_string (records, 0, "outcome"), ==, "started");
  first_token = g_strdup (record_string (records, 0, "token"));
  g_assert_nonnull (first_token);
  g_assert_cmpstr (record_string (records, 1, "outcome"), ==, "unknown");
  g_assert_cmpstr (record_string (records, 1, "token"), ==, first_token);
  g_assert_nonnull (strstr (record_string (records, 1, "error"), "died"));
  g_assert_cmpstr (record_string (records, 2, "outcome"), ==, "started");
  g_assert_cmpstr (record_string (records, 2, "token"), !=, first_token);
  g_assert_cmpstr (record_string (records, 3, "outcome"), ==, "deleted");
  g_assert_cmpstr (record_string (records, 3, "token"), ==, record_string (records, 2, "token"));
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (records->pdata[3]), "attempt"), ==, 2);
  seen_clear (&seen);
}

/*
 * Times a day in the future (a clock that was ahead): when the session
 * was found dead, when to retry, and a claim of another host's reaper
 * (for 1 s). They count from now: the VMs go once the grace period, the
 * longest backoff or the claim's own duration is over, not a day later;
 * gsmd would schedule them then too.
 */
static void
test_future_times (Fixture      *f,
                   gconstpointer data)
{
  g_autoptr (Worker) wa = NULL, wb = NULL, wc = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GsmSession) a = NULL, b = NULL, c = NULL;
  g_autoptr (GsmRegistrySnapshot) view = NULL;
  g_autoptr (GPtrArray) records = NULL;
  g_autofree char *attempts = NULL;
  double           now = g_get_real_time () / (double) G_USEC_PER_SEC;
  double           day = 24 * 3600;
  JsonNode        *claim;

  wa = worker_start_orphan (f, "vm-a");
  wb = worker_start_orphan (f, "vm-b");
  wc = worker_start_orphan (f, "vm-c");
  attempts = g_strdup_printf ("{\"count\": 1, \"last_attempt_at\": %f, \"last_outcome\": \"failed\", "
                              "\"last_error\": \"x\", \"next_retry_at\": %f}",
                              now + day, now + day);
  rewrite_entry (&(Rewrite){ wa->session_id, 0, FALSE, now + day, NULL });
  rewrite_entry (&(Rewrite){ wb->session_id, 0, FALSE, now - 100, attempts });
  rewrite_entry (&(Rewrite){ wc->session_id, 0, FALSE, now - 100, NULL });
  inject_claim_at (wc->session_id, "reaper-host-2", now + day, now + day + 1);

  reaper = new_reaper ();
  gsm_reaper_set_grace_period (reaper, 1);
  gsm_reaper_set_max_backoff (reaper, 1.5);
  g_assert_cmpfloat (gsm_reaper_get_max_backoff (reaper), ==, 1.5);

  /* What gsmd would schedule: within the grace period, never a day on. */
  view = _gsm_registry_load (_gsm_session_manager_get_registry (gsm_session_manager_get_default ()),
                             NULL, NULL);
  g_assert_cmpfloat (_gsm_reaper_get_next_due (reaper, view, now), <=, now + 1.5);
  g_assert_cmpfloat (_gsm_reaper_get_next_due (reaper, view, now), >=, now);

  /* Not yet: vm-a's grace period, vm-b's backoff, vm-c's claim run from
   * now. */
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);
  g_assert_cmpuint (orphans->len, ==, 0);
  reap_pass (reaper, NULL, 0, 0);
  g_assert_false (calls_log_exists (f));

  /* The pass rewrote them as now. */
  now = g_get_real_time () / (double) G_USEC_PER_SEC;
  a = lookup (wa->session_id);
  b = lookup (wb->session_id);
  c = lookup (wc->session_id);
  g_assert_cmpfloat (gsm_session_get_stale_since (a), <=, now);
  g_assert_cmpfloat (json_object_get_double_member (attempts_of (b), "next_retry_at"), <=, now + 1.5);
  g_assert_cmpfloat (json_object_get_double_member (attempts_of (b), "last_attempt_at"), <=, now);
  claim = _gsm_session_get_member (c, "reap_claim");
  g_assert_cmpfloat (json_object_get_double_member (json_node_get_object (claim), "at"), <=, now);
  g_assert_cmpfloat (json_object_get_double_member (json_node_get_object (claim), "expires_at"), <=, now + 1);

  /* A little later, all three go; the remote reaper's attempt is recorded
   * as unknown. */
  g_usleep (1600 * 1000);
  reap_pass (reaper, NULL, 3, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-a"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-b"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-c"), ==, 1);
  g_assert_false (cloud_has_vm (f, "vm-a"));
  g_assert_false (cloud_has_vm (f, "vm-b"));
  g_assert_false (cloud_has_vm (f, "vm-c"));
  records = history_objects (reaper);
  g_assert_cmpuint (records->len, ==, 7);
  {
    guint unknown = 0;

    for (guint i = 0; i < records->len; i++)
      if (g_strcmp0 (record_string (records, i, "outcome"), "unknown") == 0)
        {
          g_assert_cmpstr (record_string (records, i, "vm"), ==, "vm-c");
          g_assert_cmpstr (record_string (records, i, "token"), ==, "t");
          unknown++;
        }
    g_assert_cmpuint (unknown, ==, 1);
  }
}

/*
 * Deletions run concurrently, never more at once than the limit: eight
 * orphans, a provider that takes a second, a limit of 4.
 */
static void
test_concurrency (Fixture      *f,
                  gconstpointer data)
{
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) workers = g_ptr_array_new_with_free_func ((GDestroyNotify) worker_free);
  guint max;

  reaper = new_reaper ();
  g_assert_cmpuint (gsm_reaper_get_concurrency (reaper), ==, 8);
  g_clear_object (&reaper);

  for (guint i = 0; i < 8; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      g_ptr_array_add (workers, worker_start_orphan (f, vm));
    }
  cloud_set_delay (f, 1);

  g_setenv ("GSM_REAP_CONCURRENCY", "4", TRUE);
  reaper = new_reaper ();
  g_assert_cmpuint (gsm_reaper_get_concurrency (reaper), ==, 4);
  reap_pass (reaper, NULL, 8, 0);

  for (guint i = 0; i < 8; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      g_assert_cmpuint (cloud_count (f, "call", vm), ==, 1);
      g_assert_cmpuint (cloud_count (f, "deleted", vm), ==, 1);
      g_assert_null (lookup (((Worker *) workers->pdata[i])->session_id));
    }
  max = cloud_max_overlap (f);
  g_test_message ("at most %u calls at once", max);
  g_assert_cmpuint (max, >, 1);
  g_assert_cmpuint (max, <=, 4);
}

static gboolean
txn_add_sessions (GsmRegistryTxn *txn,
                  gpointer        user_data,
                  GError        **error)
{
  GPtrArray *sessions = user_data;

  for (guint i = 0; i < sessions->len; i++)
    _gsm_registry_txn_put (txn, sessions->pdata[i]);
  return TRUE;
}

/*
 * A registry of 5 000 sessions, 500 of them dead with a VM (this host's,
 * this boot, their processes gone), the others on other hosts: one pass
 * deletes exactly those 500 VMs, each once.
 */
static void
test_many_orphans (Fixture      *f,
                   gconstpointer data)
{
  g_autoptr (GPtrArray) sessions = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (Worker) live = NULL;
  g_auto (GStrv) lines = NULL;
  GsmSessionManager *manager = gsm_session_manager_get_default ();
  const char        *host = gsm_session_manager_get_hostname (manager);
  double             now = g_get_real_time () / (double) G_USEC_PER_SEC;
  guint              calls = 0;

  cloud_add_vm (f, "vm-live");
  live = worker_start ("vm-live");
  for (guint i = 0; i < 5000; i++)
    {
      g_autofree char *id = g_strdup_printf ("00000000-0000-4000-8000-%012u", i);
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);
      gboolean         orphan = i % 10 == 0;
      g_autoptr (GsmSession) base = NULL;

      base = _gsm_session_new (id, 1000 + (int) i, orphan ? host : "elsewhere.example.org",
                               now - 60, 100000 + i,
                               orphan ? _gsm_process_get_boot_id () : "00000000-0000-4000-8000-0000000b0075");
      g_ptr_array_add (sessions, _gsm_session_with_vm (base, vm, "zone-a", NULL, NULL, now - 30));
      if (orphan)
        cloud_add_vm (f, vm);
    }
  snapshot = _gsm_registry_update (_gsm_session_manager_get_registry (manager), txn_add_sessions,
                                   sessions, NULL, &error);
  g_assert_no_error (error);

  reaper = new_reaper ();
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (orphans->len, ==, 500);
  g_clear_pointer (&orphans, g_ptr_array_unref);

  reap_pass (reaper, NULL, 500, 0);

  lines = cloud_log (f);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "call "))
      calls++;
  g_assert_cmpuint (calls, ==, 500);
  for (guint i = 0; i < 5000; i += 10)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      g_assert_cmpuint (cloud_count (f, "call", vm), ==, 1);
      g_assert_false (cloud_has_vm (f, vm));
    }
  g_assert_cmpuint (cloud_count (f, "call", "vm-live"), ==, 0);
  g_assert_cmpuint (count_vm_owners ("vm-1"), ==, 1); /* another host's */
  g_assert_cmpuint (count_vm_owners ("vm-0"), ==, 0);
  g_assert_cmpuint (cloud_max_overlap (f), <=, 8);
}

/* `gsmctl reap` lists; `--yes` acts on that list and nothing else. */
static void
test_cli_dry_run (Fixture      *f,
                  gconstpointer data)
{
  g_autoptr (Worker) live = NULL, d1 = NULL, d2 = NULL, d3 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *out = NULL;
  g_autofree char *calls = g_build_filename (f->cloud, "calls.log", NULL);
  g_auto (GStrv) lines = NULL;
  guint listed = 0;

  cloud_add_vm (f, "vm-live");
  cloud_add_vm (f, "vm-d1");
  cloud_add_vm (f, "vm-d2");
  cloud_add_vm (f, "vm-d3");
  live = worker_start ("vm-live");
  d1 = worker_start ("vm-d1");
  d2 = worker_start ("vm-d2");
  d3 = worker_start ("vm-d3");
  worker_kill (d1);
  worker_kill (d2);

  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", NULL), ==, 0);
  g_test_message ("%s", out);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "vm-"))
      {
        listed++;
        g_assert_true (g_str_has_prefix (lines[i], "vm-d1 ") || g_str_has_prefix (lines[i], "vm-d2 "));
        g_assert_nonnull (strstr (lines[i], " planned "));
      }
  g_assert_cmpuint (listed, ==, 2);
  g_assert_false (g_file_test (calls, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);

  g_assert_cmpint (run_gsmctl (&out, NULL, "reap", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (json_parser_get_root (parser))), ==, 2);
  g_assert_false (g_file_test (calls, G_FILE_TEST_EXISTS));

  /* A list made now, then another orphan appears: only the list goes. */
  reaper = new_reaper ();
  orphans = gsm_reaper_list_orphans_sync (reaper, NULL, NULL);
  g_assert_cmpuint (orphans->len, ==, 2);
  worker_kill (d3);
  reap_pass (reaper, orphans, 2, 0);
  g_assert_false (cloud_has_vm (f, "vm-d1"));
  g_assert_false (cloud_has_vm (f, "vm-d2"));
  g_assert_true (cloud_has_vm (f, "vm-d3"));
  g_assert_true (cloud_has_vm (f, "vm-live"));

  /* gsmctl history shows every attempt. */
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, NULL, "history", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (json_parser_get_root (parser))), ==, 4);
  g_clear_pointer (&out, g_free);
  g_assert_cmpint (run_gsmctl (&out, NULL, "history", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "vm-d1"));
  g_assert_nonnull (strstr (out, "deleted"));
}

/* The audit log is never written through a symbolic link. */
static void
test_audit_log_symlink (Fixture      *f,
                        gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *target = g_build_filename (f->root, "target", NULL);
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_auto (GStrv) records = NULL;

  g_assert_true (g_file_set_contents (target, "precious\n", -1, NULL));
  reaper = new_reaper ();
  path = g_file_get_path (gsm_reaper_get_audit_log (reaper));
  g_assert_cmpint (symlink (target, path), ==, 0);

  w1 = worker_start_orphan (f, "vm-1");
  {
    /* The deletion goes on; the failure to log it is a warning. */
    GLogLevelFlags fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK);

    reap_pass (reaper, NULL, 1, 0);
    g_log_set_always_fatal (fatal);
  }

  g_assert_true (g_file_get_contents (target, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "precious\n");
  records = gsm_reaper_read_history_sync (reaper, NULL, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE);
  g_assert_null (records);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, reaper_tear_down)
  ADD ("/reaper/killed-worker", test_killed_worker);
  ADD ("/reaper/live-vm-survives", test_live_vm_survives);
  ADD ("/reaper/recheck-before-delete", test_recheck_before_delete);
  ADD ("/reaper/grace-period", test_grace_period);
  ADD ("/reaper/undecidable-liveness", test_undecidable_liveness);
  ADD ("/reaper/failure-then-retry", test_failure_then_retry);
  ADD ("/reaper/backoff", test_backoff);
  ADD ("/reaper/hanging-provider", test_hanging_provider);
  ADD ("/reaper/already-gone", test_already_gone);
  ADD ("/reaper/reserved-then-killed", test_reserved_then_killed);
  ADD ("/reaper/two-reapers", test_two_reapers);
  ADD ("/reaper/dead-reaper-claim", test_dead_reaper_claim);
  ADD ("/reaper/remote-claim-expires", test_remote_claim_expires);
  ADD ("/reaper/cli-dry-run", test_cli_dry_run);
  ADD ("/reaper/audit-log-symlink", test_audit_log_symlink);
  ADD ("/reaper/killed-reaper", test_killed_reaper);
  ADD ("/reaper/future-times", test_future_times);
  ADD ("/reaper/concurrency", test_concurrency);
  ADD ("/reaper/many-orphans", test_many_orphans);
#undef ADD

  return g_test_run ();
}
