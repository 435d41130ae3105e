/* gsmd.c: the org.gsm.SessionManager1 status service
 *
 * Publishes the registry of its runtime directory on the session bus (or
 * the system bus) and reports changes live:
 *
 * - changes by any process: the session manager watches the registry
 *   file (GFileMonitor) and reports each new view with ::sessions-changed;
 *   the export turns that into D-Bus signals and PropertiesChanged;
 * - crashes: gsmd holds a pidfd of every live session's process on this
 *   host, each a main loop source, so the death of a session's process
 *   wakes gsmd at once, and a cleanup records the session as stale
 *   (SessionStale) a few milliseconds later. Where pidfds are
 *   unavailable, gsmd polls.
 *
 * The pids it watches come from the registry and are checked against the
 * process start time and boot id; nothing a D-Bus client sends is used.
 *
 * With --reap, or `auto=true` in [reaper] of the configuration (the
 * installed unit and D-Bus activation start gsmd without arguments), it
 * also deletes orphan VMs: when a session is found dead with a VM, a
 * GsmReaper pass runs once the grace period is over (and every
 * REAP_INTERVAL_S, for retries after a backoff), and each outcome is sent
 * as VmReaped or ReapFailed. If the provider can list VMs, it also
 * reconciles the cloud's inventory with the registry (at start, then every
 * reconcile-interval), which finds the VMs of processes that crashed
 * before they registered them. Without either, it logs the orphans that
 * wait and how to turn reaping on.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#define G_LOG_USE_STRUCTURED 1

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib-unix.h>

#include "gsm-config-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"
#include "gsm-session-private.h"
#include "gsmd-export.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define BUS_NAME "org.gsm.SessionManager1"
#define OBJECT_PATH "/org/gsm/SessionManager1"

/* Without pidfds every check is a poll: do it often. With them, the poll
 * only catches sessions on other hosts (their expiry) and any session
 * gsmd could not pin. */
#define POLL_INTERVAL_FAST_MS 500
#define POLL_INTERVAL_MS 30000
/* With --reap: a pass this often, for failed deletions whose backoff is
 * over and orphans recorded by other processes. */
#define REAP_INTERVAL_S 30
/* A reconciliation (a list call to the cloud) this often by default. */
#define RECONCILE_INTERVAL_S 300.0
#define INTERFACE_NAME "org.gsm.SessionManager1"

typedef struct
{
  GMainLoop         *loop;
  GsmSessionManager *manager;
  GsmSessionList    *list; /* what D-Bus clients are shown */
  GsmLivenessProbe  *probe;
  GHashTable        *pins;      /* session id → Pin */
  guint              pin_round; /* of check_sessions() */
  GDBusConnection   *connection;
  guint              owner_id;
  guint              poll_source;
  guint              poll_interval;
  gboolean           have_pidfd;
  gboolean           name_owned;
  gboolean           cleanup_running;
  gboolean           cleanup_again;
  int                status;
  /* --reap */
  GsmReaper    *reaper;
  GCancellable *reap_cancellable;
  guint         reap_source;
  guint         reap_timer;      /* the next pass some orphan is due */
  gint64        reap_timer_at;   /* monotonic µs */
  gint64        reap_started_at; /* monotonic µs, of the last pass */
  gboolean      reap_running;
  gboolean      reap_again;
  gboolean      reaping; /* --reap or [reaper] auto=true */
  guint         reconcile_source;
  gboolean      reconcile_running;
} Daemon;

static gboolean opt_system = FALSE;
static gboolean opt_replace = FALSE;
static gboolean opt_verbose = FALSE;
static gboolean opt_poll = FALSE;
static gboolean opt_reap = FALSE;
static char    *opt_runtime_dir = NULL;

static const GOptionEntry entries[] = {
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "Use the system bus instead of the session bus", NULL },
  { "replace", 'r', 0, G_OPTION_ARG_NONE, &opt_replace, "Replace a running gsmd", NULL },
  { "runtime-dir", 'd', 0, G_OPTION_ARG_FILENAME, &opt_runtime_dir,
    "Registry directory (default: $GSM_RUNTIME_DIR, else ~/.local/state/gsm-session)", "DIR" },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose, "Log every event", NULL },
  { "poll", 0, 0, G_OPTION_ARG_NONE, &opt_poll,
    "Poll for dead processes instead of waiting on pidfds (as on kernels before 5.3)", NULL },
  { "reap", 0, 0, G_OPTION_ARG_NONE, &opt_reap,
    "Delete the VMs of dead sessions (after the grace period) through the configured provider, "
    "and reconcile the cloud's inventory (also on with auto=true in [reaper] of the configuration)",
    NULL },
  { NULL }
};

