/* tools/ember/plot.c - `ember plot RUN`: a run's loss and accuracy per epoch (metrics.csv)
 * and its last confusion matrix (confusion.csv) as pictures, the ones people look for first
 * in TensorBoard or matplotlib. SVG always (figure.c writes it by hand); PNG too when the
 * tool was built with cairo. Also the confusion picture of `ember eval --plot FILE`. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "figure.h"
#include "train.h"

#define INK 0x222222u
#define GRID 0xe6e6e6u
#define TRAIN_COLOR 0x1f77b4u   /* matplotlib's first two colours */
#define TEST_COLOR 0xff7f0eu
#define MAX_CLASSES 1000

/* ---- reading a run --------------------------------------------------------------------------- */

typedef struct metrics {
    int n;
    double *epoch, *train_loss, *test_loss, *accuracy;
} metrics;

static void metrics_free(metrics *m)
{
    free(m->epoch);
    free(m->train_loss);
    free(m->test_loss);
    free(m->accuracy);
}

/* metrics.csv by its header's column names; 0, or 1 after a message. */
static int metrics_read(const char *path, metrics *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "ember plot: %s: %s\n", path, strerror(errno));
        return 1;
    }
    char line[1024];
    int col[4] = {-1, -1, -1, -1}, cap = 0, rc = 0, lineno = 1;
    static const char *const names[4] = {"epoch", "train_loss", "test_loss", "test_accuracy"};
    if (fgets(line, sizeof line, f)) {
        int i = 0;
        for (char *t = strtok(line, ",\r\n"); t; t = strtok(NULL, ",\r\n"), i++)
            for (int k = 0; k < 4; k++)
                if (!strcmp(t, names[k]))
                    col[k] = i;
    }
    if (col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0) {
        fprintf(stderr, "ember plot: %s: expected the columns epoch, train_loss, test_loss and "
                        "test_accuracy in the first line\n", path);
        fclose(f);
        return 1;
    }
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (strspn(line, " \r\n") == strlen(line))
            continue;
        if (m->n == cap) {
            cap = cap ? 2 * cap : 64;
            double **arrs[4] = {&m->epoch, &m->train_loss, &m->test_loss, &m->accuracy};
            for (int k = 0; k < 4; k++) {
                double *p = realloc(*arrs[k], (size_t)cap * sizeof *p);
                if (!p) {
                    rc = 1;
                    break;
                }
                *arrs[k] = p;
            }
            if (rc) {
                fprintf(stderr, "ember plot: out of memory\n");
                break;
            }
        }
        double v[16];
        int nv = 0;
        char *p = line, *end;
        while (nv < 16) {
            v[nv++] = strtod(p, &end);
            if (end == p)
                v[nv - 1] = NAN;
            p = end + strcspn(end, ",");
            if (*p != ',')
                break;
            p++;
        }
        if (nv <= col[0] || nv <= col[1] || nv <= col[2] || nv <= col[3] || isnan(v[col[0]])) {
            fprintf(stderr, "ember plot: %s:%d: expected %d numbers\n", path, lineno, nv);
            rc = 1;
            break;
        }
        m->epoch[m->n] = v[col[0]];
        m->train_loss[m->n] = v[col[1]];
        m->test_loss[m->n] = v[col[2]];
        m->accuracy[m->n] = 100 * v[col[3]];
        m->n++;
    }
    fclose(f);
    if (!rc && m->n == 0) {
        fprintf(stderr, "ember plot: %s: no epochs yet\n", path);
        rc = 1;
    }
    return rc;
}

