/*
 * sigv4_bench.c — how fast aws/sigv4.c signs a typical AWS Batch SubmitJob
 * request: POST /v1/submitjob with a 1 KB JSON body and six signed headers
 * (host, content-type, content-length, accept, x-amz-date and a session
 * token, as with ECS task credentials). Signs it in a loop for a few
 * seconds (argv[1], default 2) and prints ns/op and ops/s for the whole
 * Authorization header, then, for a shorter while each, its two halves:
 * canonical request + string to sign (SHA-256 of the body included), and
 * the HMAC chain. One thread; built and run by bench/sigv4.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/parse.h"
#include "common/time.h"

#include "common/poison.h"

#define BODY_LEN 1024

static char body[BODY_LEN + 1];

/* A SubmitJob body padded to exactly BODY_LEN bytes of JSON. */
static void make_body(void)
{
    static const char head[] =
        "{\"jobName\":\"train-resnet50-2024-06-01T12-00-00Z\",\"jobQueue\":\"arn:aws:batch:us-"
        "east-1:123456789012:job-queue/ml-gpu\",\"jobDefinition\":\"arn:aws:batch:us-east-1:"
        "123456789012:job-definition/ml-train:7\",\"containerOverrides\":{\"command\":["
        "\"python\",\"train.py\",\"--epochs\",\"90\"],\"environment\":[{\"name\":\"MLGW_JOB_"
        "ID\",\"value\":\"0190a7c2-5b7e-7c3e-9a41-2f1d3c4b5a69\"}],\"resourceRequirements\":["
        "{\"type\":\"GPU\",\"value\":\"1\"}]},\"tags\":{\"notes\":\"";
    static const char tail[] = "\"}}";
    size_t hl = sizeof(head) - 1, tl = sizeof(tail) - 1;
    memcpy(body, head, hl);
    memset(body + hl, 'x', BODY_LEN - hl - tl);
    memcpy(body + BODY_LEN - tl, tail, tl);
    body[BODY_LEN] = '\0';
}

enum what { AUTHORIZATION, CANONICAL, HMAC_CHAIN };

struct fixture {
    struct aws_sigv4_request req;
    struct aws_credentials creds;
    struct aws_sigv4_params p;
    struct gw_buf creq, sts;
    char sts_text[512];
};

static int run_once(struct fixture *f, enum what w)
{
    char out[2048];
    char signed_headers[256];
    int rc = GW_OK;
    switch (w) {
    case AUTHORIZATION:
        rc = aws_sigv4_authorization(out, sizeof(out), &f->req, &f->creds, &f->p);
        break;
    case CANONICAL:
        rc = aws_sigv4_canonical_request(&f->creq, signed_headers, sizeof(signed_headers), &f->req,
                                         &f->p);
        if (rc == GW_OK)
            rc = aws_sigv4_string_to_sign(&f->sts, f->creq.data, &f->p);
        break;
    case HMAC_CHAIN:
        aws_sigv4_signature(out, f->creds.secret_access_key, f->sts_text, &f->p);
        rc = out[0] != '\0' ? GW_OK : GW_EIO;
        break;
    }
    return rc;
}

/* This process's CPU time: unlike wall time, not inflated when other
 * processes share the cores. */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs w for about seconds; prints and returns wall ns per operation. */
static double measure(struct fixture *f, enum what w, const char *label, double seconds)
{
    const int64_t budget = (int64_t)(seconds * 1e9);
    long long ops = 0;
    for (int i = 0; i < 1000; i++) /* warm-up */
        if (run_once(f, w) != GW_OK) {
            fprintf(stderr, "sigv4_bench: %s failed\n", label);
            exit(1);
        }
    int64_t start = gw_monotonic_ns(), now = start, cpu_start = cpu_ns();
    while (now - start < budget) {
        for (int i = 0; i < 256; i++)
            if (run_once(f, w) != GW_OK) {
                fprintf(stderr, "sigv4_bench: %s failed\n", label);
                exit(1);
            }
        ops += 256;
        now = gw_monotonic_ns();
    }
    double ns = (double)(now - start) / (double)ops;
    double cpu = (double)(cpu_ns() - cpu_start) / (double)ops;
    printf("%-40s %7.0f ns/op %9.0f ops/s  cpu %7.0f ns/op  (%lld ops, %.2f s)\n", label, ns,
           1e9 / ns, cpu, ops, (double)(now - start) / 1e9);
    return ns;
}

