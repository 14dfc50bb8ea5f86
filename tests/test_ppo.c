/* tests/test_ppo.c: the PPO-ptx engine on tiny random models with a fake scorer (+1 for a
 * response that contains a chosen token, −1 otherwise) and a fake pretraining stream. */
#include "alloc_count.h"
#include "ckpt.h"
#include "ppo.h"
#include "rng.h"
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const gpt_config_t tiny = {
    .vocab_size = 32, .n_positions = 32, .n_layer = 2, .n_head = 2, .n_embd = 32, .ln_eps = 1e-5f};

enum { NB = 8, PMAX = 4 };
#define REWARD_TOK 5

/* The caller's side: scores, a pretraining stream whose position is a counter (so it can be
 * checkpointed), and the optimizer step. */
typedef struct {
    float scores[NB];
    int64_t ptx_calls; /* the data position: batch k comes from seed 1000 + k */
    double lr;
    bool fail_recv;
} fake_t;

static int fake_send(void *ctx, const ppo_rollouts_t *r, err_t *err) {
    fake_t *f = ctx;
    (void)err;
    for (int64_t b = 0; b < r->B; b++) {
        const int32_t *resp = r->tokens + b * r->stride + r->prompt_len[b];
        bool hit = false;
        for (int64_t i = 0; i < r->response_len[b]; i++) hit |= resp[i] == REWARD_TOK;
        f->scores[b] = hit ? 1.0f : -1.0f;
    }
    return 0;
}

static int fake_recv(void *ctx, float *scores, err_t *err) {
    fake_t *f = ctx;
    if (f->fail_recv) return err_setf(err, "tcp://127.0.0.1:5555: no reply after 3 tries");
    memcpy(scores, f->scores, sizeof f->scores);
    return 0;
}

/* Rows of a repeating pattern (row r: (r + t) mod V), so the term is learnable. */
static int fake_ptx(void *ctx, int32_t *tokens, int32_t *targets, int64_t rows, int64_t T,
                    err_t *err) {
    fake_t *f = ctx;
    (void)err;
    rng_t rng;
    rng_seed(&rng, 1000 + (uint64_t)f->ptx_calls++);
    for (int64_t r = 0; r < rows; r++) {
        const int64_t off = (int64_t)rng_below(&rng, (uint64_t)tiny.vocab_size);
        for (int64_t t = 0; t < T; t++) {
            tokens[r * T + t] = (int32_t)((off + t) % tiny.vocab_size);
            targets[r * T + t] = t + 1 < T ? (int32_t)((off + t + 1) % tiny.vocab_size) : -1;
        }
    }
    return 0;
}

static int fake_update(void *ctx, ppo_role_t role, gpt_model_t *m, optim_t *opt, err_t *err) {
    fake_t *f = ctx;
    const double norm = optim_clip_grad_norm(opt, m->grads_mem, 1.0);
    if (!isfinite(norm))
        return err_setf(err, "%s gradient norm is %g", role ? "value" : "policy", norm);
    optim_step(opt, m->params_mem, m->grads_mem, f->lr);
    return 0;
}

typedef struct {
    gpt_model_t *pol, *ref, *val;
    optim_t *popt, *vopt;
    ppo_t *ppo;
    fake_t fake;
    ppo_callbacks_t cb;
    int32_t prompts[NB * PMAX];
    int64_t lens[NB];
} rig_t;

static ppo_config_t tiny_config(void) {
    ppo_config_t c = ppo_config_default();
    c.batch = NB;
    c.prompt_max = PMAX;
    c.max_new = 6;
    c.temperature = 1.0f;
    c.eos_id = -1;
    c.minibatch = 4;
    c.epochs = 2;
    c.ptx_coef = 0.1;
    c.ptx_rows = 4;
    c.ptx_T = 8;
    c.seed = 7;
    return c;
}

/* Models from model_seed (the reference = a copy of the policy, the value model = its trunk
 * and a random score.weight), and the engine. */
