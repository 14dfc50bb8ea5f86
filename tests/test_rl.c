/* tests/test_rl.c: the RLHF math against hand computations (ranking loss, GAE), finite
 * differences (ranking loss alone and through a score-head model, clipped policy and value
 * losses), the PyTorch-written reward model fixture, whitening and running statistics, the KL
 * controller, per-token KL rewards from two full forwards, and the generator's log-probs. */
#include "alloc_count.h"
#include "ckpt.h"
#include "gen.h"
#include "gpt.h"
#include "ops.h"
#include "rl.h"
#include "rng.h"
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Central difference of f over one float, with the step actually taken (float rounding). */
typedef double (*scalar_fn)(const void *ctx);

static double central_diff(float *x, float h, scalar_fn f, const void *ctx) {
    const float saved = *x;
    *x = saved + h;
    const float xp = *x;
    const double fp = f(ctx);
    *x = saved - h;
    const float xm = *x;
    const double fm = f(ctx);
    *x = saved;
    return (fp - fm) / ((double)xp - (double)xm);
}

/* ---- reward model: ranking loss ----------------------------------------------------------- */

/* K = 4, rewards r = (2, 0, 1, 1), ranks (1, 2, 2, 3): completions 1 and 2 tie.
 * Untied pairs (w, l) and d = r_w − r_l: (0,1) 2, (0,2) 1, (0,3) 1, (1,3) −1, (2,3) 0; P = 5
 * (C(4,2) = 6 less the tie). With sp(x) = log(1 + e^x), −log σ(d) = sp(−d):
 *   sp(−2) = 0.12692801104297263, sp(−1) = 0.31326168751822286,
 *   sp(1) = 1.3132616875182228, sp(0) = log 2 = 0.6931471805599453;
 *   loss = (sp(−2) + 2·sp(−1) + sp(1) + sp(0)) / 5 = 2.7598602541575865 / 5 = 0.5519720508315173.
 * Accuracy: (0,1) (0,2) (0,3) right, (1,3) wrong, (2,3) a tie of rewards counts half:
 *   correct = 3.5 of 5 pairs.
 * Gradient: each pair adds −σ(−d)/5 to its winner and +σ(−d)/5 to its loser, with
 *   σ(−2) = 0.11920292202211755, σ(−1) = 0.2689414213699951, σ(1) = 0.7310585786300049,
 *   σ(0) = 0.5:
 *   dr0 = −(σ(−2) + 2σ(−1)) / 5           = −0.6570857647621078 / 5 = −0.13141715295242155
 *   dr1 = (σ(−2) − σ(1)) / 5              = −0.6118556566078873 / 5 = −0.12237113132157747
 *   dr2 = (σ(−1) − σ(0)) / 5              = −0.2310585786300049 / 5 = −0.04621171572600098
 *   dr3 = (σ(−1) + σ(1) + σ(0)) / 5       = 1.5 / 5                 = 0.3 */
START_TEST(test_rl_rank_hand_k4_tie) {
    const float r[4] = {2.0f, 0.0f, 1.0f, 1.0f};
    const int32_t ranks[4] = {1, 2, 2, 3};
    const int64_t K[1] = {4};
    rl_rank_stats_t st;
    const double loss = rl_rank_forward(&st, r, ranks, K, 1);
    ck_assert_msg(fabs(loss - 0.5519720508315173) < 1e-7, "loss %.10f", loss);
    ck_assert_double_eq(st.loss, loss);
    ck_assert_int_eq(st.pairs, 5);
    ck_assert_int_eq(st.prompts, 1);
    ck_assert_double_eq(st.correct, 3.5);
    float dr[4];
    rl_rank_backward(dr, r, ranks, K, 1);
    const double want[4] = {-0.13141715295242155, -0.12237113132157747, -0.04621171572600098, 0.3};
    for (int k = 0; k < 4; k++)
        ck_assert_msg(fabs((double)dr[k] - want[k]) < 1e-7, "dr%d %.9f, expected %.9f", k,
                      (double)dr[k], want[k]);
    /* ranks are only compared: (10, 20, 20, 30) is the same ranking */
    const int32_t ranks10[4] = {10, 20, 20, 30};
    ck_assert_double_eq(rl_rank_forward(NULL, r, ranks10, K, 1), loss);
}
END_TEST

/* Three prompts in one batch: K = 5 (with ties), K = 3, and K = 2 tied (no pair, ignored). */
enum { RANK_N = 10 };
typedef struct {
    float r[RANK_N];
    int32_t ranks[RANK_N];
    int64_t counts[3];
} rank_ctx;

static double rank_loss(const void *ctx) {
    const rank_ctx *c = ctx;
    return rl_rank_forward(NULL, c->r, c->ranks, c->counts, 3);
}

START_TEST(test_rl_rank_batch_grad) {
    rank_ctx c = {.ranks = {2, 1, 3, 3, 5, 1, 2, 3, 4, 4}, .counts = {5, 3, 2}};
    rng_t rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < RANK_N; i++) c.r[i] = 2.0f * rng_normal(&rng);
    /* the batch loss is the mean of the two prompts that have pairs */
    rl_rank_stats_t st, s0, s1;
    const double loss = rl_rank_forward(&st, c.r, c.ranks, c.counts, 3);
    rl_rank_forward(&s0, c.r, c.ranks, c.counts, 1);
    rl_rank_forward(&s1, c.r + 5, c.ranks + 5, c.counts + 1, 1);
    ck_assert_int_eq(s0.pairs, 9); /* C(5,2) = 10 less the tie of ranks 3 */
    ck_assert_int_eq(s1.pairs, 3);
    ck_assert_int_eq(st.pairs, 12);
    ck_assert_int_eq(st.prompts, 2);
    ck_assert(fabs(loss - 0.5 * (s0.loss + s1.loss)) < 1e-12);
    ck_assert_double_eq(st.correct, s0.correct + s1.correct);
    float dr[RANK_N];
    for (int i = 0; i < RANK_N; i++) dr[i] = NAN; /* backward writes every element */
    rl_rank_backward(dr, c.r, c.ranks, c.counts, 3);
    ck_assert(dr[8] == 0.0f && dr[9] == 0.0f);
    double sum = 0.0;
    for (int i = 0; i < RANK_N; i++) {
        const double fd = central_diff(&c.r[i], 1e-3f, rank_loss, &c);
        ck_assert_msg(fabs(fd - (double)dr[i]) <= 1e-4 + 1e-3 * fabs(fd),
                      "dr[%d] %.7g, finite difference %.7g", i, (double)dr[i], fd);
        sum += (double)dr[i];
    }
    ck_assert(fabs(sum) < 1e-6); /* a shift of all rewards changes nothing */
    /* no pair anywhere: loss 0, gradient 0 */
    const int64_t tied[1] = {2};
    ck_assert_double_eq(rl_rank_forward(&st, c.r + 8, c.ranks + 8, tied, 1), 0.0);
    ck_assert_int_eq(st.prompts, 0);
}
END_TEST

