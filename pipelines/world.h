/* pipelines/world.h: the embedded default world — a small instruction-following world made
 * from a seed, and the gold judge that says how good a response to one of its prompts is.
 *   - world_write: corpus.{train,val}.txt, demos.{train,val}.jsonl (a noisy demonstrator),
 *     prompts.{train,val}.jsonl, all from one seed; every file is written atomically.
 *   - world_gold_score / world_judge: a deterministic score in [-1, 1] from the text alone;
 *     world_rank: a simulated labeler that ranks K responses (gold score + Gaussian noise);
 *     world_agreement: how often two such labelers agree, to pick the noise.
 * Six task families (WORLD_ARITH ... WORLD_OPPOSITE). Everything is a pure function of its
 * arguments: no globals, the judge allocates nothing and is thread-safe. Only world_write
 * touches the file system; it fails with err set and leaves no half-written file. */
#ifndef RLHF_WORLD_H
#define RLHF_WORLD_H
#include "err.h"
#include "rng.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Task families; world_family_name gives "arith", "compare", ... */
enum {
    WORLD_ARITH,   /* "What is 7 plus 5?"             → "7 plus 5 is 12." */
    WORLD_COMPARE, /* "Which is larger, 17 or 42?"    → "42 is larger than 17." */
    WORLD_REVERSE, /* "Reverse the word lamp."        → "lamp reversed is pmal." */
    WORLD_LIST,  /* "Name three fruits."            → "Three fruits are apple, pear and plum." */
    WORLD_GREET, /* "Say hello to Maria." / "Thank Tom for the book." → a greeting / thanks */
    WORLD_OPPOSITE, /* "What is the opposite of hot?"  → "The opposite of hot is cold." */
    WORLD_NFAMILIES
};

/* What the noisy demonstrator does with a prompt (world_sample_kind draws one). */
typedef enum {
    WORLD_GOOD,     /* correct and concise, sometimes with a polite phrase */
    WORLD_WRONG,    /* polite and concise, but wrong (wrong number, word, name, member) */
    WORLD_OFFTOPIC, /* an unrelated sentence, or the answer to another prompt */
    WORLD_RAMBLING, /* correct, but long and repetitive */
    WORLD_RUDE,     /* correct, wrapped in rude words */
    WORLD_NKINDS
} world_kind_t;

typedef enum { WORLD_TINY, WORLD_SMALL, WORLD_MEDIUM, WORLD_NSIZES } world_size_t;

#define WORLD_TEXT_MAX 512 /* bytes (with the NUL) of any prompt or response the world writes */
/* No prompt or demonstration the world writes has more words (runs of letters/digits) than
 * this. With a BPE vocabulary of >= 1024 ids trained on corpus.train.txt, a demonstration in
 * the rlhf-v1 template is at most ~110 tokens: a 128-token context holds every one. */
#define WORLD_WORDS_MAX 40
#define WORLD_RANK_MAX  64 /* most responses world_rank ranks at once */
#define WORLD_NFILES    6

/* Name of a family ("arith", "compare", "reverse", "list", "greet", "opposite"), or "unknown"
 * for any other value. Static string. */
const char *world_family_name(int family);

/* The family a prompt belongs to (it matches one of the world's prompt patterns, letter case,
 * runs of spaces and the final punctuation mark aside), or -1. */
int world_task_family(const char *prompt);

/* world_family_name(world_task_family(prompt)): per-family statistics key. Static string. */
const char *world_task_name(const char *prompt);

/* The parts of a gold judgement; world_judge fills one. */
typedef struct {
    int family;            /* WORLD_ARITH..., -1 when the prompt is not one of the world's */
    double correct;        /* [0, 1]: the task's answer is right (partial credit for lists) */
    bool on_topic;         /* mentions what the prompt is about (a number, the word, ...) */
    bool echo;             /* repeats the prompt's words verbatim: correct is 0, and −0.2 */
    bool polite;           /* has a polite phrase and no rude one */
    int rude;              /* rude words or phrases found */
    int64_t words;         /* words (runs of letters/digits) in the response */
    double length_penalty; /* 0.05 per word past the family's limit, at most 0.5 */
    double repeat_penalty; /* share of repeated word trigrams, at most 0.5 */
    double rude_penalty;   /* 0.5 per rude phrase, at most 0.8 */
    double score;          /* the gold score (world_gold_score) */
} world_judgement_t;

/* The gold score of a response to a prompt, from the text alone, deterministic:
 *   -1                       when the response has no letter or digit (empty),
 *   else clip(0.9·correct + 0.1·polite − 0.3·(not on topic) − 0.2·echo − length_penalty
 *             − repeat_penalty − rude_penalty, −0.95, 1).
 * So a correct, concise, polite answer scores 1.0, a correct plain one 0.9, a wrong one about
 * 0, an off-topic one about −0.3. `correct` per family (words are case-folded runs of
 * letters/digits; "hedging" = naming extra candidates):
 *   arith     the last integer is the result, and no integer besides the operands and it
 *   compare   the first of the two numbers the response names is the asked one
 *   reverse   the reversed word appears; −0.5 per other rearrangement of its letters
 *   list      (members of the category up to n − members of other categories − 0.5 per
 *             member past n) / n, clipped to [0, 1]; plurals count ("apples")
 *   greet     hello: a greeting word ½ + the name ½; thanks: "thank(s)" ⅓ + name ⅓ + the
 *             thing ⅓; another of the world's names, or another thing, costs one part
 *   opposite  the antonym appears (not inside a polite phrase); −0.5 per other table word
 * A prompt from outside the world (family −1) is judged on style alone (correct = 0, on topic
 * assumed). Length limit before the penalty: 12 words (list: 12 + n, greet: 16, unknown: 30).
 * prompt and response are NUL-terminated; NULL counts as "". */