int main(int argc, char **argv)
{
    double seconds = 2.0;
    if (argc > 1) {
        long long s;
        if (gw_parse_ll(&s, argv[1], 1, 600) != GW_OK) {
            fprintf(stderr, "usage: sigv4_bench [SECONDS 1..600]\n");
            return 2;
        }
        seconds = (double)s;
    }
    make_body();

    static struct fixture f;
    const struct aws_sigv4_header headers[] = {
        {"Host", "batch.us-east-1.amazonaws.com"},
        {"Content-Type", "application/json"},
        {"Content-Length", "1024"},
        {"Accept", "application/json"},
        {"X-Amz-Date", "20240601T120000Z"},
        {"X-Amz-Security-Token",
         "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleexampleexampleexampleex"
         "ampleAiAexampleexampleexampleexampleexampleexampleKpcDCHIQABoMMTIzNDU2Nzg5MDEyIgz"
         "exampleexampleexampleexampleexampleexampleexampleexampleexampleexampleexampleexa"
         "mpleexampleexampleexampleexampleexampleexampleexampleexampleexampleexample=="},
    };
    f.req = (struct aws_sigv4_request){
        .method = "POST",
        .path = "/v1/submitjob",
        .query = "",
        .headers = headers,
        .nheaders = sizeof(headers) / sizeof(headers[0]),
        .body = body,
        .body_len = BODY_LEN,
    };
    f.p = (struct aws_sigv4_params){
        .region = "us-east-1", .service = "batch", .amz_date = "20240601T120000Z"};
    int n1 = snprintf(f.creds.access_key_id, sizeof(f.creds.access_key_id), "ASIAEXAMPLEEXAMPLE12");
    int n2 = snprintf(f.creds.secret_access_key, sizeof(f.creds.secret_access_key), "%s",
                      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    int n3 = snprintf(f.creds.session_token, sizeof(f.creds.session_token), "%s", headers[5].value);
    if (n1 <= 0 || n2 <= 0 || n3 <= 0 || (size_t)n3 >= sizeof(f.creds.session_token))
        return 1;
    gw_buf_init(&f.creq, 64 * 1024);
    gw_buf_init(&f.sts, 1024);

    /* The string to sign the HMAC-only measurement signs. */
    char sh[256];
    if (aws_sigv4_canonical_request(&f.creq, sh, sizeof(sh), &f.req, &f.p) != GW_OK ||
        aws_sigv4_string_to_sign(&f.sts, f.creq.data, &f.p) != GW_OK)
        return 1;
    int n4 = snprintf(f.sts_text, sizeof(f.sts_text), "%s", f.sts.data);
    if (n4 <= 0 || (size_t)n4 >= sizeof(f.sts_text))
        return 1;

    printf("sigv4_bench: Batch SubmitJob, %d-byte JSON body, %zu signed headers, 1 thread\n",
           BODY_LEN, f.req.nheaders);
    measure(&f, AUTHORIZATION, "Authorization header (whole signature)", seconds);
    double part = seconds / 4 < 0.5 ? 0.5 : seconds / 4;
    measure(&f, CANONICAL, "  canonical request + string to sign", part);
    measure(&f, HMAC_CHAIN, "  HMAC chain (signing key + signature)", part);

    gw_buf_dispose(&f.creq);
    gw_buf_dispose(&f.sts);
    return 0;
}
