// SPDX-License-Identifier: MIT
/*
 * Signals: a fault in ring 3 marks a signal pending; on the way back to
 * user mode the signal frame (the complete interrupted kinject_frame plus
 * siginfo) is pushed on the user stack and the return is diverted to the
 * handler.  The restorer's SYS_SIGRETURN puts the saved frame back, with
 * RFLAGS and the selectors sanitised: user-settable flags only, IF forced
 * on, CS/SS only the variant's user selectors or RPL-3 LDT selectors (a bad
 * LDT selector is left for IRET to fault on: the variant must turn that
 * fault into a signal, bugs #4 and #5).
 */
#include <guest/core.h>
#include <guest/sched.h>
#include <guest/scenario.h>
#include <guest/x86.h>

#define USER_TOP 0x0000800000000000ULL
#define USER_RFLAGS (X86_RFLAGS_CF | X86_RFLAGS_PF | X86_RFLAGS_AF | X86_RFLAGS_ZF | \
		     X86_RFLAGS_SF | X86_RFLAGS_TF | X86_RFLAGS_DF | X86_RFLAGS_OF | \
		     X86_RFLAGS_RF | X86_RFLAGS_AC)
#define LDT_ENTRIES 16

struct sigframe {
	uint64_t retaddr;
	struct siginfo_k info;
	struct kinject_frame frame;
	uint64_t magic;
};
_Static_assert(__builtin_offsetof(struct sigframe, info) == SIGFRAME_INFO, "uapi.h");
_Static_assert(__builtin_offsetof(struct sigframe, frame) == SIGFRAME_FRAME, "uapi.h");
_Static_assert(__builtin_offsetof(struct sigframe, magic) == SIGFRAME_MAGIC, "uapi.h");
_Static_assert(sizeof(struct sigframe) == SIGFRAME_SIZE, "uapi.h");

/* The core's copy of the LDT it installed: bases for 16-bit stacks. */
static uint64_t ldt[LDT_ENTRIES];
static unsigned ldt_n;

void ldt_ss16_install(void)
{
	ldt[0] = x86_make_desc(USER_SS16_BASE, 0xffff,
			       DESC_P | DESC_S | DESC_RW | DESC_A | DESC_DPL(3));
	ldt_n = 1;
	variant_set_ldt(ldt, ldt_n);
}

static int is_ss16_gdt_sel(uint64_t sel)
{
	return sel == variant_user_ss16;
}

static int is_ldt_sel(uint64_t sel)
{
	return (sel & ~0xffffULL) == 0 && (sel & SEL_TI_LDT) && (sel & 3) == 3 &&
	       (sel >> 3) < LDT_ENTRIES;
}

int selector_is_user_code(uint64_t sel)
{
	return sel == variant_user_cs || sel == variant_user_cs32 || is_ldt_sel(sel);
}

int selector_is_user_data(uint64_t sel)
{
	return sel == variant_user_ss || is_ss16_gdt_sel(sel) || is_ldt_sel(sel);
}

/* Linear address of the user stack pointer: a 16-bit stack segment uses
 * only SP, offset by the segment base. */
static uint64_t user_stack_linear(const struct kinject_frame *f)
{
	if (is_ss16_gdt_sel(f->ss))     /* 16-bit, base USER_SS16_GDT_BASE */
		return USER_SS16_GDT_BASE + (f->rsp & 0xffff);
	if (is_ldt_sel(f->ss) && (f->ss >> 3) < ldt_n) {
		uint64_t d = ldt[f->ss >> 3];
		uint64_t base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
		if (!(d & DESC_DB))
			return base + (f->rsp & 0xffff);
		return base + (uint32_t)f->rsp;
	}
	return f->rsp;
}

static void __attribute__((noreturn)) kill_task(int signo, const char *why,
						const struct kinject_frame *f)
{
	struct task *t = task_current();

	scenario_fail("task %s killed by signal %d: %s (rip %lx, rsp %lx)", t->name, signo, why,
		      f->rip, f->rsp);
	task_exit(128 + signo);
}

void signal_send(struct task *t, int signo, uint64_t vector, uint64_t error_code, uint64_t addr)
{
	uint64_t fl = local_irq_save();

	t->sig_pending |= 1U << signo;
	t->sig_info[signo].signo = (uint64_t)signo;
	t->sig_info[signo].vector = vector;
	t->sig_info[signo].error_code = error_code;
	t->sig_info[signo].addr = addr;
	if (t == task_current())
		kinject_percpu.sigpending = 1;
	local_irq_restore(fl);
}

