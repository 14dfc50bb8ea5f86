/* common/wireopt.h: the reward client's command-line options, shared by every command that
 * gets its scores from `reward serve` (`reward score --connect`, `ppo train|eval --reward`), so
 * they read alike: --timeout S, --tries N, --curve-keys DIR, and the wire client built from
 * them, whose retry warnings go to stderr through cli_warn. The endpoint list itself is the
 * command's own flag (--connect, --reward). Option codes come from cli.h's CLI_OPTS_WIRE
 * range. Nothing here is thread-safe (main-thread option parsing). Fails as wire_client_new. */
#ifndef RLHF_WIREOPT_H
#define RLHF_WIREOPT_H
#include "cli.h"
#include "err.h"
#include "wire.h"
#include <stdbool.h>

enum {
    WIREOPT_TIMEOUT = CLI_OPTS_WIRE, /* --timeout S */
    WIREOPT_TRIES,                   /* --tries N */
    WIREOPT_CURVE_KEYS,              /* --curve-keys DIR */
    WIREOPT_END
};
_Static_assert(WIREOPT_END <= CLI_OPTS_WIRE + CLI_OPTS_RANGE, "wire options overflow");

// clang-format off
#define WIREOPT_LONGOPTS                                           \
    {"timeout", required_argument, NULL, WIREOPT_TIMEOUT},         \
    {"tries", required_argument, NULL, WIREOPT_TRIES},             \
    {"curve-keys", required_argument, NULL, WIREOPT_CURVE_KEYS}
// clang-format on

#define WIREOPT_HELP                                                                               \
    "  --timeout S        seconds to wait for a reply before reconnecting and sending again\n"     \
    "                     (default 2.5)\n"                                                         \
    "  --tries N          sends of one request before giving up (default 3)\n"                     \
    "  --curve-keys DIR   talk CURVE (encrypted, the server authenticated) to a server started\n"  \
    "                     with --curve-keys: DIR/server.pub is the server's public key,\n"         \
    "                     DIR/client.key this client's secret key (a fresh pair when absent)\n"

typedef struct {
    int timeout_ms;         /* per try; WIRE_TIMEOUT_MS by default */
    int tries;              /* WIRE_TRIES by default */
    const char *curve_keys; /* --curve-keys DIR (borrowed from argv); NULL = plain */
} wireopt_t;

/* The defaults: WIRE_TIMEOUT_MS, WIRE_TRIES, no CURVE. */
wireopt_t wireopt_defaults(void);

/* Handles one getopt_long result of the WIREOPT range: stores it and returns true (a bad value
 * is a usage error, exit 2, naming the flag); any other c returns false. */
bool wireopt_option(wireopt_t *o, const char *prog, int c, const char *arg);

/* A client of the comma-separated endpoints with o's settings; each retry prints
 * "PROG: warning: tcp://...: no reply in 2.5 s, reconnecting and retrying (try 2 of 3)" on
 * stderr (prog is borrowed for the client's life). With curve_keys, DIR/server.pub must exist
 * and DIR/client.key is used when it does. Caller frees with wire_client_destroy. NULL with
 * err set ("keys/server.pub: cannot open: No such file or directory"). */
wire_client_t *wireopt_client_new(const wireopt_t *o, const char *endpoints, const char *prog,
                                  err_t *err);
#endif /* RLHF_WIREOPT_H */
