/* SPDX-License-Identifier: MIT */
/*
 * memnotify/win32.h included after Wine's <windows.h> and <psapi.h>:
 * Wine's types and constants stand, memnotify's user-mode functions are
 * the Mn-prefixed ones, and the program runs.  Built by
 * tools/check-wine-headers.sh against Debian's libwine-dev headers.
 */
#include <windows.h>
#include <psapi.h>
#include <memnotify/win32.h>

static BOOLEAN MN_CALLBACK cb(PVOID a, SIZE_T n) { (void)a; (void)n; return FALSE; }
static BOOLEAN nmi(PVOID c, BOOLEAN h) { (void)c; return h; }

int main(void)
{
	PSAPI_WORKING_SET_EX_INFORMATION e = { 0 };
	HANDLE h = MnCreateMemoryResourceNotification(LowMemoryResourceNotification);
	BOOL s;
	MnQueryMemoryResourceNotification(h, &s);
	MnCloseHandle(h);
	MnAddSecureMemoryCacheCallback(cb);
	MnRemoveSecureMemoryCacheCallback(cb);
	PVOID k = KeRegisterNmiCallback(nmi, NULL);
	KeDeregisterNmiCallback(k);
	e.VirtualAddress = &e;
	MnQueryWorkingSetEx(MnGetCurrentProcess(), &e, sizeof(e));
	return (e.VirtualAttributes.Flags & MN_WORKING_SET_EX_BAD) ? 1 : 0;
}
