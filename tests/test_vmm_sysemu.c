/* SPDX-License-Identifier: MIT */
/*
 * SYSCALL, SYSRET and INT n from ring 3 (tests/guests/sysemu.S), judged from
 * outside at exits: LSTAR entered at CPL 0 with RCX/R11/RFLAGS/RSP as the
 * SDM's SYSCALL leaves them, SYSRET back in ring 3 at RCX, int $0x80 at
 * vector 0x80 with the INT n frame, int $0x81 through a DPL 0 gate as
 * #GP(0x40a), UD2 still the guest's #UD.  On hosts that mis-deliver them
 * (QUIRK_SYSCALL, QUIRK_INT80) the VMM runs them at the sites the test
 * names (vmm/sysemu.c); elsewhere this is plain hardware.  The assertions
 * are the same, but for what only the emulation has (VM_EXIT_SYSEMU, its
 * debug register).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "vmm.h"
#include "quirks.h"

#define KENTRY     (KINJECT_KERNEL_VBASE + 0x200000ULL)   /* LSTAR */
#define USER_FLAGS 0x202ULL          /* 0x3202 without IOPL (not compared) */
#define IOPL       0x3000ULL

struct g {
	struct vm *vm;
	struct elf_image img;
};

static uint64_t sym(struct g *g, const char *name)
{
	return kt_sym(&g->img, name);
}

static struct vm_exit run1(struct g *g)
{
	return kt_run(g->vm, 10000);
}

static bool boot(struct g *g)
{
	memset(g, 0, sizeof(*g));
	g->vm = kt_boot(KT_GUEST("test-sysemu"), "", &g->img);
	if (!g->vm)
		return false;
	/* The guest's SYSCALL / INT n sites (user code runs at its link
	 * addresses here). */
	uint64_t sites[3] = { sym(g, "u_syscall"), sym(g, "u_int80"), sym(g, "u_int81") };
	KT_ASSERT_OK(vm__sysemu_sites(g->vm, sites, 3));
	struct vm_exit e = run1(g);
	CU_ASSERT_EQUAL(e.kind, VM_EXIT_HCALL);
	CU_ASSERT_EQUAL(e.hcall.nr, KINJECT_HC_READY);
	return e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_READY;
}


static void g_free(struct g *g)
{
	if (g->vm)
		vm__destroy(g->vm);
	elf__free(&g->img);
}

/* A booted guest for a test; with `what`, only where the VMM runs SYSCALL
 * and INT n itself (`what` says what the test would check otherwise). */
static bool start(struct g *g, const char *what)
{
	if (what && (quirks__state(QUIRK_SYSCALL) != QUIRK_EMULATED ||
		     quirks__state(QUIRK_INT80) != QUIRK_EMULATED)) {
		fprintf(stderr, "\n    this host runs SYSCALL and INT n itself: %s ", what);
		memset(g, 0, sizeof(*g));
		return false;
	}
	if (boot(g))
		return true;
	g_free(g);
	return false;
}

static bool probe(const struct vm_exit *e, uint64_t tag)
{
	return e->kind == VM_EXIT_HCALL && e->hcall.nr == KINJECT_HC_PROBE && e->hcall.args[0] == tag;
}

static void test_probes(void)
{
	enum quirk q[2] = { QUIRK_SYSCALL, QUIRK_INT80 };
	static const char *const names[] = { [QUIRK_WORKS] = "works", [QUIRK_EMULATED] = "emulated" };

	for (int i = 0; i < 2; i++) {
		enum quirk_state st = quirks__state(q[i]);
		fprintf(stderr, "\n    host: %s: %s (%s) ", i ? "INT n" : "SYSCALL",
			st == QUIRK_BROKEN ? "broken" : names[st], quirks__report(q[i]));
		/* Either the host does it or the VMM's emulation passed the probe. */
		CU_ASSERT(st == QUIRK_WORKS || st == QUIRK_EMULATED);
	}
}

/* One round from user_main, with the caller's breakpoints as they are;
 * `kentry_bp`: a breakpoint at LSTAR is armed (slot `kslot`). */
