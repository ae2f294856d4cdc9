/* SPDX-License-Identifier: MIT */
/*
 * Last error, the process pseudo-handle and the error and protection
 * translations every part of the face uses.
 */
#include <sys/mman.h>

#include "face.h"

static __thread DWORD last_error;

DWORD MnGetLastError(void)
{
	return last_error;
}

void MnSetLastError(DWORD dwErrCode)
{
	last_error = dwErrCode;
}

HANDLE MnGetCurrentProcess(void)
{
	return (HANDLE)(intptr_t)-1;
}

void mn__w32_push(struct mn__w32_link **head, void *node)
{
	struct mn__w32_link *n = node;

	n->next = *head;
	*head = n;
}

void *mn__w32_take(struct mn__w32_link **head, const void *node)
{
	for (struct mn__w32_link **pp = head; *pp; pp = &(*pp)->next)
		if (*pp == node) {
			struct mn__w32_link *n = *pp;
			*pp = n->next;
			return n;
		}
	return NULL;
}

DWORD mn__w32_error_of(int err)
{
	switch (err) {
	case -ENOMEM:
	case -EMFILE:
	case -ENFILE:
	case -EAGAIN:
		return ERROR_NOT_ENOUGH_MEMORY;
	case -ENOENT:
	case -EBADF:
		return ERROR_INVALID_HANDLE;
	case -EFAULT:
		return ERROR_INVALID_ADDRESS;
	case -EACCES:
	case -EPERM:
		return 5; /* ERROR_ACCESS_DENIED */
	case -EINVAL:
		return ERROR_INVALID_PARAMETER;
	default:
		return ERROR_NOT_SUPPORTED;
	}
}

DWORD mn__w32_page_of_prot(int prot)
{
	bool r = prot & PROT_READ, w = prot & PROT_WRITE, x = prot & PROT_EXEC;

	if (x)
		return w ? PAGE_EXECUTE_READWRITE : r ? PAGE_EXECUTE_READ : PAGE_EXECUTE;
	if (w)
		return PAGE_READWRITE; /* x86 cannot write without reading */
	return r ? PAGE_READONLY : PAGE_NOACCESS;
}

int mn__w32_prot_of_page(DWORD page)
{
	switch (page) {
	case PAGE_NOACCESS: return PROT_NONE;
	case PAGE_READONLY: return PROT_READ;
	case PAGE_READWRITE:
	case PAGE_WRITECOPY: return PROT_READ | PROT_WRITE;
	case PAGE_EXECUTE: return PROT_EXEC;
	case PAGE_EXECUTE_READ: return PROT_READ | PROT_EXEC;
	case PAGE_EXECUTE_READWRITE:
	case PAGE_EXECUTE_WRITECOPY: return PROT_READ | PROT_WRITE | PROT_EXEC;
	default: return -1;
	}
}
