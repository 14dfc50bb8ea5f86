#include "err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_setf(err_t *err, const char *fmt, ...) {
    if (!err || err->msg[0]) return -1; /* first, most specific error wins */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefixf(err_t *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t np = strlen(prefix), nold = strlen(err->msg);
    if (np > sizeof err->msg - 1) np = sizeof err->msg - 1;
    if (np + nold > sizeof err->msg - 1) nold = sizeof err->msg - 1 - np;
    memmove(err->msg + np, err->msg, nold);
    memcpy(err->msg, prefix, np);
    err->msg[np + nold] = '\0';
    return -1;
}

bool err_isset(const err_t *err) {
    return err && err->msg[0] != '\0';
}

void err_clear(err_t *err) {
    if (err) err->msg[0] = '\0';
}
