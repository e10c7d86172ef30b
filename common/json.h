/*
 * json.h — small jansson helpers used across floors.
 *
 * Pure functions; safe from any thread on values the caller does not share.
 */
#ifndef MLGW_COMMON_JSON_H
#define MLGW_COMMON_JSON_H

#include <jansson.h>

/* The string member k of object o (borrowed: valid while o lives), or NULL
 * when o is not an object, k is missing or not a string. */
const char *gw_json_str(const json_t *o, const char *k);

/* 1 and the value in *out when v is a whole number: an integer, or a real
 * with no fraction inside the range of long long (JSON Schema's "integer"
 * counts 3.0 as one); 0 otherwise. */
int gw_json_whole(const json_t *v, long long *out);

#endif
