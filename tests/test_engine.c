/* SPDX-License-Identifier: MIT */
/*
 * The case engine and its oracles, on the real linux64 guest: a clean case
 * passes with no finding; mutants (patches that break the entry or exit
 * path) make the right oracle fire; an unreachable stop and an impossible
 * injection SKIP with their reason; the same case twice ends in the same
 * digest.  Kernel-thread scenarios only: they need no ring-3 breakpoint,
 * which some KVM backends (kvm_pvm) never report.
 */
#include <string.h>
#include "testlib.h"
#include "engine.h"
#include "oracle.h"

#define GUEST KT_GUEST("kinject-linux64")

static struct session *clean;        /* kthreads, no patch: shared by most tests */

static const char clean_case[] =
	"kinject-case 1\n"
	"title test: NMI into a kernel thread\n"
	"variant linux64\n"
	"scenario kthreads\n"
	"step stop at hc_raise_irq hit 2 when cpl=0 if=1 ; inject nmi\n";

static int parse(const char *text, struct kcase *c)
{
	if (case__parse_string(text, "test.case", c)) {
		fprintf(stderr, "parse: %s\n", vmm__error());
		return -1;
	}
	return 0;
}

static struct session *open_for(const struct kcase *c, bool twice)
{
	struct engine_opts o = { .elf = GUEST, .twice = twice };
	struct session *s = engine__open(&o, c);

	if (!s)
		fprintf(stderr, "engine__open: %s\n", vmm__error());
	return s;
}

/* Parses `text`, runs it once on a session of its own opened with `o`:
 * 0, or -1 (a CUnit failure is recorded). */
static int run_with(const struct engine_opts *o, const char *text, struct case_result *r)
{
	struct kcase c;
	struct session *s;
	int rc;

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	s = engine__open(o, &c);
	if (!s)
		fprintf(stderr, "engine__open: %s\n", vmm__error());
	CU_ASSERT_FATAL(s != NULL);
	rc = engine__run_case(s, &c, r);
	CU_ASSERT_EQUAL(rc, 0);
	engine__close(s);
	return rc;
}

/* The same with the default options. */
static int run_alone(const char *text, struct case_result *r)
{
	const struct engine_opts o = { .elf = GUEST };

	return run_with(&o, text, r);
}

static void print_findings(const struct case_result *r)
{
	printf("\n  verdict %s: %s\n", verdict__name(r->verdict), r->reason);
	for (size_t i = 0; i < r->nfindings; i++)
		printf("    %s at %s: expected %s, actual %s\n", r->findings[i].oracle,
		       r->findings[i].where, r->findings[i].expected, r->findings[i].actual);
}

static bool fired(const struct case_result *r, const char *oracle)
{
	for (size_t i = 0; i < r->nfindings; i++)
		if (!strcmp(r->findings[i].oracle, oracle))
			return true;
	return false;
}

static int setup(void)
{
	struct kcase c;

	if (parse(clean_case, &c))
		return 1;
	clean = open_for(&c, false);
	return clean ? 0 : 1;
}

static int teardown(void)
{
	engine__close(clean);
	return 0;
}

static void test_clean_passes(void)
{
	struct kcase c;
	struct case_result r;

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	CU_ASSERT_EQUAL_FATAL(engine__baseline(clean, NULL)->kind, VERDICT_PASS);
	CU_ASSERT(engine__run_case(clean, &c, &r) == 0);
	if (r.verdict != VERDICT_PASS || r.nfindings)
		print_findings(&r);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(r.nfindings, 0);
	CU_ASSERT_EQUAL(r.steps_done, 1);
	CU_ASSERT_EQUAL(r.guest.kind, VERDICT_PASS);
	CU_ASSERT(r.exits > 0);
	printf("\n  [measured] clean NMI case: %llu exits, %llu us\n",
	       (unsigned long long)r.exits, (unsigned long long)r.usec);
}

/* A patched exit path: the return to kernel pops RDI's slot into RAX. */
static void test_mutant_transparency(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"patch restore_regs_and_return_to_kernel+0x11=58\n"
		"step stop at hc_raise_irq hit 3 when cpl=0 if=1 ; inject irq 0xff\n"
		"expect fail transparency\n";
	struct kcase c;
	struct case_result r;
	struct session *s;

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	CU_ASSERT_FALSE(engine__matches(clean, &c));
	s = open_for(&c, false);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(engine__run_case(s, &c, &r) == 0);
	if (!fired(&r, "transparency"))
		print_findings(&r);
	CU_ASSERT(fired(&r, "transparency"));
	CU_ASSERT_FALSE(fired(&r, "frame"));       /* the entry side is intact */
	CU_ASSERT_EQUAL(r.observed, VERDICT_FAIL);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);   /* expect fail transparency */
	engine__close(s);
}

