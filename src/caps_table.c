/* SPDX-License-Identifier: MIT */
/*
 * The capability table, assembled: every source's rows (each lists its
 * own in its header) and the core's, indexed by enum mn_cap.  This file
 * belongs to no source and to not the core: it is where the library is
 * put together, so the core never names a source.
 */
#include "badmem/badmem.h"
#include "core/caps.h"
#include "memory/probe.h"
#include "memnotify.h"
#include "sigchain/sigchain.h"
#include "vmrange/vmrange.h"

#define MN__ROW(cap, name, probe) [cap] = { name, probe },

const struct mn__cap_row mn__cap_rows[MN_CAP__COUNT] = {
	MN__CORE_CAPS(MN__ROW)
	MN__MEMORY_CAPS(MN__ROW)
	MN__BADMEM_CAPS(MN__ROW)
	MN__SIGCHAIN_CAPS(MN__ROW)
	MN__VMRANGE_CAPS(MN__ROW)
};
