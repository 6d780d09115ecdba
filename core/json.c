/* core/json.c - the small JSON reader and writer behind safetensors headers.
 *
 * Why not a JSON library: jansson 2.14's json_loadb corrupts its heap when an allocation fails
 * inside it, and a checkpoint loader must survive that. This reader is strict RFC 8259 (no
 * comments, no trailing commas, no NaN), nests at most EM__JSON_MAX_DEPTH deep, and makes
 * exactly two kinds of allocation: one string arena sized to the text up front (a decoded
 * string is never longer than its JSON spelling) and one node array that grows. Any failure
 * frees both and reports EM_ERR_NOMEM or, for bad text, the byte offset and what was expected.
 * Not here: what the keys mean (core/checkpoint.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define EM__JSON_MAX_DEPTH 64

struct em__json_doc {
    em__json *nodes;
    int n, cap;
    char *arena;            /* decoded strings and keys, NUL-terminated */
    size_t used;
};

typedef struct reader {
    const char *text, *p, *end;
    em__json_doc *doc;
    const char *what;       /* the file, for messages */
    int depth;
    int status;             /* EM_OK until the first error */
} reader;

static int rfail(reader *r, const char *expected)
{
    if (r->status == EM_OK)
        r->status = em_set_error(EM_ERR_IO, "%s: bad header JSON at byte %zu: %s", r->what,
                                 (size_t)(r->p - r->text) + 8, expected);
    return r->status;
}

static int rnomem(reader *r)
{
    if (r->status == EM_OK)
        r->status = em_set_error(EM_ERR_NOMEM, "%s: out of memory reading the header",
                                 r->what);
    return r->status;
}

static void skip_ws(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A new node (index), or -1 out of memory. Indices, not pointers: the array moves. */
static int new_node(reader *r, em__json_kind kind)
{
    em__json_doc *d = r->doc;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        em__json *p = cap > d->cap ? realloc(d->nodes, (size_t)cap * sizeof *p) : NULL;
        if (!p)
            return rnomem(r), -1;
        d->nodes = p;
        d->cap = cap;
    }
    em__json *j = &d->nodes[d->n];
    memset(j, 0, sizeof *j);
    j->kind = kind;
    j->first = j->next = -1;
    return d->n++;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Appends code point cp as UTF-8 (at most 4 bytes; its escape took at least 6). */
static void put_utf8(char **o, unsigned cp)
{
    char *q = *o;
    if (cp < 0x80) {
        *q++ = (char)cp;
    } else if (cp < 0x800) {
        *q++ = (char)(0xC0 | cp >> 6);
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *q++ = (char)(0xE0 | cp >> 12);
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *q++ = (char)(0xF0 | cp >> 18);
        *q++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *q++ = (char)(0x80 | (cp & 0x3F));
    }
    *o = q;
}

/* Reads a string (at its opening quote) into the arena; returns it, or NULL on error. An
 * embedded NUL (\u0000) is refused: keys and values are C strings afterwards. */
static const char *read_string(reader *r)
{
    r->p++;
    char *out = r->doc->arena + r->doc->used, *o = out;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20)
            return rfail(r, "a control character inside a string"), NULL;
        if (c != '\\') {
            *o++ = (char)c;
            r->p++;
            continue;
        }
        if (r->end - r->p < 2)
            return r->p = r->end, rfail(r, "a closing '\"'"), NULL;
        char e = r->p[1], plain;
        r->p += 2;
        switch (e) {
        case '"': case '\\': case '/': plain = e; break;
        case 'b': plain = '\b'; break;
        case 'f': plain = '\f'; break;
        case 'n': plain = '\n'; break;
        case 'r': plain = '\r'; break;
        case 't': plain = '\t'; break;
        case 'u': plain = 0; break;
        default: return r->p -= 2, rfail(r, "a valid escape sequence"), NULL;
        }
        if (plain) {
            *o++ = plain;
            continue;
        }
        int cp = r->end - r->p >= 4 ? hex4(r->p) : -1;
        if (cp < 0)
            return rfail(r, "four hex digits after \\u"), NULL;
        r->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair */
            int lo = r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' ? hex4(r->p + 2)
                                                                              : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return rfail(r, "a low surrogate after a high one"), NULL;
            r->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            return rfail(r, cp ? "no lone low surrogate" : "no NUL inside a string"), NULL;
        }
        put_utf8(&o, (unsigned)cp);
    }
    if (r->p >= r->end)
        return rfail(r, "a closing '\"'"), NULL;
    r->p++;
    *o++ = '\0';
    r->doc->used += (size_t)(o - out);
    return out;
}

