/* reward/label.c: `reward label` — a person ranks K completions per prompt at a terminal, or
 * the world's simulated labeler does (--simulated). Both go through the same store calls:
 * store_lease_next, store_ranking_save, store_skip, store_undo. Every saved ranking is its own
 * transaction, so a crash, a Ctrl-C or a closed SSH session loses at most the prompt on screen.
 * Model text is untrusted: it is shown through text_visible (escapes and control characters
 * made visible, never sent to the terminal). */
#include "cli.h"
#include "ranking.h"
#include "reward.h"
#include "rng.h"
#include "store.h"
#include "term.h"
#include "text.h"
#include "world.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROG "reward label"

#define HELP                                                                                       \
    "usage: reward label --db FILE --labeler NAME [--limit N] [--lease S]\n"                       \
    "       reward label --db FILE --simulated [--noise S] [--labelers N] [--limit N] [--seed "    \
    "N]\n"                                                                                         \
    "\n"                                                                                           \
    "Ranks the completions `sft sample --db` wrote, one prompt at a time. A person sees the\n"     \
    "prompt and its K completions and types a ranking on one line, best first:\n"                  \
    "  3>1=4>2        3 best, 1 and 4 tied, 2 worst (every completion once)\n"                     \
    "  3>1=4>2 3@6 2!h   optional notes: @R quality 1-7; !FLAGS i (fails the instruction),\n"      \
    "                 h (harmful), m (made-up facts)\n"                                            \
    "  s [REASON]     skip this prompt (asks for a reason)      u   undo your last ranking\n"      \
    "  r              show the prompt again                     ?   help       q   quit\n"         \
    "Each ranking is saved when Enter is pressed. Several labelers may work on one database at\n"  \
    "once: each prompt goes to one of them (a share, recorded in the database, to two, to\n"       \
    "measure agreement). Quitting keeps your place: start again to resume.\n"                      \
    "With stdin not a terminal, one answer is read per line (scripted labeling).\n"                \
    "\n"                                                                                           \
    "  --db FILE        the rankings database (required)\n"                                        \
    "  --labeler NAME   who is labeling (required for a person)\n"                                 \
    "  --limit N        stop after N rankings (default: until no prompt is left)\n"                \
    "  --lease S        seconds a prompt on screen stays yours while idle (default 1800)\n"        \
    "  --simulated      rank with the embedded default world's simulated labeler: gold score\n"    \
    "                   + noise·N(0,1) per distinct completion (identical texts tie)\n"           \
    "  --noise S        its noise (default " REWARD_SIM_NOISE_S ")\n"                              \
    "  --labelers N     simulated labelers taking turns, named simulated-1..N (default 2)\n"

enum { O_DB = CLI_OPTS_COMMAND, O_LABELER, O_LIMIT, O_LEASE, O_SIMULATED, O_NOISE, O_LABELERS };

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The simulated labelers. */

static int label_simulated(store_t *s, double noise, int labelers, int64_t limit, uint64_t seed) {
    err_t err = ERR_INIT;
    int64_t ids[64];
    rng_t rngs[64];
    for (int i = 0; i < labelers; i++) {
        char name[32];
        snprintf(name, sizeof name, "simulated-%d", i + 1);
        if (store_labeler(s, name, true, &ids[i], &err)) cli_die(PROG, "%s", err.msg);
        rng_seed(&rngs[i], seed * 1000003u + (uint64_t)i + 1);
    }
    int64_t saved = 0, ties = 0;
    const char *texts[STORE_K_MAX];
    int order[STORE_K_MAX], rank[STORE_K_MAX];
    store_mark_t marks[STORE_K_MAX];
    bool any = true;
    while (any && (limit == 0 || saved < limit)) {
        any = false;
        for (int i = 0; i < labelers && (limit == 0 || saved < limit); i++) {
            store_item_t item = {0};
            const int r = store_lease_next(s, ids[i], &item, &err);
            if (r < 0) cli_die(PROG, "%s", err.msg);
            if (r == 0) continue;
            any = true;
            for (int j = 0; j < item.k; j++) texts[j] = item.completions[j].text;
            world_rank(item.text, texts, item.k, noise, &rngs[i], order, rank);
            bool tie = false;
            for (int j = 0; j < item.k; j++) {
                marks[j] =
                    (store_mark_t){.completion_id = item.completions[j].id, .rank = rank[j] + 1};
                for (int m = 0; m < j; m++) tie |= rank[m] == rank[j];
            }
            const int rc = store_ranking_save(s, ids[i], item.id, marks, item.k, 0, NULL, &err);
            if (rc == STORE_ETAKEN)
                err_clear(&err);
            else if (rc)
                cli_die(PROG, "%s", err.msg);
            else {
                saved++;
                ties += tie;
            }
            store_item_release(&item);
        }
    }
    store_progress_t p;
    if (store_progress(s, 0, &p, &err)) cli_die(PROG, "%s", err.msg);
    printf("%s: %lld rankings saved by %d simulated labelers (noise %g; %lld with a tie); "
           "the database holds %lld prompts and %lld rankings\n",
           PROG, (long long)saved, labelers, noise, (long long)ties, (long long)p.prompts,
           (long long)p.rankings);
    return 0;
}

