/* common/wireopt.c: see wireopt.h. */
#include "wireopt.h"
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#define WIREOPT_TIMEOUT_MAX_S 3600.0 /* an hour per try: anything longer is a typo */
#define WIREOPT_TRIES_MAX     1000

wireopt_t wireopt_defaults(void) {
    return (wireopt_t){.timeout_ms = WIRE_TIMEOUT_MS, .tries = WIRE_TRIES, .curve_keys = NULL};
}

bool wireopt_option(wireopt_t *o, const char *prog, int c, const char *arg) {
    switch (c) {
    case WIREOPT_TIMEOUT: {
        const double s = cli_arg_f64(prog, "--timeout", arg, 0.001, WIREOPT_TIMEOUT_MAX_S);
        o->timeout_ms = (int)lround(s * 1e3);
        return true;
    }
    case WIREOPT_TRIES:
        o->tries = (int)cli_arg_i64(prog, "--tries", arg, 1, WIREOPT_TRIES_MAX);
        return true;
    case WIREOPT_CURVE_KEYS:
        o->curve_keys = arg;
        return true;
    }
    return false;
}

static void warn_retry(void *ctx, const char *msg) {
    cli_warn((const char *)ctx, "%s", msg);
}

wire_client_t *wireopt_client_new(const wireopt_t *o, const char *endpoints, const char *prog,
                                  err_t *err) {
    char server_pub[4096], client_key[4096];
    wire_client_opts_t w = {.endpoints = endpoints,
                            .timeout_ms = o->timeout_ms,
                            .tries = o->tries,
                            .warn = warn_retry,
                            .warn_ctx = (void *)prog};
    if (o->curve_keys) {
        if (snprintf(server_pub, sizeof server_pub, "%s/server.pub", o->curve_keys) >=
                (int)sizeof server_pub ||
            snprintf(client_key, sizeof client_key, "%s/client.key", o->curve_keys) >=
                (int)sizeof client_key)
            return err_setf(err, "%s: path too long", o->curve_keys), NULL;
        w.server_key = server_pub;
        w.client_key = access(client_key, F_OK) == 0 ? client_key : NULL;
    }
    return wire_client_new(&w, err);
}
