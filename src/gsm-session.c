/* gsm-session.c: GsmSession
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <math.h>
#include <string.h>

#include "gsm-error.h"
#include "gsm-json-private.h"
#include "gsm-session-private.h"

/**
 * GsmSession:
 *
 * One session as recorded in the registry: the process that owns it
 * (pid, hostname, start time, boot id), its status (`active` or `stale`)
 * and the VM it owns, if any.
 *
 * A `GsmSession` is an immutable snapshot; every property is read-only.
 * The field names and types are those of the JSON files.
 *
 * Since: 1.0
 */
/* Every entry's status is one of these two, not a copy. */
static const char status_active[] = GSM_STATUS_ACTIVE;
const char        _gsm_status_stale[] = GSM_STATUS_STALE;

enum
{
  PROP_0,
  PROP_SESSION_ID,
  PROP_PID,
  PROP_HOSTNAME,
  PROP_CREATED_AT,
  PROP_STATUS,
  PROP_HAS_VM,
  PROP_VM_ID,
  PROP_ZONE,
  PROP_COMPONENTS,
  PROP_METADATA,
  PROP_REGISTERED_AT,
  PROP_START_TIME,
  PROP_BOOT_ID,
  PROP_STALE_SINCE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (GsmSession, gsm_session, G_TYPE_OBJECT)

static void
gsm_session_finalize (GObject *object)
{
  GsmSession *self = GSM_SESSION (object);

  g_free (self->session_id);
  g_free (self->hostname);
  g_free (self->status_other);
  g_free (self->vm_id);
  g_free (self->zone);
  g_strfreev (self->components);
  g_clear_pointer (&self->metadata, g_variant_unref);
  g_free (self->boot_id);
  g_free (self->lock_file);
  g_clear_pointer (&self->extra, json_object_unref);
  g_free (self->text);

  G_OBJECT_CLASS (gsm_session_parent_class)->finalize (object);
}

static void
gsm_session_get_property (GObject    *object,
                          guint       prop_id,
                          GValue     *value,
                          GParamSpec *pspec)
{
  GsmSession *self = GSM_SESSION (object);

  switch (prop_id)
    {
    case PROP_SESSION_ID:
      g_value_set_string (value, self->session_id);
      break;
    case PROP_PID:
      g_value_set_int (value, self->pid);
      break;
    case PROP_HOSTNAME:
      g_value_set_string (value, self->hostname);
      break;
    case PROP_CREATED_AT:
      g_value_set_double (value, self->created_at);
      break;
    case PROP_STATUS:
      g_value_set_string (value, self->status);
      break;
    case PROP_HAS_VM:
      g_value_set_boolean (value, self->vm_id != NULL);
      break;
    case PROP_VM_ID:
      g_value_set_string (value, self->vm_id);
      break;
    case PROP_ZONE:
      g_value_set_string (value, self->zone);
      break;
    case PROP_COMPONENTS:
      g_value_set_boxed (value, self->components);
      break;
    case PROP_METADATA:
      g_value_set_variant (value, gsm_session_get_metadata (self));
      break;
    case PROP_REGISTERED_AT:
      g_value_set_double (value, self->registered_at);
      break;
    case PROP_START_TIME:
      g_value_set_uint64 (value, self->start_time);
      break;
    case PROP_BOOT_ID:
      g_value_set_string (value, self->boot_id);
      break;
    case PROP_STALE_SINCE:
      g_value_set_double (value, self->stale_since);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_session_class_init (GsmSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_session_finalize;
  object_class->get_property = gsm_session_get_property;

  /**
   * GsmSession:session-id:
   *
   * The session's UUID.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_ID] =
      g_param_spec_string ("session-id", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:pid:
   *
   * The process ID of the session's process, on [property@Gsm.Session:hostname].
   *
   * Since: 1.0
   */
  properties[PROP_PID] =
      g_param_spec_int ("pid", NULL, NULL, 0, G_MAXINT, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:hostname:
   *
   * The host the session's process runs on.
   *
   * Since: 1.0
   */
  properties[PROP_HOSTNAME] =
      g_param_spec_string ("hostname", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:created-at:
   *
   * When the session was created, in seconds since the Unix epoch.
   *
   * Since: 1.0
   */
  properties[PROP_CREATED_AT] =
      g_param_spec_double ("created-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:status:
   *
   * `active`, or `stale` once the session was found dead while still
   * owning a VM (the VM is then an orphan waiting to be reaped).
   *
   * Since: 1.0
   */
  properties[PROP_STATUS] =
      g_param_spec_string ("status", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:has-vm:
   *
   * Whether the session owns a VM.
   *
   * Since: 1.0
   */
  properties[PROP_HAS_VM] =
      g_param_spec_boolean ("has-vm", NULL, NULL, FALSE,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:vm-id:
   *
   * The VM the session owns, or %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_VM_ID] =
      g_param_spec_string ("vm-id", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:zone:
   *
   * The zone of the session's VM, or %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_ZONE] =
      g_param_spec_string ("zone", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:components:
   *
   * The components running on the session's VM (empty without a VM).
   *
   * Since: 1.0
   */
  properties[PROP_COMPONENTS] =
      g_param_spec_boxed ("components", NULL, NULL, G_TYPE_STRV,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:metadata:
   *
   * The VM's metadata, a dictionary (`a{sv}`), empty without a VM.
   *
   * Since: 1.0
   */
  properties[PROP_METADATA] =
      g_param_spec_variant ("metadata", NULL, NULL, G_VARIANT_TYPE_VARDICT, NULL,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:registered-at:
   *
   * When the VM was registered (seconds since the epoch), 0 without a VM.
   *
   * Since: 1.0
   */
  properties[PROP_REGISTERED_AT] =
      g_param_spec_double ("registered-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:start-time:
   *
   * The process's start time in clock ticks after boot (field 22 of
   * `/proc/PID/stat`), which tells a reused pid from the original
   * process; 0 if unknown.
   *
   * Since: 1.0
   */
  properties[PROP_START_TIME] =
      g_param_spec_uint64 ("start-time", NULL, NULL, 0, G_MAXUINT64, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:boot-id:
   *
   * The kernel boot id of the host when the session started, or %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_BOOT_ID] =
      g_param_spec_string ("boot-id", NULL, NULL, NULL,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmSession:stale-since:
   *
   * When the session was first found dead (seconds since the epoch), or 0.
   *
   * Since: 1.0
   */
  properties[PROP_STALE_SINCE] =
      g_param_spec_double ("stale-since", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_session_init (GsmSession *self)
{
}

/* ---- reading ----------------------------------------------------------- */

gboolean
_gsm_validate_identifier (const char *what,
                          const char *value,
                          gsize       max_len,
                          GError    **error)
{
  if (value == NULL || *value == '\0')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT, "%s is empty", what);
      return FALSE;
    }
  if (strlen (value) > max_len)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "%s is longer than %" G_GSIZE_FORMAT " bytes", what, max_len);
      return FALSE;
    }
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT, "%s is not valid UTF-8", what);
      return FALSE;
    }
  for (const char *p = value; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                     "%s contains a control character", what);
        return FALSE;
      }

  return TRUE;
}

/*
 * _gsm_validate_name:
 *
 * Checks a name a provider command is given as an argument (a VM id, a
 * zone): an identifier (see _gsm_validate_identifier()) that also has no
 * white space and no control character anywhere (Unicode's included) and
 * does not start with “-”, which a command would take for an option.
 */
gboolean
_gsm_validate_name (const char *what,
                    const char *value,
                    gsize       max_len,
                    GError    **error)
{
  if (!_gsm_validate_identifier (what, value, max_len, error))
    return FALSE;
  if (value[0] == '-')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "%s “%s” starts with “-”, which a provider command would take for an option",
                   what, value);
      return FALSE;
    }
  for (const char *p = value; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_isspace (c) || g_unichar_iscntrl (c) ||
          g_unichar_type (c) == G_UNICODE_FORMAT)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "%s “%s” contains white space or an invisible character (U+%04X)",
                       what, value, c);
          return FALSE;
        }
    }

  return TRUE;
}

/* json-glib reads 1e400 as infinity and would write it back as “inf.0”,
 * which no JSON reader accepts: such an entry could not be rewritten. */
static gboolean
node_is_finite (JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE (node))
    return json_node_get_value_type (node) != G_TYPE_DOUBLE || isfinite (json_node_get_double (node));
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      for (guint i = 0; i < json_array_get_length (array); i++)
        if (!node_is_finite (json_array_get_element (array, i)))
          return FALSE;
    }
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObjectIter iter;
      JsonNode      *member;

