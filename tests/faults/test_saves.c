/* tests/faults/test_saves.c - checkpoint saves that are killed or run out of disk: the file is
 * always the old checkpoint or the new one, never a torn one, and no temporary file stays. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

/* Big enough that a save takes a while (about 1 MB), so kills land inside it. */
#define SAVE_SPEC "Sequential(Linear(256, 512), ReLU(), Linear(512, 256))"
#define KILL_ROUNDS 40

static char dir[PATH_MAX];

static const char *in_dir(const char *name)
{
    static char p[4][PATH_MAX + 64];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void setup(void)
{
    flt_mkdir(dir, "saves");
}

static void teardown(void)
{
    flt_rmdir(dir);
}

TestSuite(saves, .init = setup, .fini = teardown);

/* The names in dir other than the given ones (space-separated), for the leftover check. */
static int count_temps(char *names, size_t size)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    names[0] = '\0';
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-")) {
            n++;
            strncat(names, e->d_name, size - strlen(names) - 2);
            strcat(names, " ");
        }
    closedir(d);
    return n;
}

static bool same_file(const char *path, const void *want, size_t n)
{
    size_t size;
    void *got = flt_read_all(path, &size);
    bool same = got && size == n && !memcmp(got, want, n);
    free(got);
    return same;
}

/* Child: two modules (seeds 1 and 2) saved once as a.safetensors and b.safetensors, then over
 * model.safetensors alternately forever (or `rounds` times); a byte on `ready` once the first
 * save of model.safetensors is complete. */
static _Noreturn void saver(int ready, int rounds)
{
    setenv("EMBER_CONFIG", "", 1);
    if (em_init(NULL) < 0)
        _exit(10);
    em_manual_seed(1);
    em_module *a = em_module_new(SAVE_SPEC);
    em_manual_seed(2);
    em_module *b = em_module_new(SAVE_SPEC);
    if (!a || !b || em_module_save(a, in_dir("a.safetensors")) < 0 ||
        em_module_save(b, in_dir("b.safetensors")) < 0 ||
        em_module_save(a, in_dir("model.safetensors")) < 0)
        _exit(11);
    if (ready >= 0 && write(ready, "x", 1) != 1)
        _exit(12);
    for (int i = 0; rounds < 0 || i < rounds; i++)
        if (em_module_save(i % 2 ? a : b, in_dir("model.safetensors")) < 0)
            _exit(13);
    em_module_free(a);
    em_module_free(b);
    em_shutdown();
    _exit(0);
}

Test(saves, a_save_killed_at_any_moment_leaves_the_old_or_the_new_checkpoint)
{
    srand((unsigned)time(NULL));
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int seen_temps = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            saver(fds[1], -1);
        }
        close(fds[1]);
        char c;
        cr_assert_eq(read(fds[0], &c, 1), 1, "the saver did not start");
        close(fds[0]);
        if (!a) {
            a = flt_read_all(in_dir("a.safetensors"), &na);
            b = flt_read_all(in_dir("b.safetensors"), &nb);
            cr_assert(a && b && na > 100000, "snapshots");
        }
        struct timespec ts = {0, (long)(rand() % 40000) * 1000};   /* 0 to 40 ms */
        nanosleep(&ts, NULL);
        cr_assert_eq(kill(pid, SIGKILL), 0);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st), "the saver exited by itself (status %d)", st);
        const char *p = in_dir("model.safetensors");
        cr_assert(same_file(p, a, na) || same_file(p, b, nb),
                  "round %d: the checkpoint is neither the old nor the new one (torn)", round);
        char names[4096];
        seen_temps += count_temps(names, sizeof names) > 0;
    }
    /* A normal save removes whatever a killed saver left. */
    pid_t pid = fork();
    if (pid == 0)
        saver(-1, 1);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "saver status %d", st);
    char names[4096];
    cr_assert_eq(count_temps(names, sizeof names), 0, "left behind: %s", names);
    cr_log_info("%d of %d kills left a temporary name visible until the next save", seen_temps,
                KILL_ROUNDS);
    free(a);
    free(b);
}

Test(saves, a_temporary_file_of_a_dead_writer_is_removed_by_the_next_save)
{
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    char stale[64], live[64], other[64];
    snprintf(stale, sizeof stale, "model.safetensors.tmp-%ld-3", (long)dead);
    snprintf(live, sizeof live, "model.safetensors.tmp-%ld-0", (long)getppid());
    snprintf(other, sizeof other, "other.safetensors.tmp-%ld-0", (long)dead);
    const char *names[] = {stale, live, other};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(in_dir(names[i]), "w");
        cr_assert_not_null(f);
        fclose(f);
    }
    emt_setup();
    em_module *m = em_module_new("Linear(2, 3)");
    cr_assert_not_null(m, "%s", em_last_error());
    cr_assert_eq(em_module_save(m, in_dir("model.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_neq(access(in_dir(stale), F_OK), 0, "the dead writer's temporary file stayed");
    cr_assert_eq(access(in_dir(live), F_OK), 0, "a running process's temporary file was removed");
    cr_assert_eq(access(in_dir(other), F_OK), 0, "another file's temporary file was removed");
    em_module_free(m);
    em_shutdown();
}

/* A file size limit makes write() fail with EFBIG, as a full disk makes it fail with ENOSPC. */
Test(saves, a_save_that_runs_out_of_disk_fails_and_keeps_the_old_file)
{
    emt_setup();
    em_manual_seed(1);
    em_module *a = em_module_new(SAVE_SPEC);
    em_manual_seed(2);
    em_module *b = em_module_new(SAVE_SPEC);
    cr_assert(a && b, "%s", em_last_error());
    const char *p = in_dir("model.safetensors");
    cr_assert_eq(em_module_save(a, p), EM_OK, "%s", em_last_error());
    size_t n;
    void *old = flt_read_all(p, &n);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit was, small = {n / 2, 0};
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &was), 0);
    small.rlim_max = was.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = em_module_save(b, p);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &was), 0);
    cr_assert_eq(rc, EM_ERR_IO, "a save past the size limit returned %d", rc);
    cr_assert(strstr(em_last_error(), "model.safetensors: write failed: File too large"), "%s",
              em_last_error());
    cr_assert(strstr(em_last_error(), "the old file is unchanged"), "%s", em_last_error());
    cr_assert(same_file(p, old, n), "the old checkpoint changed");
    char names[4096];
    cr_assert_eq(count_temps(names, sizeof names), 0, "left behind: %s", names);
    free(old);
    em_module_free(a);
    em_module_free(b);
    em_shutdown();
}
