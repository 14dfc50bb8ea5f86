#include "alloc_count.h"
#include "data.h"
#include "testutil.h"
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers: each test writes its files into its own temp directory */

static char tmpdir[64];

static void setup(void) {
    testutil_scratch_dir(tmpdir, sizeof tmpdir, "data");
}

static void teardown(void) {
    testutil_rm_tree(tmpdir);
}

/* Writes len bytes (len < 0: strlen) to tmpdir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *content, long len) {
    static char path[TESTUTIL_PATH_CAP];
    testutil_spit(testutil_path(path, tmpdir, name), content,
                  len < 0 ? strlen(content) : (size_t)len);
    return path;
}

/* Loads content as demos and returns the error message (or "" when it loaded). */
static void demos_error(const char *content, long len, char *msg, size_t size) {
    const char *path = write_file("demos.jsonl", content, len);
    data_examples_t set;
    err_t err = ERR_INIT;
    int rc = data_demos_load(&set, path, &err);
    ck_assert_int_eq(rc, err_isset(&err) ? -1 : 0);
    ck_assert(rc == 0 || (set.n == 0 && set.ex == NULL)); /* failed load: empty output */
    /* strip the temp directory so expectations read "demos.jsonl:2: ..." */
    const char *m = err.msg;
    if (!strncmp(m, tmpdir, strlen(tmpdir))) m += strlen(tmpdir) + 1;
    snprintf(msg, size, "%s", m);
    data_examples_release(&set);
}

/* ---- JSONL errors */

START_TEST(test_data_jsonl_errors) {
    static const struct {
        const char *content;
        const char *msg;
    } cases[] = {
        {"{\"prompt\":\"a\",\"response\":\"b\"}\n[1,2]\n", "demos.jsonl:2: not a JSON object"},
        {"42\n", "demos.jsonl:1: not a JSON object"},
        {"\"text\"", "demos.jsonl:1: not a JSON object"},
        {"{\"prompt\":\"a\"}\n", "demos.jsonl:1: missing \"response\""},
        {"{\"response\":\"b\"}\n", "demos.jsonl:1: missing \"prompt\""},
        {"{\"prompt\":1,\"response\":\"b\"}", "demos.jsonl:1: \"prompt\" must be a string"},
        {"{\"prompt\":\"a\",\"response\":null}", "demos.jsonl:1: \"response\" must be a string"},
        {"\n\n{\"prompt\": \"a\", }\n",
         "demos.jsonl:3: invalid JSON: string or '}' expected near '}' (column 17)"},
        {"{\"prompt\":\"a\",\"prompt\":\"b\",\"response\":\"c\"}",
         "demos.jsonl:1: invalid JSON: duplicate object key near '\"prompt\"' (column 22)"},
        {"{\"prompt\":\"\xff\",\"response\":\"c\"}",
         "demos.jsonl:1: invalid JSON: unable to decode byte 0xff near '\"' (column 11)"},
        {"{\"prompt\":\"a\",\"response\":\"b\"} {}",
         "demos.jsonl:1: invalid JSON: end of file expected near '{' (column 31)"},
        {"", "demos.jsonl: no JSON lines (empty file)"},
        {"\n  \n\r\n\t\n", "demos.jsonl: no JSON lines (empty file)"},
    };
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        demos_error(cases[i].content, -1, msg, sizeof msg);
        ck_assert_msg(!strcmp(msg, cases[i].msg), "case %zu: got '%s', want '%s'", i, msg,
                      cases[i].msg);
    }
    /* a NUL byte in the line itself */
    demos_error("{\"prompt\":\"a\0\",\"response\":\"b\"}", 30, msg, sizeof msg);
    ck_assert_msg(!strncmp(msg, "demos.jsonl:1: invalid JSON: ", 29), "%s", msg);
}
END_TEST