      json_object_iter_init (&iter, json_node_get_object (node));
      while (json_object_iter_next (&iter, NULL, &member))
        if (!node_is_finite (member))
          return FALSE;
    }
  return TRUE;
}

static gboolean
bad_member (GError    **error,
            const char *name,
            const char *expected)
{
  g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
               "member “%s” is not %s", name, expected);
  return FALSE;
}

/* The member @name of @object; %NULL if it is absent, or null and
 * @nullable. */
static JsonNode *
get_member (JsonObject *object,
            const char *name,
            gboolean    nullable)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && nullable && JSON_NODE_HOLDS_NULL (node) ? NULL : node;
}

static gboolean
string_from_node (JsonNode   *node,
                  const char *name,
                  gsize       max_len,
                  char      **out,
                  GError    **error)
{
  if (json_node_get_value_type (node) != G_TYPE_STRING)
    return bad_member (error, name, "a string");
  if (!_gsm_validate_identifier (name, json_node_get_string (node), max_len, NULL))
    return bad_member (error, name, "a short printable string");
  *out = g_strdup (json_node_get_string (node));
  return TRUE;
}

static gboolean
read_string (JsonObject *object,
             const char *name,
             gboolean    nullable,
             gsize       max_len,
             char      **out,
             GError    **error)
{
  JsonNode *node = get_member (object, name, nullable);

  return node == NULL || string_from_node (node, name, max_len, out, error);
}

