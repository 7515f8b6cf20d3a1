/* SPDX-License-Identifier: MIT */
/*
 * converge.c: is the machine back at the checkpoint's state but for memory
 * nobody reads before writing it (see converge.h for the rules and why
 * they let a case end at its resume).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <capstone/capstone.h>
#include "converge.h"
#include "analysis.h"

#define PAGE 4096ULL
#define MAX_DEAD (KINJECT_LAYOUT_MAX_STACKS * 2)
#define MAX_STATS (KINJECT_LAYOUT_MAX_STATS * 4)
/* Larger ranges are aliases (espfix's), never scratch here. */
#define MAX_SCRATCH_RANGE (1ULL << 20)

struct page_map {                         /* one guest page of a stack */
	uint64_t gpa, gva;
};

struct converge {
	struct guest *g;
	/* The layout's stack pages by guest-physical address.  The layout is
	 * the one read at READY: the guest changes nothing structural after
	 * (guest/core/kmain.c), every task's stack is in it from the start. */
	struct page_map *pages;
	size_t npages, cap;
	/* The statistics the code only adds to, guest-physical. */
	uint64_t nranges;                     /* layout.stats looked at */
	char stats_note[320];                 /* the first that is not exempt: why */
	uint64_t stats_gpa[MAX_STATS][2];
	unsigned nstats;
};

/* ---- the statistics are write-only ----------------------------------------------- */

static bool adds_or_stores(const struct insn *in, const struct insn_mem *m)
{
	static const char *const rmw[] = { "inc", "dec", "add", "sub" };

	if (!m->write)
		return false;
	if (!m->read)
		return strncmp(in->mnemonic, "mov", 3) == 0;
	for (size_t i = 0; i < sizeof(rmw) / sizeof(rmw[0]); i++)
		if (!strncmp(in->mnemonic, rmw[i], strlen(rmw[i])))
			return true;
	return false;
}

/* An address the instruction computes without touching memory: lea's
 * operand (capstone's memory operands leave lea out) or an immediate. */
static bool address_taken(const struct insn *in, uint64_t *a)
{
	const char *p = in->op_str;

	if (!strncmp(in->mnemonic, "lea", 3)) {
		if (strstr(p, "(%rip)"))
			*a = in->addr + in->size + (uint64_t)strtoll(p, NULL, 0);
		else
			*a = (uint64_t)strtoll(p, NULL, 0);    /* disp(,%index,scale) */
		return true;
	}
	while ((p = strchr(p, '$'))) {
		*a = (uint64_t)strtoull(++p, NULL, 0);
		if (*a >= 0xffff800000000000ULL)
			return true;
	}
	return false;
}

/* The address a memory operand names without a register we do not know:
 * absolute, RIP-relative, or %gs-relative (the per-CPU block, whose base
 * the kernel's GS holds).  An index register only moves it up from there:
 * counted as naming it if it starts inside or just below a range. */
static bool operand_address(const struct insn *in, const struct insn_mem *m, uint64_t percpu,
			    uint64_t *a)
{
	if (m->base == X86_REG_RIP)
		*a = in->addr + in->size + (uint64_t)m->disp;
	else if (m->base != X86_REG_INVALID)
		return false;
	else if (m->segment == X86_REG_GS)
		*a = percpu + (uint64_t)m->disp;
	else if (m->segment == X86_REG_INVALID || m->segment == X86_REG_DS)
		*a = (uint64_t)m->disp;
	else
		return false;
	return true;
}

/* Operand address `a` may touch range r.  Indexed from below the range,
 * it does unless `a` lies below the object (symbol) the range is in: C
 * indexes within one object, and the range's object starts above `a`. */
static bool names(const struct symtab *t, uint64_t a, const struct kinject_range *r, bool indexed)
{
	if (a >= r->end)
		return false;
	if (a >= r->start)
		return true;
	if (!indexed)
		return false;
	const struct symbol *s = sym__at(t, r->start);
	return !s || a >= s->addr;
}

/* Code that fills the layout block takes the statistics' addresses only to
 * declare them: functions named layout_* (the guest contract says so). */
static bool declares(const struct symtab *t, uint64_t addr)
{
	const struct symbol *s = sym__at(t, addr);

	return s && s->is_func && (!strncmp(s->name, "layout_", 7) || strstr(s->name, "_layout"));
}

/* Marks bad[i] for every statistics range some instruction in [lo, hi)
 * reads or takes the address of; the first offender goes to the note. */
