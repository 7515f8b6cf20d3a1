/* SPDX-License-Identifier: MIT */
/*
 * The entry map of the real linux64 guest: boot to READY, build the map from
 * the live IDT/TSS/MSRs, and check the windows at the labels docs/variants.md
 * documents; then single-step interrupts from ring 3 through the entry text
 * and check that the map agrees with the vCPU at every step.
 */
#include <stdlib.h>
#include <string.h>
#include "testlib.h"
#include "kinject.h"
#include "entrymap.h"

static struct guest g;
static struct entrymap m;
static bool booted;

static int setup(void)
{
	static const char *const scenarios[] = { "user-spin", "kthreads" };
	struct verdict v;

	for (size_t k = 0; k < 2 && !booted; k++) {
		struct guest_opts o = { .elf = KT_GUEST("kinject-linux64"), .scenario = scenarios[k] };

		if (guest__boot(&g, &o)) {
			fprintf(stderr, "boot: %s\n", vmm__error());
			return 1;
		}
		if (guest__run_to_ready(&g, &v, KINJECT_BOOT_MAX_EXITS)) {
			booted = true;
			break;
		}
		fprintf(stderr, "scenario %s: no READY: %s\n", scenarios[k], v.detail);
		guest__destroy(&g);
	}
	if (!booted)
		return 1;
	if (entrymap__build(&g, &m)) {
		fprintf(stderr, "entrymap__build: %s\n", vmm__error());
		return 1;
	}
	return 0;
}

static int teardown(void)
{
	entrymap__free(&m);
	if (booted)
		guest__destroy(&g);
	analysis__fini();
	return 0;
}

static uint64_t sym(const char *name)
{
	return kt_sym(&g.img, name);
}

static struct win_state at(const char *name)
{
	struct win_state s = { 0 };

	if (entrymap__state(&m, sym(name), &s)) {
		char msg[200];

		snprintf(msg, sizeof(msg), "%s not in the map: %s", name, vmm__error());
		CU_FAIL(msg);
	}
	return s;
}

/* Assert one state exactly, naming the label on failure. */
#define EXPECT(label, g_, c_, st_, q_) do { \
	struct win_state s_ = at(label); \
	char have_[96], m_[200]; \
	bool ok_ = (!(g_) || s_.gs == (g_)) && (!(c_) || s_.cr3 == (c_)) && \
		   (!(st_) || s_.stack == (st_)) && (!(q_) || s_.irq == (q_)); \
	snprintf(m_, sizeof(m_), "%s: %s", label, window__state_str(&s_, have_, sizeof(have_))); \
	CU_assertImplementation(ok_, __LINE__, m_, __FILE__, "", CU_FALSE); \
} while (0)

static void test_entry_points(void)
{
	size_t idt = 0;
	bool lstar = false;

	CU_ASSERT(m.idt_present == 256);
	for (size_t k = 0; k < m.nentries; k++) {
		const struct entrymap_entry *e = &m.entries[k];
		struct win_state s;
		long i;

		idt += e->kind == ENTRYMAP_IDT;
		lstar |= e->kind == ENTRYMAP_LSTAR && e->addr == sym("entry_SYSCALL_64");
		CU_ASSERT_FATAL(entrymap__state(&m, e->addr, &s) == 0);
		CU_ASSERT(window__reached(&s));
		i = analysis__index(&m.code, e->addr);
		CU_ASSERT(i >= 0 && m.map.at[i].is_entry);
	}
	KT_ASSERT_EQ_U64(idt, 256);
	CU_ASSERT(lstar);
	/* Gates as docs/variants.md lists them. */
	for (size_t k = 0; k < m.nentries; k++) {
		const struct entrymap_entry *e = &m.entries[k];

		if (e->kind != ENTRYMAP_IDT)
			continue;
		if (e->vector == 2)
			CU_ASSERT(e->addr == sym("asm_exc_nmi") && e->ist == 2);
		if (e->vector == 8)
			CU_ASSERT(e->ist == 1);
		if (e->vector == 0x80)
			CU_ASSERT(e->addr == sym("entry_INT80_64") && e->dpl == 3);
		if (e->vector >= 0x20 && e->vector != 0x80)
			CU_ASSERT(e->addr == sym("irq_entries_start") + 16 * (uint64_t)(e->vector - 32));
	}
}

