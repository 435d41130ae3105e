/* fuzz-common.h: shared by the fuzz targets
 *
 * Every target defines LLVMFuzzerTestOneInput(). Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer target; built with replay-main.c it
 * is a unit test that runs each file of its corpus once.
 *
 * A target that reads files works in one private temporary directory,
 * created on the first input and removed at exit. Library warnings (a
 * corrupt file is expected here) are dropped; a critical or an error is a
 * bug and aborts, so the fuzzer reports it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* A broken invariant: abort so that libFuzzer (or the replay) reports it. */
#define FUZZ_CHECK(cond)                                                  \
  G_STMT_START                                                            \
  {                                                                       \
    if (G_UNLIKELY (!(cond)))                                             \
      {                                                                   \
        fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                 #cond);                                                  \
        abort ();                                                         \
      }                                                                   \
  }                                                                       \
  G_STMT_END

G_GNUC_UNUSED static GLogWriterOutput
fuzz_log_writer (GLogLevelFlags   log_level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  if (log_level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    {
      for (gsize i = 0; i < n_fields; i++)
        if (g_str_equal (fields[i].key, "MESSAGE"))
          fprintf (stderr, "critical: %s\n", (const char *) fields[i].value);
      abort ();
    }
  return G_LOG_WRITER_HANDLED;
}

static char *fuzz_dir;

G_GNUC_UNUSED static void
fuzz_remove_dir (void)
{
  GDir       *dir;
  const char *name;

  if (fuzz_dir == NULL)
    return;
  dir = g_dir_open (fuzz_dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fuzz_dir, name, NULL);
      g_unlink (path);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (fuzz_dir);
  g_clear_pointer (&fuzz_dir, g_free);
}

G_GNUC_UNUSED static void
fuzz_init (void)
{
  static gboolean done;

  if (done)
    return;
  done = TRUE;
  g_log_set_writer_func (fuzz_log_writer, NULL, NULL);
  g_setenv ("GSM_LOCK_TIMEOUT", "5", TRUE);
}

/* The private directory, created on first use (mode 0700). */
G_GNUC_UNUSED static const char *
fuzz_get_dir (void)
{
  if (fuzz_dir == NULL)
    {
      g_autoptr (GError) error = NULL;

      fuzz_dir = g_dir_make_tmp ("gsm-fuzz-XXXXXX", &error);
      if (fuzz_dir == NULL)
        {
          fprintf (stderr, "cannot make a temporary directory: %s\n", error->message);
          abort ();
        }
      atexit (fuzz_remove_dir);
    }
  return fuzz_dir;
}

/* Removes the files of the private directory whose names contain
 * @needle (every file for ""). */
G_GNUC_UNUSED static void
fuzz_remove_files (const char *needle)
{
  GDir       *dir = g_dir_open (fuzz_get_dir (), 0, NULL);
  const char *name;

  FUZZ_CHECK (dir != NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (strstr (name, needle) == NULL)
        continue;

      g_autofree char *path = g_build_filename (fuzz_dir, name, NULL);
      g_unlink (path);
    }
  g_dir_close (dir);
}

/* How many names in the private directory contain @needle. */
G_GNUC_UNUSED static guint
fuzz_count_files (const char *needle)
{
  GDir       *dir = g_dir_open (fuzz_get_dir (), 0, NULL);
  const char *name;
  guint       n = 0;

  FUZZ_CHECK (dir != NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (strstr (name, needle) != NULL)
      n++;
  g_dir_close (dir);
  return n;
}

/* Writes raw bytes to a file of the private directory, as any process
 * (or an attacker with the user's rights) could. */
G_GNUC_UNUSED static void
fuzz_write_file (const char    *name,
                 const uint8_t *data,
                 size_t         size)
{
  g_autofree char *path = g_build_filename (fuzz_get_dir (), name, NULL);
  g_autoptr (GError) error = NULL;

  if (!g_file_set_contents (path, (const char *) data, (gssize) size, &error))
    {
      fprintf (stderr, "cannot write %s: %s\n", path, error->message);
      abort ();
    }
}

G_GNUC_UNUSED static gboolean
fuzz_file_equals (const char    *name,
                  const uint8_t *data,
                  size_t         size)
{
  g_autofree char *path = g_build_filename (fuzz_get_dir (), name, NULL);
  g_autofree char *contents = NULL;
  gsize            len;

  if (!g_file_get_contents (path, &contents, &len, NULL))
    return FALSE;
  return len == size && memcmp (contents, data, size) == 0;
}
