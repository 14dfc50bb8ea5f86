/* tests/test_store.c: the rankings database. Each test works in its own scratch directory under
 * /tmp; the clock is injected (store_options_t.now_ms), so lease expiry is tested without
 * sleeping. Concurrency and crash tests fork labeler processes on one file. */
#include "store.h"
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char db[96];
    int64_t clock; /* ms, read by fake_now */
} scratch_t;

static int64_t fake_now(void *ctx) {
    return *(const int64_t *)ctx;
}

static void scratch_init(scratch_t *t) {
    strcpy(t->dir, "/tmp/test_store_XXXXXX");
    ck_assert(mkdtemp(t->dir));
    snprintf(t->db, sizeof t->db, "%s/r.db", t->dir);
    t->clock = 1700000000000;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void scratch_release(scratch_t *t) {
    nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* Opens t->db with the fake clock; overlap < 0 = default; lease in seconds (0 = default). */
static store_t *open_db(scratch_t *t, bool create, double overlap, int64_t lease_s) {
    store_options_t o = store_options_default();
    o.create = create;
    o.overlap = overlap;
    o.lease_seconds = lease_s;
    o.now_ms = fake_now;
    o.now_ctx = &t->clock;
    err_t err = ERR_INIT;
    store_t *s = store_open(t->db, &o, &err);
    ck_assert_msg(s, "%s", err.msg);
    return s;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Runs sql on path through a plain connection (no store); returns the first column of the
 * last row as an integer (0 when none). */
static int64_t raw_int(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    int64_t v = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql) {
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void assert_integrity(const char *path) {
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE); /* no row: no dangling reference */
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Adds prompts "prompt I" (i in [first, first + n)) with k completions "answer I.J" each. */
static void add_prompts(store_t *s, int first, int n, int k) {
    err_t err = ERR_INIT;
    for (int i = first; i < first + n; i++) {
        char p[32], c[STORE_K_MAX][32];
        const char *texts[STORE_K_MAX];
        size_t lens[STORE_K_MAX];
        snprintf(p, sizeof p, "prompt %d", i);
        for (int j = 0; j < k; j++) {
            lens[j] = (size_t)snprintf(c[j], sizeof c[j], "answer %d.%d", i, j);
            texts[j] = c[j];
        }
        int rc = store_prompt_add(s, p, strlen(p), texts, lens, k, "models/sft",
                                  "{\"temperature\":1}", NULL, NULL, &err);
        ck_assert_msg(rc == 1, "%s", err.msg);
    }
}

/* Ranks a leased item: completion j gets rank j + 1 (no ties). */
static int save_in_order(store_t *s, int64_t lid, const store_item_t *it, int64_t *rid,
                         err_t *err) {
    store_mark_t m[STORE_K_MAX] = {{0}};
    for (int j = 0; j < it->k; j++)
        m[j] = (store_mark_t){.completion_id = it->completions[j].id, .rank = j + 1};
    return store_ranking_save(s, lid, it->id, m, it->k, 1000, rid, err);
}

static int64_t labeler(store_t *s, const char *name) {
    err_t err = ERR_INIT;
    int64_t id = 0;
    ck_assert_msg(store_labeler(s, name, true, &id, &err) == 0, "%s", err.msg);
    return id;
}

/* Leases for lid and expects prompt "prompt WANT" (want < 0: nothing left). */
static int64_t lease_expect(store_t *s, int64_t lid, int want) {
    err_t err = ERR_INIT;
    store_item_t it;
    int rc = store_lease_next(s, lid, &it, &err);
    ck_assert_msg(rc >= 0, "%s", err.msg);
    if (want < 0) {
        ck_assert_int_eq(rc, 0);
        return 0;
    }
    ck_assert_int_eq(rc, 1);
    char p[32];
    snprintf(p, sizeof p, "prompt %d", want);
    ck_assert_str_eq(it.text, p);
    int64_t id = it.id;
    store_item_release(&it);
    return id;
}

/* ---- opening and migrations ---------------------------------------------------------------- */

START_TEST(test_store_create) {
    scratch_t t;
    scratch_init(&t);
    err_t err = ERR_INIT;
    ck_assert_ptr_null(store_open(t.db, NULL, &err)); /* create not asked for */
    ck_assert_msg(strstr(err.msg, t.db) && strstr(err.msg, "no such file"), "%s", err.msg);
    ck_assert_int_ne(access(t.db, F_OK), 0);
    store_t *s = open_db(&t, true, -1, 0);
    ck_assert(store_overlap(s) == STORE_OVERLAP_DEFAULT);
    store_close(&s);
    ck_assert_ptr_null(s);
    store_close(&s); /* NULL is fine */
    ck_assert_int_eq(raw_int(t.db, "PRAGMA user_version"), STORE_VERSION);
    ck_assert_int_eq(raw_int(t.db, "PRAGMA application_id"), 0x524C4846);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
                                   " AND name = 'rankings'"),
                     1);
    /* The overlap share recorded first stays: a second labeler asking for another gets it. */
    s = open_db(&t, false, 0.5, 0);
    ck_assert(store_overlap(s) == STORE_OVERLAP_DEFAULT);
    sqlite3 *db = NULL; /* WAL mode persists in the file */
    ck_assert_int_eq(sqlite3_open(t.db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    store_close(&s);
    /* A bad overlap share is refused before the file is touched. */
    store_options_t o = store_options_default();
    o.overlap = 1.5;
    err_clear(&err);
    ck_assert_ptr_null(store_open(t.db, &o, &err));
    ck_assert_msg(strstr(err.msg, "overlap"), "%s", err.msg);
    scratch_release(&t);
}
END_TEST

START_TEST(test_store_migrates_empty_files) {
    scratch_t t;
    scratch_init(&t);
    /* A zero-byte file and a SQLite file at user_version 0 without tables: both become v1. */
    FILE *f = fopen(t.db, "wb");
    ck_assert(f);
    fclose(f);
    store_t *s = open_db(&t, false, 0.2, 0);
    ck_assert(store_overlap(s) == 0.2);
    store_close(&s);
    ck_assert_int_eq(raw_int(t.db, "PRAGMA user_version"), 1);
    unlink(t.db);
    raw_exec(t.db, "CREATE TABLE x (a); DROP TABLE x; PRAGMA user_version = 0");
    ck_assert_int_gt(raw_int(t.db, "PRAGMA page_count"), 0);
    s = open_db(&t, false, -1, 0);
    add_prompts(s, 0, 2, 2);
    store_close(&s);
    ck_assert_int_eq(raw_int(t.db, "PRAGMA user_version"), 1);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM completions"), 4);
    scratch_release(&t);
}
END_TEST

/* Opening path must fail with a message holding want, and leave the file's bytes as they were. */
static void assert_refused(const char *path, const char *want) {
    size_t n0, n1;
    char *before = slurp(path, &n0);
    err_t err = ERR_INIT;
    store_options_t o = store_options_default();
    o.create = true;
    ck_assert_ptr_null(store_open(path, &o, &err));
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, want), "%s", err.msg);
    char *after = slurp(path, &n1);
    ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
}

START_TEST(test_store_refuses_newer_version) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, -1, 0);
    add_prompts(s, 0, 3, 2);
    store_close(&s);
    raw_exec(t.db, "PRAGMA user_version = 99");
    assert_refused(t.db, "schema version 99 is newer");
    ck_assert_int_eq(raw_int(t.db, "PRAGMA user_version"), 99);
    scratch_release(&t);
}
END_TEST

