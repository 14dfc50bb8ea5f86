/* common/fs.h: files that a crash never leaves half written, and the clock. mkdir -p; an atomic
 * write of one file; a set of files in one directory that appear together or not at all (a
 * tokenizer's vocab.json + merges.txt, a model's config.json + model.safetensors, a world's six
 * data files); monotonic and wall-clock time. Below ckpt, tok and cli: it knows no format.
 * Owns: an fs_set_t and its open streams (until commit or abort). No global state; a set is
 * used by one thread. Fails: -1 / NULL with err naming the path and strerror. Linux/POSIX:
 * rename(2) within one directory is atomic, fsync of a directory makes its renames durable. */
#ifndef RLHF_FS_H
#define RLHF_FS_H
#include "err.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Creates path and every missing parent (mode 0777 less the umask), like `mkdir -p`. An
 * existing directory is fine; -1 with err set when a component is a file ("a/f: not a
 * directory") or cannot be created. */
int fs_mkdirs(const char *path, err_t *err);

/* Writes len bytes to path atomically: PATH.tmp, fsync, rename over path, fsync the directory.
 * Readers see the old content or the new, never a part. On failure the temporary is removed
 * and the old file is intact. The directory must exist. First finishes the renames of a set
 * that a crash left committed in that directory, so the older set cannot later overwrite this
 * newer file. */
int fs_write_atomic(const char *path, const void *data, size_t len, err_t *err);

/* ---- Sets of files ---------------------------------------------------------------------------
 * Several renames are not atomic, so a set is a roll-forward journal whose commit record is the
 * name of a directory:
 *   1. fs_set_begin makes a private stage DIR/.fs-stage.PID.XXXXXX; each file of the set is
 *      written there (fs_set_add / _write / _copy), then flushed and fsynced by commit.
 *   2. Commit point: one rename of the stage to DIR/.fs-commit.PID.XXXXXX, then fsync DIR.
 *      Before it, nothing in DIR changed; after it, the set is decided.
 *   3. Roll forward: each file is renamed from the commit directory over DIR/NAME, DIR is
 *      fsynced, the empty commit directory removed. A crash here leaves the rest of the set in
 *      the commit directory; fs_set_recover (run by the next fs_set_begin or fs_write_atomic
 *      in DIR) finishes the renames.
 * Readers that must never mix two sets look names up with fs_resolve: while a commit directory
 * holds NAME, that copy is the current one (a reader racing a live roll forward may see the
 * file move between fs_resolve and its open, and should resolve again on ENOENT; the readers
 * here only guard against crashes). A crash before the commit point leaves only a stage
 * directory, which readers ignore and the next fs_set_begin removes once its process is gone.
 * Files in DIR outside the set are untouched. One set writer per directory at a time: two sets
 * of the same names committing at the same moment are not ordered against each other. */
typedef struct fs_set fs_set_t;

/* Starts a set in dir (created like fs_mkdirs), after fs_set_recover(dir). Caller ends it with
 * fs_set_commit or fs_set_abort. NULL with err set. */
fs_set_t *fs_set_begin(const char *dir, err_t *err);

/* Adds the file dir/name to the set and returns a stream to write its bytes with stdio
 * (borrowed: do not close it; it is valid until commit or abort). name is one path component
 * (no '/', not "." or "..", not starting with ".fs-"), at most once per set. Write errors on
 * the stream are reported by fs_set_commit. NULL with err set. */
FILE *fs_set_add(fs_set_t *set, const char *name, err_t *err);

/* fs_set_add, then writes data[0..len) to it. -1 with err set ("d/vocab.json: write failed:
 * File too large"); the set stays usable (abort it). */
int fs_set_write(fs_set_t *set, const char *name, const void *data, size_t len, err_t *err);

/* fs_set_add, then copies the file src_path (looked up with fs_resolve) into it. */
int fs_set_copy(fs_set_t *set, const char *name, const char *src_path, err_t *err);

/* Makes every file of the set appear in dir together (steps 1-3 above) and frees the set,
 * NULLing *set, whatever the outcome. Before the commit point a failure (a write error, a name
 * that is a directory in dir) removes the stage: dir is as it was. After it, -1 means the set
 * is decided but its renames did not all finish (err says so); fs_resolve already shows it
 * whole and fs_set_recover completes it. An empty set commits nothing. */
int fs_set_commit(fs_set_t **set, err_t *err);

/* Discards the set: closes its streams, removes the stage, frees it and NULLs *set. dir is as
 * it was before fs_set_begin. Accepts NULL and *set == NULL. */
void fs_set_abort(fs_set_t **set);

/* Finishes every set a crash left committed in dir (renames its files into place) and removes
 * the stages of processes that no longer exist. A missing dir is fine (nothing to do). */
int fs_set_recover(const char *dir, err_t *err);

/* The path a reader should open for path "DIR/NAME": a copy of NAME in a commit directory of
 * DIR when an interrupted set holds one (it is newer than DIR/NAME), else path itself. Writes
 * into out[0..cap); -1 with err set when it does not fit. Reads only. */
int fs_resolve(const char *path, char *out, size_t cap, err_t *err);

/* ---- Clock */

/* Seconds on CLOCK_MONOTONIC (never jumps with the wall clock): for durations and rates. */
double fs_monotonic_s(void);

/* Wall-clock time in whole seconds since the Unix epoch (UTC): for timestamps people read. */
int64_t fs_wall_time(void);
#endif /* RLHF_FS_H */
