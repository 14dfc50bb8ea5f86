/* common/fs.c: mkdir -p, atomic files, sets of files (a roll-forward journal whose commit
 * record is a directory's name: see fs.h) and the clock. Every failure before a set's commit
 * point removes what it created; every step after it can be redone, so recovery after a crash
 * is "do the remaining renames". */
#include "fs.h" /* own header first: proves it compiles on its own */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { PATH_CAP = 4096 };
#define STAGE_PREFIX  ".fs-stage."  /* + PID.XXXXXX: a set being written (uncommitted) */
#define COMMIT_PREFIX ".fs-commit." /* + PID.XXXXXX: a committed set still being renamed */

/* ---- Paths ------------------------------------------------------------------------------- */

static int join(char *out, const char *dir, const char *name, err_t *err) {
    if (snprintf(out, PATH_CAP, "%s/%s", dir, name) >= PATH_CAP)
        return err_setf(err, "%s/%s: path too long", dir, name);
    return 0;
}

/* The directory part of path ("." when it has none, "/" for "/x"); path fits PATH_CAP. */
static void dir_of(char *out, const char *path) {
    snprintf(out, PATH_CAP, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        strcpy(out, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

static bool has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int fsync_dir(const char *dir, err_t *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_setf(err, "%s: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 ? 0 : err_setf(err, "%s: fsync failed: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

int fs_mkdirs(const char *path, err_t *err) {
    char p[PATH_CAP];
    if (!path[0]) return err_setf(err, "empty directory name");
    if (snprintf(p, sizeof p, "%s", path) >= PATH_CAP)
        return err_setf(err, "%s: path too long", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        const char c = *s;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0777) && errno != EEXIST)
            return err_setf(err, "%s: cannot create directory: %s", p, strerror(errno));
        if (stat(p, &sb) || !S_ISDIR(sb.st_mode)) return err_setf(err, "%s: not a directory", p);
        *s = c;
        if (!c) break;
    }
    return 0;
}

/* ---- One file ---------------------------------------------------------------------------- */

static int recover(const char *dir, bool remove_stages, err_t *err);

static int write_all(int fd, const void *data, size_t len, const char *path, err_t *err) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return err_setf(err, "%s: write failed: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, err_t *err) {
    char tmp[PATH_CAP], dir[PATH_CAP];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= PATH_CAP)
        return err_setf(err, "%s: path too long", path);
    dir_of(dir, path);
    if (recover(dir, false, err)) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return err_setf(err, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = write_all(fd, data, len, tmp, err);
    if (!rc && fsync(fd)) rc = err_setf(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(fd) && !rc) rc = err_setf(err, "%s: write failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path))
        rc = err_setf(err, "%s: rename failed: %s", path, strerror(errno));
    if (rc) {
        unlink(tmp);
        return -1;
    }
    return fsync_dir(dir, err);
}

/* ---- Sets -------------------------------------------------------------------------------- */

typedef struct {
    char *name; /* file name in dir and in the stage */
    FILE *f;    /* open while the set is written; NULL once flushed and closed */
} entry_t;

struct fs_set {
    char dir[PATH_CAP];   /* where the files appear */
    char stage[PATH_CAP]; /* dir/.fs-stage.PID.XXXXXX, created by mkdtemp */
    entry_t *files;       /* [n] in the order added */
    int n, cap;
};

fs_set_t *fs_set_begin(const char *dir, err_t *err) {
    if (fs_mkdirs(dir, err) || fs_set_recover(dir, err)) return NULL;
    fs_set_t *s = calloc(1, sizeof *s);
    if (!s) {
        err_setf(err, "%s: out of memory", dir);
        return NULL;
    }
    if (snprintf(s->dir, PATH_CAP, "%s", dir) >= PATH_CAP ||
        snprintf(s->stage, PATH_CAP, "%s/" STAGE_PREFIX "%jd.XXXXXX", dir, (intmax_t)getpid()) >=
            PATH_CAP) {
        err_setf(err, "%s: path too long", dir);
        free(s);
        return NULL;
    }
    if (!mkdtemp(s->stage)) {
        err_setf(err, "%s: cannot create a staging directory: %s", dir, strerror(errno));
        free(s);
        return NULL;
    }
    return s;
}

static bool plain_name(const char *name) {
    return name[0] && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..") &&
           !has_prefix(name, ".fs-");
}

FILE *fs_set_add(fs_set_t *s, const char *name, err_t *err) {
    char path[PATH_CAP];
    if (!plain_name(name)) {
        err_setf(err, "%s: \"%s\" is not a plain file name", s->dir, name);
        return NULL;
    }
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->files[i].name, name)) {
            err_setf(err, "%s/%s: added to the set twice", s->dir, name);
            return NULL;
        }
    if (join(path, s->stage, name, err)) return NULL;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        entry_t *e = realloc(s->files, (size_t)cap * sizeof *e);
        if (!e) {
            err_setf(err, "%s/%s: out of memory", s->dir, name);
            return NULL;
        }
        s->files = e;
        s->cap = cap;
    }
    entry_t *e = &s->files[s->n];
    if (!(e->name = strdup(name))) {
        err_setf(err, "%s/%s: out of memory", s->dir, name);
        return NULL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 || !(e->f = fdopen(fd, "wb"))) {
        err_setf(err, "%s/%s: cannot create: %s", s->dir, name, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(path);
        free(e->name);
        return NULL;
    }
    s->n++;
    return e->f;
}

int fs_set_write(fs_set_t *s, const char *name, const void *data, size_t len, err_t *err) {
    FILE *f = fs_set_add(s, name, err);
    if (!f) return -1;
    if (len && fwrite(data, 1, len, f) != len)
        return err_setf(err, "%s/%s: write failed: %s", s->dir, name, strerror(errno));
    return 0;
}

int fs_set_copy(fs_set_t *s, const char *name, const char *src_path, err_t *err) {
    char src[PATH_CAP];
    if (fs_resolve(src_path, src, sizeof src, err)) return -1;
    FILE *in = fopen(src, "rb");
    if (!in) return err_setf(err, "%s: %s", src_path, strerror(errno));
    FILE *out = fs_set_add(s, name, err);
    int rc = out ? 0 : -1;
    char buf[1 << 16];
    size_t n;
    while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = err_setf(err, "%s/%s: write failed: %s", s->dir, name, strerror(errno));
    if (!rc && ferror(in)) rc = err_setf(err, "%s: read failed", src_path);
    fclose(in);
    return rc;
}

/* Flushes, fsyncs and closes every stream: the data is on disk under the stage. */
static int finish_files(fs_set_t *s, err_t *err) {
    int rc = 0;
    for (int i = 0; i < s->n; i++) {
        FILE *f = s->files[i].f;
        s->files[i].f = NULL;
        const bool failed_before = ferror(f) != 0;
        int bad = failed_before || fflush(f) != 0 || fsync(fileno(f)) != 0;
        int e = errno;
        if (fclose(f) != 0 && !bad) bad = 1, e = errno;
        if (bad && failed_before)
            rc = err_setf(err, "%s/%s: write failed", s->dir, s->files[i].name);
        else if (bad)
            rc = err_setf(err, "%s/%s: write failed: %s", s->dir, s->files[i].name, strerror(e));
    }
    return rc;
}

/* A name the roll forward could not rename over: an existing directory. Checked before the
 * commit point, so a set never stops half applied for a reason known in advance. */
static int check_targets(const fs_set_t *s, err_t *err) {
    for (int i = 0; i < s->n; i++) {
        char path[PATH_CAP];
        struct stat sb;
        if (join(path, s->dir, s->files[i].name, err)) return -1;
        if (!lstat(path, &sb) && S_ISDIR(sb.st_mode))
            return err_setf(err, "%s: is a directory", path);
    }
    return 0;
}

/* Step 3: renames every file of the committed set `commit` (a directory in dir) into dir, then
 * removes it. Files already renamed (a second run after a crash) are simply absent. */
static int roll_forward(const char *dir, const char *commit, err_t *err) {
    DIR *d = opendir(commit);
    if (!d) return errno == ENOENT ? 0 : err_setf(err, "%s: %s", commit, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        char from[PATH_CAP], to[PATH_CAP];
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (join(from, commit, de->d_name, err) || join(to, dir, de->d_name, err))
            rc = -1;
        else if (rename(from, to) && errno != ENOENT)
            rc = err_setf(err, "%s: rename failed: %s", to, strerror(errno));
    }
    closedir(d);
    if (rc || fsync_dir(dir, err)) return -1;
    /* the empty directory need not be durable: recovery removes one that reappears */
    if (rmdir(commit) && errno != ENOENT) return err_setf(err, "%s: %s", commit, strerror(errno));
    return 0;
}

/* Removes a stage directory and the files in it (a stage holds no subdirectories). */
static void remove_stage(const char *stage) {
    DIR *d = opendir(stage);
    if (d) {
        struct dirent *de;
        char path[PATH_CAP];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                !join(path, stage, de->d_name, NULL))
                unlink(path);
        closedir(d);
    }
    rmdir(stage);
}

static void free_set(fs_set_t *s) {
    for (int i = 0; i < s->n; i++) {
        if (s->files[i].f) fclose(s->files[i].f);
        free(s->files[i].name);
    }
    free(s->files);
    free(s);
}

int fs_set_commit(fs_set_t **set, err_t *err) {
    fs_set_t *s = *set;
    *set = NULL;
    char commit[PATH_CAP];
    const char *suffix = strrchr(s->stage, '/') + 1 + strlen(STAGE_PREFIX);
    int rc = finish_files(s, err);
    if (!rc) rc = check_targets(s, err);
    if (!rc) rc = fsync_dir(s->stage, err);
    if (!rc &&
        snprintf(commit, sizeof commit, "%s/" COMMIT_PREFIX "%s", s->dir, suffix) >= PATH_CAP)
        rc = err_setf(err, "%s: path too long", s->dir);
    if (!rc && rename(s->stage, commit)) /* the commit point */
        rc = err_setf(err, "%s: cannot commit: %s", s->dir, strerror(errno));
    if (rc) {
        remove_stage(s->stage);
        free_set(s);
        return -1;
    }
    char dir[PATH_CAP];
    memcpy(dir, s->dir, sizeof dir);
    free_set(s);
    /* decided: make the commit durable, then put the files in place */
    rc = fsync_dir(dir, err);
    if (roll_forward(dir, commit, err) || rc)
        return err_prefixf(err, "%s: set committed but not all of it in place yet: ", dir);
    return 0;
}

void fs_set_abort(fs_set_t **set) {
    if (!set || !*set) return;
    fs_set_t *s = *set;
    *set = NULL;
    for (int i = 0; i < s->n; i++) {
        if (s->files[i].f) fclose(s->files[i].f);
        s->files[i].f = NULL;
    }
    remove_stage(s->stage);
    free_set(s);
}

/* True when stage name ".fs-stage.PID.XXXXXX" belongs to a process that no longer exists. */
static bool orphan_stage(const char *name) {
    char *end;
    const intmax_t pid = strtoimax(name + strlen(STAGE_PREFIX), &end, 10);
    if (end == name + strlen(STAGE_PREFIX) || *end != '.' || pid <= 0 || pid == getpid())
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int recover(const char *dir, bool remove_stages, err_t *err) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : err_setf(err, "%s: %s", dir, strerror(errno));
    /* collect first: roll_forward adds entries to dir while we would be reading it */
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const bool commit = has_prefix(de->d_name, COMMIT_PREFIX);
        if (!commit && !(remove_stages && has_prefix(de->d_name, STAGE_PREFIX))) continue;
        if (n == cap) {
            char **p = realloc(names, (size_t)(cap = cap ? 2 * cap : 4) * sizeof *p);
            if (!p) break;
            names = p;
        }
        if (!(names[n] = strdup(de->d_name))) break;
        n++;
    }
    closedir(d);
    if (de) rc = err_setf(err, "%s: out of memory", dir);
    for (int i = 0; i < n; i++) {
        char path[PATH_CAP];
        if (!rc && !join(path, dir, names[i], err)) {
            if (has_prefix(names[i], COMMIT_PREFIX))
                rc = roll_forward(dir, path, err);
            else if (orphan_stage(names[i]))
                remove_stage(path);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int fs_set_recover(const char *dir, err_t *err) {
    return recover(dir, true, err);
}

int fs_resolve(const char *path, char *out, size_t cap, err_t *err) {
    char dir[PATH_CAP], cand[PATH_CAP];
    if (snprintf(out, cap, "%s", path) >= (int)cap || strlen(path) >= PATH_CAP)
        return err_setf(err, "%s: path too long", path);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    dir_of(dir, path);
    DIR *d = opendir(dir);
    if (!d) return 0; /* the reader's own open reports it */
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!has_prefix(de->d_name, COMMIT_PREFIX)) continue;
        if (snprintf(cand, sizeof cand, "%s/%s/%s", dir, de->d_name, name) >= PATH_CAP) continue;
        if (access(cand, F_OK) == 0) {
            if (snprintf(out, cap, "%s", cand) >= (int)cap) {
                closedir(d);
                return err_setf(err, "%s: path too long", cand);
            }
            break;
        }
    }
    closedir(d);
    return 0;
}

/* ---- Clock ------------------------------------------------------------------------------- */

double fs_monotonic_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t fs_wall_time(void) {
    return (int64_t)time(NULL);
}
