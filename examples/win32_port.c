/* SPDX-License-Identifier: MIT */
/*
 * win32_port.c — a program written against the Windows documentation of
 * the four memory-notification APIs, built unchanged on Linux with
 * memnotify's Windows face:
 *
 *   cc -o win32_port win32_port.c $(pkg-config --cflags --libs memnotify)
 *   ./win32_port            # then, from another shell: memnotify nmi PID
 *
 * It registers a bad-memory callback, an NMI callback, a secure-memory-cache
 * callback over a secured buffer and a CLR-style memory-notification
 * callback, then exercises each once with real events and waits for
 * low/high memory resource notifications for a few seconds.
 */
#include <memnotify/win32.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile LONG g_nmiCount;
static volatile LONG g_badMemoryCount;

/* Runs at "HIGH_LEVEL": here, inside a signal handler.  No printf. */
static BOOLEAN NmiCallback(PVOID Context, BOOLEAN Handled)
{
	(void)Context;
	(void)Handled;
	__atomic_add_fetch(&g_nmiCount, 1, __ATOMIC_RELAXED);
	return TRUE; /* handled: the process goes on */
}

static VOID CALLBACK BadMemoryCallbackRoutine(VOID)
{
	__atomic_add_fetch(&g_badMemoryCount, 1, __ATOMIC_RELAXED);
}

/* Called before the secured range is freed or re-protected.  Drops the
   "cached translation" and reports that it did. */
static BOOLEAN CALLBACK SecureMemoryCacheCallback(PVOID Addr, SIZE_T Range)
{
	static const char msg[] = "secure-memory-cache callback: range changed\n";

	(void)Addr;
	(void)Range;
	ssize_t r = write(2, msg, sizeof(msg) - 1); /* may run in a signal handler */
	(void)r;
	return TRUE;
}

/* A minimal ICLRMemoryNotificationCallback object. */
static HRESULT STDMETHODCALLTYPE Cb_QueryInterface(ICLRMemoryNotificationCallback *This,
						  REFIID riid, void **ppv)
{
	(void)riid;
	*ppv = This;
	return S_OK;
}
static ULONG STDMETHODCALLTYPE Cb_AddRef(ICLRMemoryNotificationCallback *This)
{
	(void)This;
	return 2;
}
static ULONG STDMETHODCALLTYPE Cb_Release(ICLRMemoryNotificationCallback *This)
{
	(void)This;
	return 1;
}
static HRESULT STDMETHODCALLTYPE Cb_OnMemoryNotification(ICLRMemoryNotificationCallback *This,
							EMemoryAvailable level)
{
	(void)This;
	printf("OnMemoryNotification: %s\n",
	       level == eMemoryAvailableLow ? "eMemoryAvailableLow"
	       : level == eMemoryAvailableHigh ? "eMemoryAvailableHigh"
					       : "eMemoryAvailableNeutral");
	fflush(stdout);
	return S_OK;
}
static const ICLRMemoryNotificationCallbackVtbl CbVtbl = {
	Cb_QueryInterface, Cb_AddRef, Cb_Release, Cb_OnMemoryNotification,
};
static ICLRMemoryNotificationCallback g_callback = { &CbVtbl };

int main(void)
{
	IHostMemoryManager *host = NULL;
	PVOID nmi, badMem;
	HANDLE secure, lowMem, highMem;
	DWORD load = 0;
	SIZE_T avail = 0;
	void *buffer = NULL;
	BOOL state;

	/* KeRegisterNmiCallback */
	nmi = KeRegisterNmiCallback(NmiCallback, NULL);
	if (!nmi) {
		fprintf(stderr, "KeRegisterNmiCallback failed: %u\n", GetLastError());
		return 1;
	}
	printf("pid %d: try `memnotify nmi %d`\n", (int)getpid(), (int)getpid());

	/* RegisterBadMemoryNotification */
	badMem = RegisterBadMemoryNotification(BadMemoryCallbackRoutine);
	if (!badMem) {
		fprintf(stderr, "RegisterBadMemoryNotification failed: %u\n", GetLastError());
		return 1;
	}

	/* IHostMemoryManager::RegisterMemoryNotificationCallback */
	if (MnGetHostMemoryManager(&host) != S_OK ||
	    host->lpVtbl->RegisterMemoryNotificationCallback(host, &g_callback) != S_OK) {
		fprintf(stderr, "RegisterMemoryNotificationCallback failed\n");
		return 1;
	}
	if (host->lpVtbl->GetMemoryLoad(host, &load, &avail) == S_OK)
		printf("memory load %u%%, %zu MiB available\n", load, (size_t)(avail >> 20));

	/* AddSecureMemoryCacheCallback over a secured buffer */
	if (!AddSecureMemoryCacheCallback(SecureMemoryCacheCallback)) {
		fprintf(stderr, "AddSecureMemoryCacheCallback failed: %u\n", GetLastError());
		return 1;
	}
	host->lpVtbl->VirtualAlloc(host, NULL, 1 << 20, MEM_RESERVE | MEM_COMMIT,
				   PAGE_READWRITE, eTaskCritical, &buffer);
	memset(buffer, 0, 1 << 20);
	secure = MmSecureVirtualMemory(buffer, 1 << 20, PAGE_READWRITE);
	if (!secure) {
		fprintf(stderr, "MmSecureVirtualMemory failed: %u\n", GetLastError());
		return 1;
	}
	DWORD old;
	host->lpVtbl->VirtualProtect(host, buffer, 4096, PAGE_READONLY, &old); /* -> callback */

	/* CreateMemoryResourceNotification */
	lowMem = CreateMemoryResourceNotification(LowMemoryResourceNotification);
	highMem = CreateMemoryResourceNotification(HighMemoryResourceNotification);
	if (!lowMem || !highMem) {
		fprintf(stderr, "CreateMemoryResourceNotification failed: %u\n", GetLastError());
		return 1;
	}
	QueryMemoryResourceNotification(highMem, &state);
	printf("high-memory notification: %s\n", state ? "signaled" : "not signaled");
	if (WaitForSingleObject(lowMem, 3000) == WAIT_OBJECT_0)
		printf("low memory!\n");
	else
		printf("no low-memory notification in 3 s\n");

	printf("NMIs handled: %d, bad-memory notifications: %d\n", (int)g_nmiCount,
	       (int)g_badMemoryCount);

	MmUnsecureVirtualMemory(secure);
	host->lpVtbl->VirtualFree(host, buffer, 0, MEM_RELEASE);
	RemoveSecureMemoryCacheCallback(SecureMemoryCacheCallback);
	CloseHandle(lowMem);
	CloseHandle(highMem);
	host->lpVtbl->Release(host);
	UnregisterBadMemoryNotification(badMem);
	KeDeregisterNmiCallback(nmi);
	return 0;
}
