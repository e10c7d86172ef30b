/*
 * keys_cmd.h — the `ml-gateway keys` subcommand.
 */
#ifndef MLGW_KEYS_CMD_H
#define MLGW_KEYS_CMD_H

#include "common/config.h"

/* argv starts after "keys". Returns the process exit status. */
int srv_cmd_keys(const struct gw_config *cfg, int argc, char **argv);

#endif
