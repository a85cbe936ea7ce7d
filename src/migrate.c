/* migrate.c - placeholder until its module lands. */
#include "optsnap/migrate.h"
int cmd_migrate(int argc, char **argv) { (void)argc; (void)argv; return 1; }