/* ---- logging ------------------------------------------------------------ */

/*
 * Logs @format as the journal's MESSAGE with fields of its own, when they
 * apply: GSM_ACTION (what gsmd did or saw: start, session-dead,
 * orphans-waiting, reap, reap-failed, reconcile, exit…), SESSION_ID and
 * VM_ID. With G_MESSAGES_DEBUG or on a terminal the line reads as before.
 */
static void G_GNUC_PRINTF (5, 6)
    gsmd_log (GLogLevelFlags level,
              const char    *action,
              const char    *session_id,
              const char    *vm_id,
              const char    *format,
              ...)
{
  g_autofree char *message = NULL;
  GLogField        fields[6];
  gsize            n = 0;
  va_list          args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fields[n++] = (GLogField){ "GLIB_DOMAIN", G_LOG_DOMAIN, -1 };
  fields[n++] = (GLogField){ "PRIORITY", level & G_LOG_LEVEL_WARNING ? "4" : level & G_LOG_LEVEL_MESSAGE ? "5"
                                                                         : level & G_LOG_LEVEL_INFO      ? "6"
                                                                                                         : "7",
                             -1 };
  fields[n++] = (GLogField){ "MESSAGE", message, -1 };
  fields[n++] = (GLogField){ "GSM_ACTION", action, -1 };
  if (session_id != NULL)
    fields[n++] = (GLogField){ "SESSION_ID", session_id, -1 };
  if (vm_id != NULL)
    fields[n++] = (GLogField){ "VM_ID", vm_id, -1 };
  g_log_structured_array (level, fields, n);
}

#define log_message(action, session_id, vm_id, ...) \
  gsmd_log (G_LOG_LEVEL_MESSAGE, action, session_id, vm_id, __VA_ARGS__)
#define log_warning(action, session_id, vm_id, ...) \
  gsmd_log (G_LOG_LEVEL_WARNING, action, session_id, vm_id, __VA_ARGS__)
#define log_debug(action, session_id, vm_id, ...) \
  gsmd_log (G_LOG_LEVEL_DEBUG, action, session_id, vm_id, __VA_ARGS__)

/* ---- crash detection --------------------------------------------------- */

static void cleanup_done_cb (GObject *source, GAsyncResult *result, gpointer user_data);

static void
request_cleanup (Daemon *d)
{
  if (d->cleanup_running)
    {
      d->cleanup_again = TRUE;
      return;
    }
  d->cleanup_running = TRUE;
  d->cleanup_again = FALSE;
  gsm_session_manager_cleanup_stale_sessions (d->manager, NULL, cleanup_done_cb, d);
}

static void
cleanup_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;
  int n;

  n = gsm_session_manager_cleanup_stale_sessions_finish (d->manager, result, &error);
  if (n < 0)
    log_warning ("cleanup-failed", NULL, NULL, "Cleaning up stale sessions failed: %s", error->message);
  else if (n > 0)
    log_debug ("cleanup", NULL, NULL, "%d session(s) found dead", n);

  d->cleanup_running = FALSE;
  if (d->cleanup_again)
    request_cleanup (d);
}

static gboolean poll_cb (gpointer user_data);

static void
schedule_poll (Daemon *d,
               guint   interval)
{
  if (d->poll_source != 0 && d->poll_interval == interval)
    return;
  g_clear_handle_id (&d->poll_source, g_source_remove);
  if (interval == POLL_INTERVAL_FAST_MS && d->poll_interval != interval)
    log_debug ("poll", NULL, NULL, "Polling every %u ms: some local sessions are not pinned by a pidfd", interval);
  d->poll_interval = interval;
  d->poll_source = g_timeout_add (interval, poll_cb, d);
}

/* A live session's process, pinned by a pidfd: the kernel makes it
 * readable when the process exits. */
