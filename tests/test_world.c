#include "data.h"
#include "tok.h"
#include "world.h"
#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const file_names[WORLD_NFILES] = {"corpus.train.txt",    "corpus.val.txt",
                                                     "demos.train.jsonl",   "demos.val.jsonl",
                                                     "prompts.train.jsonl", "prompts.val.jsonl"};

/* A fresh directory under /tmp; caller removes it with rm_world. */
static void make_tmpdir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/test_world_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_world(const char *dir) {
    char path[512];
    for (int i = 0; i < WORLD_NFILES; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, file_names[i]);
        unlink(path);
        snprintf(path, sizeof path, "%s/%s.tmp", dir, file_names[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* Whole file into a NUL-terminated buffer; caller frees. */
static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static void write_world(const char *dir, uint64_t seed, world_size_t size, world_stats_t *st) {
    err_t err = ERR_INIT;
    ck_assert_msg(world_write(dir, seed, size, st, &err) == 0, "%s", err.msg);
}

START_TEST(test_world_same_seed_same_bytes) {
    char a[64], b[64], c[64];
    make_tmpdir(a, sizeof a);
    make_tmpdir(b, sizeof b);
    make_tmpdir(c, sizeof c);
    write_world(a, 7, WORLD_TINY, NULL);
    write_world(b, 7, WORLD_TINY, NULL);
    write_world(c, 8, WORLD_TINY, NULL);
    for (int i = 0; i < WORLD_NFILES; i++) {
        size_t la, lb, lc;
        char *fa = slurp(a, file_names[i], &la), *fb = slurp(b, file_names[i], &lb);
        char *fc = slurp(c, file_names[i], &lc);
        ck_assert_msg(la == lb && !memcmp(fa, fb, la), "%s differs for the same seed",
                      file_names[i]);
        ck_assert_msg(la != lc || memcmp(fa, fc, la), "%s same for seeds 7 and 8", file_names[i]);
        free(fa);
        free(fb);
        free(fc);
    }
    rm_world(a);
    rm_world(b);
    rm_world(c);
}
END_TEST

/* Checks one JSONL file: every line an object with exactly the wanted string fields, every
 * prompt one of the world's. Adds each prompt to seen (a JSON object used as a set). */
static int64_t check_jsonl(const char *dir, const char *name, bool response, json_t *seen,
                           json_t *other) {
    char *text = slurp(dir, name, NULL);
    int64_t lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        json_error_t je;
        json_t *obj = json_loads(line, 0, &je);
        ck_assert_msg(obj && json_is_object(obj), "%s:%lld: %s", name, (long long)lines, je.text);
        ck_assert_int_eq(json_object_size(obj), response ? 2 : 1);
        const char *p = json_string_value(json_object_get(obj, "prompt"));
        ck_assert_msg(p && *p, "%s:%lld: no prompt", name, (long long)lines);
        ck_assert_msg(world_task_family(p) >= 0, "%s:%lld: prompt of no family: %s", name,
                      (long long)lines, p);
        ck_assert_msg(!json_object_get(other, p), "%s:%lld: prompt also in the other split: %s",
                      name, (long long)lines, p);
        json_object_set_new(seen, p, json_true());
        if (response) {
            const char *r = json_string_value(json_object_get(obj, "response"));
            ck_assert_msg(r && *r && strlen(r) < WORLD_TEXT_MAX, "%s:%lld: bad response", name,
                          (long long)lines);
        }
        json_decref(obj);
    }
    free(text);
    return lines;
}

START_TEST(test_world_files_parse_and_splits_are_disjoint) {
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    world_stats_t st;
    write_world(dir, 3, WORLD_TINY, &st);
    json_t *train = json_object(), *val = json_object(), *none = json_object();
    ck_assert_int_eq(check_jsonl(dir, "demos.train.jsonl", true, train, none), 400);
    ck_assert_int_eq(check_jsonl(dir, "prompts.train.jsonl", false, train, none), 200);
    ck_assert_int_eq(check_jsonl(dir, "demos.val.jsonl", true, val, train), 100);
    ck_assert_int_eq(check_jsonl(dir, "prompts.val.jsonl", false, val, train), 100);
    ck_assert_int_gt(json_object_size(val), 40); /* val has many distinct prompts too */
    /* the corpus poses no task: no question marks, no prompt of either split, and its train
     * and val paragraphs are disjoint */
    char *ct = slurp(dir, "corpus.train.txt", NULL), *cv = slurp(dir, "corpus.val.txt", NULL);
    ck_assert_ptr_null(strchr(ct, '?'));
    const char *p;
    json_t *v;
    json_object_foreach(train, p, v) ck_assert_msg(!strstr(ct, p), "corpus has prompt %s", p);
    json_object_foreach(val, p, v) ck_assert_msg(!strstr(ct, p), "corpus has prompt %s", p);
    for (char *line = strtok(cv, "\n"); line; line = strtok(NULL, "\n"))
        ck_assert_msg(!strstr(ct, line), "val paragraph in train: %s", line);
    /* the loaders every command uses accept the files as they are */
    const char *jsonl[4] = {"demos.train.jsonl", "demos.val.jsonl", "prompts.train.jsonl",
                            "prompts.val.jsonl"};
    for (int i = 0; i < 4; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, jsonl[i]);
        data_examples_t ex = {0};
        err_t err = ERR_INIT;
        int rc = i < 2 ? data_demos_load(&ex, path, &err) : data_prompts_load(&ex, path, &err);
        ck_assert_msg(rc == 0, "%s", err.msg);
        ck_assert_int_eq(ex.n, st.files[2 + i].lines);
        data_examples_release(&ex);
    }
    /* stats agree with the files */
    for (int i = 0; i < WORLD_NFILES; i++) {
        size_t len;
        char *f = slurp(dir, file_names[i], &len);
        ck_assert_str_eq(st.files[i].name, file_names[i]);
        ck_assert_int_eq(st.files[i].bytes, (int64_t)len);
        int64_t nl = 0;
        for (size_t k = 0; k < len; k++) nl += f[k] == '\n';
        ck_assert_int_eq(st.files[i].lines, nl);
        free(f);
    }
    free(ct);
    free(cv);
    json_decref(train);
    json_decref(val);
    json_decref(none);
    rm_world(dir);
}
END_TEST

static int64_t words_in(const char *text) {
    int64_t n = 0;
    for (const char *s = text; *s; s++)
        n += isalnum((unsigned char)*s) && (s == text || !isalnum((unsigned char)s[-1]));
    return n;
}

/* Every demonstration fits a 128-token context under a 1024-id BPE trained on the corpus
 * (the smallest vocabulary the README suggests), with the template every program uses. */
static void check_lengths(const char *dir) {
    size_t len;
    char *corpus = slurp(dir, "corpus.train.txt", &len), path[128], buf[2 * WORLD_TEXT_MAX];
    err_t err = ERR_INIT;
    tok_t *tok = tok_train(corpus, (int64_t)len, 1024, &err);
    ck_assert_msg(tok, "%s", err.msg);
    data_examples_t ex = {0};
    snprintf(path, sizeof path, "%s/demos.train.jsonl", dir);
    ck_assert_msg(!data_demos_load(&ex, path, &err), "%s", err.msg);
    int64_t longest = 0;
    for (int64_t i = 0; i < ex.n; i++) {
        ck_assert_int_le(words_in(ex.ex[i].prompt), WORLD_WORDS_MAX);
        ck_assert_int_le(words_in(ex.ex[i].response), WORLD_WORDS_MAX);
        tok_ids_t ids = TOK_IDS_INIT;
        size_t n = data_template_prompt(buf, sizeof buf, ex.ex[i].prompt);
        ck_assert(!tok_encode(tok, buf, (int64_t)n, false, &ids, &err));
        n = data_template_response(buf, sizeof buf, ex.ex[i].response);
        ck_assert(!tok_encode(tok, buf, (int64_t)n, false, &ids, &err));
        if (ids.len + 1 > longest) longest = ids.len + 1; /* + end-of-text */
        tok_ids_release(&ids);
    }
    ck_assert_msg(longest <= 116, "longest demonstration: %lld tokens", (long long)longest);
    data_examples_release(&ex);
    tok_destroy(&tok);
    free(corpus);
}

START_TEST(test_world_small_sizes_within_bounds) {
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    world_stats_t st;
    write_world(dir, 1, WORLD_SMALL, &st);
    int64_t total = 0;
    for (int i = 0; i < WORLD_NFILES; i++) total += st.files[i].bytes;
    ck_assert_int_ge(st.files[0].bytes, 1000000);
    ck_assert_int_lt(st.files[0].bytes, 1010000);
    ck_assert_int_ge(st.files[1].bytes, 100000);
    ck_assert_int_lt(st.files[1].bytes, 110000);
    ck_assert_int_eq(st.files[2].lines, 6000);
    ck_assert_int_eq(st.files[3].lines, 600);
    ck_assert_int_eq(st.files[4].lines, 2000);
    ck_assert_int_eq(st.files[5].lines, 300);
    ck_assert_int_lt(total, 2 * 1000 * 1000); /* "a few MB at most" */
    int64_t demos = 0;
    for (int f = 0; f < WORLD_NFAMILIES; f++) {
        ck_assert_int_gt(st.demo_families[f], 6600 / WORLD_NFAMILIES * 8 / 10);
        demos += st.demo_families[f];
    }
    ck_assert_int_eq(demos, 6600);
    double flawed = 1.0 - (double)st.demo_kinds[WORLD_GOOD] / (double)demos;
    ck_assert_msg(flawed > 0.25 && flawed < 0.35, "flawed share %.3f", flawed);
    check_lengths(dir);
    rm_world(dir);
}
END_TEST

START_TEST(test_world_write_fails_cleanly) {
    char dir[64], file[96];
    make_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    err_t err = ERR_INIT;
    ck_assert_int_eq(world_write(file, 1, WORLD_TINY, NULL, &err), -1); /* a file, not a dir */
    ck_assert_msg(strstr(err.msg, "plain"), "%s", err.msg);
    err_clear(&err);
    ck_assert_int_eq(world_write(dir, 1, (world_size_t)99, NULL, &err), -1);
    unlink(file);
    rmdir(dir);
}
END_TEST

/* The six files of a world, read whole (for "nothing changed" checks). */
typedef struct {
    char *text[WORLD_NFILES];
    size_t len[WORLD_NFILES];
} snapshot_t;

static void snapshot_take(const char *dir, snapshot_t *s) {
    for (int i = 0; i < WORLD_NFILES; i++) s->text[i] = slurp(dir, file_names[i], &s->len[i]);
}

/* Every file but `skip` (-1: none) is still byte for byte what s holds. */
static void snapshot_check(const char *dir, const snapshot_t *s, int skip) {
    for (int i = 0; i < WORLD_NFILES; i++) {
        if (i == skip) continue;
        size_t len;
        char *now = slurp(dir, file_names[i], &len);
        ck_assert_msg(len == s->len[i] && !memcmp(now, s->text[i], len),
                      "%s changed by a failed write", file_names[i]);
        free(now);
    }
}

static void snapshot_release(snapshot_t *s) {
    for (int i = 0; i < WORLD_NFILES; i++) free(s->text[i]);
}

/* Entries of dir (without . and ..); fails the test on any *.tmp. */
static int count_entries_no_tmp(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t len = strlen(e->d_name);
        ck_assert_msg(len < 4 || strcmp(e->d_name + len - 4, ".tmp"), "%s/%s left behind", dir,
                      e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* world_write in a child process whose files may not grow past max_bytes (RLIMIT_FSIZE binds
 * root too; SIGXFSZ ignored, so write() fails with EFBIG). Returns world_write's result; the
 * child's error message goes to msg. */
static int write_world_limited(const char *dir, uint64_t seed, rlim_t max_bytes, char *msg,
                               size_t cap) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {max_bytes, max_bytes};
        if (setrlimit(RLIMIT_FSIZE, &rl)) _exit(3);
        err_t err = ERR_INIT;
        int rc = world_write(dir, seed, WORLD_TINY, NULL, &err);
        if (write(fds[1], err.msg, strlen(err.msg)) < 0) _exit(4);
        _exit(rc ? 1 : 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) <= 1, "child status %d", status);
    return WEXITSTATUS(status) ? -1 : 0;
}

/* A write that fails in the middle of a file (the file size limit is hit while the corpus is
 * written) leaves no temporary file, and an older world in the directory stays as it was. */
START_TEST(test_world_write_fails_midway_leaves_nothing) {
    char dir[64], fresh[64], msg[600];
    make_tmpdir(dir, sizeof dir);
    make_tmpdir(fresh, sizeof fresh);
    write_world(dir, 1, WORLD_TINY, NULL);
    snapshot_t old;
    snapshot_take(dir, &old);
    ck_assert_int_eq(write_world_limited(dir, 2, 20000, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "corpus.train.txt") && strstr(msg, "File too large"), "%s", msg);
    ck_assert_int_eq(count_entries_no_tmp(dir), WORLD_NFILES);
    snapshot_check(dir, &old, -1);
    /* into an empty directory: it stays empty */
    ck_assert_int_eq(write_world_limited(fresh, 2, 20000, msg, sizeof msg), -1);
    ck_assert_int_eq(count_entries_no_tmp(fresh), 0);
    /* the limit itself is not what fails: with room for the largest file the write succeeds */
    ck_assert_int_eq(write_world_limited(fresh, 2, 1 << 20, msg, sizeof msg), 0);
    ck_assert_int_eq(count_entries_no_tmp(fresh), WORLD_NFILES);
    snapshot_release(&old);
    rm_world(dir);
    rm_world(fresh);
}
END_TEST

/* The last file's name is taken by a non-empty directory, which no rename can replace: the
 * write fails naming it, before any file is renamed into place, so the old world's other five
 * files are untouched (not a mix of two worlds) and no temporary is left. */
START_TEST(test_world_write_blocked_target_keeps_old_world) {
    char dir[64], path[128], inner[160];
    make_tmpdir(dir, sizeof dir);
    write_world(dir, 1, WORLD_TINY, NULL);
    snapshot_t old;
    snapshot_take(dir, &old);
    const int last = WORLD_NFILES - 1;
    snprintf(path, sizeof path, "%s/%s", dir, file_names[last]);
    snprintf(inner, sizeof inner, "%s/keep", path);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkdir(path, 0777), 0);
    FILE *f = fopen(inner, "w");
    ck_assert_ptr_nonnull(f);
    fputs("x\n", f);
    fclose(f);
    err_t err = ERR_INIT;
    ck_assert_int_eq(world_write(dir, 2, WORLD_TINY, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, file_names[last]), "%s", err.msg);
    ck_assert_int_eq(count_entries_no_tmp(dir), WORLD_NFILES);
    snapshot_check(dir, &old, last);
    unlink(inner);
    rmdir(path);
    snapshot_release(&old);
    rm_world(dir);
}
END_TEST

