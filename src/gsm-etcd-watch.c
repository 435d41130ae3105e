/* gsm-etcd-watch.c: the watch that keeps the etcd registry's view current
 *
 * Once a view was read, the registry's thread watches PREFIX/ from its
 * revision on (the informer pattern): each event makes a new view from
 * the previous one, and ::changed is emitted in the owner's context, so
 * that reads and updates need no range read of the whole prefix.
 *
 * A watch that breaks (a member stopped, a message that cannot be read)
 * is opened again after a backoff, from the last revision it delivered;
 * one that etcd cancels because that revision was compacted starts from
 * the present, after a read of the whole prefix. The watch follows the
 * member that answers requests, and one silent for longer than etcd's
 * progress notifications allow is taken for a connection lost without a
 * word.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-etcd-registry-parts-private.h"

#define WATCH_RETRY_MIN_MS 100
#define WATCH_RETRY_MAX_MS 2000
/* A watch asks for progress notifications, which etcd sends every 10
 * minutes (--experimental-watch-progress-notify-interval) on a watch
 * without events: one that brings nothing for longer is taken for a
 * connection lost without a word, and opened again. */
#define WATCH_IDLE_TIMEOUT_S (11 * 60)

static void watch_connect (GsmEtcdRegistry *self);
static void watch_read (GsmEtcdRegistry *self);

/* The watch follows the member that answers: once requests moved away
 * from the member serving the watch (it stopped answering, or refused),
 * the watch is left and opened again, on the member now preferred. etcd
 * sends nothing on a watch without events, so this is how a stalled
 * member is noticed: the keepalive, every TTL/3, asks the preferred member
 * first. */
void
_gsm_etcd_watch_check_member (GsmEtcdRegistry *self)
{
  if (self->watch_stream == NULL || self->watch_cancellable == NULL ||
      self->watch_member == _gsm_etcd_client_get_preferred (self->client))
    return;

  g_debug ("etcd at %s: leaving the watch on member %u, which no longer answers first",
           self->endpoint, self->watch_member);
  g_cancellable_cancel (self->watch_cancellable);
}

static gboolean
watch_retry_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_clear_pointer (&self->watch_retry_source, g_source_unref);
  watch_connect (self);
  return G_SOURCE_REMOVE;
}

static gboolean
watch_idle_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  g_clear_pointer (&self->watch_idle_source, g_source_unref);
  g_debug ("etcd at %s: the watch brought nothing for %d s", self->endpoint, WATCH_IDLE_TIMEOUT_S);
  if (self->watch_cancellable != NULL)
    g_cancellable_cancel (self->watch_cancellable);
  return G_SOURCE_REMOVE;
}

/* The stream brought something (or was opened): the idle time starts
 * again; with @on FALSE, it is not counted. */
static void
watch_set_idle (GsmEtcdRegistry *self,
                gboolean         on)
{
  _gsm_etcd_registry_clear_source (&self->watch_idle_source);
  if (!on)
    return;

  self->watch_idle_source = g_timeout_source_new_seconds (WATCH_IDLE_TIMEOUT_S);
  g_source_set_callback (self->watch_idle_source, watch_idle_cb, self, NULL);
  g_source_set_static_name (self->watch_idle_source, "[gsm] etcd watch idle");
  g_source_attach (self->watch_idle_source, self->context);
}

static void
watch_broken (GsmEtcdRegistry *self,
              const char      *why)
{
  if (g_atomic_int_get (&self->stopping))
    return;

  watch_set_idle (self, FALSE);

  g_debug ("etcd at %s: watch broken (%s); reconnecting in %u ms", self->endpoint, why,
           self->watch_retry_ms);
  g_clear_object (&self->watch_stream);
  if (self->watch_buffer != NULL)
    g_byte_array_set_size (self->watch_buffer, 0);

  if (self->watch_retry_source == NULL)
    {
      self->watch_retry_source = g_timeout_source_new (self->watch_retry_ms);
      g_source_set_callback (self->watch_retry_source, watch_retry_cb, self, NULL);
      g_source_set_static_name (self->watch_retry_source, "[gsm] etcd watch retry");
      g_source_attach (self->watch_retry_source, self->context);
    }
  self->watch_retry_ms = MIN (self->watch_retry_ms * 2, WATCH_RETRY_MAX_MS);
}

/* ---- messages ---------------------------------------------------------- */

