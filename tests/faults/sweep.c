/* tests/faults/sweep.c - runs an operation once per fault injection point, each run in a
 * forked child, and judges every run by the rules in sweep.h. */
#include "sweep.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ember/ember.h"

#define SNAP_MAX ((size_t)8 << 20)
#define MSG_MAX 1024
#define CHILD_SECONDS 60
#define PRINT_MAX 40
#define TRACE_FRAMES 6

enum outcome { SAME_RESULT, CLEAN_ERROR, PROBLEM };

/* Shared with the children (MAP_SHARED): the fault-free state and one run's verdict. */
typedef struct shared {
    size_t pre_size, ref_size;
    unsigned char pre[SNAP_MAX], ref[SNAP_MAX];
    int outcome;
    int fired;
    long calls;
    char msg[MSG_MAX];
    int nframes;               /* where the first injected fault was hit */
    struct frame {
        char file[256];
        unsigned long offset;
    } frames[TRACE_FRAMES];
} shared;

static const char *kind_name(fault_kind k) { return k == FAULT_ALLOC ? "alloc" : "io"; }

/* The first line the child wrote to stderr ("" if none). */
static void first_line(const char *path, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(out, (int)n, f))
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

/* Ends a message that snprintf (which returned n) cut short with "...". */
static void mark_cut(char *msg, size_t size, int n)
{
    if (n >= (int)size)
        memcpy(msg + size - 4, "...", 4);
}

static void verdict(shared *sh, int outcome, const char *fmt, const char *a, const char *b)
{
    sh->outcome = outcome;
    mark_cut(sh->msg, sizeof sh->msg, snprintf(sh->msg, sizeof sh->msg, fmt, a, b));
}

/* Keeps the failed call's stack as file + offset pairs, for the parent to name. */
static void record_trace(shared *sh)
{
    void *frames[TRACE_FRAMES];
    int n = fault_trace(frames, TRACE_FRAMES);
    sh->nframes = 0;
    for (int i = 0; i < n; i++) {
        Dl_info info;
        if (!dladdr(frames[i], &info) || !info.dli_fname)
            continue;
        struct frame *f = &sh->frames[sh->nframes++];
        snprintf(f->file, sizeof f->file, "%s", info.dli_fname);
        /* a return address: the call is the instruction before it */
        f->offset = (unsigned long)((char *)frames[i] - (char *)info.dli_fbase) - 1;
    }
}

/* Appends "function (file:line)" for each recorded frame, through addr2line when it is
 * installed, else file+offset. */
static void describe_trace(const shared *sh, char *out, size_t n)
{
    size_t len = strlen(out);
    for (int i = 0; i < sh->nframes && len + 1 < n; i++) {
        const struct frame *f = &sh->frames[i];
        char cmd[512], fn[256] = "", where[256] = "";
        snprintf(cmd, sizeof cmd, "addr2line -f -s -e '%s' 0x%lx 2>/dev/null", f->file, f->offset);
        FILE *p = popen(cmd, "r");
        if (p) {
            if (fgets(fn, sizeof fn, p) && fgets(where, sizeof where, p)) {
                fn[strcspn(fn, "\n")] = '\0';
                where[strcspn(where, "\n")] = '\0';
            }
            pclose(p);
        }
        const char *base = strrchr(f->file, '/') ? strrchr(f->file, '/') + 1 : f->file;
        if (fn[0] && strcmp(fn, "??"))
            len += (size_t)snprintf(out + len, n - len, "%s %s (%s)", i ? " <" : "; failed call in",
                                    fn, where);
        else
            len += (size_t)snprintf(out + len, n - len, "%s %s+0x%lx", i ? " <" : "; failed call in",
                                    base, f->offset);
        if (len >= n)
            break;
    }
}

/* A child that crashes still reports where the fault was injected. */
static shared *crash_sh;

static void on_crash(int sig)
{
    record_trace(crash_sh);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* A save that failed after its new file took the old one's place (syncing the folder, which
 * makes the rename durable, failed): the whole new state is there and the message must say so
 * (core/atomic_file.c). Any other failure must leave the state as it was. */
static bool committed_not_durable(const char *err)
{
    return strstr(err, "written, but") != NULL;
}

/* One run with the nth call of `kind` failing (n = 0: none fails, the state becomes the
 * reference). Ends the process. */
