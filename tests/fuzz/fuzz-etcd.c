/* fuzz-etcd.c: responses of the etcd v3 JSON gateway
 *
 * Every body the etcd backend reads (range, txn, lease grant and
 * keepalive, errors, one line of a watch stream) goes through
 * _gsm_etcd_response_parse(); each value it decodes is a registry entry,
 * parsed as the backend parses it. An input that starts with “etcd://”
 * is also read as a backend URI.
 *
 * Checked: nothing crashes or leaks; a parsed response is complete (every
 * key decoded and NUL-terminated, every value present); every accepted
 * entry passes the checks every other loader's entries pass.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "fuzz-session-common.h"

#include "gsm-etcd-registry-private.h"

static void
check_kv (GsmEtcdKv  *kv,
          JsonParser *parser)
{
  g_autoptr (GsmSession) session = NULL;
  const char *data;
  gsize       len;

  FUZZ_CHECK (kv != NULL);
  FUZZ_CHECK (kv->key != NULL);
  FUZZ_CHECK (kv->key[kv->key_len] == '\0');
  FUZZ_CHECK (kv->value != NULL);

  data = g_bytes_get_data (kv->value, &len);
  if (len == 0 || !_gsm_json_check (data, len, GSM_JSON_MAX_DEPTH, NULL))
    return;
  session = _gsm_session_new_from_json (NULL, data, len, parser, NULL);
  if (session != NULL)
    fuzz_check_session (session, parser);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr (GsmEtcdResponse) response = NULL;
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) error = NULL;
  gboolean ok;

  fuzz_init ();

  if (size >= 7 && size < 4096 &&
      (memcmp (data, "etcd://", 7) == 0 || (size >= 8 && memcmp (data, "etcds://", 8) == 0)) &&
      memchr (data, '\0', size) == NULL)
    {
      g_autofree char *uri = g_strndup ((const char *) data, size);
      g_auto (GStrv) endpoints = NULL;
      g_autofree char *prefix = NULL;

      if (_gsm_etcd_parse_uri (uri, &endpoints, &prefix, &error))
        {
          FUZZ_CHECK (endpoints[0] != NULL);
          for (guint i = 0; endpoints[i] != NULL; i++)
            FUZZ_CHECK (g_str_has_prefix (endpoints[i], data[4] == 's' ? "https://" : "http://"));
          FUZZ_CHECK (prefix != NULL && prefix[0] == '/');
        }
      else
        FUZZ_CHECK (error != NULL);
      g_clear_error (&error);
    }

  ok = _gsm_etcd_response_parse ((const char *) data, size, &response, &error);
  FUZZ_CHECK (ok == (response != NULL));
  FUZZ_CHECK (ok == (error == NULL));
  if (!ok)
    {
      FUZZ_CHECK (error->message != NULL);
      return 0;
    }

  if (response->has_error)
    {
      FUZZ_CHECK (response->error_message != NULL);
      return 0;
    }

  FUZZ_CHECK (response->kvs != NULL);
  FUZZ_CHECK (response->events != NULL);
  for (guint i = 0; i < response->kvs->len; i++)
    check_kv (response->kvs->pdata[i], parser);
  for (guint i = 0; i < response->events->len; i++)
    {
      GsmEtcdEvent *event = response->events->pdata[i];

      FUZZ_CHECK (event->type == GSM_ETCD_EVENT_PUT || event->type == GSM_ETCD_EVENT_DELETE);
      check_kv (event->kv, parser);
    }

  return 0;
}
