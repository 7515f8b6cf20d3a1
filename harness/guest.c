/* SPDX-License-Identifier: MIT */
/*
 * One booted testbed guest: create the VM, load the ELF, enter long mode,
 * and turn what the guest does (hypercalls, halts, triple faults, hangs)
 * into verdicts.  Every command goes through here.
 */
#include <string.h>
#include "kinject.h"
#include "quirks.h"

/*
 * What the host KVM cannot do, as guest command-line options: the guest then
 * avoids it (system calls by int $0x80, the ss16 stack segment from the GDT)
 * and its scenarios say what they skipped.  What the VMM emulates instead
 * (SYSCALL, INT n in 64-bit ring 3: vmm/sysemu.c, at the sites the guest
 * lists) the guest is not told about: it runs the real paths.  Warned
 * about once, on stderr, so the console stays identical from run to run.
 */
const char *guest__host_options(void)
{
	static const struct {
		enum quirk q;
		const char *option;       /* what the guest is told */
		const char *consequence;  /* what the user is told */
		/* When the VMM emulates it: what the guest is still told (a
		 * fallback for what the VMM cannot catch: INT n in compat-mode
		 * code, which has no sites), and what the user is told. */
		const char *emulated_option;
		const char *emulated;
	} quirks[] = {
		{ QUIRK_SYSCALL, " syscall=0", "SYSCALL/SYSRET paths are not exercised",
		  "", "the VMM runs the guest's SYSCALLs" },
		{ QUIRK_INT80, " int80=0", "the guest runs int $0x80 from its #UD handler; "
					   "the int $0x80 gate is not exercised",
		  " int80=0", "the VMM runs the guest's 64-bit INT n (compat-mode int $0x80 "
			      "runs from the guest's #UD handler)" },
		{ QUIRK_LDT_SS, " ldt=0", "ss16 uses the GDT's 16-bit stack segment", "", "" },
		{ QUIRK_RING3_HWBP, "", "ring-3 breakpoints are emulated with INT3 and the guest's "
					"#BP entry; no single-step in 64-bit ring 3", "", "" },
	};
	static char opts[64];
	static bool done;

	if (done)
		return opts;
	done = true;
	for (size_t i = 0; i < sizeof(quirks) / sizeof(quirks[0]); i++) {
		enum quirk_state st = quirks__state(quirks[i].q);
		if (st == QUIRK_WORKS)
			continue;
		if (st == QUIRK_EMULATED) {
			fprintf(stderr, "kinject: warning: %s; %s\n", vmm__error(), quirks[i].emulated);
			strcat(opts, quirks[i].emulated_option);
			continue;
		}
		fprintf(stderr, "kinject: warning: %s; %s\n", vmm__error(), quirks[i].consequence);
		strcat(opts, quirks[i].option);
	}
	return opts;
}

/* The guest's SYSCALL / INT n sites (abi.h KINJECT_SYSEMU_SITES) to the
 * VMM, as user addresses.  False if the image lists none. */
static bool pass_sysemu_sites(struct guest *g)
{
	const struct symtab *t = &g->img.symtab;
	const struct symbol *a = sym__find(t, "__sysemu_sites_start"),
			    *b = sym__find(t, "__sysemu_sites_end"),
			    *u = sym__find(t, "__user_text_start"),
			    *ue = sym__find(t, "__user_text_end");
	uint64_t site[SYSEMU_MAX_SITES];
	size_t n = 0;

	if (!a || !b || !u || !ue || b->addr <= a->addr || (b->addr - a->addr) % 8 ||
	    (b->addr - a->addr) / 8 > SYSEMU_MAX_SITES)
		return false;
	for (uint64_t p = a->addr; p < b->addr; p += 8) {
		uint64_t link;
		if (vm__read_gva(g->vm, 0, p, &link, sizeof(link)) || link < u->addr ||
		    link >= ue->addr)
			return false;
		site[n++] = KINJECT_USER_TEXT_VA + (link - u->addr);
	}
	return vm__sysemu_sites(g->vm, site, n) == 0;
}