START_TEST(test_world_kind_rates) {
    double sum = 0;
    for (int k = 0; k < WORLD_NKINDS; k++) sum += world_kind_rate((world_kind_t)k);
    ck_assert_double_eq_tol(sum, 1.0, 1e-12);
    rng_t r;
    rng_seed(&r, 11);
    int count[WORLD_NKINDS] = {0};
    const int n = 50000;
    for (int i = 0; i < n; i++) count[world_sample_kind(&r)]++;
    for (int k = 0; k < WORLD_NKINDS; k++)
        ck_assert_double_eq_tol((double)count[k] / n, world_kind_rate((world_kind_t)k), 0.01);
}
END_TEST

/* Per family, the demonstrator's good answers score clearly above each kind of flawed one. */
START_TEST(test_world_judge_prefers_good_demos) {
    rng_t r;
    rng_seed(&r, 5);
    char prompt[WORLD_TEXT_MAX], resp[WORLD_TEXT_MAX];
    err_t err = ERR_INIT;
    for (int f = 0; f < WORLD_NFAMILIES; f++) {
        double mean[WORLD_NKINDS], good_min = 2;
        const int n = 300;
        for (int k = 0; k < WORLD_NKINDS; k++) {
            double s = 0;
            for (int i = 0; i < n; i++) {
                ck_assert_int_eq(world_sample_prompt(&r, f, prompt, sizeof prompt), f);
                ck_assert_msg(
                    !world_demonstrate(&r, prompt, (world_kind_t)k, resp, sizeof resp, &err), "%s",
                    err.msg);
                double g = world_gold_score(prompt, resp);
                ck_assert(g >= -1.0 && g <= 1.0);
                if (k == WORLD_GOOD && g < good_min) good_min = g;
                s += g;
            }
            mean[k] = s / n;
        }
        ck_assert_msg(good_min >= 0.9, "%s: a good demo scored %.2f", world_family_name(f),
                      good_min);
        for (int k = 1; k < WORLD_NKINDS; k++)
            ck_assert_msg(mean[WORLD_GOOD] > mean[k] + 0.4, "%s: good %.2f vs %s %.2f",
                          world_family_name(f), mean[WORLD_GOOD], world_kind_name((world_kind_t)k),
                          mean[k]);
        /* and the flaws are ordered as a person would: off topic is worst */
        ck_assert(mean[WORLD_OFFTOPIC] < mean[WORLD_WRONG]);
        ck_assert(mean[WORLD_OFFTOPIC] < mean[WORLD_RAMBLING]);
    }
}
END_TEST

