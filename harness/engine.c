/* SPDX-License-Identifier: MIT */
/*
 * The case engine: sessions (a guest booted, patched and snapshotted at
 * READY) and case runs (restore, stop, inject, watch, judge).
 *
 * Breakpoint slots (the CPU has four):
 *   0 STOP     while searching: the step's stop address;
 *              after the last injection: the C handler of that event
 *   1 RESUME   the interrupted RIP of the newest step whose context has not
 *              resumed yet (accepted only with the interrupted CS and RSP:
 *              entry code is re-entrant, other contexts pass the same RIP)
 *   2 DECIDE   the variant's return-to-kernel decision point, for an event
 *              that interrupted CPL 0 (the preempt oracle)
 *   3 SWITCH   variant_switch_to: a context switch, seen from outside
 * A slot is re-armed in place (no ioctl until the next KVM_RUN, and only if
 * the set changed), so a case costs one SET_GUEST_DEBUG per change.
 *
 * Trace mode (case `mode trace`, engine_opts.trace): after each injection
 * the engine runs to the first instruction of the event's IDT gate (a
 * hardware breakpoint there, nothing else armed: the event is delivered
 * exactly as in fast mode), then single-steps until every interrupted
 * context has resumed, and runs fast again.  While stepping the four
 * slots are kept in software (R->bp) and matched against RIP at every
 * step, so the hooks see the same stops as in fast mode; every step calls
 * the oracles' at_step with the decoded instruction.  The host holds the
 * guest's own IRQs and NMIs while single-stepping (BLOCKIRQ): when one is
 * deliverable the engine lets it in with one unstepped run to the next
 * exit (a "gap", counted and printed).  Ring 3 is not stepped on kvm_pvm:
 * a return to ring 3 shows as one gap until the next exit.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "engine_run.h"

/* ---- small helpers ---------------------------------------------------------- */

void finding__print(FILE *f, const struct finding *x, const char *prefix)
{
	fprintf(f, "%soracle:   %s\n%swhere:    %s\n%sexpected: %s\n%sactual:   %s\n",
		prefix, x->oracle, prefix, x->where, prefix, x->expected, prefix, x->actual);
}

static uint64_t now_usec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static uint64_t sym_addr(const struct symtab *t, const char *name)
{
	const struct symbol *s = sym__find(t, name);

	return s ? s->addr : 0;
}

void run__result_set(struct case_result *r, enum verdict_kind k, const char *fmt, ...)
{
	va_list ap;

	r->verdict = r->observed = k;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

/* Slots as the hooks see them.  While single-stepping nothing is armed in
 * hardware: every step matches RIP against these (see on_step). */
static void bp_set(struct run *R, int slot, uint64_t addr)
{
	R->bp_on[slot] = true;
	R->bp_addr[slot] = addr;
	if (!R->stepping)
		dbg__set_breakpoint(R->s->g.vm, slot, addr);
}

static void bp_clear(struct run *R, int slot)
{
	R->bp_on[slot] = false;
	if (!R->stepping)
		dbg__clear_breakpoint(R->s->g.vm, slot);
}

void run__bp_rearm(struct run *R)
{
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if (R->bp_on[i])
			dbg__set_breakpoint(R->s->g.vm, i, R->bp_addr[i]);
		else
			dbg__clear_breakpoint(R->s->g.vm, i);
	}
}

/* True if an armed slot sits at addr: re-arming it in hardware there
 * would report the same arrival twice. */
bool run__bp_at(const struct run *R, uint64_t addr)
{
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		if (R->bp_on[i] && R->bp_addr[i] == addr)
			return true;
	return false;
}

void run__step_on(struct run *R)
{
	struct vm *vm = R->s->g.vm;

	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		dbg__clear_breakpoint(vm, i);
	dbg__set_singlestep(vm, true);
	R->stepping = true;
}

void run__step_off(struct run *R)
{
	R->nexpect = 0;
	if (!R->stepping)
		return;
	dbg__set_singlestep(R->s->g.vm, false);
	R->stepping = false;
	run__bp_rearm(R);
}

