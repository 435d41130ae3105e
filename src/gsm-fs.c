/* gsm-fs.c: files in the runtime directory, opened safely
 *
 * GLib's g_file_set_contents_full() has no mode that is atomic (temp file +
 * rename) without an fsync, works relative to an already-checked directory
 * descriptor, or hands back the inode it wrote; the registry needs all
 * three (GSM_DURABLE=0, no symlink races, cache identity), so the replace
 * is done here with the same steps GLib takes: write a temporary file in
 * the same directory, fsync it when durable, rename it over the target,
 * fsync the directory when durable. Without fsync, the rename is an
 * exchange of names plus an unlink (see exchange_into_place()). The
 * registry lock is in gsm-lock.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "gsm-error.h"
#include "gsm-fs-private.h"
#include "gsm-process-private.h"

#define TEMP_MARKER ".tmp-"
#define SPARE_MARKER ".spare-"

static void
set_io_error (GError    **error,
              int         saved_errno,
              const char *fmt,
              ...) G_GNUC_PRINTF (3, 4);

static void
set_io_error (GError    **error,
              int         saved_errno,
              const char *fmt,
              ...)
{
  g_autofree char *msg = NULL;
  va_list          args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);

  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               "%s: %s", msg, g_strerror (saved_errno));
}

static gboolean
check_directory (int         fd,
                 const char *path,
                 gboolean    fix_mode,
                 GError    **error)
{
  struct stat st;

  if (fstat (fd, &st) != 0)
    {
      set_io_error (error, errno, "Cannot inspect runtime directory “%s”", path);
      return FALSE;
    }

  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY,
                   "Runtime directory “%s” is not a directory", path);
      return FALSE;
    }

  if (st.st_uid != geteuid () && st.st_uid != 0)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY,
                   "Runtime directory “%s” belongs to uid %u, not to this user (uid %u)",
                   path, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }

  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY,
                   "Runtime directory “%s” can be written by other users "
                   "(mode %04o, no sticky bit)",
                   path, (guint) (st.st_mode & 07777));
      return FALSE;
    }

  if (fix_mode && st.st_uid == geteuid () && (st.st_mode & 077) != 0)
    {
      if (fchmod (fd, 0700) != 0)
        {
          set_io_error (error, errno, "Cannot make runtime directory “%s” private", path);
          return FALSE;
        }
    }

  return TRUE;
}

static int open_checked_dir (const char *path,
                             gboolean    fix_mode,
                             GError    **error);

/*
 * _gsm_fs_open_dir:
 * @path: the runtime directory
 * @create_private: tighten it to mode 0700 if this user owns it (only for
 *   the default directory, never for one the user named)
 *
 * Opens @path as a directory without following a symbolic link at its
 * last component and checks that no other user can replace files in it.
 *
 * Returns: a directory descriptor, or -1 with @error set
 */
int
_gsm_fs_open_dir (const char *path,
                  gboolean    create_private,
                  GError    **error)
{
  if (g_mkdir_with_parents (path, 0700) != 0)
    {
      set_io_error (error, errno, "Cannot create runtime directory “%s”", path);
      return -1;
    }

  return open_checked_dir (path, create_private, error);
}

/*
 * _gsm_fs_open_existing_dir:
 * @path: the runtime directory
 *
 * Like _gsm_fs_open_dir() for a reader: neither creates @path nor changes
 * its mode. A missing directory is %G_IO_ERROR_NOT_FOUND.
 *
 * Returns: a directory descriptor, or -1 with @error set
 */
int
_gsm_fs_open_existing_dir (const char *path,
                           GError    **error)
{
  return open_checked_dir (path, FALSE, error);
}

