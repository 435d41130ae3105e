/* test-inventory.c: labels, presets and reconciliation against fake clouds
 *
 * The fake gcloud, aws and az of fake-clouds/ stand in for the clouds
 * (their argument handling, JSON and exit codes); real worker processes
 * create VMs with their session's labels, and crash. Every test asserts
 * exactly which VMs the provider was asked to delete.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <math.h>

#include <gsm.h>
#include <json-glib/json-glib.h>

#include "fake-cloud-util.h"
#include "gsm-labels-private.h"
#include "gsm-provider-presets-private.h"
#include "gsm-reaper-private.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"

typedef struct
{
  Fixture   f;
  FakeCloud fc;
} Inv;

static void
inv_set_up (Inv          *t,
            gconstpointer data)
{
  fixture_set_up (&t->f, data);
  fake_cloud_set_up (&t->fc, &t->f, data ? data : "gcloud");
}

static void
inv_tear_down (Inv          *t,
               gconstpointer data)
{
  _gsm_session_manager_reset_for_testing ();
  fake_cloud_clear (&t->fc);
  fixture_tear_down (&t->f, data);
}

static char *
registry_label (void)
{
  return _gsm_session_manager_dup_registry_label (gsm_session_manager_get_default ());
}

/* Labels as a session would put them, for @session_id of this registry
 * (or of @registry). Floating. */
static GVariant *
labels_for (const char *session_id,
            const char *registry)
{
  g_autofree char *session = session_id ? _gsm_label_for_session (session_id) : NULL;
  g_autofree char *ours = registry ? NULL : registry_label ();
  GVariantBuilder  b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&b, "{ss}", GSM_LABEL_HOST, "test-host");
  g_variant_builder_add (&b, "{ss}", GSM_LABEL_REGISTRY, registry ? registry : ours);
  if (session != NULL)
    g_variant_builder_add (&b, "{ss}", GSM_LABEL_SESSION, session);
  return g_variant_builder_end (&b);
}

static GsmReaper *
new_reaper (void)
{
  return gsm_reaper_new (gsm_session_manager_get_default (), NULL);
}

static GPtrArray *
reconcile (GsmReaper        *reaper,
           GsmReconcileFlags flags)
{
  g_autoptr (GError) error = NULL;
  GPtrArray *items = gsm_reaper_reconcile_sync (reaper, flags, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (items);
  for (guint i = 0; i < items->len; i++)
    g_test_message ("%s: %s (%s)", gsm_inventory_item_get_vm_id (items->pdata[i]),
                    gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (items->pdata[i])),
                    gsm_inventory_item_get_reason (items->pdata[i]));
  return items;
}

/* The item of @vm_id in @items, or NULL. */
static GsmInventoryItem *
find_item (GPtrArray  *items,
           const char *vm_id)
{
  for (guint i = 0; i < items->len; i++)
    if (g_strcmp0 (gsm_inventory_item_get_vm_id (items->pdata[i]), vm_id) == 0 ||
        g_strcmp0 (gsm_inventory_item_get_name (items->pdata[i]), vm_id) == 0)
      return items->pdata[i];
  return NULL;
}