void run__line(struct run *R, const char *fmt, ...)
{
	FILE *f = R->s->opts.debug;
	va_list ap;
	char where[160];

	if (!f)
		return;
	fprintf(f, "    [engine] +%llu exits  %s  ",
		(unsigned long long)(vm__exit_count(R->s->g.vm) - R->start_exits),
		sym__describe(&R->s->g.img.symtab, vcpu__regs(R->s->g.vm)->rip, where, sizeof(where)));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* ---- sessions ----------------------------------------------------------------- */

/* Decision points of the return to kernel mode, by variant: where the
 * saved frame is at RSP and the preempt-or-not choice is about to be made
 * (docs/variants.md).  A variant not listed gets no decision observation;
 * the preempt oracle then judges at the resume only. */
static const struct {
	const char *variant, *decide, *preempt;
} decision_labels[] = {
	/* decide: frame at RSP, nothing chosen yet; preempt: the path taken
	 * when it chose to preempt (before any switch can be seen). */
	{ "linux64", "retint_kernel", "retint_kernel_preempt" },
};

static int session_boot(struct session *s)
{
	struct guest_opts go = {
		.elf = s->opts.elf, .variant = s->variant, .scenario = s->scenario,
		.cmdline_extra = s->guest[0] ? s->guest : NULL,
	};
	struct verdict v;
	struct kcase pc;

	if (guest__boot(&s->g, &go))
		return -1;
	if (!guest__run_to_ready(&s->g, &v, KINJECT_BOOT_MAX_EXITS))
		return vmm__fail("%s: guest did not reach READY for scenario %s: %s (%s)",
				 s->g.img.path, s->scenario, v.what, v.detail);
	if (strncmp(s->g.layout.variant, s->variant, sizeof(s->g.layout.variant)))
		return vmm__fail("%s: guest is variant '%.16s', the case wants '%s'",
				 s->g.img.path, s->g.layout.variant, s->variant);

	/* Patches: resolved with the case parser's own resolver (its errors
	 * name the case file and line), written before the snapshot so every
	 * case of the session starts patched. */
	case__init(&pc);
	snprintf(pc.name, sizeof(pc.name), "%s", s->first_case);
	pc.nsteps = 0;
	pc.npatches = s->npatches;
	memcpy(pc.patches, s->patches, sizeof(pc.patches));
	if (case__resolve(&pc, &s->g.img.symtab))
		return -1;
	for (size_t i = 0; i < pc.npatches; i++) {
		s->patches[i].addr = pc.patches[i].addr;
		if (vm__write_gva(s->g.vm, 0, pc.patches[i].addr, pc.patches[i].bytes,
				  pc.patches[i].len))
			return vmm__fail("patch %s (line %u): %s", pc.patches[i].where,
					 pc.patches[i].line, vmm__error());
	}
	return 0;
}

static int session_learn(struct session *s)
{
	const struct kinject_layout *l = &s->g.layout;
	const struct symtab *t = &s->g.img.symtab;
	uint64_t gpa, len = l->entry_text_end - l->entry_text_start;
	uint8_t *buf;

	/* The entry text as it is now (patched), decoded once. */
	if (l->entry_text_end <= l->entry_text_start || len > (16u << 20))
		return vmm__fail("layout: bad entry text range 0x%llx-0x%llx",
				 (unsigned long long)l->entry_text_start,
				 (unsigned long long)l->entry_text_end);
	buf = malloc(len);
	if (!buf)
		return vmm__fail("entry text: out of memory");
	if (vm__read_gva(s->g.vm, 0, l->entry_text_start, buf, len) ||
	    analysis__decode(buf, len, l->entry_text_start, &s->entry)) {
		free(buf);
		return vmm__fail("entry text: %s", vmm__error());
	}
	free(buf);

	/* kinject_percpu through a host pointer: reading it at a breakpoint
	 * then costs no page walk, whatever CR3 the guest has loaded. */
	if (vm__gva_to_gpa(s->g.vm, l->kernel_cr3, l->percpu, &gpa) ||
	    !(s->percpu = vm__gpa(s->g.vm, gpa, KINJECT_PCPU_SIZE)))
		return vmm__fail("layout: percpu 0x%llx is not in RAM", (unsigned long long)l->percpu);
	for (uint64_t i = 0; i < l->nstacks && i < KINJECT_LAYOUT_MAX_STACKS; i++)
		if (l->stacks[i].kind == KINJECT_STACK_IRQ) {
			s->irq_lo = l->stacks[i].start;
			s->irq_hi = l->stacks[i].end;
		}

	s->do_irq = sym_addr(t, "do_irq");
	s->do_nmi = sym_addr(t, "do_nmi");
	s->do_exception = sym_addr(t, "do_exception");
	s->do_syscall = sym_addr(t, "do_syscall");
	s->switch_to = sym_addr(t, "variant_switch_to");
	for (size_t i = 0; i < sizeof(decision_labels) / sizeof(decision_labels[0]); i++)
		if (!strcmp(decision_labels[i].variant, s->variant)) {
			s->decide = sym_addr(t, decision_labels[i].decide);
			s->preempt_path = sym_addr(t, decision_labels[i].preempt);
		}
	return 0;
}

struct session *engine__open(const struct engine_opts *opts, const struct kcase *c)
{
	struct session *s = calloc(1, sizeof(*s));
	uint64_t start;

	if (!s) {
		vmm__fail("session: out of memory");
		return NULL;
	}
	s->opts = *opts;
	if (opts->elf) {
		snprintf(s->elf, sizeof(s->elf), "%s", opts->elf);
		s->opts.elf = s->elf;
	}
	snprintf(s->variant, sizeof(s->variant), "%s", c->variant);
	snprintf(s->scenario, sizeof(s->scenario), "%s", c->scenario);
	snprintf(s->guest, sizeof(s->guest), "%s", c->guest);
	s->npatches = c->npatches;
	memcpy(s->patches, c->patches, sizeof(s->patches));
	snprintf(s->first_case, sizeof(s->first_case), "%s", c->name);

	if (session_boot(s) || session_learn(s))
		goto fail;
	s->snap = snap__take(s->g.vm);
	if (!s->snap)
		goto fail;

	/* Baseline: the scenario without any injection.  A case on a scenario
	 * that fails by itself cannot be judged; its length sets the budget. */
	start = vm__exit_count(s->g.vm);
	guest__run_to_verdict(&s->g, &s->baseline, KINJECT_BOOT_MAX_EXITS);
	s->baseline_exits = vm__exit_count(s->g.vm) - start;
	s->default_budget = s->baseline_exits * ENGINE_BUDGET_FACTOR + ENGINE_BUDGET_SLACK;
	if (s->opts.converge && !s->opts.twice) {
		/* The checkpoint's copy of RAM, made once per session. */
		s->ckpt = snap__clone(s->g.vm, s->snap);
		if (!s->ckpt)
			goto fail;
		s->cv = converge__open(&s->g);
		if (!s->cv && s->opts.debug)
			fprintf(s->opts.debug, "    [engine] cases run to the verdict: %s\n", vmm__error());
		else if (s->cv && s->opts.debug && converge__stats_note(s->cv)[0])
			fprintf(s->opts.debug, "    [engine] statistics not exempt from convergence: %s\n",
				converge__stats_note(s->cv));
	}
	return s;
fail:
	engine__close(s);
	return NULL;
}

void engine__close(struct session *s)
{
	if (!s)
		return;
	snap__free(s->ckpt);
	snap__free(s->snap);
	converge__close(s->cv);
	free(s->ckpt_run);
	free(s->passed);
	analysis__free(&s->entry);
	if (s->map_state > 0)
		entrymap__free(&s->map);
	free(s->dcache);
	if (s->g.vm)
		guest__destroy(&s->g);
	free(s);
}

bool engine__matches(const struct session *s, const struct kcase *c)
{
	if (strcmp(s->variant, c->variant) || strcmp(s->scenario, c->scenario) ||
	    strcmp(s->guest, c->guest) || s->npatches != c->npatches)
		return false;
	for (size_t i = 0; i < c->npatches; i++) {
		const struct case_patch *a = &s->patches[i], *b = &c->patches[i];
		if (strcmp(a->where, b->where) || a->len != b->len || memcmp(a->bytes, b->bytes, a->len))
			return false;
	}
	return true;
}

const struct verdict *engine__baseline(const struct session *s, uint64_t *exits)
{
	if (exits)
		*exits = s->baseline_exits;
	return &s->baseline;
}

const struct symtab *engine__symtab(const struct session *s)
{
	return &s->g.img.symtab;
}

struct vm *engine__vm(const struct session *s)
{
	return s->g.vm;
}

/* ---- hooks ------------------------------------------------------------------------ */

/* Trace mode: the case says `mode trace`, or the harness asks for it and
 * the case does not insist on `mode fast`. */
static bool trace_mode(const struct session *s, const struct kcase *c)
{
	return c->mode == CASE_MODE_TRACE || (s->opts.trace && c->mode != CASE_MODE_FAST);
}

/* What both runs of a case share. */
static void run_init(struct run *R, struct session *s, struct kcase *c)
{
	R->s = s;
	R->c = c;
	R->trace = trace_mode(s, c);
	R->budget_steps = s->opts.budget_steps ? s->opts.budget_steps :
			  c->budget_steps ? c->budget_steps : ENGINE_DEFAULT_STEPS;
	R->budget = s->opts.budget_exits ? s->opts.budget_exits :
		    c->budget_exits ? c->budget_exits : s->default_budget;
	/* Every single-step is an exit too. */
	if (R->trace && !s->opts.budget_exits && !c->budget_exits)
		R->budget += R->budget_steps;
}

static void select_oracles(struct run *R)
{
	size_t n;
	const struct oracle *const *all = oracle__all(&n);
	bool trace = R->trace;

	R->norc = 0;
	for (size_t i = 0; i < n && R->norc < ORACLE_MAX; i++) {
		if (R->only_determinism && all[i] != &oracle_determinism)
			continue;
		if (all[i]->trace_only && !trace)
			continue;
		R->orc[R->norc++] = all[i];
	}
}

/* ---- predicates and state ------------------------------------------------------- */

static bool on_irq_stack(const struct session *s, uint64_t rsp)
{
	/* The top itself counts: RSP equals it right after the switch. */
	return s->irq_hi && rsp > s->irq_lo && rsp <= s->irq_hi;
}

static bool preds_hold(struct run *R, const struct case_state *st)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_regs *rg = vcpu__regs(vm);
	const struct kvm_sregs *sr = vcpu__sregs(vm);
	const struct kvm_vcpu_events *ev = vcpu__events(vm);
	int cpl = vcpu__cpl(vm);
	int val[CASE_NPREDS] = {
		[CASE_PRED_CPL] = cpl,
		[CASE_PRED_IF] = !!(rg->rflags & RFLAGS_IF_BIT),
		[CASE_PRED_NMI_BLOCKED] = !!ev->nmi.masked,
		[CASE_PRED_SHADOW] = !!(ev->interrupt.shadow &
					(KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS)),
		[CASE_PRED_IRQ_STACK] = on_irq_stack(R->s, rg->rsp),
		[CASE_PRED_SS16] = sr->ss.db == 0 && cpl == 3,
	};

	for (int p = 0; p < CASE_NPREDS; p++)
		if (st->pred[p] != CASE_ANY && st->pred[p] != val[p])
			return false;
	return true;
}

