/* test-provider.c: GsmProvider runs a command template, never a shell
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <gsm.h>

#include "gsm-provider-private.h"
#include "reaper-test-util.h"

static GsmProvider *
fake_provider (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  GsmProvider *provider = gsm_provider_new_default (&error);

  g_assert_no_error (error);
  g_assert_nonnull (provider);
  return provider;
}

static void
test_default_is_gcloud (Fixture      *f,
                        gconstpointer data)
{
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) argv = NULL;
  const char *expected[] = { "gcloud", "compute", "instances", "delete", "vm-1", "--zone",
                             "us-east1-b", "--quiet", NULL };

  g_unsetenv ("GSM_PROVIDER_COMMAND");
  g_unsetenv ("GSM_PROVIDER_TIMEOUT");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");
  provider = gsm_provider_new_default (&error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_provider_get_name (provider), ==, "gcloud");
  g_assert_cmpfloat (gsm_provider_get_timeout (provider), ==, 300);
  g_assert_cmpstr (gsm_provider_get_not_found_pattern (provider), ==, "was not found");

  argv = gsm_provider_expand (provider, "vm-1", "us-east1-b", "s", &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (argv, expected);
}

static void
test_key_file_and_environment (Fixture      *f,
                               gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->root, "config.ini", NULL);
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) argv = NULL;
  const char *config =
      "[reaper]\nprovider=mycloud\n\n"
      "[provider mycloud]\n"
      "command=mycloud vm delete \"--zone={zone}\" {vm_id} --label 'owner {session_id}'\n"
      "timeout=42\nnot-found-exit-code=3\nnot-found-pattern=no such VM\n";
  const char *expected[] = { "mycloud", "vm", "delete", "--zone=z1", "vm;rm -rf /", "--label",
                             "owner s-1", NULL };

  g_assert_true (g_file_set_contents (path, config, -1, NULL));
  g_setenv ("GSM_CONFIG_FILE", path, TRUE);
  g_unsetenv ("GSM_PROVIDER_COMMAND");
  g_unsetenv ("GSM_PROVIDER_TIMEOUT");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");

  provider = gsm_provider_new_default (&error);
  g_assert_no_error (error);
  g_assert_cmpstr (gsm_provider_get_name (provider), ==, "mycloud");
  g_assert_cmpfloat (gsm_provider_get_timeout (provider), ==, 42);
  g_assert_cmpint (gsm_provider_get_not_found_exit_code (provider), ==, 3);
  g_assert_cmpstr (gsm_provider_get_not_found_pattern (provider), ==, "no such VM");
  /* Shell metacharacters in a value stay one argument: no shell runs it. */
  argv = gsm_provider_expand (provider, "vm;rm -rf /", "z1", "s-1", &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (argv, expected);
  g_clear_object (&provider);

  /* The environment overrides the file. */
  g_setenv ("GSM_PROVIDER_TIMEOUT", "7.5", TRUE);
  g_setenv ("GSM_PROVIDER_NOT_FOUND_EXIT_CODE", "-1", TRUE);
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");
  provider = gsm_provider_new_default (&error);
  g_assert_no_error (error);
  g_assert_cmpfloat (gsm_provider_get_timeout (provider), ==, 7.5);
  g_assert_cmpint (gsm_provider_get_not_found_exit_code (provider), ==, -1);
  g_clear_object (&provider);

  /* A provider that the file does not describe is an error naming it. */
  g_setenv ("GSM_PROVIDER", "othercloud", TRUE);
  provider = gsm_provider_new_default (&error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "provider othercloud"));
  g_assert_null (provider);
  g_unsetenv ("GSM_PROVIDER");
  g_clear_error (&error);

  g_setenv ("GSM_PROVIDER_TIMEOUT", "soon", TRUE);
  provider = gsm_provider_new_default (&error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "soon"));
  g_unsetenv ("GSM_PROVIDER_TIMEOUT");
}

