/*
 * test_migrate.c — unit tests for db/migrate.c's loader: reading a directory
 * of NNNN_name.sql files into a sorted set with SHA-256 checksums, and
 * refusing bad names, duplicate versions and unreadable input. Each test gets
 * a fresh directory from mkdtemp under /tmp; no database is involved.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "db/migrate.h"

static char dir[64];
static struct db_migration_set set;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/mlgw-test-migrate-XXXXXX");
    cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
    memset(&set, 0, sizeof(set));
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[512];
        int n = snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (n < 0 || (size_t)n >= sizeof(p))
            continue;
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            (void)unlink(p);
    }
    closedir(d);
    (void)rmdir(path);
}

static void teardown(void)
{
    db_migrations_dispose(&set);
    remove_tree(dir);
}

TestSuite(db_migrate, .init = setup, .fini = teardown);

static void write_bytes(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void write_file(const char *name, const char *content)
{
    write_bytes(name, content, strlen(content));
}

static void remove_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(unlink(path), 0);
}

/* Independent SHA-256 hex of data, for comparison with the loader's. */
static void sha256_hex(char out[65], const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    cr_assert_eq(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    cr_assert_eq(mdlen, 32);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- loading ------------------------------------------------------------ */

Test(db_migrate, migrations_are_sorted_by_version_regardless_of_creation_order)
{
    write_file("0003_third.sql", "SELECT 3;\n");
    write_file("0001_first.sql", "SELECT 1;\n");
    write_file("0010_tenth.sql", "SELECT 10;\n");
    write_file("0002_second.sql", "SELECT 2;\n");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 4);
    static const int versions[] = {1, 2, 3, 10};
    static const char *const files[] = {"0001_first.sql", "0002_second.sql", "0003_third.sql",
                                        "0010_tenth.sql"};
    static const char *const sql[] = {"SELECT 1;\n", "SELECT 2;\n", "SELECT 3;\n", "SELECT 10;\n"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(set.items[i].version, versions[i]);
        cr_assert_str_eq(set.items[i].file, files[i]);
        cr_assert_str_eq(set.items[i].sql, sql[i]);
    }
}

Test(db_migrate, an_empty_directory_loads_no_migrations)
{
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 0);
}

Test(db_migrate, files_that_are_not_sql_are_ignored)
{
    write_file("0001_jobs.sql", "CREATE TABLE jobs ();\n");
    write_file("README.md", "# migrations\n");
    write_file("notes.txt", "x");
    write_file("0002_backup.sql.bak", "x");
    write_file("0003_swap.sql~", "x");
    write_file("sql", "x");
    write_file("0004_upper.SQL", "x");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/archive", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 1);
    cr_assert_str_eq(set.items[0].file, "0001_jobs.sql");
}

Test(db_migrate, the_largest_four_digit_version_is_accepted)
{
    write_file("9999_last.sql", "SELECT 1;");
    write_file("0001_first_2.sql", "SELECT 1;");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 2);
    cr_assert_eq(set.items[0].version, 1);
    cr_assert_eq(set.items[1].version, 9999);
}

Test(db_migrate, the_sql_holds_the_exact_file_contents)
{
    static const char content[] = "-- comment\r\nINSERT INTO t VALUES ('\xc3\xa9');\n\n";
    write_file("0001_bytes.sql", content);
    write_file("0002_empty.sql", "");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 2);
    cr_assert_str_eq(set.items[0].sql, content);
    cr_assert_not_null(set.items[1].sql);
    cr_assert_str_eq(set.items[1].sql, "");
}

/* ---- checksums ---------------------------------------------------------- */

Test(db_migrate, checksum_is_the_sha256_hex_of_the_contents)
{
    /* printf 'SELECT 1;\n' | sha256sum */
    write_file("0001_one.sql", "SELECT 1;\n");
    /* printf '' | sha256sum */
    write_file("0002_empty.sql", "");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 2);
    cr_assert_str_eq(set.items[0].checksum,
                     "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd");
    cr_assert_str_eq(set.items[1].checksum,
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(db_migrate, checksum_matches_an_independent_digest_of_a_large_file)
{
    /* Larger than the loader's 8 KiB read chunk, with every byte value. */
    size_t len = 100 * 1000 + 7;
    unsigned char *data = malloc(len);
    cr_assert_not_null(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)((i * 31u + 7u) & 0xffu);
    write_bytes("0001_big.sql", data, len);
    char want[65];
    sha256_hex(want, data, len);
    free(data);

    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 1);
    cr_assert_str_eq(set.items[0].checksum, want);
}

Test(db_migrate, one_changed_byte_changes_the_checksum)
{
    write_file("0001_a.sql", "SELECT 1;");
    write_file("0002_b.sql", "SELECT 2;");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_str_neq(set.items[0].checksum, set.items[1].checksum);
    cr_assert_eq(strlen(set.items[0].checksum), 64);
}

/* ---- refusals ----------------------------------------------------------- */