int write_confusion_csv(const char *path, const int64_t *m, int64_t classes)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ember: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# confusion matrix of the last epoch's test pass: rows true class, columns "
               "predicted\n");
    for (int64_t i = 0; i < classes; i++)
        for (int64_t j = 0; j < classes; j++)
            fprintf(f, "%lld%c", (long long)m[i * classes + j], j + 1 < classes ? ',' : '\n');
    int bad = ferror(f);
    if (fclose(f) || bad) {
        fprintf(stderr, "ember: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* confusion.csv: n lines of n counts; NULL with *classes 0 when the file is absent. */
static int64_t *confusion_read(const char *path, int64_t *classes, int *rc)
{
    *classes = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    int64_t *m = NULL, n = 0, count = 0, cap = 0, rows = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (!*rc && getline(&line, &lcap, f) > 0) {
        if (line[0] == '#')
            continue;
        int64_t k = 0;
        for (char *p = line, *end;; p = end + 1) {
            long long v = strtoll(p, &end, 10);
            if (end == p || v < 0)
                break;
            if (count == cap) {
                cap = cap ? 2 * cap : 256;
                int64_t *g = realloc(m, (size_t)cap * sizeof *m);
                if (!g)
                    break;
                m = g;
            }
            m[count++] = v;
            k++;
            if (*end != ',')
                break;
        }
        if (rows++ == 0)
            n = k;
        if (k != n || n == 0 || n > MAX_CLASSES || rows > n)
            *rc = 1;
    }
    free(line);
    fclose(f);
    if (*rc || rows != n) {
        fprintf(stderr, "ember plot: %s: expected %lld lines of %lld counts\n", path,
                (long long)n, (long long)n);
        *rc = 1;
        free(m);
        return NULL;
    }
    *classes = n;
    return m;
}

/* ---- drawing ------------------------------------------------------------------------------- */

/* Round steps (1, 2, 2.5, 5 x 10^k; no 2.5 for whole numbers such as epochs) giving about
 * `want` ticks over [lo, hi]. */
static double nice_step(double lo, double hi, int want, bool whole)
{
    double raw = (hi - lo) / want, p = pow(10, floor(log10(raw))), r = raw / p;
    double step = p * (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 && !whole ? 2.5 : r <= 5 ? 5 : 10);
    return whole ? fmax(1, round(step)) : step;
}

typedef struct axes {
    double x0, y0, w, h;            /* the plot area in pixels */
    double xlo, xhi, ylo, yhi;      /* data range */
} axes;

static double px(const axes *a, double x) { return a->x0 + (x - a->xlo) / (a->xhi - a->xlo) * a->w; }
static double py(const axes *a, double y) { return a->y0 + a->h - (y - a->ylo) / (a->yhi - a->ylo) * a->h; }

static void tick_label(char *buf, size_t size, double v, double step)
{
    int digits = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(step * pow(10, digits) - round(step * pow(10, digits))) > 1e-6)
        digits++;
    snprintf(buf, size, "%.*f", digits, fabs(v) < step * 1e-6 ? 0.0 : v);
}

/* Frame, grid, ticks and labels of a chart with epochs along x. */
static void draw_axes(figure *f, axes *a, const char *title, const char *ylabel)
{
    double ystep = nice_step(a->ylo, a->yhi, 5, false);
    a->ylo = floor(a->ylo / ystep) * ystep;
    a->yhi = ceil(a->yhi / ystep - 1e-9) * ystep;
    if (a->yhi <= a->ylo)
        a->yhi = a->ylo + ystep;
    double xstep = nice_step(a->xlo, a->xhi, 8, true);
    char b[32];
    for (double y = a->ylo; y <= a->yhi + ystep * 1e-6; y += ystep) {
        fig_line(f, a->x0, py(a, y), a->x0 + a->w, py(a, y), GRID, 1, false);
        tick_label(b, sizeof b, y, ystep);
        fig_line(f, a->x0 - 5, py(a, y), a->x0, py(a, y), INK, 1, false);
        fig_text(f, a->x0 - 8, py(a, y) + 4, b, 12, 1, false, false, INK);
    }
    for (double x = ceil(a->xlo / xstep) * xstep; x <= a->xhi + 1e-9; x += xstep) {
        fig_line(f, px(a, x), a->y0 + a->h, px(a, x), a->y0 + a->h + 5, INK, 1, false);
        snprintf(b, sizeof b, "%.0f", x);
        fig_text(f, px(a, x), a->y0 + a->h + 19, b, 12, 0, false, false, INK);
    }
    fig_rect(f, a->x0, a->y0, a->w, a->h, FIG_NONE, INK);
    fig_text(f, a->x0 + a->w / 2, 26, title, 16, 0, true, false, INK);
    fig_text(f, a->x0 + a->w / 2, a->y0 + a->h + 42, "epoch", 13, 0, false, false, INK);
    fig_text(f, 20, a->y0 + a->h / 2, ylabel, 13, 0, false, true, INK);
}

static void draw_series(figure *f, const axes *a, const double *x, const double *y, int n,
                        uint32_t color)
{
    double *xy = malloc((size_t)n * 2 * sizeof *xy);
    if (!xy) {
        f->failed = true;
        return;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(y[i])) {
            xy[2 * k] = px(a, x[i]);
            xy[2 * k + 1] = py(a, y[i]);
            k++;
        }
    if (k > 0)
        fig_polyline(f, xy, k, color, 2);
    if (n <= 40)
        for (int i = 0; i < k; i++)
            fig_circle(f, xy[2 * i], xy[2 * i + 1], 3, color);
    free(xy);
}

/* A legend box in the plot's top right (or bottom right: `low`) corner. */
static void draw_legend(figure *f, const axes *a, const char *const *names,
                        const uint32_t *colors, int n, bool low)
{
    size_t longest = 0;
    for (int i = 0; i < n; i++)
        longest = strlen(names[i]) > longest ? strlen(names[i]) : longest;
    /* about 7 px per character of 12 px DejaVu Sans */
    double w = 56 + 7.0 * (double)longest, h = 10 + 20.0 * n, x = a->x0 + a->w - w - 10;
    double y = low ? a->y0 + a->h - h - 10 : a->y0 + 10;
    fig_rect(f, x, y, w, h, 0xffffffu, 0xbbbbbbu);
    for (int i = 0; i < n; i++) {
        double ly = y + 15 + 20.0 * i;
        fig_line(f, x + 10, ly, x + 34, ly, colors[i], 2, false);
        fig_circle(f, x + 22, ly, 3, colors[i]);
        fig_text(f, x + 42, ly + 4, names[i], 12, -1, false, false, INK);
    }
}

static void chart_frame(axes *a, const metrics *m, figure *f)
{
    fig_init(f, 640, 400);
    *a = (axes){.x0 = 72, .y0 = 44, .w = 540, .h = 290};
    a->xlo = m->epoch[0];
    a->xhi = m->epoch[m->n - 1];
    for (int i = 0; i < m->n; i++) {
        a->xlo = fmin(a->xlo, m->epoch[i]);
        a->xhi = fmax(a->xhi, m->epoch[i]);
    }
    if (a->xhi - a->xlo < 1) {    /* one epoch: room on both sides */
        a->xlo -= 1;
        a->xhi += 1;
    }
}

static void range_of(const double *v, int n, double *lo, double *hi)
{
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            *lo = fmin(*lo, v[i]);
            *hi = fmax(*hi, v[i]);
        }
}