/* Reads a number into node j: an integer when it has no fraction or exponent and fits. */
static int read_number(reader *r, em__json *j)
{
    const char *s = r->p, *q = s;
    if (q < r->end && *q == '-')
        q++;
    if (q >= r->end || !(*q >= '0' && *q <= '9'))
        return rfail(r, "a value");
    if (*q == '0' && q + 1 < r->end && q[1] >= '0' && q[1] <= '9')
        return rfail(r, "no leading zero in a number");
    bool integer = true;   /* digits only, after the sign */
    for (; q < r->end; q++) {
        bool digit = *q >= '0' && *q <= '9';
        if (!digit && *q != '.' && *q != 'e' && *q != 'E' &&
            !((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E')))
            break;
        integer &= digit;
    }
    char buf[64];
    if ((size_t)(q - s) >= sizeof buf)
        return rfail(r, "a number of at most 63 characters");
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = '\0';
    char *end;
    errno = 0;
    if (integer) {
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0' && errno == 0) {
            j->kind = EM__JSON_INT;
            j->i = v;
            j->f = (double)v;
            r->p = q;
            return EM_OK;
        }
    }
    errno = 0;
    double d = em_strtod(buf, &end);   /* the C locale, whatever the host's */
    if (*end != '\0' || !isfinite(d) || buf[q - s - 1] == '.' || strstr(buf, ".e") ||
        strstr(buf, ".E"))
        return rfail(r, "a well-formed, finite number");
    j->kind = EM__JSON_FLOAT;
    j->f = d;
    r->p = q;
    return EM_OK;
}

static int read_value(reader *r);

/* Reads the members of an array or object (at '[' or '{') as children of node `at`. */
static int read_children(reader *r, int at, bool object)
{
    if (++r->depth > EM__JSON_MAX_DEPTH)
        return rfail(r, "at most 64 levels of nesting");
    char close = object ? '}' : ']';
    r->p++;
    skip_ws(r);
    int last = -1, count = 0;
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return EM_OK;
    }
    for (;;) {
        const char *key = NULL;
        skip_ws(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"')
                return rfail(r, "a '\"' opening a key");
            if (!(key = read_string(r)))
                return r->status;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return rfail(r, "':' after a key");
            r->p++;
        }
        int v = read_value(r);
        if (v < 0)
            return r->status;
        em__json *nodes = r->doc->nodes;
        nodes[v].key = key;
        if (last < 0)
            nodes[at].first = v;
        else
            nodes[last].next = v;
        last = v;
        count++;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            break;
        }
        return rfail(r, object ? "',' or '}'" : "',' or ']'");
    }
    r->doc->nodes[at].n = count;
    r->depth--;
    return EM_OK;
}

/* Reads one value; returns its node index, or -1 (r->status says why). */
static int read_value(reader *r)
{
    skip_ws(r);
    if (r->p >= r->end)
        return rfail(r, "a value"), -1;
    static const struct {
        const char *word;
        em__json_kind kind;
        bool b;
    } words[] = {{"true", EM__JSON_BOOL, true}, {"false", EM__JSON_BOOL, false},
                 {"null", EM__JSON_NULL, false}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++) {
        size_t len = strlen(words[k].word);
        if ((size_t)(r->end - r->p) >= len && !memcmp(r->p, words[k].word, len)) {
            int j = new_node(r, words[k].kind);
            if (j >= 0) {
                r->doc->nodes[j].b = words[k].b;
                r->p += len;
            }
            return j;
        }
    }
    char c = *r->p;
    int j = new_node(r, c == '{' ? EM__JSON_OBJECT : c == '[' ? EM__JSON_ARRAY
                        : c == '"' ? EM__JSON_STRING : EM__JSON_INT);
    if (j < 0)
        return -1;
    int rc;
    if (c == '{' || c == '[') {
        rc = read_children(r, j, c == '{');
    } else if (c == '"') {
        const char *s = read_string(r);
        rc = s ? EM_OK : r->status;
        r->doc->nodes[j].s = s;
    } else {
        rc = read_number(r, &r->doc->nodes[j]);
    }
    return rc < 0 ? -1 : j;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp((*(const em__json *const *)a)->key, (*(const em__json *const *)b)->key);
}

