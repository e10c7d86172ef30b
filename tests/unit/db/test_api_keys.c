/*
 * test_api_keys.c — unit tests for the pure scope helpers of db/api_keys.c:
 * parsing a scope list (the CLI's "jobs:read,admin" or PostgreSQL's array
 * text "{jobs:read,admin}") into bits, and writing bits as array text.
 * No database.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/err.h"
#include "db/api_keys.h"

static void assert_parses(const char *text, unsigned want)
{
    unsigned bits = 0xdead;
    cr_assert_eq(db_scopes_parse(&bits, text), GW_OK, "rejected \"%s\"", text);
    cr_assert_eq(bits, want, "\"%s\" -> %u, want %u", text, bits, want);
}

static void assert_rejects(const char *text)
{
    unsigned bits = 0;
    cr_assert_eq(db_scopes_parse(&bits, text), GW_EINVAL, "accepted \"%s\" as %u", text, bits);
}

Test(db_api_keys, scopes_parse_accepts_a_single_scope)
{
    assert_parses("jobs:read", DB_SCOPE_JOBS_READ);
    assert_parses("jobs:write", DB_SCOPE_JOBS_WRITE);
    assert_parses("admin", DB_SCOPE_ADMIN);
}

Test(db_api_keys, scopes_parse_accepts_a_comma_separated_list)
{
    assert_parses("jobs:read,admin", DB_SCOPE_JOBS_READ | DB_SCOPE_ADMIN);
    assert_parses("admin,jobs:write,jobs:read",
                  DB_SCOPE_JOBS_READ | DB_SCOPE_JOBS_WRITE | DB_SCOPE_ADMIN);
    assert_parses("jobs:read,jobs:read", DB_SCOPE_JOBS_READ);
}

Test(db_api_keys, scopes_parse_accepts_postgresql_array_text)
{
    assert_parses("{jobs:read,jobs:write}", DB_SCOPE_JOBS_READ | DB_SCOPE_JOBS_WRITE);
    assert_parses("{admin}", DB_SCOPE_ADMIN);
    assert_parses("{jobs:read,jobs:write,admin}",
                  DB_SCOPE_JOBS_READ | DB_SCOPE_JOBS_WRITE | DB_SCOPE_ADMIN);
}

Test(db_api_keys, scopes_parse_rejects_empty_lists)
{
    assert_rejects("");
    assert_rejects("{}");
}

Test(db_api_keys, scopes_parse_rejects_unknown_scopes)
{
    assert_rejects("jobs:delete");
    assert_rejects("jobs:read,jobs:delete");
    assert_rejects("{jobs:read,superuser}");
    assert_rejects("JOBS:READ");
    assert_rejects("jobs");
    assert_rejects("jobs:reader");
    assert_rejects("jobs:rea");
}

Test(db_api_keys, scopes_parse_rejects_an_empty_scope_between_or_before_commas)
{
    assert_rejects("jobs:read,,admin");
    assert_rejects(",jobs:read");
    assert_rejects("{,admin}");
    assert_rejects(",");
}

Test(db_api_keys, scopes_parse_rejects_spaces_and_quotes)
{
    assert_rejects("jobs:read, admin");
    assert_rejects(" jobs:read");
    assert_rejects("{\"jobs:read\"}");
}

Test(db_api_keys, scopes_parse_sets_zero_bits_on_failure_of_an_empty_list)
{
    unsigned bits = 0xdead;
    cr_assert_eq(db_scopes_parse(&bits, "{}"), GW_EINVAL);
    cr_assert_eq(bits, 0);
}

Test(db_api_keys, scopes_array_writes_each_combination_and_parses_back)
{
    static const char *const want[8] = {
        "{}",      "{jobs:read}",       "{jobs:write}",       "{jobs:read,jobs:write}",
        "{admin}", "{jobs:read,admin}", "{jobs:write,admin}", "{jobs:read,jobs:write,admin}",
    };
    for (unsigned bits = 0; bits < 8; bits++) {
        char text[64];
        db_scopes_array(text, sizeof(text), bits);
        cr_assert_str_eq(text, want[bits], "bits %u", bits);
        unsigned back = 0;
        if (bits == 0) {
            cr_assert_eq(db_scopes_parse(&back, text), GW_EINVAL, "{} is no scope");
            continue;
        }
        cr_assert_eq(db_scopes_parse(&back, text), GW_OK, "%s", text);
        cr_assert_eq(back, bits, "%s -> %u", text, back);
        /* the same list without braces (the CLI's form) parses the same */
        char bare[64];
        size_t len = strlen(text);
        memcpy(bare, text + 1, len - 2);
        bare[len - 2] = '\0';
        back = 0;
        cr_assert_eq(db_scopes_parse(&back, bare), GW_OK, "%s", bare);
        cr_assert_eq(back, bits, "%s -> %u", bare, back);
    }
}

Test(db_api_keys, scopes_array_ignores_unknown_bits)
{
    char text[64];
    db_scopes_array(text, sizeof(text), 8u | DB_SCOPE_ADMIN);
    cr_assert_str_eq(text, "{admin}");
}

Test(db_api_keys, scopes_array_fits_the_largest_set_in_the_callers_buffer)
{
    /* db_api_key_create and keys_cmd use 64 bytes; the full set needs 29. */
    char text[29];
    db_scopes_array(text, sizeof(text), 7);
    cr_assert_str_eq(text, "{jobs:read,jobs:write,admin}");
}

Test(db_api_keys, scopes_parse_rejects_trailing_commas_unbalanced_braces_and_junk)
{
    assert_rejects("jobs:read,");
    assert_rejects("{jobs:read,}");
    assert_rejects("{jobs:read");
    assert_rejects("jobs:read}");
    assert_rejects("{jobs:read}junk");
    assert_rejects("{{jobs:read}}");
}
