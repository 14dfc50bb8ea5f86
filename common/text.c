/* common/text.c: terminal-safe model text and wrapping (see text.h). */
#include "text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int32_t text_utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    const unsigned char c = u[*i];
    if (c < 0x80) {
        (*i)++;
        return c;
    }
    int len = 0;
    int32_t cp = 0;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; /* no overlong 3-byte forms */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        if (c == 0xF0) lo = 0x90; /* no overlong 4-byte forms */
        if (c == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        (*i)++;
        return -1;
    }
    if (*i + (size_t)len > n) {
        (*i)++;
        return -1;
    }
    for (int k = 1; k < len; k++) {
        const unsigned char d = u[*i + (size_t)k];
        if (k == 1 ? (d < lo || d > hi) : (d & 0xC0) != 0x80) {
            (*i)++;
            return -1;
        }
        cp = (cp << 6) | (d & 0x3F);
    }
    *i += (size_t)len;
    return cp;
}

typedef struct {
    int32_t lo, hi;
} range_t;

static bool in_ranges(int32_t cp, const range_t *r, size_t n) {
    size_t a = 0, b = n; /* binary search over sorted, disjoint ranges */
    while (a < b) {
        const size_t m = (a + b) / 2;
        if (cp < r[m].lo)
            b = m;
        else if (cp > r[m].hi)
            a = m + 1;
        else
            return true;
    }
    return false;
}

/* East Asian Wide (W) and Fullwidth (F) blocks of Unicode 15 (EastAsianWidth.txt), merged into
 * ranges, with the emoji blocks terminals draw 2 cells wide. */
static const range_t WIDE[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x3029},
    {0x302E, 0x303E},   {0x3041, 0x3098},   {0x309B, 0x33FF},   {0x3400, 0x4DBF},
    {0x4E00, 0xA4CF},   {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
    {0xFE10, 0xFE19},   {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},
    {0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004},
    {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F202},
    {0x1F210, 0x1F23B}, {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1F260, 0x1F265},
    {0x1F300, 0x1F320}, {0x1F32D, 0x1F335}, {0x1F337, 0x1F37C}, {0x1F37E, 0x1F393},
    {0x1F3A0, 0x1F3CA}, {0x1F3CF, 0x1F3D3}, {0x1F3E0, 0x1F3F0}, {0x1F3F4, 0x1F3F4},
    {0x1F3F8, 0x1F43E}, {0x1F440, 0x1F440}, {0x1F442, 0x1F4FC}, {0x1F4FF, 0x1F53D},
    {0x1F54B, 0x1F54E}, {0x1F550, 0x1F567}, {0x1F57A, 0x1F57A}, {0x1F595, 0x1F596},
    {0x1F5A4, 0x1F5A4}, {0x1F5FB, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x1F6CC, 0x1F6CC},
    {0x1F6D0, 0x1F6D2}, {0x1F6D5, 0x1F6D7}, {0x1F6DC, 0x1F6DF}, {0x1F6EB, 0x1F6EC},
    {0x1F6F4, 0x1F6FC}, {0x1F7E0, 0x1F7EB}, {0x1F7F0, 0x1F7F0}, {0x1F90C, 0x1F93A},
    {0x1F93C, 0x1F945}, {0x1F947, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD},
    {0x30000, 0x3FFFD},
};

/* Combining marks, Hangul medial/final jamo and zero-width characters: no cell of their own. */
static const range_t ZERO[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489},   {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7},   {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC}, {0x06DF, 0x06E4},   {0x06E7, 0x06E8}, {0x06EA, 0x06ED}, {0x0900, 0x0902},
    {0x093A, 0x093A}, {0x093C, 0x093C},   {0x0941, 0x0948}, {0x094D, 0x094D}, {0x0E31, 0x0E31},
    {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},   {0x1160, 0x11FF}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
    {0x200B, 0x200F}, {0x20D0, 0x20FF},   {0x302A, 0x302D}, {0x3099, 0x309A}, {0xFE00, 0xFE0F},
    {0xFE20, 0xFE2F}, {0xE0100, 0xE01EF},
};

