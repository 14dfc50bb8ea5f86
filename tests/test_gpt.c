#include "gpt.h"
#include <check.h>
#include <string.h>

static const gpt_config_t tiny = {.vocab_size = 97, .n_positions = 32, .n_layer = 2,
                                  .n_head = 3, .n_embd = 48, .ln_eps = 1e-5f};

START_TEST(test_gpt_tensor_table_covers_slab) {
    err_t err = ERR_INIT;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = gpt_new(&tiny, (gpt_head_t)h, &err);
        ck_assert_msg(m, "%s", err.msg);
        int64_t n = gpt_tensors(m, NULL, 0);
        ck_assert_int_eq(n, 2 + 12 * 2 + 2 + h);
        gpt_tensor_t t[64];
        gpt_tensors(m, t, 64);
        int64_t total = 0;
        const float *expect = m->params_mem;
        for (int64_t i = 0; i < n; i++) total += t[i].numel;
        ck_assert_int_eq(total, m->num_params);
        ck_assert_str_eq(t[4].name, "h.0.attn.c_attn.weight");
        ck_assert_int_eq(t[4].shape[0], 48);
        ck_assert_int_eq(t[4].shape[1], 144);
        ck_assert(t[0].param == expect);
        ck_assert(t[0].decay && !t[2].decay);
        gpt_destroy(&m);
        ck_assert_ptr_null(m);
    }
}
END_TEST

START_TEST(test_gpt_bad_config_is_an_error) {
    err_t err = ERR_INIT;
    gpt_config_t c = tiny;
    c.n_head = 5;
    ck_assert_ptr_null(gpt_new(&c, GPT_HEAD_LM, &err));
    ck_assert(strstr(err.msg, "multiple of n_head"));
}
END_TEST

START_TEST(test_gpt_init_is_seeded) {
    err_t err = ERR_INIT;
    gpt_model_t *a = gpt_new(&tiny, GPT_HEAD_SCORE, &err), *b = gpt_new(&tiny, GPT_HEAD_SCORE, &err);
    gpt_init_random(a, 1);
    gpt_init_random(b, 1);
    ck_assert(!memcmp(a->params_mem, b->params_mem, (size_t)a->num_params * sizeof(float)));
    ck_assert(a->params.ln1w[0] == 1.0f && a->params.qkvb[0] == 0.0f && a->params.wte[0] != 0.0f);
    gpt_init_random(b, 2);
    ck_assert(memcmp(a->params_mem, b->params_mem, (size_t)a->num_params * sizeof(float)));
    gpt_model_t *lm = gpt_new(&tiny, GPT_HEAD_LM, &err);
    ck_assert_int_eq(gpt_copy_params(lm, a, &err), 0);
    ck_assert(!memcmp(lm->params_mem, a->params_mem, (size_t)lm->num_params * sizeof(float)));
    gpt_destroy(&a);
    gpt_destroy(&b);
    gpt_destroy(&lm);
}
END_TEST

Suite *test_gpt_suite(void);
Suite *test_gpt_suite(void) {
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_gpt_tensor_table_covers_slab);
    tcase_add_test(tc, test_gpt_bad_config_is_an_error);
    tcase_add_test(tc, test_gpt_init_is_seeded);
    suite_add_tcase(s, tc);
    return s;
}
