#include "data.h" /* own header first: proves it compiles on its own */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSONL ------------------------------------------------------------------------------- */

#define LINE_BUF_START 4096

int data_jsonl_open_stream(data_jsonl_t *r, FILE *f, const char *name, int64_t max_line,
                           err_t *err) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->max_line = max_line > 0 ? max_line : DATA_MAX_LINE;
    if (!(r->name = strdup(name))) return err_setf(err, "%s: out of memory", name);
    return 0;
}

int data_jsonl_open(data_jsonl_t *r, const char *path, int64_t max_line, err_t *err) {
    bool is_stdin = !strcmp(path, "-");
    if (data_jsonl_open_stream(r, NULL, is_stdin ? "<stdin>" : path, max_line, err)) return -1;
    if (is_stdin) {
        r->f = stdin;
        return 0;
    }
    if (!(r->f = fopen(path, "rb")))
        return err_setf(err, "%s: cannot open: %s", path, strerror(errno));
    r->owned = true;
    return 0;
}

void data_jsonl_close(data_jsonl_t *r) {
    if (r->owned && r->f) fclose(r->f);
    free(r->name);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Reads one line into r->buf without its "\n" or "\r\n". Returns its length, -1 at the end of
 * the file, -2 with err set. Holds at most max_line + 1 bytes (the +1 for a '\r'), so a huge
 * line costs no more memory than a legal one. */
static int64_t read_line(data_jsonl_t *r, err_t *err) {
    size_t len = 0, limit = (size_t)r->max_line + 1;
    int c;
    bool any = false;
    while ((c = getc_unlocked(r->f)) != EOF) {
        any = true;
        if (c == '\n') break;
        if (len == limit) {
            err_setf(err, "%s:%" PRId64 ": line longer than %" PRId64 " bytes", r->name,
                     r->line + 1, r->max_line);
            return -2;
        }
        if (len + 1 >= r->cap) {
            size_t cap = r->cap ? r->cap * 2 : LINE_BUF_START;
            if (cap > limit + 1) cap = limit + 1;
            char *buf = realloc(r->buf, cap);
            if (!buf) return err_setf(err, "%s: out of memory", r->name), -2;
            r->buf = buf;
            r->cap = cap;
        }
        r->buf[len++] = (char)c;
    }
    if (ferror(r->f)) return err_setf(err, "%s: read error: %s", r->name, strerror(errno)), -2;
    if (!any) return -1;
    r->line++;
    if (len > 0 && r->buf[len - 1] == '\r') len--;
    if (len > (size_t)r->max_line) {
        err_setf(err, "%s:%" PRId64 ": line longer than %" PRId64 " bytes", r->name, r->line,
                 r->max_line);
        return -2;
    }
    if (r->buf) r->buf[len] = '\0';
    return (int64_t)len;
}

static bool is_blank(const char *s, int64_t len) {
    for (int64_t i = 0; i < len; i++)
        if (!strchr(" \t\r", s[i])) return false;
    return true;
}

static const char *type_name(data_type_t type) {
    switch (type) {
    case DATA_STRING:
        return "a string";
    case DATA_INTEGER:
        return "an integer";
    case DATA_NUMBER:
        return "a number";
    case DATA_BOOL:
        return "true or false";
    case DATA_IDS:
        return "an array of token ids";
    case DATA_STRINGS:
        return "an array of strings";
    case DATA_ARRAY:
        return "an array";
    case DATA_OBJECT:
        return "an object";
    }
    return "?";
}

/* Element checks of the array types; messages name the element: "ids"[3]. */
static int check_elements(const json_t *v, const data_field_t *f, const char *name, int64_t line,
                          err_t *err) {
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) {
        if (f->type == DATA_STRINGS && !json_is_string(e))
            return err_setf(err, "%s:%" PRId64 ": \"%s\"[%zu] must be a string", name, line,
                            f->name, i);
        if (f->type != DATA_IDS) continue;
        if (!json_is_integer(e))
            return err_setf(err, "%s:%" PRId64 ": \"%s\"[%zu] must be an integer", name, line,
                            f->name, i);
        json_int_t id = json_integer_value(e);
        if (id < 0 || id > INT32_MAX)
            return err_setf(
                err, "%s:%" PRId64 ": \"%s\"[%zu]: %" JSON_INTEGER_FORMAT " is not a token id",
                name, line, f->name, i, id);
    }
    return 0;
}