/* Strictly decreasing gold scores, with a message naming the pair that is not. */
static void assert_order(const char *prompt, const char *const *resp, int n) {
    for (int i = 0; i + 1 < n; i++) {
        double a = world_gold_score(prompt, resp[i]), b = world_gold_score(prompt, resp[i + 1]);
        ck_assert_msg(a > b, "%s: \"%s\" (%.3f) should beat \"%s\" (%.3f)", prompt, resp[i], a,
                      resp[i + 1], b);
    }
}

/* Each list: polite correct > plain correct > rude or rambling correct > wrong > off topic >
 * empty. */
START_TEST(test_world_judge_hand_cases) {
    const char *arith[] = {
        "Sure! 17 plus 25 is 42.", "17 plus 25 is 42.", "Ugh, 17 plus 25 is 42, you idiot.",
        "17 plus 25 is 41.",       "I like trains.",    ""};
    assert_order("What is 17 plus 25?", arith, 6);
    const char *minus[] = {"12 minus 5 is 7.", "It is 8 or 7."};
    assert_order("Subtract 5 from 12.", minus, 2); /* hedging with two answers is wrong */
    const char *cmp[] = {"Of course. 42 is larger than 17.",
                         "42 is larger than 17.",
                         "42 is larger than 17. 42 is larger than 17. 42 is larger than 17.",
                         "17 is larger than 42.",
                         "The sea is deep.",
                         "   "};
    assert_order("Which is larger, 17 or 42?", cmp, 6);
    const char *rev[] = {"Lamp reversed is pmal. I hope this helps.",
                         "It is pmal.",
                         "Whatever. It is pmal.",
                         "It is plam.",
                         "The bus was on time.",
                         ""};
    assert_order("Reverse the word lamp.", rev, 6);
    const char *list[] = {"Happy to help. Three fruits are apple, pear and plum.",
                          "Apple, pear and plum.",
                          "Apple, pear.",
                          "Apple, pear and robin.",
                          "Dog, robin and tea.",
                          "Let us talk about something else.",
                          "."};
    assert_order("Name three fruits.", list, 7);
    const char *more[] = {"Apple, pear and plum.", "Apple, pear, plum, peach, grape and melon."};
    assert_order("Name three fruits.", more, 2); /* listing too many costs */
    const char *hello[] = {"Hello, Maria! It is nice to meet you.",
                           "Hello Maria.",
                           "Hello Maria, you fool.",
                           "Hello Tom.",
                           "Say hello to Maria.",
                           "Dancing is good exercise.",
                           ""};
    assert_order("Say hello to Maria.", hello, 7); /* parroting the request is no greeting */
    const char *thank[] = {"Thank you for the book, Tom.", "Thanks for the map, Tom.",
                           "Hello there.", ""};
    assert_order("Thank Tom for the book.", thank, 4);
    const char *opp[] = {"The opposite of hot is cold. Glad to help!",
                         "Cold.",
                         "Obviously cold.",
                         "Happy to help. Warm.",
                         "Mountains are tall.",
                         ""};
    assert_order("What is the opposite of hot?", opp, 6);
    /* "happy" in "happy to help" is not an answer to the opposite of sad */
    ck_assert_double_lt(world_gold_score("What is the opposite of sad?", "Happy to help. Near."),
                        0.5);
    ck_assert_double_gt(world_gold_score("What is the opposite of sad?", "Happy."), 0.85);
    /* naming several candidates is hedging, not an answer */
    const char *hedge_rev[] = {"It is pmal.", "It is pmal or plam.", "pmal, plam, mpal or lpma."};
    assert_order("Reverse the word lamp.", hedge_rev, 3);
    const char *hedge_opp[] = {"It is cold.", "Cold or dark.", "Cold, dark, small or sad."};
    assert_order("What is the opposite of hot?", hedge_opp, 3);
    /* concise beats rambling, even when both are correct and polite */
    const char *ramble[] = {"7 plus 5 is 12. I hope this helps.",
                            "Let me think about this for a moment. Let me think about this for "
                            "a moment. 7 plus 5 is 12. I have thought about this many times. 7 "
                            "plus 5 is 12. I hope this helps."};
    assert_order("What is 7 plus 5?", ramble, 2);
    ck_assert_double_eq(world_gold_score("What is 7 plus 5?", ""), -1.0);
    ck_assert_double_eq(world_gold_score("What is 7 plus 5?", NULL), -1.0);
}
END_TEST