static void loss_chart(figure *f, const metrics *m, const char *name)
{
    axes a;
    chart_frame(&a, m, f);
    double lo = INFINITY, hi = -INFINITY;
    range_of(m->train_loss, m->n, &lo, &hi);
    range_of(m->test_loss, m->n, &lo, &hi);
    a.ylo = 0;
    a.yhi = isfinite(hi) && hi > 0 ? hi * 1.05 : 1;
    char title[192];
    snprintf(title, sizeof title, "%s: loss per epoch", name);
    draw_axes(f, &a, title, "loss");
    draw_series(f, &a, m->epoch, m->train_loss, m->n, TRAIN_COLOR);
    draw_series(f, &a, m->epoch, m->test_loss, m->n, TEST_COLOR);
    draw_legend(f, &a, (const char *const[]){"train loss", "test loss"},
                (const uint32_t[]){TRAIN_COLOR, TEST_COLOR}, 2, false);
}

static void accuracy_chart(figure *f, const metrics *m, const char *name)
{
    axes a;
    chart_frame(&a, m, f);
    double lo = INFINITY, hi = -INFINITY;
    range_of(m->accuracy, m->n, &lo, &hi);
    a.ylo = isfinite(lo) ? fmax(0, lo - 0.05 * fmax(hi - lo, 1)) : 0;
    a.yhi = isfinite(hi) ? fmin(100, hi + 0.05 * fmax(hi - lo, 1)) : 100;
    if (a.yhi - a.ylo < 1) {
        a.ylo = fmax(0, a.ylo - 1);
        a.yhi = fmin(100, a.yhi + 1);
    }
    int best = 0;
    for (int i = 1; i < m->n; i++)
        if (m->accuracy[i] > m->accuracy[best])
            best = i;
    char title[192], note[64];
    snprintf(title, sizeof title, "%s: test accuracy per epoch", name);
    draw_axes(f, &a, title, "test accuracy (%)");
    fig_line(f, px(&a, m->epoch[best]), a.y0, px(&a, m->epoch[best]), a.y0 + a.h, 0x999999u, 1,
             true);
    draw_series(f, &a, m->epoch, m->accuracy, m->n, TRAIN_COLOR);
    snprintf(note, sizeof note, "best %.2f%% (epoch %.0f)", m->accuracy[best], m->epoch[best]);
    draw_legend(f, &a, (const char *const[]){"test accuracy", note},
                (const uint32_t[]){TRAIN_COLOR, 0x999999u}, 2, true);
}