static bool has_type(const json_t *v, data_type_t type) {
    switch (type) {
    case DATA_STRING:
        return json_is_string(v);
    case DATA_INTEGER:
        return json_is_integer(v);
    case DATA_NUMBER:
        return json_is_number(v);
    case DATA_BOOL:
        return json_is_boolean(v);
    case DATA_IDS:
    case DATA_STRINGS:
    case DATA_ARRAY:
        return json_is_array(v);
    case DATA_OBJECT:
        return json_is_object(v);
    }
    return false;
}

int data_check_fields(const json_t *obj, const data_field_t *fields, int n_fields, const char *name,
                      int64_t line, err_t *err) {
    if (!json_is_object(obj)) return err_setf(err, "%s:%" PRId64 ": not a JSON object", name, line);
    for (int k = 0; k < n_fields; k++) {
        const data_field_t *f = &fields[k];
        const json_t *v = json_object_get(obj, f->name);
        if (!v) {
            if (f->optional) continue;
            return err_setf(err, "%s:%" PRId64 ": missing \"%s\"", name, line, f->name);
        }
        if (!has_type(v, f->type))
            return err_setf(err, "%s:%" PRId64 ": \"%s\" must be %s", name, line, f->name,
                            type_name(f->type));
        if (check_elements(v, f, name, line, err)) return -1;
    }
    return 0;
}

int data_jsonl_next(data_jsonl_t *r, const data_field_t *fields, int n_fields, json_t **obj,
                    err_t *err) {
    *obj = NULL;
    int64_t len;
    do len = read_line(r, err);
    while (len >= 0 && is_blank(r->buf, len));
    if (len == -1) return 0;
    if (len < 0) return -1;
    json_error_t jerr;
    /* DECODE_ANY: so `42` is reported as "not a JSON object", not as a syntax error */
    /* ALLOW_NUL: "\u0000" is valid JSON and byte 0 is a token like any other; every string
     * is read with json_string_length */
    json_t *v = json_loadb(r->buf, (size_t)len,
                           JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!v)
        return err_setf(err, "%s:%" PRId64 ": invalid JSON: %s (column %d)", r->name, r->line,
                        jerr.text, jerr.column);
    if (data_check_fields(v, fields, n_fields, r->name, r->line, err)) {
        json_decref(v);
        return -1;
    }
    r->records++;
    *obj = v;
    return 1;
}

/* Reads every record of path through add(ctx, obj, line), then insists on at least one. */
typedef int (*add_fn)(void *ctx, const json_t *obj, int64_t line, err_t *err);

static int load_all(const char *path, const data_field_t *fields, int n_fields, add_fn add,
                    void *ctx, err_t *err) {
    data_jsonl_t r;
    json_t *obj = NULL;
    int rc = data_jsonl_open(&r, path, 0, err);
    while (rc == 0) {
        int got = data_jsonl_next(&r, fields, n_fields, &obj, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        rc = add(ctx, obj, r.line, err);
        json_decref(obj);
    }
    if (rc == 0 && r.records == 0) rc = err_setf(err, "%s: no JSON lines (empty file)", r.name);
    data_jsonl_close(&r);
    return rc;
}

/* Returns arr grown (by doubling) to hold at least need elements of elem bytes, with *cap
 * counting elements, or NULL when out of memory (arr is then still valid and unchanged). */
static void *grow(void *arr, int64_t *cap, int64_t need, size_t elem) {
    if (need < 1) need = 1;
    if (need <= *cap) return arr;
    int64_t cap2 = *cap ? *cap * 2 : 256;
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(arr, (size_t)cap2 * elem);
    if (p) *cap = cap2;
    return p;
}

/* A copy of string field key, all json_string_length bytes of it (NUL bytes included) plus a
 * NUL; *len gets the length. NULL when absent or out of memory. */
static char *dup_field(const json_t *obj, const char *key, int64_t *len) {
    const json_t *v = json_object_get(obj, key);
    *len = 0;
    if (!v) return NULL;
    const size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, json_string_value(v), n);
    s[n] = '\0';
    *len = (int64_t)n;
    return s;
}

