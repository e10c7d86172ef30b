/*
 * keys_cmd.c — `ml-gateway keys create|list|revoke`: API key administration
 * from the command line. `create` prints the new key, and only the key, on
 * stdout; everything else goes to stderr. The key is shown once: only its
 * SHA-256 is stored.
 */
#include "server/keys_cmd.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/parse.h"
#include "db/api_keys.h"

#include "common/poison.h"

static int usage(void)
{
    (void)fprintf(stderr,
                  "usage: ml-gateway keys create --name NAME --scopes SCOPES [--team TEAM]\n"
                  "                               [--rate PER_SECOND] [--burst N]\n"
                  "       ml-gateway keys list\n"
                  "       ml-gateway keys revoke ID|PREFIX\n"
                  "SCOPES: comma-separated jobs:read, jobs:write, admin\n"
                  "TEAM: 1 to 64 of A-Z a-z 0-9 . _ - (default: the key is its own team)\n"
                  "--rate, --burst: this key's request limit (default: MLGW_RATE_LIMIT,\n"
                  "MLGW_RATE_BURST)\n");
    return 2;
}

struct key_args {
    const char *name, *scopes_text, *team;
    unsigned scopes;
    double rate;
    long long burst;
};

/* Reads and checks create's options; 0, or the exit status (2) after a
 * message naming the bad option. */
static int key_args_parse(struct key_args *a, int argc, char **argv)
{
    const char *rate = NULL, *burst = NULL;
    for (int i = 0; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--name") == 0     ? &a->name
                            : strcmp(argv[i], "--scopes") == 0 ? &a->scopes_text
                            : strcmp(argv[i], "--team") == 0   ? &a->team
                            : strcmp(argv[i], "--rate") == 0   ? &rate
                            : strcmp(argv[i], "--burst") == 0  ? &burst
                                                               : NULL;
        if (slot == NULL || i + 1 >= argc)
            return usage();
        *slot = argv[++i];
    }
    if (a->name == NULL || a->scopes_text == NULL)
        return usage();
    size_t nlen = strlen(a->name);
    if (nlen < 1 || nlen > 128) {
        (void)fprintf(stderr, "ml-gateway: --name must be 1 to 128 characters\n");
        return 2;
    }
    if (db_scopes_parse(&a->scopes, a->scopes_text) != GW_OK) {
        (void)fprintf(stderr, "ml-gateway: --scopes \"%s\": use jobs:read, jobs:write, admin\n",
                      a->scopes_text);
        return 2;
    }
    if (a->team != NULL && !db_team_valid(a->team)) {
        (void)fprintf(stderr,
                      "ml-gateway: --team \"%s\": use 1 to 64 of A-Z a-z 0-9 . _ -, "
                      "starting with a letter or digit\n",
                      a->team);
        return 2;
    }
    long long per_s = 0;
    if (rate != NULL && gw_parse_ll(&per_s, rate, 1, 1000000) != GW_OK) {
        (void)fprintf(stderr, "ml-gateway: --rate \"%s\": a whole number from 1 to 1000000\n",
                      rate);
        return 2;
    }
    a->rate = (double)per_s;
    if (burst != NULL && gw_parse_ll(&a->burst, burst, 1, 1000000) != GW_OK) {
        (void)fprintf(stderr, "ml-gateway: --burst \"%s\": a whole number from 1 to 1000000\n",
                      burst);
        return 2;
    }
    return 0;
}

