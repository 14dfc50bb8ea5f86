/* common/store.h: the rankings database (SQLite, schema in schemas/rankings.sql, DESIGN.md §5).
 * Prompts with the K completions a model sampled (`sft sample --db`), labelers, their rankings
 * (ties allowed) with ratings and flags, skips, and leases that keep two labelers off one prompt
 * (except an overlap share given to two, to measure agreement). Several processes may use one
 * file at once: WAL, synchronous=FULL (a saved ranking survives power loss), foreign keys on,
 * every write in one BEGIN IMMEDIATE transaction, and waiting writers take turns (a busy handler,
 * store.c), so no SQLITE_BUSY reaches the caller unless one writer holds the file for busy_ms.
 * Owns: the connection (one store_t per thread; pass nothing between threads); a store_item_t
 * it fills is the caller's to release. Fails with -1 (or NULL) and err naming the file:
 * "r.db: schema version 99 is newer than this program's 1". Bad input changes nothing: every
 * call is all or nothing. Text from a model is bytes with a length (U+0000 allowed). */
#ifndef RLHF_STORE_H
#define RLHF_STORE_H
#include "err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_VERSION         1     /* PRAGMA user_version this code writes */
#define STORE_K_MAX           64    /* most completions one prompt may get from one run */
#define STORE_OVERLAP_DEFAULT 0.10  /* share of prompts given to two labelers; paper silent */
#define STORE_LEASE_DEFAULT   1800  /* seconds a leased prompt stays with an idle labeler */
#define STORE_BUSY_DEFAULT    60000 /* ms to wait for another writer before failing */
#define STORE_ETAKEN          (-2)  /* store_ranking_save: the lease expired and others took it */

typedef struct store store_t;

typedef struct {
    bool create;           /* create the file (schema version 1) when it does not exist */
    double overlap;        /* share of overlap prompts, recorded on first open; < 0 = default.
                            * A database that already records one keeps it (store_overlap). */
    int64_t lease_seconds; /* lease length; 0 = STORE_LEASE_DEFAULT */
    int64_t busy_ms;       /* longest wait for another writer; 0 = STORE_BUSY_DEFAULT */
    int64_t (*now_ms)(void *ctx); /* clock (Unix ms) for leases and timestamps; NULL = real */
    void *now_ctx;                /* passed to now_ms */
} store_options_t;

/* Options with every default (no create, default overlap, lease, busy timeout, real clock). */
store_options_t store_options_default(void);

/* Opens (or, with opts->create, creates) the rankings database at path and migrates an older
 * schema version forward in one transaction. opts NULL = defaults. Refused, changing nothing
 * in the file: a missing file without create ("r.db: no such file"), a file that is not SQLite,
 * a SQLite file that is not a rankings database (other tables, or another application_id),
 * a newer schema version. Returns the store (close with store_close) or NULL with err set. */
store_t *store_open(const char *path, const store_options_t *opts, err_t *err);

/* Closes the database (rolling back an open store_begin) and NULLs *s; accepts NULL. */
void store_close(store_t **s);

/* The overlap share recorded in the database (what every labeler uses). */
double store_overlap(const store_t *s);

/* ---- Bulk writes. Between store_begin and store_commit every write call below joins one
 * transaction instead of opening its own (a failed call still undoes its own part, so the
 * caller may go on or roll everything back): an import is all or nothing. */
int store_begin(store_t *s, err_t *err);
int store_commit(store_t *s, err_t *err);
/* Undoes everything since store_begin; a no-op without one. */
void store_rollback(store_t *s);

/* ---- Prompts and completions (`sft sample --db`, `reward import`). */

/* Adds a prompt (prompt_len bytes) with its k completions (texts[i], lens[i] bytes;
 * 2 <= k <= STORE_K_MAX) written by model (the model directory, or "import:FILE") with
 * sampling settings (a JSON object, e.g. "{\"temperature\":1,\"k\":4}"), in one transaction.
 * Idempotent: a prompt already holding completions from the same model and settings gets
 * nothing new. Prompts with the same text share a row, so a second model's completions join
 * the first's. Returns 1 when added, 0 when already there, -1 with err set. prompt_id and
 * completion_ids ([k], the run's completions in input order) may be NULL. */
int store_prompt_add(store_t *s, const char *prompt, size_t prompt_len, const char *const *texts,
                     const size_t *lens, int k, const char *model, const char *settings,
                     int64_t *prompt_id, int64_t *completion_ids, err_t *err);

/* ---- Labelers. */

/* The id of the labeler called name (1-100 bytes), registering it when create is true.
 * Returns 0, or -1 with err set ("no labeler \"ann\"" when absent and !create). */
int store_labeler(store_t *s, const char *name, bool create, int64_t *labeler_id, err_t *err);

/* ---- What a labeler sees and what a labeled prompt reads back as. */

#define STORE_FLAG_FAILS_INSTRUCTION 1u /* InstructGPT's metadata: fails to follow the task */
#define STORE_FLAG_HARMFUL           2u /* harmful or inappropriate */
#define STORE_FLAG_MADE_UP           4u /* makes up facts (hallucination) */
#define STORE_FLAGS_ALL              7u

typedef struct {
    int64_t id;     /* completions.id */
    char *text;     /* len bytes plus a terminating NUL (text may hold NULs of its own) */
    size_t len;     /* bytes of text */
    char *model;    /* model directory that wrote it, or "import:FILE" */
    char *settings; /* sampling settings, a JSON object */
} store_completion_t;

