/* gsm-reaper.c: GsmReaper
 *
 * The object: its settings (from the configuration, else the defaults),
 * its signals, emitted in the main context it was made in, and its
 * public calls. Which VMs are orphans is decided in gsm-reaper-orphans.c,
 * and a pass that deletes them runs in gsm-reaper-pass.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <unistd.h>

#include "gsm-audit-private.h"
#include "gsm-config-private.h"
#include "gsm-error.h"
#include "gsm-etcd-registry-private.h"
#include "gsm-process-private.h"
#include "gsm-reaper-private.h"
#include "gsm-session-manager-private.h"

#define DEFAULT_GRACE 10.0
/* With etcd, at least this many lease TTLs: a session cut off from every
 * member is found dead a TTL after its last keepalive, and may still come
 * back (its keepalive tries again every third of a TTL). */
#define FLEET_GRACE_TTLS 2
#define DEFAULT_BACKOFF 30.0
#define MAX_BACKOFF 3600.0
#define DEFAULT_CONCURRENCY 8
#define MAX_CONCURRENCY 256

/**
 * GsmReaper:
 *
 * Deletes the VMs of dead sessions (orphans) through a [class@Gsm.Provider]
 * and removes their registry entries.
 *
 * An orphan is the VM of a session that the registry records as `stale`
 * (see [method@Gsm.SessionManager.cleanup_stale_sessions]) or that is
 * dead but not yet recorded so. A VM is deleted only when, checked again
 * right before the deletion under the registry lock:
 *
 * - its owner is provably dead: this host's probe found its process gone
 *   (or, with etcd, its lease expired). A session whose liveness cannot
 *   be proven either way (another host, no start time recorded) is never
 *   reaped, whatever its age, unless asked with
 *   [property@Gsm.Reaper:unverifiable-older-than]: then once its session
 *   is older than that;
 * - the grace period ([property@Gsm.Reaper:grace-period]) since the
 *   session was first found dead is over;
 * - after failed attempts, the backoff is over;
 * - no other reaper's command may still be deleting it. Each VM is
 *   claimed in the registry before it is deleted, so two reapers (two
 *   processes, two hosts, or a daemon and a command line) never delete the
 *   same VM at once. The claim of a reaper that died is taken over once
 *   the provider command it started is provably over (its process group
 *   is gone, which the claim records), or else once the claim's deadline
 *   (its time plus the provider's timeout) passed; the dead reaper's
 *   attempt is then recorded with the outcome `unknown`.
 *
 * A deletion that fails keeps the entry, records the attempt and is
 * retried after an exponential backoff ([property@Gsm.Reaper:backoff],
 * doubling up to [property@Gsm.Reaper:max-backoff]). A VM the provider
 * reports as not found is gone: its entry is removed. Every provider
 * command is appended to the audit log ([property@Gsm.Reaper:audit-log])
 * before it starts, and again with its outcome.
 *
 * A pass runs up to [property@Gsm.Reaper:concurrency] provider commands
 * at once. The provider command runs in a process group of its own and is
 * killed if the reaper dies.
 *
 * Signals are emitted in the main context that was the thread-default one
 * when the reaper was created.
 *
 * A VM the registry never recorded (its process crashed after the cloud
 * made it, before it registered it) is found by
 * [method@Gsm.Reaper.reconcile], which compares the cloud's inventory of
 * the VMs carrying this registry's labels (see
 * [method@Gsm.SessionManager.get_vm_labels]) with the registry, and
 * deletes the orphans among them by the same pass.
 *
 * The settings come from the environment (`GSM_REAP_GRACE`,
 * `GSM_REAP_BACKOFF`, `GSM_REAP_MAX_BACKOFF`, in seconds, and
 * `GSM_REAP_CONCURRENCY`), else from keys `grace-period`, `backoff`,
 * `max-backoff` and `concurrency` of group `[reaper]` of the
 * configuration file (see [class@Gsm.Provider]).
 *
 * Nothing reaps by itself unless key `auto` of group `[reaper]` is `true`
 * (or `GSM_REAP_AUTO=1`): then gsmd reaps and reconciles as with
 * `--reap`, and every new session deletes the VMs of this host's dead
 * sessions in the background (see [func@Gsm.SessionManager.get_default]).
 *
 * Since: 1.0
 */

