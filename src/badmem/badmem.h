/* SPDX-License-Identifier: MIT */
#ifndef MN_BADMEM_H
#define MN_BADMEM_H

/* Bad ranges the table holds; more are counted as lost and reported. */
#define MN__BADMEM_CAPACITY 4096

#endif
