/* SPDX-License-Identifier: MIT */
/*
 * The engine's trace mode (harness/engine_run.h; the design is in
 * engine.c's header comment): single-stepping after each injection, guard
 * breakpoints where the host may lose a trap, gaps for what runs unstepped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine_run.h"

/* ---- trace mode ---------------------------------------------------------------- */

/* The map and the decode cache, built on the first traced case of the
 * session (right after a restore: the vCPU is at READY then). */
int trace__prepare(struct run *R)
{
	struct session *s = R->s;

	if (!s->dcache) {
		s->dcache = calloc(DCACHE_SIZE, sizeof(*s->dcache));
		if (!s->dcache)
			return vmm__fail("trace: out of memory");
	}
	if (!s->map_state) {
		if (entrymap__build(&s->g, &s->map)) {
			s->map_state = -1;
			snprintf(s->map_error, sizeof(s->map_error), "%s", vmm__error());
		} else {
			s->map_state = 1;
		}
	}
	R->x.map = s->map_state > 0 ? &s->map : NULL;
	if (!R->x.map)
		run__line(R, "no window map (the map oracle does not apply): %s", s->map_error);
	return 0;
}

/* The instruction at rip: the decoded entry text, else guest memory
 * (kernel code cached by address; user code decoded each time). */
static const struct insn *decode_at(struct run *R, uint64_t rip)
{
	struct session *s = R->s;
	struct vm *vm = s->g.vm;
	const struct insn *in = analysis__at(&s->entry, rip);
	struct dcache_ent *d = NULL;
	struct insn *out = &R->scratch;
	uint8_t buf[16];
	size_t n = sizeof(buf);

	if (in)
		return in;
	if (rip >= USER_HALF_END && s->dcache) {
		d = &s->dcache[(rip * 0x9e3779b97f4a7c15ULL) >> 52];
		if (d->valid && d->in.addr == rip)
			return &d->in;
		d->valid = false;
		out = &d->in;
	}
	/* Only up to the end of the page when the next one is not mapped. */
	if (vm__read_gva(vm, 0, rip, buf, n) && vm__read_gva(vm, s->g.layout.kernel_cr3, rip, buf, n)) {
		n = 4096 - (rip & 4095);
		if (n > sizeof(buf))
			n = sizeof(buf);
		if (vm__read_gva(vm, 0, rip, buf, n) &&
		    vm__read_gva(vm, s->g.layout.kernel_cr3, rip, buf, n))
			return NULL;
	}
	if (analysis__decode_one(buf, n, rip, out) == 0 && d)
		d->valid = true;
	return out;
}

/* The handler address of an IDT vector (0 if unreadable or not present):
 * through the current CR3, or the kernel's when the current one does not
 * map the IDT. */
static uint64_t idt_gate(struct run *R, unsigned vector)
{
	uint64_t h = vcpu__gate_handler(R->s->g.vm, 0, vector);

	return h ? h : vcpu__gate_handler(R->s->g.vm, R->s->g.layout.kernel_cr3, vector);
}

void trace__step_check(struct run *R, uint64_t rip);

/* One instruction about to execute: the oracles judge it, the slots are
 * matched in software (unless the hardware just reported them), the
 * printer gets it. */
void trace__on_step(struct run *R, bool dispatch)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_regs *rg = vcpu__regs(vm);
	const struct kvm_sregs *sr = vcpu__sregs(vm);
	struct case_result *r = R->r;
	size_t before = r->nfindings;
	struct engine_step st;
	const struct insn *in;
	unsigned bits = 0;
	uint64_t rip = rg->rip;

	R->steps++;
	R->x.nstep = R->steps;
	memset(&st, 0, sizeof(st));
	st.cpl = vcpu__cpl(vm);
	if (R->to_user && st.cpl != 3) {
		R->gap = "ring 3 (not traceable on this host) and the kernel up to the next exit";
		r->gaps++;
	}
	in = decode_at(R, rip);
	FOR_ORACLES(R, o)
		if (o->at_step)
			o->at_step(&R->x, in);
	R->to_user = oracle__returns_to_user(&R->x, in, NULL);

	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if (R->bp_on[i] && R->bp_addr[i] == rip)
			bits |= 1u << i;
	if (bits && dispatch) {
		struct vm_exit e;

		memset(&e, 0, sizeof(e));
		e.kind = VM_EXIT_BREAKPOINT;
		e.rip = rip;
		e.debug.dr6 = bits;
		e.debug.slot = __builtin_ctz(bits);
		run__on_breakpoint(R, &e);
	}

	if (R->s->opts.on_step) {
		st.n = R->steps;
		st.rip = rip;
		st.insn = in;
		st.regs = rg;
		st.sregs = sr;
		entrymap__observe_layout(&R->s->g.layout, rg, sr, &st.seen);
		st.gap = R->gap;
		st.findings = r->findings + before;
		st.nfindings = r->nfindings - before;
		st.injected = R->last_injected != 0;
		st.step = R->last_injected;
		R->s->opts.on_step(R->s->opts.step_arg, &st);
	}
	R->gap = NULL;
	R->last_injected = 0;
}

