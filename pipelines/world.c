/* pipelines/world.c: the world's writer (world_write, the sizes); see world.h for the contract
 * and world_impl.h for the parts it draws from. */
#include "world_impl.h"
#include "fs.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const file_names[WORLD_NFILES] = {"corpus.train.txt",    "corpus.val.txt",
                                                     "demos.train.jsonl",   "demos.val.jsonl",
                                                     "prompts.train.jsonl", "prompts.val.jsonl"};

/* Per size: corpus bytes, demonstrations, prompts, each {train, val}. small trains a 1-10M
 * model for a few minutes on 2 cores (~250k corpus tokens with a 2k BPE vocabulary). */
static const struct {
    const char *name;
    int64_t corpus[2], demos[2], prompts[2];
} size_table[WORLD_NSIZES] = {
    {"tiny", {40000, 8000}, {400, 100}, {200, 100}},
    {"small", {1000000, 100000}, {6000, 600}, {2000, 300}},
    {"medium", {2500000, 250000}, {15000, 1500}, {5000, 500}},
};

/* A prompt (corpus paragraph) is held out iff its hash is 0 mod these: the split is a fixed
 * partition of all texts, so val never meets train whatever the seeds and sizes. */
#define VAL_EVERY_PROMPT    8
#define VAL_EVERY_PARAGRAPH 10
/* Draws allowed per line written before world_write gives up (cannot happen with the tables
 * above; guards an edit that makes a split unreachable). */
#define MAX_DRAWS_PER_LINE 1000

int world_size_parse(const char *name, world_size_t *size) {
    for (int i = 0; i < WORLD_NSIZES; i++)
        if (name && !strcmp(name, size_table[i].name)) {
            *size = (world_size_t)i;
            return 0;
        }
    return -1;
}

const char *world_size_name(world_size_t size) {
    return size >= 0 && size < WORLD_NSIZES ? size_table[size].name : "unknown";
}

typedef struct {
    FILE *f;             /* the file's stream in the set (borrowed from it) */
    char path[PATH_MAX]; /* DIR/NAME, for messages */
    int64_t bytes, lines;
} out_t;

static int out_line(out_t *o, const char *text, err_t *err) {
    size_t n = strlen(text);
    if (fwrite(text, 1, n, o->f) != n || fputc('\n', o->f) == EOF)
        return err_setf(err, "%s: %s", o->path, strerror(errno));
    o->bytes += (int64_t)n + 1;
    o->lines++;
    return 0;
}

/* {"prompt":...,"response":...} (response NULL: prompt only), escaped by jansson. */
static int out_json(out_t *o, const char *prompt, const char *response, err_t *err) {
    json_t *obj = json_object();
    char *line = NULL;
    int rc = -1;
    if (obj && !json_object_set_new(obj, "prompt", json_string(prompt)) &&
        (!response || !json_object_set_new(obj, "response", json_string(response))))
        line = json_dumps(obj, JSON_COMPACT);
    if (line)
        rc = out_line(o, line, err);
    else
        err_setf(err, "%s: cannot encode line %lld as JSON", o->path, (long long)o->lines + 1);
    free(line);
    json_decref(obj);
    return rc;
}

static int write_corpus(rng_t *rng, out_t *o, const int64_t *target, err_t *err) {
    char para[4 * WORLD_TEXT_MAX];
    int64_t draws = 0, budget = MAX_DRAWS_PER_LINE * (target[0] + target[1]) / 64 + 1000;
    while (o[0].bytes < target[0] || o[1].bytes < target[1]) {
        if (++draws > budget) return err_setf(err, "%s: corpus split never filled", o[1].path);
        sbuf_t b;
        sb_init(&b, para, sizeof para);
        world_corpus_paragraph(rng, &b);
        int s = hash_str(para) % VAL_EVERY_PARAGRAPH == 0;
        if (o[s].bytes < target[s] && out_line(&o[s], para, err)) return -1;
    }
    return 0;
}

/* Demonstrations (with_response) or prompts: families drawn uniformly, the split by hash. */
static int write_tasks(rng_t *rng, out_t *o, const int64_t *target, bool with_response,
                       world_stats_t *stats, err_t *err) {
    char prompt[WORLD_TEXT_MAX], resp[WORLD_TEXT_MAX];
    int64_t draws = 0, budget = MAX_DRAWS_PER_LINE * (target[0] + target[1]);
    while (o[0].lines < target[0] || o[1].lines < target[1]) {
        if (++draws > budget) return err_setf(err, "%s: split never filled", o[1].path);
        task_t t;
        sbuf_t pb, rb;
        world_task_sample(rng, pick(rng, WORLD_NFAMILIES), &t);
        sb_init(&pb, prompt, sizeof prompt);
        world_task_render(&t, &pb);
        int s = hash_str(prompt) % VAL_EVERY_PROMPT == 0;
        if (o[s].lines >= target[s]) continue;
        if (!with_response) {
            if (out_json(&o[s], prompt, NULL, err)) return -1;
            continue;
        }
        world_kind_t kind = world_sample_kind(rng);
        sb_init(&rb, resp, sizeof resp);
        world_demo_respond(rng, &t, kind, &rb);
        if (out_json(&o[s], prompt, resp, err)) return -1;
        stats->demo_kinds[kind]++;
        stats->demo_families[t.family]++;
    }
    return 0;
}

int world_write(const char *dir, uint64_t seed, world_size_t size, world_stats_t *stats,
                err_t *err) {
    if (size < 0 || size >= WORLD_NSIZES) return err_setf(err, "unknown world size %d", (int)size);
    world_stats_t local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    out_t *outs = calloc(WORLD_NFILES, sizeof *outs); /* 2 paths each: too big for the stack */
    if (!outs) return err_setf(err, "out of memory");
    /* the six files appear together or not at all (fs_set: a failure part-way leaves DIR as
     * it was, with no temporary file; a name taken by a directory is refused before the commit) */
    int rc = -1;
    fs_set_t *set = fs_set_begin(dir, err);
    if (!set) goto fail;
    for (int i = 0; i < WORLD_NFILES; i++) {
        if (snprintf(outs[i].path, sizeof outs[i].path, "%s/%s", dir, file_names[i]) >=
            (int)sizeof outs[i].path) {
            err_setf(err, "%s: path too long", dir);
            goto fail;
        }
        if (!(outs[i].f = fs_set_add(set, file_names[i], err))) goto fail;
    }
    /* one independent stream per file pair, so each pair depends only on the seed */
    rng_t base, r_corpus, r_demos, r_prompts;
    rng_seed(&base, seed);
    rng_seed(&r_corpus, rng_u64(&base));
    rng_seed(&r_demos, rng_u64(&base));
    rng_seed(&r_prompts, rng_u64(&base));
    if (write_corpus(&r_corpus, &outs[0], size_table[size].corpus, err) ||
        write_tasks(&r_demos, &outs[2], size_table[size].demos, true, stats, err) ||
        write_tasks(&r_prompts, &outs[4], size_table[size].prompts, false, stats, err))
        goto fail;
    if (fs_set_commit(&set, err)) goto fail;
    for (int i = 0; i < WORLD_NFILES; i++) {
        snprintf(stats->files[i].name, sizeof stats->files[i].name, "%s", file_names[i]);
        stats->files[i].bytes = outs[i].bytes;
        stats->files[i].lines = outs[i].lines;
    }
    rc = 0;
fail:
    fs_set_abort(&set);
    free(outs);
    return rc;
}
