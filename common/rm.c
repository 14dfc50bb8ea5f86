/* common/rm.c: reward-model scoring, one forward per pair (see rm.h). */
#include "rm.h"
#include "data.h"
#include "gpt.h"
#include "tok.h"
#include <stdlib.h>
#include <string.h>

struct rm {
    model_t *m;
    int64_t T_max;
    int32_t *tokens; /* (T_max) one pair's ids */
    char *text;      /* template scratch */
    size_t text_cap;
    rm_stats_t stats;
};

rm_t *rm_new(model_t *m, int64_t T_max, err_t *err) {
    if (!m->model || m->model->head != GPT_HEAD_SCORE || !m->tok) {
        err_setf(err, "%s: a reward model with its tokenizer is needed", m->dir ? m->dir : "?");
        return NULL;
    }
    const int64_t ctx = m->model->cfg.n_positions;
    if (T_max <= 0 || T_max > ctx) T_max = ctx;
    rm_t *r = calloc(1, sizeof *r);
    if (!r) {
        err_setf(err, "out of memory");
        return NULL;
    }
    r->m = m;
    r->T_max = T_max;
    r->tokens = malloc((size_t)T_max * sizeof *r->tokens);
    if (!r->tokens) {
        rm_destroy(&r);
        err_setf(err, "out of memory");
        return NULL;
    }
    if (gpt_alloc(m->model, 1, T_max, false, err)) {
        rm_destroy(&r);
        return NULL;
    }
    return r;
}

void rm_destroy(rm_t **r) {
    if (!r || !*r) return;
    free((*r)->tokens);
    free((*r)->text);
    free(*r);
    *r = NULL;
}

/* Tokenizes fmt(text) into ids (at most cap), using text scratch; -1 on error. */
static int64_t encode_part(const model_t *m, size_t (*fmt)(char *, size_t, const char *, size_t),
                           const char *s, size_t n, char **buf, size_t *buf_cap, int32_t *ids,
                           int64_t cap, err_t *err) {
    const size_t need = fmt(NULL, 0, s, n) + 1;
    if (need > *buf_cap) {
        char *b = realloc(*buf, need);
        if (!b) return err_setf(err, "out of memory");
        *buf = b;
        *buf_cap = need;
    }
    fmt(*buf, need, s, n);
    /* "<|endoftext|>" inside text is text, never the id: a response cannot end itself early */
    return tok_encode_into(m->tok, *buf, (int64_t)need - 1, false, ids, cap, err);
}

static int64_t encode_pair(const model_t *m, const char *prompt, size_t plen, const char *response,
                           size_t rlen, int32_t *ids, int64_t context, int *truncated, char **buf,
                           size_t *buf_cap, err_t *err) {
    /* byte-level BPE gives at most one token per byte: bound the scratch by bytes */
    const int64_t pmax = (int64_t)data_template_promptn(NULL, 0, prompt, plen);
    const int64_t rmax = (int64_t)data_template_responsen(NULL, 0, response, rlen);
    int32_t *tmp = malloc((size_t)(pmax + rmax + 2) * sizeof *tmp);
    if (!tmp) return err_setf(err, "out of memory");
    int64_t np =
        encode_part(m, data_template_promptn, prompt, plen, buf, buf_cap, tmp, pmax + 1, err);
    int64_t nr = np < 0 ? -1
                        : encode_part(m, data_template_responsen, response, rlen, buf, buf_cap,
                                      tmp + np, rmax + 1, err);
    if (np < 0 || nr < 0) {
        free(tmp);
        return -1;
    }
    if (np + 1 >= context) {
        free(tmp);
        return err_setf(err,
                        "prompt is %lld tokens with the template, the context is %lld: no "
                        "room for a response",
                        (long long)np, (long long)context);
    }
    int cut = 0;
    if (np + nr + 1 > context) {
        nr = context - 1 - np;
        cut = 1;
    }
    memcpy(ids, tmp, (size_t)(np + nr) * sizeof *ids);
    ids[np + nr] = m->eos_id;
    free(tmp);
    if (truncated) *truncated = cut;
    return np + nr + 1;
}

int64_t rm_encode(const model_t *m, const char *prompt, size_t prompt_len, const char *response,
                  size_t response_len, int32_t *ids, int64_t context, int *truncated, err_t *err) {
    char *buf = NULL;
    size_t cap = 0;
    const int64_t n = encode_pair(m, prompt, prompt_len, response, response_len, ids, context,
                                  truncated, &buf, &cap, err);
    free(buf);
    return n;
}

int rm_score(rm_t *r, const char *const *prompts, const size_t *plens, const char *const *responses,
             const size_t *rlens, int64_t n, double *scores, err_t *err) {
    gpt_model_t *g = r->m->model;
    const double bias = r->m->meta.reward_bias;
    for (int64_t i = 0; i < n; i++) {
        int cut = 0;
        const int64_t len = encode_pair(r->m, prompts[i], plens[i], responses[i], rlens[i],
                                        r->tokens, r->T_max, &cut, &r->text, &r->text_cap, err);
        if (len < 0) return err_prefixf(err, "item %lld: ", (long long)i);
        gpt_forward(g, r->tokens, 1, len);
        scores[i] = (double)g->values[len - 1] + bias;
        r->stats.truncated += cut;
        r->stats.tokens += len;
        r->stats.pairs++;
        r->stats.forwards++;
    }
    return 0;
}

rm_stats_t rm_stats(const rm_t *r) {
    return r->stats;
}
