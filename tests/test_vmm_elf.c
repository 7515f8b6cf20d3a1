/* SPDX-License-Identifier: MIT */
/*
 * ELF loader and symbol table: a real test guest loads and resolves both
 * ways; bad files made at test time (truncated copies, a text file, an
 * empty file, a 32-bit ELF, a patched-to-aarch64 ELF) fail with one line
 * naming the file and the problem.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"
#include "vmm.h"

#define GUEST KT_GUEST("test-probe")

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(n ? n : 1);
	if (b && fread(b, 1, n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = n;
	return b;
}

static char *write_tmp(const char *tag, const void *data, size_t len)
{
	static char path[4][128];
	static int k;
	char *p = path[k++ % 4];
	snprintf(p, 128, "/tmp/kinject-elf-%s-%d.elf", tag, (int)getpid());
	FILE *f = fopen(p, "wb");
	if (!f)
		return NULL;
	if (len)
		fwrite(data, 1, len, f);
	fclose(f);
	return p;
}

/* The load must fail, the error must be one line naming the file and
 * containing `what`. */
static void expect_bad(const char *path, const char *what)
{
	struct elf_image img;
	int r = elf__open(path, &img, NULL);
	const char *err = vmm__error();
	CU_ASSERT_EQUAL(r, -1);
	if (r == 0) {
		elf__free(&img);
		if (!strncmp(path, "/tmp/kinject-elf-", 17))
			unlink(path);
		return;
	}
	if (!strstr(err, path) || !strstr(err, what) || strchr(err, '\n')) {
		char m[600];
		snprintf(m, sizeof(m), "error for %s should name the file and say \"%s\": got \"%s\"",
			 path, what, err);
		fprintf(stderr, "%s\n", m);
		CU_FAIL("error message");
	}
	/* Only ever delete what this test made (never e.g. /etc/passwd). */
	if (!strncmp(path, "/tmp/kinject-elf-", 17))
		unlink(path);
}

static void test_good(void)
{
	struct elf_image img;
	KT_ASSERT_OK(elf__open(GUEST, &img, NULL));
	KT_ASSERT_EQ_U64(img.entry, 0x100000);
	CU_ASSERT(img.symtab.n > 5);
	for (size_t i = 1; i < img.symtab.n; i++)
		CU_ASSERT(img.symtab.syms[i - 1].addr <= img.symtab.syms[i].addr);

	const struct symbol *ml = sym__find(&img.symtab, "main_loop");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ml);
	const struct symbol *st = sym__find(&img.symtab, "_start");
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	KT_ASSERT_EQ_U64(st->addr, 0x100000);

	uint64_t a;
	KT_ASSERT_OK(sym__resolve(&img.symtab, "main_loop", &a));
	KT_ASSERT_EQ_U64(a, ml->addr);
	KT_ASSERT_OK(sym__resolve(&img.symtab, "main_loop+0x12", &a));
	KT_ASSERT_EQ_U64(a, ml->addr + 0x12);
	KT_ASSERT_OK(sym__resolve(&img.symtab, "main_loop+18", &a));
	KT_ASSERT_EQ_U64(a, ml->addr + 18);
	KT_ASSERT_OK(sym__resolve(&img.symtab, "0xffffffff80001000", &a));
	KT_ASSERT_EQ_U64(a, 0xffffffff80001000ULL);
	CU_ASSERT_EQUAL(sym__resolve(&img.symtab, "no_such_symbol", &a), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "no_such_symbol"));
	CU_ASSERT_EQUAL(sym__resolve(&img.symtab, "main_loop+zz", &a), -1);
	CU_ASSERT_EQUAL(sym__resolve(&img.symtab, "", &a), -1);

	/* Address -> symbol. */
	CU_ASSERT_PTR_EQUAL(sym__at(&img.symtab, ml->addr), ml);
	const struct symbol *in = sym__at(&img.symtab, ml->addr + 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	CU_ASSERT_STRING_EQUAL(in->name, "main_loop");
	char buf[64];
	CU_ASSERT_STRING_EQUAL(sym__describe(&img.symtab, ml->addr + 3, buf, sizeof(buf)),
			       "main_loop+0x3");
	CU_ASSERT_STRING_EQUAL(sym__describe(&img.symtab, ml->addr, buf, sizeof(buf)), "main_loop");
	CU_ASSERT_PTR_NULL(sym__at(&img.symtab, 0x10));
	CU_ASSERT_STRING_EQUAL(sym__describe(&img.symtab, 0x10, buf, sizeof(buf)), "0x10");
	elf__free(&img);
}