typedef struct
{
  Daemon *d;
  char   *session_id;
  int     pid;
  guint64 start_time;
  int     pidfd;
  guint   source;
  guint   round; /* the last check_sessions() that saw it live */
} Pin;

static void
pin_free (gpointer data)
{
  Pin *pin = data;

  if (pin->source != 0)
    g_source_remove (pin->source);
  close (pin->pidfd);
  g_free (pin->session_id);
  g_free (pin);
}

static gboolean
pin_exited_cb (int          fd,
               GIOCondition condition,
               gpointer     user_data)
{
  Pin    *pin = user_data;
  Daemon *d = pin->d;

  pin->source = 0;
  g_hash_table_remove (d->pins, pin->session_id);
  request_cleanup (d);
  return G_SOURCE_REMOVE;
}

/* Pins @session's process, if its pid means that process here. */
static gboolean
pin_session (Daemon     *d,
             GsmSession *session)
{
  int  pidfd = _gsm_liveness_probe_open_pidfd (d->probe, session);
  Pin *pin;

  if (pidfd < 0)
    return FALSE;
  pin = g_new0 (Pin, 1);
  pin->d = d;
  pin->session_id = g_strdup (gsm_session_get_session_id (session));
  pin->pid = gsm_session_get_pid (session);
  pin->start_time = gsm_session_get_start_time (session);
  pin->pidfd = pidfd;
  pin->round = d->pin_round;
  pin->source = g_unix_fd_add (pidfd, G_IO_IN, pin_exited_cb, pin);
  g_hash_table_replace (d->pins, pin->session_id, pin);
  return TRUE;
}

/* Is @session's process pinned (and so alive until its pidfd says not)? */
static gboolean
is_pinned (Daemon     *d,
           GsmSession *session)
{
  Pin *pin = g_hash_table_lookup (d->pins, gsm_session_get_session_id (session));

  if (pin == NULL || pin->pid != gsm_session_get_pid (session) ||
      pin->start_time != gsm_session_get_start_time (session))
    return FALSE;
  pin->round = d->pin_round;
  return TRUE;
}

/*
 * Looks at every session of the current view: a live local one gets
 * pinned (so its death wakes us), a dead one not yet recorded starts a
 * cleanup. Only /proc reads for sessions not pinned yet.
 */
static void
check_sessions (Daemon *d)
{
  g_autoptr (GsmRegistrySnapshot) view = _gsm_session_manager_dup_view (d->manager);
  GsmRegistrySnapshotIter iter;
  GHashTableIter          pins;
  GsmSession             *value;
  Pin                    *pin;
  gboolean                dead = FALSE;

  const char *hostname = gsm_session_manager_get_hostname (d->manager);
  const char *own_id = gsm_session_manager_get_session_id (d->manager);
  guint       n_unpinned = 0;

  if (view == NULL)
    return;

  d->pin_round++;
  _gsm_registry_snapshot_iter_init (&iter, view);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &value))
    {
      if (_gsm_session_is_stale (value) || is_pinned (d, value))
        continue;
      if (_gsm_session_manager_is_session_dead (d->manager, value))
        dead = TRUE;
      else if (g_strcmp0 (gsm_session_get_hostname (value), hostname) == 0 &&
               g_strcmp0 (gsm_session_get_session_id (value), own_id) != 0 &&
               !(d->have_pidfd && pin_session (d, value)))
        n_unpinned++;
    }

  /* Sessions that left, or were recorded stale, need no pin. */
  g_hash_table_iter_init (&pins, d->pins);
  while (g_hash_table_iter_next (&pins, NULL, (gpointer *) &pin))
    if (pin->round != d->pin_round)
      g_hash_table_iter_remove (&pins);

  if (dead)
    request_cleanup (d);

  /* Live local sessions that could not be pinned (no pidfd support, or
   * another pid namespace) are polled instead. */
  schedule_poll (d, !d->have_pidfd || n_unpinned > 0 ? POLL_INTERVAL_FAST_MS : POLL_INTERVAL_MS);
}

static gboolean
poll_cb (gpointer user_data)
{
  check_sessions (user_data);
  return G_SOURCE_CONTINUE;
}

static void
sessions_changed_cb (GsmSessionManager *manager,
                     Daemon            *d)
{
  check_sessions (d);
}

