/* replay-main.c: runs a fuzz target over its corpus, as a unit test
 *
 *   fuzz-replay-TARGET DIR...   one TAP test per file of each DIR
 *
 * Every file that once crashed a target stays in its corpus, so this is
 * the regression test of every crash found. Also runs without clang.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-common.h"

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(char **) a, *(char **) b);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      GDir       *dir = g_dir_open (argv[i], 0, &error);
      const char *name;

      if (dir == NULL)
        {
          printf ("Bail out! %s\n", error->message);
          return 1;
        }
      while ((name = g_dir_read_name (dir)) != NULL)
        g_ptr_array_add (files, g_build_filename (argv[i], name, NULL));
      g_dir_close (dir);
    }
  g_ptr_array_sort (files, compare_names);

  if (files->len == 0)
    {
      printf ("Bail out! empty corpus\n");
      return 1;
    }

  printf ("1..%u\n", files->len);
  fflush (stdout);
  for (guint i = 0; i < files->len; i++)
    {
      const char *path = files->pdata[i];
      g_autoptr (GError) error = NULL;
      g_autofree char *contents = NULL;
      gsize            len;

      if (!g_file_get_contents (path, &contents, &len, &error))
        {
          printf ("not ok %u %s # %s\n", i + 1, path, error->message);
          return 1;
        }
      /* A crash aborts the whole run, which the harness reports. */
      LLVMFuzzerTestOneInput ((const uint8_t *) contents, len);
      printf ("ok %u %s\n", i + 1, path);
      fflush (stdout);
    }

  return 0;
}