/* A time: any JSON number (an integer read as gint64, then converted),
 * finite and within 0…1e12. */
static gboolean
read_time (JsonObject *object,
           const char *name,
           gboolean    nullable,
           double     *out,
           GError    **error)
{
  JsonNode *node = get_member (object, name, nullable);
  GType     type;
  double    d;

  if (node == NULL)
    return TRUE;
  type = json_node_get_value_type (node);
  if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
    return bad_member (error, name, "a number");
  d = type == G_TYPE_INT64 ? (double) json_node_get_int (node) : json_node_get_double (node);
  if (!isfinite (d) || d < 0 || d > 1e12)
    return bad_member (error, name, "a time in seconds since the epoch");
  *out = d;
  return TRUE;
}

/* An integer (the scan refused those beyond 64 bits) within @min…@max. */
static gboolean
read_int (JsonObject *object,
          const char *name,
          gboolean    nullable,
          gint64      min,
          gint64      max,
          gint64     *out,
          GError    **error)
{
  JsonNode *node = get_member (object, name, nullable);
  gint64    v;

  if (node == NULL)
    return TRUE;
  if (json_node_get_value_type (node) != G_TYPE_INT64)
    return bad_member (error, name, "an integer");
  v = json_node_get_int (node);
  if (v < min || v > max)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "member “%s” is %" G_GINT64_FORMAT ", outside %" G_GINT64_FORMAT
                   "…%" G_GINT64_FORMAT,
                   name, v, min, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

#define MAX_COMPONENTS 1024

static gboolean
read_components (JsonObject *object,
                 char     ***out,
                 GError    **error)
{
  JsonNode  *node = get_member (object, "components", TRUE);
  JsonArray *array;
  guint      n;

  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return bad_member (error, "components", "an array of strings");
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  if (n > MAX_COMPONENTS)
    return bad_member (error, "components", "an array of at most 1024 strings");
  *out = g_new0 (char *, n + 1);
  for (guint i = 0; i < n; i++)
    if (!string_from_node (json_array_get_element (array, i), "components", 255, &(*out)[i], error))
      {
        g_clear_pointer (out, g_strfreev);
        return FALSE;
      }
  return TRUE;
}

static gboolean
read_status (GsmSession *self,
             JsonObject *object,
             GError    **error)
{
  char *status = NULL;

  if (!read_string (object, "status", FALSE, 32, &status, error))
    return FALSE;
  /* The two statuses every entry has are not copied. */
  if (status == NULL || g_str_equal (status, GSM_STATUS_ACTIVE))
    self->status = status_active;
  else if (g_str_equal (status, GSM_STATUS_STALE))
    self->status = _gsm_status_stale;
  else
    self->status = self->status_other = g_steal_pointer (&status);
  g_free (status);
  return TRUE;
}

/* The members the core knows; any other is kept as it was read (they are
 * rare: the reaper's claims, other writers' fields). */
static const char *const known_members[] = {
  "session_id", "pid", "hostname", "vm_id", "zone", "components", "metadata", "created_at",
  "registered_at", "status", "stale_since", "start_time", "boot_id", "pid_ns", "lock_file",
  "format", /* ours; rewritten on every write */
};

static gboolean
read_extra (GsmSession *self,
            JsonObject *object,
            GError    **error)
{
  JsonObjectIter iter;
  const char    *name;
  JsonNode      *node;

  json_object_iter_init_ordered (&iter, object);
  while (json_object_iter_next_ordered (&iter, &name, &node))
    {
      gboolean known = FALSE;

      for (guint i = 0; i < G_N_ELEMENTS (known_members) && !known; i++)
        known = g_str_equal (name, known_members[i]);
      if (known)
        continue;
      if (!node_is_finite (node))
        return bad_member (error, name, "a value of finite numbers");
      if (self->extra == NULL)
        self->extra = json_object_new ();
      json_object_set_member (self->extra, name, json_node_copy (node));
    }
  return TRUE;
}

static gboolean
read_members (GsmSession *self,
              JsonObject *object,
              GError    **error)
{
  gint64    pid = 0, start_time = 0, pid_ns = 0;
  JsonNode *metadata;

  /* Any pid another writer may have: 1 is a container's main process,
   * and another host's pid_max may be above ours (Linux allows up to
   * 4194304; other systems differ). A local pid that no process can have
   * here is simply dead. */
  if (!read_string (object, "session_id", FALSE, 128, &self->session_id, error) ||
      !read_int (object, "pid", FALSE, 1, G_MAXINT, &pid, error) ||
      !read_string (object, "hostname", FALSE, 255, &self->hostname, error) ||
      !read_time (object, "created_at", FALSE, &self->created_at, error) ||
      !read_status (self, object, error) ||
      !read_string (object, "vm_id", TRUE, 255, &self->vm_id, error) ||
      !read_string (object, "zone", TRUE, 255, &self->zone, error) ||
      !read_components (object, &self->components, error) ||
      !read_time (object, "registered_at", TRUE, &self->registered_at, error) ||
      !read_int (object, "start_time", TRUE, 0, G_MAXINT64, &start_time, error) ||
      !read_string (object, "boot_id", TRUE, 64, &self->boot_id, error) ||
      !read_int (object, "pid_ns", TRUE, 0, G_MAXINT64, &pid_ns, error) ||
      !read_string (object, "lock_file", TRUE, 255, &self->lock_file, error) ||
      !read_time (object, "stale_since", TRUE, &self->stale_since, error) ||
      !read_extra (self, object, error))
    return FALSE;
  self->pid = (int) pid;
  self->start_time = (guint64) start_time;
  self->pid_ns = (guint64) pid_ns;

  metadata = get_member (object, "metadata", TRUE);
  if (metadata != NULL && !JSON_NODE_HOLDS_OBJECT (metadata))
    return bad_member (error, "metadata", "an object");
  if (metadata == NULL)
    {
      self->metadata_text = NULL;
      self->metadata_len = 0;
    }

  if (self->session_id == NULL || pid == 0 || self->hostname == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "a session entry lacks one of “session_id”, “pid”, “hostname”");
      return FALSE;
    }
  return TRUE;
}

