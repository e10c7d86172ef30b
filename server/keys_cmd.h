/*
 * keys_cmd.h — the `ml-gateway keys` subcommand.
 *
 * Runs on the main thread of a short-lived process; prints the new key once
 * and never logs it.
 */
#ifndef MLGW_KEYS_CMD_H
#define MLGW_KEYS_CMD_H

#include "common/config.h"

/* argv starts after "keys". Returns the process exit status. */
int srv_cmd_keys(const struct gw_config *cfg, int argc, char **argv);

#endif
