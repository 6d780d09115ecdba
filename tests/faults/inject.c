/* tests/faults/inject.c - the allocation and I/O interposer behind the fault tests (see
 * inject.h): the executable's own malloc family, strdup, write/fsync/rename, which glibc and
 * every shared object bind to ahead of libc's.
 *
 * The real functions are found with dlsym(RTLD_NEXT) on first use, so a sanitizer's allocator
 * (or valgrind's) stays in charge. dlsym may allocate while it resolves: those calls (a
 * thread-local flag says so) get NULL, which dlsym tolerates. Under ASan the first calls come
 * before the sanitizer has mapped its shadow memory (its start-up allocates), so nothing here
 * may be instrumented. Not for production code: interposing malloc is a test-binary trick.
 */
#include "inject.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unwind.h>

/* The build hides symbols by default; these must be visible to interpose. */
#define RAW __attribute__((no_sanitize("address", "undefined")))
#define EXPORT __attribute__((visibility("default"))) RAW

static atomic_int armed_kind = -1;   /* fault_kind, or -1 */
static atomic_long target, calls;
static atomic_bool persistent_, fired;
static atomic_long live;
static atomic_size_t largest;

#define TRACE_MAX 24
static void *trace[TRACE_MAX];
static int ntrace;

/* The sanitizer runtime's load address, or NULL (find_real_io). */
static void *runtime_base;

typedef struct frame_buf {
    void **pc;
    int n, max;
} frame_buf;

/* One frame of a stack. libgcc's unwinder, called directly, is linked at start-up and
 * allocates nothing; glibc's backtrace() would dlopen it through this malloc on first use
 * (and LeakSanitizer reports what the loader allocates through an interposer). */
RAW static _Unwind_Reason_Code one_frame(struct _Unwind_Context *ctx, void *arg)
{
    frame_buf *f = arg;
    if (f->n >= f->max)
        return _URC_END_OF_STACK;
    f->pc[f->n++] = (void *)_Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}

/* Whether the sanitizer runtime made this call for itself (it sets up each new thread with
 * libc calls that allocate, and aborts if one fails): those are not the code under test, and
 * are neither counted nor failed. Only under a sanitizer: unwinds a few frames per call. */
RAW static bool from_runtime(void)
{
    if (!runtime_base)
        return false;
    void *pc[8];
    frame_buf f = {pc, 0, 8};
    _Unwind_Backtrace(one_frame, &f);
    for (int i = 0; i < f.n; i++) {
        Dl_info info;
        if (dladdr(pc[i], &info) && info.dli_fbase == runtime_base)
            return true;
    }
    return false;
}

/* Counts one call of `kind` (asking for `size` bytes); true if this call must fail. Not
 * inlined, so that the trace's first two frames are always this and the interposed call. */
RAW __attribute__((noinline)) static bool should_fail(fault_kind kind, size_t size)
{
    if (atomic_load_explicit(&armed_kind, memory_order_relaxed) != (int)kind || from_runtime())
        return false;
    for (size_t l = atomic_load(&largest);
         size > l && !atomic_compare_exchange_weak(&largest, &l, size);)
        ;
    long n = atomic_fetch_add(&calls, 1) + 1, t = atomic_load(&target);
    if (t > 0 && (n == t || (n > t && atomic_load(&persistent_)))) {
        if (!atomic_exchange(&fired, true)) {
            frame_buf f = {trace, 0, TRACE_MAX};
            _Unwind_Backtrace(one_frame, &f);
            ntrace = f.n;
        }
        return true;
    }
    return false;
}

void fault_arm(fault_kind kind, long n, bool persistent)
{
    atomic_store(&armed_kind, -1);
    atomic_store(&calls, 0);
    atomic_store(&fired, false);
    atomic_store(&largest, 0);
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
size_t fault_largest(void) { return atomic_load(&largest); }
long fault_live_blocks(void) { return atomic_load(&live); }

long fault_each(fault_kind kind, void (*step)(void *ctx, long n), void *ctx, long max)
{
    for (long n = 1; n <= max; n++) {
        fault_arm(kind, n, false);
        step(ctx, n);
        if (!fault_disarm())
            return n;
    }
    return max + 1;
}

/* ---- the heap -------------------------------------------------------------------------------- */

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*memalign)(size_t, size_t);
} real;
static atomic_bool resolved;
static _Thread_local bool resolving;

