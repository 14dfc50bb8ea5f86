/* tests/alloc_count.h: counts heap calls made by our code. The test runner is linked with
 * -Wl,--wrap=malloc,calloc,realloc,free, so every call from our objects (common/, tests/)
 * goes through these counters; shared libraries (OpenBLAS, libc internals) are not counted. */
#ifndef RLHF_ALLOC_COUNT_H
#define RLHF_ALLOC_COUNT_H
#include <stdint.h>

/* Starts counting from zero. */
void alloc_count_start(void);
/* Stops counting and returns the number of malloc/calloc/realloc/free calls since start. */
int64_t alloc_count_stop(void);
#endif /* RLHF_ALLOC_COUNT_H */