START_TEST(test_store_refuses_foreign_files) {
    scratch_t t;
    scratch_init(&t);
    raw_exec(t.db, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')");
    assert_refused(t.db, "not a rankings database");
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM sqlite_schema"), 1);
    unlink(t.db);
    FILE *f = fopen(t.db, "wb"); /* not SQLite at all */
    ck_assert(f);
    for (int i = 0; i < 200; i++) fputs("a line of text that is no database\n", f);
    fclose(f);
    assert_refused(t.db, "not a SQLite database");
    scratch_release(&t);
}
END_TEST

/* ---- prompts ------------------------------------------------------------------------------- */

START_TEST(test_store_prompt_add_idempotent) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, -1, 0);
    err_t err = ERR_INIT;
    const char *texts[3] = {"a", "b", "c"};
    const size_t lens[3] = {1, 1, 1};
    int64_t p1 = 0, p2 = 0, ids1[3], ids2[3];
    const char *set = "{\"temperature\":0.7,\"k\":3}";
    ck_assert_int_eq(store_prompt_add(s, "q", 1, texts, lens, 3, "sft/", set, &p1, ids1, &err), 1);
    ck_assert_int_eq(store_prompt_add(s, "q", 1, texts, lens, 3, "sft/", set, &p2, ids2, &err), 0);
    ck_assert(p1 == p2 && memcmp(ids1, ids2, sizeof ids1) == 0);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM completions"), 3);
    /* Another model or other settings: new completions on the same prompt. */
    ck_assert_int_eq(store_prompt_add(s, "q", 1, texts, lens, 3, "base/", set, &p2, NULL, &err), 1);
    ck_assert_int_eq(p2, p1);
    ck_assert_int_eq(store_prompt_add(s, "q", 1, texts, lens, 2, "sft/", "{}", NULL, NULL, &err),
                     1);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM completions"), 8);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM prompts"), 1);
    /* Refused, adding nothing: bad settings (the SQL CHECK), k out of range, no model. */
    ck_assert_int_eq(store_prompt_add(s, "r", 1, texts, lens, 3, "sft/", "[1]", NULL, NULL, &err),
                     -1);
    ck_assert_msg(strstr(err.msg, "not a JSON object"), "%s", err.msg);
    err_clear(&err);
    ck_assert_int_eq(store_prompt_add(s, "r", 1, texts, lens, 1, "sft/", "{}", NULL, NULL, &err),
                     -1);
    err_clear(&err);
    ck_assert_int_eq(store_prompt_add(s, "r", 1, texts, lens, 2, "", "{}", NULL, NULL, &err), -1);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM prompts"), 1);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM completions"), 8);
    store_close(&s);
    scratch_release(&t);
}
END_TEST

