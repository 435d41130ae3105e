/* gsm-inventory-item.c: GsmInventoryItem
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "gsm-inventory-item-private.h"

/**
 * GsmInventoryItem:
 *
 * One VM as the cloud's inventory lists it (see
 * [method@Gsm.Provider.list_vms]): the identifier the provider's delete
 * command takes, its name, zone, state, creation time and labels (tags,
 * on AWS and Azure), and, once a reconciliation compared it with the
 * registry ([method@Gsm.Reaper.reconcile]), the session it belongs to and
 * a [enum@Gsm.InventoryVerdict] with the reason.
 *
 * A reconciliation also returns items for VMs that the registry records
 * and the inventory no longer shows
 * (%GSM_INVENTORY_VERDICT_MISSING, %GSM_INVENTORY_VERDICT_GONE): their
 * labels are empty.
 *
 * An item is immutable.
 *
 * Since: 1.0
 */
struct _GsmInventoryItem
{
  GObject parent_instance;

  char               *vm_id;
  char               *name;
  char               *zone;
  char               *state;
  double              created_at;
  GHashTable         *labels; /* key → value */
  GVariant           *labels_variant;
  char               *session_id;
  GsmInventoryVerdict verdict;
  char               *reason;
};

enum
{
  PROP_0,
  PROP_VM_ID,
  PROP_NAME,
  PROP_ZONE,
  PROP_STATE,
  PROP_CREATED_AT,
  PROP_LABELS,
  PROP_SESSION_ID,
  PROP_VERDICT,
  PROP_REASON,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_ENUM_TYPE (GsmInventoryVerdict, gsm_inventory_verdict, G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_LISTED, "listed"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_REGISTERED, "registered"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_DEAD_OWNER, "dead-owner"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_ORPHAN, "orphan"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_YOUNG, "young"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_UNREGISTERED, "unregistered"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_UNVERIFIABLE, "unverifiable"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_MISSING, "missing"), G_DEFINE_ENUM_VALUE (GSM_INVENTORY_VERDICT_GONE, "gone"))

G_DEFINE_FINAL_TYPE (GsmInventoryItem, gsm_inventory_item, G_TYPE_OBJECT)

/**
 * gsm_inventory_verdict_to_string:
 * @verdict: a #GsmInventoryVerdict
 *
 * Gets the name of @verdict as `gsmctl reconcile --json` prints it:
 * `listed`, `registered`, `dead-owner`, `orphan`, `young`,
 * `unregistered`, `unverifiable`, `missing` or `gone`.
 *
 * Returns: (transfer none): a static string
 *
 * Since: 1.0
 */
const char *
gsm_inventory_verdict_to_string (GsmInventoryVerdict verdict)
{
  switch (verdict)
    {
    case GSM_INVENTORY_VERDICT_LISTED:
      return "listed";
    case GSM_INVENTORY_VERDICT_REGISTERED:
      return "registered";
    case GSM_INVENTORY_VERDICT_DEAD_OWNER:
      return "dead-owner";
    case GSM_INVENTORY_VERDICT_ORPHAN:
      return "orphan";
    case GSM_INVENTORY_VERDICT_YOUNG:
      return "young";
    case GSM_INVENTORY_VERDICT_UNREGISTERED:
      return "unregistered";
    case GSM_INVENTORY_VERDICT_UNVERIFIABLE:
      return "unverifiable";
    case GSM_INVENTORY_VERDICT_MISSING:
      return "missing";
    case GSM_INVENTORY_VERDICT_GONE:
      return "gone";
    default:
      return "unknown";
    }
}

static void
gsm_inventory_item_finalize (GObject *object)
{
  GsmInventoryItem *self = GSM_INVENTORY_ITEM (object);

  g_free (self->vm_id);
  g_free (self->name);
  g_free (self->zone);
  g_free (self->state);
  g_hash_table_unref (self->labels);
  g_clear_pointer (&self->labels_variant, g_variant_unref);
  g_free (self->session_id);
  g_free (self->reason);

  G_OBJECT_CLASS (gsm_inventory_item_parent_class)->finalize (object);
}

