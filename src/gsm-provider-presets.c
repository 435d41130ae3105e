/* gsm-provider-presets.c: the gcloud, aws and az presets and the
 * inventory formats of their list commands
 *
 * Each preset is the exact argument vectors a provider runs with that
 * CLI, how the CLI says "no such VM", and how to read what its list
 * command prints (JSON):
 *
 *   gcloud  delete  gcloud compute instances delete {vm_id} --zone {zone} --quiet
 *           list    gcloud compute instances list --filter=labels.gsm-registry={registry}
 *                     --format=json
 *           an array of instances: name, zone (a URL ending in the zone),
 *           status, labels {…}, creationTimestamp (RFC 3339). A missing
 *           instance: exit 1, "ERROR: (gcloud.compute.instances.delete)
 *           Could not fetch resource:\n - The resource
 *           'projects/P/zones/Z/instances/N' was not found".
 *   aws     delete  aws ec2 terminate-instances --instance-ids {vm_id} --output json
 *           list    aws ec2 describe-instances --filters Name=tag:gsm-registry,Values={registry}
 *                     Name=instance-state-name,Values=pending,running,stopping,stopped
 *                     --output json
 *           {"Reservations": [{"Instances": [{InstanceId, Placement
 *           {AvailabilityZone}, State {Name}, LaunchTime, Tags [{Key,
 *           Value}]}]}]}. A missing instance: exit 254 (any error the
 *           service returns), "An error occurred (InvalidInstanceID.NotFound)
 *           when calling the TerminateInstances operation: …".
 *   az      delete  az vm delete --resource-group {zone} --name {vm_id} --yes --output json
 *           list    az vm list --query [?tags."gsm-registry"=='{registry}'] --output json
 *           an array of VMs: name, resourceGroup, location, tags {…},
 *           timeCreated (RFC 3339). A missing VM or resource group: exit 3,
 *           "ERROR: (ResourceNotFound) The Resource
 *           'Microsoft.Compute/virtualMachines/N' under resource group 'G'
 *           was not found." (or ResourceGroupNotFound).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <json-glib/json-glib.h>

#include "gsm-error.h"
#include "gsm-inventory-item-private.h"
#include "gsm-json-private.h"
#include "gsm-provider-presets-private.h"

#define MAX_RELEVANT_LINE 1000

static const char *const gcloud_delete[] = {
  "gcloud", "compute", "instances", "delete", "{vm_id}", "--zone", "{zone}", "--quiet", NULL
};
static const char *const gcloud_list[] = {
  "gcloud", "compute", "instances", "list", "--filter=labels.gsm-registry={registry}",
  "--format=json", NULL
};
static const char *const aws_delete[] = {
  "aws", "ec2", "terminate-instances", "--instance-ids", "{vm_id}", "--output", "json", NULL
};
static const char *const aws_list[] = {
  "aws", "ec2", "describe-instances",
  "--filters", "Name=tag:gsm-registry,Values={registry}",
  "Name=instance-state-name,Values=pending,running,stopping,stopped",
  "--output", "json", NULL
};
static const char *const az_delete[] = {
  "az", "vm", "delete", "--resource-group", "{zone}", "--name", "{vm_id}", "--yes",
  "--output", "json", NULL
};
static const char *const az_list[] = {
  "az", "vm", "list", "--query", "[?tags.\"gsm-registry\"=='{registry}']", "--output", "json", NULL
};

static const GsmProviderPreset presets[] = {
  { "gcloud", gcloud_delete, gcloud_list, "gcloud", -1, "was not found" },
  { "aws", aws_delete, aws_list, "aws", -1, "InvalidInstanceID\\.NotFound" },
  { "az", az_delete, az_list, "az", 3, "\\((ResourceNotFound|ResourceGroupNotFound)\\)" },
};

const GsmProviderPreset *
_gsm_provider_preset_lookup (const char *name)
{
  for (guint i = 0; name != NULL && i < G_N_ELEMENTS (presets); i++)
    if (g_str_equal (name, presets[i].name))
      return &presets[i];
  return NULL;
}

const char *
_gsm_provider_preset_names (void)
{
  return "gcloud, aws, az";
}

gboolean
_gsm_inventory_format_is_known (const char *format)
{
  return g_strcmp0 (format, "gcloud") == 0 || g_strcmp0 (format, "aws") == 0 ||
         g_strcmp0 (format, "az") == 0 || g_strcmp0 (format, "json") == 0;
}

/* ---- reading JSON -------------------------------------------------------- */