START_TEST(test_data_missing_file) {
    data_examples_t set;
    err_t err = ERR_INIT;
    char path[128];
    snprintf(path, sizeof path, "%s/nope.jsonl", tmpdir);
    ck_assert_int_eq(data_demos_load(&set, path, &err), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    ck_assert_str_eq(err.msg, want);
    data_examples_release(&set);
}
END_TEST

START_TEST(test_data_line_too_long) {
    /* a limit of 16 bytes: 16 pass (also before "\r\n"), 17 do not */
    const char *path = write_file("t.jsonl", "{\"text\":\"abcde\"}\r\n{\"text\":\"abcdef\"}\n", -1);
    data_jsonl_t r;
    err_t err = ERR_INIT;
    json_t *obj = NULL;
    static const data_field_t fields[] = {{"text", DATA_STRING, false}};
    ck_assert_int_eq(data_jsonl_open(&r, path, 16, &err), 0);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), 1);
    ck_assert_str_eq(json_string_value(json_object_get(obj, "text")), "abcde");
    json_decref(obj);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), -1);
    ck_assert_ptr_null(obj);
    ck_assert(strstr(err.msg, "t.jsonl:2: line longer than 16 bytes"));
    data_jsonl_close(&r);

    /* the default limit through a loader: one line of DATA_MAX_LINE + 1 bytes */
    size_t n = DATA_MAX_LINE + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"text\":\"x\"}", 12);
    big[n] = '\0';
    path = write_file("big.jsonl", big, -1);
    free(big);
    data_texts_t texts;
    err_clear(&err);
    ck_assert_int_eq(data_texts_load(&texts, path, &err), -1);
    char want[64];
    snprintf(want, sizeof want, "big.jsonl:1: line longer than %d bytes", DATA_MAX_LINE);
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
    data_texts_release(&texts);
}
END_TEST

/* ---- good files */