int guest__boot(struct guest *g, const struct guest_opts *o)
{
	const char *variant = o->variant ? o->variant : "linux64";
	const char *scenario = o->scenario ? o->scenario : "all";
	char path[4096], cmdline[KINJECT_CMDLINE_MAX];
	struct vm_config cfg = { .mem_size = o->mem_size, .console = o->console };

	memset(g, 0, sizeof(*g));
	g->out = o->console;
	g->announce = o->announce;
	if (!o->elf)
		kinject__default_guest(variant, path, sizeof(path));
	/* Parse the ELF before anything else, so a bad file costs nothing and
	 * its one-line reason is all the user sees. */
	if (elf__open(o->elf ? o->elf : path, &g->img, NULL))
		return -1;
	/* SYSCALL emulated, but only where the guest lists its sites. */
	bool no_sites = quirks__state(QUIRK_SYSCALL) == QUIRK_EMULATED &&
			!sym__find(&g->img.symtab, "__sysemu_sites_start");
	elf__free(&g->img);

	if (snprintf(cmdline, sizeof(cmdline), "scenario=%s%s%s%s%s", scenario,
		     guest__host_options(), no_sites ? " syscall=0" : "",
		     o->cmdline_extra ? " " : "", o->cmdline_extra ? o->cmdline_extra : "")
	    >= (int)sizeof(cmdline))
		return vmm__fail("guest command line longer than %d bytes", KINJECT_CMDLINE_MAX - 1);

	g->vm = vm__create(&cfg);
	if (!g->vm)
		return -1;
	if (elf__load(g->vm, o->elf ? o->elf : path, &g->img) ||
	    vm__boot_long_mode(g->vm, g->img.entry, cmdline)) {
		guest__destroy(g);
		return -1;
	}
	g->sysemu = sym__find(&g->img.symtab, "__sysemu_sites_start") &&
		    (quirks__state(QUIRK_SYSCALL) == QUIRK_EMULATED ||
		     quirks__state(QUIRK_INT80) == QUIRK_EMULATED);
	if (sym__find(&g->img.symtab, "__sysemu_sites_start") && !pass_sysemu_sites(g)) {
		vmm__fail("%s: its SYSCALL/INT n sites (__sysemu_sites_start.._end) are unreadable, "
			  "not in .user.text, or more than %d", g->img.path, SYSEMU_MAX_SITES);
		guest__destroy(g);
		return -1;
	}
	return 0;
}

void guest__destroy(struct guest *g)
{
	if (g->vm)
		vm__destroy(g->vm);
	elf__free(&g->img);
	g->vm = NULL;
}

const char *guest__string(struct guest *g, uint64_t va, char *buf, size_t len)
{
	size_t i;

	if (!va) {
		snprintf(buf, len, "(no message)");
		return buf;
	}
	/* Byte by byte through the page-table walk: strings may cross pages. */
	for (i = 0; i + 1 < len; i++) {
		if (vm__read_gva(g->vm, 0, va + i, &buf[i], 1) || !buf[i])
			break;
	}
	buf[i] = '\0';
	if (i == 0)
		snprintf(buf, len, "(unreadable message at 0x%llx)", (unsigned long long)va);
	return buf;
}

const char *guest__where(struct guest *g, uint64_t addr, char *buf, size_t len)
{
	return sym__describe(&g->img.symtab, addr, buf, len);
}

static const char *oops_reason(uint64_t r)
{
	switch (r) {
	case KINJECT_OOPS_KERNEL_FAULT:      return "kernel fault";
	case KINJECT_OOPS_SCHED_ATOMIC:      return "scheduling while atomic";
	case KINJECT_OOPS_PREEMPT_UNDERFLOW: return "preempt count underflow";
	case KINJECT_OOPS_UNEXPECTED_VECTOR: return "unexpected vector";
	case KINJECT_OOPS_DOUBLE_FAULT:      return "double fault";
	case KINJECT_OOPS_BAD_STATE:         return "bad state";
	case KINJECT_OOPS_USER_CHECK:        return "user check";
	default:                             return "unknown oops";
	}
}

/* The frame an oops names, as "vector V error E at RIP (sym+off) CS RSP". */
static void describe_oops_frame(struct guest *g, uint64_t va, char *buf, size_t len)
{
	struct kinject_frame f;
	char where[128];

	if (!va || vm__read_gva(g->vm, 0, va, &f, sizeof(f))) {
		snprintf(buf, len, "no frame");
		return;
	}
	snprintf(buf, len, "vector %llu error 0x%llx at %s cs 0x%llx rsp 0x%llx rflags 0x%llx",
		 (unsigned long long)f.vector, (unsigned long long)f.error_code,
		 guest__where(g, f.rip, where, sizeof(where)), (unsigned long long)f.cs,
		 (unsigned long long)f.rsp, (unsigned long long)f.rflags);
}

