/* SPDX-License-Identifier: MIT */
/*
 * Breakpoints and single-step on the loop guest (tests/guests/loop.S):
 * hit counts over a loop run LOOP_N times, resuming after a hit, single-step
 * counts over a known instruction sequence, TF never visible to the guest
 * (PUSHF, exception frames), stepping across IRETQ.
 */
#include <stdio.h>
#include <string.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "vmm.h"
#include "quirks.h"

#define LOOP_N 10
#define STEP_INSNS 8

static struct vm *vm;
static struct elf_image img;

static uint64_t sym(const char *name)
{
	return kt_sym(&img, name);
}

static int setup(void)
{
	vm = kt_boot(KT_GUEST("test-loop"), "s", &img);
	return vm ? 0 : 1;
}

static int teardown(void)
{
	vm__destroy(vm);
	elf__free(&img);
	return 0;
}

static struct vm_exit run1(void)
{
	return kt_run(vm, 100000);
}

static void to_ready(void)
{
	struct vm_exit e;
	do
		e = run1();
	while (e.kind == VM_EXIT_HCALL && e.hcall.nr != KINJECT_HC_READY);
	CU_ASSERT_EQUAL(e.hcall.nr, KINJECT_HC_READY);
}

static void test_breakpoint_counts(void)
{
	to_ready();
	dbg__reset_hits(vm);
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 1, sym("bp_target")));
	int stops = 0;
	struct vm_exit e;
	for (;;) {
		e = run1();
		if (e.kind != VM_EXIT_BREAKPOINT)
			break;
		stops++;
		CU_ASSERT_EQUAL(e.debug.slot, 1);
		KT_ASSERT_EQ_U64(e.rip, sym("bp_target"));
		CU_ASSERT_FATAL(stops <= LOOP_N);
	}
	CU_ASSERT_EQUAL(stops, LOOP_N);
	KT_ASSERT_EQ_U64(dbg__hits(vm, 1), LOOP_N);
	KT_ASSERT_EQ_U64(dbg__hits(vm, 0), 0);
	/* The guest counted each iteration once: resuming neither skipped nor
	 * repeated the instruction under the breakpoint. */
	CU_ASSERT_EQUAL(e.kind, VM_EXIT_HCALL);
	KT_ASSERT_EQ_U64(e.hcall.args[0], 10);
	KT_ASSERT_EQ_U64(e.hcall.args[1], LOOP_N);
	KT_ASSERT_OK(dbg__clear_breakpoint(vm, 1));
}

static void test_two_breakpoints(void)
{
	to_ready();
	dbg__reset_hits(vm);
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 0, sym("bp_target")));
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 3, sym("bp_target") + 3));   /* dec %ecx */
	struct vm_exit e;
	int n = 0;
	while ((e = run1()).kind == VM_EXIT_BREAKPOINT && n < 100)
		n++;
	KT_ASSERT_EQ_U64(dbg__hits(vm, 0), LOOP_N);
	KT_ASSERT_EQ_U64(dbg__hits(vm, 3), LOOP_N);
	KT_ASSERT_EQ_U64(e.hcall.args[1], LOOP_N);
	dbg__clear_breakpoint(vm, 0);
	dbg__clear_breakpoint(vm, 3);
	CU_ASSERT_EQUAL(dbg__set_breakpoint(vm, 4, 0), -1);
}

static void test_singlestep_count_and_tf(void)
{
	to_ready();
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 0, sym("step_start")));
	struct vm_exit e;
	do
		e = run1();
	while (e.kind == VM_EXIT_HCALL);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_EQ_U64(e.rip, sym("step_start"));
	KT_ASSERT_OK(dbg__clear_breakpoint(vm, 0));
	KT_ASSERT_OK(dbg__set_singlestep(vm, true));
	int steps = 0;
	while (vcpu__regs(vm)->rip != sym("step_end") && steps < 100) {
		e = run1();
		CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_SINGLESTEP);
		CU_ASSERT(!(vcpu__regs(vm)->rflags & 0x100));   /* TF hidden */
		steps++;
	}
	CU_ASSERT_EQUAL(steps, STEP_INSNS);
	KT_ASSERT_EQ_U64(vcpu__regs(vm)->rbx, 11);
	KT_ASSERT_OK(dbg__set_singlestep(vm, false));
	e = run1();
	CU_ASSERT_EQUAL(e.kind, VM_EXIT_HCALL);
	KT_ASSERT_EQ_U64(e.hcall.args[0], 11);
	/* What PUSHF stored while being single-stepped. */
	CU_ASSERT_EQUAL(e.hcall.args[1] & 0x100, 0);
}

