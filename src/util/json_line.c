/* json_line.c - a command's JSON document as one line on stdout. */
#include "optsnap/util/json_line.h"

#include <stdio.h>

int json_line_print(cJSON *root)
{
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (text == NULL)
        return -1;
    puts(text);
    cJSON_free(text);
    return 0;
}