START_TEST(test_world_judgement_parts) {
    world_judgement_t j;
    double s = world_judge("Name two birds.", "Sure! Robin and owl.", &j);
    ck_assert_int_eq(j.family, WORLD_LIST);
    ck_assert_double_eq(j.correct, 1.0);
    ck_assert(j.on_topic && j.polite && !j.echo);
    ck_assert_int_eq(j.rude, 0);
    ck_assert_int_eq(j.words, 4);
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    ck_assert_double_eq(s, j.score);
    /* a prompt from outside the world is judged on style only */
    s = world_judge("Tell me a story.", "Once upon a time, you fool.", &j);
    ck_assert_int_eq(j.family, -1);
    ck_assert_double_eq(j.correct, 0.0);
    ck_assert_int_eq(j.rude, 1);
    ck_assert_double_lt(s, world_gold_score("Tell me a story.", "Sure, once upon a time."));
    /* long garbage stays in range and is cheap */
    char big[18001]; /* "ab 12 " 3000 times: 6000 words */
    for (size_t i = 0; i + 1 < sizeof big; i++) big[i] = "ab 12 "[i % 6];
    big[sizeof big - 1] = '\0';
    s = world_judge("What is 3 plus 4?", big, &j);
    ck_assert(s >= -0.95 && s < 0);
    ck_assert_int_eq(j.words, (int64_t)(sizeof big - 1) / 3);
}
END_TEST

