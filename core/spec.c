/* core/spec.c - the spec parser and the argument binder shared by every pluggable type.
 *
 * A recursive-descent parser (nesting limited, so hostile input cannot exhaust the stack)
 * builds an immutable tree; em_args_bind checks it against a type's declared parameters.
 * Errors name the column and, for unknown names, the closest declared one.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ember/spec.h"
#include "internal.h"
#include "module_internal.h"

#define MAX_DEPTH 64

typedef enum { V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR, V_LIST, V_SPEC } vkind;

typedef struct value {
    vkind kind;
    int64_t i;
    double f;
    bool b;
    char *s;
    int n;
    struct value *items;
    em_spec *spec;
} value;

typedef struct arg {
    char *key;   /* NULL: positional */
    value v;
} arg;

struct em_spec {
    char *name;
    int nargs;
    arg *args;
};

/* ---- freeing --------------------------------------------------------------------------- */

static void value_clear(value *v)
{
    free(v->s);
    for (int i = 0; i < v->n; i++)
        value_clear(&v->items[i]);
    free(v->items);
    em_spec_free(v->spec);
    memset(v, 0, sizeof *v);
}

void em_spec_free(em_spec *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nargs; i++) {
        free(s->args[i].key);
        value_clear(&s->args[i].v);
    }
    free(s->args);
    free(s->name);
    free(s);
}

const char *em_spec_name(const em_spec *s) { return s ? s->name : NULL; }

/* ---- parsing ---------------------------------------------------------------------------- */

typedef struct parser {
    const char *text, *p, *what;
    int depth;
    bool failed;
} parser;

static void perr(parser *ps, const char *fmt, const char *detail)
{
    if (ps->failed)
        return;
    ps->failed = true;
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail ? detail : "");
    em_set_error(EM_ERR_INVALID, "%s: column %d: %s (in \"%.80s%s\")", ps->what ? ps->what : "spec",
                 (int)(ps->p - ps->text) + 1, msg, ps->text, strlen(ps->text) > 80 ? "..." : "");
}

/* An allocation failed: the status says so, unlike a syntax error. */
static bool nomem(parser *ps)
{
    if (!ps->failed) {
        ps->failed = true;
        em_set_error(EM_ERR_NOMEM, "%s: out of memory parsing \"%.80s%s\"",
                     ps->what ? ps->what : "spec", ps->text, strlen(ps->text) > 80 ? "..." : "");
    }
    return false;
}

static void skip_ws(parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

static char *read_ident(parser *ps)
{
    const char *s = ps->p;
    while (ident_char(*ps->p))
        ps->p++;
    return strndup(s, (size_t)(ps->p - s));
}

static em_spec *parse_spec(parser *ps);
static bool parse_value(parser *ps, value *v);

static bool parse_string(parser *ps, value *v)
{
    char q = *ps->p++;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    if (!out)
        return nomem(ps);
    while (*ps->p && *ps->p != q) {
        char c = *ps->p++;
        if (c == '\\') {
            if (!*ps->p)
                break;   /* a backslash just before the end: unterminated, never past the NUL */
            c = *ps->p++;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        if (n + 2 > cap) {
            char *o = realloc(out, cap *= 2);
            if (!o) {
                free(out);
                return nomem(ps);
            }
            out = o;
        }
        out[n++] = c;
    }
    if (*ps->p != q) {
        free(out);
        return perr(ps, "unterminated string%s", NULL), false;
    }
    ps->p++;
    out[n] = '\0';
    v->kind = V_STR;
    v->s = out;
    return true;
}

static bool parse_number(parser *ps, value *v)
{
    const char *s = ps->p;
    char *end;
    bool is_float = false;
    for (const char *q = s + (*s == '-' || *s == '+'); *q && (isalnum((unsigned char)*q) || *q == '.' ||
                                                        ((*q == '-' || *q == '+') && (q[-1] == 'e' || q[-1] == 'E')));
         q++)
        if (*q == '.' || *q == 'e' || *q == 'E' || *q == 'n' || *q == 'i')
            is_float = true;
    errno = 0;
    if (!is_float) {
        long long x = strtoll(s, &end, 10);
        if (end != s && errno == 0 && !ident_char(*end)) {
            v->kind = V_INT;
            v->i = x;
            v->f = (double)x;
            ps->p = end;
            return true;
        }
    }
    double d = em_strtod(s, &end);
    if (end == s || ident_char(*end) || errno == ERANGE) {
        ps->p = s;
        return perr(ps, "bad number%s", NULL), false;
    }
    v->kind = V_FLOAT;
    v->f = d;
    ps->p = end;
    return true;
}

static bool parse_list(parser *ps, value *v)
{
    ps->p++;   /* [ */
    v->kind = V_LIST;
    skip_ws(ps);
    int cap = 0;
    while (*ps->p != ']') {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4;
            value *it = realloc(v->items, (size_t)cap * sizeof *it);
            if (!it)
                return nomem(ps);
            v->items = it;
        }
        memset(&v->items[v->n], 0, sizeof v->items[0]);
        if (!parse_value(ps, &v->items[v->n++]))
            return false;
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
        } else if (*ps->p != ']') {
            return perr(ps, "expected ',' or ']' in a list%s", NULL), false;
        }
    }
    ps->p++;
    return true;
}

