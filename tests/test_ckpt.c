#include "ckpt.h"
#include "testutil.h"
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX_LM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"
#define FIX_RM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"

/* ---- helpers: scratch directories and files --------------------------------------------- */

/* A fresh scratch directory (dir: 64 bytes) holding a copy of fixture dir src (config +
 * model). */
static void scratch_copy(char *dir, const char *src) {
    testutil_scratch_dir(dir, 64, "ckpt");
    char a[512], b[512];
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        testutil_copy_file(a, b);
    }
}

/* Rewrites the safetensors header of dir/model.safetensors, replacing the first `from` by
 * `to` (header length recomputed; data untouched). */
static void patch_header(const char *dir, const char *from, const char *to) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n;
    char *b = testutil_slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (uint8_t)b[i];
    char *hdr = strndup(b + 8, hl);
    char *at = strstr(hdr, from);
    ck_assert_msg(at, "patch target %s not in header", from);
    size_t nh = hl - strlen(from) + strlen(to);
    char *out = malloc(8 + nh + (n - 8 - hl));
    for (int i = 0; i < 8; i++) out[i] = (char)(uint8_t)(nh >> (8 * i));
    size_t pre = (size_t)(at - hdr);
    memcpy(out + 8, hdr, pre);
    memcpy(out + 8 + pre, to, strlen(to));
    memcpy(out + 8 + pre + strlen(to), at + strlen(from), hl - pre - strlen(from));
    memcpy(out + 8 + nh, b + 8 + hl, n - 8 - hl);
    testutil_spit(path, out, 8 + nh + (n - 8 - hl));
    free(out);
    free(hdr);
    free(b);
}

/* Reads 4 bytes at file offset off as a float, independently of the reader under test. */
static float raw_f32(const char *path, long off) {
    FILE *f = fopen(path, "rb");
    ck_assert(f);
    float v;
    fseek(f, off, SEEK_SET);
    ck_assert_int_eq(fread(&v, 4, 1, f), 1);
    fclose(f);
    return v;
}

/* ---- loading the PyTorch fixtures -------------------------------------------------------- */

START_TEST(test_ckpt_load_fixture_lm) {
    err_t err = ERR_INIT;
    ckpt_meta_t meta;
    gpt_model_t *m = ckpt_load(FIX_LM, &meta, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_LM);
    ck_assert_int_eq(m->cfg.n_embd, 48);
    ck_assert_int_eq(m->cfg.n_layer, 2);
    ck_assert_int_eq(m->cfg.n_head, 3);
    ck_assert_int_eq(m->cfg.n_positions, 32);
    ck_assert_int_eq(m->cfg.vocab_size, 97);
    ck_assert(m->cfg.ln_eps == 1e-5f);
    ck_assert_int_eq(meta.eos_id, 96);
    ck_assert_int_eq(meta.pad_id, -1);
    ck_assert_str_eq(meta.template_name, "");
    /* Data area starts at 8 + 2456; offsets as the fixture's header gives them. */
    const char *f = FIX_LM "/model.safetensors";
    const long data = 8 + 2456;
    ck_assert(m->params.wte[0] == raw_f32(f, data + 0));
    ck_assert(m->params.wte[0] == -0.03592346981167793f);
    ck_assert(m->params.wte[97 * 48 - 1] == raw_f32(f, data + 18624 - 4));
    ck_assert(m->params.qkvw[0] == raw_f32(f, data + 25152));                  /* h.0 c_attn.w */
    ck_assert(m->params.qkvw[48 * 144 + 5] == raw_f32(f, data + 138240 + 20)); /* h.1 */
    ck_assert(m->params.lnfb[47] == raw_f32(f, data + 251328 - 4));
    gpt_destroy(&m);
}
END_TEST

START_TEST(test_ckpt_load_fixture_rm) {
    err_t err = ERR_INIT;
    ckpt_meta_t meta;
    gpt_model_t *m = ckpt_load(FIX_RM, &meta, &err);
    ck_assert_msg(m, "%s", err.msg);
    ck_assert_int_eq(m->head, GPT_HEAD_SCORE);
    ck_assert_int_eq(meta.eos_id, 96);
    ck_assert_int_eq(meta.pad_id, 0);
    const char *f = FIX_RM "/model.safetensors";
    const long data = 8 + 2696;
    ck_assert(m->params.scorew[0] == raw_f32(f, data + 251328));
    ck_assert(m->params.scorew[0] == -0.2134789526462555f);
    ck_assert(m->params.scorew[47] == raw_f32(f, data + 251520 - 4));
    ck_assert(m->params.wte[0] == raw_f32(f, data));
    ck_assert(m->params.fcprojw[3] == raw_f32(f, data + 100800 + 12));
    gpt_destroy(&m);
}
END_TEST