START_TEST(test_world_task_family_parses_variants) {
    ck_assert_int_eq(world_task_family("What is 17 plus 25?"), WORLD_ARITH);
    ck_assert_int_eq(world_task_family("  what   IS 17 plus 25 "), WORLD_ARITH);
    ck_assert_int_eq(world_task_family("Multiply 3 by 4!"), WORLD_ARITH);
    ck_assert_int_eq(world_task_family("Which is smaller, 3 or 4?"), WORLD_COMPARE);
    ck_assert_int_eq(world_task_family("Which is smaller, 3 or 3?"), -1);
    ck_assert_int_eq(world_task_family("Write lamp backwards."), WORLD_REVERSE);
    ck_assert_int_eq(world_task_family("Name 3 colors."), WORLD_LIST);
    ck_assert_int_eq(world_task_family("Name three planets."), -1);
    ck_assert_int_eq(world_task_family("Greet Maria."), WORLD_GREET);
    ck_assert_int_eq(world_task_family("Write a thank-you note to Ben for the cake."), WORLD_GREET);
    ck_assert_int_eq(world_task_family("What is the opposite of hot?"), WORLD_OPPOSITE);
    ck_assert_int_eq(world_task_family("What is the opposite of table?"), -1);
    ck_assert_int_eq(world_task_family("What is 17 plus 25? And more"), -1);
    ck_assert_int_eq(world_task_family(""), -1);
    ck_assert_int_eq(world_task_family(NULL), -1);
    ck_assert_str_eq(world_task_name("Greet Maria."), "greet");
    ck_assert_str_eq(world_task_name("Hello?"), "unknown");
    /* the judge reads the prompt's own numbers, whatever their order in the pattern */
    ck_assert_double_gt(world_gold_score("Subtract 5 from 12.", "It is 7."), 0.85);
    ck_assert_double_gt(world_gold_score("What is 1000 times 1000?", "1000000"), 0.85);
    ck_assert_double_gt(world_gold_score("What is 3 minus 10?", "It is -7."), 0.85);
    /* every sampled prompt parses back to its family */
    rng_t r;
    rng_seed(&r, 9);
    char p[WORLD_TEXT_MAX];
    for (int i = 0; i < 3000; i++) {
        int f = world_sample_prompt(&r, -1, p, sizeof p);
        ck_assert_msg(world_task_family(p) == f, "%s", p);
    }
    err_t err = ERR_INIT;
    char resp[WORLD_TEXT_MAX];
    ck_assert_int_eq(world_demonstrate(&r, "Tell me a joke.", WORLD_GOOD, resp, sizeof resp, &err),
                     -1);
    ck_assert(strstr(err.msg, "Tell me a joke."));
}
END_TEST

