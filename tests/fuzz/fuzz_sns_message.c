/*
 * fuzz_sns_message.c — what POST /events/sns does with a body before any
 * network I/O, on arbitrary bytes: aws_sns_message_parse, the string SNS
 * signs (aws_sns_string_to_sign), the SigningCertURL rules
 * (aws_sns_cert_url_check) and, for a Notification, its Message read as a
 * Batch event (json_loads, rt_batch_event_parse) as routes/events.c does.
 * Checked besides crashes and leaks: a parsed message has a string to sign
 * that ends with its Type, and a refused one returns a documented code.
 */
#include <jansson.h>

#include "aws/sns_verify.h"
#include "common/err.h"
#include "routes/batch_event.h"
#include "tests/fuzz/fuzz.h"

static void check_string_to_sign(const struct aws_sns_message *m)
{
    char *sts = aws_sns_string_to_sign(m);
    FUZZ_CHECK(sts != NULL); /* the Type of a parsed message is always known */
    char tail[64];
    int n = snprintf(tail, sizeof(tail), "Type\n%s\n", m->type);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(tail));
    size_t len = strlen(sts);
    FUZZ_CHECK(len >= (size_t)n && memcmp(sts + len - (size_t)n, tail, (size_t)n) == 0);
    FUZZ_CHECK(strncmp(sts, "Message\n", 8) == 0);
    free(sts);
}

static void read_notification(const char *message)
{
    json_t *event = json_loads(message, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(event)) {
        json_t *errors = json_array();
        FUZZ_CHECK(errors != NULL);
        struct db_job_event ev;
        int rc = rt_batch_event_parse(&ev, errors, event, "sns");
        FUZZ_CHECK(rc == GW_OK ? json_array_size(errors) == 0 : json_array_size(errors) > 0);
        json_decref(errors);
    }
    json_decref(event);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aws_sns_message m;
    struct gw_err err = {0};
    int rc = aws_sns_message_parse(&m, (const char *)data, size, &err);
    if (rc != GW_OK) {
        FUZZ_CHECK(rc == GW_EPARSE || rc == GW_EINVAL || rc == GW_ETOOBIG);
        aws_sns_message_dispose(&m); /* documented as harmless */
        return 0;
    }
    FUZZ_CHECK(m.message != NULL && m.signature_b64 != NULL);
    check_string_to_sign(&m);
    rc = aws_sns_cert_url_check(NULL, m.signing_cert_url, NULL);
    FUZZ_CHECK(rc == GW_OK || rc == GW_EINVAL);
    if (strcmp(m.type, "Notification") == 0)
        read_notification(m.message);
    aws_sns_message_dispose(&m);
    return 0;
}
