/* SPDX-License-Identifier: MIT */
/*
 * The wall-clock deadline: a guest spinning without exits (`cli; jmp .`)
 * ends in VM_EXIT_BUDGET within about the deadline, so does one that exits
 * forever without a result; a guest that finishes in time is unaffected;
 * register changes and the guest's state survive the interruption (running
 * again resumes exactly); foreign signals during KVM_RUN (here SIGALRM every
 * 50 us) neither end a run nor lose or repeat a breakpoint hit; a deadline
 * of one VM does not end another VM's run on the same thread.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <kinject/abi.h>
#include "testlib.h"
#include "vmm.h"

/* Entered at CODE in long mode on the VMM's identity map.
 *
 *   spin:   cli                       0x00  no exit, ever
 *        1: jmp 1b                    0x01
 *   count:  dec %rcx                  0x03  RCX iterations without an exit,
 *           jnz count                       then KINJECT_HC_NOP, and again
 *           xor %eax,%eax                   (the host sets RCX)
 *           outl %eax,$0xeb
 *           jmp count
 *   storm:  mov $'x',%al              0x0e  console bytes forever: exits,
 *        2: outb %al,$0xe9                  but never a result
 *           jmp 2b
 */
static const unsigned char code[] = {
	0xfa, 0xeb, 0xfe,
	0x48, 0xff, 0xc9, 0x75, 0xfb, 0x31, 0xc0, 0xe7, 0xeb, 0xeb, 0xf5,
	0xb0, 0x78, 0xe6, 0xe9, 0xeb, 0xfc,
};
#define CODE 0x100000ULL
#define SPIN (CODE + 0x00)
#define SPIN_JMP (CODE + 0x01)
#define COUNT (CODE + 0x03)
#define STORM (CODE + 0x0e)

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static struct vm *make_vm(uint64_t entry)
{
	struct vm_config cfg = { .mem_size = 4ULL << 20 };
	struct vm *vm = vm__create(&cfg);
	if (!vm || vm__load_code(vm, CODE, code, sizeof(code)) || vm__boot_long_mode(vm, entry, "")) {
		fprintf(stderr, "vm: %s\n", vmm__error());
		vm__destroy(vm);
		return NULL;
	}
	return vm;
}

static void set_rcx(struct vm *vm, uint64_t v)
{
	vcpu__regs(vm)->rcx = v;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS);
}

/* Iterations of the count loop that take about `ms` on this host. */
static uint64_t calibrate(struct vm *vm, double ms)
{
	struct vm_exit e;
	uint64_t n = 10000;                  /* ~15 ms here: kvm_pvm runs this loop slowly */
	double t0 = now_ms();

	set_rcx(vm, n);
	if (vcpu__run(vm, &e, 10) || e.kind != VM_EXIT_HCALL) {
		CU_FAIL("count loop did not reach its hypercall");
		return n;
	}
	double t = now_ms() - t0;
	if (t < 0.1)
		t = 0.1;
	return (uint64_t)(n * ms / t);
}

static void test_spin_is_a_hang(void)
{
	struct vm *vm = make_vm(SPIN);
	struct vm_exit e;
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);

	/* A register change pending for the next entry must not be lost when
	 * that entry is cut short. */
	vcpu__regs(vm)->rbx = 0x1234abcd;
	vcpu__mark_dirty(vm, KVM_SYNC_X86_REGS);
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 300));
	KT_ASSERT_EQ_U64(vm__deadline_ms(vm), 300);
	double t0 = now_ms();
	KT_ASSERT_OK(vcpu__run(vm, &e, 0));
	double t = now_ms() - t0;
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_BUDGET);
	KT_ASSERT_EQ_U64(e.rip, SPIN_JMP);
	CU_ASSERT(strstr(e.reason, "deadline: no KVM exit for 300 ms") != NULL);
	CU_ASSERT(t >= 290 && t < 600);
	printf("\n  [measured] spin with a 300 ms deadline ended after %.1f ms: %s\n", t, e.reason);
	KT_ASSERT_EQ_U64(vcpu__regs(vm)->rbx, 0x1234abcd);
	CU_ASSERT((vcpu__regs(vm)->rflags & (1 << 9)) == 0);       /* CLI ran */

	/* Passed stays passed: at once, without entering the guest. */
	uint64_t exits = vm__exit_count(vm);
	t0 = now_ms();
	KT_ASSERT_OK(vcpu__run(vm, &e, 0));
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_BUDGET);
	CU_ASSERT(now_ms() - t0 < 50);
	KT_ASSERT_EQ_U64(vm__exit_count(vm), exits);

	/* Set anew: the guest resumes and spins again for the new time. */
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 100));
	t0 = now_ms();
	KT_ASSERT_OK(vcpu__run(vm, &e, 0));
	t = now_ms() - t0;
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_BUDGET);
	KT_ASSERT_EQ_U64(e.rip, SPIN_JMP);
	CU_ASSERT(t >= 95 && t < 200);
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 0));
	KT_ASSERT_EQ_U64(vm__deadline_ms(vm), 0);
	vm__destroy(vm);
}

static void test_exit_storm_is_a_hang(void)
{
	struct vm *vm = make_vm(STORM);
	struct vm_exit e;
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);

	KT_ASSERT_OK(vm__set_deadline_ms(vm, 200));
	double t0 = now_ms();
	KT_ASSERT_OK(vcpu__run(vm, &e, 0));
	double t = now_ms() - t0;
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_BUDGET);
	CU_ASSERT(strstr(e.reason, "deadline: no result within 200 ms") != NULL);
	CU_ASSERT(t >= 195 && t < 400);
	size_t len;
	vm__console(vm, &len);
	CU_ASSERT(len > 100);                 /* it did run and exit meanwhile */
	vm__destroy(vm);
}