START_TEST(test_world_rank_noise_free_sorts_by_gold) {
    const char *p = "What is 6 times 7?";
    const char *resp[] = {"6 times 7 is 41.", "Sure! 6 times 7 is 42.", "",
                          "It is 42.",        "6 times 7 is 41.",       "Ugh. It is 42."};
    int order[6], rank[6];
    world_rank(p, resp, 6, 0.0, NULL, order, rank);
    const int want[6] = {1, 3, 5, 0, 4, 2}; /* the two identical wrong answers tie */
    for (int i = 0; i < 6; i++) ck_assert_int_eq(order[i], want[i]);
    const int want_rank[6] = {3, 0, 4, 1, 3, 2};
    for (int i = 0; i < 6; i++) ck_assert_int_eq(rank[i], want_rank[i]);
    for (int i = 0; i + 1 < 6; i++)
        ck_assert(world_gold_score(p, resp[order[i]]) >= world_gold_score(p, resp[order[i + 1]]));
    world_rank(p, resp, 1, 0.0, NULL, order, NULL);
    ck_assert_int_eq(order[0], 0);
}
END_TEST

START_TEST(test_world_rank_noisy_mostly_agrees) {
    rng_t r, d;
    rng_seed(&r, 21);
    rng_seed(&d, 22);
    char prompt[WORLD_TEXT_MAX], buf[4][WORLD_TEXT_MAX];
    err_t err = ERR_INIT;
    int agree = 0, pairs = 0, agree_hi = 0, pairs_hi = 0;
    for (int trial = 0; trial < 300; trial++) {
        world_sample_prompt(&d, -1, prompt, sizeof prompt);
        const char *resp[4];
        double g[4];
        for (int i = 0; i < 4; i++) {
            ck_assert(
                !world_demonstrate(&d, prompt, world_sample_kind(&d), buf[i], sizeof buf[i], &err));
            resp[i] = buf[i];
            g[i] = world_gold_score(prompt, resp[i]);
        }
        int order[4], rank[4], order_hi[4], rank_hi[4];
        world_rank(prompt, resp, 4, 0.1, &r, order, rank);
        world_rank(prompt, resp, 4, 1.0, &r, order_hi, rank_hi);
        for (int i = 0; i < 4; i++)
            for (int j = i + 1; j < 4; j++) {
                if (g[i] == g[j]) continue;
                pairs++;
                pairs_hi++;
                agree += (g[i] > g[j]) == (rank[i] < rank[j]);
                agree_hi += (g[i] > g[j]) == (rank_hi[i] < rank_hi[j]);
            }
    }
    double a = (double)agree / pairs, a_hi = (double)agree_hi / pairs_hi;
    ck_assert_msg(a > 0.85, "noise 0.1 agrees on %.3f of pairs", a);
    ck_assert_msg(a_hi < a && a_hi > 0.55, "noise 1.0 agrees on %.3f of pairs", a_hi);
    /* identical texts always tie, whatever the noise */
    const char *same[] = {"It is 42.", "It is 42.", "It is 41."};
    int order[3], rank[3];
    for (int t = 0; t < 50; t++) {
        world_rank("What is 6 times 7?", same, 3, 0.5, &r, order, rank);
        ck_assert_int_eq(rank[0], rank[1]);
    }
}
END_TEST