/* The metadata is kept as written (the GVariant is built when asked for):
 * its text points into the session's own text. */
static gboolean
find_metadata (const GsmJsonMember *member,
               gpointer             user_data,
               GError             **error)
{
  GsmSession *self = user_data;

  if (g_str_equal (member->name, "metadata"))
    {
      self->metadata_text = member->value;
      self->metadata_len = member->value_len;
    }
  return TRUE;
}

/*
 * _gsm_session_new_from_json:
 * @key: (nullable): the registry key the entry was found under; the
 *   entry's `session_id` must match it
 * @text: the entry's JSON text
 * @parser: (nullable): a parser to read it with
 *
 * Reads an entry: its text is checked strictly, then read by json-glib.
 *
 * Returns: (transfer full): a session keeping @text, or %NULL with a
 *   %GSM_ERROR_CORRUPT_REGISTRY error
 */
GsmSession *
_gsm_session_new_from_json (const char *key,
                            const char *text,
                            gsize       len,
                            JsonParser *parser,
                            GError    **error)
{
  g_autoptr (GsmSession) self = NULL;
  g_autoptr (JsonParser) own_parser = NULL;
  g_autoptr (GError) local_error = NULL;

  self = g_object_new (GSM_TYPE_SESSION, NULL);
  /* Read from the copy the session keeps, so that the metadata's text can
   * point into it. */
  self->text = g_strndup (text, len);
  self->text_len = len;

  if (len == 0 || self->text[strspn (self->text, " \t\r\n")] != '{')
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "a session entry is not an object");
      return NULL;
    }
  if (!_gsm_json_scan (self->text, len, GSM_JSON_MAX_DEPTH, TRUE, find_metadata, self, error))
    return NULL;
  if (parser == NULL)
    parser = own_parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, self->text, (gssize) len, &local_error))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY, "%s", local_error->message);
      return NULL;
    }
  if (!read_members (self, json_node_get_object (json_parser_get_root (parser)), error))
    return NULL;

  if (key != NULL && g_strcmp0 (key, self->session_id) != 0)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "entry “%s” has session_id “%s”", key, self->session_id);
      return NULL;
    }

  if (self->vm_id == NULL)
    {
      /* No VM: the VM's fields mean nothing. */
      g_clear_pointer (&self->zone, g_free);
      g_clear_pointer (&self->components, g_strfreev);
      self->metadata_text = NULL;
      self->metadata_len = 0;
      self->registered_at = 0;
    }
  if (self->components == NULL)
    self->components = g_new0 (char *, 1);

  return g_steal_pointer (&self);
}