static bool parse_value(parser *ps, value *v)
{
    skip_ws(ps);
    char c = *ps->p;
    if (c == '"' || c == '\'')
        return parse_string(ps, v);
    if (c == '[') {
        if (++ps->depth > MAX_DEPTH)
            return perr(ps, "nested too deeply%s", NULL), false;
        bool ok = parse_list(ps, v);
        ps->depth--;
        return ok;
    }
    if (isdigit((unsigned char)c) || c == '-' || c == '+' || c == '.')
        return parse_number(ps, v);
    if (!ident_start(c))
        return perr(ps, c ? "unexpected '%s'" : "unexpected end of text%s", (char[]){c, 0}), false;
    const char *save = ps->p;
    char *id = read_ident(ps);
    if (!id)
        return nomem(ps);
    skip_ws(ps);
    bool call = *ps->p == '(';
    if (!call) {
        struct { const char *w; vkind k; bool b; } kw[] = {
            {"true", V_BOOL, true}, {"True", V_BOOL, true}, {"false", V_BOOL, false},
            {"False", V_BOOL, false}, {"None", V_NONE, false}, {"null", V_NONE, false}};
        for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
            if (!strcmp(id, kw[i].w)) {
                free(id);
                v->kind = kw[i].k;
                v->b = kw[i].b;
                return true;
            }
    }
    free(id);
    ps->p = save;
    v->kind = V_SPEC;
    v->spec = parse_spec(ps);
    return v->spec != NULL;
}

static em_spec *parse_spec(parser *ps)
{
    skip_ws(ps);
    if (!ident_start(*ps->p)) {
        perr(ps, "expected a name%s", NULL);
        return NULL;
    }
    if (++ps->depth > MAX_DEPTH) {
        perr(ps, "nested too deeply%s", NULL);
        return NULL;
    }
    em_spec *s = calloc(1, sizeof *s);
    if (!s || !(s->name = read_ident(ps))) {
        free(s);
        nomem(ps);
        return NULL;
    }
    skip_ws(ps);
    if (*ps->p != '(') {
        ps->depth--;
        return s;
    }
    ps->p++;
    skip_ws(ps);
    int cap = 0;
    bool seen_key = false;
    while (*ps->p != ')') {
        if (s->nargs == cap) {
            cap = cap ? cap * 2 : 4;
            arg *a = realloc(s->args, (size_t)cap * sizeof *a);
            if (!a) {
                nomem(ps);
                goto fail;
            }
            s->args = a;
        }
        arg *a = &s->args[s->nargs++];
        memset(a, 0, sizeof *a);
        /* key = value ? */
        const char *save = ps->p;
        if (ident_start(*ps->p)) {
            char *id = read_ident(ps);
            if (!id) {
                nomem(ps);
                goto fail;
            }
            skip_ws(ps);
            if (*ps->p == '=' && ps->p[1] != '=') {
                ps->p++;
                a->key = id;
                seen_key = true;
            } else {
                free(id);
                ps->p = save;
            }
        }
        if (!a->key && seen_key) {
            perr(ps, "positional argument after a keyword argument%s", NULL);
            goto fail;
        }
        if (!parse_value(ps, &a->v))
            goto fail;
        skip_ws(ps);
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
        } else if (*ps->p != ')') {
            perr(ps, *ps->p ? "expected ',' or ')' after an argument%s" : "expected ')'%s", NULL);
            goto fail;
        }
    }
    ps->p++;
    ps->depth--;
    return s;
