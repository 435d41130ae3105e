/* test-reaper-log.c: the reaper's structured log, as the journal gets it
 *
 * Every deletion the reaper attempts, and every VM it leaves alone, is
 * logged with g_log_structured() in domain "Gsm", with the fields
 * GSM_ACTION, SESSION_ID, VM_ID and MESSAGE. A writer function stands in
 * for the journal and keeps what the library logged.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>

#include "gsm-session-manager-private.h"
#include "reaper-test-util.h"

/* What was logged in domain Gsm with a GSM_ACTION field: one table of
 * fields (name → value) per message. */
static GMutex     logged_mutex;
static GPtrArray *logged;

static GLogWriterOutput
writer (GLogLevelFlags   log_level,
        const GLogField *fields,
        gsize            n_fields,
        gpointer         user_data)
{
  g_autoptr (GHashTable) table = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  for (gsize i = 0; i < n_fields; i++)
    {
      /* A value of length -1 is a string; others are kept as given. */
      char *value = fields[i].length < 0 ? g_strdup (fields[i].value)
                                         : g_strndup (fields[i].value, fields[i].length);

      g_hash_table_replace (table, g_strdup (fields[i].key), value);
    }

  if (g_strcmp0 (g_hash_table_lookup (table, "GLIB_DOMAIN"), "Gsm") == 0 &&
      g_hash_table_contains (table, "GSM_ACTION"))
    {
      g_mutex_lock (&logged_mutex);
      g_ptr_array_add (logged, g_steal_pointer (&table));
      g_mutex_unlock (&logged_mutex);
      return G_LOG_WRITER_HANDLED;
    }

  return g_log_writer_default (log_level, fields, n_fields, user_data);
}

static void
log_tear_down (Fixture      *f,
               gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  fixture_tear_down (f, data);
  g_mutex_lock (&logged_mutex);
  g_ptr_array_set_size (logged, 0);
  g_mutex_unlock (&logged_mutex);
}

/* The messages logged with GSM_ACTION @action. */
static GPtrArray *
logged_with (const char *action)
{
  GPtrArray *found = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);

  g_mutex_lock (&logged_mutex);
  for (guint i = 0; i < logged->len; i++)
    if (g_strcmp0 (g_hash_table_lookup (logged->pdata[i], "GSM_ACTION"), action) == 0)
      g_ptr_array_add (found, g_hash_table_ref (logged->pdata[i]));
  g_mutex_unlock (&logged_mutex);

  return found;
}

static guint
count_logged (const char *action)
{
  g_autoptr (GPtrArray) found = logged_with (action);

  return found->len;
}

/* The one message logged with @action, about @vm_id of @session_id. */
static void
assert_logged_once (const char *action,
                    const char *session_id,
                    const char *vm_id,
                    const char *outcome)
{
  g_autoptr (GPtrArray) found = logged_with (action);
  GHashTable *fields;

  g_assert_cmpuint (found->len, ==, 1);
  fields = found->pdata[0];
  g_assert_cmpstr (g_hash_table_lookup (fields, "SESSION_ID"), ==, session_id);
  g_assert_cmpstr (g_hash_table_lookup (fields, "VM_ID"), ==, vm_id);
  g_assert_cmpstr (g_hash_table_lookup (fields, "GSM_OUTCOME"), ==, outcome);
  g_assert_nonnull (strstr (g_hash_table_lookup (fields, "MESSAGE"), vm_id));
  g_assert_nonnull (strstr (g_hash_table_lookup (fields, "MESSAGE"), session_id));
}

/* A reap: the attempt and its result, each with the session and the VM;
 * nothing about the live session's VM. */
static void
test_reap_logged (Fixture      *f,
                  gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL, w2 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_auto (GStrv) calls = NULL;

  cloud_add_vm (f, "vm-1");
  cloud_add_vm (f, "vm-2");
  w1 = worker_start ("vm-1");
  w2 = worker_start ("vm-2");
  worker_kill (w2);

  reaper = gsm_reaper_new (gsm_session_manager_get_default (), NULL);
  reap_pass (reaper, NULL, 1, 0);

  /* The provider was asked to delete vm-2, once, and nothing else. */
  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_false (cloud_has_vm (f, "vm-2"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);
  g_assert_cmpuint (cloud_count (f, "call", "vm-2"), ==, 1);
  calls = cloud_log (f);
  for (guint i = 0; calls[i]; i++)
    g_assert_true (g_str_has_prefix (calls[i], "call vm-2 ") ||
                   g_str_has_prefix (calls[i], "deleted vm-2") ||
                   g_str_has_prefix (calls[i], "end vm-2 "));

  assert_logged_once ("reap-start", w2->session_id, "vm-2", "started");
  assert_logged_once ("reap", w2->session_id, "vm-2", "deleted");
  g_assert_cmpuint (count_logged ("reap-failed"), ==, 0);
  g_assert_cmpuint (count_logged ("skip"), ==, 0);
}

/* A failed deletion: GSM_ACTION=reap-failed, with the provider's reason. */
static void
test_failure_logged (Fixture      *f,
                     gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) failed = NULL;

  cloud_add_vm (f, "vm-1");
  w1 = worker_start ("vm-1");
  worker_kill (w1);
  cloud_set_mode (f, "fail");

  reaper = gsm_reaper_new (gsm_session_manager_get_default (), NULL);
  reap_pass (reaper, NULL, 0, 1);

  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 1);
  assert_logged_once ("reap-start", w1->session_id, "vm-1", "started");
  assert_logged_once ("reap-failed", w1->session_id, "vm-1", "failed");
  failed = logged_with ("reap-failed");
  g_assert_nonnull (strstr (g_hash_table_lookup (failed->pdata[0], "MESSAGE"), "quota exceeded"));
  g_assert_cmpuint (count_logged ("reap"), ==, 0);
}

/* A VM of a list that is alive again when the pass checks it: left alone,
 * GSM_ACTION=skip, and the provider is never asked. */
static void
test_skip_logged (Fixture      *f,
                  gconstpointer data)
{
  g_autoptr (Worker) w1 = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) orphans = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GHashTable) table = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) skipped = NULL;
  GsmSession *entry;

  cloud_add_vm (f, "vm-1");
  w1 = worker_start ("vm-1");

  reaper = gsm_reaper_new (gsm_session_manager_get_default (), NULL);
  table = _gsm_session_manager_list_sessions_sync (gsm_session_manager_get_default (), NULL,
                                                   &error);
  g_assert_no_error (error);
  entry = g_hash_table_lookup (table, w1->session_id);
  g_assert_nonnull (entry);
  g_ptr_array_add (orphans, g_object_ref (entry));
  reap_pass (reaper, orphans, 0, 0);

  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 0);
  assert_logged_once ("skip", w1->session_id, "vm-1", "skipped");
  skipped = logged_with ("skip");
  g_assert_nonnull (strstr (g_hash_table_lookup (skipped->pdata[0], "MESSAGE"),
                            "its owner is alive"));
  g_assert_cmpuint (count_logged ("reap-start"), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  logged = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  g_log_set_writer_func (writer, NULL, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, log_tear_down)
  ADD ("/reaper-log/reap", test_reap_logged);
  ADD ("/reaper-log/failure", test_failure_logged);
  ADD ("/reaper-log/skip", test_skip_logged);
#undef ADD

  return g_test_run ();
}
