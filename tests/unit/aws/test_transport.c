/*
 * test_transport.c — unit tests for the pure pieces of one attempt in
 * aws/transport.c: which headers are signed, in which order, and how a
 * libcurl failure is described (retryable, ambiguous). The retries against a
 * live peer are tests/integration/test_aws_transport.c.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <string.h>

#include "aws/transport.h"
#include "common/err.h"

static void assert_header(const struct aws_sigv4_header *h, const char *name, const char *value)
{
    cr_assert_str_eq(h->name, name);
    cr_assert_str_eq(h->value, value, "%s", name);
}

Test(aws_transport, a_plain_request_signs_host_and_date_only)
{
    struct aws_request req = {.method = "GET", .path = "/"};
    struct aws_sigv4_header sh[8];
    size_t n =
        aws_sign_headers(sh, 8, &req, "batch.eu-west-1.amazonaws.com", "20260101T000000Z", "", "");
    cr_assert_eq(n, 2);
    assert_header(&sh[0], "host", "batch.eu-west-1.amazonaws.com");
    assert_header(&sh[1], "x-amz-date", "20260101T000000Z");
    cr_assert_eq(aws_sign_headers(sh, 8, &req, "h", "d", NULL, NULL), 2, "no token: none sent");
}

Test(aws_transport, every_optional_header_comes_in_its_place_then_the_requests_own)
{
    const struct aws_header extra[] = {{"x-amz-target", "AWSBatch.SubmitJob"},
                                       {"x-amz-meta-a", "1"}};
    struct aws_request req = {.method = "PUT",
                              .path = "/k",
                              .content_type = "application/json",
                              .s3 = 1,
                              .headers = extra,
                              .nheaders = 2};
    struct aws_sigv4_header sh[8];
    size_t n = aws_sign_headers(sh, 8, &req, "h", "d", "tok", "abc123");
    cr_assert_eq(n, 7);
    assert_header(&sh[0], "host", "h");
    assert_header(&sh[1], "x-amz-date", "d");
    assert_header(&sh[2], "content-type", "application/json");
    assert_header(&sh[3], "x-amz-security-token", "tok");
    assert_header(&sh[4], "x-amz-content-sha256", "abc123");
    assert_header(&sh[5], "x-amz-target", "AWSBatch.SubmitJob");
    assert_header(&sh[6], "x-amz-meta-a", "1");
}

Test(aws_transport, the_requests_own_headers_stop_at_the_room_there_is)
{
    const struct aws_header extra[] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
    struct aws_request req = {.method = "GET", .path = "/", .headers = extra, .nheaders = 3};
    struct aws_sigv4_header sh[5];
    cr_assert_eq(aws_sign_headers(sh, 5, &req, "h", "d", "", ""), 5);
    assert_header(&sh[4], "c", "3");
    cr_assert_eq(aws_sign_headers(sh, 4, &req, "h", "d", "", ""), 0, "less room than needed");
}

Test(aws_transport, a_refused_connection_is_retryable_and_not_ambiguous)
{
    static const CURLcode before_sending[] = {
        CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT,
        CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION};
    for (size_t i = 0; i < GW_ARRAY_LEN(before_sending); i++) {
        struct aws_error err;
        memset(&err, 0xA5, sizeof(err));
        aws_error_from_curl(&err, before_sending[i]);
        cr_assert_eq(err.http_status, 0);
        cr_assert(err.retryable);
        cr_assert_not(err.ambiguous, "curl code %d", (int)before_sending[i]);
        char code[32];
        (void)snprintf(code, sizeof(code), "curl:%d", (int)before_sending[i]);
        cr_assert_str_eq(err.code, code);
        cr_assert_str_eq(err.message, curl_easy_strerror(before_sending[i]));
    }
}

Test(aws_transport, a_timeout_after_sending_is_retryable_and_ambiguous)
{
    struct aws_error err = {0};
    aws_error_from_curl(&err, CURLE_OPERATION_TIMEDOUT);
    cr_assert(err.retryable);
    cr_assert(err.ambiguous);
    cr_assert_str_eq(err.code, "curl:28");
    aws_error_from_curl(&err, CURLE_RECV_ERROR);
    cr_assert(err.retryable);
    cr_assert(err.ambiguous);
}

Test(aws_transport, an_answer_over_the_limit_is_not_retried_whichever_code_says_so)
{
    static const CURLcode too_big[] = {CURLE_WRITE_ERROR, CURLE_FILESIZE_EXCEEDED};
    for (size_t i = 0; i < GW_ARRAY_LEN(too_big); i++) {
        struct aws_error err = {0};
        aws_error_from_curl(&err, too_big[i]);
        cr_assert_not(err.retryable, "curl code %d", (int)too_big[i]);
        cr_assert_str_eq(err.message, "response larger than allowed");
        cr_assert_eq(err.http_status, 0);
    }
}
