/* fuzz-config.c: the configuration file (GKeyFile)
 *
 * The input is the configuration file ($GSM_CONFIG_FILE); the provider is
 * built from it as the reaper builds it, its command is expanded for a
 * VM, and the durations are read.
 *
 * Checked: nothing crashes or leaks; a provider that was built has a
 * command whose expansion starts with its program and never puts a value
 * starting with “-” where a placeholder was.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"

#include <gsm.h>

#include "gsm-config-private.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GsmProvider) provider = NULL;
  g_autoptr (GKeyFile) key_file = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_auto (GStrv) argv = NULL;

  fuzz_init ();
  fuzz_write_file ("config.ini", data, size);
  path = g_build_filename (fuzz_get_dir (), "config.ini", NULL);
  g_setenv ("GSM_CONFIG_FILE", path, TRUE);
  g_unsetenv ("GSM_PROVIDER");
  g_unsetenv ("GSM_PROVIDER_COMMAND");
  g_unsetenv ("GSM_PROVIDER_TIMEOUT");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_EXIT_CODE");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");

  key_file = _gsm_config_load (&error);
  if (key_file == NULL)
    {
      FUZZ_CHECK (error != NULL);
      return 0;
    }
  (void) _gsm_config_get_seconds (key_file, "reaper", "interval", "GSM_FUZZ_UNSET", 1);
  (void) _gsm_config_get_seconds (key_file, "reaper", "grace", "GSM_FUZZ_UNSET", 1);

  provider = gsm_provider_new_default (&error);
  if (provider == NULL)
    {
      FUZZ_CHECK (error != NULL);
      return 0;
    }

  FUZZ_CHECK (gsm_provider_get_name (provider) != NULL);
  FUZZ_CHECK (gsm_provider_get_command (provider) != NULL);
  FUZZ_CHECK (gsm_provider_get_command (provider)[0] != NULL);
  (void) gsm_provider_get_timeout (provider);
  (void) gsm_provider_get_not_found_exit_code (provider);
  (void) gsm_provider_get_not_found_pattern (provider);

  argv = gsm_provider_expand (provider, "vm-fuzz-1", "zone-a",
                              "3f2504e0-4f89-41d3-9a0c-0305e82c3301", &error);
  if (argv != NULL)
    FUZZ_CHECK (g_str_equal (argv[0], gsm_provider_get_command (provider)[0]));
  g_clear_error (&error);

  /* A value that starts with “-” would become an option. */
  g_clear_pointer (&argv, g_strfreev);
  argv = gsm_provider_expand (provider, "--delete-everything", "zone-a", NULL, &error);
  if (argv != NULL)
    for (guint i = 1; argv[i] != NULL; i++)
      FUZZ_CHECK (strstr (argv[i], "--delete-everything") == NULL ||
                  strstr (gsm_provider_get_command (provider)[i], "--delete-everything") != NULL);

  return 0;
}