enum
{
  PROP_0,
  PROP_MANAGER,
  PROP_PROVIDER,
  PROP_GRACE_PERIOD,
  PROP_BACKOFF,
  PROP_MAX_BACKOFF,
  PROP_CONCURRENCY,
  PROP_UNVERIFIABLE_OLDER_THAN,
  PROP_AUDIT_LOG,
  N_PROPS
};

/* Indexed by GsmReaperEvent. */
#define N_SIGNALS (GSM_REAPER_EVENT_SKIPPED + 1)

static GParamSpec *properties[N_PROPS];
static guint       signals[N_SIGNALS];
/* Set in the thread of gsm_reaper_reap(): its signals go to an idle. */
static GPrivate in_worker;

G_DEFINE_FINAL_TYPE (GsmReaper, gsm_reaper, G_TYPE_OBJECT)

G_DEFINE_FLAGS_TYPE (GsmReconcileFlags, gsm_reconcile_flags, G_DEFINE_ENUM_VALUE (GSM_RECONCILE_FLAGS_NONE, "none"), G_DEFINE_ENUM_VALUE (GSM_RECONCILE_FLAGS_APPLY, "apply"))

typedef struct
{
  GsmReaperEvent     event;
  GsmSession        *vm;
  GsmProviderResult *result;
  GError            *error;
  char              *reason;
} Emission;

static void
emission_free (gpointer data)
{
  Emission *e = data;

  g_clear_object (&e->vm);
  g_clear_object (&e->result);
  g_clear_error (&e->error);
  g_free (e->reason);
  g_free (e);
}

typedef struct
{
  GsmReaper *self;
  GPtrArray *emissions;
} Events;

static void
events_free (gpointer data)
{
  Events *ev = data;

  g_ptr_array_unref (ev->emissions);
  g_object_unref (ev->self);
  g_free (ev);
}

static gboolean
emit_cb (gpointer data)
{
  Events *ev = data;

  for (guint i = 0; i < ev->emissions->len; i++)
    {
      Emission *e = ev->emissions->pdata[i];

      if (e->event == GSM_REAPER_EVENT_REAPED)
        g_signal_emit (ev->self, signals[e->event], 0, e->vm, e->result);
      else if (e->event == GSM_REAPER_EVENT_FAILED)
        g_signal_emit (ev->self, signals[e->event], 0, e->vm, e->error);
      else
        g_signal_emit (ev->self, signals[e->event], 0, e->vm, e->reason);
    }

  return G_SOURCE_REMOVE;
}

void
_gsm_reaper_emit_later (GsmReaper *self,
                        GPtrArray *emissions)
{
  Events *ev;

  if (emissions->len == 0)
    return;

  ev = g_new0 (Events, 1);
  ev->self = g_object_ref (self);
  ev->emissions = g_ptr_array_ref (emissions);

  if (g_private_get (&in_worker) == NULL)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, emit_cb, ev, events_free);
  else
    {
      GSource *source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_DEFAULT);
      g_source_set_callback (source, emit_cb, ev, events_free);
      g_source_set_static_name (source, "[gsm] reaper signals");
      g_source_attach (source, self->context);
      g_source_unref (source);
    }
}

GPtrArray *
_gsm_reaper_events_new (void)
{
  return g_ptr_array_new_with_free_func (emission_free);
}

void
_gsm_reaper_add_event (GPtrArray         *emissions,
                       GsmReaperEvent     event,
                       GsmSession        *session,
                       GsmProviderResult *result,
                       const GError      *error,
                       const char        *reason)
{
  Emission *e = g_new0 (Emission, 1);

  e->event = event;
  e->vm = g_object_ref (session);
  e->result = result ? g_object_ref (result) : NULL;
  e->error = error ? g_error_copy (error) : NULL;
  e->reason = g_strdup (reason);
  g_ptr_array_add (emissions, e);
}

void
_gsm_reaper_get_settings (GsmReaper         *self,
                          GsmReaperSettings *s)
{
  g_mutex_lock (&self->mutex);
  s->grace = self->grace_period;
  s->backoff = self->backoff;
  s->max_backoff = self->max_backoff;
  s->unverifiable = self->unverifiable_older_than;
  s->concurrency = self->concurrency;
  s->timeout = 0;
  g_mutex_unlock (&self->mutex);
}

