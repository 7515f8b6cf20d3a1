/* SPDX-License-Identifier: MIT */
/*
 * The one CUnit runner every test binary uses.  A test binary is a list of
 * (title, function) pairs run as one suite.  Results stay distinct: CUnit
 * failures -> exit 1, a suite set-up error -> exit 2, and a suite that
 * needs /dev/kvm where it is truly absent -> SKIP (exit 77, which ctest
 * reports as "Skipped") after printing the reason loudly.
 */
#ifndef KINJECT_TESTLIB_H
#define KINJECT_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>
#include "vmm.h"
#include <CUnit/CUnit.h>

#define KT_EXIT_SKIP 77

struct kt_suite {
	const char *name;
	bool needs_kvm;              /* SKIP (loudly) where /dev/kvm is absent */
	int (*setup)(void);          /* 0 = ok; nonzero = suite error */
	int (*teardown)(void);
	CU_TestInfo *tests;          /* CU_TEST_INFO_NULL-terminated */
};

int kt_main(const struct kt_suite *suite);

/* A VM with guest ELF `path` loaded and entered in long mode with `cmdline`;
 * NULL (after printing why) on failure. */
struct vm *kt_boot(const char *path, const char *cmdline, struct elf_image *img);

/* The address of symbol `name` of `img` (sym__resolve syntax); 0 and a
 * CUnit failure naming the symbol if it does not resolve. */
uint64_t kt_sym(const struct elf_image *img, const char *name);
/* One vcpu__run with at most `max_exits` exits; a host error is a CUnit
 * failure and comes back as VM_EXIT_UNEXPECTED. */
struct vm_exit kt_run(struct vm *vm, uint64_t max_exits);

/* Build-tree paths, for tests that boot guests. */
#ifndef KINJECT_BUILD_DIR
#error "KINJECT_BUILD_DIR must be defined by the build"
#endif
#define KT_GUEST(name) KINJECT_BUILD_DIR "/guest/" name ".elf"

/* Assertions that print what was expected and what came instead. */
#define KT_ASSERT_EQ_U64(actual, expected) do { \
	unsigned long long a_ = (unsigned long long)(actual), e_ = (unsigned long long)(expected); \
	if (a_ != e_) { \
		char m_[256]; \
		snprintf(m_, sizeof(m_), "%s: expected 0x%llx (%s), got 0x%llx", #actual, e_, #expected, a_); \
		CU_assertImplementation(CU_FALSE, __LINE__, m_, __FILE__, "", CU_FALSE); \
	} else CU_PASS(#actual); \
} while (0)

#define KT_ASSERT_OK(expr) do { \
	if ((expr) != 0) { \
		char m_[512]; \
		snprintf(m_, sizeof(m_), "%s failed: %s", #expr, vmm__error()); \
		CU_assertImplementation(CU_FALSE, __LINE__, m_, __FILE__, "", CU_FALSE); \
	} else CU_PASS(#expr); \
} while (0)

#endif
