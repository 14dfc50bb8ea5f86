/* tests/it/world_db.c: a world-like rankings database for the integration tests, written
 * through the store API (store_prompt_add, as `sft sample --db` does):
 *     it-world-db DB N K SEED [MODEL]
 * adds N prompts of the embedded world (world_sample_prompt), each with K completions by the
 * world's noisy demonstrator (a kind drawn per completion: good, wrong, off-topic, rambling,
 * rude), so a reward model has something to learn. Rank them with `reward label --simulated`.
 * MODEL names the writer recorded with the completions (default "it-world-db"). Exit 0 ok,
 * 1 on any error (printed), 2 on bad arguments. */
#include "rng.h"
#include "store.h"
#include "world.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: it-world-db DB N K SEED [MODEL]\n");
        return 2;
    }
    const long n = atol(argv[2]), k = atol(argv[3]);
    if (n < 1 || k < 2 || k > STORE_K_MAX) {
        fprintf(stderr, "it-world-db: N >= 1 and 2 <= K <= %d\n", STORE_K_MAX);
        return 2;
    }
    err_t err = ERR_INIT;
    store_options_t o = store_options_default();
    o.create = true;
    store_t *s = store_open(argv[1], &o, &err);
    if (!s) {
        fprintf(stderr, "it-world-db: %s\n", err.msg);
        return 1;
    }
    rng_t rng;
    rng_seed(&rng, strtoull(argv[4], NULL, 10));
    static char texts[STORE_K_MAX][WORLD_TEXT_MAX];
    const char *ptrs[STORE_K_MAX];
    size_t lens[STORE_K_MAX];
    char prompt[WORLD_TEXT_MAX];
    int rc = 0;
    for (long i = 0; rc == 0 && i < n; i++) {
        world_sample_prompt(&rng, -1, prompt, sizeof prompt);
        for (long j = 0; rc == 0 && j < k; j++) {
            rc = world_demonstrate(&rng, prompt, world_sample_kind(&rng), texts[j], sizeof texts[j],
                                   &err);
            ptrs[j] = texts[j];
            lens[j] = strlen(texts[j]);
        }
        if (rc == 0 &&
            store_prompt_add(s, prompt, strlen(prompt), ptrs, lens, (int)k,
                             argc > 5 ? argv[5] : "it-world-db",
                             "{\"source\":\"world demonstrator\"}", NULL, NULL, &err) < 0)
            rc = -1;
    }
    store_close(&s);
    if (rc) fprintf(stderr, "it-world-db: %s\n", err.msg);
    return rc ? 1 : 0;
}
