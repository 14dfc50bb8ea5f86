/* common/comparisons.c: K-way and pairwise comparison files (see comparisons.h). */
#include "comparisons.h"
#include "data.h"
#include "ranking.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define HH_HUMAN     "\n\nHuman: "
#define HH_ASSISTANT "\n\nAssistant:"

int comparisons_format_parse(const char *name, comparisons_format_t *fmt) {
    if (!strcmp(name, "kway"))
        *fmt = COMPARISONS_KWAY;
    else if (!strcmp(name, "pairwise"))
        *fmt = COMPARISONS_PAIRWISE;
    else
        return -1;
    return 0;
}

const char *comparisons_format_name(comparisons_format_t fmt) {
    return fmt == COMPARISONS_PAIRWISE ? "pairwise" : "kway";
}

static void item_release(comparisons_item_t *it) {
    for (int i = 0; it->responses && i < it->k; i++) free(it->responses[i]);
    free(it->responses);
    free(it->response_lens);
    free(it->ranks);
    free(it->prompt);
    free(it->labeler);
    memset(it, 0, sizeof *it);
}

void comparisons_release(comparisons_t *c) {
    for (int64_t i = 0; c->items && i < c->n; i++) item_release(&c->items[i]);
    free(c->items);
    free(c->path);
    memset(c, 0, sizeof *c);
}