static void rig_init(rig_t *r, const ppo_config_t *cfg, uint64_t model_seed) {
    err_t err = ERR_INIT;
    memset(r, 0, sizeof *r);
    r->pol = gpt_new(&tiny, GPT_HEAD_LM, &err);
    r->ref = gpt_new(&tiny, GPT_HEAD_LM, &err);
    r->val = gpt_new(&tiny, GPT_HEAD_SCORE, &err);
    ck_assert_msg(r->pol && r->ref && r->val, "%s", err.msg);
    gpt_init_random(r->pol, model_seed);
    gpt_init_random(r->val, model_seed + 1);
    ck_assert(!gpt_copy_params(r->ref, r->pol, &err));
    ck_assert(!gpt_copy_params(r->val, r->pol, &err));
    const optim_config_t oc = optim_config_default();
    r->popt = optim_new(r->pol, &oc, &err);
    r->vopt = optim_new(r->val, &oc, &err);
    ck_assert_msg(r->popt && r->vopt, "%s", err.msg);
    r->ppo = ppo_new(r->pol, r->ref, r->val, r->popt, r->vopt, cfg, &err);
    ck_assert_msg(r->ppo, "%s", err.msg);
    r->fake.lr = 3e-3;
    r->cb = (ppo_callbacks_t){.ctx = &r->fake,
                              .score_send = fake_send,
                              .score_recv = fake_recv,
                              .ptx_batch = fake_ptx,
                              .update = fake_update};
    rng_t rng;
    rng_seed(&rng, 99);
    for (int64_t b = 0; b < NB; b++) {
        r->lens[b] = 1 + b % PMAX;
        for (int64_t t = 0; t < PMAX; t++)
            r->prompts[b * PMAX + t] =
                t < r->lens[b] ? (int32_t)rng_below(&rng, (uint64_t)tiny.vocab_size) : 0;
    }
}

static void rig_free(rig_t *r) {
    ppo_destroy(&r->ppo);
    ck_assert_ptr_null(r->ppo);
    optim_destroy(&r->popt);
    optim_destroy(&r->vopt);
    gpt_destroy(&r->pol);
    gpt_destroy(&r->ref);
    gpt_destroy(&r->val);
}

static void iterate(rig_t *r, ppo_stats_t *st) {
    err_t err = ERR_INIT;
    ck_assert_msg(!ppo_iterate(r->ppo, r->prompts, PMAX, r->lens, NB, &r->cb, st, &err), "%s",
                  err.msg);
}

/* Before any update the policy is the reference: KL 0 (to the rounding between the
 * generator's KV-cached products and the full forward), ratio 1 so nothing is clipped, and
 * the figures describe what was generated. */
START_TEST(test_ppo_first_iteration) {
    ppo_config_t cfg = tiny_config();
    cfg.epochs = 1;
    cfg.minibatch = NB; /* one update: its minibatch is the first */
    rig_t r;
    rig_init(&r, &cfg, 1);
    ppo_stats_t st;
    iterate(&r, &st);
    ck_assert_msg(fabs(st.kl) < 1e-4, "KL %g before any update", st.kl);
    ck_assert_msg(st.clipfrac == 0.0, "clip fraction %g at ratio 1", st.clipfrac);
    ck_assert_msg(st.approx_kl < 1e-9, "approx KL %g at ratio 1", st.approx_kl);
    ck_assert_int_eq(st.updates, 1);
    ck_assert_int_eq(st.tokens, NB * cfg.max_new);
    ck_assert(st.response_len == (double)cfg.max_new && st.ended == 0.0);
    /* a random tiny model is close to uniform */
    const double logv = log((double)tiny.vocab_size);
    ck_assert_msg(st.entropy > 0.9 * logv && st.entropy <= logv + 1e-6, "entropy %g", st.entropy);
    ck_assert_msg(fabs(st.ptx_loss - logv) < 0.5, "ptx loss %g", st.ptx_loss);
    ck_assert(isfinite(st.policy_loss) && isfinite(st.value_loss) && st.value_loss > 0.0);
    ck_assert(st.kl_coef == cfg.kl_coef && ppo_kl_coef(r.ppo) == cfg.kl_coef);
    ck_assert(st.t_total > 0.0 && st.tokens_per_s > 0.0 &&
              st.t_generate + st.t_forward + st.t_update + st.t_ptx <= st.t_total);
    /* the rollouts: prompt, then the response; the scores it used */
    const ppo_rollouts_t ro = ppo_rollouts(r.ppo);
    ck_assert_int_eq(ro.B, NB);
    double mean = 0.0;
    for (int64_t b = 0; b < NB; b++) {
        ck_assert_int_eq(ro.prompt_len[b], r.lens[b]);
        ck_assert_int_eq(ro.response_len[b], cfg.max_new);
        ck_assert(!memcmp(ro.tokens + b * ro.stride, r.prompts + b * PMAX,
                          (size_t)r.lens[b] * sizeof(int32_t)));
        ck_assert(ro.scores[b] == r.fake.scores[b]);
        mean += (double)ro.scores[b];
    }
    ck_assert(fabs(st.score_raw - mean / NB) < 1e-12 && st.score == st.score_raw);
    rig_free(&r);
}
END_TEST