/* How to turn reaping on, for the messages about orphans left waiting. */
static char *
how_to_reap (void)
{
  g_autofree char *config = _gsm_config_get_path ();

  return g_strdup_printf ("reaping is off: delete orphans with “gsmctl reap --yes”, or set "
                          "auto=true in [reaper] of %s (or start gsmd --reap) to have them "
                          "deleted automatically",
                          config);
}

static void
log_stale_cb (GsmSessionManager *manager,
              GsmSession        *session,
              Daemon            *d)
{
  g_autofree char *hint = NULL;

  if (gsm_session_get_has_vm (session) && !d->reaping)
    hint = how_to_reap ();
  log_message ("session-dead", gsm_session_get_session_id (session), gsm_session_get_vm_id (session),
               "Session %s (pid %d) is dead%s%s%s%s", gsm_session_get_session_id (session),
               gsm_session_get_pid (session),
               gsm_session_get_has_vm (session) ? "; its VM is an orphan: " : "",
               gsm_session_get_has_vm (session) ? gsm_session_get_vm_id (session) : "",
               hint ? "; " : "", hint ? hint : "");
}

/* At start, without reaping: the orphans already waiting, if any. */
static void
log_waiting_orphans (Daemon *d)
{
  g_autoptr (GsmRegistrySnapshot) view = _gsm_session_manager_dup_view (d->manager);
  g_autofree char        *hint = NULL;
  GsmRegistrySnapshotIter iter;
  GsmSession             *session;
  guint                   n = 0;

  if (view == NULL)
    return;
  _gsm_registry_snapshot_iter_init (&iter, view);
  while (_gsm_registry_snapshot_iter_next (&iter, NULL, &session))
    if (session->vm_id != NULL && _gsm_session_is_stale (session))
      n++;
  if (n == 0)
    return;
  hint = how_to_reap ();
  log_message ("orphans-waiting", NULL, NULL, "%u orphan VM%s of dead sessions %s waiting; %s", n, n == 1 ? "" : "s",
               n == 1 ? "is" : "are", hint);
}

static void
log_added_cb (GsmSessionManager *manager,
              GsmSession        *session,
              Daemon            *d)
{
  log_debug ("session-added", gsm_session_get_session_id (session), gsm_session_get_vm_id (session),
             "Session %s (pid %d on %s) appeared", gsm_session_get_session_id (session),
             gsm_session_get_pid (session), gsm_session_get_hostname (session));
}

static void
log_removed_cb (GsmSessionManager *manager,
                GsmSession        *session,
                Daemon            *d)
{
  log_debug ("session-removed", gsm_session_get_session_id (session), gsm_session_get_vm_id (session),
             "Session %s (pid %d on %s) left", gsm_session_get_session_id (session),
             gsm_session_get_pid (session), gsm_session_get_hostname (session));
}

/* ---- reaping (--reap) ------------------------------------------------- */

static void reap_done_cb (GObject *source, GAsyncResult *result, gpointer user_data);
static void schedule_reaps (Daemon *d);

static void
start_reap (Daemon *d)
{
  if (d->reap_running)
    {
      d->reap_again = TRUE;
      return;
    }
  d->reap_running = TRUE;
  d->reap_again = FALSE;
  d->reap_started_at = g_get_monotonic_time ();
  gsm_reaper_reap (d->reaper, NULL, d->reap_cancellable, reap_done_cb, d);
}