/* ---- A person at a terminal. */

/* The screen's lines, each its own allocation (visible-safe text, cut to the width). */
typedef struct {
    char **line;
    size_t *len;
    size_t n, cap;
} screen_t;

static void screen_add(screen_t *sc, const char *indent, const char *s, size_t n) {
    if (sc->n == sc->cap) {
        sc->cap = sc->cap ? 2 * sc->cap : 64;
        sc->line = realloc(sc->line, sc->cap * sizeof *sc->line);
        sc->len = realloc(sc->len, sc->cap * sizeof *sc->len);
        if (!sc->line || !sc->len) cli_die(PROG, "out of memory");
    }
    const size_t a = strlen(indent);
    char *l = malloc(a + n + 1);
    if (!l) cli_die(PROG, "out of memory");
    memcpy(l, indent, a);
    memcpy(l + a, s, n);
    l[a + n] = '\0';
    sc->line[sc->n] = l;
    sc->len[sc->n++] = a + n;
}

static void screen_clear(screen_t *sc) {
    for (size_t i = 0; i < sc->n; i++) free(sc->line[i]);
    sc->n = 0;
}

/* Adds untrusted text, made visible and wrapped to width - the indent's width. */
static void screen_text(screen_t *sc, const char *first, const char *indent, const char *text,
                        size_t len, int cols) {
    char *vis = malloc(TEXT_VISIBLE_MAX(len));
    if (!vis) cli_die(PROG, "out of memory");
    const size_t n = text_visible(text, len, true, vis);
    text_lines_t lines = {0};
    const int width = cols - (int)strlen(indent) > 10 ? cols - (int)strlen(indent) : 10;
    if (text_wrap(vis, n, width, &lines)) cli_die(PROG, "out of memory");
    for (int64_t i = 0; i < lines.n; i++)
        screen_add(sc, i == 0 ? first : indent, vis + lines.start[i], lines.len[i]);
    text_lines_release(&lines);
    free(vis);
}

/* " · 42 s each, ~1h10m to go" (this session's pace, times the prompts left). */
static void format_pace(char *buf, size_t size, int64_t ranked, int64_t ms, int64_t left) {
    if (ranked <= 0) {
        if (size) buf[0] = '\0';
        return;
    }
    const double each = (double)ms / 1000.0 / (double)ranked;
    char eta[32];
    cli_format_duration(eta, sizeof eta, each * (double)left);
    snprintf(buf, size, " · %.0f s each, ~%s to go", each, eta);
}

static void render(term_t *t, screen_t *sc, const store_item_t *item, const store_progress_t *p,
                   int64_t session_ranked, int64_t session_ms, const char *note) {
    screen_clear(sc);
    char head[320], pace[96];
    format_pace(pace, sizeof pace, session_ranked, session_ms, p->remaining);
    const int n = snprintf(head, sizeof head, "prompt %lld · done %lld, skipped %lld, left %lld%s",
                           (long long)item->id, (long long)p->ranked, (long long)p->skipped,
                           (long long)p->remaining, pace);
    /* cut to the width (ASCII but for the "·"s, each 2 bytes and 1 cell) */
    size_t len = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    while (len > 0 && text_width(head, len) > (size_t)t->cols) len--;
    char line[400];
    snprintf(line, sizeof line, "%s%.*s%s", term_bold(t), (int)len, head, term_plain(t));
    screen_add(sc, "", line, strlen(line));
    if (note[0]) /* what the last answer did, where the eye starts */
        screen_add(sc, "", note, strlen(note));
    else
        screen_add(sc, "", "", 0);
    screen_text(sc, "  ", "  ", item->text, item->len, t->cols);
    for (int j = 0; j < item->k; j++) {
        char num[16];
        snprintf(num, sizeof num, "[%d] ", j + 1);
        screen_add(sc, "", "", 0);
        screen_text(sc, num, "    ", item->completions[j].text, item->completions[j].len, t->cols);
    }
    screen_add(sc, "", "", 0);
}