/* log σ(d) for |d| = 200: float exp would overflow in a naive log(1 + exp(−d)). */
START_TEST(test_rl_rank_stable_at_extremes) {
    const float r[2] = {-100.0f, 100.0f};
    const int32_t ranks[2] = {1, 2};
    const int64_t K[1] = {2};
    rl_rank_stats_t st;
    double loss = rl_rank_forward(&st, r, ranks, K, 1);
    ck_assert_msg(fabs(loss - 200.0) < 1e-9, "loss %.10f", loss); /* sp(200) = 200 + 1e-87 */
    ck_assert_double_eq(st.correct, 0.0);
    float dr[2];
    rl_rank_backward(dr, r, ranks, K, 1);
    ck_assert(dr[0] == -1.0f && dr[1] == 1.0f);
    const float r2[2] = {100.0f, -100.0f};
    loss = rl_rank_forward(NULL, r2, ranks, K, 1);
    ck_assert(loss >= 0.0 && loss < 1e-80);
    rl_rank_backward(dr, r2, ranks, K, 1);
    ck_assert(isfinite(dr[0]) && fabsf(dr[0]) < 1e-30f);
}
END_TEST

/* ---- the ranking loss through a score-head model ------------------------------------------ */

static const gpt_config_t tiny = {
    .vocab_size = 23, .n_positions = 8, .n_layer = 2, .n_head = 2, .n_embd = 16, .ln_eps = 1e-5f};
enum { RB = 5, RT = 8 };

/* Every parameter random (N(0, 0.2), LayerNorm weights around 1), so no path hides behind a
 * zero and rewards spread (GPT-2's init makes them all ~0). */