GsmProvider *
_gsm_reaper_dup_provider (GsmReaper *self,
                          GError   **error)
{
  GsmProvider *provider;

  g_mutex_lock (&self->mutex);
  provider = self->provider ? g_object_ref (self->provider) : NULL;
  g_mutex_unlock (&self->mutex);

  if (provider == NULL)
    {
      provider = gsm_provider_new_default (error);
      if (provider == NULL)
        return NULL;
      g_mutex_lock (&self->mutex);
      if (self->provider == NULL)
        self->provider = g_object_ref (provider);
      g_mutex_unlock (&self->mutex);
    }

  return provider;
}

typedef struct
{
  GPtrArray *orphans; /* nullable */
  guint      reaped;
  guint      failed;
} ReapData;

static void
reap_data_free (gpointer data)
{
  ReapData *d = data;

  g_clear_pointer (&d->orphans, g_ptr_array_unref);
  g_free (d);
}

void
_gsm_reaper_set_host_only (GsmReaper *self,
                           gboolean   host_only)
{
  g_mutex_lock (&self->mutex);
  self->host_only = host_only;
  g_mutex_unlock (&self->mutex);
}

/* The grace period when none is configured: with leases (etcd), twice the
 * TTL, so that a session whose lease lapsed while it was cut off from etcd
 * has time to come back before its VM is claimed. */
static double
default_grace (GsmSessionManager *manager)
{
  GsmRegistry *registry = _gsm_session_manager_get_registry (manager);

  if (registry != NULL && GSM_IS_ETCD_REGISTRY (registry))
    return MAX (DEFAULT_GRACE,
                FLEET_GRACE_TTLS * (double) _gsm_etcd_registry_get_ttl (GSM_ETCD_REGISTRY (registry)));
  return DEFAULT_GRACE;
}

static void
gsm_reaper_constructed (GObject *object)
{
  GsmReaper *self = GSM_REAPER (object);
  g_autoptr (GKeyFile) key_file = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  char             state;
  int              saved_errno;

  G_OBJECT_CLASS (gsm_reaper_parent_class)->constructed (object);

  g_assert (self->manager != NULL);
  self->context = g_main_context_ref_thread_default ();
  if (!_gsm_process_read_stat (getpid (), &state, &self->start_time, &saved_errno))
    self->start_time = 0;
  if (*_gsm_process_get_boot_id () != '\0')
    self->boot_id = g_strdup (_gsm_process_get_boot_id ());
  path = _gsm_audit_get_path (self->manager);
  self->audit_log = g_file_new_for_path (path);

  key_file = _gsm_config_load (&error);
  if (key_file == NULL)
    g_warning ("%s", error->message);
  self->grace_period = _gsm_config_get_seconds (key_file, "reaper", "grace-period",
                                                "GSM_REAP_GRACE", default_grace (self->manager));
  self->backoff = MIN (_gsm_config_get_seconds (key_file, "reaper", "backoff",
                                                "GSM_REAP_BACKOFF", DEFAULT_BACKOFF),
                       MAX_BACKOFF);
  self->max_backoff = MIN (_gsm_config_get_seconds (key_file, "reaper", "max-backoff",
                                                    "GSM_REAP_MAX_BACKOFF", MAX_BACKOFF),
                           MAX_BACKOFF);
  self->concurrency = _gsm_config_get_count (key_file, "reaper", "concurrency",
                                             "GSM_REAP_CONCURRENCY", 1, MAX_CONCURRENCY,
                                             DEFAULT_CONCURRENCY);
}

static void
gsm_reaper_finalize (GObject *object)
{
  GsmReaper *self = GSM_REAPER (object);

  g_clear_object (&self->manager);
  g_clear_object (&self->provider);
  g_clear_object (&self->audit_log);
  g_free (self->boot_id);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (gsm_reaper_parent_class)->finalize (object);
}

