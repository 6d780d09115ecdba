/* plugins/data/csv.c - the CSV dataset type: a delimited text file into float32 features and
 * a label column.
 *
 *     CSV(path="digits.csv", features=["pixel0:pixel63"], label="label", scale=0.0625)
 *     CSV("iris.csv", standardize=true)        CSV("raw.tsv", header=false, delimiter="\t",
 *                                                  features=["0:3"], label="4")
 *
 * Columns are named by the header row, or numbered from 0 when header=false. `features` is a
 * list of column references (default: every column but the label), each a name, an index (a
 * number as text; negative counts from the end, as in Python), or an inclusive range
 * "first:last" of either ("pixel0:pixel63", "0:63", "pixel10:" to the last column). `label`
 * is one reference, or None for an unlabeled dataset; label_dtype "int64" (class indices, >= 0)
 * or "float32" (regression). `scale` multiplies every feature (1/16 for digits' 0..16 pixels);
 * `standardize=true` asks for (x - mean) / std with statistics from the training split (see
 * em_dataset_fit_scaler: reading fails until they are given).
 *
 * The parser follows RFC 4180: cells may be quoted ("a, b" and "" for a quote; a quoted cell
 * may span lines), CRLF or LF line endings, a UTF-8 byte order mark is skipped, blank lines
 * are skipped. Numbers are decimal text (strtod's grammar, without hex, inf or nan); columns
 * that are not selected are never parsed, so they may hold text. Errors name the cell as
 * "file:line:column" (1-based, in bytes): "data.csv:17:5: expected a number, got 'abc' in
 * column 'feature2'". Missing values are not supported (an empty cell is an error).
 *
 * Not here: type inference, string labels, missing values (pandas' territory).
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data_plugin.h"

static const em_param_decl csv_params[] = {
    {"path", EM_PARAM_STRING, NULL},
    {"features", EM_PARAM_STRINGS, "None"},
    {"label", EM_PARAM_STRING, "\"label\""},
    {"header", EM_PARAM_BOOL, "true"},
    {"delimiter", EM_PARAM_STRING, "\",\""},
    {"scale", EM_PARAM_FLOAT, "None"},
    {"standardize", EM_PARAM_BOOL, "false"},
    {"label_dtype", EM_PARAM_STRING, "\"int64\""},
};

typedef struct cell {
    char *p;                /* the cell's text (quotes removed, unescaped in place) */
    size_t len;
    int line, col;          /* where it starts, 1-based */
} cell;

typedef struct csv {
    const char *path;
    char *buf;              /* the whole file, NUL-terminated; quoted cells are unescaped in it */
    char *p, *end;
    int line;               /* line of p */
    char *line_start;       /* first byte of that line */
    char delim;
    cell *cells;            /* the current record */
    int ncells, capcells;
    int rec_line;           /* line the current record starts on */
    char **names;           /* header names, or NULL without a header */
    int ncols;
} csv;

/* ---- reading the file and splitting records ---------------------------------------------- */

static int read_file(csv *c)
{
    FILE *f = fopen(c->path, "rb");
    if (!f)
        return em_set_error(EM_ERR_IO, "CSV: cannot open '%s': %s", c->path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *b = realloc(buf, cap *= 2);
        if (!b) {
            free(buf);
            buf = NULL;
        }
        buf = b;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return em_set_error(EM_ERR_NOMEM, "CSV: out of memory reading '%s'", c->path);
    if (err) {
        free(buf);
        return em_set_error(EM_ERR_IO, "CSV: cannot read '%s'", c->path);
    }
    buf[n] = '\0';
    c->buf = buf;
    c->p = buf;
    c->end = buf + n;
    if (n >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3))
        c->p += 3;
    c->line = 1;
    c->line_start = c->p;
    return EM_OK;
}

static bool is_space(const csv *c, char ch) { return (ch == ' ' || ch == '\t') && ch != c->delim; }

static void newline_at(csv *c, char *next)
{
    c->line++;
    c->line_start = next;
}

static cell *push_cell(csv *c)
{
    if (c->ncells == c->capcells) {
        int cap = c->capcells ? c->capcells * 2 : 64;
        cell *p = realloc(c->cells, (size_t)cap * sizeof *p);
        if (!p)
            return NULL;
        c->cells = p;
        c->capcells = cap;
    }
    cell *ce = &c->cells[c->ncells++];
    ce->line = c->line;
    ce->col = (int)(c->p - c->line_start) + 1;
    return ce;
}

