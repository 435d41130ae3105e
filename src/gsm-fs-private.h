/* gsm-fs-private.h: files in the runtime directory, opened safely
 *
 * Every function works relative to a directory descriptor that was checked
 * once, never follows a symbolic link, and accepts only regular files owned
 * by the effective user.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* What identifies one version of a file without reading it. */
typedef struct
{
  dev_t  dev;
  ino_t  ino;
  off_t  size;
  gint64 mtime_ns;
  gint64 ctime_ns;
} GsmFileIdentity;

/*
 * A file a replace retired, kept under its temporary name to be written
 * again by the next replace instead of a new one (see _gsm_fs_replace_at()).
 * Initialise with GSM_FS_SPARE_INIT; _gsm_fs_spare_clear() removes it.
 */
typedef struct
{
  int      fd;
  gboolean disabled; /* no write leases here: keep none */
  /* Set by the caller before a replace, or -1: a descriptor open for
   * reading and writing of the file at the name, which the replace takes
   * (kept as the spare when it retires that file, else closed). */
  int  retiring;
  char name[256];
} GsmFsSpare;

#define GSM_FS_SPARE_INIT \
  {                       \
    -1, FALSE, -1, { 0 }  \
  }

#define GSM_MAX_REGISTRY_SIZE (64 * 1024 * 1024)
#define GSM_MAX_SESSION_FILE_SIZE (1024 * 1024)

G_GNUC_INTERNAL
int _gsm_fs_open_dir (const char *path,
                      gboolean    create_private,
                      GError    **error);
G_GNUC_INTERNAL
int _gsm_fs_open_existing_dir (const char *path,
                               GError    **error);
G_GNUC_INTERNAL
gboolean _gsm_fs_identity_equal (const GsmFileIdentity *a,
                                 const GsmFileIdentity *b);
G_GNUC_INTERNAL
gboolean _gsm_fs_check_regular_file (const struct stat *st,
                                     const char        *dir_path,
                                     const char        *name,
                                     GError           **error);
G_GNUC_INTERNAL
gboolean _gsm_fs_stat_at (int              dirfd,
                          const char      *name,
                          GsmFileIdentity *identity,
                          GError         **error);
G_GNUC_INTERNAL
GBytes *_gsm_fs_read_at (int              dirfd,
                         const char      *dir_path,
                         const char      *name,
                         gsize            max_size,
                         GsmFileIdentity *identity,
                         int             *out_fd,
                         GError         **error);
G_GNUC_INTERNAL
gboolean _gsm_fs_replace_at (int              dirfd,
                             const char      *dir_path,
                             const char      *name,
                             const char      *data,
                             gsize            len,
                             gboolean         durable,
                             GsmFsSpare      *spare,
                             GsmFileIdentity *identity,
                             int             *out_fd,
                             GError         **error);
G_GNUC_INTERNAL
void _gsm_fs_spare_clear (int         dirfd,
                          GsmFsSpare *spare);
G_GNUC_INTERNAL
gboolean _gsm_fs_rewrite_at (int         dirfd,
                             const char *dir_path,
                             const char *name,
                             const char *data,
                             gsize       len,
                             int        *fd,
                             GError    **error);
G_GNUC_INTERNAL
gboolean _gsm_fs_unlink_at (int         dirfd,
                            const char *dir_path,
                            const char *name,
                            GError    **error);
G_GNUC_INTERNAL
guint _gsm_fs_remove_temp_files (int         dirfd,
                                 const char *prefix);

G_GNUC_INTERNAL
char *_gsm_fs_effective_prefix (const char *dir_path,
                                const char *prefix);

G_END_DECLS
