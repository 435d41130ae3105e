/* gsm-vm.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-vm.h"
#include "gsm-vm-private.h"

/**
 * GsmVm:
 *
 * A VM owned by a session: its identifier, zone, the components it runs,
 * free-form metadata and when it was registered.
 *
 * A `GsmVm` is immutable; every property is read-only.
 *
 * Since: 1.0
 */
struct _GsmVm
{
  GObject    parent_instance;

  char      *vm_id;
  char      *zone;
  char     **components;
  GVariant  *metadata;
  double     registered_at;
  char      *session_id;
};

enum {
  PROP_0,
  PROP_VM_ID,
  PROP_ZONE,
  PROP_COMPONENTS,
  PROP_METADATA,
  PROP_REGISTERED_AT,
  PROP_SESSION_ID,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (GsmVm, gsm_vm, G_TYPE_OBJECT)

static void
gsm_vm_finalize (GObject *object)
{
  GsmVm *self = GSM_VM (object);

  g_free (self->vm_id);
  g_free (self->zone);
  g_strfreev (self->components);
  g_clear_pointer (&self->metadata, g_variant_unref);
  g_free (self->session_id);

  G_OBJECT_CLASS (gsm_vm_parent_class)->finalize (object);
}

static void
gsm_vm_get_property (GObject    *object,
                     guint       prop_id,
                     GValue     *value,
                     GParamSpec *pspec)
{
  GsmVm *self = GSM_VM (object);

  switch (prop_id)
    {
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
      g_value_set_variant (value, self->metadata);
      break;
    case PROP_REGISTERED_AT:
      g_value_set_double (value, self->registered_at);
      break;
    case PROP_SESSION_ID:
      g_value_set_string (value, self->session_id);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_vm_class_init (GsmVmClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = gsm_vm_finalize;
  object_class->get_property = gsm_vm_get_property;

  /**
   * GsmVm:vm-id:
   *
   * The cloud provider's name of the VM, such as `jarvis-auto-12345`.
   *
   * Since: 1.0
   */
  properties[PROP_VM_ID] =
    g_param_spec_string ("vm-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmVm:zone:
   *
   * The zone the VM runs in, such as `us-central1-a`, or %NULL if its
   * registry entry records none.
   *
   * Since: 1.0
   */
  properties[PROP_ZONE] =
    g_param_spec_string ("zone", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmVm:components:
   *
   * The components offloaded to the VM.
   *
   * Since: 1.0
   */
  properties[PROP_COMPONENTS] =
    g_param_spec_boxed ("components", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmVm:metadata:
   *
   * Free-form metadata given at registration, a dictionary (`a{sv}`).
   *
   * Since: 1.0
   */
  properties[PROP_METADATA] =
    g_param_spec_variant ("metadata", NULL, NULL, G_VARIANT_TYPE_VARDICT, NULL,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmVm:registered-at:
   *
   * When the VM was registered, in seconds since the Unix epoch.
   *
   * Since: 1.0
   */
  properties[PROP_REGISTERED_AT] =
    g_param_spec_double ("registered-at", NULL, NULL, 0, G_MAXDOUBLE, 0,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  /**
   * GsmVm:session-id:
   *
   * The identifier of the session that owns the VM.
   *
   * Since: 1.0
   */
  properties[PROP_SESSION_ID] =
    g_param_spec_string ("session-id", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
gsm_vm_init (GsmVm *self)
{
}

GsmVm *
_gsm_vm_new (const char         *vm_id,
             const char         *zone,
             const char * const *components,
             GVariant           *metadata,
             double              registered_at,
             const char         *session_id)
{
  GsmVm *self = g_object_new (GSM_TYPE_VM, NULL);
  static const char * const no_components[] = { NULL };

  self->vm_id = g_strdup (vm_id);
  self->zone = g_strdup (zone);
  self->components = g_strdupv ((char **) (components ? components : no_components));
  if (metadata != NULL)
    self->metadata = g_variant_ref_sink (metadata);
  else
    self->metadata = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  self->registered_at = registered_at;
  self->session_id = g_strdup (session_id);

  return self;
}

/**
 * gsm_vm_get_vm_id:
 * @self: a #GsmVm
 *
 * Gets the VM's identifier.
 *
 * Returns: (transfer none): the VM identifier
 *
 * Since: 1.0
 */
const char *
gsm_vm_get_vm_id (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), NULL);
  return self->vm_id;
}

/**
 * gsm_vm_get_zone:
 * @self: a #GsmVm
 *
 * Gets the zone the VM runs in.
 *
 * Returns: (transfer none) (nullable): the zone, or %NULL if the registry
 *   entry the VM was read from records none (entries written by other
 *   implementations may have `"zone": null`)
 *
 * Since: 1.0
 */
const char *
gsm_vm_get_zone (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), NULL);
  return self->zone;
}

/**
 * gsm_vm_get_components:
 * @self: a #GsmVm
 *
 * Gets the components running on the VM.
 *
 * Returns: (transfer none) (array zero-terminated=1): the components
 *
 * Since: 1.0
 */
const char * const *
gsm_vm_get_components (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), NULL);
  return (const char * const *) self->components;
}

/**
 * gsm_vm_get_metadata:
 * @self: a #GsmVm
 *
 * Gets the metadata given when the VM was registered.
 *
 * Returns: (transfer none): a dictionary of type `a{sv}`, empty if none
 *   was given
 *
 * Since: 1.0
 */
GVariant *
gsm_vm_get_metadata (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), NULL);
  return self->metadata;
}

/**
 * gsm_vm_get_registered_at:
 * @self: a #GsmVm
 *
 * Gets when the VM was registered.
 *
 * Returns: seconds since the Unix epoch
 *
 * Since: 1.0
 */
double
gsm_vm_get_registered_at (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), 0);
  return self->registered_at;
}

/**
 * gsm_vm_get_session_id:
 * @self: a #GsmVm
 *
 * Gets the identifier of the session owning the VM.
 *
 * Returns: (transfer none): a session identifier
 *
 * Since: 1.0
 */
const char *
gsm_vm_get_session_id (GsmVm *self)
{
  g_return_val_if_fail (GSM_IS_VM (self), NULL);
  return self->session_id;
}
