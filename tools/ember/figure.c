/* tools/ember/figure.c - the retained drawing of figure.h, written as SVG (by hand, no
 * library) or painted as PNG with cairo (optional: EMBER_HAVE_CAIRO). */
#include "figure.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef EMBER_HAVE_CAIRO
#include <cairo.h>
#endif

#define FONT "DejaVu Sans"

void fig_init(figure *f, double width, double height)
{
    memset(f, 0, sizeof *f);
    f->width = width;
    f->height = height;
}

void fig_free(figure *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->v[i].pts);
        free(f->v[i].text);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

static fig_shape *add(figure *f, fig_kind k)
{
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        fig_shape *v = realloc(f->v, (size_t)cap * sizeof *v);
        if (!v) {
            f->failed = true;
            return NULL;
        }
        f->v = v;
        f->cap = cap;
    }
    fig_shape *s = &f->v[f->n++];
    memset(s, 0, sizeof *s);
    s->kind = k;
    s->fill = s->stroke = FIG_NONE;
    s->line_width = 1;
    return s;
}

void fig_line(figure *f, double x1, double y1, double x2, double y2, uint32_t color, double lw,
              bool dashed)
{
    fig_shape *s = add(f, FIG_LINE);
    if (s)
        *s = (fig_shape){.kind = FIG_LINE, .x = x1, .y = y1, .w = x2, .h = y2, .fill = FIG_NONE,
                         .stroke = color, .line_width = lw, .dashed = dashed};
}

void fig_polyline(figure *f, const double *xy, int n, uint32_t color, double lw)
{
    fig_shape *s = add(f, FIG_POLYLINE);
    if (!s)
        return;
    s->pts = malloc((size_t)n * 2 * sizeof *s->pts);
    if (!s->pts) {
        f->n--;
        f->failed = true;
        return;
    }
    memcpy(s->pts, xy, (size_t)n * 2 * sizeof *xy);
    s->npts = n;
    s->stroke = color;
    s->line_width = lw;
}

void fig_rect(figure *f, double x, double y, double w, double h, uint32_t fill, uint32_t stroke)
{
    fig_shape *s = add(f, FIG_RECT);
    if (s)
        *s = (fig_shape){.kind = FIG_RECT, .x = x, .y = y, .w = w, .h = h, .fill = fill,
                         .stroke = stroke, .line_width = 1};
}

void fig_circle(figure *f, double x, double y, double r, uint32_t fill)
{
    fig_shape *s = add(f, FIG_CIRCLE);
    if (s)
        *s = (fig_shape){.kind = FIG_CIRCLE, .x = x, .y = y, .w = r, .fill = fill,
                         .stroke = FIG_NONE};
}

void fig_text(figure *f, double x, double y, const char *text, double size, int anchor,
              bool bold, bool vertical, uint32_t color)
{
    fig_shape *s = add(f, FIG_TEXT);
    if (!s)
        return;
    *s = (fig_shape){.kind = FIG_TEXT, .x = x, .y = y, .fill = color, .stroke = FIG_NONE,
                     .size = size, .anchor = anchor, .bold = bold, .vertical = vertical};
    if (!(s->text = strdup(text))) {
        f->n--;
        f->failed = true;
    }
}

/* ---- SVG ------------------------------------------------------------------------------------ */

static void svg_color(FILE *o, const char *attr, uint32_t c)
{
    if (c == FIG_NONE)
        fprintf(o, " %s=\"none\"", attr);
    else
        fprintf(o, " %s=\"#%06x\"", attr, c & 0xFFFFFFu);
}

static void svg_escaped(FILE *o, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        default: fputc(*s, o);
        }
}

