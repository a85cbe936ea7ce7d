/* Unit tests for the shared row types: the column table is complete and consistent. */
#include "optsnap/api/row.h"
#include "test.h"

static void test_column_table_complete(void)
{
    for (int c = 0; c < SNAP_NCOLS; c++) {
        CHECK(snap_cols[c].name != NULL);
        CHECK(snap_cols[c].json_key != NULL);
        for (int d = 0; d < c; d++)
            CHECK(strcmp(snap_cols[c].name, snap_cols[d].name) != 0);
    }
    CHECK(SNAP_NCOLS <= 64); /* the presence mask is a uint64_t */
}

static void test_presence_bits(void)
{
    struct snapshot_row r;
    memset(&r, 0, sizeof r);
    CHECK(!snapshot_row_has(&r, SNAP_FMV));
    snapshot_row_set_f64(&r, SNAP_FMV, 20.5);
    snapshot_row_set_i64(&r, SNAP_OPEN_INTEREST, 8133);
    CHECK(snapshot_row_has(&r, SNAP_FMV));
    CHECK(snapshot_row_has(&r, SNAP_OPEN_INTEREST));
    CHECK(!snapshot_row_has(&r, SNAP_DELTA));
    CHECK_DBL(r.v[SNAP_FMV].f, 20.5);
    CHECK_INT(r.v[SNAP_OPEN_INTEREST].i, 8133);
}

static void test_names(void)
{
    CHECK_STR(option_contract_type_name('C'), "call");
    CHECK_STR(option_contract_type_name('P'), "put");
    CHECK_STR(option_contract_type_name('x'), "other");
    CHECK_STR(option_exercise_style_name('A'), "american");
    CHECK(option_exercise_style_name('?') == NULL);
    CHECK_STR(row_source_name(ROW_SOURCE_BACKFILL), "backfill");
}

int main(void)
{
    RUN(test_column_table_complete);
    RUN(test_presence_bits);
    RUN(test_names);
    TEST_EXIT();
}
