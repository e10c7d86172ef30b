/*
 * fuzz_credentials.c — the shared credentials/config file reader of
 * aws/credentials.c on arbitrary bytes, two ways:
 *   - line by line through the two pieces it exposes (aws_ini_section,
 *     aws_ini_key_value), each line stripped of surrounding white space as
 *     the reader strips it; what they return must point into the line;
 *   - whole, through the provider's own entry point: the bytes are written to
 *     a temporary file named by AWS_SHARED_CREDENTIALS_FILE and
 *     AWS_CONFIG_FILE (the same file, read with both syntaxes) and
 *     aws_creds_get runs for the default profile and for profile "x", with
 *     IMDS disabled and no other source, so no network is touched.
 * Credentials it hands out must be a non-empty key pair without control
 * characters.
 */
#include <fcntl.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "common/err.h"
#include "common/log.h"
#include "tests/fuzz/fuzz.h"

static char file_path[4096];

static void remove_file(void)
{
    if (file_path[0] != '\0')
        (void)unlink(file_path);
}

/* The temporary file, made once (removed at exit); its descriptor. */
static int scratch_fd(void)
{
    static int fd = -1;
    if (fd >= 0)
        return fd;
    const char *dir = getenv("TMPDIR");
    int n = snprintf(file_path, sizeof(file_path), "%s/mlgw-fuzz-creds-XXXXXX",
                     dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(file_path));
    fd = mkstemp(file_path);
    FUZZ_CHECK(fd >= 0);
    atexit(remove_file);
    gw_log_set_level(GW_LOG_LEVEL_ERROR); /* "profile has no keys" notes are not findings */
    return fd;
}

struct env {
    const char *profile; /* NULL: the default profile */
};

static const char *env_get(const char *name, void *ctx)
{
    const struct env *e = ctx;
    if (strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0 || strcmp(name, "AWS_CONFIG_FILE") == 0)
        return file_path;
    if (strcmp(name, "AWS_EC2_METADATA_DISABLED") == 0)
        return "true";
    if (strcmp(name, "AWS_PROFILE") == 0)
        return e->profile;
    return NULL;
}

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static void run_provider(const char *profile)
{
    struct env e = {profile};
    struct aws_creds_opts opts = {.getenv_fn = env_get, .getenv_ctx = &e};
    struct aws_creds_provider *p = NULL;
    FUZZ_CHECK(aws_creds_provider_new(&p, &opts, NULL) == GW_OK);
    struct aws_credentials c;
    struct gw_err err = {0};
    int rc = aws_creds_get(&c, p, &err);
    if (rc == GW_OK) {
        FUZZ_CHECK(c.access_key_id[0] != '\0' && c.secret_access_key[0] != '\0');
        FUZZ_CHECK(printable(c.access_key_id) && printable(c.secret_access_key));
        FUZZ_CHECK(printable(c.session_token) && c.expiration_ms == 0);
        FUZZ_CHECK(strcmp(aws_creds_source(p), "shared-files") == 0);
    } else {
        FUZZ_CHECK(rc == GW_EINVAL || rc == GW_ENOTFOUND || rc == GW_ETOOBIG);
    }
    aws_creds_provider_free(p);
}

static int within(const char *p, size_t n, const char *line, size_t len)
{
    return p >= line && p <= line + len && n <= (size_t)(line + len - p);
}

static void one_line(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
        len--;
    const char *name, *key, *value;
    size_t name_len, key_len, value_len;
    if (aws_ini_section(&name, &name_len, s, len) == NULL)
        FUZZ_CHECK(name != NULL && within(name, name_len, s, len));
    else
        FUZZ_CHECK(name == NULL && name_len == 0);
    if (aws_ini_key_value(&key, &key_len, &value, &value_len, s, len) == GW_OK)
        FUZZ_CHECK(within(key, key_len, s, len) && within(value, value_len, s, len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    for (size_t start = 0; start < size;) {
        const char *nl = memchr(text + start, '\n', size - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : size;
        one_line(text + start, end - start);
        start = end + 1;
    }

    int fd = scratch_fd();
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(size == 0 || pwrite(fd, data, size, 0) == (ssize_t)size);
    run_provider(NULL);
    run_provider("x");
    return 0;
}