START_TEST(test_store_bulk_all_or_nothing) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, -1, 0);
    err_t err = ERR_INIT;
    const char *texts[2] = {"x", "y"};
    const size_t lens[2] = {1, 1};
    ck_assert_int_eq(store_begin(s, &err), 0);
    add_prompts(s, 0, 3, 2);
    store_rollback(s);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM prompts"), 0);
    /* A failed call inside undoes only itself; the import decides. */
    ck_assert_int_eq(store_begin(s, &err), 0);
    ck_assert_int_eq(store_begin(s, &err), -1);
    err_clear(&err);
    add_prompts(s, 0, 3, 2);
    ck_assert_int_eq(
        store_prompt_add(s, "bad", 3, texts, lens, 2, "import:f.jsonl", "nope", NULL, NULL, &err),
        -1);
    int64_t lid = labeler(s, "importer"), pid = 0, cid[2];
    ck_assert_int_eq(
        store_prompt_add(s, "z", 1, texts, lens, 2, "import:f.jsonl", "{}", &pid, cid, &err), 1);
    store_mark_t m[2] = {{cid[0], 2, 0, 0}, {cid[1], 1, 5, STORE_FLAG_HARMFUL}};
    ck_assert_int_eq(store_ranking_add(s, lid, pid, m, 2, 1234, 50, NULL, &err), 0);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM prompts"), 0); /* not committed yet */
    ck_assert_int_eq(store_commit(s, &err), 0);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM prompts"), 4);
    ck_assert_int_eq(raw_int(t.db, "SELECT created_ms FROM rankings"), 1234);
    ck_assert_int_eq(store_commit(s, &err), -1);
    store_close(&s);
    scratch_release(&t);
}
END_TEST

