/* chain.h - reading history back: `optsnap chain` (an underlying's chain as
 * of a time, SQL optsnap_chain_at) and `optsnap series` (one contract over a
 * range, SQL optsnap_series). */
#ifndef OPTSNAP_CHAIN_H
#define OPTSNAP_CHAIN_H

/* The commands; each returns the process exit code (enum exit_code). */
int cmd_chain(int argc, char **argv);
int cmd_series(int argc, char **argv);

#endif
