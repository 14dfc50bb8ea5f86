/* sft/tokenize.c: `sft tokenize --tokenizer DIR [--decode] [--no-special]`, a filter for users
 * and scripts: JSONL {"text": "..."} on stdin → {"ids": [...]} on stdout, one line out per
 * object in (blank lines are skipped, as every JSONL reader here does); --decode reads
 * {"ids": [...]} and writes {"text": "..."}. Other fields are ignored. A bad line stops the
 * run: `sft: error: <stdin>:LINE: ...`, exit 1 (the lines before it are already written). */
#include "cli.h"
#include "data.h"
#include "model.h"
#include "sft.h"
#include "tok.h"
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG           "sft tokenize"
#define MAX_LINE_BYTES (64 << 20) /* a filter holds one line at a time: allow long documents */

#define TOKENIZE_HELP                                                                              \
    "usage: sft tokenize --tokenizer DIR [--decode] [--no-special]\n"                              \
    "\n"                                                                                           \
    "Reads JSONL on stdin and writes one JSON line per object on stdout (blank lines\n"            \
    "are skipped).\n"                                                                              \
    "  encode (default): {\"text\": \"Hello world\"}  ->  {\"ids\": [15496, 995]}\n"               \
    "  --decode:         {\"ids\": [15496, 995]}   ->  {\"text\": \"Hello world\"}\n"              \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --tokenizer DIR  directory holding vocab.json + merges.txt (GPT-2's, or one\n"              \
    "                   written by `sft pretrain --vocab-size`; a model directory works)\n"        \
    "  --decode         ids to text; bytes that are not valid UTF-8 (an id sequence\n"             \
    "                   that cuts a character) become U+FFFD\n"                                    \
    "  --no-special     encode \"<|endoftext|>\" in text as plain text, not as the\n"              \
    "                   end-of-text id (the default, as Hugging Face's GPT-2 tokenizer)\n"         \
    "  -h, --help       this help\n"                                                               \
    "\n"                                                                                           \
    "exit status: 0 ok, 1 bad input or tokenizer, 2 usage\n"

typedef struct {
    char *p;
    size_t n, cap;
} outbuf_t;

static int out_reserve(outbuf_t *b, size_t need) {
    if (b->n + need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + need) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) return -1;
    b->p = q;
    b->cap = cap;
    return 0;
}

/* One object → one line of output in *out; -1 with err set. */
static int encode_line(tok_t *tok, const json_t *obj, bool special, tok_ids_t *ids, outbuf_t *out,
                       err_t *err) {
    const json_t *text = json_object_get(obj, "text");
    ids->len = 0;
    if (tok_encode(tok, json_string_value(text), (int64_t)json_string_length(text), special, ids,
                   err))
        return -1;
    if (out_reserve(out, 16 + 12 * (size_t)ids->len)) return err_setf(err, "out of memory");
    out->n += (size_t)sprintf(out->p + out->n, "{\"ids\": [");
    for (int64_t i = 0; i < ids->len; i++)
        out->n += (size_t)sprintf(out->p + out->n, i ? ", %d" : "%d", ids->ids[i]);
    out->n += (size_t)sprintf(out->p + out->n, "]}\n");
    return 0;
}

static int decode_line(const tok_t *tok, const json_t *obj, tok_ids_t *ids, outbuf_t *out,
                       err_t *err) {
    const json_t *arr = json_object_get(obj, "ids");
    size_t n = json_array_size(arr);
    ids->len = 0;
    if (ids->cap < (int64_t)n) {
        int32_t *p = realloc(ids->ids, n * sizeof *p);
        if (!p) return err_setf(err, "out of memory");
        ids->ids = p;
        ids->cap = (int64_t)n;
    }
    for (size_t i = 0; i < n; i++) { /* data checked they are int32 */
        json_int_t id = json_integer_value(json_array_get(arr, i));
        if (id < 0 || id >= tok_vocab_size(tok))
            return err_setf(err, "\"ids\"[%zu]: %lld is not a token id (vocab size %d)", i,
                            (long long)id, tok_vocab_size(tok));
        ids->ids[ids->len++] = (int32_t)id;
    }
    int64_t len;
    char *bytes = tok_decode(tok, ids->ids, ids->len, &len, err);
    if (!bytes) return -1;
    char *clean = malloc(3 * (size_t)len + 1);
    json_t *o = NULL;
    char *line = NULL;
    if (clean)
        o = json_pack("{s:s%}", "text", clean, model_utf8_sanitize(bytes, (size_t)len, clean));
    if (o) line = json_dumps(o, 0); /* {"text": "..."}, UTF-8 as is */
    int rc = 0;
    if (!line || out_reserve(out, strlen(line) + 2)) {
        rc = err_setf(err, "out of memory");
    } else {
        size_t k = strlen(line);
        memcpy(out->p + out->n, line, k);
        out->p[out->n + k] = '\n';
        out->n += k + 1;
    }
    free(line);
    json_decref(o);
    free(clean);
    free(bytes);
    return rc;
}

/* Filters stdin to stdout; returns the exit code. */
static int run(tok_t *tok, bool decode, bool special) {
    const data_field_t text_field = {"text", DATA_STRING, false};
    const data_field_t ids_field = {"ids", DATA_IDS, false};
    data_jsonl_t in = {0};
    tok_ids_t ids = TOK_IDS_INIT;
    outbuf_t out = {0};
    err_t err = ERR_INIT;
    json_t *obj = NULL;
    int got = data_jsonl_open(&in, "-", MAX_LINE_BYTES, &err);
    while (!got &&
           (got = data_jsonl_next(&in, decode ? &ids_field : &text_field, 1, &obj, &err)) == 1) {
        out.n = 0;
        if (decode ? decode_line(tok, obj, &ids, &out, &err)
                   : encode_line(tok, obj, special, &ids, &out, &err))
            err_prefixf(&err, "%s:%lld: ", in.name, (long long)in.line);
        else if (fwrite(out.p, 1, out.n, stdout) != out.n)
            err_setf(&err, "cannot write to stdout");
        json_decref(obj);
        obj = NULL;
        got = err_isset(&err) ? -1 : 0;
    }
    if (!err_isset(&err) && fflush(stdout)) err_setf(&err, "cannot write to stdout");
    data_jsonl_close(&in);
    free(out.p);
    tok_ids_release(&ids);
    if (!err_isset(&err)) return 0;
    fprintf(stderr, "sft: error: %s\n", err.msg);
    return 1;
}

enum { O_TOKENIZER = CLI_OPTS_COMMAND, O_DECODE, O_NO_SPECIAL };

int sft_cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {{"tokenizer", required_argument, NULL, O_TOKENIZER},
                                             {"decode", no_argument, NULL, O_DECODE},
                                             {"no-special", no_argument, NULL, O_NO_SPECIAL},
                                             {"help", no_argument, NULL, CLI_OPT_HELP},
                                             {0}};
    const char *dir = NULL;
    bool decode = false, special = true;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_TOKENIZER:
            dir = args.arg;
            break;
        case O_DECODE:
            decode = true;
            break;
        case O_NO_SPECIAL:
            special = false;
            break;
        }
    }
    cli_args_end(&args, TOKENIZE_HELP); /* a filter: no --seed, --threads or --log */
    cli_require(PROG, "--tokenizer", dir);
    err_t err = ERR_INIT;
    tok_t *tok = tok_load(dir, &err);
    if (!tok) cli_die(PROG, "%s", err.msg);
    int rc = run(tok, decode, special);
    tok_destroy(&tok);
    return rc;
}
