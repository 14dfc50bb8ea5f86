/* tests/tiny_model.c: see tiny_model.h. */
#include "tiny_model.h"
#include "ckpt.h"
#include "data.h"
#include "gpt.h"
#include "tok.h"
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const texts[2] = {
    "What is 7 plus 5? 7 plus 5 is 12. Reverse the word lamp. lamp reversed is pmal. "
    "Say hello to Maria. Hello Maria! Human: Assistant: the cat sat on the mat.",
    "Zebras graze quietly; xylophones jingle. Quick brown foxes vault over lazy dogs, "
    "jumping jackals quibble, and wizards box in fjords every single evening."};

void tiny_model_write(const char *dir, int text_variant, int32_t model_vocab,
                      const char *template_name, int32_t eos_id, uint64_t seed) {
    tiny_model_write_head(dir, text_variant, model_vocab, template_name, eos_id, seed,
                          GPT_HEAD_LM);
}

void tiny_model_write_head(const char *dir, int text_variant, int32_t model_vocab,
                           const char *template_name, int32_t eos_id, uint64_t seed,
                           gpt_head_t head) {
    err_t err = ERR_INIT;
    const char *text = texts[text_variant];
    tok_t *tok = tok_train(text, (int64_t)strlen(text), 300, &err);
    ck_assert_msg(tok, "%s", err.msg);
    const gpt_config_t cfg = {.vocab_size = model_vocab ? model_vocab : tok_vocab_size(tok),
                              .n_positions = 64,
                              .n_layer = 2,
                              .n_head = 2,
                              .n_embd = 16,
                              .ln_eps = 1e-5f};
    gpt_model_t *m = gpt_new(&cfg, head, &err);
    ck_assert_msg(m, "%s", err.msg);
    gpt_init_random(m, seed);
    ckpt_meta_t meta = ckpt_meta_default();
    snprintf(meta.template_name, sizeof meta.template_name, "%s", template_name);
    meta.eos_id = eos_id >= 0 ? eos_id : tok_eot_id(tok);
    ck_assert_msg(!ckpt_save(dir, m, &meta, NULL, &err), "%s", err.msg);
    ck_assert_msg(!tok_save(tok, dir, &err), "%s", err.msg);
    gpt_destroy(&m);
    tok_destroy(&tok);
}

void tiny_scratch_dir(char *dir) {
    strcpy(dir, "/tmp/rlhf_test_XXXXXX");
    ck_assert(mkdtemp(dir));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

void tiny_rm_tree(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
