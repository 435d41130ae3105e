/* gsm-test-installed.c: where an installed test finds the programs it runs
 *
 * Linked into every test that is also an installed test
 * (-Dinstalled_tests=true): before main(), each of the variables through
 * which `meson test` names a program of the build is set to the installed
 * program, unless it is already set. So an installed test runs with no
 * environment variable set (gnome-desktop-testing-runner gsm-session-1.0),
 * and the same binary, in the build tree, runs what meson names.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <stdlib.h>

__attribute__ ((constructor)) static void
gsm_test_installed_defaults (void)
{
  setenv ("GSM_TEST_WORKER", GSM_INSTALLED_TEST_DIR "/gsm-test-worker", 0);
  setenv ("GSMCTL", GSM_INSTALLED_BINDIR "/gsmctl", 0);
  setenv ("GSMD", GSM_INSTALLED_BINDIR "/gsmd", 0);
  setenv ("GSM_PROVIDER_EXEC", GSM_INSTALLED_LIBEXECDIR "/gsm-provider-exec", 0);
}