static void end_hang(struct run *R, const char *fmt, uint64_t n)
{
	char where[128];

	verdict__set(&R->end, VERDICT_FAIL, "hang", fmt, (unsigned long long)n,
		     guest__where(&R->s->g, vcpu__regs(R->s->g.vm)->rip, where, sizeof(where)));
	R->ended = true;
}

/* One unstepped run to the next exit that matters to this phase.
 * Returns 1 on a breakpoint or an exit the run goes on after, 0 when the
 * run ended (R->end), -1 on a host error. */
static int run_unstepped(struct run *R, struct vm_exit *e, uint64_t max_exits, int *host_err)
{
	struct vm *vm = R->s->g.vm;
	uint64_t used = vm__exit_count(vm) - R->start_exits;

	if (used >= R->budget) {
		end_hang(R, "no verdict within %llu exits (RIP %s)", R->budget);
		return 0;
	}
	if (!max_exits || max_exits > R->budget - used)
		max_exits = R->budget - used;
	if (vcpu__run(vm, e, max_exits)) {
		run__result_set(R->r, VERDICT_ERROR, "host error: %s", vmm__error());
		*host_err = 1;
		return -1;
	}
	if (e->kind == VM_EXIT_BUDGET && max_exits < R->budget - used &&
	    strncmp(e->reason, "deadline", 8))
		return 1;                       /* the bound asked for, not a hang */
	if (e->kind == VM_EXIT_BUDGET) {
		verdict__set(&R->end, VERDICT_FAIL, "hang", "no verdict within %llu exits (%s)",
			     (unsigned long long)R->budget, e->reason);
		R->ended = true;
		return 0;
	}
	if (e->kind == VM_EXIT_BREAKPOINT || e->kind == VM_EXIT_SINGLESTEP)
		return 1;
	if (guest__judge_exit(&R->s->g, e, &R->end)) {
		R->ended = true;
		return 0;
	}
	return 1;
}

/* After an injection: run (nothing stepped, nothing else armed) to the
 * first instruction of the event's gate -- or of #DF if delivery fails
 * that way -- and start stepping there. */
static bool trace_deliver(struct run *R, int *host_err, unsigned vector)
{
	struct vm *vm = R->s->g.vm;
	uint64_t gate = idt_gate(R, vector), df = idt_gate(R, IDT_VECTOR_DF), rip;
	struct vm_exit e;
	int rc;

	R->nexpect = 0;                      /* not a step of step_guard's */
	R->deliver_pending = false;
	if (!gate) {
		run__step_on(R);
		R->gap = "(IDT gate unreadable: stepping from the injection point)";
		trace__on_step(R, true);
		return true;
	}
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		dbg__clear_breakpoint(vm, i);
	dbg__set_singlestep(vm, false);
	R->stepping = false;
	dbg__set_breakpoint(vm, 0, gate);
	if (df && df != gate)
		dbg__set_breakpoint(vm, 1, df);
	for (;;) {
		rc = run_unstepped(R, &e, 0, host_err);
		if (rc <= 0) {
			run__bp_rearm(R);
			return false;
		}
		rip = vcpu__regs(vm)->rip;
		if (e.kind == VM_EXIT_BREAKPOINT && (rip == gate || (df && rip == df)))
			break;
	}
	run__step_on(R);
	if (rip != gate)
		R->gap = "(the event escalated to a double fault on delivery)";
	else if (R->other_pending)
		R->gap = "(another event was queued at the stop: it may have run first, unstepped)";
	trace__on_step(R, true);
	return true;
}

/* Stepping holds the guest's own IRQs and NMIs (BLOCKIRQ).  True if one
 * is queued and the guest could take it now; *nmi says which. */