static void
test_bad_templates (Fixture      *f,
                    gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmProvider) provider = NULL;
  const char *unknown[] = { "tool", "delete", "{vm}", NULL };
  const char *no_vm[] = { "tool", "delete", "{zone}", NULL };
  const char *in_program[] = { "{vm_id}", NULL };
  const char *braces[] = { "tool", "--json={\"a\": 1}", "{vm_id}", NULL };
  g_auto (GStrv) argv = NULL;

  g_assert_null (gsm_provider_new ("t", unknown, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "{vm}"));
  g_clear_error (&error);
  g_assert_null (gsm_provider_new ("t", no_vm, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_null (gsm_provider_new ("t", in_program, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  provider = gsm_provider_new ("t", braces, &error);
  g_assert_no_error (error);
  /* A value that would read as an option is refused. */
  argv = gsm_provider_expand (provider, "--delete-all", "z", NULL, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_assert_null (argv);
  g_clear_error (&error);
  argv = gsm_provider_expand (provider, "vm\n1", "z", NULL, &error);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  argv = gsm_provider_expand (provider, "vm-1", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (argv[1], ==, "--json={\"a\": 1}");
}

static void
test_delete (Fixture      *f,
             gconstpointer data)
{
  g_autoptr (GsmProvider) provider = fake_provider (f);
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;

  cloud_add_vm (f, "vm-1");
  cloud_add_vm (f, "vm-2");
  g_assert_true (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_DELETED);
  g_assert_cmpint (gsm_provider_result_get_exit_status (result), ==, 0);
  g_assert_cmpstr (gsm_provider_result_get_argv (result)[3], ==, "vm-1");
  g_assert_cmpstr (gsm_provider_result_get_argv (result)[5], ==, "s-1");
  g_assert_nonnull (strstr (gsm_provider_result_get_stdout (result), "Deleted [vm-1]"));
  g_assert_false (cloud_has_vm (f, "vm-1"));
  g_assert_true (cloud_has_vm (f, "vm-2"));
  g_assert_cmpuint (cloud_count (f, "call", "vm-1"), ==, 1);
  g_clear_object (&result);

  /* Already gone: reported "not found", which counts as success. */
  g_assert_true (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_NOT_FOUND);
  g_assert_cmpint (gsm_provider_result_get_exit_status (result), ==, 1);
  g_clear_object (&result);

  /* Without a not-found rule, the same answer is a failure. */
  g_assert_true (gsm_provider_set_not_found_pattern (provider, NULL, NULL));
  g_assert_false (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_FAILED);
  g_clear_error (&error);
  g_clear_object (&result);

  /* A not-found exit code works too. */
  gsm_provider_set_not_found_exit_code (provider, 1);
  g_assert_true (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_NOT_FOUND);
}

static void
test_failure_is_captured (Fixture      *f,
                          gconstpointer data)
{
  g_autoptr (GsmProvider) provider = fake_provider (f);
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;

  cloud_add_vm (f, "vm-1");
  cloud_set_mode (f, "fail");
  g_assert_false (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
  /* The message names the provider, the program and the VM, and says why. */
  g_assert_nonnull (strstr (error->message, "vm-1"));
  g_assert_nonnull (strstr (error->message, "/bin/sh"));
  g_assert_nonnull (strstr (error->message, "quota exceeded"));
  g_assert_cmpint (gsm_provider_result_get_exit_status (result), ==, 1);
  g_assert_nonnull (strstr (gsm_provider_result_get_stderr (result), "quota exceeded"));
  g_assert_nonnull (strstr (gsm_provider_result_get_stdout (result), "Deleting instance vm-1"));
  g_assert_true (cloud_has_vm (f, "vm-1"));
  g_clear_object (&result);
  g_clear_error (&error);

  /* A program that does not exist. */
  {
    const char *argv[] = { "/nonexistent/cloud-tool", "{vm_id}", NULL };
    g_autoptr (GsmProvider) missing = gsm_provider_new ("missing", argv, NULL);

    g_assert_false (gsm_provider_delete_vm_sync (missing, "vm-1", NULL, NULL, &result, NULL, &error));
    g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED);
    g_assert_nonnull (strstr (error->message, "/nonexistent/cloud-tool"));
    g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_FAILED);
  }
}

static void
assert_group_gone (int pgid)
{
  /* The killed members are reaped by their parents: give them time. */
  for (int i = 0; i < 500 && kill (-pgid, 0) == 0; i++)
    g_usleep (10000);
  g_assert_cmpint (kill (-pgid, 0), ==, -1);
  g_assert_cmpint (errno, ==, ESRCH);
}

static int
provider_pid (Fixture    *f,
              const char *vm_id)
{
  g_autofree char *path = g_build_filename (f->cloud, "calls.log", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *prefix = g_strdup_printf ("call %s ", vm_id);
  g_autofree char *first = NULL;
  const char      *line;

  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  line = strstr (contents, prefix);
  g_assert_nonnull (line);
  first = g_strndup (line, strchr (line, '\n') - line);
  return atoi (strrchr (first, ' ') + 1);
}

static void
test_timeout_kills_the_group (Fixture      *f,
                              gconstpointer data)
{
  g_autoptr (GsmProvider) provider = fake_provider (f);
  g_autoptr (GsmProviderResult) result = NULL;
  g_autoptr (GError) error = NULL;

  cloud_add_vm (f, "vm-1");
  cloud_set_mode (f, "hang");
  gsm_provider_set_timeout (provider, 0.5);
  g_assert_false (gsm_provider_delete_vm_sync (provider, "vm-1", "zone-a", "s-1", &result, NULL, &error));
  g_assert_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "vm-1"));
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_TIMED_OUT);
  g_assert_cmpint (gsm_provider_result_get_term_signal (result), ==, SIGKILL);
  /* Generous bound: the hanging command would take 60 s. */
  g_assert_cmpfloat (gsm_provider_result_get_duration (result), <, 15);
  /* The shell and the sleep it started are both gone. */
  assert_group_gone (provider_pid (f, "vm-1"));
  g_assert_true (cloud_has_vm (f, "vm-1"));
}

static gpointer
cancel_when_called (gpointer data)
{
  Fixture      *f = ((gpointer *) data)[0];
  GCancellable *cancellable = ((gpointer *) data)[1];

  cloud_wait_for_call (f, "vm-1");
  g_cancellable_cancel (cancellable);
  return NULL;
}

static void
delete_done_cb (GObject      *object,
                GAsyncResult *res,
                gpointer      data)
{
  gpointer          *out = data;
  GError            *error = NULL;
  GsmProviderResult *result = NULL;

  g_assert_false (gsm_provider_delete_vm_finish (GSM_PROVIDER (object), res, &result, &error));
  out[0] = error;
  out[1] = result;
}

static void
test_async_cancel (Fixture      *f,
                   gconstpointer data)
{
  g_autoptr (GsmProvider) provider = fake_provider (f);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  gpointer out[2] = { NULL, NULL };
  gpointer args[2] = { f, cancellable };
  g_autoptr (GThread) thread = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmProviderResult) result = NULL;

  cloud_add_vm (f, "vm-1");
  cloud_set_mode (f, "hang");
  gsm_provider_delete_vm (provider, "vm-1", "zone-a", "s-1", cancellable, delete_done_cb, out);
  thread = g_thread_new ("canceller", cancel_when_called, args);
  while (out[0] == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_thread_join (g_steal_pointer (&thread));

  error = out[0];
  result = out[1];
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (gsm_provider_result_get_outcome (result), ==, GSM_PROVIDER_OUTCOME_CANCELLED);
  assert_group_gone (provider_pid (f, "vm-1"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/provider/default-is-gcloud", test_default_is_gcloud);
  ADD ("/provider/key-file-and-environment", test_key_file_and_environment);
  ADD ("/provider/bad-templates", test_bad_templates);
  ADD ("/provider/delete", test_delete);
  ADD ("/provider/failure-is-captured", test_failure_is_captured);
  ADD ("/provider/timeout-kills-the-group", test_timeout_kills_the_group);
  ADD ("/provider/async-cancel", test_async_cancel);
#undef ADD

  return g_test_run ();
}
