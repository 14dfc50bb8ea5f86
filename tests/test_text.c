#include "text.h"
#include <check.h>
#include <string.h>

static size_t vis(const char *s, char *out) { return text_visible(s, strlen(s), false, out); }

START_TEST(test_text_escapes_are_visible) {
    char out[256];
    /* clear screen, retitle window (OSC ... BEL), cursor home: all shown, none sent */
    vis("a\x1b[2Jb\x1b]0;x\x07" "c\x1b[H", out);
    ck_assert_str_eq(out, "a^[[2Jb^[]0;x^Gc^[[H");
    for (const char *p = out; *p; p++) ck_assert((unsigned char)*p >= 0x20 && *p != 0x7F);
    /* NUL, DEL, tab, newline (not kept), C1 CSI U+009B, a bidi override U+202E */
    const char raw[] = "x\0y\x7f\tz\n\xc2\x9b" "1m\xe2\x80\xae" "evil";
    text_visible(raw, sizeof raw - 1, false, out);
    ck_assert_str_eq(out, "x^@y^? z^J<U+009B>1m<U+202E>evil");
    /* newline kept for wrapping; invalid UTF-8 bytes one by one; valid UTF-8 untouched */
    const char bad[] = "a\nb\xff\xc3(\xe4\xb8\xad";
    text_visible(bad, sizeof bad - 1, true, out);
    ck_assert_str_eq(out, "a\nb\\xFF\\xC3(\xe4\xb8\xad");
    /* worst case fits TEXT_VISIBLE_MAX */
    char worst[4] = {'\xe2', '\x80', '\xae', 0};
    char big[TEXT_VISIBLE_MAX(3)];
    ck_assert_uint_le(text_visible(worst, 3, false, big) + 1, TEXT_VISIBLE_MAX(3));
}
END_TEST

START_TEST(test_text_utf8_and_width) {
    size_t i = 0;
    ck_assert_int_eq(text_utf8_next("\xe4\xb8\xad", 3, &i), 0x4E2D);
    ck_assert_uint_eq(i, 3);
    i = 0; /* overlong '/' and a surrogate are invalid */
    ck_assert_int_eq(text_utf8_next("\xc0\xaf", 2, &i), -1);
    i = 0;
    ck_assert_int_eq(text_utf8_next("\xed\xa0\x80", 3, &i), -1);
    ck_assert_uint_eq(i, 1);
    ck_assert_uint_eq(text_width("hello", 5), 5);
    ck_assert_uint_eq(text_width("\xe4\xb8\xad\xe6\x96\x87", 6), 4);      /* 中文 */
    ck_assert_uint_eq(text_width("e\xcc\x81", 3), 1);                     /* e + combining acute */
    ck_assert_uint_eq(text_width("\xed\x95\x9c", 3), 2);                  /* 한 */
    ck_assert_uint_eq(text_width("\xef\xbc\xa1", 3), 2);                  /* fullwidth A */
    ck_assert_uint_eq(text_width("\xf0\x9f\x98\x80", 4), 2);              /* emoji */
    ck_assert_uint_eq(text_width("\xc3\xa9", 2), 1);                      /* é */
}
END_TEST

static void wrap_expect(const char *s, int width, const char **want, int n) {
    text_lines_t l = {0};
    ck_assert_int_eq(text_wrap(s, strlen(s), width, &l), 0);
    ck_assert_int_eq(l.n, n);
    for (int i = 0; i < n; i++) {
        ck_assert_uint_eq(l.len[i], strlen(want[i]));
        ck_assert_int_eq(memcmp(s + l.start[i], want[i], l.len[i]), 0);
        ck_assert_uint_le(text_width(s + l.start[i], l.len[i]), (size_t)width);
    }
    text_lines_release(&l);
}

START_TEST(test_text_wrap) {
    wrap_expect("the quick brown fox", 10, (const char *[]){"the quick", "brown fox"}, 2);
    wrap_expect("abcdefghij", 4, (const char *[]){"abcd", "efgh", "ij"}, 3);
    wrap_expect("one\n\ntwo", 10, (const char *[]){"one", "", "two"}, 3);
    wrap_expect("", 10, (const char *[]){""}, 1);
    /* CJK: 2 cells each, never split inside a character; 5 characters on width 4 */
    wrap_expect("\xe4\xb8\x80\xe4\xba\x8c\xe4\xb8\x89\xe5\x9b\x9b\xe4\xba\x94", 4,
                (const char *[]){"\xe4\xb8\x80\xe4\xba\x8c", "\xe4\xb8\x89\xe5\x9b\x9b",
                                 "\xe4\xba\x94"},
                3);
    /* an odd width: 3 cells hold one wide character */
    wrap_expect("\xe4\xb8\x80\xe4\xba\x8c", 3, (const char *[]){"\xe4\xb8\x80", "\xe4\xba\x8c"},
                2);
    /* a long word after a short one */
    wrap_expect("a bcdefgh", 4, (const char *[]){"a", "bcde", "fgh"}, 3);
    /* a space exactly at the edge disappears */
    wrap_expect("abcd efgh", 4, (const char *[]){"abcd", "efgh"}, 2);
}
END_TEST

Suite *test_text_suite(void);
Suite *test_text_suite(void) {
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_text_escapes_are_visible);
    tcase_add_test(tc, test_text_utf8_and_width);
    tcase_add_test(tc, test_text_wrap);
    suite_add_tcase(s, tc);
    return s;
}