/* The reader on its own: names, dtypes, shapes and values of expected.safetensors. */
START_TEST(test_ckpt_st_reader) {
    err_t err = ERR_INIT;
    ckpt_st_t *st = ckpt_st_open(FIX_LM "/expected.safetensors", &err);
    ck_assert_msg(st, "%s", err.msg);
    const ckpt_st_tensor_t *t = ckpt_st_find(st, "tokens");
    ck_assert(t && t->dtype == CKPT_DT_I32 && t->ndim == 2 && t->shape[0] == 2 &&
              t->shape[1] == 32);
    ck_assert_str_eq(ckpt_st_at(st, 0)->name, "tokens");
    int32_t tok[64];
    ck_assert_int_eq(ckpt_st_read_i32(st, "tokens", tok, 64, &err), 0);
    for (int i = 0; i < 64; i++) ck_assert(tok[i] >= 0 && tok[i] < 97);
    float lg[2 * 32 * 97];
    ck_assert_int_eq(ckpt_st_read_f32(st, "tokens", lg, 64, &err), -1); /* I32 is not float */
    ck_assert_msg(strstr(err.msg, "tokens") && strstr(err.msg, "I32"), "%s", err.msg);
    err_clear(&err);
    ck_assert_int_eq(ckpt_st_read_f32(st, "logits", lg, 100, &err), -1); /* wrong count */
    err_clear(&err);
    ck_assert_int_eq(ckpt_st_read_f32(st, "logits", lg, 2 * 32 * 97, &err), 0);
    ck_assert_ptr_null(ckpt_st_find(st, "nope"));
    ckpt_st_close(&st);
    ck_assert_ptr_null(st);
    ckpt_st_close(&st); /* NULL is fine */
}
END_TEST

/* ---- bad model directories: each fails with file + tensor named, nothing returned --------- */

/* Loads dir, expects failure whose message holds want1 and want2, and meta untouched. */
static void expect_load_error(const char *dir, const char *want1, const char *want2) {
    err_t err = ERR_INIT;
    ckpt_meta_t meta = ckpt_meta_default();
    strcpy(meta.template_name, "sentinel");
    meta.eos_id = 7;
    gpt_model_t *m = ckpt_load(dir, &meta, &err);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, want1) && (!want2 || strstr(err.msg, want2)),
                  "message \"%s\" lacks \"%s\" / \"%s\"", err.msg, want1, want2 ? want2 : "");
    ck_assert_str_eq(meta.template_name, "sentinel");
    ck_assert_int_eq(meta.eos_id, 7);
}