static gpt_model_t *tiny_model(gpt_head_t head, uint64_t seed, int64_t B, int64_t T,
                               bool training) {
    err_t err = ERR_INIT;
    gpt_model_t *m = gpt_new(&tiny, head, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_msg(gpt_alloc(m, B, T, training, &err) == 0, "%s", err.msg);
    rng_t rng;
    rng_seed(&rng, seed);
    for (int64_t i = 0; i < m->num_params; i++) m->params_mem[i] = 0.2f * rng_normal(&rng);
    const int64_t C = tiny.n_embd, L = tiny.n_layer;
    for (int64_t i = 0; i < L * C; i++) m->params.ln1w[i] += 1.0f, m->params.ln2w[i] += 1.0f;
    for (int64_t i = 0; i < C; i++) m->params.lnfw[i] += 1.0f;
    return m;
}

/* Two prompts: 3 completions ranked (2, 1, 2) and 2 ranked (1, 2), one row each. */
typedef struct {
    gpt_model_t *m;
    int32_t tokens[RB * RT];
    int64_t lengths[RB];
    int32_t ranks[RB];
    int64_t counts[2];
} rm_ctx;

static double rm_loss(const void *ctx) {
    const rm_ctx *c = ctx;
    float rewards[RB];
    gpt_forward(c->m, c->tokens, RB, RT);
    rl_last_forward(rewards, c->m->values, c->lengths, RB, RT);
    return rl_rank_forward(NULL, rewards, c->ranks, c->counts, 2);
}

START_TEST(test_rl_rank_through_score_model) {
    rm_ctx c = {.lengths = {8, 5, 3, 6, 8}, .ranks = {2, 1, 2, 1, 2}, .counts = {3, 2}};
    c.m = tiny_model(GPT_HEAD_SCORE, 3, RB, RT, true);
    rng_t rng;
    rng_seed(&rng, 4);
    for (int64_t b = 0; b < RB; b++)
        for (int64_t t = 0; t < RT; t++)
            c.tokens[b * RT + t] = t < c.lengths[b] ? (int32_t)rng_below(&rng, 23) : 0;
    gpt_zero_grad(c.m);
    gpt_forward(c.m, c.tokens, RB, RT);
    float rewards[RB], want[RB], dr[RB], dvalues[RB * RT];
    rl_last_forward(rewards, c.m->values, c.lengths, RB, RT);
    gpt_score_at(c.m, c.lengths, want);
    for (int b = 0; b < RB; b++) ck_assert(rewards[b] == want[b]);
    const double loss = rl_rank_forward(NULL, rewards, c.ranks, c.counts, 2);
    ck_assert(loss > 0.05); /* rewards spread: a real signal */
    rl_rank_backward(dr, rewards, c.ranks, c.counts, 2);
    for (int64_t i = 0; i < RB * RT; i++) dvalues[i] = NAN;
    rl_last_backward(dvalues, dr, c.lengths, RB, RT);
    for (int64_t b = 0; b < RB; b++)
        for (int64_t t = 0; t < RT; t++)
            ck_assert(dvalues[b * RT + t] == (t == c.lengths[b] - 1 ? dr[b] : 0.0f));
    gpt_backward(c.m, dvalues);
    /* a few parameters of every tensor: its largest gradient and three random ones, within
     * |Δ| ≤ 1e-2·|g| + 1e-3·max|g| of the tensor + 1e-4·max|g| of the model (the float
     * forward's noise in the difference quotient is ~1e-5) */
    ops_set_threads(1);
    gpt_tensor_t t[64];
    const int64_t nt = gpt_tensors(c.m, t, 64);
    double maxg[64] = {0}, top = 0.0;
    int64_t argmax[64] = {0};
    for (int64_t k = 0; k < nt; k++) {
        for (int64_t i = 0; i < t[k].numel; i++)
            if (fabs((double)t[k].grad[i]) > maxg[k])
                maxg[k] = fabs((double)t[k].grad[i]), argmax[k] = i;
        top = fmax(top, maxg[k]);
    }
    for (int64_t k = 0; k < nt; k++) {
        /* ln_f.bias moves every reward by the same score·Δb, and the ranking loss only sees
         * differences: its gradient is 0 (each prompt's dr sums to 0); every other tensor
         * has one */
        if (strcmp(t[k].name, "ln_f.bias") == 0)
            ck_assert_msg(maxg[k] < 1e-6 * top, "ln_f.bias: gradient %g", maxg[k]);
        else
            ck_assert_msg(maxg[k] > 1e-3 * top, "%s: no gradient", t[k].name);
        for (int s = 0; s < 4; s++) {
            const int64_t i = s == 0 ? argmax[k] : (int64_t)rng_below(&rng, (uint64_t)t[k].numel);
            const double fd = central_diff(&t[k].param[i], 1e-3f, rm_loss, &c);
            const double g = t[k].grad[i];
            ck_assert_msg(fabs(fd - g) <= 1e-2 * fabs(g) + 1e-3 * maxg[k] + 1e-4 * top,
                          "%s[%lld]: backward %.7g, finite difference %.7g (max |g| %.4g)",
                          t[k].name, (long long)i, g, fd, maxg[k]);
        }
    }
    gpt_destroy(&c.m);
}
END_TEST

/* The PyTorch-written reward model (tests/fixtures/tiny-gpt2-rm): its three sequences ranked
 * (2, 1, 3) give the loss of expected.json's rewards computed here in double, to the rewards'
 * tolerance (expected.json holds rewards and their gradients, no pairwise loss). */
#define RM_DIR RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"
START_TEST(test_rl_fixture_reward_model) {
    static const double fix_rewards[3] = {-1.2256718873977661, -0.5290293097496033,
                                          -0.4512815773487091};
    const int64_t lengths[3] = {32, 20, 7}, counts[1] = {3};
    const int32_t ranks[3] = {2, 1, 3};
    err_t err = ERR_INIT;
    gpt_model_t *m = ckpt_load(RM_DIR, NULL, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_msg(gpt_alloc(m, 3, 32, false, &err) == 0, "%s", err.msg);
    ckpt_st_t *st = ckpt_st_open(RM_DIR "/expected.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    int32_t tokens[3 * 32];
    ck_assert_msg(ckpt_st_read_i32(st, "tokens", tokens, 3 * 32, &err) == 0, "%s", err.msg);
    ckpt_st_close(&st);
    gpt_forward(m, tokens, 3, 32);
    float rewards[3];
    rl_last_forward(rewards, m->values, lengths, 3, 32);
    /* pairs (1,0), (1,2), (0,2): d = r1 − r0, r1 − r2, r0 − r2 */
    const double *f = fix_rewards;
    const double want =
        (log1p(exp(-(f[1] - f[0]))) + log1p(exp(-(f[1] - f[2]))) + log1p(exp(-(f[0] - f[2])))) /
        3.0;
    rl_rank_stats_t s;
    const double loss = rl_rank_forward(&s, rewards, ranks, counts, 1);
    ck_assert_msg(fabs(loss - want) < 1e-4, "loss %.7f, from expected rewards %.7f", loss, want);
    ck_assert_double_eq(s.correct, 1.0); /* r1 > r0 right; r1 < r2 and r0 < r2 wrong */
    gpt_destroy(&m);
}
END_TEST

/* ---- PPO: per-token rewards and GAE ------------------------------------------------------- */

/* Row 0: start 1, len 3 in T = 5; row 1: start 2, len 2; row 2: empty. NaN elsewhere proves
 * nothing outside the span is read.
 * Per-token rewards, β = 0.1: row 0 has logp − ref_logp = (0.5, −1, 2) and score 1, so
 *   r = (−0.05, 0.1, −0.2 + 1) = (−0.05, 0.1, 0.8); its summed KL is 1.5;
 *   row 1 has logp − ref_logp = (−1, 3), score −0.2: r = (0.1, −0.3 − 0.2) = (0.1, −0.5), KL 2.
 *   Mean KL over the two non-empty rows: 1.75.
 * GAE, γ = 1, λ = 0.95, V after the last token 0:
 *   row 0, V = (0.2, 0.4, 0.5):
 *     δ2 = 0.8 + 0 − 0.5 = 0.3          A2 = 0.3
 *     δ1 = 0.1 + 0.5 − 0.4 = 0.2        A1 = 0.2 + 0.95·0.3 = 0.485
 *     δ0 = −0.05 + 0.4 − 0.2 = 0.15     A0 = 0.15 + 0.95·0.485 = 0.61075
 *     returns = A + V = (0.81075, 0.885, 0.8)
 *   row 1, V = (1, −0.5):
 *     δ1 = −0.5 + 0 + 0.5 = 0           A1 = 0
 *     δ0 = 0.1 − 0.5 − 1 = −1.4         A0 = −1.4
 *     returns = (−0.4, −0.5) */
START_TEST(test_rl_gae_hand) {
    enum { B = 3, T = 5 };
    const int64_t start[B] = {1, 2, 4}, len[B] = {3, 2, 0};
    const rl_span_t span = {.start = start, .len = len, .B = B, .T = T};
    ck_assert_int_eq(rl_span_count(&span), 5);
    const float X = NAN;
    const float logp[B * T] = {X, -1.0f, -3.0f, -0.5f, X, X, X, -2.0f, -0.5f, X, X, X, X, X, X};
    const float ref[B * T] = {X, -1.5f, -2.0f, -2.5f, X, X, X, -1.0f, -3.5f, X, X, X, X, X, X};
    const float values[B * T] = {X, 0.2f, 0.4f, 0.5f, X, X, X, 1.0f, -0.5f, X, X, X, X, X, X};
    const float scores[B] = {1.0f, -0.2f, X};
    float rewards[B * T], adv[B * T], ret[B * T];
    const double kl = rl_token_rewards(rewards, logp, ref, scores, 0.1f, &span);
    ck_assert_msg(fabs(kl - 1.75) < 1e-6, "mean KL %.7f", kl);
    const float want_r[B * T] = {0, -0.05f, 0.1f, 0.8f, 0, 0, 0, 0.1f, -0.5f, 0, 0, 0, 0, 0, 0};
    const float want_a[B * T] = {0, 0.61075f, 0.485f, 0.3f, 0, 0, 0, -1.4f, 0.0f, 0, 0, 0, 0, 0, 0};
    const float want_ret[B * T] = {0,     0.81075f, 0.885f, 0.8f, 0, 0, 0, -0.4f,
                                   -0.5f, 0,        0,      0,    0, 0, 0};
    rl_gae(adv, ret, rewards, values, 1.0f, 0.95f, &span);
    for (int i = 0; i < B * T; i++) {
        ck_assert_msg(fabsf(rewards[i] - want_r[i]) < 1e-6f, "reward %d: %.7f, expected %.7f", i,
                      (double)rewards[i], (double)want_r[i]);
        ck_assert_msg(fabsf(adv[i] - want_a[i]) < 1e-6f, "advantage %d: %.7f, expected %.7f", i,
                      (double)adv[i], (double)want_a[i]);
        ck_assert_msg(fabsf(ret[i] - want_ret[i]) < 1e-6f, "return %d: %.7f, expected %.7f", i,
                      (double)ret[i], (double)want_ret[i]);
    }
}
END_TEST

/* GAE's recursion equals its definition A_t = Σ_k (γλ)^k δ_{t+k}, at γ, λ < 1. */
START_TEST(test_rl_gae_matches_definition) {
    enum { B = 2, T = 9 };
    const int64_t len[B] = {9, 6};
    const rl_span_t span = {.start = NULL, .len = len, .B = B, .T = T};
    float r[B * T], v[B * T], adv[B * T], ret[B * T];
    rng_t rng;
    rng_seed(&rng, 5);
    for (int i = 0; i < B * T; i++) r[i] = rng_normal(&rng), v[i] = rng_normal(&rng);
    const double gamma = 0.9, lambda = 0.8;
    rl_gae(adv, ret, r, v, (float)gamma, (float)lambda, &span);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            double a = 0.0;
            for (int64_t k = t; k < len[b]; k++) {
                const double next = k + 1 < len[b] ? (double)v[b * T + k + 1] : 0.0;
                const double delta = (double)r[b * T + k] + gamma * next - (double)v[b * T + k];
                a += pow(gamma * lambda, (double)(k - t)) * delta;
            }
            ck_assert_msg(fabs((double)adv[b * T + t] - a) < 1e-5, "A[%lld,%lld]", (long long)b,
                          (long long)t);
            const double want_ret = t < len[b] ? a + (double)v[b * T + t] : 0.0;
            ck_assert(fabs((double)ret[b * T + t] - want_ret) < 1e-5);
        }
}
END_TEST

/* ---- PPO: whitening and running statistics ------------------------------------------------ */

START_TEST(test_rl_whiten_valid_tokens_only) {
    enum { B = 3, T = 8 };
    const int64_t start[B] = {0, 3, 2}, len[B] = {5, 5, 1};
    const rl_span_t span = {.start = start, .len = len, .B = B, .T = T};
    float x[B * T], y[B * T];
    rng_t rng;
    rng_seed(&rng, 6);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const bool in = t >= start[b] && t < start[b] + len[b];
            x[b * T + t] = in ? 3.0f + 2.5f * rng_normal(&rng) : NAN;
        }
    for (int pass = 0; pass < 2; pass++) {
        const bool shift = pass == 0;
        memcpy(y, x, sizeof x);
        double mean0 = 0.0;
        for (int i = 0; i < B * T; i++) mean0 += isnan(x[i]) ? 0.0 : (double)x[i];
        mean0 /= 11.0;
        ck_assert_int_eq(rl_whiten(y, shift, &span), 11);
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < B * T; i++) {
            if (isnan(x[i])) {
                ck_assert(isnan(y[i])); /* untouched */
                continue;
            }
            sum += (double)y[i];
        }
        const double mean = sum / 11.0;
        for (int i = 0; i < B * T; i++)
            if (!isnan(x[i])) sq += ((double)y[i] - mean) * ((double)y[i] - mean);
        ck_assert_msg(fabs(mean - (shift ? 0.0 : mean0)) < 1e-5, "mean %.7f", mean);
        ck_assert_msg(fabs(sq / 10.0 - 1.0) < 1e-5, "variance %.7f", sq / 10.0);
    }
    /* one token: no spread to divide by, the token becomes 0 (shift) or stays */
    const int64_t one[1] = {1};
    const rl_span_t span1 = {.start = NULL, .len = one, .B = 1, .T = 1};
    float z = 4.0f;
    rl_whiten(&z, true, &span1);
    ck_assert(z == 0.0f);
}
END_TEST

