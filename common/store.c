/* common/store.c: the rankings database. Sections, in order: statements, helpers, opening and
 * migrations, bulk transactions, prompts, labelers, items, labeling, reading back.
 * Every SQL text is a constant in the statement table below (or the compiled-in schema); values
 * are always bound. Each write call runs in one BEGIN IMMEDIATE transaction (or, inside
 * store_begin, a savepoint), so it is all or nothing and waits for other writers instead of
 * failing with SQLITE_BUSY. Statements are prepared once per connection and reset after use,
 * so no statement keeps a read snapshot open between calls. */
#include "store.h"
#include <assert.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rankings.sql.h" /* store_schema_sql: schemas/rankings.sql, made by the Makefile */

#define STORE_APP_ID  1380730950 /* 0x524C4846 "RLHF": PRAGMA application_id of our files */
#define OVERLAP_SCALE 1000000    /* overlap iff hash % OVERLAP_SCALE < overlap * OVERLAP_SCALE */
#define SALT_OVERLAP  0u
#define SALT_SPLIT    0x9e3779b97f4a7c15ull /* any constant != SALT_OVERLAP: independent draws */

/* Migration steps: steps[v] takes a database from user_version v to v + 1 and sets it. A new
 * schema version appends a step (an ALTER TABLE text, a new schemas/ file); none is edited. */
static const char *const steps[STORE_VERSION] = {
    (const char *)store_schema_sql, /* 0 -> 1: the first schema */
};

/* ---- statements ---------------------------------------------------------------------------- */

/* Whether a prompt still needs a labeler: its rankings plus leases below its capacity (2 for an
 * overlap prompt, else 1). ?2 is overlap * OVERLAP_SCALE. Mirrors prompt_capacity(). */
#define NEEDS_LABELER                                                                              \
    "(SELECT count(*) FROM rankings r WHERE r.prompt_id = p.id)"                                   \
    " + (SELECT count(*) FROM leases l WHERE l.prompt_id = p.id)"                                  \
    " < CASE WHEN p.hash % 1000000 < ?2 THEN 2 ELSE 1 END"
#define NOT_DONE_BY_ME                                                                             \
    "NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id AND r.labeler_id = ?1)"         \
    " AND NOT EXISTS (SELECT 1 FROM skips k WHERE k.prompt_id = p.id AND k.labeler_id = ?1)"

enum {
    ST_VERSION,
    ST_APP_ID,
    ST_NTABLES,
    ST_META_GET,
    ST_META_ADD,
    ST_PROMPT_FIND,
    ST_PROMPT_ADD,
    ST_PROMPT_GET,
    ST_RUN_FIND,
    ST_COMP_ADD,
    ST_COMPS_OF,
    ST_COMP_COUNT,
    ST_LABELER_FIND,
    ST_LABELER_ADD,
    ST_LEASE_EXPIRE,
    ST_LEASE_MINE,
    ST_LEASE_RENEW,
    ST_LEASE_PICK,
    ST_LEASE_ADD,
    ST_LEASE_DROP,
    ST_LEASE_DROP_ALL,
    ST_CAPACITY_USED,
    ST_RANKING_ADD,
    ST_RANK_ADD,
    ST_RANKING_LAST,
    ST_RANKING_DEL,
    ST_SKIP_ADD,
    ST_PROGRESS,
    ST_RANKED_PROMPTS,
    ST_RANKINGS_OF,
    ST_RANKS_OF,
    ST_COUNT
};