static int scan_text(struct converge *cv, uint64_t lo, uint64_t hi, bool *bad)
{
	const struct kinject_layout *l = &cv->g->layout;
	uint64_t len = hi - lo;
	uint8_t *buf = malloc(len);
	struct code_range c = { 0 };

	if (!buf || vm__read_gva(cv->g->vm, l->kernel_cr3, lo, buf, len) ||
	    analysis__decode(buf, len, lo, &c)) {
		free(buf);
		return -1;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct insn *in = &c.insns[i];
		for (uint64_t r = 0; r < cv->nranges; r++) {
			const struct kinject_range *st = &l->stats[r];
			const char *what = NULL;
			uint64_t a;
			for (unsigned k = 0; k < in->nmem && !what; k++)
				if (operand_address(in, &in->mem[k], l->percpu, &a) &&
				    names(&cv->g->img.symtab, a, st, in->mem[k].index != X86_REG_INVALID) &&
				    !adds_or_stores(in, &in->mem[k]))
					what = "reads";
			if (!what && address_taken(in, &a) && names(&cv->g->img.symtab, a, st, false) &&
			    !declares(&cv->g->img.symtab, in->addr))
				what = "takes the address of";
			if (what && !bad[r]) {
				bad[r] = true;
				if (!cv->stats_note[0])
					snprintf(cv->stats_note, sizeof(cv->stats_note),
						 "0x%llx: %s %s %s the statistics at 0x%llx",
						 (unsigned long long)in->addr, in->mnemonic, in->op_str,
						 what, (unsigned long long)st->start);
			}
		}
	}
	analysis__free(&c);
	free(buf);
	return 0;
}

/* The layout's statistics that the kernel's code really only adds to, by
 * guest-physical address. */
static void stats_setup(struct converge *cv)
{
	const struct kinject_layout *l = &cv->g->layout;
	const struct symtab *t = &cv->g->img.symtab;
	const struct symbol *k0 = sym__find(t, "__kernel_start");
	const struct symbol *e1 = sym__find(t, "__entry_text_end");
	bool bad[KINJECT_LAYOUT_MAX_STATS] = { false };

	cv->nranges = l->nstats < KINJECT_LAYOUT_MAX_STATS ? l->nstats : KINJECT_LAYOUT_MAX_STATS;
	if (!k0 || !e1 || scan_text(cv, k0->addr, e1->addr, bad)) {
		snprintf(cv->stats_note, sizeof(cv->stats_note), "kernel text not found or unreadable");
		return;
	}
	for (uint64_t r = 0; r < cv->nranges; r++) {
		if (bad[r])
			continue;
		for (uint64_t va = l->stats[r].start; va < l->stats[r].end && cv->nstats < MAX_STATS;) {
			uint64_t gpa, end = (va & ~(PAGE - 1)) + PAGE;
			if (end > l->stats[r].end)
				end = l->stats[r].end;
			if (vm__gva_to_gpa(cv->g->vm, l->kernel_cr3, va, &gpa))
				break;
			cv->stats_gpa[cv->nstats][0] = gpa;
			cv->stats_gpa[cv->nstats][1] = gpa + (end - va);
			cv->nstats++;
			va = end;
		}
	}
}

static int pages_build(struct converge *cv, const struct kinject_layout *l);

struct converge *converge__open(struct guest *g)
{
	struct converge *cv = calloc(1, sizeof(*cv));

	if (!cv) {
		vmm__fail("converge: out of memory");
		return NULL;
	}
	cv->g = g;
	if (pages_build(cv, &g->layout)) {
		converge__close(cv);
		return NULL;
	}
	stats_setup(cv);
	return cv;
}

void converge__close(struct converge *cv)
{
	if (!cv)
		return;
	free(cv->pages);
	free(cv);
}

const char *converge__stats_note(const struct converge *cv)
{
	return cv->stats_note;
}

/* ---- stack pages ---------------------------------------------------------------- */