START_TEST(test_data_demos_load) {
    const char *path =
        write_file("demos.jsonl",
                   "{\"prompt\":\"Reverse: abc\",\"response\":\"cba\"}\n"
                   "\n"
                   "{\"id\":7,\"prompt\":\"h\\u00e9llo \\u4e16\\u754c\",\"response\":"
                   "\"Hi \\ud83d\\ude00\"}\r\n"
                   "   \n"
                   "{\"response\":\"\",\"prompt\":\"\"}",
                   -1);
    data_examples_t set;
    err_t err = ERR_INIT;
    ck_assert_msg(data_demos_load(&set, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(set.n, 3);
    ck_assert_str_eq(set.path, path);
    ck_assert_str_eq(set.ex[0].prompt, "Reverse: abc");
    ck_assert_str_eq(set.ex[0].response, "cba");
    ck_assert_str_eq(set.ex[1].prompt, "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c");
    ck_assert_str_eq(set.ex[1].response, "Hi \xf0\x9f\x98\x80");
    ck_assert_str_eq(set.ex[2].prompt, "");
    ck_assert_int_eq(set.ex[0].line, 1); /* blank lines are skipped but counted */
    ck_assert_int_eq(set.ex[1].line, 3);
    ck_assert_int_eq(set.ex[2].line, 5);
    data_examples_release(&set);
    ck_assert_int_eq(set.n, 0);
    data_examples_release(&set);

    /* the same file read as prompts: response ignored */
    ck_assert_int_eq(data_prompts_load(&set, path, &err), 0);
    ck_assert_int_eq(set.n, 3);
    ck_assert_ptr_null(set.ex[0].response);
    data_examples_release(&set);
}
END_TEST

START_TEST(test_data_texts_and_ids) {
    err_t err = ERR_INIT;
    data_texts_t texts;
    const char *path =
        write_file("t.jsonl", "{\"text\":\"one\"}\n{\"text\":\"two\\nlines\"}\n", -1);
    ck_assert_int_eq(data_texts_load(&texts, path, &err), 0);
    ck_assert_int_eq(texts.n, 2);
    ck_assert_str_eq(texts.text[1], "two\nlines");
    ck_assert_int_eq(texts.line[1], 2);
    data_texts_release(&texts);

    data_ids_t ids;
    path = write_file("i.jsonl", "{\"ids\":[15496, 995]}\n{\"ids\":[]}\n{\"ids\":[50256]}\n", -1);
    ck_assert_int_eq(data_ids_load(&ids, path, 50257, &err), 0);
    ck_assert_int_eq(ids.n, 3);
    ck_assert_int_eq(ids.offset[0], 0);
    ck_assert_int_eq(ids.offset[1], 2);
    ck_assert_int_eq(ids.offset[2], 2);
    ck_assert_int_eq(ids.offset[3], 3);
    ck_assert_int_eq(ids.ids[1], 995);
    ck_assert_int_eq(ids.ids[2], 50256);
    data_ids_release(&ids);

    static const struct {
        const char *content;
        const char *msg;
    } bad[] = {
        {"{\"ids\":[1, 50257]}",
         "i.jsonl:1: \"ids\"[1]: 50257 is not a token id (vocab size 50257)"},
        {"{\"ids\":[1]}\n{\"ids\":[-1]}", "i.jsonl:2: \"ids\"[0]: -1 is not a token id"},
        {"{\"ids\":[3000000000]}", "i.jsonl:1: \"ids\"[0]: 3000000000 is not a token id"},
        {"{\"ids\":[1, 1.5]}", "i.jsonl:1: \"ids\"[1] must be an integer"},
        {"{\"ids\":\"1 2\"}", "i.jsonl:1: \"ids\" must be an array of token ids"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err_clear(&err);
        path = write_file("i.jsonl", bad[i].content, -1);
        ck_assert_int_eq(data_ids_load(&ids, path, 50257, &err), -1);
        ck_assert_msg(strstr(err.msg, bad[i].msg), "got '%s', want '%s'", err.msg, bad[i].msg);
        data_ids_release(&ids);
    }
}
END_TEST

/* The generic checker: every type, optional fields, array elements. */
START_TEST(test_data_check_fields_types) {
    static const data_field_t fields[] = {
        {"prompt", DATA_STRING, false},     {"k", DATA_INTEGER, false},
        {"w", DATA_NUMBER, false},          {"ok", DATA_BOOL, false},
        {"responses", DATA_STRINGS, false}, {"meta", DATA_OBJECT, true},
        {"ranking", DATA_ARRAY, true}};
    const int n = (int)(sizeof fields / sizeof fields[0]);
    static const struct {
        const char *json;
        const char *msg; /* NULL = valid */
    } cases[] = {
        {"{\"prompt\":\"p\",\"k\":2,\"w\":0.5,\"ok\":true,\"responses\":[\"a\",\"b\"]}", NULL},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":1,\"ok\":false,\"responses\":[],\"meta\":{}}", NULL},
        {"{\"prompt\":\"p\",\"k\":2.0,\"w\":1,\"ok\":true,\"responses\":[]}",
         "f.jsonl:9: \"k\" must be an integer"},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":\"1\",\"ok\":true,\"responses\":[]}",
         "f.jsonl:9: \"w\" must be a number"},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":1,\"ok\":1,\"responses\":[]}",
         "f.jsonl:9: \"ok\" must be true or false"},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":1,\"ok\":true,\"responses\":[\"a\",3]}",
         "f.jsonl:9: \"responses\"[1] must be a string"},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":1,\"ok\":true,\"responses\":[],\"meta\":[]}",
         "f.jsonl:9: \"meta\" must be an object"},
        {"{\"prompt\":\"p\",\"k\":2,\"w\":1,\"ok\":true,\"responses\":[],\"ranking\":{}}",
         "f.jsonl:9: \"ranking\" must be an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *obj = json_loads(cases[i].json, 0, NULL);
        ck_assert_ptr_nonnull(obj);
        err_t err = ERR_INIT;
        int rc = data_check_fields(obj, fields, n, "f.jsonl", 9, &err);
        if (!cases[i].msg)
            ck_assert_msg(rc == 0, "case %zu: %s", i, err.msg);
        else
            ck_assert_msg(rc == -1 && !strcmp(err.msg, cases[i].msg), "case %zu: '%s'", i, err.msg);
        json_decref(obj);
    }
}
END_TEST

/* Streaming from an open FILE (stdin in `sft tokenize`): 0 at the end, no empty-file error. */
START_TEST(test_data_jsonl_stream) {
    char text[] = "{\"text\":\"a\"}\n\n{\"text\":\"b\"}";
    FILE *f = fmemopen(text, strlen(text), "r");
    data_jsonl_t r;
    err_t err = ERR_INIT;
    json_t *obj;
    static const data_field_t fields[] = {{"text", DATA_STRING, false}};
    ck_assert_int_eq(data_jsonl_open_stream(&r, f, "<stdin>", 0, &err), 0);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), 1);
    json_decref(obj);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), 1);
    ck_assert_int_eq(r.line, 3);
    json_decref(obj);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), 0);
    ck_assert_int_eq(data_jsonl_next(&r, fields, 1, &obj, &err), 0);
    ck_assert_int_eq(r.records, 2);
    data_jsonl_close(&r); /* not ours to close */
    ck_assert_int_eq(fclose(f), 0);
    ck_assert(!err_isset(&err));
}
END_TEST