/* A patched entry path: RDI pushed into RSI's frame slot. */
static void test_mutant_frame(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"patch asm_common_interrupt+6=57\n"
		"step stop at hc_raise_irq hit 3 when cpl=0 if=1 ; inject irq 0xff\n";
	struct case_result r;

	run_alone(text, &r);
	CU_ASSERT(fired(&r, "frame"));
	CU_ASSERT_EQUAL(r.verdict, VERDICT_FAIL);   /* expect pass, findings */
	for (size_t i = 0; i < r.nfindings; i++)
		if (!strcmp(r.findings[i].oracle, "frame")) {
			CU_ASSERT(strstr(r.findings[i].expected, "frame.rsi") != NULL);
			CU_ASSERT(strstr(r.findings[i].where, "hc_raise_irq") != NULL);
		}
}

/* A patched preemption branch that never schedules. */
static void test_mutant_preempt(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"patch retint_kernel_preempt+7=0f1f440000\n"
		"step stop at hc_raise_irq hit 7 when cpl=0 if=1 ; inject irq 0xfd\n"
		"expect fail preempt\n";
	struct case_result r;

	run_alone(text, &r);
	if (!fired(&r, "preempt"))
		print_findings(&r);
	CU_ASSERT(fired(&r, "preempt"));
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
}

/* Tail mode (opt-in): the clean case ends soon after the NMI's context
 * resumed, far cheaper than the full run, and still passes; a mutant on
 * the return path is still caught inside the tail. */
static void test_tail_mode(void)
{
	static const char mutant[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"patch retint_kernel_preempt+7=0f1f440000\n"
		"step stop at hc_raise_irq hit 7 when cpl=0 if=1 ; inject irq 0xfd\n"
		"expect fail preempt\n";
	struct engine_opts o = { .elf = GUEST, .tail_exits = 100 };
	struct case_result full, tail;
	struct kcase c;
	struct session *s;

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &full) == 0);
	s = engine__open(&o, &c);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(engine__run_case(s, &c, &tail) == 0);
	if (tail.verdict != VERDICT_PASS || tail.nfindings)
		print_findings(&tail);
	CU_ASSERT_EQUAL(tail.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(tail.nfindings, 0);
	if (!(tail.exits * 4 < full.exits))
		printf("\n  tail run took %llu exits, the full run %llu: expected far fewer\n",
		       (unsigned long long)tail.exits, (unsigned long long)full.exits);
	CU_ASSERT(tail.exits * 4 < full.exits);
	engine__close(s);

	run_with(&o, mutant, &tail);
	if (!fired(&tail, "preempt"))
		print_findings(&tail);
	CU_ASSERT(fired(&tail, "preempt"));
}

/* Convergence and chaining: a clean case ends at its resume (far fewer
 * exits, same verdict); the next stop of the same run starts from the
 * checkpoint and judges exactly as from READY; a mutant that loses a
 * register neither converges nor escapes. */
static void test_converge_and_chain(void)
{
	static const char later[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"step stop at hc_raise_irq hit 3 when cpl=0 if=1 ; inject nmi\n";
	static const char mutant[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"patch restore_regs_and_return_to_kernel+0x11=58\n"
		"step stop at hc_raise_irq hit 3 when cpl=0 if=1 ; inject irq 0xff\n"
		"expect fail transparency\n";
	struct engine_opts o = { .elf = GUEST, .converge = true };
	struct case_result full, conv, chained, ready;
	struct kcase c, c2;
	struct session *s;

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &full) == 0);
	s = engine__open(&o, &c);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(engine__run_case(s, &c, &conv) == 0);
	if (!conv.converged || conv.nfindings)
		print_findings(&conv);
	CU_ASSERT(conv.converged);
	CU_ASSERT_EQUAL(conv.verdict, VERDICT_PASS);
	CU_ASSERT(conv.exits * 4 < full.exits);

	/* hit 3 after hit 2: two matching arrivals up to the checkpoint. */
	CU_ASSERT_FATAL(parse(later, &c2) == 0);
	struct engine_chain ch = { .from_addr = c.steps[0].stop.addr, .from_hit = 2, .before = 2 };
	CU_ASSERT(engine__run_case_from(s, &c2, &ch, &chained) == 0);
	CU_ASSERT(chained.chained);
	CU_ASSERT(engine__run_case(s, &c2, &ready) == 0);
	CU_ASSERT_FALSE(ready.chained);
	CU_ASSERT_EQUAL(chained.verdict, ready.verdict);
	CU_ASSERT_EQUAL(chained.nfindings, ready.nfindings);
	CU_ASSERT_EQUAL(chained.converged, ready.converged);
	CU_ASSERT(chained.exits < ready.exits);
	/* A hint naming a stop the checkpoint is not at: from READY. */
	ch.from_hit = 7;
	CU_ASSERT(engine__run_case_from(s, &c2, &ch, &chained) == 0);
	CU_ASSERT_FALSE(chained.chained);
	engine__close(s);

	run_with(&o, mutant, &conv);
	CU_ASSERT(fired(&conv, "transparency"));
	CU_ASSERT_FALSE(conv.converged);
}

/* Bug class 16: a signal in exit_to_user_work()'s IRQs-on window is seen
 * by the variant's re-test; without the re-test it leaves pending and the
 * exitwork oracle fires at the IRET to ring 3. */
