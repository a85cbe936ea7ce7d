/* Unit tests for OCC option symbols: good symbols parse to the right parts, bad ones are refused. */
#include "optsnap/api/occ.h"
#include "optsnap/util/timeutil.h"
#include "test.h"

static void test_occ_parse_good(void)
{
    struct occ_symbol s;
    CHECK_INT(occ_parse("O:AAPL230616C00150000", &s), 0);
    CHECK_STR(s.root, "AAPL");
    CHECK_INT(s.expiration_days, days_from_civil(2023, 6, 16));
    CHECK_INT(s.contract_type, 'C');
    CHECK_INT(s.strike_milli, 150000);

    CHECK_INT(occ_parse("O:EVRI240119P00002500", &s), 0);
    CHECK_STR(s.root, "EVRI");
    CHECK_INT(s.contract_type, 'P');
    CHECK_INT(s.strike_milli, 2500);

    CHECK_INT(occ_parse("O:A220520C00065000", &s), 0); /* 1-char root */
    CHECK_STR(s.root, "A");
    CHECK_INT(occ_parse("O:BRK.B240119C00300000", &s), 0); /* '.' in a root */
    CHECK_STR(s.root, "BRK.B");
    CHECK_INT(occ_parse("O:AAPL1240119C00150000", &s), 0); /* adjusted root ending in a digit */
    CHECK_STR(s.root, "AAPL1");
    CHECK_INT(occ_parse("O:SPXW24022 9C05000000", &s), -1);
    CHECK_INT(occ_parse("O:SPXW240229C05000000", &s), 0); /* 2024 is a leap year */
    CHECK_INT(s.expiration_days, days_from_civil(2024, 2, 29));
    CHECK_INT(s.strike_milli, 5000000);
    CHECK_INT(occ_parse("O:ABCDEF991231P99999999", &s), 0); /* 6-char root, max strike */
    CHECK_INT(s.strike_milli, 99999999);
    CHECK_INT(s.expiration_days, days_from_civil(2099, 12, 31));
}

static void test_occ_parse_bad(void)
{
    struct occ_symbol s;
    static const char *const bad[] = {
        "",                          /* empty */
        "O:",                        /* prefix only */
        "AAPL230616C00150000",       /* missing O: */
        "o:AAPL230616C00150000",     /* lowercase prefix */
        "O:aapl230616C00150000",     /* lowercase root */
        "O:AAPL230616c00150000",     /* lowercase type */
        "O:AAPL231316C00150000",     /* month 13 */
        "O:AAPL230016C00150000",     /* month 0 */
        "O:AAPL230230C00150000",     /* Feb 30 */
        "O:AAPL230229C00150000",     /* Feb 29 in a non-leap year */
        "O:AAPL230431C00150000",     /* Apr 31 */
        "O:AAPL230600C00150000",     /* day 0 */
        "O:ABCDEFG230616C00150000",  /* 7-char root */
        "O:230616C00150000",         /* no root */
        "O:AAPL230616C0015000X",     /* non-digit strike */
        "O:AAPL230616C0015000",      /* 7-digit strike */
        "O:AAPL230616X00150000",     /* type not C/P */
        "O:AAPL230616C00150000X",    /* trailing junk */
        "O:AAPL230616C00150000 ",    /* trailing space */
        "O:AA-L230616C00150000",     /* bad root char */
        "O:AAPL2306l6C00150000",     /* letter in the date */
        "O:\xC3\x84PL230616C00150000", /* non-ASCII root */
        "O:AAPL230616C\xEF\xBC\x91\x30\x31\x35\x30\x30\x30", /* fullwidth digit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (occ_parse(bad[i], &s) != -1) {
            fprintf(stderr, "  accepted bad symbol [%zu] \"%s\"\n", i, bad[i]);
            test_current_failed = 1;
        }
    }
    CHECK_INT(occ_parse(NULL, &s), -1);
}

static void test_occ_format_roundtrip(void)
{
    char buf[32];
    int32_t d = days_from_civil(2023, 6, 16);
    CHECK_INT(occ_format(buf, sizeof buf, "AAPL", d, 'C', 150000), 0);
    CHECK_STR(buf, "O:AAPL230616C00150000");
    CHECK_INT(occ_format(buf, sizeof buf, "EVRI", days_from_civil(2024, 1, 19), 'P', 2500), 0);
    CHECK_STR(buf, "O:EVRI240119P00002500");

    struct occ_symbol s;
    CHECK_INT(occ_parse(buf, &s), 0);
    char again[32];
    CHECK_INT(occ_format(again, sizeof again, s.root, s.expiration_days, s.contract_type,
                         s.strike_milli), 0);
    CHECK_STR(again, buf);

    CHECK_INT(occ_format(buf, sizeof buf, "ABCDEFG", d, 'C', 1000), -1); /* root too long */
    CHECK_INT(occ_format(buf, sizeof buf, "aapl", d, 'C', 1000), -1);    /* lowercase root */
    CHECK_INT(occ_format(buf, sizeof buf, "AAPL", d, 'X', 1000), -1);    /* bad type */
    CHECK_INT(occ_format(buf, sizeof buf, "AAPL", d, 'C', 100000000), -1); /* 9-digit strike */
    CHECK_INT(occ_format(buf, sizeof buf, "AAPL", days_from_civil(1999, 1, 1), 'C', 1000), -1);
    CHECK_INT(occ_format(buf, 10, "AAPL", d, 'C', 1000), -1); /* buffer too small */
}

int main(void)
{
    RUN(test_occ_parse_good);
    RUN(test_occ_parse_bad);
    RUN(test_occ_format_roundtrip);
    TEST_EXIT();
}
