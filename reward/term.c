/* reward/term.c: raw-mode terminal I/O for `reward label` (see term.h). */
#include "term.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved;          /* the terminal as we found it */
static volatile sig_atomic_t raw_on;  /* raw mode is active */
static volatile sig_atomic_t resized; /* SIGWINCH seen */
static int tty_fd = -1;

static void restore(void) {
    if (raw_on) {
        tcsetattr(tty_fd, TCSAFLUSH, &saved);
        raw_on = 0;
    }
}

static void on_winch(int sig) {
    (void)sig;
    resized = 1;
}

/* SIGINT/SIGTERM/SIGHUP: restore the terminal, then die of the same signal. */
static void on_fatal(int sig) {
    restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void update_size(term_t *t) {
    struct winsize ws;
    if (t->tty && ioctl(fileno(t->out), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        t->rows = ws.ws_row;
        t->cols = ws.ws_col;
    }
}

void term_open(term_t *t, int in, FILE *out) {
    *t = (term_t){.in = in, .out = out, .rows = 24, .cols = 80};
    t->tty = isatty(in) && isatty(fileno(out));
    const char *nc = getenv("NO_COLOR");
    t->color = t->tty && !(nc && nc[0]);
    if (!t->tty) return;
    update_size(t);
    if (tcgetattr(in, &saved) != 0) {
        t->tty = t->color = false;
        return;
    }
    tty_fd = in;
    struct termios raw = saved;
    raw.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN); /* ISIG stays: Ctrl-C still signals */
    raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    struct sigaction sa = {0};
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct sigaction sw = {0};
    sw.sa_handler = on_winch; /* no SA_RESTART: a blocked read returns EINTR on a resize */
    sigemptyset(&sw.sa_mask);
    sigaction(SIGWINCH, &sw, NULL);
    if (tcsetattr(in, TCSAFLUSH, &raw) == 0) raw_on = 1;
    atexit(restore);
}

void term_close(term_t *t) {
    if (t->tty) {
        restore();
        fflush(t->out);
    }
}

bool term_resized(term_t *t) {
    if (!resized) return false;
    resized = 0;
    update_size(t);
    return true;
}

const char *term_bold(const term_t *t) {
    return t->color ? "\x1b[1m" : "";
}
const char *term_plain(const term_t *t) {
    return t->color ? "\x1b[0m" : "";
}

void term_clear(term_t *t) {
    if (t->tty) fputs("\x1b[H\x1b[2J", t->out);
}

/* One byte from the terminal: the byte, -1 at end of input / Ctrl-D handled by caller, -2 when
 * a resize interrupted the wait. */
static int read_byte(term_t *t) {
    for (;;) {
        if (resized) return -2;
        unsigned char c;
        const ssize_t n = read(t->in, &c, 1);
        if (n == 1) return c;
        if (n == 0) return -1;
        if (errno != EINTR) return -1;
    }
}

/* Swallows the rest of an escape sequence (arrow keys, function keys, bracketed paste marks). */
static void skip_escape(term_t *t) {
    int c = read_byte(t);
    if (c == '[' || c == 'O') {
        while ((c = read_byte(t)) >= 0)
            if (c >= 0x40 && c <= 0x7E) break;
    }
}

static void redraw_line(term_t *t, const char *prompt, const char *buf) {
    fprintf(t->out, "\r\x1b[K%s%s", prompt, buf);
    fflush(t->out);
}

term_event_t term_readline(term_t *t, const char *prompt, char *buf, size_t size) {
    if (!t->tty) {
        fputs(prompt, t->out);
        fflush(t->out);
        if (!fgets(buf, (int)size, stdin)) {
            buf[0] = '\0';
            return TERM_EOF;
        }
        size_t n = strlen(buf);
        if (n && buf[n - 1] == '\n')
            buf[--n] = '\0';
        else if (n == size - 1) { /* an overlong line: drop its rest */
            int c;
            while ((c = getchar()) != EOF && c != '\n') {
            }
        }
        if (n && buf[n - 1] == '\r') buf[--n] = '\0';
        fputc('\n', t->out);
        return TERM_LINE;
    }
    size_t n = strnlen(buf, size - 1);
    buf[n] = '\0';
    redraw_line(t, prompt, buf);
    for (;;) {
        const int c = read_byte(t);
        if (c == -2) {
            update_size(t);
            resized = 0;
            return TERM_RESIZE;
        }
        if (c < 0) return TERM_EOF;
        if (c == '\r' || c == '\n') {
            fputs("\r\n", t->out);
            fflush(t->out);
            return TERM_LINE;
        }
        if (c == 4 && n == 0) return TERM_EOF; /* Ctrl-D */
        if (c == 0x7F || c == 8) {             /* Backspace: a whole UTF-8 character */
            while (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0x80) n--;
            if (n > 0) n--;
        } else if (c == 0x15) { /* Ctrl-U */
            n = 0;
        } else if (c == 0x17) { /* Ctrl-W: the last word */
            while (n > 0 && buf[n - 1] == ' ') n--;
            while (n > 0 && buf[n - 1] != ' ') n--;
        } else if (c == 0x1b) {
            skip_escape(t);
        } else if (c >= 0x20 && n + 1 < size) { /* printable ASCII or a UTF-8 byte */
            buf[n++] = (char)c;
        }
        buf[n] = '\0';
        redraw_line(t, prompt, buf);
    }
}

term_event_t term_page(term_t *t, const char *const *lines, const size_t *lens, size_t n,
                       int reserve, char *typed, size_t size) {
    typed[0] = '\0';
    const size_t page = t->rows - reserve > 3 ? (size_t)(t->rows - reserve - 1) : 3;
    size_t i = 0;
    while (i < n) {
        const size_t end = !t->tty || n - i <= page + 1 ? n : i + page;
        for (; i < end; i++) {
            fwrite(lines[i], 1, lens[i], t->out);
            fputs(t->tty ? "\r\n" : "\n", t->out);
        }
        if (i >= n) break;
        /* short enough for 40 columns: a wrapped status line would push the page up */
        fprintf(t->out, "%s-- more %zu/%zu: Space, or type your answer --%s", term_bold(t), i, n,
                term_plain(t));
        fflush(t->out);
        const int c = read_byte(t);
        fputs("\r\x1b[K", t->out);
        if (c == -2) {
            update_size(t);
            resized = 0;
            return TERM_RESIZE;
        }
        if (c < 0 || c == 3 || c == 4) return TERM_EOF;
        if (c == ' ' || c == '\r' || c == '\n') continue;
        if (c >= 0x20 && c != 0x7F) { /* the start of an answer: keep it, show the rest */
            typed[0] = (char)c;
            typed[1] = '\0';
            (void)size;
            for (; i < n; i++) {
                fwrite(lines[i], 1, lens[i], t->out);
                fputs("\r\n", t->out);
            }
            break;
        }
        if (c == 0x1b) skip_escape(t);
    }
    fflush(t->out);
    return TERM_LINE;
}