/* A key twice in the top-level object would make "which tensor" ambiguous: refused. */
static int check_unique_keys(reader *r, const em__json *top)
{
    if (top->kind != EM__JSON_OBJECT || top->n < 2)
        return EM_OK;
    const em__json **keys = malloc((size_t)top->n * sizeof *keys);
    if (!keys)
        return rnomem(r);
    int n = 0;
    for (const em__json *c = em__json_first(r->doc, top); c; c = em__json_next(r->doc, c))
        keys[n++] = c;
    qsort(keys, (size_t)n, sizeof *keys, cmp_keys);
    int rc = EM_OK;
    for (int i = 1; i < n && rc == EM_OK; i++)
        if (!strcmp(keys[i]->key, keys[i - 1]->key))
            rc = r->status = em_set_error(EM_ERR_IO, "%s: the header names key '%s' twice",
                                          r->what, keys[i]->key);
    free(keys);
    return rc;
}

em__json_doc *em__json_parse(const char *text, size_t len, const char *what)
{
    em__json_doc *d = calloc(1, sizeof *d);
    reader r = {text, text, text + len, d, what, 0, EM_OK};
    if (!d || !(d->arena = malloc(len + 1))) {
        rnomem(&r);
        em__json_free(d);
        return NULL;
    }
    int top = read_value(&r);
    skip_ws(&r);
    if (top >= 0 && r.p != r.end)
        rfail(&r, "the end of the header after its value");
    if (top >= 0 && r.status == EM_OK)
        check_unique_keys(&r, &d->nodes[top]);
    if (r.status < 0) {
        em__json_free(d);
        return NULL;
    }
    return d;
}

void em__json_free(em__json_doc *d)
{
    if (!d)
        return;
    free(d->nodes);
    free(d->arena);
    free(d);
}

const em__json *em__json_root(const em__json_doc *d) { return d && d->n ? &d->nodes[0] : NULL; }

const em__json *em__json_first(const em__json_doc *d, const em__json *j)
{
    return j && j->first >= 0 ? &d->nodes[j->first] : NULL;
}

const em__json *em__json_next(const em__json_doc *d, const em__json *j)
{
    return j && j->next >= 0 ? &d->nodes[j->next] : NULL;
}

const em__json *em__json_get(const em__json_doc *d, const em__json *obj, const char *key)
{
    if (!obj || obj->kind != EM__JSON_OBJECT)
        return NULL;
    for (const em__json *c = em__json_first(d, obj); c; c = em__json_next(d, c))
        if (!strcmp(c->key, key))
            return c;
    return NULL;
}

const em__json *em__json_at(const em__json_doc *d, const em__json *arr, int i)
{
    if (!arr || arr->kind != EM__JSON_ARRAY || i < 0 || i >= arr->n)
        return NULL;
    const em__json *c = em__json_first(d, arr);
    while (i-- > 0)
        c = em__json_next(d, c);
    return c;
}

const char *em__json_str(const em__json *j)
{
    return j && j->kind == EM__JSON_STRING ? j->s : NULL;
}

/* ---- writing ------------------------------------------------------------------------------- */

void em__json_put_string(em_strbuf *sb, const char *s)
{
    em__sb_putc(sb, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            em__sb_printf(sb, "\\%c", *c);
        else if (*c < 0x20)
            em__sb_printf(sb, "\\u%04x", *c);
        else
            em__sb_putc(sb, (char)*c);
    }
    em__sb_putc(sb, '"');
}
