/* SPDX-License-Identifier: MIT */
/*
 * Events injected into the testbed kernel's scenarios with the VMM API:
 * an external interrupt, an NMI, a #PF (CR2 + error code) and a #GP (error
 * code), at ring 3 into user-spin (64-bit) and ss16 (compat mode, 16-bit
 * SS) and at ring 0 into kthreads.  For each: run to READY, break at the
 * scenario's loop label, capture the interrupted state, inject, break at
 * the C handler, and compare the struct kinject_frame it got (RDI) with
 * the interrupted state field by field (and CR2 = the handler's aux for
 * #PF); then run on: the scenario must still PASS (its own register checks
 * prove the return path, signals and sigreturn included, restored it all).
 *
 * Ring-3 labels live in .user.text at kernel-image addresses; their user
 * address is `user:LABEL` as case files write it (case__resolve_where, abi.h).
 */
#include <stdio.h>
#include <string.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "kinject.h"
#include "case.h"

#define USER_UNMAPPED_VA  0x0dead000ULL
#define RFLAGS_RF         (1ULL << 16)
#define MAX_EXITS         20000000ULL

enum kind { EV_IRQ, EV_NMI, EV_PF, EV_GP };

static uint64_t sym(struct guest *g, const char *name)
{
	return kt_sym(&g->img, name);
}

/* Runs until breakpoint `slot` is hit; false (and a failure) if the guest
 * ends first. */
static bool run_to_bp(struct guest *g, int slot, const char *what)
{
	for (uint64_t n = 0; n < 2000000; n++) {
		struct vm_exit e;
		struct verdict v;

		if (vcpu__run(g->vm, &e, MAX_EXITS)) {
			CU_FAIL(vmm__error());
			return false;
		}
		if (e.kind == VM_EXIT_BREAKPOINT && e.debug.slot == slot)
			return true;
		if (e.kind == VM_EXIT_BREAKPOINT)
			continue;
		if (guest__judge_exit(g, &e, &v)) {
			char m[700];
			snprintf(m, sizeof(m), "guest ended before reaching %s: %s (%s): %s", what,
				 verdict__name(v.kind), v.what, v.detail);
			fprintf(stderr, "%s\n", m);
			CU_FAIL(m);
			return false;
		}
	}
	CU_FAIL("breakpoint never hit");
	return false;
}

static void inject_case(const char *scenario, const char *label, bool user, enum kind k)
{
	static const char *const handler[] = { "do_irq", "do_nmi", "do_exception", "do_exception" };
	struct guest g;
	struct guest_opts o = { 0 };
	struct verdict v;
	char where[128];

	o.elf = KT_GUEST("kinject-linux64");
	o.scenario = scenario;
	if (guest__boot(&g, &o)) {
		CU_FAIL(vmm__error());
		return;
	}
	if (!guest__run_to_ready(&g, &v, MAX_EXITS)) {
		fprintf(stderr, "%s: no READY: %s\n", scenario, v.detail);
		CU_FAIL("no READY");
		goto out;
	}

	/* 1. Break in the loop. */
	uint64_t at = sym(&g, label);
	if (user) {
		char where[128];
		snprintf(where, sizeof(where), "user:%s", label);
		KT_ASSERT_OK(case__resolve_where(&g.img.symtab, where, &at));
	}
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, at));
	if (!run_to_bp(&g, 0, label))
		goto out;
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 0));
	struct kvm_regs r = *vcpu__regs(g.vm);
	struct kvm_sregs s = *vcpu__sregs(g.vm);
	KT_ASSERT_EQ_U64(r.rip, at);
	KT_ASSERT_EQ_U64(s.cs.selector & 3, user ? 3 : 0);

	/* 2. The event. */
	struct vm_event ev = { 0 };
	uint64_t cr2 = 0;
	switch (k) {
	case EV_IRQ:
		ev.kind = VM_EVENT_IRQ;
		ev.vector = 0x40;                     /* nobody's: counted, ignored */
		break;
	case EV_NMI:
		ev.kind = VM_EVENT_NMI;
		break;
	case EV_PF:
		ev.kind = VM_EVENT_EXCEPTION;
		ev.vector = 14;
		ev.has_error_code = true;
		ev.has_payload = true;
		if (user) {
			/* Unmapped user page, user write: a SIGSEGV the loop's
			 * handler absorbs. */
			cr2 = USER_UNMAPPED_VA + 0x123;
			ev.error_code = 0x6;
		} else {
			/* Present kernel data, kernel write: spurious. */
			cr2 = sym(&g, "kinject_percpu") + 0x40;
			ev.error_code = 0x3;
		}
		ev.payload = cr2;
		break;
	case EV_GP:
		ev.kind = VM_EVENT_EXCEPTION;
		ev.vector = 13;
		ev.has_error_code = true;
		ev.error_code = 0;
		break;
	}
	char why[128] = "";
	ev.force = !vcpu__can_take(g.vm, &ev, why, sizeof(why));
	if (ev.force)
		fprintf(stderr, "%s: %s not deliverable (%s): forced\n", scenario, label, why);
	KT_ASSERT_OK(vcpu__inject(g.vm, &ev));

	/* 3. The handler gets exactly the interrupted state. */
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 1, sym(&g, handler[k])));
	if (!run_to_bp(&g, 1, handler[k]))
		goto out;
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 1));
	struct kvm_regs *h = vcpu__regs(g.vm);
	struct kinject_frame f;
	uint64_t aux = h->rsi;
	KT_ASSERT_OK(vm__read_gva(g.vm, 0, h->rdi, &f, sizeof(f)));
	KT_ASSERT_EQ_U64(f.rax, r.rax);
	KT_ASSERT_EQ_U64(f.rbx, r.rbx);
	KT_ASSERT_EQ_U64(f.rcx, r.rcx);
	KT_ASSERT_EQ_U64(f.rdx, r.rdx);
	KT_ASSERT_EQ_U64(f.rsi, r.rsi);
	KT_ASSERT_EQ_U64(f.rdi, r.rdi);
	KT_ASSERT_EQ_U64(f.rbp, r.rbp);
	KT_ASSERT_EQ_U64(f.r8, r.r8);
	KT_ASSERT_EQ_U64(f.r9, r.r9);
	KT_ASSERT_EQ_U64(f.r10, r.r10);
	KT_ASSERT_EQ_U64(f.r11, r.r11);
	KT_ASSERT_EQ_U64(f.r12, r.r12);
	KT_ASSERT_EQ_U64(f.r13, r.r13);
	KT_ASSERT_EQ_U64(f.r14, r.r14);
	KT_ASSERT_EQ_U64(f.r15, r.r15);
	KT_ASSERT_EQ_U64(f.rip, r.rip);
	KT_ASSERT_EQ_U64(f.cs, s.cs.selector);
	KT_ASSERT_EQ_U64(f.rflags & ~RFLAGS_RF, r.rflags & ~RFLAGS_RF);
	KT_ASSERT_EQ_U64(f.rsp, r.rsp);
	KT_ASSERT_EQ_U64(f.ss, s.ss.selector);
	switch (k) {
	case EV_IRQ:
		KT_ASSERT_EQ_U64(f.vector, 0x40);
		break;
	case EV_NMI:
		KT_ASSERT_EQ_U64(f.vector, 2);
		break;
	case EV_PF:
		KT_ASSERT_EQ_U64(f.vector, 14);
		KT_ASSERT_EQ_U64(f.error_code, ev.error_code);
		KT_ASSERT_EQ_U64(aux, cr2);
		break;
	case EV_GP:
		KT_ASSERT_EQ_U64(f.vector, 13);
		KT_ASSERT_EQ_U64(f.error_code, 0);
		break;
	}

	/* 4. And the scenario still passes. */
	guest__run_to_verdict(&g, &v, MAX_EXITS);
	if (v.kind != VERDICT_PASS)
		fprintf(stderr, "%s after %s at %s: %s (%s): %s\n", scenario, handler[k],
			guest__where(&g, at, where, sizeof(where)), verdict__name(v.kind), v.what,
			v.detail);
	KT_ASSERT_EQ_U64(v.kind, VERDICT_PASS);
