/* settings.c - placeholder until its module lands. */
#include "optsnap/commands.h"
int cmd_config(int argc, char **argv) { (void)argc; (void)argv; return 1; }