/* The keys, for `?` at the prompt (the full --help is too long for 24 rows). */
#define KEYS                                                                                       \
    "  3>1=4>2       rank best first: 3 best, 1 and 4 tied, 2 worst; every completion once\n"      \
    "  3>1=4>2 3@6 2!h   notes: @R rating 1-7; !FLAGS i (fails the instruction), h (harmful),\n"  \
    "                m (made-up facts)\n"                                                        \
    "  s [REASON]    skip this prompt      u  undo your last ranking      r  show again\n"       \
    "  q             quit (your place is kept)   Ctrl-U clears the line, Ctrl-W a word\n"

static const char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

static int label_person(store_t *s, const char *labeler, int64_t limit) {
    err_t err = ERR_INIT;
    int64_t lid;
    if (store_labeler(s, labeler, true, &lid, &err)) cli_die(PROG, "%s", err.msg);
    term_t t;
    term_open(&t, 0, stdout);
    screen_t sc = {0};
    store_item_t item = {0};
    bool have = false;
    int64_t session_ranked = 0, session_ms = 0, shown_at = 0;
    char answer[1024] = "", note[600] = "";
    int status = 0;
    for (;;) {
        if (limit && session_ranked >= limit) break;
        if (!have) {
            const int r = store_lease_next(s, lid, &item, &err);
            if (r < 0) {
                status = 1;
                break;
            }
            if (r == 0) {
                fprintf(t.out, "%s: nothing left to rank for %s\n", PROG, labeler);
                break;
            }
            have = true;
            shown_at = now_ms();
        }
        store_progress_t p;
        if (store_progress(s, lid, &p, &err)) {
            status = 1;
            break;
        }
        render(&t, &sc, &item, &p, session_ranked, session_ms, note);
        note[0] = '\0';
        term_clear(&t);
        char typed[8];
        term_event_t ev =
            term_page(&t, (const char *const *)sc.line, sc.len, sc.n, 2, typed, sizeof typed);
        if (ev == TERM_RESIZE) continue;
        if (ev == TERM_EOF) break;
        if (typed[0] && strlen(answer) + strlen(typed) < sizeof answer) strcat(answer, typed);
        bool next = false, quit = false, redraw = false;
        while (!next && !quit && !redraw) {
            ev = term_readline(&t, "rank (e.g. 2>1), s skip, u undo, ? help, q quit> ", answer,
                               sizeof answer);
            if (ev == TERM_RESIZE) {
                redraw = true;
                break;
            }
            if (ev == TERM_EOF) {
                quit = true;
                break;
            }
            char line[sizeof answer];
            memcpy(line, answer, sizeof line);
            const char *a = trim(line);
            if (!*a) continue;
            if (!strcmp(a, "?") || !strcmp(a, "h") || !strcmp(a, "help")) {
                fputs(KEYS, t.out);
                answer[0] = '\0';
            } else if (!strcmp(a, "q")) {
                quit = true;
            } else if (!strcmp(a, "r")) {
                answer[0] = '\0';
                redraw = true;
            } else if (!strcmp(a, "u")) {
                answer[0] = '\0';
                int64_t pid;
                const int r = store_undo(s, lid, &pid, &err);
                if (r < 0) {
                    quit = true;
                    status = 1;
                } else if (r == 0) {
                    fprintf(t.out, "  nothing to undo: you have no saved ranking\n");
                } else {
                    snprintf(note, sizeof note, "  undone: your ranking of prompt %lld",
                             (long long)pid);
                    if (session_ranked > 0) session_ranked--;
                    store_item_release(&item);
                    have = false;
                    next = true;
                }
            } else if (a[0] == 's' && (a[1] == '\0' || a[1] == ' ')) {
                char reason[512];
                snprintf(reason, sizeof reason, "%s", trim((char *)a + 1));
                answer[0] = '\0';
                while (!reason[0]) {
                    ev = term_readline(&t, "reason for skipping (empty line: don't skip)> ", answer,
                                       sizeof answer);
                    if (ev != TERM_LINE) break;
                    snprintf(reason, sizeof reason, "%s", trim(answer));
                    answer[0] = '\0';
                    if (!reason[0]) break;
                }
                if (!reason[0]) {
                    redraw = ev == TERM_RESIZE;
                    quit = ev == TERM_EOF;
                    continue;
                }
                if (store_skip(s, lid, item.id, reason, &err)) {
                    quit = true;
                    status = 1;
                } else {
                    snprintf(note, sizeof note, "  skipped prompt %lld", (long long)item.id);
                    store_item_release(&item);
                    have = false;
                    next = true;
                }
            } else {
                ranking_t r;
                err_t perr = ERR_INIT;
                if (item.k > RANKING_MAX_K || ranking_parse(a, item.k, &r, &perr)) {
                    fprintf(t.out, "  %s (? for help); fix it and press Enter\n",
                            item.k > RANKING_MAX_K ? "too many completions to rank here"
                                                   : perr.msg);
                    continue; /* answer keeps the text, to edit */
                }
                store_mark_t marks[RANKING_MAX_K];
                for (int j = 0; j < item.k; j++)
                    marks[j] = (store_mark_t){.completion_id = item.completions[j].id,
                                              .rank = r.rank[j],
                                              .rating = r.rating[j],
                                              .flags = (uint32_t)r.flags[j]};
                const int64_t took = now_ms() - shown_at;
                const int rc = store_ranking_save(s, lid, item.id, marks, item.k, took, NULL, &err);
                if (rc == STORE_ETAKEN) {
                    snprintf(note, sizeof note, "  not saved: %s", err.msg);
                    err_clear(&err);
                } else if (rc) {
                    quit = true;
                    status = 1;
                    continue;
                } else {
                    char shown[128];
                    ranking_format(&r, shown, sizeof shown);
                    snprintf(note, sizeof note, "  saved %s for prompt %lld", shown,
                             (long long)item.id);
                    session_ranked++;
                    session_ms += took;
                }
                answer[0] = '\0';
                store_item_release(&item);
                have = false;
                next = true;
            }
        }
        if (quit) break;
    }
    if (note[0]) fprintf(t.out, "%s\n", note); /* the last answer's, with no screen after it */
    term_close(&t);
    store_item_release(&item);
    screen_clear(&sc);
    free(sc.line);
    free(sc.len);
    if (status) cli_die(PROG, "%s", err.msg);
    printf("%s: %lld rankings saved this session\n", PROG, (long long)session_ranked);
    return 0;
}