fail:
    em_spec_free(s);
    return NULL;
}

em_spec *em_spec_parse(const char *text, const char *what)
{
    if (!text)
        return em__null_arg("em_spec_parse", "text"), NULL;
    parser ps = {text, text, what, 0, false};
    em_spec *s = parse_spec(&ps);
    if (!s)
        return NULL;
    skip_ws(&ps);
    if (*ps.p) {
        perr(&ps, "unexpected text after the spec%s", NULL);
        em_spec_free(s);
        return NULL;
    }
    return s;
}

/* ---- printing ------------------------------------------------------------------------------ */

static void print_float(em_strbuf *sb, double f)
{
    char buf[40];
    em__sb_printf(sb, "%s", em_float_repr(f, buf, sizeof buf));
}

static void print_value(em_strbuf *sb, const value *v);

static void print_spec(em_strbuf *sb, const em_spec *s)
{
    em__sb_printf(sb, "%s(", s->name);
    for (int i = 0; i < s->nargs; i++) {
        if (i)
            em__sb_printf(sb, ", ");
        if (s->args[i].key)
            em__sb_printf(sb, "%s=", s->args[i].key);
        print_value(sb, &s->args[i].v);
    }
    em__sb_putc(sb, ')');
}

static void print_value(em_strbuf *sb, const value *v)
{
    switch (v->kind) {
    case V_NONE: em__sb_printf(sb, "None"); break;
    case V_INT: em__sb_printf(sb, "%lld", (long long)v->i); break;
    case V_FLOAT: print_float(sb, v->f); break;
    case V_BOOL: em__sb_printf(sb, v->b ? "true" : "false"); break;
    case V_STR:
        em__sb_putc(sb, '"');
        for (const char *c = v->s; *c; c++) {
            if (*c == '"' || *c == '\\')
                em__sb_putc(sb, '\\');
            em__sb_putc(sb, *c);
        }
        em__sb_putc(sb, '"');
        break;
    case V_LIST:
        em__sb_putc(sb, '[');
        for (int i = 0; i < v->n; i++) {
            if (i)
                em__sb_printf(sb, ", ");
            print_value(sb, &v->items[i]);
        }
        em__sb_putc(sb, ']');
        break;
    case V_SPEC: print_spec(sb, v->spec); break;
    }
}

char *em_spec_str(const em_spec *s)
{
    if (!s)
        return em__null_arg("em_spec_str", "s"), NULL;
    em_strbuf sb = {0};
    print_spec(&sb, s);
    return em__sb_take(&sb);
}

/* ---- binding ----------------------------------------------------------------------------------- */

struct em_args {
    int nparams;
    const em_param_decl *params;
    const char *type;
    const value **vals;      /* per parameter: the bound value (NULL: None/absent) */
    bool *given;             /* the spec named it (rather than a default) */
    value *defaults;         /* parsed default values, owned */
    value *varargs;          /* EM_PARAM_SPECS_VARARG: a list value of the specs, owned */
};

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

