/*
 * MLGW_DATABASE_PASSWORD against the harness's PostgreSQL, which asks TCP
 * clients for a password (scram-sha-256): DATABASE_URL without a password,
 * as deploy/modules/gateway's secret holds it, and the password apart, as
 * RDS's managed master secret gives it. Every connection of the gateway
 * (migrations, the request pool, readiness) must carry it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../harness/harness.h"

/* db's connection string (the harness's key/value form, password='...')
 * with its password replaced by with_pw ("" leaves it out), and the password. */
static void split_password(const char *db, const char *with_pw, char *url, size_t urllen, char *pw,
                           size_t pwlen)
{
    const char *start = strstr(db, "password='");
    cr_assert_not_null(start, "no password in %s", db);
    const char *val = start + strlen("password='");
    const char *end = strchr(val, '\'');
    cr_assert_not_null(end, "%s", db);
    cr_assert_null(memchr(val, '\\', (size_t)(end - val)), "a plain password: %s", db);
    snprintf(pw, pwlen, "%.*s", (int)(end - val), val);
    if (with_pw[0] == '\0')
        snprintf(url, urllen, "%.*s%s", (int)(start - db), db, end + 1);
    else
        snprintf(url, urllen, "%.*spassword='%s'%s", (int)(start - db), db, with_pw, end + 1);
}

/* No other source of a password: neither PGPASSWORD nor a password file. */
#define NO_LIBPQ_PASSWORD "PGPASSWORD", "PGPASSFILE=/nonexistent"

Test(db_password, a_url_without_password_and_the_password_apart_serve_and_are_ready)
{
    char db[1024], url[1024], pw[256], setting[300];
    th_db_create(db, sizeof(db), NULL);
    split_password(db, "", url, sizeof(url), pw, sizeof(pw));
    snprintf(setting, sizeof(setting), "MLGW_DATABASE_PASSWORD=%s", pw);

    /* Without it the database refuses the gateway: the password comes from nowhere else. */
    const char *none[] = {NO_LIBPQ_PASSWORD, NULL};
    const char *migrate[] = {"migrate", NULL};
    char *log = NULL;
    cr_assert_eq(th_gw_run(&log, migrate, url, none, 60), 1, "%s", log);
    cr_assert(strstr(log, "password") != NULL, "a password is asked for: %s", log);
    free(log);

    const char *env[] = {setting, NO_LIBPQ_PASSWORD, NULL};
    struct th_gw gw;
    th_gw_start(&gw, url, env);
    char ready[256];
    snprintf(ready, sizeof(ready), "%s/readyz", gw.base);
    cr_assert_eq(th_wait_status(ready, 200, 20), 200, "migrated and ready with the password apart");
    char *text = th_gw_log(&gw);
    cr_assert_not_null(text);
    cr_assert(strstr(text, "migrations current") != NULL, "%s", text);
    cr_assert_null(strstr(text, pw), "the password never reaches the log");
    free(text);
    cr_assert_eq(th_gw_stop(&gw, SIGTERM, 10), 0);
}

Test(db_password, the_password_apart_replaces_a_wrong_one_in_the_url)
{
    char db[1024], wrong[1200], pw[256], setting[300];
    th_db_create(db, sizeof(db), NULL);
    /* The connection string with a stale password in it, as before a rotation. */
    split_password(db, "stale-password", wrong, sizeof(wrong), pw, sizeof(pw));
    snprintf(setting, sizeof(setting), "MLGW_DATABASE_PASSWORD=%s", pw);

    const char *migrate[] = {"migrate", NULL};
    const char *env[] = {setting, NO_LIBPQ_PASSWORD, NULL};
    char *log = NULL;
    cr_assert_eq(th_gw_run(&log, migrate, wrong, env, 60), 0, "%s", log);
    cr_assert(strstr(log, "applied now") != NULL, "%s", log);
    cr_assert_null(strstr(log, pw), "the password never reaches the log: %s", log);
    free(log);

    const char *stale[] = {"MLGW_DATABASE_PASSWORD=stale-password", NO_LIBPQ_PASSWORD, NULL};
    cr_assert_eq(th_gw_run(&log, migrate, db, stale, 60), 1,
                 "a wrong password apart wins over a right one in the URL: %s", log);
    free(log);
}