/* A guest that ends in time does not notice the deadline. */
static void test_normal_guest_unaffected(void)
{
	struct vm *vm = make_vm(COUNT);
	struct vm_exit e;
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);

	uint64_t n = calibrate(vm, 50);
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 5000));
	for (int i = 0; i < 5; i++) {
		set_rcx(vm, n);                   /* ~50 ms without an exit */
		KT_ASSERT_OK(vcpu__run(vm, &e, 10));
		KT_ASSERT_EQ_U64(e.kind, VM_EXIT_HCALL);
		KT_ASSERT_EQ_U64(vcpu__regs(vm)->rcx, 0);
	}
	for (int i = 0; i < 2000; i++) {      /* short runs, many exits */
		set_rcx(vm, 1);
		if (vcpu__run(vm, &e, 10) || e.kind != VM_EXIT_HCALL) {
			CU_FAIL("short run did not end in its hypercall");
			break;
		}
	}
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 0));
	vm__destroy(vm);
}

static volatile unsigned long alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static void alarm_every_us(long us)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = us ? on_alarm : SIG_IGN;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = { { 0, us }, { 0, us } };
	setitimer(ITIMER_REAL, &it, NULL);
}

/* Other signals interrupt KVM_RUN too: the run goes on, exactly. */
static void test_foreign_signals(void)
{
	struct vm *vm = make_vm(COUNT);
	struct vm_exit e;
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);

	uint64_t n = calibrate(vm, 100);
	KT_ASSERT_OK(vm__set_deadline_ms(vm, 10000));
	alarms = 0;
	alarm_every_us(50);
	set_rcx(vm, n);
	KT_ASSERT_OK(vcpu__run(vm, &e, 10));
	alarm_every_us(0);
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_HCALL);
	KT_ASSERT_EQ_U64(vcpu__regs(vm)->rcx, 0);
	CU_ASSERT(alarms > 10);
	vm__destroy(vm);

	/* Breakpoints under a signal storm: each hit reported once, none
	 * lost (an interrupted step-over must be retried, not dropped). */
	struct elf_image img;
	struct vm_config cfg = { 0 };
	uint64_t bp;
	vm = vm__create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vm);
	KT_ASSERT_OK(elf__load(vm, KT_GUEST("test-loop"), &img));
	KT_ASSERT_OK(vm__boot_long_mode(vm, img.entry, "s"));
	KT_ASSERT_OK(sym__resolve(&img.symtab, "bp_target", &bp));
	KT_ASSERT_OK(dbg__set_breakpoint(vm, 0, bp));
	alarms = 0;
	alarm_every_us(200);
	int bad = 0;
	for (int pass = 0; pass < 30 && !bad; pass++) {
		dbg__reset_hits(vm);
		do {
			if (vcpu__run(vm, &e, 1000)) {
				bad = 1;
				break;
			}
		} while (e.kind == VM_EXIT_BREAKPOINT ||
			 (e.kind == VM_EXIT_HCALL && e.hcall.nr != KINJECT_HC_NOP));
		if (bad || e.kind != VM_EXIT_HCALL || e.hcall.args[0] != 10 || e.hcall.args[1] != 10 ||
		    dbg__hits(vm, 0) != 10) {
			fprintf(stderr, "pass %d: %s (%s), args %llu/%llu, hits %llu\n", pass,
				vm_exit__name(e.kind), e.reason, (unsigned long long)e.hcall.args[0],
				(unsigned long long)e.hcall.args[1], (unsigned long long)dbg__hits(vm, 0));
			bad = 1;
		}
		/* Let the rest of the pass run (the step program, NOP 11). */
		if (!bad && (vcpu__run(vm, &e, 1000) || e.kind != VM_EXIT_HCALL))
			bad = 1;
	}
	alarm_every_us(0);
	CU_ASSERT(!bad);
	CU_ASSERT(alarms > 10);
	printf("\n  [measured] %lu foreign signals during 30 breakpoint passes\n", alarms);
	vm__destroy(vm);
	elf__free(&img);
}

/* One VM's deadline fires while another VM runs on the same thread: that
 * run goes on; the first VM's next run ends at once. */
static void test_two_vms(void)
{
	struct vm *a = make_vm(SPIN), *b = make_vm(COUNT);
	struct vm_exit e;
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);

	uint64_t n = calibrate(b, 300);
	KT_ASSERT_OK(vm__set_deadline_ms(a, 50));
	set_rcx(b, n);
	KT_ASSERT_OK(vcpu__run(b, &e, 10));
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_HCALL);
	KT_ASSERT_EQ_U64(vcpu__regs(b)->rcx, 0);
	double t0 = now_ms();
	KT_ASSERT_OK(vcpu__run(a, &e, 0));
	KT_ASSERT_EQ_U64(e.kind, VM_EXIT_BUDGET);
	CU_ASSERT(now_ms() - t0 < 50);
	vm__destroy(a);
	vm__destroy(b);
}

static CU_TestInfo tests[] = {
	{ "cli; jmp . ends in VM_EXIT_BUDGET at the deadline", test_spin_is_a_hang },
	{ "exits without a result end at the deadline", test_exit_storm_is_a_hang },
	{ "a guest that finishes in time is unaffected", test_normal_guest_unaffected },
	{ "foreign signals: the run goes on, breakpoints exact", test_foreign_signals },
	{ "one VM's deadline does not end another's run", test_two_vms },
	CU_TEST_INFO_NULL,
};

int main(void)
{
	struct kt_suite s = { .name = "vmm hang guard", .needs_kvm = true, .tests = tests };
	return kt_main(&s);
}