static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static JsonObject *
get_object (JsonObject *object,
            const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static JsonArray *
get_array (JsonObject *object,
           const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

/* An RFC 3339 time (fractions of any length), or a number of seconds; 0
 * if neither. */
static double
parse_time (JsonNode *node)
{
  g_autoptr (GDateTime) dt = NULL;
  const char *text;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return 0;
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return json_node_get_double (node);
  if (json_node_get_value_type (node) == G_TYPE_INT64)
    return (double) json_node_get_int (node);
  if (json_node_get_value_type (node) != G_TYPE_STRING)
    return 0;
  text = json_node_get_string (node);
  dt = g_date_time_new_from_iso8601 (text, NULL);
  if (dt == NULL)
    return 0;
  return g_date_time_to_unix (dt) + g_date_time_get_microsecond (dt) / (double) G_USEC_PER_SEC;
}

/* An object of string values (labels, tags): key → value. */
static GHashTable *
string_map (JsonObject *object)
{
  GHashTable    *map = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObjectIter iter;
  const char    *key;
  JsonNode      *node;

  if (object == NULL)
    return map;
  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &key, &node))
    if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
      g_hash_table_insert (map, g_strdup (key), g_strdup (json_node_get_string (node)));
  return map;
}

static char *
basename_of (const char *url)
{
  const char *slash = url ? strrchr (url, '/') : NULL;

  return url ? g_strdup (slash ? slash + 1 : url) : NULL;
}

static void
add_item (GPtrArray  *items,
          const char *vm_id,
          const char *name,
          const char *zone,
          const char *state,
          double      created_at,
          GHashTable *labels)
{
  if (vm_id == NULL || *vm_id == '\0')
    return;
  g_ptr_array_add (items, _gsm_inventory_item_new (vm_id, name, zone, state, created_at, labels));
}

static gboolean
parse_gcloud (JsonNode  *root,
              GPtrArray *items,
              GError   **error)
{
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "gcloud's list output is not a JSON array of instances");
      return FALSE;
    }
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode   *node = json_array_get_element (array, i);
      JsonObject *vm = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      g_autoptr (GHashTable) labels = NULL;
      g_autofree char *zone = NULL;

      if (vm == NULL)
        continue;
      labels = string_map (get_object (vm, "labels"));
      zone = basename_of (get_string (vm, "zone"));
      add_item (items, get_string (vm, "name"), NULL, zone, get_string (vm, "status"),
                parse_time (json_object_get_member (vm, "creationTimestamp")), labels);
    }
  return TRUE;
}

static gboolean
parse_aws (JsonNode  *root,
           GPtrArray *items,
           GError   **error)
{
  JsonArray *reservations;

  reservations = JSON_NODE_HOLDS_OBJECT (root)
                     ? get_array (json_node_get_object (root), "Reservations")
                     : NULL;
  if (reservations == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "aws's describe-instances output has no “Reservations” array");
      return FALSE;
    }
  for (guint i = 0; i < json_array_get_length (reservations); i++)
    {
      JsonNode  *rnode = json_array_get_element (reservations, i);
      JsonArray *instances = JSON_NODE_HOLDS_OBJECT (rnode)
                                 ? get_array (json_node_get_object (rnode), "Instances")
                                 : NULL;

      for (guint k = 0; instances != NULL && k < json_array_get_length (instances); k++)
        {
          JsonNode   *node = json_array_get_element (instances, k);
          JsonObject *vm = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
          JsonArray  *tags = get_array (vm, "Tags");
          g_autoptr (GHashTable) labels = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                                 g_free, g_free);

          if (vm == NULL)
            continue;
          for (guint t = 0; tags != NULL && t < json_array_get_length (tags); t++)
            {
              JsonNode   *tnode = json_array_get_element (tags, t);
              JsonObject *tag = JSON_NODE_HOLDS_OBJECT (tnode) ? json_node_get_object (tnode) : NULL;
              const char *key = get_string (tag, "Key");
              const char *value = get_string (tag, "Value");

              if (key != NULL && value != NULL)
                g_hash_table_insert (labels, g_strdup (key), g_strdup (value));
            }
          add_item (items, get_string (vm, "InstanceId"), g_hash_table_lookup (labels, "Name"),
                    get_string (get_object (vm, "Placement"), "AvailabilityZone"),
                    get_string (get_object (vm, "State"), "Name"),
                    parse_time (json_object_get_member (vm, "LaunchTime")), labels);
        }
    }
  return TRUE;
}