START_TEST(test_ckpt_load_wrong_shape) {
    char dir[64];
    scratch_copy(dir, FIX_LM);
    /* Same byte count, other shape: only the model-level check can catch it. */
    patch_header(dir, "\"wpe.weight\":{\"dtype\":\"F32\",\"shape\":[32,48]",
                 "\"wpe.weight\":{\"dtype\":\"F32\",\"shape\":[16,96]");
    expect_load_error(dir, "model.safetensors: wpe.weight: shape [16, 96], expected [32, 48]",
                      NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_missing_tensor) {
    char dir[64];
    scratch_copy(dir, FIX_RM);
    patch_header(dir, "\"transformer.h.1.ln_2.bias\"", "\"transformer.h.1.ln_2.bias_x\"");
    expect_load_error(dir, "model.safetensors: missing tensor h.1.ln_2.bias", NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_unknown_dtype) {
    char dir[64];
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"h.1.ln_2.bias\":{\"dtype\":\"F32\"",
                 "\"h.1.ln_2.bias\":{\"dtype\":\"F13\"");
    expect_load_error(dir, "model.safetensors: h.1.ln_2.bias: unknown dtype \"F13\"", NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_truncated) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_RM);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ck_assert_int_eq(truncate(path, 254224 - 100), 0);
    expect_load_error(dir, "model.safetensors: score.weight:", "truncated");
    ck_assert_int_eq(truncate(path, 5), 0);
    expect_load_error(dir, "model.safetensors", "truncated");
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_bad_json) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_LM);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *bad = "{\"n_embd\": 48,\n  \"n_layer\": }";
    testutil_spit(path, bad, strlen(bad));
    expect_load_error(dir, "config.json:2:", NULL);
    testutil_copy_file(FIX_LM "/config.json", path);
    patch_header(dir, "{\"wte.weight\":{", "{\"wte.weight\":[");
    expect_load_error(dir, "model.safetensors: header is not valid JSON", NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_header_beyond_file) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_LM);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    const uint8_t big[8] = {0, 0, 0, 0, 1, 0, 0, 0}; /* 2^32 */
    fwrite(big, 1, 8, f);
    fclose(f);
    expect_load_error(dir, "model.safetensors: header length 4294967296 beyond the file size",
                      NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_overlap_and_duplicates) {
    char dir[64];
    scratch_copy(dir, FIX_LM);
    /* ln_f.bias claims ln_f.weight's bytes: overlap (and a hole where it was). */
    patch_header(dir, "\"data_offsets\":[251136,251328]", "\"data_offsets\":[250944,251136]");
    expect_load_error(dir, "model.safetensors: ", "overlap");
    testutil_rm_tree(dir);
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"ln_f.bias\"", "\"ln_f.weight\"");
    expect_load_error(dir, "model.safetensors: header is not valid JSON", "duplicate");
    testutil_rm_tree(dir);
    /* The same tensor with and without the prefix. */
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"h.0.attn.bias\"", "\"transformer.ln_f.bias\"");
    expect_load_error(dir, "model.safetensors: ln_f.bias given twice", NULL);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_config_errors) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_RM);
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *c = testutil_slurp(FIX_RM "/config.json", &n);
    char *at = strstr(c, "\"num_labels\": 1");
    ck_assert(at);
    at[14] = '2';
    testutil_spit(path, c, n);
    expect_load_error(dir, "config.json: GPT2ForSequenceClassification with num_labels 2", NULL);
    free(c);
    const char *bad = "{\"n_embd\": 48, \"n_layer\": 2, \"n_head\": 5, \"n_positions\": 32, "
                      "\"vocab_size\": 97}";
    testutil_spit(path, bad, strlen(bad));
    expect_load_error(dir, "config.json: n_embd 48 is not a multiple of n_head 5", NULL);
    testutil_rm_tree(dir);
    expect_load_error("/nonexistent/dir", "/nonexistent/dir/config.json", NULL);
}
END_TEST

/* ---- saving ------------------------------------------------------------------------------ */

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = testutil_slurp(a, &na), *y = testutil_slurp(b, &nb);
    bool same = na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static json_t *header_json(const char *path) {
    err_t err = ERR_INIT;
    ckpt_st_t *st = ckpt_st_open(path, &err);
    ck_assert_msg(st, "%s", err.msg);
    uint64_t len;
    const char *h = ckpt_st_header(st, &len);
    json_t *j = json_loadb(h, (size_t)len, 0, NULL);
    ck_assert(j);
    ck_assert_str_eq(ckpt_st_metadata(st, "format"), "pt");
    ckpt_st_close(&st);
    return j;
}

/* Loading a PyTorch fixture and saving it gives the fixture's file back, byte for byte:
 * names, order, shapes, dtypes, offsets, metadata, padding and the mask buffers. */
