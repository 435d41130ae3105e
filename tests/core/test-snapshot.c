/* test-snapshot.c: registry snapshots, copied on write
 *
 * An update's snapshot is a copy of its base's table with the changes,
 * sharing the sessions that did not change. These tests drive random
 * updates against a plain hash table as the model and check that every
 * snapshot, old or new, still reads as the model did when it was made:
 * lookups, size, iteration and the differences between two.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-registry-private.h"
#include "gsm-session-private.h"
#include "test-common.h"

static GsmSession *
make_session (guint id,
              guint version)
{
  g_autofree char *session_id = g_strdup_printf ("session-%u", id);

  /* The version goes in the pid: a new object, a new entry. */
  return _gsm_session_new (session_id, 1000 + version, "host.example.org", 1.0, 1, "boot");
}

/* A copy of a model: session id → GsmSession. */
static GHashTable *
copy_model (GHashTable *model)
{
  GHashTable    *copy = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  GHashTableIter iter;
  gpointer       key, value;

  g_hash_table_iter_init (&iter, model);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_hash_table_insert (copy, g_strdup (key), g_object_ref (value));
  return copy;
}

static void
assert_matches (GsmRegistrySnapshot *snapshot,
                GHashTable          *model)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GsmRegistrySnapshotIter iter;
  GHashTableIter          miter;
  const char             *id;
  GsmSession             *session;
  gpointer                key, value;

  g_assert_cmpuint (_gsm_registry_snapshot_get_size (snapshot), ==, g_hash_table_size (model));

  _gsm_registry_snapshot_iter_init (&iter, snapshot);
  while (_gsm_registry_snapshot_iter_next (&iter, &id, &session))
    {
      g_assert_nonnull (session);
      g_assert_cmpstr (id, ==, gsm_session_get_session_id (session));
      g_assert_true (g_hash_table_lookup (model, id) == session);
      /* Each entry once. */
      g_assert_true (g_hash_table_add (seen, (gpointer) id));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, g_hash_table_size (model));

  g_hash_table_iter_init (&miter, model);
  while (g_hash_table_iter_next (&miter, &key, &value))
    {
      g_assert_true (_gsm_registry_snapshot_lookup (snapshot, key) == value);
      g_assert_true (_gsm_registry_snapshot_contains (snapshot, key));
    }
  g_assert_null (_gsm_registry_snapshot_lookup (snapshot, "session-none"));
}

typedef struct
{
  GHashTable *before;
  GHashTable *after;
  GHashTable *reported;
} DiffCheck;

static void
diff_cb (const char *session_id,
         GsmSession *before,
         GsmSession *after,
         gpointer    user_data)
{
  DiffCheck *check = user_data;

  g_assert_true (before != after);
  g_assert_true (g_hash_table_lookup (check->before, session_id) == before);
  g_assert_true (g_hash_table_lookup (check->after, session_id) == after);
  /* Each difference once. */
  g_assert_true (g_hash_table_add (check->reported, g_strdup (session_id)));
}

static void
assert_diff (GsmRegistrySnapshot *before,
             GHashTable          *before_model,
             GsmRegistrySnapshot *after,
             GHashTable          *after_model)
{
  DiffCheck      check = { before_model, after_model,
                           g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL) };
  GHashTableIter iter;
  gpointer       key, value;
  guint          expected = 0;

  _gsm_registry_snapshot_diff (before, after, diff_cb, &check);

  /* Every difference of the models was reported. */
  g_hash_table_iter_init (&iter, after_model);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (g_hash_table_lookup (before_model, key) != value)
      {
        expected++;
        g_assert_true (g_hash_table_contains (check.reported, key));
      }
  g_hash_table_iter_init (&iter, before_model);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_hash_table_contains (after_model, key))
      {
        expected++;
        g_assert_true (g_hash_table_contains (check.reported, key));
      }
  g_assert_cmpuint (g_hash_table_size (check.reported), ==, expected);
  g_hash_table_unref (check.reported);
}

/* Random updates over @n_initial entries; every snapshot made is checked
 * again at the end, after all the later ones were made from it. */