/* n prompts with k demonstrator responses each (the stand-in for an SFT model's samples). */
typedef struct {
    int n, k;
    char (*prompt)[WORLD_TEXT_MAX], (*response)[WORLD_TEXT_MAX];
    const char **prompts, **responses; /* responses[i·k + j]: the j-th response to prompts[i] */
} ranking_set_t;

static void ranking_set_make(ranking_set_t *rs, int n, int k, uint64_t seed) {
    rng_t r;
    rng_seed(&r, seed);
    rs->n = n;
    rs->k = k;
    rs->prompt = malloc((size_t)n * WORLD_TEXT_MAX);
    rs->response = malloc((size_t)n * (size_t)k * WORLD_TEXT_MAX);
    rs->prompts = malloc((size_t)n * sizeof *rs->prompts);
    rs->responses = malloc((size_t)n * (size_t)k * sizeof *rs->responses);
    ck_assert(rs->prompt && rs->response && rs->prompts && rs->responses);
    err_t err = ERR_INIT;
    for (int i = 0; i < n; i++) {
        world_sample_prompt(&r, -1, rs->prompt[i], WORLD_TEXT_MAX);
        rs->prompts[i] = rs->prompt[i];
        for (int j = 0; j < k; j++) {
            char *out = rs->response[i * k + j];
            ck_assert(!world_demonstrate(&r, rs->prompt[i], world_sample_kind(&r), out,
                                         WORLD_TEXT_MAX, &err));
            rs->responses[i * k + j] = out;
        }
    }
}

static void ranking_set_release(ranking_set_t *rs) {
    free(rs->prompt);
    free(rs->response);
    free(rs->prompts);
    free(rs->responses);
}

/* Hand cases of the formula: a pair whose gold scores differ by d at noise d/√2 is ordered the
 * better way round with Φ(1) by each labeler, so two agree with Φ(1)² + (1 − Φ(1))². */
START_TEST(test_world_agreement_formula) {
    const char *p[] = {"What is 6 times 7?"};
    const char *pair[] = {"It is 42.", "It is 41."};
    double d = world_gold_score(p[0], pair[0]) - world_gold_score(p[0], pair[1]);
    ck_assert_double_eq_tol(d, 0.9, 1e-12);
    ck_assert_double_eq_tol(world_agreement(p, pair, 1, 2, d / sqrt(2.0)), 0.7330324713, 1e-9);
    ck_assert_double_eq(world_agreement(p, pair, 1, 2, 0.0), 1.0);
    ck_assert_double_eq_tol(world_agreement(p, pair, 1, 2, 1e6), 0.5, 1e-6);
    /* identical texts are no pair; a duplicate adds a second copy of the same pair */
    const char *same[] = {"It is 42.", "It is 42."};
    ck_assert(isnan(world_agreement(p, same, 1, 2, 0.3)));
    const char *dup[] = {"It is 42.", "It is 42.", "It is 41."};
    ck_assert_double_eq_tol(world_agreement(p, dup, 1, 3, 0.3), world_agreement(p, pair, 1, 2, 0.3),
                            1e-12);
    /* equal gold scores: both labelers tie at noise 0, a coin flip at any noise */
    const char *tie[] = {"It is 42.", "6 times 7 is 42."};
    ck_assert_double_eq(world_gold_score(p[0], tie[0]), world_gold_score(p[0], tie[1]));
    ck_assert_double_eq(world_agreement(p, tie, 1, 2, 0.0), 1.0);
    ck_assert_double_eq_tol(world_agreement(p, tie, 1, 2, 0.01), 0.5, 1e-12);
    /* two prompts: the mean over all pairs */
    const char *two_p[] = {"What is 6 times 7?", "What is 6 times 7?"};
    const char *two_r[] = {"It is 42.", "It is 41.", "It is 42.", "6 times 7 is 42."};
    double a = world_agreement(two_p, two_r, 2, 2, 0.3);
    ck_assert_double_eq_tol(a, (world_agreement(p, pair, 1, 2, 0.3) + 0.5) / 2, 1e-12);
}
END_TEST

/* The formula is what two independent world_rank labelers do: on demonstrator responses, the
 * share of distinct-text pairs they order alike matches world_agreement within sampling error,
 * at a low and a high noise. */