static void
gsm_inventory_item_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  GsmInventoryItem *self = GSM_INVENTORY_ITEM (object);

  switch (prop_id)
    {
    case PROP_VM_ID:
      g_value_set_string (value, self->vm_id);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_ZONE:
      g_value_set_string (value, self->zone);
      break;
    case PROP_STATE:
      g_value_set_string (value, self->state);
      break;
    case PROP_CREATED_AT:
      g_value_set_double (value, self->created_at);
      break;
    case PROP_LABELS:
      g_value_set_variant (value, self->labels_variant);
      break;
    case PROP_SESSION_ID:
      g_value_set_string (value, self->session_id);
      break;
    case PROP_VERDICT:
      g_value_set_enum (value, self->verdict);
      break;
    case PROP_REASON:
      g_value_set_string (value, self->reason);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_inventory_item_class_init (GsmInventoryItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_inventory_item_finalize;
  object_class->get_property = gsm_inventory_item_get_property;

  /**
   * GsmInventoryItem:vm-id:
   *
   * The identifier the provider's delete command takes as `{vm_id}`: the
   * instance name on Google Cloud and Azure, the instance ID (`i-…`) on
   * AWS.
   *
   * Since: 1.0
   */
  properties[PROP_VM_ID] =
      g_param_spec_string ("vm-id", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:name:
   *
   * The VM's name, if it has one besides its identifier (AWS: the `Name`
   * tag); otherwise the identifier.
   *
   * Since: 1.0
   */
  properties[PROP_NAME] =
      g_param_spec_string ("name", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:zone:
   *
   * What the provider's delete command takes as `{zone}`: the zone on
   * Google Cloud, the availability zone on AWS, the resource group on
   * Azure; %NULL if the inventory gives none.
   *
   * Since: 1.0
   */
  properties[PROP_ZONE] =
      g_param_spec_string ("zone", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:state:
   *
   * The state the cloud reports (`RUNNING`, `running`, `VM running`, …),
   * or %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_STATE] =
      g_param_spec_string ("state", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:created-at:
   *
   * When the VM was created (AWS: last launched), in seconds since the
   * epoch; 0 if the inventory does not say.
   *
   * Since: 1.0
   */
  properties[PROP_CREATED_AT] =
      g_param_spec_double ("created-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:labels:
   *
   * The VM's labels (tags) as an `a{ss}`, sorted by key.
   *
   * Since: 1.0
   */
  properties[PROP_LABELS] =
      g_param_spec_variant ("labels", NULL, NULL, G_VARIANT_TYPE ("a{ss}"), NULL,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:session-id:
   *
   * The session the VM belongs to, from the registry or from its
   * `gsm-session` label; %NULL if that is unknown.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_ID] =
      g_param_spec_string ("session-id", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:verdict:
   *
   * What a reconciliation found.
   *
   * Since: 1.0
   */
  properties[PROP_VERDICT] =
      g_param_spec_enum ("verdict", NULL, NULL, GSM_TYPE_INVENTORY_VERDICT,
                         GSM_INVENTORY_VERDICT_LISTED, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmInventoryItem:reason:
   *
   * Why, in words, or %NULL.
   *
   * Since: 1.0
   */
  properties[PROP_REASON] =
      g_param_spec_string ("reason", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_inventory_item_init (GsmInventoryItem *self)
{
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char **) a, *(const char **) b);
}

GsmInventoryItem *
_gsm_inventory_item_new (const char *vm_id,
                         const char *name,
                         const char *zone,
                         const char *state,
                         double      created_at,
                         GHashTable *labels)
{
  GsmInventoryItem *self = g_object_new (GSM_TYPE_INVENTORY_ITEM, NULL);
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  GVariantBuilder b;
  GHashTableIter  iter;
  gpointer        key, value;

  self->vm_id = g_strdup (vm_id);
  self->name = g_strdup (name ? name : vm_id);
  self->zone = g_strdup (zone);
  self->state = g_strdup (state);
  self->created_at = created_at > 0 ? created_at : 0;
  self->labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (labels != NULL)
    {
      g_hash_table_iter_init (&iter, labels);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (self->labels, g_strdup (key), g_strdup (value));
    }

  g_hash_table_iter_init (&iter, self->labels);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_strings);
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{ss}"));
  for (guint i = 0; i < keys->len; i++)
    g_variant_builder_add (&b, "{ss}", (const char *) keys->pdata[i],
                           (const char *) g_hash_table_lookup (self->labels, keys->pdata[i]));
  self->labels_variant = g_variant_ref_sink (g_variant_builder_end (&b));
  self->verdict = GSM_INVENTORY_VERDICT_LISTED;

  return self;
}

GsmInventoryItem *
_gsm_inventory_item_with_verdict (GsmInventoryItem   *base,
                                  GsmInventoryVerdict verdict,
                                  const char         *session_id,
                                  const char         *reason)
{
  GsmInventoryItem *self = _gsm_inventory_item_new (base->vm_id, base->name, base->zone,
                                                    base->state, base->created_at, base->labels);

  self->verdict = verdict;
  self->session_id = g_strdup (session_id);
  self->reason = g_strdup (reason);
  return self;
}

/**
 * gsm_inventory_item_get_vm_id:
 * @self: a #GsmInventoryItem
 *
 * Gets the identifier the provider's delete command takes (see
 * [property@Gsm.InventoryItem:vm-id]).
 *
 * Returns: (transfer none): the identifier
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_vm_id (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->vm_id;
}

/**
 * gsm_inventory_item_get_name:
 * @self: a #GsmInventoryItem
 *
 * Gets the VM's name (see [property@Gsm.InventoryItem:name]).
 *
 * Returns: (transfer none): the name
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_name (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->name;
}

/**
 * gsm_inventory_item_get_zone:
 * @self: a #GsmInventoryItem
 *
 * Gets the VM's zone (see [property@Gsm.InventoryItem:zone]).
 *
 * Returns: (transfer none) (nullable): the zone, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_zone (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->zone;
}

/**
 * gsm_inventory_item_get_state:
 * @self: a #GsmInventoryItem
 *
 * Gets the state the cloud reports.
 *
 * Returns: (transfer none) (nullable): the state, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_state (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->state;
}

/**
 * gsm_inventory_item_get_created_at:
 * @self: a #GsmInventoryItem
 *
 * Gets when the VM was created.
 *
 * Returns: seconds since the epoch, or 0 if unknown
 *
 * Since: 1.0
 */
double
gsm_inventory_item_get_created_at (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), 0);
  return self->created_at;
}

/**
 * gsm_inventory_item_get_labels:
 * @self: a #GsmInventoryItem
 *
 * Gets the VM's labels (tags). In Python, `item.get_labels().unpack()`
 * is a dict; in JavaScript, `item.get_labels().deepUnpack()` an object.
 *
 * Returns: (transfer none): an `a{ss}`, sorted by key
 *
 * Since: 1.0
 */
GVariant *
gsm_inventory_item_get_labels (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->labels_variant;
}

/**
 * gsm_inventory_item_get_label:
 * @self: a #GsmInventoryItem
 * @key: a label key, such as `gsm-session`
 *
 * Gets the value of one label.
 *
 * Returns: (transfer none) (nullable): its value, or %NULL if the VM has
 *   no such label
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_label (GsmInventoryItem *self,
                              const char       *key)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_hash_table_lookup (self->labels, key);
}

/**
 * gsm_inventory_item_get_session_id:
 * @self: a #GsmInventoryItem
 *
 * Gets the session the VM belongs to (see
 * [property@Gsm.InventoryItem:session-id]).
 *
 * Returns: (transfer none) (nullable): the session id, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_session_id (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->session_id;
}

/**
 * gsm_inventory_item_get_verdict:
 * @self: a #GsmInventoryItem
 *
 * Gets what a reconciliation found.
 *
 * Returns: the verdict; %GSM_INVENTORY_VERDICT_LISTED for an item as the
 *   provider listed it
 *
 * Since: 1.0
 */
GsmInventoryVerdict
gsm_inventory_item_get_verdict (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), GSM_INVENTORY_VERDICT_LISTED);
  return self->verdict;
}

/**
 * gsm_inventory_item_get_reason:
 * @self: a #GsmInventoryItem
 *
 * Gets why the reconciliation came to its verdict.
 *
 * Returns: (transfer none) (nullable): the reason, or %NULL
 *
 * Since: 1.0
 */
const char *
gsm_inventory_item_get_reason (GsmInventoryItem *self)
{
  g_return_val_if_fail (GSM_IS_INVENTORY_ITEM (self), NULL);
  return self->reason;
}
