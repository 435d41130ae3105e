/* gsm-bench.c: how close registry operations come to the I/O floor
 *
 * Prints each figure with the floor it should be compared with: a raw
 * write (temp file + rename) and a raw durable replace (plus fdatasync and
 * a directory fsync) of the same bytes, and json-glib's own parse of the
 * same file. Medians; run it on an idle machine.
 *
 *   gsm-bench [--json] [--quick] [--etcd etcd://HOST:PORT]
 *
 * With --etcd, the same cycle and listing against that etcd (under a
 * prefix of its own, removed afterwards), beside one raw request of the
 * JSON gateway.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "gsm-etcd-registry-private.h"
#include "gsm-session-manager-private.h"
#include "gsm.h"

#include <libsoup/soup.h>

static gboolean opt_json = FALSE;
static gboolean opt_quick = FALSE;
static char    *opt_child = NULL;
static char    *opt_etcd = NULL;
static char    *opt_only = NULL;
static int      opt_child_count = 0;

static GPtrArray *rows; /* Row* */

typedef struct
{
  char  *name;
  double value;
  char  *unit;
  char  *floor_name;
  double floor;
  char  *goal;
} Row;

static gboolean opt_cpu = FALSE;

/* Wall time, or with --cpu-time the CPU time of this thread (in-process
 * figures on a busy machine). */