/* Probe guest: step from the tag-2 point with an exception injected, then
 * through the handler and its IRETQ, back to the interrupted code. */
static void test_step_through_handler(void)
{
	struct elf_image pimg;
	struct vm *p = kt_boot(KT_GUEST("test-probe"), "", &pimg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	struct vm_exit e;
	for (int tags = 0; tags < 3;) {                /* READY, tag 1, tag 3, tag 2 */
		KT_ASSERT_OK(vcpu__run(p, &e, 100000));
		if (e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_NOP)
			tags++;
	}
	KT_ASSERT_EQ_U64(e.hcall.args[0], 2);
	uint64_t resume = vcpu__regs(p)->rip;
	struct vm_event ev = { .kind = VM_EVENT_EXCEPTION, .vector = 13, .has_error_code = true,
			       .error_code = 0x10 };
	KT_ASSERT_OK(vcpu__inject(p, &ev));
	KT_ASSERT_OK(dbg__set_singlestep(p, true));
	int steps = 0, probes = 0;
	uint64_t frame_rflags = 0;
	while (steps < 200) {
		KT_ASSERT_OK(vcpu__run(p, &e, 1000));
		steps++;
		if (e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_PROBE) {
			probes++;
			KT_ASSERT_EQ_U64(e.hcall.args[0], 13);
			KT_ASSERT_EQ_U64(e.hcall.args[1], 0x10);
			uint64_t fp = 0;
			const struct symbol *lf = sym__find(&pimg.symtab, "last_frame");
			vm__read_gva(p, 0, lf->addr, &fp, 8);
			vm__read_gva(p, 0, fp + 9 * 8, &frame_rflags, 8);
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_SINGLESTEP);
		if (vcpu__regs(p)->rip == resume)
			break;
	}
	CU_ASSERT_EQUAL(probes, 1);
	KT_ASSERT_EQ_U64(vcpu__regs(p)->rip, resume);     /* IRETQ stepped exactly */
	CU_ASSERT_EQUAL(frame_rflags & 0x100, 0);         /* no TF in the pushed frame */
	CU_ASSERT(frame_rflags & 0x200);
	vm__destroy(p);
	elf__free(&pimg);
}

/* ---- ring 3 (tests/guests/ring3.S) ----------------------------------------
 * On hosts with QUIRK_RING3_HWBP the VMM emulates these stops (INT3 and the
 * guest's #BP entry); elsewhere they are plain hardware breakpoints.  The
 * assertions are the same. */
#define R3_LOOP_N 5

struct r3 {
	struct vm *vm;
	struct elf_image img;
	uint64_t sum, rcx, rflags, rsp;    /* a round's report without breakpoints */
	struct kvm_segment cs, ss;         /* at that report, in ring 3 */
};

static uint64_t r3_sym(struct r3 *g, const char *name)
{
	return kt_sym(&g->img, name);
}

static struct vm_exit r3_run(struct r3 *g)
{
	return kt_run(g->vm, 10000);
}

static bool is_nop(const struct vm_exit *e, uint64_t tag_or_0)
{
	return e->kind == VM_EXIT_HCALL && e->hcall.nr == KINJECT_HC_NOP &&
	       (!tag_or_0 || e->hcall.args[0] == tag_or_0);
}

/* Boots, runs to READY and through one whole round for the reference. */
static bool r3_boot(struct r3 *g)
{
	struct vm_exit e;

	memset(g, 0, sizeof(*g));
	g->vm = kt_boot(KT_GUEST("test-ring3"), "", &g->img);
	if (!g->vm)
		return false;
	e = r3_run(g);
	CU_ASSERT_EQUAL(e.hcall.nr, KINJECT_HC_READY);
	do
		e = r3_run(g);
	while (e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_PROBE);
	CU_ASSERT_FATAL(is_nop(&e, 0));
	g->sum = e.hcall.args[0];
	g->rcx = e.hcall.args[1];
	g->rflags = e.hcall.args[2];
	g->rsp = e.hcall.args[3];
	g->cs = vcpu__sregs(g->vm)->cs;
	g->ss = vcpu__sregs(g->vm)->ss;
	KT_ASSERT_EQ_U64(g->cs.selector, 0x33);
	e = r3_run(g);                            /* the compat part */
	CU_ASSERT(is_nop(&e, 32));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 3 * R3_LOOP_N);
	return true;
}