double world_gold_score(const char *prompt, const char *response);

/* Same score; also fills *out (may be NULL) with its parts. */
double world_judge(const char *prompt, const char *response, world_judgement_t *out);

/* Ranks k responses to one prompt the way a person would: each distinct response text gets
 * its gold score plus noise·N(0,1) (identical texts get the same draw), and they are sorted
 * best first. order[i] = index of the i-th best response (ties keep input order). rank, when
 * not NULL, gets each response's dense rank: rank[j] = 0 for the best, and equal perceived
 * scores share a rank — so ties happen for identical texts, and with noise 0 for equal gold
 * scores, never otherwise. 1 <= k <= WORLD_RANK_MAX; rng may be NULL when noise is 0. */
void world_rank(const char *prompt, const char *const *responses, int k, double noise, rng_t *rng,
                int *order, int *rank);

/* How often two independent simulated labelers (world_rank, same noise, independent draws)
 * order a pair of responses alike: the expected share over every pair of distinct texts among
 * the k responses to each of n prompts (responses[i·k + j] is the j-th response to
 * prompts[i]; pairs of identical texts are left out, every labeler ties them). Exact, not
 * sampled: for gold scores that differ by d, one labeler puts the better first with
 * p = Φ(|d| / (noise·√2)) (the difference of two noise·N(0,1) draws), so two agree with
 * p² + (1 − p)². At noise 0 they always agree; at any noise > 0 a pair of equal gold scores
 * is a coin flip, so the agreement falls from 1 − ½·(share of such pairs) toward ½ as the
 * noise grows. NaN when there is no pair. 1 <= k <= WORLD_RANK_MAX, noise >= 0. Computes
 * n·k gold scores; allocates nothing. */
double world_agreement(const char *const *prompts, const char *const *responses, int n, int k,
                       double noise);

/* The noise at which world_agreement(prompts, responses, n, k, noise) is target (to a relative
 * 1e-9 in noise), so simulated labelers can agree as often as people do (InstructGPT's
 * labelers agreed on ~73% of pairs). Into *noise. -1 with err set when no noise > 0 gives
 * target: there is no pair, target <= ½, or target is at or above what nearly noise-free
 * labelers reach on these responses; or out of memory (it keeps one double per pair). */
int world_agreement_noise(const char *const *prompts, const char *const *responses, int n, int k,
                          double target, double *noise, err_t *err);

/* The demonstrator's rates: P(kind) for each world_kind_t; they sum to 1. */
double world_kind_rate(world_kind_t kind);

/* Name of a kind ("good", "wrong", "offtopic", "rambling", "rude"); static string. */
const char *world_kind_name(world_kind_t kind);

/* Draws a demonstrator kind with world_kind_rate's probabilities. */
world_kind_t world_sample_kind(rng_t *rng);

/* Writes a random prompt of `family` (or of a uniformly drawn family when family < 0) into
 * buf (cap >= WORLD_TEXT_MAX) and returns its family. */
int world_sample_prompt(rng_t *rng, int family, char *buf, size_t cap);

/* Writes the demonstrator's response of the given kind to prompt into buf (cap >=
 * WORLD_TEXT_MAX). -1 with err set when the prompt is not one of the world's. */
int world_demonstrate(rng_t *rng, const char *prompt, world_kind_t kind, char *buf, size_t cap,
                      err_t *err);

/* "tiny" (tests, ~110 KB), "small" (the default, ~1.8 MB), "medium" (~4.5 MB) → *size; -1 if
 * unknown (err not needed: the caller names the flag). */
int world_size_parse(const char *name, world_size_t *size);
const char *world_size_name(world_size_t size);

/* What world_write wrote. */
typedef struct {
    char name[24]; /* "corpus.train.txt", "corpus.val.txt", "demos.train.jsonl", ... */
    int64_t bytes;
    int64_t lines;
} world_file_t;

typedef struct {
    world_file_t files[WORLD_NFILES];       /* in the order listed above, then prompts.* */
    int64_t demo_kinds[WORLD_NKINDS];       /* demonstrations written per kind (train + val) */
    int64_t demo_families[WORLD_NFAMILIES]; /* demonstrations written per family */
} world_stats_t;

/* Writes the world for (seed, size) into dir (created if missing, parents too):
 *   corpus.train.txt, corpus.val.txt     one paragraph per line, no prompt/response pairs
 *   demos.train.jsonl, demos.val.jsonl   {"prompt": ..., "response": ...} by the demonstrator
 *   prompts.train.jsonl, prompts.val.jsonl {"prompt": ...}
 * Train and val are disjoint: a prompt string (a corpus paragraph) goes to val iff its hash
 * says so, whatever the seed. The same (seed, size) gives the same bytes. All six files are
 * written to temporary names (NAME.tmp) and renamed into place only once all are complete; a
 * failure removes the temporaries, so the directory keeps what it had (a name taken by a
 * directory is refused before anything is written). stats may be NULL. -1 with err set
 * ("data/demos.train.jsonl.tmp: No space left on device"). */
int world_write(const char *dir, uint64_t seed, world_size_t size, world_stats_t *stats,
                err_t *err);
#endif /* RLHF_WORLD_H */
