/* tests/test_sampler.c: the sampler on a tiny random model with its own tokenizer: the same
 * seed gives the same completions whatever the batch size, one sampler reused across runs
 * gives what fresh ones give, the stream offset continues a run's streams, and a prompt longer
 * than the sampler was made for is refused without breaking it. */
#include "model.h"
#include "sampler.h"
#include "tiny_model.h"
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEQ 64
#define MAX_NEW 12

/* What a run produced, one entry per completion in delivery order. */
typedef struct {
    int64_t prompt, k, tokens;
    bool ended;
    int32_t ids[MAX_NEW];
    double logprob, logprob_sum; /* logprob, and Σ of the per-token log-probs */
    char response[256];
} entry_t;

typedef struct {
    int64_t n;
    entry_t c[MAX_SEQ];
} record_t;

static int record(void *ctx, const sampler_completion_t *c, err_t *err) {
    (void)err;
    record_t *r = ctx;
    ck_assert_int_lt(r->n, MAX_SEQ);
    ck_assert_int_le(c->tokens, MAX_NEW);
    entry_t *e = &r->c[r->n++];
    e->prompt = c->prompt;
    e->k = c->k;
    e->tokens = c->tokens;
    e->ended = c->ended;
    memcpy(e->ids, c->ids, (size_t)c->tokens * sizeof *c->ids);
    e->logprob = c->logprob;
    e->logprob_sum = 0;
    for (int64_t t = 0; t < c->tokens; t++) e->logprob_sum += (double)c->logprobs[t];
    snprintf(e->response, sizeof e->response, "%s", c->response);
    ck_assert(c->prompt_tokens > 0 && c->prompt_ids);
    return 0;
}

static void assert_same(const record_t *a, const record_t *b) {
    ck_assert_int_eq(a->n, b->n);
    for (int64_t i = 0; i < a->n; i++) {
        ck_assert_int_eq(a->c[i].prompt, b->c[i].prompt);
        ck_assert_int_eq(a->c[i].k, b->c[i].k);
        ck_assert_int_eq(a->c[i].tokens, b->c[i].tokens);
        ck_assert_int_eq(a->c[i].ended, b->c[i].ended);
        ck_assert_msg(!memcmp(a->c[i].ids, b->c[i].ids, (size_t)a->c[i].tokens * sizeof(int32_t)),
                      "completion %lld: other tokens", (long long)i);
        /* batchmates change logits by float rounding only */
        ck_assert_msg(fabs(a->c[i].logprob - b->c[i].logprob) < 1e-4, "%g vs %g", a->c[i].logprob,
                      b->c[i].logprob);
        ck_assert_str_eq(a->c[i].response, b->c[i].response);
    }
}

typedef struct {
    char dir[64];
    model_t m;
    data_example_t ex[5];
    data_examples_t examples;
    sampler_prompts_t prompts;
} fixture_t;

static void setup_fixture(fixture_t *f) {
    static const char *const prompts[5] = {"What is 7 plus 5?", "Reverse the word lamp.",
                                           "Say hello to Maria.", "hi",
                                           "Tell me about the cat on the mat, please."};
    err_t err = ERR_INIT;
    tiny_scratch_dir(f->dir);
    tiny_model_write(f->dir, 0, 0, DATA_TEMPLATE_NAME, -1, 7);
    ck_assert_msg(!model_load(&f->m, f->dir, MODEL_HEAD_LM, &err), "%s", err.msg);
    for (int i = 0; i < 5; i++) f->ex[i] = (data_example_t){.prompt = (char *)prompts[i],
                                      .prompt_len = (int64_t)strlen(prompts[i]),
                                      .line = i + 1};
    f->examples = (data_examples_t){.path = "p.jsonl", .n = 5, .ex = f->ex};
    ck_assert_msg(!sampler_prompts_build(&f->prompts, &f->m, &f->examples, &err), "%s", err.msg);
}

static void teardown_fixture(fixture_t *f) {
    sampler_prompts_release(&f->prompts);
    model_release(&f->m);
    tiny_rm_tree(f->dir);
}

static sampler_opts_t opts_with(int64_t batch, int64_t k) {
    sampler_opts_t o = sampler_defaults();
    o.gen.temperature = 1.0f;
    o.gen.max_new = MAX_NEW;
    o.gen.seed = 11;
    o.k = k;
    o.batch = batch;
    return o;
}

/* One fresh sampler, one run. */
static void sample_fresh(fixture_t *f, const sampler_prompts_t *p, int64_t batch, int64_t k,
                         int64_t first_stream, record_t *out) {
    err_t err = ERR_INIT;
    const sampler_opts_t o = opts_with(batch, k);
    sampler_t *s = sampler_new(&f->m, &o, f->prompts.max_len, &err);
    ck_assert_msg(s, "%s", err.msg);
    out->n = 0;
    sampler_stats_t st;
    ck_assert_msg(!sampler_run(s, p, first_stream, record, out, &st, &err), "%s", err.msg);
    ck_assert_int_eq(st.sequences, p->n * k);
    sampler_destroy(&s);
    ck_assert(s == NULL);
}