START_TEST(test_data_read_file) {
    err_t err = ERR_INIT;
    char *text = NULL;
    size_t len = 0;
    const char *path = write_file("corpus.txt", "hello\nworld\n", -1);
    ck_assert_int_eq(data_read_file(path, &text, &len, &err), 0);
    ck_assert_uint_eq(len, 12);
    ck_assert_str_eq(text, "hello\nworld\n");
    free(text);
    /* a NUL byte is text like any other: the tokenizer takes the length */
    path = write_file("corpus.txt", "ab\0cd", 5);
    ck_assert_msg(data_read_file(path, &text, &len, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(len, 5);
    ck_assert(!memcmp(text, "ab\0cd", 6));
    free(text);
}
END_TEST

/* ---- template */

START_TEST(test_data_template_golden) {
    char buf[128];
    ck_assert_str_eq(DATA_TEMPLATE_NAME, "rlhf-v1");
    size_t n = data_template_prompt(buf, sizeof buf, "Capitalise: paris");
    ck_assert_str_eq(buf, "Human: Capitalise: paris\n\nAssistant:");
    ck_assert_uint_eq(n, strlen(buf));
    n = data_template_response(buf, sizeof buf, "Paris");
    ck_assert_str_eq(buf, " Paris");
    ck_assert_uint_eq(n, 6);
    data_template_response(buf, sizeof buf, "   Paris ");
    ck_assert_str_eq(buf, " Paris "); /* leading spaces folded into the template's one */
    data_template_response(buf, sizeof buf, "");
    ck_assert_str_eq(buf, " ");
    ck_assert_str_eq(data_template_strip(" Paris"), "Paris");
    ck_assert_str_eq(data_template_strip("Paris"), "Paris");
    /* snprintf-like: measure with size 0, cut but terminated when short */
    ck_assert_uint_eq(data_template_prompt(NULL, 0, "x"), strlen("Human: x\n\nAssistant:"));
    char small[5];
    ck_assert_uint_eq(data_template_prompt(small, sizeof small, "x"), 20);
    ck_assert_str_eq(small, "Huma");
}
END_TEST

START_TEST(test_data_template_check) {
    err_t err = ERR_INIT;
    ck_assert_int_eq(data_template_check("runs/sft", "rlhf-v1", &err), 0);
    ck_assert_int_eq(data_template_check("gpt2", "", &err), 0);
    ck_assert_int_eq(data_template_check("gpt2", NULL, &err), 0);
    ck_assert_int_eq(data_template_check("runs/sft", "chatml-v2", &err), -1);
    ck_assert_str_eq(err.msg, "runs/sft: config.json: rlhf.template is \"chatml-v2\", this build "
                              "knows only \"rlhf-v1\"");
}
END_TEST

/* ---- SFT examples and batches */

/* A stand-in tokenizer: one token per byte (id = byte value), or two per byte when ctx says
 * so (to exercise the "needs a bigger buffer" path); text containing "BAD" fails. */
static int64_t byte_encode(void *ctx, const char *text, int64_t len, int32_t *ids, int64_t cap,
                           err_t *err) {
    const int per = ctx ? *(const int *)ctx : 1;
    if (memmem(text, (size_t)len, "BAD", 3)) return err_setf(err, "cannot encode");
    int64_t n = len * per;
    for (int64_t i = 0; i < n && i < cap; i++) ids[i] = (unsigned char)text[i / per];
    return n;
}

#define EOS 256
#define PAD 257

static void demos_from(data_examples_t *set, const char *content) {
    const char *path = write_file("demos.jsonl", content, -1);
    err_t err = ERR_INIT;
    ck_assert_msg(data_demos_load(set, path, &err) == 0, "%s", err.msg);
}

START_TEST(test_data_sft_batch_masks_prompt) {
    data_examples_t demos;
    demos_from(&demos, "{\"prompt\":\"hi\",\"response\":\"yo\"}\n"
                       "{\"prompt\":\"a longer one\",\"response\":\"ok!\"}\n");
    data_sft_t set;
    err_t err = ERR_INIT;
    ck_assert_msg(data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 64, DATA_TOO_LONG_ERROR,
                                 &err) == 0,
                  "%s", err.msg);
    const char *prompt0 = "Human: hi\n\nAssistant:"; /* 21 bytes */
    const int64_t np0 = (int64_t)strlen(prompt0);
    ck_assert_int_eq(set.n, 2);
    ck_assert_int_eq(set.n_prompt[0], np0);
    ck_assert_int_eq(data_sft_len(&set, 0), np0 + 3 + 1); /* " yo" + end-of-text */
    ck_assert_int_eq(set.max_len, (int64_t)strlen("Human: a longer one\n\nAssistant: ok!") + 1);
    ck_assert_int_eq(set.line[1], 2);

    enum { B = 2, T = 40 };
    int32_t inputs[B * T], targets[B * T];
    int64_t lengths[B], idx[B] = {0, 1};
    ck_assert_int_eq(data_sft_batch_len(&set, idx, B), set.max_len);
    int64_t count = data_sft_batch(&set, idx, B, T, inputs, targets, lengths);
    ck_assert_int_eq(count, (3 + 1) + (4 + 1)); /* response tokens + end-of-text, per row */
    ck_assert_int_eq(lengths[0], np0 + 4);
    const char *full = "Human: hi\n\nAssistant: yo";
    for (int64_t t = 0; t < T; t++) {
        int32_t want_in = t < 24 ? (unsigned char)full[t] : t == 24 ? EOS : PAD;
        ck_assert_int_eq(inputs[t], want_in);
        /* trained: positions 20..24 (last prompt token .. last response token) */
        int32_t want_tg = t >= np0 - 1 && t < 24 ? inputs[t + 1] : -1;
        ck_assert_msg(targets[t] == want_tg, "t=%lld: %d, want %d", (long long)t, targets[t],
                      want_tg);
    }
    ck_assert_int_eq(targets[np0 - 1], ' ');
    ck_assert_int_eq(targets[23], EOS);
    ck_assert_int_eq(targets[24], -1); /* the end-of-text predicts nothing */
    /* row 1: right-padded after its own length */
    ck_assert_int_eq(inputs[T + lengths[1] - 1], EOS);
    ck_assert_int_eq(inputs[T + lengths[1]], PAD);
    ck_assert_int_eq(inputs[2 * T - 1], PAD);

    /* the batch builder and the samplers never allocate */
    data_order_t order;
    ck_assert_int_eq(data_order_init(&order, set.n, 1, &err), 0);
    int32_t corpus[64];
    for (int i = 0; i < 64; i++) corpus[i] = i;
    data_stream_t stream;
    ck_assert_int_eq(data_stream_init(&stream, corpus, 64, B, 8, &err), 0);
    rng_t rng;
    rng_seed(&rng, 3);
    alloc_count_start();
    for (int k = 0; k < 10; k++) {
        data_order_next(&order, idx, B);
        data_sft_batch(&set, idx, B, T, inputs, targets, lengths);
        data_stream_sample(&stream, &rng, inputs, targets);
        data_stream_next(&stream, inputs, targets);
    }
    ck_assert_int_eq(alloc_count_stop(), 0);
    data_order_release(&order);
    data_sft_release(&set);
    data_examples_release(&demos);
}
END_TEST

/* JSON's "\u0000" is data: the loaders keep every byte of a string with its length, and the
 * tokenizer (here one token per byte) receives the NUL inside the templated text. */
START_TEST(test_data_nul_in_strings) {
    err_t err = ERR_INIT;
    data_examples_t demos;
    demos_from(&demos, "{\"prompt\":\"a\\u0000b\",\"response\":\" \\u0000c\"}\n");
    ck_assert_int_eq(demos.n, 1);
    ck_assert_int_eq(demos.ex[0].prompt_len, 3);
    ck_assert(!memcmp(demos.ex[0].prompt, "a\0b", 4)); /* and a NUL after the bytes */
    ck_assert_int_eq(demos.ex[0].response_len, 3);
    ck_assert(!memcmp(demos.ex[0].response, " \0c", 4));
    data_sft_t set;
    ck_assert_msg(data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 64, DATA_TOO_LONG_ERROR,
                                 &err) == 0,
                  "%s", err.msg);
    static const char full[] = "Human: a\0b\n\nAssistant: \0c"; /* 22 of prompt, 3 of response */
    ck_assert_int_eq(set.n_prompt[0], 22);
    ck_assert_int_eq(set.offset[1], (int64_t)sizeof full - 1);
    for (int64_t t = 0; t < set.offset[1]; t++)
        ck_assert_int_eq(set.ids[t], (unsigned char)full[t]);
    data_sft_release(&set);
    data_examples_release(&demos);

    const char *path = write_file("p.jsonl", "{\"prompt\":\"\\u0000\"}\n", -1);
    ck_assert_msg(data_prompts_load(&demos, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(demos.ex[0].prompt_len, 1);
    ck_assert_int_eq(demos.ex[0].prompt[0], '\0');
    ck_assert_int_eq(demos.ex[0].response_len, 0);
    data_examples_release(&demos);

    data_texts_t texts;
    path = write_file("t.jsonl", "{\"text\":\";_\\u0000_hello\"}\n{\"text\":\"plain\"}\n", -1);
    ck_assert_msg(data_texts_load(&texts, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(texts.n, 2);
    ck_assert_int_eq(texts.len[0], 9);
    ck_assert(!memcmp(texts.text[0], ";_\0_hello", 10));
    ck_assert_int_eq(texts.len[1], 5);
    data_texts_release(&texts);

    /* the template of a prompt with a NUL: every byte, measured by the return value */
    char buf[64];
    ck_assert_uint_eq(data_template_promptn(buf, sizeof buf, "x\0y", 3), 22);
    ck_assert(!memcmp(buf, "Human: x\0y\n\nAssistant:", 23));
    ck_assert_uint_eq(data_template_responsen(buf, sizeof buf, "  \0", 3), 2);
    ck_assert(!memcmp(buf, " \0", 3));
}
END_TEST

START_TEST(test_data_sft_too_long) {
    data_examples_t demos;
    demos_from(&demos, "{\"prompt\":\"x\",\"response\":\"y\"}\n\n"
                       "{\"prompt\":\"hi\",\"response\":\"yo\"}\n");
    data_sft_t set;
    err_t err = ERR_INIT;
    /* example 2 needs 21 + 3 + 1 = 25 tokens */
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 25, DATA_TOO_LONG_ERROR, &err),
        0);
    data_sft_release(&set);
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 24, DATA_TOO_LONG_ERROR, &err),
        -1);
    ck_assert_msg(strstr(err.msg, "demos.jsonl:3: 25 tokens (prompt 21 + response 3 + "
                                  "end-of-text), the context is 24"),
                  "%s", err.msg);
    ck_assert_int_eq(set.n, 0);
    ck_assert_ptr_null(set.ids);

    /* truncate: the response is cut, and with it the end-of-text */
    err_clear(&err);
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 23, DATA_TOO_LONG_TRUNCATE, &err),
        0);
    ck_assert_int_eq(set.truncated, 1);
    ck_assert(set.has_eos[0] && !set.has_eos[1]);
    ck_assert_int_eq(data_sft_len(&set, 1), 23);
    int32_t inputs[23], targets[23];
    int64_t idx = 1, len = 0;
    ck_assert_int_eq(data_sft_batch(&set, &idx, 1, 23, inputs, targets, &len), 2);
    ck_assert_int_eq(len, 23);
    ck_assert_int_eq(inputs[22], 'y');
    ck_assert_int_eq(targets[21], 'y');
    ck_assert_int_eq(targets[22], -1);
    data_sft_release(&set);
    /* truncation keeps at least one response token: a 21-token prompt needs a context of 22 */
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 21, DATA_TOO_LONG_TRUNCATE, &err),
        -1);
    ck_assert(strstr(err.msg, "demos.jsonl:3: 25 tokens (prompt 21 + response 3 + end-of-text), "
                              "the context is 21"));
    data_examples_release(&demos);

    /* prompts alone: no end-of-text, nothing to train; only the prompt must fit */
    const char *path = write_file("prompts.jsonl", "{\"prompt\":\"hi\"}\n", -1);
    ck_assert_int_eq(data_prompts_load(&demos, path, &err), 0);
    err_clear(&err);
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 21, DATA_TOO_LONG_ERROR, &err),
        0);
    ck_assert_int_eq(data_sft_len(&set, 0), 21);
    ck_assert_int_eq(data_sft_batch(&set, &idx, 0, 21, inputs, targets, NULL), 0);
    idx = 0;
    ck_assert_int_eq(data_sft_batch(&set, &idx, 1, 21, inputs, targets, NULL), 0);
    data_sft_release(&set);
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 20, DATA_TOO_LONG_ERROR, &err),
        -1);
    ck_assert(strstr(err.msg, "prompts.jsonl:1: prompt is 21 tokens, the context is 20"));
    data_examples_release(&demos);
}
END_TEST