static void
reap_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;
  guint reaped = 0, failed = 0;

  if (!gsm_reaper_reap_finish (d->reaper, result, &reaped, &failed, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    log_warning ("reap-failed", NULL, NULL, "Reaping orphan VMs failed: %s", error->message);
  else if (reaped + failed > 0)
    log_debug ("reap", NULL, NULL, "Reap pass: %u VM(s) deleted, %u failed", reaped, failed);

  d->reap_running = FALSE;
  if (g_cancellable_is_cancelled (d->reap_cancellable))
    return;
  if (d->reap_again)
    start_reap (d);
  else
    schedule_reaps (d); /* failures retried once their backoff is over */
}

static gboolean
reap_timer_cb (gpointer user_data)
{
  Daemon *d = user_data;

  d->reap_timer = 0;
  start_reap (d);
  return G_SOURCE_REMOVE;
}

static gboolean
reap_interval_cb (gpointer user_data)
{
  start_reap (user_data);
  return G_SOURCE_CONTINUE;
}

static void
reconcile_done_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) items = NULL;

  d->reconcile_running = FALSE;
  items = gsm_reaper_reconcile_finish (d->reaper, result, &error);
  if (items == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        log_warning ("reconcile-failed", NULL, NULL,
                     "Reconciling the cloud's inventory with the registry failed: %s",
                     error->message);
      return;
    }

  for (guint i = 0; i < items->len; i++)
    {
      GsmInventoryItem *item = items->pdata[i];

      switch (gsm_inventory_item_get_verdict (item))
        {
        case GSM_INVENTORY_VERDICT_ORPHAN:
        case GSM_INVENTORY_VERDICT_UNREGISTERED:
        case GSM_INVENTORY_VERDICT_UNVERIFIABLE:
        case GSM_INVENTORY_VERDICT_GONE:
          log_message ("reconcile", gsm_inventory_item_get_session_id (item),
                       gsm_inventory_item_get_vm_id (item),
                       "Inventory: VM %s is %s: %s", gsm_inventory_item_get_vm_id (item),
                       gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (item)),
                       gsm_inventory_item_get_reason (item));
          break;
        default:
          log_debug ("reconcile", gsm_inventory_item_get_session_id (item),
                     gsm_inventory_item_get_vm_id (item),
                     "Inventory: VM %s is %s: %s", gsm_inventory_item_get_vm_id (item),
                     gsm_inventory_verdict_to_string (gsm_inventory_item_get_verdict (item)),
                     gsm_inventory_item_get_reason (item));
          break;
        }
    }
  if (!g_cancellable_is_cancelled (d->reap_cancellable))
    schedule_reaps (d);
}

static gboolean
reconcile_cb (gpointer user_data)
{
  Daemon *d = user_data;

  if (!d->reconcile_running)
    {
      d->reconcile_running = TRUE;
      gsm_reaper_reconcile (d->reaper, GSM_RECONCILE_FLAGS_APPLY, d->reap_cancellable,
                            reconcile_done_cb, d);
    }
  return G_SOURCE_CONTINUE;
}

/*
 * Finds when the next orphan of the current view is due (dead, grace
 * period and backoff over), by the reaper's own rules, and sets a timer
 * for then, whoever recorded it as stale (this daemon, or a cleanup by any
 * other process). The timer runs on the monotonic clock. At most one pass
 * a second.
 */
static void
schedule_reaps (Daemon *d)
{
  g_autoptr (GsmRegistrySnapshot) view = _gsm_session_manager_dup_view (d->manager);
  double now = g_get_real_time () / (double) G_USEC_PER_SEC;
  double soonest;
  gint64 at;

  if (view == NULL)
    return;

  soonest = _gsm_reaper_get_next_due (d->reaper, view, now);
  if (soonest < 0)
    return;

  /* A little after it is due, never before; and not within a second of
   * the last pass. */
  at = g_get_monotonic_time () + (gint64) (MAX (soonest - now, 0) * G_USEC_PER_SEC) + 100000;
  if (d->reap_started_at > 0)
    at = MAX (at, d->reap_started_at + G_USEC_PER_SEC);
  if (d->reap_timer != 0 && d->reap_timer_at <= at)
    return;

  g_clear_handle_id (&d->reap_timer, g_source_remove);
  d->reap_timer_at = at;
  d->reap_timer = g_timeout_add ((guint) ((at - g_get_monotonic_time ()) / 1000 + 1), reap_timer_cb, d);
}

/* A session died with a VM: reap once its grace period is over. */
static void
reap_stale_cb (GsmSessionManager *manager,
               GsmSession        *session,
               Daemon            *d)
{
  if (gsm_session_get_has_vm (session))
    schedule_reaps (d);
}

static void
reap_changed_cb (GsmSessionManager *manager,
                 Daemon            *d)
{
  schedule_reaps (d);
}

static void
emit_bus_signal (Daemon     *d,
                 const char *signal,
                 GVariant   *parameters)
{
  g_autoptr (GError) error = NULL;

  g_variant_ref_sink (parameters);
  if (d->connection != NULL &&
      !g_dbus_connection_emit_signal (d->connection, NULL, OBJECT_PATH, INTERFACE_NAME, signal,
                                      parameters, &error))
    log_warning ("dbus", NULL, NULL, "Cannot send %s: %s", signal, error->message);
  g_variant_unref (parameters);
}