START_TEST(test_sampler_batch_independent) {
    fixture_t f;
    setup_fixture(&f);
    static record_t all, b1, b3, b7;
    sample_fresh(&f, &f.prompts, 16, 3, 0, &all);
    ck_assert_int_eq(all.n, 15);
    for (int64_t i = 0; i < all.n; i++) {
        ck_assert_int_eq(all.c[i].prompt, i / 3); /* prompt by prompt, k in order */
        ck_assert_int_eq(all.c[i].k, i % 3);
        ck_assert(fabs(all.c[i].logprob - all.c[i].logprob_sum) < 1e-9);
        ck_assert(all.c[i].logprob < 0);
    }
    /* the K samples of a prompt draw from different streams */
    ck_assert_msg(memcmp(all.c[0].ids, all.c[1].ids, sizeof all.c[0].ids), "same sample twice");
    sample_fresh(&f, &f.prompts, 1, 3, 0, &b1);
    sample_fresh(&f, &f.prompts, 3, 3, 0, &b3);
    sample_fresh(&f, &f.prompts, 7, 3, 0, &b7);
    assert_same(&all, &b1);
    assert_same(&all, &b3);
    assert_same(&all, &b7);
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_sampler_reuse) {
    fixture_t f;
    setup_fixture(&f);
    static record_t fresh, again, other, skipped;
    err_t err = ERR_INIT;
    sample_fresh(&f, &f.prompts, 4, 2, 0, &fresh);
    const sampler_opts_t o = opts_with(4, 2);
    sampler_t *s = sampler_new(&f.m, &o, f.prompts.max_len, &err);
    ck_assert_msg(s, "%s", err.msg);
    for (int round = 0; round < 3; round++) {
        again.n = 0;
        ck_assert_msg(!sampler_run(s, &f.prompts, 0, record, &again, NULL, &err), "%s", err.msg);
        assert_same(&fresh, &again);
        /* another run in between (other streams, a subset of prompts) leaves no trace */
        other.n = 0;
        sampler_prompts_t first_two = f.prompts;
        first_two.n = 2;
        ck_assert(!sampler_run(s, &first_two, 1000 + round, record, &other, NULL, &err));
        ck_assert_int_eq(other.n, 4);
    }
    /* the stream offset continues a run: prompts 2.. at offset 2·K sample what the full run
     * sampled for them */
    data_examples_t tail = {.path = "p.jsonl", .n = 3, .ex = f.ex + 2};
    sampler_prompts_t p_tail;
    ck_assert(!sampler_prompts_build(&p_tail, &f.m, &tail, &err));
    skipped.n = 0;
    ck_assert(!sampler_run(s, &p_tail, 2 * 2, record, &skipped, NULL, &err));
    ck_assert_int_eq(skipped.n, 6);
    for (int64_t i = 0; i < skipped.n; i++) {
        ck_assert_int_eq(skipped.c[i].tokens, fresh.c[i + 4].tokens);
        ck_assert(!memcmp(skipped.c[i].ids, fresh.c[i + 4].ids,
                          (size_t)skipped.c[i].tokens * sizeof(int32_t)));
    }
    sampler_prompts_release(&p_tail);
    sampler_destroy(&s);
    sampler_destroy(&s); /* NULL is fine */
    teardown_fixture(&f);
}
END_TEST

START_TEST(test_sampler_refusals) {
    fixture_t f;
    setup_fixture(&f);
    err_t err = ERR_INIT;
    static record_t r;
    /* a sampler made for short prompts refuses a longer one, and stays usable: a view of
     * prompt 3 alone (its offsets index the same ids) fits */
    const int64_t len3 = f.prompts.offset[4] - f.prompts.offset[3];
    ck_assert_int_lt(len3, f.prompts.max_len);
    sampler_opts_t o = opts_with(2, 1);
    sampler_t *s = sampler_new(&f.m, &o, len3, &err);
    ck_assert_msg(s, "%s", err.msg);
    ck_assert_int_eq(sampler_run(s, &f.prompts, 0, record, &r, NULL, &err), -1);
    char want[96];
    snprintf(want, sizeof want, "this sampler was made for prompts of at most %lld",
             (long long)len3);
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
    sampler_prompts_t third = {.n = 1,
                               .examples = &f.examples,
                               .offset = f.prompts.offset + 3,
                               .ids = f.prompts.ids,
                               .max_len = len3};
    r.n = 0;
    err_clear(&err);
    ck_assert_msg(!sampler_run(s, &third, 0, record, &r, NULL, &err), "%s", err.msg);
    ck_assert_int_eq(r.n, 1);
    sampler_destroy(&s);
    /* bad sizes */
    o.k = 0;
    ck_assert(!sampler_new(&f.m, &o, 3, &err));
    ck_assert_msg(strstr(err.msg, f.dir), "%s", err.msg);
    o = opts_with(2, 1);
    err_clear(&err);
    ck_assert(!sampler_new(&f.m, &o, f.m.model->cfg.n_positions, &err));
    /* a prompt that fills the context names FILE:LINE */
    char long_prompt[400];
    memset(long_prompt, 'x', sizeof long_prompt - 1);
    for (size_t i = 0; i < sizeof long_prompt - 1; i += 2) long_prompt[i] = ' ';
    long_prompt[sizeof long_prompt - 1] = '\0';
    data_example_t ex[2] = {{.prompt = "ok", .prompt_len = 2, .line = 1},
                            {.prompt = long_prompt,
                             .prompt_len = (int64_t)strlen(long_prompt),
                             .line = 2}};
    data_examples_t set = {.path = "p.jsonl", .n = 2, .ex = ex};
    sampler_prompts_t p;
    err_clear(&err);
    ck_assert_int_eq(sampler_prompts_build(&p, &f.m, &set, &err), -1);
    ck_assert_msg(strstr(err.msg, "p.jsonl:2: prompt is") && strstr(err.msg, "no room"), "%s",
                  err.msg);
    sampler_prompts_release(&p);
    teardown_fixture(&f);
}
END_TEST

Suite *test_sampler_suite(void);
Suite *test_sampler_suite(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sampler_batch_independent);
    tcase_add_test(tc, test_sampler_reuse);
    tcase_add_test(tc, test_sampler_refusals);
    suite_add_tcase(s, tc);
    return s;
}