/* Text a model wrote goes in and comes out byte for byte: NULs, escapes, invalid UTF-8. */
START_TEST(test_store_bytes_round_trip) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, 0, 0);
    err_t err = ERR_INIT;
    static const char prompt[] = "Say \"hi\"\0 then\\n \x1b[31mred\x1b[0m";
    static const char c0[] = "\0\0lead\0ing NULs";
    static const char c1[] = "\xff\xfe not UTF-8 \xc3\x28 '; DROP TABLE rankings; --";
    const char *texts[3] = {c0, c1, ""};
    const size_t lens[3] = {sizeof c0 - 1, sizeof c1 - 1, 0};
    ck_assert_int_eq(store_prompt_add(s, prompt, sizeof prompt - 1, texts, lens, 3, "m/",
                                      "{\"top_k\":0}", NULL, NULL, &err),
                     1);
    /* Only the NUL differs from this prompt: a different row. */
    ck_assert_int_eq(store_prompt_add(s, prompt, 8, texts, lens, 3, "m/", "{}", NULL, NULL, &err),
                     1);
    int64_t lid = labeler(s, "ann");
    store_item_t it;
    ck_assert_int_eq(store_lease_next(s, lid, &it, &err), 1);
    ck_assert_uint_eq(it.len, sizeof prompt - 1);
    ck_assert(memcmp(it.text, prompt, it.len) == 0 && it.text[it.len] == '\0');
    ck_assert_int_eq(it.k, 3);
    for (int j = 0; j < 3; j++) {
        ck_assert_uint_eq(it.completions[j].len, lens[j]);
        ck_assert(memcmp(it.completions[j].text, texts[j], lens[j]) == 0);
        ck_assert_str_eq(it.completions[j].model, "m/");
        ck_assert_str_eq(it.completions[j].settings, "{\"top_k\":0}");
    }
    ck_assert_int_eq(save_in_order(s, lid, &it, NULL, &err), 0);
    store_item_release(&it);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM rankings"), 1);
    ck_assert_int_eq(raw_int(t.db, "SELECT length(text) FROM completions WHERE idx = 1"),
                     (int64_t)sizeof c1 - 1);
    store_close(&s);
    scratch_release(&t);
}
END_TEST

/* ---- labeling ------------------------------------------------------------------------------ */

START_TEST(test_store_lease_exclusive_and_expiry) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, 0, 60); /* no overlap; 60 s leases */
    err_t err = ERR_INIT;
    add_prompts(s, 0, 3, 2);
    int64_t a = labeler(s, "ann"), b = labeler(s, "bob"), c = labeler(s, "cy");
    int64_t p0 = lease_expect(s, a, 0);
    lease_expect(s, b, 1);
    lease_expect(s, a, 0); /* resumes its own lease */
    t.clock += 30000;
    lease_expect(s, b, 1); /* renewed: now expires at 90 s */
    t.clock += 31000;      /* 61 s: ann's lease has expired, bob's not */
    lease_expect(s, c, 0);
    lease_expect(s, a, 2);
    lease_expect(s, b, 1);
    /* ann comes back to prompt 0, which cy now holds: her save is refused, nothing written. */
    store_item_t it;
    ck_assert_int_eq(store_lease_next(s, c, &it, &err), 1);
    ck_assert_int_eq(it.id, p0);
    ck_assert_int_eq(save_in_order(s, a, &it, NULL, &err), STORE_ETAKEN);
    ck_assert_msg(strstr(err.msg, "another labeler"), "%s", err.msg);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM rankings"), 0);
    err_clear(&err);
    ck_assert_int_eq(save_in_order(s, c, &it, NULL, &err), 0);
    store_item_release(&it);
    /* An expired lease nobody took still saves. */
    t.clock += 200000;
    ck_assert_int_eq(store_lease_next(s, b, &it, &err), 1);
    ck_assert_str_eq(it.text, "prompt 1");
    t.clock += 100000;
    ck_assert_int_eq(save_in_order(s, b, &it, NULL, &err), 0);
    store_item_release(&it);
    store_close(&s);
    assert_integrity(t.db);
    scratch_release(&t);
}
END_TEST

/* The ranking saved in test_store_save_tie_skip_undo, as store_foreach_ranked gives it. */
static int check_tied_ranking(const store_item_t *it, void *ctx) {
    int64_t *rid = ctx;
    ck_assert_str_eq(it->text, "prompt 0");
    ck_assert_int_eq(it->k, 3);
    ck_assert_int_eq(it->n_rankings, 1);
    const store_ranking_t *r = &it->rankings[0];
    ck_assert_int_eq(r->id, *rid);
    ck_assert_str_eq(r->labeler, "ann");
    ck_assert_int_eq(r->duration_ms, 4321);
    ck_assert(r->rank[0] == 2 && r->rank[1] == 1 && r->rank[2] == 2);
    ck_assert(r->rating[0] == 4 && r->rating[1] == 7 && r->rating[2] == 0);
    ck_assert(r->flags[0] == 0 && r->flags[1] == 0 &&
              r->flags[2] == (STORE_FLAG_FAILS_INSTRUCTION | STORE_FLAG_MADE_UP));
    *rid = -1; /* seen */
    return 0;
}