static void
gsm_reaper_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  GsmReaper *self = GSM_REAPER (object);

  switch (prop_id)
    {
    case PROP_MANAGER:
      g_value_set_object (value, self->manager);
      break;
    case PROP_PROVIDER:
      g_mutex_lock (&self->mutex);
      g_value_set_object (value, self->provider);
      g_mutex_unlock (&self->mutex);
      break;
    case PROP_GRACE_PERIOD:
      g_value_set_double (value, gsm_reaper_get_grace_period (self));
      break;
    case PROP_BACKOFF:
      g_value_set_double (value, gsm_reaper_get_backoff (self));
      break;
    case PROP_MAX_BACKOFF:
      g_value_set_double (value, gsm_reaper_get_max_backoff (self));
      break;
    case PROP_CONCURRENCY:
      g_value_set_uint (value, gsm_reaper_get_concurrency (self));
      break;
    case PROP_UNVERIFIABLE_OLDER_THAN:
      g_value_set_double (value, gsm_reaper_get_unverifiable_older_than (self));
      break;
    case PROP_AUDIT_LOG:
      g_value_set_object (value, self->audit_log);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_reaper_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  GsmReaper *self = GSM_REAPER (object);

  switch (prop_id)
    {
    case PROP_MANAGER:
      self->manager = g_value_dup_object (value);
      break;
    case PROP_PROVIDER:
      self->provider = g_value_dup_object (value);
      break;
    case PROP_GRACE_PERIOD:
      gsm_reaper_set_grace_period (self, g_value_get_double (value));
      break;
    case PROP_BACKOFF:
      gsm_reaper_set_backoff (self, g_value_get_double (value));
      break;
    case PROP_MAX_BACKOFF:
      gsm_reaper_set_max_backoff (self, g_value_get_double (value));
      break;
    case PROP_CONCURRENCY:
      gsm_reaper_set_concurrency (self, g_value_get_uint (value));
      break;
    case PROP_UNVERIFIABLE_OLDER_THAN:
      gsm_reaper_set_unverifiable_older_than (self, g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gsm_reaper_class_init (GsmReaperClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = gsm_reaper_constructed;
  object_class->finalize = gsm_reaper_finalize;
  object_class->get_property = gsm_reaper_get_property;
  object_class->set_property = gsm_reaper_set_property;

  /**
   * GsmReaper:manager:
   *
   * The session manager whose registry is reaped.
   *
   * Since: 1.0
   */
  properties[PROP_MANAGER] =
      g_param_spec_object ("manager", NULL, NULL, GSM_TYPE_SESSION_MANAGER,
                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * GsmReaper:provider:
   *
   * The provider that deletes VMs; %NULL until the first pass if the
   * reaper was created without one (it then uses
   * [ctor@Gsm.Provider.new_default]).
   *
   * Since: 1.0
   */
  properties[PROP_PROVIDER] =
      g_param_spec_object ("provider", NULL, NULL, GSM_TYPE_PROVIDER,
                           G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * GsmReaper:grace-period:
   *
   * How long after a session was first found dead its VM is left alone,
   * in seconds (so that a slow restart, or a registration during a pass,
   * is not reaped). The moment it was first found dead is recorded in the
   * registry, so every reaper counts from the same moment. Unless
   * configured, 10, or with the etcd registry twice the lease TTL (30 with
   * the default TTL), so that a session cut off from etcd has time to come
   * back.
   *
   * Since: 1.0
   */
  properties[PROP_GRACE_PERIOD] =
      g_param_spec_double ("grace-period", NULL, NULL, 0, 10 * 365 * 24 * 3600.0, DEFAULT_GRACE,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:backoff:
   *
   * The delay before retrying a failed deletion, in seconds; it doubles
   * with every further failure, up to [property@Gsm.Reaper:max-backoff].
   *
   * Since: 1.0
   */
  properties[PROP_BACKOFF] =
      g_param_spec_double ("backoff", NULL, NULL, 0, MAX_BACKOFF, DEFAULT_BACKOFF,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:max-backoff:
   *
   * The longest delay before retrying a failed deletion, in seconds (at
   * most an hour). A retry time that another writer recorded further
   * ahead than this (a clock that was ahead) counts as due this long
   * from now.
   *
   * Since: 1.0
   */
  properties[PROP_MAX_BACKOFF] =
      g_param_spec_double ("max-backoff", NULL, NULL, 0, MAX_BACKOFF, MAX_BACKOFF,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:concurrency:
   *
   * How many provider commands a pass runs at once (1 to 256; 8 unless
   * `GSM_REAP_CONCURRENCY` or key `concurrency` of group `[reaper]` of the
   * configuration file says otherwise).
   *
   * Since: 1.0
   */
  properties[PROP_CONCURRENCY] =
      g_param_spec_uint ("concurrency", NULL, NULL, 1, MAX_CONCURRENCY, DEFAULT_CONCURRENCY,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:unverifiable-older-than:
   *
   * Also reap the VMs of sessions whose liveness cannot be proven either
   * way from this host (a session of another host, or one recorded
   * without a start time) once their session is older than this, in
   * seconds; 0 (the default) never does. Such a session's process may
   * well be alive: set this only when sure that no session lives that
   * long (`gsmctl reap --unverifiable --older-than SECONDS`).
   *
   * Since: 1.0
   */
  properties[PROP_UNVERIFIABLE_OLDER_THAN] =
      g_param_spec_double ("unverifiable-older-than", NULL, NULL, 0, 10 * 365 * 24 * 3600.0, 0,
                           G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * GsmReaper:audit-log:
   *
   * The audit log, `reap_audit.log` in the runtime directory (with the
   * file prefix): one JSON object per line, with members `time`,
   * `timestamp`, `action` (`reap`, or `cleanup` for a session deleting its
   * own VM), `vm`, `zone`, `owner` (`session`, `pid`, `host`), `command`
   * (the argument vector), `exit_status`, `outcome`, `error`, `attempt`,
   * `token` and `by` (the session that acted). Each provider command is
   * recorded before it starts, with the outcome `started`, and again once
   * it ended (`deleted`, `not-found`, `failed`, `timed-out`, `cancelled`),
   * with the same `token`. When a reaper died while its command ran, the
   * reaper that takes its claim over records that attempt's outcome as
   * `unknown`, with the dead reaper's `token`.
   *
   * Since: 1.0
   */
  properties[PROP_AUDIT_LOG] =
      g_param_spec_object ("audit-log", NULL, NULL, G_TYPE_FILE,
                           G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * GsmReaper::vm-reaped:
   * @self: the reaper
   * @vm: the dead owner's entry, with the VM, as it recorded it
   * @result: what the provider command did
   *
   * Emitted when a VM was deleted (or the provider reported it gone) and
   * its entry removed.
   *
   * Since: 1.0
   */
  signals[GSM_REAPER_EVENT_REAPED] =
      g_signal_new ("vm-reaped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, GSM_TYPE_PROVIDER_RESULT);

  /**
   * GsmReaper::reap-failed:
   * @self: the reaper
   * @vm: the owner's entry, with the VM
   * @error: why it could not be deleted
   *
   * Emitted when deleting a VM failed; its entry stays and the deletion
   * is retried after the backoff.
   *
   * Since: 1.0
   */
  signals[GSM_REAPER_EVENT_FAILED] =
      g_signal_new ("reap-failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, G_TYPE_ERROR);

  /**
   * GsmReaper::reap-skipped:
   * @self: the reaper
   * @vm: the owner's entry, with the VM
   * @reason: why it was left alone
   *
   * Emitted when a VM of the list given to [method@Gsm.Reaper.reap] was
   * left alone after all, because the checks made right before deleting
   * it failed (its owner is alive again, another reaper claimed it, …).
   *
   * Since: 1.0
   */
  signals[GSM_REAPER_EVENT_SKIPPED] =
      g_signal_new ("reap-skipped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                    NULL, NULL, NULL, G_TYPE_NONE, 2, GSM_TYPE_SESSION, G_TYPE_STRING);
}

static void
gsm_reaper_init (GsmReaper *self)
{
  g_mutex_init (&self->mutex);
  self->grace_period = DEFAULT_GRACE;
  self->backoff = DEFAULT_BACKOFF;
  self->max_backoff = MAX_BACKOFF;
  self->concurrency = DEFAULT_CONCURRENCY;
}

/* A setting of the reaper, under its mutex. */
static double
get_double (GsmReaper *self,
            double    *field)
{
  double v;

  g_mutex_lock (&self->mutex);
  v = *field;
  g_mutex_unlock (&self->mutex);
  return v;
}

static void
set_double (GsmReaper *self,
            double    *field,
            double     value,
            guint      prop_id)
{
  gboolean changed;

  g_mutex_lock (&self->mutex);
  changed = *field != value;
  *field = value;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop_id]);
}

/**
 * gsm_reaper_new:
 * @manager: the session manager
 * @provider: (nullable): the provider that deletes VMs, or %NULL for the
 *   configured one
 *
 * Creates a reaper for @manager's registry.
 *
 * Returns: (transfer full): a new reaper
 *
 * Since: 1.0
 */
GsmReaper *
gsm_reaper_new (GsmSessionManager *manager,
                GsmProvider       *provider)
{
  g_return_val_if_fail (GSM_IS_SESSION_MANAGER (manager), NULL);
  g_return_val_if_fail (provider == NULL || GSM_IS_PROVIDER (provider), NULL);

  return g_object_new (GSM_TYPE_REAPER, "manager", manager, "provider", provider, NULL);
}

/**
 * gsm_reaper_get_manager:
 * @self: a #GsmReaper
 *
 * Gets the session manager.
 *
 * Returns: (transfer none): the manager
 *
 * Since: 1.0
 */
GsmSessionManager *
gsm_reaper_get_manager (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  return self->manager;
}

/**
 * gsm_reaper_get_provider:
 * @self: a #GsmReaper
 *
 * Gets the provider.
 *
 * Returns: (transfer none) (nullable): the provider, or %NULL before the
 *   first pass of a reaper created without one
 *
 * Since: 1.0
 */
GsmProvider *
gsm_reaper_get_provider (GsmReaper *self)
{
  GsmProvider *provider;

  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  g_mutex_lock (&self->mutex);
  provider = self->provider;
  g_mutex_unlock (&self->mutex);
  return provider;
}

/**
 * gsm_reaper_get_grace_period:
 * @self: a #GsmReaper
 *
 * Gets the grace period.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_grace_period (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  return get_double (self, &self->grace_period);
}

/**
 * gsm_reaper_set_grace_period:
 * @self: a #GsmReaper
 * @seconds: the grace period
 *
 * Sets how long after a session was first found dead its VM is left
 * alone.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_grace_period (GsmReaper *self,
                             double     seconds)
{
  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0);

  set_double (self, &self->grace_period, seconds, PROP_GRACE_PERIOD);
}

/**
 * gsm_reaper_get_backoff:
 * @self: a #GsmReaper
 *
 * Gets the delay before the first retry of a failed deletion.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_backoff (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  return get_double (self, &self->backoff);
}

/**
 * gsm_reaper_set_backoff:
 * @self: a #GsmReaper
 * @seconds: the delay, at most 3600
 *
 * Sets the delay before the first retry of a failed deletion; it doubles
 * with each further failure, up to an hour.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_backoff (GsmReaper *self,
                        double     seconds)
{
  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0 && seconds <= MAX_BACKOFF);

  set_double (self, &self->backoff, seconds, PROP_BACKOFF);
}

/**
 * gsm_reaper_get_max_backoff:
 * @self: a #GsmReaper
 *
 * Gets the longest delay before retrying a failed deletion.
 *
 * Returns: seconds
 *
 * Since: 1.0
 */
double
gsm_reaper_get_max_backoff (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  return get_double (self, &self->max_backoff);
}

/**
 * gsm_reaper_set_max_backoff:
 * @self: a #GsmReaper
 * @seconds: the longest delay, at most 3600
 *
 * Sets the longest delay before retrying a failed deletion (see
 * [property@Gsm.Reaper:max-backoff]).
 *
 * Since: 1.0
 */
void
gsm_reaper_set_max_backoff (GsmReaper *self,
                            double     seconds)
{
  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0 && seconds <= MAX_BACKOFF);

  set_double (self, &self->max_backoff, seconds, PROP_MAX_BACKOFF);
}

/**
 * gsm_reaper_get_concurrency:
 * @self: a #GsmReaper
 *
 * Gets how many provider commands a pass runs at once.
 *
 * Returns: the limit
 *
 * Since: 1.0
 */
guint
gsm_reaper_get_concurrency (GsmReaper *self)
{
  guint v;

  g_return_val_if_fail (GSM_IS_REAPER (self), 1);
  g_mutex_lock (&self->mutex);
  v = self->concurrency;
  g_mutex_unlock (&self->mutex);
  return v;
}

/**
 * gsm_reaper_set_concurrency:
 * @self: a #GsmReaper
 * @concurrency: 1 to 256
 *
 * Sets how many provider commands a pass runs at once. A pass already
 * running keeps its limit.
 *
 * Since: 1.0
 */
void
gsm_reaper_set_concurrency (GsmReaper *self,
                            guint      concurrency)
{
  gboolean changed;

  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (concurrency >= 1 && concurrency <= MAX_CONCURRENCY);

  g_mutex_lock (&self->mutex);
  changed = self->concurrency != concurrency;
  self->concurrency = concurrency;
  g_mutex_unlock (&self->mutex);
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CONCURRENCY]);
}

/**
 * gsm_reaper_get_unverifiable_older_than:
 * @self: a #GsmReaper
 *
 * Gets the age past which the VM of a session whose liveness cannot be
 * proven is reaped (see [property@Gsm.Reaper:unverifiable-older-than]).
 *
 * Returns: seconds, 0 for never
 *
 * Since: 1.0
 */
double
gsm_reaper_get_unverifiable_older_than (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), 0);
  return get_double (self, &self->unverifiable_older_than);
}

/**
 * gsm_reaper_set_unverifiable_older_than:
 * @self: a #GsmReaper
 * @seconds: an age in seconds, or 0 for never
 *
 * Asks the reaper to also delete the VMs of sessions whose liveness
 * cannot be proven from this host (another host, no start time recorded)
 * once their session is older than @seconds. Their processes may be
 * alive: see [property@Gsm.Reaper:unverifiable-older-than].
 *
 * Since: 1.0
 */
void
gsm_reaper_set_unverifiable_older_than (GsmReaper *self,
                                        double     seconds)
{
  g_return_if_fail (GSM_IS_REAPER (self));
  g_return_if_fail (seconds >= 0);

  set_double (self, &self->unverifiable_older_than, seconds, PROP_UNVERIFIABLE_OLDER_THAN);
}

/**
 * gsm_reaper_get_audit_log:
 * @self: a #GsmReaper
 *
 * Gets the audit log file (see [property@Gsm.Reaper:audit-log]).
 *
 * Returns: (transfer none): the file
 *
 * Since: 1.0
 */
GFile *
gsm_reaper_get_audit_log (GsmReaper *self)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  return self->audit_log;
}

static void
list_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError    *error = NULL;
  GPtrArray *orphans = _gsm_reaper_list_orphans (source_object, cancellable, &error);

  if (orphans == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, orphans, (GDestroyNotify) g_ptr_array_unref);
}

/**
 * gsm_reaper_list_orphans:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Lists the entries whose VM a pass would delete now: owner provably dead
 * (or as old as [property@Gsm.Reaper:unverifiable-older-than] asks),
 * grace period and backoff over, not claimed by a reaper whose command
 * may still run. Changes nothing.
 *
 * Since: 1.0
 */
void
gsm_reaper_list_orphans (GsmReaper          *self,
                         GCancellable       *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (GSM_IS_REAPER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_reaper_list_orphans);
  g_task_run_in_thread (task, list_thread);
}

/**
 * gsm_reaper_list_orphans_finish:
 * @self: a #GsmReaper
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Reaper.list_orphans].
 *
 * Returns: (transfer container) (element-type GsmSession): the entries,
 *   oldest first, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_list_orphans_finish (GsmReaper    *self,
                                GAsyncResult *result,
                                GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_reaper_list_orphans, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * gsm_reaper_list_orphans_sync:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Reaper.list_orphans].
 *
 * Returns: (transfer container) (element-type GsmSession): the entries,
 *   oldest first, or %NULL on error
 *
 * Since: 1.0
 */
GPtrArray *
gsm_reaper_list_orphans_sync (GsmReaper    *self,
                              GCancellable *cancellable,
                              GError      **error)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);
  return _gsm_reaper_list_orphans (self, cancellable, error);
}

static void
reap_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  ReapData *d = task_data;
  GError   *error = NULL;

  g_private_set (&in_worker, GINT_TO_POINTER (1));
  if (_gsm_reaper_reap (source_object, d->orphans, &d->reaped, &d->failed, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
  g_private_set (&in_worker, NULL);
}

static ReapData *
reap_data_new (GPtrArray *orphans)
{
  ReapData *d = g_new0 (ReapData, 1);

  if (orphans != NULL)
    {
      d->orphans = g_ptr_array_new_with_free_func (g_object_unref);
      for (guint i = 0; i < orphans->len; i++)
        g_ptr_array_add (d->orphans, g_object_ref (orphans->pdata[i]));
    }
  return d;
}

/**
 * gsm_reaper_reap:
 * @self: a #GsmReaper
 * @orphans: (nullable) (element-type GsmSession): the entries to act on,
 *   as listed by [method@Gsm.Reaper.list_orphans]; %NULL to first record
 *   newly dead sessions and then act on every orphan
 * @cancellable: (nullable): a #GCancellable; cancelling kills a running
 *   provider command and ends the pass
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Runs a pass: deletes the VM of each orphan through the provider, up to
 * [property@Gsm.Reaper:concurrency] at once, and removes its entry. No VM
 * outside @orphans is deleted, and each entry is checked again right
 * before its VM is deleted (see [class@Gsm.Reaper]); the pass also
 * rewrites as now any time in the future that another writer recorded in
 * an entry with a VM. A failed deletion does not end the pass: it is
 * reported by [signal@Gsm.Reaper::reap-failed] and counted.
 *
 * Since: 1.0
 */
void
gsm_reaper_reap (GsmReaper          *self,
                 GPtrArray          *orphans,
                 GCancellable       *cancellable,
                 GAsyncReadyCallback callback,
                 gpointer            user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (GSM_IS_REAPER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, gsm_reaper_reap);
  g_task_set_task_data (task, reap_data_new (orphans), reap_data_free);
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, reap_thread);
}

/**
 * gsm_reaper_reap_finish:
 * @self: a #GsmReaper
 * @result: the #GAsyncResult
 * @out_reaped: (out) (optional): the number of VMs deleted (or reported
 *   gone)
 * @out_failed: (out) (optional): the number of VMs whose deletion failed
 * @error: return location for a #GError
 *
 * Finishes [method@Gsm.Reaper.reap].
 *
 * Returns: %TRUE if the pass ran to its end (some deletions may have
 *   failed: see @out_failed); %FALSE if the registry could not be used or
 *   the pass was cancelled
 *
 * Since: 1.0
 */
gboolean
gsm_reaper_reap_finish (GsmReaper    *self,
                        GAsyncResult *result,
                        guint        *out_reaped,
                        guint        *out_failed,
                        GError      **error)
{
  ReapData *d;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == gsm_reaper_reap, FALSE);

  d = g_task_get_task_data (G_TASK (result));
  if (out_reaped)
    *out_reaped = d->reaped;
  if (out_failed)
    *out_failed = d->failed;
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * gsm_reaper_reap_sync:
 * @self: a #GsmReaper
 * @orphans: (nullable) (element-type GsmSession): the entries to act on,
 *   or %NULL for every orphan
 * @out_reaped: (out) (optional): the number of VMs deleted (or reported
 *   gone)
 * @out_failed: (out) (optional): the number of VMs whose deletion failed
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Synchronous form of [method@Gsm.Reaper.reap]. Needs no main loop;
 * called in the reaper's main context, it emits the signals before it
 * returns.
 *
 * Returns: %TRUE if the pass ran to its end
 *
 * Since: 1.0
 */
gboolean
gsm_reaper_reap_sync (GsmReaper    *self,
                      GPtrArray    *orphans,
                      guint        *out_reaped,
                      guint        *out_failed,
                      GCancellable *cancellable,
                      GError      **error)
{
  guint    reaped, failed;
  gboolean ok;

  g_return_val_if_fail (GSM_IS_REAPER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ok = _gsm_reaper_reap (self, orphans, &reaped, &failed, cancellable, error);
  if (out_reaped)
    *out_reaped = reaped;
  if (out_failed)
    *out_failed = failed;

  return ok;
}

/**
 * gsm_reaper_read_history_sync:
 * @self: a #GsmReaper
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Reads the audit log (its last 4 MiB): one JSON object per attempt,
 * oldest first. Lines that are not JSON objects are left out.
 *
 * Returns: (transfer full) (array zero-terminated=1): the records, empty
 *   if there is no log yet, or %NULL with @error set (an unsafe file is
 *   %GSM_ERROR_INSECURE_FILE)
 *
 * Since: 1.0
 */
char **
gsm_reaper_read_history_sync (GsmReaper    *self,
                              GCancellable *cancellable,
                              GError      **error)
{
  g_return_val_if_fail (GSM_IS_REAPER (self), NULL);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  return _gsm_audit_read (self->manager, error);
}