const char *em_closest_name(const char *name, const char *const *names, int n)
{
    const char *best = NULL;
    size_t bd = 99, limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    for (int i = 0; i < n; i++) {
        size_t d = edit_distance(name, names[i]);
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    return bd <= limit ? best : NULL;
}

static const char *kind_name(em_param_kind k)
{
    static const char *const names[] = {"?", "an integer", "a number", "a boolean", "a string",
                                        "a list of integers", "a list of numbers",
                                        "a list of strings", "a spec", "specs"};
    return k > 0 && k < EM_PARAM_KIND_COUNT ? names[k] : "?";
}

static bool kind_ok(em_param_kind k, const value *v)
{
    if (v->kind == V_NONE)
        return true;
    switch (k) {
    case EM_PARAM_INT: return v->kind == V_INT;
    case EM_PARAM_FLOAT: return v->kind == V_INT || v->kind == V_FLOAT;
    case EM_PARAM_BOOL: return v->kind == V_BOOL;
    case EM_PARAM_STRING: return v->kind == V_STR;
    case EM_PARAM_SPEC: return v->kind == V_SPEC;
    case EM_PARAM_INTS:
    case EM_PARAM_FLOATS:
    case EM_PARAM_STRINGS: {
        em_param_kind item = k == EM_PARAM_INTS ? EM_PARAM_INT
                             : k == EM_PARAM_FLOATS ? EM_PARAM_FLOAT : EM_PARAM_STRING;
        if (v->kind != V_LIST)
            return kind_ok(item, v);
        for (int i = 0; i < v->n; i++)
            if (v->items[i].kind == V_NONE || !kind_ok(item, &v->items[i]))
                return false;
        return true;
    }
    default: return false;
    }
}

static int bind_fail(em_args *a, const char *fmt, const char *x, const char *y)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, x ? x : "", y ? y : "");
    em_set_error(EM_ERR_INVALID, "%s: %s", a->type, msg);
    return EM_ERR_INVALID;
}

static int find_param(const em_args *a, const char *name)
{
    for (int i = 0; i < a->nparams; i++)
        if (!strcmp(a->params[i].name, name))
            return i;
    return -1;
}

static int bind_value(em_args *a, int k, const value *v)
{
    const em_param_decl *p = &a->params[k];
    if (a->given[k])
        return bind_fail(a, "argument '%s' given twice%s", p->name, NULL);
    if (!kind_ok(p->kind, v)) {
        em_strbuf sb = {0};
        print_value(&sb, v);
        char *txt = em__sb_take(&sb);
        char what[160];
        snprintf(what, sizeof what, "%s, got %.100s", kind_name(p->kind), txt ? txt : "?");
        free(txt);
        return bind_fail(a, "argument '%s' must be %s", p->name, what);
    }
    if (v->kind == V_NONE && !p->default_value)
        return bind_fail(a, "argument '%s' is required and cannot be None%s", p->name, NULL);
    a->vals[k] = v->kind == V_NONE ? NULL : v;
    a->given[k] = true;
    return EM_OK;
}