static const struct {
    const char *what; /* the operation, for messages */
    const char *sql;
} stmt_table[ST_COUNT] = {
    [ST_VERSION] = {"read user_version", "PRAGMA user_version"},
    [ST_APP_ID] = {"read application_id", "PRAGMA application_id"},
    [ST_NTABLES] = {"list tables",
                    "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"},
    [ST_META_GET] = {"read meta", "SELECT value FROM meta WHERE key = ?1"},
    [ST_META_ADD] = {"write meta", "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)"},
    [ST_PROMPT_FIND] = {"find prompt", "SELECT id FROM prompts WHERE text = ?1"},
    [ST_PROMPT_ADD] = {"add prompt",
                       "INSERT INTO prompts (text, hash, added_ms) VALUES (?1, ?2, ?3)"},
    [ST_PROMPT_GET] = {"read prompt", "SELECT text, hash FROM prompts WHERE id = ?1"},
    [ST_RUN_FIND] = {"find completions",
                     "SELECT id FROM completions WHERE prompt_id = ?1 AND model = ?2"
                     " AND settings = ?3 ORDER BY idx"},
    [ST_COMP_ADD] = {"add completion",
                     "INSERT INTO completions (prompt_id, model, settings, idx, text, added_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [ST_COMPS_OF] = {"read completions", "SELECT id, text, model, settings FROM completions"
                                         " WHERE prompt_id = ?1 ORDER BY id"},
    [ST_COMP_COUNT] = {"count completions",
                       "SELECT count(*) FROM completions WHERE prompt_id = ?1"},
    [ST_LABELER_FIND] = {"find labeler", "SELECT id FROM labelers WHERE name = ?1"},
    [ST_LABELER_ADD] = {"add labeler", "INSERT INTO labelers (name, added_ms) VALUES (?1, ?2)"},
    [ST_LEASE_EXPIRE] = {"expire leases", "DELETE FROM leases WHERE expires_ms <= ?1"},
    [ST_LEASE_MINE] = {"find lease", "SELECT prompt_id FROM leases WHERE labeler_id = ?1"},
    [ST_LEASE_RENEW] = {"renew lease", "UPDATE leases SET expires_ms = ?2 WHERE labeler_id = ?1"},
    [ST_LEASE_PICK] = {"pick prompt", "SELECT p.id FROM prompts p WHERE " NOT_DONE_BY_ME
                                      " AND " NEEDS_LABELER " ORDER BY p.id LIMIT 1"},
    [ST_LEASE_ADD] = {"add lease",
                      "INSERT INTO leases (prompt_id, labeler_id, expires_ms) VALUES (?1, ?2, ?3)"},
    [ST_LEASE_DROP] = {"release lease",
                       "DELETE FROM leases WHERE labeler_id = ?1 AND prompt_id = ?2"},
    [ST_LEASE_DROP_ALL] = {"release lease", "DELETE FROM leases WHERE labeler_id = ?1"},
    [ST_CAPACITY_USED] = {"count labelers",
                          "SELECT (SELECT count(*) FROM rankings WHERE prompt_id = ?1"
                          " AND labeler_id <> ?2) + (SELECT count(*) FROM leases"
                          " WHERE prompt_id = ?1 AND labeler_id <> ?2 AND expires_ms > ?3)"},
    [ST_RANKING_ADD] = {"add ranking", "INSERT INTO rankings (prompt_id, labeler_id, created_ms,"
                                       " duration_ms) VALUES (?1, ?2, ?3, ?4)"},
    [ST_RANK_ADD] = {"add rank",
                     "INSERT INTO ranks (ranking_id, prompt_id, completion_id, rank, rating,"
                     " fails_instruction, harmful, made_up_facts)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
    [ST_RANKING_LAST] = {"find last ranking", "SELECT id, prompt_id FROM rankings"
                                              " WHERE labeler_id = ?1 ORDER BY id DESC LIMIT 1"},
    [ST_RANKING_DEL] = {"delete ranking", "DELETE FROM rankings WHERE id = ?1"},
    [ST_SKIP_ADD] = {"add skip", "INSERT INTO skips (prompt_id, labeler_id, created_ms, reason)"
                                 " VALUES (?1, ?2, ?3, ?4)"},
    [ST_PROGRESS] = {"count progress",
                     "SELECT (SELECT count(*) FROM rankings WHERE labeler_id = ?1),"
                     " (SELECT count(*) FROM skips WHERE labeler_id = ?1),"
                     " (SELECT count(*) FROM prompts p WHERE " NOT_DONE_BY_ME
                     " AND (SELECT count(*) FROM rankings r WHERE r.prompt_id = p.id)"
                     " < CASE WHEN p.hash % 1000000 < ?2 THEN 2 ELSE 1 END),"
                     " (SELECT count(*) FROM prompts), (SELECT count(*) FROM rankings)"},
    [ST_RANKED_PROMPTS] = {"list ranked prompts",
                           "SELECT p.id, p.text FROM prompts p WHERE (SELECT count(*)"
                           " FROM rankings r WHERE r.prompt_id = p.id) >= ?1 ORDER BY p.id"},
    [ST_RANKINGS_OF] = {"read rankings",
                        "SELECT r.id, r.labeler_id, l.name, r.created_ms, r.duration_ms"
                        " FROM rankings r JOIN labelers l ON l.id = r.labeler_id"
                        " WHERE r.prompt_id = ?1 ORDER BY r.id"},
    [ST_RANKS_OF] = {"read ranks", "SELECT completion_id, rank, rating, fails_instruction,"
                                   " harmful, made_up_facts FROM ranks WHERE ranking_id = ?1"},
};

struct store {
    sqlite3 *db;
    char *path;                   /* for messages */
    sqlite3_stmt *stmt[ST_COUNT]; /* prepared on first use, finalized by store_close */
    bool bulk;                    /* inside store_begin: writes use savepoints */
    double overlap;               /* recorded in meta */
    int64_t overlap_threshold;    /* llround(overlap * OVERLAP_SCALE) */
    int64_t lease_ms;
    int64_t busy_ms;             /* how long busy_wait waits for another writer */
    struct timespec busy_since;  /* when the current wait began (CLOCK_MONOTONIC) */
    struct timespec last_commit; /* when this connection last committed a write, or 0 */
    uint64_t busy_rng;           /* xorshift state for busy_wait's jitter */
    int64_t (*now_ms)(void *ctx);
    void *now_ctx;
};

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t real_now_ms(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now(const store_t *s) {
    return s->now_ms(s->now_ctx);
}

/* Taking turns. SQLite's own busy_timeout sleeps 1, 2, 5, ... up to 100 ms between tries. A
 * labeler that saves in a tight loop (--simulated) holds the write lock for the whole of each
 * commit (an fsync, milliseconds) and retakes it microseconds later, so a waiter polling that
 * way almost never finds it free and waits until the first labeler is done: past any timeout
 * on a big database (measured: 80 of 80 prompts to one process). So a waiter tries again every
 * 0.1-0.6 ms (jittered, so two waiters do not step in lockstep), and a connection about to
 * write again within COURTESY_NS of its last commit first leaves the lock free for that long.
 * A person's terminal never notices; a tight loop pays about 1 ms per write. */
#define COURTESY_NS 1000000

static int64_t elapsed_ns(const struct timespec *since) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - since->tv_sec) * 1000000000 + (t.tv_nsec - since->tv_nsec);
}

static void courtesy_pause(const store_t *s) {
    int64_t since = elapsed_ns(&s->last_commit);
    if (since >= 0 && since < COURTESY_NS) {
        struct timespec nap = {0, (long)(COURTESY_NS - since)};
        nanosleep(&nap, NULL);
    }
}

static int busy_wait(void *ctx, int tries) {
    store_t *s = ctx;
    if (tries == 0) clock_gettime(CLOCK_MONOTONIC, &s->busy_since);
    if (elapsed_ns(&s->busy_since) >= s->busy_ms * 1000000) return 0; /* SQLITE_BUSY */
    s->busy_rng ^= s->busy_rng << 13;
    s->busy_rng ^= s->busy_rng >> 7;
    s->busy_rng ^= s->busy_rng << 17;
    struct timespec nap = {0, 100000 + (long)(s->busy_rng % 500000)};
    nanosleep(&nap, NULL);
    return 1;
}

