/* tests/faults/state.h - snapshots for the fault sweeps: a module's state dict, an optimizer's
 * slots and step count, a file and the names beside it, appended as bytes so that "unchanged"
 * and "same result" are one memcmp. Header-only (static inline); (size_t)-1 means "cannot
 * read". */
#ifndef EMBER_TESTS_FAULTS_STATE_H
#define EMBER_TESTS_FAULTS_STATE_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "ember/ember.h"
#include "ember/plugin.h"

#define SNAP_FAIL ((size_t)-1)

/* Appends n bytes at *off; false (and *off = SNAP_FAIL) when they do not fit. */
static inline bool snap_put(unsigned char *buf, size_t cap, size_t *off, const void *p, size_t n)
{
    if (*off == SNAP_FAIL || n > cap - *off) {
        *off = SNAP_FAIL;
        return false;
    }
    memcpy(buf + *off, p, n);
    *off += n;
    return true;
}

static inline bool snap_tensor(unsigned char *buf, size_t cap, size_t *off, const char *name,
                               const em_tensor *t)
{
    size_t n = (size_t)em_numel(t) * em_dtype_size(em_dtype_of(t));
    if (!snap_put(buf, cap, off, name, strlen(name) + 1) || n > cap - *off)
        return *off = SNAP_FAIL, false;
    if (em_copy_to_host(t, buf + *off, n) < 0)
        return *off = SNAP_FAIL, false;
    *off += n;
    return true;
}

/* Every parameter and buffer of m, by name. */
static inline void snap_module(const em_module *m, unsigned char *buf, size_t cap, size_t *off)
{
    int n = em_module_state_count(m);
    for (int i = 0; i < n; i++)
        snap_tensor(buf, cap, off, em_module_state_name(m, i), em_module_state_tensor(m, i));
}

/* The optimizer's step count and every slot the bundled optimizers keep. */
static inline void snap_optimizer(const em_optimizer *o, unsigned char *buf, size_t cap,
                                  size_t *off)
{
    static const char *const slots[] = {"momentum_buffer", "exp_avg", "exp_avg_sq",
                                        "max_exp_avg_sq", "square_avg"};
    int64_t steps = em_optimizer_steps(o);
    snap_put(buf, cap, off, &steps, sizeof steps);
    for (int i = 0; i < em_optimizer_param_count(o); i++)
        for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++) {
            em_tensor *t = em_optimizer_slot(o, i, slots[k]);
            if (t)
                snap_tensor(buf, cap, off, slots[k], t);
        }
}

/* The bytes of dir/name and the names of every other entry of dir (a stray temporary file
 * shows as a difference). */
static inline void snap_file(const char *dir, const char *name, unsigned char *buf, size_t cap,
                             size_t *off)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            snap_put(buf, cap, off, chunk, n);
        fclose(f);
    } else {
        snap_put(buf, cap, off, "(missing)", 10);
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, name))
            snap_put(buf, cap, off, e->d_name, strlen(e->d_name) + 1);
    if (d)
        closedir(d);
}

#endif
