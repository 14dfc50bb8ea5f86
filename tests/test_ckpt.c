#include "ckpt.h"
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX_LM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2"
#define FIX_RM RLHF_SRCDIR "/tests/fixtures/tiny-gpt2-rm"

/* ---- helpers: scratch directories and files --------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f, "cannot write %s", path);
    ck_assert_int_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void copy_file(const char *src, const char *dst) {
    size_t n;
    char *b = slurp(src, &n);
    spit(dst, b, n);
    free(b);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_tree(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch directory holding a copy of fixture dir src (config + model). */
static void scratch_copy(char *dir, const char *src) {
    strcpy(dir, "/tmp/test_ckpt_XXXXXX");
    ck_assert(mkdtemp(dir));
    char a[512], b[512];
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b);
    }
}

/* Rewrites the safetensors header of dir/model.safetensors, replacing the first `from` by
 * `to` (header length recomputed; data untouched). */
static void patch_header(const char *dir, const char *from, const char *to) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t n;
    char *b = slurp(path, &n);
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
    spit(path, out, 8 + nh + (n - 8 - hl));
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
    ck_assert(m->params.qkvw[0] == raw_f32(f, data + 25152));                /* h.0 c_attn.w */
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
    rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_missing_tensor) {
    char dir[64];
    scratch_copy(dir, FIX_RM);
    patch_header(dir, "\"transformer.h.1.ln_2.bias\"", "\"transformer.h.1.ln_2.bias_x\"");
    expect_load_error(dir, "model.safetensors: missing tensor h.1.ln_2.bias", NULL);
    rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_unknown_dtype) {
    char dir[64];
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"h.1.ln_2.bias\":{\"dtype\":\"F32\"", "\"h.1.ln_2.bias\":{\"dtype\":\"F13\"");
    expect_load_error(dir, "model.safetensors: h.1.ln_2.bias: unknown dtype \"F13\"", NULL);
    rm_tree(dir);
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
    rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_bad_json) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_LM);
    snprintf(path, sizeof path, "%s/config.json", dir);
    const char *bad = "{\"n_embd\": 48,\n  \"n_layer\": }";
    spit(path, bad, strlen(bad));
    expect_load_error(dir, "config.json:2:", NULL);
    copy_file(FIX_LM "/config.json", path);
    patch_header(dir, "{\"wte.weight\":{", "{\"wte.weight\":[");
    expect_load_error(dir, "model.safetensors: header is not valid JSON", NULL);
    rm_tree(dir);
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
    rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_overlap_and_duplicates) {
    char dir[64];
    scratch_copy(dir, FIX_LM);
    /* ln_f.bias claims ln_f.weight's bytes: overlap (and a hole where it was). */
    patch_header(dir, "\"data_offsets\":[251136,251328]", "\"data_offsets\":[250944,251136]");
    expect_load_error(dir, "model.safetensors: ", "overlap");
    rm_tree(dir);
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"ln_f.bias\"", "\"ln_f.weight\"");
    expect_load_error(dir, "model.safetensors: header is not valid JSON", "duplicate");
    rm_tree(dir);
    /* The same tensor with and without the prefix. */
    scratch_copy(dir, FIX_LM);
    patch_header(dir, "\"h.0.attn.bias\"", "\"transformer.ln_f.bias\"");
    expect_load_error(dir, "model.safetensors: ln_f.bias given twice", NULL);
    rm_tree(dir);
}
END_TEST

START_TEST(test_ckpt_load_config_errors) {
    char dir[64], path[128];
    scratch_copy(dir, FIX_RM);
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *c = slurp(FIX_RM "/config.json", &n);
    char *at = strstr(c, "\"num_labels\": 1");
    ck_assert(at);
    at[14] = '2';
    spit(path, c, n);
    expect_load_error(dir, "config.json: GPT2ForSequenceClassification with num_labels 2", NULL);
    free(c);
    const char *bad = "{\"n_embd\": 48, \"n_layer\": 2, \"n_head\": 5, \"n_positions\": 32, "
                      "\"vocab_size\": 97}";
    spit(path, bad, strlen(bad));
    expect_load_error(dir, "config.json: n_embd 48 is not a multiple of n_head 5", NULL);
    rm_tree(dir);
    expect_load_error("/nonexistent/dir", "/nonexistent/dir/config.json", NULL);
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
    return s;
}