/* "r.db: add ranking: UNIQUE constraint failed: ..." */
static int db_fail(const store_t *s, const char *what, err_t *err) {
    return err_setf(err, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/* The statement, prepared on first use, reset and with no bindings; NULL with err set. */
static sqlite3_stmt *stmt(store_t *s, int which, err_t *err) {
    sqlite3_stmt *st = s->stmt[which];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (sqlite3_prepare_v3(s->db, stmt_table[which].sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           NULL) != SQLITE_OK) {
        db_fail(s, stmt_table[which].what, err);
        return NULL;
    }
    return s->stmt[which] = st;
}

/* Runs a statement that returns no rows and resets it. Returns SQLITE_DONE or the error code
 * (the caller words the message: it knows which constraint means what). */
static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* PRAGMAs may answer; nothing to read */
    sqlite3_reset(st);
    return rc;
}

/* Runs which (already bound) to the end; -1 with a generic message on failure. */
static int run(store_t *s, int which, err_t *err) {
    if (step_done(s->stmt[which]) != SQLITE_DONE) return db_fail(s, stmt_table[which].what, err);
    return 0;
}

/* Steps which (already bound) once and reads column 0 as an integer, then resets.
 * Returns 1 with *out set, 0 when there is no row, -1 with err set. */
static int one_int(store_t *s, int which, int64_t *out, err_t *err) {
    sqlite3_stmt *st = s->stmt[which];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return db_fail(s, stmt_table[which].what, err);
}

static int exec(store_t *s, const char *sql, err_t *err) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return db_fail(s, sql, err);
    return 0;
}

/* A write call's own transaction: BEGIN IMMEDIATE takes the write lock up front (waiting up to
 * busy_timeout), so a later write in it never fails with SQLITE_BUSY; inside store_begin it is
 * a savepoint, so a failed call undoes only itself. */
static int tx_begin(store_t *s, err_t *err) {
    if (s->bulk) return exec(s, "SAVEPOINT store_call", err);
    courtesy_pause(s);
    return exec(s, "BEGIN IMMEDIATE", err);
}

/* Ends tx_begin's transaction: commits when rc >= 0, else rolls back. Returns rc, or -1 when
 * the commit fails (then rolled back). */
static int tx_end(store_t *s, int rc, err_t *err) {
    if (rc >= 0) {
        if (exec(s, s->bulk ? "RELEASE store_call" : "COMMIT", err) == 0) {
            if (!s->bulk) clock_gettime(CLOCK_MONOTONIC, &s->last_commit);
            return rc;
        }
        rc = -1;
    }
    if (s->bulk) {
        sqlite3_exec(s->db, "ROLLBACK TO store_call; RELEASE store_call", NULL, NULL, NULL);
    } else if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* malloc'd copy of column col (len bytes + NUL); NULL with err set when out of memory. */
static char *column_dup(const store_t *s, sqlite3_stmt *st, int col, size_t *len, err_t *err) {
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *out = malloc(n + 1);
    if (!out) {
        err_setf(err, "%s: out of memory reading %zu bytes", s->path, n);
        return NULL;
    }
    if (n) memcpy(out, p, n);
    out[n] = '\0';
    if (len) *len = n;
    return out;
}

uint64_t store_hash(const char *text, size_t len, uint64_t salt) {
    uint64_t h = 0xcbf29ce484222325ull ^ salt; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)text[i]) * 0x100000001b3ull;
    h ^= h >> 30; /* splitmix64's finalizer: FNV's low bits alone are poorly mixed */
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h >> 1; /* fits SQLite's signed 64-bit INTEGER, stays >= 0 */
}

bool store_is_val(const char *prompt, size_t len, double val_fraction) {
    uint64_t h = store_hash(prompt, len, SALT_SPLIT);
    return (double)(h >> 10) * 0x1p-53 < val_fraction; /* 53 uniform bits in [0, 1) */
}

/* 2 for an overlap prompt, else 1; the SQL of NEEDS_LABELER says the same. */
static int prompt_capacity(const store_t *s, int64_t hash) {
    return hash % OVERLAP_SCALE < s->overlap_threshold ? 2 : 1;
}

/* ---- opening and migrations ---------------------------------------------------------------- */

store_options_t store_options_default(void) {
    return (store_options_t){.overlap = -1};
}

/* Reads which kind of file s->db is: 0 with *version set when it is a rankings database of a
 * version this code knows, or an empty SQLite file (version 0); otherwise -1 with err set.
 * Only reads, so a refused file is left as it was. */
static int check_kind(store_t *s, int64_t *version, err_t *err) {
    int rc = sqlite3_exec(s->db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL, NULL, NULL);
    if ((rc & 0xff) == SQLITE_NOTADB) return err_setf(err, "%s: not a SQLite database", s->path);
    if (rc != SQLITE_OK) return db_fail(s, "read schema", err);
    int64_t app = 0, ntables = 0;
    if (!stmt(s, ST_VERSION, err) || one_int(s, ST_VERSION, version, err) < 0) return -1;
    if (!stmt(s, ST_APP_ID, err) || one_int(s, ST_APP_ID, &app, err) < 0) return -1;
    if (!stmt(s, ST_NTABLES, err) || one_int(s, ST_NTABLES, &ntables, err) < 0) return -1;
    if (app == STORE_APP_ID && *version > STORE_VERSION)
        return err_setf(err,
                        "%s: schema version %lld is newer than this program's %d (a newer "
                        "rlhf.c wrote it); not opened",
                        s->path, (long long)*version, STORE_VERSION);
    if (app == STORE_APP_ID && *version >= 1) return 0;
    if (app == 0 && *version == 0 && ntables == 0) return 0; /* empty: ours to initialise */
    return err_setf(err,
                    "%s: not a rankings database (application_id %lld, user_version %lld, %lld "
                    "tables); not opened",
                    s->path, (long long)app, (long long)*version, (long long)ntables);
}