START_TEST(test_data_sft_encoder_errors_and_growth) {
    data_examples_t demos;
    demos_from(&demos, "{\"prompt\":\"fine\",\"response\":\"ok\"}\n"
                       "{\"prompt\":\"fine\",\"response\":\"BAD\"}\n");
    data_sft_t set;
    err_t err = ERR_INIT;
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, NULL, EOS, PAD, 100, DATA_TOO_LONG_ERROR, &err),
        -1);
    ck_assert_msg(strstr(err.msg, "demos.jsonl:2: response: cannot encode"), "%s", err.msg);
    data_examples_release(&demos);
    /* an encoder that needs more ids than bytes still works (the buffer grows) */
    demos_from(&demos, "{\"prompt\":\"ab\",\"response\":\"cd\"}\n");
    int two = 2;
    err_clear(&err);
    ck_assert_int_eq(
        data_sft_build(&set, &demos, byte_encode, &two, EOS, PAD, 100, DATA_TOO_LONG_ERROR, &err),
        0);
    ck_assert_int_eq(set.n_prompt[0], 2 * (int64_t)strlen("Human: ab\n\nAssistant:"));
    ck_assert_int_eq(data_sft_len(&set, 0), set.n_prompt[0] + 6 + 1);
    ck_assert_int_eq(set.ids[set.n_prompt[0]], ' ');
    ck_assert_int_eq(set.ids[set.n_prompt[0] + 2], 'c');
    data_sft_release(&set);
    data_examples_release(&demos);
}
END_TEST

