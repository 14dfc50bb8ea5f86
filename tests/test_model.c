/* tests/test_model.c: model_load on the PyTorch fixtures (an LM and a score head) and on tiny
 * models with tokenizers: the head a command accepts, a missing or oversized tokenizer, an
 * unknown template, end-of-text disagreement; model_check_compatible on two models; the UTF-8
 * sanitizer. Every refusal must name the directory. */
#include "data.h"
#include "model.h"
#include "tiny_model.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX_LM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"
#define FIX_RM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"

/* Loading dir with need fails, the message naming dir and containing want. */
static void assert_refused(const char *dir, unsigned need, const char *want) {
    model_t m;
    err_t err = ERR_INIT;
    ck_assert_int_eq(model_load(&m, dir, need, &err), -1);
    ck_assert_msg(strstr(err.msg, dir), "message does not name %s: %s", dir, err.msg);
    ck_assert_msg(strstr(err.msg, want), "want \"%s\" in: %s", want, err.msg);
    ck_assert(m.model == NULL && m.tok == NULL); /* nothing half-loaded */
    model_release(&m);                           /* still allowed */
}

START_TEST(test_model_fixture_heads) {
    model_t m;
    err_t err = ERR_INIT;
    /* the LM fixture as an LM (it has no tokenizer: ids only) */
    ck_assert_msg(!model_load(&m, FIX_LM, MODEL_HEAD_LM | MODEL_TOKENIZER_OPTIONAL, &err), "%s",
                  err.msg);
    ck_assert(m.model->head == GPT_HEAD_LM && m.tok == NULL);
    ck_assert_int_eq(m.eos_id, 96); /* config.json eos_token_id */
    ck_assert_int_eq(m.pad_id, 96); /* no padding id: end-of-text pads */
    model_release(&m);
    ck_assert(m.model == NULL);
    /* the score fixture as a reward model and as a value model */
    ck_assert_msg(!model_load(&m, FIX_RM, MODEL_HEAD_REWARD | MODEL_TOKENIZER_OPTIONAL, &err), "%s",
                  err.msg);
    ck_assert(m.model->head == GPT_HEAD_SCORE && m.model->params.scorew);
    model_release(&m);
    ck_assert_msg(!model_load(&m, FIX_RM, MODEL_HEAD_VALUE | MODEL_TOKENIZER_OPTIONAL, &err), "%s",
                  err.msg);
    model_release(&m);
    /* a command that takes either */
    ck_assert(
        !model_load(&m, FIX_LM, MODEL_HEAD_LM | MODEL_HEAD_VALUE | MODEL_TOKENIZER_OPTIONAL, &err));
    model_release(&m);
    /* the wrong head is refused, naming the directory and both kinds */
    assert_refused(FIX_LM, MODEL_HEAD_REWARD | MODEL_TOKENIZER_OPTIONAL,
                   "a language model (GPT2LMHeadModel); this command needs a reward model");
    assert_refused(FIX_LM, MODEL_HEAD_VALUE | MODEL_TOKENIZER_OPTIONAL,
                   "this command needs a value model (GPT2ForSequenceClassification)");
    assert_refused(FIX_RM, MODEL_HEAD_LM | MODEL_TOKENIZER_OPTIONAL,
                   "a reward or value model (GPT2ForSequenceClassification); this command needs a "
                   "language model (GPT2LMHeadModel)");
    assert_refused(FIX_LM, MODEL_TOKENIZER_OPTIONAL, "no head accepted");
}
END_TEST

START_TEST(test_model_missing_tokenizer) {
    /* the fixtures have no vocab.json / merges.txt: a command that reads text refuses them */
    assert_refused(FIX_LM, MODEL_HEAD_LM,
                   "this command reads text, so the model needs its tokenizer");
    assert_refused(FIX_RM, MODEL_HEAD_REWARD, "needs its tokenizer");
    /* half a tokenizer is broken, not absent: refused even when the tokenizer is optional */
    char dir[64], path[128];
    tiny_scratch_dir(dir);
    tiny_model_write(dir, 0, 0, DATA_TEMPLATE_NAME, -1, 1);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    ck_assert(!unlink(path));
    assert_refused(dir, MODEL_HEAD_LM | MODEL_TOKENIZER_OPTIONAL, "merges.txt");
    tiny_rm_tree(dir);
}
END_TEST