int reward_cmd_label(int argc, char **argv) {
    static const struct option longopts[] = {{"db", required_argument, NULL, O_DB},
                                             {"labeler", required_argument, NULL, O_LABELER},
                                             {"limit", required_argument, NULL, O_LIMIT},
                                             {"lease", required_argument, NULL, O_LEASE},
                                             {"simulated", no_argument, NULL, O_SIMULATED},
                                             {"noise", required_argument, NULL, O_NOISE},
                                             {"labelers", required_argument, NULL, O_LABELERS},
                                             CLI_COMMON_LONGOPTS,
                                             {0}};
    const char *db = NULL, *labeler = NULL;
    int64_t limit = 0, lease = 0, labelers = 2;
    double noise = REWARD_SIM_NOISE;
    bool simulated = false, noise_given = false, labelers_given = false;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1) {
        switch (c) {
        case O_DB:
            db = args.arg;
            break;
        case O_LABELER:
            labeler = args.arg;
            break;
        case O_LIMIT:
            limit = cli_arg_i64(PROG, "--limit", args.arg, 1, INT64_MAX);
            break;
        case O_LEASE:
            lease = cli_arg_i64(PROG, "--lease", args.arg, 1, 7 * 86400);
            break;
        case O_SIMULATED:
            simulated = true;
            break;
        case O_NOISE:
            noise = cli_arg_f64(PROG, "--noise", args.arg, 0, 100);
            noise_given = true;
            break;
        case O_LABELERS:
            labelers = cli_arg_i64(PROG, "--labelers", args.arg, 1, 64);
            labelers_given = true;
            break;
        }
    }
    cli_args_end(&args, HELP CLI_COMMON_HELP);
    cli_require(PROG, "--db", db);
    if (simulated && labeler)
        cli_usage_error(PROG, "--labeler is for a person; not with --simulated");
    if (!simulated && !labeler)
        cli_usage_error(PROG, "--labeler NAME is required (or --simulated)");
    if (!simulated && (noise_given || labelers_given))
        cli_usage_error(PROG, "--noise and --labelers go with --simulated");
    store_options_t so = store_options_default();
    so.lease_seconds = lease;
    err_t err = ERR_INIT;
    store_t *s = store_open(db, &so, &err);
    if (!s) cli_die(PROG, "%s", err.msg);
    const int rc = simulated ? label_simulated(s, noise, (int)labelers, limit, args.common.seed)
                             : label_person(s, labeler, limit);
    store_close(&s);
    return rc;
}