static int key_create(struct db_conn *c, int argc, char **argv)
{
    struct key_args a = {0};
    int bad = key_args_parse(&a, argc, argv);
    if (bad != 0)
        return bad;
    unsigned char secret[32], idb[6];
    if (gw_random_bytes(secret, sizeof(secret)) != GW_OK ||
        gw_random_bytes(idb, sizeof(idb)) != GW_OK) {
        (void)fprintf(stderr, "ml-gateway: no randomness available\n");
        return 1;
    }
    char key[64] = "mlgw_", id[20] = "key_", prefix[16];
    gw_base64url(key + 5, secret, sizeof(secret));
    gw_hex(id + 4, idb, sizeof(idb));
    memcpy(prefix, key, 12);
    prefix[12] = '\0';
    struct db_api_key_new k = {
        .id = id,
        .name = a.name,
        .prefix = prefix,
        .scopes = a.scopes,
        .team = a.team,
        .rate_per_s = a.rate,
        .burst = (long)a.burst,
    };
    gw_sha256(k.hash, key, strlen(key));
    struct gw_err err = {0};
    int rc = db_api_key_create(c, &k, &err);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot create the API key: %s", err.msg);
        return 1;
    }
    char arr[64];
    db_scopes_array(arr, sizeof(arr), a.scopes);
    GW_LOG_INFO("created API key %s (%s, prefix %s, scopes %s, team %s)", id, a.name, prefix, arr,
                a.team != NULL ? a.team : id);
    int ok = printf("%s\n", key) > 0 && fflush(stdout) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    return ok ? 0 : 1;
}

#define KEY_ROW "%-17s %-24s %-13s %-26s %-20s %-6s %-6s %-24s %-24s %s\n"

static int key_list(struct db_conn *c)
{
    PGresult *res = NULL;
    struct gw_err err = {0};
    if (db_api_key_list(&res, c, &err) != GW_OK) {
        GW_LOG_ERROR("cannot list API keys: %s", err.msg);
        return 1;
    }
    int ok = printf(KEY_ROW, "ID", "NAME", "PREFIX", "SCOPES", "TEAM", "RATE", "BURST", "CREATED",
                    "LAST USED", "REVOKED") > 0;
    for (int i = 0; ok && i < PQntuples(res); i++) {
        const char *cell[10];
        for (int k = 0; k < 10; k++)
            cell[k] = PQgetisnull(res, i, k) ? "-" : PQgetvalue(res, i, k);
        ok = printf(KEY_ROW, cell[0], cell[1], cell[2], cell[3], cell[4], cell[5], cell[6], cell[7],
                    cell[8], cell[9]) > 0;
    }
    PQclear(res);
    return ok && fflush(stdout) == 0 ? 0 : 1;
}

static int key_revoke(struct db_conn *c, const char *which)
{
    struct gw_err err = {0};
    int rc = db_api_key_revoke(c, which, &err);
    if (rc == GW_ENOTFOUND) {
        (void)fprintf(stderr, "ml-gateway: %s\n", err.msg);
        return 1;
    }
    if (rc != GW_OK) {
        GW_LOG_ERROR("cannot revoke: %s", err.msg);
        return 1;
    }
    GW_LOG_INFO("revoked API key %s", which);
    return 0;
}

int srv_cmd_keys(const struct gw_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *sub = argv[0];
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0)
        return usage();
    if ((strcmp(sub, "list") == 0 && argc != 1) || (strcmp(sub, "revoke") == 0 && argc != 2))
        return usage();

    struct db_pool *pool = NULL;
    struct db_conn *c = NULL;
    struct gw_err err = {0};
    struct db_pool_opts po = {.url = cfg->database_url,
                              .size = 1,
                              .checkout_timeout_ms = 1000,
                              .connect_timeout_s = (int)cfg->db_connect_timeout_s,
                              .application_name = "ml-gateway-keys"};
    int status = 1;
    if (db_pool_new(&pool, &po, &err) != GW_OK || db_pool_checkout(&c, pool, &err) != GW_OK) {
        GW_LOG_ERROR("%s", err.msg);
        goto cleanup;
    }
    if (strcmp(sub, "create") == 0)
        status = key_create(c, argc - 1, argv + 1);
    else if (strcmp(sub, "list") == 0)
        status = key_list(c);
    else
        status = key_revoke(c, argv[1]);
cleanup:
    if (pool != NULL)
        db_pool_checkin(pool, c);
    db_pool_free(pool);
    return status;
}