/* ---- token streams and order */

START_TEST(test_data_stream_sample) {
    enum { N = 100, B = 4, T = 8 };
    int32_t corpus[N];
    for (int i = 0; i < N; i++) corpus[i] = 1000 + i;
    data_stream_t s;
    err_t err = ERR_INIT;
    ck_assert_int_eq(data_stream_init(&s, corpus, N, B, T, &err), 0);
    int32_t in1[B * T], tg1[B * T], in2[B * T], tg2[B * T];
    rng_t a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int64_t lo = N, hi = -1;
    for (int k = 0; k < 1000; k++) {
        data_stream_sample(&s, &a, in1, tg1);
        data_stream_sample(&s, &b, in2, tg2);
        ck_assert(!memcmp(in1, in2, sizeof in1) && !memcmp(tg1, tg2, sizeof tg1));
        for (int r = 0; r < B; r++) {
            int64_t start = in1[r * T] - 1000;
            lo = start < lo ? start : lo;
            hi = start > hi ? start : hi;
            for (int t = 0; t < T; t++) {
                ck_assert_int_eq(in1[r * T + t], 1000 + start + t); /* consecutive */
                ck_assert_int_eq(tg1[r * T + t], 1000 + start + t + 1);
            }
        }
    }
    ck_assert_int_eq(lo, 0);         /* both ends reached ... */
    ck_assert_int_eq(hi, N - T - 1); /* ... and never past the last full window */
    ck_assert_int_eq(s.pos, 0);
    rng_seed(&b, 43);
    data_stream_sample(&s, &a, in1, tg1);
    data_stream_sample(&s, &b, in2, tg2);
    ck_assert(memcmp(in1, in2, sizeof in1));

    ck_assert_int_eq(data_stream_init(&s, corpus, T, B, T, &err), -1);
    ck_assert_str_eq(err.msg, "corpus has 8 tokens, a window needs 9 (T = 8)");
}
END_TEST

