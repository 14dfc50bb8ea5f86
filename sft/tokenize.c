/* sft/tokenize.c: placeholder until the tokenizer module lands (issue 4). */
#include "sft.h"
#include <stdio.h>

int sft_cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "sft: error: tokenize is not built yet (issue 4)\n");
    return 1;
}