/* 1 when meta records the overlap share (*overlap set), 0 when not, -1 on error. */
static int read_overlap(store_t *s, double *overlap, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_META_GET, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, "overlap", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *overlap = sqlite3_column_double(st, 0);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return db_fail(s, stmt_table[ST_META_GET].what, err);
}

/* Inside the write transaction: re-checks the file (another process may have got there first),
 * runs the missing steps and records the overlap share unless one is recorded. */
static int migrate_in(store_t *s, double overlap, err_t *err) {
    int64_t version = 0;
    if (check_kind(s, &version, err)) return -1;
    for (int64_t v = version; v < STORE_VERSION; v++) {
        if (sqlite3_exec(s->db, steps[v], NULL, NULL, NULL) != SQLITE_OK)
            return err_setf(err, "%s: migrating schema version %lld to %lld: %s", s->path,
                            (long long)v, (long long)v + 1, sqlite3_errmsg(s->db));
        int64_t now_v = -1;
        if (!stmt(s, ST_VERSION, err) || one_int(s, ST_VERSION, &now_v, err) < 0) return -1;
        assert(now_v == v + 1 && "each migration step sets user_version");
    }
    sqlite3_stmt *st = stmt(s, ST_META_ADD, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, "overlap", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, overlap);
    return run(s, ST_META_ADD, err);
}

/* Brings the schema to STORE_VERSION and the overlap share into meta, in one transaction taken
 * only when something is missing (an up-to-date file is opened without writing). */
static int migrate(store_t *s, int64_t version, double overlap, err_t *err) {
    double have;
    if (version == STORE_VERSION) {
        int rc = read_overlap(s, &have, err);
        if (rc < 0) return -1;
        if (rc == 1) return 0;
    }
    if (tx_begin(s, err)) return -1;
    return tx_end(s, migrate_in(s, overlap, err), err);
}

/* WAL lets labelers read while one writes; FULL syncs the WAL at every commit, so a saved
 * ranking survives power loss, not just a crash of the process. */
static int set_pragmas(store_t *s, err_t *err) {
    if (exec(s, "PRAGMA foreign_keys = ON", err)) return -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "set WAL mode", err);
    int rc = sqlite3_step(st);
    bool wal = rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return db_fail(s, "set WAL mode", err);
    if (!wal)
        return err_setf(err,
                        "%s: cannot use WAL mode (a file system without shared "
                        "memory?)",
                        s->path);
    return exec(s, "PRAGMA synchronous = FULL", err);
}

store_t *store_open(const char *path, const store_options_t *opts, err_t *err) {
    store_options_t o = opts ? *opts : store_options_default();
    double overlap = o.overlap < 0 ? STORE_OVERLAP_DEFAULT : o.overlap;
    if (!(overlap <= 1)) { /* also NaN */
        err_setf(err, "%s: overlap %g is not in [0, 1]", path, o.overlap);
        return NULL;
    }
    struct stat sb;
    if (!o.create && stat(path, &sb) != 0) {
        err_setf(err, "%s: no such file", path);
        return NULL;
    }
    store_t *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        err_setf(err, "%s: out of memory", path);
        return NULL;
    }
    s->lease_ms = (o.lease_seconds > 0 ? o.lease_seconds : STORE_LEASE_DEFAULT) * 1000;
    s->now_ms = o.now_ms ? o.now_ms : real_now_ms;
    s->now_ctx = o.now_ctx;
    s->busy_rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
    int flags = SQLITE_OPEN_READWRITE | (o.create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        err_setf(err, "%s: cannot open: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_ms = o.busy_ms > 0 ? o.busy_ms : STORE_BUSY_DEFAULT;
    sqlite3_busy_handler(s->db, busy_wait, s);
    int64_t version = 0;
    if (check_kind(s, &version, err)) goto fail; /* before anything that could write */
    if (set_pragmas(s, err) || migrate(s, version, overlap, err)) goto fail;
    if (read_overlap(s, &s->overlap, err) != 1) {
        err_setf(err, "%s: meta has no overlap share", path);
        goto fail;
    }
    s->overlap_threshold = llround(s->overlap * OVERLAP_SCALE);
    return s;
fail:
    store_close(&s);
    return NULL;
}

void store_close(store_t **sp) {
    if (!sp || !*sp) return;
    store_t *s = *sp;
    store_rollback(s);
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->stmt[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    *sp = NULL;
}

double store_overlap(const store_t *s) {
    return s->overlap;
}

/* ---- bulk transactions --------------------------------------------------------------------- */

int store_begin(store_t *s, err_t *err) {
    if (s->bulk) return err_setf(err, "%s: store_begin inside store_begin", s->path);
    if (exec(s, "BEGIN IMMEDIATE", err)) return -1;
    s->bulk = true;
    return 0;
}

int store_commit(store_t *s, err_t *err) {
    if (!s->bulk) return err_setf(err, "%s: store_commit without store_begin", s->path);
    s->bulk = false;
    if (exec(s, "COMMIT", err) == 0) return 0;
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

void store_rollback(store_t *s) {
    if (!s->bulk) return;
    s->bulk = false;
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- prompts ------------------------------------------------------------------------------- */

/* Binds n bytes as a BLOB; a zero-length one as an empty BLOB (bind_blob of n 0 may be NULL). */
static void bind_bytes(sqlite3_stmt *st, int i, const char *p, size_t n) {
    if (n == 0)
        sqlite3_bind_zeroblob(st, i, 0);
    else
        sqlite3_bind_blob64(st, i, p, n, SQLITE_STATIC);
}

/* The prompt's id, inserting the prompt when it is new. */
static int prompt_id_of(store_t *s, const char *prompt, size_t len, int64_t *id, err_t *err) {
    if (!stmt(s, ST_PROMPT_FIND, err)) return -1;
    bind_bytes(s->stmt[ST_PROMPT_FIND], 1, prompt, len);
    int rc = one_int(s, ST_PROMPT_FIND, id, err);
    if (rc != 0) return rc < 0 ? -1 : 0;
    sqlite3_stmt *st = stmt(s, ST_PROMPT_ADD, err);
    if (!st) return -1;
    bind_bytes(st, 1, prompt, len);
    sqlite3_bind_int64(st, 2, (int64_t)store_hash(prompt, len, SALT_OVERLAP));
    sqlite3_bind_int64(st, 3, now(s));
    if (run(s, ST_PROMPT_ADD, err)) return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

/* Reads the ids of an earlier run (prompt, model, settings) into ids[k]; returns how many
 * there are (0: no such run), or -1. */
static int run_ids(store_t *s, int64_t pid, const char *model, const char *settings, int k,
                   int64_t *ids, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RUN_FIND, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, settings, -1, SQLITE_STATIC);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n < k && ids) ids[n] = sqlite3_column_int64(st, 0);
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_RUN_FIND].what, err);
    return n;
}

static int prompt_add_in(store_t *s, const char *prompt, size_t prompt_len,
                         const char *const *texts, const size_t *lens, int k, const char *model,
                         const char *settings, int64_t *pid, int64_t *ids, err_t *err) {
    if (prompt_id_of(s, prompt, prompt_len, pid, err)) return -1;
    int have = run_ids(s, *pid, model, settings, k, ids, err);
    if (have < 0) return -1;
    if (have == k) return 0;
    if (have > 0)
        return err_setf(err,
                        "%s: prompt %lld already holds %d completions from %s with settings %s, "
                        "not %d",
                        s->path, (long long)*pid, have, model, settings, k);
    const int64_t t = now(s);
    for (int i = 0; i < k; i++) {
        sqlite3_stmt *st = stmt(s, ST_COMP_ADD, err);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, *pid);
        sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, settings, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, i);
        bind_bytes(st, 5, texts[i], lens[i]);
        sqlite3_bind_int64(st, 6, t);
        int rc = step_done(st);
        if (rc == SQLITE_CONSTRAINT_CHECK)
            return err_setf(err, "%s: settings %s: not a JSON object", s->path, settings);
        if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_COMP_ADD].what, err);
        if (ids) ids[i] = sqlite3_last_insert_rowid(s->db);
    }
    return 1;
}