static double
now_us (void)
{
  struct timespec ts;

  clock_gettime (opt_cpu && opt_child == NULL ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
percentile (GArray *samples, double p)
{
  guint i;

  g_array_sort (samples, cmp_double);
  i = (guint) (p * (samples->len - 1) + 0.5);
  return g_array_index (samples, double, MIN (i, samples->len - 1));
}

/* Whether @value meets @goal: "<= 1.5x floor", ">= 10x floor", "<= 2000 us"
 * or "0" (exactly). */
static const char *
goal_verdict (const char *goal, double value, double floor)
{
  gboolean at_most = g_str_has_prefix (goal, "<=");
  gboolean at_least = g_str_has_prefix (goal, ">=");
  char    *end = NULL;
  double   bound = g_ascii_strtod (goal + (at_most || at_least ? 2 : 0), &end);

  if (end != NULL && g_str_has_prefix (end, "x floor"))
    bound *= floor;
  if (at_most)
    return value <= bound ? "met" : "MISSED";
  if (at_least)
    return value >= bound ? "met" : "MISSED";
  return value == bound ? "met" : "MISSED";
}

static void
add_row (const char *name, double value, const char *unit, const char *floor_name, double floor, const char *goal)
{
  Row *r = g_new0 (Row, 1);

  r->name = g_strdup (name);
  r->value = value;
  r->unit = g_strdup (unit);
  r->floor_name = g_strdup (floor_name);
  r->floor = floor;
  r->goal = g_strdup (goal);
  g_ptr_array_add (rows, r);
  if (!opt_json)
    {
      printf ("%-58s %12.1f %-5s", name, value, unit);
      if (floor_name)
        printf ("  | %-36s %10.1f %s", floor_name, floor, unit);
      if (goal)
        printf ("  | goal %s: %s", goal, goal_verdict (goal, value, floor));
      printf ("\n");
      fflush (stdout);
    }
}

/* ---- synthetic registries -------------------------------------------- */

static char *
make_dir (void)
{
  GError *error = NULL;
  char   *dir = g_dir_make_tmp ("gsm-bench-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
remove_dir (const char *dir)
{
  GDir       *d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
    }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

/* N sessions of other hosts with the seed's fields (about 470 bytes each). */
static char *
registry_text (guint n, guint variant)
{
  GString *s = g_string_new ("{");
  double   now = g_get_real_time () / 1e6;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_uuid_string_random ();

      g_string_append_printf (s,
                              "%s\n  \"%s\": {\"session_id\": \"%s\", \"pid\": %u, \"hostname\": \"bench-host-%u.example.org\", "
                              "\"vm_id\": \"jarvis-auto-%u-%u\", \"zone\": \"us-central1-a\", \"components\": [\"voice\", \"vision\", \"ml\"], "
                              "\"metadata\": {\"trigger\": \"HIGH_RAM\", \"ram_percent\": 87.5}, \"created_at\": %.6f, "
                              "\"registered_at\": %.6f, \"status\": \"active\", \"start_time\": %u, "
                              "\"boot_id\": \"2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b\", \"format\": 1}",
                              i ? "," : "", id, id, 1000 + i, i % 50, i, variant, now - 60, now - 30, 100000 + i);
    }
  g_string_append (s, n ? "\n}\n" : "}\n");
  return g_string_free (s, FALSE);
}

static void
reset_manager (const char *dir, gboolean durable)
{
  _gsm_session_manager_reset_for_testing ();
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_DURABLE", durable ? "1" : "0", TRUE);
}

static GsmSessionManager *
fresh_manager (const char *dir, gboolean durable)
{
  reset_manager (dir, durable);
  return gsm_session_manager_get_default ();
}

static void
write_registry (const char *dir, const char *text)
{
  g_autofree char *path = g_build_filename (dir, "vm_registry.json", NULL);
  g_autofree char *tmp = g_build_filename (dir, "vm_registry.json.bench", NULL);

  g_assert_true (g_file_set_contents_full (tmp, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert_cmpint (g_rename (tmp, path), ==, 0);
}

/* The floor: what replacing the file costs with nothing else done. */
static double
raw_replace_once_us (int dirfd, const char *text, gsize len, gboolean durable, gboolean exchange)
{
  double t0 = now_us ();
  int    fd = openat (dirfd, "floor.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  g_assert_cmpint (write (fd, text, len), ==, (gssize) len);
  if (durable)
    fdatasync (fd);
  close (fd);
  if (durable || !exchange ||
      renameat2 (dirfd, "floor.json.tmp", dirfd, "floor.json", RENAME_EXCHANGE) != 0)
    renameat (dirfd, "floor.json.tmp", dirfd, "floor.json");
  else
    /* The cheapest atomic replace without fsync on ext4 (a rename over a
     * file starts a writeback there): what the library does. */
    unlinkat (dirfd, "floor.json.tmp", 0);
  if (durable)
    fsync (dirfd);

  return now_us () - t0;
}

static double
raw_replace_us (const char *dir, const char *text, gboolean durable, gboolean exchange, guint rounds)
{
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, sizeof (double));
  gsize len = strlen (text);
  int   dirfd = open (dir, O_RDONLY | O_DIRECTORY);

  for (guint i = 0; i < rounds; i++)
    {
      double t = raw_replace_once_us (dirfd, text, len, durable, exchange);

      g_array_append_val (samples, t);
    }
  unlinkat (dirfd, "floor.json", 0);
  close (dirfd);
  return percentile (samples, 0.5);
}

static double
json_glib_parse_us (const char *text, guint rounds)
{
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, sizeof (double));

  for (guint i = 0; i < rounds; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      double t0 = now_us ();

      g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
      double t = now_us () - t0;
      g_array_append_val (samples, t);
    }
  return percentile (samples, 0.5);
}

/* ---- figures ----------------------------------------------------------- */

/* Median of @rounds register+unregister cycles; with @text, also in
 * @floor the median of two raw replaces of @text with a new file each
 * (durable: fsync, rename, directory fsync), measured between the cycles
 * so that both see the file system in the same state (ext4's inode
 * allocation gets slower as deleted inodes pile up). */
static double
cycle_us (GsmSessionManager *m, guint rounds, const char *dir, const char *text, gboolean durable, double *floor)
{
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) floors = g_array_new (FALSE, FALSE, sizeof (double));
  gsize   len = text ? strlen (text) : 0;
  int     dirfd = dir ? open (dir, O_RDONLY | O_DIRECTORY) : -1;
  GError *error = NULL;

  for (guint i = 0; i < rounds; i++)
    {
      char   vm[64];
      double t0, t;

      g_snprintf (vm, sizeof vm, "bench-vm-%u", i);
      t0 = now_us ();
      if (!gsm_session_manager_register_vm_sync (m, vm, "us-central1-a", NULL, NULL, NULL, &error) ||
          !gsm_session_manager_unregister_vm_sync (m, NULL, &error))
        g_error ("cycle failed: %s", error->message);
      t = now_us () - t0;
      g_array_append_val (samples, t);

      if (dirfd >= 0)
        {
          t = raw_replace_once_us (dirfd, text, len, durable, TRUE) +
              raw_replace_once_us (dirfd, text, len, durable, TRUE);
          g_array_append_val (floors, t);
        }
    }
  if (dirfd >= 0)
    {
      unlinkat (dirfd, "floor.json", 0);
      close (dirfd);
      *floor = percentile (floors, 0.5);
    }
  return percentile (samples, 0.5);
}

/* The same cycle in the Python design gsm-session replaces, measured now
 * (tools/gsm-bench-seed.py), in a directory of its own holding @text. */
static double
seed_cycle_us (const char *text, guint rounds)
{
  g_autofree char *script = g_build_filename (g_getenv ("GSM_BENCH_SRCDIR") ? g_getenv ("GSM_BENCH_SRCDIR") : ".",
                                              "gsm-bench-seed.py", NULL);
  g_autofree char *dir = make_dir ();
  g_autofree char *count = g_strdup_printf ("%u", rounds);
  g_autofree char *out = NULL;
  const char      *argv[] = { "/usr/bin/python3", script, dir, count, NULL };
  g_autoptr (GSubprocess) p = NULL;
  double t = 0;

  write_registry (dir, text);
  p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, NULL);
  if (p != NULL && g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, NULL) &&
      g_subprocess_get_successful (p) && out != NULL)
    t = g_ascii_strtod (out, NULL);
  remove_dir (dir);
  return t;
}

static void
bench_cycles (void)
{
  const guint sizes[] = { 0, 100, 1000 };

  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      guint              n = sizes[k];
      g_autofree char   *dir = make_dir ();
      g_autofree char   *text = registry_text (n, 0);
      g_autofree char   *name = NULL;
      GsmSessionManager *m;
      double             floor, t, seed;
      guint              rounds = opt_quick ? 50 : (n >= 1000 ? 300 : 1000);

      write_registry (dir, text);
      m = fresh_manager (dir, FALSE);
      t = cycle_us (m, rounds, dir, text, FALSE, &floor);
      name = g_strdup_printf ("register+unregister, N=%u others, GSM_DURABLE=0", n);
      add_row (name, t, "us", "2 raw writes of new files, exchanged", floor, NULL);
      g_free (name);
      name = g_strdup_printf ("  2 raw writes renamed over the file (ext4 flushes), N=%u", n);
      add_row (name, 2 * raw_replace_us (dir, text, FALSE, FALSE, rounds), "us", NULL, 0, NULL);
      seed = seed_cycle_us (text, opt_quick ? 20 : (n >= 1000 ? 100 : 300));
      if (seed > 0)
        {
          g_free (name);
          name = g_strdup_printf ("  the Python design, same cycle, N=%u", n);
          add_row (name, seed, "us", "gsm-session's cycle above", t, n == 100 ? ">= 10x floor" : NULL);
        }

      /* Durable (the default). */
      m = fresh_manager (dir, TRUE);
      t = cycle_us (m, opt_quick ? 10 : 60, dir, text, TRUE, &floor);
      g_free (name);
      name = g_strdup_printf ("register+unregister, N=%u others, durable (default)", n);
      add_row (name, t, "us", "2 raw durable replaces", floor, "<= 1.5x floor");
      _gsm_session_manager_reset_for_testing ();
      remove_dir (dir);
    }
}

