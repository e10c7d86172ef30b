/*
 * json.c — jansson helpers (json.h).
 */
#include "common/json.h"

#include "common/poison.h"

const char *gw_json_str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

int gw_json_whole(const json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = (long long)json_integer_value(v);
        return 1;
    }
    if (!json_is_real(v))
        return 0;
    double d = json_real_value(v);
    /* 2^63 as a double: whole reals at or past it do not fit. */
    if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
        return 0;
    long long n = (long long)d;
    if ((double)n != d)
        return 0;
    *out = n;
    return 1;
}