static int capture(struct run *R, struct engine_state *st)
{
	struct vm *vm = R->s->g.vm;
	uint32_t idx = MSR_KERNEL_GS_BASE;

	st->regs = *vcpu__regs(vm);
	st->sregs = *vcpu__sregs(vm);
	st->events = *vcpu__events(vm);
	st->cpl = vcpu__cpl(vm);
	st->ss16 = st->sregs.ss.db == 0 && st->cpl == 3;
	st->current = *(const volatile uint64_t *)(R->s->percpu + KINJECT_PCPU_CURRENT);
	st->insn = analysis__at(&R->s->entry, st->regs.rip);
	st->iret_frame_ok = st->insn && (st->insn->flags & INSN_IRET) &&
		!vm__read_gva(vm, 0, st->regs.rsp, st->iret_frame, sizeof(st->iret_frame));
	/* The checkpoint just taken here read it already: no second ioctl. */
	if (R->ckpt_taken && snap__msr(R->s->ckpt, idx, &st->kernel_gs_base))
		return 0;
	return vcpu__get_msrs(vm, &idx, &st->kernel_gs_base, 1);
}

/* The C handler an event reaches, by the vector's IDT gate. */
static uint64_t handler_for(const struct session *s, const struct vm_event *e)
{
	if (e->kind == VM_EVENT_NMI || e->vector == 2)
		return s->do_nmi;
	if (e->kind == VM_EVENT_EXCEPTION || e->vector < 32)
		return s->do_exception;
	if (e->vector == KINJECT_VEC_SYSCALL80)
		return s->do_syscall;
	return s->do_irq;
}