/* ---- writing ----------------------------------------------------------- */

static void
append_key (GString    *out,
            const char *name)
{
  if (out->len > 1)
    g_string_append (out, ", ");
  g_string_append_c (out, '"');
  g_string_append (out, name);
  g_string_append (out, "\": ");
}

/* The member @name, unless @value is %NULL. */
static void
append_string (GString    *out,
               const char *name,
               const char *value)
{
  if (value == NULL)
    return;
  append_key (out, name);
  _gsm_json_append_string (out, value);
}

static void
append_time (GString    *out,
             const char *name,
             double      value)
{
  append_key (out, name);
  _gsm_json_append_double (out, value);
}

/* The member @name, unless @value is 0. */
static void
append_uint (GString    *out,
             const char *name,
             guint64     value)
{
  if (value == 0)
    return;
  append_key (out, name);
  g_string_append_printf (out, "%" G_GUINT64_FORMAT, value);
}

/* Writes the session's text. The metadata's text is copied verbatim (it
 * may point into the text of the session this one was built from) and
 * then points into the new text. */
static void
serialize (GsmSession *self)
{
  GString *out = g_string_sized_new (512);
  gsize    metadata_offset = 0;

  g_string_append_c (out, '{');
  append_string (out, "session_id", self->session_id);
  append_uint (out, "pid", (guint64) self->pid);
  append_string (out, "hostname", self->hostname);
  if (self->vm_id != NULL)
    {
      append_string (out, "vm_id", self->vm_id);
      /* An entry read without a zone must read back: "" is not a zone. */
      append_key (out, "zone");
      if (self->zone != NULL)
        _gsm_json_append_string (out, self->zone);
      else
        g_string_append (out, "null");
      append_key (out, "components");
      g_string_append_c (out, '[');
      for (guint i = 0; self->components[i]; i++)
        {
          if (i > 0)
            g_string_append (out, ", ");
          _gsm_json_append_string (out, self->components[i]);
        }
      g_string_append_c (out, ']');
      append_key (out, "metadata");
      metadata_offset = out->len;
      if (self->metadata_text != NULL)
        g_string_append_len (out, self->metadata_text, (gssize) self->metadata_len);
      else
        g_string_append (out, "{}");
    }
  append_time (out, "created_at", self->created_at);
  if (self->vm_id != NULL)
    append_time (out, "registered_at", self->registered_at);
  append_string (out, "status", self->status);
  if (self->stale_since > 0)
    append_time (out, "stale_since", self->stale_since);
  append_uint (out, "start_time", self->start_time);
  append_string (out, "boot_id", self->boot_id);
  append_uint (out, "pid_ns", self->pid_ns);
  append_string (out, "lock_file", self->lock_file);
  append_uint (out, "format", GSM_FORMAT_VERSION);

  if (self->extra != NULL)
    {
      JsonObjectIter iter;
      const char    *name;
      JsonNode      *node;

      json_object_iter_init_ordered (&iter, self->extra);
      while (json_object_iter_next_ordered (&iter, &name, &node))
        {
          g_string_append (out, ", ");
          _gsm_json_append_string (out, name);
          g_string_append (out, ": ");
          /* Members with a number that is not finite were refused when read. */
          (void) _gsm_json_append_node (out, node);
        }
    }
  g_string_append_c (out, '}');

  g_assert (self->text == NULL);
  self->text_len = out->len;
  self->text = g_string_free (out, FALSE);
  if (self->metadata_text != NULL && self->vm_id != NULL)
    self->metadata_text = self->text + metadata_offset;
  else
    {
      self->metadata_text = NULL;
      self->metadata_len = 0;
    }
}

GsmSession *
_gsm_session_new (const char *session_id,
                  int         pid,
                  const char *hostname,
                  double      created_at,
                  guint64     start_time,
                  const char *boot_id)
{
  GsmSession *self = g_object_new (GSM_TYPE_SESSION, NULL);

  self->session_id = g_strdup (session_id);
  self->pid = pid;
  self->hostname = g_strdup (hostname);
  self->created_at = created_at;
  self->status = status_active;
  self->components = g_new0 (char *, 1);
  self->start_time = start_time;
  self->boot_id = g_strdup (boot_id);
  serialize (self);

  return self;
}