static void test_load_into_vm(void)
{
	struct vm_config cfg = { 0 };
	struct vm *vm = vm__create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	struct elf_image img;
	KT_ASSERT_OK(elf__load(vm, GUEST, &img));
	/* _start's first bytes are in RAM at p_paddr; bss (the IDT) is zero. */
	size_t len;
	unsigned char *file = slurp(GUEST, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(file);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)file;
	Elf64_Phdr *ph = (Elf64_Phdr *)(file + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		unsigned char *m = vm__gpa(vm, ph[i].p_paddr, ph[i].p_memsz);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT(memcmp(m, file + ph[i].p_offset, ph[i].p_filesz) == 0);
		for (uint64_t j = ph[i].p_filesz; j < ph[i].p_memsz; j++)
			if (m[j]) {
				CU_FAIL("bss not zero");
				break;
			}
	}
	free(file);
	elf__free(&img);
	vm__destroy(vm);

	/* A segment beyond RAM: the loop guest's 1.2 MiB bss at 1 MiB does
	 * not fit in 2 MiB. */
	cfg.mem_size = 2 << 20;
	vm = vm__create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	CU_ASSERT_EQUAL(elf__load(vm, KT_GUEST("test-loop"), &img), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "outside guest RAM"));
	vm__destroy(vm);
}

static void test_bad_files(void)
{
	size_t len;
	unsigned char *good = slurp(GUEST, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)good;

	/* A text file: a copy of /etc/passwd (read only, never touched). */
	size_t tlen;
	unsigned char *text = slurp("/etc/passwd", &tlen);
	if (text) {
		expect_bad(write_tmp("text", text, tlen), "not an ELF");
		free(text);
	}
	expect_bad("/nonexistent/kinject.elf", "No such file");
	expect_bad(write_tmp("empty", "", 0), "empty");
	expect_bad(write_tmp("trunc10", good, 10), "not an ELF");     /* no full e_ident */
	expect_bad(write_tmp("trunc40", good, 40), "truncated");
	expect_bad(write_tmp("trunc100", good, 100), "truncated");  /* phdrs cut */
	expect_bad(write_tmp("trunchalf", good, eh->e_shoff / 2), "truncated");
	expect_bad(write_tmp("truncsh", good, len - 8), "truncated"); /* last shdr cut */

	unsigned char *p = malloc(len);
	memcpy(p, good, len);
	((Elf64_Ehdr *)p)->e_machine = EM_AARCH64;
	expect_bad(write_tmp("aarch64", p, len), "aarch64");
	memcpy(p, good, len);
	((Elf64_Ehdr *)p)->e_type = ET_DYN;
	expect_bad(write_tmp("dyn", p, len), "ET_EXEC");
	memcpy(p, good, len);
	p[EI_CLASS] = ELFCLASS32;
	expect_bad(write_tmp("class32", p, len), "32-bit");
	memcpy(p, good, len);
	Elf64_Phdr *ph = (Elf64_Phdr *)(p + eh->e_phoff);
	ph[0].p_offset = len + 4096;                                 /* segment beyond EOF */
	expect_bad(write_tmp("segoff", p, len), "truncated or corrupt");
	free(p);

	/* A real 32-bit ELF, if the multilib runtime is installed. */
	const char *real32[] = { "/usr/lib32/libc.so.6", "/usr/lib/i386-linux-gnu/libc.so.6" };
	for (size_t i = 0; i < 2; i++)
		if (access(real32[i], R_OK) == 0) {
			struct elf_image img;
			CU_ASSERT_EQUAL(elf__open(real32[i], &img, NULL), -1);
			CU_ASSERT_PTR_NOT_NULL(strstr(vmm__error(), "32-bit"));
			break;
		}
	free(good);
}

static void test_parse_size(void)
{
	uint64_t v;
	KT_ASSERT_OK(vm__parse_size("32M", &v));
	KT_ASSERT_EQ_U64(v, 32ULL << 20);
	KT_ASSERT_OK(vm__parse_size("64m", &v));
	KT_ASSERT_EQ_U64(v, 64ULL << 20);
	KT_ASSERT_OK(vm__parse_size("1G", &v));
	KT_ASSERT_EQ_U64(v, 1ULL << 30);
	KT_ASSERT_OK(vm__parse_size("4096K", &v));
	KT_ASSERT_EQ_U64(v, 4096ULL << 10);
	KT_ASSERT_OK(vm__parse_size("1048576", &v));
	KT_ASSERT_EQ_U64(v, 1048576);
	CU_ASSERT_EQUAL(vm__parse_size("12X", &v), -1);
	CU_ASSERT_EQUAL(vm__parse_size("M", &v), -1);
	CU_ASSERT_EQUAL(vm__parse_size("", &v), -1);
	CU_ASSERT_EQUAL(vm__parse_size("-1M", &v), -1);
	CU_ASSERT_EQUAL(vm__parse_size("99999999999999999999G", &v), -1);
}

static CU_TestInfo tests[] = {
	{ "good ELF: entry, symbols both ways", test_good },
	{ "load into a VM: segments, bss, RAM bounds", test_load_into_vm },
	{ "bad files fail with one line", test_bad_files },
	{ "memory size option", test_parse_size },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm elf", .needs_kvm = true, .tests = tests };
	return kt_main(&s);
}