static void check_resave(const char *fix) {
    err_t err = ERR_INIT;
    ckpt_meta_t meta;
    gpt_model_t *m = ckpt_load(fix, &meta, &err);
    ck_assert_msg(m, "%s", err.msg);
    char dir[64], a[512], b[512];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    ck_assert_msg(ckpt_save(dir, m, &meta, NULL, &err) == 0, "%s", err.msg);
    snprintf(a, sizeof a, "%s/model.safetensors", fix);
    snprintf(b, sizeof b, "%s/model.safetensors", dir);
    json_t *ha = header_json(a), *hb = header_json(b);
    ck_assert_msg(json_equal(ha, hb), "header JSON differs from the fixture's");
    json_decref(ha);
    json_decref(hb);
    ck_assert_msg(same_file(a, b), "%s differs from the fixture", b);
    /* config.json: the fixture's fields and values, plus "rlhf"; the text is the fixture's. */
    snprintf(a, sizeof a, "%s/config.json", fix);
    snprintf(b, sizeof b, "%s/config.json", dir);
    json_t *ca = json_load_file(a, 0, NULL), *cb = json_load_file(b, 0, NULL);
    ck_assert(ca && cb);
    ck_assert_int_eq(json_object_size(cb), json_object_size(ca) + 1);
    const char *key;
    json_t *val;
    json_object_foreach(ca, key, val) {
        ck_assert_msg(json_equal(val, json_object_get(cb, key)), "config.json: %s differs", key);
    }
    ck_assert(json_is_object(json_object_get(cb, "rlhf")));
    json_decref(ca);
    json_decref(cb);
    size_t na, nb;
    char *ta = testutil_slurp(a, &na), *tb = testutil_slurp(b, &nb);
    ck_assert(na > 2 && !strcmp(ta + na - 2, "\n}"));
    ck_assert(!strncmp(ta, tb, na - 2) && !strncmp(tb + na - 2, ",\n  \"rlhf\": {", 13));
    free(ta);
    free(tb);
    gpt_destroy(&m);
    testutil_rm_tree(dir);
}

START_TEST(test_ckpt_save_matches_fixture_lm) {
    check_resave(FIX_LM);
}
END_TEST

START_TEST(test_ckpt_save_matches_fixture_rm) {
    check_resave(FIX_RM);
}
END_TEST

static const gpt_config_t small = {
    .vocab_size = 50, .n_positions = 12, .n_layer = 3, .n_head = 2, .n_embd = 8, .ln_eps = 1e-6f};

START_TEST(test_ckpt_round_trip_bit_exact) {
    err_t err = ERR_INIT;
    for (int h = 0; h < 2; h++) {
        gpt_model_t *m = gpt_new(&small, (gpt_head_t)h, &err);
        ck_assert_msg(m, "%s", err.msg);
        gpt_init_random(m, 42 + (uint64_t)h);
        m->params.lnfb[3] = -0.0f; /* signed zero and a subnormal survive too */
        m->params.wpe[5] = 1e-40f;
        ckpt_meta_t meta = {.template_name = "rlhf-v1 \"quoted\"",
                            .eos_id = 49,
                            .pad_id = 0,
                            .reward_bias = -0.12345678901234567};
        char dir[64];
        testutil_scratch_dir(dir, sizeof dir, "ckpt");
        strcat(dir, "/sub/model"); /* created, parents too */
        ck_assert_msg(ckpt_save(dir, m, &meta, NULL, &err) == 0, "%s", err.msg);
        ckpt_meta_t back;
        gpt_model_t *r = ckpt_load(dir, &back, &err);
        ck_assert_msg(r, "%s", err.msg);
        ck_assert_int_eq(r->head, h);
        ck_assert(r->cfg.vocab_size == 50 && r->cfg.n_positions == 12 && r->cfg.n_layer == 3 &&
                  r->cfg.n_head == 2 && r->cfg.n_embd == 8 && r->cfg.ln_eps == 1e-6f);
        ck_assert_int_eq(r->num_params, m->num_params);
        ck_assert(!memcmp(r->params_mem, m->params_mem, (size_t)m->num_params * sizeof(float)));
        ck_assert_str_eq(back.template_name, meta.template_name);
        ck_assert_int_eq(back.eos_id, 49);
        ck_assert_int_eq(back.pad_id, 0);
        ck_assert(back.reward_bias == meta.reward_bias);
        gpt_destroy(&m);
        gpt_destroy(&r);
        dir[strlen(dir) - strlen("/sub/model")] = '\0';
        testutil_rm_tree(dir);
    }
}
END_TEST

/* A failed save (missing tokenizer file, bad meta) leaves the previous checkpoint as it was
 * and no temporary files behind; a good save copies the tokenizer files. */