int store_prompt_add(store_t *s, const char *prompt, size_t prompt_len, const char *const *texts,
                     const size_t *lens, int k, const char *model, const char *settings,
                     int64_t *prompt_id, int64_t *completion_ids, err_t *err) {
    if (k < 2 || k > STORE_K_MAX)
        return err_setf(err, "%s: %d completions for a prompt, expected 2 to %d", s->path, k,
                        STORE_K_MAX);
    if (!model || !model[0]) return err_setf(err, "%s: completions without a model", s->path);
    if (!settings) return err_setf(err, "%s: completions without sampling settings", s->path);
    int64_t pid = 0;
    if (tx_begin(s, err)) return -1;
    int rc = prompt_add_in(s, prompt, prompt_len, texts, lens, k, model, settings, &pid,
                           completion_ids, err);
    rc = tx_end(s, rc, err);
    if (rc >= 0 && prompt_id) *prompt_id = pid;
    return rc;
}

/* ---- labelers ------------------------------------------------------------------------------ */

static int labeler_find(store_t *s, const char *name, int64_t *id, err_t *err) {
    if (!stmt(s, ST_LABELER_FIND, err)) return -1;
    sqlite3_bind_text(s->stmt[ST_LABELER_FIND], 1, name, -1, SQLITE_STATIC);
    return one_int(s, ST_LABELER_FIND, id, err);
}

static int labeler_add_in(store_t *s, const char *name, int64_t *id, err_t *err) {
    int rc = labeler_find(s, name, id, err); /* again: another process may have added it */
    if (rc != 0) return rc < 0 ? -1 : 0;
    sqlite3_stmt *st = stmt(s, ST_LABELER_ADD, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now(s));
    if (run(s, ST_LABELER_ADD, err)) return -1;
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

int store_labeler(store_t *s, const char *name, bool create, int64_t *labeler_id, err_t *err) {
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 100) return err_setf(err, "%s: a labeler name has 1 to 100 bytes", s->path);
    int rc = labeler_find(s, name, labeler_id, err);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if (!create) return err_setf(err, "%s: no labeler \"%s\"", s->path, name);
    if (tx_begin(s, err)) return -1;
    return tx_end(s, labeler_add_in(s, name, labeler_id, err), err);
}

/* ---- items --------------------------------------------------------------------------------- */

void store_item_release(store_item_t *it) {
    if (!it) return;
    for (int i = 0; i < it->k && it->completions; i++) {
        free(it->completions[i].text);
        free(it->completions[i].model);
        free(it->completions[i].settings);
    }
    for (int i = 0; i < it->n_rankings && it->rankings; i++) {
        store_ranking_t *r = &it->rankings[i];
        free(r->labeler);
        free(r->rank);
        free(r->rating);
        free(r->flags);
    }
    free(it->completions);
    free(it->rankings);
    free(it->text);
    memset(it, 0, sizeof *it);
}

/* Reads the next row of ST_COMPS_OF into a new last element of it->completions. */
static int completion_read(store_t *s, sqlite3_stmt *st, store_item_t *it, int *cap, err_t *err) {
    if (it->k == *cap) {
        int ncap = *cap ? 2 * *cap : 8;
        store_completion_t *c = realloc(it->completions, (size_t)ncap * sizeof *c);
        if (!c) return err_setf(err, "%s: out of memory", s->path);
        it->completions = c;
        *cap = ncap;
    }
    store_completion_t *c = &it->completions[it->k];
    memset(c, 0, sizeof *c);
    it->k++; /* counted now, so release frees what was copied so far */
    c->id = sqlite3_column_int64(st, 0);
    if (!(c->text = column_dup(s, st, 1, &c->len, err)) ||
        !(c->model = column_dup(s, st, 2, NULL, err)) ||
        !(c->settings = column_dup(s, st, 3, NULL, err)))
        return -1;
    return 0;
}

