/*
 * fuzz_aws_error.c — the AWS error reader of aws/transport.c
 * (aws_error_parse, with aws_xml_text under it) on arbitrary answers.
 *
 * Input: a first line "STATUS[ X-AMZN-ERRORTYPE]" then the body, e.g.
 * "400 ThrottlingException:http://internal.amazon.com/\n{\"message\":...}".
 * STATUS is the leading digits (none: 0); the header is what follows one
 * space (absent: NULL). Without a newline the whole input is the body.
 * Checked besides crashes: err has a code, both texts are terminated inside
 * their arrays, and 5xx and 429 are retryable.
 */
#include "aws/transport.h"
#include "common/buf.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t head_len = nl != NULL ? (size_t)(nl - text) : 0;
    const char *body = nl != NULL ? nl + 1 : text;
    size_t body_len = size - (size_t)(body - text);

    long status = 0;
    size_t i = 0;
    for (; i < head_len && i < 3 && text[i] >= '0' && text[i] <= '9'; i++)
        status = status * 10 + (text[i] - '0');
    char *type_header = NULL;
    if (i < head_len && text[i] == ' ')
        type_header = fuzz_cstr(data + i + 1, head_len - i - 1);

    struct aws_response r;
    memset(&r, 0, sizeof(r));
    r.status = status;
    r.content_length = -1;
    gw_buf_init(&r.body, 8u << 20);
    FUZZ_CHECK(gw_buf_add(&r.body, body, body_len) == GW_OK);

    struct aws_error err;
    memset(&err, 0, sizeof(err));
    aws_error_parse(&err, &r, type_header);
    FUZZ_CHECK(err.http_status == status);
    FUZZ_CHECK(memchr(err.code, '\0', sizeof(err.code)) != NULL && err.code[0] != '\0');
    FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
    FUZZ_CHECK(memchr(err.request_id, '\0', sizeof(err.request_id)) != NULL);
    if (status >= 500 || status == 429)
        FUZZ_CHECK(err.retryable);

    aws_response_dispose(&r);
    free(type_header);
    return 0;
}
