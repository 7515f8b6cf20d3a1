/* SPDX-License-Identifier: MIT */
/*
 * error.c: the library's one-line error.  Every failing function leaves a
 * line here naming what failed (file, ioctl, option) and why; the caller
 * decides whether and how to print it.
 */
#include <stdarg.h>
#include <stdio.h>
#include "vmm.h"

static _Thread_local char last_error[512] = "no error";

const char *vmm__error(void)
{
	return last_error;
}

int vmm__fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return -1;
}
