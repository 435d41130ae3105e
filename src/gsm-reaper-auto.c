/* gsm-reaper-auto.c: reaping on by one opt-in
 *
 * `[reaper] auto=true` in the configuration (or GSM_REAP_AUTO=1) turns on
 * the automatic deletion of orphans: gsmd reaps and reconciles as with
 * --reap, and a new session reaps this host's dead sessions in the
 * background once their grace period is over, as an application started
 * again after a crash expects.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"

/* A session's background reaping waits for this host's orphans to become
 * due at most this long (a grace period, a backoff), then gives up: gsmd,
 * or the next session, takes over. */
#define AT_START_MAX_WAIT_S 600.0
#define AT_START_MAX_PASSES 8

static gint inhibited; /* atomic */

void
_gsm_reaper_inhibit_reap_at_start (void)
{
  g_atomic_int_set (&inhibited, 1);
}

gboolean
_gsm_reaper_auto_enabled (void)
{
  return _gsm_config_get_switch ("reaper", "auto", "GSM_REAP_AUTO");
}

static gpointer
reap_at_start_thread (gpointer data)
{
  g_autoptr (GsmSessionManager) manager = data;
  g_autoptr (GMainContext) context = g_main_context_new ();
  g_autoptr (GsmReaper) reaper = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) (AT_START_MAX_WAIT_S * G_USEC_PER_SEC);

  /* The reaper's signals go to this thread's own context, dispatched
   * here: nobody else listens. */
  g_main_context_push_thread_default (context);
  reaper = gsm_reaper_new (manager, NULL);
  _gsm_reaper_set_host_only (reaper, TRUE);

  for (guint pass = 0; pass < AT_START_MAX_PASSES; pass++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GsmRegistrySnapshot) snapshot = NULL;
      guint  reaped = 0, failed = 0;
      double now, due;
      gint64 wake;

      if (!gsm_reaper_reap_sync (reaper, NULL, &reaped, &failed, NULL, &error))
        {
          if (!g_error_matches (error, GSM_ERROR, GSM_ERROR_CLOSED))
            g_warning ("Reaping this host's dead sessions at the start of session %s: %s",
                       gsm_session_manager_get_session_id (manager), error->message);
          break;
        }
      while (g_main_context_iteration (context, FALSE))
        ;
      if (reaped + failed > 0)
        g_message ("Session %s reaped %u VM(s) of this host's dead sessions (%u failed)",
                   gsm_session_manager_get_session_id (manager), reaped, failed);

      /* The next of this host's orphans due, if any, within reach. */
      snapshot = _gsm_registry_load (_gsm_session_manager_get_registry (manager), NULL, NULL);
      if (snapshot == NULL)
        break;
      now = g_get_real_time () / (double) G_USEC_PER_SEC;
      due = _gsm_reaper_get_next_due (reaper, snapshot, now);
      if (due < 0)
        break;
      wake = g_get_monotonic_time () + (gint64) (MAX (due - now, 0) * G_USEC_PER_SEC) +
             G_USEC_PER_SEC / 10;
      if (wake > deadline)
        break;
      g_usleep ((gulong) MAX (wake - g_get_monotonic_time (), 0));
    }

  g_clear_object (&reaper);
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_pop_thread_default (context);
  return NULL;
}

void
_gsm_reaper_reap_at_start (GsmSessionManager *manager)
{
  if (g_atomic_int_get (&inhibited) || !_gsm_reaper_auto_enabled ())
    return;
  if (_gsm_session_manager_get_registry (manager) == NULL)
    return;

  g_thread_unref (g_thread_new ("gsm-reap-at-start", reap_at_start_thread,
                                g_object_ref (manager)));
}
