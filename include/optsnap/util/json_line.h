/* json_line.h - a command's JSON output: one document, one line on stdout.
 * Pure (cJSON and stdio). */
#ifndef OPTSNAP_JSON_LINE_H
#define OPTSNAP_JSON_LINE_H

#include <cjson/cJSON.h>

/* Prints root unformatted as one line on stdout and deletes it (NULL is
 * out of memory). Returns 0, or -1 when it could not be printed. */
int json_line_print(cJSON *root);

#endif