static void
bench_listing (void)
{
  const guint sizes[] = { 10, 100, 1000, 10000 };

  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      guint            n = sizes[k];
      g_autofree char *dir = make_dir ();
      g_autofree char *text = registry_text (n, 0);
      g_autofree char *name = NULL;
      g_autoptr (GArray) unchanged = g_array_new (FALSE, FALSE, sizeof (double));
      g_autoptr (GArray) changed = g_array_new (FALSE, FALSE, sizeof (double));
      guint              rounds = opt_quick ? 5 : (n >= 10000 ? 15 : n >= 1000 ? 50
                                                                               : 200);
      GsmSessionManager *m;
      GError            *error = NULL;
      double             parse;

      write_registry (dir, text);
      m = fresh_manager (dir, FALSE);

      for (guint i = 0; i < rounds; i++)
        {
          double      t0 = now_us ();
          GHashTable *t = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
          double      dt = now_us () - t0;

          g_assert_no_error (error);
          g_hash_table_unref (t);
          if (i > 0)
            g_array_append_val (unchanged, dt);
        }

      /* Another process rewrites every entry: nothing can be reused. */
      for (guint i = 0; i < rounds; i++)
        {
          g_autofree char *other = registry_text (n, i + 1);
          double           t0, dt;
          GHashTable      *t;

          write_registry (dir, other);
          t0 = now_us ();
          t = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
          dt = now_us () - t0;
          g_assert_no_error (error);
          g_hash_table_unref (t);
          g_array_append_val (changed, dt);
        }
      parse = json_glib_parse_us (text, rounds);

      name = g_strdup_printf ("get_all_active_sessions, N=%u, unchanged", n);
      add_row (name, percentile (unchanged, 0.5), "us", NULL, 0, n == 10000 ? "<= 2000 us" : NULL);
      g_free (name);
      name = g_strdup_printf ("get_all_active_sessions, N=%u, all rewritten", n);
      add_row (name, percentile (changed, 0.5), "us", "json-glib parse, same bytes", parse,
               NULL);
      _gsm_session_manager_reset_for_testing ();
      remove_dir (dir);
    }
}

/* ---- the reaper ---------------------------------------------------------- */

/* @n sessions: @n_orphans of them this host's from before a reboot (dead,
 * found so, each owning a VM), the others on other hosts. */
static char *
reaper_registry_text (guint n, guint n_orphans, const char *hostname)
{
  GString *s = g_string_new ("{");
  double   now = g_get_real_time () / 1e6;
  guint    every = n_orphans ? n / n_orphans : 0;

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *id = g_uuid_string_random ();
      g_autofree char *host = NULL;
      g_autofree char *stale = NULL;
      gboolean         orphan = every && i % every == 0 && i / every < n_orphans;

      host = orphan ? g_strdup (hostname) : g_strdup_printf ("bench-host-%u.example.org", i % 50);
      stale = orphan ? g_strdup_printf ("\"stale_since\": %.6f, ", now - 600) : g_strdup ("");
      g_string_append_printf (s,
                              "%s\n  \"%s\": {\"session_id\": \"%s\", \"pid\": %u, \"hostname\": \"%s\", "
                              "\"vm_id\": \"jarvis-auto-%u\", \"zone\": \"us-central1-a\", \"components\": [\"voice\", \"vision\", \"ml\"], "
                              "\"metadata\": {\"trigger\": \"HIGH_RAM\", \"ram_percent\": 87.5}, \"created_at\": %.6f, "
                              "\"registered_at\": %.6f, \"status\": \"%s\", %s\"start_time\": %u, "
                              "\"boot_id\": \"2f1d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b\", \"format\": 1}",
                              i ? "," : "", id, id, 1000 + i % 30000, host, i, now - 3600, now - 3000,
                              orphan ? "stale" : "active", stale, 100000 + i);
    }
  g_string_append (s, n ? "\n}\n" : "}\n");
  return g_string_free (s, FALSE);
}

/* The floor of a --yes pass's commands: @n runs of @argv, @width at a
 * time, with posix_spawn() and nothing else. */
static double
raw_spawns_us (const char *const *argv, guint n, guint width)
{
  extern char **environ;
  guint         started = 0, running = 0;
  double        t0 = now_us ();

  while (started < n || running > 0)
    {
      if (started < n && running < width)
        {
          pid_t pid;

          g_assert_cmpint (posix_spawn (&pid, argv[0], NULL, NULL, (char **) argv, environ), ==, 0);
          started++;
          running++;
          continue;
        }
      if (waitpid (-1, NULL, 0) > 0)
        running--;
    }
  return now_us () - t0;
}