/* Two "processes" (threads) each holding some rows of one batch: the _reduced functions with a
 * reduce that sums over both give what one process computes on all the rows (up to the order
 * of the double sums), and a reduce that does nothing gives rl_whiten's bits. */
enum { SPLIT_B = 5, SPLIT_T = 7 };
static pthread_barrier_t split_bar;
static double split_slot[2][8];
static __thread int split_me;

static void split_reduce(double *v, int n) {
    memcpy(split_slot[split_me], v, (size_t)n * sizeof *v);
    pthread_barrier_wait(&split_bar);
    for (int i = 0; i < n; i++) v[i] = split_slot[0][i] + split_slot[1][i];
    pthread_barrier_wait(&split_bar); /* both read before either writes again */
}

typedef struct {
    int me;
    float *x;
    const float *values, *returns;
    const int64_t *start, *len;
    int64_t b0, nb;
    double ev;
} split_job_t;

static void *split_worker(void *arg) {
    split_job_t *j = arg;
    split_me = j->me;
    const rl_span_t span = {
        .start = j->start + j->b0, .len = j->len + j->b0, .B = j->nb, .T = SPLIT_T};
    rl_whiten_reduced(j->x + j->b0 * SPLIT_T, true, &span, split_reduce);
    j->ev = rl_explained_variance_reduced(j->values + j->b0 * SPLIT_T, j->returns + j->b0 * SPLIT_T,
                                          &span, split_reduce);
    return NULL;
}