START_TEST(test_data_stream_sequential) {
    enum { N = 30, B = 2, T = 8 };
    int32_t corpus[N], in[B * T], tg[B * T];
    for (int i = 0; i < N; i++) corpus[i] = i;
    data_stream_t s;
    err_t err = ERR_INIT;
    ck_assert_int_eq(data_stream_init(&s, corpus, N, B, T, &err), 0);
    ck_assert_int_eq(data_stream_batches(&s), 2); /* 3 windows: 0, 8, 16 */
    ck_assert(!data_stream_next(&s, in, tg));
    ck_assert_int_eq(in[0], 0);
    ck_assert_int_eq(in[T], 8);
    ck_assert_int_eq(tg[T + T - 1], 16);
    ck_assert_int_eq(s.pos, 16);
    ck_assert(data_stream_next(&s, in, tg)); /* 16 fits; 24 would need 33 tokens: wraps */
    ck_assert_int_eq(in[0], 16);
    ck_assert_int_eq(tg[T - 1], 24);
    ck_assert_int_eq(in[T], 0);
    ck_assert_int_eq(s.pos, 8);
    /* resume: a stream put at the saved pos continues identically */
    data_stream_t r;
    data_stream_init(&r, corpus, N, B, T, &err);
    r.pos = s.pos;
    int32_t in2[B * T], tg2[B * T];
    data_stream_next(&s, in, tg);
    data_stream_next(&r, in2, tg2);
    ck_assert(!memcmp(in, in2, sizeof in) && !memcmp(tg, tg2, sizeof tg));
}
END_TEST

