/* tests/faults/inject.c - the allocation and I/O interposer behind the fault sweeps (see
 * inject.h): the executable's own malloc family and write/fsync/rename, which glibc and every
 * shared object bind to ahead of libc's. Allocation goes to glibc's __libc_* entry points;
 * I/O to libc's functions found once with dlsym(RTLD_NEXT) at start-up, before anything is
 * armed (dlsym may allocate). */
#include "inject.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *__libc_memalign(size_t align, size_t n);

static atomic_int armed_kind = -1;   /* fault_kind, or -1 */
static atomic_long target, calls;
static atomic_bool persistent_, fired;
static atomic_long live;

#define TRACE_MAX 24
static void *trace[TRACE_MAX];
static int ntrace;

/* Counts one call of `kind`; true if this call must fail. */
static bool should_fail(fault_kind kind)
{
    if (atomic_load_explicit(&armed_kind, memory_order_relaxed) != (int)kind)
        return false;
    long n = atomic_fetch_add(&calls, 1) + 1, t = atomic_load(&target);
    if (t > 0 && (n == t || (n > t && atomic_load(&persistent_)))) {
        if (!atomic_exchange(&fired, true))
            ntrace = backtrace(trace, TRACE_MAX);   /* warmed up at start: no allocation */
        return true;
    }
    return false;
}

void fault_arm(fault_kind kind, long n, bool persistent)
{
    atomic_store(&calls, 0);
    atomic_store(&fired, false);
    ntrace = 0;
    atomic_store(&target, n);
    atomic_store(&persistent_, persistent);
    atomic_store(&armed_kind, (int)kind);
}

bool fault_disarm(void)
{
    atomic_store(&armed_kind, -1);
    return atomic_load(&fired);
}

int fault_trace(void **frames, int max)
{
    /* trace[0] is should_fail, trace[1] the interposed function. */
    int n = 0;
    for (int i = 2; i < ntrace && n < max; i++)
        frames[n++] = trace[i];
    return n;
}

long fault_calls(void) { return atomic_load(&calls); }
long fault_live_blocks(void) { return atomic_load(&live); }

/* ---- the heap -------------------------------------------------------------------------------- */

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

EXPORT void *malloc(size_t n)
{
    if (should_fail(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(__libc_malloc(n));
}

EXPORT void *calloc(size_t n, size_t size)
{
    if (should_fail(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(__libc_calloc(n, size));
}

EXPORT void free(void *p)
{
    if (p)
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    __libc_free(p);
}

EXPORT void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (should_fail(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}

static void *aligned(size_t align, size_t n)
{
    if (should_fail(FAULT_ALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return counted(__libc_memalign(align, n));
}

void *memalign(size_t align, size_t n);
void *valloc(size_t n);
EXPORT void *memalign(size_t align, size_t n) { return aligned(align, n); }
EXPORT void *aligned_alloc(size_t align, size_t n) { return aligned(align, n); }

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    void *p = aligned(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *valloc(size_t n) { return aligned((size_t)sysconf(_SC_PAGESIZE), n); }

/* ---- I/O ------------------------------------------------------------------------------------- */

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);

__attribute__((constructor)) static void find_real_io(void)
{
    void *warm[2];
    backtrace(warm, 2);   /* loads the unwinder now, so that tracing a fault allocates nothing */
    /* dlsym's object pointers copied into function pointers (ISO C has no cast between them). */
    void *sym[4] = {dlsym(RTLD_NEXT, "write"), dlsym(RTLD_NEXT, "fsync"),
                    dlsym(RTLD_NEXT, "fdatasync"), dlsym(RTLD_NEXT, "rename")};
    memcpy(&real_write, &sym[0], sizeof real_write);
    memcpy(&real_fsync, &sym[1], sizeof real_fsync);
    memcpy(&real_fdatasync, &sym[2], sizeof real_fdatasync);
    memcpy(&real_rename, &sym[3], sizeof real_rename);
    if (!real_write || !real_fsync || !real_fdatasync || !real_rename) {
        fputs("inject: cannot find libc's write/fsync/fdatasync/rename\n", stderr);
        abort();
    }
}

/* A full disk on write, an I/O error on fsync, a refused rename: what a real one reports. */
EXPORT ssize_t write(int fd, const void *p, size_t n)
{
    if (should_fail(FAULT_IO)) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, p, n);
}

EXPORT int fsync(int fd)
{
    if (should_fail(FAULT_IO)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
    if (should_fail(FAULT_IO)) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync(fd);
}

EXPORT int rename(const char *from, const char *to)
{
    if (should_fail(FAULT_IO)) {
        errno = EACCES;
        return -1;
    }
    return real_rename(from, to);
}