static void
vm_reaped_cb (GsmReaper         *reaper,
              GsmSession        *vm,
              GsmProviderResult *result,
              Daemon            *d)
{
  const char *outcome = gsm_provider_outcome_to_string (gsm_provider_result_get_outcome (result));

  log_message ("reap", gsm_session_get_session_id (vm), gsm_session_get_vm_id (vm),
               "Reaped VM %s of dead session %s (%s)", gsm_session_get_vm_id (vm),
               gsm_session_get_session_id (vm), outcome);
  emit_bus_signal (d, "VmReaped",
                   g_variant_new ("(ssss)", gsm_session_get_session_id (vm), gsm_session_get_vm_id (vm),
                                  gsm_session_get_zone (vm) ? gsm_session_get_zone (vm) : "", outcome));
}

static void
reap_failed_cb (GsmReaper  *reaper,
                GsmSession *vm,
                GError     *error,
                Daemon     *d)
{
  log_warning ("reap-failed", gsm_session_get_session_id (vm), gsm_session_get_vm_id (vm),
               "Could not reap VM %s of dead session %s: %s", gsm_session_get_vm_id (vm),
               gsm_session_get_session_id (vm), error->message);
  emit_bus_signal (d, "ReapFailed",
                   g_variant_new ("(sss)", gsm_session_get_session_id (vm), gsm_session_get_vm_id (vm),
                                  error->message));
}

static gboolean
have_pidfd (void)
{
  int fd = (int) syscall (SYS_pidfd_open, getpid (), 0);

  if (fd < 0)
    return FALSE;
  close (fd);
  return TRUE;
}

/* ---- bus --------------------------------------------------------------- */

static void
bus_acquired_cb (GDBusConnection *connection,
                 const char      *name,
                 gpointer         user_data)
{
  Daemon *d = user_data;
  g_autoptr (GError) error = NULL;

  if (!gsmd_export (d->manager, d->list, connection, OBJECT_PATH, &error))
    {
      g_printerr ("gsmd: %s\n", error->message);
      d->status = 1;
      g_main_loop_quit (d->loop);
      return;
    }
  d->connection = g_object_ref (connection);
}

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  Daemon          *d = user_data;
  g_autofree char *dir = g_file_get_path (gsm_session_manager_get_runtime_dir (d->manager));

  d->name_owned = TRUE;
  log_message ("start", NULL, NULL, "Serving the registry in %s as %s on the %s bus", dir, name,
               opt_system ? "system" : "session");
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Daemon *d = user_data;

  if (d->name_owned)
    {
      if (connection == NULL || g_dbus_connection_is_closed (connection))
        {
          /* The bus went away (its daemon stopped, the user logged out). */
          log_message ("exit", NULL, NULL, "The %s bus is gone; exiting",
                       opt_system ? "system" : "session");
          d->status = 1;
        }
      else
        /* Another gsmd took over with --replace: not a failure. */
        log_message ("exit", NULL, NULL, "Replaced by another gsmd; exiting");
      g_main_loop_quit (d->loop);
      return;
    }

  if (connection == NULL)
    g_printerr ("gsmd: cannot connect to the %s bus\n", opt_system ? "system" : "session");
  else if (d->connection == NULL)
    g_printerr ("gsmd: cannot export on the %s bus\n", opt_system ? "system" : "session");
  else
    g_printerr ("gsmd: the name %s is owned by another process%s\n", name,
                opt_replace ? "" : " (use --replace to take it over)");
  d->status = 1;
  g_main_loop_quit (d->loop);
}

