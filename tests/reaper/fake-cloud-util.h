/* fake-cloud-util.h: the fake gcloud, aws and az CLIs of fake-clouds/ in
 * the reaper tests
 *
 * Put first on PATH, they keep a "cloud" in the JSON file
 * $FAKE_CLOUD_STATE and log every call to $FAKE_CLOUD_STATE.log (see
 * fake-clouds/fakecloud.py). These helpers set them up and read and change
 * that state as the real cloud's console would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <json-glib/json-glib.h>

#include "reaper-test-util.h"

typedef struct
{
  char *state;  /* FAKE_CLOUD_STATE */
  char *config; /* GSM_CONFIG_FILE */
} FakeCloud;

/* Fake CLIs first on PATH, a cloud with no VM, and a configuration file
 * whose [provider] group uses @preset; the fixture's fake provider
 * command is dropped. */
static inline void
fake_cloud_set_up (FakeCloud  *fc,
                   Fixture    *f,
                   const char *preset)
{
  const char      *dir = g_test_get_filename (G_TEST_DIST, "reaper", "fake-clouds", NULL);
  g_autofree char *path = g_strconcat (dir, ":", g_getenv ("PATH"), NULL);
  g_autofree char *config = g_strdup_printf ("[provider]\npreset=%s\ntimeout=30\n", preset);

  fc->state = g_build_filename (f->root, "cloud.json", NULL);
  fc->config = g_build_filename (f->root, "config.ini", NULL);
  g_assert_true (g_file_set_contents (fc->state, "{\"vms\": []}\n", -1, NULL));
  g_assert_true (g_file_set_contents (fc->config, config, -1, NULL));
  if (!g_str_has_prefix (g_getenv ("PATH"), dir))
    g_setenv ("PATH", path, TRUE);
  g_setenv ("FAKE_CLOUD_STATE", fc->state, TRUE);
  g_setenv ("GSM_CONFIG_FILE", fc->config, TRUE);
  g_unsetenv ("GSM_PROVIDER_COMMAND");
  g_unsetenv ("GSM_PROVIDER_NOT_FOUND_PATTERN");
  g_unsetenv ("GSM_PROVIDER_LIST_COMMAND");
  g_unsetenv ("GSM_PROVIDER_LIST_FORMAT");
  g_unsetenv ("GSM_PROVIDER_TIMEOUT");
  g_unsetenv ("GSM_REAP_AUTO");
}

static inline void
fake_cloud_clear (FakeCloud *fc)
{
  g_free (fc->state);
  g_free (fc->config);
}

/* Appends @text to the configuration file. */
static inline void
fake_cloud_configure (FakeCloud  *fc,
                      const char *text)
{
  g_autofree char *old = NULL;
  g_autofree char *new = NULL;

  g_assert_true (g_file_get_contents (fc->config, &old, NULL, NULL));
  new = g_strconcat (old, text, NULL);
  g_assert_true (g_file_set_contents (fc->config, new, -1, NULL));
}

static inline JsonObject *
fake_cloud_read (FakeCloud *fc)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  json_parser_load_from_file (parser, fc->state, &error);
  g_assert_no_error (error);
  return json_object_ref (json_node_get_object (json_parser_get_root (parser)));
}

static inline void
fake_cloud_write (FakeCloud  *fc,
                  JsonObject *state)
{
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;

  json_node_set_object (root, state);
  text = json_to_string (root, TRUE);
  g_assert_true (g_file_set_contents (fc->state, text, -1, NULL));
}

/* Adds a running VM, made @age seconds ago, with the labels of
 * @labels (an a{ss}, may be NULL; consumed). */
static inline void
fake_cloud_add (FakeCloud  *fc,
                const char *vm_id,
                const char *zone,
                GVariant   *labels,
                double      age)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);
  JsonObject *vm = json_object_new ();
  JsonObject *l = json_object_new ();

  if (labels != NULL)
    {
      GVariantIter iter;
      const char  *k, *v;

      g_variant_iter_init (&iter, labels);
      while (g_variant_iter_next (&iter, "{&s&s}", &k, &v))
        json_object_set_string_member (l, k, v);
      g_variant_unref (g_variant_take_ref (labels));
    }
  json_object_set_string_member (vm, "id", vm_id);
  json_object_set_string_member (vm, "name", vm_id);
  json_object_set_string_member (vm, "zone", zone);
  json_object_set_object_member (vm, "labels", l);
  json_object_set_double_member (vm, "created", g_get_real_time () / 1e6 - age);
  json_object_set_string_member (vm, "state", "running");
  json_array_add_object_element (json_object_get_array_member (state, "vms"), vm);
  fake_cloud_write (fc, state);
}

