/* Unit test: replays every seed in tests/fuzz/corpus/<harness>/ and every
 * kept crash input in tests/fuzz/regressions/<harness>/ through the libFuzzer
 * harnesses, so a fixed parser bug stays fixed in the ordinary (and the
 * sanitizer) test run without clang or libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>

#include "test.h"

/* Each harness is compiled here under its own entry-point name. */
#define FUZZ_ENTRY fuzz_snapshot_one
#include "fuzz/fuzz_snapshot.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_aggs_one
#include "fuzz/fuzz_aggs.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_settings_one
#include "fuzz/fuzz_settings.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_http_request_one
#include "fuzz/fuzz_http_request.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_flat_csv_one
#include "fuzz/fuzz_flat_csv.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_json_tree_one
#include "fuzz/fuzz_json_tree.c"
#undef FUZZ_ENTRY

typedef int (*fuzz_entry_fn)(const uint8_t *data, size_t size);

struct fuzz_harness {
    const char *name;
    fuzz_entry_fn entry;
};

static const struct fuzz_harness harnesses[] = {
    {"snapshot", fuzz_snapshot_one},
    {"aggs", fuzz_aggs_one},
    {"settings", fuzz_settings_one},
    {"http_request", fuzz_http_request_one},
    {"flat_csv", fuzz_flat_csv_one},
    {"json_tree", fuzz_json_tree_one},
};

static const char *source_root(void)
{
    const char *root = getenv("OPTSNAP_SOURCE_ROOT");
    return root && *root ? root : ".";
}

/* Runs every regular file of dir (README* excepted) through entry.
 * Returns how many ran; -1 when the directory is missing. */
static int replay_dir(const char *dir, fuzz_entry_fn entry)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        size_t len = 0;
        char *data = test_read_file(path, &len);
        int rc = entry((const uint8_t *)data, len);
        if (rc != 0) {
            fprintf(stderr, "  %s: harness returned %d\n", path, rc);
            test_current_failed = 1;
        }
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

/* Seeds must exist: an empty corpus would make this test pass vacuously. */
static void test_corpus_replays(void)
{
    for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", source_root(), harnesses[i].name);
        int n = replay_dir(dir, harnesses[i].entry);
        if (n < 1)
            fprintf(stderr, "  %s: no seed files\n", dir);
        CHECK(n >= 1);
    }
}

/* Regression directories hold fixed crashes only; a harness with a known one
 * must find it (a moved or emptied folder would make the replay vacuous).
 * snapshot: a "results" array whose element is not a value ("[}" or stray
 * bytes) made api_results_spans loop without progress, growing its span
 * array to the fuzzer's memory limit (fixed: such a page is malformed). */
static void test_regressions_replay(void)
{
    static const struct {
        const char *name;
        int at_least;
    } expected[] = {{"snapshot", 1}, {"aggs", 0}, {"settings", 0}, {"http_request", 0}};
    for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", source_root(),
                 harnesses[i].name);
        int n = replay_dir(dir, harnesses[i].entry);
        if (n < 0)
            n = 0; /* no folder: no fixed crash yet */
        for (size_t k = 0; k < sizeof expected / sizeof expected[0]; k++)
            if (strcmp(expected[k].name, harnesses[i].name) == 0 && n < expected[k].at_least) {
                fprintf(stderr, "  %s: %d regression inputs, expected at least %d\n", dir, n,
                        expected[k].at_least);
                CHECK(n >= expected[k].at_least);
            }
    }
}

/* Inputs a harness must survive even with no files on disk: empty, one byte,
 * truncated JSON, a head without its end. */
static void test_edge_inputs(void)
{
    static const char *const inputs[] = {"", "{", "[]", "{\"results\":[{}]}", "GET / HTTP/1.1\r\n",
                                         "a=b\n", "\xff\xfe", "{\"results\":null,\"next_url\":1}"};
    for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++)
        for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++)
            CHECK_INT(harnesses[i].entry((const uint8_t *)inputs[k], strlen(inputs[k])), 0);
}

int main(void)
{
    RUN(test_corpus_replays);
    RUN(test_regressions_replay);
    RUN(test_edge_inputs);
    TEST_EXIT();
}