/* Several iterations teach the policy to emit the rewarded token; KL grows but stays finite. */
START_TEST(test_ppo_learns_rewarded_token) {
    ppo_config_t cfg = tiny_config();
    rig_t r;
    rig_init(&r, &cfg, 2);
    r.fake.lr = 1e-2;
    ppo_stats_t st;
    double first = 0.0, last = 0.0;
    enum { ITERS = 16, AVG = 4 };
    for (int i = 0; i < ITERS; i++) {
        iterate(&r, &st);
        if (i < AVG) first += st.score_raw / AVG;
        if (i >= ITERS - AVG) last += st.score_raw / AVG;
        ck_assert_msg(isfinite(st.kl) && isfinite(st.policy_loss), "iteration %d", i);
    }
    ck_assert_msg(last > first + 0.5,
                  "mean score %.3f over the first %d iterations, %.3f over "
                  "the last",
                  first, AVG, last);
    ck_assert_msg(st.kl > 0.0, "KL %g after learning", st.kl);
    rig_free(&r);
}
END_TEST

static void assert_same_params(const gpt_model_t *a, const gpt_model_t *b, const char *what) {
    ck_assert_int_eq(a->num_params, b->num_params);
    ck_assert_msg(!memcmp(a->params_mem, b->params_mem, (size_t)a->num_params * sizeof(float)),
                  "%s parameters differ", what);
}

START_TEST(test_ppo_deterministic) {
    const ppo_config_t cfg = tiny_config();
    rig_t a, b;
    rig_init(&a, &cfg, 3);
    rig_init(&b, &cfg, 3);
    for (int i = 0; i < 2; i++) {
        iterate(&a, NULL);
        iterate(&b, NULL);
    }
    assert_same_params(a.pol, b.pol, "policy");
    assert_same_params(a.val, b.val, "value");
    /* and the runs did move the parameters */
    rig_t c;
    rig_init(&c, &cfg, 3);
    ck_assert(
        memcmp(a.pol->params_mem, c.pol->params_mem, (size_t)a.pol->num_params * sizeof(float)));
    rig_free(&a);
    rig_free(&b);
    rig_free(&c);
}
END_TEST

START_TEST(test_ppo_allocates_nothing) {
    const ppo_config_t cfg = tiny_config();
    rig_t r;
    rig_init(&r, &cfg, 4);
    iterate(&r, NULL);
    err_t err = ERR_INIT;
    ppo_stats_t st;
    alloc_count_start();
    const int rc = ppo_iterate(r.ppo, r.prompts, PMAX, r.lens, NB, &r.cb, &st, &err);
    const int64_t calls = alloc_count_stop();
    ck_assert_msg(!rc, "%s", err.msg);
    ck_assert_msg(calls == 0, "%lld heap calls in an iteration", (long long)calls);
    rig_free(&r);
}
END_TEST

/* Everything a resume needs as sections of one state file: the engine's, both optimizers',
 * both models' parameters and the caller's data position. */
