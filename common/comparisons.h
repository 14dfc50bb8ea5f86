/* common/comparisons.h: files of human comparisons, read into memory — the two formats rankings
 * move in between this tool and the ecosystem (`reward import`, `reward eval --comparisons`):
 *   kway      one prompt per line: {"prompt": s, "responses": [K strings], "ranks": [K integers,
 *             1 = best, ties share a rank], "labeler": s (optional)}; 2 ≤ K ≤ COMPARISONS_K_MAX
 *   pairwise  TRL's {"prompt": s, "chosen": s, "rejected": s}, or Anthropic HH's
 *             {"chosen": s, "rejected": s} transcripts ("\n\nHuman: …\n\nAssistant: …"): the
 *             prompt is the conversation after the leading "\n\nHuman: " up to the last
 *             "\n\nAssistant:", so the template ("Human: {prompt}\n\nAssistant: {response}")
 *             reproduces the transcript, and the response is the last assistant turn (its one
 *             leading space, which the template adds back, removed). Both transcripts of a line
 *             must share that prompt. A pair is a K = 2 item with ranks [1, 2].
 * The whole file is read and checked before the load returns: a bad line is
 * "FILE:LINE: field: problem" and nothing is returned. Strings are bytes with lengths (JSON's
 * "\u0000" is data). Owns: everything in a comparisons_t (comparisons_release). No globals. */
#ifndef RLHF_COMPARISONS_H
#define RLHF_COMPARISONS_H
#include "err.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMPARISONS_K_MAX 64 /* responses one K-way line may rank (the store's STORE_K_MAX) */

typedef enum {
    COMPARISONS_KWAY = 0,     /* {"prompt","responses","ranks"} */
    COMPARISONS_PAIRWISE = 1, /* {"prompt","chosen","rejected"} or HH {"chosen","rejected"} */
} comparisons_format_t;

/* One line: a prompt and k ranked responses. */
typedef struct {
    char *prompt;          /* prompt_len bytes plus a NUL */
    size_t prompt_len;     /* bytes of prompt */
    int k;                 /* responses */
    char **responses;      /* [k] each response_lens[i] bytes plus a NUL */
    size_t *response_lens; /* [k] */
    int *ranks;            /* [k] dense: 1 = best, ties share, the next group the next number */
    char *labeler;         /* the line's "labeler", or NULL */
    bool hh;               /* pairwise line given as HH transcripts (the prompt was cut out) */
    int64_t line;          /* 1-based line in the file */
} comparisons_item_t;

typedef struct {
    char *path;                /* the file as given (a copy), for later messages */
    int64_t n;                 /* items */
    comparisons_item_t *items; /* [n] in file order */
} comparisons_t;

/* "kway" / "pairwise" → *fmt; -1 for anything else (the caller names the flag). */
int comparisons_format_parse(const char *name, comparisons_format_t *fmt);
const char *comparisons_format_name(comparisons_format_t fmt);

/* Reads every line of path in format fmt into out. Blank lines are skipped (but counted).
 * -1 with err set and out empty on the first bad line, e.g.
 *   "c.jsonl:3: \"ranks\": 3 ranks for 4 responses"
 *   "c.jsonl:5: \"ranks\"[1]: 0 is not a rank (1 = best)"
 *   "c.jsonl:2: \"chosen\": no \"\\n\\nAssistant:\" turn in the transcript"
 *   "c.jsonl:7: \"rejected\": the transcript's prompt differs from \"chosen\"'s"
 * or "c.jsonl: no JSON lines (empty file)". */
int comparisons_load(comparisons_t *out, const char *path, comparisons_format_t fmt, err_t *err);

/* Splits an HH transcript s[0..len) into the prompt (s + *prompt_off, *prompt_len bytes) and the
 * response (s + *resp_off, *resp_len bytes), as described above. -1 with err set (no field
 * name: the caller adds it) when s does not start with "\n\nHuman: " or has no
 * "\n\nAssistant:" after it. */
int comparisons_split_hh(const char *s, size_t len, size_t *prompt_off, size_t *prompt_len,
                         size_t *resp_off, size_t *resp_len, err_t *err);

/* Frees everything and zeroes c; accepts a zeroed or released c. */
void comparisons_release(comparisons_t *c);
#endif /* RLHF_COMPARISONS_H */