/* A NUL-terminated copy of s[0..n). */
static char *copy_bytes(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int comparisons_split_hh(const char *s, size_t len, size_t *prompt_off, size_t *prompt_len,
                         size_t *resp_off, size_t *resp_len, err_t *err) {
    const size_t nh = strlen(HH_HUMAN), na = strlen(HH_ASSISTANT);
    if (len < nh || memcmp(s, HH_HUMAN, nh))
        return err_setf(err, "the transcript does not start with \"\\n\\nHuman: \"");
    size_t at = SIZE_MAX; /* the last "\n\nAssistant:" after the first human turn */
    for (size_t i = len - na + 1; len >= na && i-- > nh;)
        if (!memcmp(s + i, HH_ASSISTANT, na)) {
            at = i;
            break;
        }
    if (at == SIZE_MAX) return err_setf(err, "no \"\\n\\nAssistant:\" turn in the transcript");
    *prompt_off = nh;
    *prompt_len = at - nh;
    *resp_off = at + na;
    if (*resp_off < len && s[*resp_off] == ' ') (*resp_off)++; /* the template's space */
    *resp_len = len - *resp_off;
    return 0;
}

/* Allocates it's arrays for k responses. */
static int item_alloc(comparisons_item_t *it, int k) {
    it->k = k;
    it->responses = calloc((size_t)k, sizeof *it->responses);
    it->response_lens = calloc((size_t)k, sizeof *it->response_lens);
    it->ranks = calloc((size_t)k, sizeof *it->ranks);
    return it->responses && it->response_lens && it->ranks ? 0 : -1;
}

static int set_response(comparisons_item_t *it, int i, const char *s, size_t n) {
    it->response_lens[i] = n;
    return (it->responses[i] = copy_bytes(s, n)) ? 0 : -1;
}

/* {"prompt", "responses", "ranks", "labeler"?} → it; messages "FILE:LINE: field: ...". */
static int parse_kway(const json_t *o, comparisons_item_t *it, const char *at, err_t *err) {
    const json_t *resp = json_object_get(o, "responses"), *ranks = json_object_get(o, "ranks");
    const json_t *prompt = json_object_get(o, "prompt"), *who = json_object_get(o, "labeler");
    const size_t k = json_array_size(resp);
    if (k < 2 || k > COMPARISONS_K_MAX)
        return err_setf(err, "%s: \"responses\": %zu responses (2 to %d)", at, k,
                        COMPARISONS_K_MAX);
    if (json_array_size(ranks) != k)
        return err_setf(err, "%s: \"ranks\": %zu ranks for %zu responses", at,
                        json_array_size(ranks), k);
    if (item_alloc(it, (int)k)) return err_setf(err, "out of memory");
    for (size_t i = 0; i < k; i++) {
        const json_t *r = json_array_get(ranks, i), *s = json_array_get(resp, i);
        if (!json_is_integer(r))
            return err_setf(err, "%s: \"ranks\"[%zu] must be an integer", at, i);
        const json_int_t v = json_integer_value(r);
        if (v < 1 || v > INT32_MAX)
            return err_setf(err,
                            "%s: \"ranks\"[%zu]: %" JSON_INTEGER_FORMAT " is not a rank (1 = best)",
                            at, i, v);
        it->ranks[i] = (int)v;
        if (set_response(it, (int)i, json_string_value(s), json_string_length(s)))
            return err_setf(err, "out of memory");
    }
    if (ranking_normalize(it->ranks, it->k, err)) return err_prefixf(err, "%s: \"ranks\": ", at);
    it->prompt_len = json_string_length(prompt);
    if (!(it->prompt = copy_bytes(json_string_value(prompt), it->prompt_len)))
        return err_setf(err, "out of memory");
    if (who && !(it->labeler = strdup(json_string_value(who))))
        return err_setf(err, "out of memory");
    return 0;
}

/* {"prompt", "chosen", "rejected"} or HH {"chosen", "rejected"} → a K = 2 item. */
static int parse_pairwise(const json_t *o, comparisons_item_t *it, const char *at, err_t *err) {
    const json_t *prompt = json_object_get(o, "prompt");
    const json_t *side[2] = {json_object_get(o, "chosen"), json_object_get(o, "rejected")};
    static const char *const names[2] = {"chosen", "rejected"};
    if (item_alloc(it, 2)) return err_setf(err, "out of memory");
    it->ranks[0] = 1;
    it->ranks[1] = 2;
    if (prompt) {
        it->prompt_len = json_string_length(prompt);
        if (!(it->prompt = copy_bytes(json_string_value(prompt), it->prompt_len)) ||
            set_response(it, 0, json_string_value(side[0]), json_string_length(side[0])) ||
            set_response(it, 1, json_string_value(side[1]), json_string_length(side[1])))
            return err_setf(err, "out of memory");
        return 0;
    }
    it->hh = true;
    for (int i = 0; i < 2; i++) {
        const char *s = json_string_value(side[i]);
        size_t po, pl, ro, rl;
        if (comparisons_split_hh(s, json_string_length(side[i]), &po, &pl, &ro, &rl, err))
            return err_prefixf(err, "%s: \"%s\": ", at, names[i]);
        if (i == 0 && !(it->prompt = copy_bytes(s + po, pl))) return err_setf(err, "out of memory");
        if (i == 0) it->prompt_len = pl;
        if (i == 1 && (pl != it->prompt_len || memcmp(s + po, it->prompt, pl)))
            return err_setf(err,
                            "%s: \"rejected\": the transcript's prompt differs from "
                            "\"chosen\"'s",
                            at);
        if (set_response(it, i, s + ro, rl)) return err_setf(err, "out of memory");
    }
    return 0;
}

/* Appends a zeroed item to out (doubling the array). */
static comparisons_item_t *push(comparisons_t *out, int64_t *cap) {
    if (out->n == *cap) {
        const int64_t c = *cap ? 2 * *cap : 64;
        comparisons_item_t *p = realloc(out->items, (size_t)c * sizeof *p);
        if (!p) return NULL;
        out->items = p;
        *cap = c;
    }
    comparisons_item_t *it = &out->items[out->n++];
    memset(it, 0, sizeof *it);
    return it;
}

int comparisons_load(comparisons_t *out, const char *path, comparisons_format_t fmt, err_t *err) {
    static const data_field_t kway[] = {{"prompt", DATA_STRING, false},
                                        {"responses", DATA_STRINGS, false},
                                        {"ranks", DATA_ARRAY, false},
                                        {"labeler", DATA_STRING, true}};
    static const data_field_t pair[] = {{"prompt", DATA_STRING, true},
                                        {"chosen", DATA_STRING, false},
                                        {"rejected", DATA_STRING, false}};
    memset(out, 0, sizeof *out);
    data_jsonl_t r;
    int64_t cap = 0;
    int rc = data_jsonl_open(&r, path, 0, err);
    if (rc == 0 && !(out->path = strdup(path))) rc = err_setf(err, "out of memory");
    json_t *o = NULL;
    while (rc == 0) {
        const int got = fmt == COMPARISONS_KWAY ? data_jsonl_next(&r, kway, 4, &o, err)
                                                : data_jsonl_next(&r, pair, 3, &o, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        char at[512];
        snprintf(at, sizeof at, "%s:%" PRId64, r.name, r.line);
        comparisons_item_t *it = push(out, &cap);
        if (!it)
            rc = err_setf(err, "out of memory");
        else if (it->line = r.line, fmt == COMPARISONS_KWAY)
            rc = parse_kway(o, it, at, err);
        else
            rc = parse_pairwise(o, it, at, err);
        json_decref(o);
    }
    if (rc == 0 && out->n == 0) rc = err_setf(err, "%s: no JSON lines (empty file)", r.name);
    data_jsonl_close(&r);
    if (rc) comparisons_release(out);
    return rc;
}