static GsmSession *
copy_session (GsmSession *base)
{
  GsmSession *self = g_object_new (GSM_TYPE_SESSION, NULL);

  self->session_id = g_strdup (base->session_id);
  self->pid = base->pid;
  self->hostname = g_strdup (base->hostname);
  self->created_at = base->created_at;
  self->status_other = g_strdup (base->status_other);
  self->status = base->status == base->status_other ? self->status_other : base->status;
  self->vm_id = g_strdup (base->vm_id);
  self->zone = g_strdup (base->zone);
  self->components = g_strdupv (base->components);
  /* Into @base's text until serialize() writes ours. */
  self->metadata_text = base->metadata_text;
  self->metadata_len = base->metadata_len;
  self->metadata = g_atomic_pointer_get (&base->metadata);
  if (self->metadata != NULL)
    g_variant_ref (self->metadata);
  self->registered_at = base->registered_at;
  self->start_time = base->start_time;
  self->boot_id = g_strdup (base->boot_id);
  self->pid_ns = base->pid_ns;
  self->lock_file = g_strdup (base->lock_file);
  self->stale_since = base->stale_since;
  self->extra = base->extra ? json_object_ref (base->extra) : NULL;

  return self;
}

GsmSession *
_gsm_session_with_vm (GsmSession        *base,
                      const char        *vm_id,
                      const char        *zone,
                      const char *const *components,
                      GVariant          *metadata,
                      double             registered_at)
{
  GsmSession      *self = copy_session (base);
  g_autofree char *metadata_text = NULL;

  g_free (self->vm_id);
  self->vm_id = g_strdup (vm_id);
  g_free (self->zone);
  self->zone = g_strdup (zone);
  g_strfreev (self->components);
  self->components = components ? g_strdupv ((char **) components) : g_new0 (char *, 1);
  g_clear_pointer (&self->metadata, g_variant_unref);
  self->metadata_text = NULL;
  self->metadata_len = 0;
  if (metadata != NULL)
    {
      g_autoptr (JsonNode) node = json_gvariant_serialize (metadata);
      g_autoptr (GString) text = g_string_new (NULL);

      /* Checked finite by the caller (register_vm). */
      (void) _gsm_json_append_node (text, node);
      metadata_text = g_string_free (g_steal_pointer (&text), FALSE);
      self->metadata_text = metadata_text;
      self->metadata_len = strlen (metadata_text);
      /* Not kept: read back from the text like every other process does,
       * so that everyone sees the same types (JSON has one integer). */
    }
  self->registered_at = registered_at;
  serialize (self);

  return self;
}

GsmSession *
_gsm_session_without_vm (GsmSession *base)
{
  GsmSession *self = copy_session (base);

  g_clear_pointer (&self->vm_id, g_free);
  g_clear_pointer (&self->zone, g_free);
  g_strfreev (self->components);
  self->components = g_new0 (char *, 1);
  g_clear_pointer (&self->metadata, g_variant_unref);
  self->metadata_text = NULL;
  self->metadata_len = 0;
  self->registered_at = 0;
  serialize (self);

  return self;
}

/* @stale_since 0: active again (a session recorded dead, found alive). */
GsmSession *
_gsm_session_with_stale (GsmSession *base,
                         double      stale_since)
{
  GsmSession *self = copy_session (base);

  g_clear_pointer (&self->status_other, g_free);
  self->status = stale_since > 0 ? _gsm_status_stale : status_active;
  self->stale_since = MAX (stale_since, 0);
  serialize (self);

  return self;
}

/*
 * _gsm_session_with_liveness:
 * @pid_ns: the inode of the process's pid namespace (`/proc/self/ns/pid`),
 *   or 0 if unknown
 * @lock_file: (nullable): the name, in the runtime directory, of the file
 *   the process holds an OFD lock on for its whole life
 *
 * What a reader needs to prove the session's process alive or dead.
 */
GsmSession *
_gsm_session_with_liveness (GsmSession *base,
                            guint64     pid_ns,
                            const char *lock_file)
{
  GsmSession *self = copy_session (base);

  self->pid_ns = pid_ns;
  g_free (self->lock_file);
  self->lock_file = g_strdup (lock_file);
  serialize (self);

  return self;
}

/* A copy of @base whose status is @status ("creating", "active"). */
GsmSession *
_gsm_session_with_status (GsmSession *base,
                          const char *status)
{
  GsmSession *self = copy_session (base);

  g_clear_pointer (&self->status_other, g_free);
  if (g_str_equal (status, GSM_STATUS_ACTIVE))
    self->status = status_active;
  else if (g_str_equal (status, GSM_STATUS_STALE))
    self->status = _gsm_status_stale;
  else
    self->status = self->status_other = g_strdup (status);
  serialize (self);

  return self;
}

/*
 * _gsm_session_shown_as:
 *
 * A copy of @base whose status reads @status, for listings only (such as
 * "unverifiable": what the reader can tell, not what is recorded).
 */
GsmSession *
_gsm_session_shown_as (GsmSession *base,
                       const char *status)
{
  return _gsm_session_with_status (base, status);
}