START_TEST(test_store_save_tie_skip_undo) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, 0, 0);
    err_t err = ERR_INIT;
    add_prompts(s, 0, 3, 3);
    int64_t a = labeler(s, "ann"), b = labeler(s, "bob");
    store_item_t it;
    ck_assert_int_eq(store_lease_next(s, a, &it, &err), 1);
    /* completions 0 and 2 tie for second place; ratings and flags are kept per completion. */
    store_mark_t m[3] = {
        {it.completions[0].id, 2, 4, 0},
        {it.completions[1].id, 1, 7, 0},
        {it.completions[2].id, 2, 0, STORE_FLAG_FAILS_INSTRUCTION | STORE_FLAG_MADE_UP}};
    int64_t rid = 0, pid = it.id;
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 4321, &rid, &err), 0);
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 4321, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "already ranked"), "%s", err.msg);
    err_clear(&err);
    store_item_release(&it);
    store_progress_t pr;
    ck_assert_int_eq(store_progress(s, a, &pr, &err), 0);
    ck_assert(pr.ranked == 1 && pr.skipped == 0 && pr.remaining == 2 && pr.prompts == 3 &&
              pr.rankings == 1);
    /* Skip prompt 1; ann never sees it again, bob still does. */
    int64_t p1 = lease_expect(s, a, 1);
    ck_assert_int_eq(store_skip(s, a, p1, "", &err), -1);
    err_clear(&err);
    ck_assert_int_eq(store_skip(s, a, p1, "cannot judge arithmetic", &err), 0);
    ck_assert_int_eq(store_skip(s, a, p1, "again", &err), -1);
    err_clear(&err);
    lease_expect(s, a, 2);
    lease_expect(s, b, 1);
    /* Undo: the ranking and its marks go, ann gets prompt 0 back (her lease on 2 is released). */
    int64_t back = 0;
    ck_assert_int_eq(store_undo(s, a, &back, &err), 1);
    ck_assert_int_eq(back, pid);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM ranks"), 0);
    lease_expect(s, a, 0);
    ck_assert_int_eq(store_progress(s, a, &pr, &err), 0);
    ck_assert(pr.ranked == 0 && pr.skipped == 1 && pr.rankings == 0);
    ck_assert_int_eq(store_undo(s, b, NULL, &err), 0); /* bob has nothing to undo */
    /* Save again and read it back as training sees it. */
    ck_assert_int_eq(store_lease_next(s, a, &it, &err), 1);
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 4321, &rid, &err), 0);
    store_item_release(&it);
    int64_t seen = rid;
    ck_assert_int_eq(store_foreach_ranked(s, NULL, check_tied_ranking, &seen, &err), 0);
    ck_assert_int_eq(seen, -1);
    store_close(&s);
    assert_integrity(t.db);
    scratch_release(&t);
}
END_TEST

START_TEST(test_store_failed_save_writes_nothing) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, 0, 0);
    err_t err = ERR_INIT;
    add_prompts(s, 0, 2, 3);
    int64_t a = labeler(s, "ann");
    store_item_t it, other;
    ck_assert_int_eq(store_lease_next(s, a, &it, &err), 1);
    int64_t foreign_id = it.completions[2].id + 1; /* prompt 1's first completion */
    /* The bad mark comes last, after the ranking row and two marks were written. */
    store_mark_t m[3] = {
        {it.completions[0].id, 1, 0, 0}, {it.completions[1].id, 2, 0, 0}, {foreign_id, 3, 0, 0}};
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 10, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "is not one of its own"), "%s", err.msg);
    m[2].completion_id = it.completions[0].id;
    err_clear(&err);
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 10, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "appears twice"), "%s", err.msg);
    m[2] = (store_mark_t){it.completions[2].id, 4, 0, 0};
    err_clear(&err);
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 3, 10, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "rank out of range"), "%s", err.msg);
    err_clear(&err);
    ck_assert_int_eq(store_ranking_save(s, a, it.id, m, 2, 10, NULL, &err), -1);
    ck_assert_msg(strstr(err.msg, "covers 2 of its 3"), "%s", err.msg);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM rankings"), 0);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM ranks"), 0);
    /* The lease survives a failed save: the labeler fixes it and saves. */
    ck_assert_int_eq(store_lease_next(s, a, &other, &err), 1);
    ck_assert_int_eq(other.id, it.id);
    store_item_release(&other);
    ck_assert_int_eq(save_in_order(s, a, &it, NULL, &err), 0);
    ck_assert_int_eq(raw_int(t.db, "SELECT count(*) FROM ranks"), 3);
    store_item_release(&it);
    store_close(&s);
    assert_integrity(t.db);
    scratch_release(&t);
}
END_TEST

