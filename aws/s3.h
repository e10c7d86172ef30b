/*
 * s3.h — the S3 calls the gateway makes: GetObject, PutObject, HeadObject,
 * and presigned GET/PUT URLs. Keys are encoded here; callers pass them raw.
 *
 * Each call blocks for the network (retries included; presigning only
 * signs) and may run on any thread: threads share one aws_client
 * (transport.h). Inputs are borrowed for the call; results go into the
 * caller's memory (out, size, etag) or are new (a presigned URL: free()).
 */
#ifndef MLGW_AWS_S3_H
#define MLGW_AWS_S3_H

#include "aws/transport.h"

/* GetObject into out (reset first, bounded by max_bytes; 0: 64 MiB).
 * GW_ENOTFOUND for NoSuchKey / NoSuchBucket (err says which). */
int aws_s3_get_object(struct gw_buf *out, struct aws_client *c, const char *bucket, const char *key,
                      size_t max_bytes, struct aws_error *err);

/* PutObject; etag (may be NULL) gets the ETag. */
int aws_s3_put_object(char etag[128], struct aws_client *c, const char *bucket, const char *key,
                      const void *data, size_t len, const char *content_type,
                      struct aws_error *err);

/* HeadObject: size and ETag. GW_ENOTFOUND when absent. */
int aws_s3_head_object(long long *size, char etag[128], struct aws_client *c, const char *bucket,
                       const char *key, struct aws_error *err);

/* A presigned URL for method "GET" or "PUT" valid expires_s seconds (new). */
int aws_s3_presign(char **url, struct aws_client *c, const char *method, const char *bucket,
                   const char *key, int expires_s, struct aws_error *err);

#endif
