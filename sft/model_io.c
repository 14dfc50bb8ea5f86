/* sft/model_io.c: loading a model directory with its tokenizer, and the text helpers around it. */
#include "model_io.h"
#include "data.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Fills eos_id and pad_id from the config and the tokenizer, checking they agree. */
static int resolve_ids(sft_model_t *m, err_t *err) {
    const int64_t V = m->model->cfg.vocab_size;
    const int32_t eot = tok_eot_id(m->tok);
    if (m->meta.eos_id >= 0 && eot >= 0 && m->meta.eos_id != eot)
        return err_setf(err,
                        "%s: config.json says the end-of-text id is %d, the tokenizer's "
                        "\"" TOK_EOT_TEXT "\" is %d",
                        m->dir, m->meta.eos_id, eot);
    m->eos_id = m->meta.eos_id >= 0 ? m->meta.eos_id : eot;
    if (m->eos_id < 0)
        return err_setf(err,
                        "%s: no end-of-text id (config.json has none and the tokenizer has no "
                        "\"" TOK_EOT_TEXT "\")",
                        m->dir);
    m->pad_id = m->meta.pad_id >= 0 ? m->meta.pad_id : m->eos_id;
    if (m->eos_id >= V || m->pad_id >= V)
        return err_setf(err, "%s: end-of-text %d / padding %d outside the vocabulary (%lld ids)",
                        m->dir, m->eos_id, m->pad_id, (long long)V);
    return 0;
}

int sft_model_load(sft_model_t *m, const char *dir, err_t *err) {
    memset(m, 0, sizeof *m);
    m->dir = dir;
    m->model = ckpt_load(dir, &m->meta, err);
    if (!m->model) goto fail;
    if (m->model->head != GPT_HEAD_LM) {
        err_setf(err,
                 "%s: a reward or value model (GPT2ForSequenceClassification); this "
                 "command needs a language model (GPT2LMHeadModel)",
                 dir);
        goto fail;
    }
    if (data_template_check(dir, m->meta.template_name, err)) goto fail;
    m->tok = tok_load(dir, err);
    if (!m->tok) {
        err_prefixf(err, "%s: this command reads text, so the model needs its tokenizer: ", dir);
        goto fail;
    }
    if (tok_vocab_size(m->tok) > m->model->cfg.vocab_size) {
        err_setf(err, "%s: the tokenizer has %d ids, the model's vocab_size is only %lld", dir,
                 tok_vocab_size(m->tok), (long long)m->model->cfg.vocab_size);
        goto fail;
    }
    if (resolve_ids(m, err)) goto fail;
    return 0;
fail:
    sft_model_release(m);
    return -1;
}

void sft_model_release(sft_model_t *m) {
    tok_destroy(&m->tok);
    gpt_destroy(&m->model);
    memset(m, 0, sizeof *m);
}

int64_t sft_model_encode(void *ctx, const char *text, int64_t len, int32_t *ids, int64_t cap,
                         err_t *err) {
    sft_model_t *m = ctx;
    return tok_encode_into(m->tok, text, len, false, ids, cap, err);
}

size_t sft_utf8_sanitize(const char *str, size_t n, char *out) {
    const unsigned char *s = (const unsigned char *)str;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c == 0xE0) lo = 0xA0;           /* no overlong 3-byte forms */
        if (c == 0xED) hi = 0x9F;           /* no surrogates */
        if (c == 0xF0) lo = 0x90;           /* no overlong 4-byte forms */
        if (c == 0xF4) hi = 0x8F;           /* nothing past U+10FFFF */
        if (c == 0xC0 || c == 0xC1 || c > 0xF4) len = 0;
        size_t ok = len ? 1 : 0;
        while (ok > 0 && ok < len && i + ok < n) {
            const unsigned char d = s[i + ok];
            if (ok == 1 ? d < lo || d > hi : (d & 0xC0) != 0x80) break;
            ok++;
        }
        if (len && ok == len) {
            memcpy(out + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(out + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += ok ? ok : 1;
        }
    }
    out[k] = '\0';
    return k;
}

char *sft_model_decode_response(const sft_model_t *m, const int32_t *ids, int64_t n, size_t *len,
                                err_t *err) {
    int64_t n_bytes = 0;
    char *bytes = tok_decode(m->tok, ids, n, &n_bytes, err);
    if (!bytes) return NULL;
    const char *text = data_template_strip(bytes);
    const size_t skip = (size_t)(text - bytes);
    char *out = malloc(3 * ((size_t)n_bytes - skip) + 1);
    if (!out) {
        free(bytes);
        err_setf(err, "out of memory");
        return NULL;
    }
    const size_t k = sft_utf8_sanitize(text, (size_t)n_bytes - skip, out);
    if (len) *len = k;
    free(bytes);
    return out;
}