out:
	guest__destroy(&g);
}

#define CASE(fn, scn, label, user, k) \
	static void fn(void) { inject_case(scn, label, user, k); }
CASE(spin_irq, "user-spin", "user_spin_loop", true, EV_IRQ)
CASE(spin_nmi, "user-spin", "user_spin_loop", true, EV_NMI)
CASE(spin_pf, "user-spin", "user_spin_loop", true, EV_PF)
CASE(spin_gp, "user-spin", "user_spin_loop", true, EV_GP)
CASE(ss16_irq, "ss16", "ss16_loop", true, EV_IRQ)
CASE(ss16_nmi, "ss16", "ss16_loop", true, EV_NMI)
CASE(ss16_pf, "ss16", "ss16_loop", true, EV_PF)
CASE(ss16_gp, "ss16", "ss16_loop", true, EV_GP)
CASE(kt_irq, "kthreads", "kthread_loop", false, EV_IRQ)
CASE(kt_nmi, "kthreads", "kthread_loop", false, EV_NMI)
CASE(kt_pf, "kthreads", "kthread_loop", false, EV_PF)
CASE(kt_gp, "kthreads", "kthread_loop", false, EV_GP)

static CU_TestInfo tests[] = {
	{ "user-spin ring 3: IRQ frame exact, still passes", spin_irq },
	{ "user-spin ring 3: NMI frame exact, still passes", spin_nmi },
	{ "user-spin ring 3: #PF (unmapped, signal) frame+CR2 exact, still passes", spin_pf },
	{ "user-spin ring 3: #GP (signal) frame exact, still passes", spin_gp },
	{ "ss16 compat: IRQ frame exact, still passes", ss16_irq },
	{ "ss16 compat: NMI frame exact, still passes", ss16_nmi },
	{ "ss16 compat: #PF (signal) frame+CR2 exact, still passes", ss16_pf },
	{ "ss16 compat: #GP (signal) frame exact, still passes", ss16_gp },
	{ "kthreads ring 0: IRQ frame exact, still passes", kt_irq },
	{ "kthreads ring 0: NMI frame exact, still passes", kt_nmi },
	{ "kthreads ring 0: spurious #PF frame+CR2 exact, still passes", kt_pf },
	{ "kthreads ring 0: #GP in tolerant range, frame exact, still passes", kt_gp },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = {
		.name = "guest injection", .needs_kvm = true, .tests = tests,
	};
	return kt_main(&suite);
}