/* White to matplotlib's "Blues" dark end, by t in [0, 1]. */
static uint32_t blues(double t)
{
    static const double lo[3] = {247, 251, 255}, hi[3] = {8, 48, 107};
    uint32_t c = 0;
    for (int k = 0; k < 3; k++)
        c = c << 8 | (uint32_t)(lo[k] + (hi[k] - lo[k]) * t + 0.5);
    return c;
}

static void confusion_chart(figure *f, const int64_t *m, int64_t n, const char *title)
{
    double cell = fmax(6, fmin(80, 480.0 / (double)n)), side = cell * (double)n;
    double x0 = 90, y0 = 60;
    /* wide enough for the title: about 9.5 px per character of 15 px bold */
    double width = fmax(x0 + side + 130, 9.5 * (double)strlen(title) + 40);
    fig_init(f, width, y0 + side + 70);
    bool numbers = cell >= 22, labels = cell >= 14 || n <= 40;
    char b[32];
    for (int64_t i = 0; i < n; i++) {
        int64_t row = 0;
        for (int64_t j = 0; j < n; j++)
            row += m[i * n + j];
        for (int64_t j = 0; j < n; j++) {
            /* shade by the share of the true class, so rare classes read as clearly */
            double t = row ? (double)m[i * n + j] / (double)row : 0;
            double x = x0 + cell * (double)j, y = y0 + cell * (double)i;
            fig_rect(f, x, y, cell, cell, blues(t), 0xffffffu);
            if (numbers && m[i * n + j]) {
                snprintf(b, sizeof b, "%lld", (long long)m[i * n + j]);
                fig_text(f, x + cell / 2, y + cell / 2 + 4, b, cell >= 60 ? 14 : cell >= 36 ? 12 : 9,
                         0, false, false, t > 0.5 ? 0xffffffu : INK);
            }
        }
        if (labels && (n <= 40 || i % (n / 20 + 1) == 0)) {
            snprintf(b, sizeof b, "%lld", (long long)i);
            fig_text(f, x0 - 6, y0 + cell * ((double)i + 0.5) + 4, b, 11, 1, false, false, INK);
            fig_text(f, x0 + cell * ((double)i + 0.5), y0 + side + 16, b, 11, 0, false, false,
                     INK);
        }
    }
    fig_rect(f, x0, y0, side, side, FIG_NONE, INK);
    fig_text(f, width / 2, 28, title, 15, 0, true, false, INK);
    fig_text(f, x0 + side / 2, y0 + side + 40, "predicted class", 13, 0, false, false, INK);
    fig_text(f, 40, y0 + side / 2, "true class", 13, 0, false, true, INK);
    /* the colour scale */
    double bx = x0 + side + 30, bh = fmin(side, 240);
    for (int k = 0; k < 20; k++)
        fig_rect(f, bx, y0 + bh * (19 - k) / 20, 16, bh / 20 + 0.5, blues((k + 0.5) / 20),
                 FIG_NONE);
    fig_rect(f, bx, y0, 16, bh, FIG_NONE, INK);
    for (int k = 0; k <= 4; k++) {
        snprintf(b, sizeof b, "%d%%", 25 * k);
        fig_text(f, bx + 22, y0 + bh * (4 - k) / 4 + 4, b, 11, -1, false, false, INK);
    }
    fig_text(f, bx + 8, y0 + bh + 18, "of the row", 11, 0, false, false, INK);
}