/* ---- breakpoint hits ------------------------------------------------------------ */

static void arm_resume(struct run *R)
{
	while (R->resume_top >= 0 && R->x.resumed[R->resume_top])
		R->resume_top--;
	if (R->resume_top >= 0) {
		bp_set(R, SLOT_RESUME, R->x.stop[R->resume_top].regs.rip);
		return;
	}
	/* Every interrupted context is back: switches, decisions and a handler
	 * not entered by now are no longer about these events.  The rest of
	 * the run goes without breakpoints (each hit costs ~3 exits). */
	bp_clear(R, SLOT_RESUME);
	bp_clear(R, SLOT_SWITCH);
	bp_clear(R, SLOT_DECIDE);
	if (!R->searching) {
		bp_clear(R, SLOT_STOP);
		R->handler = 0;
	}
	/* Trace mode: the traced part is over -- unless the outermost context
	 * is the kernel's, working for a task that came from ring 3 (its
	 * frame at the top of the task stack has a user CS): the way back
	 * to ring 3 is the injections' too (exit work, the return's
	 * checks), so it is traced up to that IRET or SYSRET
	 * (trace__before_run). */
	if (R->stepping && !R->searching && R->x.stop[0].cpl == 0) {
		struct kinject_frame f;
		R->until_user = oracle__task_frame(&R->x, &f) && (f.cs & 3) == 3;
	}
	/* Tail mode: past the last step, the rest of the run is a bounded
	 * tail (a resume while searching has a step still to come). */
	if (!R->searching && R->s->opts.tail_exits && !R->tail_end)
		R->tail_end = vm__exit_count(R->s->g.vm) + R->s->opts.tail_exits;
}

static void hit_resume(struct run *R)
{
	const struct kvm_regs *rg = vcpu__regs(R->s->g.vm);
	const struct kvm_sregs *sr = vcpu__sregs(R->s->g.vm);
	int k = R->resume_top;
	const struct engine_state *st;

	if (k < 0)
		return;
	st = &R->x.stop[k];
	if (rg->rip != st->regs.rip || sr->cs.selector != st->sregs.cs.selector)
		return;
	/* A 16-bit SS gets back only SP[15:0] from IRET: the rest is the
	 * espfix oracle's business, the context is the same. */
	if (rg->rsp != st->regs.rsp &&
	    !(st->ss16 && (rg->rsp & 0xffff) == (st->regs.rsp & 0xffff) &&
	      *(const volatile uint64_t *)(R->s->percpu + KINJECT_PCPU_CURRENT) == st->current))
		return;
	R->x.resumed[k] = true;
	run__line(R, "step %d's context resumes", k + 1);
	FOR_ORACLES(R, o)
		if (o->at_resume)
			o->at_resume(&R->x, (unsigned)k);
	arm_resume(R);
	if (k == (int)oracle__last(&R->x) && R->ckpt_taken && R->s->cv && !R->searching)
		ckpt__converge_try(R);
}

static void hit_switch(struct run *R)
{
	const struct kvm_regs *rg = vcpu__regs(R->s->g.vm);

	run__line(R, "switch 0x%llx -> 0x%llx", (unsigned long long)rg->rdi,
		   (unsigned long long)rg->rsi);
	FOR_ORACLES(R, o)
		if (o->at_switch)
			o->at_switch(&R->x, rg->rdi, rg->rsi);
	for (unsigned k = 0; k < R->x.nsteps; k++)
		if (!R->x.resumed[k] && R->x.stop[k].current == rg->rdi)
			R->x.switched[k] = true;
}

static void hit_decide(struct run *R)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_regs *rg = vcpu__regs(vm);
	uint64_t rf;

	/* Second stage: the decision seen, this is its preempting branch. */
	if (R->x.decision_seen) {
		if (rg->rip != R->s->preempt_path || R->x.preempt_path_seen)
			return;
		R->x.preempt_path_seen = true;
		run__line(R, "preempting branch of the decision taken");
		FOR_ORACLES(R, o)
			if (o->at_decision)
				o->at_decision(&R->x);
		bp_clear(R, SLOT_DECIDE);
		return;
	}
	/* Only the decision about the innermost event's own frame. */
	if (R->x.handler_seen && R->x.frame_va && rg->rsp != R->x.frame_va)
		return;
	if (vm__read_gva(vm, 0, rg->rsp + KINJECT_FRAME_RFLAGS, &rf, sizeof(rf)))
		return;
	R->x.decision_seen = true;
	R->x.decision_rip = rg->rip;
	R->x.saved_rflags = rf;
	R->x.need_resched = *(const volatile uint64_t *)(R->s->percpu + KINJECT_PCPU_NEED_RESCHED);
	R->x.preempt_count = *(const volatile uint64_t *)(R->s->percpu + KINJECT_PCPU_PREEMPT_COUNT);
	run__line(R, "return-to-kernel decision: saved IF=%d preempt count 0x%llx need_resched 0x%llx",
		   !!(rf & RFLAGS_IF_BIT), (unsigned long long)R->x.preempt_count,
		   (unsigned long long)R->x.need_resched);
	FOR_ORACLES(R, o)
		if (o->at_decision)
			o->at_decision(&R->x);
	if (R->s->preempt_path)
		bp_set(R, SLOT_DECIDE, R->s->preempt_path);
	else
		bp_clear(R, SLOT_DECIDE);
}