START_TEST(test_ckpt_failed_save_changes_nothing) {
    err_t err = ERR_INIT;
    char dir[64], tok[64], path[512], a[512];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    testutil_scratch_dir(tok, sizeof tok, "ckpt-tok");
    snprintf(path, sizeof path, "%s/vocab.json", tok);
    testutil_spit(path, "{\"a\": 0}", 8);
    gpt_model_t *m = gpt_new(&small, GPT_HEAD_LM, &err);
    gpt_init_random(m, 1);
    ck_assert_int_eq(ckpt_save(dir, m, NULL, NULL, &err), 0);
    size_t n0, n1;
    snprintf(a, sizeof a, "%s/model.safetensors", dir);
    char *before = testutil_slurp(a, &n0);
    gpt_init_random(m, 2);
    /* merges.txt is missing from the tokenizer directory: the whole save fails. */
    ck_assert_int_eq(ckpt_save(dir, m, NULL, tok, &err), -1);
    ck_assert_msg(strstr(err.msg, "merges.txt"), "%s", err.msg);
    char *after = testutil_slurp(a, &n1);
    ck_assert(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    char listing[256]; /* no temporary file or staging directory left behind */
    testutil_list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "config.json model.safetensors");
    /* Bad meta is refused before anything is written. */
    err_clear(&err);
    ckpt_meta_t bad = ckpt_meta_default();
    bad.eos_id = 50;
    ck_assert_int_eq(ckpt_save(dir, m, &bad, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "eos_id 50"), "%s", err.msg);
    after = testutil_slurp(a, &n1);
    ck_assert(n0 == n1 && !memcmp(before, after, n0));
    free(after);
    /* With both tokenizer files present, they are copied. */
    err_clear(&err);
    snprintf(path, sizeof path, "%s/merges.txt", tok);
    testutil_spit(path, "#version: 0.2\n", 14);
    ck_assert_msg(ckpt_save(dir, m, NULL, tok, &err) == 0, "%s", err.msg);
    snprintf(a, sizeof a, "%s/merges.txt", dir);
    ck_assert(same_file(path, a));
    ck_assert_int_eq(ckpt_save(dir, m, NULL, dir, &err), 0); /* tokenizer_dir == dir: kept */
    ck_assert(same_file(path, a));
    free(before);
    gpt_destroy(&m);
    testutil_rm_tree(dir);
    testutil_rm_tree(tok);
}
END_TEST

START_TEST(test_ckpt_write_atomic) {
    err_t err = ERR_INIT;
    char dir[64], path[128];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/run.json", dir);
    ck_assert_int_eq(ckpt_write_atomic(path, "{}", 2, &err), 0);
    ck_assert_int_eq(ckpt_write_atomic(path, "{\"a\":1}", 7, &err), 0);
    size_t n;
    char *b = testutil_slurp(path, &n);
    ck_assert(n == 7 && !memcmp(b, "{\"a\":1}", 7));
    free(b);
    ck_assert_int_eq(access(strcat(path, ".tmp"), F_OK), -1);
    ck_assert_int_eq(ckpt_write_atomic("/nonexistent/x.json", "{}", 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "/nonexistent/x.json.tmp"), "%s", err.msg);
    testutil_rm_tree(dir);
}
END_TEST

/* A save that a crash cut after its commit point (config.json in place, model.safetensors
 * still in the commit directory, as fs.h lays it out) loads as the new model, whole. */
START_TEST(test_ckpt_load_sees_interrupted_save_whole) {
    err_t err = ERR_INIT;
    char dir[64], next[64], a[TESTUTIL_PATH_CAP], b[TESTUTIL_PATH_CAP];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    testutil_scratch_dir(next, sizeof next, "ckpt-next");
    gpt_model_t *m1 = gpt_new(&small, GPT_HEAD_LM, &err), *m2 = gpt_new(&small, GPT_HEAD_LM, &err);
    gpt_init_random(m1, 1);
    gpt_init_random(m2, 2);
    ck_assert_int_eq(ckpt_save(dir, m1, NULL, NULL, &err), 0);
    ck_assert_int_eq(ckpt_save(next, m2, NULL, NULL, &err), 0);
    ck_assert_int_eq(mkdir(testutil_path(a, dir, ".fs-commit.1.XyZ123"), 0700), 0);
    testutil_copy_file(testutil_path(a, next, "model.safetensors"),
                       testutil_path(b, dir, ".fs-commit.1.XyZ123/model.safetensors"));
    testutil_copy_file(testutil_path(a, next, "config.json"), testutil_path(b, dir, "config.json"));
    gpt_model_t *back = ckpt_load(dir, NULL, &err);
    ck_assert_msg(back, "%s", err.msg);
    ck_assert(!memcmp(back->params_mem, m2->params_mem, (size_t)m2->num_params * sizeof(float)));
    gpt_destroy(&back);
    /* the next save finishes the interrupted one first, then replaces it */
    ck_assert_int_eq(ckpt_save(dir, m1, NULL, NULL, &err), 0);
    char listing[256];
    testutil_list_dir(dir, listing, sizeof listing);
    ck_assert_str_eq(listing, "config.json model.safetensors");
    ck_assert_ptr_nonnull(back = ckpt_load(dir, NULL, &err));
    ck_assert(!memcmp(back->params_mem, m1->params_mem, (size_t)m1->num_params * sizeof(float)));
    gpt_destroy(&back);
    gpt_destroy(&m1);
    gpt_destroy(&m2);
    testutil_rm_tree(dir);
    testutil_rm_tree(next);
}
END_TEST

