/*
 * s3.c — S3 object calls (REST, XML errors) and presigned URLs.
 */
#include "aws/s3.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

#include "common/poison.h"

enum { S3_DEFAULT_MAX = 64 * 1024 * 1024 };

/* "/" + the key percent-encoded, '/' kept. */
static int key_path(struct gw_buf *out, const char *key)
{
    int rc = gw_buf_adds(out, "/");
    return rc == GW_OK ? aws_uri_encode(out, key, strlen(key), 1) : rc;
}

static int not_found(int rc, const struct aws_error *err)
{
    if (rc != GW_EUPSTREAM)
        return rc;
    if (err->http_status == 404 || strcmp(err->code, "NoSuchKey") == 0 ||
        strcmp(err->code, "NoSuchBucket") == 0)
        return GW_ENOTFOUND;
    return rc;
}

/* The request for method on bucket/key; path receives the encoded key. */
static int s3_request(struct aws_request *req, struct gw_buf *path, const char *method,
                      const char *bucket, const char *key, struct aws_error *err)
{
    gw_buf_init(path, 8192);
    if (key_path(path, key) != GW_OK) {
        memset(err, 0, sizeof(*err));
        gw_fmt(err->code, sizeof(err->code), "%s", "KeyTooLong");
        return GW_EINVAL;
    }
    *req = (struct aws_request){
        .service = "s3",
        .endpoint_id = "S3",
        .host_prefix = "s3",
        .method = method,
        .path = path->data,
        .s3 = 1,
        .bucket = bucket,
        .idempotent = 1, /* GET, HEAD and PUT of a whole object can be repeated */
    };
    return GW_OK;
}

static int s3_call(struct aws_response *resp, struct aws_client *c, const char *method,
                   const char *bucket, const char *key, const void *body, size_t len,
                   const char *ctype, size_t max, struct aws_error *err)
{
    memset(resp, 0, sizeof(*resp));
    struct aws_request req;
    struct gw_buf path;
    int rc = s3_request(&req, &path, method, bucket, key, err);
    if (rc == GW_OK) {
        req.content_type = ctype;
        req.body = body;
        req.body_len = len;
        req.max_response = max;
        rc = aws_call(resp, c, &req, err);
    }
    gw_buf_dispose(&path);
    return rc;
}

int aws_s3_get_object(struct gw_buf *out, struct aws_client *c, const char *bucket, const char *key,
                      size_t max_bytes, struct aws_error *err)
{
    gw_buf_reset(out);
    struct aws_response resp;
    int rc = s3_call(&resp, c, "GET", bucket, key, NULL, 0, NULL,
                     max_bytes ? max_bytes : S3_DEFAULT_MAX, err);
    if (rc == GW_OK && resp.body.len > 0)
        rc = gw_buf_add(out, resp.body.data, resp.body.len);
    aws_response_dispose(&resp);
    return not_found(rc, err);
}

int aws_s3_put_object(char etag[128], struct aws_client *c, const char *bucket, const char *key,
                      const void *data, size_t len, const char *content_type, struct aws_error *err)
{
    struct aws_response resp;
    int rc = s3_call(&resp, c, "PUT", bucket, key, data ? data : "", len,
                     content_type ? content_type : "application/octet-stream", 0, err);
    if (rc == GW_OK && etag != NULL)
        gw_fmt(etag, 128, "%s", resp.etag);
    aws_response_dispose(&resp);
    return not_found(rc, err);
}

int aws_s3_head_object(long long *size, char etag[128], struct aws_client *c, const char *bucket,
                       const char *key, struct aws_error *err)
{
    struct aws_response resp;
    int rc = s3_call(&resp, c, "HEAD", bucket, key, NULL, 0, NULL, 0, err);
    if (rc == GW_OK) {
        if (size != NULL)
            *size = resp.content_length;
        if (etag != NULL)
            gw_fmt(etag, 128, "%s", resp.etag);
    }
    aws_response_dispose(&resp);
    return not_found(rc, err);
}

int aws_s3_presign(char **url, struct aws_client *c, const char *method, const char *bucket,
                   const char *key, int expires_s, struct aws_error *err)
{
    *url = NULL;
    struct aws_request req;
    struct gw_buf path;
    int rc = s3_request(&req, &path, method, bucket, key, err);
    if (rc == GW_OK)
        rc = aws_presign_url(url, c, &req, expires_s, err);
    gw_buf_dispose(&path);
    return rc;
}