em_args *em_args_bind(const em_spec *s, int nparams, const em_param_decl *params)
{
    if (!s)
        return em__null_arg("em_args_bind", "spec"), NULL;
    em_args *a = calloc(1, sizeof *a);
    if (!a)
        return em_set_error(EM_ERR_NOMEM, "out of memory binding arguments"), NULL;
    a->nparams = nparams;
    a->params = params;
    a->type = s->name;
    a->vals = calloc((size_t)nparams + 1, sizeof *a->vals);
    a->given = calloc((size_t)nparams + 1, sizeof *a->given);
    a->defaults = calloc((size_t)nparams + 1, sizeof *a->defaults);
    if (!a->vals || !a->given || !a->defaults)
        goto nomem;
    int vararg = -1;
    for (int k = 0; k < nparams; k++)
        if (params[k].kind == EM_PARAM_SPECS_VARARG)
            vararg = k;
    if (vararg >= 0 && !(a->varargs = calloc(1, sizeof *a->varargs)))
        goto nomem;
    int pos = 0;
    for (int i = 0; i < s->nargs; i++) {
        const arg *g = &s->args[i];
        int k;
        if (g->key) {
            k = find_param(a, g->key);
            if (k < 0 || k == vararg) {
                const char *best = NULL;
                size_t bd = 99;
                for (int j = 0; j < nparams; j++) {
                    size_t d = edit_distance(g->key, params[j].name);
                    if (d < bd && j != vararg) {
                        bd = d;
                        best = params[j].name;
                    }
                }
                size_t limit = strlen(g->key) / 3 > 2 ? strlen(g->key) / 3 : 2;
                if (best && bd <= limit)
                    bind_fail(a, "unknown argument '%s'; did you mean '%s'?", g->key, best);
                else
                    bind_fail(a, "unknown argument '%s'%s", g->key, "");
                goto fail;
            }
        } else if (vararg >= 0 && pos >= vararg) {
            if (g->v.kind != V_SPEC) {
                bind_fail(a, "positional arguments of '%s' must be specs (e.g. Linear(3, 4))%s",
                          params[vararg].name, NULL);
                goto fail;
            }
            value *it = realloc(a->varargs->items, (size_t)(a->varargs->n + 1) * sizeof *it);
            if (!it)
                goto nomem;
            a->varargs->items = it;
            it[a->varargs->n++] = g->v;   /* shallow: the spec owns the tree */
            a->varargs->kind = V_LIST;
            continue;
        } else {
            if (pos >= nparams || (vararg >= 0 && pos > vararg)) {
                char n[16];
                snprintf(n, sizeof n, "%d", nparams);
                bind_fail(a, "too many positional arguments (takes at most %s)%s", n, NULL);
                goto fail;
            }
            k = pos++;
        }
        if (bind_value(a, k, &g->v) < 0)
            goto fail;
    }
    for (int k = 0; k < nparams; k++) {
        if (a->given[k] || k == vararg)
            continue;
        if (!params[k].default_value) {
            bind_fail(a, "missing required argument '%s'%s", params[k].name, NULL);
            goto fail;
        }
        parser ps = {params[k].default_value, params[k].default_value, a->type, 0, false};
        if (!parse_value(&ps, &a->defaults[k])) {
            /* A declared default is the plugin's text: only running out of memory fails it. */
            EM_ASSERT(em_last_status() == EM_ERR_NOMEM && "a declared default does not parse");
            goto fail;
        }
        if (!kind_ok(params[k].kind, &a->defaults[k]))
            EM_ASSERT(!"a declared default has the wrong kind");
        a->vals[k] = a->defaults[k].kind == V_NONE ? NULL : &a->defaults[k];
    }
    if (vararg >= 0) {
        a->varargs->kind = V_LIST;
        a->vals[vararg] = a->varargs;
        a->given[vararg] = a->varargs->n > 0;
    }
    return a;
nomem:
    em_set_error(EM_ERR_NOMEM, "out of memory binding arguments");
fail:
    em_args_free(a);
    return NULL;
}

void em_args_free(em_args *a)
{
    if (!a)
        return;
    for (int k = 0; a->defaults && k < a->nparams; k++)
        value_clear(&a->defaults[k]);
    if (a->varargs)
        free(a->varargs->items);   /* shallow copies of the spec's values */
    free(a->varargs);
    free(a->defaults);
    free(a->vals);
    free(a->given);
    free(a);
}

/* ---- getters --------------------------------------------------------------------------------- */

static const value *get(const em_args *a, const char *name, em_param_kind want1, em_param_kind want2)
{
    int k = a ? find_param(a, name) : -1;
    if (k < 0) {
        em_set_error(EM_ERR_INTERNAL, "%s: no declared argument '%s'", a ? a->type : "?", name);
        return NULL;
    }
    if (a->params[k].kind != want1 && a->params[k].kind != want2) {
        em_set_error(EM_ERR_INTERNAL, "%s: argument '%s' is %s, not %s", a->type, name,
                     kind_name(a->params[k].kind), kind_name(want1));
        return NULL;
    }
    return a->vals[k];
}

bool em_args_has(const em_args *a, const char *name)
{
    int k = a ? find_param(a, name) : -1;
    return k >= 0 && a->vals[k] != NULL && !(a->vals[k]->kind == V_LIST && a->vals[k]->n == 0 &&
                                             a->params[k].kind == EM_PARAM_SPECS_VARARG);
}