static bool held_event_due(struct run *R, bool *nmi)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_vcpu_events *ev = vcpu__events(vm);

	*nmi = false;
	if (ev->exception.pending || ev->exception.injected || ev->interrupt.injected ||
	    ev->nmi.injected)
		return false;                    /* KVM delivers those itself */
	if (ev->nmi.pending) {
		*nmi = true;
		return !ev->nmi.masked;
	}
	if (!vcpu__event_pending(vm))
		return false;
	return (vcpu__regs(vm)->rflags & RFLAGS_IF_BIT) &&
	       !(ev->interrupt.shadow & (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS));
}

/* A held IRQ: one unstepped run to the next exit of any kind (the vector
 * is the VMM's to choose), slots armed in hardware meanwhile. */
static bool trace_gap(struct run *R, int *host_err)
{
	struct vm_exit e;
	int rc;

	R->nexpect = 0;                      /* not a step of step_guard's */
	run__step_off(R);
	rc = run_unstepped(R, &e, 1, host_err);
	R->r->gaps++;
	if (rc <= 0)
		return false;
	if (e.kind == VM_EXIT_BREAKPOINT)
		run__on_breakpoint(R, &e);
	if (R->resume_top >= 0 && !R->ended) {
		run__step_on(R);
		R->gap = "the guest's IRQ, delivered unstepped up to the next exit (the host holds "
			 "IRQs while single-stepping)";
		/* A slot the hardware just reported is not matched again. */
		trace__on_step(R, e.kind != VM_EXIT_BREAKPOINT);
	}
	return true;
}

/* The host loses the single-step trap after an instruction it emulates
 * (seen: swapgs, then one to three instructions run unseen -- the IRET to
 * ring 3 among them).  So a step of such an instruction also arms
 * hardware breakpoints at the instructions that can come next: the
 * fall-through, a direct target, a RET's return address.  Whichever exit
 * comes first -- trap or breakpoint -- is the next step.  The pairs of
 * slots alternate: the VMM disarms a slot that just hit for one entry.
 * IRETQ is left to the VMM (it steps it with a breakpoint of its own).
 *
 * Guards cost a KVM_SET_GUEST_DEBUG per step, so only instructions the
 * host may emulate get them: privileged and system instructions, GS/CR3/
 * MSR/flags/stack-segment changes, fences, port I/O, the one before an IRET, and
 * any the session learned.  Every other step is checked on arrival: it
 * must land on a successor (or an IDT gate: an event or fault delivered
 * on the way).  If it does not, the host lost a trap there: the address is
 * learned and the case runs again (engine__run_case_from). */
#define MAY_BE_EMULATED (INSN_PRIVILEGED | INSN_SWAPGS | INSN_CR3_WRITE | INSN_CR3_READ |    \
			 INSN_CLI | INSN_STI | INSN_POPF | INSN_PUSHF | INSN_WRMSR | INSN_RDMSR |  \
			 INSN_WRGSBASE | INSN_RDGSBASE | INSN_WRFSBASE | INSN_RDFSBASE | INSN_HLT | \
			 INSN_LOADS_SS | INSN_SYSCALL | INSN_INT | INSN_FAR_XFER | INSN_UD |        \
			 INSN_BAD | INSN_IRET | INSN_SYSRET | INSN_SYSEXIT | INSN_FENCE)

static bool learned_guard(const struct session *s, uint64_t addr)
{
	for (unsigned i = 0; i < s->nguards; i++)
		if (s->guards[i] == addr)
			return true;
	return false;
}

static bool needs_guard(struct run *R, const struct insn *in)
{
	const struct insn *nx;

	if (in->flags & MAY_BE_EMULATED)
		return true;
	if (!strncmp(in->mnemonic, "in", 2) && strncmp(in->mnemonic, "inc", 3))
		return true;                          /* in, insb, ...: port I/O */
	if (!strncmp(in->mnemonic, "out", 3))
		return true;
	if ((nx = decode_at(R, in->addr + in->size)) && (nx->flags & INSN_IRET))
		return true;
	return learned_guard(R->s, in->addr);
}

