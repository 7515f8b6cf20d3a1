/* SPDX-License-Identifier: MIT */
/*
 * deadline.c: the wall-clock bound on a run.  The exit budget cannot catch
 * a guest that spins without exiting (`cli; jmp .`): KVM_RUN simply never
 * returns.  A deadline is one POSIX timer per VM, armed once when the
 * deadline is set (absolute, CLOCK_MONOTONIC) and aimed at the thread that
 * runs the vCPU.  Its signal interrupts KVM_RUN (EINTR); the handler also
 * sets kvm_run->immediate_exit, so a signal that lands between the run
 * loop's last check and the ioctl still makes that KVM_RUN return at once.
 * The run loop reads the clock only when it starts and after an EINTR,
 * never per exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"

/* Older glibc names the SIGEV_THREAD_ID target only by its union field. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* The kvm_run this thread is inside vcpu__run for, NULL outside. */
static __thread struct kvm_run *volatile running;

static void on_deadline(int sig)
{
	struct kvm_run *r = running;

	(void)sig;
	if (r)
		r->immediate_exit = 1;
}

/* Asked afresh each time (only when a deadline is armed, not per exit): a
 * cached thread id goes stale in a child after fork(). */
static pid_t tid(void)
{
	return gettid();
}

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

/* Our handler on VM_DEADLINE_SIGNAL (SA_RESTART: other blocking calls of
 * the process are not disturbed; KVM_RUN returns EINTR regardless), and the
 * signal unblocked in this thread, else it could never interrupt KVM_RUN. */
static int install_handler(void)
{
	struct sigaction sa, old;
	sigset_t set;

	if (sigaction(VM_DEADLINE_SIGNAL, NULL, &old))
		return vmm__fail("deadline: sigaction(%d): %s", VM_DEADLINE_SIGNAL, strerror(errno));
	if (old.sa_handler != on_deadline) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_deadline;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART;
		if (sigaction(VM_DEADLINE_SIGNAL, &sa, NULL))
			return vmm__fail("deadline: sigaction(%d): %s", VM_DEADLINE_SIGNAL, strerror(errno));
	}
	sigemptyset(&set);
	sigaddset(&set, VM_DEADLINE_SIGNAL);
	errno = pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (errno)
		return vmm__fail("deadline: unblocking signal %d: %s", VM_DEADLINE_SIGNAL, strerror(errno));
	return 0;
}

static void drop_timer(struct vm *vm)
{
	if (vm->deadline_timer_ok)
		timer_delete(vm->deadline_timer);
	vm->deadline_timer_ok = false;
}

/* Arms the timer at vm->deadline_ns for the calling thread (a new timer if
 * the last one was aimed at another thread). */
static int arm(struct vm *vm)
{
	if (vm->deadline_timer_ok && vm->deadline_tid != tid())
		drop_timer(vm);
	if (!vm->deadline_timer_ok) {
		struct sigevent sev;

		if (install_handler())
			return -1;
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_THREAD_ID;
		sev.sigev_signo = VM_DEADLINE_SIGNAL;
		sev.sigev_notify_thread_id = tid();
		if (timer_create(CLOCK_MONOTONIC, &sev, &vm->deadline_timer))
			return vmm__fail("deadline: timer_create: %s", strerror(errno));
		vm->deadline_timer_ok = true;
		vm->deadline_tid = tid();
	}
	struct itimerspec its = { .it_value = {
		.tv_sec = vm->deadline_ns / 1000000000ULL,
		.tv_nsec = vm->deadline_ns % 1000000000ULL } };
	if (timer_settime(vm->deadline_timer, TIMER_ABSTIME, &its, NULL))
		return vmm__fail("deadline: timer_settime: %s", strerror(errno));
	return 0;
}

int vm__set_deadline_ms(struct vm *vm, uint64_t ms)
{
	if (!ms) {
		vm->deadline_ns = 0;
		if (vm->deadline_timer_ok) {
			struct itimerspec off = { 0 };
			timer_settime(vm->deadline_timer, 0, &off, NULL);
		}
		return 0;
	}
	if (ms > 1000ULL * 3600 * 24 * 365)
		return vmm__fail("deadline of %llu ms: more than a year", (unsigned long long)ms);
	vm->deadline_ms = ms;
	vm->deadline_ns = mono_ns() + ms * 1000000ULL;
	vm->deadline_exits = vm->exits;
	if (arm(vm)) {
		vm->deadline_ns = 0;
		return -1;
	}
	return 0;
}

uint64_t vm__deadline_ms(const struct vm *vm)
{
	return vm->deadline_ns ? vm->deadline_ms : 0;
}

int deadline__begin(struct vm *vm)
{
	running = vm->run;
	/* Run from another thread than the one that set the deadline: aim
	 * the timer here, or its signal would interrupt the wrong thread. */
	if (vm->deadline_ns && vm->deadline_tid != tid() && arm(vm)) {
		running = NULL;
		return -1;
	}
	return 0;
}

void deadline__end(struct vm *vm)
{
	(void)vm;
	running = NULL;
}

bool deadline__passed(const struct vm *vm)
{
	return vm->deadline_ns && mono_ns() >= vm->deadline_ns;
}

void deadline__destroy(struct vm *vm)
{
	drop_timer(vm);
	vm->deadline_ns = 0;
}