/* A quoted cell starting at q (the opening quote): unescapes it in place and leaves c->p after
 * the closing quote and any blanks. */
static int read_quoted(csv *c, cell *ce, char *q)
{
    char *w = q, *r = q + 1;
    for (;;) {
        if (r >= c->end)
            return em_set_error(EM_ERR_IO, "%s:%d:%d: unterminated quoted cell", c->path,
                                ce->line, ce->col);
        if (*r == '"') {
            if (r + 1 < c->end && r[1] == '"') {
                *w++ = '"';
                r += 2;
                continue;
            }
            r++;
            break;
        }
        if (*r == '\n')
            newline_at(c, r + 1);
        *w++ = *r++;
    }
    ce->p = q;
    ce->len = (size_t)(w - q);
    while (r < c->end && is_space(c, *r))
        r++;
    if (r < c->end && *r == '\r' && (r + 1 == c->end || r[1] == '\n'))
        r++;
    if (r < c->end && *r != c->delim && *r != '\n')
        return em_set_error(EM_ERR_IO, "%s:%d:%d: unexpected '%c' after a quoted cell", c->path,
                            c->line, (int)(r - c->line_start) + 1, *r);
    c->p = r;
    return EM_OK;
}

/* The next record into c->cells: 1, or 0 at the end of the file, or a negative status. Blank
 * lines are skipped. */
static int next_record(csv *c)
{
    for (;;) {
        char *q = c->p;
        while (q < c->end && (is_space(c, *q) || *q == '\r'))
            q++;
        if (q == c->end) {
            c->p = q;
            return 0;
        }
        if (*q != '\n')
            break;
        c->p = q + 1;
        newline_at(c, c->p);
    }
    c->rec_line = c->line;
    c->ncells = 0;
    for (;;) {
        cell *ce = push_cell(c);
        if (!ce)
            return em_set_error(EM_ERR_NOMEM, "CSV: out of memory reading '%s'", c->path);
        char *q = c->p;
        while (q < c->end && is_space(c, *q))
            q++;
        if (q < c->end && *q == '"') {
            int rc = read_quoted(c, ce, q);
            if (rc < 0)
                return rc;
        } else {
            char *r = c->p;
            while (r < c->end && *r != c->delim && *r != '\n')
                r++;
            ce->p = c->p;
            ce->len = (size_t)(r - c->p);
            if (ce->len && ce->p[ce->len - 1] == '\r' && (r == c->end || *r == '\n'))
                ce->len--;   /* CRLF */
            c->p = r;
        }
        if (c->p < c->end && *c->p == c->delim) {
            c->p++;
            continue;
        }
        if (c->p < c->end) {   /* '\n' */
            c->p++;
            newline_at(c, c->p);
        }
        return 1;
    }
}

static void trim(const csv *c, const char **s, size_t *n)
{
    while (*n && is_space(c, **s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space(c, (*s)[*n - 1]))
        (*n)--;
}

/* ---- columns ---------------------------------------------------------------------------------- */

/* "column 'pixel3'" or "column 3" into buf. */
static const char *col_desc(const csv *c, int col, char *buf, size_t size)
{
    if (c->names)
        snprintf(buf, size, "column '%.100s'", c->names[col]);
    else
        snprintf(buf, size, "column %d", col);
    return buf;
}

static int no_such_column(const csv *c, const char *what, const char *ref)
{
    char list[600];
    size_t n = 0;
    if (c->names) {
        n += (size_t)snprintf(list, sizeof list, "columns: ");
        for (int i = 0; i < c->ncols && i < 12 && n < sizeof list; i++)
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%.40s", i ? ", " : "",
                                  c->names[i]);
        if (c->ncols > 12 && n < sizeof list)
            snprintf(list + n, sizeof list - n, ", ... (%d columns)", c->ncols);
    } else {
        snprintf(list, sizeof list, "the file has no header row: columns are numbered 0 to %d, "
                                    "e.g. %s=\"%d\"",
                 c->ncols - 1, what, c->ncols - 1);
    }
    return em_set_error(EM_ERR_INVALID, "%s: no column named '%s' (%s)", c->path, ref, list);
}

