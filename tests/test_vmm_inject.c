/* SPDX-License-Identifier: MIT */
/*
 * Event injection into the probe guest (tests/guests/probe.S), whose IDT
 * stubs report (vector, error code, CR2, DR6) with KINJECT_HC_PROBE: every
 * kind of event reaches the right handler with the right data, a pending
 * IRQ waits for IF=1 while a forced one does not, NMI blocking holds a
 * pending NMI until IRET.
 */
#include <stdio.h>
#include <string.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "vmm.h"

static struct vm *vm;
static struct elf_image img;

static uint64_t sym(const char *name)
{
	uint64_t a = 0;
	if (sym__resolve(&img.symtab, name, &a))
		CU_FAIL(vmm__error());
	return a;
}

static int setup(void)
{
	struct vm_config cfg = { 0 };
	vm = vm__create(&cfg);
	if (!vm || elf__load(vm, KT_GUEST("test-probe"), &img) ||
	    vm__boot_long_mode(vm, img.entry, "")) {
		fprintf(stderr, "setup: %s\n", vmm__error());
		return 1;
	}
	struct vm_exit e;
	if (vcpu__run(vm, &e, 1000) || e.kind != VM_EXIT_HCALL || e.hcall.nr != KINJECT_HC_READY) {
		fprintf(stderr, "setup: guest did not get READY (%s)\n", e.reason);
		return 1;
	}
	return 0;
}

static int teardown(void)
{
	vm__destroy(vm);
	elf__free(&img);
	return 0;
}

/* Next hypercall the guest makes (fails the test on anything else). */
static struct vm_exit next(void)
{
	struct vm_exit e;
	int r;
	/* The guest halts once per loop with nothing pending: wake it. */
	while ((r = vcpu__run(vm, &e, 100000)) == 0 && e.kind == VM_EXIT_HLT)
		;
	if (r) {
		CU_FAIL(vmm__error());
		e.kind = VM_EXIT_UNEXPECTED;
	} else if (e.kind != VM_EXIT_HCALL) {
		char m[300];
		snprintf(m, sizeof(m), "expected a hypercall, got %s: %s", vm_exit__name(e.kind), e.reason);
		CU_FAIL(m);
	}
	return e;
}

static bool is_tag(const struct vm_exit *e, uint64_t tag)
{
	return e->kind == VM_EXIT_HCALL && e->hcall.nr == KINJECT_HC_NOP && e->hcall.args[0] == tag;
}

/* Run to the main loop's NOP with `tag`, skipping others. */
static void run_to_tag(uint64_t tag)
{
	for (int i = 0; i < 10; i++) {
		struct vm_exit e = next();
		if (e.kind != VM_EXIT_HCALL)
			return;
		if (is_tag(&e, tag))
			return;
	}
	CU_FAIL("tag not reached");
}

static void expect_probe(struct vm_exit e, unsigned vec, uint64_t ec)
{
	CU_ASSERT_EQUAL(e.hcall.nr, KINJECT_HC_PROBE);
	KT_ASSERT_EQ_U64(e.hcall.args[0], vec);
	KT_ASSERT_EQ_U64(e.hcall.args[1], ec);
}

/* The CPU-pushed frame of the handler that is probing now. */
static void probe_frame(uint64_t *rip, uint64_t *rflags)
{
	uint64_t fp = 0, f[8];
	CU_ASSERT_EQUAL(vm__read_gva(vm, 0, sym("last_frame"), &fp, 8), 0);
	CU_ASSERT_EQUAL(vm__read_gva(vm, 0, fp, f, sizeof(f)), 0);
	/* rcx rdx rsi rdi rax | vector ec | rip cs rflags ... */
	*rip = f[7];
	vm__read_gva(vm, 0, fp + 9 * 8, rflags, 8);
}