static bool judge_hcall(struct guest *g, const struct vm_exit *e, struct verdict *v)
{
	char msg[256], frame[256];
	const uint64_t *a = e->hcall.args;

	switch (e->hcall.nr) {
	case KINJECT_HC_READY:
		if (vm__read_gva(g->vm, 0, a[0], &g->layout, sizeof(g->layout)) ||
		    g->layout.magic != KINJECT_LAYOUT_MAGIC) {
			verdict__set(v, VERDICT_ERROR, "bad layout",
				     "READY passed no valid layout block at 0x%llx",
				     (unsigned long long)a[0]);
			return true;
		}
		g->ready = true;
		return false;
	case KINJECT_HC_VERDICT:
		guest__string(g, a[1], msg, sizeof(msg));
		if (a[0] == KINJECT_VERDICT_PASS)
			verdict__set(v, VERDICT_PASS, "pass", "%s", msg);
		else if (a[0] == KINJECT_VERDICT_SKIP)
			verdict__set(v, VERDICT_SKIP, "guest skip", "%s", msg);
		else
			verdict__set(v, VERDICT_FAIL, "guest fail", "%s", msg);
		return true;
	case KINJECT_HC_OOPS:
		guest__string(g, a[1], msg, sizeof(msg));
		describe_oops_frame(g, a[2], frame, sizeof(frame));
		verdict__set(v, VERDICT_FAIL, "oops", "%s: %s (%s)", oops_reason(a[0]), msg, frame);
		return true;
	case KINJECT_HC_SCENARIO_BEGIN:
		if (g->announce && g->out)
			fprintf(g->out, "[kinject] scenario %s: begin\n",
				guest__string(g, a[0], msg, sizeof(msg)));
		return false;
	case KINJECT_HC_SCENARIO_END:
		if (a[1] != KINJECT_VERDICT_PASS)
			g->scenarios_failed++;
		if (g->announce && g->out)
			fprintf(g->out, "[kinject] scenario %s: %s\n",
				guest__string(g, a[0], msg, sizeof(msg)),
				a[1] == KINJECT_VERDICT_PASS ? "PASS" :
				a[1] == KINJECT_VERDICT_SKIP ? "SKIP" : "FAIL");
		return false;
	case KINJECT_HC_NOP:
	case KINJECT_HC_PROBE:
		return false;
	default:
		verdict__set(v, VERDICT_FAIL, "bad hypercall", "unknown hypercall %u at %s",
			     e->hcall.nr, guest__where(g, e->rip, msg, sizeof(msg)));
		return true;
	}
}

bool guest__judge_exit(struct guest *g, const struct vm_exit *e, struct verdict *v)
{
	char where[128];

	guest__where(g, e->rip, where, sizeof(where));
	switch (e->kind) {
	case VM_EXIT_HCALL:
		return judge_hcall(g, e, v);
	case VM_EXIT_HLT:
		verdict__set(v, VERDICT_FAIL, "halt", "guest halted without a verdict at %s", where);
		return true;
	case VM_EXIT_SHUTDOWN:
		verdict__set(v, VERDICT_FAIL, "triple fault", "guest triple-faulted (last RIP %s)", where);
		return true;
	case VM_EXIT_BUDGET:
		verdict__set(v, VERDICT_FAIL, "hang", "no verdict: %s (RIP %s)",
			     e->reason[0] ? e->reason : "exit budget used up", where);
		return true;
	case VM_EXIT_FAIL_ENTRY:
		verdict__set(v, VERDICT_FAIL, "entry failure", "VM entry failed at %s: %s", where, e->reason);
		return true;
	case VM_EXIT_INTERNAL_ERROR:
		verdict__set(v, VERDICT_FAIL, "kvm internal error", "at %s: %s", where, e->reason);
		return true;
	case VM_EXIT_BREAKPOINT:
	case VM_EXIT_SINGLESTEP:
		return false;   /* whoever armed them handles them */
	case VM_EXIT_UNEXPECTED:
	default:
		verdict__set(v, VERDICT_FAIL, "unexpected exit", "at %s: %s", where, e->reason);
		return true;
	}
}

static bool run_until_bounded(struct guest *g, struct verdict *v, uint64_t max_exits,
			      bool stop_at_ready)
{
	struct vm_exit e;
	uint64_t start = vm__exit_count(g->vm);

	for (;;) {
		uint64_t used = vm__exit_count(g->vm) - start;

		if (max_exits && used >= max_exits) {
			char where[128];
			verdict__set(v, VERDICT_FAIL, "hang", "no verdict after %llu exits (RIP %s)",
				     (unsigned long long)used,
				     guest__where(g, vcpu__regs(g->vm)->rip, where, sizeof(where)));
			return false;
		}
		if (vcpu__run(g->vm, &e, max_exits ? max_exits - used : 0)) {
			verdict__set(v, VERDICT_ERROR, "host error", "%s", vmm__error());
			return false;
		}
		if (guest__judge_exit(g, &e, v))
			return false;
		if (stop_at_ready && g->ready)
			return true;
	}
}

/* A guest that spins without exiting never uses up an exit budget: the
 * wall clock bounds each run too (a full linux64 boot with every scenario
 * takes about 1.2 s on the kvm_pvm test machines). */
#define GUEST_RUN_DEADLINE_MS 10000

static bool run_until(struct guest *g, struct verdict *v, uint64_t max_exits, bool stop_at_ready)
{
	bool r;

	if (vm__set_deadline_ms(g->vm, GUEST_RUN_DEADLINE_MS)) {
		verdict__set(v, VERDICT_ERROR, "host error", "%s", vmm__error());
		return false;
	}
	r = run_until_bounded(g, v, max_exits, stop_at_ready);
	vm__set_deadline_ms(g->vm, 0);
	return r;
}

bool guest__run_to_ready(struct guest *g, struct verdict *v, uint64_t max_exits)
{
	return run_until(g, v, max_exits, true);
}

void guest__run_to_verdict(struct guest *g, struct verdict *v, uint64_t max_exits)
{
	run_until(g, v, max_exits, false);
}