/* Delivers the lowest pending signal.  Several pending signals stack one
 * frame each, one per pass of the exit-work loop, as in Linux. */
void signal_deliver(struct kinject_frame *f)
{
	struct task *t = task_current();
	struct sigframe fr;
	int signo;

	cli();
	if (!t->sig_pending) {
		kinject_percpu.sigpending = 0;
		sti();
		return;
	}
	signo = __builtin_ctz(t->sig_pending);
	t->sig_pending &= ~(1U << signo);
	kinject_percpu.sigpending = t->sig_pending != 0;
	fr.info = t->sig_info[signo];
	sti();

	if (!t->sig_handler[signo]) {
		static char why[96];
		snprintf(why, sizeof(why), "no handler for vector %lu (error %lx, addr %lx)",
			 fr.info.vector, fr.info.error_code, fr.info.addr);
		kill_task(signo, why, f);
	}

	/* Below the red zone, and aligned as if the handler had been
	 * called: (RSP + 8) % 16 == 0 at its first instruction. */
	uint64_t sp = user_stack_linear(f) - 128 - sizeof(fr);
	sp = (sp & ~15ULL) - 8;
	fr.retaddr = t->sig_restorer[signo];
	fr.frame = *f;
	fr.magic = SIGFRAME_MAGIC_VALUE;
	if (copy_to_user(sp, &fr, sizeof(fr)))
		kill_task(signo, "signal frame does not fit on the user stack", f);

	f->rip = t->sig_handler[signo];
	f->rsp = sp;
	f->rdi = (uint64_t)signo;
	f->rsi = sp + SIGFRAME_INFO;
	f->rdx = sp + SIGFRAME_FRAME;
	f->cs = variant_user_cs;
	f->ss = variant_user_ss;
	f->rflags = (f->rflags & ~(X86_RFLAGS_TF | X86_RFLAGS_DF | X86_RFLAGS_AC |
				   X86_RFLAGS_NT | X86_RFLAGS_RF)) | X86_RFLAGS_IF;
}

long sys_sigaction(uint64_t signo, uint64_t handler, uint64_t restorer)
{
	struct task *t = task_current();

	if (signo == 0 || signo >= NSIG || handler >= USER_TOP || restorer >= USER_TOP)
		return -EINVAL;
	if (handler && !restorer)
		return -EINVAL;
	t->sig_handler[signo] = handler;
	t->sig_restorer[signo] = restorer;
	return 0;
}

long sys_sigreturn(struct kinject_frame *f)
{
	struct sigframe fr;
	/* The handler returned into the restorer, popping retaddr. */
	uint64_t sp = user_stack_linear(f) - 8;

	if (copy_from_user(&fr, sp, sizeof(fr)))
		kill_task(SIGSEGV, "sigreturn: signal frame unreadable", f);
	if (fr.magic != SIGFRAME_MAGIC_VALUE)
		kill_task(SIGSEGV, "sigreturn: no signal frame at the stack pointer", f);
	if (!selector_is_user_code(fr.frame.cs) || !selector_is_user_data(fr.frame.ss))
		kill_task(SIGSEGV, "sigreturn: CS/SS not user selectors", f);

	/* Every GPR, RIP, RSP, CS, SS.  orig_rax, vector and error_code stay
	 * the kernel's own: they describe this entry, not the old one. */
	f->r15 = fr.frame.r15; f->r14 = fr.frame.r14; f->r13 = fr.frame.r13;
	f->r12 = fr.frame.r12; f->r11 = fr.frame.r11; f->r10 = fr.frame.r10;
	f->r9 = fr.frame.r9;   f->r8 = fr.frame.r8;   f->rbp = fr.frame.rbp;
	f->rdi = fr.frame.rdi; f->rsi = fr.frame.rsi; f->rdx = fr.frame.rdx;
	f->rcx = fr.frame.rcx; f->rbx = fr.frame.rbx; f->rax = fr.frame.rax;
	f->rip = fr.frame.rip;
	f->rsp = fr.frame.rsp;
	f->cs = fr.frame.cs;
	f->ss = fr.frame.ss;
	f->rflags = (f->rflags & ~USER_RFLAGS) | (fr.frame.rflags & USER_RFLAGS) |
		    X86_RFLAGS_IF | X86_RFLAGS_FIXED;
	f->rflags &= ~(X86_RFLAGS_IOPL | X86_RFLAGS_NT | X86_RFLAGS_VM);
	return (long)f->rax;
}