static void
run_model (guint n_initial,
           guint n_updates,
           guint max_changes)
{
  g_autoptr (GPtrArray) snapshots = g_ptr_array_new_with_free_func ((GDestroyNotify) _gsm_registry_snapshot_unref);
  g_autoptr (GPtrArray) models = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  GHashTable *model = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  GHashTable *table = _gsm_registry_new_table ();
  guint       next_id = n_initial;

  for (guint i = 0; i < n_initial; i++)
    {
      GsmSession *s = make_session (i, 0);

      _gsm_registry_table_put (table, s);
      g_hash_table_insert (model, g_strdup (gsm_session_get_session_id (s)), s);
    }
  g_ptr_array_add (snapshots, _gsm_registry_snapshot_new (table, 1));
  g_ptr_array_add (models, model);
  assert_matches (snapshots->pdata[0], model);

  for (guint u = 0; u < n_updates; u++)
    {
      GsmRegistrySnapshot *base = snapshots->pdata[snapshots->len - 1];
      g_autoptr (GsmRegistryTxn) txn = _gsm_registry_txn_new (base);
      GHashTable          *next = copy_model (models->pdata[models->len - 1]);
      guint                n_changes = g_test_rand_int_range (1, max_changes + 1);
      GsmRegistrySnapshot *snapshot;

      for (guint c = 0; c < n_changes; c++)
        {
          guint what = g_test_rand_int_range (0, 10);
          /* Often a new session, else any, present or gone. */
          guint            id = next_id == 0 || g_test_rand_int_range (0, 4) == 0
                                    ? next_id
                                    : (guint) g_test_rand_int_range (0, next_id);
          g_autofree char *session_id = g_strdup_printf ("session-%u", id);

          if (what < 3)
            {
              /* Remove, present or not. */
              _gsm_registry_txn_remove (txn, session_id);
              g_hash_table_remove (next, session_id);
            }
          else if (what < 4 && g_hash_table_contains (models->pdata[0], session_id))
            {
              /* Put back the very entry of the first table. */
              GsmSession *first = g_hash_table_lookup (models->pdata[0], session_id);

              _gsm_registry_txn_put (txn, first);
              g_hash_table_replace (next, g_strdup (session_id), g_object_ref (first));
            }
          else
            {
              GsmSession *s = make_session (id, u + 1);

              if (id == next_id)
                next_id++;
              _gsm_registry_txn_put (txn, s);
              g_hash_table_replace (next, g_strdup (session_id), s);
            }
          /* The transaction reads its own changes. */
          g_assert_true (_gsm_registry_txn_lookup (txn, session_id) ==
                         g_hash_table_lookup (next, session_id));
        }

      snapshot = _gsm_registry_txn_apply (txn, u + 2);
      assert_matches (snapshot, next);
      assert_diff (base, models->pdata[models->len - 1], snapshot, next);
      g_ptr_array_add (snapshots, snapshot);
      g_ptr_array_add (models, next);
    }

  /* Older snapshots did not move; differences across many updates. */
  for (guint i = 0; i < snapshots->len; i++)
    {
      guint j = g_test_rand_int_range (0, snapshots->len);

      assert_matches (snapshots->pdata[i], models->pdata[i]);
      assert_diff (snapshots->pdata[i], models->pdata[i], snapshots->pdata[j], models->pdata[j]);
    }
  {
    g_autoptr (GHashTable) empty = g_hash_table_new (g_str_hash, g_str_equal);

    assert_diff (NULL, empty, snapshots->pdata[snapshots->len - 1], models->pdata[models->len - 1]);
  }
}

static void
test_small (void)
{
  run_model (10, 200, 3);
}

static void
test_large (void)
{
  run_model (1000, 200, 8);
}

static void
test_empty (void)
{
  run_model (0, 400, 4);
}

static void
count_diff_cb (const char *session_id,
               GsmSession *before,
               GsmSession *after,
               gpointer    user_data)
{
  guint *n = user_data;

  g_assert_cmpstr (session_id, ==, "session-5000");
  (*n)++;
}

/* The common update: one process changes its own entry again and again.
 * Every other entry stays the very same object, so that following the
 * registry reports only the one that changed. */
static void
test_own_entry (void)
{
  GHashTable          *table = _gsm_registry_new_table ();
  GsmRegistrySnapshot *snapshot;

  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr (GsmSession) s = make_session (i, 0);

      _gsm_registry_table_put (table, s);
    }
  snapshot = _gsm_registry_snapshot_new (table, 1);

  for (guint u = 0; u < 50; u++)
    {
      g_autoptr (GsmRegistryTxn) txn = _gsm_registry_txn_new (snapshot);
      g_autoptr (GsmSession) own = make_session (5000, u);
      GsmRegistrySnapshotIter iter;
      const char             *id;
      GsmSession             *session;
      GsmRegistrySnapshot    *next;
      guint                   n = 0;

      _gsm_registry_txn_put (txn, own);
      next = _gsm_registry_txn_apply (txn, u + 2);
      g_assert_cmpuint (_gsm_registry_snapshot_get_size (next), ==, 1001);
      g_assert_true (_gsm_registry_snapshot_lookup (next, "session-5000") == own);
      _gsm_registry_snapshot_iter_init (&iter, snapshot);
      while (_gsm_registry_snapshot_iter_next (&iter, &id, &session))
        if (!g_str_equal (id, "session-5000"))
          g_assert_true (_gsm_registry_snapshot_lookup (next, id) == session);
      _gsm_registry_snapshot_diff (snapshot, next, count_diff_cb, &n);
      g_assert_cmpuint (n, ==, 1);
      _gsm_registry_snapshot_unref (snapshot);
      snapshot = next;
    }

  _gsm_registry_snapshot_unref (snapshot);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/snapshot/model/small", test_small);
  g_test_add_func ("/snapshot/model/large", test_large);
  g_test_add_func ("/snapshot/model/empty", test_empty);
  g_test_add_func ("/snapshot/own-entry", test_own_entry);

  return g_test_run ();
}
