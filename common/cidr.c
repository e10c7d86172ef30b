/*
 * cidr.c — CIDR ranges: parsing and matching (cidr.h).
 */
#include "common/cidr.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/parse.h"

#include "common/poison.h"

int gw_cidr_parse(struct gw_cidr *out, const char *text, size_t len)
{
    memset(out, 0, sizeof(*out));
    while (len > 0 && *text == ' ') {
        text++;
        len--;
    }
    while (len > 0 && text[len - 1] == ' ')
        len--;
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return GW_EINVAL;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else {
        return GW_EINVAL;
    }
    if (slash != NULL) {
        long long prefix;
        if (slash[1] < '0' || slash[1] > '9' ||
            gw_parse_ll(&prefix, slash + 1, 0, (long long)out->prefix) != GW_OK)
            return GW_EINVAL;
        out->prefix = (unsigned)prefix;
    }
    return GW_OK;
}

int gw_cidr_contains(const struct gw_cidr *c, int family, const unsigned char *addr)
{
    if (c->family != family)
        return 0;
    unsigned whole = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[whole] & mask) == (addr[whole] & mask);
}

/* Calls fn on each comma-separated entry until it returns nonzero; returns
 * that value, or 0. */
static int each_entry(const char *list, int (*fn)(const struct gw_cidr *c, int ok, void *arg),
                      void *arg)
{
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        struct gw_cidr c;
        int ok = gw_cidr_parse(&c, p, len) == GW_OK;
        int r = fn(&c, ok, arg);
        if (r != 0)
            return r;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

static int entry_bad(const struct gw_cidr *c, int ok, void *arg)
{
    (void)c;
    (void)arg;
    return !ok;
}

int gw_cidr_list_valid(const char *list)
{
    return list != NULL && list[0] != '\0' && each_entry(list, entry_bad, NULL) == 0;
}

struct probe {
    int family;
    const unsigned char *addr;
};

static int entry_holds(const struct gw_cidr *c, int ok, void *arg)
{
    const struct probe *p = arg;
    return ok && gw_cidr_contains(c, p->family, p->addr);
}

int gw_cidr_list_contains(const char *list, int family, const unsigned char *addr)
{
    if (list == NULL || list[0] == '\0')
        return 0;
    struct probe p = {family, addr};
    return each_entry(list, entry_holds, &p);
}