/* The C handler may clobber every register the SysV ABI does not keep
 * (all but RBX, RBP, RSP, R12-R15).  A real kernel's C code does; our
 * small handlers mostly do not, which would hide an exit path that
 * forgets to restore one (its saved value and the live one agree).  So
 * the harness does what the callee may, to the three that carry no
 * argument at its first instruction (RDI, RSI, RDX, RCX, R8 and R9 may:
 * the exception handler takes CR2 in RSI): RAX (the vector-register count
 * of a variadic call only), R10 and R11. */
static void clobber_scratch(struct run *R)
{
	struct kvm_regs *rg = vcpu__regs(R->s->g.vm);

	rg->rax = 0xc10bbe7ed0000000ULL;
	rg->r10 = 0xc10bbe7ed000000aULL;
	rg->r11 = 0xc10bbe7ed000000bULL;
	vcpu__mark_dirty(R->s->g.vm, KVM_SYNC_X86_REGS);
}

static void hit_handler(struct run *R)
{
	struct vm *vm = R->s->g.vm;
	const struct kvm_regs *rg = vcpu__regs(vm);
	const struct vm_event *ev = &R->x.event[oracle__last(&R->x)];
	struct kinject_frame f;
	bool ok = !vm__read_gva(vm, 0, rg->rdi, &f, sizeof(f));

	/* With another event queued at the stop, the first handler entry may
	 * be that one's: wait for the frame of our vector. */
	if (R->other_pending && ok && f.vector != ev->vector)
		return;
	R->x.handler_seen = true;
	R->x.handler_rip = rg->rip;
	R->x.frame_va = rg->rdi;
	R->x.frame_ok = ok;
	if (ok)
		run__line(R, "handler entry, frame at 0x%llx: vector 0x%llx rip 0x%llx cs 0x%llx "
			   "rsp 0x%llx", (unsigned long long)rg->rdi, (unsigned long long)f.vector,
			   (unsigned long long)f.rip, (unsigned long long)f.cs,
			   (unsigned long long)f.rsp);
	else
		run__line(R, "handler entry, frame at 0x%llx (unreadable)", (unsigned long long)rg->rdi);
	if (ok)
		R->x.frame = f;
	FOR_ORACLES(R, o)
		if (o->at_handler)
			o->at_handler(&R->x);
	bp_clear(R, SLOT_STOP);
	R->handler = 0;
	if (R->x.decision_armed && !R->x.decision_seen)
		bp_set(R, SLOT_DECIDE, R->s->decide);
	clobber_scratch(R);
}

/* One breakpoint exit: every slot whose DR6 bit is set, resumes first so a
 * context that resumes where the next step stops is seen resuming. */
void run__on_breakpoint(struct run *R, const struct vm_exit *e)
{
	unsigned bits = (unsigned)(e->debug.dr6 & 0xf);

	if (!bits && e->debug.slot >= 0)
		bits = 1u << e->debug.slot;
	if (bits & (1u << SLOT_RESUME))
		hit_resume(R);
	if (bits & (1u << SLOT_SWITCH))
		hit_switch(R);
	if (bits & (1u << SLOT_DECIDE))
		hit_decide(R);
	if (bits & (1u << SLOT_STOP)) {
		if (R->searching) {
			const struct case_state *st = &R->c->steps[R->step].stop;
			if (vcpu__regs(R->s->g.vm)->rip == st->addr && ++R->arrivals &&
			    preds_hold(R, st) && ++R->hits == st->hit)
				R->found = true;
		} else if (R->handler && vcpu__regs(R->s->g.vm)->rip == R->handler) {
			hit_handler(R);
		}
	}
	if (R->x.nsteps && !R->found)
		FOR_ORACLES(R, o)
			if (o->at_hit)
				o->at_hit(&R->x);
}

/* Tail mode: the tail after the last resume is used up.  The run ends
 * there as a pass of the guest: nothing past it is judged. */
static bool tail_over(struct run *R)
{
	if (!R->tail_end || vm__exit_count(R->s->g.vm) < R->tail_end)
		return false;
	verdict__set(&R->end, VERDICT_PASS, "tail", "run ended %llu exits after every context "
		     "resumed (tail mode): the rest was not run",
		     (unsigned long long)R->s->opts.tail_exits);
	R->ended = true;
	return true;
}

/* Runs to the next exit that matters; returns false when the run ended
 * (R->end holds how) or on a host error (R->r set to ERROR). */