static void test_exitwork(void)
{
#define SIG_WINDOW_STEPS                                                                        \
	"mode trace\n"                                                                          \
	"step stop at user:user_spin_loop+0x43 hit 5 when cpl=3 ; inject irq 0xfc\n"            \
	"step stop at exit_work_window hit 1 when if=1 ; inject irq 0xfc\n"
	static const char clean_text[] =
		"kinject-case 3\nvariant linux64\nscenario user-spin\n" SIG_WINDOW_STEPS;
	static const char mutant[] =
		"kinject-case 3\nvariant linux64\nscenario user-spin\n"
		"patch retint_user_exit_work_call+0x12=6690\n" SIG_WINDOW_STEPS;
	struct case_result r;

	run_alone(clean_text, &r);
	if (r.verdict != VERDICT_PASS || r.nfindings)
		print_findings(&r);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(r.steps_done, 2);

	run_alone(mutant, &r);
	if (!fired(&r, "exitwork"))
		print_findings(&r);
	CU_ASSERT(fired(&r, "exitwork"));
#undef SIG_WINDOW_STEPS
}

static void test_unreachable_skips(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"step stop at hc_raise_irq when cpl=3 ; inject nmi\n";
	struct kcase c;
	struct case_result r;

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &r) == 0);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_SKIP);
	CU_ASSERT(strstr(r.reason, "state not reached: step 1") != NULL);
	CU_ASSERT_EQUAL(r.steps_done, 0);
}

/* hc_raise_irq is also called with IF=0 (the scenario's IRQs-off section). */
static void test_impossible_skips(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"step stop at hc_raise_irq when cpl=0 if=0 ; inject irq 0xff\n";
	static const char forced[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"step stop at hc_raise_irq when cpl=0 if=0 ; inject irq 0xff force\n";
	struct kcase c;
	struct case_result r;

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &r) == 0);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_SKIP);
	CU_ASSERT(strstr(r.reason, "architecturally impossible: IF=0") != NULL);
	/* Forced, it is delivered and judged. */
	CU_ASSERT_FATAL(parse(forced, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &r) == 0);
	CU_ASSERT_EQUAL(r.steps_done, 1);
	CU_ASSERT(r.verdict == VERDICT_PASS || r.verdict == VERDICT_FAIL);
}

static void test_nested(void)
{
	static const char text[] =
		"kinject-case 1\n"
		"variant linux64\n"
		"scenario kthreads\n"
		"step stop at hc_raise_irq hit 2 when cpl=0 if=1 ; inject nmi\n"
		"step stop at do_nmi when nmi_blocked=1 ; inject irq 0xff force\n";
	struct kcase c;
	struct case_result r;

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	CU_ASSERT(engine__run_case(clean, &c, &r) == 0);
	if (r.verdict != VERDICT_PASS)
		print_findings(&r);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(r.steps_done, 2);
}

static void test_determinism(void)
{
	struct kcase c;
	struct case_result r1, r2;
	struct session *s;

	/* With --twice each case runs twice (the oracle's own rerun), and two
	 * separate calls of the same case end in the same state as well. */
	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	s = open_for(&c, true);
	CU_ASSERT_FATAL(s != NULL);
	CU_ASSERT(engine__run_case(s, &c, &r1) == 0);
	CU_ASSERT(engine__run_case(s, &c, &r2) == 0);
	CU_ASSERT_EQUAL(r1.runs, 2);
	CU_ASSERT_FALSE(fired(&r1, "determinism"));
	CU_ASSERT_FALSE(fired(&r2, "determinism"));
	CU_ASSERT(r1.digest != 0);
	KT_ASSERT_EQ_U64(r2.digest, r1.digest);
	engine__close(s);
}

static void test_registry(void)
{
	size_t n;
	const struct oracle *const *all = oracle__all(&n);

	CU_ASSERT(n >= 6);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT(all[i]->name && all[i]->summary && all[i]->summary[0]);
		CU_ASSERT_PTR_EQUAL(oracle__find(all[i]->name), all[i]);
	}
	CU_ASSERT_PTR_NULL(oracle__find("nonesuch"));
}

static CU_TestInfo tests[] = {
	{ "oracle registry", test_registry },
	{ "a clean case passes with no finding", test_clean_passes },
	{ "mutant exit path: transparency fires", test_mutant_transparency },
	{ "mutant entry path: frame fires", test_mutant_frame },
	{ "mutant preemption branch: preempt fires", test_mutant_preempt },
	{ "tail mode: cheaper, clean still passes, mutant still caught", test_tail_mode },
	{ "convergence ends clean cases at the resume; chained cases judge as from READY",
	  test_converge_and_chain },
	{ "exitwork: a signal in the exit-work window is not lost", test_exitwork },
	{ "unreachable stop: SKIP", test_unreachable_skips },
	{ "impossible injection without force: SKIP with the reason", test_impossible_skips },
	{ "nested steps: IRQ in the NMI handler", test_nested },
	{ "determinism: same digest twice", test_determinism },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "engine", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
