/* mock_flatfiles.h - the simulator's flat files, served S3-style beside its
 * REST API: GET (and HEAD) /[flatfiles/]us_options_opra/minute_aggs_v1/
 * YYYY/MM/YYYY-MM-DD.csv.gz, the day's minute bars of every listed contract
 * as gzip'd CSV (header ticker,volume,open,close,high,low,window_start,
 * transactions; window_start in ns), built from mock_market's bars: the
 * same truth as /v2/aggs. Only days that have ended are published. An ETag
 * per object; If-None-Match with it gets 304. Requests must carry an AWS
 * SigV4 Authorization header for the access key, whose signature is
 * verified with the secret (HMAC-SHA256 over the canonical request); keys
 * come from MOCK_FLATFILES_ACCESS_KEY / _SECRET_KEY (defaults
 * "sim-access" / "sim-secret"). POST /_sim/flatfiles/republish?date=D
 * [&bad=1] publishes the day again: a new ETag (bad=1 also adds one quoted,
 * unparsable line after the header). */
#ifndef OPTSNAP_MOCK_FLATFILES_H
#define OPTSNAP_MOCK_FLATFILES_H

#include <stdbool.h>
#include <stdint.h>

#include "optsnap/http/http_parse.h"
#include "optsnap/http/http_server.h"
#include "optsnap/sim/mock_market.h"

/* Answers the request when it is a flat-file route (true), else false. */
bool mock_flatfiles_route(const struct mock_market *m, int64_t now_us, const struct http_request *req,
                          struct http_reply *r);

/* SHA-256 and HMAC-SHA256 (the signature check; tests). */
void mock_sha256(const void *data, size_t n, unsigned char out[32]);
void mock_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, unsigned char out[32]);

#endif
