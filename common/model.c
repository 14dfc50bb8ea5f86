/* common/model.c: loading a model directory with its tokenizer and head, and the text helpers
 * around it. */
#include "model.h"
#include "data.h"
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fills eos_id and pad_id from the config and the tokenizer, checking they agree. */
static int resolve_ids(model_t *m, err_t *err) {
    const int64_t V = m->model->cfg.vocab_size;
    const int32_t eot = m->tok ? tok_eot_id(m->tok) : -1;
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

/* What the head bits of need ask for, for the refusal message. */
static const char *wanted(unsigned need) {
    const bool lm = need & MODEL_HEAD_LM, reward = need & MODEL_HEAD_REWARD,
               value = need & MODEL_HEAD_VALUE;
    if (lm) return "a language model (GPT2LMHeadModel)";
    if (reward && value) return "a reward or value model (GPT2ForSequenceClassification)";
    if (reward) return "a reward model (GPT2ForSequenceClassification)";
    return "a value model (GPT2ForSequenceClassification)";
}

static int check_head(const model_t *m, unsigned need, err_t *err) {
    const bool lm = m->model->head == GPT_HEAD_LM;
    if (lm ? need & MODEL_HEAD_LM : need & (MODEL_HEAD_REWARD | MODEL_HEAD_VALUE)) return 0;
    return err_setf(err, "%s: %s; this command needs %s", m->dir,
                    lm ? "a language model (GPT2LMHeadModel)"
                       : "a reward or value model (GPT2ForSequenceClassification)",
                    wanted(need));
}

/* True when neither tokenizer file exists (an absent tokenizer, not a broken one). */
static bool no_tokenizer_files(const char *dir) {
    char vocab[4096], merges[4096];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    return access(vocab, F_OK) != 0 && access(merges, F_OK) != 0;
}

static int load_tokenizer(model_t *m, unsigned need, err_t *err) {
    if ((need & MODEL_TOKENIZER_OPTIONAL) && no_tokenizer_files(m->dir)) return 0;
    m->tok = tok_load(m->dir, err);
    if (!m->tok)
        return err_prefixf(
            err, "%s: this command reads text, so the model needs its tokenizer: ", m->dir);
    if (tok_vocab_size(m->tok) > m->model->cfg.vocab_size)
        return err_setf(err, "%s: the tokenizer has %d ids, the model's vocab_size is only %lld",
                        m->dir, tok_vocab_size(m->tok), (long long)m->model->cfg.vocab_size);
    return 0;
}

int model_load(model_t *m, const char *dir, unsigned need, err_t *err) {
    memset(m, 0, sizeof *m);
    m->dir = dir;
    if (!(need & (MODEL_HEAD_LM | MODEL_HEAD_REWARD | MODEL_HEAD_VALUE))) {
        err_setf(err, "%s: model_load: no head accepted (a bug)", dir);
        goto fail;
    }
    m->model = ckpt_load(dir, &m->meta, err);
    if (!m->model) goto fail;
    if (check_head(m, need, err)) goto fail;
    if (data_template_check(dir, m->meta.template_name, err)) goto fail;
    if (load_tokenizer(m, need, err)) goto fail;
    if (resolve_ids(m, err)) goto fail;
    return 0;
fail:
    model_release(m);
    return -1;
}

void model_release(model_t *m) {
    tok_destroy(&m->tok);
    gpt_destroy(&m->model);
    memset(m, 0, sizeof *m);
}

/* ---- Do two models read the same tokens? -------------------------------------------------- */

#define MODEL_DIFFER " (the two models do not read tokens the same way)"

/* merges.txt after an optional "#version" first line, as a NUL-terminated buffer (caller
 * frees *text) with *body pointing past that line. */
static int read_merges(const char *dir, char **text, const char **body, err_t *err) {
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    if (data_read_file(path, text, &len, err)) return -1;
    *body = *text;
    if (!strncmp(*body, "#version", 8)) {
        const char *nl = strchr(*body, '\n');
        *body = nl ? nl + 1 : *body + len;
    }
    return 0;
}

/* The first line where the two merge lists differ (1-based, counting merges), or 0. */
static int64_t merges_differ(const char *a, const char *b) {
    int64_t line = 1;
    for (; *a && *a == *b; a++, b++) line += *a == '\n';
    return *a == *b ? 0 : line;
}

/* A token's bytes quoted for a message, cut to fit and made printable. */
static void quote_token(char *out, size_t size, const tok_t *tok, int32_t id) {
    int64_t len = 0;
    const char *s = tok_token(tok, id, &len);
    size_t k = 0;
    out[k++] = '"';
    for (int64_t i = 0; s && i < len && k + 6 < size; i++) {
        const unsigned char c = (unsigned char)s[i];
        k += (size_t)snprintf(out + k, size - k,
                              c >= 0x20 && c < 0x7f && c != '"' ? "%c" : "\\x%02x", c);
    }
    snprintf(out + k, size - k, "\"");
}

static int compare_tokens(const model_t *a, const model_t *b, err_t *err) {
    const int32_t n = tok_vocab_size(a->tok);
    if (n != tok_vocab_size(b->tok))
        return err_setf(err, "%s: the tokenizer has %d ids, %s's has %d" MODEL_DIFFER, a->dir, n,
                        b->dir, tok_vocab_size(b->tok));
    for (int32_t id = 0; id < n; id++) {
        int64_t la = 0, lb = 0;
        const char *ta = tok_token(a->tok, id, &la), *tb = tok_token(b->tok, id, &lb);
        if (la == lb && !memcmp(ta, tb, (size_t)la)) continue;
        char qa[64], qb[64];
        quote_token(qa, sizeof qa, a->tok, id);
        quote_token(qb, sizeof qb, b->tok, id);
        return err_setf(err, "%s: token %d is %s, %s's is %s" MODEL_DIFFER, a->dir, id, qa, b->dir,
                        qb);
    }
    if (tok_merge_count(a->tok) != tok_merge_count(b->tok))
        return err_setf(err, "%s: the tokenizer has %d merges, %s's has %d" MODEL_DIFFER, a->dir,
                        tok_merge_count(a->tok), b->dir, tok_merge_count(b->tok));
    char *ta = NULL, *tb = NULL;
    const char *ba = NULL, *bb = NULL;
    int rc = read_merges(a->dir, &ta, &ba, err) || read_merges(b->dir, &tb, &bb, err) ? -1 : 0;
    const int64_t line = rc ? 0 : merges_differ(ba, bb);
    if (line)
        rc = err_setf(err, "%s: merge %" PRId64 " differs from %s's" MODEL_DIFFER, a->dir, line,
                      b->dir);
    free(ta);
    free(tb);
    return rc;
}

int model_check_compatible(const model_t *a, const model_t *b, err_t *err) {
    if (strcmp(a->meta.template_name, b->meta.template_name))
        return err_setf(err, "%s: template \"%s\", %s's is \"%s\"" MODEL_DIFFER, a->dir,
                        a->meta.template_name, b->dir, b->meta.template_name);
    if (a->model->cfg.vocab_size != b->model->cfg.vocab_size)
        return err_setf(err, "%s: vocab_size %lld, %s's is %lld" MODEL_DIFFER, a->dir,
                        (long long)a->model->cfg.vocab_size, b->dir,
                        (long long)b->model->cfg.vocab_size);
    if (a->eos_id != b->eos_id)
        return err_setf(err, "%s: end-of-text id %d, %s's is %d" MODEL_DIFFER, a->dir, a->eos_id,
                        b->dir, b->eos_id);
    return a->tok && b->tok ? compare_tokens(a, b, err) : 0;
}

/* ---- Text ---------------------------------------------------------------------------------- */

int64_t model_encode(void *ctx, const char *text, int64_t len, int32_t *ids, int64_t cap,
                     err_t *err) {
    model_t *m = ctx;
    return tok_encode_into(m->tok, text, len, false, ids, cap, err);
}

size_t model_utf8_sanitize(const char *str, size_t n, char *out) {
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

char *model_decode_response(const model_t *m, const int32_t *ids, int64_t n, size_t *len,
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
    const size_t k = model_utf8_sanitize(text, (size_t)n_bytes - skip, out);
    if (len) *len = k;
    free(bytes);
    return out;
}