START_TEST(test_rl_reduced_over_split_rows) {
    const int64_t start[SPLIT_B] = {0, 2, 1, 3, 0}, len[SPLIT_B] = {4, 5, 1, 2, 7};
    const rl_span_t span = {.start = start, .len = len, .B = SPLIT_B, .T = SPLIT_T};
    float x[SPLIT_B * SPLIT_T], whole[SPLIT_B * SPLIT_T], same[SPLIT_B * SPLIT_T];
    float values[SPLIT_B * SPLIT_T], returns[SPLIT_B * SPLIT_T];
    rng_t rng;
    rng_seed(&rng, 8);
    for (int i = 0; i < SPLIT_B * SPLIT_T; i++) {
        x[i] = 1.5f + 3.0f * rng_normal(&rng);
        returns[i] = rng_normal(&rng);
        values[i] = returns[i] + 0.5f * rng_normal(&rng);
    }
    memcpy(whole, x, sizeof x);
    memcpy(same, x, sizeof x);
    ck_assert_int_eq(rl_whiten(whole, true, &span), 19);
    const double ev = rl_explained_variance(values, returns, &span);
    /* a reduce that leaves v alone: the same bits */
    ck_assert_int_eq(rl_whiten_reduced(same, true, &span, NULL), 19);
    ck_assert(!memcmp(same, whole, sizeof whole));
    ck_assert(rl_explained_variance_reduced(values, returns, &span, NULL) == ev);
    /* rows 0-1 on one thread, 2-4 on the other */
    ck_assert_int_eq(pthread_barrier_init(&split_bar, NULL, 2), 0);
    split_job_t jobs[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        jobs[k] = (split_job_t){.me = k,
                                .x = x,
                                .values = values,
                                .returns = returns,
                                .start = start,
                                .len = len,
                                .b0 = k ? 2 : 0,
                                .nb = k ? 3 : 2};
        ck_assert_int_eq(pthread_create(&th[k], NULL, split_worker, &jobs[k]), 0);
    }
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    pthread_barrier_destroy(&split_bar);
    for (int64_t b = 0; b < SPLIT_B; b++)
        for (int64_t t = start[b]; t < start[b] + len[b]; t++)
            ck_assert_msg(fabsf(x[b * SPLIT_T + t] - whole[b * SPLIT_T + t]) < 1e-5f,
                          "row %lld token %lld: %g vs %g", (long long)b, (long long)t,
                          (double)x[b * SPLIT_T + t], (double)whole[b * SPLIT_T + t]);
    ck_assert(fabs(jobs[0].ev - ev) < 1e-9 && fabs(jobs[1].ev - ev) < 1e-9);
    ck_assert(ev > 0.3 && ev < 1.0); /* a figure that tells the two sums apart */
}
END_TEST

START_TEST(test_rl_running_moments) {
    float x[40];
    rng_t rng;
    rng_seed(&rng, 7);
    for (int i = 0; i < 40; i++) x[i] = 5.0f + 3.0f * rng_normal(&rng);
    double mean = 0.0, sq = 0.0;
    for (int i = 0; i < 40; i++) mean += (double)x[i];
    mean /= 40.0;
    for (int i = 0; i < 40; i++) sq += ((double)x[i] - mean) * ((double)x[i] - mean);
    rl_running_t run = RL_RUNNING_INIT;
    ck_assert_double_eq(rl_running_std(&run), 1.0);
    rl_running_update(&run, x, 1);
    ck_assert_double_eq(rl_running_std(&run), 1.0); /* one value: no spread yet */
    rl_running_update(&run, x + 1, 12);             /* uneven batches merge exactly */
    rl_running_update(&run, x + 13, 0);
    rl_running_update(&run, x + 13, 27);
    ck_assert_double_eq(run.count, 40.0);
    ck_assert(fabs(run.mean - mean) < 1e-12);
    ck_assert(fabs(run.var - sq / 40.0) < 1e-10);
    ck_assert(fabs(rl_running_std(&run) - sqrt(sq / 39.0)) < 1e-10);
    float y[2] = {x[0], x[1]};
    rl_running_normalize(&run, y, 2, true);
    ck_assert(fabs((double)y[0] - ((double)x[0] - mean) / sqrt(sq / 39.0)) < 1e-5);
    y[0] = x[0];
    rl_running_normalize(&run, y, 1, false);
    ck_assert(fabs((double)y[0] - (double)x[0] / sqrt(sq / 39.0)) < 1e-5);
}
END_TEST

/* ---- PPO: clipped policy and value losses ------------------------------------------------- */

enum { PB = 2, PT = 7 };
typedef struct {
    float logp[PB * PT], old[PB * PT], adv[PB * PT];
    float clip;
    rl_span_t span;
} policy_ctx;

static double policy_loss(const void *ctx) {
    const policy_ctx *c = ctx;
    return rl_policy_forward(NULL, c->logp, c->old, c->adv, c->clip, &c->span);
}

/* Ratios inside and on both sides of [0.8, 1.2] with advantages of both signs: the clipped
 * branch is active (and the gradient 0) exactly where ratio > 1.2 with A > 0 or ratio < 0.8
 * with A < 0; elsewhere, including ratio > 1.2 with A < 0, the gradient is −A·ratio/n. */
