/* core/atomic_file.c - replacing a file atomically and durably (checkpoints).
 *
 * The new content is written to an unnamed file in the target's folder (O_TMPFILE), which no
 * one can see and which vanishes with the process if it is killed. Once complete it is
 * fsync'ed, linked under a temporary name, renamed over the target, and the folder is
 * fsync'ed: a kill -9 at any moment leaves the old file or the new one, never a torn one.
 * Where O_TMPFILE is not supported (some filesystems, no /proc), the file is created under
 * its temporary name from the start. Either way, a temporary named `<file>.tmp-<pid>-<n>`
 * whose process is gone (killed between link and rename, or during a named write) is removed
 * by the next save of the same file. A failed write (full disk, EIO, a file size limit)
 * removes the new file and leaves the old one as it was, and says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"

#define TMP_TAG ".tmp-"

/* The folder and the file name of path ("." when there is no folder part). */
static void split_path(const char *path, char *dir, size_t dsize, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, dsize, ".");
    else if (slash == path)
        snprintf(dir, dsize, "/");
    else
        snprintf(dir, dsize, "%.*s", (int)(slash - path), path);
}

/* Whether `name` is `<base>.tmp-<pid>-<n>` left by a process that no longer runs. */
static bool stale_temp(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, TMP_TAG, strlen(TMP_TAG)))
        return false;
    char *end;
    const char *p = name + bl + strlen(TMP_TAG);
    long pid = strtol(p, &end, 10);
    if (end == p || *end != '-' || pid <= 0 || pid == (long)getpid())
        return false;
    strtoul(end + 1, &end, 10);
    if (*end)
        return false;
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* Removes the temporaries of earlier writers of this file that were killed. Best effort. */
static void remove_stale_temps(const char *dir, const char *base)
{
    int saved = errno;
    DIR *dp = opendir(dir);
    if (dp) {
        for (struct dirent *e; (e = readdir(dp));)
            if (stale_temp(e->d_name, base))
                (void)unlinkat(dirfd(dp), e->d_name, 0);
        closedir(dp);
    }
    errno = saved;
}

static void temp_name(em__afile *f)
{
    static atomic_uint counter;
    snprintf(f->tmp, sizeof f->tmp, "%s" TMP_TAG "%ld-%u", f->path, (long)getpid(),
             atomic_fetch_add(&counter, 1u));
}

int em__afile_begin(em__afile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = path;
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    remove_stale_temps(dir, base);
    struct stat st;
    f->had_old = stat(path, &st) == 0;
#ifdef O_TMPFILE
    if (access("/proc/self/fd", X_OK) == 0)
        f->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
#endif
    for (int tries = 0; f->fd < 0 && tries < 100; tries++) {
        f->named = true;
        temp_name(f);
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd < 0 && errno != EEXIST)
            break;
    }
    if (f->fd < 0)
        return em_set_error(EM_ERR_IO, "%s: cannot create a temporary file next to it: %s",
                            path, strerror(errno));
    /* the mode a plain open would give: the old file's, else 0666 less the umask */
    if (f->had_old)
        (void)fchmod(f->fd, st.st_mode & 07777);
    return EM_OK;
}

/* The error of a failed write or sync; the new file is removed, the old one untouched. */
static int afile_fail(em__afile *f, const char *what, int err)
{
    em__afile_abort(f);
    return em_set_error(EM_ERR_IO, "%s: %s failed: %s; %s", f->path, what, strerror(err),
                        f->had_old ? "the old file is unchanged" : "nothing was written");
}

int em__afile_write(em__afile *f, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(f->fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return afile_fail(f, "write", w < 0 ? errno : EIO);
        c += w;
        n -= (size_t)w;
    }
    return EM_OK;
}

int em__afile_commit(em__afile *f)
{
    if (fsync(f->fd) < 0)
        return afile_fail(f, "fsync", errno);
    if (!f->named) {
        /* Give the unnamed file a name; linkat through /proc needs no privilege. */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
        int rc = -1;
        for (int tries = 0; rc < 0 && tries < 100; tries++) {
            temp_name(f);
            rc = linkat(AT_FDCWD, proc, AT_FDCWD, f->tmp, AT_SYMLINK_FOLLOW);
            if (rc < 0 && errno != EEXIST)
                break;
        }
        if (rc < 0)
            return afile_fail(f, "linking the new file", errno);
        f->named = true;
    }
    int err = close(f->fd) < 0 ? errno : 0;
    f->fd = -1;
    if (err)
        return afile_fail(f, "close", err);
    if (rename(f->tmp, f->path) < 0)
        return afile_fail(f, "rename", errno);
    f->named = false;
    /* make the rename itself durable */
    char dir[PATH_MAX];
    const char *base;
    split_path(f->path, dir, sizeof dir, &base);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        err = fsync(dfd) < 0 ? errno : 0;
        close(dfd);
        if (err)
            return em_set_error(EM_ERR_IO, "%s: written, but syncing its folder failed: %s",
                                f->path, strerror(err));
    }
    return EM_OK;
}

void em__afile_abort(em__afile *f)
{
    int saved = errno;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    if (f->named)
        unlink(f->tmp);
    f->named = false;
    errno = saved;
}
