/* common/text.h: model text made safe to show on a terminal, and wrapped to its width.
 * A completion is untrusted bytes: it may hold escape sequences that move the cursor, clear
 * the screen, retitle the window or hide text (ESC [ 2 J, ESC ] 0 ; x BEL, bidi overrides),
 * and it may be invalid UTF-8 (a sample can cut a character). text_visible turns it into text
 * whose every byte is printable and which moves the cursor only to the right:
 *   C0 controls and DEL      caret notation: ESC -> "^[", BEL -> "^G", NUL -> "^@", DEL -> "^?"
 *                            (tab becomes one space; newline is kept only when asked)
 *   C1 controls U+0080-009F  "<U+009B>"
 *   bidi and invisible       "<U+202E>" for U+061C, U+200B-200F, U+202A-202E, U+2060-2064,
 *   format characters        U+2066-2069, U+FEFF: they reorder or hide what follows
 *   invalid UTF-8 bytes      "\xNN", one per byte
 * Display width (text_width) counts terminal cells: East Asian wide and fullwidth characters
 * (CJK, Hangul, kana, fullwidth forms, most emoji) take 2, combining marks and zero-width
 * characters 0, everything else 1 — from a built-in table of Unicode ranges, so it does not
 * depend on the process locale (wcwidth does). Wrapping breaks at spaces when it can and inside
 * a word when it must, never inside a character.
 * Owns: nothing but the lines array of text_lines_t. No global state; thread-safe. */
#ifndef RLHF_TEXT_H
#define RLHF_TEXT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one UTF-8 character at s[*i] (i < n): returns the code point and advances *i past it,
 * or returns -1 and advances by one byte when the bytes there are not valid UTF-8 (overlong
 * forms, surrogates and values past U+10FFFF are invalid). */
int32_t text_utf8_next(const char *s, size_t n, size_t *i);

/* Terminal cells of code point cp: 0, 1 or 2 (see above). Controls count 0: show them through
 * text_visible first. */
int text_cp_width(int32_t cp);

/* Cells that the (valid UTF-8) text s[0..n) takes on one line; invalid bytes count 1 each. */
size_t text_width(const char *s, size_t n);

/* Writes the visible form of s[0..n) into out (NUL-terminated) and returns its length.
 * keep_newlines: '\n' stays a line break (for wrapping); otherwise it shows as "^J".
 * out needs TEXT_VISIBLE_MAX(n) bytes. */
#define TEXT_VISIBLE_MAX(n) (8 * (n) + 1)
size_t text_visible(const char *s, size_t n, bool keep_newlines, char *out);

/* Lines of a wrapped text: line i is text[start[i] .. start[i] + len[i]) (the text is the
 * caller's; lines do not include the '\n' or the space they were broken at). */
typedef struct {
    int64_t n;     /* lines */
    int64_t cap;   /* allocated entries */
    size_t *start; /* [cap] byte offsets into the text */
    size_t *len;   /* [cap] bytes */
} text_lines_t;

/* Wraps the visible text s[0..n) (from text_visible with keep_newlines) to width cells
 * (width ≥ 1; a width-2 character on a width-1 line gets a line of its own). Appends to lines
 * (zero it first; reuse is fine: set lines->n = 0). -1 when out of memory. */
int text_wrap(const char *s, size_t n, int width, text_lines_t *lines);

/* Frees the arrays; accepts a zeroed struct. */
void text_lines_release(text_lines_t *lines);
#endif /* RLHF_TEXT_H */