/* ---- overlap, agreement, split ------------------------------------------------------------- */

typedef struct {
    int prompts, doubled, val;
    double overlap, val_fraction;
} tally_t;

static int tally(const store_item_t *it, void *ctx) {
    tally_t *t = ctx;
    t->prompts++;
    bool overlap = (int64_t)(store_hash(it->text, it->len, 0) % 1000000) <
                   (int64_t)(t->overlap * 1000000 + 0.5);
    ck_assert_int_eq(it->n_rankings, overlap ? 2 : 1); /* never more than two */
    if (it->n_rankings == 2) {
        t->doubled++;
        ck_assert_int_ne(it->rankings[0].labeler_id, it->rankings[1].labeler_id);
    }
    if (store_is_val(it->text, it->len, t->val_fraction)) t->val++;
    return 0;
}

static int agreement(const store_item_t *it, void *ctx) {
    int *n = ctx;
    ck_assert_int_eq(it->n_rankings, 2);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < it->k; j++) ck_assert_int_eq(it->rankings[r].rank[j], j + 1);
    (*n)++;
    return 0;
}

START_TEST(test_store_overlap_share) {
    scratch_t t;
    scratch_init(&t);
    const double overlap = 0.3;
    const int N = 150;
    store_t *s = open_db(&t, true, overlap, 0);
    err_t err = ERR_INIT;
    ck_assert_int_eq(store_begin(s, &err), 0);
    add_prompts(s, 0, N, 2);
    ck_assert_int_eq(store_commit(s, &err), 0);
    int64_t lid[3] = {labeler(s, "ann"), labeler(s, "bob"), labeler(s, "cy")};
    for (bool more = true; more;) { /* three labelers in turn until none gets a prompt */
        more = false;
        for (int l = 0; l < 3; l++) {
            store_item_t it;
            int rc = store_lease_next(s, lid[l], &it, &err);
            ck_assert_msg(rc >= 0, "%s", err.msg);
            if (rc == 0) continue;
            more = true;
            ck_assert_msg(save_in_order(s, lid[l], &it, NULL, &err) == 0, "%s", err.msg);
            store_item_release(&it);
        }
    }
    tally_t all = {.overlap = overlap, .val_fraction = 0.25};
    ck_assert_int_eq(store_foreach_ranked(s, NULL, tally, &all, &err), 0);
    ck_assert_int_eq(all.prompts, N);
    ck_assert_msg(all.doubled > 0.2 * N && all.doubled < 0.4 * N, "%d of %d doubled", all.doubled,
                  N);
    ck_assert_msg(all.val > 0.15 * N && all.val < 0.35 * N, "%d of %d in val", all.val, N);
    store_progress_t pr;
    ck_assert_int_eq(store_progress(s, lid[0], &pr, &err), 0);
    ck_assert_int_eq(pr.remaining, 0);
    ck_assert_int_eq(pr.rankings, N + all.doubled);
    /* Agreement: exactly the doubled prompts, each with both rankings. */
    int n2 = 0;
    store_query_t q = {.min_labelers = 2};
    ck_assert_int_eq(store_foreach_ranked(s, &q, agreement, &n2, &err), 0);
    ck_assert_int_eq(n2, all.doubled);
    /* The split: train and val partition the prompts, as store_is_val says. */
    tally_t tr = {.overlap = overlap, .val_fraction = 0.25};
    tally_t va = tr;
    q = (store_query_t){.split = STORE_SPLIT_TRAIN, .val_fraction = 0.25};
    ck_assert_int_eq(store_foreach_ranked(s, &q, tally, &tr, &err), 0);
    q.split = STORE_SPLIT_VAL;
    ck_assert_int_eq(store_foreach_ranked(s, &q, tally, &va, &err), 0);
    ck_assert(tr.val == 0 && va.val == va.prompts && va.prompts == all.val);
    ck_assert_int_eq(tr.prompts + va.prompts, N);
    store_close(&s);
    scratch_release(&t);
}
END_TEST

