/* Unit tests for pg_error_classify: which failures keep the connection and
 * retry (statement timeout, deadlock, serialization), which replace it (lost
 * or terminated sessions, a read-only standby after a failover), which bisect
 * the batch and which give up. */
#include "optsnap/db/pg_txn.h"
#include "test.h"

static void test_retry_on_same_connection(void)
{
    CHECK_INT(pg_error_classify("57014", "canceling statement due to statement timeout"), PG_ERROR_RETRY);
    CHECK_INT(pg_error_classify("57014", "canceling statement due to user request"), PG_ERROR_RETRY);
    CHECK_INT(pg_error_classify("40P01", "deadlock detected"), PG_ERROR_RETRY);
    CHECK_INT(pg_error_classify("40001", "could not serialize access due to concurrent update"),
              PG_ERROR_RETRY);
    CHECK_INT(pg_error_classify("53300", "sorry, too many clients already"), PG_ERROR_RETRY);
    CHECK_INT(pg_error_classify("53400", NULL), PG_ERROR_RETRY);
    /* other class 40 and 57 codes are not blanket-retried */
    CHECK_INT(pg_error_classify("40002", NULL), PG_ERROR_FAIL); /* integrity constraint at commit */
    CHECK_INT(pg_error_classify("57000", NULL), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("53100", "could not extend file"), PG_ERROR_FAIL); /* disk full */
}

static void test_reconnect(void)
{
    CHECK_INT(pg_error_classify("08000", NULL), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("08003", NULL), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("08006", "server closed the connection unexpectedly"), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("08P01", "protocol violation"), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("57P01", "terminating connection due to administrator command"),
              PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("57P02", NULL), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("57P03", "the database system is starting up"), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("57P05", NULL), PG_ERROR_RECONNECT);
    /* a standby after a failover */
    CHECK_INT(pg_error_classify("25006", "cannot execute INSERT in a read-only transaction"),
              PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("25006", NULL), PG_ERROR_RECONNECT);
    /* the message alone (a proxy that lost or rewrote the code) */
    CHECK_INT(pg_error_classify("", "cannot execute INSERT in a read-only transaction"), PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify("XX000", "cannot execute SELECT optsnap_mark() in a read-only transaction"),
              PG_ERROR_RECONNECT);
    CHECK_INT(pg_error_classify(NULL, "cannot execute CREATE TABLE in a read-only transaction"),
              PG_ERROR_RECONNECT);
    /* other class 25 codes are not a failover */
    CHECK_INT(pg_error_classify("25P02", "current transaction is aborted"), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("25001", NULL), PG_ERROR_FAIL);
    /* a message that only looks alike */
    CHECK_INT(pg_error_classify("", "cannot execute INSERT"), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("", "read-only transaction"), PG_ERROR_FAIL);
}

static void test_bisect_and_fail(void)
{
    CHECK_INT(pg_error_classify("22003", "numeric field overflow"), PG_ERROR_BISECT);
    CHECK_INT(pg_error_classify("22P02", NULL), PG_ERROR_BISECT);
    CHECK_INT(pg_error_classify("23505", "duplicate key value"), PG_ERROR_BISECT);
    CHECK_INT(pg_error_classify("23503", NULL), PG_ERROR_BISECT);
    CHECK_INT(pg_error_classify("XX000", "variable not found in subplan target list"), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("42P01", "relation does not exist"), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("42501", "permission denied"), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("", NULL), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify(NULL, NULL), PG_ERROR_FAIL);
    CHECK_INT(pg_error_classify("08", NULL), PG_ERROR_FAIL); /* not a SQLSTATE */
    CHECK_INT(pg_error_classify("570140", NULL), PG_ERROR_FAIL);
}

static void test_wrappers_agree(void)
{
    const char *codes[] = {"57014", "40P01", "40001", "53300", "08006", "57P01", "25006",
                           "22003", "23505", "XX000", "42P01", ""};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        enum pg_error_action a = pg_error_classify(codes[i], NULL);
        CHECK(pg_sqlstate_is_transient(codes[i]) == (a == PG_ERROR_RETRY || a == PG_ERROR_RECONNECT));
        CHECK(pg_sqlstate_is_data_error(codes[i]) == (a == PG_ERROR_BISECT));
    }
    CHECK_STR(pg_error_action_name(PG_ERROR_RETRY), "retry");
    CHECK_STR(pg_error_action_name(PG_ERROR_RECONNECT), "reconnect");
    CHECK_STR(pg_error_action_name(PG_ERROR_BISECT), "bisect");
    CHECK_STR(pg_error_action_name(PG_ERROR_FAIL), "fail");
}

int main(void)
{
    RUN(test_retry_on_same_connection);
    RUN(test_reconnect);
    RUN(test_bisect_and_fail);
    RUN(test_wrappers_agree);
    TEST_EXIT();
}