/* F16/BF16 are widened exactly; holes in the data area are refused. */
START_TEST(test_ckpt_st_half_and_holes) {
    char dir[64], path[128];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    const char *hdr = "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]}}";
    uint8_t buf[256] = {0};
    const size_t hl = strlen(hdr);
    buf[0] = (uint8_t)hl;
    memcpy(buf + 8, hdr, hl);
    const uint16_t halves[6] = {0x3C00, 0xC000, 0x0001, 0x7C00, 0x3F80, 0xC040};
    memcpy(buf + 8 + hl, halves, sizeof halves);
    testutil_spit(path, buf, 8 + hl + 12);
    err_t err = ERR_INIT;
    ckpt_st_t *st = ckpt_st_open(path, &err);
    ck_assert_msg(st, "%s", err.msg);
    float a[4], b[2];
    ck_assert_int_eq(ckpt_st_read_f32(st, "a", a, 4, &err), 0);
    ck_assert_int_eq(ckpt_st_read_f32(st, "b", b, 2, &err), 0);
    ck_assert(a[0] == 1.0f && a[1] == -2.0f && a[2] == ldexpf(1.0f, -24) && isinf(a[3]));
    ck_assert(b[0] == 1.0f && b[1] == -3.0f);
    ckpt_st_close(&st);
    /* b moved 1 byte on: byte [8, 9) belongs to nobody. */
    char *h2 = strdup(hdr);
    memcpy(strstr(h2, "[8,12]"), "[9,13]", 6);
    memcpy(buf + 8, h2, hl);
    testutil_spit(path, buf, 8 + hl + 13);
    ck_assert_ptr_null(ckpt_st_open(path, &err));
    ck_assert_msg(strstr(err.msg, "bytes [8, 9) of the data area belong to no tensor"), "%s",
                  err.msg);
    free(h2);
    testutil_rm_tree(dir);
}
END_TEST

/* ---- train_state.bin --------------------------------------------------------------------- */