START_TEST(test_rl_policy_clip_and_grad) {
    static const int64_t start[PB] = {1, 0}, len[PB] = {5, 6};
    policy_ctx c = {.clip = 0.2f, .span = {.start = start, .len = len, .B = PB, .T = PT}};
    /* log-ratio and advantage of the 11 tokens */
    const float d[11] = {0.05f, 0.5f, -0.5f, 0.1f, 0.3f, -0.3f, 0.5f, -0.5f, -0.05f, 0.4f, -0.4f};
    const float a[11] = {1.0f, 0.7f, -1.2f, -0.4f, -0.9f, 0.6f, -0.3f, 0.8f, 1.5f, 2.0f, -1.0f};
    rng_t rng;
    rng_seed(&rng, 8);
    int k = 0, want_clipped = 0;
    double want_loss = 0.0, want_kl = 0.0;
    for (int64_t b = 0; b < PB; b++)
        for (int64_t t = 0; t < PT; t++) {
            const int64_t i = b * PT + t;
            if (t < start[b] || t >= start[b] + len[b]) {
                c.logp[i] = c.old[i] = c.adv[i] = NAN;
                continue;
            }
            c.old[i] = -1.0f - 2.0f * rng_float(&rng);
            c.logp[i] = c.old[i] + d[k];
            c.adv[i] = a[k];
            const double ratio = exp((double)c.logp[i] - (double)c.old[i]);
            const double cr = fmin(fmax(ratio, 0.8), 1.2);
            want_loss += fmax(-(double)a[k] * ratio, -(double)a[k] * cr);
            want_clipped += (ratio > 1.2 && a[k] > 0) || (ratio < 0.8 && a[k] < 0);
            want_kl += 0.5 * ((double)c.logp[i] - (double)c.old[i]) *
                       ((double)c.logp[i] - (double)c.old[i]);
            k++;
        }
    ck_assert_int_eq(want_clipped, 4);
    rl_policy_stats_t st;
    const double loss = rl_policy_forward(&st, c.logp, c.old, c.adv, c.clip, &c.span);
    ck_assert(fabs(loss - want_loss / 11.0) < 1e-6);
    ck_assert_int_eq(st.tokens, 11);
    ck_assert(fabs(st.clipfrac - want_clipped / 11.0) < 1e-12);
    ck_assert(fabs(st.approx_kl - want_kl / 11.0) < 1e-6);
    float dlogp[PB * PT];
    rl_policy_backward(dlogp, c.logp, c.old, c.adv, c.clip, &c.span);
    int zeros = 0;
    for (int64_t i = 0; i < PB * PT; i++) {
        if (isnan(c.adv[i])) {
            ck_assert(dlogp[i] == 0.0f);
            continue;
        }
        const double ratio = exp((double)c.logp[i] - (double)c.old[i]);
        const bool clipped = (ratio > 1.2 && c.adv[i] > 0) || (ratio < 0.8 && c.adv[i] < 0);
        if (clipped) {
            ck_assert_msg(dlogp[i] == 0.0f, "token %lld: clipped, gradient %g", (long long)i,
                          (double)dlogp[i]);
            zeros++;
        } else {
            ck_assert(fabs((double)dlogp[i] + (double)c.adv[i] * ratio / 11.0) < 1e-7);
        }
        const double fd = central_diff(&c.logp[i], 1e-3f, policy_loss, &c);
        ck_assert_msg(fabs(fd - (double)dlogp[i]) <= 1e-5 + 1e-3 * fabs(fd),
                      "token %lld: backward %.7g, finite difference %.7g", (long long)i,
                      (double)dlogp[i], fd);
    }
    ck_assert_int_eq(zeros, 4);
}
END_TEST

typedef struct {
    float v[PB * PT], old[PB * PT], ret[PB * PT];
    float clip;
    rl_span_t span;
} value_ctx;

static double value_loss(const void *ctx) {
    const value_ctx *c = ctx;
    return rl_value_forward(NULL, c->v, c->old, c->ret, c->clip, &c->span);
}

/* V moved from V_old by d (inside and outside ±0.2), returns on either side: the clipped term
 * wins (gradient 0) only when V left the clip range and the return lies beyond the clip
 * bound; elsewhere the gradient is (V − R)/n. */
START_TEST(test_rl_value_clip_and_grad) {
    static const int64_t len[PB] = {7, 4};
    value_ctx c = {.clip = 0.2f, .span = {.start = NULL, .len = len, .B = PB, .T = PT}};
    const float d[11] = {0.05f, 0.5f, 0.5f, -0.5f, -0.5f, 0.1f, 0.3f, -0.3f, 0.0f, 1.0f, -0.15f};
    const float gap[11] = {0.4f, 1.0f, -0.3f, -1.0f, 0.6f, -0.2f, 0.7f, 0.05f, 0.5f, 1.5f, -0.6f};
    rng_t rng;
    rng_seed(&rng, 9);
    int k = 0, want_clipped = 0;
    double want_loss = 0.0;
    for (int64_t b = 0; b < PB; b++)
        for (int64_t t = 0; t < PT; t++) {
            const int64_t i = b * PT + t;
            if (t >= len[b]) {
                c.v[i] = c.old[i] = c.ret[i] = NAN;
                continue;
            }
            c.old[i] = rng_normal(&rng);
            c.v[i] = c.old[i] + d[k];
            c.ret[i] = c.old[i] + gap[k]; /* R relative to V_old */
            const double vc =
                fmin(fmax((double)c.v[i], (double)c.old[i] - 0.2), (double)c.old[i] + 0.2);
            const double u = pow((double)c.v[i] - (double)c.ret[i], 2.0),
                         cl = pow(vc - (double)c.ret[i], 2.0);
            want_loss += fmax(u, cl);
            want_clipped += cl > u;
            k++;
        }
    ck_assert_int_eq(want_clipped, 4);
    rl_value_stats_t st;
    const double loss = rl_value_forward(&st, c.v, c.old, c.ret, c.clip, &c.span);
    ck_assert(fabs(loss - 0.5 * want_loss / 11.0) < 1e-6);
    ck_assert(fabs(st.clipfrac - want_clipped / 11.0) < 1e-12);
    float dv[PB * PT];
    rl_value_backward(dv, c.v, c.old, c.ret, c.clip, &c.span);
    int zeros = 0;
    for (int64_t i = 0; i < PB * PT; i++) {
        if (isnan(c.v[i])) {
            ck_assert(dv[i] == 0.0f);
            continue;
        }
        zeros += dv[i] == 0.0f;
        const double fd = central_diff(&c.v[i], 1e-3f, value_loss, &c);
        ck_assert_msg(fabs(fd - (double)dv[i]) <= 1e-5 + 1e-3 * fabs(fd),
                      "token %lld: backward %.7g, finite difference %.7g", (long long)i,
                      (double)dv[i], fd);
    }
    ck_assert_int_eq(zeros, 4);
    /* clip = INFINITY: the plain squared error */
    ck_assert(rl_value_forward(&st, c.v, c.old, c.ret, INFINITY, &c.span) <= loss);
    ck_assert_double_eq(st.clipfrac, 0.0);
}
END_TEST

START_TEST(test_rl_explained_variance) {
    const int64_t len[1] = {4};
    const rl_span_t span = {.start = NULL, .len = len, .B = 1, .T = 5};
    const float ret[5] = {1.0f, 2.0f, 3.0f, 6.0f, NAN};
    const float perfect[5] = {1.0f, 2.0f, 3.0f, 6.0f, NAN};
    const float shifted[5] = {2.0f, 3.0f, 4.0f, 7.0f, NAN}; /* constant error: variance 0 */
    const float flat[5] = {3.0f, 3.0f, 3.0f, 3.0f, NAN};    /* a constant: explains nothing */
    ck_assert(fabs(rl_explained_variance(perfect, ret, &span) - 1.0) < 1e-12);
    ck_assert(fabs(rl_explained_variance(shifted, ret, &span) - 1.0) < 1e-12);
    ck_assert(fabs(rl_explained_variance(flat, ret, &span)) < 1e-12);
    ck_assert(isnan(rl_explained_variance(ret, flat, &span))); /* Var(R) = 0 */
}
END_TEST

