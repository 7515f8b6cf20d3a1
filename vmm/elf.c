/* SPDX-License-Identifier: MIT */
/*
 * elf.c: the guest image and its symbols.  Validates an ELF64 x86-64
 * executable before trusting any offset in it, copies PT_LOAD segments to
 * guest-physical p_paddr (zeroing bss), and keeps .symtab sorted by address
 * for "sym+off" <-> address translation.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return vmm__fail("%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return vmm__fail("%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return vmm__fail("%s: empty file, not an ELF executable", path);
	}
	*len = st.st_size;
	*buf = malloc(*len);
	if (!*buf) {
		close(fd);
		return vmm__fail("%s: out of memory (%zu bytes)", path, *len);
	}
	size_t got = 0;
	while (got < *len) {
		ssize_t r = read(fd, *buf + got, *len - got);
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			free(*buf);
			return vmm__fail("%s: read: %s", path, strerror(e));
		}
		got += r;
	}
	close(fd);
	return 0;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct symbol *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* At one address the most descriptive symbol sorts last, so that
	 * sym__at (which takes the last one <= addr) returns it. */
	if (x->is_func != y->is_func)
		return x->is_func ? 1 : -1;
	if ((x->size != 0) != (y->size != 0))
		return x->size ? 1 : -1;
	return strcmp(y->name, x->name);
}

static int load_symtab(const char *path, Elf *e, struct symtab *t)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh))
			return vmm__fail("%s: bad section header: %s", path, elf_errmsg(-1));
		if (sh.sh_type == SHT_SYMTAB)
			break;
	}
	if (!scn)
		return 0;                       /* stripped: no symbols, not an error */
	Elf_Scn *strscn = elf_getscn(e, sh.sh_link);
	Elf_Data *sd = elf_getdata(scn, NULL);
	Elf_Data *strd = strscn ? elf_getdata(strscn, NULL) : NULL;
	if (!sd || !strd || !strd->d_buf || !sh.sh_entsize)
		return vmm__fail("%s: corrupt .symtab or its string table: %s", path, elf_errmsg(-1));

	size_t n = sh.sh_size / sh.sh_entsize;
	t->strings = malloc(strd->d_size + 1);
	t->syms = calloc(n ? n : 1, sizeof(*t->syms));
	if (!t->strings || !t->syms)
		return vmm__fail("%s: out of memory for %zu symbols", path, n);
	memcpy(t->strings, strd->d_buf, strd->d_size);
	t->strings[strd->d_size] = 0;           /* a corrupt table stays terminated */

	for (size_t i = 0; i < n; i++) {
		GElf_Sym s;
		if (!gelf_getsym(sd, i, &s))
			return vmm__fail("%s: corrupt symbol %zu: %s", path, i, elf_errmsg(-1));
		int type = GELF_ST_TYPE(s.st_info);
		if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS || s.st_name == 0 ||
		    s.st_name >= strd->d_size)
			continue;
		if (type != STT_FUNC && type != STT_OBJECT && type != STT_NOTYPE)
			continue;
		struct symbol *y = &t->syms[t->n++];
		y->addr = s.st_value;
		y->size = s.st_size;
		y->name = t->strings + s.st_name;
		y->is_func = type == STT_FUNC;
	}
	qsort(t->syms, t->n, sizeof(*t->syms), sym_cmp);
	return 0;
}

static const char *machine_name(unsigned m)
{
	switch (m) {
	case EM_386: return "i386";
	case EM_AARCH64: return "aarch64";
	case EM_ARM: return "arm";
	case EM_RISCV: return "riscv";
	case EM_PPC64: return "ppc64";
	case EM_S390: return "s390";
	default: return "unknown";
	}
}