static GsmInventoryVerdict
verdict_of (GPtrArray  *items,
            const char *vm_id)
{
  GsmInventoryItem *item = find_item (items, vm_id);

  g_assert_nonnull (item);
  return gsm_inventory_item_get_verdict (item);
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

/* Does the registry record a VM for @session_id? */
static gboolean
has_vm (const char *session_id)
{
  g_autoptr (GsmSession) entry = lookup (session_id);

  return entry != NULL && gsm_session_get_has_vm (entry);
}

static gboolean
txn_remove (GsmRegistryTxn *txn,
            gpointer        user_data,
            GError        **error)
{
  _gsm_registry_txn_remove (txn, user_data);
  return TRUE;
}

/* Removes @session_id's entry, as a broken writer or a person might. */
static void
remove_entry (const char *session_id)
{
  g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
  g_autoptr (GError) error = NULL;

  snapshot = _gsm_registry_update (_gsm_session_manager_get_registry (gsm_session_manager_get_default ()),
                                   txn_remove, (gpointer) session_id, NULL, &error);
  g_assert_no_error (error);
}

static JsonObject *
member_of (GsmSession *entry,
           const char *name)
{
  JsonNode *node = _gsm_session_get_member (entry, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

/* ---- labels ---------------------------------------------------------------- */

static void
assert_valid_value (const char *value)
{
  g_autoptr (GRegex) regex = g_regex_new ("^[a-z][a-z0-9_-]{0,62}$", 0, 0, NULL);

  g_assert_true (g_regex_match (regex, value, 0, NULL));
  g_assert_true (_gsm_label_value_is_valid (value));
}

static void
test_labels (Inv          *t,
             gconstpointer data)
{
  GsmSessionManager *manager;
  g_autoptr (GVariant) labels = NULL;
  g_autofree char *registry = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *other = NULL;
  g_autofree char *host = NULL;
  g_autofree char *long_host = NULL;
  g_autofree char *long_name = g_strnfill (300, 'A');
  g_auto (GStrv) candidates = NULL;
  const char *session = NULL, *value;

  g_setenv ("GSM_HOSTNAME", "Build.Host_2.example.COM", TRUE);
  manager = gsm_session_manager_get_default ();
  labels = gsm_session_manager_get_vm_labels (manager);
  g_assert_true (g_variant_is_of_type (labels, G_VARIANT_TYPE ("a{ss}")));
  g_assert_false (g_variant_is_floating (labels));
  g_assert_cmpuint (g_variant_n_children (labels), ==, 3);

  g_assert_true (g_variant_lookup (labels, GSM_LABEL_SESSION, "&s", &session));
  assert_valid_value (session);
  /* The label stands for this session, and only it. */
  candidates = _gsm_label_session_candidates (session);
  g_assert_true (g_strv_contains ((const char *const *) candidates,
                                  gsm_session_manager_get_session_id (manager)));

  g_assert_true (g_variant_lookup (labels, GSM_LABEL_HOST, "&s", &value));
  g_assert_cmpstr (value, ==, "build-host_2-example-com");
  g_assert_true (g_variant_lookup (labels, GSM_LABEL_REGISTRY, "&s", &value));
  assert_valid_value (value);
  registry = g_strdup (value);
  expected = _gsm_label_registry_for_files (t->f.runtime, "Build.Host_2.example.COM");
  g_assert_cmpstr (registry, ==, expected);
  g_assert_true (g_str_has_prefix (registry, "files-"));

  /* Another host, or another directory, is another registry. */
  other = _gsm_label_registry_for_files (t->f.runtime, "build-host-3");
  g_assert_cmpstr (other, !=, registry);
  g_clear_pointer (&other, g_free);
  other = _gsm_label_registry_for_files (t->f.root, "Build.Host_2.example.COM");
  g_assert_cmpstr (other, !=, registry);
  g_clear_pointer (&other, g_free);

  /* etcd: the fleet's prefix. */
  other = _gsm_label_registry_for_etcd ("/gsm");
  assert_valid_value (other);
  g_assert_true (g_str_has_prefix (other, "etcd-"));
  {
    g_autofree char *again = _gsm_label_registry_for_etcd ("/gsm");
    g_autofree char *fleet2 = _gsm_label_registry_for_etcd ("/fleet-2");

    g_assert_cmpstr (again, ==, other);
    g_assert_cmpstr (fleet2, !=, other);
  }

  /* Values from any id or host name are valid labels. */
  {
    const char *ids[] = { "0b3c4d5e-0000-4000-8000-000000000001", "abc", "Upper_Case", "a b/c",
                          long_name, "", NULL };

    for (guint i = 0; ids[i]; i++)
      {
        g_autofree char *v = _gsm_label_for_session (ids[i]);
        g_auto (GStrv) back = _gsm_label_session_candidates (v);

        assert_valid_value (v);
        /* A plain id is found again from its label; any other has a hash. */
        if (strspn (ids[i], "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen (ids[i]) &&
            *ids[i] != '\0')
          g_assert_true (g_strv_contains ((const char *const *) back, ids[i]));
        else
          g_assert_true (g_str_has_prefix (v, "x-"));
      }
  }
  {
    g_autofree char *digit = _gsm_label_for_session ("0b3c4d5e-0000-4000-8000-000000000001");

    g_assert_cmpstr (digit, ==, "s-0b3c4d5e-0000-4000-8000-000000000001");
  }
  host = _gsm_label_for_host ("42.example");
  g_assert_cmpstr (host, ==, "h-42-example");
  long_host = _gsm_label_for_host (long_name);
  assert_valid_value (long_host);
  g_unsetenv ("GSM_HOSTNAME");
}

/* ---- presets and the fake CLIs ---------------------------------------------- */

static void
check_preset (Inv        *t,
              const char *preset,
              const char *zone)
{
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autofree char *vm = NULL;
  g_autofree char *format = NULL;
  g_auto (GStrv) list_command = NULL;
  double            now = g_get_real_time () / 1e6;
  GsmInventoryItem *item;

  provider = gsm_provider_new_preset (preset, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_provider_get_name (provider), ==, preset);
  g_assert_cmpstr (gsm_provider_get_preset (provider), ==, preset);
  format = gsm_provider_get_list_format (provider);
  g_assert_cmpstr (format, ==, preset);
  list_command = gsm_provider_get_list_command (provider);
  g_assert_cmpstr (list_command[0], ==, preset);

  /* AWS instance IDs are made by the cloud. */
  vm = g_str_equal (preset, "aws") ? g_strdup ("i-0123456789abcdef0") : g_strdup ("vm-1");
  fake_cloud_add (&t->fc, vm, zone, labels_for ("0b3c4d5e-0000-4000-8000-000000000001", "files-r1"), 100);
  fake_cloud_add (&t->fc, "i-0fedcba9876543210", zone, labels_for ("abc", "files-r2"), 5);

  items = gsm_provider_list_vms_sync (provider, "files-r1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (items->len, ==, 1);
  item = items->pdata[0];
  g_assert_cmpstr (gsm_inventory_item_get_vm_id (item), ==, vm);
  g_assert_cmpstr (gsm_inventory_item_get_zone (item), ==, zone);
  g_assert_cmpstr (gsm_inventory_item_get_label (item, GSM_LABEL_SESSION), ==,
                   "s-0b3c4d5e-0000-4000-8000-000000000001");
  g_assert_cmpstr (gsm_inventory_item_get_label (item, GSM_LABEL_REGISTRY), ==, "files-r1");
  /* The creation time, read from each CLI's own format (AWS keeps whole
   * seconds). */
  g_assert_cmpfloat (fabs (gsm_inventory_item_get_created_at (item) - (now - 100)), <, 2);
  g_assert_nonnull (gsm_inventory_item_get_state (item));

  /* Deleted; then "not found", which counts as done. */
  g_assert_true (gsm_provider_delete_vm_sync (provider, vm, zone, "s", &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_DELETED);
  g_assert_false (fake_cloud_has (&t->fc, vm));
  g_clear_object (&result);
  if (!g_str_equal (preset, "aws"))
    {
      g_assert_true (gsm_provider_delete_vm_sync (provider, vm, zone, "s", &result, NULL, &error));
      g_assert_no_error (error);
      g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_NOT_FOUND);
      g_clear_object (&result);
    }
  /* (A terminated AWS instance stays visible and terminating it again
   * succeeds: one that never existed is not found.) */
  g_assert_true (gsm_provider_delete_vm_sync (provider, "i-00000000000000001", zone, "s", &result,
                                              NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_NOT_FOUND);
  g_clear_object (&result);

  /* The listing no longer shows the deleted VM. */
  g_clear_pointer (&items, g_ptr_array_unref);
  items = gsm_provider_list_vms_sync (provider, "files-r1", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (items->len, ==, 0);

  /* Refused by the cloud: an error naming the CLI's own reason. */
  fake_cloud_set_mode (&t->fc, "denied");
  g_assert_false (gsm_provider_delete_vm_sync (provider, "i-0fedcba9876543210", zone, "s", &result,
                                               NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_test_message ("%s", error->message);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_FAILED);
  g_assert_true (strstr (error->message, "authoriz") != NULL ||
                 strstr (error->message, "permission") != NULL);
  g_assert_true (fake_cloud_has (&t->fc, "i-0fedcba9876543210"));
  g_clear_error (&error);
  g_clear_object (&result);

  fake_cloud_set_mode (&t->fc, "list-fails");
  g_clear_pointer (&items, g_ptr_array_unref);
  items = gsm_provider_list_vms_sync (provider, "files-r1", NULL, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_assert_null (items);
  g_clear_error (&error);

  fake_cloud_set_mode (&t->fc, "garbage");
  items = gsm_provider_list_vms_sync (provider, "files-r1", NULL, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_test_message ("%s", error->message);
  g_assert_null (items);
}

static void
test_preset_gcloud (Inv *t, gconstpointer data)
{
  check_preset (t, "gcloud", "us-central1-a");
}

static void
test_preset_aws (Inv *t, gconstpointer data)
{
  check_preset (t, "aws", "us-east-1a");
}

static void
test_preset_az (Inv *t, gconstpointer data)
{
  check_preset (t, "az", "rg-jobs");
}

/* How the configuration picks and changes a preset; bad input is a clear
 * error. */
static void
test_preset_config (Inv          *t,
                    gconstpointer data)
{
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) argv = NULL;
  g_auto (GStrv) list = NULL;
  const char *az_delete[] = { "az", "vm", "delete", "--resource-group", "rg-1", "--name", "vm-1",
                              "--yes", "--output", "json", NULL };

  /* [provider] preset=az */
  g_assert_true (g_file_set_contents (t->fc.config, "[provider]\npreset=az\n", -1, NULL));
  provider = gsm_provider_new_default (&error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_provider_get_name (provider), ==, "az");
  g_assert_cmpint (gsm_provider_get_not_found_exit_code (provider), ==, 3);
  argv = gsm_provider_expand (provider, "vm-1", "rg-1", "s", &error);
  g_assert_cmpstrv (argv, az_delete);
  g_clear_object (&provider);
  g_clear_pointer (&argv, g_strfreev);

  /* A named provider starting from a preset, with overrides. */
  g_assert_true (g_file_set_contents (t->fc.config,
                                      "[reaper]\nprovider=prod\n\n[provider prod]\npreset=aws\n"
                                      "timeout=7\nlist-command=aws ec2 describe-instances "
                                      "--region eu-west-1 --filters Name=tag:gsm-registry,"
                                      "Values={registry} --output json\n",
                                      -1, NULL));
  provider = gsm_provider_new_default (&error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_provider_get_name (provider), ==, "prod");
  g_assert_cmpstr (gsm_provider_get_preset (provider), ==, "aws");
  g_assert_cmpfloat (gsm_provider_get_timeout (provider), ==, 7);
  g_assert_cmpstr (gsm_provider_get_not_found_pattern (provider), ==, "InvalidInstanceID\\.NotFound");
  list = gsm_provider_get_list_command (provider);
  g_assert_cmpstr (list[4], ==, "eu-west-1");
  g_clear_object (&provider);

  /* Bad input: each an error naming what is wrong. */
  {
    const struct
    {
      const char *config;
      const char *says;
    } bad[] = {
      { "[provider]\npreset=ovh\n", "ovh" },
      { "[provider]\nlist-command=tool list\n", "neither" },
      { "[provider]\npreset=gcloud\nlist-format=yaml\n", "yaml" },
      { "[provider]\npreset=gcloud\nlist-command=tool list {vm_id}\n", "{vm_id}" },
      { "[provider]\npreset=gcloud\nlist-command=tool list '{registry}\n", "list command" },
      { "[provider]\npreset=aws\ntimeout=soon\n", "soon" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
      {
        g_assert_true (g_file_set_contents (t->fc.config, bad[i].config, -1, NULL));
        provider = gsm_provider_new_default (&error);
        g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
        g_test_message ("%s", error->message);
        g_assert_nonnull (strstr (error->message, bad[i].says));
        g_assert_null (provider);
        g_clear_error (&error);
      }
  }

  /* A registry value that is not a label value never reaches a query. */
  {
    g_autoptr (GsmProvider) gcloud = gsm_provider_new_preset ("gcloud", NULL);
    g_autoptr (GPtrArray) none = gsm_provider_list_vms_sync (gcloud, "x' OR 'a'=='a", NULL, &error);

    g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
    g_assert_null (none);
    g_clear_error (&error);
  }

  g_assert_null (gsm_provider_new_preset ("digitalocean", &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "gcloud, aws, az"));
  g_clear_error (&error);

  /* A provider without a list command cannot reconcile, and says so. */
  {
    const char *cmd[] = { "tool", "delete", "{vm_id}", NULL };
    g_autoptr (GsmProvider) plain = gsm_provider_new ("plain", cmd, NULL);
    g_autoptr (GsmReaper) reaper = gsm_reaper_new (gsm_session_manager_get_default (), plain);
    g_autoptr (GPtrArray) items = NULL;

    g_assert_null (gsm_provider_get_list_command (plain));
    items = gsm_reaper_reconcile_sync (reaper, GSM_RECONCILE_FLAGS_APPLY, NULL, &error);
    g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "cannot list VMs"));
    g_assert_null (items);
  }
}

/* ---- provider errors kept whole --------------------------------------------- */

static void
test_error_line (Inv          *t,
                 gconstpointer data)
{
  const struct
  {
    const char *stderr_text;
    const char *line;
  } cases[] = {
    { "", "" },
    { "\n\n  \n", "" },
    { "warming up\nsomething broke\n\n", "something broke" },
    { "WARNING: x\nERROR: (gcloud.compute.instances.delete) You do not currently have an active "
      "account selected.\nPlease run:\n\n  $ gcloud auth login\n\nto select an already "
      "authenticated account to use.\n",
      "ERROR: (gcloud.compute.instances.delete) You do not currently have an active account "
      "selected." },
    { "ERROR: (gcloud.compute.instances.delete) Could not fetch resource:\n - The resource "
      "'projects/p/zones/z/instances/vm' was not found\n\n",
      "ERROR: (gcloud.compute.instances.delete) Could not fetch resource: - The resource "
      "'projects/p/zones/z/instances/vm' was not found" },
    { "\nAn error occurred (UnauthorizedOperation) when calling the TerminateInstances operation: "
      "You are not authorized to perform this operation.\n",
      "An error occurred (UnauthorizedOperation) when calling the TerminateInstances operation: "
      "You are not authorized to perform this operation." },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *line = _gsm_provider_relevant_line (cases[i].stderr_text);

      g_assert_cmpstr (line, ==, cases[i].line);
    }
  {
    g_autofree char *huge = g_strnfill (5000, 'x');
    g_autofree char *line = _gsm_provider_relevant_line (huge);

    g_assert_cmpuint (strlen (line), <=, 1000 + strlen ("…"));
  }
}

/* A command that fails with no output at all, and a not-found pattern
 * configured: a failure, and no critical (a test's criticals are fatal). */
static void
test_empty_output (Inv          *t,
                   gconstpointer data)
{
  const char *argv[] = { "/bin/sh", "-c", "exit 1", "sh", "{vm_id}", NULL };
  g_autoptr (GsmProvider) provider = gsm_provider_new ("silent", argv, NULL);
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (gsm_provider_set_not_found_pattern (provider, "was not found", NULL));
  gsm_provider_set_not_found_exit_code (provider, 3);
  g_assert_false (gsm_provider_delete_vm_sync (provider, "vm-1", NULL, NULL, &result, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_assert_cmpstr (gsm_provider_result_get_stdout (result), ==, "");
  g_assert_cmpstr (gsm_provider_result_get_stderr (result), ==, "");
  g_assert_true (g_str_has_suffix (error->message, "deleting VM “vm-1”"));
}

/* gcloud not logged in: the error names the ERROR: line, not the last
 * line of the advice after it; the audit log keeps all of it. */
static void
test_error_kept_whole (Inv          *t,
                       gconstpointer data)
{
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;
  g_autoptr (GError) error = NULL;
  guint       reaped = 0, failed = 0;
  const char *last_error;
  JsonObject *record;

  w = worker_start ("vm-1");
  worker_kill (w);
  fake_cloud_set_mode (&t->fc, "auth");

  reaper = new_reaper ();
  g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
  g_assert_cmpuint (failed, ==, 1);
  {
    const char *expected[] = { "vm-1 zone-a", NULL };

    fake_cloud_assert_deleted (&t->fc, expected);
  }

  entry = lookup (w->session_id);
  last_error = json_object_get_string_member (member_of (entry, "reap_attempts"), "last_error");
  g_test_message ("%s", last_error);
  g_assert_nonnull (strstr (last_error, "ERROR: (gcloud.compute.instances.delete) You do not "
                                        "currently have an active account selected."));
  g_assert_null (strstr (last_error, "already authenticated"));

  records = gsm_reaper_read_history_sync (reaper, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (records), ==, 2);
  g_assert_true (json_parser_load_from_data (parser, records[1], -1, NULL));
  record = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "failed");
  g_assert_nonnull (strstr (json_object_get_string_member (record, "stderr"), "$ gcloud auth login"));
  g_assert_nonnull (strstr (json_object_get_string_member (record, "stderr"),
                            "to select an already authenticated account to use."));
  g_assert_nonnull (strstr (json_object_get_string_member (record, "error"), "active account"));
}

/* ---- reconciliation ----------------------------------------------------------- */

/* The crash the registry cannot see: the process created its VM (with
 * its labels) and died before registering it. Reconciliation finds it,
 * leaves it for the grace period, then deletes it, and only it. */
static void
test_crash_before_register (Inv          *t,
                            gconstpointer data)
{
  const char *crash_env[] = { "GSM_TEST_WORKER_CREATE", "gcloud",
                              "GSM_TEST_WORKER_SKIP_REGISTER", "1", NULL };
  const char *create_env[] = { "GSM_TEST_WORKER_CREATE", "gcloud", NULL };
  g_autoptr (Worker) crashed = NULL, live = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_auto (GStrv) records = NULL;
  const char *none[] = { NULL };
  const char *expected[] = { "vm-crash zone-a", NULL };
  JsonObject *record;

  crashed = worker_start_env ("vm-crash", crash_env);
  live = worker_start_env ("vm-live", create_env);
  worker_kill (crashed);
  g_assert_true (fake_cloud_has (&t->fc, "vm-crash"));
  /* The session entered the registry, without a VM. */
  g_assert_false (has_vm (crashed->session_id));

  reaper = new_reaper ();
  gsm_reaper_set_grace_period (reaper, 60);

  /* A dry run reports it and changes nothing. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_NONE);
  g_assert_cmpint (verdict_of (items, "vm-crash"), ==, GSM_INVENTORY_VERDICT_YOUNG);
  g_assert_cmpstr (gsm_inventory_item_get_session_id (find_item (items, "vm-crash")), ==,
                   crashed->session_id);
  g_assert_cmpint (verdict_of (items, "vm-live"), ==, GSM_INVENTORY_VERDICT_REGISTERED);
  g_clear_pointer (&items, g_ptr_array_unref);

  /* Within the grace period: left alone, even acting. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-crash"), ==, GSM_INVENTORY_VERDICT_YOUNG);
  fake_cloud_assert_deleted (&t->fc, none);
  g_clear_pointer (&items, g_ptr_array_unref);

  /* Older than the grace period: a dry run lists it, deletes nothing. */
  fake_cloud_set_age (&t->fc, "vm-crash", 61);
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_NONE);
  g_assert_cmpint (verdict_of (items, "vm-crash"), ==, GSM_INVENTORY_VERDICT_ORPHAN);
  fake_cloud_assert_deleted (&t->fc, none);
  g_assert_false (has_vm (crashed->session_id));
  g_clear_pointer (&items, g_ptr_array_unref);

  /* Acting: deleted, and only it. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-crash"), ==, GSM_INVENTORY_VERDICT_ORPHAN);
  g_assert_nonnull (strstr (gsm_inventory_item_get_reason (find_item (items, "vm-crash")),
                            "deleted"));
  fake_cloud_assert_deleted (&t->fc, expected);
  g_assert_false (fake_cloud_has (&t->fc, "vm-crash"));
  g_assert_true (fake_cloud_has (&t->fc, "vm-live"));
  /* Recorded under the dead session's id while it was deleted, then gone. */
  g_assert_null (lookup (crashed->session_id));

  records = gsm_reaper_read_history_sync (reaper, NULL, NULL);
  g_assert_cmpuint (g_strv_length (records), ==, 2);
  g_assert_true (json_parser_load_from_data (parser, records[1], -1, NULL));
  record = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (record, "vm"), ==, "vm-crash");
  g_assert_cmpstr (json_object_get_string_member (record, "outcome"), ==, "deleted");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (record, "owner"),
                                                  "session"),
                   ==, crashed->session_id);
  g_clear_pointer (&items, g_ptr_array_unref);

  /* A pass more: nothing more to do. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_null (find_item (items, "vm-crash"));
  fake_cloud_assert_deleted (&t->fc, expected);
}

/* Reserved (status creating), created, never confirmed: the entry records
 * it, so it is the reaper's; reconciliation says so and leaves it to it. */
static void
test_crash_before_confirm (Inv          *t,
                           gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_RESERVE", "1", "GSM_TEST_WORKER_CREATE", "gcloud", NULL };
  const char *expected[] = { "vm-res zone-a", NULL };
  const char *none[] = { NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  guint reaped = 0, failed = 0;

  w = worker_start_env ("vm-res", env);
  entry = lookup (w->session_id);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "creating");
  worker_kill (w);

  reaper = new_reaper ();
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-res"), ==, GSM_INVENTORY_VERDICT_DEAD_OWNER);
  fake_cloud_assert_deleted (&t->fc, none);

  g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (reaped, ==, 1);
  fake_cloud_assert_deleted (&t->fc, expected);
  g_assert_false (fake_cloud_has (&t->fc, "vm-res"));
}

/* Never a VM without this registry's label, even when the list command
 * prints every VM of the project. */
static void
test_foreign_untouched (Inv          *t,
                        gconstpointer data)
{
  const char *expected[] = { "vm-ours zone-a", NULL };
  const char *dead = "0dead000-0000-4000-8000-000000000000";
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;

  /* No label at all; another registry's, for a dead session; ours, but no
   * session label; ours, for a dead session: only the last is an orphan. */
  fake_cloud_add (&t->fc, "vm-plain", "zone-a", NULL, 7200);
  fake_cloud_add (&t->fc, "vm-other", "zone-a", labels_for (dead, "files-0123456789abcdef"), 7200);
  fake_cloud_add (&t->fc, "vm-nosession", "zone-a", labels_for (NULL, NULL), 7200);
  fake_cloud_add (&t->fc, "vm-ours", "zone-a", labels_for (dead, NULL), 7200);

  /* A list command that does not filter. */
  g_setenv ("GSM_PROVIDER_LIST_COMMAND", "gcloud compute instances list --format=json", TRUE);
  reaper = new_reaper ();
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_null (find_item (items, "vm-plain"));
  g_assert_null (find_item (items, "vm-other"));
  g_assert_cmpint (verdict_of (items, "vm-nosession"), ==, GSM_INVENTORY_VERDICT_UNVERIFIABLE);
  g_assert_cmpint (verdict_of (items, "vm-ours"), ==, GSM_INVENTORY_VERDICT_ORPHAN);
  fake_cloud_assert_deleted (&t->fc, expected);
  g_assert_true (fake_cloud_has (&t->fc, "vm-plain"));
  g_assert_true (fake_cloud_has (&t->fc, "vm-other"));
  g_assert_true (fake_cloud_has (&t->fc, "vm-nosession"));
  g_unsetenv ("GSM_PROVIDER_LIST_COMMAND");
  g_clear_pointer (&items, g_ptr_array_unref);

  /* The same with the preset's own filter. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_null (find_item (items, "vm-plain"));
  g_assert_null (find_item (items, "vm-other"));
  fake_cloud_assert_deleted (&t->fc, expected);
}

/* A labelled VM of a live session is never touched: registered, or
 * not recorded by its entry, or with its entry gone from the registry
 * (the session's lock is held). */
static void
test_live_never_touched (Inv          *t,
                         gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_CREATE", "gcloud", NULL };
  const char *none[] = { NULL };
  g_autoptr (Worker) a = NULL, b = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;

  a = worker_start_env ("vm-a", env);
  b = worker_start_env ("vm-b", env);
  /* Another VM of a's, which its entry does not record. */
  fake_cloud_add (&t->fc, "vm-a2", "zone-a", labels_for (a->session_id, NULL), 7200);
  fake_cloud_set_age (&t->fc, "vm-a", 7200);
  fake_cloud_set_age (&t->fc, "vm-b", 7200);
  /* b's entry is lost while b lives. */
  remove_entry (b->session_id);
  g_assert_null (lookup (b->session_id));

  reaper = new_reaper ();
  for (int pass = 0; pass < 2; pass++)
    {
      items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
      g_assert_cmpint (verdict_of (items, "vm-a"), ==, GSM_INVENTORY_VERDICT_REGISTERED);
      g_assert_cmpint (verdict_of (items, "vm-a2"), ==, GSM_INVENTORY_VERDICT_UNREGISTERED);
      g_assert_cmpint (verdict_of (items, "vm-b"), ==, GSM_INVENTORY_VERDICT_UNREGISTERED);
      g_assert_cmpstr (gsm_inventory_item_get_session_id (find_item (items, "vm-b")), ==,
                       b->session_id);
      g_clear_pointer (&items, g_ptr_array_unref);
    }
  {
    g_autoptr (GError) error = NULL;
    guint reaped = 99, failed = 99;

    g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
    g_assert_cmpuint (reaped + failed, ==, 0);
  }
  fake_cloud_assert_deleted (&t->fc, none);
  g_assert_true (fake_cloud_has (&t->fc, "vm-a"));
  g_assert_true (fake_cloud_has (&t->fc, "vm-a2"));
  g_assert_true (fake_cloud_has (&t->fc, "vm-b"));

  /* Once b is dead, its VM is an orphan like any other. */
  worker_kill (b);
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-b"), ==, GSM_INVENTORY_VERDICT_ORPHAN);
  {
    const char *expected[] = { "vm-b zone-a", NULL };

    fake_cloud_assert_deleted (&t->fc, expected);
  }
}

/* A VM deleted behind the registry's back: missing from one pass, then
 * gone, recorded in the entry; nothing is deleted. */
static void
test_gone (Inv          *t,
           gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_CREATE", "gcloud", NULL };
  const char *none[] = { NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autofree char *registry = registry_label ();
  JsonObject      *inv;

  w = worker_start_env ("vm-g", env);
  reaper = new_reaper ();

  /* A dry run records nothing. */
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_NONE);
  g_assert_cmpint (verdict_of (items, "vm-g"), ==, GSM_INVENTORY_VERDICT_REGISTERED);
  g_clear_pointer (&items, g_ptr_array_unref);
  entry = lookup (w->session_id);
  g_assert_null (member_of (entry, "inventory"));
  g_clear_object (&entry);

  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-g"), ==, GSM_INVENTORY_VERDICT_REGISTERED);
  g_clear_pointer (&items, g_ptr_array_unref);
  entry = lookup (w->session_id);
  inv = member_of (entry, "inventory");
  g_assert_nonnull (inv);
  g_assert_cmpstr (json_object_get_string_member (inv, "vm"), ==, "vm-g");
  g_assert_cmpstr (json_object_get_string_member (inv, "registry"), ==, registry);
  g_assert_false (json_object_has_member (inv, "missing"));
  g_clear_object (&entry);

  fake_cloud_remove (&t->fc, "vm-g");
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-g"), ==, GSM_INVENTORY_VERDICT_MISSING);
  g_clear_pointer (&items, g_ptr_array_unref);
  entry = lookup (w->session_id);
  inv = member_of (entry, "inventory");
  g_assert_cmpint (json_object_get_int_member (inv, "missing"), ==, 1);
  g_assert_false (json_object_has_member (inv, "gone_at"));
  g_clear_object (&entry);

  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-g"), ==, GSM_INVENTORY_VERDICT_GONE);
  g_clear_pointer (&items, g_ptr_array_unref);
  entry = lookup (w->session_id);
  inv = member_of (entry, "inventory");
  g_assert_cmpint (json_object_get_int_member (inv, "missing"), ==, 2);
  g_assert_cmpfloat (json_object_get_double_member (inv, "gone_at"), >, 0);
  /* Still the session's VM in its entry: marked, not forgotten. */
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-g");
  fake_cloud_assert_deleted (&t->fc, none);
}

/* AWS: reserved by name before run-instances gave an instance ID; the
 * inventory finds it by its Name tag, records the ID, and the reaper
 * terminates that ID. */
static void
test_aws_reserved_by_name (Inv          *t,
                           gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_RESERVE", "1", "GSM_TEST_WORKER_CREATE", "aws", NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GsmSession) entry = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *instance_id = NULL;
  g_autofree char *call = NULL;
  guint            reaped = 0, failed = 0;
  const char      *none[] = { NULL };

  w = worker_start_env ("web-1", env);
  worker_kill (w);
  instance_id = fake_cloud_id_of (&t->fc, "web-1");
  g_assert_true (g_str_has_prefix (instance_id, "i-"));

  reaper = new_reaper ();
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, instance_id), ==, GSM_INVENTORY_VERDICT_DEAD_OWNER);
  fake_cloud_assert_deleted (&t->fc, none);
  entry = lookup (w->session_id);
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "web-1");
  g_assert_cmpstr (json_object_get_string_member (member_of (entry, "inventory"), "id"), ==,
                   instance_id);

  g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (reaped, ==, 1);
  call = g_strdup_printf ("%s -", instance_id);
  {
    const char *expected[] = { call, NULL };

    fake_cloud_assert_deleted (&t->fc, expected);
  }
  g_assert_false (fake_cloud_has (&t->fc, instance_id));
  g_assert_null (lookup (w->session_id));
}

/* Azure: the same crash, found and deleted with az. */
static void
test_az_crash (Inv          *t,
               gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_CREATE", "az", "GSM_TEST_WORKER_SKIP_REGISTER", "1", NULL };
  const char *expected[] = { "vm-az zone-a", NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;

  w = worker_start_env ("vm-az", env);
  worker_kill (w);
  fake_cloud_set_age (&t->fc, "vm-az", 3600);
  reaper = new_reaper ();
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-az"), ==, GSM_INVENTORY_VERDICT_ORPHAN);
  fake_cloud_assert_deleted (&t->fc, expected);
  g_assert_false (fake_cloud_has (&t->fc, "vm-az"));
}

/* A failed deletion of an orphan: recorded, retried after the backoff;
 * the VM is never forgotten, even though no session recorded it. */
static void
test_orphan_delete_fails (Inv          *t,
                          gconstpointer data)
{
  const char *dead = "0dead000-0000-4000-8000-000000000000";
  const char *once[] = { "vm-o zone-a", NULL };
  const char *twice[] = { "vm-o zone-a", "vm-o zone-a", NULL };
  g_autoptr (GsmReaper) reaper = NULL;
  g_autoptr (GPtrArray) items = NULL;
  g_autoptr (GsmSession) entry = NULL;

  fake_cloud_add (&t->fc, "vm-o", "zone-a", labels_for (dead, NULL), 3600);
  fake_cloud_set_mode (&t->fc, "denied");

  reaper = new_reaper ();
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_nonnull (strstr (gsm_inventory_item_get_reason (find_item (items, "vm-o")), "failed"));
  fake_cloud_assert_deleted (&t->fc, once);
  /* In the registry now, as a stale entry of the dead session. */
  entry = lookup (dead);
  g_assert_nonnull (entry);
  g_assert_cmpstr (gsm_session_get_status (entry), ==, "stale");
  g_assert_cmpstr (gsm_session_get_vm_id (entry), ==, "vm-o");
  g_assert_nonnull (member_of (entry, "adopted"));
  g_assert_nonnull (member_of (entry, "reap_attempts"));
  g_clear_pointer (&items, g_ptr_array_unref);

  /* The next pass: the reaper's (it is recorded), and a plain reap
   * retries it once the backoff (0 here) is over. */
  fake_cloud_set_mode (&t->fc, "ok");
  items = reconcile (reaper, GSM_RECONCILE_FLAGS_APPLY);
  g_assert_cmpint (verdict_of (items, "vm-o"), ==, GSM_INVENTORY_VERDICT_DEAD_OWNER);
  {
    g_autoptr (GError) error = NULL;
    guint reaped = 0, failed = 0;

    g_assert_true (gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error));
    g_assert_cmpuint (reaped, ==, 1);
  }
  fake_cloud_assert_deleted (&t->fc, twice);
  g_assert_false (fake_cloud_has (&t->fc, "vm-o"));
  g_clear_object (&entry);
  g_assert_null (lookup (dead));
}

/* gsmctl reconcile: a dry run by default, --yes to act, --json. */
static void
test_gsmctl_reconcile (Inv          *t,
                       gconstpointer data)
{
  const char *env[] = { "GSM_TEST_WORKER_CREATE", "gcloud", "GSM_TEST_WORKER_SKIP_REGISTER", "1", NULL };
  const char *none[] = { NULL };
  const char *expected[] = { "vm-c zone-a", NULL };
  g_autoptr (Worker) w = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *out = NULL;
  JsonArray       *array;

  w = worker_start_env ("vm-c", env);
  worker_kill (w);
  fake_cloud_set_age (&t->fc, "vm-c", 3600);

  g_assert_cmpint (run_gsmctl (&out, NULL, "reconcile", NULL), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "orphan"));
  g_assert_nonnull (strstr (out, "vm-c"));
  g_assert_nonnull (strstr (out, "Dry run"));
  g_clear_pointer (&out, g_free);
  fake_cloud_assert_deleted (&t->fc, none);

  g_assert_cmpint (run_gsmctl (&out, NULL, "reconcile", "--json", NULL), ==, 0);
  g_assert_true (json_parser_load_from_data (parser, out, -1, NULL));
  array = json_node_get_array (json_parser_get_root (parser));
  g_assert_cmpuint (json_array_get_length (array), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, 0),
                                                  "verdict"),
                   ==, "orphan");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, 0),
                                                  "session"),
                   ==, w->session_id);
  g_clear_pointer (&out, g_free);
  fake_cloud_assert_deleted (&t->fc, none);

  g_assert_cmpint (run_gsmctl (&out, NULL, "reconcile", "--yes", NULL), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "deleted vm-c"));
  g_clear_pointer (&out, g_free);
  fake_cloud_assert_deleted (&t->fc, expected);

  /* A provider that cannot list: a clear error. */
  {
    const char *no_list[] = { "GSM_PROVIDER_COMMAND", t->f.command, NULL };

    g_assert_cmpint (run_gsmctl (&out, no_list, "reconcile", NULL), ==, 1);
  }
}

