/* SPDX-License-Identifier: MIT */
/*
 * The testbed kernel's scenarios, booted through the harness's guest
 * session (harness/guest.c, which also passes the host-quirk options such
 * as syscall=0 / ldt=0): each one must PASS, and `all` must print the same
 * console text and reach the same verdict on two boots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testlib.h"
#include "kinject.h"

#define MAX_EXITS 20000000ULL

/* Boots `scenario`, runs it to its verdict; console text into *console
 * (malloc'd) if asked. */
static struct verdict run_scenario(const char *scenario, char **console)
{
	struct guest g;
	struct guest_opts o = { 0 };
	struct verdict v;

	memset(&v, 0, sizeof(v));
	o.elf = KT_GUEST("kinject-linux64");
	o.scenario = scenario;
	if (guest__boot(&g, &o)) {
		verdict__set(&v, VERDICT_ERROR, "boot", "%s", vmm__error());
		return v;
	}
	guest__run_to_verdict(&g, &v, MAX_EXITS);
	if (console) {
		size_t n;
		const char *c = vm__console(g.vm, &n);
		*console = malloc(n + 1);
		memcpy(*console, c, n);
		(*console)[n] = 0;
	}
	guest__destroy(&g);
	return v;
}

static void expect_pass(const char *scenario)
{
	struct verdict v = run_scenario(scenario, NULL);
	char m[700];

	snprintf(m, sizeof(m), "scenario %s: expected PASS, got %s (%s): %s", scenario,
		 verdict__name(v.kind), v.what, v.detail);
	if (v.kind != VERDICT_PASS)
		fprintf(stderr, "%s\n", m);
	CU_assertImplementation(v.kind == VERDICT_PASS, __LINE__, m, __FILE__, "", CU_FALSE);
}

static void test_user_spin(void) { expect_pass("user-spin"); }
static void test_syscalls(void) { expect_pass("syscalls"); }
static void test_ss16(void) { expect_pass("ss16"); }
static void test_signals(void) { expect_pass("signals"); }
static void test_kthreads(void) { expect_pass("kthreads"); }
static void test_preempt(void) { expect_pass("preempt"); }

static void test_all_twice_identical(void)
{
	char *c1 = NULL, *c2 = NULL;
	struct verdict v1 = run_scenario("all", &c1), v2 = run_scenario("all", &c2);

	KT_ASSERT_EQ_U64(v1.kind, VERDICT_PASS);
	KT_ASSERT_EQ_U64(v2.kind, VERDICT_PASS);
	if (v1.kind != VERDICT_PASS)
		fprintf(stderr, "all: %s: %s\n", v1.what, v1.detail);
	CU_ASSERT_STRING_EQUAL(v1.what, v2.what);
	CU_ASSERT_STRING_EQUAL(v1.detail, v2.detail);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	if (strcmp(c1, c2)) {
		size_t i = 0;
		while (c1[i] && c1[i] == c2[i])
			i++;
		fprintf(stderr, "all: console differs at byte %zu:\n--- first: %.80s\n--- second: %.80s\n",
			i, c1 + i, c2 + i);
	}
	CU_ASSERT(strcmp(c1, c2) == 0);
	CU_ASSERT(strlen(c1) > 0);
	free(c1);
	free(c2);
}

static CU_TestInfo tests[] = {
	{ "user-spin passes", test_user_spin },
	{ "syscalls passes", test_syscalls },
	{ "ss16 passes", test_ss16 },
	{ "signals passes", test_signals },
	{ "kthreads passes", test_kthreads },
	{ "preempt passes", test_preempt },
	{ "all twice: PASS, identical console and verdict", test_all_twice_identical },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = {
		.name = "guest scenarios", .needs_kvm = true, .tests = tests,
	};
	return kt_main(&suite);
}
