/* SPDX-License-Identifier: MIT */
/*
 * The per-CPU area and the layout block.  kinject_percpu gets a page of its
 * own: an entry variant with page-table isolation maps it into the user
 * page tables (SYSCALL scratch, CR3 values), and nothing else of the kernel
 * may share that page.  Written in assembly because C gives no control over
 * what follows an object in its section.
 */
#include <kinject/abi.h>

	.section .data, "aw"
	.balign 4096
	.globl kinject_percpu
	.type kinject_percpu, @object
	.size kinject_percpu, KINJECT_PCPU_SIZE
kinject_percpu:
	.fill 4096, 1, 0

	.balign 64
	.globl kinject_layout
	.type kinject_layout, @object
kinject_layout:
	.fill 1024, 1, 0
	.size kinject_layout, . - kinject_layout