int fig_write_svg(const figure *f, const char *path)
{
    if (f->failed) {
        errno = ENOMEM;
        return -1;
    }
    FILE *o = fopen(path, "w");
    if (!o)
        return -1;
    fprintf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "viewBox=\"0 0 %g %g\" font-family=\"%s, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
            f->width, f->height, f->width, f->height, FONT);
    for (int i = 0; i < f->n; i++) {
        const fig_shape *s = &f->v[i];
        switch (s->kind) {
        case FIG_LINE:
            fprintf(o, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"", s->x, s->y, s->w,
                    s->h);
            svg_color(o, "stroke", s->stroke);
            fprintf(o, " stroke-width=\"%g\"%s/>\n", s->line_width,
                    s->dashed ? " stroke-dasharray=\"4 3\"" : "");
            break;
        case FIG_POLYLINE:
            fprintf(o, "<polyline points=\"");
            for (int k = 0; k < s->npts; k++)
                fprintf(o, "%s%.2f,%.2f", k ? " " : "", s->pts[2 * k], s->pts[2 * k + 1]);
            fprintf(o, "\" fill=\"none\"");
            svg_color(o, "stroke", s->stroke);
            fprintf(o, " stroke-width=\"%g\" stroke-linejoin=\"round\"/>\n", s->line_width);
            break;
        case FIG_RECT:
            fprintf(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"", s->x, s->y,
                    s->w, s->h);
            svg_color(o, "fill", s->fill);
            svg_color(o, "stroke", s->stroke);
            fprintf(o, "/>\n");
            break;
        case FIG_CIRCLE:
            fprintf(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%g\"", s->x, s->y, s->w);
            svg_color(o, "fill", s->fill);
            fprintf(o, "/>\n");
            break;
        case FIG_TEXT:
            fprintf(o, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"%g\" text-anchor=\"%s\"%s", s->x,
                    s->y, s->size,
                    s->anchor < 0 ? "start" : s->anchor > 0 ? "end" : "middle",
                    s->bold ? " font-weight=\"bold\"" : "");
            svg_color(o, "fill", s->fill);
            if (s->vertical)
                fprintf(o, " transform=\"rotate(-90 %.2f %.2f)\"", s->x, s->y);
            fprintf(o, ">");
            svg_escaped(o, s->text);
            fprintf(o, "</text>\n");
            break;
        }
    }
    fprintf(o, "</svg>\n");
    int bad = ferror(o);
    return fclose(o) || bad ? -1 : 0;
}

/* ---- PNG (cairo) ------------------------------------------------------------------------------ */

#ifdef EMBER_HAVE_CAIRO
static void set_color(cairo_t *cr, uint32_t c)
{
    cairo_set_source_rgb(cr, ((c >> 16) & 255) / 255.0, ((c >> 8) & 255) / 255.0,
                         (c & 255) / 255.0);
}

static void paint(cairo_t *cr, const fig_shape *s)
{
    switch (s->kind) {
    case FIG_LINE:
    case FIG_POLYLINE:
        if (s->kind == FIG_LINE) {
            cairo_move_to(cr, s->x, s->y);
            cairo_line_to(cr, s->w, s->h);
        } else {
            for (int k = 0; k < s->npts; k++)
                (k ? cairo_line_to : cairo_move_to)(cr, s->pts[2 * k], s->pts[2 * k + 1]);
        }
        cairo_set_line_width(cr, s->line_width);
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
        cairo_set_dash(cr, (const double[]){4, 3}, s->dashed ? 2 : 0, 0);
        set_color(cr, s->stroke);
        cairo_stroke(cr);
        break;
    case FIG_RECT:
        cairo_rectangle(cr, s->x, s->y, s->w, s->h);
        if (s->fill != FIG_NONE) {
            set_color(cr, s->fill);
            cairo_fill_preserve(cr);
        }
        if (s->stroke != FIG_NONE) {
            cairo_set_line_width(cr, 1);
            cairo_set_dash(cr, NULL, 0, 0);
            set_color(cr, s->stroke);
            cairo_stroke_preserve(cr);
        }
        cairo_new_path(cr);
        break;
    case FIG_CIRCLE:
        cairo_arc(cr, s->x, s->y, s->w, 0, 2 * M_PI);
        set_color(cr, s->fill);
        cairo_fill(cr);
        break;
    case FIG_TEXT: {
        cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                               s->bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
        cairo_set_font_size(cr, s->size);
        cairo_text_extents_t e;
        cairo_text_extents(cr, s->text, &e);
        double dx = s->anchor < 0 ? 0 : s->anchor > 0 ? -e.x_advance : -e.x_advance / 2;
        cairo_save(cr);
        cairo_translate(cr, s->x, s->y);
        if (s->vertical)
            cairo_rotate(cr, -M_PI / 2);
        cairo_move_to(cr, dx, 0);
        set_color(cr, s->fill);
        cairo_show_text(cr, s->text);
        cairo_restore(cr);
        break;
    }
    }
}

int fig_write_png(const figure *f, const char *path)
{
    const double scale = 2;   /* sharp on high-density screens and in documents */
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)(f->width * scale),
                                                     (int)(f->height * scale));
    cairo_t *cr = cairo_create(sf);
    cairo_scale(cr, scale, scale);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    for (int i = 0; i < f->n; i++)
        paint(cr, &f->v[i]);
    cairo_status_t st = cairo_status(cr);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_write_to_png(sf, path);
    cairo_destroy(cr);
    cairo_surface_destroy(sf);
    if (st != CAIRO_STATUS_SUCCESS && !errno)
        errno = EIO;
    return st == CAIRO_STATUS_SUCCESS && !f->failed ? 0 : -1;
}

bool fig_png_available(void) { return true; }
#else
int fig_write_png(const figure *f, const char *path)
{
    (void)f;
    (void)path;
    return -2;
}

bool fig_png_available(void) { return false; }
#endif