START_TEST(test_world_agreement_matches_two_labelers) {
    ranking_set_t rs;
    ranking_set_make(&rs, 300, 4, 31);
    rng_t r1, r2;
    rng_seed(&r1, 32);
    rng_seed(&r2, 33);
    const double noises[] = {0.1, 0.5};
    for (int t = 0; t < 2; t++) {
        int64_t agree = 0, pairs = 0;
        for (int rep = 0; rep < 10; rep++)
            for (int i = 0; i < rs.n; i++) {
                const char *const *resp = rs.responses + i * rs.k;
                int order[4], rank1[4], rank2[4];
                world_rank(rs.prompts[i], resp, rs.k, noises[t], &r1, order, rank1);
                world_rank(rs.prompts[i], resp, rs.k, noises[t], &r2, order, rank2);
                for (int a = 0; a < rs.k; a++)
                    for (int b = a + 1; b < rs.k; b++) {
                        if (!strcmp(resp[a], resp[b])) continue;
                        pairs++;
                        agree += (rank1[a] < rank1[b]) == (rank2[a] < rank2[b]);
                    }
            }
        double seen = (double)agree / (double)pairs;
        double want = world_agreement(rs.prompts, rs.responses, rs.n, rs.k, noises[t]);
        ck_assert_msg(fabs(seen - want) < 0.015, "noise %.1f: labelers agree on %.4f, formula %.4f",
                      noises[t], seen, want);
    }
    ranking_set_release(&rs);
}
END_TEST

/* world_agreement_noise finds the noise for a target, and refuses targets no noise reaches. */
START_TEST(test_world_agreement_noise_inverts) {
    ranking_set_t rs;
    ranking_set_make(&rs, 300, 4, 41);
    double noise = -1;
    err_t err = ERR_INIT;
    ck_assert_int_eq(
        world_agreement_noise(rs.prompts, rs.responses, rs.n, rs.k, 0.73, &noise, &err), 0);
    ck_assert_msg(noise > 0.05 && noise < 1.0, "noise %g", noise);
    ck_assert_double_eq_tol(world_agreement(rs.prompts, rs.responses, rs.n, rs.k, noise), 0.73,
                            1e-6);
    ck_assert(world_agreement(rs.prompts, rs.responses, rs.n, rs.k, noise * 0.8) > 0.73);
    ck_assert(world_agreement(rs.prompts, rs.responses, rs.n, rs.k, noise * 1.25) < 0.73);
    /* the ceiling: equal gold scores are coin flips at any noise above 0 */
    double most = world_agreement(rs.prompts, rs.responses, rs.n, rs.k, 1e-9);
    ck_assert_msg(most > 0.75 && most < 0.99, "ceiling %.4f", most);
    ck_assert_int_eq(
        world_agreement_noise(rs.prompts, rs.responses, rs.n, rs.k, most + 0.005, &noise, &err),
        -1);
    ck_assert_msg(strstr(err.msg, "at most"), "%s", err.msg);
    err_clear(&err);
    ck_assert_int_eq(world_agreement_noise(rs.prompts, rs.responses, rs.n, rs.k, 0.5, &noise, &err),
                     -1);
    err_clear(&err);
    const char *p[] = {"What is 6 times 7?"}, *same[] = {"It is 42.", "It is 42."};
    ck_assert_int_eq(world_agreement_noise(p, same, 1, 2, 0.73, &noise, &err), -1);
    ck_assert_msg(strstr(err.msg, "no pair"), "%s", err.msg);
    ranking_set_release(&rs);
}
END_TEST

Suite *test_world_suite(void);
Suite *test_world_suite(void) {
    Suite *s = suite_create("world");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_world_same_seed_same_bytes);
    tcase_add_test(tc, test_world_files_parse_and_splits_are_disjoint);
    tcase_add_test(tc, test_world_small_sizes_within_bounds);
    tcase_add_test(tc, test_world_write_fails_cleanly);
    tcase_add_test(tc, test_world_write_fails_midway_leaves_nothing);
    tcase_add_test(tc, test_world_write_blocked_target_keeps_old_world);
    tcase_add_test(tc, test_world_kind_rates);
    tcase_add_test(tc, test_world_judge_prefers_good_demos);
    tcase_add_test(tc, test_world_judge_hand_cases);
    tcase_add_test(tc, test_world_judgement_parts);
    tcase_add_test(tc, test_world_task_family_parses_variants);
    tcase_add_test(tc, test_world_rank_noise_free_sorts_by_gold);
    tcase_add_test(tc, test_world_rank_noisy_mostly_agrees);
    tcase_add_test(tc, test_world_agreement_formula);
    tcase_add_test(tc, test_world_agreement_matches_two_labelers);
    tcase_add_test(tc, test_world_agreement_noise_inverts);
    suite_add_tcase(s, tc);
    return s;
}