enum { NSEC = PPO_NUM_SECTIONS + 2 * OPTIM_NUM_SECTIONS + 3 };
static void rig_sections(rig_t *r, ckpt_section_t s[NSEC]) {
    ppo_sections(r->ppo, s);
    optim_sections(r->popt, s + PPO_NUM_SECTIONS);
    optim_sections(r->vopt, s + PPO_NUM_SECTIONS + OPTIM_NUM_SECTIONS);
    ckpt_section_t *x = s + PPO_NUM_SECTIONS + 2 * OPTIM_NUM_SECTIONS;
    for (int i = 0; i < 2 * OPTIM_NUM_SECTIONS; i += OPTIM_NUM_SECTIONS) /* distinct names */
        for (int k = 0; k < OPTIM_NUM_SECTIONS; k++) {
            static char names[2][OPTIM_NUM_SECTIONS][32];
            snprintf(names[i / OPTIM_NUM_SECTIONS][k], 32, "%s.%s", i ? "value" : "policy",
                     s[PPO_NUM_SECTIONS + i + k].name);
            s[PPO_NUM_SECTIONS + i + k].name = names[i / OPTIM_NUM_SECTIONS][k];
        }
    x[0] = (ckpt_section_t){"policy.params", r->pol->params_mem,
                            (size_t)r->pol->num_params * sizeof(float)};
    x[1] = (ckpt_section_t){"value.params", r->val->params_mem,
                            (size_t)r->val->num_params * sizeof(float)};
    x[2] = (ckpt_section_t){"data.ptx_calls", &r->fake.ptx_calls, sizeof r->fake.ptx_calls};
}

START_TEST(test_ppo_resume_exact) {
    ppo_config_t cfg = tiny_config();
    cfg.whiten_rewards = true;
    cfg.kl_target = 0.5; /* β moves: the controller's state must come back too */
    rig_t a, b, c;
    rig_init(&a, &cfg, 5);
    rig_init(&b, &cfg, 5);
    for (int i = 0; i < 3; i++) iterate(&a, NULL);
    for (int i = 0; i < 2; i++) iterate(&b, NULL);
    ck_assert(ppo_kl_coef(b.ppo) != cfg.kl_coef);
    char path[] = "/tmp/test_ppo_stateXXXXXX";
    const int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    err_t err = ERR_INIT;
    ckpt_section_t s[NSEC];
    rig_sections(&b, s);
    ck_assert_msg(!ckpt_state_save(path, s, NSEC, &err), "%s", err.msg);
    /* fresh objects from other weights: everything that matters comes from the file */
    rig_init(&c, &cfg, 6);
    ck_assert(!gpt_copy_params(c.ref, b.ref, &err)); /* the frozen SFT model, reloaded */
    rig_sections(&c, s);
    ck_assert_msg(!ckpt_state_load(path, s, NSEC, &err), "%s", err.msg);
    unlink(path);
    iterate(&c, NULL);
    assert_same_params(a.pol, c.pol, "policy");
    assert_same_params(a.val, c.val, "value");
    ck_assert(ppo_kl_coef(a.ppo) == ppo_kl_coef(c.ppo));
    rig_free(&a);
    rig_free(&b);
    rig_free(&c);
}
END_TEST

/* With an end-of-text token: responses that never ended, or ended at once (empty), get the
 * fixed score; the others keep the caller's. Whitening centres the first batch exactly. */