static void r3_free(struct r3 *g)
{
	vm__destroy(g->vm);
	elf__free(&g->img);
}

static void seg_equal(const struct kvm_segment *a, const struct kvm_segment *b)
{
	KT_ASSERT_EQ_U64(a->selector, b->selector);
	KT_ASSERT_EQ_U64(a->base, b->base);
	KT_ASSERT_EQ_U64(a->limit, b->limit);
	KT_ASSERT_EQ_U64(a->type, b->type);
	KT_ASSERT_EQ_U64(a->dpl, b->dpl);
	KT_ASSERT_EQ_U64(a->present, b->present);
	KT_ASSERT_EQ_U64(a->s, b->s);
	KT_ASSERT_EQ_U64(a->l, b->l);
	KT_ASSERT_EQ_U64(a->db, b->db);
	KT_ASSERT_EQ_U64(a->g, b->g);
}

/* The registers at `r3_bp` on arrival k (0-based) of a round. */
static void r3_check_stop(struct r3 *g, const struct vm_exit *e, int slot, unsigned k)
{
	const struct kvm_regs *r = vcpu__regs(g->vm);
	uint64_t rcx = 0x3333333333333333ULL + k * 0x2222222222222222ULL;

	CU_ASSERT_EQUAL(e->kind, VM_EXIT_BREAKPOINT);
	CU_ASSERT_EQUAL(e->debug.slot, slot);
	KT_ASSERT_EQ_U64(e->rip, r3_sym(g, "r3_bp"));
	KT_ASSERT_EQ_U64(r->rip, r3_sym(g, "r3_bp"));
	CU_ASSERT_EQUAL(vcpu__cpl(g->vm), 3);
	seg_equal(&vcpu__sregs(g->vm)->cs, &g->cs);
	seg_equal(&vcpu__sregs(g->vm)->ss, &g->ss);
	KT_ASSERT_EQ_U64(r->rsp, r3_sym(g, "ustack_top"));
	KT_ASSERT_EQ_U64(r->rax, 0x1111111111111111ULL);
	KT_ASSERT_EQ_U64(r->rbx, 0x2222222222222222ULL);
	KT_ASSERT_EQ_U64(r->rcx, rcx);
	KT_ASSERT_EQ_U64(r->rdi, 0x6666666666666666ULL);
	KT_ASSERT_EQ_U64(r->rbp, 0x7777777777777777ULL);
	KT_ASSERT_EQ_U64(r->r8, 0x8888888888888888ULL);
	KT_ASSERT_EQ_U64(r->r9, 0x9999999999999999ULL);
	KT_ASSERT_EQ_U64(r->r10, 0xaaaaaaaaaaaaaaaaULL);
	KT_ASSERT_EQ_U64(r->r11, 0xbbbbbbbbbbbbbbbbULL);
	KT_ASSERT_EQ_U64(r->r12, 0xccccccccccccccccULL);
	KT_ASSERT_EQ_U64(r->r13, 0xddddddddddddddddULL);
	KT_ASSERT_EQ_U64(r->r14, 0xeeeeeeeeeeeeeeeeULL);
	KT_ASSERT_EQ_U64(r->r15, R3_LOOP_N - k);
	CU_ASSERT(r->rflags & 0x200);
	CU_ASSERT(!(r->rflags & 0x100));
	/* The guest sees its own byte at the stop. */
	uint8_t b = 0;
	KT_ASSERT_OK(vm__read_gva(g->vm, 0, r->rip, &b, 1));
	KT_ASSERT_EQ_U64(b, 0x48);                /* add %rbx,%rcx: REX.W */
}

