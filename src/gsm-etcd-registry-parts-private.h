/* gsm-etcd-registry-parts-private.h: what the files of the etcd registry share
 *
 * The registry (gsm-etcd-registry.c: reads, updates, the thread), its
 * lease (gsm-etcd-lease.c: grant, keepalive, entering again) and its
 * watch (gsm-etcd-watch.c: keeping the view current) are one object.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "gsm-etcd-registry-private.h"
#include "gsm-etcd-view-private.h"

G_BEGIN_DECLS

/* Emissions queued in the owner's context. */
enum
{
  GSM_ETCD_PENDING_CHANGED = 1 << 0,
  GSM_ETCD_PENDING_LAPSED = 1 << 1,
};

struct _GsmEtcdRegistry
{
  GObject parent_instance;

  char  *endpoint;        /* the members' endpoints, for messages */
  char  *prefix;          /* /PREFIX */
  char  *sessions_prefix; /* /PREFIX/sessions/ */
  char  *vms_prefix;      /* /PREFIX/vms/ */
  char  *own_session_id;
  guint  ttl;
  guint  timeout_s;
  double lock_timeout;

  GsmEtcdClient *client;
  GMainContext  *owner_context; /* where signals are emitted */
  gint           pending;       /* GSM_ETCD_PENDING_*: emissions queued there */
  GMutex         grant_mutex;   /* one new lease at a time (_gsm_etcd_lease_ensure) */

  GMutex       mutex; /* guards what follows */
  gint64       lease_id;
  gboolean     lease_lost;
  GHashTable  *parsed;   /* etcd key → its entry, parsed (gsm-etcd-view.c) */
  GsmSession  *own_last; /* our entry as we last wrote it, or NULL */
  GsmEtcdView *view;     /* the latest view: a range read, then the watch */
  gboolean     informed; /* the watch keeps view current */
  gboolean     relist;   /* the watch lost events: read everything again */
  gint         watch_requested;
  gint64       last_write;    /* the revision of our last transaction */
  gint         n_range_reads; /* reads of the whole prefix, for tests */
  GCond        view_cond;     /* view changed */

  /* The background thread and what only it touches. */
  GThread      *thread;
  GMainContext *context;
  GCancellable *cancellable;
  gint          stopping;
  guint         n_inflight;
  GSource      *keepalive_source;
  gboolean      keepalive_inflight;
  gint64        keepalive_lease_id;
  guint         keepalive_timeout_ms;
  gboolean      watching;
  gint64        watch_revision; /* the last revision the watch delivered */
  guint         watch_member;   /* the member serving the watch */
  GInputStream *watch_stream;
  GCancellable *watch_cancellable; /* of reading watch_stream */
  GByteArray   *watch_buffer;
  GSource      *watch_retry_source;
  GSource      *watch_idle_source;
  guint         watch_retry_ms;
  guint         n_watch_connects;
};

/* ---- gsm-etcd-registry.c ----------------------------------------------- */

G_GNUC_INTERNAL
void _gsm_etcd_registry_emit (GsmEtcdRegistry *self,
                              int              what);
G_GNUC_INTERNAL
GsmEtcdViewContext _gsm_etcd_registry_view_context (GsmEtcdRegistry *self);
G_GNUC_INTERNAL
void _gsm_etcd_registry_set_view_locked (GsmEtcdRegistry *self,
                                         GsmEtcdView     *view);
G_GNUC_INTERNAL
GsmEtcdView *_gsm_etcd_registry_read_view (GsmEtcdRegistry *self,
                                           GCancellable    *cancellable,
                                           GError         **error);
G_GNUC_INTERNAL
void _gsm_etcd_registry_clear_source (GSource **source);

/* ---- gsm-etcd-lease.c -------------------------------------------------- */

G_GNUC_INTERNAL
gboolean _gsm_etcd_lease_grant (GsmEtcdRegistry *self,
                                GCancellable    *cancellable,
                                GError         **error);
G_GNUC_INTERNAL
gboolean _gsm_etcd_lease_ensure (GsmEtcdRegistry *self,
                                 GCancellable    *cancellable,
                                 GError         **error);
G_GNUC_INTERNAL
void _gsm_etcd_lease_mark_lost_locked (GsmEtcdRegistry *self,
                                       gint64           lease_id);
G_GNUC_INTERNAL
void _gsm_etcd_lease_start_keepalive (GsmEtcdRegistry *self);

/* ---- gsm-etcd-watch.c -------------------------------------------------- */

G_GNUC_INTERNAL
void _gsm_etcd_watch_start (GsmEtcdRegistry *self);
G_GNUC_INTERNAL
void _gsm_etcd_watch_check_member (GsmEtcdRegistry *self);
G_GNUC_INTERNAL
void _gsm_etcd_watch_clear (GsmEtcdRegistry *self);

G_END_DECLS
