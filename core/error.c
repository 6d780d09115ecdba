/* core/error.c - thread-local error messages, warnings and the internal assertion handler. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EM__ERR_SIZE 1024

static _Thread_local char err_msg[EM__ERR_SIZE];
static _Thread_local em_status err_status;

int em_set_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    em_vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_status = status < 0 ? (em_status)status : EM_ERR_INTERNAL;
    return status;
}

const char *em_last_error(void) { return err_msg; }
em_status em_last_status(void) { return err_status; }

void em_clear_error(void)
{
    err_msg[0] = '\0';
    err_status = EM_OK;
}

/* A NULL tensor argument usually means an earlier call failed: keep that message, which is
 * the useful one. Only when no error is pending is the NULL itself reported. */
int em__null_arg(const char *fn, const char *what)
{
    if (err_status == EM_OK || err_msg[0] == '\0')
        return em_set_error(EM_ERR_INVALID, "%s: argument '%s' is NULL", fn, what);
    return err_status;
}

void em_warn(const char *fmt, ...)
{
    char msg[EM__ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    em_vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ember: warning: %s\n", msg);
}

_Noreturn void em__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "ember: internal error: %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}