static bool is_index(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* A column reference: a header name, else an index as text (negative from the end). */
static int find_col(const csv *c, const char *what, const char *ref, int *out)
{
    for (int i = 0; c->names && i < c->ncols; i++)
        if (!strcmp(c->names[i], ref)) {
            *out = i;
            return EM_OK;
        }
    if (!is_index(ref))
        return no_such_column(c, what, ref);
    long v = strtol(ref, NULL, 10);
    long k = v < 0 ? v + c->ncols : v;
    if (k < 0 || k >= c->ncols)
        return em_set_error(EM_ERR_INVALID, "%s: column index %ld out of range (%d columns)",
                            c->path, v, c->ncols);
    *out = (int)k;
    return EM_OK;
}

static int add_col(int **cols, int *n, int col)
{
    int *p = realloc(*cols, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return em_set_error(EM_ERR_NOMEM, "CSV: out of memory");
    *cols = p;
    (*cols)[(*n)++] = col;
    return EM_OK;
}

/* One entry of `features`: a reference or an inclusive range "first:last". */
static int add_feature(const csv *c, const char *ref, int **cols, int *n)
{
    int k;
    const char *colon = strchr(ref, ':');
    bool named = false;
    for (int i = 0; c->names && i < c->ncols; i++)
        named |= !strcmp(c->names[i], ref);
    if (!colon || named) {
        int rc = find_col(c, "features", ref, &k);
        return rc < 0 ? rc : add_col(cols, n, k);
    }
    char lo_s[256], hi_s[256];
    snprintf(lo_s, sizeof lo_s, "%.*s", (int)(colon - ref), ref);
    snprintf(hi_s, sizeof hi_s, "%s", colon + 1);
    int lo = 0, hi = c->ncols - 1, rc = EM_OK;
    if (lo_s[0])
        rc = find_col(c, "features", lo_s, &lo);
    if (rc == EM_OK && hi_s[0])
        rc = find_col(c, "features", hi_s, &hi);
    if (rc < 0)
        return rc;
    if (lo > hi)
        return em_set_error(EM_ERR_INVALID, "%s: features: range '%s' runs backwards (column %d "
                                            "to column %d)",
                            c->path, ref, lo, hi);
    for (k = lo; k <= hi && rc == EM_OK; k++)
        rc = add_col(cols, n, k);
    return rc;
}

/* ---- numbers --------------------------------------------------------------------------------- */

static bool is_nonfinite_word(const char *s)
{
    if (*s == '+' || *s == '-')
        s++;
    return !strcasecmp(s, "nan") || !strcasecmp(s, "inf") || !strcasecmp(s, "infinity");
}

/* The cell's value as a double (finite); errors name file:line:column and the column. */
static int parse_num(const csv *c, const cell *ce, int col, double *out)
{
    const char *s = ce->p;
    size_t n = ce->len;
    trim(c, &s, &n);
    char cd[160];
    /* fast path: an integer of up to 15 digits is exact in a double */
    if (n > 0 && n <= 16) {
        size_t i = s[0] == '-' || s[0] == '+';
        double v = 0;
        bool ok = i < n;
        for (size_t k = i; k < n && ok; k++) {
            ok = s[k] >= '0' && s[k] <= '9';
            v = v * 10 + (s[k] - '0');
        }
        if (ok && n - i <= 15) {
            *out = s[0] == '-' ? -v : v;
            return EM_OK;
        }
    }
    if (n == 0)
        return em_set_error(EM_ERR_IO, "%s:%d:%d: expected a number, got an empty cell in %s "
                                       "(missing values are not supported)",
                            c->path, ce->line, ce->col, col_desc(c, col, cd, sizeof cd));
    char tmp[512];
    bool fits = n < sizeof tmp;
    if (fits) {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
    }
    bool chars_ok = fits;
    for (size_t k = 0; k < n && chars_ok; k++)
        chars_ok = isdigit((unsigned char)s[k]) || strchr(".eE+-", s[k]);
    if (!chars_ok) {
        if (fits && is_nonfinite_word(tmp))
            return em_set_error(EM_ERR_IO, "%s:%d:%d: '%s' is not a finite number in %s", c->path,
                                ce->line, ce->col, tmp, col_desc(c, col, cd, sizeof cd));
        return em_set_error(EM_ERR_IO, "%s:%d:%d: expected a number, got '%.*s%s' in %s",
                            c->path, ce->line, ce->col, n > 40 ? 40 : (int)n, s,
                            n > 40 ? "..." : "", col_desc(c, col, cd, sizeof cd));
    }
    char *end;
    errno = 0;
    double v = em_strtod(tmp, &end);
    if (end != tmp + n || end == tmp)
        return em_set_error(EM_ERR_IO, "%s:%d:%d: expected a number, got '%.*s%s' in %s",
                            c->path, ce->line, ce->col, n > 40 ? 40 : (int)n, s,
                            n > 40 ? "..." : "", col_desc(c, col, cd, sizeof cd));
    if (errno == ERANGE && fabs(v) > 1)
        return em_set_error(EM_ERR_IO, "%s:%d:%d: '%.*s' is out of range in %s", c->path,
                            ce->line, ce->col, n > 40 ? 40 : (int)n, s,
                            col_desc(c, col, cd, sizeof cd));
    *out = v;
    return EM_OK;
}

static int check_f32(const csv *c, const cell *ce, int col, double v, const char *what)
{
    if (fabs(v) <= FLT_MAX)
        return EM_OK;
    char cd[160];
    const char *s = ce->p;
    size_t n = ce->len;
    trim(c, &s, &n);
    return em_set_error(EM_ERR_IO, "%s:%d:%d: %s '%.*s' is out of range for float32 in %s",
                        c->path, ce->line, ce->col, what, n > 40 ? 40 : (int)n, s,
                        col_desc(c, col, cd, sizeof cd));
}

static int parse_label(const csv *c, const cell *ce, int col, bool integer, void *dst)
{
    double v;
    int rc = parse_num(c, ce, col, &v);
    if (rc < 0)
        return rc;
    char cd[160];
    if (!integer) {
        rc = check_f32(c, ce, col, v, "label");
        if (rc == EM_OK)
            *(float *)dst = (float)v;
        return rc;
    }
    if (v != floor(v) || fabs(v) > 9007199254740992.0)
        return em_set_error(EM_ERR_IO, "%s:%d:%d: label %.17g is not an integer in %s (for "
                                       "regression targets use label_dtype=\"float32\")",
                            c->path, ce->line, ce->col, v, col_desc(c, col, cd, sizeof cd));
    if (v < 0)
        return em_set_error(EM_ERR_IO, "%s:%d:%d: class label %.17g is negative in %s (classes "
                                       "are 0 to C-1)",
                            c->path, ce->line, ce->col, v, col_desc(c, col, cd, sizeof cd));
    *(int64_t *)dst = (int64_t)v;
    return EM_OK;
}

/* ---- the dataset type -------------------------------------------------------------------------- */

typedef struct csv_opts {
    bool header, has_label, label_int, has_scale, standardize;
    double scale;
    const char *label;
} csv_opts;

static int read_opts(const em_args *a, csv *c, csv_opts *o)
{
    const char *delim = em_args_str(a, "delimiter");
    if (!delim || strlen(delim) != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
        return em_set_error(EM_ERR_INVALID, "CSV: delimiter must be one character other than a "
                                            "quote or a line break, got \"%s\"",
                            delim ? delim : "");
    c->delim = delim[0];
    o->header = em_args_bool(a, "header");
    o->has_label = em_args_has(a, "label");
    o->label = o->has_label ? em_args_str(a, "label") : NULL;
    const char *ldt = em_args_str(a, "label_dtype");
    em_dtype dt = em_dtype_parse(ldt);
    if (dt != EM_I64 && dt != EM_F32)
        return em_set_error(EM_ERR_INVALID, "CSV: label_dtype must be \"int64\" (class "
                                            "indices) or \"float32\" (regression), got \"%s\"",
                            ldt);
    o->label_int = dt == EM_I64;
    o->has_scale = em_args_has(a, "scale");
    o->scale = o->has_scale ? em_args_float(a, "scale") : 1.0;
    if (!isfinite(o->scale))
        return em_set_error(EM_ERR_INVALID, "CSV: scale must be a finite number, got %g",
                            o->scale);
    o->standardize = em_args_bool(a, "standardize");
    return EM_OK;
}

/* Header names (or the column count of the first record without a header). Leaves the first
 * data record in c->cells when there is no header; returns 1 then, else 0. */
static int read_header(csv *c, const csv_opts *o)
{
    int rc = next_record(c);
    if (rc == 0)
        return em_set_error(EM_ERR_IO, "%s: empty file", c->path);
    if (rc < 0)
        return rc;
    c->ncols = c->ncells;
    if (!o->header)
        return 1;
    if (!(c->names = calloc((size_t)c->ncols, sizeof *c->names)))
        return em_set_error(EM_ERR_NOMEM, "CSV: out of memory");
    for (int i = 0; i < c->ncols; i++) {
        const char *s = c->cells[i].p;
        size_t n = c->cells[i].len;
        trim(c, &s, &n);
        if (!(c->names[i] = strndup(s, n)))
            return em_set_error(EM_ERR_NOMEM, "CSV: out of memory");
    }
    return 0;
}

static em_dataset *csv_create(const em_args *a)
{
    csv c = {.path = em_args_str(a, "path")};
    csv_opts o = {0};
    int *fcols = NULL, nf = 0, lcol = -1;
    em_tensor *xt = NULL, *yt = NULL, *xv = NULL, *yv = NULL;
    em_dataset *d = NULL;
    int rc = read_opts(a, &c, &o);
    if (rc == EM_OK)
        rc = read_file(&c);
    int pending = rc == EM_OK ? read_header(&c, &o) : rc;
    if (pending < 0)
        goto done;
    if (o.has_label && (rc = find_col(&c, "label", o.label, &lcol)) < 0)
        goto done;
    if (em_args_has(a, "features")) {
        for (int i = 0; i < em_args_count(a, "features") && rc == EM_OK; i++)
            rc = add_feature(&c, em_args_str_at(a, "features", i), &fcols, &nf);
    } else {
        for (int k = 0; k < c.ncols && rc == EM_OK; k++)
            if (k != lcol)
                rc = add_col(&fcols, &nf, k);
    }
    if (rc < 0)
        goto done;
    if (nf == 0) {
        em_set_error(EM_ERR_INVALID, "%s: no feature columns selected", c.path);
        goto done;
    }
    /* Rows are at most the lines left, plus the last line without a line break, plus the
     * record already read without a header; the tensors are cut to the rows read at the end. */
    int64_t upper = 2;
    for (const char *q = c.p; (q = memchr(q, '\n', (size_t)(c.end - q))); q++)
        upper++;
    if (!(xt = em_data__cpu_empty(EM_F32, EM_SHAPE(upper, nf))) ||
        (o.has_label && !(yt = em_data__cpu_empty(o.label_int ? EM_I64 : EM_F32,
                                                  EM_SHAPE(upper)))))
        goto done;
    float *x = em_data_ptr(xt);
    char *y = yt ? em_data_ptr(yt) : NULL;
    size_t ysz = o.label_int ? sizeof(int64_t) : sizeof(float);
    int64_t rows = 0;
    for (;;) {
        if (!pending && (rc = next_record(&c)) <= 0)
            break;
        pending = 0;
        if (rows >= upper) {
            rc = em_set_error(EM_ERR_INTERNAL, "%s: more records than lines", c.path);
            break;
        }
        if (c.ncells != c.ncols) {
            rc = em_set_error(EM_ERR_IO, "%s:%d: %d column%s, expected %d (as in %s)", c.path,
                              c.rec_line, c.ncells, c.ncells == 1 ? "" : "s", c.ncols,
                              o.header ? "the header" : "the first row");
            break;
        }
        float *xr = x + rows * nf;
        for (int f = 0; f < nf && rc >= 0; f++) {
            double v;
            const cell *ce = &c.cells[fcols[f]];
            rc = parse_num(&c, ce, fcols[f], &v);
            if (rc == EM_OK)
                rc = check_f32(&c, ce, fcols[f], v * o.scale, o.has_scale ? "scaled value" : "value");
            xr[f] = (float)(v * o.scale);
        }
        if (rc >= 0 && yt)
            rc = parse_label(&c, &c.cells[lcol], lcol, o.label_int, y + (size_t)rows * ysz);
        if (rc < 0)
            break;
        rows++;
    }
    if (rc < 0)
        goto done;
    if (rows == 0) {
        em_set_error(EM_ERR_IO, "%s: no data rows (only a header)", c.path);
        goto done;
    }
    if (!(xv = em_narrow(xt, 0, 0, rows)) || (yt && !(yv = em_narrow(yt, 0, 0, rows))))
        goto done;
    d = em_dataset_from_tensors(xv, yv);
    if (d && o.standardize && em_dataset_require_scaler(d) < 0) {
        em_dataset_free(d);
        d = NULL;
    }
done:
    em_release(xv);
    em_release(yv);
    em_release(xt);
    em_release(yt);
    free(fcols);
    for (int i = 0; c.names && i < c.ncols; i++)
        free(c.names[i]);
    free(c.names);
    free(c.cells);
    free(c.buf);
    return d;
}

static const em_dataset_type_ops csv_type = {
    sizeof(em_dataset_type_ops), "CSV", (int)(sizeof csv_params / sizeof csv_params[0]),
    csv_params, csv_create,
};

int em_data__register_csv(em_registry *reg) { return em_register_dataset(reg, &csv_type); }