/* Fills it (zeroed first) with prompt pid and its completions; on failure it is released. */
static int item_load(store_t *s, int64_t pid, store_item_t *it, err_t *err) {
    memset(it, 0, sizeof *it);
    sqlite3_stmt *st = stmt(s, ST_PROMPT_GET, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, pid);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) it->text = column_dup(s, st, 0, &it->len, err);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return err_setf(err, "%s: no prompt %lld", s->path, (long long)pid);
    if (rc != SQLITE_ROW) return db_fail(s, stmt_table[ST_PROMPT_GET].what, err);
    if (!it->text) return -1;
    it->id = pid;
    if (!(st = stmt(s, ST_COMPS_OF, err))) goto fail;
    sqlite3_bind_int64(st, 1, pid);
    int cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (completion_read(s, st, it, &cap, err)) break;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) goto fail;
    if (rc != SQLITE_DONE) {
        db_fail(s, stmt_table[ST_COMPS_OF].what, err);
        goto fail;
    }
    return 0;
fail:
    store_item_release(it);
    return -1;
}

/* Reads the next row of ST_RANKINGS_OF into a new last element of it->rankings. */
static int ranking_read(store_t *s, sqlite3_stmt *st, store_item_t *it, int *cap, err_t *err) {
    if (it->n_rankings == *cap) {
        int ncap = *cap ? 2 * *cap : 4;
        store_ranking_t *r = realloc(it->rankings, (size_t)ncap * sizeof *r);
        if (!r) return err_setf(err, "%s: out of memory", s->path);
        it->rankings = r;
        *cap = ncap;
    }
    store_ranking_t *r = &it->rankings[it->n_rankings++];
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->labeler_id = sqlite3_column_int64(st, 1);
    r->created_ms = sqlite3_column_int64(st, 3);
    r->duration_ms = sqlite3_column_int64(st, 4);
    size_t k = (size_t)(it->k > 0 ? it->k : 1);
    r->labeler = column_dup(s, st, 2, NULL, err);
    r->rank = calloc(k, sizeof *r->rank);
    r->rating = calloc(k, sizeof *r->rating);
    r->flags = calloc(k, sizeof *r->flags);
    if (!r->labeler || !r->rank || !r->rating || !r->flags)
        return err_setf(err, "%s: out of memory", s->path);
    return 0;
}

/* Fills one ranking's rank/rating/flags arrays from its ranks rows. */
static int ranks_read(store_t *s, const store_item_t *it, store_ranking_t *r, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RANKS_OF, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, r->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cid = sqlite3_column_int64(st, 0);
        int j = 0;
        while (j < it->k && it->completions[j].id != cid) j++;
        if (j == it->k) { /* the foreign key forbids it; a file written without it may not */
            sqlite3_reset(st);
            return err_setf(err, "%s: ranking %lld: completion %lld is not prompt %lld's", s->path,
                            (long long)r->id, (long long)cid, (long long)it->id);
        }
        r->rank[j] = sqlite3_column_int(st, 1);
        r->rating[j] = sqlite3_column_int(st, 2); /* NULL reads as 0 = not rated */
        r->flags[j] = (sqlite3_column_int(st, 3) ? STORE_FLAG_FAILS_INSTRUCTION : 0) |
                      (sqlite3_column_int(st, 4) ? STORE_FLAG_HARMFUL : 0) |
                      (sqlite3_column_int(st, 5) ? STORE_FLAG_MADE_UP : 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_RANKS_OF].what, err);
    return 0;
}

/* Adds the rankings of it's prompt (it holds the prompt and completions). */
static int rankings_load(store_t *s, store_item_t *it, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RANKINGS_OF, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, it->id);
    int rc, cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (ranking_read(s, st, it, &cap, err)) break;
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return -1;
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_RANKINGS_OF].what, err);
    for (int i = 0; i < it->n_rankings; i++)
        if (ranks_read(s, it, &it->rankings[i], err)) return -1;
    return 0;
}

/* ---- labeling ------------------------------------------------------------------------------ */

/* Binds ?1 = a, ?2 = b, ?3 = c on statement which and runs it. */
static int run3(store_t *s, int which, int64_t a, int64_t b, int64_t c, err_t *err) {
    sqlite3_stmt *st = stmt(s, which, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_int64(st, 2, b);
    sqlite3_bind_int64(st, 3, c);
    return run(s, which, err);
}

/* Inside the transaction: the labeler's own lease (renewed), else a new one; 1, 0 or -1. */
static int lease_in(store_t *s, int64_t lid, int64_t *pid, err_t *err) {
    const int64_t t = now(s);
    if (run3(s, ST_LEASE_EXPIRE, t, 0, 0, err)) return -1;
    if (!stmt(s, ST_LEASE_MINE, err)) return -1;
    sqlite3_bind_int64(s->stmt[ST_LEASE_MINE], 1, lid);
    int rc = one_int(s, ST_LEASE_MINE, pid, err);
    if (rc < 0) return -1;
    if (rc == 1) return run3(s, ST_LEASE_RENEW, lid, t + s->lease_ms, 0, err) ? -1 : 1;
    if (!stmt(s, ST_LEASE_PICK, err)) return -1;
    sqlite3_bind_int64(s->stmt[ST_LEASE_PICK], 1, lid);
    sqlite3_bind_int64(s->stmt[ST_LEASE_PICK], 2, s->overlap_threshold);
    rc = one_int(s, ST_LEASE_PICK, pid, err);
    if (rc <= 0) return rc;
    sqlite3_stmt *st = stmt(s, ST_LEASE_ADD, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, *pid);
    sqlite3_bind_int64(st, 2, lid);
    sqlite3_bind_int64(st, 3, t + s->lease_ms);
    rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return err_setf(err, "%s: no labeler %lld", s->path, (long long)lid);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_LEASE_ADD].what, err);
    return 1;
}

