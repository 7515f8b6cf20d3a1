/* SPDX-License-Identifier: MIT */
/*
 * Host KVM quirks that change what a guest can do, found by probing the
 * host once per process (never assumed from its name or version).
 */
#ifndef KINJECT_VMM_QUIRKS_H
#define KINJECT_VMM_QUIRKS_H

#include <stdbool.h>

enum quirk {
	/* A ring-3 SYSCALL lands at LSTAR with CPL 0 and the STAR selector,
	 * and SYSRET returns to ring 3 after it. */
	QUIRK_SYSCALL,
	/* IRET from ring 0 to compat-mode code on a 16-bit stack segment from
	 * the LDT (the classic ss16 set-up). */
	QUIRK_LDT_SS,
	/* INT n from ring 3 through a DPL3 IDT gate reaches that gate. */
	QUIRK_INT80,
	/* A hardware execution breakpoint (KVM_SET_GUEST_DEBUG) on 64-bit
	 * ring-3 code stops there.  Where it does not, dbg__set_breakpoint
	 * emulates ring-3 breakpoints with INT3 (vmm/ring3.c). */
	QUIRK_RING3_HWBP,
	QUIRK_COUNT
};

/* What a guest of this VMM gets for `q`. */
enum quirk_state {
	QUIRK_BROKEN = -1,            /* the host deviates, nothing makes up for it */
	QUIRK_WORKS = 1,              /* the host does what the architecture says */
	/* The host deviates and the VMM emulates the architecture instead
	 * (QUIRK_SYSCALL, QUIRK_INT80: vmm/sysemu.c), at the sites of 64-bit
	 * user code the caller names with vm__sysemu_sites(). */
	QUIRK_EMULATED = 2,
};
/* Probed once in throwaway VMs and cached; unless QUIRK_WORKS, vmm__error()
 * says what the host does, in one line. */
enum quirk_state quirks__state(enum quirk q);
/* True when the guest sees the architecture's behaviour: QUIRK_WORKS or
 * QUIRK_EMULATED.  When false, vmm__error() says what was seen. */
bool quirks__works(enum quirk q);
/* One line describing what the probe saw ("" until probed). */
const char *quirks__report(enum quirk q);

#endif
