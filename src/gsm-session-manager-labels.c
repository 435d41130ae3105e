/* gsm-session-manager-labels.c: the labels to put on a VM at creation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "gsm-config-private.h"
#include "gsm-etcd-client-private.h"
#include "gsm-labels-private.h"

/* Hex digits of a SHA-256 kept in a value: 64 bits, enough to tell the
 * registries of one account apart. */
#define HASH_CHARS 16

static gboolean
is_label_char (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

gboolean
_gsm_label_value_is_valid (const char *value)
{
  gsize len;

  if (value == NULL || !(value[0] >= 'a' && value[0] <= 'z'))
    return FALSE;
  len = strlen (value);
  if (len > GSM_LABEL_MAX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!is_label_char (value[i]))
      return FALSE;
  return TRUE;
}

static char *
hash_of (const char *what,
         const char *a,
         const char *b)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);

  /* The parts NUL-separated: no two different inputs meet. */
  g_checksum_update (sum, (const guchar *) what, (gssize) strlen (what) + 1);
  g_checksum_update (sum, (const guchar *) a, (gssize) strlen (a) + 1);
  if (b != NULL)
    g_checksum_update (sum, (const guchar *) b, (gssize) strlen (b) + 1);
  return g_strndup (g_checksum_get_string (sum), HASH_CHARS);
}

char *
_gsm_label_for_session (const char *session_id)
{
  g_autofree char *hash = NULL;
  gsize            len = strlen (session_id);
  gboolean         plain = len > 0;

  if (_gsm_label_value_is_valid (session_id))
    return g_strdup (session_id);

  for (gsize i = 0; i < len; i++)
    if (!is_label_char (session_id[i]))
      plain = FALSE;
  /* A UUID starting with a digit. */
  if (plain && len + 2 <= GSM_LABEL_MAX_LEN)
    return g_strconcat ("s-", session_id, NULL);

  hash = hash_of ("session", session_id, NULL);
  return g_strconcat ("x-", hash, NULL);
}

char **
_gsm_label_session_candidates (const char *value)
{
  GPtrArray *ids = g_ptr_array_new ();

  if (value != NULL && !g_str_has_prefix (value, "x-"))
    {
      g_ptr_array_add (ids, g_strdup (value));
      if (g_str_has_prefix (value, "s-") && value[2] != '\0')
        g_ptr_array_add (ids, g_strdup (value + 2));
    }
  g_ptr_array_add (ids, NULL);
  return (char **) g_ptr_array_free (ids, FALSE);
}

char *
_gsm_label_for_host (const char *hostname)
{
  g_autofree char *lower = g_ascii_strdown (hostname ? hostname : "", -1);
  GString         *out = g_string_new (NULL);

  for (const char *p = lower; *p; p++)
    {
      g_string_append_c (out, is_label_char (*p) ? *p : '-');
    }
  if (out->len == 0 || !(out->str[0] >= 'a' && out->str[0] <= 'z'))
    g_string_prepend (out, "h-");
  if (out->len > GSM_LABEL_MAX_LEN)
    {
      /* Long names keep their start, and a hash tells them apart. */
      g_autofree char *hash = hash_of ("host", hostname ? hostname : "", NULL);

      g_string_truncate (out, GSM_LABEL_MAX_LEN - 1 - 8);
      g_string_append_c (out, '-');
      g_string_append_len (out, hash, 8);
    }
  return g_string_free (out, FALSE);
}

char *
_gsm_label_registry_for_files (const char *runtime_dir,
                               const char *hostname)
{
  g_autofree char *hash = NULL;
  char             resolved[PATH_MAX];
  const char      *dir = runtime_dir;

  /* The same directory whatever path led to it. */
  if (realpath (runtime_dir, resolved) != NULL)
    dir = resolved;
  hash = hash_of ("files", dir, hostname ? hostname : "");
  return g_strconcat ("files-", hash, NULL);
}

char *
_gsm_label_registry_for_etcd (const char *prefix)
{
  g_autofree char *hash = hash_of ("etcd", prefix, NULL);

  return g_strconcat ("etcd-", hash, NULL);
}

char *
_gsm_session_manager_dup_registry_label (GsmSessionManager *manager)
{
  g_autoptr (GKeyFile) key_file = _gsm_config_load (NULL);
  g_autofree char *backend = _gsm_config_get_backend (key_file);
  g_autofree char *dir = NULL;

  if (_gsm_backend_is_etcd (backend))
    {
      g_auto (GStrv) endpoints = NULL;
      g_autofree char *prefix = NULL;

      if (_gsm_etcd_parse_uri (backend, &endpoints, &prefix, NULL))
        return _gsm_label_registry_for_etcd (prefix);
    }

  dir = g_file_get_path (gsm_session_manager_get_runtime_dir (manager));
  return _gsm_label_registry_for_files (dir, gsm_session_manager_get_hostname (manager));
}

/**
 * gsm_session_manager_get_vm_labels:
 * @self: a #GsmSessionManager
 *
 * Gets the labels to put on a VM when this session creates it, so that
 * the cloud itself records which session and which registry own it:
 *
 * - `gsm-session`: this session (its id, or `s-` and its id when the id
 *   starts with a digit);
 * - `gsm-host`: this host's name, as a label value;
 * - `gsm-registry`: the registry, which [method@Gsm.Reaper.reconcile]
 *   lists the cloud by: with the file registry a hash of this host's name
 *   and the runtime directory, with etcd a hash of the key prefix (shared
 *   by the fleet).
 *
 * Every value is a valid Google Cloud label value (lowercase letters,
 * digits, `-` and `_`, at most 63 characters, starting with a letter), and
 * so a valid AWS and Azure tag value. For example, with gcloud:
 * `gcloud compute instances create NAME --labels=gsm-session=…,gsm-host=…,gsm-registry=…`;
 * with AWS, `--tag-specifications 'ResourceType=instance,Tags=[{Key=gsm-session,Value=…},…]'`;
 * with Azure, `az vm create … --tags gsm-session=… gsm-host=… gsm-registry=…`.
 *
 * From C, read one with `g_variant_lookup (labels, "gsm-session", "&s", &value)`;
 * in Python, `manager.get_vm_labels().unpack()` is a dict; in JavaScript,
 * `manager.get_vm_labels().deepUnpack()` an object. A VM that does not
 * carry this registry's `gsm-registry` label is never deleted by a
 * reconciliation.
 *
 * Returns: (transfer full): a new, non-floating `a{ss}`, sorted by key
 *
 * Since: 1.0
 */
GVariant *
gsm_session_manager_get_vm_labels (GsmSessionManager *self)
{
  g_autofree char *session = NULL;
  g_autofree char *host = NULL;
  g_autofree char *registry = NULL;
  GVariantBuilder  b;

  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (self), NULL);

  session = _gsm_label_for_session (gsm_session_manager_get_session_id (self));
  host = _gsm_label_for_host (gsm_session_manager_get_hostname (self));
  registry = _gsm_session_manager_dup_registry_label (self);

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{ss}"));
  g_variant_builder_add (&b, "{ss}", GSM_LABEL_HOST, host);
  g_variant_builder_add (&b, "{ss}", GSM_LABEL_REGISTRY, registry);
  g_variant_builder_add (&b, "{ss}", GSM_LABEL_SESSION, session);

  return g_variant_ref_sink (g_variant_builder_end (&b));
}
