/* core/scope.c - autorelease scopes: em_scope_begin/em_scope_end/em_keep (thread-local). */
#include <stdlib.h>

#include "internal.h"

_Thread_local int em__api_depth;
_Thread_local int em__scope_depth;

/* One growable array of tracked tensors per thread; each scope remembers where it began. */
static _Thread_local em_tensor **tracked;
static _Thread_local size_t ntracked, captracked;
static _Thread_local size_t *marks;
static _Thread_local size_t capmarks;

void em_scope_begin(void)
{
    if ((size_t)em__scope_depth == capmarks) {
        size_t cap = capmarks ? capmarks * 2 : 16;
        size_t *m = realloc(marks, cap * sizeof *m);
        if (!m) {
            /* Cannot record the scope: tensors stay owned by the caller instead. */
            em_warn("em_scope_begin: out of memory; scope not opened");
            return;
        }
        marks = m;
        capmarks = cap;
    }
    marks[em__scope_depth++] = ntracked;
}

void em__scope_track(em_tensor *t)
{
    if (ntracked == captracked) {
        size_t cap = captracked ? captracked * 2 : 256;
        em_tensor **p = realloc(tracked, cap * sizeof *p);
        if (!p) {
            em_warn("scope: out of memory; a tensor is left to the caller to release");
            return;
        }
        tracked = p;
        captracked = cap;
    }
    tracked[ntracked++] = t;
}

void em_scope_end(void)
{
    if (em__scope_depth == 0) {
        em_warn("em_scope_end without a matching em_scope_begin");
        return;
    }
    size_t from = marks[--em__scope_depth];
    while (ntracked > from)
        em_release(tracked[--ntracked]);
    if (em__scope_depth == 0) {
        /* Nothing thread-local outlives the outermost scope: a thread that used scopes and
         * exits leaves nothing behind. */
        free(tracked);
        tracked = NULL;
        ntracked = captracked = 0;
        free(marks);
        marks = NULL;
        capmarks = 0;
    }
}

em_tensor *em_keep(em_tensor *t)
{
    if (!t || em__scope_depth == 0)
        return t;
    size_t from = marks[em__scope_depth - 1];
    for (size_t i = ntracked; i > from; i--) {
        if (tracked[i - 1] != t)
            continue;
        /* Move it below the innermost scope's mark: the enclosing scope (if any) owns it now.
         * Shift the entries between the mark and i-1 up by one to keep order. */
        for (size_t j = i - 1; j > from; j--)
            tracked[j] = tracked[j - 1];
        tracked[from] = t;
        marks[em__scope_depth - 1] = from + 1;
        if (em__scope_depth == 1) {
            /* outermost scope: the caller owns it; drop it from the list */
            for (size_t j = from; j + 1 < ntracked; j++)
                tracked[j] = tracked[j + 1];
            ntracked--;
            marks[0] = from;
        }
        return t;
    }
    return t;
}

void em__scope_shutdown(void)
{
    while (em__scope_depth > 0)
        em_scope_end();
}
