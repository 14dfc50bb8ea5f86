/* common/rmserve.c: see rmserve.h. */
#include "rmserve.h"
#include <stdlib.h>

struct rmserve {
    rm_t *rm;
    int64_t cap;            /* items one call may hold */
    const char **prompts;   /* [cap] views of the call's items, in rm_score's form */
    const char **responses; /* [cap] */
    size_t *plens, *rlens;  /* [cap] */
};

rmserve_t *rmserve_new(model_t *m, int64_t max_items, err_t *err) {
    rmserve_t *s = calloc(1, sizeof *s);
    if (!s) return err_setf(err, "out of memory"), NULL;
    s->cap = max_items > 0 ? max_items : WIRE_MAX_ITEMS;
    s->prompts = calloc((size_t)s->cap, sizeof *s->prompts);
    s->responses = calloc((size_t)s->cap, sizeof *s->responses);
    s->plens = calloc((size_t)s->cap, sizeof *s->plens);
    s->rlens = calloc((size_t)s->cap, sizeof *s->rlens);
    if (!s->prompts || !s->responses || !s->plens || !s->rlens) {
        err_setf(err, "out of memory");
        rmserve_destroy(&s);
        return NULL;
    }
    if (!(s->rm = rm_new(m, 0, err))) rmserve_destroy(&s);
    return s;
}

void rmserve_destroy(rmserve_t **sp) {
    rmserve_t *s = *sp;
    if (!s) return;
    rm_destroy(&s->rm);
    free(s->prompts);
    free(s->responses);
    free(s->plens);
    free(s->rlens);
    free(s);
    *sp = NULL;
}

int rmserve_score(void *ctx, const wire_item_t *items, int64_t n, double *scores, err_t *err) {
    rmserve_t *s = ctx;
    if (n > s->cap) /* the server was given more than it promised: our bug, not the client's */
        return err_setf(err, "internal: %lld items in one call, sized for %lld", (long long)n,
                        (long long)s->cap);
    for (int64_t i = 0; i < n; i++) {
        s->prompts[i] = items[i].prompt;
        s->plens[i] = items[i].prompt_len;
        s->responses[i] = items[i].response;
        s->rlens[i] = items[i].response_len;
    }
    return rm_score(s->rm, s->prompts, s->plens, s->responses, s->rlens, n, scores, err);
}

json_t *rmserve_info(const model_t *m) {
    const gpt_config_t *c = &m->model->cfg;
    return json_pack("{s:s, s:{s:I, s:I, s:I, s:I, s:I}, s:s, s:f, s:i}", "model", m->dir, "config",
                     "n_embd", (json_int_t)c->n_embd, "n_layer", (json_int_t)c->n_layer, "n_head",
                     (json_int_t)c->n_head, "n_positions", (json_int_t)c->n_positions, "vocab_size",
                     (json_int_t)c->vocab_size, "template", m->meta.template_name, "reward_bias",
                     m->meta.reward_bias, "eos_id", (int)m->eos_id);
}

rm_stats_t rmserve_stats(const rmserve_t *s) {
    return rm_stats(s->rm);
}