Test(db_migrate, badly_named_sql_files_are_invalid_and_named_in_the_error)
{
    static const char *const bad[] = {
        "1_x.sql",      "0001-x.sql",  "0001_X.sql",           "0000_zero.sql",
        "0001_.sql",    "00001_x.sql", "0001_a-b.sql",         "000a_x.sql",
        "0001_a b.sql", "x0001_a.sql", "0001_caf\xc3\xa9.sql", ".sql",
    };
    write_file("0002_good.sql", "SELECT 1;");
    for (size_t i = 0; i < GW_ARRAY_LEN(bad); i++) {
        write_file(bad[i], "SELECT 1;");
        struct gw_err err = {0};
        int rc = db_migrations_load(&set, dir, &err);
        cr_assert_eq(rc, GW_EINVAL, "\"%s\": rc %d", bad[i], rc);
        cr_assert_eq(err.code, GW_EINVAL);
        cr_assert_not_null(strstr(err.msg, bad[i]), "\"%s\" not named in: %s", bad[i], err.msg);
        cr_assert_eq(set.n, 0, "a failed load must leave the set empty");
        cr_assert_null(set.items);
        remove_file(bad[i]);
    }
    /* With the bad files gone the directory loads again. */
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 1);
}

Test(db_migrate, duplicate_versions_are_invalid_and_both_files_named)
{
    write_file("0001_a.sql", "SELECT 1;");
    write_file("0001_b.sql", "SELECT 2;");
    write_file("0002_c.sql", "SELECT 3;");
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_EINVAL);
    cr_assert_eq(err.code, GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "0001_a.sql"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "0001_b.sql"), "%s", err.msg);
    cr_assert_eq(set.n, 0);
    cr_assert_null(set.items);
}

Test(db_migrate, a_missing_directory_is_an_io_error_naming_it)
{
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, missing, &err), GW_EIO);
    cr_assert_eq(err.code, GW_EIO);
    cr_assert_not_null(strstr(err.msg, missing), "%s", err.msg);
    cr_assert_eq(set.n, 0);
    cr_assert_null(set.items);
}

Test(db_migrate, a_null_error_is_tolerated)
{
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/does-not-exist", dir);
    cr_assert_eq(db_migrations_load(&set, missing, NULL), GW_EIO);
    write_file("0001-bad.sql", "x");
    cr_assert_eq(db_migrations_load(&set, dir, NULL), GW_EINVAL);
}

Test(db_migrate, a_directory_named_like_a_migration_is_an_io_error)
{
    write_file("0001_ok.sql", "SELECT 1;");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/0002_dir.sql", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_EIO);
    cr_assert_not_null(strstr(err.msg, "0002_dir.sql"), "%s", err.msg);
    cr_assert_eq(set.n, 0);
}

Test(db_migrate, a_file_of_exactly_four_mebibytes_is_accepted)
{
    size_t len = 4u * 1024u * 1024u;
    char *data = malloc(len);
    cr_assert_not_null(data);
    memset(data, ' ', len);
    write_bytes("0001_big.sql", data, len);
    free(data);
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 1);
    cr_assert_eq(strlen(set.items[0].sql), len);
}

Test(db_migrate, a_file_over_four_mebibytes_is_invalid)
{
    size_t len = 4u * 1024u * 1024u + 1u;
    char *data = malloc(len);
    cr_assert_not_null(data);
    memset(data, ' ', len);
    write_bytes("0001_huge.sql", data, len);
    free(data);
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_EINVAL);
    cr_assert_not_null(strstr(err.msg, "0001_huge.sql"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "4 MiB"), "%s", err.msg);
    cr_assert_eq(set.n, 0);
}

Test(db_migrate, more_than_sixteen_migrations_load_in_order)
{
    /* The item array starts at 16 and doubles: cross that boundary. */
    for (int v = 40; v >= 1; v--) {
        char name[32], sql[32];
        snprintf(name, sizeof(name), "%04d_step.sql", v);
        snprintf(sql, sizeof(sql), "SELECT %d;", v);
        write_file(name, sql);
    }
    struct gw_err err = {0};
    cr_assert_eq(db_migrations_load(&set, dir, &err), GW_OK, "%s", err.msg);
    cr_assert_eq(set.n, 40);
    for (size_t i = 0; i < 40; i++) {
        char sql[32];
        snprintf(sql, sizeof(sql), "SELECT %zu;", i + 1);
        cr_assert_eq(set.items[i].version, (int)i + 1);
        cr_assert_str_eq(set.items[i].sql, sql);
    }
}

Test(db_migrate, dispose_empties_the_set_and_tolerates_null)
{
    write_file("0001_a.sql", "SELECT 1;");
    cr_assert_eq(db_migrations_load(&set, dir, NULL), GW_OK);
    db_migrations_dispose(&set);
    cr_assert_eq(set.n, 0);
    cr_assert_null(set.items);
    db_migrations_dispose(&set);
    db_migrations_dispose(NULL);
}