static void
bench_reaper (void)
{
  const guint      n = opt_quick ? 5000 : 50000, n_orphans = n / 10;
  const char      *command[] = { "/bin/true", "{vm_id}", "{zone}", NULL };
  const char      *floor_argv[] = { "/bin/true", "jarvis-auto-0", "us-central1-a", NULL };
  g_autofree char *dir = make_dir ();
  g_autofree char *text = NULL;
  g_autofree char *name = NULL;
  g_autoptr (GArray) dry = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) yes = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) floors = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) spawns = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GsmProvider) provider = gsm_provider_new ("true", command, NULL);
  guint              rounds = opt_quick ? 1 : 5, yes_rounds = opt_quick ? 1 : 2;
  GsmSessionManager *m;
  GError            *error = NULL;

  g_setenv ("GSM_REAP_GRACE", "0", TRUE);
  g_unsetenv ("GSM_REAP_CONCURRENCY");
  m = fresh_manager (dir, FALSE);
  text = reaper_registry_text (n, n_orphans, gsm_session_manager_get_hostname (m));

  for (guint i = 0; i < rounds; i++)
    {
      GsmReaper *reaper;
      GPtrArray *orphans;
      guint      reaped = 0, failed = 0;
      double     t0, t;

      /* A dry run, as `gsmctl reap` makes it: a new process that enters
       * its session in the registry, reads it and lists the orphans. */
      write_registry (dir, text);
      reset_manager (dir, FALSE);
      t0 = now_us ();
      m = gsm_session_manager_get_default ();
      reaper = gsm_reaper_new (m, provider);
      orphans = gsm_reaper_list_orphans_sync (reaper, NULL, &error);
      t = now_us () - t0;
      g_assert_no_error (error);
      g_assert_cmpuint (orphans->len, ==, n_orphans);
      g_array_append_val (dry, t);
      g_ptr_array_unref (orphans);
      g_object_unref (reaper);

      /* The floor, between the measured passes. */
      t = json_glib_parse_us (text, 1);
      g_array_append_val (floors, t);

      if (i >= yes_rounds)
        continue;

      /* A pass that deletes them, as `gsmctl reap --yes` or gsmd's. */
      write_registry (dir, text);
      reset_manager (dir, FALSE);
      t0 = now_us ();
      m = gsm_session_manager_get_default ();
      reaper = gsm_reaper_new (m, provider);
      if (!gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error))
        g_error ("reap pass failed: %s", error->message);
      t = now_us () - t0;
      g_assert_cmpuint (reaped, ==, n_orphans);
      g_assert_cmpuint (failed, ==, 0);
      g_array_append_val (yes, t);
      g_object_unref (reaper);

      t = raw_spawns_us (floor_argv, n_orphans, 8);
      g_array_append_val (spawns, t);
    }

  name = g_strdup_printf ("reaper: dry run, N=%u, %u orphans", n, n_orphans);
  add_row (name, percentile (dry, 0.5) / 1000, "ms", "json-glib parse, same file",
           percentile (floors, 0.5) / 1000, "<= 1000 ms");
  g_free (name);
  name = g_strdup_printf ("reaper: pass deleting them (/bin/true), N=%u", n);
  add_row (name, percentile (yes, 0.5) / 1000, "ms", "json-glib parse, same file",
           percentile (floors, 0.5) / 1000, NULL);
  g_free (name);
  name = g_strdup_printf ("  %u raw posix_spawn()s of /bin/true, 8 at a time", n_orphans);
  add_row (name, percentile (spawns, 0.5) / 1000, "ms", NULL, 0, NULL);

  _gsm_session_manager_reset_for_testing ();
  g_unsetenv ("GSM_REAP_GRACE");
  remove_dir (dir);
}

static GSubprocess *
spawn_self (const char *mode, int count)
{
  g_autofree char *count_arg = g_strdup_printf ("--child-count=%d", count);
  g_autofree char *mode_arg = g_strdup_printf ("--child=%s", mode);
  const char      *argv[] = { "/proc/self/exe", mode_arg, count_arg, NULL };
  GError          *error = NULL;
  GSubprocess     *p;

  p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  return p;
}

/*
 * Total cycles per second of @n_procs processes at once. Each starts (a
 * process, GLib, the manager entering its session), says READY, and waits
 * for the word; the clock runs from the word to the last one done, so
 * that it measures the cycles and not how fast 64 processes start.
 */
static double
bench_processes (const char *mode, guint n_procs, guint cycles, guint *lost)
{
  g_autofree char *dir = make_dir ();
  GPtrArray       *procs = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GPtrArray) outs = g_ptr_array_new_with_free_func (g_object_unref);
  double t0, elapsed;
  guint  ok = 0;
  char   n[16];

  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_DURABLE", "0", TRUE);
  g_snprintf (n, sizeof n, "%u", n_procs);
  g_setenv ("GSM_BENCH_PROCS", n, TRUE);
  /* ext4 does not hand out an inode deleted in the last few seconds
   * while its table block is dirty, and finds that out inode by inode:
   * after a run that replaced thousands of files, creating one is slow
   * for a while. Each run starts from a settled file system, or the
   * order of the runs would decide the figures. */
  if (!opt_quick)
    g_usleep (8 * G_USEC_PER_SEC);
  for (guint i = 0; i < n_procs; i++)
    {
      GSubprocess *p = spawn_self (mode, (int) cycles);

      g_ptr_array_add (procs, p);
      g_ptr_array_add (outs, g_data_input_stream_new (g_subprocess_get_stdout_pipe (p)));
    }
  for (guint i = 0; i < n_procs; i++)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (outs->pdata[i], NULL, NULL, NULL);

      g_assert_cmpstr (line, ==, "READY");
    }

  t0 = now_us ();
  for (guint i = 0; i < n_procs; i++)
    g_output_stream_close (g_subprocess_get_stdin_pipe (procs->pdata[i]), NULL, NULL);
  for (guint i = 0; i < n_procs; i++)
    {
      g_autofree char *line = g_data_input_stream_read_line_utf8 (outs->pdata[i], NULL, NULL, NULL);

      if (line && g_str_has_prefix (line, "OK "))
        ok += (guint) atoi (line + 3);
    }
  elapsed = now_us () - t0;
  for (guint i = 0; i < n_procs; i++)
    g_subprocess_wait (procs->pdata[i], NULL, NULL);
  *lost = n_procs * cycles - ok;
  g_ptr_array_unref (procs);
  remove_dir (dir);

  return ok / (elapsed / 1e6);
}

static void
bench_concurrency (void)
{
  guint  cycles = opt_quick ? 20 : 100;
  guint  lost8 = 0, lost64 = 0, unused;
  double t8 = bench_processes ("cycles", 8, cycles, &lost8);
  double t64 = bench_processes ("cycles", 64, cycles, &lost64);
  /* The same number of lock+read+replace rounds with nothing else done:
   * how the file system itself copes with that many writers. */
  double r8 = bench_processes ("raw", 8, cycles, &unused);
  double r64 = bench_processes ("raw", 64, cycles, &unused);

  add_row ("8 processes x 100 cycles, total throughput", t8, "cyc/s", "2 raw locked writes", r8, NULL);
  add_row ("64 processes x 100 cycles, total throughput", t64, "cyc/s", "2 raw locked writes", r64, NULL);
  add_row ("  64 processes' throughput / 8 processes'", t64 / t8, "", "the same for the raw rounds", r64 / r8,
           NULL);
  add_row ("64 processes x 100 cycles, lost cycles", lost64 + lost8, "", NULL, 0, "0");
}

/* sessions-changed in this process after a change by another process. */
static double last_changed;

static void
on_changed (GsmSessionManager *m, gpointer data)
{
  last_changed = now_us ();
}