static bool run_once_more(struct run *R, int *host_err)
{
	struct vm *vm = R->s->g.vm;
	struct vm_exit e;
	uint64_t used, max;

	if (R->ended || tail_over(R))
		return false;
	if (R->trace) {
		int t = trace__before_run(R, host_err);
		if (t >= 0)
			return t;
	}
	used = vm__exit_count(vm) - R->start_exits;
	if (used >= R->budget) {
		char where[128];
		verdict__set(&R->end, VERDICT_FAIL, "hang", "no verdict within %llu exits (RIP %s)",
			     (unsigned long long)R->budget,
			     guest__where(&R->s->g, vcpu__regs(vm)->rip, where, sizeof(where)));
		R->ended = true;
		return false;
	}
	max = R->budget - used;
	if (R->tail_end && R->tail_end - vm__exit_count(vm) < max)
		max = R->tail_end - vm__exit_count(vm);
	if (vcpu__run(vm, &e, max)) {
		run__result_set(R->r, VERDICT_ERROR, "host error: %s", vmm__error());
		*host_err = 1;
		return false;
	}
	if (e.kind == VM_EXIT_BREAKPOINT && !R->stepping) {
		run__on_breakpoint(R, &e);
		return true;
	}
	/* While stepping the only breakpoints armed are step_guard's. */
	if (e.kind == VM_EXIT_SINGLESTEP || e.kind == VM_EXIT_BREAKPOINT) {
		if (R->stepping) {
			trace__step_check(R, vcpu__regs(vm)->rip);
			if (R->lost_step) {
				verdict__set(&R->end, VERDICT_ERROR, "lost step",
					     "the host lost a single-step trap: run again");
				R->ended = true;
				return false;
			}
			trace__on_step(R, true);
		}
		return true;
	}
	if (e.kind == VM_EXIT_BUDGET) {
		char where[128];

		if (tail_over(R))
			return false;
		verdict__set(&R->end, VERDICT_FAIL, "hang", "no verdict within %llu exits (RIP %s)",
			     (unsigned long long)R->budget,
			     guest__where(&R->s->g, e.rip, where, sizeof(where)));
		R->ended = true;
		return false;
	}
	if (guest__judge_exit(&R->s->g, &e, &R->end)) {
		R->ended = true;
		return false;
	}
	return true;
}

static const volatile uint8_t *s_percpu(const struct run *R)
{
	return R->s->percpu;
}

/* ---- one run ------------------------------------------------------------------------ */

static void finish(struct run *R)
{
	struct vm *vm = R->s->g.vm;

	uint64_t t0 = now_usec();

	if (R->stepping) {
		dbg__set_singlestep(vm, false);
		R->stepping = false;
	}
	R->r->guest = R->end;
	R->r->traced = R->trace;
	R->r->steps = R->steps - R->steps_base;   /* this run's own, not a chained prefix's */
	R->x.ended = true;
	R->x.end_rip = vcpu__regs(vm)->rip;
	/* The digest hashes all of RAM (~6 ms here); only the determinism
	 * oracle reads it, and only with --twice. */
	if (R->s->opts.twice)
		R->x.digest = R->r->digest = vm__digest(vm);
	run__line(R, "end: %s (%s), digest 0x%016llx in %llu us", verdict__name(R->end.kind),
		   R->end.what, (unsigned long long)R->x.digest,
		   (unsigned long long)(now_usec() - t0));
	FOR_ORACLES(R, o)
		if (o->at_end)
			o->at_end(&R->x);
}

static int inject_step(struct run *R, unsigned k)
{
	struct vm *vm = R->s->g.vm;
	const struct case_step *sp = &R->c->steps[k];
	struct vm_event *ev = &R->x.event[k];
	char why[128], buf[256];

	if (capture(R, &R->x.stop[k])) {
		run__result_set(R->r, VERDICT_ERROR, "host error: %s", vmm__error());
		return -1;
	}
	case__to_vm_event(&sp->inject, ev);
	/* Asked of the CPU, not of our single-stepping (which holds IRQs:
	 * the injection is delivered as trace_deliver does). */
	if (R->stepping)
		dbg__set_singlestep(vm, false);
	bool takes = ev->force || vcpu__can_take(vm, ev, why, sizeof(why));
	if (R->stepping)
		dbg__set_singlestep(vm, true);
	if (!takes) {
		run__result_set(R->r, VERDICT_SKIP, "architecturally impossible: %s (step %u: %s)", why,
			   k + 1, case__step_str(sp, buf, sizeof(buf)));
		return 1;
	}
	R->other_pending = vcpu__event_pending(vm);
	R->x.nsteps = k + 1;
	FOR_ORACLES(R, o)
		if (o->at_stop)
			o->at_stop(&R->x, k);
	if (vcpu__inject(vm, ev)) {
		run__result_set(R->r, VERDICT_ERROR, "step %u: %s", k + 1, vmm__error());
		return -1;
	}
	R->r->steps_done = k + 1;
	run__line(R, "step %u: stop after %llu arrival(s): cpl %d if %d rsp 0x%llx preempt count "
		   "0x%llx need_resched 0x%llx; injected %s", k + 1,
		   (unsigned long long)R->hits, R->x.stop[k].cpl,
		   !!(R->x.stop[k].regs.rflags & RFLAGS_IF_BIT),
		   (unsigned long long)R->x.stop[k].regs.rsp,
		   (unsigned long long)*(const volatile uint64_t *)(s_percpu(R) + KINJECT_PCPU_PREEMPT_COUNT),
		   (unsigned long long)*(const volatile uint64_t *)(s_percpu(R) + KINJECT_PCPU_NEED_RESCHED),
		   case__event_str(&sp->inject, buf, sizeof(buf)));
	/* Its context resumes after the events nested in it: watch it now
	 * (it hides an older pending resume, which comes after it). */
	R->resume_top = (int)k;
	bp_set(R, SLOT_RESUME, R->x.stop[k].regs.rip);
	if (R->s->switch_to)
		bp_set(R, SLOT_SWITCH, R->s->switch_to);
	if (R->trace) {
		R->deliver_pending = true;
		R->until_user = false;
		R->last_injected = k + 1;
	}
	return 0;
}