START_TEST(test_store_split_is_stable) {
    int val = 0;
    for (int i = 0; i < 4000; i++) {
        char p[32];
        int n = snprintf(p, sizeof p, "What is %d plus %d?", i % 97, i / 97);
        bool v = store_is_val(p, (size_t)n, 0.1);
        ck_assert(v == store_is_val(p, (size_t)n, 0.1));
        ck_assert(!store_is_val(p, (size_t)n, 0.0) && store_is_val(p, (size_t)n, 1.0));
        if (v) ck_assert(store_is_val(p, (size_t)n, 0.2)); /* growing val only adds prompts */
        val += v;
    }
    ck_assert_msg(val > 320 && val < 480, "%d of 4000 in val at 0.1", val);
}
END_TEST

/* ---- several processes ----------------------------------------------------------------------- */

/* A labeler process: leases and saves as fast as it can until nothing is left, writing each
 * saved ranking's id to fd (when >= 0) after its commit. With go >= 0, it waits for a byte on
 * go before the first lease. Exits 0, or 1 with the error on
 * stderr (an SQLITE_BUSY would land here). */
static void labeler_process(const char *path, const char *name, int fd, int go) {
    err_t err = ERR_INIT;
    store_t *s = store_open(path, NULL, &err);
    int64_t lid = 0;
    if (!s || store_labeler(s, name, true, &lid, &err)) goto fail;
    char byte;
    if (go >= 0 && read(go, &byte, 1) != 1) _exit(3); /* start together */
    for (;;) {
        store_item_t it;
        int rc = store_lease_next(s, lid, &it, &err);
        if (rc < 0) goto fail;
        if (rc == 0) break;
        int64_t rid = 0;
        rc = save_in_order(s, lid, &it, &rid, &err);
        store_item_release(&it);
        if (rc) goto fail;
        if (fd >= 0 && write(fd, &rid, sizeof rid) != (ssize_t)sizeof rid) _exit(2);
    }
    store_close(&s);
    _exit(0);
fail:
    fprintf(stderr, "labeler %s: %s\n", name, err.msg);
    _exit(1);
}

static int count_twice(const store_item_t *it, void *ctx) {
    int *c = ctx;
    bool overlap = (int64_t)(store_hash(it->text, it->len, 0) % 1000000) < 250000;
    ck_assert_int_eq(it->n_rankings, overlap ? 2 : 1);
    if (it->n_rankings == 2)
        ck_assert_int_ne(it->rankings[0].labeler_id, it->rankings[1].labeler_id);
    c[0]++;
    c[1] += it->n_rankings == 2;
    if (it->n_rankings == 1) c[1 + (int)it->rankings[0].labeler_id]++; /* ann 1, bob 2 */
    return 0;
}

START_TEST(test_store_two_labelers_at_once) {
    scratch_t t;
    scratch_init(&t);
    const int N = 80;
    err_t err = ERR_INIT;
    store_options_t o = store_options_default();
    o.create = true;
    o.overlap = 0.25;
    store_t *s = store_open(t.db, &o, &err);
    ck_assert_msg(s, "%s", err.msg);
    ck_assert_int_eq(store_begin(s, &err), 0);
    add_prompts(s, 0, N, 4);
    ck_assert_int_eq(store_commit(s, &err), 0);
    store_close(&s);
    s = open_db(&t, false, -1, 0);
    labeler(s, "ann"); /* ids 1 and 2 */
    labeler(s, "bob");
    store_close(&s);
    pid_t kids[2];
    int go[2];
    ck_assert_int_eq(pipe(go), 0);
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) labeler_process(t.db, i ? "bob" : "ann", -1, go[0]);
    }
    ck_assert_int_eq(write(go[1], "gg", 2), 2);
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < 2; i++) {
        int status = 0;
        ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "labeler %d: status %d", i,
                      status);
    }
    s = store_open(t.db, NULL, &err);
    ck_assert_msg(s, "%s", err.msg);
    int c[4] = {0, 0, 0, 0}; /* prompts, ranked twice, ranked by ann alone, by bob alone */
    ck_assert_int_eq(store_foreach_ranked(s, NULL, count_twice, c, &err), 0);
    ck_assert_int_eq(c[0], N); /* every prompt ranked, overlap ones by both, others once */
    ck_assert_int_gt(c[1], 0);
    /* Writers take turns (store.c busy_wait): each got a share of the single prompts. With
     * SQLite's default backoff the faster one took all of them while the other waited. */
    ck_assert_msg(c[2] > (N - c[1]) / 10 && c[3] > (N - c[1]) / 10, "ann %d, bob %d of %d", c[2],
                  c[3], N - c[1]);
    store_close(&s);
    assert_integrity(t.db);
    scratch_release(&t);
}
END_TEST

