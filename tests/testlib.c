/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <CUnit/Basic.h>
#include "testlib.h"
#include "vmm.h"

int kt_main(const struct kt_suite *s)
{
	if (s->needs_kvm && kvm__unavailable()) {
		fprintf(stderr, "\n*** SKIP %s: needs /dev/kvm: %s ***\n\n", s->name, vmm__error());
		printf("SKIP: %s (no /dev/kvm)\n", s->name);
		return KT_EXIT_SKIP;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite suite = CU_add_suite(s->name, s->setup, s->teardown);
	for (CU_TestInfo *t = s->tests; suite && t->pName; t++)
		CU_add_test(suite, t->pName, t->pTestFunc);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	unsigned suites_failed = CU_get_number_of_suites_failed();
	unsigned tests_run = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	if (suites_failed)
		return 2;
	if (tests_run == 0) {
		fprintf(stderr, "%s: no test ran\n", s->name);
		return 2;
	}
	return failed ? 1 : 0;
}

uint64_t kt_sym(const struct elf_image *img, const char *name)
{
	uint64_t a = 0;

	if (sym__resolve(&img->symtab, name, &a)) {
		char m[300];
		snprintf(m, sizeof(m), "symbol %s: %s", name, vmm__error());
		CU_FAIL(m);
	}
	return a;
}

struct vm_exit kt_run(struct vm *vm, uint64_t max_exits)
{
	struct vm_exit e;

	if (vcpu__run(vm, &e, max_exits)) {
		CU_FAIL(vmm__error());
		e.kind = VM_EXIT_UNEXPECTED;
	}
	return e;
}

struct vm *kt_boot(const char *path, const char *cmdline, struct elf_image *img)
{
	struct vm_config cfg = { 0 };
	struct vm *vm = vm__create(&cfg);

	if (!vm || elf__load(vm, path, img) || vm__boot_long_mode(vm, img->entry, cmdline)) {
		fprintf(stderr, "boot %s: %s\n", path, vmm__error());
		if (vm)
			vm__destroy(vm);
		return NULL;
	}
	return vm;
}
