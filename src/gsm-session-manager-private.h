/* gsm-session-manager-private.h
 *
 * What the rest of the library reads of the manager, then what the
 * manager's own files share:
 *
 * - gsm-session-manager.c: the GObject, its construction and public API
 * - gsm-session-manager-backend.c: which store, opened and entered
 * - gsm-session-manager-ops.c: operations, run in the caller's thread or
 *   in the worker, each a transaction of the store
 * - gsm-session-manager-rules.c: what a transaction decides (the business
 *   rules)
 * - gsm-session-manager-listing.c: what a listing shows
 * - gsm-session-manager-events.c: what an operation found, emitted as
 *   signals in the owner context, and the changes of other processes
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-process-private.h"
#include "gsm-registry-private.h"
#include "gsm-session-manager.h"

G_BEGIN_DECLS

G_GNUC_INTERNAL
void _gsm_session_manager_reset_for_testing (void);
G_GNUC_INTERNAL
GsmRegistry *_gsm_session_manager_get_registry (GsmSessionManager *self);
G_GNUC_INTERNAL
GsmLivenessProbe *_gsm_session_manager_get_probe (GsmSessionManager *self);
G_GNUC_INTERNAL
GsmLiveness _gsm_session_manager_get_liveness (GsmSessionManager *self,
                                               GsmSession        *session);
G_GNUC_INTERNAL
gboolean _gsm_session_manager_is_session_dead (GsmSessionManager *self,
                                               GsmSession        *session);
G_GNUC_INTERNAL
GsmRegistrySnapshot *_gsm_session_manager_dup_view (GsmSessionManager *self);
G_GNUC_INTERNAL
void _gsm_session_manager_run_in_worker (GsmSessionManager *self,
                                         GTask             *task,
                                         GTaskThreadFunc    func);
G_GNUC_INTERNAL
GHashTable *_gsm_session_manager_list_sessions_sync (GsmSessionManager *self,
                                                     GCancellable      *cancellable,
                                                     GError           **error);

/* ---- shared by the manager's own files --------------------------------- */

typedef struct _GsmManagerEvents  GsmManagerEvents;
typedef struct _GsmManagerListing GsmManagerListing;
typedef struct _GsmTxnContext     GsmTxnContext;

struct _GsmSessionManager
{
  GObject parent_instance;

  GMainContext *context;
  GThread      *owner_thread; /* the thread that made the manager */
  GThreadPool  *pool;

  /* Identity; fixed after construction. */
  char   *session_id;
  int     pid;
  char   *hostname;
  double  created_at;
  guint64 start_time;
  char   *boot_id;
  char   *file_prefix; /* GSM_FILE_PREFIX, with our uid where shared names are taken */
  double  expiry;

  GFile *runtime_dir;
  GFile *session_file;
  GFile *vm_registry;
  GFile *global_tracker_file;

  GMutex            init_mutex; /* guards init_error and setting registry */
  GError           *init_error; /* why the process is not in the registry yet */
  gboolean          runtime_dir_is_default;
  gint              entered; /* (atomic) in the registry: init_error unset */
  GsmRegistry      *registry;
  gboolean          has_leases; /* the registry's, asked once */
  GsmLivenessProbe *probe;

  GMutex             mutex; /* guards own, closed and listing */
  GsmSession        *own;   /* our entry as last written */
  gboolean           closed;
  GsmManagerListing *listing; /* the last get_all_active_sessions() */

  /* Only touched in the owner context. */
  GsmRegistrySnapshot *view;              /* what ::sessions-changed last reported */
  gboolean             has_vm;            /* what notify::has-vm last reported */
  guint64              has_vm_generation; /* of the view has_vm is as of */
  gint                 refresh_queued;
  GSource             *watch_source; /* until the watch starts */

  /* Statistics (atomic). */
  gint vms_registered;
  gint vms_unregistered;
  gint registry_cleanups;
  gint stale_sessions_removed;
};

typedef enum
{
  GSM_MANAGER_SIGNAL_VM_REGISTERED,
  GSM_MANAGER_SIGNAL_VM_UNREGISTERED,
  GSM_MANAGER_SIGNAL_SESSION_STALE,
  GSM_MANAGER_SIGNAL_SESSIONS_CHANGED,
  GSM_MANAGER_SIGNAL_SESSION_ADDED,
  GSM_MANAGER_SIGNAL_SESSION_REMOVED,
  GSM_MANAGER_SIGNAL_OWNERSHIP_LAPSED,
  GSM_MANAGER_N_SIGNALS
} GsmManagerSignal;

G_GNUC_INTERNAL
extern guint _gsm_session_manager_signals[GSM_MANAGER_N_SIGNALS];

/* gsm-session-manager-events.c */

typedef struct
{
  guint    signal_id;
  GObject *object;
} GsmManagerEmission;

struct _GsmManagerEvents
{
  GsmSessionManager   *self;
  GArray              *emissions; /* GsmManagerEmission */
  GsmRegistrySnapshot *snapshot;  /* the registry as the operation left it */
};

G_GNUC_INTERNAL
GsmManagerEvents *_gsm_manager_events_new (GsmSessionManager *self);
G_GNUC_INTERNAL
void _gsm_manager_events_free (gpointer events);
G_GNUC_INTERNAL
void _gsm_manager_events_add (GsmManagerEvents *events,
                              GsmManagerSignal  signal,
                              gpointer          object);