static void
bench_monitor_latency (void)
{
  g_autofree char *dir = make_dir ();
  g_autoptr (GArray) samples = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GDataInputStream) in = NULL;
  GsmSessionManager *m = fresh_manager (dir, FALSE);
  guint              n = opt_quick ? 5 : 30;
  GSubprocess       *child;
  char              *line;

  g_signal_connect (m, "sessions-changed", G_CALLBACK (on_changed), NULL);
  child = spawn_self ("touch", (int) n);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child));

  while ((line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, NULL)) != NULL)
    {
      double written = g_ascii_strtod (line, NULL);
      double deadline = now_us () + 2e6;

      g_free (line);
      if (written <= 0)
        continue;
      while (last_changed < written && now_us () < deadline)
        g_main_context_iteration (NULL, FALSE), g_usleep (200);
      if (last_changed >= written)
        {
          double dt = (last_changed - written) / 1000.0;
          g_array_append_val (samples, dt);
        }
    }
  g_subprocess_wait (child, NULL, NULL);
  g_object_unref (child);
  g_signal_handlers_disconnect_by_func (m, on_changed, NULL);
  _gsm_session_manager_reset_for_testing ();
  remove_dir (dir);

  if (samples->len > 0)
    {
      add_row ("sessions-changed in another process, p50", percentile (samples, 0.5), "ms", NULL, 0, "<= 150 ms");
      add_row ("sessions-changed in another process, p99", percentile (samples, 0.99), "ms", NULL, 0, NULL);
    }
}

static void
bench_python (void)
{
  g_autofree char *script = g_build_filename (g_getenv ("GSM_BENCH_SRCDIR") ? g_getenv ("GSM_BENCH_SRCDIR") : ".",
                                              "gsm-bench-gi.py", NULL);
  g_autofree char *dir = make_dir ();
  g_autofree char *text = registry_text (100, 0);
  g_autofree char *out = NULL;
  const char      *argv[] = { "/usr/bin/python3", script, opt_quick ? "50" : "1000", NULL };
  g_autoptr (GSubprocess) p = NULL;
  GError *error = NULL;

  if (!g_file_test (script, G_FILE_TEST_EXISTS) || !g_file_test ("/usr/bin/python3", G_FILE_TEST_EXISTS))
    return;
  write_registry (dir, text);
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_DURABLE", "0", TRUE);
  p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  if (p != NULL && g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, NULL) && out && *out)
    {
      char  *end = NULL;
      double t = g_ascii_strtod (out, &end);
      double floor = g_ascii_strtod (end, NULL);

      add_row ("register+unregister from Python (GI), N=100 others", t, "us",
               "2 raw writes of new files, exchanged", floor, NULL);
    }
  g_clear_error (&error);
  remove_dir (dir);
}

/* ---- gsmd: how fast a change or a crash reaches a D-Bus client ---------- */

typedef struct
{
  double      registered_at; /* when VmRegistered arrived */
  double      stale_at;      /* when SessionStale arrived */
  const char *vm_id;
} DBusWait;

static void
on_gsmd_signal (GDBusConnection *connection, const char *sender, const char *path, const char *iface, const char *member, GVariant *params, gpointer data)
{
  DBusWait   *w = data;
  const char *vm = NULL;

  if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("(sss)")) &&
      !g_variant_is_of_type (params, G_VARIANT_TYPE ("(ss)")))
    return;
  g_variant_get_child (params, 1, "&s", &vm);
  if (w->vm_id == NULL || g_strcmp0 (vm, w->vm_id) != 0)
    return;
  if (g_str_equal (member, "VmRegistered"))
    w->registered_at = now_us ();
  else if (g_str_equal (member, "SessionStale"))
    w->stale_at = now_us ();
}