START_TEST(test_model_with_tokenizer) {
    char dir[64];
    tiny_scratch_dir(dir);
    tiny_model_write(dir, 0, 0, DATA_TEMPLATE_NAME, -1, 1);
    model_t m;
    err_t err = ERR_INIT;
    ck_assert_msg(!model_load(&m, dir, MODEL_HEAD_LM, &err), "%s", err.msg);
    ck_assert(m.tok && m.dir == dir);
    ck_assert_int_eq(m.eos_id, tok_eot_id(m.tok));
    ck_assert_int_eq(m.pad_id, m.eos_id);
    ck_assert_str_eq(m.meta.template_name, DATA_TEMPLATE_NAME);
    /* model_encode treats "<|endoftext|>" as text; decode strips the template's space */
    int32_t ids[64];
    const int64_t n = model_encode(&m, " Hello<|endoftext|>", 19, ids, 64, &err);
    ck_assert_int_gt(n, 2);
    for (int64_t i = 0; i < n; i++) ck_assert_int_ne(ids[i], m.eos_id);
    size_t len = 0;
    char *text = model_decode_response(&m, ids, n, &len, &err);
    ck_assert_msg(text, "%s", err.msg);
    ck_assert_str_eq(text, "Hello<|endoftext|>");
    ck_assert_uint_eq(len, strlen("Hello<|endoftext|>"));
    free(text);
    model_release(&m);
    tiny_rm_tree(dir);
}
END_TEST

START_TEST(test_model_bad_directories) {
    char dir[64];
    /* a template this build does not know */
    tiny_scratch_dir(dir);
    tiny_model_write(dir, 0, 0, "chatml-v2", -1, 1);
    assert_refused(dir, MODEL_HEAD_LM, "rlhf.template is \"chatml-v2\"");
    tiny_rm_tree(dir);
    /* config.json's end-of-text differs from the tokenizer's */
    tiny_scratch_dir(dir);
    tiny_model_write(dir, 0, 0, DATA_TEMPLATE_NAME, 5, 1);
    assert_refused(dir, MODEL_HEAD_LM, "config.json says the end-of-text id is 5");
    tiny_rm_tree(dir);
    /* a tokenizer with more ids than the model's embedding has rows */
    tiny_scratch_dir(dir);
    tiny_model_write(dir, 0, 280, DATA_TEMPLATE_NAME, 260, 1);
    assert_refused(dir, MODEL_HEAD_LM, "the model's vocab_size is only 280");
    tiny_rm_tree(dir);
}
END_TEST

/* Loads dir as an LM with its tokenizer, or fails the test. */
static void load(model_t *m, const char *dir) {
    err_t err = ERR_INIT;
    ck_assert_msg(!model_load(m, dir, MODEL_HEAD_LM, &err), "%s", err.msg);
}

/* model_check_compatible(a, b) fails naming both directories and containing want. */
static void assert_incompatible(const model_t *a, const model_t *b, const char *want) {
    err_t err = ERR_INIT;
    ck_assert_int_eq(model_check_compatible(a, b, &err), -1);
    ck_assert_msg(strstr(err.msg, a->dir) && strstr(err.msg, b->dir), "dirs not named: %s",
                  err.msg);
    ck_assert_msg(strstr(err.msg, want), "want \"%s\" in: %s", want, err.msg);
}