static void step_guard(struct run *R)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_regs *rg = vcpu__regs(vm);
	const struct insn *in = decode_at(R, rg->rip);
	uint64_t next[2], ret;
	unsigned n = 0, base;

	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		dbg__clear_breakpoint(vm, i);
	R->nexpect = 0;
	/* Back to ring 3, where this host does not step: the trap comes back
	 * somewhere in the kernel after the next entry.  A stop searched for
	 * in that span, or an interrupted ring-3 context resuming there, would
	 * pass unseen: arm them in hardware meanwhile (the VMM stops at a
	 * ring-3 address by INT3). */
	if (R->to_user && R->searching && R->bp_on[SLOT_STOP] &&
	    R->bp_addr[SLOT_STOP] >= USER_HALF_END)
		dbg__set_breakpoint(vm, SLOT_STOP, R->bp_addr[SLOT_STOP]);
	if (R->to_user && R->bp_on[SLOT_RESUME])
		dbg__set_breakpoint(vm, SLOT_RESUME, R->bp_addr[SLOT_RESUME]);
	if (!in || (in->flags & (INSN_BAD | INSN_IRET | INSN_SYSRET | INSN_SYSEXIT)))
		return;
	if (!(in->flags & (INSN_JMP | INSN_RET | INSN_CALL | INSN_UD)))
		next[n++] = in->addr + in->size;
	if (in->has_target)
		next[n++] = in->target;
	else if ((in->flags & INSN_RET) && !vm__read_gva(vm, 0, rg->rsp, &ret, sizeof(ret)))
		next[n++] = ret;
	if (!needs_guard(R, in)) {
		/* A REP string instruction traps after each iteration. */
		if (!strncmp(in->mnemonic, "rep", 3) && n < 2)
			next[n++] = in->addr;
		/* Indirect jumps and calls: the successor is not known here. */
		if (n && !(in->flags & INSN_INDIRECT)) {
			memcpy(R->expect, next, n * sizeof(next[0]));
			R->nexpect = n;
			R->expect_from = in->addr;
		}
		return;
	}
	R->guard_pair ^= 1;
	base = R->guard_pair * 2;
	for (unsigned i = 0; i < n; i++)
		if (next[i] != rg->rip)         /* a breakpoint here would fire at once */
			dbg__set_breakpoint(vm, (int)(base + i), next[i]);
}

/* An unguarded step landed at `rip`: a successor, an IDT gate (delivered
 * on the way), or the host lost the trap (learn the address, run again). */
void trace__step_check(struct run *R, uint64_t rip)
{
	struct session *s = R->s;

	if (!R->nexpect)
		return;
	R->nexpect = 0;
	for (unsigned i = 0; i < 2; i++)
		if (R->expect[i] == rip)
			return;
	for (unsigned v = 0; v < 256; v++)
		if (idt_gate(R, v) == rip)
			return;
	if (s->nguards < ENGINE_MAX_GUARDS && !learned_guard(s, R->expect_from))
		s->guards[s->nguards++] = R->expect_from;
	R->lost_step = true;
	run__line(R, "the host lost the single-step trap after 0x%llx (landed at 0x%llx): "
		   "guarded from now on, the case runs again", (unsigned long long)R->expect_from,
		   (unsigned long long)rip);
}

/* Trace mode, before the next run: deliver, stop stepping, budget, gaps.
 * Returns -1 to go on with a normal run, else run_once_more's answer. */
int trace__before_run(struct run *R, int *host_err)
{
	uint64_t rip = vcpu__regs(R->s->g.vm)->rip;
	bool nmi;

	if (R->deliver_pending) {
		const struct vm_event *ev = &R->x.event[R->last_injected - 1];
		return trace_deliver(R, host_err, ev->kind == VM_EVENT_NMI ? 2 : ev->vector);
	}
	if (!R->stepping)
		return -1;
	if (R->resume_top < 0) {
		/* Every interrupted context is back: on to the verdict unstepped,
		 * from a boundary where no slot sits (the hardware would report
		 * the arrival just seen once more) -- after the task's return
		 * to ring 3, if that is still to come (arm_resume): the oracles
		 * judged that IRET or SYSRET before it runs (to_user). */
		if (R->until_user && !R->to_user && R->steps < R->budget_steps) {
			step_guard(R);
			return -1;
		}
		if (!run__bp_at(R, rip))
			run__step_off(R);
		return -1;
	}
	if (R->steps >= R->budget_steps) {
		end_hang(R, "the interrupted context(s) did not resume within %llu single-steps (RIP %s)",
			 R->budget_steps);
		return 0;
	}
	if (held_event_due(R, &nmi) && !run__bp_at(R, rip)) {
		if (nmi) {
			R->last_injected = 0;
			return trace_deliver(R, host_err, 2);
		}
		return trace_gap(R, host_err);
	}
	step_guard(R);
	return -1;
}