static gboolean
on_gsmd_wait_timeout (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until *@t is set, at most 5 s. */
static gboolean
wait_stamp (double *t)
{
  gboolean timed_out = FALSE;
  guint    id = g_timeout_add (5000, on_gsmd_wait_timeout, &timed_out);

  while (*t == 0 && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return *t != 0;
}

static void
bench_gsmd (void)
{
  const char      *gsmd_path = g_getenv ("GSMD") ? g_getenv ("GSMD") : GSMD_BUILD_PATH;
  g_autofree char *dir = NULL;
  g_autofree char *address = NULL;
  g_autoptr (GSubprocess) bus = NULL;
  g_autoptr (GSubprocess) gsmd = NULL;
  g_autoptr (GDataInputStream) bus_out = NULL;
  g_autoptr (GDBusConnection) connection = NULL;
  g_autoptr (GArray) follow = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) stale = g_array_new (FALSE, FALSE, sizeof (double));
  const char *bus_argv[] = { "dbus-daemon", "--session", "--nofork", "--print-address=1", NULL };
  GError     *error = NULL;
  DBusWait    w = { 0 };
  guint       n = opt_quick ? 5 : 40;
  guint       sub;
  gboolean    owned = FALSE;

  if (!g_file_test (gsmd_path, G_FILE_TEST_IS_EXECUTABLE) || g_find_program_in_path ("dbus-daemon") == NULL)
    return;

  bus = g_subprocess_newv (bus_argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error);
  g_assert_no_error (error);
  bus_out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus));
  address = g_data_input_stream_read_line_utf8 (bus_out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", address, TRUE);

  dir = make_dir ();
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_DURABLE", "1", TRUE); /* gsmd records deaths as users would have it */

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                           G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  sub = g_dbus_connection_signal_subscribe (connection, "org.gsm.SessionManager1", "org.gsm.SessionManager1",
                                            NULL, "/org/gsm/SessionManager1", NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                            on_gsmd_signal, &w, NULL);

  gsmd = g_subprocess_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error, gsmd_path, NULL);
  g_assert_no_error (error);
  for (int i = 0; i < 500 && !owned; i++)
    {
      g_autoptr (GVariant) reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                                                "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                                "NameHasOwner",
                                                                g_variant_new ("(s)", "org.gsm.SessionManager1"),
                                                                G_VARIANT_TYPE ("(b)"), 0, 1000, NULL, NULL);
      if (reply != NULL)
        g_variant_get (reply, "(b)", &owned);
      if (!owned)
        g_usleep (10 * 1000);
    }

  for (guint i = 0; owned && i < n; i++)
    {
      g_autofree char *vm_id = NULL;
      g_autofree char *line = NULL;
      g_autoptr (GSubprocess) child = spawn_self ("hold", 0);
      g_autoptr (GDataInputStream) in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child));
      double registered, killed, dt;
      char **fields;

      line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, NULL);
      fields = line ? g_strsplit (line, " ", 2) : NULL;
      if (fields == NULL || fields[0] == NULL || fields[1] == NULL)
        {
          g_strfreev (fields);
          g_subprocess_force_exit (child);
          g_subprocess_wait (child, NULL, NULL);
          break;
        }
      registered = g_ascii_strtod (fields[0], NULL);
      vm_id = g_strdup (fields[1]);
      g_strfreev (fields);

      w = (DBusWait){ 0, 0, vm_id };
      if (wait_stamp (&w.registered_at))
        {
          dt = (w.registered_at - registered) / 1000.0;
          g_array_append_val (follow, dt);
        }
      /* Let gsmd settle (sessions-changed of the registration), then crash. */
      g_usleep (20 * 1000);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      killed = now_us ();
      g_subprocess_send_signal (child, SIGKILL);
      if (wait_stamp (&w.stale_at))
        {
          dt = (w.stale_at - killed) / 1000.0;
          g_array_append_val (stale, dt);
        }
      g_subprocess_wait (child, NULL, NULL);
      w.vm_id = NULL;
    }

  g_dbus_connection_signal_unsubscribe (connection, sub);
  g_subprocess_send_signal (gsmd, SIGTERM);
  g_subprocess_wait (gsmd, NULL, NULL);
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_subprocess_send_signal (bus, SIGTERM);
  g_subprocess_wait (bus, NULL, NULL);
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_setenv ("GSM_DURABLE", "0", TRUE);
  remove_dir (dir);

  if (follow->len > 0)
    {
      add_row ("gsmd: another process registers -> VmRegistered, p50", percentile (follow, 0.5), "ms",
               NULL, 0, "<= 150 ms");
      add_row ("gsmd: another process registers -> VmRegistered, p99", percentile (follow, 0.99), "ms",
               NULL, 0, NULL);
    }
  if (stale->len > 0)
    {
      add_row ("gsmd: kill -9 -> SessionStale on the bus, p50", percentile (stale, 0.5), "ms", NULL, 0,
               "<= 100 ms");
      add_row ("gsmd: kill -9 -> SessionStale on the bus, p99", percentile (stale, 0.99), "ms", NULL, 0,
               "<= 100 ms");
    }
}

/* ---- etcd --------------------------------------------------------------- */

typedef struct
{
  SoupSession *session;
  char        *endpoint;
  char        *prefix; /* /gsm-bench-PID */
} Etcd;

static char *
etcd_b64 (const char *text)
{
  return g_base64_encode ((const guchar *) text, strlen (text));
}

static GsmEtcdResponse *
etcd_post (Etcd *etcd, const char *path, const char *body)
{
  g_autofree char *url = g_strconcat (etcd->endpoint, path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr (GBytes) request = g_bytes_new (body, strlen (body));
  g_autoptr (GBytes) reply = NULL;
  GsmEtcdResponse *response = NULL;
  GError          *error = NULL;

  soup_message_set_request_body_from_bytes (msg, "application/json", request);
  reply = soup_session_send_and_read (etcd->session, msg, NULL, &error);
  if (reply == NULL ||
      !_gsm_etcd_response_parse (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply), &response, &error))
    g_error ("etcd at %s: %s: %s", etcd->endpoint, path, error->message);
  if (response->has_error)
    g_error ("etcd at %s: %s: %s", etcd->endpoint, path, response->error_message);
  return response;
}

static char *
etcd_range_body (Etcd *etcd)
{
  g_autofree char *key = g_strconcat (etcd->prefix, "/", NULL);
  g_autofree char *end = g_strconcat (etcd->prefix, "0", NULL);
  g_autofree char *k = etcd_b64 (key), *e = etcd_b64 (end);

  return g_strdup_printf ("{\"key\": \"%s\", \"range_end\": \"%s\"}", k, e);
}

static void
etcd_clear (Etcd *etcd)
{
  g_autofree char *body = etcd_range_body (etcd);

  _gsm_etcd_response_free (etcd_post (etcd, "/v3/kv/deleterange", body));
}

/* N sessions of other hosts, each owning a VM, on one lease. */
static void
etcd_populate (Etcd *etcd, guint n)
{
  g_autoptr (GsmEtcdResponse) grant = etcd_post (etcd, "/v3/lease/grant", "{\"TTL\": 600}");
  g_autofree char *text = registry_text (n, 1);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *all;
  GList      *ids, *l;
  GString    *body = NULL;
  guint       in_batch = 0;

  g_assert_true (json_parser_load_from_data (parser, text, -1, NULL));
  all = json_node_get_object (json_parser_get_root (parser));
  ids = json_object_get_members (all);
  for (l = ids; l != NULL; l = l->next)
    {
      JsonNode        *entry = json_object_get_member (all, l->data);
      g_autofree char *value = json_to_string (entry, FALSE);
      g_autofree char *session_key = g_strdup_printf ("%s/sessions/%s", etcd->prefix, (char *) l->data);
      g_autofree char *vm_key = g_strdup_printf ("%s/vms/%s", etcd->prefix,
                                                 json_object_get_string_member (json_node_get_object (entry), "vm_id"));
      g_autofree char *v = etcd_b64 (value), *sk = etcd_b64 (session_key), *vk = etcd_b64 (vm_key);

      if (body == NULL)
        body = g_string_new ("{\"success\": [");
      g_string_append_printf (body, "%s{\"request_put\": {\"key\": \"%s\", \"value\": \"%s\", "
                                    "\"lease\": \"%" G_GINT64_FORMAT "\"}}, "
                                    "{\"request_put\": {\"key\": \"%s\", \"value\": \"%s\"}}",
                              in_batch ? ", " : "", sk, v, grant->lease_id, vk, v);
      /* etcd allows 128 operations per transaction. */
      if (++in_batch == 50 || l->next == NULL)
        {
          g_string_append (body, "]}");
          _gsm_etcd_response_free (etcd_post (etcd, "/v3/kv/txn", body->str));
          g_string_free (body, TRUE);
          body = NULL;
          in_batch = 0;
        }
    }
  g_list_free (ids);
}

