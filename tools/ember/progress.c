/* tools/ember/progress.c - a progress bar in the manner of tqdm's:
 *
 *   epoch 3/20  47%|#########          | 21/45 [00:01<00:01, 1534 samples/s, loss 0.2170]
 *
 * It fits the terminal (TIOCGWINSZ; 80 columns when stdout's width is unknown), never writes
 * the last column (terminals that wrap there would scroll), and redraws at most ten times a
 * second. When stdout is not a terminal it draws nothing: the caller prints one line per epoch.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "train.h"

#define MIN_INTERVAL 0.1   /* seconds between redraws */

int cli_terminal_width(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO))
        return 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

void progress_start(progress *p, bool on)
{
    memset(p, 0, sizeof *p);
    p->on = on;
    p->cols = on && cli_terminal_width() > 0 ? cli_terminal_width() : 80;
    p->t0 = cli_now();
    p->last = -1;
}

/* "mm:ss", or "h:mm:ss" from an hour on; "?" before anything is known. */
static const char *clock_text(double s, char *buf, size_t size)
{
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, size, "?");
        return buf;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%02ld:%02ld", t / 60, t % 60);
    return buf;
}

void progress_update(progress *p, const char *label, int64_t done, int64_t total,
                     int64_t samples, double loss)
{
    if (!p->on)
        return;
    double t = cli_now();
    if (done < total && p->last >= 0 && t - p->last < MIN_INTERVAL)
        return;
    p->last = t;
    p->draws++;
    double el = t - p->t0, rate = el > 0 ? (double)samples / el : 0;
    double eta = done > 0 ? el / (double)done * (double)(total - done) : -1;
    char e1[32], e2[32], left[64], right[128];
    int pct = total > 0 ? (int)(100 * done / total) : 100;
    snprintf(left, sizeof left, "%s %3d%%|", label, pct);
    snprintf(right, sizeof right, "| %lld/%lld [%s<%s, %.0f samples/s, loss %.4f]",
             (long long)done, (long long)total, clock_text(el, e1, sizeof e1),
             clock_text(eta, e2, sizeof e2), rate, loss);
    int room = p->cols - 1 - (int)strlen(left) - (int)strlen(right);
    char line[512];
    if (room >= 4) {
        int width = room > 60 ? 60 : room, fill = total > 0 ? (int)(width * done / total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : ' ';
        bar[width] = '\0';
        snprintf(line, sizeof line, "%s%s%s", left, bar, right);
    } else {
        /* a narrow terminal: the numbers without the bar, cut to fit */
        snprintf(line, sizeof line, "%s %lld/%lld loss %.4f", label, (long long)done,
                 (long long)total, loss);
        if ((int)strlen(line) > p->cols - 1)
            line[p->cols > 1 ? p->cols - 1 : 0] = '\0';
    }
    fprintf(stdout, "\r%s\033[K", line);
    fflush(stdout);
}

void progress_clear(progress *p)
{
    if (p->on && p->draws) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
    }
}