G_GNUC_INTERNAL
void _gsm_manager_events_truncate (GsmManagerEvents *events,
                                   guint             n_emissions);
G_GNUC_INTERNAL
void _gsm_manager_events_set_snapshot (GsmManagerEvents    *events,
                                       GsmRegistrySnapshot *snapshot);
G_GNUC_INTERNAL
void _gsm_manager_events_dispatch (GsmManagerEvents *events);
G_GNUC_INTERNAL
void _gsm_manager_start_following (GsmSessionManager *self);

/* gsm-session-manager-ops.c */

typedef enum
{
  GSM_OP_REGISTER_VM,
  GSM_OP_RESERVE_VM,
  GSM_OP_CONFIRM_VM,
  GSM_OP_GET_MY_VM,
  GSM_OP_UNREGISTER_VM,
  GSM_OP_GET_ALL_ACTIVE_SESSIONS,
  GSM_OP_LIST_SESSIONS,
  GSM_OP_CLEANUP_STALE_SESSIONS,
  GSM_OP_CLOSE,
  GSM_OP_REFRESH,
  GSM_OP_RECLAIM,
} GsmOpKind;

typedef struct
{
  GsmOpKind kind;
  char     *vm_id;
  char     *zone;
  char    **components;
  GVariant *metadata;
} GsmOp;

typedef struct
{
  GsmSession *vm;
  GHashTable *sessions;
  int         count;
} GsmOpResult;

G_GNUC_INTERNAL
GsmOp *_gsm_op_new (GsmOpKind kind);
G_GNUC_INTERNAL
void _gsm_op_free (gpointer op);
G_GNUC_INTERNAL
gboolean _gsm_manager_run_op (GsmSessionManager *self,
                              GsmOp             *op,
                              GsmOpResult       *result,
                              GCancellable      *cancellable,
                              GError           **error);
G_GNUC_INTERNAL
gboolean _gsm_manager_run_sync (GsmSessionManager *self,
                                GsmOpKind          kind,
                                GsmOpResult       *result,
                                GCancellable      *cancellable,
                                GError           **error);
G_GNUC_INTERNAL
gboolean _gsm_manager_run_update (GsmSessionManager    *self,
                                  GsmRegistryUpdateFunc func,
                                  GsmTxnContext        *ctx,
                                  GCancellable         *cancellable,
                                  GError              **error);
G_GNUC_INTERNAL
void _gsm_manager_start_op (GsmSessionManager  *self,
                            GsmOp              *op,
                            gpointer            source_tag,
                            GCancellable       *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer            user_data);
G_GNUC_INTERNAL
void _gsm_manager_queue_op (GsmSessionManager *self,
                            GsmOpKind          kind,
                            gpointer           source_tag);
G_GNUC_INTERNAL
gboolean _gsm_manager_check_task (GsmSessionManager *self,
                                  GAsyncResult      *result,
                                  gpointer           source_tag);
G_GNUC_INTERNAL
gboolean _gsm_manager_in_worker (void);
G_GNUC_INTERNAL
void _gsm_manager_worker_func (gpointer task,
                               gpointer user_data);

/* gsm-session-manager-rules.c: the functions an update hands the store
 * (GsmRegistryUpdateFunc, with a GsmTxnContext). */

struct _GsmTxnContext
{
  GsmSessionManager *self;
  GsmOp             *op;
  GsmManagerEvents  *events;
  double             now;
  guint              n_stale;
};

G_GNUC_INTERNAL
gboolean _gsm_txn_enter (GsmRegistryTxn *txn,
                         gpointer        user_data,
                         GError        **error);
G_GNUC_INTERNAL
gboolean _gsm_txn_reconcile (GsmRegistryTxn *txn,
                             gpointer        user_data,
                             GError        **error);
G_GNUC_INTERNAL
gboolean _gsm_txn_register_vm (GsmRegistryTxn *txn,
                               gpointer        user_data,
                               GError        **error);
G_GNUC_INTERNAL
gboolean _gsm_txn_unregister_vm (GsmRegistryTxn *txn,
                                 gpointer        user_data,
                                 GError        **error);
G_GNUC_INTERNAL
gboolean _gsm_txn_confirm_vm (GsmRegistryTxn *txn,
                              gpointer        user_data,
                              GError        **error);
G_GNUC_INTERNAL
gboolean _gsm_txn_close (GsmRegistryTxn *txn,
                         gpointer        user_data,
                         GError        **error);

/* gsm-session-manager-listing.c */

G_GNUC_INTERNAL
GHashTable *_gsm_manager_collect_active (GsmSessionManager   *self,
                                         GsmRegistrySnapshot *snapshot,
                                         gboolean            *needs_cleanup);
G_GNUC_INTERNAL
GHashTable *_gsm_manager_collect_all (GsmSessionManager   *self,
                                      GsmRegistrySnapshot *snapshot);
G_GNUC_INTERNAL
void _gsm_manager_listing_free (GsmManagerListing *listing);

/* gsm-session-manager-backend.c */

G_GNUC_INTERNAL
gboolean _gsm_manager_init_registry (GsmSessionManager *self,
                                     GsmManagerEvents  *events,
                                     GError           **error);
G_GNUC_INTERNAL
gboolean _gsm_manager_retry_init (GsmSessionManager *self,
                                  GError           **error);

G_END_DECLS
