/* dbus-test-util.h: calling and listening on a test bus from a main loop
 *
 * The object under test handles its calls in this thread's main context,
 * so a test never blocks on a call: it iterates the context until the
 * reply (or a signal) is there, with a bound on the wait.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>
#include <glib/gstdio.h>

#define TEST_IFACE "org.gsm.SessionManager1"
#define TEST_PATH "/org/gsm/SessionManager1"
/* A generous bound for anything that should take milliseconds. */
#define TEST_WAIT_MS 10000

typedef struct
{
  gboolean  done;
  GVariant *reply;
  GError   *error;
} CallState;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CallState *state = user_data;

  state->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &state->error);
  state->done = TRUE;
}

static G_GNUC_UNUSED GVariant *
test_call (GDBusConnection *connection,
           const char      *dest,
           const char      *path,
           const char      *iface,
           const char      *method,
           GVariant        *params,
           const char      *reply_type,
           GError         **error)
{
  CallState state = { 0 };

  g_dbus_connection_call (connection, dest, path, iface, method, params,
                          reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, TEST_WAIT_MS, NULL, call_done_cb, &state);
  while (!state.done)
    g_main_context_iteration (NULL, TRUE);

  if (state.error != NULL)
    g_propagate_error (error, state.error);
  return state.reply;
}

/* ---- signal recorder --------------------------------------------------- */

typedef struct
{
  char     *member;
  GVariant *params;
  gint64    received_us; /* g_get_monotonic_time () on arrival */
} Received;

typedef struct
{
  GDBusConnection *connection;
  guint            id;
  GPtrArray       *received; /* Received* */
} Recorder;

static void
received_free (gpointer p)
{
  Received *r = p;

  g_free (r->member);
  g_variant_unref (r->params);
  g_free (r);
}

static void
recorder_signal_cb (GDBusConnection *connection,
                    const char      *sender,
                    const char      *path,
                    const char      *iface,
                    const char      *member,
                    GVariant        *params,
                    gpointer         user_data)
{
  Recorder *rec = user_data;
  Received *r = g_new0 (Received, 1);

  r->member = g_strdup (member);
  r->params = g_variant_ref (params);
  r->received_us = g_get_monotonic_time ();
  g_ptr_array_add (rec->received, r);
}

/* Records every signal @sender sends from @path (any interface). */
static G_GNUC_UNUSED Recorder *
recorder_new (GDBusConnection *connection,
              const char      *sender,
              const char      *path)
{
  Recorder *rec = g_new0 (Recorder, 1);

  rec->connection = g_object_ref (connection);
  rec->received = g_ptr_array_new_with_free_func (received_free);
  rec->id = g_dbus_connection_signal_subscribe (connection, sender, NULL, NULL, path, NULL,
                                                G_DBUS_SIGNAL_FLAGS_NONE, recorder_signal_cb, rec, NULL);
  return rec;
}

static G_GNUC_UNUSED void
recorder_free (Recorder *rec)
{
  g_dbus_connection_signal_unsubscribe (rec->connection, rec->id);
  g_ptr_array_unref (rec->received);
  g_object_unref (rec->connection);
  g_free (rec);
}

static gboolean
timeout_flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* First signal @member whose first argument (a string) is @arg0 (or any if
 * NULL), received at or after index *@from (0 if @from is NULL); waits up
 * to @timeout_ms. Advances *@from past it. NULL if none came. */
static G_GNUC_UNUSED Received *
recorder_wait_ms (Recorder   *rec,
                  guint      *from,
                  const char *member,
                  const char *arg0,
                  guint       timeout_ms)
{
  gboolean  timed_out = FALSE;
  guint     timeout_id = g_timeout_add (timeout_ms, timeout_flag_cb, &timed_out);
  Received *found = NULL;
  guint     i = from ? *from : 0;

  while (found == NULL)
    {
      for (; i < rec->received->len; i++)
        {
          Received *r = rec->received->pdata[i];

          if (!g_str_equal (r->member, member))
            continue;
          if (arg0 != NULL)
            {
              const char *first = NULL;

              if (g_variant_n_children (r->params) == 0)
                continue;
              g_variant_get_child (r->params, 0, "&s", &first);
              if (!g_str_equal (first, arg0))
                continue;
            }
          found = r;
          i++;
          break;
        }
      if (found != NULL || timed_out)
        break;
      g_main_context_iteration (NULL, TRUE);
    }

  if (!timed_out)
    g_source_remove (timeout_id);
  if (from != NULL)
    *from = i;
  return found;
}

/* recorder_wait_ms() with the usual bound, TEST_WAIT_MS. */
static G_GNUC_UNUSED Received *
recorder_wait (Recorder   *rec,
               guint      *from,
               const char *member,
               const char *arg0)
{
  return recorder_wait_ms (rec, from, member, arg0, TEST_WAIT_MS);
}

/* Runs the main loop until @done is set or TEST_WAIT_MS pass. */
static G_GNUC_UNUSED gboolean
wait_for_flag (gboolean *done)
{
  gboolean timed_out = FALSE;
  guint    timeout_id = g_timeout_add (TEST_WAIT_MS, timeout_flag_cb, &timed_out);

  while (!*done && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (timeout_id);
  return *done;
}

/* ---- registry directories ---------------------------------------------- */

/* A fresh, private registry directory for this test. */
static G_GNUC_UNUSED char *
make_runtime_dir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("gsm-dbus-XXXXXX", &error);

  g_assert_no_error (error);
  g_setenv ("GSM_RUNTIME_DIR", dir, TRUE);
  return dir;
}

static G_GNUC_UNUSED void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir != NULL)
    while ((name = g_dir_read_name (dir)) != NULL)
      {
        g_autofree char *child = g_build_filename (path, name, NULL);

        if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
          remove_tree (child);
        else
          g_unlink (child);
      }
  g_rmdir (path);
}
