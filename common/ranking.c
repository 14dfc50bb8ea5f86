/* common/ranking.c: parsing and formatting a typed ranking (see ranking.h). */
#include "ranking.h"
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *skip_spaces(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* A completion number 1..k at *p; -1 with err set otherwise. */
static int completion_number(const char **p, int k, const char *after, err_t *err) {
    if (!isdigit((unsigned char)**p)) {
        if (!**p)
            return err_setf(err, "expected a completion number%s%s, got the end of the line",
                            after ? " after " : "", after ? after : "");
        return err_setf(err, "expected a completion number%s%s, got '%c'", after ? " after " : "",
                        after ? after : "", **p);
    }
    long v = 0;
    while (isdigit((unsigned char)**p)) {
        if (v < 1000) v = 10 * v + (**p - '0');
        (*p)++;
    }
    if (v < 1 || v > k) return err_setf(err, "completion %ld does not exist: there are %d", v, k);
    return (int)v;
}

int ranking_parse(const char *line, int k, ranking_t *out, err_t *err) {
    if (k < 2 || k > RANKING_MAX_K) return err_setf(err, "cannot rank %d completions", k);
    ranking_t r = {.k = k};
    const char *p = skip_spaces(line);
    if (!*p) return err_setf(err, "empty ranking: type e.g. 2>1 (best first)");
    int rank = 1;
    char prev[16] = "";
    for (;;) {
        const int c = completion_number(&p, k, prev[0] ? prev : NULL, err);
        if (c < 0) return -1;
        if (r.rank[c - 1]) return err_setf(err, "completion %d appears twice", c);
        r.rank[c - 1] = rank;
        snprintf(prev, sizeof prev, "%d", c);
        p = skip_spaces(p);
        if (*p == '>')
            rank++;
        else if (*p != '=')
            break;
        p = skip_spaces(p + 1);
    }
    if (*p && !isdigit((unsigned char)*p))
        return err_setf(err, "expected '>' or '=' after %s, got '%c'", prev, *p);
    if (*p) {
        const char *q = skip_spaces(p + strspn(p, "0123456789"));
        if (*q == '>' || *q == '=')
            return err_setf(err, "the ranking must come first, in one piece: "
                                 "e.g. 3>1=4>2, then notes like 3@6 2!h");
    }
    for (int i = 0; i < k; i++)
        if (!r.rank[i]) return err_setf(err, "completion %d is not ranked: rank all %d", i + 1, k);
    /* Notes: N@R and N!flags, in any order, each completion at most once per kind. */
    while (*p) {
        if (!isdigit((unsigned char)*p)) {
            if (*p == '>' || *p == '=')
                return err_setf(err, "expected a completion number after '%c'", *p);
            return err_setf(err, "expected '>' or '=' after %s, got '%c'", prev, *p);
        }
        const char *q = skip_spaces(p + strspn(p, "0123456789"));
        if (*q == '>' || *q == '=')
            return err_setf(err, "the ranking must come first, in one piece: "
                                 "e.g. 3>1=4>2, then notes like 3@6 2!h");
        const int c = completion_number(&p, k, NULL, err);
        if (c < 0) return -1;
        if (*p != '@' && *p != '!')
            return err_setf(err, "note for completion %d: expected @RATING or !FLAGS, got %s%c%s",
                            c, *p ? "'" : "", *p ? *p : ' ', *p ? "'" : "the end of the line");
        while (*p == '@' || *p == '!') {
            if (*p == '@') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return err_setf(err, "rating of completion %d: expected a number 1-7", c);
                long v = 0;
                while (isdigit((unsigned char)*p)) {
                    if (v < 1000) v = 10 * v + (*p - '0');
                    p++;
                }
                if (v < 1 || v > 7)
                    return err_setf(err, "rating %ld of completion %d is not in 1-7", v, c);
                if (r.rating[c - 1]) return err_setf(err, "completion %d is rated twice", c);
                r.rating[c - 1] = (int)v;
            } else {
                p++;
                if (!isalpha((unsigned char)*p))
                    return err_setf(err, "flags of completion %d: expected letters i, h or m", c);
                while (isalpha((unsigned char)*p)) {
                    const char f = (char)tolower((unsigned char)*p);
                    const int bit = f == 'i'   ? RANKING_FLAG_INSTRUCTION
                                    : f == 'h' ? RANKING_FLAG_HARMFUL
                                    : f == 'm' ? RANKING_FLAG_MADE_UP
                                               : 0;
                    if (!bit)
                        return err_setf(err, "unknown flag '%c' for completion %d (i, h or m)", *p,
                                        c);
                    r.flags[c - 1] |= bit;
                    p++;
                }
            }
        }
        if (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return err_setf(err, "unexpected '%c' after the note for completion %d", *p, c);
        p = skip_spaces(p);
    }
    *out = r;
    return 0;
}

int ranking_format(const ranking_t *r, char *buf, size_t size) {
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        const int w_ =                                                                             \
            snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, __VA_ARGS__);           \
        n += w_ > 0 ? (size_t)w_ : 0;                                                              \
    } while (0)
    if (size) buf[0] = '\0';
    int max_rank = 0;
    for (int i = 0; i < r->k; i++)
        if (r->rank[i] > max_rank) max_rank = r->rank[i];
    bool first = true;
    for (int g = 1; g <= max_rank; g++) {
        bool in_group = false;
        for (int i = 0; i < r->k; i++) {
            if (r->rank[i] != g) continue;
            if (!first) PUT("%c", in_group ? '=' : '>');
            PUT("%d", i + 1);
            first = false;
            in_group = true;
        }
    }
    for (int i = 0; i < r->k; i++) {
        if (!r->rating[i] && !r->flags[i]) continue;
        PUT(" %d", i + 1);
        if (r->rating[i]) PUT("@%d", r->rating[i]);
        if (r->flags[i])
            PUT("!%s%s%s", r->flags[i] & RANKING_FLAG_INSTRUCTION ? "i" : "",
                r->flags[i] & RANKING_FLAG_HARMFUL ? "h" : "",
                r->flags[i] & RANKING_FLAG_MADE_UP ? "m" : "");
    }
#undef PUT
    return (int)n;
}

int ranking_normalize(int *rank, int k, err_t *err) {
    for (int i = 0; i < k; i++)
        if (rank[i] < 1)
            return err_setf(err, "rank %d of response %d: ranks start at 1", rank[i], i + 1);
    int dense[RANKING_MAX_K * 4];
    if (k > (int)(sizeof dense / sizeof dense[0]))
        return err_setf(err, "%d responses: at most %d", k, (int)(sizeof dense / sizeof *dense));
    for (int i = 0; i < k; i++) {
        int below = 0; /* distinct ranks smaller than rank[i] */
        for (int j = 0; j < k; j++) {
            if (rank[j] >= rank[i]) continue;
            bool seen = false;
            for (int m = 0; m < j; m++) seen |= rank[m] == rank[j];
            below += !seen;
        }
        dense[i] = below + 1;
    }
    memcpy(rank, dense, (size_t)k * sizeof *rank);
    return 0;
}
