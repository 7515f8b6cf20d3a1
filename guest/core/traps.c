// SPDX-License-Identifier: MIT
/*
 * Exceptions.  From ring 3 they become signals, delivered on the way back
 * to user mode.  In the kernel only a fault at a known user-access
 * instruction is recoverable; everything else is an oops, except the
 * events the harness injects that a real kernel also survives (#DB, #MC,
 * #NM and reserved vectors are counted and ignored).
 *
 * Besides signals, three things a harness that injects exceptions needs:
 *   - spurious #PF: the page tables (walked as the MMU would, under the
 *     current CR3) permit the access the error code describes: return and
 *     let the instruction retry, at CPL3 (no signal) and at CPL0 alike, as
 *     a real kernel does for stale-TLB faults.  RSVD in the error code is
 *     never spurious.
 *   - injection-tolerant kernel ranges (scenario.h inject_tolerant_add): a
 *     testbed feature, see there.
 *   - int $0x80 arriving as #UD, only with `int80=0` on the command line
 *     (kinject passes it when its probe of the host sees this; on a host
 *     that delivers INT n properly a ring-3 #UD is always SIGILL): on the
 *     project host (kvm_pvm), a ring-3 `int $0x80` is delivered as #UD with
 *     RIP at the instruction although the IDT gate is DPL3.  A ring-3 #UD at the bytes cd 80 is therefore
 *     run as the system call it is (RIP past it, orig_rax = rax) and
 *     counted in irq_stats.int80_as_ud; it returns through the exception
 *     exit (IRET), as int $0x80 does.  Likewise a ring-3 `int3` delivered
 *     as #UD (compatibility mode there) becomes the #BP trap (RIP + 1,
 *     vector 3, SIGTRAP), counted in irq_stats.int3_as_ud.
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

#define USER_TOP 0x0000800000000000ULL

static struct { uint64_t start, end; } tolerant[4];

void inject_tolerant_add(uint64_t start, uint64_t end)
{
	for (unsigned i = 0; i < ARRAY_SIZE(tolerant); i++) {
		if (tolerant[i].start == start && tolerant[i].end == end)
			return;
		if (!tolerant[i].end) {
			tolerant[i].start = start;
			tolerant[i].end = end;
			return;
		}
	}
	panic("too many injection-tolerant ranges");
}

static int in_tolerant_range(uint64_t rip)
{
	for (unsigned i = 0; i < ARRAY_SIZE(tolerant); i++)
		if (rip >= tolerant[i].start && rip < tolerant[i].end)
			return 1;
	return 0;
}

/* Would the MMU allow the access `err` describes at `va` under the current
 * page tables?  Permissions combine over all levels: P everywhere, U
 * everywhere for a user access, W everywhere for a write (CR0.WP is on),
 * no NX anywhere for a fetch, and no user page fetched by the kernel with
 * SMEP on. */
static int pf_access_permitted(uint64_t va, uint64_t err)
{
	uint64_t top = va >> 47;
	const uint64_t *table;
	uint64_t e = 0, all_u = PTE_U, all_w = PTE_W, any_nx = 0;

	if (err & X86_PF_RSVD)
		return 0;
	if (top != 0 && top != 0x1ffff)
		return 0;                  /* non-canonical: never a #PF anyway */
	table = phys_to_virt(read_cr3() & PTE_ADDR_MASK);
	for (int level = 3; level >= 0; level--) {
		e = table[(va >> (12 + 9 * level)) & 511];
		if (!(e & PTE_P))
			return 0;
		all_u &= e;
		all_w &= e;
		any_nx |= e & PTE_NX;
		if (level == 0 || (level <= 2 && (e & PTE_PS)))
			break;
		table = phys_to_virt(e & PTE_ADDR_MASK);
	}
	if ((err & X86_PF_USER) && !all_u)
		return 0;
	if ((err & X86_PF_WRITE) && !all_w)
		return 0;
	if ((err & X86_PF_INSTR) && any_nx)
		return 0;
	if ((err & X86_PF_INSTR) && !(err & X86_PF_USER) && all_u &&
	    (read_cr4() & X86_CR4_SMEP))
		return 0;
	return 1;
}

