/* core/atomic_file.h - replacing a file atomically and durably (core/atomic_file.c). */
#ifndef EMBER_CORE_ATOMIC_FILE_H
#define EMBER_CORE_ATOMIC_FILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

typedef struct em__afile {
    const char *path;          /* the target (borrowed) */
    int fd;
    bool named;                /* the new file has a name (tmp) that must go on failure */
    bool had_old;              /* the target existed when the write began */
    char tmp[PATH_MAX + 64];
} em__afile;

/* Starts replacing `path`: removes temporaries that killed writers of it left, and opens the
 * new, still invisible, file. EM_OK, or EM_ERR_IO naming the path ("cannot create a
 * temporary file next to it: ..."). Not thread-safe on one em__afile; distinct writers of
 * distinct files are independent. */
int em__afile_begin(em__afile *f, const char *path);
/* Appends n bytes. On failure (a full disk, EIO, a file size limit) the new file is
 * discarded and the error says the old file is unchanged; the em__afile is then closed. */
int em__afile_write(em__afile *f, const void *p, size_t n);
/* fsync, then the new file replaces the target (rename), then the folder is fsync'ed. On
 * failure before the rename the old file is unchanged and the new one discarded. */
int em__afile_commit(em__afile *f);
/* Discards the new file (after a failure of the caller's own); the target is untouched. */
void em__afile_abort(em__afile *f);

#endif