/* The rest of the round: the guest's own INT3 reaches its #BP stub once,
 * and the report equals the reference (nothing changed by the stops). */
static void r3_finish_round(struct r3 *g)
{
	struct vm_exit e;
	int int3 = 0;

	for (;;) {
		e = r3_run(g);
		if (e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_PROBE) {
			KT_ASSERT_EQ_U64(e.hcall.args[0], 3);
			KT_ASSERT_EQ_U64(e.hcall.args[1], r3_sym(g, "r3_sum"));
			KT_ASSERT_EQ_U64(e.hcall.args[2], 0x33);
			int3++;
			continue;
		}
		break;
	}
	CU_ASSERT_EQUAL(int3, 1);
	CU_ASSERT_FATAL(is_nop(&e, 0));
	KT_ASSERT_EQ_U64(e.hcall.args[0], g->sum);
	KT_ASSERT_EQ_U64(e.hcall.args[1], g->rcx);
	KT_ASSERT_EQ_U64(e.hcall.args[2], g->rflags);
	KT_ASSERT_EQ_U64(e.hcall.args[3], g->rsp);
}

static void test_ring3_quirk(void)
{
	bool works = quirks__works(QUIRK_RING3_HWBP);
	fprintf(stderr, "\n    host: %s (%s) ", quirks__report(QUIRK_RING3_HWBP),
		works ? "plain hardware breakpoints" : "emulated with INT3");
	CU_PASS("reported");
}

static void test_ring3_breakpoint(void)
{
	struct r3 g;

	if (!r3_boot(&g))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 2, r3_sym(&g, "r3_bp")));
	struct vm_exit e = r3_run(&g);
	r3_check_stop(&g, &e, 2, 0);
	KT_ASSERT_EQ_U64(dbg__hits(g.vm, 2), 1);
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 2));
	r3_finish_round(&g);
	e = r3_run(&g);
	CU_ASSERT(is_nop(&e, 32));
	/* A second round, no breakpoint: the guest's byte is back for good. */
	r3_finish_round(&g);
	r3_free(&g);
}

static void test_ring3_hit_counts(void)
{
	struct r3 g;
	struct vm_exit e;

	if (!r3_boot(&g))
		return;
	dbg__reset_hits(g.vm);
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, r3_sym(&g, "r3_bp")));
	for (unsigned k = 0; k < R3_LOOP_N; k++) {
		e = r3_run(&g);
		r3_check_stop(&g, &e, 0, k);
	}
	KT_ASSERT_EQ_U64(dbg__hits(g.vm, 0), R3_LOOP_N);
	r3_finish_round(&g);
	e = r3_run(&g);
	CU_ASSERT(is_nop(&e, 32));

	/* Three at once: two emulated (loop head and its JNZ), one in compat
	 * mode (hardware there), and the VMM's own entries: five debug
	 * registers wanted, four there. */
	dbg__reset_hits(g.vm);
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 1, r3_sym(&g, "r3_tail")));
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 3, r3_sym(&g, "r3_compat")));
	unsigned n[VM_MAX_BREAKPOINTS] = { 0 };
	int guard = 0;
	while ((e = r3_run(&g)).kind == VM_EXIT_BREAKPOINT && guard++ < 100) {
		n[e.debug.slot]++;
		KT_ASSERT_EQ_U64(vcpu__regs(g.vm)->rip, e.rip);
		if (e.debug.slot == 0)
			r3_check_stop(&g, &e, 0, n[0] - 1);
		if (e.debug.slot == 1)
			KT_ASSERT_EQ_U64(e.rip, r3_sym(&g, "r3_tail"));
	}
	CU_ASSERT_EQUAL(n[0], R3_LOOP_N);
	CU_ASSERT_EQUAL(n[1], R3_LOOP_N);
	KT_ASSERT_EQ_U64(dbg__hits(g.vm, 1), R3_LOOP_N);
	/* The INT3 probe, then the report. */
	while (e.kind == VM_EXIT_HCALL && e.hcall.nr == KINJECT_HC_PROBE)
		e = r3_run(&g);
	CU_ASSERT_FATAL(is_nop(&e, 0));
	KT_ASSERT_EQ_U64(e.hcall.args[0], g.sum);
	KT_ASSERT_EQ_U64(e.hcall.args[2], g.rflags);
	while ((e = r3_run(&g)).kind == VM_EXIT_BREAKPOINT && guard++ < 100) {
		CU_ASSERT_EQUAL(e.debug.slot, 3);
		KT_ASSERT_EQ_U64(e.rip, r3_sym(&g, "r3_compat"));
		n[3]++;
	}
	CU_ASSERT_EQUAL(n[3], R3_LOOP_N);
	CU_ASSERT(is_nop(&e, 32));
	KT_ASSERT_EQ_U64(e.hcall.args[1], 3 * R3_LOOP_N);
	for (int i = 0; i < VM_MAX_BREAKPOINTS; i++)
		KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, i));
	r3_finish_round(&g);
	r3_free(&g);
}