static void test_syscall_path(void)
{
	EXPECT("entry_SYSCALL_64", WIN_USER, WIN_USER, WIN_STACK_USER, WIN_IRQ_OFF);
	EXPECT("entry_SYSCALL_64_after_swapgs", WIN_KERNEL, WIN_USER, WIN_STACK_USER, WIN_IRQ_OFF);
	EXPECT("entry_SYSCALL_64_after_cr3", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
	EXPECT("entry_SYSCALL_64_on_task_stack", WIN_KERNEL, WIN_KERNEL, WIN_STACK_TASK, WIN_IRQ_OFF);
	EXPECT("syscall_return_via_sysret", WIN_KERNEL, WIN_KERNEL, WIN_STACK_TASK, WIN_IRQ_OFF);
	EXPECT("syscall_return_after_cr3", WIN_KERNEL, WIN_USER, WIN_STACK_ENTRY, WIN_IRQ_OFF);
	EXPECT("syscall_return_on_user_stack", WIN_KERNEL, WIN_USER, WIN_STACK_USER, WIN_IRQ_OFF);
	EXPECT("entry_SYSRET_64", WIN_USER, WIN_USER, WIN_STACK_USER, WIN_IRQ_OFF);
}

/* No unknown GS or CR3 anywhere on the SYSCALL entry and exit. */
static void test_syscall_no_unknown(void)
{
	static const char *const funcs[] = { "entry_SYSCALL_64", "syscall_exit" };

	for (size_t f = 0; f < 2; f++) {
		const struct symbol *s = sym__find(&g.img.symtab, funcs[f]);
		size_t checked = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT(s->size > 0);
		for (size_t i = 0; i < m.code.n; i++) {
			const struct insn *in = &m.code.insns[i];
			const struct win_state *st = &m.map.at[i].in;

			if (in->addr < s->addr || in->addr >= s->addr + s->size || !window__reached(st))
				continue;
			checked++;
			if ((st->gs | st->cr3) & WIN_UNKNOWN) {
				char msg[160];

				snprintf(msg, sizeof(msg), "%s+0x%llx: unknown GS/CR3", funcs[f],
					 (unsigned long long)(in->addr - s->addr));
				CU_FAIL(msg);
			}
		}
		CU_ASSERT(checked > 10);
	}
}

static void test_iret_paths(void)
{
	struct win_state s = at("irq_return_iret");

	EXPECT("irq_return_iret", WIN_USER, WIN_USER, 0, WIN_IRQ_OFF);
	CU_ASSERT(s.stack && !(s.stack & ~(WIN_STACK_ENTRY | WIN_STACK_ESPFIX)));
	EXPECT("swapgs_restore_on_trampoline", WIN_KERNEL, WIN_KERNEL, WIN_STACK_ENTRY, WIN_IRQ_OFF);
	EXPECT("swapgs_restore_after_cr3", WIN_KERNEL, WIN_USER, WIN_STACK_ENTRY, WIN_IRQ_OFF);
	EXPECT("espfix_on_stack", WIN_KERNEL, WIN_KERNEL, WIN_STACK_ESPFIX, WIN_IRQ_OFF);
	EXPECT("espfix_after_cr3", WIN_KERNEL, WIN_USER, WIN_STACK_ESPFIX, WIN_IRQ_OFF);
	EXPECT("espfix_before_iret", WIN_USER, WIN_USER, WIN_STACK_ESPFIX, WIN_IRQ_OFF);
	EXPECT("kernel_return_iret", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
}

static void test_idt_paths(void)
{
	struct win_state s;

	/* error_entry from user: swapgs, then the CR3 switch. */
	EXPECT("error_entry_after_swapgs", WIN_KERNEL, WIN_USER, 0, WIN_IRQ_OFF);
	EXPECT("error_entry_after_cr3", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
	EXPECT("exc_common_on_stack", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
	/* From user the handler runs on the task stack only. */
	CU_ASSERT_FATAL(window__at_origin(&m.map, sym("exc_common_on_stack"), WIN_USER, &s) == 0);
	KT_ASSERT_EQ_U64(s.stack, WIN_STACK_TASK);
	/* The faulting exit IRET: fixed up with kernel GS and CR3. */
	EXPECT("fixup_bad_iret", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
	EXPECT("asm_common_interrupt_on_irq_stack", WIN_KERNEL, WIN_KERNEL, WIN_STACK_IRQ, WIN_IRQ_OFF);
	EXPECT("entry_INT80_64_on_task_stack", WIN_KERNEL, WIN_KERNEL, 0, WIN_IRQ_OFF);
	/* Paranoid and NMI: IST stack throughout, GS/CR3 as found. */
	EXPECT("asm_exc_nmi", WIN_BOTH, WIN_BOTH, WIN_STACK_IST, WIN_IRQ_OFF);
	EXPECT("paranoid_entry_after_gs", WIN_KERNEL, WIN_KERNEL, WIN_STACK_IST, WIN_IRQ_OFF);
	EXPECT("nmi_kernel_state", WIN_KERNEL, WIN_KERNEL, WIN_STACK_IST, WIN_IRQ_OFF);
	EXPECT("paranoid_iret", WIN_BOTH, WIN_BOTH, WIN_STACK_IST, WIN_IRQ_OFF);
	EXPECT("nmi_iret", WIN_BOTH, WIN_BOTH, WIN_STACK_IST, WIN_IRQ_OFF);
	EXPECT("nmi_from_user_on_task_stack", WIN_KERNEL, WIN_KERNEL, WIN_STACK_TASK, WIN_IRQ_OFF);
}

static void test_boundaries(void)
{
	uint64_t *all = NULL, *reached = NULL;
	long n = entrymap__boundaries(&m, false, &all), r = entrymap__boundaries(&m, true, &reached);

	KT_ASSERT_EQ_U64(n, m.code.n);
	CU_ASSERT(r > 0 && r <= n);
	for (long k = 1; k < n; k++)
		CU_ASSERT(all[k] > all[k - 1]);
	for (long k = 0; k < r; k++)
		CU_ASSERT(entrymap__insn(&m, reached[k]) != NULL);
	CU_ASSERT(all[0] == m.layout.entry_text_start);
	free(all);
	free(reached);
}

static void test_observe(void)
{
	struct kvm_regs r = { .rsp = m.tss_rsp0 - 0x28, .rflags = 0x2 };
	struct kvm_sregs s = { .cr3 = m.layout.user_cr3 | (1ULL << 63) };
	struct win_state o;
	char why[160];

	s.gs.base = 0;
	CU_ASSERT_EQUAL(entrymap__observe(&g, &r, &s, &o), 0);
	KT_ASSERT_EQ_U64(o.gs, WIN_USER);
	KT_ASSERT_EQ_U64(o.cr3, WIN_USER);
	KT_ASSERT_EQ_U64(o.stack, WIN_STACK_ENTRY);
	KT_ASSERT_EQ_U64(o.irq, WIN_IRQ_OFF);
	/* The first instruction of an IRQ stub from ring 3 fits; kernel GS there
	 * fits too (kernel origin); at the SYSCALL entry it does not. */
	CU_ASSERT(entrymap__check(&m, sym("irq_entries_start"), &o, why, sizeof(why)));
	s.gs.base = m.layout.percpu;
	entrymap__observe(&g, &r, &s, &o);
	KT_ASSERT_EQ_U64(o.gs, WIN_KERNEL);
	CU_ASSERT(!entrymap__check(&m, sym("entry_SYSCALL_64"), &o, why, sizeof(why)));
	CU_ASSERT(strstr(why, "GS") != NULL);
	/* Outside the entry text: not the map's business. */
	CU_ASSERT(entrymap__check(&m, m.layout.entry_text_end + 0x100, &o, why, sizeof(why)));
}

/* Single-step the guest from READY and check the map against the vCPU at
 * every instruction boundary inside the entry text.  (On hosts whose KVM
 * runs ring 3 out of the debugger's sight -- the project's PVM host -- the
 * transitions from and to ring 3 are not stepped; kernel-mode events are.) */
static void test_singlestep_agreement(void)
{
	struct vm *vm = g.vm;
	struct vm_exit e;
	struct verdict v;
	unsigned steps, checked = 0, bad = 0, user_side = 0;
	uint64_t first_bad = 0;

	KT_ASSERT_OK(dbg__set_singlestep(vm, true));
	for (steps = 0; steps < 200000; steps++) {
		uint64_t rip = vcpu__regs(vm)->rip;

		if (entrymap__in_text(&m, rip) && vcpu__cpl(vm) == 0) {
			struct win_state o;
			char why[160];

			entrymap__observe(&g, vcpu__regs(vm), vcpu__sregs(vm), &o);
			checked++;
			user_side += o.gs == WIN_USER || o.cr3 == WIN_USER;
			if (!entrymap__check(&m, rip, &o, why, sizeof(why))) {
				char where[128];

				if (!bad++)
					first_bad = rip;
				if (bad <= 10)
					fprintf(stderr, "  disagreement at %s: %s\n",
						guest__where(&g, rip, where, sizeof(where)), why);
			}
		}
		KT_ASSERT_OK(vcpu__run(vm, &e, 1000));
		if (e.kind == VM_EXIT_HCALL) {
			if (guest__judge_exit(&g, &e, &v))
				break;
			continue;
		}
		if (e.kind != VM_EXIT_SINGLESTEP) {
			fprintf(stderr, "  stopped: %s\n", vm_exit__name(e.kind));
			break;
		}
	}
	KT_ASSERT_OK(dbg__set_singlestep(vm, false));
	fprintf(stderr, "  single-step: %u steps, %u entry-text boundaries checked (%u with user GS/CR3), "
		"%u disagreements\n", steps, checked, user_side, bad);
	CU_ASSERT(checked > 50);
	CU_ASSERT_EQUAL(bad, 0);
	(void)first_bad;
}

static CU_TestInfo tests[] = {
	{ "every IDT gate and LSTAR is an entry of the map", test_entry_points },
	{ "SYSCALL entry and SYSRET exit windows", test_syscall_path },
	{ "no unknown GS/CR3 on the SYSCALL path", test_syscall_no_unknown },
	{ "IRET exits: trampoline, espfix, kernel", test_iret_paths },
	{ "IDT paths: error_entry, bad IRET, IRQ stack, paranoid, NMI", test_idt_paths },
	{ "instruction boundaries for the sweep", test_boundaries },
	{ "observe and check", test_observe },
	{ "single-step through the entry text agrees with the map", test_singlestep_agreement },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const struct kt_suite suite = {
		.name = "entrymap", .needs_kvm = true, .setup = setup, .teardown = teardown, .tests = tests,
	};

	return kt_main(&suite);
}