/* One labeler's ranking of a prompt; arrays are indexed like the prompt's completions. */
typedef struct {
    int64_t id;          /* rankings.id */
    int64_t labeler_id;  /* labelers.id */
    char *labeler;       /* the labeler's name */
    int64_t created_ms;  /* when it was saved */
    int64_t duration_ms; /* how long the labeler took */
    int *rank;           /* [k] 1 = best, ties share; 0 = not in this ranking (added later) */
    int *rating;         /* [k] 1..7, 0 = not rated */
    uint32_t *flags;     /* [k] STORE_FLAG_* bits */
} store_ranking_t;

/* A prompt with all its completions (ordered by id) and, when read back for training, export
 * or agreement, its rankings (ordered by id). Filled by the store, released by the caller. */
typedef struct {
    int64_t id;                      /* prompts.id */
    char *text;                      /* len bytes plus a terminating NUL */
    size_t len;                      /* bytes of text */
    int k;                           /* number of completions */
    store_completion_t *completions; /* [k] */
    int n_rankings;                  /* 0 in a lease */
    store_ranking_t *rankings;       /* [n_rankings] */
} store_item_t;

/* Frees what the store put in item and zeroes it; accepts a zeroed item. */
void store_item_release(store_item_t *item);

/* ---- Labeling (`reward label`, a person's terminal and --simulated alike). */

/* Leases the next prompt for the labeler: its own unexpired lease first (resuming where it
 * left off, lease renewed), else the first prompt (by id) it has neither ranked nor skipped
 * that still needs a labeler: fewer rankings plus others' live leases than its capacity (2 for
 * an overlap prompt, else 1). Returns 1 with item filled (release it), 0 when no prompt is left
 * for this labeler (item zeroed), -1 with err set. */
int store_lease_next(store_t *s, int64_t labeler_id, store_item_t *item, err_t *err);

/* One completion's marks in a ranking. */
typedef struct {
    int64_t completion_id;
    int rank;       /* 1 = best; tied completions share a rank; at most n */
    int rating;     /* 1..7 overall quality, 0 = not rated */
    uint32_t flags; /* STORE_FLAG_* */
} store_mark_t;

/* Saves the labeler's ranking of prompt_id: marks[n] covers every completion of the prompt
 * once. One transaction, which also releases the labeler's lease. The lease need not be live:
 * a save is refused only when, meanwhile, others filled the prompt's capacity (STORE_ETAKEN,
 * err set). Returns 0 with *ranking_id (may be NULL) set, or -1 with err set and nothing
 * written (a completion of another prompt, a rank out of 1..n, a second ranking by the same
 * labeler, ...). */
int store_ranking_save(store_t *s, int64_t labeler_id, int64_t prompt_id, const store_mark_t *marks,
                       int n, int64_t duration_ms, int64_t *ranking_id, err_t *err);

/* The import variant: no lease or capacity check, marks may cover a subset (>= 2) of the
 * prompt's completions, created_ms as recorded in the file (0 = now). */
int store_ranking_add(store_t *s, int64_t labeler_id, int64_t prompt_id, const store_mark_t *marks,
                      int n, int64_t created_ms, int64_t duration_ms, int64_t *ranking_id,
                      err_t *err);

/* The labeler declines prompt_id for a reason (non-empty text): recorded, lease released, never
 * offered to this labeler again. Returns 0, or -1 with err set. */
int store_skip(store_t *s, int64_t labeler_id, int64_t prompt_id, const char *reason, err_t *err);

/* Undoes the labeler's last saved ranking: deletes it with its ratings and flags and leases its
 * prompt to the labeler again (replacing the lease it held), so store_lease_next returns it.
 * Returns 1 with *prompt_id (may be NULL) set, 0 when the labeler has no ranking, -1 on error. */
int store_undo(store_t *s, int64_t labeler_id, int64_t *prompt_id, err_t *err);

typedef struct {
    int64_t ranked;    /* rankings by this labeler */
    int64_t skipped;   /* skips by this labeler */
    int64_t remaining; /* prompts that still need a ranking and this labeler has not done */
    int64_t prompts;   /* all prompts */
    int64_t rankings;  /* all rankings, by anyone */
} store_progress_t;

/* Counts for the labeler (labeler_id 0: only prompts and rankings). Returns 0 or -1. */
int store_progress(store_t *s, int64_t labeler_id, store_progress_t *out, err_t *err);

/* ---- Reading rankings back (`reward train|eval|export|agreement`). */

typedef enum {
    STORE_SPLIT_ALL = 0, /* every prompt */
    STORE_SPLIT_TRAIN,   /* prompts with !store_is_val(text, val_fraction) */
    STORE_SPLIT_VAL,     /* prompts with store_is_val(text, val_fraction) */
} store_split_t;

typedef struct {
    store_split_t split;
    double val_fraction; /* share of prompts in validation, for TRAIN and VAL */
    int min_labelers;    /* only prompts ranked by at least this many labelers (agreement: 2);
                          * 0 or 1 = every ranked prompt */
} store_query_t;

/* True when the prompt (len bytes) belongs to the validation split at val_fraction: a hash of
 * the text alone (not the id, not the database), so the same prompt lands on the same side in
 * every database and run, and the split grows with the data without moving old prompts. */
bool store_is_val(const char *prompt, size_t len, double val_fraction);

/* Calls fn for every ranked prompt matching q (NULL = all), in prompt id order, with all its
 * completions and rankings, from one consistent snapshot. item is borrowed for the call; fn
 * must not write to the store. fn returns 0 to go on, non-zero to stop (that value is
 * returned). Returns 0 after the last prompt, or -1 with err set. */
int store_foreach_ranked(store_t *s, const store_query_t *q,
                         int (*fn)(const store_item_t *item, void *ctx), void *ctx, err_t *err);

/* 63-bit hash of a prompt's text (FNV-1a, then a mixing step); salt separates its uses. */
uint64_t store_hash(const char *text, size_t len, uint64_t salt);
#endif /* RLHF_STORE_H */
