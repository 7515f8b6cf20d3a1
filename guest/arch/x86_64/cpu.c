/* SPDX-License-Identifier: MIT */
/*
 * CPU feature detection and boot-time patching, run by _start before kmain.
 * The KVM a run happens on may offer less than the host CPU has (PCID,
 * FSGSBASE, SMEP, SMAP, UMIP can each be missing): detect, and where an
 * instruction would raise #UD (STAC/CLAC without SMAP), replace its
 * recorded sites by NOPs of the same length, so addresses never move.
 *
 * SMAP is opt-in with `smap=on` on the command line: on the project's KVM
 * host, KVM sometimes emulates the first instructions of a handler after
 * an injected event and its emulator cannot decode CLAC ("KVM internal
 * error: emulation failure" at the CLAC).  Without `smap=on`, STAC/CLAC are
 * NOPs and CR4.SMAP stays clear (x86_has(X86_FEATURE_SMAP) is false).
 */
#include <guest/x86.h>

uint32_t x86_features;

extern const uint64_t __smap_sites_start[], __smap_sites_end[];

/* "word" appears as a whole token in the boot command line. */
static int cmdline_has(const char *cmdline, const char *word)
{
	for (const char *p = cmdline; *p; ) {
		const char *a = p, *b = word;

		while (*a && *a != ' ' && *b && *a == *b)
			a++, b++;
		if (!*b && (!*a || *a == ' '))
			return 1;
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	return 0;
}

void x86_cpu_init(uint64_t boot_info_pa)
{
	const struct kinject_boot_info *bi =
		(const void *)(boot_info_pa + KINJECT_KERNEL_VBASE);
	struct x86_cpuid c1 = cpuid(1, 0), c0 = cpuid(0, 0), c7 = { 0, 0, 0, 0 };
	int smap_wanted = bi->magic == KINJECT_BOOT_MAGIC && cmdline_has(bi->cmdline, "smap=on");

	if (c0.eax >= 7)
		c7 = cpuid(7, 0);
	x86_features = 0;
	if (c1.ecx & (1u << 17))
		x86_features |= X86_FEATURE_PCID;
	if (c7.ebx & (1u << 0))
		x86_features |= X86_FEATURE_FSGSBASE;
	if (c7.ebx & (1u << 7))
		x86_features |= X86_FEATURE_SMEP;
	if ((c7.ebx & (1u << 20)) && smap_wanted)
		x86_features |= X86_FEATURE_SMAP;
	if (c7.ecx & (1u << 2))
		x86_features |= X86_FEATURE_UMIP;

	if (!x86_has(X86_FEATURE_SMAP)) {
		/* STAC/CLAC (0f 01 cb / 0f 01 ca) -> nopl (%rax) (0f 1f 00).
		 * The text is writable through the boot (and kernel) mapping. */
		for (const uint64_t *p = __smap_sites_start; p < __smap_sites_end; p++) {
			volatile uint8_t *insn = (volatile uint8_t *)*p;

			insn[0] = 0x0f;
			insn[1] = 0x1f;
			insn[2] = 0x00;
		}
	}
}