/* ---- Examples (demos and prompts) */

typedef struct {
    data_examples_t *set;
    int64_t cap;
    bool with_response;
} examples_ctx_t;

static int add_example(void *ctx, const json_t *obj, int64_t line, err_t *err) {
    examples_ctx_t *c = ctx;
    data_examples_t *set = c->set;
    data_example_t *ex = grow(set->ex, &c->cap, set->n + 1, sizeof *ex);
    if (!ex) return err_setf(err, "%s: out of memory", set->path);
    set->ex = ex;
    data_example_t *e = &set->ex[set->n];
    e->prompt = dup_field(obj, "prompt", &e->prompt_len);
    e->response = c->with_response ? dup_field(obj, "response", &e->response_len) : NULL;
    if (!c->with_response) e->response_len = 0;
    e->line = line;
    set->n++; /* counted even when a copy failed, so release frees what was copied */
    if (!e->prompt || (c->with_response && !e->response))
        return err_setf(err, "%s: out of memory", set->path);
    return 0;
}

static int examples_load(data_examples_t *out, const char *path, bool with_response, err_t *err) {
    static const data_field_t demo_fields[] = {{"prompt", DATA_STRING, false},
                                               {"response", DATA_STRING, false}};
    memset(out, 0, sizeof *out);
    if (!(out->path = strdup(path))) return err_setf(err, "%s: out of memory", path);
    examples_ctx_t ctx = {.set = out, .cap = 0, .with_response = with_response};
    if (load_all(path, demo_fields, with_response ? 2 : 1, add_example, &ctx, err)) {
        data_examples_release(out);
        return -1;
    }
    return 0;
}

int data_demos_load(data_examples_t *out, const char *path, err_t *err) {
    return examples_load(out, path, true, err);
}

int data_prompts_load(data_examples_t *out, const char *path, err_t *err) {
    return examples_load(out, path, false, err);
}

void data_examples_release(data_examples_t *set) {
    for (int64_t i = 0; i < set->n; i++) {
        free(set->ex[i].prompt);
        free(set->ex[i].response);
    }
    free(set->ex);
    free(set->path);
    memset(set, 0, sizeof *set);
}

/* ---- Texts */

typedef struct {
    data_texts_t *set;
    int64_t cap_text, cap_len, cap_line;
} texts_ctx_t;

static int add_text(void *ctx, const json_t *obj, int64_t line, err_t *err) {
    texts_ctx_t *c = ctx;
    data_texts_t *set = c->set;
    char **text = grow(set->text, &c->cap_text, set->n + 1, sizeof *text);
    if (text) set->text = text;
    int64_t *lens = grow(set->len, &c->cap_len, set->n + 1, sizeof *lens);
    if (lens) set->len = lens;
    int64_t *lines = grow(set->line, &c->cap_line, set->n + 1, sizeof *lines);
    if (lines) set->line = lines;
    if (!text || !lens || !lines) return err_setf(err, "%s: out of memory", set->path);
    set->line[set->n] = line;
    set->text[set->n] = dup_field(obj, "text", &set->len[set->n]);
    set->n++;
    return set->text[set->n - 1] ? 0 : err_setf(err, "%s: out of memory", set->path);
}

int data_texts_load(data_texts_t *out, const char *path, err_t *err) {
    static const data_field_t fields[] = {{"text", DATA_STRING, false}};
    memset(out, 0, sizeof *out);
    if (!(out->path = strdup(path))) return err_setf(err, "%s: out of memory", path);
    texts_ctx_t ctx = {.set = out};
    if (load_all(path, fields, 1, add_text, &ctx, err)) {
        data_texts_release(out);
        return -1;
    }
    return 0;
}

void data_texts_release(data_texts_t *set) {
    for (int64_t i = 0; i < set->n; i++) free(set->text[i]);
    free(set->text);
    free(set->len);
    free(set->line);
    free(set->path);
    memset(set, 0, sizeof *set);
}

/* ---- Token ids */

typedef struct {
    data_ids_t *set;
    int64_t vocab_size;
    int64_t cap_rows, cap_off, cap_ids;
} ids_ctx_t;