/* The VM whose id (or, with @by_name, name) is @vm_id; NULL if none. */
static inline JsonObject *
fake_cloud_find (JsonObject *state,
                 const char *vm_id,
                 gboolean    by_name)
{
  JsonArray *vms = json_object_get_array_member (state, "vms");

  for (guint i = 0; i < json_array_get_length (vms); i++)
    {
      JsonObject *vm = json_array_get_object_element (vms, i);

      if (g_strcmp0 (json_object_get_string_member (vm, by_name ? "name" : "id"), vm_id) == 0)
        return vm;
    }
  return NULL;
}

/* Is @vm_id (an id or a name) a VM that runs (not terminated)? */
static inline gboolean
fake_cloud_has (FakeCloud  *fc,
                const char *vm_id)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);
  JsonObject *vm = fake_cloud_find (state, vm_id, FALSE);

  if (vm == NULL)
    vm = fake_cloud_find (state, vm_id, TRUE);
  return vm != NULL &&
         g_strcmp0 (json_object_get_string_member_with_default (vm, "state", "running"),
                    "terminated") != 0;
}

/* The id of the VM named @name (AWS: its instance ID). */
static inline char *
fake_cloud_id_of (FakeCloud  *fc,
                  const char *name)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);
  JsonObject *vm = fake_cloud_find (state, name, TRUE);

  g_assert_nonnull (vm);
  return g_strdup (json_object_get_string_member (vm, "id"));
}

/* Deletes a VM behind the registry's back (the console, another tool). */
static inline void
fake_cloud_remove (FakeCloud  *fc,
                   const char *vm_id)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);
  JsonArray *vms = json_object_get_array_member (state, "vms");

  for (guint i = 0; i < json_array_get_length (vms); i++)
    if (g_strcmp0 (json_object_get_string_member (json_array_get_object_element (vms, i), "id"),
                   vm_id) == 0)
      {
        json_array_remove_element (vms, i);
        break;
      }
  fake_cloud_write (fc, state);
}

/* Makes @vm_id as old as @age seconds (time passing, without waiting). */
static inline void
fake_cloud_set_age (FakeCloud  *fc,
                    const char *vm_id,
                    double      age)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);
  JsonObject *vm = fake_cloud_find (state, vm_id, FALSE);

  if (vm == NULL)
    vm = fake_cloud_find (state, vm_id, TRUE);
  g_assert_nonnull (vm);
  json_object_set_double_member (vm, "created", g_get_real_time () / 1e6 - age);
  fake_cloud_write (fc, state);
}

static inline void
fake_cloud_set_mode (FakeCloud  *fc,
                     const char *mode)
{
  g_autoptr (JsonObject) state = fake_cloud_read (fc);

  json_object_set_string_member (state, "mode", mode);
  fake_cloud_write (fc, state);
}

/* The calls of @verb ("delete", "list", "create") so far, one string each
 * ("ID ZONE" for delete and create, the filter for list), in order. */
static inline char **
fake_cloud_calls (FakeCloud  *fc,
                  const char *verb)
{
  g_autofree char *log = g_strconcat (fc->state, ".log", NULL);
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *out = g_ptr_array_new ();

  if (g_file_get_contents (log, &contents, NULL, NULL))
    {
      lines = g_strsplit (contents, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          /* "CLI VERB REST" */
          g_auto (GStrv) parts = g_strsplit (lines[i], " ", 3);

          if (g_strv_length (parts) == 3 && g_str_equal (parts[1], verb))
            g_ptr_array_add (out, g_strdup (parts[2]));
        }
    }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

static inline int
fake_cloud_compare (gconstpointer a,
                    gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Asserts that the provider was asked to delete exactly @expected (a
 * NULL-terminated list of "ID ZONE", in any order), no more, no less. */
static inline void
fake_cloud_assert_deleted (FakeCloud         *fc,
                           const char *const *expected)
{
  g_auto (GStrv) calls = fake_cloud_calls (fc, "delete");
  g_autoptr (GPtrArray) sorted_calls = g_ptr_array_new ();
  g_autoptr (GPtrArray) sorted_expected = g_ptr_array_new ();

  for (guint i = 0; calls[i]; i++)
    g_ptr_array_add (sorted_calls, calls[i]);
  for (guint i = 0; expected && expected[i]; i++)
    g_ptr_array_add (sorted_expected, (gpointer) expected[i]);
  g_ptr_array_sort (sorted_calls, fake_cloud_compare);
  g_ptr_array_sort (sorted_expected, fake_cloud_compare);
  g_ptr_array_add (sorted_calls, NULL);
  g_ptr_array_add (sorted_expected, NULL);
  g_assert_cmpstrv ((char **) sorted_calls->pdata, (char **) sorted_expected->pdata);
}