START_TEST(test_data_order_epochs_and_resume) {
    enum { N = 10, B = 3, BATCHES = 9 };
    data_order_t o, r;
    err_t err = ERR_INIT;
    ck_assert_int_eq(data_order_init(&o, N, 5, &err), 0);
    int64_t seen[BATCHES * B];
    int64_t saved_epoch = 0, saved_pos = 0;
    for (int k = 0; k < BATCHES; k++) {
        if (k == 4) {
            saved_epoch = o.epoch;
            saved_pos = o.pos;
        }
        bool wrapped = data_order_next(&o, seen + k * B, B);
        ck_assert(wrapped == (k == 3 || k == 6)); /* 10 per epoch: batches 3 and 6 cross */
    }
    /* each epoch is a permutation, and epochs differ */
    for (int e = 0; e < 2; e++) {
        int hits[N] = {0};
        for (int i = 0; i < N; i++) hits[seen[e * N + i]]++;
        for (int i = 0; i < N; i++) ck_assert_int_eq(hits[i], 1);
    }
    ck_assert(memcmp(seen, seen + N, N * sizeof seen[0]));
    /* same seed, same order; a seek to the saved position replays the rest exactly */
    ck_assert_int_eq(data_order_init(&r, N, 5, &err), 0);
    ck_assert_int_eq(data_order_seek(&r, saved_epoch, saved_pos, &err), 0);
    int64_t again[B];
    for (int k = 4; k < BATCHES; k++) {
        data_order_next(&r, again, B);
        ck_assert(!memcmp(again, seen + k * B, sizeof again));
    }
    ck_assert_int_eq(data_order_seek(&r, 0, N + 1, &err), -1);
    ck_assert_str_eq(err.msg, "data position epoch 0 pos 11 is outside 10 examples");
    data_order_release(&r);
    /* another seed, another order */
    ck_assert_int_eq(data_order_init(&r, N, 6, &err), 0);
    ck_assert(memcmp(r.order, seen, N * sizeof seen[0]));
    data_order_release(&r);
    data_order_release(&o);
}
END_TEST

Suite *test_data_suite(void);
Suite *test_data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_data_jsonl_errors);
    tcase_add_test(tc, test_data_missing_file);
    tcase_add_test(tc, test_data_line_too_long);
    tcase_add_test(tc, test_data_demos_load);
    tcase_add_test(tc, test_data_texts_and_ids);
    tcase_add_test(tc, test_data_check_fields_types);
    tcase_add_test(tc, test_data_jsonl_stream);
    tcase_add_test(tc, test_data_read_file);
    tcase_add_test(tc, test_data_template_golden);
    tcase_add_test(tc, test_data_template_check);
    tcase_add_test(tc, test_data_sft_batch_masks_prompt);
    tcase_add_test(tc, test_data_nul_in_strings);
    tcase_add_test(tc, test_data_sft_too_long);
    tcase_add_test(tc, test_data_sft_encoder_errors_and_growth);
    tcase_add_test(tc, test_data_stream_sample);
    tcase_add_test(tc, test_data_stream_sequential);
    tcase_add_test(tc, test_data_order_epochs_and_resume);
    suite_add_tcase(s, tc);
    return s;
}