/* A snapshot taken with an INT3 in memory, restored after the breakpoint
 * is gone: the guest never meets that INT3. */
static void test_ring3_snapshot(void)
{
	struct r3 g;
	struct vm_exit e;

	if (!r3_boot(&g))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, r3_sym(&g, "r3_bp")));
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 1, r3_sym(&g, "r3_sum")));
	e = r3_run(&g);
	r3_check_stop(&g, &e, 0, 0);
	struct vm_snapshot *s = snap__take(g.vm);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	uint64_t digest = vm__digest(g.vm);
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 0));
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 1));
	r3_finish_round(&g);
	KT_ASSERT_OK(snap__restore(g.vm, s));
	KT_ASSERT_EQ_U64(vm__digest(g.vm), digest);
	r3_finish_round(&g);
	/* And with the breakpoint set again, the restored state (at the
	 * address) stops there at once, as a hardware breakpoint would, then
	 * at every later arrival. */
	KT_ASSERT_OK(snap__restore(g.vm, s));
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, r3_sym(&g, "r3_bp")));
	for (unsigned k = 0; k < R3_LOOP_N; k++) {
		e = r3_run(&g);
		r3_check_stop(&g, &e, 0, k);
	}
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 0));
	r3_finish_round(&g);
	snap__free(s);
	r3_free(&g);
}

/* Where the host cannot step 64-bit ring 3, the VMM says so. */
static void test_ring3_singlestep(void)
{
	struct r3 g;

	if (!r3_boot(&g))
		return;
	KT_ASSERT_OK(dbg__set_breakpoint(g.vm, 0, r3_sym(&g, "r3_bp")));
	struct vm_exit e = r3_run(&g);
	r3_check_stop(&g, &e, 0, 0);
	KT_ASSERT_OK(dbg__clear_breakpoint(g.vm, 0));
	bool blind = dbg__step_blind(g.vm);
	char err[256];
	snprintf(err, sizeof(err), "%s", vmm__error());
	if (quirks__works(QUIRK_RING3_HWBP)) {
		CU_ASSERT(!blind);
		KT_ASSERT_OK(dbg__set_singlestep(g.vm, true));
		e = r3_run(&g);
		CU_ASSERT_EQUAL(e.kind, VM_EXIT_SINGLESTEP);
		KT_ASSERT_OK(dbg__set_singlestep(g.vm, false));
	} else {
		CU_ASSERT(blind);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "not traceable in ring 3 on this host"));
	}
	r3_finish_round(&g);
	r3_free(&g);
}

static CU_TestInfo tests[] = {
	{ "breakpoint hit counts over a loop", test_breakpoint_counts },
	{ "two breakpoints, slot bounds", test_two_breakpoints },
	{ "single-step count, TF invisible to PUSHF", test_singlestep_count_and_tf },
	{ "single-step through an exception handler and IRETQ", test_step_through_handler },
	{ "ring 3: host probe", test_ring3_quirk },
	{ "ring 3: breakpoint stops with the user's registers, guest unchanged", test_ring3_breakpoint },
	{ "ring 3: hit counts, three slots, compat mode, the guest's own INT3", test_ring3_hit_counts },
	{ "ring 3: snapshot with an INT3 in memory", test_ring3_snapshot },
	{ "ring 3: no single-step there where the host cannot, said", test_ring3_singlestep },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm debug", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
