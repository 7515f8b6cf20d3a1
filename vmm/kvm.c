/* SPDX-License-Identifier: MIT */
/*
 * kvm.c: the host.  Opens /dev/kvm and refuses to go on unless the API
 * version and every capability kinject relies on are there, so that a
 * missing feature is one clear line at start-up instead of a strange
 * failure in the middle of a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "internal.h"

#define KVM_DEV "/dev/kvm"

struct cap_need {
	long cap;
	const char *name;
	long must_have;   /* bits the returned value must contain (0: nonzero) */
	const char *why;
};

/* Everything the library uses.  "why" tells the reader what breaks. */
static const struct cap_need caps[] = {
	{ KVM_CAP_SYNC_REGS, "KVM_CAP_SYNC_REGS",
	  KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS,
	  "registers are read and restored through kvm_run" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", 0, "event injection and snapshots" },
	{ KVM_CAP_SET_GUEST_DEBUG, "KVM_CAP_SET_GUEST_DEBUG", 0, "breakpoints and single-step" },
	{ KVM_CAP_SET_GUEST_DEBUG2, "KVM_CAP_SET_GUEST_DEBUG2", KVM_GUESTDBG_BLOCKIRQ,
	  "single-step with KVM_GUESTDBG_BLOCKIRQ" },
	{ KVM_CAP_X86_ROBUST_SINGLESTEP, "KVM_CAP_X86_ROBUST_SINGLESTEP", 0, "single-step" },
	{ KVM_CAP_EXCEPTION_PAYLOAD, "KVM_CAP_EXCEPTION_PAYLOAD", 0,
	  "pending exceptions with CR2/DR6 payload" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", 0, "the run loop" },
	{ KVM_CAP_USER_NMI, "KVM_CAP_USER_NMI", 0, "NMI injection" },
	{ KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS", 0, "snapshots of debug registers" },
	{ KVM_CAP_XSAVE, "KVM_CAP_XSAVE", 0, "snapshots of FPU/vector state" },
	{ KVM_CAP_XCRS, "KVM_CAP_XCRS", 0, "snapshots of XCR0" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", 0, "guest CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", 0, "VM set-up" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", 0, "guest RAM" },
};

static int open_dev(void)
{
	int fd = open(KVM_DEV, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
		return vmm__fail("%s: %s: load the module (modprobe kvm_intel or kvm_amd), "
				 "enable VT-x/AMD-V in firmware, or enable nested virtualization "
				 "when running under a hypervisor", KVM_DEV, strerror(errno));
	if (errno == EACCES || errno == EPERM)
		return vmm__fail("%s: %s: fix the permissions (add the user to group kvm or "
				 "run as root)", KVM_DEV, strerror(errno));
	return vmm__fail("%s: open: %s", KVM_DEV, strerror(errno));
}

int kvm__open(void)
{
	int fd = open_dev();

	if (fd < 0)
		return -1;
	int v = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION) {
		close(fd);
		return vmm__fail("%s: KVM_GET_API_VERSION is %d, kinject needs %d", KVM_DEV,
				 v, KVM_API_VERSION);
	}
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		long r = ioctl(fd, KVM_CHECK_EXTENSION, caps[i].cap);
		bool ok = caps[i].must_have ? r > 0 && (r & caps[i].must_have) == caps[i].must_have
					    : r > 0;
		if (!ok) {
			close(fd);
			return vmm__fail("%s: missing %s (needed for %s): use a newer host kernel "
					 "with kvm_intel or kvm_amd loaded (under a hypervisor, "
					 "enable nested virtualization)", KVM_DEV, caps[i].name,
					 caps[i].why);
		}
	}
	return fd;
}

int kvm__check(void)
{
	int fd = kvm__open();

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

bool kvm__unavailable(void)
{
	int fd = open_dev();

	if (fd < 0)
		return true;
	close(fd);
	return false;
}