static int parse(const char *path, const uint8_t *buf, size_t len, struct elf_image *img,
		 struct vm *vm)
{
	if (len < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG))
		return vmm__fail("%s: not an ELF file (bad magic)", path);
	if (buf[EI_CLASS] != ELFCLASS64)
		return vmm__fail("%s: %s ELF, kinject needs ELF64 x86-64", path,
				 buf[EI_CLASS] == ELFCLASS32 ? "32-bit" : "unknown-class");
	if (buf[EI_DATA] != ELFDATA2LSB)
		return vmm__fail("%s: big-endian ELF, kinject needs little-endian x86-64", path);
	if (len < sizeof(Elf64_Ehdr))
		return vmm__fail("%s: truncated (%zu bytes, smaller than the ELF header)", path, len);

	Elf *e = elf_memory((char *)buf, len);
	if (!e)
		return vmm__fail("%s: libelf: %s", path, elf_errmsg(-1));
	int ret = -1;
	GElf_Ehdr eh;
	if (!gelf_getehdr(e, &eh)) {
		vmm__fail("%s: bad ELF header: %s", path, elf_errmsg(-1));
		goto out;
	}
	if (eh.e_machine != EM_X86_64) {
		vmm__fail("%s: machine %s (e_machine %u), kinject needs x86-64 (EM_X86_64)", path,
			  machine_name(eh.e_machine), eh.e_machine);
		goto out;
	}
	if (eh.e_type != ET_EXEC) {
		vmm__fail("%s: e_type %u is not ET_EXEC (a static, non-PIE executable)", path,
			  eh.e_type);
		goto out;
	}
	/* Check the tables lie inside the file before libelf or we follow them. */
	if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * eh.e_phentsize > len - eh.e_phoff) {
		vmm__fail("%s: truncated or corrupt: program headers (%u at offset 0x%llx) "
			  "outside the %zu-byte file", path, eh.e_phnum,
			  (unsigned long long)eh.e_phoff, len);
		goto out;
	}
	if (eh.e_shnum && (eh.e_shoff > len ||
			   (uint64_t)eh.e_shnum * eh.e_shentsize > len - eh.e_shoff)) {
		vmm__fail("%s: truncated or corrupt: section headers (%u at offset 0x%llx) "
			  "outside the %zu-byte file", path, eh.e_shnum,
			  (unsigned long long)eh.e_shoff, len);
		goto out;
	}

	size_t nload = 0;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, i, &ph)) {
			vmm__fail("%s: program header %zu: %s", path, i, elf_errmsg(-1));
			goto out;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		nload++;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset) {
			vmm__fail("%s: truncated or corrupt: segment %zu (offset 0x%llx, %llu bytes) "
				  "outside the %zu-byte file", path, i, (unsigned long long)ph.p_offset,
				  (unsigned long long)ph.p_filesz, len);
			goto out;
		}
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr) {
			vmm__fail("%s: segment %zu: p_paddr 0x%llx + p_memsz wraps", path, i,
				  (unsigned long long)ph.p_paddr);
			goto out;
		}
		if (!vm)
			continue;
		uint8_t *dst = vm__gpa(vm, ph.p_paddr, ph.p_memsz);
		if (!dst) {
			vmm__fail("%s: segment %zu at physical 0x%llx-0x%llx is outside guest RAM "
				  "(%llu MiB)", path, i, (unsigned long long)ph.p_paddr,
				  (unsigned long long)(ph.p_paddr + ph.p_memsz),
				  (unsigned long long)(vm__mem_size(vm) >> 20));
			goto out;
		}
		memcpy(dst, buf + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);     /* bss */
		vm__mark_host_dirty(vm, ph.p_paddr, ph.p_memsz);
	}
	if (!nload) {
		vmm__fail("%s: no PT_LOAD segment", path);
		goto out;
	}
	img->entry = eh.e_entry;
	ret = load_symtab(path, e, &img->symtab);
out:
	elf_end(e);
	return ret;
}

int elf__open(const char *path, struct elf_image *img, struct vm *vm_or_null)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(img, 0, sizeof(*img));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return vmm__fail("libelf: %s", elf_errmsg(-1));
	if (read_file(path, &buf, &len))
		return -1;
	img->path = strdup(path);
	int r = img->path ? parse(path, buf, len, img, vm_or_null)
			  : vmm__fail("%s: out of memory", path);
	free(buf);
	if (r)
		elf__free(img);
	return r;
}

int elf__load(struct vm *vm, const char *path, struct elf_image *img)
{
	return elf__open(path, img, vm);
}

void elf__free(struct elf_image *img)
{
	if (!img)
		return;
	free(img->path);
	free(img->symtab.syms);
	free(img->symtab.strings);
	memset(img, 0, sizeof(*img));
}

const struct symbol *sym__find(const struct symtab *t, const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (!strcmp(t->syms[i].name, name))
			return &t->syms[i];
	return NULL;
}

const struct symbol *sym__at(const struct symtab *t, uint64_t addr)
{
	if (!t || !t->n || addr < t->syms[0].addr)
		return NULL;
	size_t lo = 0, hi = t->n;          /* last index with syms[i].addr <= addr */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return &t->syms[lo];
}

char *sym__describe(const struct symtab *t, uint64_t addr, char *buf, size_t len)
{
	const struct symbol *s = sym__at(t, addr);

	/* A sized symbol that ends below addr would mislead: print the number. */
	if (!s || (s->size && addr - s->addr >= s->size))
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
	else if (addr == s->addr)
		snprintf(buf, len, "%s", s->name);
	else
		snprintf(buf, len, "%s+0x%llx", s->name, (unsigned long long)(addr - s->addr));
	return buf;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	/* Hex with 0x, else decimal: "010" is ten, never octal. */
	int base = (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10;
	errno = 0;
	unsigned long long x = strtoull(s, &end, base);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

int sym__resolve(const struct symtab *t, const char *expr, uint64_t *addr)
{
	char name[256];
	uint64_t off = 0;
	bool neg = false;

	if (!expr || !*expr)
		return vmm__fail("address \"\": empty");
	if (expr[0] >= '0' && expr[0] <= '9') {
		if (parse_u64(expr, addr))
			return vmm__fail("address \"%s\": not a number", expr);
		return 0;
	}
	const char *op = strpbrk(expr, "+-");
	size_t n = op ? (size_t)(op - expr) : strlen(expr);
	if (n >= sizeof(name))
		return vmm__fail("address \"%s\": symbol name too long", expr);
	memcpy(name, expr, n);
	name[n] = 0;
	if (op) {
		neg = *op == '-';
		if (parse_u64(op + 1, &off))
			return vmm__fail("address \"%s\": bad offset \"%s\" (use +0x12 or +18)",
					 expr, op + 1);
	}
	const struct symbol *s = sym__find(t, name);
	if (!s)
		return vmm__fail("address \"%s\": no symbol \"%s\" in the guest", expr, name);
	*addr = neg ? s->addr - off : s->addr + off;
	return 0;
}