/* A ring-3 #UD at `int $0x80` (see the top of the file): 1 if handled.
 * An `int3` (cc) that arrived as #UD (kvm_pvm does that in compatibility
 * mode) is turned into the #BP trap it is: RIP past it, vector 3. */
static int int80_as_ud(struct kinject_frame *f)
{
	uint8_t insn[2];

	if (f->rip >= USER_TOP - 2 || copy_from_user(insn, f->rip, 2))
		return 0;
	if (insn[0] == 0xcc) {
		irq_stats.int3_as_ud++;
		f->rip += 1;
		f->vector = X86_TRAP_BP;
		return 0;
	}
	if (insn[0] != 0xcd || insn[1] != KINJECT_VEC_SYSCALL80)
		return 0;
	irq_stats.int80_as_ud++;
	f->rip += 2;
	if (f->cs != variant_user_cs)
		f->rip = (uint32_t)f->rip;
	f->orig_rax = f->rax;
	do_syscall(f);
	return 1;
}

static const char *const names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF9",
	"#TS", "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC",
	"#SX", "#31",
};

static int signal_for(unsigned v)
{
	switch (v) {
	case X86_TRAP_DE: case X86_TRAP_MF: case X86_TRAP_XF:
		return SIGFPE;
	case X86_TRAP_DB: case X86_TRAP_BP:
		return SIGTRAP;
	case X86_TRAP_UD:
		return SIGILL;
	case X86_TRAP_NP: case X86_TRAP_SS: case X86_TRAP_AC:
		return SIGBUS;
	case X86_TRAP_OF: case X86_TRAP_BR: case X86_TRAP_TS: case X86_TRAP_GP:
	case X86_TRAP_PF:
		return SIGSEGV;
	default:
		return 0;
	}
}

void do_exception(struct kinject_frame *f, uint64_t aux)
{
	static char msg[160];
	unsigned v = (unsigned)f->vector;
	int user = (f->cs & 3) == 3;

	check_kernel_gs("do_exception", f);
	irq_stats.exceptions++;
	if (v >= 32)
		oops(KINJECT_OOPS_UNEXPECTED_VECTOR, "do_exception called with a vector >= 32", f);
	if (v == X86_TRAP_DF)
		oops(KINJECT_OOPS_DOUBLE_FAULT, "double fault", f);
	if (v == X86_TRAP_NMI)
		oops(KINJECT_OOPS_UNEXPECTED_VECTOR, "NMI vector routed to do_exception", f);
	if (v == X86_TRAP_MC)
		return;
	if (v == X86_TRAP_DB && !user) {
		/* A #DB in the kernel (e.g. delivered right at an entry
		 * instruction): nothing to do but survive it. */
		irq_stats.kernel_db++;
		return;
	}

	int signo = signal_for(v);
	if (!signo)
		return;   /* #NM, reserved vectors: injected, harmless */

	if (v == X86_TRAP_PF && pf_access_permitted(aux, f->error_code)) {
		irq_stats.spurious_pf++;
		return;
	}
	if (user && v == X86_TRAP_UD && !host_int80_ok()) {
		if (int80_as_ud(f))
			return;
		v = (unsigned)f->vector;     /* int3 seen as #UD: now #BP */
		signo = signal_for(v);
	}

	if (!user) {
		if ((v == X86_TRAP_PF || v == X86_TRAP_GP) && uaccess_fixup(f))
			return;
		if (v == X86_TRAP_GP && in_tolerant_range(f->rip)) {
			irq_stats.tolerated++;
			return;
		}
		snprintf(msg, sizeof(msg), "%s in kernel mode at rip %lx (error %lx, cr2/dr6 %lx)",
			 names[v], f->rip, f->error_code, aux);
		oops(KINJECT_OOPS_KERNEL_FAULT, msg, f);
	}

	if (f->rflags & X86_RFLAGS_IF)
		sti();
	signal_send(task_current(), signo, v,
		    v == X86_TRAP_DB ? aux : f->error_code,
		    v == X86_TRAP_PF ? aux : 0);
	cli();
}