static void test_irq_pending_if1(void)
{
	run_to_tag(2);
	struct vm_event ev = { .kind = VM_EVENT_IRQ, .vector = 0x30 };
	char why[80];
	CU_ASSERT(vcpu__can_take(vm, &ev, why, sizeof(why)));
	KT_ASSERT_OK(vcpu__inject(vm, &ev));
	CU_ASSERT(vcpu__event_pending(vm));
	expect_probe(next(), 0x30, 0);
	CU_ASSERT(!vcpu__event_pending(vm));
}

static void test_irq_pending_waits_for_if(void)
{
	run_to_tag(1);
	struct vm_event ev = { .kind = VM_EVENT_IRQ, .vector = 0x31 };
	char why[80];
	CU_ASSERT(!vcpu__can_take(vm, &ev, why, sizeof(why)));
	CU_ASSERT_STRING_EQUAL(why, "IF=0");
	KT_ASSERT_OK(vcpu__inject(vm, &ev));
	struct vm_exit e = next();
	CU_ASSERT(is_tag(&e, 3));              /* still IF=0: not delivered */
	CU_ASSERT(vcpu__event_pending(vm));
	e = next();                            /* STI; NOP; then it arrives */
	expect_probe(e, 0x31, 0);
	uint64_t rip, fl;
	probe_frame(&rip, &fl);
	KT_ASSERT_EQ_U64(rip, sym("if1_start"));
	CU_ASSERT(fl & 0x200);
	CU_ASSERT(is_tag((e = next(), &e), 2));
}

static void test_irq_forced_ignores_if(void)
{
	run_to_tag(1);
	struct vm_event ev = { .kind = VM_EVENT_IRQ, .vector = 0x32, .force = true };
	KT_ASSERT_OK(vcpu__inject(vm, &ev));
	struct vm_exit e = next();
	expect_probe(e, 0x32, 0);              /* before tag 3: IF=0 ignored */
	uint64_t rip, fl;
	probe_frame(&rip, &fl);
	KT_ASSERT_EQ_U64(rip, sym("if0_spin"));
	CU_ASSERT(!(fl & 0x200));              /* the frame shows the guest's IF=0 */
	CU_ASSERT(is_tag((e = next(), &e), 3));
}

static void test_irq_sti_shadow(void)
{
	/* Stop on the NOP right after STI: inside the STI shadow. */
	run_to_tag(1);
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 0, sym("if1_start") - 1));
	struct vm_exit e;
	do
		KT_ASSERT_OK(vcpu__run(vm, &e, 1000));
	while (e.kind == VM_EXIT_HCALL);
	CU_ASSERT_EQUAL_FATAL(e.kind, VM_EXIT_BREAKPOINT);
	KT_ASSERT_OK(dbg__clear_breakpoint(vm, 0));
	struct vm_event ev = { .kind = VM_EVENT_IRQ, .vector = 0x33 };
	char why[80];
	bool can = vcpu__can_take(vm, &ev, why, sizeof(why));
	CU_ASSERT(!can);
	CU_ASSERT_STRING_EQUAL(why, "STI/MOV SS shadow");
	KT_ASSERT_OK(vcpu__inject(vm, &ev));
	e = next();
	expect_probe(e, 0x33, 0);
	uint64_t rip, fl;
	probe_frame(&rip, &fl);
	KT_ASSERT_EQ_U64(rip, sym("if1_start"));  /* after the shadowed NOP */
}

