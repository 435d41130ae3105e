/* gsm-config.c: the configuration file and the environment
 *
 * One key file, `$XDG_CONFIG_HOME/gsm-session/config.ini` (or
 * `$GSM_CONFIG_FILE`), read where a setting is needed; environment
 * variables override its keys.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-config-private.h"
#include "gsm-error.h"

/* The longest duration any setting may give: ten years. */
#define MAX_SECONDS (10 * 365 * 24 * 3600.0)

char *
_gsm_config_get_path (void)
{
  const char *env = g_getenv ("GSM_CONFIG_FILE");

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  return g_build_filename (g_get_user_config_dir (), "gsm-session", "config.ini", NULL);
}

GKeyFile *
_gsm_config_load (GError **error)
{
  g_autoptr (GKeyFile) key_file = g_key_file_new ();
  g_autofree char *path = _gsm_config_get_path ();
  g_autoptr (GError) local_error = NULL;

  if (!g_key_file_load_from_file (key_file, path, G_KEY_FILE_NONE, &local_error) &&
      !g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                   "Cannot read configuration file “%s”: %s", path, local_error->message);
      return NULL;
    }

  return g_steal_pointer (&key_file);
}

char *
_gsm_config_get_backend (GKeyFile *key_file)
{
  const char *env = g_getenv ("GSM_REGISTRY");
  char       *backend;

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  if (key_file == NULL)
    return NULL;
  backend = g_key_file_get_string (key_file, "registry", "backend", NULL);
  if (backend != NULL)
    g_strstrip (backend);
  return backend;
}

gboolean
_gsm_backend_is_etcd (const char *backend)
{
  return backend != NULL && (g_str_has_prefix (backend, "etcd:") ||
                             g_str_has_prefix (backend, "etcds:"));
}

/* @text as a number of seconds, or FALSE. */
static gboolean
parse_seconds (const char *text,
               double     *out)
{
  char  *end = NULL;
  double d = g_ascii_strtod (text, &end);

  if (end == text || *end != '\0' || !(d >= 0 && d <= MAX_SECONDS))
    return FALSE;
  *out = d;
  return TRUE;
}

double
_gsm_env_seconds (const char *name,
                  double      fallback)
{
  const char *value = g_getenv (name);
  double      d;

  if (value == NULL || *value == '\0')
    return fallback;
  if (!parse_seconds (value, &d))
    {
      g_warning ("Ignoring %s=%s: not a number of seconds", name, value);
      return fallback;
    }

  return d;
}

double
_gsm_config_get_seconds (GKeyFile   *key_file,
                         const char *group,
                         const char *key,
                         const char *env,
                         double      fallback)
{
  g_autofree char *value = NULL;

  if (key_file != NULL)
    value = g_key_file_get_string (key_file, group, key, NULL);
  if (value != NULL && !parse_seconds (value, &fallback))
    g_warning ("Ignoring %s=%s in [%s] of the configuration: not a number of seconds",
               key, value, group);

  return _gsm_env_seconds (env, fallback);
}

guint
_gsm_config_get_count (GKeyFile   *key_file,
                       const char *group,
                       const char *key,
                       const char *env,
                       guint       min,
                       guint       max,
                       guint       fallback)
{
  g_autofree char *value = NULL;
  const char      *env_value = g_getenv (env);
  guint64          n;

  if (key_file != NULL)
    value = g_key_file_get_string (key_file, group, key, NULL);
  if (value != NULL)
    {
      if (g_ascii_string_to_unsigned (value, 10, min, max, &n, NULL))
        fallback = (guint) n;
      else
        g_warning ("Ignoring %s=%s in [%s] of the configuration: not a number from %u to %u",
                   key, value, group, min, max);
    }
  if (env_value != NULL && *env_value != '\0')
    {
      if (g_ascii_string_to_unsigned (env_value, 10, min, max, &n, NULL))
        fallback = (guint) n;
      else
        g_warning ("Ignoring %s=%s: not a number from %u to %u", env, env_value, min, max);
    }

  return fallback;
}

gboolean
_gsm_config_get_switch (const char *group,
                        const char *key,
                        const char *env)
{
  const char *env_value = g_getenv (env);
  g_autoptr (GKeyFile) key_file = NULL;
  g_autoptr (GError) error = NULL;
  gboolean value;

  if (env_value != NULL && *env_value != '\0')
    return g_ascii_strcasecmp (env_value, "1") == 0 ||
           g_ascii_strcasecmp (env_value, "true") == 0 ||
           g_ascii_strcasecmp (env_value, "yes") == 0;

  key_file = _gsm_config_load (NULL);
  if (key_file == NULL || !g_key_file_has_key (key_file, group, key, NULL))
    return FALSE;
  value = g_key_file_get_boolean (key_file, group, key, &error);
  if (error != NULL)
    {
      g_autofree char *path = _gsm_config_get_path ();

      g_warning ("Ignoring %s in [%s] of “%s”: %s (it stays off)", key, group, path,
                 error->message);
      return FALSE;
    }
  return value;
}