/* Collects ranking ids into a sorted-by-insertion array. */
typedef struct {
    int64_t *ids;
    int n, cap;
} idset_t;

static int collect(const store_item_t *it, void *ctx) {
    idset_t *set = ctx;
    for (int r = 0; r < it->n_rankings; r++) {
        if (set->n == set->cap) {
            set->cap = set->cap ? 2 * set->cap : 256;
            set->ids = realloc(set->ids, (size_t)set->cap * sizeof *set->ids);
            ck_assert(set->ids);
        }
        set->ids[set->n++] = it->rankings[r].id;
    }
    return 0;
}

START_TEST(test_store_kill9_keeps_saved) {
    scratch_t t;
    scratch_init(&t);
    store_t *s = open_db(&t, true, 0, 0);
    err_t err = ERR_INIT;
    ck_assert_int_eq(store_begin(s, &err), 0);
    add_prompts(s, 0, 3000, 4);
    ck_assert_int_eq(store_commit(s, &err), 0);
    store_close(&s);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        close(fds[0]);
        labeler_process(t.db, "ann", fds[1], -1);
    }
    close(fds[1]);
    int64_t reported[4096];
    int n = 0;
    while (n < 40 && read(fds[0], &reported[n], sizeof reported[n]) == sizeof reported[n]) n++;
    ck_assert_int_eq(n, 40); /* the child was saving, not failing */
    usleep(3000);            /* land somewhere inside a later save */
    kill(kid, SIGKILL);
    int status = 0;
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    while (n < 4096 && read(fds[0], &reported[n], sizeof reported[n]) == sizeof reported[n]) n++;
    close(fds[0]);
    assert_integrity(t.db);
    s = open_db(&t, false, -1, 0);
    idset_t got = {0};
    ck_assert_int_eq(store_foreach_ranked(s, NULL, collect, &got, &err), 0);
    ck_assert_int_ge(got.n, n);
    ck_assert_int_le(got.n, n + 1); /* at most one committed but not yet reported */
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < got.n && got.ids[j] != reported[i]) j++;
        ck_assert_msg(j < got.n, "ranking %lld reported saved but missing", (long long)reported[i]);
    }
    /* The next labeling session picks up where the killed one stopped. */
    int64_t lid = labeler(s, "ann");
    store_item_t it;
    ck_assert_int_eq(store_lease_next(s, lid, &it, &err), 1);
    ck_assert_int_eq(save_in_order(s, lid, &it, NULL, &err), 0);
    store_item_release(&it);
    free(got.ids);
    store_close(&s);
    scratch_release(&t);
}
END_TEST

Suite *test_store_suite(void);
Suite *test_store_suite(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, test_store_create);
    tcase_add_test(tc, test_store_migrates_empty_files);
    tcase_add_test(tc, test_store_refuses_newer_version);
    tcase_add_test(tc, test_store_refuses_foreign_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("prompts");
    tcase_add_test(tc, test_store_prompt_add_idempotent);
    tcase_add_test(tc, test_store_bulk_all_or_nothing);
    tcase_add_test(tc, test_store_bytes_round_trip);
    suite_add_tcase(s, tc);
    tc = tcase_create("labeling");
    tcase_set_timeout(tc, 60); /* a few hundred fsynced commits; Check's default is 4 s */
    tcase_add_test(tc, test_store_lease_exclusive_and_expiry);
    tcase_add_test(tc, test_store_save_tie_skip_undo);
    tcase_add_test(tc, test_store_failed_save_writes_nothing);
    tcase_add_test(tc, test_store_overlap_share);
    tcase_add_test(tc, test_store_split_is_stable);
    suite_add_tcase(s, tc);
    tc = tcase_create("processes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_store_two_labelers_at_once);
    tcase_add_test(tc, test_store_kill9_keeps_saved);
    suite_add_tcase(s, tc);
    return s;
}