/* Returns 0 when the run reached its end (judged), 1 when the result is
 * already decided (SKIP/ERROR), -1 on a host error. */
static int run_case_once(struct run *R)
{
	struct session *s = R->s;
	struct vm *vm = s->g.vm;
	int host_err = 0;
	char buf[256];

	unsigned first = 0;

	dbg__set_singlestep(vm, false);
	R->stepping = false;
	vm__console_clear(vm);
	if (ckpt__chain_start(R)) {
		first = R->c->nsteps - 1;
	} else {
		for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
			bp_clear(R, i);
		if (snap__restore(vm, s->snap)) {
			run__result_set(R->r, VERDICT_ERROR, "restore: %s", vmm__error());
			return -1;
		}
		R->start_exits = vm__exit_count(vm);
		R->resume_top = -1;
		if (R->trace && trace__prepare(R)) {
			run__result_set(R->r, VERDICT_ERROR, "%s", vmm__error());
			return -1;
		}
	}

	for (unsigned k = first; k < R->c->nsteps; k++) {
		const struct case_step *sp = &R->c->steps[k];
		bool last = k + 1 == R->c->nsteps;

		R->searching = true;
		R->step = k;
		R->hits = R->arrivals = R->chained ? R->chain->before : 0;
		/* Chained to a case that stopped at this very arrival. */
		R->found = R->chained && R->hits == sp->stop.hit &&
			   vcpu__regs(vm)->rip == sp->stop.addr;
		bp_set(R, SLOT_STOP, sp->stop.addr);
		while (!R->found && run_once_more(R, &host_err))
			;
		if (host_err)
			return -1;
		if (R->found && last && (s->cv || R->chain) && !R->only_determinism &&
		    ckpt__take(R)) {
			run__result_set(R->r, VERDICT_ERROR, "checkpoint: %s", vmm__error());
			return -1;
		}
		if (!R->found) {
			/* The guest ended first.  After an injection, a crash or
			 * a hang is the outcome to judge, not a missed state. */
			if (k > 0 && R->end.kind != VERDICT_PASS) {
				finish(R);
				return 0;
			}
			if (k == 0 && R->end.kind == VERDICT_FAIL && strcmp(R->end.what, "hang"))
				run__result_set(R->r, VERDICT_ERROR,
					   "guest ended before any injection: %s: %s",
					   R->end.what, R->end.detail);
			else
				run__result_set(R->r, VERDICT_SKIP,
					   "state not reached: step %u (%s): %s before it (%llu of %llu "
					   "arrivals matched, %llu wanted)%s",
					   k + 1, case__step_str(sp, buf, sizeof(buf)),
					   strcmp(R->end.what, "hang") ? "the guest ended" :
					   "the exit budget ran out",
					   (unsigned long long)R->hits, (unsigned long long)R->arrivals,
					   (unsigned long long)sp->stop.hit,
					   !R->arrivals && sp->stop.addr < USER_HALF_END ?
					   "; no arrival at this ring-3 address at all: some KVM backends "
					   "(kvm_pvm) never report breakpoints in ring 3" : "");
			return 1;
		}
		R->searching = false;
		int rc = inject_step(R, k);
		if (rc)
			return rc;
	}

	/* Watch the outcome: the innermost event's handler, the resumes, the
	 * decision to preempt, the switches. */
	unsigned last = R->c->nsteps - 1;
	R->handler = handler_for(s, &R->x.event[last]);
	if (R->handler)
		bp_set(R, SLOT_STOP, R->handler);
	else
		bp_clear(R, SLOT_STOP);
	/* The decision about the event's own frame comes after its handler:
	 * armed there (hit_handler), so that at most three slots are armed at
	 * once -- the VMM may need the fourth (vmm/ring3.c: its #BP entry,
	 * for ring-3 breakpoints and SYSCALL/INT n sites). */
	if (s->decide && R->x.stop[last].cpl == 0) {
		R->x.decision_armed = true;
		if (!R->handler)
			bp_set(R, SLOT_DECIDE, s->decide);
	}
	while (run_once_more(R, &host_err))
		;
	if (host_err)
		return -1;
	finish(R);
	return 0;
}

static void judge(struct case_result *r, const struct kcase *c)
{
	bool fired = false;

	r->observed = r->nfindings || r->dropped ? VERDICT_FAIL : VERDICT_PASS;
	if (c->expect == CASE_EXPECT_PASS) {
		r->verdict = r->observed;
		if (r->observed == VERDICT_FAIL)
			snprintf(r->reason, sizeof(r->reason), "%zu finding(s)",
				 r->nfindings + r->dropped);
		return;
	}
	for (size_t i = 0; i < r->nfindings; i++)
		if (!c->oracle[0] || !strcmp(r->findings[i].oracle, c->oracle))
			fired = true;
	if (!c->oracle[0] && r->dropped)
		fired = true;
	r->verdict = fired ? VERDICT_PASS : VERDICT_FAIL;
	snprintf(r->reason, sizeof(r->reason), "expected %s%s to fire: %s",
		 c->oracle[0] ? "oracle " : "a finding", c->oracle,
		 fired ? "it did" : "it did not");
}

/* Determinism: the same case once more, only the determinism oracle
 * watching; its findings join the first run's. */