static gboolean
quit_cb (gpointer user_data)
{
  Daemon *d = user_data;

  log_message ("exit", NULL, NULL, "Exiting on signal");
  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

/* ---- starting and stopping ------------------------------------------- */

/* Returns -1 to go on, else the exit status (after --help, --version or a
 * bad command line). */
static int
parse_command_line (int    *argc,
                    char ***argv)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  gboolean           version = FALSE;
  const GOptionEntry version_entries[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL }
  };

  g_option_context_set_summary (context,
                                "Publishes the gsm-session registry as " BUS_NAME " on D-Bus\n"
                                "and reports sessions that appear, change and die as they do.");
  g_option_context_set_description (context,
                                    "Exit status: 0 when stopped by a signal or replaced, 1 on an "
                                    "error, 2 on a bad command line. See gsmd(8).");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, version_entries, NULL);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("gsmd: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      printf ("gsmd %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (*argc > 1)
    {
      g_printerr ("gsmd: unexpected argument “%s”\n", (*argv)[1]);
      return 2;
    }
  if (opt_runtime_dir != NULL)
    g_setenv ("GSM_RUNTIME_DIR", opt_runtime_dir, TRUE);
  if (opt_verbose)
    g_setenv ("G_MESSAGES_DEBUG", "Gsm", FALSE);
  return -1;
}

/* Enters the registry and opens its read-only view; refuses to start on a
 * registry that cannot be used. */
static gboolean
open_registry (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) sessions = NULL;

  d->manager = gsm_session_manager_get_default ();
  d->probe = _gsm_session_manager_get_probe (d->manager);
  d->pins = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, pin_free);
  sessions = gsm_session_manager_get_all_active_sessions_sync (d->manager, NULL, &error);
  if (sessions != NULL)
    d->list = gsm_session_list_new (NULL, NULL, &error);
  if (d->list == NULL)
    {
      g_printerr ("gsmd: %s\n", error->message);
      return FALSE;
    }

  g_signal_connect (d->manager, "sessions-changed", G_CALLBACK (sessions_changed_cb), d);
  g_signal_connect (d->manager, "session-stale", G_CALLBACK (log_stale_cb), d);
  g_signal_connect (d->manager, "session-added", G_CALLBACK (log_added_cb), d);
  g_signal_connect (d->manager, "session-removed", G_CALLBACK (log_removed_cb), d);
  return TRUE;
}

/* If the provider can list VMs: a reconciliation now, then every
 * reconcile-interval. */
static void
start_reconciling (Daemon      *d,
                   GsmProvider *provider)
{
  g_auto (GStrv) list_command = gsm_provider_get_list_command (provider);
  g_autoptr (GKeyFile) key_file = _gsm_config_load (NULL);
  double interval = _gsm_config_get_seconds (key_file, "reaper", "reconcile-interval",
                                             "GSM_RECONCILE_INTERVAL", RECONCILE_INTERVAL_S);

  if (list_command == NULL)
    {
      log_message ("reconcile", NULL, NULL,
                   "Not reconciling the cloud's inventory: provider “%s” has no list command "
                   "(a preset, or list-command in its group of the configuration, gives one)",
                   gsm_provider_get_name (provider));
      return;
    }
  if (interval <= 0)
    {
      log_message ("reconcile", NULL, NULL,
                   "Not reconciling the cloud's inventory: reconcile-interval is 0");
      return;
    }
  log_message ("reconcile", NULL, NULL,
               "Reconciling the cloud's inventory with the registry every %g s", interval);
  d->reconcile_source = g_timeout_add ((guint) MIN (interval * 1000, G_MAXUINT), reconcile_cb, d);
  reconcile_cb (d);
}

/* With --reap or [reaper] auto=true: refuses to start with a provider
 * configuration that cannot work. Without: logs the orphans waiting. */
static gboolean
start_reaping (Daemon *d)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GsmProvider) provider = NULL;

  if (!d->reaping)
    {
      log_waiting_orphans (d);
      return TRUE;
    }

  provider = gsm_provider_new_default (&error);
  if (provider == NULL)
    {
      g_printerr ("gsmd: %s: %s\n", opt_reap ? "--reap" : "[reaper] auto=true", error->message);
      return FALSE;
    }
  d->reaper = gsm_reaper_new (d->manager, provider);
  d->reap_cancellable = g_cancellable_new ();
  g_signal_connect_after (d->manager, "session-stale", G_CALLBACK (reap_stale_cb), d);
  g_signal_connect_after (d->manager, "sessions-changed", G_CALLBACK (reap_changed_cb), d);
  g_signal_connect (d->reaper, "vm-reaped", G_CALLBACK (vm_reaped_cb), d);
  g_signal_connect (d->reaper, "reap-failed", G_CALLBACK (reap_failed_cb), d);
  d->reap_source = g_timeout_add_seconds (REAP_INTERVAL_S, reap_interval_cb, d);
  log_message ("start", NULL, NULL,
               "Reaping orphan VMs with provider “%s” (grace period %g s), as %s asks",
               gsm_provider_get_name (provider), gsm_reaper_get_grace_period (d->reaper),
               opt_reap ? "--reap" : "auto=true in [reaper] of the configuration");
  start_reap (d);
  start_reconciling (d, provider);
  return TRUE;
}