/* Writes stem.svg (and stem.png with cairo); prints each file. 0, or 1 after a message. */
static int save(const figure *f, const char *stem)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.svg", stem);
    if (fig_write_svg(f, path) < 0) {
        fprintf(stderr, "ember plot: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("wrote %s", path);
    snprintf(path, sizeof path, "%s.png", stem);
    int rc = fig_write_png(f, path);
    if (rc == -1) {
        fprintf(stderr, "\nember plot: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf(rc == 0 ? " and %s\n" : "\n", path);
    return 0;
}

int plot_confusion_file(const char *path, const int64_t *m, int64_t classes, const char *title)
{
    figure f;
    confusion_chart(&f, m, classes, title);
    size_t n = strlen(path);
    int rc;
    if (n > 4 && !strcmp(path + n - 4, ".png")) {
        rc = fig_write_png(&f, path);
        if (rc == -2)
            fprintf(stderr, "ember: %s: this ember was built without cairo; write .svg\n", path);
        else if (rc < 0)
            fprintf(stderr, "ember: cannot write %s: %s\n", path, strerror(errno));
    } else {
        rc = fig_write_svg(&f, path);
        if (rc < 0)
            fprintf(stderr, "ember: cannot write %s: %s\n", path, strerror(errno));
    }
    fig_free(&f);
    return rc < 0 ? 1 : 0;
}

/* The run's name for titles: "digits/version_2" from "runs/digits/version_2". */
static const char *run_name(const char *dir)
{
    const char *p = dir + strlen(dir);
    while (p > dir && p[-1] == '/')
        p--;
    int slashes = 0;
    while (p > dir && !(p[-1] == '/' && ++slashes == 2))
        p--;
    return !strncmp(p, "runs/", 5) ? p + 5 : p;
}

int plot_run(const char *run_dir)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], stem[PATH_MAX + 32];
    struct stat st;
    errno = 0;
    if (stat(run_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ember plot: %s: %s (expected a run folder such as runs/digits)\n",
                run_dir, errno ? strerror(errno) : "not a folder");
        return 1;
    }
    if (run_dir_latest(run_dir, dir, sizeof dir) < 0) {
        fprintf(stderr, "ember plot: %s: path too long\n", run_dir);
        return 1;
    }
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    metrics m;
    if (metrics_read(path, &m))
        return 1;
    const char *name = run_name(dir);
    figure f;
    loss_chart(&f, &m, name);
    snprintf(stem, sizeof stem, "%s/loss", dir);
    int rc = save(&f, stem);
    fig_free(&f);
    if (!rc) {
        accuracy_chart(&f, &m, name);
        snprintf(stem, sizeof stem, "%s/accuracy", dir);
        rc = save(&f, stem);
        fig_free(&f);
    }
    metrics_free(&m);
    int64_t classes;
    snprintf(path, sizeof path, "%s/confusion.csv", dir);
    int64_t *cm = rc ? NULL : confusion_read(path, &classes, &rc);
    if (cm) {
        char title[256];
        snprintf(title, sizeof title, "%s: confusion matrix, last epoch", name);
        confusion_chart(&f, cm, classes, title);
        snprintf(stem, sizeof stem, "%s/confusion", dir);
        rc = save(&f, stem);
        fig_free(&f);
        free(cm);
    }
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

const cli_cmd cli_plot = {
    .name = "plot", .synopsis = "RUN",
    .summary = "draw a run's loss, accuracy and confusion matrix (SVG, PNG)",
    .about = "Reads RUN/metrics.csv and RUN/confusion.csv and writes loss.svg, accuracy.svg\n"
             "and confusion.svg next to them (and .png files when ember was built with\n"
             "cairo). RUN is a run folder (runs/digits/version_0) or a folder of numbered\n"
             "runs (runs/digits: the latest). `ember train` does this at its end.",
    .opts = NULL, .nopts = 0, .min_positional = 1, .max_positional = 1,
    .positional_name = "RUN (a run folder such as runs/digits)",
    .examples = "ember plot runs/digits\nember plot runs/digits/version_0",
};

int cmd_plot(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&cli_plot, argc, argv, &a);
    return rc >= 0 ? rc : plot_run(a.pos[0]);
}
