/* SPDX-License-Identifier: MIT */
/*
 * Mutation testing (harness/mutate.h) on the real linux64 guest:
 * generation finds at least one site of every class; the unmutated guest
 * passes the whole built-in and regression set (the control); the mutants
 * this host can reach are killed, each by the oracle that is meant to see
 * that bug.  Only a handful of mutants run, to stay well under 3 minutes
 * (`kinject mutate` runs them all).
 */
#include <string.h>
#include "testlib.h"
#include "mutate.h"

#define GUEST KT_GUEST("kinject-linux64")

static struct mutant_set set;
static struct mutate_ctx *ctx;

static int setup(void)
{
	struct mutate_opts o = { .elf = GUEST, .variant = "linux64",
				 .cases_dir = KINJECT_SOURCE_DIR "/cases" };

	if (mutate__generate_guest(GUEST, "linux64", &set)) {
		fprintf(stderr, "mutate__generate_guest: %s\n", vmm__error());
		return -1;
	}
	ctx = mutate__open(&o);
	if (!ctx) {
		fprintf(stderr, "mutate__open: %s\n", vmm__error());
		return -1;
	}
	return 0;
}

static int teardown(void)
{
	mutate__close(ctx);
	mutate__free(&set);
	return 0;
}

static void test_every_class_has_sites(void)
{
	for (unsigned k = 0; k < MUT_NCLASSES; k++) {
		char m[128];
		snprintf(m, sizeof(m), "class %s: %zu mutants", mutate__class_name(k), set.per_class[k]);
		CU_assertImplementation(set.per_class[k] >= 1, __LINE__, m, __FILE__, "", CU_FALSE);
	}
	/* Every patch stays inside the entry text and names a symbol. */
	for (size_t i = 0; i < set.n; i++) {
		CU_ASSERT(set.m[i].npatches >= 1);
		CU_ASSERT(strchr(set.m[i].patches[0].where, '+') || set.m[i].patches[0].where[0] != '0');
	}
}

/* The saved-IF mutant that merely drops the check is a 2-byte NOP on the
 * jcc right after the test of the frame's RFLAGS. */
static void test_generation_shapes(void)
{
	bool nop_if = false, moved = false;

	for (size_t i = 0; i < set.n; i++) {
		const struct mutant *m = &set.m[i];
		if (m->cls == MUT_PREEMPT_IF && strstr(m->what, "saved-IF check removed"))
			nop_if = true;
		if (m->cls == MUT_IRQSTACK) {
			moved = m->target_stop > m->site;
			CU_ASSERT_EQUAL(m->npatches, 1);
		}
		if (m->cls == MUT_SWAPGS) {
			CU_ASSERT_EQUAL(m->patches[0].len, 3);
			CU_ASSERT_EQUAL(m->patches[0].bytes[0], 0x0f);
		}
	}
	CU_ASSERT(nop_if);
	CU_ASSERT(moved);
}

static void test_control_is_clean(void)
{
	unsigned ran = 0, skipped = 0;
	char why[512] = "";
	int rc = mutate__control(ctx, &ran, &skipped, why, sizeof(why));

	if (rc)
		printf("\n  control: %s\n", why);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(ran >= mutate__ndrivers());
}

/* Runs the first mutant of class `cls` whose description contains `what`
 * (and whose site description contains `site`, if given) and checks that
 * `oracle` is among those that killed it. */
static void expect_killed(enum mutant_class cls, const char *what, const char *site,
			  const char *oracle)
{
	struct mutant_result r;
	const struct mutant *m = NULL;
	char msg[1024];

	for (size_t i = 0; i < set.n && !m; i++)
		if (set.m[i].cls == cls && (!what || strstr(set.m[i].what, what)) &&
		    (!site || strstr(set.m[i].site_desc, site)))
			m = &set.m[i];
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	mutate__run(ctx, m, &r);
	snprintf(msg, sizeof(msg), "%s: %s by '%s' (expected %s): %s", m->name,
		 mutate__status_name(r.status), r.oracles, oracle, r.reason);
	if (r.status != MUT_KILLED || !strstr(r.oracles, oracle))
		printf("\n  %s\n", msg);
	CU_assertImplementation(r.status == MUT_KILLED && strstr(r.oracles, oracle) != NULL,
				__LINE__, msg, __FILE__, "", CU_FALSE);
}

static void test_preempt_if_killed_by_preempt(void)
{
	expect_killed(MUT_PREEMPT_IF, "saved-IF check removed", NULL, "preempt");
}

static void test_kernel_restore_killed_by_transparency(void)
{
	/* r8: caller-saved, so do_irq's value is what leaks (a lost restore of
	 * a callee-saved register is equivalent: C preserved it). */
	expect_killed(MUT_REGS, "lost: 'popq %r8'", "restore_regs_and_return_to_kernel", "transparency");
}

static void test_irqstack_order_killed_by_frame(void)
{
	expect_killed(MUT_IRQSTACK, NULL, NULL, "transparency");
}

static void test_paranoid_cs_killed(void)
{
	expect_killed(MUT_PARANOID_CS, NULL, NULL, "fatal");
}

static void test_exit_swapgs_killed(void)
{
	expect_killed(MUT_SWAPGS, NULL, "swapgs_restore_after_cr3", "fatal");
}

static void test_parse_patch(void)
{
	struct case_patch p;

	CU_ASSERT_EQUAL(case__parse_patch("retint_kernel+0xb=6690", &p), 0);
	CU_ASSERT_EQUAL(p.len, 2);
	CU_ASSERT_STRING_EQUAL(p.where, "retint_kernel+0xb");
	CU_ASSERT_EQUAL(case__parse_patch("retint_kernel=", &p), -1);
	CU_ASSERT_EQUAL(case__parse_patch("retint_kernel=6 90", &p), -1);
	CU_ASSERT_EQUAL(case__parse_patch("x=1", &p), -1);
}

static CU_TestInfo tests[] = {
	{ "generation finds every class", test_every_class_has_sites },
	{ "generated mutants have the expected shape", test_generation_shapes },
	{ "--patch syntax", test_parse_patch },
	{ "control: the unmutated guest is clean", test_control_is_clean },
	{ "saved-IF check dropped: preempt kills it", test_preempt_if_killed_by_preempt },
	{ "return-to-kernel restore dropped: transparency kills it",
	  test_kernel_restore_killed_by_transparency },
	{ "IRQ stack marked after the switch: transparency kills it", test_irqstack_order_killed_by_frame },
	{ "paranoid entry trusts CS: killed", test_paranoid_cs_killed },
	{ "exit swapgs dropped: fatal kills it", test_exit_swapgs_killed },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "mutate", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
