/* SPDX-License-Identifier: MIT */
/*
 * Host KVM quirks that change what a guest can do, found by probing the
 * host once per process (not assumed from its name or version).
 */
#ifndef KINJECT_VMM_QUIRKS_H
#define KINJECT_VMM_QUIRKS_H

#include <stdbool.h>

/* True when this KVM delivers a ring-3 SYSCALL and the SYSRET back as the
 * architecture says: SYSCALL lands at LSTAR with CPL 0 and the STAR code
 * selector, SYSRET returns to ring 3 after the SYSCALL.  Probed once in a
 * throwaway VM and cached.  When false, vmm__error() says what was seen. */
bool quirks__syscall_works(void);
/* One line describing what the probe saw ("" until probed). */
const char *quirks__syscall_report(void);

/* True when this KVM can IRET from ring 0 to compat-mode code on a 16-bit
 * stack segment taken from the LDT (the ss16 scenario's classic set-up). */
bool quirks__ldt_ss_works(void);
const char *quirks__ldt_ss_report(void);

#endif
