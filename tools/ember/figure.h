/* tools/ember/figure.h - a small retained drawing (lines, polylines, rectangles, circles,
 * text) that plot.c fills once and figure.c writes as SVG by hand, or paints as PNG through
 * cairo when the tool was built with it. Not a plotting library: just enough for line charts
 * and a confusion matrix. */
#ifndef EMBER_TOOL_FIGURE_H
#define EMBER_TOOL_FIGURE_H

#include <stdbool.h>
#include <stdint.h>

#define FIG_NONE 0xFFFFFFFFu   /* no fill / no stroke; other colours are 0xRRGGBB */

typedef enum { FIG_LINE, FIG_POLYLINE, FIG_RECT, FIG_CIRCLE, FIG_TEXT } fig_kind;

typedef struct fig_shape {
    fig_kind kind;
    double x, y, w, h;        /* line: (x,y)-(w,h); rect: corner and size; circle: centre, r=w */
    double *pts;              /* polyline: x0,y0,x1,y1,... (owned) */
    int npts;
    uint32_t fill, stroke;
    double line_width;
    bool dashed;
    char *text;               /* owned */
    double size;              /* font size in px */
    int anchor;               /* -1 start, 0 middle, 1 end */
    bool bold, vertical;      /* vertical: rotated 90 degrees counter-clockwise */
} fig_shape;

typedef struct figure {
    double width, height;
    fig_shape *v;
    int n, cap;
    bool failed;              /* out of memory while drawing */
} figure;

void fig_init(figure *f, double width, double height);
void fig_free(figure *f);
void fig_line(figure *f, double x1, double y1, double x2, double y2, uint32_t color, double lw,
              bool dashed);
void fig_polyline(figure *f, const double *xy, int n, uint32_t color, double lw);
void fig_rect(figure *f, double x, double y, double w, double h, uint32_t fill, uint32_t stroke);
void fig_circle(figure *f, double x, double y, double r, uint32_t fill);
void fig_text(figure *f, double x, double y, const char *text, double size, int anchor,
              bool bold, bool vertical, uint32_t color);

/* Writes the figure; 0, or -1 with errno set (a message is the caller's). */
int fig_write_svg(const figure *f, const char *path);
/* PNG through cairo: 0, -1 on failure, -2 when the tool was built without cairo. */
int fig_write_png(const figure *f, const char *path);
bool fig_png_available(void);

#endif