static int
open_checked_dir (const char *path,
                  gboolean    fix_mode,
                  GError    **error)
{
  int fd;

  fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      int saved_errno = errno;

      if (saved_errno == ENOENT)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                     "Runtime directory “%s” does not exist", path);
      else if (saved_errno == ELOOP || saved_errno == ENOTDIR)
        g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_DIRECTORY,
                     "Runtime directory “%s” is a symbolic link or not a directory",
                     path);
      else
        set_io_error (error, saved_errno, "Cannot open runtime directory “%s”", path);
      return -1;
    }

  if (!check_directory (fd, path, fix_mode, error))
    {
      close (fd);
      return -1;
    }

  return fd;
}

static void
identity_from_stat (GsmFileIdentity   *identity,
                    const struct stat *st)
{
  identity->dev = st->st_dev;
  identity->ino = st->st_ino;
  identity->size = st->st_size;
  identity->mtime_ns = (gint64) st->st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + st->st_mtim.tv_nsec;
  identity->ctime_ns = (gint64) st->st_ctim.tv_sec * G_GINT64_CONSTANT (1000000000) + st->st_ctim.tv_nsec;
}

gboolean
_gsm_fs_identity_equal (const GsmFileIdentity *a,
                        const GsmFileIdentity *b)
{
  return a->dev == b->dev &&
         a->ino == b->ino &&
         a->size == b->size &&
         a->mtime_ns == b->mtime_ns &&
         a->ctime_ns == b->ctime_ns;
}

/*
 * Returns: %TRUE and fills @identity if @name exists; %FALSE without an
 * error if it does not; %FALSE with an error otherwise.
 */
gboolean
_gsm_fs_stat_at (int              dirfd,
                 const char      *name,
                 GsmFileIdentity *identity,
                 GError         **error)
{
  struct stat st;

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    {
      if (errno != ENOENT)
        set_io_error (error, errno, "Cannot inspect “%s”", name);
      memset (identity, 0, sizeof *identity);
      return FALSE;
    }

  identity_from_stat (identity, &st);
  return TRUE;
}

/* Is @st a regular file owned by the effective user? */
gboolean
_gsm_fs_check_regular_file (const struct stat *st,
                            const char        *dir_path,
                            const char        *name,
                            GError           **error)
{
  if (!S_ISREG (st->st_mode))
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                   "Refusing “%s/%s”: not a regular file", dir_path, name);
      return FALSE;
    }

  if (st->st_uid != geteuid ())
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                   "Refusing “%s/%s”: owned by uid %u, not by this user (uid %u)",
                   dir_path, name, (guint) st->st_uid, (guint) geteuid ());
      return FALSE;
    }

  return TRUE;
}

/*
 * _gsm_fs_read_at:
 * @out_fd: (optional): receives the open descriptor (kept open by callers
 *   that compare identities, so that the inode cannot be reused)
 *
 * Reads a whole file that must be a regular file owned by this user and at
 * most @max_size bytes. A missing file returns %NULL with no error.
 */