/* Characters that reorder or hide the text around them (bidi embeddings, overrides and
 * isolates, zero-width characters, tags, line/paragraph separators): shown as <U+XXXX>. */
static const range_t HIDDEN[] = {
    {0x061C, 0x061C}, {0x200B, 0x200F}, {0x2028, 0x202E}, {0x2060, 0x2064},
    {0x2066, 0x2069}, {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0xE0000, 0xE007F},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

int text_cp_width(int32_t cp) {
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return 0;
    if (cp < 0x300) return 1;
    if (in_ranges(cp, ZERO, N_OF(ZERO))) return 0;
    if (in_ranges(cp, WIDE, N_OF(WIDE))) return 2;
    return 1;
}

size_t text_width(const char *s, size_t n) {
    size_t i = 0, w = 0;
    while (i < n) {
        const int32_t cp = text_utf8_next(s, n, &i);
        w += cp < 0 ? 1 : (size_t)text_cp_width(cp);
    }
    return w;
}

size_t text_visible(const char *s, size_t n, bool keep_newlines, char *out) {
    size_t i = 0, k = 0;
    while (i < n) {
        const size_t at = i;
        const int32_t cp = text_utf8_next(s, n, &i);
        if (cp < 0) {
            k += (size_t)sprintf(out + k, "\\x%02X", (unsigned)(unsigned char)s[at]);
        } else if (cp == '\n' && keep_newlines) {
            out[k++] = '\n';
        } else if (cp == '\t') {
            out[k++] = ' ';
        } else if (cp < 0x20 || cp == 0x7F) {
            out[k++] = '^';
            out[k++] = (char)(cp == 0x7F ? '?' : cp + 0x40);
        } else if ((cp >= 0x80 && cp < 0xA0) || in_ranges(cp, HIDDEN, N_OF(HIDDEN))) {
            k += (size_t)sprintf(out + k, "<U+%04X>", (unsigned)cp);
        } else {
            memcpy(out + k, s + at, i - at);
            k += i - at;
        }
    }
    out[k] = '\0';
    return k;
}

static int push_line(text_lines_t *l, size_t start, size_t len) {
    if (l->n == l->cap) {
        const int64_t cap = l->cap ? 2 * l->cap : 16;
        size_t *s = realloc(l->start, (size_t)cap * sizeof *s);
        if (!s) return -1;
        l->start = s;
        size_t *n = realloc(l->len, (size_t)cap * sizeof *n);
        if (!n) return -1;
        l->len = n;
        l->cap = cap;
    }
    l->start[l->n] = start;
    l->len[l->n] = len;
    l->n++;
    return 0;
}

int text_wrap(const char *s, size_t n, int width, text_lines_t *lines) {
    if (width < 1) width = 1;
    size_t start = 0; /* first byte of the line being filled */
    size_t cells = 0; /* its width so far */
    size_t space = 0; /* byte offset of its last space + 1; 0 = none yet */
    size_t i = 0;
    while (i < n) {
        const size_t at = i;
        const int32_t cp = text_utf8_next(s, n, &i);
        if (cp == '\n') {
            if (push_line(lines, start, at - start)) return -1;
            start = i;
            cells = 0;
            space = 0;
            continue;
        }
        const size_t w = cp < 0 ? 1 : (size_t)text_cp_width(cp);
        if (cells + w > (size_t)width && cells > 0) {
            if (cp == ' ') { /* break at this space: it disappears */
                if (push_line(lines, start, at - start)) return -1;
                start = i;
                cells = 0;
                space = 0;
                continue;
            }
            size_t cut = at; /* inside a word: cut here */
            size_t next = at;
            if (space > start) { /* back to the last space: it disappears */
                cut = space - 1;
                next = space;
            }
            if (push_line(lines, start, cut - start)) return -1;
            start = next;
            space = 0;
            cells = text_width(s + start, at - start);
        }
        cells += w;
        if (cp == ' ') space = i;
    }
    if (start < n || lines->n == 0 || (n > 0 && s[n - 1] == '\n'))
        if (push_line(lines, start, n - start)) return -1;
    return 0;
}

void text_lines_release(text_lines_t *lines) {
    free(lines->start);
    free(lines->len);
    *lines = (text_lines_t){0};
}