/* etcd cancelled the watch. */
static void
watch_canceled (GsmEtcdRegistry *self,
                GsmEtcdResponse *response)
{
  if (response->compact_revision > 0)
    {
      /* Compacted past where we were: start from now, and read everything
       * again once the new watch is in place. */
      self->watch_revision = 0;
      self->relist = TRUE;
      g_mutex_lock (&self->mutex);
      self->informed = FALSE;
      g_mutex_unlock (&self->mutex);
    }
  else
    {
      /* Refused (etcd restarted, or its users changed): with a new token
       * next time. */
      _gsm_etcd_client_forget_token (self->client);
    }
  _gsm_etcd_registry_emit (self, GSM_ETCD_PENDING_CHANGED);
}

/* The watch is in place: from now on it keeps the view current. FALSE:
 * reconnect. */
static gboolean
watch_created (GsmEtcdRegistry *self)
{
  self->watch_retry_ms = WATCH_RETRY_MIN_MS;
  if (self->relist || self->watch_revision == 0)
    {
      /* Events from here on are delivered: a read now closes the gap (the
       * events it already shows are skipped). */
      g_autoptr (GsmEtcdView) view = _gsm_etcd_registry_read_view (self, self->cancellable, NULL);

      if (view == NULL)
        return FALSE;
      self->relist = FALSE;
      self->watch_revision = _gsm_etcd_view_get_revision (view);
      _gsm_etcd_registry_emit (self, GSM_ETCD_PENDING_CHANGED);
    }
  g_mutex_lock (&self->mutex);
  self->informed = TRUE;
  g_mutex_unlock (&self->mutex);
  self->n_watch_connects++;
  return TRUE;
}

/* Makes the view of @revision from the current one and @events. Under the
 * mutex. */
static void
apply_events_locked (GsmEtcdRegistry *self,
                     GPtrArray       *events,
                     gint64           revision)
{
  GsmEtcdViewContext ctx = _gsm_etcd_registry_view_context (self);
  g_autoptr (GsmEtcdView) view = _gsm_etcd_view_apply_events (&ctx, self->view, events, revision);

  _gsm_etcd_registry_set_view_locked (self, view);
}

static void
watch_events (GsmEtcdRegistry *self,
              GsmEtcdResponse *response)
{
  g_mutex_lock (&self->mutex);
  if (self->view != NULL)
    {
      gint64 at = _gsm_etcd_view_get_revision (self->view);
      g_autoptr (GPtrArray) newer = g_ptr_array_new ();

      /* What the view already shows (it came from a read at a later
       * revision than the watch) is not applied twice. */
      for (guint i = 0; i < response->events->len; i++)
        {
          GsmEtcdEvent *ev = response->events->pdata[i];

          if (ev->kv->mod_revision > at)
            g_ptr_array_add (newer, ev);
        }
      if (newer->len > 0)
        apply_events_locked (self, newer, response->revision);
    }
  g_mutex_unlock (&self->mutex);
  _gsm_etcd_registry_emit (self, GSM_ETCD_PENDING_CHANGED);
}

/* One message of the stream. FALSE: reconnect. */
static gboolean
watch_handle_line (GsmEtcdRegistry *self,
                   const char      *line,
                   gsize            len)
{
  g_autoptr (GsmEtcdResponse) response = NULL;
  g_autoptr (GError) error = NULL;

  if (len == 0)
    return TRUE;

  if (!_gsm_etcd_response_parse (line, len, &response, &error))
    {
      g_warning ("etcd at %s: watch: %s", self->endpoint, error->message);
      return FALSE;
    }
  if (response->has_error)
    {
      g_debug ("etcd at %s: watch: %s", self->endpoint, response->error_message);
      return FALSE;
    }
  if (response->canceled)
    {
      watch_canceled (self, response);
      return FALSE;
    }
  if (response->created && !watch_created (self))
    return FALSE;
  if (response->events->len > 0)
    watch_events (self, response);
  if (response->revision > self->watch_revision)
    self->watch_revision = response->revision;
  if (self->informed)
    {
      /* Progress with no event of ours: the view is as recent. */
      g_mutex_lock (&self->mutex);
      if (self->view != NULL && response->revision > _gsm_etcd_view_get_revision (self->view) &&
          response->events->len == 0 && !response->created)
        {
          g_autoptr (GPtrArray) none = g_ptr_array_new ();

          apply_events_locked (self, none, response->revision);
        }
      g_mutex_unlock (&self->mutex);
    }

  return TRUE;
}

/* ---- the stream -------------------------------------------------------- */

/* Handles the whole lines of what the stream brought. FALSE: the watch
 * broke. */
