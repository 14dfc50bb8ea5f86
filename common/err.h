/* common/err.h: the error buffer every fallible function takes as its last argument.
 * The deepest function that knows the location writes the message; the first message wins,
 * so callers may add context with err_setf without clobbering a more specific one.
 * Messages are written for the user: "demos.jsonl:17: missing \"response\"". */
#ifndef RLHF_ERR_H
#define RLHF_ERR_H
#include <stdbool.h>

typedef struct {
    char msg[512]; /* "" = no error; else a complete, user-facing sentence fragment */
} err_t;

#define ERR_INIT {{0}}

/* Stores the formatted message unless err already holds one, and returns -1, so a failure
 * is one line: `return err_setf(err, "%s: truncated", path);`. err may be NULL. */
int err_setf(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_setf, but when err already holds a message, prefixes it with the new context
 * ("ckpt/model.safetensors: " + old). Use when the callee could not know the context. */
int err_prefixf(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when err holds a message. */
bool err_isset(const err_t *err);

/* Empties err so it can be reused. */
void err_clear(err_t *err);
#endif /* RLHF_ERR_H */