static int add_ids(void *ctx, const json_t *obj, int64_t line, err_t *err) {
    ids_ctx_t *c = ctx;
    data_ids_t *set = c->set;
    const json_t *arr = json_object_get(obj, "ids");
    int64_t n = (int64_t)json_array_size(arr), at = set->offset ? set->offset[set->n] : 0;
    int64_t *lines = grow(set->line, &c->cap_rows, set->n + 1, sizeof *lines);
    if (lines) set->line = lines;
    int64_t *offset = grow(set->offset, &c->cap_off, set->n + 2, sizeof *offset);
    if (offset) set->offset = offset;
    int32_t *ids = grow(set->ids, &c->cap_ids, at + n, sizeof *ids);
    if (ids) set->ids = ids;
    if (!lines || !offset || !ids) return err_setf(err, "%s: out of memory", set->path);
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e) {
        json_int_t id = json_integer_value(e); /* an int32 ≥ 0: checked by DATA_IDS */
        if (c->vocab_size > 0 && id >= c->vocab_size)
            return err_setf(err,
                            "%s:%" PRId64 ": \"ids\"[%zu]: %" JSON_INTEGER_FORMAT
                            " is not a token id (vocab size %" PRId64 ")",
                            set->path, line, i, id, c->vocab_size);
        set->ids[at + (int64_t)i] = (int32_t)id;
    }
    set->offset[0] = 0;
    set->offset[set->n + 1] = at + n;
    set->line[set->n] = line;
    set->n++;
    return 0;
}

int data_ids_load(data_ids_t *out, const char *path, int64_t vocab_size, err_t *err) {
    static const data_field_t fields[] = {{"ids", DATA_IDS, false}};
    memset(out, 0, sizeof *out);
    if (!(out->path = strdup(path))) return err_setf(err, "%s: out of memory", path);
    ids_ctx_t ctx = {.set = out, .vocab_size = vocab_size};
    if (load_all(path, fields, 1, add_ids, &ctx, err)) {
        data_ids_release(out);
        return -1;
    }
    return 0;
}

void data_ids_release(data_ids_t *set) {
    free(set->offset);
    free(set->ids);
    free(set->line);
    free(set->path);
    memset(set, 0, sizeof *set);
}