GsmSession *
_gsm_session_with_member (GsmSession *base,
                          const char *name,
                          JsonNode   *value)
{
  GsmSession *self = copy_session (base);
  JsonObject *extra = json_object_new ();

  if (base->extra != NULL)
    {
      JsonObjectIter iter;
      const char    *member;
      JsonNode      *node;

      json_object_iter_init (&iter, base->extra);
      while (json_object_iter_next (&iter, &member, &node))
        if (!g_str_equal (member, name))
          json_object_set_member (extra, member, json_node_copy (node));
    }
  if (value != NULL)
    json_object_set_member (extra, name, json_node_copy (value));

  g_clear_pointer (&self->extra, json_object_unref);
  if (json_object_get_size (extra) > 0)
    self->extra = extra;
  else
    json_object_unref (extra);
  serialize (self);

  return self;
}

JsonNode *
_gsm_session_get_member (GsmSession *self,
                         const char *name)
{
  if (self->extra == NULL)
    return NULL;
  return json_object_get_member (self->extra, name);
}

const char *
_gsm_session_get_text (GsmSession *self,
                       gsize      *len)
{
  if (len)
    *len = self->text_len;
  return self->text;
}

/* ---- public ------------------------------------------------------------ */

/**
 * gsm_session_get_session_id:
 * @self: a #GsmSession
 *
 * Gets the session's UUID.
 *
 * Returns: (transfer none): the session identifier
 *
 * Since: 1.0
 */
const char *
gsm_session_get_session_id (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->session_id;
}

/**
 * gsm_session_get_pid:
 * @self: a #GsmSession
 *
 * Gets the process ID of the session's process.
 *
 * Returns: the pid
 *
 * Since: 1.0
 */
int
gsm_session_get_pid (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), 0);
  return self->pid;
}

/**
 * gsm_session_get_hostname:
 * @self: a #GsmSession
 *
 * Gets the host the session runs on.
 *
 * Returns: (transfer none): the hostname
 *
 * Since: 1.0
 */
const char *
gsm_session_get_hostname (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->hostname;
}

/**
 * gsm_session_get_created_at:
 * @self: a #GsmSession
 *
 * Gets when the session was created.
 *
 * Returns: seconds since the Unix epoch
 *
 * Since: 1.0
 */
double
gsm_session_get_created_at (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), 0);
  return self->created_at;
}

/**
 * gsm_session_get_status:
 * @self: a #GsmSession
 *
 * Gets the session's status as recorded in the registry: `active`,
 * `creating` while the VM it reserved
 * ([method@Gsm.SessionManager.reserve_vm]) is not confirmed yet, or
 * `stale` for a dead session that still owns a VM. The process of an
 * `active` session may have died since it was recorded:
 * [method@Gsm.SessionList.get_liveness] tells. A session whose liveness
 * nothing here can prove either way (another host, another kernel, a pid
 * namespace without a liveness lock, or no start time recorded) is
 * %GSM_LIVENESS_UNVERIFIABLE, and `gsmctl list` shows it as
 * `unverifiable`: it is never considered dead by its age, so its VM is
 * never reaped automatically.
 *
 * Returns: (transfer none): the status
 *
 * Since: 1.0
 */
const char *
gsm_session_get_status (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->status;
}

/**
 * gsm_session_get_has_vm:
 * @self: a #GsmSession
 *
 * Gets whether the session owns a VM.
 *
 * Returns: %TRUE if it owns one
 *
 * Since: 1.0
 */
gboolean
gsm_session_get_has_vm (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), FALSE);
  return self->vm_id != NULL;
}

/**
 * gsm_session_get_vm_id:
 * @self: a #GsmSession
 *
 * Gets the identifier of the VM the session owns.
 *
 * Returns: (transfer none) (nullable): the VM identifier, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_session_get_vm_id (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->vm_id;
}

/**
 * gsm_session_get_zone:
 * @self: a #GsmSession
 *
 * Gets the zone of the session's VM.
 *
 * Returns: (transfer none) (nullable): the zone, or %NULL without a VM
 *   (or if the entry records none)
 *
 * Since: 1.0
 */
const char *
gsm_session_get_zone (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->zone;
}

/**
 * gsm_session_get_components:
 * @self: a #GsmSession
 *
 * Gets the components running on the session's VM.
 *
 * Returns: (transfer none) (array zero-terminated=1): the components,
 *   empty without a VM
 *
 * Since: 1.0
 */
const char *const *
gsm_session_get_components (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return (const char *const *) self->components;
}

/**
 * gsm_session_get_metadata:
 * @self: a #GsmSession
 *
 * Gets the metadata of the session's VM.
 *
 * Returns: (transfer none): a dictionary of type `a{sv}`, empty without a
 *   VM or metadata
 *
 * Since: 1.0
 */
