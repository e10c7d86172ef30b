/*
 * params.h — request parameters the endpoint files share: the job id in a
 * path, unknown and invalid query parameters (collected, then answered as one
 * 400), the page size of a list, and the opaque cursors of paginated answers.
 * Nothing here reads the database or calls AWS.
 *
 * Safe from any thread on its own request; values are borrowed from the
 * request or written into caller buffers.
 */
#ifndef MLGW_ROUTES_PARAMS_H
#define MLGW_ROUTES_PARAMS_H

#include <jansson.h>
#include <stddef.h>

#include "routes/http.h"

/* API.md, "Pagination": ?limit= is 1–200, 50 when absent. */
enum { RT_LIMIT_DEFAULT = 50, RT_LIMIT_MAX = 200 };

/* The {id} path parameter when it is a canonical UUID (borrowed for the
 * request). Anything else cannot name a job: out gets a 404 and NULL is
 * returned. */
const char *rt_job_id_param(struct rt_request *req, struct rt_reply *out);

/* Appends {"field": field, "message": message} to errors. */
void rt_param_error(json_t *errors, const char *field, const char *message);

/* Appends one error to errors for every query parameter whose name is not
 * in known (a NULL-terminated list). */
void rt_params_unknown(json_t *errors, struct rt_request *req, const char *const *known);

/* ?limit= into *out: RT_LIMIT_DEFAULT when absent; an error appended to
 * errors when it is not a whole number in 1..RT_LIMIT_MAX. */
void rt_param_limit(int *out, struct rt_request *req, json_t *errors);

/*
 * Cursors are base64url (no padding) of tag + payload, where the tag names
 * the kind and version of the position ("j1:" a job id in GET /jobs).
 * rt_cursor_encode writes the cursor into out and returns 0, or -1 when it
 * does not fit in outlen bytes. rt_cursor_decode copies the payload of a
 * cursor carrying tag into out (NUL-terminated) and returns its length, or
 * -1 when cursor is not valid base64url, has another tag, holds a NUL byte
 * or its payload does not fit in outlen bytes.
 */
int rt_cursor_encode(char *out, size_t outlen, const char *tag, const char *payload);
long rt_cursor_decode(char *out, size_t outlen, const char *tag, const char *cursor);

/* RFC 9110 If-None-Match against a strong etag ("\"...\""): 1 when the
 * header (NULL: absent) is "*" or lists the tag, weak (W/) or not (the
 * comparison is the weak one the RFC prescribes for If-None-Match). */
int rt_etag_matches(const char *if_none_match, const char *etag);
/* A document a poller revalidates (a job, a pipeline run): 200 with json
 * (steals it) or, when If-None-Match names its ETag, 304 with no body; the
 * ETag (etag, or the document's own when etag is NULL) and
 * Cache-Control: no-cache either way. */
void rt_reply_document(struct rt_request *req, struct rt_reply *out, char *json, size_t len,
                       const char *etag);

#endif