START_TEST(test_model_compatible) {
    char d_a[64], d_same[64], d_notemplate[64], d_othervocab[64], d_wider[64];
    const char *dirs[] = {d_a, d_same, d_notemplate, d_othervocab, d_wider};
    for (int i = 0; i < 5; i++) tiny_scratch_dir((char *)dirs[i]);
    tiny_model_write(d_a, 0, 0, DATA_TEMPLATE_NAME, -1, 1);
    tiny_model_write(d_same, 0, 0, DATA_TEMPLATE_NAME, -1, 2); /* other weights, same tokens */
    tiny_model_write(d_notemplate, 0, 0, "", -1, 1);
    tiny_model_write(d_othervocab, 1, 0, DATA_TEMPLATE_NAME, -1, 1);
    tiny_model_write(d_wider, 0, 320, DATA_TEMPLATE_NAME, -1, 1);
    model_t a, same, notemplate, othervocab, wider;
    load(&a, d_a);
    load(&same, d_same);
    load(&notemplate, d_notemplate);
    load(&othervocab, d_othervocab);
    load(&wider, d_wider);
    err_t err = ERR_INIT;
    ck_assert_msg(!model_check_compatible(&a, &same, &err), "%s", err.msg);
    ck_assert_msg(!model_check_compatible(&a, &a, &err), "%s", err.msg);
    assert_incompatible(&a, &notemplate, "template \"rlhf-v1\"");
    assert_incompatible(&notemplate, &a, "template \"\"");
    assert_incompatible(&a, &wider, "vocab_size");
    /* the second vocabulary differs somewhere: in size, a token or the end-of-text id */
    err_clear(&err);
    ck_assert_int_eq(model_check_compatible(&a, &othervocab, &err), -1);
    ck_assert_msg(strstr(err.msg, "do not read tokens the same way"), "%s", err.msg);
    /* merges.txt compared beyond the token table: swap two merge lines of a copy */
    model_release(&same);
    char path[128], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/merges.txt", d_same);
    ck_assert(!data_read_file(path, &text, &len, &err));
    char *l1 = strchr(text, '\n') + 1, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    FILE *f = fopen(path, "w");
    ck_assert(f);
    fwrite(text, 1, (size_t)(l1 - text), f);
    fwrite(l2, 1, (size_t)(l3 - l2), f); /* merge 2 first, then merge 1 */
    fwrite(l1, 1, (size_t)(l2 - l1), f);
    fwrite(l3, 1, len - (size_t)(l3 - text), f);
    fclose(f);
    free(text);
    load(&same, d_same);
    assert_incompatible(&a, &same, "merge 1 differs");
    model_t *all[] = {&a, &same, &notemplate, &othervocab, &wider};
    for (int i = 0; i < 5; i++) {
        model_release(all[i]);
        tiny_rm_tree(dirs[i]);
    }
}
END_TEST

START_TEST(test_model_utf8_sanitize) {
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"a\xff"
         "b",
         3,
         "a\xEF\xBF\xBD"
         "b"},                                       /* a byte that is never UTF-8 */
        {"\xE2\x82\xAC", 3, "\xE2\x82\xAC"},         /* € kept */
        {"\xE2\x82", 2, "\xEF\xBF\xBD"},             /* a cut character: one U+FFFD */
        {"\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"}, /* overlong: each byte replaced */
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate */
        {"x\0y", 3, "x\0y"},                                         /* NUL is valid UTF-8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        const size_t k = model_utf8_sanitize(cases[i].in, cases[i].n, out);
        const size_t want = i == 6 ? 3 : strlen(cases[i].out);
        ck_assert_uint_eq(k, want);
        ck_assert_msg(!memcmp(out, cases[i].out, want) && out[k] == '\0', "case %zu", i);
    }
}
END_TEST

Suite *test_model_suite(void);
Suite *test_model_suite(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_model_fixture_heads);
    tcase_add_test(tc, test_model_missing_tokenizer);
    tcase_add_test(tc, test_model_with_tokenizer);
    tcase_add_test(tc, test_model_bad_directories);
    tcase_add_test(tc, test_model_compatible);
    tcase_add_test(tc, test_model_utf8_sanitize);
    suite_add_tcase(s, tc);
    return s;
}
