/* SPDX-License-Identifier: MIT */
/*
 * Trace mode on the real linux64 guest: a clean NMI into a kernel thread
 * is single-stepped through the paranoid NMI path with no finding and the
 * trace visits its labels; mutants of the bad-IRET path (swapgs NOPed, the
 * CR3 switch NOPed) make the gs and cr3 oracles fire at the very
 * instruction that uses the wrong side; a step budget too small is a hang;
 * a fast case on a traced session steps nothing.
 */
#include <string.h>
#include "testlib.h"
#include "engine.h"
#include "oracle.h"

#define GUEST KT_GUEST("kinject-linux64")
#define MAX_SEEN 4096

/* What the step printer saw, for the label checks. */
static struct {
	uint64_t rip[MAX_SEEN];
	size_t n;
	uint64_t calls, with_findings;
	bool cpl3_or_gap;
} seen;

static struct session *clean;

static const char clean_case[] =
	"kinject-case 1\n"
	"title test: NMI into a kernel thread, traced\n"
	"variant linux64\n"
	"scenario kthreads\n"
	"step stop at hc_raise_irq hit 2 when cpl=0 if=1 ; inject nmi\n"
	"mode trace\n";

/* The bad IRET of user-spin (stop at the IRET to ring 3, #PF injected). */
#define BAD_IRET_CASE(patch)                                                          \
	"kinject-case 1\n"                                                            \
	"variant linux64\n"                                                           \
	"scenario user-spin\n"                                                        \
	patch                                                                         \
	"step stop at irq_return_iret hit 3 when cpl=0 ; inject exception pf error 0x0 cr2 0x401000\n" \
	"mode trace\n"

static void record(void *arg, const struct engine_step *st)
{
	(void)arg;
	seen.calls++;
	if (seen.n < MAX_SEEN)
		seen.rip[seen.n++] = st->rip;
	if (st->nfindings)
		seen.with_findings++;
	if (st->cpl == 3 || st->gap)
		seen.cpl3_or_gap = true;
}

static int parse(const char *text, struct kcase *c)
{
	if (case__parse_string(text, "test.case", c)) {
		fprintf(stderr, "parse: %s\n", vmm__error());
		return -1;
	}
	return 0;
}

static struct session *open_for(const struct kcase *c)
{
	struct engine_opts o = { .elf = GUEST, .on_step = record };
	struct session *s = engine__open(&o, c);

	if (!s)
		fprintf(stderr, "engine__open: %s\n", vmm__error());
	return s;
}

static void print_findings(const struct case_result *r)
{
	printf("\n  verdict %s: %s (%llu steps, %u gaps)\n", verdict__name(r->verdict), r->reason,
	       (unsigned long long)r->steps, r->gaps);
	for (size_t i = 0; i < r->nfindings; i++)
		printf("    %s at %s: expected %s, actual %s\n", r->findings[i].oracle,
		       r->findings[i].where, r->findings[i].expected, r->findings[i].actual);
}

static const struct finding *first_of(const struct case_result *r, const char *oracle)
{
	for (size_t i = 0; i < r->nfindings; i++)
		if (!strcmp(r->findings[i].oracle, oracle))
			return &r->findings[i];
	return NULL;
}

static bool visited(const char *sym)
{
	const struct symbol *s = sym__find(engine__symtab(clean), sym);

	for (size_t i = 0; s && i < seen.n; i++)
		if (seen.rip[i] == s->addr)
			return true;
	return false;
}

static int setup(void)
{
	struct kcase c;

	if (parse(clean_case, &c))
		return 1;
	clean = open_for(&c);
	return clean ? 0 : 1;
}

static int teardown(void)
{
	engine__close(clean);
	return 0;
}

static void test_clean_nmi(void)
{
	struct kcase c;
	struct case_result r;
	static const char *const labels[] = {
		"asm_exc_nmi", "first_nmi", "end_repeat_nmi", "paranoid_entry",
		"paranoid_entry_after_gs", "nmi_kernel_state", "do_nmi", "nmi_restore", "nmi_iret",
	};

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(engine__run_case(clean, &c, &r), 0);
	if (r.verdict != VERDICT_PASS || r.nfindings)
		print_findings(&r);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(r.nfindings, 0);
	CU_ASSERT(r.traced);
	CU_ASSERT(r.steps > 50 && r.steps < 2000);
	KT_ASSERT_EQ_U64(seen.calls, r.steps);
	CU_ASSERT_EQUAL(seen.with_findings, 0);
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		if (!visited(labels[i]))
			printf("\n  the trace never reached %s\n", labels[i]);
		CU_ASSERT(visited(labels[i]));
	}
	/* The last step is the interrupted instruction, resumed. */
	CU_ASSERT(seen.n > 0 && seen.rip[seen.n - 1] == sym__find(engine__symtab(clean),
								  "hc_raise_irq")->addr);
	case__free(&c);
}