static void round_checks(struct g *g, int kslot, int ud_slot)
{
	struct vm *vm = g->vm;
	struct vm_exit e;
	const struct kvm_regs *r = vcpu__regs(vm);
	const struct kvm_sregs *s = vcpu__sregs(vm);
	uint64_t u_sysret = sym(g, "u_sysret"), ustack = sym(g, "ustack_top");

	/* 1. SYSCALL: at LSTAR, CPL 0, the STAR selectors, the user's RSP. */
	e = run1(g);
	if (e.kind != VM_EXIT_BREAKPOINT)
		fprintf(stderr, "\n    got %s (%s) rip 0x%llx nr %u arg0 0x%llx ", vm_exit__name(e.kind),
			e.reason, (unsigned long long)e.rip, e.hcall.nr,
			(unsigned long long)e.hcall.args[0]);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_EQ_U64(e.debug.slot, kslot);
	KT_ASSERT_EQ_U64(r->rip, KENTRY);
	KT_ASSERT_EQ_U64(vcpu__cpl(vm), 0);
	KT_ASSERT_EQ_U64(s->cs.selector, 0x08);
	KT_ASSERT_EQ_U64(s->cs.dpl, 0);
	KT_ASSERT_EQ_U64(s->cs.l, 1);
	KT_ASSERT_EQ_U64(s->ss.selector, 0x10);
	KT_ASSERT_EQ_U64(s->ss.dpl, 0);
	KT_ASSERT_EQ_U64(r->rcx, u_sysret);
	KT_ASSERT_EQ_U64(r->r11 & ~IOPL, USER_FLAGS);
	KT_ASSERT_EQ_U64(r->rflags, 0x2);            /* 0x3202 & ~SFMASK, no RF */
	KT_ASSERT_EQ_U64(r->rsp, ustack);
	KT_ASSERT_EQ_U64(r->rax, 0x1111111111111111ULL);
	KT_ASSERT_EQ_U64(r->rbx, 0x2222222222222222ULL);
	KT_ASSERT_EQ_U64(r->rdx, 0x4444444444444444ULL);
	KT_ASSERT_EQ_U64(r->rsi, 0x5555555555555555ULL);
	KT_ASSERT_EQ_U64(r->rdi, 0x6666666666666666ULL);
	KT_ASSERT_EQ_U64(r->rbp, 0x7777777777777777ULL);
	KT_ASSERT_EQ_U64(r->r8, 0x8888888888888888ULL);
	KT_ASSERT_EQ_U64(r->r9, 0x9999999999999999ULL);
	KT_ASSERT_EQ_U64(r->r10, 0xaaaaaaaaaaaaaaaaULL);

	/* 2. SYSRET: ring 3 at RCX, RFLAGS from R11. */
	e = run1(g);
	CU_ASSERT_FATAL(probe(&e, 0x5c));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 0x33);
	KT_ASSERT_EQ_U64(e.hcall.args[2], u_sysret);
	KT_ASSERT_EQ_U64(e.hcall.args[3] & ~IOPL, USER_FLAGS);
	KT_ASSERT_EQ_U64(vcpu__cpl(vm), 3);
	KT_ASSERT_EQ_U64(s->cs.selector, 0x33);
	KT_ASSERT_EQ_U64(s->ss.selector, 0x2b);
	KT_ASSERT_EQ_U64(r->rsp, ustack);

	/* 3. int $0x80: vector 0x80 at CPL 0, the INT n frame above the
	 * handler's three pushes, IF cleared (interrupt gate). */
	e = run1(g);
	CU_ASSERT_FATAL(probe(&e, 0x80));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 0x08);
	uint64_t f[5] = { 0 };
	KT_ASSERT_OK(vm__read_gva(vm, 0, r->rsp + 24, f, sizeof(f)));
	KT_ASSERT_EQ_U64(f[0], sym(g, "u_int81"));    /* past the two bytes */
	KT_ASSERT_EQ_U64(f[1], 0x33);
	KT_ASSERT_EQ_U64(f[2] & ~IOPL, USER_FLAGS);   /* no RF */
	KT_ASSERT_EQ_U64(f[3], ustack);
	KT_ASSERT_EQ_U64(f[4], 0x2b);
	KT_ASSERT_EQ_U64(r->rflags & 0x200, 0);
	KT_ASSERT_EQ_U64(r->rsp + 24 + 40, sym(g, "kstack_top"));
	KT_ASSERT_EQ_U64(r->rip & ~0xfffULL, (KINJECT_KERNEL_VBASE + sym(g, "h80")) & ~0xfffULL);

	/* 4. int $0x81 through a DPL 0 gate: #GP(0x81 << 3 | 2) at it. */
	e = run1(g);
	CU_ASSERT_FATAL(probe(&e, 0x10d));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 0x40a);
	KT_ASSERT_EQ_U64(e.hcall.args[2], sym(g, "u_int81"));

	/* 5. UD2: the guest's own #UD (a caller breakpoint in its stub
	 * stops first when armed). */
	e = run1(g);
	if (ud_slot >= 0) {
		CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
		KT_ASSERT_EQ_U64(e.debug.slot, ud_slot);
		e = run1(g);
	}
	if (!probe(&e, 0x106))
		fprintf(stderr, "\n    got %s (%s) rip 0x%llx nr %u arg0 0x%llx ", vm_exit__name(e.kind),
			e.reason, (unsigned long long)e.rip, e.hcall.nr,
			(unsigned long long)e.hcall.args[0]);
	CU_ASSERT_FATAL(probe(&e, 0x106));
	KT_ASSERT_EQ_U64(e.hcall.args[2], sym(g, "u_ud2"));
	e = run1(g);
	CU_ASSERT(e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_NOP);
}

static void test_rounds(void)
{
	struct g g;

	if (!start(&g, NULL))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, KENTRY));
	for (int i = 0; i < 3; i++)
		round_checks(&g, 0, -1);
	g_free(&g);
}

/* A caller's breakpoint at a site stops there, before the instruction;
 * resuming runs it. */
