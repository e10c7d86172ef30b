/*
 * json.c — jansson helpers (json.h).
 */
#include "common/json.h"

#include "common/poison.h"

const char *gw_json_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}