START_TEST(test_ckpt_state_round_trip) {
    err_t err = ERR_INIT;
    char dir[64], path[128];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    float m[1001];
    int64_t step = 1234567890123;
    uint8_t rng[37];
    for (int i = 0; i < 1001; i++) m[i] = (float)i * 0.37f - 5.0f;
    for (int i = 0; i < 37; i++) rng[i] = (uint8_t)(i * 7);
    ckpt_section_t s[3] = {
        {"adam.m", m, sizeof m}, {"step", &step, sizeof step}, {"rng", rng, sizeof rng}};
    ck_assert_msg(ckpt_state_save(path, s, 3, &err) == 0, "%s", err.msg);
    float m2[1001] = {0};
    int64_t step2 = 0;
    uint8_t rng2[37] = {0};
    /* Any subset, in any order. */
    ckpt_section_t r[3] = {
        {"rng", rng2, sizeof rng2}, {"adam.m", m2, sizeof m2}, {"step", &step2, sizeof step2}};
    ck_assert_msg(ckpt_state_load(path, r, 3, &err) == 0, "%s", err.msg);
    ck_assert(!memcmp(m, m2, sizeof m) && step2 == step && !memcmp(rng, rng2, sizeof rng));
    step2 = 0;
    ck_assert_int_eq(ckpt_state_load(path, &r[2], 1, &err), 0);
    ck_assert(step2 == step);
    /* Wrong length and missing section: errors, and no buffer is touched. */
    memset(m2, 0, sizeof m2);
    ckpt_section_t wrong[2] = {{"adam.m", m2, sizeof m2}, {"step", &step2, 4}};
    ck_assert_int_eq(ckpt_state_load(path, wrong, 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "train_state.bin: section step: 8 bytes, expected 4"), "%s",
                  err.msg);
    ck_assert(m2[1] == 0.0f);
    err_clear(&err);
    ckpt_section_t missing[2] = {{"adam.m", m2, sizeof m2}, {"adam.v", m2, sizeof m2}};
    ck_assert_int_eq(ckpt_state_load(path, missing, 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "section adam.v missing"), "%s", err.msg);
    ck_assert(m2[1] == 0.0f);
    testutil_rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_state_damage_detected) {
    err_t err = ERR_INIT;
    char dir[64], path[128];
    testutil_scratch_dir(dir, sizeof dir, "ckpt");
    snprintf(path, sizeof path, "%s/train_state.bin", dir);
    double v[300];
    for (int i = 0; i < 300; i++) v[i] = sin(i);
    ckpt_section_t s = {"adam.v", v, sizeof v};
    ck_assert_int_eq(ckpt_state_save(path, &s, 1, &err), 0);
    size_t n;
    char *good = testutil_slurp(path, &n);
    double out[300];
    memset(out, 0x5a, sizeof out);
    ckpt_section_t r = {"adam.v", out, sizeof out};
    /* Truncated by one byte. */
    testutil_spit(path, good, n - 1);
    ck_assert_int_eq(ckpt_state_load(path, &r, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "truncated"), "%s", err.msg);
    /* One flipped bit in the data. */
    err_clear(&err);
    good[n - 100] ^= 0x10;
    testutil_spit(path, good, n);
    ck_assert_int_eq(ckpt_state_load(path, &r, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "checksum mismatch"), "%s", err.msg);
    /* A flipped bit in a section name. */
    err_clear(&err);
    good[n - 100] ^= 0x10;
    good[33] ^= 0x01;
    testutil_spit(path, good, n);
    ck_assert_int_eq(ckpt_state_load(path, &r, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "checksum mismatch"), "%s", err.msg);
    /* Not a state file at all. */
    err_clear(&err);
    testutil_spit(path, "{\"not\": \"state\"} padding padding padding", 40);
    ck_assert_int_eq(ckpt_state_load(path, &r, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "not a training-state file"), "%s", err.msg);
    for (size_t i = 0; i < sizeof out; i++) ck_assert_int_eq(((uint8_t *)out)[i], 0x5a);
    /* Listing a section twice is the caller's bug, refused before reading. */
    err_clear(&err);
    ckpt_section_t twice[2] = {r, r};
    ck_assert_int_eq(ckpt_state_save(path, twice, 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "listed twice"), "%s", err.msg);
    free(good);
    testutil_rm_tree(dir);
}
END_TEST

Suite *test_ckpt_suite(void);
Suite *test_ckpt_suite(void) {
    Suite *s = suite_create("ckpt");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, test_ckpt_load_fixture_lm);
    tcase_add_test(tc, test_ckpt_load_fixture_rm);
    tcase_add_test(tc, test_ckpt_st_reader);
    tcase_add_test(tc, test_ckpt_load_wrong_shape);
    tcase_add_test(tc, test_ckpt_load_missing_tensor);
    tcase_add_test(tc, test_ckpt_load_unknown_dtype);
    tcase_add_test(tc, test_ckpt_load_truncated);
    tcase_add_test(tc, test_ckpt_load_bad_json);
    tcase_add_test(tc, test_ckpt_load_header_beyond_file);
    tcase_add_test(tc, test_ckpt_load_overlap_and_duplicates);
    tcase_add_test(tc, test_ckpt_load_config_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("save");
    tcase_add_test(tc, test_ckpt_save_matches_fixture_lm);
    tcase_add_test(tc, test_ckpt_save_matches_fixture_rm);
    tcase_add_test(tc, test_ckpt_round_trip_bit_exact);
    tcase_add_test(tc, test_ckpt_failed_save_changes_nothing);
    tcase_add_test(tc, test_ckpt_load_sees_interrupted_save_whole);
    tcase_add_test(tc, test_ckpt_write_atomic);
    tcase_add_test(tc, test_ckpt_st_half_and_holes);
    suite_add_tcase(s, tc);
    tc = tcase_create("state");
    tcase_add_test(tc, test_ckpt_state_round_trip);
    tcase_add_test(tc, test_ckpt_state_damage_detected);
    suite_add_tcase(s, tc);
    return s;
}