static int run_again(struct run *R1, struct case_result *r)
{
	struct session *s = R1->s;
	struct run *R = calloc(1, sizeof(*R));
	struct case_result *r2 = calloc(1, sizeof(*r2));
	int rc;

	if (!R || !r2) {
		free(R);
		free(r2);
		run__result_set(r, VERDICT_ERROR, "out of memory");
		return -1;
	}
	run_init(R, s, R1->c);
	R->r = r2;
	R->only_determinism = true;
	R->x = (struct oracle_ctx){
		.vm = s->g.vm, .symtab = &s->g.img.symtab, .layout = &s->g.layout,
		.entry = &s->entry, .percpu = s->percpu, .c = R1->c, .r = r2,
		.debug = s->opts.debug, .run = 2, .have_prev = true,
		.prev_digest = r->digest, .prev_guest = r->guest, .trace = R->trace,
	};
	select_oracles(R);
	r->runs = 2;
	rc = run_case_once(R);
	if (rc == 1) {
		/* Run 2 stopped short (SKIP) where run 1 went on. */
		R->x.r = r;
		oracle__report(&R->x, &oracle_determinism, 0,
			       "the second run reaches every step, as the first did", r2->reason);
		rc = 0;
	} else if (rc == 0) {
		for (size_t i = 0; i < r2->nfindings; i++) {
			if (r->nfindings < ENGINE_MAX_FINDINGS)
				r->findings[r->nfindings++] = r2->findings[i];
			else
				r->dropped++;
		}
	} else {
		run__result_set(r, VERDICT_ERROR, "%s", r2->reason);
	}
	free(r2);
	free(R);
	if (rc == 0)
		judge(r, R1->c);
	return rc;
}

int engine__run_case(struct session *s, struct kcase *c, struct case_result *r)
{
	return engine__run_case_from(s, c, NULL, r);
}

int engine__run_case_from(struct session *s, struct kcase *c, const struct engine_chain *ch,
			  struct case_result *r)
{
	struct run *R = calloc(1, sizeof(*R));
	uint64_t t0 = now_usec(), e0 = vm__exit_count(s->g.vm), ns0 = vm__run_ns(s->g.vm), deadline;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (!R) {
		run__result_set(r, VERDICT_ERROR, "out of memory");
		return -1;
	}
	if (!engine__matches(s, c)) {
		run__result_set(r, VERDICT_ERROR, "%s: case does not belong to this session", c->name);
		goto out;
	}
	if (c->oracle[0] && !oracle__find(c->oracle)) {
		char names[256];
		run__result_set(r, VERDICT_ERROR, "%s: expect fail: unknown oracle '%s' (known: %s)",
			   c->name, c->oracle, oracle__names(names, sizeof(names)));
		goto out;
	}
	/* A scenario that fails by itself cannot be judged; with patches the
	 * failure is the experiment's own (a mutant), so it is judged. */
	if (s->baseline.kind != VERDICT_PASS && !s->npatches) {
		run__result_set(r, VERDICT_ERROR,
			   "scenario %s does not pass without any injection (%s: %s): cannot judge",
			   s->scenario, s->baseline.what, s->baseline.detail);
		goto out;
	}
	if (case__resolve(c, &s->g.img.symtab)) {
		run__result_set(r, VERDICT_ERROR, "%s", vmm__error());
		goto out;
	}

	/* A trace that lost a step runs again, that step guarded now. */
	for (int attempt = 0; attempt < ENGINE_LOST_STEP_RUNS; attempt++) {
		memset(R, 0, sizeof(*R));
		memset(r, 0, sizeof(*r));
		run_init(R, s, c);
		R->r = r;
		R->chain = ch;
		R->x = (struct oracle_ctx){
			.vm = s->g.vm, .symtab = &s->g.img.symtab, .layout = &s->g.layout,
			.entry = &s->entry, .percpu = s->percpu, .c = c, .r = r,
			.debug = s->opts.debug, .run = 1, .trace = R->trace,
		};
		select_oracles(R);
		r->runs = 1;
		/* A guest that spins without exiting never uses up an exit
		 * budget: the wall clock bounds the case too. */
		deadline = ENGINE_DEADLINE_MS +
			   (R->trace ? R->budget_steps * ENGINE_STEP_US / 1000 : 0);
		if (vm__set_deadline_ms(s->g.vm, deadline)) {
			run__result_set(r, VERDICT_ERROR, "host error: %s", vmm__error());
			rc = -1;
			goto out;
		}
		rc = run_case_once(R);
		if (rc || !R->lost_step)
			break;
		dbg__set_singlestep(s->g.vm, false);
	}
	if (rc)
		goto out;
	if (R->lost_step) {
		run__result_set(r, VERDICT_ERROR, "the host lost single-step traps in %d runs: trace incomplete",
			   ENGINE_LOST_STEP_RUNS);
		goto out;
	}
	judge(r, c);

	if (s->opts.twice)
		rc = run_again(R, r);
	/* What a later case that converges back into this run relies on:
	 * this run passed, judged to the verdict or converged itself. */
	if (!rc && r->observed == VERDICT_PASS && r->guest.kind == VERDICT_PASS &&
	    strcmp(r->guest.what, "tail"))
		ckpt__note_passed(s, c, R->trace);
out:
	vm__set_deadline_ms(s->g.vm, 0);
	dbg__set_singlestep(s->g.vm, false);
	r->exits = vm__exit_count(s->g.vm) - e0;
	r->usec = now_usec() - t0;
	r->run_usec = (vm__run_ns(s->g.vm) - ns0) / 1000;
	free(R);
	return rc < 0 ? -1 : 0;
}
