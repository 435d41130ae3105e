/* test-session-list.c: GsmSessionList, the read-only view of the registry
 *
 * Real processes (gsm-test-worker) register and unregister VMs; the list,
 * in this process, follows them through its file monitor. Every
 * items-changed is replayed on a copy of the list, which must end equal
 * to the list: the positions are exact.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "test-common.h"

/* A copy of the list kept by replaying items-changed. */
typedef struct
{
  GListModel *model;
  GPtrArray  *mirror; /* GsmSession */
  guint       n_signals;
} Mirror;

static void
mirror_items_changed_cb (GListModel *model,
                         guint       position,
                         guint       removed,
                         guint       added,
                         Mirror     *m)
{
  g_assert_cmpuint (position + removed, <=, m->mirror->len);
  g_ptr_array_remove_range (m->mirror, position, removed);
  for (guint i = 0; i < added; i++)
    g_ptr_array_insert (m->mirror, position + i, g_list_model_get_item (model, position + i));
  g_assert_cmpuint (m->mirror->len, ==, g_list_model_get_n_items (model));
  m->n_signals++;
}

static void
mirror_init (Mirror     *m,
             GListModel *model)
{
  guint n = g_list_model_get_n_items (model);

  m->model = model;
  m->mirror = g_ptr_array_new_with_free_func (g_object_unref);
  m->n_signals = 0;
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (m->mirror, g_list_model_get_item (model, i));
  g_signal_connect (model, "items-changed", G_CALLBACK (mirror_items_changed_cb), m);
}

static void
mirror_clear (Mirror *m)
{
  g_signal_handlers_disconnect_by_data (m->model, m);
  g_clear_pointer (&m->mirror, g_ptr_array_unref);
}

/* The list is sorted by session id, strictly, and the mirror equals it. */
static void
assert_consistent (Mirror *m)
{
  guint n = g_list_model_get_n_items (m->model);

  g_assert_cmpuint (m->mirror->len, ==, n);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GsmSession) s = g_list_model_get_item (m->model, i);

      g_assert_true (s == m->mirror->pdata[i]);
      if (i > 0)
        g_assert_cmpint (strcmp (gsm_session_get_session_id (m->mirror->pdata[i - 1]),
                                 gsm_session_get_session_id (s)),
                         <, 0);
    }
  g_assert_null (g_list_model_get_item (m->model, n));
}

typedef struct
{
  GsmSessionList *list;
  const char     *session_id;
  const char     *vm_id; /* NULL: has no VM; "-": has no entry */
} Expect;

static gboolean
expect_met (gpointer data)
{
  Expect *e = data;
  g_autoptr (GsmSession) s = gsm_session_list_lookup (e->list, e->session_id);

  if (g_strcmp0 (e->vm_id, "-") == 0)
    return s == NULL;
  return s != NULL && g_strcmp0 (gsm_session_get_vm_id (s), e->vm_id) == 0;
}

static void
wait_for (GsmSessionList *list,
          const char     *session_id,
          const char     *vm_id)
{
  Expect e = { list, session_id, vm_id };

  wait_until (expect_met, &e, 10000);
}

static guint
count_files (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;

  g_assert_nonnull (d);
  while (g_dir_read_name (d) != NULL)
    n++;
  return n;
}

/* An empty directory: an empty list, and still an empty directory. */
static void
test_empty (Fixture      *f,
            gconstpointer data)
{
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  GType            type;

  list = gsm_session_list_new (NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (G_IS_LIST_MODEL (list));
  g_assert_cmpstr (gsm_session_list_get_runtime_dir (list), ==, f->dir);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 0);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (list)) == GSM_TYPE_SESSION);
  g_object_get (list, "item-type", &type, "runtime-dir", &dir, NULL);
  g_assert_true (type == GSM_TYPE_SESSION);
  g_assert_cmpstr (dir, ==, f->dir);
  g_assert_null (gsm_session_list_lookup (list, "nope"));
  g_assert_null (gsm_session_list_lookup_vm (list, "vm-nope"));
  g_assert_cmpuint (count_files (f->dir), ==, 0);
}

/* A directory that does not exist is an error, and is not created. */
static void
test_missing_directory (Fixture      *f,
                        gconstpointer data)
{
  g_autofree char *missing = g_build_filename (f->dir, "missing", "deeper", NULL);
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GError) error = NULL;

  list = gsm_session_list_new (missing, NULL, &error);
  g_assert_null (list);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "does not exist"));
  g_assert_nonnull (strstr (error->message, missing));
  g_assert_cmpuint (count_files (f->dir), ==, 0);
}

/* A registry that is not a JSON object is an error, and is left as it
 * is: no rebuild, no file moved aside. */
static void
test_corrupt (Fixture      *f,
              gconstpointer data)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *after = NULL;

  g_assert_true (g_file_set_contents (path, "{\"a\": [", -1, NULL));
  list = gsm_session_list_new (f->dir, NULL, &error);
  g_assert_null (list);
  g_assert_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY);
  g_assert_true (g_file_get_contents (path, &after, NULL, NULL));
  g_assert_cmpstr (after, ==, "{\"a\": [");
  g_assert_cmpuint (count_files (f->dir), ==, 1);
}

