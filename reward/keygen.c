/* reward/keygen.c: `reward keygen --out DIR` — CURVE key pairs for `reward serve --curve-keys`
 * and its clients (wire_keygen: libzmq's Curve25519 keys in z85, secret files mode 0600). */
#include "cli.h"
#include "reward.h"
#include "wire.h"
#include <getopt.h>
#include <stdio.h>

#define PROG "reward keygen"

#define KEYGEN_HELP                                                                                \
    "usage: reward keygen --out DIR\n"                                                             \
    "\n"                                                                                           \
    "Writes a fresh server key pair and client key pair for CURVE (encrypted ZeroMQ, the server\n" \
    "authenticated by its public key) into DIR (created mode 0700 if missing):\n"                  \
    "  server.key  the server's secret key: `reward serve --curve-keys DIR` reads it; keep it\n"   \
    "              on the server\n"                                                                \
    "  server.pub  the server's public key: every client needs it (--curve-keys DIR)\n"            \
    "  client.key  a client's secret key (optional: a client without one makes a fresh pair)\n"    \
    "  client.pub  its public key\n"                                                               \
    "Every file is mode 0600. Existing files are never overwritten: a server whose key\n"          \
    "changed by accident would lock out its clients.\n"                                            \
    "\n"                                                                                           \
    "options:\n"                                                                                   \
    "  --out DIR          where to write the four files\n"

enum { O_OUT = CLI_OPTS_COMMAND };

int reward_cmd_keygen(int argc, char **argv) {
    static const struct option longopts[] = {
        {"out", required_argument, NULL, O_OUT}, CLI_COMMON_LONGOPTS, {0}};
    const char *out = NULL;
    cli_args_t args;
    int c;
    cli_args_init(&args, PROG, argc, argv, longopts);
    while ((c = cli_args_next(&args)) != -1)
        if (c == O_OUT) out = args.arg;
    cli_args_end(&args, KEYGEN_HELP CLI_COMMON_HELP);
    cli_require(PROG, "--out", out);
    err_t err = ERR_INIT;
    if (wire_keygen(out, &err)) cli_die(PROG, "%s", err.msg);
    printf("reward keygen: wrote %s/server.key, server.pub, client.key, client.pub\n"
           "  server:  reward serve --curve-keys %s ...   (server.key stays on the server)\n"
           "  clients: copy server.pub (and client.key) into a directory D, then --curve-keys D\n",
           out, out);
    return 0;
}