int64_t em_args_int(const em_args *a, const char *name)
{
    const value *v = get(a, name, EM_PARAM_INT, EM_PARAM_INT);
    return v ? v->i : 0;
}

double em_args_float(const em_args *a, const char *name)
{
    const value *v = get(a, name, EM_PARAM_FLOAT, EM_PARAM_FLOAT);
    return v ? (v->kind == V_INT ? (double)v->i : v->f) : 0.0;
}

bool em_args_bool(const em_args *a, const char *name)
{
    const value *v = get(a, name, EM_PARAM_BOOL, EM_PARAM_BOOL);
    return v && v->b;
}

const char *em_args_str(const em_args *a, const char *name)
{
    const value *v = get(a, name, EM_PARAM_STRING, EM_PARAM_STRING);
    return v ? v->s : NULL;
}

const em_spec *em_args_spec(const em_args *a, const char *name)
{
    const value *v = get(a, name, EM_PARAM_SPEC, EM_PARAM_SPEC);
    return v ? v->spec : NULL;
}

/* Lists: a scalar counts as a one-element list. */
static const value *item(const em_args *a, const char *name, int i)
{
    int k = a ? find_param(a, name) : -1;
    const value *v = k >= 0 ? a->vals[k] : NULL;
    if (!v)
        return NULL;
    if (v->kind != V_LIST)
        return i == 0 ? v : NULL;
    return i >= 0 && i < v->n ? &v->items[i] : NULL;
}

int em_args_count(const em_args *a, const char *name)
{
    int k = a ? find_param(a, name) : -1;
    const value *v = k >= 0 ? a->vals[k] : NULL;
    return !v ? 0 : v->kind == V_LIST ? v->n : 1;
}

int64_t em_args_int_at(const em_args *a, const char *name, int i)
{
    const value *v = item(a, name, i);
    return v ? v->i : 0;
}

double em_args_float_at(const em_args *a, const char *name, int i)
{
    const value *v = item(a, name, i);
    return v ? (v->kind == V_INT ? (double)v->i : v->f) : 0.0;
}

const char *em_args_str_at(const em_args *a, const char *name, int i)
{
    const value *v = item(a, name, i);
    return v ? v->s : NULL;
}

const em_spec *em_args_spec_at(const em_args *a, const char *name, int i)
{
    const value *v = item(a, name, i);
    return v && v->kind == V_SPEC ? v->spec : NULL;
}

char *em_args_str_repr(const em_args *a, const char *type_name)
{
    em_strbuf sb = {0};
    em__sb_printf(&sb, "%s(", type_name);
    bool first = true;
    for (int k = 0; k < a->nparams; k++) {
        const em_param_decl *p = &a->params[k];
        if (p->kind == EM_PARAM_SPECS_VARARG) {
            for (int i = 0; a->vals[k] && i < a->vals[k]->n; i++) {
                em__sb_printf(&sb, first ? "" : ", ");
                print_value(&sb, &a->vals[k]->items[i]);
                first = false;
            }
            continue;
        }
        bool required = !p->default_value;
        if (!required && !a->given[k])
            continue;
        /* an explicit value equal to the default prints nothing either */
        if (!required && a->vals[k]) {
            em_strbuf d1 = {0}, d2 = {0};
            print_value(&d1, a->vals[k]);
            parser ps = {p->default_value, p->default_value, NULL, 0, false};
            value dv = {0};
            bool same = false;
            if (parse_value(&ps, &dv)) {
                print_value(&d2, &dv);
                char *x = em__sb_take(&d1), *y = em__sb_take(&d2);
                same = x && y && !strcmp(x, y);
                free(x);
                free(y);
            } else {
                free(em__sb_take(&d1));
            }
            value_clear(&dv);
            if (same)
                continue;
        }
        em__sb_printf(&sb, first ? "" : ", ");
        first = false;
        if (!required)
            em__sb_printf(&sb, "%s=", p->name);
        if (a->vals[k])
            print_value(&sb, a->vals[k]);
        else
            em__sb_printf(&sb, "None");
    }
    em__sb_putc(&sb, ')');
    return em__sb_take(&sb);
}
