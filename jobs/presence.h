/*
 * presence.h — this gateway's life, as other gateways see it: one PostgreSQL
 * connection of its own holding a session-level advisory lock on a random
 * key. PostgreSQL releases the lock the moment that session ends, so a
 * gateway that dies (kill -9, a crash, its host gone once TCP keepalives
 * give up) stops being "alive" at once, and the work it had claimed
 * (dispatch_outbox.lease_holder) is taken over by the next dispatcher poll
 * instead of after the whole lease.
 *
 * One instance per process, started before the dispatchers and stopped after
 * them. jobs_presence_key and jobs_presence_held are safe from any thread.
 */
#ifndef MLGW_JOBS_PRESENCE_H
#define MLGW_JOBS_PRESENCE_H

#include <stdint.h>

#include "common/config.h"
#include "common/err.h"

struct jobs_presence;

/* Starts the presence: a random key, and a worker that takes the lock and
 * takes it again after its connection is lost. *out is new (stop it).
 * GW_ENOMEM; a database that is down is not an error (the worker retries). */
int jobs_presence_start(struct jobs_presence **out, const struct gw_config *cfg,
                        struct gw_err *err);
/* Releases the lock and frees p; NULL is a no-op. */
void jobs_presence_stop(struct jobs_presence *p);

/* This gateway's key (a positive 62-bit number). */
int64_t jobs_presence_key(const struct jobs_presence *p);
/* Whether the lock is held now: while it is not, claims this gateway makes
 * would look abandoned to the others, so dispatchers claim nothing. */
int jobs_presence_held(const struct jobs_presence *p);

#endif
