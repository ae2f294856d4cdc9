/* SPDX-License-Identifier: MIT */
/*
 * The signal chain, for the other sources (badmem adds its SIGBUS node
 * here) and the capability report.
 */
#ifndef MN_SIGCHAIN_H
#define MN_SIGCHAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/chain.h"

/* Core lock held: make sure memnotify's handler owns @sig and its chain is
   ready.  Returns 0 or -errno. */
int mn__sigchain_prepare(int sig);
/* Core lock held: add an internal handler (not a subscription: never
   removed) to the chain of @sig.  Returns 0 or -errno. */
int mn__signal_register_internal(int sig, mn_signal_fn fn, void *ctx);
/* The chain of @sig (valid after prepare); writers hold the core lock. */
struct mn__chain *mn__sigchain_chain(int sig);
/* True if the program's sigaction() calls reach memnotify's. */
bool mn__sigchain_interposing(void);
/* "SIGSEGV", ... or NULL.  Async-signal-safe. */
const char *mn__signal_name(int sig);

/* The signal chain's capability row: X(enum mn_cap, name, probe), for
   src/caps_table.c. */
#define MN__SIGCHAIN_CAPS(X)                                                  \
	X(MN_CAP_SIGNAL_INTERPOSE, "signal_interpose",                        \
	  mn__probe_signal_interpose)
int mn__probe_signal_interpose(char *detail, size_t len);

#endif