int store_lease_next(store_t *s, int64_t labeler_id, store_item_t *item, err_t *err) {
    memset(item, 0, sizeof *item);
    int64_t pid = 0;
    if (tx_begin(s, err)) return -1;
    int rc = lease_in(s, labeler_id, &pid, err);
    if (rc == 1 && item_load(s, pid, item, err)) rc = -1; /* read in the same snapshot */
    rc = tx_end(s, rc, err);
    if (rc != 1) store_item_release(item);
    return rc;
}

/* Checks marks before any write, so a bad call is refused with a message naming the mark. */
static int marks_check(const store_t *s, int64_t pid, const store_mark_t *m, int n,
                       int64_t duration_ms, err_t *err) {
    if (n < 2 || n > STORE_K_MAX)
        return err_setf(err, "%s: ranking of prompt %lld: %d completions, expected 2 to %d",
                        s->path, (long long)pid, n, STORE_K_MAX);
    if (duration_ms < 0)
        return err_setf(err, "%s: ranking of prompt %lld: negative duration %lld ms", s->path,
                        (long long)pid, (long long)duration_ms);
    for (int i = 0; i < n; i++) {
        const char *bad = m[i].rank < 1 || m[i].rank > n          ? "rank"
                          : m[i].rating < 0 || m[i].rating > 7    ? "rating"
                          : (m[i].flags & ~STORE_FLAGS_ALL) != 0u ? "flags"
                                                                  : NULL;
        if (bad)
            return err_setf(err,
                            "%s: ranking of prompt %lld: completion %lld: %s out of range "
                            "(rank %d of 1..%d, rating %d of 0..7, flags 0x%x)",
                            s->path, (long long)pid, (long long)m[i].completion_id, bad, m[i].rank,
                            n, m[i].rating, m[i].flags);
    }
    return 0;
}

/* The labeling path's checks: the ranking covers the whole prompt, and the prompt has room
 * for this labeler (others' rankings and live leases below its capacity). */
static int labeling_check(store_t *s, int64_t lid, int64_t pid, int n, err_t *err) {
    int64_t k = 0, used = 0, hash = 0;
    if (!stmt(s, ST_COMP_COUNT, err)) return -1;
    sqlite3_bind_int64(s->stmt[ST_COMP_COUNT], 1, pid);
    if (one_int(s, ST_COMP_COUNT, &k, err) < 0) return -1;
    if (k == 0) return err_setf(err, "%s: no prompt %lld", s->path, (long long)pid);
    if (k != n)
        return err_setf(err, "%s: ranking of prompt %lld covers %d of its %lld completions",
                        s->path, (long long)pid, n, (long long)k);
    if (!stmt(s, ST_PROMPT_GET, err)) return -1;
    sqlite3_bind_int64(s->stmt[ST_PROMPT_GET], 1, pid);
    sqlite3_stmt *st = s->stmt[ST_PROMPT_GET];
    if (sqlite3_step(st) == SQLITE_ROW) hash = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    if (!stmt(s, ST_CAPACITY_USED, err)) return -1;
    st = s->stmt[ST_CAPACITY_USED];
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, lid);
    sqlite3_bind_int64(st, 3, now(s));
    if (one_int(s, ST_CAPACITY_USED, &used, err) < 0) return -1;
    if (used >= prompt_capacity(s, hash)) {
        err_setf(err, "%s: prompt %lld went to another labeler after this lease expired", s->path,
                 (long long)pid);
        return STORE_ETAKEN;
    }
    return 0;
}

static int mark_write(store_t *s, int64_t rid, int64_t pid, const store_mark_t *m, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RANK_ADD, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, rid);
    sqlite3_bind_int64(st, 2, pid);
    sqlite3_bind_int64(st, 3, m->completion_id);
    sqlite3_bind_int(st, 4, m->rank);
    if (m->rating > 0) sqlite3_bind_int(st, 5, m->rating); /* else NULL: not rated */
    sqlite3_bind_int(st, 6, (m->flags & STORE_FLAG_FAILS_INSTRUCTION) != 0);
    sqlite3_bind_int(st, 7, (m->flags & STORE_FLAG_HARMFUL) != 0);
    sqlite3_bind_int(st, 8, (m->flags & STORE_FLAG_MADE_UP) != 0);
    int rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return err_setf(err, "%s: ranking of prompt %lld: completion %lld is not one of its own",
                        s->path, (long long)pid, (long long)m->completion_id);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return err_setf(err, "%s: ranking of prompt %lld: completion %lld appears twice", s->path,
                        (long long)pid, (long long)m->completion_id);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_RANK_ADD].what, err);
    return 0;
}

static int ranking_in(store_t *s, int64_t lid, int64_t pid, const store_mark_t *m, int n,
                      int64_t created_ms, int64_t duration_ms, bool labeling, int64_t *rid,
                      err_t *err) {
    if (labeling) {
        int rc = labeling_check(s, lid, pid, n, err);
        if (rc) return rc;
    }
    sqlite3_stmt *st = stmt(s, ST_RANKING_ADD, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, lid);
    sqlite3_bind_int64(st, 3, created_ms ? created_ms : now(s));
    sqlite3_bind_int64(st, 4, duration_ms);
    int rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return err_setf(err, "%s: labeler %lld already ranked prompt %lld", s->path, (long long)lid,
                        (long long)pid);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return err_setf(err, "%s: no prompt %lld or no labeler %lld", s->path, (long long)pid,
                        (long long)lid);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_RANKING_ADD].what, err);
    *rid = sqlite3_last_insert_rowid(s->db);
    for (int i = 0; i < n; i++)
        if (mark_write(s, *rid, pid, &m[i], err)) return -1;
    return run3(s, ST_LEASE_DROP, lid, pid, 0, err);
}

