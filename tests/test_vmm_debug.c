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

#define LOOP_N 10
#define STEP_INSNS 8

static struct vm *vm;
static struct elf_image img;

static uint64_t sym(const char *name)
{
	uint64_t a = 0;
	if (sym__resolve(&img.symtab, name, &a))
		CU_FAIL(vmm__error());
	return a;
}

static struct vm *boot(const char *guest, const char *cmdline, struct elf_image *im)
{
	struct vm_config cfg = { 0 };
	struct vm *v = vm__create(&cfg);
	if (!v || elf__load(v, guest, im) || vm__boot_long_mode(v, im->entry, cmdline)) {
		fprintf(stderr, "boot %s: %s\n", guest, vmm__error());
		vm__destroy(v);
		return NULL;
	}
	return v;
}

static int setup(void)
{
	vm = boot(KT_GUEST("test-loop"), "s", &img);
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
	struct vm_exit e;
	if (vcpu__run(vm, &e, 100000)) {
		CU_FAIL(vmm__error());
		e.kind = VM_EXIT_UNEXPECTED;
	}
	return e;
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
	struct vm *p = boot(KT_GUEST("test-probe"), "", &pimg);
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

static CU_TestInfo tests[] = {
	{ "breakpoint hit counts over a loop", test_breakpoint_counts },
	{ "two breakpoints, slot bounds", test_two_breakpoints },
	{ "single-step count, TF invisible to PUSHF", test_singlestep_count_and_tf },
	{ "single-step through an exception handler and IRETQ", test_step_through_handler },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm debug", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