START_TEST(test_ppo_missing_eos_score) {
    ppo_config_t cfg = tiny_config();
    cfg.max_new = 20;
    cfg.eos_id = 2;
    cfg.missing_eos_score = -3.0f;
    cfg.whiten_rewards = true;
    cfg.epochs = 1;
    rig_t r;
    rig_init(&r, &cfg, 8);
    ppo_stats_t st;
    int kinds[2] = {0, 0};
    for (int it = 0; it < 3; it++) {
        iterate(&r, &st);
        const ppo_rollouts_t ro = ppo_rollouts(r.ppo);
        int ended = 0;
        for (int64_t b = 0; b < ro.B; b++) {
            const int32_t *resp = ro.tokens + b * ro.stride + ro.prompt_len[b];
            const int64_t n = ro.response_len[b];
            ck_assert(ro.ended[b] == (resp[n - 1] == cfg.eos_id));
            ck_assert(ro.ended[b] || n == cfg.max_new);
            const bool missing = !ro.ended[b] || n == 1;
            ck_assert_msg(ro.scores[b] == (missing ? cfg.missing_eos_score : r.fake.scores[b]),
                          "rollout %lld: score %g", (long long)b, (double)ro.scores[b]);
            kinds[missing]++;
            ended += ro.ended[b];
        }
        ck_assert(fabs(st.ended - ended / (double)NB) < 1e-12);
        if (it == 0) ck_assert_msg(fabs(st.score) < 1e-6, "whitened mean %g", st.score);
    }
    ck_assert_msg(kinds[0] > 0 && kinds[1] > 0,
                  "only one kind of rollout (%d scored, %d "
                  "missing)",
                  kinds[0], kinds[1]);
    rig_free(&r);
}
END_TEST

START_TEST(test_ppo_rejects_bad_input) {
    err_t err = ERR_INIT;
    ppo_config_t cfg = tiny_config();
    rig_t r;
    rig_init(&r, &cfg, 9);
    /* wrong heads */
    ck_assert_ptr_null(ppo_new(r.pol, r.ref, r.ref, r.popt, r.vopt, &cfg, &err));
    ck_assert_msg(strstr(err.msg, "score head"), "%s", err.msg);
    /* sequences longer than the model's positions */
    err_clear(&err);
    cfg.max_new = 40;
    ck_assert_ptr_null(ppo_new(r.pol, r.ref, r.val, r.popt, r.vopt, &cfg, &err));
    ck_assert_msg(strstr(err.msg, "n_positions"), "%s", err.msg);
    /* a prompt longer than prompt_max */
    err_clear(&err);
    int64_t lens[NB];
    memcpy(lens, r.lens, sizeof lens);
    lens[3] = PMAX + 1;
    ck_assert(ppo_iterate(r.ppo, r.prompts, PMAX + 1, lens, NB, &r.cb, NULL, &err) == -1);
    ck_assert_msg(strstr(err.msg, "prompt 3"), "%s", err.msg);
    /* a token outside the vocabulary, in the second generator's part */
    err_clear(&err);
    r.prompts[6 * PMAX] = (int32_t)tiny.vocab_size;
    ck_assert(ppo_iterate(r.ppo, r.prompts, PMAX, r.lens, NB, &r.cb, NULL, &err) == -1);
    ck_assert_msg(strstr(err.msg, "prompt 6: token 0"), "%s", err.msg);
    r.prompts[6 * PMAX] = 1;
    /* a scorer that fails: its message comes back, the models are untouched */
    err_clear(&err);
    r.fake.fail_recv = true;
    float *before = malloc((size_t)r.pol->num_params * sizeof(float));
    memcpy(before, r.pol->params_mem, (size_t)r.pol->num_params * sizeof(float));
    ck_assert(ppo_iterate(r.ppo, r.prompts, PMAX, r.lens, NB, &r.cb, NULL, &err) == -1);
    ck_assert_msg(strstr(err.msg, "no reply"), "%s", err.msg);
    ck_assert(!memcmp(before, r.pol->params_mem, (size_t)r.pol->num_params * sizeof(float)));
    free(before);
    rig_free(&r);
}
END_TEST

Suite *test_ppo_suite(void);
Suite *test_ppo_suite(void) {
    Suite *s = suite_create("ppo");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ppo_first_iteration);
    tcase_add_test(tc, test_ppo_learns_rewarded_token);
    tcase_add_test(tc, test_ppo_deterministic);
    tcase_add_test(tc, test_ppo_allocates_nothing);
    tcase_add_test(tc, test_ppo_resume_exact);
    tcase_add_test(tc, test_ppo_missing_eos_score);
    tcase_add_test(tc, test_ppo_rejects_bad_input);
    suite_add_tcase(s, tc);
    return s;
}