/* ---- PPO: the adaptive KL controller ------------------------------------------------------ */

START_TEST(test_rl_kl_ctl_moves_beta) {
    rl_kl_ctl_t ctl = {.value = 0.1, .target = 6.0, .horizon = 10000.0};
    rl_kl_ctl_update(&ctl, 6.6, 256); /* 10% over: β × (1 + 0.1·256/10000) */
    ck_assert(fabs(ctl.value - 0.1 * 1.00256) < 1e-15);
    ctl.value = 0.1;
    rl_kl_ctl_update(&ctl, 60.0, 256); /* far over: the error is clipped to +0.2 */
    ck_assert(fabs(ctl.value - 0.1 * 1.00512) < 1e-15);
    ctl.value = 0.1;
    rl_kl_ctl_update(&ctl, 0.0, 256); /* far under: −0.2 */
    ck_assert(fabs(ctl.value - 0.1 * 0.99488) < 1e-15);
    ctl.value = 0.1;
    rl_kl_ctl_update(&ctl, 6.0, 256); /* on target: unchanged */
    ck_assert_double_eq(ctl.value, 0.1);
    /* repeated high KL keeps raising β, low KL keeps lowering it */
    for (int i = 0; i < 10; i++) rl_kl_ctl_update(&ctl, 9.0, 64);
    ck_assert(ctl.value > 0.1);
    const double high = ctl.value;
    for (int i = 0; i < 20; i++) rl_kl_ctl_update(&ctl, 1.0, 64);
    ck_assert(ctl.value < high && ctl.value < 0.1);
    rl_kl_ctl_t fixed = {.value = 0.02, .target = 0.0, .horizon = 10000.0};
    rl_kl_ctl_update(&fixed, 100.0, 256);
    ck_assert_double_eq(fixed.value, 0.02);
}
END_TEST

/* ---- PPO with real models ----------------------------------------------------------------- */

enum { KB = 2, KT = 8 };

/* log softmax(logits / temperature)[tok] in double. */
static double ref_logprob(const float *logits, int64_t V, double temperature, int64_t tok) {
    double max = -INFINITY, z = 0.0;
    for (int64_t i = 0; i < V; i++) max = fmax(max, (double)logits[i] / temperature);
    for (int64_t i = 0; i < V; i++) z += exp((double)logits[i] / temperature - max);
    return (double)logits[tok] / temperature - max - log(z);
}

/* The per-token KL reward equals log-prob differences from two full forwards: a policy and a
 * reference (different seeds) read the same prompt + response rows; the log-probs of the
 * response tokens (gpt_lm_logprobs at temperature 0.7, in place at position prompt_len − 1 + i)
 * go into rl_token_rewards with start = prompt_len − 1, and every reward equals
 * −β·(log π(y_i) − log π_ref(y_i)) computed directly from each model's logits, plus the score
 * at the last token. */
START_TEST(test_rl_kl_reward_from_two_forwards) {
    gpt_model_t *pol = tiny_model(GPT_HEAD_LM, 10, KB, KT, false);
    gpt_model_t *ref = tiny_model(GPT_HEAD_LM, 11, KB, KT, false);
    const int64_t plen[KB] = {3, 2}, rlen[KB] = {4, 6}, start[KB] = {2, 1};
    const rl_span_t span = {.start = start, .len = rlen, .B = KB, .T = KT};
    int32_t tokens[KB * KT], targets[KB * KT];
    rng_t rng;
    rng_seed(&rng, 12);
    for (int64_t b = 0; b < KB; b++)
        for (int64_t t = 0; t < KT; t++)
            tokens[b * KT + t] = t < plen[b] + rlen[b] ? (int32_t)rng_below(&rng, 23) : 0;
    for (int64_t b = 0; b < KB; b++) /* position t predicts token t + 1 */
        for (int64_t t = 0; t < KT; t++) {
            const bool resp = t >= start[b] && t < start[b] + rlen[b];
            targets[b * KT + t] = resp ? tokens[b * KT + t + 1] : -1;
        }
    const float temp = 0.7f, beta = 0.05f, scores[KB] = {0.8f, -1.3f};
    const int64_t V = tiny.vocab_size;
    float logp[KB * KT], ref_logp[KB * KT], rewards[KB * KT];
    double direct[KB * KT] = {0}, kl_rows = 0.0;
    gpt_forward(pol, tokens, KB, KT);
    gpt_lm_logprobs(pol, targets, temp, logp);
    for (int64_t i = 0; i < KB * KT; i++)
        if (targets[i] >= 0) direct[i] = ref_logprob(pol->logits + i * V, V, temp, targets[i]);
    gpt_forward(ref, tokens, KB, KT);
    gpt_lm_logprobs(ref, targets, temp, ref_logp);
    for (int64_t i = 0; i < KB * KT; i++)
        if (targets[i] >= 0) {
            const double lr = ref_logprob(ref->logits + i * V, V, temp, targets[i]);
            kl_rows += direct[i] - lr;
            direct[i] = -(double)beta * (direct[i] - lr);
        }
    for (int64_t b = 0; b < KB; b++) direct[b * KT + start[b] + rlen[b] - 1] += (double)scores[b];
    const double kl = rl_token_rewards(rewards, logp, ref_logp, scores, beta, &span);
    double worst = 0.0, spread = 0.0;
    for (int64_t i = 0; i < KB * KT; i++) {
        worst = fmax(worst, fabs((double)rewards[i] - direct[i]));
        if (targets[i] >= 0) spread += fabs((double)logp[i] - (double)ref_logp[i]);
    }
    ck_assert_msg(worst < 1e-6, "per-token rewards differ from the direct computation by %g",
                  worst);
    ck_assert_msg(fabs(kl - kl_rows / KB) < 1e-5, "mean KL %.7f, direct %.7f", kl, kl_rows / KB);
    ck_assert_msg(spread > 0.1, "the two models barely differ (Σ|Δlogp| %g)", spread);
    gpt_destroy(&pol);
    gpt_destroy(&ref);
}
END_TEST

