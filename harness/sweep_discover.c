/* SPDX-License-Identifier: MIT */
/*
 * The sweep's discovery (sweep_plan.h, docs/sweep.md "Planning"): in a
 * child, boot the scenario's guest, run its baseline, then single-step
 * each driver through the entry text, counting and numbering the arrivals
 * at every boundary and asking at each whether the CPU could take each
 * event there; send the scenario, its boundaries and its items back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sweep_plan.h"
#include "entrymap.h"
#include "oracle.h"
#include "quirks.h"

/* Drivers with a first step: a label of the guest the engine can stop at
 * and an event whose path through the entry code the sweep then covers.
 * Every scenario also gets the driver "own": the scenario's own events,
 * from READY.  Labels in .user.text are stopped at by their user address
 * (`user:LABEL`, case__resolve_where; KINJECT_USER_TEXT_VA in abi.h): the
 * loop heads of user-spin (64-bit, every GPR a known pattern, a handler
 * that counts signals and returns) and ss16 (compat mode on a 16-bit SS).
 * kthread_loop (guest/core/scenarios/kthreads.c) is an injection-tolerant
 * ring-0 loop: a #GP there is resumed, a #PF at a present address is
 * spurious. */
static const struct {
	const char *scenario, *label, *event;
	bool user;                      /* label in .user.text: stop at its user VA */
	bool cr2_at_label;              /* #PF: CR2 = the label (a present address) */
} driver_defs[] = {
	{ "user-spin", "user_spin_loop", "irq", true, false },
	{ "user-spin", "user_spin_loop", "nmi", true, false },
	{ "user-spin", "user_spin_loop", "pf:0x4", true, false },
	{ "user-spin", "user_spin_loop", "gp", true, false },
	{ "user-spin", "user_spin_loop", "db", true, false },
	{ "ss16", "ss16_loop", "irq", true, false },
	{ "ss16", "ss16_loop", "nmi", true, false },
	{ "kthreads", "kthread_loop", "irq", false, false },
	{ "kthreads", "kthread_loop", "nmi", false, false },
	{ "kthreads", "kthread_loop", "db", false, false },
	{ "kthreads", "kthread_loop", "gp", false, false },
	{ "kthreads", "kthread_loop", "pf", false, true },
};

/* ---- discovery (in a child: one scenario) ----------------------------------------- */

struct disc {
	const struct sweep_opts *o;
	const char *guest;              /* the plan's guest options */
	const struct sweep_event *events;
	size_t nevents;
	unsigned hits;
	struct guest g;
	struct vm_snapshot *snap;
	struct entrymap map;
	bool have_map;
	struct code_range own;          /* the decode when the map cannot be built */
	const struct code_range *code;
	uint64_t *bounds;
	size_t nb;
	uint32_t *count;                /* arrivals per boundary, this trace */
	uint8_t *codes;                 /* [nb][hits][nevents]: 0 takeable, else why index + 1 */
	uint64_t *ord;                  /* [nb][hits]: the arrival's place in the run */
	uint64_t seq;                   /* arrivals so far, this trace */
	char whys[32][WHY_MAX];
	unsigned nwhys;
	bool sysemu;                    /* the VMM runs SYSCALL / INT n (reported) */
};