static _Noreturn void child(const fault_target *t, fault_kind kind, long n, bool persistent,
                            shared *sh, const char *errpath)
{
    alarm(CHILD_SECONDS);
    crash_sh = sh;
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
    if (t->prepare)
        t->prepare(t->ctx);
    unsigned char *snap = malloc(SNAP_MAX);
    char why[MSG_MAX] = "", err[MSG_MAX], printed[MSG_MAX];
    /* The CPU allocator keeps freed blocks for reuse: emptied before and after, the run
     * allocates for real (so every allocation is an injection point) and blocks it leaves in
     * the cache are not counted as leaks. */
    em_device cpu = em_device_parse("cpu");
    em_empty_cache(cpu);
    long live0 = fault_live_blocks();
    em_clear_error();
    fault_arm(kind, n, persistent);
    int rc = t->run(t->ctx);
    sh->fired = fault_disarm();
    sh->calls = fault_calls();
    record_trace(sh);
    snprintf(err, sizeof err, "%s", em_last_error());
    t->cleanup(t->ctx);
    em_empty_cache(cpu);
    long leaked = fault_live_blocks() - live0;
    fflush(stderr);
    first_line(errpath, printed, sizeof printed);
    size_t size = snap ? t->snapshot(t->ctx, snap, SNAP_MAX) : (size_t)-1;
    char num[64];
    snprintf(num, sizeof num, "%ld", leaked);

    if (size == (size_t)-1)
        verdict(sh, PROBLEM, "the state could not be read back after the run%s%s", "", "");
    else if (n == 0) {
        if (rc < 0)
            verdict(sh, PROBLEM, "the fault-free run failed: %s%s", err, "");
        else if (printed[0])
            verdict(sh, PROBLEM, "the fault-free run printed: %s%s", printed, "");
        else
            sh->outcome = SAME_RESULT;
        memcpy(sh->ref, snap, size);
        sh->ref_size = size;
    } else if (rc >= 0) {
        if (size != sh->ref_size || memcmp(snap, sh->ref, size))
            verdict(sh, PROBLEM, "returned success with a different result than the fault-free "
                                 "run%s%s", printed[0] ? "; it printed: " : "", printed);
        else if (printed[0])
            verdict(sh, PROBLEM, "returned success after printing: %s%s", printed, "");
        else if (t->check_ok && t->check_ok(t->ctx, why, sizeof why) < 0)
            verdict(sh, PROBLEM, "returned success but %s%s", why, "");
        else
            sh->outcome = SAME_RESULT;
    } else {
        if (!err[0])
            verdict(sh, PROBLEM, "failed (status %s) with no message in em_last_error()%s",
                    rc == EM_ERR_NOMEM ? "EM_ERR_NOMEM" : "negative", "");
        else if ((size != sh->pre_size || memcmp(snap, sh->pre, size)) &&
                 !(committed_not_durable(err) && size == sh->ref_size &&
                   !memcmp(snap, sh->ref, size)))
            verdict(sh, PROBLEM, "failed (\"%s\") but changed the state%s", err, "");
        else if (t->check_failed && t->check_failed(t->ctx, why, sizeof why) < 0)
            verdict(sh, PROBLEM, "failed (\"%s\") but %s", err, why);
        else {
            sh->outcome = CLEAN_ERROR;
            snprintf(sh->msg, sizeof sh->msg, "%s", err);
        }
    }
    if (sh->outcome != PROBLEM && leaked != 0)
        verdict(sh, PROBLEM, "leaked %s heap blocks (%s)", num,
                rc < 0 ? "after a clean error" : "after success");
    free(snap);
    _exit(0);
}

/* Runs one child; returns its outcome with the message in sh->msg. */
static int run_child(const fault_target *t, fault_kind kind, long n, bool persistent,
                     shared *sh, const char *errpath)
{
    sh->outcome = PROBLEM;
    sh->fired = 0;
    sh->nframes = 0;
    snprintf(sh->msg, sizeof sh->msg, "the child ended before giving a verdict");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(sh->msg, sizeof sh->msg, "fork failed");
        return PROBLEM;
    }
    if (pid == 0)
        child(t, kind, n, persistent, sh, errpath);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (WIFSIGNALED(status)) {
        char printed[MSG_MAX];
        first_line(errpath, printed, sizeof printed);
        int sig = WTERMSIG(status);
        mark_cut(sh->msg, sizeof sh->msg,
                 snprintf(sh->msg, sizeof sh->msg, "%s (signal %d, %s)%s%s",
                          sig == SIGALRM ? "hung" : "crashed", sig, strsignal(sig),
                          printed[0] ? "; stderr: " : "", printed));
        sh->outcome = PROBLEM;
    }
    return sh->outcome;
}

sweep_result fault_sweep(const fault_target *t, fault_kind kind, bool persistent, long stride)
{
    sweep_result r = {0};
    const char *env = getenv("EMBER_FAULT_STRIDE");
    if (env && atol(env) > 0)
        stride = atol(env);
    if (stride < 1)
        stride = 1;
    shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    char errpath[] = "/tmp/ember-fault-stderr-XXXXXX";
    int efd = mkstemp(errpath);
    if (sh == MAP_FAILED || efd < 0) {
        fprintf(stderr, "faults: %s: cannot set up the sweep\n", t->name);
        r.problems = 1;
        return r;
    }
    close(efd);
    const char *mode = persistent ? "persistent" : "once";
    if (t->prepare)
        t->prepare(t->ctx);
    sh->pre_size = t->snapshot(t->ctx, sh->pre, SNAP_MAX);
    if (sh->pre_size == (size_t)-1 || run_child(t, kind, 0, false, sh, errpath) == PROBLEM) {
        fprintf(stderr, "faults: %s %s: %s\n", t->name, kind_name(kind), sh->msg);
        r.problems = 1;
        goto done;
    }
    r.points = sh->calls;
    for (long n = 1; n <= r.points; n = n < 8 ? n + 1 : n + stride) {
        int o = run_child(t, kind, n, persistent, sh, errpath);
        r.tried++;
        if (o == SAME_RESULT)
            r.succeeded++;
        else if (o == CLEAN_ERROR)
            r.clean_errors++;
        else if (++r.problems <= PRINT_MAX) {
            char line[4096];
            snprintf(line, sizeof line, "%s", sh->msg);
            describe_trace(sh, line, sizeof line);
            fprintf(stderr, "faults: %s %s-%s N=%ld: %s\n", t->name, kind_name(kind), mode, n,
                    line);
        }
    }
    if (r.problems > PRINT_MAX)
        fprintf(stderr, "faults: %s %s-%s: %ld more problems not shown\n", t->name,
                kind_name(kind), mode, r.problems - PRINT_MAX);
done:
    printf("faults: %-28s %-5s %-10s %6ld points, %6ld tried: %6ld same result, %6ld clean "
           "errors, %4ld problems\n", t->name, kind_name(kind), mode, r.points, r.tried,
           r.succeeded, r.clean_errors, r.problems);
    fflush(stdout);
    unlink(errpath);
    munmap(sh, sizeof *sh);
    return r;
}