/* The log-probs the KV-cached generator records at temperature 0.7 (the old log-probs of the
 * rollout) equal gpt_lm_logprobs at 0.7 from one full forward over prompt + response, within
 * 1e-5: the ratio of the first PPO epoch is 1 up to float rounding. */
START_TEST(test_rl_gen_logprobs_match_full_forward) {
    enum { GB = 3, GT = 8 };
    err_t err = ERR_INIT;
    gpt_model_t *m = tiny_model(GPT_HEAD_LM, 13, GB, GT, false);
    gen_t *g = gen_new(m, GB, GT, &err);
    ck_assert_msg(g, "%s", err.msg);
    const int32_t prompts[GB * GT] = {1, 2, 3, 0, 0, 0, 0, 0, 4, 0, 0, 0,
                                      0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 0, 0};
    const int64_t plen[GB] = {3, 1, 2};
    gen_opts_t o = GEN_OPTS_DEFAULT;
    o.temperature = 0.7f;
    o.max_new = 5;
    o.seed = 14;
    ck_assert_msg(!gen_run(g, prompts, GT, plen, GB, &o, &err), "%s", err.msg);
    const gen_result_t res = gen_result(g);
    int32_t full[GB * GT], targets[GB * GT];
    int64_t start[GB];
    for (int64_t b = 0; b < GB; b++) {
        start[b] = plen[b] - 1;
        for (int64_t t = 0; t < GT; t++) {
            const int64_t i = t - plen[b];
            full[b * GT + t] = t < plen[b]        ? prompts[b * GT + t]
                               : i < res.count[b] ? res.tokens[b * res.stride + i]
                                                  : 0;
            targets[b * GT + t] = -1;
        }
        for (int64_t i = 0; i < res.count[b]; i++)
            targets[b * GT + start[b] + i] = full[b * GT + plen[b] + i];
        ck_assert_int_eq(res.count[b], 5);
    }
    gpt_forward(m, full, GB, GT);
    float logp[GB * GT];
    gpt_lm_logprobs(m, targets, o.temperature, logp);
    double worst = 0.0;
    for (int64_t b = 0; b < GB; b++)
        for (int64_t i = 0; i < res.count[b]; i++)
            worst = fmax(worst, fabs((double)logp[b * GT + start[b] + i] -
                                     (double)res.logprobs[b * res.stride + i]));
    ck_assert_msg(worst <= 1e-5, "generator log-probs differ from the full forward by %g", worst);
    gen_destroy(&g);
    gpt_destroy(&m);
}
END_TEST

/* Every rl_ function runs on caller buffers: none allocates. */
START_TEST(test_rl_allocates_nothing) {
    enum { B = 2, T = 6 };
    const int64_t start[B] = {1, 0}, len[B] = {4, 6}, counts[2] = {3, 3}, lengths[B] = {6, 2};
    const int32_t ranks[6] = {1, 2, 2, 3, 1, 2};
    const rl_span_t span = {.start = start, .len = len, .B = B, .T = T};
    float a[B * T], b[B * T], c[B * T], d[B * T], e[B * T], f[B * T];
    for (int i = 0; i < B * T; i++) a[i] = 0.1f * (float)i, b[i] = -0.05f * (float)i, c[i] = 1.0f;
    rl_running_t run = RL_RUNNING_INIT;
    rl_kl_ctl_t ctl = {.value = 0.1, .target = 6.0, .horizon = 10000.0};
    rl_rank_stats_t rs;
    rl_policy_stats_t ps;
    rl_value_stats_t vs;
    alloc_count_start();
    double sink = rl_rank_forward(&rs, a, ranks, counts, 2);
    rl_rank_backward(d, a, ranks, counts, 2);
    rl_last_forward(e, a, lengths, B, T);
    rl_last_backward(d, e, lengths, B, T);
    sink += rl_token_rewards(d, a, b, c, 0.1f, &span);
    rl_gae(e, f, d, a, 1.0f, 0.95f, &span);
    sink += (double)rl_whiten(e, true, &span);
    rl_running_update(&run, a, 4);
    rl_running_normalize(&run, c, 2, false);
    sink += rl_policy_forward(&ps, a, b, e, 0.2f, &span);
    rl_policy_backward(d, a, b, e, 0.2f, &span);
    sink += rl_value_forward(&vs, a, b, c, 0.2f, &span);
    rl_value_backward(d, a, b, c, 0.2f, &span);
    sink += rl_explained_variance(a, b, &span);
    rl_kl_ctl_update(&ctl, 7.0, 2);
    ck_assert_int_eq(alloc_count_stop(), 0);
    ck_assert(isfinite(sink));
}
END_TEST

Suite *test_rl_suite(void);
Suite *test_rl_suite(void) {
    Suite *s = suite_create("rl");
    TCase *tc = tcase_create("reward");
    tcase_add_test(tc, test_rl_rank_hand_k4_tie);
    tcase_add_test(tc, test_rl_rank_batch_grad);
    tcase_add_test(tc, test_rl_rank_stable_at_extremes);
    tcase_add_test(tc, test_rl_rank_through_score_model);
    tcase_add_test(tc, test_rl_fixture_reward_model);
    suite_add_tcase(s, tc);
    tc = tcase_create("ppo");
    tcase_add_test(tc, test_rl_gae_hand);
    tcase_add_test(tc, test_rl_gae_matches_definition);
    tcase_add_test(tc, test_rl_whiten_valid_tokens_only);
    tcase_add_test(tc, test_rl_reduced_over_split_rows);
    tcase_add_test(tc, test_rl_running_moments);
    tcase_add_test(tc, test_rl_policy_clip_and_grad);
    tcase_add_test(tc, test_rl_value_clip_and_grad);
    tcase_add_test(tc, test_rl_explained_variance);
    tcase_add_test(tc, test_rl_kl_ctl_moves_beta);
    tcase_add_test(tc, test_rl_kl_reward_from_two_forwards);
    tcase_add_test(tc, test_rl_gen_logprobs_match_full_forward);
    tcase_add_test(tc, test_rl_allocates_nothing);
    suite_add_tcase(s, tc);
    return s;
}