GBytes *
_gsm_fs_read_at (int              dirfd,
                 const char      *dir_path,
                 const char      *name,
                 gsize            max_size,
                 GsmFileIdentity *identity,
                 int             *out_fd,
                 GError         **error)
{
  struct stat      st;
  g_autofree char *buf = NULL;
  gsize            done = 0;
  int              fd;

  if (out_fd)
    *out_fd = -1;

  fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    {
      int saved_errno = errno;

      if (saved_errno == ENOENT)
        return NULL;
      if (saved_errno == ELOOP)
        g_set_error (error, GSM_ERROR, GSM_ERROR_INSECURE_FILE,
                     "Refusing “%s/%s”: it is a symbolic link", dir_path, name);
      else
        set_io_error (error, saved_errno, "Cannot open “%s/%s”", dir_path, name);
      return NULL;
    }

  if (fstat (fd, &st) != 0)
    {
      set_io_error (error, errno, "Cannot inspect “%s/%s”", dir_path, name);
      close (fd);
      return NULL;
    }

  if (!_gsm_fs_check_regular_file (&st, dir_path, name, error))
    {
      close (fd);
      return NULL;
    }

  if ((gsize) st.st_size > max_size)
    {
      g_set_error (error, GSM_ERROR, GSM_ERROR_CORRUPT_REGISTRY,
                   "“%s/%s” is %" G_GINT64_FORMAT " bytes, more than the limit of %" G_GSIZE_FORMAT,
                   dir_path, name, (gint64) st.st_size, max_size);
      close (fd);
      return NULL;
    }

  buf = g_malloc ((gsize) st.st_size + 1);
  while (done < (gsize) st.st_size)
    {
      ssize_t r = pread (fd, buf + done, (gsize) st.st_size - done, (off_t) done);

      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          set_io_error (error, errno, "Cannot read “%s/%s”", dir_path, name);
          close (fd);
          return NULL;
        }
      if (r == 0)
        break;
      done += (gsize) r;
    }
  buf[done] = '\0';

  if (identity)
    identity_from_stat (identity, &st);

  if (out_fd)
    *out_fd = fd;
  else
    close (fd);

  return g_bytes_new_take (g_steal_pointer (&buf), done);
}

/* Writes all of @data at the start of @fd. */
static gboolean
pwrite_all (int         fd,
            const char *data,
            gsize       len)
{
  off_t at = 0;

  while (len > 0)
    {
      ssize_t w = pwrite (fd, data, len, at);

      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return FALSE;
      if (w == 0)
        {
          errno = ENOSPC;
          return FALSE;
        }
      data += w;
      len -= (gsize) w;
      at += w;
    }
  return TRUE;
}

/* Keeps the file at @tmp_name, which a replace just retired, as @spare
 * (empty): only a regular file of ours with no other name. */
static gboolean
keep_as_spare (int         dirfd,
               const char *tmp_name,
               GsmFsSpare *spare)
{
  struct stat st;
  int         fd;

  if (strlen (tmp_name) >= sizeof spare->name)
    return FALSE;
  if (spare->retiring >= 0)
    {
      /* The caller's descriptor of the file it just retired: no need to
       * open it again (it is checked before every reuse anyway). */
      fd = spare->retiring;
      spare->retiring = -1;
      goto keep;
    }
  fd = openat (dirfd, tmp_name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return FALSE;
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_uid != geteuid () ||
      st.st_nlink != 1)
    {
      close (fd);
      return FALSE;
    }
keep:
  /* Should someone open it while it is leased (see replace_with_spare()),
   * the kernel signals the lease holder: with a signal ignored unless
   * handled, not SIGIO, which would end the process. */
  (void) fcntl (fd, F_SETSIG, SIGURG);
  spare->fd = fd;
  if (tmp_name != spare->name)
    strcpy (spare->name, tmp_name);
  return TRUE;
}

/*
 * After an exchange: the file that was at @name is at @tmp_name. Keeps it
 * as @spare (if given and empty) or removes it. A directory at @name is
 * put back, and the call fails as renameat() would (EISDIR).
 */
static gboolean
retire (int         dirfd,
        const char *tmp_name,
        const char *name,
        GsmFsSpare *spare)
{
  if (spare != NULL && spare->fd < 0 && !spare->disabled && keep_as_spare (dirfd, tmp_name, spare))
    return TRUE;
  /* A temporary file left behind is removed by the next writer that
   * starts. */
  if (unlinkat (dirfd, tmp_name, 0) == 0 || errno != EISDIR)
    return TRUE;
  /* Put the directory back; our file returns to @tmp_name. */
  renameat2 (dirfd, tmp_name, dirfd, name, RENAME_EXCHANGE);
  errno = EISDIR;
  return FALSE;
}

