#include "alloc_count.h"
#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);

static atomic_int counting;
static atomic_llong calls;

static void note(void) {
    if (atomic_load(&counting)) atomic_fetch_add(&calls, 1);
}

void *__wrap_malloc(size_t n) {
    note();
    return __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n) {
    note();
    return __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n) {
    note();
    return __real_realloc(p, n);
}

void __wrap_free(void *p) {
    if (p) note();
    __real_free(p);
}

void alloc_count_start(void) {
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
}

int64_t alloc_count_stop(void) {
    atomic_store(&counting, 0);
    return (int64_t)atomic_load(&calls);
}