/* [reaper] auto=true: a new session deletes this host's dead sessions'
 * VMs (here the fixture's fake provider), in the background. */
static void
test_reap_at_start (Fixture      *f,
                    gconstpointer data)
{
  g_autofree char *config = g_build_filename (f->root, "config.ini", NULL);
  g_autoptr (Worker) dead = NULL, starter = NULL;

  dead = worker_start_orphan (f, "vm-old");
  cloud_add_vm (f, "vm-new");
  g_assert_true (g_file_set_contents (config, "[reaper]\nauto=true\n", -1, NULL));
  g_setenv ("GSM_CONFIG_FILE", config, TRUE);

  starter = worker_start ("vm-new");
  cloud_wait_for (f, "deleted", "vm-old");
  g_assert_false (cloud_has_vm (f, "vm-old"));
  g_assert_true (cloud_has_vm (f, "vm-new"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-old"), ==, 1);
  g_assert_cmpuint (cloud_count (f, "call", "vm-new"), ==, 0);
}

static void
reaper_tear_down (Fixture      *f,
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

#define ADD(path, func, preset) \
  g_test_add (path, Inv, preset, inv_set_up, func, inv_tear_down)
  ADD ("/inventory/labels", test_labels, "gcloud");
  ADD ("/inventory/preset/gcloud", test_preset_gcloud, "gcloud");
  ADD ("/inventory/preset/aws", test_preset_aws, "aws");
  ADD ("/inventory/preset/az", test_preset_az, "az");
  ADD ("/inventory/preset/config", test_preset_config, "gcloud");
  ADD ("/inventory/error/line", test_error_line, "gcloud");
  ADD ("/inventory/error/empty-output", test_empty_output, "gcloud");
  ADD ("/inventory/error/kept-whole", test_error_kept_whole, "gcloud");
  ADD ("/inventory/reconcile/crash-before-register", test_crash_before_register, "gcloud");
  ADD ("/inventory/reconcile/crash-before-confirm", test_crash_before_confirm, "gcloud");
  ADD ("/inventory/reconcile/foreign-untouched", test_foreign_untouched, "gcloud");
  ADD ("/inventory/reconcile/live-never-touched", test_live_never_touched, "gcloud");
  ADD ("/inventory/reconcile/gone", test_gone, "gcloud");
  ADD ("/inventory/reconcile/aws-reserved-by-name", test_aws_reserved_by_name, "aws");
  ADD ("/inventory/reconcile/az-crash", test_az_crash, "az");
  ADD ("/inventory/reconcile/orphan-delete-fails", test_orphan_delete_fails, "gcloud");
  ADD ("/inventory/gsmctl-reconcile", test_gsmctl_reconcile, "gcloud");
#undef ADD
  g_test_add ("/inventory/reap-at-start", Fixture, NULL, fixture_set_up, test_reap_at_start,
              reaper_tear_down);

  return g_test_run ();
}
