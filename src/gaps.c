/* gaps.c - placeholder until its module lands. */
#include "optsnap/commands.h"
int cmd_gaps(int argc, char **argv) { (void)argc; (void)argv; return 1; }