/* Deaths wake gsmd through a pidfd per live local session
 * (check_sessions() pins them), or a poll finds them. */
static void
watch_processes (Daemon *d)
{
  d->have_pidfd = !opt_poll && have_pidfd ();
  if (opt_poll)
    log_message ("start", NULL, NULL, "Polling every %d ms", POLL_INTERVAL_FAST_MS);
  else if (!d->have_pidfd)
    log_message ("start", NULL, NULL, "pidfd_open() is unavailable (%s): polling every %d ms",
                 g_strerror (errno), POLL_INTERVAL_FAST_MS);
  check_sessions (d);
}

static void
own_bus_name (Daemon *d)
{
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;

  if (opt_replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  d->owner_id = g_bus_own_name (opt_system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION, BUS_NAME,
                                flags, bus_acquired_cb, name_acquired_cb, name_lost_cb, d, NULL);
}

/* Leaves the bus, lets work in flight end, and leaves the registry. */
static void
shut_down (Daemon *d)
{
  g_autoptr (GError) error = NULL;

  if (d->owner_id != 0)
    g_bus_unown_name (d->owner_id);
  g_clear_pointer (&d->pins, g_hash_table_unref);
  g_clear_handle_id (&d->poll_source, g_source_remove);
  g_clear_handle_id (&d->reap_source, g_source_remove);
  g_clear_handle_id (&d->reap_timer, g_source_remove);
  g_clear_handle_id (&d->reconcile_source, g_source_remove);
  g_signal_handlers_disconnect_by_data (d->manager, d);
  gsmd_unexport (d->manager);
  g_clear_object (&d->list);
  if (d->connection != NULL)
    g_dbus_connection_flush_sync (d->connection, NULL, NULL);
  g_clear_object (&d->connection);

  /* Let a cleanup in flight finish, then leave the registry. */
  while (d->cleanup_running)
    g_main_context_iteration (NULL, TRUE);
  /* A reap pass in flight is cancelled: its provider command is killed
   * and the attempt recorded, to be retried. */
  if (d->reaper != NULL)
    {
      g_cancellable_cancel (d->reap_cancellable);
      while (d->reap_running || d->reconcile_running)
        g_main_context_iteration (NULL, TRUE);
      g_signal_handlers_disconnect_by_data (d->reaper, d);
      g_clear_object (&d->reaper);
      g_clear_object (&d->reap_cancellable);
    }
  if (!gsm_session_manager_close_sync (d->manager, NULL, &error))
    log_warning ("exit", NULL, NULL, "Leaving the registry failed: %s", error->message);
  g_clear_pointer (&d->loop, g_main_loop_unref);
}

int
main (int   argc,
      char *argv[])
{
  guint  sigterm_id, sigint_id;
  Daemon d = { 0 };
  int    status;

  setlocale (LC_ALL, "");
  status = parse_command_line (&argc, &argv);
  if (status >= 0)
    return status;

  d.loop = g_main_loop_new (NULL, FALSE);
  /* gsmd reaps by its own rules (or not at all), never at session start. */
  _gsm_reaper_inhibit_reap_at_start ();
  d.reaping = opt_reap || _gsm_reaper_auto_enabled ();
  if (!open_registry (&d))
    {
      g_clear_pointer (&d.pins, g_hash_table_unref);
      g_main_loop_unref (d.loop);
      return 1;
    }
  if (!start_reaping (&d))
    {
      shut_down (&d);
      return 1;
    }
  watch_processes (&d);

  sigterm_id = g_unix_signal_add (SIGTERM, quit_cb, &d);
  sigint_id = g_unix_signal_add (SIGINT, quit_cb, &d);
  own_bus_name (&d);
  g_main_loop_run (d.loop);
  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);

  shut_down (&d);
  return d.status;
}