static gboolean
parse_az (JsonNode  *root,
          GPtrArray *items,
          GError   **error)
{
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "az's vm list output is not a JSON array of VMs");
      return FALSE;
    }
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode   *node = json_array_get_element (array, i);
      JsonObject *vm = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      g_autoptr (GHashTable) labels = NULL;

      if (vm == NULL)
        continue;
      labels = string_map (get_object (vm, "tags"));
      add_item (items, get_string (vm, "name"), NULL, get_string (vm, "resourceGroup"),
                get_string (vm, "provisioningState"),
                parse_time (json_object_get_member (vm, "timeCreated")), labels);
    }
  return TRUE;
}

/* The format of custom list commands: [{"id", "name", "zone", "state",
 * "labels": {…}, "created_at": seconds or RFC 3339}]. */
static gboolean
parse_json (JsonNode  *root,
            GPtrArray *items,
            GError   **error)
{
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "the list output is not a JSON array of VMs");
      return FALSE;
    }
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode   *node = json_array_get_element (array, i);
      JsonObject *vm = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      g_autoptr (GHashTable) labels = NULL;
      const char *id;

      if (vm == NULL)
        continue;
      labels = string_map (get_object (vm, "labels"));
      id = get_string (vm, "id") ? get_string (vm, "id") : get_string (vm, "name");
      add_item (items, id, get_string (vm, "name"), get_string (vm, "zone"),
                get_string (vm, "state"), parse_time (json_object_get_member (vm, "created_at")),
                labels);
    }
  return TRUE;
}

GPtrArray *
_gsm_inventory_parse (const char *format,
                      const char *data,
                      gsize       len,
                      GError    **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GPtrArray) items = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GError) local_error = NULL;
  gboolean ok;

  /* An empty listing is printed as [] (gcloud may print nothing at all). */
  if (data == NULL || len == 0 || data[strspn (data, " \t\r\n")] == '\0')
    return g_steal_pointer (&items);

  if (!_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, &local_error) ||
      (root = _gsm_json_parse (parser, data, len, &local_error)) == NULL)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_PROVIDER_FAILED,
                   "the list output is not JSON: %s",
                   local_error ? local_error->message : "empty");
      return NULL;
    }

  if (g_strcmp0 (format, "gcloud") == 0)
    ok = parse_gcloud (root, items, error);
  else if (g_strcmp0 (format, "aws") == 0)
    ok = parse_aws (root, items, error);
  else if (g_strcmp0 (format, "az") == 0)
    ok = parse_az (root, items, error);
  else
    ok = parse_json (root, items, error);

  return ok ? g_steal_pointer (&items) : NULL;
}

/* ---- errors -------------------------------------------------------------- */

static gboolean
is_blank (const char *line)
{
  return line[strspn (line, " \t\r")] == '\0';
}

char *
_gsm_provider_relevant_line (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text ? text : "", "\n", -1);
  g_autoptr (GString) out = g_string_new (NULL);
  int error_at = -1, last = -1;

  for (int i = 0; lines[i] != NULL; i++)
    {
      g_strchomp (lines[i]);
      if (error_at < 0 && g_str_has_prefix (lines[i], "ERROR:"))
        error_at = i;
      if (!is_blank (lines[i]))
        last = i;
    }

  if (error_at >= 0)
    {
      g_string_append (out, lines[error_at]);
      /* "ERROR: (gcloud.…) Could not fetch resource:" says what on the
       * indented lines that follow. */
      for (int i = error_at + 1;
           lines[i] != NULL && out->len > 0 && out->str[out->len - 1] == ':' &&
           (lines[i][0] == ' ' || lines[i][0] == '\t' || lines[i][0] == '-');
           i++)
        {
          g_string_append_c (out, ' ');
          g_string_append (out, g_strstrip (lines[i]));
        }
    }
  else if (last >= 0)
    g_string_append (out, g_strstrip (lines[last]));

  if (out->len > MAX_RELEVANT_LINE)
    {
      const char *end = out->str + MAX_RELEVANT_LINE;

      /* Cut on a character boundary. */
      while (end > out->str && (*end & 0xc0) == 0x80)
        end--;
      g_string_truncate (out, end - out->str);
      g_string_append (out, "…");
    }

  return g_string_free (g_steal_pointer (&out), FALSE);
}
