/* core/strbuf.c - a growable, NUL-terminated string buffer for em_tensor_str and `ember info`. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Makes room for `extra` more bytes plus the terminating NUL. On failure the buffer keeps
 * what it had, is marked failed and every later append is a no-op. */
static bool sb_reserve(em_strbuf *sb, size_t extra)
{
    if (sb->failed)
        return false;
    if (extra > SIZE_MAX - sb->len - 1) {
        sb->failed = true;
        return false;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = true;
        return false;
    }
    sb->data = p;
    sb->cap = cap;
    return true;
}

void em__sb_printf(em_strbuf *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = em_vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if (!sb_reserve(sb, (size_t)n))
        return;
    if ((size_t)n < sizeof small) {
        memcpy(sb->data + sb->len, small, (size_t)n + 1);
    } else {
        /* Too long for the stack buffer: format again straight into the reserved space. */
        va_start(ap, fmt);
        em_vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

void em__sb_putc(em_strbuf *sb, char c)
{
    if (!sb_reserve(sb, 1))
        return;
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

/* The text (caller frees), or NULL with EM_ERR_NOMEM set if an append failed. */
char *em__sb_take(em_strbuf *sb)
{
    char *s = NULL;
    if (!sb->failed) {
        /* An untouched buffer still yields "" rather than NULL. */
        if (sb_reserve(sb, 0)) {
            s = sb->data;
            s[sb->len] = '\0';
        }
    }
    if (!s) {
        free(sb->data);
        em_set_error(EM_ERR_NOMEM, "out of memory building a string");
    }
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->failed = false;
    return s;
}