static GsmSessionManager *
etcd_manager (Etcd *etcd, const char *dir)
{
  g_autofree char *uri = g_strdup_printf ("etcd://%s%s", etcd->endpoint + strlen ("http://"), etcd->prefix);

  _gsm_session_manager_reset_for_testing ();
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  g_setenv ("GSM_REGISTRY", uri, TRUE);
  return gsm_session_manager_get_default ();
}

static void
bench_etcd (void)
{
  const guint      sizes[] = { 0, 100, 1000, 10000 };
  g_autofree char *dir = make_dir ();
  g_autofree char *prefix = NULL;
  g_autofree char *scratch = NULL, *scratch_b64 = NULL, *value_b64 = NULL;
  g_autofree char *put_body = NULL;
  Etcd             etcd = { NULL, NULL, NULL };
  g_auto (GStrv) endpoints = NULL;
  GError *error = NULL;

  if (!_gsm_etcd_parse_uri (opt_etcd, &endpoints, &prefix, &error))
    g_error ("--etcd: %s", error->message);
  /* The first member. */
  etcd.endpoint = g_strdup (endpoints[0]);
  etcd.prefix = g_strdup_printf ("/gsm-bench-%d", getpid ());
  etcd.session = soup_session_new_with_options ("timeout", 5, NULL);

  /* The floor: one transaction writing one entry, as the registry does. */
  scratch = g_strdup_printf ("%s/scratch", etcd.prefix);
  scratch_b64 = etcd_b64 (scratch);
  {
    g_autofree char *one = registry_text (1, 2);
    char            *start = strchr (one, ':') + 2;

    start[strlen (start) - 3] = '\0'; /* the entry, without "}\n" of the object */
    value_b64 = etcd_b64 (start);
  }
  put_body = g_strdup_printf ("{\"success\": [{\"request_put\": {\"key\": \"%s\", \"value\": \"%s\"}}]}",
                              scratch_b64, value_b64);

  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      guint n = sizes[k];
      guint rounds = opt_quick ? 10 : (n >= 10000 ? 50 : n >= 1000 ? 100
                                                                   : 300);
      g_autoptr (GArray) raw_txn = g_array_new (FALSE, FALSE, sizeof (double));
      g_autoptr (GArray) raw_range = g_array_new (FALSE, FALSE, sizeof (double));
      g_autoptr (GArray) listing = g_array_new (FALSE, FALSE, sizeof (double));
      g_autofree char   *range_body = etcd_range_body (&etcd);
      g_autofree char   *name = NULL;
      GsmSessionManager *m;
      double             t;

      etcd_clear (&etcd);
      if (n > 0)
        etcd_populate (&etcd, n);
      m = etcd_manager (&etcd, dir);

      t = cycle_us (m, rounds, NULL, NULL, FALSE, NULL);
      for (guint i = 0; i < rounds; i++)
        {
          double t0 = now_us ();

          _gsm_etcd_response_free (etcd_post (&etcd, "/v3/kv/txn", put_body));
          t0 = now_us () - t0;
          g_array_append_val (raw_txn, t0);
        }
      name = g_strdup_printf ("etcd: register+unregister, N=%u others", n);
      add_row (name, t, "us", "2 raw txns (1 put)", 2 * percentile (raw_txn, 0.5), "<= 3x floor");

      for (guint i = 0; i < rounds; i++)
        {
          g_autoptr (GHashTable) sessions = NULL;
          double t0 = now_us ();

          sessions = gsm_session_manager_get_all_active_sessions_sync (m, NULL, &error);
          if (sessions == NULL)
            g_error ("listing failed: %s", error->message);
          t0 = now_us () - t0;
          g_array_append_val (listing, t0);

          t0 = now_us ();
          _gsm_etcd_response_free (etcd_post (&etcd, "/v3/kv/range", range_body));
          t0 = now_us () - t0;
          g_array_append_val (raw_range, t0);
        }
      g_free (name);
      name = g_strdup_printf ("etcd: get_all_active_sessions, N=%u others", n);
      add_row (name, percentile (listing, 0.5), "us", "1 raw range of the prefix",
               percentile (raw_range, 0.5), n >= 10000 ? "<= 5000 us" : NULL);
      _gsm_session_manager_reset_for_testing ();
    }

  etcd_clear (&etcd);
  g_unsetenv ("GSM_REGISTRY");
  remove_dir (dir);
  g_object_unref (etcd.session);
  g_free (etcd.endpoint);
  g_free (etcd.prefix);
}

/* ---- child modes -------------------------------------------------------- */

/* Started: wait for the word (the parent closes our stdin). */
static void
child_ready (void)
{
  char c;

  printf ("READY\n");
  fflush (stdout);
  while (read (STDIN_FILENO, &c, 1) > 0)
    ;
}

/* The floor of a cycle in many processes: what the registry's two writes
 * cost with nothing else done, under the same kind of lock, in a registry
 * of @n_procs entries: lock, read the file, write it the way the library
 * does without fsync (into the file this process's last write retired,
 * exchanged with the live one), unlock; twice. */