static int ranking_write(store_t *s, int64_t lid, int64_t pid, const store_mark_t *m, int n,
                         int64_t created_ms, int64_t duration_ms, bool labeling,
                         int64_t *ranking_id, err_t *err) {
    if (marks_check(s, pid, m, n, duration_ms, err)) return -1;
    int64_t rid = 0;
    if (tx_begin(s, err)) return -1;
    int rc = ranking_in(s, lid, pid, m, n, created_ms, duration_ms, labeling, &rid, err);
    rc = tx_end(s, rc, err);
    if (rc == 0 && ranking_id) *ranking_id = rid;
    return rc;
}

int store_ranking_save(store_t *s, int64_t labeler_id, int64_t prompt_id, const store_mark_t *marks,
                       int n, int64_t duration_ms, int64_t *ranking_id, err_t *err) {
    return ranking_write(s, labeler_id, prompt_id, marks, n, 0, duration_ms, true, ranking_id, err);
}

int store_ranking_add(store_t *s, int64_t labeler_id, int64_t prompt_id, const store_mark_t *marks,
                      int n, int64_t created_ms, int64_t duration_ms, int64_t *ranking_id,
                      err_t *err) {
    return ranking_write(s, labeler_id, prompt_id, marks, n, created_ms, duration_ms, false,
                         ranking_id, err);
}

static int skip_in(store_t *s, int64_t lid, int64_t pid, const char *reason, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_SKIP_ADD, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, lid);
    sqlite3_bind_int64(st, 3, now(s));
    sqlite3_bind_text(st, 4, reason, -1, SQLITE_STATIC);
    int rc = step_done(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return err_setf(err, "%s: labeler %lld already skipped prompt %lld", s->path,
                        (long long)lid, (long long)pid);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return err_setf(err, "%s: no prompt %lld or no labeler %lld", s->path, (long long)pid,
                        (long long)lid);
    if (rc != SQLITE_DONE) return db_fail(s, stmt_table[ST_SKIP_ADD].what, err);
    return run3(s, ST_LEASE_DROP, lid, pid, 0, err);
}

int store_skip(store_t *s, int64_t labeler_id, int64_t prompt_id, const char *reason, err_t *err) {
    if (!reason || !reason[0])
        return err_setf(err, "%s: skipping prompt %lld needs a reason", s->path,
                        (long long)prompt_id);
    if (tx_begin(s, err)) return -1;
    return tx_end(s, skip_in(s, labeler_id, prompt_id, reason, err), err);
}

static int undo_in(store_t *s, int64_t lid, int64_t *pid, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RANKING_LAST, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, lid);
    int rc = sqlite3_step(st);
    int64_t rid = 0;
    if (rc == SQLITE_ROW) {
        rid = sqlite3_column_int64(st, 0);
        *pid = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return db_fail(s, stmt_table[ST_RANKING_LAST].what, err);
    if (run3(s, ST_RANKING_DEL, rid, 0, 0, err)) return -1; /* ranks go with it (CASCADE) */
    if (run3(s, ST_LEASE_DROP_ALL, lid, 0, 0, err)) return -1;
    return run3(s, ST_LEASE_ADD, *pid, lid, now(s) + s->lease_ms, err) ? -1 : 1;
}

int store_undo(store_t *s, int64_t labeler_id, int64_t *prompt_id, err_t *err) {
    int64_t pid = 0;
    if (tx_begin(s, err)) return -1;
    int rc = tx_end(s, undo_in(s, labeler_id, &pid, err), err);
    if (rc == 1 && prompt_id) *prompt_id = pid;
    return rc;
}

int store_progress(store_t *s, int64_t labeler_id, store_progress_t *out, err_t *err) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = stmt(s, ST_PROGRESS, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, labeler_id);
    sqlite3_bind_int64(st, 2, s->overlap_threshold);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->ranked = sqlite3_column_int64(st, 0);
        out->skipped = sqlite3_column_int64(st, 1);
        out->remaining = sqlite3_column_int64(st, 2);
        out->prompts = sqlite3_column_int64(st, 3);
        out->rankings = sqlite3_column_int64(st, 4);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) return db_fail(s, stmt_table[ST_PROGRESS].what, err);
    if (labeler_id == 0) out->remaining = 0;
    return 0;
}

/* ---- reading back -------------------------------------------------------------------------- */

static bool in_split(const store_query_t *q, const char *text, size_t len) {
    if (q->split == STORE_SPLIT_ALL) return true;
    return store_is_val(text, len, q->val_fraction) == (q->split == STORE_SPLIT_VAL);
}

/* Loads each listed prompt and calls fn; the statement of the outer loop stays active. */
static int foreach_in(store_t *s, const store_query_t *q,
                      int (*fn)(const store_item_t *item, void *ctx), void *ctx, err_t *err) {
    sqlite3_stmt *st = stmt(s, ST_RANKED_PROMPTS, err);
    if (!st) return -1;
    sqlite3_bind_int(st, 1, q->min_labelers > 1 ? q->min_labelers : 1);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = sqlite3_column_blob(st, 1);
        if (!in_split(q, text, (size_t)sqlite3_column_bytes(st, 1))) continue;
        store_item_t it;
        if (item_load(s, sqlite3_column_int64(st, 0), &it, err)) {
            out = -1;
            break;
        }
        out = rankings_load(s, &it, err) ? -1 : fn(&it, ctx);
        store_item_release(&it);
        if (out) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = db_fail(s, stmt_table[ST_RANKED_PROMPTS].what, err);
    sqlite3_reset(st);
    return out;
}

int store_foreach_ranked(store_t *s, const store_query_t *q,
                         int (*fn)(const store_item_t *item, void *ctx), void *ctx, err_t *err) {
    const store_query_t all = {0};
    if (!s->bulk && exec(s, "BEGIN", err)) return -1; /* one snapshot for the whole walk */
    int rc = foreach_in(s, q ? q : &all, fn, ctx, err);
    if (!s->bulk) sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL); /* read only: ends it */
    return rc;
}