static void test_breakpoint_at_site(void)
{
	struct g g;

	if (!start(&g, NULL))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, KENTRY));
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 1, sym(&g, "u_syscall")));
	struct vm_exit e = run1(&g);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_EQ_U64(e.debug.slot, 1);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rip, sym(&g, "u_syscall"));
	KT_ASSERT_EQ_U64(vcpu__cpl(g.vm), 3);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rcx, 0xcccc);   /* not run yet */
	e = run1(&g);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_EQ_U64(e.debug.slot, 0);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rip, KENTRY);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rcx, sym(&g, "u_sysret"));
	KT_ASSERT_EQ_U64(vcpu__cpl(g.vm), 0);
	g_free(&g);
}

/* A SYSCALL that starts with TF set traps after it, at CPL 0 before
 * LSTAR's first instruction, on the user's stack (bug #8, XSA-204: an
 * emulator that forgot this trap). */
static void test_syscall_with_tf(void)
{
	struct g g;

	if (!start(&g, NULL))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 1, sym(&g, "u_syscall")));
	struct vm_exit e = run1(&g);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 1));
	vcpu__regs(g.vm)->rflags |= 0x100;             /* TF, as a debugger sets it */
	vcpu__mark_dirty(g.vm, KVM_SYNC_X86_REGS);
	e = run1(&g);
	/* The #DB stub: PROBE(0x101, error code, frame RIP), its frame above
	 * four pushes, the vector and the error code. */
	CU_ASSERT_FATAL(probe(&e, 0x101));
	KT_ASSERT_EQ_U64(e.hcall.args[2], KENTRY);
	uint64_t f[5] = { 0 };
	KT_ASSERT_OK(vm__read_gva(g.vm, 0, vcpu__regs(g.vm)->rsp + 48, f, sizeof(f)));
	KT_ASSERT_EQ_U64(f[1], 0x08);                   /* CPL 0 */
	KT_ASSERT_EQ_U64(f[2] & 0x100, 0);              /* FMASK cleared TF */
	KT_ASSERT_EQ_U64(f[3], sym(&g, "ustack_top"));  /* the user's RSP */
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->r11 & 0x100, 0x100);   /* the user's TF kept */
	g_free(&g);
}

/* The next exit is the report of the site `site` (vector -1: SYSCALL). */
static void expect_sysemu(struct g *g, const char *site, int vector)
{
	struct vm_exit e = run1(g);

	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_SYSEMU);
	KT_ASSERT_EQ_U64(e.sysemu.site, sym(g, site));
	KT_ASSERT_EQ_U64(e.sysemu.vector, vector);
}

/* With the report on, each site the VMM runs ends the run: SYSCALL at
 * LSTAR, INT n with its interrupt (or fault) injected, delivered next. */
static void test_report(void)
{
	struct g g;

	if (!start(&g, "nothing to report"))
		return;
	vm__sysemu_report(g.vm, true);
	expect_sysemu(&g, "u_syscall", -1);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rip, KENTRY);
	KT_ASSERT_EQ_U64(vcpu__cpl(g.vm), 0);
	struct vm_exit e = run1(&g);
	CU_ASSERT_FATAL(probe(&e, 0x5c));
	expect_sysemu(&g, "u_int80", 0x80);
	KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rip, sym(&g, "u_int81"));   /* past it, not delivered yet */
	KT_ASSERT_EQ_U64(vcpu__cpl(g.vm), 3);
	e = run1(&g);
	CU_ASSERT_FATAL(probe(&e, 0x80));
	expect_sysemu(&g, "u_int81", 13);                   /* DPL 0 gate: #GP */
	e = run1(&g);
	CU_ASSERT_FATAL(probe(&e, 0x10d));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 0x40a);
	g_free(&g);
}

/* The sites' catch needs one debug register: with all four the caller's,
 * the run fails with one line instead of letting a SYSCALL go to the
 * guest as the host delivers it. */
static void test_no_register_left(void)
{
	struct g g;

	if (!start(&g, "no catch needed"))
		return;
	for (int i = 0; i < 4; i++)
		KT_ASSERT_OK(dbg__set_breakpoint(g.vm, i, KENTRY + 0x100 + i));
	struct vm_exit e;
	CU_ASSERT_EQUAL(vcpu__run(g.vm, &e, 10000), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "no debug register left"));
	g_free(&g);
}

static CU_TestInfo tests[] = {
	{ "host probes: SYSCALL and INT n work or are emulated", test_probes },
	{ "SYSCALL at LSTAR at CPL 0, SYSRET at RCX, int $0x80 frame, #GP, #UD", test_rounds },
	{ "a breakpoint at a site stops before it; the resume runs it", test_breakpoint_at_site },
	{ "VM_EXIT_SYSEMU reports each site run, when asked", test_report },
	{ "SYSCALL with TF: #DB at LSTAR before its first instruction", test_syscall_with_tf },
	{ "no debug register left for the catch: one-line error", test_no_register_left },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm sysemu", .needs_kvm = true, .tests = tests };
	return kt_main(&s);
}