/* Three sessions of other processes, then one more registering, one
 * unregistering and leaving, one killed. */
static void
test_model (Fixture      *f,
            gconstpointer data)
{
  const char *close_args[] = { "register-close", "vm-closing", NULL };
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) closing = NULL;
  g_autofree char *closing_line = NULL;
  g_autofree char *closing_id = NULL;
  GSubprocess     *procs[4];
  char            *ids[4];
  Mirror           m;

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);

      procs[i] = spawn_registered_worker (vm, &ids[i]);
    }

  list = gsm_session_list_new (NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 3);
  mirror_init (&m, G_LIST_MODEL (list));
  assert_consistent (&m);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *vm = g_strdup_printf ("vm-%u", i);
      g_autoptr (GsmSession) s = gsm_session_list_lookup (list, ids[i]);
      g_autoptr (GsmSession) by_vm = gsm_session_list_lookup_vm (list, vm);

      g_assert_nonnull (s);
      g_assert_true (s == by_vm);
      g_assert_cmpstr (gsm_session_get_vm_id (s), ==, vm);
      g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_ALIVE);
    }

  /* Another process registers a VM: one item inserted. */
  procs[3] = spawn_registered_worker ("vm-3", &ids[3]);
  wait_for (list, ids[3], "vm-3");
  assert_consistent (&m);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 4);
  g_assert_cmpuint (m.n_signals, >=, 1);

  /* One registers and then unregisters and leaves: inserted, then gone. */
  closing = spawn_worker (close_args);
  closing_line = worker_read_line (closing);
  g_assert_true (g_str_has_prefix (closing_line, "READY "));
  closing_id = g_strndup (closing_line + 6, strcspn (closing_line + 6, " "));
  wait_for (list, closing_id, "vm-closing");
  assert_consistent (&m);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 5);
  g_output_stream_close (g_subprocess_get_stdin_pipe (closing), NULL, NULL);
  wait_for (list, closing_id, "-");
  g_subprocess_wait (closing, NULL, NULL);
  assert_consistent (&m);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (list)), ==, 4);
  g_assert_null (gsm_session_list_lookup_vm (list, "vm-closing"));

  /* A killed process leaves its entry, which is now dead. */
  kill_worker (procs[1]);
  {
    g_autoptr (GsmSession) s = gsm_session_list_lookup (list, ids[1]);

    g_assert_nonnull (s);
    g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_DEAD);
  }

  /* This process is no session: no session or lock file of its own. */
  {
    g_autofree char *own = g_strdup_printf ("session_%d_", (int) getpid ());
    g_autoptr (GDir) d = g_dir_open (f->dir, 0, NULL);
    const char *name;

    while ((name = g_dir_read_name (d)) != NULL)
      g_assert_false (g_str_has_prefix (name, own));
  }

  for (guint i = 0; i < 4; i++)
    {
      if (i != 1)
        kill_worker (procs[i]);
      g_object_unref (procs[i]);
      g_free (ids[i]);
    }
  mirror_clear (&m);
}

/* A session of another host cannot be verified from here. */
static void
test_unverifiable (Fixture      *f,
                   gconstpointer data)
{
  g_autofree char *path = fixture_path (f, "vm_registry.json");
  g_autofree char *text = g_strdup_printf (
      "{\"far\": {\"session_id\": \"far\", \"pid\": 4000000, \"hostname\": \"far-host.example\", "
      "\"created_at\": %.1f, \"vm_id\": \"vm-far\", \"zone\": \"z\", \"components\": [], "
      "\"metadata\": {}, \"registered_at\": %.1f}}",
      g_get_real_time () / 1e6 - 60, g_get_real_time () / 1e6 - 50);
  g_autoptr (GsmSessionList) list = NULL;
  g_autoptr (GsmSession) s = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  list = gsm_session_list_new (f->dir, NULL, &error);
  g_assert_no_error (error);
  s = gsm_session_list_lookup_vm (list, "vm-far");
  g_assert_nonnull (s);
  g_assert_cmpint (gsm_session_list_get_liveness (list, s), ==, GSM_LIVENESS_UNVERIFIABLE);
  g_assert_cmpuint (count_files (f->dir), ==, 1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/session-list/empty", Fixture, NULL, fixture_setup, test_empty, fixture_teardown);
  g_test_add ("/session-list/missing-directory", Fixture, NULL, fixture_setup,
              test_missing_directory, fixture_teardown);
  g_test_add ("/session-list/corrupt", Fixture, NULL, fixture_setup, test_corrupt,
              fixture_teardown);
  g_test_add ("/session-list/model", Fixture, NULL, fixture_setup, test_model, fixture_teardown);
  g_test_add ("/session-list/unverifiable", Fixture, NULL, fixture_setup, test_unverifiable,
              fixture_teardown);

  return g_test_run ();
}