int data_read_file(const char *path, char **text, size_t *len, err_t *err) {
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_setf(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t cap2 = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap2 + 1);
            if (!b) {
                err_setf(err, "%s: out of memory", path);
                goto fail;
            }
            buf = b;
            cap = cap2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        err_setf(err, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    buf[n] = '\0';
    fclose(f);
    *text = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

/* ---- Template ---------------------------------------------------------------------------- */

#define TEMPLATE_BEFORE "Human: "
#define TEMPLATE_AFTER  "\n\nAssistant:"

/* Appends n bytes of s at *len, writing only what fits in size - 1 (NUL always written). */
static void put(char *buf, size_t size, size_t *len, const char *s, size_t n) {
    if (*len + 1 < size) {
        size_t room = size - 1 - *len;
        memcpy(buf + *len, s, n < room ? n : room);
    }
    *len += n;
    if (size) buf[*len < size ? *len : size - 1] = '\0';
}

size_t data_template_promptn(char *buf, size_t size, const char *prompt, size_t prompt_len) {
    size_t len = 0;
    put(buf, size, &len, TEMPLATE_BEFORE, strlen(TEMPLATE_BEFORE));
    put(buf, size, &len, prompt, prompt_len);
    put(buf, size, &len, TEMPLATE_AFTER, strlen(TEMPLATE_AFTER));
    return len;
}

size_t data_template_responsen(char *buf, size_t size, const char *response, size_t response_len) {
    size_t len = 0;
    while (response_len > 0 && *response == ' ') response++, response_len--;
    put(buf, size, &len, " ", 1);
    put(buf, size, &len, response, response_len);
    return len;
}

size_t data_template_prompt(char *buf, size_t size, const char *prompt) {
    return data_template_promptn(buf, size, prompt, strlen(prompt));
}

size_t data_template_response(char *buf, size_t size, const char *response) {
    return data_template_responsen(buf, size, response, strlen(response));
}

const char *data_template_strip(const char *text) {
    return text[0] == ' ' ? text + 1 : text;
}

int data_template_check(const char *model_dir, const char *name, err_t *err) {
    if (!name || !name[0] || !strcmp(name, DATA_TEMPLATE_NAME)) return 0;
    return err_setf(err, "%s: config.json: rlhf.template is \"%s\", this build knows only \"%s\"",
                    model_dir, name, DATA_TEMPLATE_NAME);
}

/* ---- Token streams ----------------------------------------------------------------------- */

int data_stream_init(data_stream_t *s, const int32_t *tokens, int64_t n_tokens, int64_t B,
                     int64_t T, err_t *err) {
    memset(s, 0, sizeof *s);
    if (B <= 0 || T <= 0)
        return err_setf(err, "token stream: bad batch shape B=%" PRId64 " T=%" PRId64, B, T);
    if (n_tokens < T + 1)
        return err_setf(
            err, "corpus has %" PRId64 " tokens, a window needs %" PRId64 " (T = %" PRId64 ")",
            n_tokens, T + 1, T);
    s->tokens = tokens;
    s->n_tokens = n_tokens;
    s->B = B;
    s->T = T;
    return 0;
}

static void copy_window(const data_stream_t *s, int64_t start, int32_t *inputs, int32_t *targets) {
    memcpy(inputs, s->tokens + start, (size_t)s->T * sizeof *inputs);
    memcpy(targets, s->tokens + start + 1, (size_t)s->T * sizeof *targets);
}

void data_stream_sample(const data_stream_t *s, rng_t *rng, int32_t *inputs, int32_t *targets) {
    const int64_t T = s->T;
    for (int64_t b = 0; b < s->B; b++) {
        int64_t start = (int64_t)rng_below(rng, (uint64_t)(s->n_tokens - T));
        copy_window(s, start, inputs + b * T, targets + b * T);
    }
}

bool data_stream_next(data_stream_t *s, int32_t *inputs, int32_t *targets) {
    const int64_t T = s->T;
    bool wrapped = false;
    for (int64_t b = 0; b < s->B; b++) {
        if (s->pos + T + 1 > s->n_tokens) {
            s->pos = 0;
            wrapped = true;
        }
        copy_window(s, s->pos, inputs + b * T, targets + b * T);
        s->pos += T;
    }
    return wrapped;
}

int64_t data_stream_batches(const data_stream_t *s) {
    int64_t windows = (s->n_tokens - 1) / s->T;
    return (windows + s->B - 1) / s->B;
}

/* ---- SFT examples ------------------------------------------------------------------------ */

/* Reusable scratch for templating and tokenizing one text at a time. */
typedef struct {
    char *text;
    size_t text_cap;
    int32_t *ids;
    int64_t ids_cap;
} scratch_t;

/* Templates raw[0..raw_len) with fmt (data_template_promptn / _responsen) and tokenizes into
 * s->ids. Returns the token count or -1 with err set. */
static int64_t encode_part(scratch_t *s, size_t (*fmt)(char *, size_t, const char *, size_t),
                           const char *raw, int64_t raw_len, data_encode_fn encode, void *ctx,
                           err_t *err) {
    const size_t len = fmt(NULL, 0, raw, (size_t)raw_len);
    if (len + 1 > s->text_cap) {
        char *t = realloc(s->text, len + 1);
        if (!t) return err_setf(err, "out of memory");
        s->text = t;
        s->text_cap = len + 1;
    }
    fmt(s->text, s->text_cap, raw, (size_t)raw_len);
    for (;;) {
        int64_t n = encode(ctx, s->text, (int64_t)len, s->ids, s->ids_cap, err);
        if (n < 0 || n <= s->ids_cap) return n < 0 ? -1 : n;
        int32_t *ids = realloc(s->ids, (size_t)n * sizeof *ids);
        if (!ids) return err_setf(err, "out of memory");
        s->ids = ids;
        s->ids_cap = n;
    }
}

static int sft_alloc(data_sft_t *out, int64_t n) {
    /* n + 1 each: calloc(0) may return NULL, and an empty set is not out of memory */
    out->offset = calloc((size_t)n + 1, sizeof *out->offset);
    out->n_prompt = calloc((size_t)n + 1, sizeof *out->n_prompt);
    out->has_eos = calloc((size_t)n + 1, sizeof *out->has_eos);
    out->line = calloc((size_t)n + 1, sizeof *out->line);
    return out->offset && out->n_prompt && out->has_eos && out->line ? 0 : -1;
}

/* Checks an example's length against the context (or truncates its response). Returns the
 * response tokens to keep and whether the end-of-text stays, or -1 with err set. */
static int64_t fit_context(data_sft_t *out, const char *path, int64_t line, int64_t n_p,
                           int64_t n_r, bool has_response, int64_t context,
                           data_too_long_t too_long, bool *eos, err_t *err) {
    int64_t len = n_p + n_r + (has_response ? 1 : 0);
    *eos = has_response;
    if (len <= context) return n_r;
    if (!has_response)
        return err_setf(err,
                        "%s:%" PRId64 ": prompt is %" PRId64 " tokens, the context is %" PRId64,
                        path, line, n_p, context);
    if (too_long == DATA_TOO_LONG_TRUNCATE && n_p + 1 <= context) {
        out->truncated++;
        *eos = false;
        return context - n_p;
    }
    return err_setf(err,
                    "%s:%" PRId64 ": %" PRId64 " tokens (prompt %" PRId64 " + response %" PRId64
                    " + end-of-text), the context is %" PRId64,
                    path, line, len, n_p, n_r, context);
}

/* Tokenizes one example and appends it to out (ids grow in *ids_cap). The prompt's ids are
 * copied out of the scratch before the response is tokenized into it. */
static int sft_add(data_sft_t *out, int64_t *ids_cap, scratch_t *s, const char *path,
                   const data_example_t *e, data_encode_fn encode, void *ctx, int64_t context,
                   data_too_long_t too_long, err_t *err) {
    const int64_t start = out->offset[out->n];
    int64_t n_p = encode_part(s, data_template_promptn, e->prompt, e->prompt_len, encode, ctx, err);
    if (n_p < 0) return err_prefixf(err, "%s:%" PRId64 ": prompt: ", path, e->line);
    if (n_p == 0) return err_setf(err, "%s:%" PRId64 ": prompt has no tokens", path, e->line);
    int32_t *ids = grow(out->ids, ids_cap, start + n_p, sizeof *ids);
    if (!ids) return err_setf(err, "%s: out of memory", path);
    out->ids = ids;
    memcpy(out->ids + start, s->ids, (size_t)n_p * sizeof *ids);
    int64_t n_r = 0;
    if (e->response) {
        n_r =
            encode_part(s, data_template_responsen, e->response, e->response_len, encode, ctx, err);
        if (n_r < 0) return err_prefixf(err, "%s:%" PRId64 ": response: ", path, e->line);
    }
    bool eos;
    int64_t keep = fit_context(out, path, e->line, n_p, n_r, e->response != NULL, context, too_long,
                               &eos, err);
    if (keep < 0) return -1;
    if (!(ids = grow(out->ids, ids_cap, start + n_p + keep, sizeof *ids)))
        return err_setf(err, "%s: out of memory", path);
    out->ids = ids;
    memcpy(out->ids + start + n_p, s->ids, (size_t)keep * sizeof *ids);
    out->n_prompt[out->n] = n_p;
    out->has_eos[out->n] = eos;
    out->line[out->n] = e->line;
    out->offset[out->n + 1] = start + n_p + keep;
    out->n++;
    int64_t len = data_sft_len(out, out->n - 1);
    if (len > out->max_len) out->max_len = len;
    return 0;
}

int data_sft_build(data_sft_t *out, const data_examples_t *examples, data_encode_fn encode,
                   void *encode_ctx, int32_t eos_id, int32_t pad_id, int64_t context,
                   data_too_long_t too_long, err_t *err) {
    const char *path = examples->path ? examples->path : "examples";
    memset(out, 0, sizeof *out);
    out->eos_id = eos_id;
    out->pad_id = pad_id;
    scratch_t s = {0};
    int64_t ids_cap = 0;
    int rc = 0;
    if (sft_alloc(out, examples->n)) rc = err_setf(err, "%s: out of memory", path);
    for (int64_t i = 0; rc == 0 && i < examples->n; i++)
        rc = sft_add(out, &ids_cap, &s, path, &examples->ex[i], encode, encode_ctx, context,
                     too_long, err);
    free(s.text);
    free(s.ids);
    if (rc) data_sft_release(out);
    return rc;
}

void data_sft_release(data_sft_t *set) {
    free(set->offset);
    free(set->n_prompt);
    free(set->has_eos);
    free(set->ids);
    free(set->line);
    memset(set, 0, sizeof *set);
}

int64_t data_sft_len(const data_sft_t *set, int64_t i) {
    return set->offset[i + 1] - set->offset[i] + (set->has_eos[i] ? 1 : 0);
}

int64_t data_sft_batch_len(const data_sft_t *set, const int64_t *idx, int64_t B) {
    int64_t longest = 0;
    for (int64_t b = 0; b < B; b++) {
        int64_t len = data_sft_len(set, idx[b]);
        if (len > longest) longest = len;
    }
    return longest;
}

int64_t data_sft_batch(const data_sft_t *set, const int64_t *idx, int64_t B, int64_t T,
                       int32_t *inputs, int32_t *targets, int64_t *lengths) {
    int64_t count = 0;
    for (int64_t b = 0; b < B; b++) {
        const int64_t i = idx[b];
        const int64_t n = set->offset[i + 1] - set->offset[i], n_prompt = set->n_prompt[i];
        const int64_t len = data_sft_len(set, i);
        int32_t *in = inputs + b * T, *tg = targets + b * T;
        assert(i >= 0 && i < set->n && len <= T);
        memcpy(in, set->ids + set->offset[i], (size_t)n * sizeof *in);
        if (set->has_eos[i]) in[n] = set->eos_id;
        for (int64_t t = len; t < T; t++) in[t] = set->pad_id;
        /* position t predicts token t+1: trained only when t+1 is response or end-of-text */
        for (int64_t t = 0; t < T; t++) {
            bool trained = t + 1 >= n_prompt && t + 1 < len;
            tg[t] = trained ? in[t + 1] : -1;
            count += trained;
        }
        if (lengths) lengths[b] = len;
    }
    return count;
}

/* ---- Example order ----------------------------------------------------------------------- */

#define DATA_ORDER_TAG 0x64617461ull /* "data": keeps this stream apart from others of --seed */

static void order_shuffle(data_order_t *o) {
    rng_t rng;
    rng_seed(&rng, (o->seed ^ DATA_ORDER_TAG) + 0x9E3779B97F4A7C15ull * (uint64_t)o->epoch);
    for (int64_t i = 0; i < o->n; i++) o->order[i] = i;
    for (int64_t i = o->n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)rng_below(&rng, (uint64_t)i + 1), tmp = o->order[i];
        o->order[i] = o->order[j];
        o->order[j] = tmp;
    }
}

int data_order_init(data_order_t *o, int64_t n, uint64_t seed, err_t *err) {
    memset(o, 0, sizeof *o);
    if (n <= 0) return err_setf(err, "no examples to order");
    if (!(o->order = malloc((size_t)n * sizeof *o->order))) return err_setf(err, "out of memory");
    o->n = n;
    o->seed = seed;
    order_shuffle(o);
    return 0;
}

int data_order_seek(data_order_t *o, int64_t epoch, int64_t pos, err_t *err) {
    if (epoch < 0 || pos < 0 || pos > o->n) /* pos == n: the epoch just ended */
        return err_setf(
            err, "data position epoch %" PRId64 " pos %" PRId64 " is outside %" PRId64 " examples",
            epoch, pos, o->n);
    o->epoch = epoch;
    o->pos = pos;
    order_shuffle(o);
    return 0;
}

bool data_order_next(data_order_t *o, int64_t *idx, int64_t B) {
    bool wrapped = false;
    for (int64_t b = 0; b < B; b++) {
        if (o->pos == o->n) {
            o->epoch++;
            o->pos = 0;
            order_shuffle(o);
            wrapped = true;
        }
        idx[b] = o->order[o->pos++];
    }
    return wrapped;
}

void data_order_release(data_order_t *o) {
    free(o->order);
    memset(o, 0, sizeof *o);
}