static void test_fast_case_steps_nothing(void)
{
	struct kcase c;
	struct case_result r;

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	c.mode = CASE_MODE_FAST;
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(engine__run_case(clean, &c, &r), 0);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT(!r.traced);
	KT_ASSERT_EQ_U64(r.steps, 0);
	KT_ASSERT_EQ_U64(seen.calls, 0);
	case__free(&c);
}

static void test_step_budget_is_a_hang(void)
{
	struct kcase c;
	struct case_result r;
	const struct finding *f;

	CU_ASSERT_FATAL(parse(clean_case, &c) == 0);
	c.budget_steps = 20;
	CU_ASSERT_EQUAL(engine__run_case(clean, &c, &r), 0);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_FAIL);
	KT_ASSERT_EQ_U64(r.steps, 20);
	f = first_of(&r, "fatal");
	CU_ASSERT_PTR_NOT_NULL(f);
	CU_ASSERT(f && strstr(f->actual, "hang") && strstr(f->actual, "single-steps"));
	case__free(&c);
}

/* One mutant: `oracle` fires first at `where` (a symbol, exactly). */
static void run_mutant(const char *text, const char *oracle, const char *where)
{
	struct kcase c;
	struct case_result r;
	struct session *s;
	const struct finding *f;
	char want[64];

	CU_ASSERT_FATAL(parse(text, &c) == 0);
	s = open_for(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(engine__run_case(s, &c, &r), 0);
	f = first_of(&r, oracle);
	if (!f)
		print_findings(&r);
	CU_ASSERT_PTR_NOT_NULL(f);
	snprintf(want, sizeof(want), "%s: ", where);
	if (f && strncmp(f->where, want, strlen(want)))
		printf("\n  %s fired at %s, not at %s\n", oracle, f->where, where);
	CU_ASSERT(f && !strncmp(f->where, want, strlen(want)));
	CU_ASSERT_EQUAL(r.observed, VERDICT_FAIL);
	engine__close(s);
	case__free(&c);
}

static void test_mutant_swapgs(void)
{
	run_mutant(BAD_IRET_CASE("patch sync_regs+0x32=0f1f00\n") "expect fail gs\n", "gs", "fixup_bad_iret");
}

static void test_mutant_cr3(void)
{
	run_mutant(BAD_IRET_CASE("patch sync_regs+0x48=0f1f00\n") "expect fail cr3\n", "cr3",
		   "fixup_bad_iret");
}

static void test_clean_bad_iret(void)
{
	struct kcase c;
	struct case_result r;
	struct session *s;

	CU_ASSERT_FATAL(parse(BAD_IRET_CASE(""), &c) == 0);
	s = open_for(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL(engine__run_case(s, &c, &r), 0);
	if (r.verdict != VERDICT_PASS || r.nfindings)
		print_findings(&r);
	CU_ASSERT_EQUAL(r.verdict, VERDICT_PASS);
	CU_ASSERT_EQUAL(r.nfindings, 0);
	CU_ASSERT(r.steps > 100);
	engine__close(s);
	case__free(&c);
}

static CU_TestInfo tests[] = {
	{ "clean NMI traced: no finding, the NMI labels visited", test_clean_nmi },
	{ "mode fast on a session: nothing stepped", test_fast_case_steps_nothing },
	{ "step budget exceeded: a hang", test_step_budget_is_a_hang },
	{ "clean bad IRET traced: no finding", test_clean_bad_iret },
	{ "bad IRET without swapgs: gs fires at fixup_bad_iret", test_mutant_swapgs },
	{ "bad IRET without the CR3 switch: cr3 fires at fixup_bad_iret", test_mutant_cr3 },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "trace", .needs_kvm = true, .setup = setup,
			      .teardown = teardown, .tests = tests };
	return kt_main(&s);
}
