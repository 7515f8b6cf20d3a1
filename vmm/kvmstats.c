/* SPDX-License-Identifier: MIT */
/*
 * kvmstats.c: the vCPU's counters as KVM keeps them (KVM_GET_STATS_FD,
 * the binary statistics interface of Linux 5.14+): what happened inside
 * KVM_RUN that the VMM never sees as an exit.  `kinject bench` uses them
 * to say where a case's time inside KVM_RUN goes; on kvm_pvm, for one,
 * the kernel emulates every guest instruction that runs with interrupts
 * disabled or NMIs blocked ("insn_emulation"), which is most of an entry
 * path.
 *
 * The descriptors are read once per VM, on first use; a value is one
 * pread.  A KVM without the interface (or a counter it does not keep)
 * answers -1 with the reason in vmm__error(): figures, never a failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include "internal.h"

static int stats_open(struct vm *vm)
{
	struct kvm_stats *st = &vm->stats;
	struct kvm_stats_header h;

	if (st->fd >= 0)
		return 0;
	if (st->failed)
		return vmm__fail("KVM statistics: %s", st->why);
	int fd = ioctl(vm->vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0) {
		snprintf(st->why, sizeof(st->why), "KVM_GET_STATS_FD: %s", strerror(errno));
		goto fail;
	}
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		snprintf(st->why, sizeof(st->why), "reading the statistics header: %s",
			 strerror(errno));
		close(fd);
		goto fail;
	}
	size_t one = sizeof(struct kvm_stats_desc) + h.name_size;
	char *d = malloc(one * h.num_desc);
	if (!d || pread(fd, d, one * h.num_desc, h.desc_offset) != (ssize_t)(one * h.num_desc)) {
		snprintf(st->why, sizeof(st->why), "reading %u statistics descriptors", h.num_desc);
		free(d);
		close(fd);
		goto fail;
	}
	st->fd = fd;
	st->desc = d;
	st->desc_size = one;
	st->ndesc = h.num_desc;
	st->data_offset = h.data_offset;
	return 0;
fail:
	st->failed = true;
	return vmm__fail("KVM statistics: %s", st->why);
}

int vcpu__kvm_stat(struct vm *vm, const char *name, uint64_t *val)
{
	struct kvm_stats *st = &vm->stats;

	if (stats_open(vm))
		return -1;
	for (unsigned i = 0; i < st->ndesc; i++) {
		const struct kvm_stats_desc *d = (const void *)(st->desc + i * st->desc_size);

		if (strcmp(d->name, name))
			continue;
		/* A cumulative or instant scalar (histograms are not asked for). */
		if (pread(st->fd, val, sizeof(*val), st->data_offset + d->offset) != sizeof(*val))
			return vmm__fail("KVM statistic %s: %s", name, strerror(errno));
		return 0;
	}
	return vmm__fail("KVM statistic %s: this KVM does not keep it", name);
}

void kvmstats__init(struct vm *vm)
{
	vm->stats.fd = -1;
}

void kvmstats__destroy(struct vm *vm)
{
	if (vm->stats.fd >= 0)
		close(vm->stats.fd);
	free(vm->stats.desc);
}