static gboolean
watch_take (GsmEtcdRegistry *self,
            GBytes          *bytes)
{
  const guint8 *data;
  gsize         len, start = 0;

  data = g_bytes_get_data (bytes, &len);
  g_byte_array_append (self->watch_buffer, data, (guint) len);
  for (gsize i = 0; i < self->watch_buffer->len; i++)
    if (self->watch_buffer->data[i] == '\n')
      {
        if (!watch_handle_line (self, (const char *) self->watch_buffer->data + start, i - start))
          {
            watch_broken (self, "invalid message");
            return FALSE;
          }
        start = i + 1;
      }
  g_byte_array_remove_range (self->watch_buffer, 0, (guint) start);

  if (self->watch_buffer->len > GSM_ETCD_MAX_RESPONSE)
    {
      watch_broken (self, "message too large");
      return FALSE;
    }

  return TRUE;
}

static void
watch_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;

  self->n_inflight--;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (bytes == NULL)
    {
      watch_broken (self, error->message);
      return;
    }
  if (g_atomic_int_get (&self->stopping))
    return;
  if (g_bytes_get_size (bytes) == 0)
    {
      watch_broken (self, "end of stream");
      return;
    }

  watch_set_idle (self, TRUE);
  if (watch_take (self, bytes))
    watch_read (self);
}

static void
watch_read (GsmEtcdRegistry *self)
{
  self->n_inflight++;
  g_input_stream_read_bytes_async (self->watch_stream, 64 * 1024, G_PRIORITY_DEFAULT,
                                   self->watch_cancellable, watch_read_cb, self);
}

static void
watch_sent_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GsmEtcdRegistry *self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GBytes) first = NULL;

  self->n_inflight--;

  stream = _gsm_etcd_client_open_stream_finish (self->client, result, &self->watch_member,
                                                &first, &error);
  if (stream == NULL)
    {
      watch_broken (self, error->message);
      return;
    }
  if (g_atomic_int_get (&self->stopping))
    return;

  self->watch_stream = g_steal_pointer (&stream);
  g_clear_object (&self->watch_cancellable);
  self->watch_cancellable = g_cancellable_new ();
  if (self->watch_buffer == NULL)
    self->watch_buffer = g_byte_array_new ();
  g_byte_array_set_size (self->watch_buffer, 0);
  watch_set_idle (self, TRUE);
  if (watch_take (self, first))
    watch_read (self);
}

static void
watch_connect (GsmEtcdRegistry *self)
{
  g_autofree char *key = g_strconcat (self->prefix, "/", NULL);
  g_autoptr (GString) body = g_string_new ("{\"create_request\": {");

  if (g_atomic_int_get (&self->stopping))
    return;

  _gsm_etcd_append_range (body, key);
  if (self->watch_revision > 0)
    g_string_append_printf (body, ", \"start_revision\": \"%" G_GINT64_FORMAT "\"",
                            self->watch_revision + 1);
  /* etcd then also says how far it got when there is nothing to say. */
  g_string_append (body, ", \"progress_notify\": true}}");

  self->n_inflight++;
  _gsm_etcd_client_open_stream_async (self->client, "/v3/watch", body->str, body->len,
                                      self->keepalive_timeout_ms, self->cancellable,
                                      watch_sent_cb, self);
}

static gboolean
watch_start_cb (gpointer user_data)
{
  GsmEtcdRegistry *self = user_data;

  if (!self->watching)
    {
      self->watching = TRUE;
      self->watch_retry_ms = WATCH_RETRY_MIN_MS;
      watch_connect (self);
    }
  return G_SOURCE_REMOVE;
}

/* Starts the watch that keeps the view current, once. From any thread. */
void
_gsm_etcd_watch_start (GsmEtcdRegistry *self)
{
  GSource *source;

  if (!g_atomic_int_compare_and_exchange (&self->watch_requested, 0, 1))
    return;

  /* From the revision of the view, so that nothing written since is
   * missed. */
  g_mutex_lock (&self->mutex);
  if (self->view != NULL && self->watch_revision == 0)
    self->watch_revision = _gsm_etcd_view_get_revision (self->view);
  g_mutex_unlock (&self->mutex);

  source = g_idle_source_new ();
  g_source_set_callback (source, watch_start_cb, self, NULL);
  g_source_attach (source, self->context);
  g_source_unref (source);
}

/* After the thread stopped: what the watch held. */
void
_gsm_etcd_watch_clear (GsmEtcdRegistry *self)
{
  _gsm_etcd_registry_clear_source (&self->watch_retry_source);
  _gsm_etcd_registry_clear_source (&self->watch_idle_source);
  g_clear_object (&self->watch_stream);
  g_clear_object (&self->watch_cancellable);
  g_clear_pointer (&self->watch_buffer, g_byte_array_unref);
}