static long bound_index(const struct disc *d, uint64_t rip)
{
	size_t lo = 0, hi = d->nb;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->bounds[mid] == rip)
			return (long)mid;
		if (d->bounds[mid] < rip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static uint8_t why_code(struct disc *d, const char *why)
{
	for (unsigned i = 0; i < d->nwhys; i++)
		if (!strcmp(d->whys[i], why))
			return (uint8_t)(i + 1);
	if (d->nwhys == sizeof(d->whys) / sizeof(d->whys[0]))
		return (uint8_t)d->nwhys;            /* reuse the last: a rare overflow */
	snprintf(d->whys[d->nwhys], WHY_MAX, "%s", why);
	return (uint8_t)++d->nwhys;
}

/* One arrival at a boundary: count it; for the first `hits` arrivals, note
 * which events the CPU could take here (exactly the engine's check, with
 * single-stepping -- which holds IRQs -- off for the question). */
static void arrive(struct disc *d, uint64_t rip)
{
	long i = bound_index(d, rip);
	struct vm *vm = d->g.vm;
	uint32_t a;

	if (i < 0)
		return;
	a = ++d->count[i];
	d->seq++;
	if (a > d->hits)
		return;
	d->ord[(size_t)i * d->hits + (a - 1)] = d->seq;
	dbg__set_singlestep(vm, false);
	for (size_t e = 0; e < d->nevents; e++) {
		struct vm_event ev;
		char why[128];

		case__to_vm_event(&d->events[e].ev, &ev);
		d->codes[((size_t)i * d->hits + (a - 1)) * d->nevents + e] =
			vcpu__can_take(vm, &ev, why, sizeof(why)) ? 0 : why_code(d, why);
	}
	dbg__set_singlestep(vm, true);
}

static void driver_unusable(struct plan_driver *drv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void driver_unusable(struct plan_driver *drv, const char *fmt, ...)
{
	va_list ap;

	drv->usable = false;
	va_start(ap, fmt);
	vsnprintf(drv->why, sizeof(drv->why), fmt, ap);
	va_end(ap);
}

/* The handler address of IDT vector v (0 if unreadable or not present). */
static uint64_t idt_gate(struct disc *d, unsigned v)
{
	return vcpu__gate_handler(d->g.vm, d->g.layout.kernel_cr3, v);
}

/* What the trace knows is queued in the VMM: IRQs it holds (the driver's,
 * and those the guest raised with KINJECT_HC_RAISE_IRQ) and a pending NMI.
 * Single-stepping holds them all (KVM_GUESTDBG_BLOCKIRQ), so the trace
 * lets each one in itself: stepping off, a breakpoint on its IDT gate. */
struct queued {
	uint8_t irq[32];
	bool nmi;
};

static int queued_highest(const struct queued *q)
{
	for (int v = 255; v >= 0; v--)
		if (q->irq[v / 8] & (1u << (v % 8)))
			return v;
	return -1;
}

static uint64_t idt_gate(struct disc *d, unsigned v);
static uint64_t second(struct disc *d, uint64_t addr);

static void arm(struct vm *vm, const uint64_t *addrs, unsigned n)
{
	for (unsigned i = 0; i < VM_MAX_BREAKPOINTS; i++) {
		if (i < n && addrs[i])
			dbg__set_breakpoint(vm, (int)i, addrs[i]);
		else
			dbg__clear_breakpoint(vm, (int)i);
	}
}

/* Runs without single-stepping until the guest stops at one of `addrs`
 * (hardware breakpoints: ring 0 only), or enters the kernel through a
 * SYSCALL or INT n the VMM ran (VM_EXIT_SYSEMU: at LSTAR; an INT n is
 * then followed to its gate).  Returns 1 there (the arrival is
 * recorded), 0 when the guest ended, -1 on a host error. */
static int run_to_once(struct disc *d, const uint64_t *addrs, unsigned n, struct verdict *v)
{
	struct vm *vm = d->g.vm;
	uint64_t gate[1];
	struct vm_exit e;

	dbg__set_singlestep(vm, false);
	arm(vm, addrs, n);
	for (;;) {
		if (vcpu__run(vm, &e, KINJECT_BOOT_MAX_EXITS))
			return -1;
		if (e.kind == VM_EXIT_SYSEMU) {
			const struct kvm_vcpu_events *ev = vcpu__events(vm);
			if (e.sysemu.vector < 0 && !ev->exception.pending && !ev->exception.injected) {
				arm(vm, NULL, 0);
				arrive(d, vcpu__regs(vm)->rip);      /* LSTAR, CPL 0 */
				dbg__set_singlestep(vm, true);
				return 1;
			}
			/* An INT n, or a SYSCALL begun with TF (its #DB comes
			 * before LSTAR's first instruction): delivered on the
			 * next entry, seen past its gate's first instruction, as
			 * any event from ring 3 (second()). */
			gate[0] = second(d, idt_gate(d, e.sysemu.vector >= 0 ?
							(unsigned)e.sysemu.vector : ev->exception.nr));
			addrs = gate;
			n = 1;
			arm(vm, addrs, n);
			continue;
		}
		if (e.kind == VM_EXIT_BREAKPOINT) {
			uint64_t rip = vcpu__regs(vm)->rip;
			bool ours = false;
			for (unsigned i = 0; i < n; i++)
				ours |= addrs[i] && addrs[i] == rip;
			if (!ours)
				continue;
			for (unsigned i = 0; i < VM_MAX_BREAKPOINTS; i++)
				dbg__clear_breakpoint(vm, (int)i);
			arrive(d, rip);
			dbg__set_singlestep(vm, true);
			return 1;
		}
		if (guest__judge_exit(&d->g, &e, v))
			return 0;
	}
}

static int run_to(struct disc *d, const uint64_t *addrs, unsigned n, struct verdict *v)
{
	vm__sysemu_report(d->g.vm, d->sysemu);
	int rc = run_to_once(d, addrs, n, v);
	vm__sysemu_report(d->g.vm, false);
	return rc;
}

/* The instruction after the one at `addr`: where a gate's arrival from
 * 64-bit ring 3 can be seen on this host (a breakpoint on a gate's first
 * instruction does not fire when the event comes from ring 3: the engine
 * cannot stop there either, so the plan does not count it). */
static uint64_t second(struct disc *d, uint64_t addr)
{
	const struct insn *in = analysis__at(d->code, addr);

	return in ? addr + in->size : addr;
}

static bool ring3_64(struct vm *vm)
{
	const struct kvm_sregs *sr = vcpu__sregs(vm);

	return (sr->cs.selector & 3) == 3 && sr->cs.l;
}

/* An IRET at RIP that returns to 64-bit ring 3 (this host cannot step it
 * there: the step's return breakpoint would be a ring-3 one). */
static bool iret_to_ring3(struct disc *d, uint64_t rip)
{
	long i = bound_index(d, rip);
	const struct insn *in = i >= 0 ? analysis__at(d->code, rip) : NULL;
	uint64_t cs;

	if (!in || !(in->flags & INSN_IRET))
		return false;
	if (vm__read_gva(d->g.vm, 0, vcpu__regs(d->g.vm)->rsp + 8, &cs, sizeof(cs)))
		return false;
	return (cs & 3) == 3;
}

/* Runs one driver from the snapshot, tracing from the injection of its
 * step (or from READY) until its context resumes, the guest ends or the
 * step limit.  Ring 0 and compat-mode ring 3 are single-stepped; 64-bit
 * ring 3 (which this host cannot step) runs free until the guest enters
 * the kernel again, caught by breakpoints on the gates it can come
 * through (#UD: int $0x80 runs from there on this host; the highest queued
 * IRQ or the timer's; #PF; and error_entry, which every other non-paranoid
 * entry calls: an entry caught there misses its stub's few arrivals). */
static void trace_driver(struct disc *d, struct plan_driver *drv)
{
	struct vm *vm = d->g.vm;
	uint64_t max = d->o->max_steps ? d->o->max_steps :
		       drv->has_step ? STEP_MAX_STEPS : OWN_MAX_STEPS;
	uint64_t stop_rip = 0, stop_cs = 0, stop_rsp = 0, prev_rip;
	const struct symbol *ee = sym__find(&d->g.img.symtab, "error_entry");
	/* SYSCALL from ring 3 (emulated by the VMM where the host breaks it)
	 * enters at LSTAR: no IDT gate, no error_entry. */
	const struct symbol *sc = sym__find(&d->g.img.symtab, "entry_SYSCALL_64");
	struct queued q = { { 0 }, false };
	struct vm_exit e;
	struct verdict v;
	bool injected = false;
	int exc = -1;                        /* an injected exception not delivered yet */

	memset(d->count, 0, d->nb * sizeof(*d->count));
	memset(d->codes, 0, d->nb * d->hits * d->nevents);
	memset(d->ord, 0, d->nb * d->hits * sizeof(*d->ord));
	d->seq = 0;
	drv->usable = true;
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		dbg__clear_breakpoint(vm, i);
	if (snap__restore(vm, d->snap)) {
		driver_unusable(drv, "restore: %s", vmm__error());
		return;
	}
	vm__console_clear(vm);
	vm__set_deadline_ms(vm, DISC_DEADLINE_MS);

	if (drv->has_step) {
		struct vm_event ev;
		char why[128];

		dbg__set_breakpoint(vm, 0, drv->step.stop.addr);
		for (;;) {
			if (vcpu__run(vm, &e, KINJECT_BOOT_MAX_EXITS)) {
				driver_unusable(drv, "host error: %s", vmm__error());
				return;
			}
			if (e.kind == VM_EXIT_BREAKPOINT && vcpu__regs(vm)->rip == drv->step.stop.addr)
				break;
			if (e.kind != VM_EXIT_BREAKPOINT && guest__judge_exit(&d->g, &e, &v)) {
				driver_unusable(drv, "%s is never reached: the guest ended first "
						"(%s: %s)", drv->step.stop.where, v.what, v.detail);
				return;
			}
		}
		dbg__clear_breakpoint(vm, 0);
		case__to_vm_event(&drv->step.inject, &ev);
		if (!vcpu__can_take(vm, &ev, why, sizeof(why))) {
			driver_unusable(drv, "its event cannot be taken at %s: %s",
					drv->step.stop.where, why);
			return;
		}
		stop_rip = vcpu__regs(vm)->rip;
		stop_rsp = vcpu__regs(vm)->rsp;
		stop_cs = vcpu__sregs(vm)->cs.selector;
		if (vcpu__inject(vm, &ev)) {
			driver_unusable(drv, "inject: %s", vmm__error());
			return;
		}
		if (ev.kind == VM_EVENT_IRQ)
			q.irq[ev.vector / 8] |= (uint8_t)(1u << (ev.vector % 8));
		else if (ev.kind == VM_EVENT_NMI)
			q.nmi = true;
		else
			exc = ev.vector;
		injected = true;
	} else {
		arrive(d, vcpu__regs(vm)->rip);
	}

	dbg__set_singlestep(vm, true);
	for (drv->steps = 0; drv->steps < max;) {
		const struct kvm_regs *r = vcpu__regs(vm);
		const struct kvm_vcpu_events *evs = vcpu__events(vm);
		bool shadow = evs->interrupt.shadow &
			      (KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS);
		int hv = queued_highest(&q), rc = -2;

		if ((hv >= 0 || q.nmi) && !vcpu__event_pending(vm)) {
			memset(&q, 0, sizeof(q));    /* the VMM let them in already */
			hv = -1;
		}
		if (q.nmi && !evs->nmi.masked && !shadow) {
			uint64_t gate = idt_gate(d, 2);
			q.nmi = false;
			rc = run_to(d, &gate, 1, &v);
		} else if (hv >= 0 && (r->rflags & RFLAGS_IF_BIT) && !shadow) {
			uint64_t gate = idt_gate(d, (unsigned)hv);
			q.irq[hv / 8] &= (uint8_t)~(1u << (hv % 8));
			rc = run_to(d, &gate, 1, &v);
		} else if (ring3_64(vm) || iret_to_ring3(d, r->rip)) {
			uint64_t fr[4];
			/* The driver's ring-3 context resuming through this IRET. */
			if (injected && !ring3_64(vm) && !q.nmi && hv < 0 &&
			    !vm__read_gva(vm, 0, r->rsp, fr, sizeof(fr)) && fr[0] == stop_rip &&
			    (fr[1] & 0xffff) == stop_cs && fr[3] == stop_rsp) {
				arrive(d, r->rip);
				snprintf(drv->end, sizeof(drv->end), "resumed");
				break;
			}
			uint64_t ev_gate = second(d, idt_gate(d, exc >= 0 ? (unsigned)exc :
							      hv >= 0 ? (unsigned)hv : KINJECT_VEC_TIMER));
			uint64_t gates[4] = {
				second(d, idt_gate(d, 6)), ev_gate, second(d, idt_gate(d, 14)),
				sc && quirks__works(QUIRK_SYSCALL) ? sc->addr : ee ? ee->addr : 0,
			};
			/* SYSCALL / INT n run by the VMM (its sites) come back as
			 * VM_EXIT_SYSEMU; its #BP-entry catch takes one debug
			 * register, so three here: every other exception passes
			 * error_entry. */
			if (d->sysemu) {
				gates[0] = ev_gate;
				gates[1] = second(d, idt_gate(d, 14));
				gates[2] = ee ? ee->addr : 0;
			}
			if (hv >= 0)
				q.irq[hv / 8] &= (uint8_t)~(1u << (hv % 8));
			exc = -1;
			rc = run_to(d, gates, d->sysemu ? 3 : 4, &v);
		}
		if (rc == -2) {
			/* SWAPGS, and the instruction before an IRET: this host's
			 * single-step does not stop after them (it runs on through
			 * the IRET, ring 3, the next entry), so run to the next
			 * instruction with a breakpoint instead. */
			const struct insn *in = analysis__at(d->code, r->rip), *nx;
			uint64_t next = in ? in->addr + in->size : 0;
			if (in && ((in->flags & INSN_SWAPGS) ||
				   ((nx = analysis__at(d->code, next)) && (nx->flags & INSN_IRET))))
				rc = run_to(d, &next, 1, &v);
		}
		if (rc == -1) {
			driver_unusable(drv, "host error while tracing: %s", vmm__error());
			break;
		}
		if (rc == 0) {
			snprintf(drv->end, sizeof(drv->end), "guest ended: %s", v.what);
			break;
		}
		if (rc == 1) {
			drv->steps++;
			continue;
		}

		/* A hypercall that queues an event (outl %eax, $0xeb): read its
		 * number and vector before it runs (RAX gets the result). */
		uint8_t op[2];
		uint64_t hc_nr = ~0ULL, hc_arg = r->rdi;
		if (!vm__read_gva(vm, 0, r->rip, op, 2) && op[0] == 0xe7 &&
		    op[1] == KINJECT_PORT_HCALL)
			hc_nr = (uint32_t)r->rax;
		prev_rip = r->rip;
		if (vcpu__run(vm, &e, 0)) {
			driver_unusable(drv, "host error while tracing: %s", vmm__error());
			break;
		}
		if (e.kind == VM_EXIT_SINGLESTEP || e.kind == VM_EXIT_BREAKPOINT) {
			r = vcpu__regs(vm);
			drv->steps++;
			exc = -1;
			if (r->rip == prev_rip + 2) {
				if (hc_nr == KINJECT_HC_RAISE_IRQ && hc_arg < 256)
					q.irq[hc_arg / 8] |= (uint8_t)(1u << (hc_arg % 8));
				else if (hc_nr == KINJECT_HC_RAISE_NMI)
					q.nmi = true;
			}
			if (injected && r->rip == stop_rip && r->rsp == stop_rsp &&
			    vcpu__sregs(vm)->cs.selector == stop_cs && !q.nmi &&
			    queued_highest(&q) < 0) {
				snprintf(drv->end, sizeof(drv->end), "resumed");
				break;                       /* the driver's context resumed */
			}
			arrive(d, r->rip);
			continue;
		}
		if (guest__judge_exit(&d->g, &e, &v)) {
			snprintf(drv->end, sizeof(drv->end), "guest ended: %s", v.what);
			break;
		}
	}
	drv->truncated = drv->steps >= max;
	if (drv->truncated)
		snprintf(drv->end, sizeof(drv->end), "step limit");
	dbg__set_singlestep(vm, false);
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		dbg__clear_breakpoint(vm, i);
	vm__set_deadline_ms(vm, 0);
}

static void bound_where(const struct symtab *t, uint64_t addr, char *buf, size_t len)
{
	const struct symbol *s = sym__at(t, addr);
	uint64_t back;
	bool ok = s != NULL;

	for (const char *p = s ? s->name : ""; ok && *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$@", *p))
			ok = false;
	if (ok && (s->name[0] >= '0' && s->name[0] <= '9'))
		ok = false;
	if (ok) {
		if (addr == s->addr)
			snprintf(buf, len, "%s", s->name);
		else
			snprintf(buf, len, "%s+0x%llx", s->name, (unsigned long long)(addr - s->addr));
		/* Only if it reads back as the same address (no duplicate names). */
		ok = !sym__resolve(t, buf, &back) && back == addr;
	}
	if (!ok)
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
}

static bool is_padding(const struct code_range *c, size_t i)
{
	const struct insn *in = &c->insns[i];

	if (strncmp(in->mnemonic, "nop", 3) && strcmp(in->mnemonic, "int3"))
		return false;
	for (size_t k = i; k-- > 0;) {
		const struct insn *p = &c->insns[k];
		if (!strncmp(p->mnemonic, "nop", 3) || !strcmp(p->mnemonic, "int3"))
			continue;
		return (p->flags & (INSN_JMP | INSN_RET | INSN_IRET | INSN_SYSRET | INSN_SYSEXIT |
				    INSN_UD)) != 0 && !(p->flags & INSN_JCC);
	}
	return false;
}

static int disc_setup(struct disc *d, const char *scen)
{
	struct guest_opts go = { .elf = d->o->elf, .variant = d->o->variant, .scenario = scen,
				 .cmdline_extra = d->guest[0] ? d->guest : NULL };
	const struct kinject_layout *l;
	struct verdict v;
	struct kcase pc;

	if (guest__boot(&d->g, &go))
		return -1;
	d->sysemu = d->g.sysemu;
	vm__set_deadline_ms(d->g.vm, DISC_DEADLINE_MS);
	if (!guest__run_to_ready(&d->g, &v, KINJECT_BOOT_MAX_EXITS))
		return vmm__fail("the guest did not reach READY: %s (%s)", v.what, v.detail);

	/* The patches, resolved by the case parser's resolver, before the
	 * snapshot and the decode: the sweep sees the code the cases run. */
	case__init(&pc);
	snprintf(pc.name, sizeof(pc.name), "--patch");
	pc.npatches = d->o->npatches;
	memcpy(pc.patches, d->o->patches, pc.npatches * sizeof(pc.patches[0]));
	pc.nsteps = 0;
	if (case__resolve(&pc, &d->g.img.symtab))
		return -1;
	for (size_t i = 0; i < pc.npatches; i++)
		if (vm__write_gva(d->g.vm, 0, pc.patches[i].addr, pc.patches[i].bytes,
				  pc.patches[i].len))
			return vmm__fail("--patch %s: %s", pc.patches[i].where, vmm__error());

	/* Boundaries: the entry map's, else a decode of the entry text. */
	if (entrymap__build(&d->g, &d->map) == 0) {
		long n = entrymap__boundaries(&d->map, false, &d->bounds);
		d->have_map = true;
		if (n < 0)
			return -1;
		d->nb = (size_t)n;
		d->code = &d->map.code;
	} else {
		uint64_t len;
		uint8_t *buf;

		l = &d->g.layout;
		len = l->entry_text_end - l->entry_text_start;
		if (l->entry_text_end <= l->entry_text_start || len > (16u << 20))
			return vmm__fail("layout: bad entry text range");
		buf = malloc(len);
		if (!buf || vm__read_gva(d->g.vm, 0, l->entry_text_start, buf, len) ||
		    analysis__decode(buf, len, l->entry_text_start, &d->own)) {
			free(buf);
			return vmm__fail("entry text: %s", vmm__error());
		}
		free(buf);
		d->code = &d->own;
		d->nb = d->own.n;
		d->bounds = malloc(d->nb * sizeof(*d->bounds));
		if (!d->bounds)
			return vmm__fail("out of memory");
		for (size_t i = 0; i < d->nb; i++)
			d->bounds[i] = d->own.insns[i].addr;
	}
	d->count = calloc(d->nb, sizeof(*d->count));
	d->codes = calloc(d->nb * d->hits * (d->nevents ? d->nevents : 1), 1);
	d->ord = calloc(d->nb * d->hits, sizeof(*d->ord));
	if (!d->count || !d->codes || !d->ord)
		return vmm__fail("out of memory");
	d->snap = snap__take(d->g.vm);
	return d->snap ? 0 : -1;
}

static void disc_free(struct disc *d)
{
	snap__free(d->snap);
	if (d->have_map)
		entrymap__free(&d->map);
	analysis__free(&d->own);
	free(d->bounds);
	free(d->count);
	free(d->ord);
	free(d->codes);
	if (d->g.vm)
		guest__destroy(&d->g);
}

/* The drivers of a scenario: its own events, then the table's. */
static void disc_drivers(struct disc *d, struct plan_scen *s, const struct sweep_event *dev,
			 size_t ndev)
{
	struct plan_driver *drv = &s->drivers[s->ndrivers++];

	snprintf(drv->name, sizeof(drv->name), "own");
	for (size_t i = 0; i < ndev && s->ndrivers < MAX_DRIVERS; i++) {
		const struct symbol *sym = sym__find(&d->g.img.symtab, driver_defs[i].label);

		if (strcmp(driver_defs[i].scenario, s->name))
			continue;
		drv = &s->drivers[s->ndrivers++];
		snprintf(drv->name, sizeof(drv->name), "%s/%s", driver_defs[i].label,
			 driver_defs[i].event);
		drv->has_step = true;
		case__init_step(&drv->step);
		snprintf(drv->step.stop.where, sizeof(drv->step.stop.where), "%s",
			 driver_defs[i].label);
		drv->step.inject = dev[i].ev;
		if (!sym) {
			driver_unusable(drv, "the guest has no symbol %s", driver_defs[i].label);
			drv->step.stop.addr = 0;
			continue;
		}
		drv->step.stop.addr = sym->addr;
		if (driver_defs[i].user) {
			/* A ring-3 label, at its user address (guest ABI). */
			snprintf(drv->step.stop.where, sizeof(drv->step.stop.where), "user:%s",
				 driver_defs[i].label);
			if (case__resolve_where(&d->g.img.symtab, drv->step.stop.where,
						&drv->step.stop.addr)) {
				driver_unusable(drv, "%s", vmm__error());
				drv->step.stop.addr = 0;
				continue;
			}
		}
		if (driver_defs[i].cr2_at_label)
			drv->step.inject.cr2 = sym->addr;
	}
}

/* Discovery of scenario `si`, written to fd: struct plan_scen, then the
 * boundaries (count, array), then the items (count, array). */
int sweep__discover(const struct plan *p, size_t si, int fd)
{
	struct disc d = { .o = p->o, .guest = p->guest, .events = p->events, .nevents = p->nevents,
			  .hits = p->hits };
	struct plan_scen s = p->scen[si];
	struct sweep_event dev[sizeof(driver_defs) / sizeof(driver_defs[0])];
	struct plan_bound *pb = NULL;
	struct plan_item *items = NULL;
	size_t nitems = 0, cap = 0;
	double t0 = sweep__now_sec();
	uint64_t nb64, ni64;
	int rc = -1;

	for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
		if (sweep__parse_event(driver_defs[i].event, &dev[i]))
			goto out;
	if (disc_setup(&d, s.name))
		goto out;

	/* The baseline, with a deadline: a scenario that fails or hangs on
	 * its own is reported, and no session is ever opened for it. */
	if (snap__restore(d.g.vm, d.snap))
		goto out;
	vm__set_deadline_ms(d.g.vm, DISC_DEADLINE_MS);
	{
		uint64_t e0 = vm__exit_count(d.g.vm);
		guest__run_to_verdict(&d.g, &s.baseline, KINJECT_BOOT_MAX_EXITS);
		s.baseline_exits = vm__exit_count(d.g.vm) - e0;
	}
	vm__set_deadline_ms(d.g.vm, 0);

	pb = calloc(d.nb, sizeof(*pb));
	if (!pb) {
		vmm__fail("out of memory");
		goto out;
	}
	for (size_t i = 0; i < d.nb; i++) {
		long k = analysis__index(d.code, d.bounds[i]);
		pb[i].addr = d.bounds[i];
		bound_where(&d.g.img.symtab, d.bounds[i], pb[i].where, sizeof(pb[i].where));
		if (k >= 0) {
			snprintf(pb[i].mnemonic, sizeof(pb[i].mnemonic), "%s", d.code->insns[k].mnemonic);
			pb[i].padding = is_padding(d.code, (size_t)k);
		}
	}

	if (s.baseline.kind == VERDICT_PASS) {
		disc_drivers(&d, &s, dev, sizeof(dev) / sizeof(dev[0]));
		for (size_t k = 0; k < s.ndrivers; k++) {
			struct plan_driver *drv = &s.drivers[k];

			if (drv->has_step && !drv->step.stop.addr)
				continue;
			trace_driver(&d, drv);
			if (!drv->usable)
				continue;
			if (drv->has_step) {
				struct plan_item it = { .scen = (uint16_t)si, .driver = (uint16_t)k,
							.event = DRIVER_CHECK, .hit = 1 };
				snprintf(it.where, sizeof(it.where), "-");
				if (nitems == cap) {
					cap = cap ? 2 * cap : 1024;
					struct plan_item *n = realloc(items, cap * sizeof(*n));
					if (!n)
						goto out;
					items = n;
				}
				items[nitems++] = it;
			}
			for (size_t i = 0; i < d.nb; i++) {
				if (!d.count[i])
					continue;
				drv->visited++;
				pb[i].reached = true;
				for (uint32_t a = 1; a <= d.count[i] && a <= d.hits; a++)
					for (size_t e = 0; e < d.nevents; e++) {
						uint8_t code = d.codes[((size_t)i * d.hits + (a - 1)) *
								       d.nevents + e];
						struct plan_item it = {
							.scen = (uint16_t)si, .driver = (uint16_t)k,
							.event = (uint16_t)e, .hit = a,
							.addr = d.bounds[i],
							.ordinal = d.ord[i * d.hits + (a - 1)],
							.pre = code && !p->o->run_impossible ?
							       PRE_IMPOSSIBLE : PRE_RUN,
						};
						snprintf(it.where, sizeof(it.where), "%s", pb[i].where);
						if (code)
							snprintf(it.why, sizeof(it.why),
								 "architecturally impossible: %s "
								 "(at this arrival, seen by the plan)",
								 d.whys[code - 1]);
						if (nitems == cap) {
							cap = cap ? 2 * cap : 1024;
							struct plan_item *n =
								realloc(items, cap * sizeof(*n));
							if (!n)
								goto out;
							items = n;
						}
						items[nitems++] = it;
					}
			}
		}
	}
	s.sec = sweep__now_sec() - t0;
	s.status = 0;
	nb64 = d.nb;
	ni64 = nitems;
	if (sweep__write_all(fd, &s, sizeof(s)) || sweep__write_all(fd, &nb64, sizeof(nb64)) ||
	    sweep__write_all(fd, pb, d.nb * sizeof(*pb)) || sweep__write_all(fd, &ni64, sizeof(ni64)) ||
	    sweep__write_all(fd, items, nitems * sizeof(*items)))
		goto out;
	rc = 0;
out:
	if (rc) {
		s.status = -1;
		snprintf(s.error, sizeof(s.error), "%s", vmm__error());
		nb64 = ni64 = 0;
		sweep__write_all(fd, &s, sizeof(s));
		sweep__write_all(fd, &nb64, sizeof(nb64));
		sweep__write_all(fd, &ni64, sizeof(ni64));
	}
	free(pb);
	free(items);
	disc_free(&d);
	return rc;
}