/*
 * Puts @tmp_name in place of @name without fsync.
 *
 * ext4's “replace via rename” heuristic (auto_da_alloc): a rename over an
 * existing file makes the kernel start writing the new file's data back
 * before the rename, about 100 µs even for a few bytes, which is the fsync
 * GSM_DURABLE=0 asked not to pay for. Exchanging the two names is just as
 * atomic for readers (the name always holds a whole file, old or new) and
 * skips it; the old file, now under @tmp_name, is then removed or kept as
 * @spare.
 *
 * Where the target does not exist yet, or the file system cannot exchange
 * names, this is a plain rename. A directory at @name is left where it
 * was, and the call fails as renameat() would (EISDIR).
 */
static gboolean
exchange_into_place (int         dirfd,
                     const char *tmp_name,
                     const char *name,
                     GsmFsSpare *spare)
{
  static gboolean no_exchange = FALSE;

  if (!g_atomic_int_get (&no_exchange))
    {
      if (renameat2 (dirfd, tmp_name, dirfd, name, RENAME_EXCHANGE) == 0)
        return retire (dirfd, tmp_name, name, spare);
      if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP)
        g_atomic_int_set (&no_exchange, TRUE);
      else if (errno != ENOENT)
        return FALSE;
    }

  return renameat (dirfd, tmp_name, dirfd, name) == 0;
}

/*
 * Writes @data into @spare and exchanges it with @name; returns the
 * descriptor of the file now at @name, or -1 with @name untouched (then
 * @spare is cleared by the caller).
 *
 * A retired file may still be open in a reader that began reading it
 * when it was the registry: writing into it then would tear that read.
 * The kernel grants a write lease only on a file no one else has open,
 * so the spare is written only under one; whoever opens it meanwhile
 * (through its temporary name) waits until the lease is released.
 * Processes of this library that keep a version cached keep its file
 * open, so a file anyone may still read or compare with is never reused.
 */
static int
replace_with_spare (int         dirfd,
                    const char *name,
                    const char *data,
                    gsize       len,
                    gboolean    durable,
                    GsmFsSpare *spare)
{
  struct stat st, at;
  gboolean    ok;
  int         saved_errno;
  int         fd;

  /* Still ours, still under its name (a starting writer removes the
   * temporary files it finds). */
  if (fstat (spare->fd, &st) != 0 ||
      fstatat (dirfd, spare->name, &at, AT_SYMLINK_NOFOLLOW) != 0 ||
      st.st_dev != at.st_dev || st.st_ino != at.st_ino || st.st_nlink != 1)
    return -1;

  if (fcntl (spare->fd, F_SETLEASE, F_WRLCK) != 0)
    {
      /* EAGAIN: someone has it open. Anything else: no leases on this
       * file system (or for this process); then keep no spare. */
      if (errno != EAGAIN)
        spare->disabled = TRUE;
      return -1;
    }
  /* And nobody to signal about someone waiting. */
  (void) fcntl (spare->fd, F_SETOWN, 0);
  ok = pwrite_all (spare->fd, data, len) &&
       ((gsize) st.st_size <= len || ftruncate (spare->fd, (off_t) len) == 0) &&
       (!durable || fdatasync (spare->fd) == 0);
  saved_errno = errno;
  (void) fcntl (spare->fd, F_SETLEASE, F_UNLCK);
  if (!ok)
    {
      errno = saved_errno;
      return -1;
    }

  if (renameat2 (dirfd, spare->name, dirfd, name, RENAME_EXCHANGE) != 0)
    return -1;

  fd = spare->fd;
  spare->fd = -1;
  if (!retire (dirfd, spare->name, name, spare))
    {
      /* A directory was at @name: ours is back under the spare's name. */
      spare->fd = fd;
      return -1;
    }
  return fd;
}

