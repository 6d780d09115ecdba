/* core/numtext.c - numbers as text in the "C" locale, whatever locale the host program set.
 *
 * Spec strings, CSV files, INI values, safetensors metadata and printed tensors always use '.'
 * as the decimal point: a host program that calls setlocale(LC_ALL, "") under de_DE must read
 * "Dropout(p=0.25)" and print "0.5000" exactly as one running in the "C" locale does. Every
 * number Ember reads or writes as text goes through this file.
 *
 * Not here: integers (strtoll and "%lld" do not depend on the locale's decimal point).
 */
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static locale_t c_locale = (locale_t)0;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_make(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* The "C" locale object, made once and shared by every thread (locale objects are read-only
 * once made). (locale_t)0 only if newlocale failed, which glibc never does for "C". */
static locale_t c_locale_get(void)
{
    pthread_once(&c_locale_once, c_locale_make);
    return c_locale;
}

double em_strtod(const char *s, char **end)
{
    locale_t c = c_locale_get();
    if (c)
        return strtod_l(s, end, c);
    return strtod(s, end);   /* only if newlocale failed: the process's locale */
}

int em_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    /* glibc has no snprintf_l: switch this thread (only) to the "C" locale around the call. */
    locale_t c = c_locale_get();
    locale_t old = c ? uselocale(c) : (locale_t)0;
    int n = vsnprintf(buf, size, fmt, ap);
    if (c)
        uselocale(old);
    return n;
}

int em_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = em_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

const char *em_float_repr(double v, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    /* The shortest %g that reads back as the same double (17 significant digits always do). */
    for (int prec = 1; prec <= 17; prec++) {
        em_snprintf(buf, size, "%.*g", prec, v);
        if (v != v || em_strtod(buf, NULL) == v)
            break;
    }
    /* Python writes a whole float with ".0" ("1.0", not "1"), so it reads back as a float;
     * "inf" and "nan" stay as they are. */
    if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= size)
        strcat(buf, ".0");
    return buf;
}