static void test_nmi(void)
{
	run_to_tag(2);
	struct vm_event nmi = { .kind = VM_EVENT_NMI };
	KT_ASSERT_OK(vcpu__inject(vm, &nmi));
	struct vm_exit e = next();
	expect_probe(e, 2, 0);
	/* Inside the NMI handler: NMIs are blocked until its IRET. */
	char why[80];
	CU_ASSERT(!vcpu__can_take(vm, &nmi, why, sizeof(why)));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "NMI blocked"));
	uint64_t rip1, fl;
	probe_frame(&rip1, &fl);
	KT_ASSERT_OK(vcpu__inject(vm, &nmi));        /* pending: waits for IRET */
	e = next();
	expect_probe(e, 2, 0);
	uint64_t rip2;
	probe_frame(&rip2, &fl);
	KT_ASSERT_EQ_U64(rip2, rip1);                /* after IRET, same interrupted RIP */

	/* Forced while blocked: nests inside the handler. */
	nmi.force = true;
	KT_ASSERT_OK(vcpu__inject(vm, &nmi));
	e = next();
	expect_probe(e, 2, 0);
	uint64_t rip3;
	probe_frame(&rip3, &fl);
	CU_ASSERT(rip3 > sym("stubs") && rip3 < sym("idtr"));  /* interrupted the handler */
	next();                                       /* the outer handler's probe is done; */
	run_to_tag(1);                                /* the guest goes on normally */
}

static void exception(unsigned vec, bool has_ec, uint32_t ec, bool has_pl, uint64_t pl,
		      bool force)
{
	run_to_tag(2);
	struct vm_event ev = { .kind = VM_EVENT_EXCEPTION, .vector = vec, .has_error_code = has_ec,
			       .error_code = ec, .has_payload = has_pl, .payload = pl,
			       .force = force };
	KT_ASSERT_OK(vcpu__inject(vm, &ev));
	struct vm_exit e = next();
	expect_probe(e, vec, has_ec ? ec : 0);
	if (vec == 14 && has_pl)
		KT_ASSERT_EQ_U64(e.hcall.args[2], pl);
	if (vec == 1 && has_pl)
		KT_ASSERT_EQ_U64(e.hcall.args[3] & 0xe00f, pl);
	/* Delivered right after the tag-2 hypercall, before the next insn. */
	uint64_t rip, fl;
	probe_frame(&rip, &fl);
	KT_ASSERT_EQ_U64(rip, sym("if1_start") + 12);
}

static void test_pf(void)
{
	/* The exception interrupts the guest right after the tag-2 NOP. */
	exception(14, true, 0x2, true, 0xdead000, false);
	exception(14, true, 0x15, true, 0xbeef000, true);
}

static void test_gp(void)
{
	exception(13, true, 0x18, false, 0, false);
	exception(13, true, 0x20, false, 0, true);
}

static void test_db(void)
{
	exception(1, false, 0, true, 0x4000, false);   /* BS */
	exception(1, false, 0, true, 0x0002, true);    /* B1 */
}

static void test_no_error_code(void)
{
	exception(6, false, 0, false, 0, false);       /* #UD */
	exception(0, false, 0, false, 0, true);        /* #DE */
}

static void test_bad_requests(void)
{
	struct vm_event ev = { .kind = VM_EVENT_EXCEPTION, .vector = 13 };
	CU_ASSERT_EQUAL(vcpu__inject(vm, &ev), -1);     /* #GP needs an error code */
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "error code"));
	ev.vector = 40;
	CU_ASSERT_EQUAL(vcpu__inject(vm, &ev), -1);
	ev.vector = 6;
	ev.has_payload = true;
	CU_ASSERT_EQUAL(vcpu__inject(vm, &ev), -1);
	CU_ASSERT(!vcpu__event_pending(vm));
}

static CU_TestInfo tests[] = {
	{ "pending IRQ with IF=1 is delivered", test_irq_pending_if1 },
	{ "pending IRQ waits while IF=0", test_irq_pending_waits_for_if },
	{ "forced IRQ ignores IF=0", test_irq_forced_ignores_if },
	{ "pending IRQ waits out the STI shadow", test_irq_sti_shadow },
	{ "NMI pending, blocked, forced", test_nmi },
	{ "#PF with error code and CR2", test_pf },
	{ "#GP with error code", test_gp },
	{ "#DB with DR6 payload", test_db },
	{ "exceptions without error code", test_no_error_code },
	{ "bad requests fail cleanly", test_bad_requests },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm inject", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
