/*
 * ratelimit.c — fixed-size token-bucket table (ratelimit.h). Open addressing
 * over a power-of-two table with a short probe; a key not found within the
 * probe takes the probed slot whose bucket has been full the longest.
 */
#include "common/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#include "common/poison.h"

enum { PROBE = 8 };

struct bucket {
    char key[GW_RATELIMIT_KEY_MAX + 1]; /* "" when the slot is free */
    double tokens;
    int64_t at_ns; /* when tokens was last computed */
};

struct gw_ratelimit {
    pthread_mutex_t mu;
    size_t mask;
    struct bucket *slots;
};

int gw_ratelimit_new(struct gw_ratelimit **out, size_t slots)
{
    *out = NULL;
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 24))
        n <<= 1;
    struct gw_ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return GW_ENOMEM;
    rl->slots = calloc(n, sizeof(*rl->slots));
    if (rl->slots == NULL) {
        free(rl);
        return GW_ENOMEM;
    }
    rl->mask = n - 1;
    pthread_mutex_init(&rl->mu, NULL);
    *out = rl;
    return GW_OK;
}

void gw_ratelimit_free(struct gw_ratelimit *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl->slots);
    free(rl);
}

/* FNV-1a: keys are short and chosen by clients, but the probe is bounded and
 * a collision only shares a slot's eviction, never its tokens. */
static size_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)h;
}

static void refill(struct bucket *b, double rate, double burst, int64_t now_ns)
{
    double dt = (double)(now_ns - b->at_ns) / 1e9;
    if (dt > 0) {
        b->tokens = fmin(burst, b->tokens + dt * rate);
        b->at_ns = now_ns;
    }
}

/* The bucket for key, found or (re)made full. Called with the mutex held. */
static struct bucket *find(struct gw_ratelimit *rl, const char *key, double rate, double burst,
                           int64_t now_ns)
{
    size_t h = hash(key);
    struct bucket *victim = NULL;
    double victim_idle = -1;
    for (size_t i = 0; i < PROBE; i++) {
        struct bucket *b = &rl->slots[(h + i) & rl->mask];
        if (b->key[0] != '\0' && strcmp(b->key, key) == 0) {
            refill(b, rate, burst, now_ns);
            return b;
        }
        if (b->key[0] == '\0') {
            if (victim_idle < 1e300) {
                victim = b;
                victim_idle = 1e300; /* a free slot beats any idle one */
            }
            continue;
        }
        refill(b, rate, burst, now_ns);
        /* Only a full bucket may be reused: it is the same as a new one. */
        double idle = b->tokens >= burst ? (double)(now_ns - b->at_ns) : -1;
        if (b->tokens >= burst && idle > victim_idle) {
            victim = b;
            victim_idle = idle;
        }
    }
    if (victim == NULL)
        return NULL; /* every probed bucket is in use: no new key now */
    memset(victim, 0, sizeof(*victim));
    size_t n = strlen(key);
    if (n > GW_RATELIMIT_KEY_MAX)
        n = GW_RATELIMIT_KEY_MAX;
    memcpy(victim->key, key, n);
    victim->tokens = burst;
    victim->at_ns = now_ns;
    return victim;
}

static int take(struct gw_ratelimit *rl, const char *key, double rate, double burst, int64_t now_ns,
                long *retry_after_s, int consume)
{
    if (rate <= 0)
        return 1;
    if (burst < 1)
        burst = 1;
    char k[GW_RATELIMIT_KEY_MAX + 1];
    size_t n = strlen(key);
    if (n > GW_RATELIMIT_KEY_MAX)
        n = GW_RATELIMIT_KEY_MAX;
    memcpy(k, key, n);
    k[n] = '\0';
    pthread_mutex_lock(&rl->mu);
    struct bucket *b = find(rl, k, rate, burst, now_ns);
    int ok = 1;
    double missing = 0;
    if (b == NULL) {
        ok = 0; /* the table is saturated by limited keys: refuse, do not grow */
        missing = 1;
    } else if (b->tokens >= 1) {
        if (consume)
            b->tokens -= 1;
    } else {
        ok = 0;
        missing = 1 - b->tokens;
    }
    pthread_mutex_unlock(&rl->mu);
    if (!ok && retry_after_s != NULL) {
        double s = ceil(missing / rate);
        *retry_after_s = s < 1 ? 1 : s > 3600 ? 3600 : (long)s;
    }
    return ok;
}

int gw_ratelimit_take(struct gw_ratelimit *rl, const char *key, double rate, double burst,
                      int64_t now_ns, long *retry_after_s)
{
    return take(rl, key, rate, burst, now_ns, retry_after_s, 1);
}

int gw_ratelimit_peek(struct gw_ratelimit *rl, const char *key, double rate, double burst,
                      int64_t now_ns, long *retry_after_s)
{
    return take(rl, key, rate, burst, now_ns, retry_after_s, 0);
}