GVariant *
gsm_session_get_metadata (GsmSession *self)
{
  GVariant *v;

  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);

  v = g_atomic_pointer_get (&self->metadata);
  if (v == NULL)
    {
      if (self->metadata_text != NULL)
        {
          g_autoptr (JsonParser) parser = json_parser_new_immutable ();

          if (json_parser_load_from_data (parser, self->metadata_text,
                                          (gssize) self->metadata_len, NULL) &&
              json_parser_get_root (parser) != NULL)
            v = json_gvariant_deserialize (json_parser_get_root (parser), "a{sv}", NULL);
        }
      if (v == NULL)
        v = g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0);
      g_variant_ref_sink (v);
      if (!g_atomic_pointer_compare_and_exchange (&self->metadata, NULL, v))
        g_variant_unref (v);
      v = g_atomic_pointer_get (&self->metadata);
    }

  return v;
}

/**
 * gsm_session_get_registered_at:
 * @self: a #GsmSession
 *
 * Gets when the session's VM was registered.
 *
 * Returns: seconds since the epoch, or 0 without a VM
 *
 * Since: 1.0
 */
double
gsm_session_get_registered_at (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), 0);
  return self->registered_at;
}

/**
 * gsm_session_get_start_time:
 * @self: a #GsmSession
 *
 * Gets the start time of the session's process in clock ticks after boot.
 *
 * Returns: the start time, or 0 if it was not recorded
 *
 * Since: 1.0
 */
guint64
gsm_session_get_start_time (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), 0);
  return self->start_time;
}

/**
 * gsm_session_get_boot_id:
 * @self: a #GsmSession
 *
 * Gets the boot id of the session's host when the session started.
 *
 * Returns: (transfer none) (nullable): the boot id, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_session_get_boot_id (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return self->boot_id;
}

/**
 * gsm_session_get_stale_since:
 * @self: a #GsmSession
 *
 * Gets when the session was first found dead.
 *
 * Returns: seconds since the epoch, or 0 if it was not found dead
 *
 * Since: 1.0
 */
double
gsm_session_get_stale_since (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), 0);
  return self->stale_since;
}

/**
 * gsm_session_to_variant:
 * @self: a #GsmSession
 *
 * Builds a dictionary with the session's fields under their JSON names
 * (`session_id`, `pid`, `hostname`, `created_at`, `status`, and `vm_id`,
 * `zone`, `components`, `metadata`, `registered_at` when it owns a VM,
 * `start_time`, `boot_id`, `stale_since` when known). This is the form the
 * D-Bus service sends.
 *
 * Returns: (transfer full): a new, non-floating `a{sv}`
 *
 * Since: 1.0
 */
GVariant *
gsm_session_to_variant (GsmSession *self)
{
  GVariantBuilder b;

  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "session_id", g_variant_new_string (self->session_id));
  g_variant_builder_add (&b, "{sv}", "pid", g_variant_new_int32 (self->pid));
  g_variant_builder_add (&b, "{sv}", "hostname", g_variant_new_string (self->hostname));
  g_variant_builder_add (&b, "{sv}", "created_at", g_variant_new_double (self->created_at));
  g_variant_builder_add (&b, "{sv}", "status", g_variant_new_string (self->status));
  if (self->vm_id != NULL)
    {
      g_variant_builder_add (&b, "{sv}", "vm_id", g_variant_new_string (self->vm_id));
      g_variant_builder_add (&b, "{sv}", "zone", g_variant_new_string (self->zone ? self->zone : ""));
      g_variant_builder_add (&b, "{sv}", "components",
                             g_variant_new_strv ((const char *const *) self->components, -1));
      g_variant_builder_add (&b, "{sv}", "metadata", gsm_session_get_metadata (self));
      g_variant_builder_add (&b, "{sv}", "registered_at", g_variant_new_double (self->registered_at));
    }
  if (self->start_time > 0)
    g_variant_builder_add (&b, "{sv}", "start_time", g_variant_new_uint64 (self->start_time));
  if (self->boot_id != NULL)
    g_variant_builder_add (&b, "{sv}", "boot_id", g_variant_new_string (self->boot_id));
  if (self->stale_since > 0)
    g_variant_builder_add (&b, "{sv}", "stale_since", g_variant_new_double (self->stale_since));

  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/**
 * gsm_session_to_json:
 * @self: a #GsmSession
 *
 * Gets the session's entry as it is written in `vm_registry.json`.
 *
 * Returns: (transfer full): a JSON object as text
 *
 * Since: 1.0
 */
char *
gsm_session_to_json (GsmSession *self)
{
  g_return_val_if_fail (GSM_IS_SESSION (self), NULL);
  return g_strndup (self->text, self->text_len);
}