static int page_cmp(const void *a, const void *b)
{
	const struct page_map *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int pages_add(struct converge *cv, uint64_t gpa, uint64_t gva)
{
	if (cv->npages == cv->cap) {
		size_t cap = cv->cap ? 2 * cv->cap : 512;
		struct page_map *n = realloc(cv->pages, cap * sizeof(*n));
		if (!n)
			return vmm__fail("converge: out of memory");
		cv->pages = n;
		cv->cap = cap;
	}
	cv->pages[cv->npages++] = (struct page_map){ gpa, gva };
	return 0;
}

/* The stack pages of layout `l`, by guest-physical address. */
static int pages_build(struct converge *cv, const struct kinject_layout *l)
{
	cv->npages = 0;
	for (uint64_t i = 0; i < l->nstacks; i++) {
		const struct kinject_range *r = &l->stacks[i];
		if (r->kind == KINJECT_STACK_USER || r->end - r->start > MAX_SCRATCH_RANGE * 4)
			continue;
		for (uint64_t va = r->start & ~(PAGE - 1); va < r->end; va += PAGE) {
			uint64_t gpa;
			if (vm__gva_to_gpa(cv->g->vm, l->kernel_cr3, va, &gpa))
				continue;
			if (pages_add(cv, gpa & ~(PAGE - 1), va))
				return -1;
		}
	}
	qsort(cv->pages, cv->npages, sizeof(*cv->pages), page_cmp);
	return 0;
}

/* ---- the check --------------------------------------------------------------------- */

struct dead {
	uint64_t lo, hi;                      /* guest-virtual [lo, hi) */
};

struct check {
	struct converge *cv;
	struct dead dead[MAX_DEAD];
	unsigned ndead;
	char *why;
	size_t len;
};

static bool in_range(const struct kinject_range *r, uint64_t rsp)
{
	/* A stack's top belongs to it: RSP equals it right after a switch. */
	return rsp > r->start && rsp <= r->end;
}

static void dead_add(struct check *k, uint64_t lo, uint64_t hi)
{
	if (lo < hi && k->ndead < MAX_DEAD)
		k->dead[k->ndead++] = (struct dead){ lo, hi };
}

/* What no one reads before writing, by the rules of converge.h. */
static void dead_build(struct check *k, const struct kinject_layout *l,
		       const struct converge_live *lv)
{
	uint64_t top_of_stack = lv->top_of_stack;

	for (uint64_t i = 0; i < l->nstacks; i++) {
		const struct kinject_range *r = &l->stacks[i];
		bool live = false;

		for (unsigned o = 0; o < lv->nouter; o++)
			live |= in_range(r, lv->outer_rsp[o]);
		if (r->kind == KINJECT_STACK_TASK) {
			uint64_t bottom = top_of_stack - l->task_stack_size;
			if (!l->task_stack_size || !in_range(r, top_of_stack) || bottom < r->start)
				continue;
			if (lv->cpl == 3 && !live)
				dead_add(k, bottom, top_of_stack);
			else if (lv->cpl == 0 && lv->rsp > bottom && lv->rsp <= top_of_stack)
				dead_add(k, bottom, lv->rsp);
			continue;
		}
		if (r->kind == KINJECT_STACK_USER || r->end - r->start > MAX_SCRATCH_RANGE)
			continue;
		if (lv->cpl == 0 && in_range(r, lv->rsp)) {
			if (!live)
				dead_add(k, r->start, lv->rsp);
			continue;
		}
		if (live)
			continue;
		if (r->live_start < r->live_end) {
			dead_add(k, r->start, r->live_start);
			dead_add(k, r->live_end, r->end);
		} else {
			dead_add(k, r->start, r->end);
		}
	}
}

static bool dead_va(const struct check *k, uint64_t va, unsigned n)
{
	for (unsigned i = 0; i < k->ndead; i++)
		if (va >= k->dead[i].lo && va + n <= k->dead[i].hi)
			return true;
	return false;
}

static bool dead_pa(const struct check *k, uint64_t pa)
{
	const struct converge *cv = k->cv;
	uint64_t page = pa & ~(PAGE - 1);
	size_t lo = 0, hi = cv->npages;

	for (unsigned i = 0; i < cv->nstats; i++)
		if (pa >= cv->stats_gpa[i][0] && pa + 8 <= cv->stats_gpa[i][1])
			return true;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cv->pages[mid].gpa < page)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Every alias of the page must be dead. */
	bool any = false;
	for (size_t i = lo; i < cv->npages && cv->pages[i].gpa == page; i++) {
		if (!dead_va(k, cv->pages[i].gva + (pa - page), 8))
			return false;
		any = true;
	}
	return any;
}

static int page_changed(void *arg, uint64_t gpa, const uint8_t *now, const uint8_t *then)
{
	struct check *k = arg;
	const uint64_t *a = (const void *)now, *b = (const void *)then;

	for (unsigned w = 0; w < PAGE / 8; w++) {
		if (a[w] == b[w] || dead_pa(k, gpa + w * 8))
			continue;
		snprintf(k->why, k->len, "memory at guest-physical 0x%llx differs (0x%llx, was 0x%llx)",
			 (unsigned long long)(gpa + w * 8), (unsigned long long)a[w],
			 (unsigned long long)b[w]);
		return 1;
	}
	return 0;
}

int converge__check(struct converge *cv, const struct vm_snapshot *ckpt,
		    const struct converge_live *lv, char *why, size_t len)
{
	struct vm *vm = cv->g->vm;
	struct check k = { .cv = cv, .why = why, .len = len };

	int r = snap__vcpu_compare(vm, ckpt, why, len);
	if (r)
		return r;
	dead_build(&k, &cv->g->layout, lv);
	return snap__changed_pages(vm, ckpt, page_changed, &k);
}