/* Removes @spare's file (if it still is at its name) and forgets it. */
void
_gsm_fs_spare_clear (int         dirfd,
                     GsmFsSpare *spare)
{
  struct stat st, at;

  if (spare->fd < 0)
    return;
  if (fstat (spare->fd, &st) == 0 &&
      fstatat (dirfd, spare->name, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
      st.st_dev == at.st_dev && st.st_ino == at.st_ino)
    unlinkat (dirfd, spare->name, 0);
  close (spare->fd);
  spare->fd = -1;
  spare->name[0] = '\0';
}

/* The work of _gsm_fs_replace_at(), but for @spare->retiring. */
static gboolean
replace_at (int              dirfd,
            const char      *dir_path,
            const char      *name,
            const char      *data,
            gsize            len,
            gboolean         durable,
            GsmFsSpare      *spare,
            GsmFileIdentity *identity,
            int             *out_fd,
            GError         **error)
{
  char        tmp_name[256];
  struct stat st;
  int         fd = -1;
  int         saved_errno;

  if (out_fd)
    *out_fd = -1;

  if (spare != NULL && spare->fd >= 0)
    {
      fd = replace_with_spare (dirfd, name, data, len, durable, spare);
      if (fd >= 0)
        goto published;
      _gsm_fs_spare_clear (dirfd, spare);
    }

  for (guint attempt = 0; attempt < 100; attempt++)
    {
      /* A file that may be kept as a spare is named after its process,
       * so that a starting writer removes only those of dead ones. */
      int n = spare != NULL
                  ? g_snprintf (tmp_name, sizeof tmp_name, "%s" SPARE_MARKER "%d-%08x", name, (int) getpid (),
                                g_random_int ())
                  : g_snprintf (tmp_name, sizeof tmp_name, "%s" TEMP_MARKER "%08x", name, g_random_int ());

      if (n >= (int) sizeof tmp_name)
        {
          g_set_error (error, GSM_ERROR, GSM_ERROR_INVALID_ARGUMENT,
                       "File name “%s” is too long", name);
          return FALSE;
        }
      fd = openat (dirfd, tmp_name,
                   O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                   0600);
      if (fd >= 0 || errno != EEXIST)
        break;
    }

  if (fd < 0)
    {
      set_io_error (error, errno, "Cannot create a temporary file for “%s/%s”", dir_path, name);
      return FALSE;
    }

  if (!pwrite_all (fd, data, len))
    {
      saved_errno = errno;
      set_io_error (error, saved_errno, "Cannot write “%s/%s”", dir_path, tmp_name);
      goto fail;
    }

  if (durable && fdatasync (fd) != 0)
    {
      saved_errno = errno;
      set_io_error (error, saved_errno, "Cannot flush “%s/%s” to disk", dir_path, tmp_name);
      goto fail;
    }

  if (!durable || spare != NULL ? !exchange_into_place (dirfd, tmp_name, name, spare)
                                : renameat (dirfd, tmp_name, dirfd, name) != 0)
    {
      saved_errno = errno;
      set_io_error (error, saved_errno, "Cannot rename “%s” over “%s/%s”", tmp_name, dir_path, name);
      goto fail;
    }

published:
  if (durable && fsync (dirfd) != 0)
    {
      /* The new contents are in place; only their durability is in doubt. */
      saved_errno = errno;
      set_io_error (error, saved_errno, "Cannot flush directory “%s” to disk", dir_path);
      close (fd);
      return FALSE;
    }

  if (identity)
    {
      /* Renaming changes the inode's ctime, so stat after the rename. */
      if (fstat (fd, &st) == 0)
        identity_from_stat (identity, &st);
      else
        memset (identity, 0, sizeof *identity);
    }

  if (out_fd)
    *out_fd = fd;
  else
    close (fd);

  return TRUE;

fail:
  unlinkat (dirfd, tmp_name, 0);
  close (fd);
  return FALSE;
}

/*
 * _gsm_fs_replace_at:
 *
 * Atomically replaces @name with @data: readers see the old or the new
 * contents, never a mixture. A symbolic link at @name is replaced, not
 * followed. With @durable, the data and the rename reach the disk before
 * this returns. On failure the previous file is untouched and no temporary
 * file is left behind.
 *
 * With @spare, the file this replaces is kept (under a temporary name) and
 * the next replace writes into it instead of creating one: on ext4 that
 * is a few µs where a new file costs tens (an inode found, then freed),
 * and much more when thousands were freed lately. See replace_with_spare()
 * for why that cannot tear a reader's view.
 */
gboolean
_gsm_fs_replace_at (int              dirfd,
                    const char      *dir_path,
                    const char      *name,
                    const char      *data,
                    gsize            len,
                    gboolean         durable,
                    GsmFsSpare      *spare,
                    GsmFileIdentity *identity,
                    int             *out_fd,
                    GError         **error)
{
  gboolean ok = replace_at (dirfd, dir_path, name, data, len, durable, spare, identity, out_fd, error);

  /* Not kept: the file was not retired (a first write, a failure). */
  if (spare != NULL && spare->retiring >= 0)
    {
      close (spare->retiring);
      spare->retiring = -1;
    }
  return ok;
}

/* Small files are padded to a multiple of this with blanks, so that the
 * next text, if a little longer, still fits without growing the file. */
#define REWRITE_ROUND 512
#define REWRITE_MAX 4096

/* @data in @buf, padded with blanks to @size and ended by a newline. */
static void
pad_into (char       *buf,
          const char *data,
          gsize       len,
          gsize       size)
{
  memcpy (buf, data, len);
  if (size > len)
    {
      memset (buf + len, ' ', size - len);
      buf[size - 1] = '\n';
    }
}

/*
 * _gsm_fs_rewrite_at:
 * @fd: (inout): a descriptor of @name kept between calls, or -1
 *
 * Writes @data as the new contents of the small file @name (a session
 * file or the tracker), for files that are only written with the
 * registry lock held. Creating a file costs more than anything else a
 * registry operation does (ext4 allocates an inode and, under churn,
 * scans past recently deleted ones), so where it can this overwrites the
 * file in place through @fd instead of replacing it:
 *
 *  - the file is one page at most and the new text fits in its current
 *    size: one pwrite() of one page at offset 0, padded with blanks to that
 *    size (JSON ignores them), so the file never needs truncating and no
 *    block is allocated; a write of one page is all or nothing for a
 *    writer that is killed (the kernel checks for a fatal signal only
 *    between pages);
 *    If @fd is not (any longer) the file at @name, the file there is
 *    opened and written the same way, if it is a regular file of ours
 *    with no other name;
 *  - otherwise (first write, a symbolic link or a file that is not ours,
 *    the text grew past the file or a page): an atomic replace, padded to
 *    a multiple of 512 bytes, whose descriptor is kept for the next call.
 *
 * A reader that does not hold the lock could catch a write in progress;
 * only the registry, which is always replaced atomically, is meant to be
 * read that way.
 */
gboolean
_gsm_fs_rewrite_at (int         dirfd,
                    const char *dir_path,
                    const char *name,
                    const char *data,
                    gsize       len,
                    int        *fd,
                    GError    **error)
{
  char        buf[REWRITE_MAX];
  struct stat st, named;
  gsize       size;

  if (*fd >= 0 &&
      (fstat (*fd, &st) != 0 ||
       fstatat (dirfd, name, &named, AT_SYMLINK_NOFOLLOW) != 0 ||
       st.st_dev != named.st_dev || st.st_ino != named.st_ino ||
       !S_ISREG (st.st_mode) || st.st_uid != geteuid () || st.st_nlink != 1))
    {
      close (*fd);
      *fd = -1;
    }

  if (*fd < 0)
    {
      /* The file another process wrote last (the tracker is shared): write
       * into it too, rather than each process replacing it in turn. */
      *fd = openat (dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (*fd >= 0 &&
          (fstat (*fd, &st) != 0 || !S_ISREG (st.st_mode) || st.st_uid != geteuid () ||
           st.st_nlink != 1))
        {
          close (*fd);
          *fd = -1;
        }
    }

  if (*fd >= 0 && len <= (gsize) st.st_size && st.st_size <= REWRITE_MAX)
    {
      ssize_t w;

      size = (gsize) st.st_size;
      pad_into (buf, data, len, size);
      do
        w = pwrite (*fd, buf, size, 0);
      while (w < 0 && errno == EINTR);
      if (w == (ssize_t) size)
        return TRUE;
      if (w >= 0)
        errno = EIO;
      set_io_error (error, errno, "Cannot write “%s/%s”", dir_path, name);
      return FALSE;
    }

  if (*fd >= 0)
    close (*fd);
  *fd = -1;

  if (len >= REWRITE_MAX)
    return _gsm_fs_replace_at (dirfd, dir_path, name, data, len, FALSE, NULL, NULL, NULL, error);

  size = MIN ((len + REWRITE_ROUND) / REWRITE_ROUND * REWRITE_ROUND, REWRITE_MAX);
  pad_into (buf, data, len, size);

  return _gsm_fs_replace_at (dirfd, dir_path, name, buf, size, FALSE, NULL, NULL, fd, error);
}

gboolean
_gsm_fs_unlink_at (int         dirfd,
                   const char *dir_path,
                   const char *name,
                   GError    **error)
{
  if (unlinkat (dirfd, name, 0) != 0 && errno != ENOENT)
    {
      set_io_error (error, errno, "Cannot remove “%s/%s”", dir_path, name);
      return FALSE;
    }

  return TRUE;
}

/* Is @base (@len bytes) the name of one of our files, without prefix? */
static gboolean
is_our_file_name (const char *base,
                  gsize       len)
{
  if (len == strlen ("vm_registry.json") && strncmp (base, "vm_registry.json", len) == 0)
    return TRUE;
  if (len == strlen ("global_session.json") && strncmp (base, "global_session.json", len) == 0)
    return TRUE;
  if (len > strlen ("session_.json") && g_str_has_prefix (base, "session_") &&
      strncmp (base + len - 5, ".json", 5) == 0)
    {
      /* session_<pid>.json, or session_<pid>_<session id or hash>.json */
      const char *p = base + strlen ("session_");

      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (p < base + len - 5 && g_ascii_isdigit (*p))
        p++;
      if (p < base + len - 5 && *p == '_')
        for (p++; p < base + len - 5; p++)
          if (!g_ascii_isxdigit (*p) && *p != '-')
            return FALSE;
      return p == base + len - 5;
    }
  return FALSE;
}

static gboolean
all_hex (const char *p,
         gsize       n)
{
  if (strlen (p) != n)
    return FALSE;
  for (; *p; p++)
    if (!g_ascii_isxdigit (*p))
      return FALSE;
  return TRUE;
}

/*
 * Is @name a file a writer left: PREFIX + a file name of ours + ".tmp-" +
 * 8 hex digits, or a spare, ".spare-" + pid (in @pid) + "-" + 8 hex
 * digits? Nothing else in a shared directory is touched.
 */
static gboolean
is_leftover (const char *name,
             const char *prefix,
             int        *pid)
{
  const char *rest, *marker, *p;

  *pid = 0;
  if (!g_str_has_prefix (name, prefix))
    return FALSE;
  rest = name + strlen (prefix);

  marker = strstr (rest, TEMP_MARKER);
  if (marker != NULL)
    p = marker + strlen (TEMP_MARKER);
  else if ((marker = strstr (rest, SPARE_MARKER)) != NULL)
    {
      p = marker + strlen (SPARE_MARKER);
      if (!g_ascii_isdigit (*p))
        return FALSE;
      *pid = atoi (p);
      while (g_ascii_isdigit (*p))
        p++;
      if (*p++ != '-')
        return FALSE;
    }
  else
    return FALSE;

  return all_hex (p, 8) && is_our_file_name (rest, (gsize) (marker - rest));
}

/* Is there a process @pid, other than a zombie? Read from /proc, as the
 * liveness probe does: a pid read from a file name is never signalled. */
static gboolean
process_exists (int pid)
{
  guint64 start_time;
  char    state;
  int     e;

  if (_gsm_process_read_stat (pid, &state, &start_time, &e))
    return state != 'Z';
  return e != ENOENT && e != ESRCH;
}

/*
 * _gsm_fs_remove_temp_files:
 *
 * Removes temporary files left by writers that were killed between
 * creating and renaming them, and the spare files of processes that are
 * gone. Only call this while holding the registry lock: every temporary
 * file is created under it.
 */
guint
_gsm_fs_remove_temp_files (int         dirfd,
                           const char *prefix)
{
  DIR           *dir;
  struct dirent *de;
  guint          removed = 0;
  int            fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0)
    return 0;
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return 0;
    }

  while ((de = readdir (dir)) != NULL)
    {
      struct stat st;
      int         pid;

      if (!is_leftover (de->d_name, prefix, &pid))
        continue;
      /* A spare of a live process is in use (a reused pid keeps one until
       * that process too has gone). */
      if (pid > 0 && process_exists (pid))
        continue;
      if (fstatat (dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG (st.st_mode) || st.st_uid != geteuid ())
        continue;
      if (unlinkat (dirfd, de->d_name, 0) == 0)
        removed++;
    }

  closedir (dir);
  return removed;
}

/* Is there nothing at @dir/@name, or a regular file of ours? */
static gboolean
absent_or_ours (const char *dir,
                const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  struct stat      st;

  if (lstat (path, &st) != 0)
    return errno == ENOENT;
  return S_ISREG (st.st_mode) && st.st_uid == geteuid ();
}

/*
 * _gsm_fs_effective_prefix:
 * @dir_path: the runtime directory
 * @prefix: the file prefix asked for (GSM_FILE_PREFIX), maybe ""
 *
 * In a directory every user may write to (sticky, like /tmp), another user
 * can make our file names first: the registry, its lock, the tracker. The
 * names asked for are used while they are free or ours, so that the
 * seed's own files are shared as before; once another user holds one of
 * them, this user's files carry its uid (PREFIX u<uid>_), and keep it
 * from then on (its lock file stays). A user who also takes those names
 * first is refused with an error naming the owner.
 *
 * Returns: (transfer full): the prefix to use
 */
char *
_gsm_fs_effective_prefix (const char *dir_path,
                          const char *prefix)
{
  g_autofree char *own = NULL;
  g_autofree char *own_lock = NULL;
  g_autofree char *path_lock = NULL;
  struct stat      st;
  const char      *shared[] = { "vm_registry.lock", "vm_registry.json", "global_session.json" };
  gboolean         free_or_ours = TRUE;

  if (prefix == NULL)
    prefix = "";
  if (lstat (dir_path, &st) != 0 || !S_ISDIR (st.st_mode) ||
      (st.st_mode & (S_IWOTH | S_ISVTX)) != (S_IWOTH | S_ISVTX))
    return g_strdup (prefix);

  own = g_strdup_printf ("%su%u_", prefix, (guint) geteuid ());
  own_lock = g_strconcat (own, "vm_registry.lock", NULL);
  path_lock = g_build_filename (dir_path, own_lock, NULL);
  if (lstat (path_lock, &st) == 0 && S_ISREG (st.st_mode) && st.st_uid == geteuid ())
    return g_steal_pointer (&own);

  for (guint i = 0; i < G_N_ELEMENTS (shared); i++)
    {
      g_autofree char *name = g_strconcat (prefix, shared[i], NULL);

      free_or_ours = free_or_ours && absent_or_ours (dir_path, name);
    }
  return free_or_ours ? g_strdup (prefix) : g_steal_pointer (&own);
}