static int
child_raw (int n_procs)
{
  const char      *dir = g_getenv ("GSM_RUNTIME_DIR");
  g_autofree char *text = registry_text ((guint) n_procs, 0);
  g_autofree char *spare_name = g_strdup_printf ("raw.json.spare-%d", (int) getpid ());
  gsize            len = strlen (text);
  g_autofree char *buf = g_malloc (len + 1);
  int              dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int              lockfd = openat (dirfd, "raw.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  int              spare = openat (dirfd, spare_name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  struct flock     fl = { .l_whence = SEEK_SET };
  int              done = 0;

  child_ready ();
  for (int i = 0; i < opt_child_count * 2; i++)
    {
      int fd;

      fl.l_type = F_WRLCK;
      while (fcntl (lockfd, F_OFD_SETLKW, &fl) != 0)
        ;
      fd = openat (dirfd, "raw.json", O_RDONLY | O_CLOEXEC);
      if (fd >= 0)
        {
          (void) !pread (fd, buf, len, 0);
          close (fd);
        }
      g_assert_cmpint (pwrite (spare, text, len, 0), ==, (gssize) len);
      g_assert_cmpint (ftruncate (spare, (off_t) len), ==, 0);
      if (renameat2 (dirfd, spare_name, dirfd, "raw.json", RENAME_EXCHANGE) != 0)
        g_assert_cmpint (renameat (dirfd, spare_name, dirfd, "raw.json"), ==, 0);
      close (spare);
      spare = openat (dirfd, spare_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      fl.l_type = F_UNLCK;
      fcntl (lockfd, F_OFD_SETLK, &fl);
      done += i % 2;
    }
  close (spare);
  unlinkat (dirfd, spare_name, 0);
  printf ("OK %d\n", done);
  return 0;
}

static int
child_main (void)
{
  GsmSessionManager *m;
  GError            *error = NULL;
  int                done = 0;

  if (g_str_equal (opt_child, "raw"))
    return child_raw (atoi (g_getenv ("GSM_BENCH_PROCS")));

  m = gsm_session_manager_get_default ();
  if (g_str_equal (opt_child, "cycles"))
    {
      child_ready ();
      for (int i = 0; i < opt_child_count; i++)
        {
          char vm[64];

          g_snprintf (vm, sizeof vm, "vm-%d-%d", getpid (), i);
          if (!gsm_session_manager_register_vm_sync (m, vm, "z", NULL, NULL, NULL, &error) ||
              !gsm_session_manager_unregister_vm_sync (m, NULL, &error))
            break;
          done++;
        }
      printf ("OK %d\n", done);
    }
  else if (g_str_equal (opt_child, "touch"))
    {
      for (int i = 0; i < opt_child_count; i++)
        {
          g_usleep (300 * 1000); /* sparse events: the slow case of the monitor */
          if (i % 2 == 0)
            gsm_session_manager_register_vm_sync (m, "vm-touch", "z", NULL, NULL, NULL, NULL);
          else
            gsm_session_manager_unregister_vm_sync (m, NULL, NULL);
          printf ("%.1f\n", now_us ());
          fflush (stdout);
        }
    }
  else if (g_str_equal (opt_child, "hold"))
    {
      /* Register a VM, say when, and live until killed. */
      char vm[64];

      g_snprintf (vm, sizeof vm, "vm-hold-%d", getpid ());
      if (!gsm_session_manager_register_vm_sync (m, vm, "z", NULL, NULL, NULL, &error))
        return 1;
      printf ("%.1f %s\n", now_us (), vm);
      fflush (stdout);
      for (;;)
        pause ();
    }
  gsm_session_manager_close_sync (m, NULL, NULL);
  return 0;
}

static void
print_json (void)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "machine");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cpus");
  json_builder_add_int_value (b, g_get_num_processors ());
  json_builder_end_object (b);
  json_builder_set_member_name (b, "figures");
  json_builder_begin_array (b);
  for (guint i = 0; i < rows->len; i++)
    {
      Row *r = rows->pdata[i];

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, r->name);
      json_builder_set_member_name (b, "value");
      json_builder_add_double_value (b, r->value);
      json_builder_set_member_name (b, "unit");
      json_builder_add_string_value (b, r->unit);
      if (r->floor_name)
        {
          json_builder_set_member_name (b, "floor_name");
          json_builder_add_string_value (b, r->floor_name);
          json_builder_set_member_name (b, "floor");
          json_builder_add_double_value (b, r->floor);
        }
      if (r->goal)
        {
          json_builder_set_member_name (b, "goal");
          json_builder_add_string_value (b, r->goal);
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  text = json_to_string (root, TRUE);
  printf ("%s\n", text);
}

int
main (int argc, char *argv[])
{
  const GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print the figures as JSON", NULL },
    { "quick", 0, 0, G_OPTION_ARG_NONE, &opt_quick, "Fewer rounds (a smoke run, not figures)", NULL },
    { "etcd", 0, 0, G_OPTION_ARG_STRING, &opt_etcd, "Also measure the etcd registry there", "etcd://HOST:PORT" },
    { "cpu-time", 0, 0, G_OPTION_ARG_NONE, &opt_cpu, "Measure in-process figures in CPU time, not wall time (on a busy machine)", NULL },
    { "only", 0, 0, G_OPTION_ARG_STRING, &opt_only, "Run one group: cycles, python, listing, processes, monitor, dbus, reaper, etcd", "GROUP" },
    { "child", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &opt_child, NULL, NULL },
    { "child-count", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt_child_count, NULL, NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- measure gsm-session against the I/O floor");
  GError *error = NULL;

  setlocale (LC_ALL, "");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("gsm-bench: %s\n", error->message);
      return 2;
    }

  if (opt_child != NULL)
    return child_main ();

  rows = g_ptr_array_new ();
  if (!opt_json)
    printf ("%-58s %12s %-5s  | %-36s %10s\n", "figure (median)", "value", "", "floor", "value");

#define WANT(group) (opt_only == NULL || g_str_equal (opt_only, group))
  if (WANT ("cycles"))
    bench_cycles ();
  if (WANT ("python"))
    bench_python ();
  if (WANT ("listing"))
    bench_listing ();
  if (WANT ("processes"))
    bench_concurrency ();
  if (WANT ("monitor"))
    bench_monitor_latency ();
  if (WANT ("dbus"))
    bench_gsmd ();
  if (WANT ("reaper"))
    bench_reaper ();
  if (opt_etcd != NULL && WANT ("etcd"))
    bench_etcd ();

  if (opt_json)
    print_json ();

  return 0;
}