/* Finds the next malloc family once; false while resolving (the caller then fails or does
 * nothing: the allocation came from dlsym itself). */
RAW static bool resolve(void)
{
    if (atomic_load_explicit(&resolved, memory_order_acquire))
        return true;
    if (resolving)
        return false;
    resolving = true;
    /* POSIX guarantees a dlsym result converts to a function pointer; ISO C does not. */
    *(void **)&real.malloc = dlsym(RTLD_NEXT, "malloc");
    *(void **)&real.calloc = dlsym(RTLD_NEXT, "calloc");
    *(void **)&real.realloc = dlsym(RTLD_NEXT, "realloc");
    *(void **)&real.free = dlsym(RTLD_NEXT, "free");
    *(void **)&real.memalign = dlsym(RTLD_NEXT, "memalign");
    resolving = false;
    if (!real.malloc || !real.calloc || !real.realloc || !real.free || !real.memalign)
        abort();   /* no allocator behind this one; printing would allocate */
    atomic_store_explicit(&resolved, true, memory_order_release);
    return true;
}

/* Whether this allocation of `size` bytes must fail (errno is then ENOMEM). */
RAW static bool refuse(size_t size)
{
    if (!resolve())
        return true;
    if (!should_fail(FAULT_ALLOC, size))
        return false;
    errno = ENOMEM;
    return true;
}

RAW static void *counted(void *p)
{
    if (p)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

EXPORT void *malloc(size_t n) { return refuse(n) ? NULL : counted(real.malloc(n)); }

EXPORT void *calloc(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        bytes = SIZE_MAX;
    return refuse(bytes) ? NULL : counted(real.calloc(n, size));
}

EXPORT void free(void *p)
{
    if (!p || !resolve())
        return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    real.free(p);
}

/* realloc(p, 0) frees, which cannot fail. */
EXPORT void *realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    return refuse(n) ? NULL : real.realloc(p, n);
}

RAW static void *aligned(size_t align, size_t n)
{
    return refuse(n) ? NULL : counted(real.memalign(align, n));
}

void *memalign(size_t align, size_t n);
void *valloc(size_t n);
EXPORT void *memalign(size_t align, size_t n) { return aligned(align, n); }
EXPORT void *aligned_alloc(size_t align, size_t n) { return aligned(align, n); }

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p = aligned(align, n);
    errno = saved;   /* posix_memalign reports through its result only */
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

EXPORT void *valloc(size_t n) { return aligned((size_t)sysconf(_SC_PAGESIZE), n); }

/* Defined here too because ASan's own strdup allocates without calling malloc: it would be
 * neither counted nor failed, and its free would unbalance the live count. */
EXPORT char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

EXPORT char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- I/O ------------------------------------------------------------------------------------- */

static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);

/* Runs before main, before anything is armed (dlsym may allocate); and on the first I/O call
 * if another constructor gets there first. */
__attribute__((constructor)) RAW static void find_real_io(void)
{
    if (real_rename)
        return;
    /* present in ASan's, UBSan's, TSan's runtime alike */
    void *rt = dlsym(RTLD_DEFAULT, "__sanitizer_print_stack_trace");
    Dl_info info;
    if (rt && dladdr(rt, &info))
        runtime_base = info.dli_fbase;
    *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    *(void **)&real_fsync = dlsym(RTLD_NEXT, "fsync");
    *(void **)&real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    *(void **)&real_rename = dlsym(RTLD_NEXT, "rename");
    if (!real_write || !real_fsync || !real_fdatasync || !real_rename)
        abort();   /* no libc behind this one; printing would call write */
}

/* A full disk on write, an I/O error on fsync, a refused rename: what a real one reports. */
EXPORT ssize_t write(int fd, const void *p, size_t n)
{
    find_real_io();
    if (should_fail(FAULT_IO, 0)) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, p, n);
}

EXPORT int fsync(int fd)
{
    find_real_io();
    if (should_fail(FAULT_IO, 0)) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

EXPORT int fdatasync(int fd)
{
    find_real_io();
    if (should_fail(FAULT_IO, 0)) {
        errno = EIO;
        return -1;
    }
    return real_fdatasync(fd);
}

EXPORT int rename(const char *from, const char *to)
{
    find_real_io();
    if (should_fail(FAULT_IO, 0)) {
        errno = EACCES;
        return -1;
    }
    return real_rename(from, to);
}
