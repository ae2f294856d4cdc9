/* SPDX-License-Identifier: MIT */
/*
 * memnotify/win32.h — the four Windows callback-registration APIs (and the
 * calls around them) under their Windows names, signatures, type sizes,
 * constant values and return conventions, for code ported from Windows.
 * Same library as the native API: `pkg-config --cflags --libs memnotify`.
 *
 * This face only translates: every function here is a thin layer over the
 * native mn_* API of <memnotify.h>, and docs/windows-mapping.md states each
 * mapping and every difference from Windows.
 *
 * Conventions, as on Windows:
 *  - BOOL functions return TRUE (1) or FALSE (0); HANDLE/PVOID functions
 *    return NULL on failure.  Both set the calling thread's last error
 *    (GetLastError()) on failure and leave it alone on success.
 *  - HRESULT methods return S_OK or an E_* / HOST_E_* code.
 *  - Sizes are bytes (SIZE_T), times are milliseconds (DWORD).
 *  - WINAPI, CALLBACK and STDMETHODCALLTYPE are empty: on Linux every
 *    function and callback uses the platform's one calling convention.
 *
 * Including this header after Wine's (or MinGW's) <windows.h>
 * ------------------------------------------------------------
 * Every type and constant is defined only when missing: basic types are
 * skipped as a group when <windows.h> came first (its windef.h defines
 * _WINDEF_), structures and enums are skipped when the Windows header that
 * defines them came first (winbase.h, psapi.h, guiddef.h), and each
 * constant is guarded by its own #ifndef.  Functions are different: Wine
 * declares kernel32 functions with WINAPI = __attribute__((ms_abi)) and
 * implements them itself (CloseHandle, WaitForSingleObject, ...), so after
 * <windows.h> this header declares memnotify's user-mode functions under
 * the prefix Mn (MnCloseHandle, MnAddSecureMemoryCacheCallback,
 * MnQueryWorkingSetEx, ...) and leaves the Windows names to Wine; the
 * kernel-mode names (KeRegisterNmiCallback, MmSecureVirtualMemory, ...)
 * keep theirs.  Callbacks passed to memnotify always use the Linux
 * convention: declare them with MN_CALLBACK (empty), not Wine's CALLBACK,
 * and use the MN_P... callback types (the compiler diagnoses a mismatch:
 * incompatible pointer types).  The library exports both spellings of
 * each user-mode function of the spec (RegisterBadMemoryNotification,
 * QueryWorkingSetEx, ...), but the generic kernel32 names (GetLastError,
 * SetLastError, GetCurrentProcess, CloseHandle, WaitForSingleObject) only
 * as Mn...: this header maps the Windows names to them.  Wine's psapi.h has no Bad bit: test (Flags & MN_WORKING_SET_EX_BAD).
 * Do not include Wine's mscoree.h with this header (its interfaces use
 * ms_abi); this header defines the three interfaces it needs.
 */
#ifndef MEMNOTIFY_WIN32_H
#define MEMNOTIFY_WIN32_H

#include <memnotify.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WINDEF_) || defined(__WINE_WINDOWS_H) || defined(_WINDOWS_)
#define MN_WIN32_AFTER_WINDOWS_H 1
#define MN_W32(name) Mn##name
#else
#define MN_W32(name) name
#endif

#define MN_CALLBACK /* the platform convention, always */

/* ------------------------------------------------------------------------
 * Types (windef.h, winnt.h, basetsd.h): Windows' sizes on LP64 Linux
 * ------------------------------------------------------------------------ */
#ifndef MN_WIN32_AFTER_WINDOWS_H
typedef void VOID;
typedef int BOOL;                     /* 32-bit, TRUE = 1 */
typedef BOOL *PBOOL;
typedef unsigned char BOOLEAN;        /* 8-bit */
typedef BOOLEAN *PBOOLEAN;
typedef unsigned int ULONG;           /* 32-bit, as on Windows */
typedef ULONG *PULONG;
typedef unsigned int DWORD;           /* 32-bit */
typedef DWORD *PDWORD;
typedef unsigned short WORD;
typedef int LONG;                     /* 32-bit */
typedef uintptr_t ULONG_PTR;          /* pointer-sized */
typedef ULONG_PTR SIZE_T;
typedef SIZE_T *PSIZE_T;
typedef void *PVOID;
typedef void *LPVOID;
typedef void *HANDLE;
typedef LONG NTSTATUS;
typedef LONG HRESULT;
#define WINAPI
#define CALLBACK
#define STDMETHODCALLTYPE
#endif
#ifndef NTAPI
#define NTAPI
#endif
#ifndef NT_SUCCESS
#define NT_SUCCESS(Status) (((NTSTATUS)(Status)) >= 0)
#endif
#ifndef INVALID_HANDLE_VALUE
#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)
#endif
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* Status, HRESULT and Win32 error codes (ntstatus.h, winerror.h). */
#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0x00000000)
#endif
#ifndef STATUS_INVALID_HANDLE
#define STATUS_INVALID_HANDLE ((NTSTATUS)0xC0000008)
#endif
#ifndef S_OK
#define S_OK ((HRESULT)0)
#endif
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005)
#endif
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003)
#endif
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057)
#endif
#ifndef E_NOTIMPL
#define E_NOTIMPL ((HRESULT)0x80004001)
#endif
#ifndef E_NOINTERFACE
#define E_NOINTERFACE ((HRESULT)0x80004002)
#endif
#ifndef E_OUTOFMEMORY
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#endif
#ifndef HOST_E_CLRNOTAVAILABLE
#define HOST_E_CLRNOTAVAILABLE ((HRESULT)0x80131023)
#endif
#ifndef HOST_E_TIMEOUT
#define HOST_E_TIMEOUT ((HRESULT)0x80131024)
#endif
#ifndef HOST_E_NOT_OWNER
#define HOST_E_NOT_OWNER ((HRESULT)0x80131025)
#endif
#ifndef HOST_E_ABANDONED
#define HOST_E_ABANDONED ((HRESULT)0x80131026)
#endif
#ifndef ERROR_INVALID_HANDLE
#define ERROR_INVALID_HANDLE 6L
#endif
#ifndef ERROR_NOT_ENOUGH_MEMORY
#define ERROR_NOT_ENOUGH_MEMORY 8L
#endif
#ifndef ERROR_BAD_LENGTH
#define ERROR_BAD_LENGTH 24L
#endif
#ifndef ERROR_NOT_SUPPORTED
#define ERROR_NOT_SUPPORTED 50L
#endif
#ifndef ERROR_INVALID_PARAMETER
#define ERROR_INVALID_PARAMETER 87L
#endif
#ifndef ERROR_INVALID_ADDRESS
#define ERROR_INVALID_ADDRESS 487L
#endif
#ifndef WAIT_OBJECT_0
#define WAIT_OBJECT_0 ((DWORD)0x00000000)
#endif
#ifndef WAIT_TIMEOUT
#define WAIT_TIMEOUT ((DWORD)0x00000102)
#endif
#ifndef WAIT_FAILED
#define WAIT_FAILED ((DWORD)0xFFFFFFFF)
#endif
#ifndef INFINITE
#define INFINITE 0xFFFFFFFF
#endif

/* Page protections (winnt.h). */
#ifndef PAGE_NOACCESS
#define PAGE_NOACCESS 0x01
#endif
#ifndef PAGE_READONLY
#define PAGE_READONLY 0x02
#endif
#ifndef PAGE_READWRITE
#define PAGE_READWRITE 0x04
#endif
#ifndef PAGE_WRITECOPY
#define PAGE_WRITECOPY 0x08
#endif
#ifndef PAGE_EXECUTE
#define PAGE_EXECUTE 0x10
#endif
#ifndef PAGE_EXECUTE_READ
#define PAGE_EXECUTE_READ 0x20
#endif
#ifndef PAGE_EXECUTE_READWRITE
#define PAGE_EXECUTE_READWRITE 0x40
#endif
#ifndef PAGE_EXECUTE_WRITECOPY
#define PAGE_EXECUTE_WRITECOPY 0x80
#endif

/* VirtualAlloc / VirtualFree / VirtualQuery (winnt.h). */
#ifndef MEM_COMMIT
#define MEM_COMMIT 0x00001000
#endif
#ifndef MEM_RESERVE
#define MEM_RESERVE 0x00002000
#endif
#ifndef MEM_DECOMMIT
#define MEM_DECOMMIT 0x00004000
#endif
#ifndef MEM_RELEASE
#define MEM_RELEASE 0x00008000
#endif
#ifndef MEM_FREE
#define MEM_FREE 0x00010000
#endif
#ifndef MEM_PRIVATE
#define MEM_PRIVATE 0x00020000
#endif
#ifndef MEM_MAPPED
#define MEM_MAPPED 0x00040000
#endif
#ifndef MEM_RESET
#define MEM_RESET 0x00080000
#endif
#ifndef MEM_IMAGE
#define MEM_IMAGE 0x01000000
#endif

#ifndef MN_WIN32_AFTER_WINDOWS_H
typedef struct _MEMORY_BASIC_INFORMATION {
	PVOID BaseAddress;
	PVOID AllocationBase;
	DWORD AllocationProtect;
	WORD PartitionId;
	SIZE_T RegionSize;
	DWORD State;
	DWORD Protect;
	DWORD Type;
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;
#endif

/* ------------------------------------------------------------------------
 * Last error and handles
 * ------------------------------------------------------------------------ */

/*
 * These five are exported only under memnotify's prefix (MnGetLastError,
 * ...): other Windows-on-Linux code in the same process (WinPR, winelib)
 * exports the plain names, and a program must not bind to the wrong
 * library's handles or last error.  Without <windows.h> first, the Windows
 * names below are static inline functions that call them, so ported source
 * is unchanged; after it, the names are Wine's and these are called by
 * their Mn names.
 */

/**
 * MnGetLastError() - the calling thread's last-error code (Win32
 * GetLastError).
 * Return: the value the last failing function of this header (or
 * SetLastError) stored in this thread; 0 if none.  Thread-local.
 */
MN_API DWORD WINAPI MnGetLastError(void);

/**
 * MnSetLastError() - set the calling thread's last-error code (Win32
 * SetLastError).  @dwErrCode: any value.  Thread-local.
 */
MN_API void WINAPI MnSetLastError(DWORD dwErrCode);

/**
 * MnGetCurrentProcess() - the pseudo-handle of this process, (HANDLE)-1, as
 * on Windows (and Wine's NtCurrentProcess()) (Win32 GetCurrentProcess).
 * It needs no closing (CloseHandle() accepts it and does nothing).
 */
MN_API HANDLE WINAPI MnGetCurrentProcess(void);

/**
 * MnCloseHandle() - close a handle returned by
 * CreateMemoryResourceNotification() (Win32 CloseHandle).
 * @hObject: the handle; GetCurrentProcess()'s pseudo-handle is accepted.
 *
 * Ends the handle's memory-pressure subscription.  A thread blocked in
 * WaitForSingleObject() on it returns WAIT_FAILED (ERROR_INVALID_HANDLE).
 * Return: TRUE; FALSE with ERROR_INVALID_HANDLE for anything else (NULL,
 * an unknown or already-closed handle).  Thread-safe; not from a callback.
 */
MN_API BOOL WINAPI MnCloseHandle(HANDLE hObject);

/**
 * MnWaitForSingleObject() - wait until a memory resource notification
 * handle is signaled (Win32 WaitForSingleObject, for these handles only).
 * @hHandle: from CreateMemoryResourceNotification().
 * @dwMilliseconds: the bound in ms; 0 tests and returns; INFINITE waits
 *        without a bound.
 *
 * Return: WAIT_OBJECT_0 when the handle is signaled (at once if it already
 * is); WAIT_TIMEOUT when the time ran out; WAIT_FAILED with
 * ERROR_INVALID_HANDLE for an unknown handle or one closed while waiting.
 * Thread-safe; blocks the calling thread.
 */
MN_API DWORD WINAPI MnWaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds);

#ifndef MN_WIN32_AFTER_WINDOWS_H
static inline DWORD GetLastError(void)
{
	return MnGetLastError();
}
static inline void SetLastError(DWORD dwErrCode)
{
	MnSetLastError(dwErrCode);
}
static inline HANDLE GetCurrentProcess(void)
{
	return MnGetCurrentProcess();
}
static inline BOOL CloseHandle(HANDLE hObject)
{
	return MnCloseHandle(hObject);
}
static inline DWORD WaitForSingleObject(HANDLE hHandle, DWORD dwMilliseconds)
{
	return MnWaitForSingleObject(hHandle, dwMilliseconds);
}
#endif

/* ------------------------------------------------------------------------
 * Memory resource notifications (CreateMemoryResourceNotification)
 * ------------------------------------------------------------------------ */

#if !defined(MN_WIN32_AFTER_WINDOWS_H) && !defined(__WINE_WINBASE_H) &&   \
	!defined(_WINBASE_)
typedef enum _MEMORY_RESOURCE_NOTIFICATION_TYPE {
	LowMemoryResourceNotification = 0,
	HighMemoryResourceNotification = 1,
} MEMORY_RESOURCE_NOTIFICATION_TYPE;
#endif

/**
 * CreateMemoryResourceNotification() - a handle that is signaled while
 * available memory is low (or high) (Win32 CreateMemoryResourceNotification).
 * @NotificationType: LowMemoryResourceNotification (0) or
 *        HighMemoryResourceNotification (1).
 *
 * Thresholds are Windows' defaults, taken over the effective limit of the
 * process's memory cgroup (the smallest of physical memory and every limit
 * of the group and its ancestors) when the handle is created: low is 32 MiB
 * per 4 GiB of that limit, at most 64 MiB; high is three times low.  The
 * low handle is signaled while available memory is below low, the high
 * handle while it is at or above high (memnotify's levels LOW and HIGH with
 * byte thresholds, mn_memory_subscribe(); leaving a state needs a margin of
 * at most a quarter of high - low).  State changes come from PSI triggers,
 * cgroup events and sampling, as for every memory subscription.
 *
 * Return: the handle (close it with CloseHandle()); NULL with
 * ERROR_INVALID_PARAMETER for an unknown type, ERROR_NOT_ENOUGH_MEMORY, or
 * ERROR_NOT_SUPPORTED when no memory mechanism works here.  Thread-safe.
 */
MN_API HANDLE WINAPI MN_W32(CreateMemoryResourceNotification)(
	MEMORY_RESOURCE_NOTIFICATION_TYPE NotificationType);

/**
 * QueryMemoryResourceNotification() - is the handle signaled now (Win32
 * QueryMemoryResourceNotification)?
 * @ResourceNotificationHandle: from CreateMemoryResourceNotification().
 * @ResourceState: receives TRUE if signaled, else FALSE.
 *
 * The face has no CreateEvent: the only event handles it knows are the
 * ones CreateMemoryResourceNotification() returns, and each is accepted.
 *
 * Return: TRUE; FALSE with ERROR_INVALID_PARAMETER for a NULL handle or a
 * NULL @ResourceState (as Windows), ERROR_INVALID_HANDLE for another
 * handle (closed or unknown).  Thread-safe; does not block.
 */
MN_API BOOL WINAPI MN_W32(QueryMemoryResourceNotification)(
	HANDLE ResourceNotificationHandle, PBOOL ResourceState);

/* ------------------------------------------------------------------------
 * Bad memory (RegisterBadMemoryNotification, QueryWorkingSetEx)
 * ------------------------------------------------------------------------ */

/* Thread context: called on memnotify's dispatcher, never in a signal
   handler.  Find the bad pages with QueryWorkingSetEx(). */
typedef VOID(MN_CALLBACK *MN_PBAD_MEMORY_CALLBACK_ROUTINE)(VOID);
#ifndef MN_WIN32_AFTER_WINDOWS_H
typedef VOID MN_CALLBACK BAD_MEMORY_CALLBACK_ROUTINE(VOID);
typedef MN_PBAD_MEMORY_CALLBACK_ROUTINE PBAD_MEMORY_CALLBACK_ROUTINE;
#endif

/**
 * RegisterBadMemoryNotification() - call @Callback when bad (poisoned)
 * memory is found (Win32 RegisterBadMemoryNotification).
 * @Callback: thread context (memnotify's dispatcher).
 *
 * @Callback runs once for each bad range memnotify records: a
 * SIGBUS with BUS_MCEERR_AO or BUS_MCEERR_AR for a page this process maps
 * (with early kill, prctl(PR_MCE_KILL_EARLY), where the kernel has it), a
 * rise of /proc/meminfo HardwareCorrupted on the machine, and a lost-event
 * report when the table of bad ranges overflowed.  Ranges recorded before
 * the registration are reported to it once.  mn_badmem_subscribe().
 *
 * Return: a registration handle for UnregisterBadMemoryNotification();
 * NULL with ERROR_INVALID_PARAMETER (NULL @Callback) or
 * ERROR_NOT_ENOUGH_MEMORY.  Thread-safe.
 */
MN_API PVOID WINAPI MN_W32(RegisterBadMemoryNotification)(
	MN_PBAD_MEMORY_CALLBACK_ROUTINE Callback);

/**
 * UnregisterBadMemoryNotification() - end a registration (Win32).
 * @RegistrationHandle: from RegisterBadMemoryNotification().
 * Returns once the callback is not running and never will again.
 * Return: TRUE; FALSE with ERROR_INVALID_HANDLE for an unknown handle.
 * Thread-safe; from inside the callback it does not wait.
 */
MN_API BOOL WINAPI MN_W32(UnregisterBadMemoryNotification)(
	PVOID RegistrationHandle);

#ifndef MEHC_PATROL_SCRUBBER_PRESENT
#define MEHC_PATROL_SCRUBBER_PRESENT 0x1
#endif

/**
 * GetMemoryErrorHandlingCapabilities() - what the machine does about memory
 * errors (Win32).  @Capabilities: receives MEHC_PATROL_SCRUBBER_PRESENT if
 * an EDAC memory controller scrubs memory (mn_capability(
 * MN_CAP_PATROL_SCRUBBER)), else 0.
 * Return: TRUE; FALSE with ERROR_INVALID_PARAMETER for NULL.  Thread-safe.
 */
MN_API BOOL WINAPI MN_W32(GetMemoryErrorHandlingCapabilities)(
	PULONG Capabilities);

/* Bit 31 of PSAPI_WORKING_SET_EX_BLOCK.Flags, in both of its layouts. */
#define MN_WORKING_SET_EX_BAD ((ULONG_PTR)1 << 31)

#if !defined(__WINE_PSAPI_H) && !defined(_PSAPI_H) && !defined(_PSAPI_H_)
/* Windows' 64-bit layout.  Valid = 1: the first struct; Valid = 0: the
   Invalid struct (the page is not resident).  Bad is bit 31 in both. */
typedef union _PSAPI_WORKING_SET_EX_BLOCK {
	ULONG_PTR Flags;
	struct {
		ULONG_PTR Valid : 1;
		ULONG_PTR ShareCount : 3;
		ULONG_PTR Win32Protection : 11;
		ULONG_PTR Shared : 1;
		ULONG_PTR Node : 6;
		ULONG_PTR Locked : 1;
		ULONG_PTR LargePage : 1;
		ULONG_PTR Reserved : 7;
		ULONG_PTR Bad : 1;
		ULONG_PTR ReservedUlong : 32;
	};
	struct {
		ULONG_PTR Valid : 1;
		ULONG_PTR Reserved0 : 14;
		ULONG_PTR Shared : 1;
		ULONG_PTR Reserved1 : 15;
		ULONG_PTR Bad : 1;
		ULONG_PTR ReservedUlong : 32;
	} Invalid;
} PSAPI_WORKING_SET_EX_BLOCK, *PPSAPI_WORKING_SET_EX_BLOCK;

typedef struct _PSAPI_WORKING_SET_EX_INFORMATION {
	PVOID VirtualAddress;
	PSAPI_WORKING_SET_EX_BLOCK VirtualAttributes;
} PSAPI_WORKING_SET_EX_INFORMATION, *PPSAPI_WORKING_SET_EX_INFORMATION;
#endif

/**
 * QueryWorkingSetEx() - page attributes for a list of addresses (Win32
 * QueryWorkingSetEx).
 * @hProcess: GetCurrentProcess() only.
 * @pv:  an array of PSAPI_WORKING_SET_EX_INFORMATION; set VirtualAddress
 *       of each (any address in the page); VirtualAttributes is written.
 * @cb:  the size of the array in bytes.
 *
 * Valid: the page is resident (/proc/self/pagemap "present") and
 * accessible: a PROT_NONE (PAGE_NOACCESS) page reads Valid 0 and protection
 * 0, as on Windows.  For a valid page also Win32Protection (PAGE_* from
 * /proc/self/smaps), Shared (a shared mapping, or an image page — a private
 * mapping of a file this process maps executable, i.e. the program or a
 * library — not yet copied on write), ShareCount for a shared page (the
 * page's map count from /proc/kpagecount, at most 7, where this process
 * may read it; else 1 if pagemap says the page is mapped once, 2 — a lower
 * bound — if not), Node (the NUMA node, get_mempolicy(2)), Locked
 * (mlock()ed: smaps VmFlags "lo") and LargePage (a huge page: the
 * PAGEMAP_SCAN ioctl's PAGE_IS_HUGE where the kernel has it, else a
 * hugetlb mapping).  Bad, in either layout: memnotify recorded the page
 * as poisoned (mn_badmem_query()).  An unmapped address gives all zero
 * except Bad.  Not mirrored: Windows' Valid 0 after a protection change
 * until the page is touched again (docs/windows-mapping.md).
 *
 * Return: TRUE; FALSE with ERROR_INVALID_HANDLE for another @hProcess,
 * ERROR_INVALID_PARAMETER for NULL @pv, ERROR_BAD_LENGTH for @cb below
 * one entry, or the error of reading /proc.  Thread-safe.
 */
MN_API BOOL WINAPI MN_W32(QueryWorkingSetEx)(HANDLE hProcess, PVOID pv,
					     DWORD cb);
#if !defined(MN_WIN32_AFTER_WINDOWS_H) && !defined(K32QueryWorkingSetEx)
/* kernel32's name for it (psapi.h with PSAPI_VERSION 2 calls it so). */
static inline BOOL K32QueryWorkingSetEx(HANDLE hProcess, PVOID pv, DWORD cb)
{
	return QueryWorkingSetEx(hProcess, pv, cb);
}
#endif

/* ------------------------------------------------------------------------
 * Secured ranges (AddSecureMemoryCacheCallback, MmSecureVirtualMemory)
 * ------------------------------------------------------------------------ */

/* Synchronous context: runs in the thread making the munmap(), mprotect(),
   mremap() or madvise() call, before the change (possibly inside a signal
   handler: keep it async-signal-safe), or on the dispatcher after the
   change for paths only userfaultfd sees.  @Addr, @Range: the call's
   range in bytes, once per call (for a late change: the part of one
   secured range).  Return TRUE if the callback dropped its cached
   mappings there (the secured parts the call touches are then
   unsecured), FALSE if it held none. */
typedef BOOLEAN(MN_CALLBACK *MN_PSECURE_MEMORY_CACHE_CALLBACK)(PVOID Addr,
							      SIZE_T Range);
#ifndef MN_WIN32_AFTER_WINDOWS_H
typedef BOOLEAN MN_CALLBACK SECURE_MEMORY_CACHE_CALLBACK(PVOID Addr, SIZE_T Range);
typedef MN_PSECURE_MEMORY_CACHE_CALLBACK PSECURE_MEMORY_CACHE_CALLBACK;
#endif

/**
 * AddSecureMemoryCacheCallback() - call @pfnCallBack whenever any part of a
 * secured range is freed or its protection changes (Win32).
 * @pfnCallBack: see MN_PSECURE_MEMORY_CACHE_CALLBACK.
 *
 * Every call that frees, moves, discards or re-protects part of a range
 * secured with MmSecureVirtualMemory() calls every registered callback
 * once, with the call's range (page-aligned), however many secured ranges
 * the call touches — as Windows' VirtualFree/VirtualProtect call
 * RtlFlushSecureMemoryCache once with theirs (mn_vm_watch() per range and
 * mn_vm_listen() for the call).  TRUE unsecures every secured part the call
 * touched.  A change only userfaultfd sees (late, on the dispatcher) gives
 * one call per range, with that range's part.  Registering the same
 * pointer twice gives two registrations.
 * Return: TRUE; FALSE with ERROR_INVALID_PARAMETER (NULL) or
 * ERROR_NOT_ENOUGH_MEMORY.  Thread-safe; not async-signal-safe.
 */
MN_API BOOL WINAPI MN_W32(AddSecureMemoryCacheCallback)(
	MN_PSECURE_MEMORY_CACHE_CALLBACK pfnCallBack);

/**
 * RemoveSecureMemoryCacheCallback() - remove one registration of
 * @pfnCallBack (Win32).  Returns once it is not running on any thread and
 * never will again (from inside a memnotify callback it does not wait).
 * Return: TRUE; FALSE with ERROR_INVALID_PARAMETER if @pfnCallBack is not
 * registered.  Thread-safe; not async-signal-safe.
 */
MN_API BOOL WINAPI MN_W32(RemoveSecureMemoryCacheCallback)(
	MN_PSECURE_MEMORY_CACHE_CALLBACK pfnCallBack);

/**
 * MmSecureVirtualMemory() - secure [Address, Address + Size) (the Windows
 * kernel routine): from now on, freeing or re-protecting any part of it
 * calls the secure-memory-cache callbacks.
 * @Address, @Size: bytes; widened to whole pages.
 * @ProbeMode: PAGE_READONLY (the range must be readable) or PAGE_READWRITE
 *        (readable and writable), checked against /proc/self/maps now.
 *
 * Linux cannot forbid the change as Windows does; the callbacks run before
 * it instead (docs/windows-mapping.md).
 * Return: a handle for MmUnsecureVirtualMemory(); NULL if the range is not
 * wholly mapped with that access (ERROR_INVALID_ADDRESS), for a bad
 * @ProbeMode, @Size 0 or a wrapping range (ERROR_INVALID_PARAMETER), or
 * ERROR_NOT_ENOUGH_MEMORY.  Thread-safe; not async-signal-safe.
 */
MN_API HANDLE MmSecureVirtualMemory(PVOID Address, SIZE_T Size,
				    ULONG ProbeMode);

/**
 * MmUnsecureVirtualMemory() - unsecure a range (the Windows kernel
 * routine).  @SecureHandle: from MmSecureVirtualMemory(); an unknown handle
 * sets ERROR_INVALID_HANDLE and does nothing.  Returns once no callback
 * runs for the range any more.  Thread-safe; not async-signal-safe.
 */
MN_API VOID MmUnsecureVirtualMemory(HANDLE SecureHandle);

/* ------------------------------------------------------------------------
 * NMI callbacks (KeRegisterNmiCallback)
 * ------------------------------------------------------------------------ */

/* Signal context: runs inside memnotify's signal handler on the thread that
   took the signal — async-signal-safe code only.  @Handled: TRUE if a
   callback before this one returned TRUE.  Return TRUE if this callback
   dealt with the event. */
typedef BOOLEAN (*MN_PNMI_CALLBACK)(PVOID Context, BOOLEAN Handled);
#ifndef MN_WIN32_AFTER_WINDOWS_H
typedef BOOLEAN NMI_CALLBACK(PVOID Context, BOOLEAN Handled);
typedef MN_PNMI_CALLBACK PNMI_CALLBACK;
#endif

/**
 * KeRegisterNmiCallback() - call @CallbackRoutine on every NMI (the Windows
 * kernel routine).
 * @CallbackRoutine: signal context (see MN_PNMI_CALLBACK).
 * @Context: passed to it unchanged.
 *
 * In a process an NMI is a hardware-exception signal it takes (SIGSEGV,
 * SIGBUS, SIGILL, SIGFPE) or the process-wide NMI signal another process
 * sends with `memnotify nmi PID` (mn_nmi_signal(): MEMNOTIFY_NMI_SIGNAL,
 * shown by `memnotify status`).  On each, the callbacks run newest first;
 * each gets Handled = TRUE if one before it returned TRUE; all are called.
 * If none returns TRUE the default handler runs: the disposition the
 * process had, else a one-line report and death by the signal (the "bug
 * check").  A TRUE for a fault retries the faulting instruction, so the
 * callback must have removed the cause.  mn_signal_register() on each
 * of the five signals.
 *
 * Return: a handle for KeDeregisterNmiCallback(); NULL (last error
 * ERROR_INVALID_PARAMETER for a NULL routine, ERROR_NOT_ENOUGH_MEMORY, or
 * ERROR_NOT_SUPPORTED if a handler cannot be installed).  Thread-safe;
 * not async-signal-safe.
 */
MN_API PVOID KeRegisterNmiCallback(MN_PNMI_CALLBACK CallbackRoutine,
				   PVOID Context);

/**
 * KeDeregisterNmiCallback() - remove a callback (the Windows kernel
 * routine).  @Handle: from KeRegisterNmiCallback().  Waits until no thread
 * runs the callback; must not be called from an NMI callback.
 * Return: STATUS_SUCCESS; STATUS_INVALID_HANDLE for an unknown handle.
 * Thread-safe; not async-signal-safe.
 */
MN_API NTSTATUS KeDeregisterNmiCallback(PVOID Handle);

/* ------------------------------------------------------------------------
 * The CLR hosting interfaces (mscoree.h): IHostMemoryManager,
 * ICLRMemoryNotificationCallback and IHostMalloc.  In C++ (without
 * CINTERFACE) abstract classes deriving from IUnknown, in C a struct whose
 * first member is lpVtbl; methods in Windows' order either way.
 * ------------------------------------------------------------------------ */

#if defined(__IHostMemoryManager_INTERFACE_DEFINED__) ||                    \
	defined(__ICLRMemoryNotificationCallback_INTERFACE_DEFINED__)
#error "memnotify/win32.h defines IHostMemoryManager itself: do not include mscoree.h with it"
#endif

#ifndef GUID_DEFINED
#define GUID_DEFINED
typedef struct _GUID {
	uint32_t Data1;
	uint16_t Data2;
	uint16_t Data3;
	unsigned char Data4[8];
} GUID;
#endif
#ifndef __IID_DEFINED__
#define __IID_DEFINED__
typedef GUID IID;
#endif
#if !defined(_REFIID_DEFINED) && !defined(REFIID) /* Wine: a macro */
#define _REFIID_DEFINED
#ifdef __cplusplus
typedef const IID &REFIID; /* as guiddef.h: a reference in C++ */
#else
typedef const IID *REFIID;
#endif
#endif

/* The methods of these interfaces use the platform's calling convention
   (STDMETHODCALLTYPE may be Wine's ms_abi after its <windows.h>). */
#define MN_STDMETHODCALLTYPE

typedef enum {
	eMemoryAvailableLow = 1,
	eMemoryAvailableNeutral = 2,
	eMemoryAvailableHigh = 3,
} EMemoryAvailable;

typedef enum {
	eTaskCritical = 0,
	eAppDomainCritical = 1,
	eProcessCritical = 2,
} EMemoryCriticalLevel;

/* IHostMemoryManager::CreateMalloc's dwMallocType (mscoree.h). */
typedef enum {
	MALLOC_THREADSAFE = 0x1,
	MALLOC_EXECUTABLE = 0x2,
} MALLOC_TYPE;

extern MN_API const IID MN_IID_IUnknown;                        /* 00000000-0000-0000-C000-000000000046 */
extern MN_API const IID MN_IID_IHostMemoryManager;              /* 7BC698D1-F9E3-4460-9CDE-D04248E9FA25 */
extern MN_API const IID MN_IID_ICLRMemoryNotificationCallback;  /* 47EB8E57-0846-4546-AF76-6F42FCFC2649 */
extern MN_API const IID MN_IID_IHostMalloc;                     /* 1831991C-CC53-4A31-B218-04E910446479 */

/* The standard names.  After <windows.h> IID_IUnknown is Wine's (uuid). */
#ifndef IID_ICLRMemoryNotificationCallback
#define IID_ICLRMemoryNotificationCallback MN_IID_ICLRMemoryNotificationCallback
#endif
#ifndef IID_IHostMemoryManager
#define IID_IHostMemoryManager MN_IID_IHostMemoryManager
#endif
#ifndef IID_IHostMalloc
#define IID_IHostMalloc MN_IID_IHostMalloc
#endif
#if !defined(MN_WIN32_AFTER_WINDOWS_H) && !defined(IID_IUnknown)
#define IID_IUnknown MN_IID_IUnknown
#endif

#if defined(__cplusplus) && !defined(CINTERFACE)
/*
 * C++: abstract classes with Windows' method order, as the Windows SDK
 * declares them, so a host writes p->Method(...) and derives its callback
 * class from ICLRMemoryNotificationCallback.  The object layout (a vtable
 * pointer first, `this` as the first argument) is the C one below, which
 * the library uses.  (No virtual destructor, as in COM: an object deletes
 * itself in Release; make such a class final.)
 */
#ifndef __IUnknown_INTERFACE_DEFINED__
#define __IUnknown_INTERFACE_DEFINED__
#define MN_IUNKNOWN IUnknown
#else
#define MN_IUNKNOWN MnIUnknown /* Wine's IUnknown is ms_abi */
#endif
struct MN_IUNKNOWN {
	virtual HRESULT MN_STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppvObject) = 0;
	virtual ULONG MN_STDMETHODCALLTYPE AddRef() = 0;
	virtual ULONG MN_STDMETHODCALLTYPE Release() = 0;
};

struct ICLRMemoryNotificationCallback : public MN_IUNKNOWN {
	/* Thread context (memnotify's dispatcher); must not block. */
	virtual HRESULT MN_STDMETHODCALLTYPE OnMemoryNotification(
		EMemoryAvailable eMemoryAvailable) = 0;
};

struct IHostMalloc : public MN_IUNKNOWN {
	virtual HRESULT MN_STDMETHODCALLTYPE Alloc(SIZE_T cbSize,
						   EMemoryCriticalLevel eCriticalLevel,
						   void **ppMem) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE DebugAlloc(SIZE_T cbSize,
							EMemoryCriticalLevel eCriticalLevel,
							char *pszFileName, int iLineNo,
							void **ppMem) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE Free(void *pMem) = 0;
};

struct IHostMemoryManager : public MN_IUNKNOWN {
	virtual HRESULT MN_STDMETHODCALLTYPE CreateMalloc(DWORD dwMallocType,
							  IHostMalloc **ppMalloc) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE VirtualAlloc(void *pAddress, SIZE_T dwSize,
							  DWORD flAllocationType,
							  DWORD flProtect,
							  EMemoryCriticalLevel eCriticalLevel,
							  void **ppMem) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE VirtualFree(LPVOID lpAddress, SIZE_T dwSize,
							 DWORD dwFreeType) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE VirtualQuery(void *lpAddress, void *lpBuffer,
							  SIZE_T dwLength,
							  SIZE_T *pResult) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE VirtualProtect(void *lpAddress, SIZE_T dwSize,
							    DWORD flNewProtect,
							    DWORD *pflOldProtect) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE GetMemoryLoad(DWORD *pMemoryLoad,
							   SIZE_T *pAvailableBytes) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE RegisterMemoryNotificationCallback(
		ICLRMemoryNotificationCallback *pCallback) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE NeedsVirtualAddressSpace(LPVOID startAddress,
								      SIZE_T size) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE AcquiredVirtualAddressSpace(LPVOID startAddress,
									 SIZE_T size) = 0;
	virtual HRESULT MN_STDMETHODCALLTYPE ReleasedVirtualAddressSpace(
		LPVOID startAddress) = 0;
};
#else /* C: a struct whose first member is lpVtbl, `This` first */

typedef struct ICLRMemoryNotificationCallback ICLRMemoryNotificationCallback;
typedef struct ICLRMemoryNotificationCallbackVtbl {
	HRESULT(MN_STDMETHODCALLTYPE *QueryInterface)(ICLRMemoryNotificationCallback *This,
						      REFIID riid, void **ppvObject);
	ULONG(MN_STDMETHODCALLTYPE *AddRef)(ICLRMemoryNotificationCallback *This);
	ULONG(MN_STDMETHODCALLTYPE *Release)(ICLRMemoryNotificationCallback *This);
	/* Thread context (memnotify's dispatcher); must not block. */
	HRESULT(MN_STDMETHODCALLTYPE *OnMemoryNotification)(ICLRMemoryNotificationCallback *This,
							    EMemoryAvailable eMemoryAvailable);
} ICLRMemoryNotificationCallbackVtbl;
struct ICLRMemoryNotificationCallback {
	const ICLRMemoryNotificationCallbackVtbl *lpVtbl;
};

/* memnotify's IHostMalloc (from CreateMalloc): a heap.  Alloc and
   DebugAlloc: S_OK, E_OUTOFMEMORY; E_POINTER for a NULL @ppMem (an open
   case); @eCriticalLevel, @pszFileName and @iLineNo are accepted and
   ignored.  Free: S_OK (NULL too); E_INVALIDARG for a block this heap
   did not give (an open case). */
typedef struct IHostMalloc IHostMalloc;
typedef struct IHostMallocVtbl {
	HRESULT(MN_STDMETHODCALLTYPE *QueryInterface)(IHostMalloc *This, REFIID riid,
						      void **ppvObject);
	ULONG(MN_STDMETHODCALLTYPE *AddRef)(IHostMalloc *This);
	ULONG(MN_STDMETHODCALLTYPE *Release)(IHostMalloc *This);
	HRESULT(MN_STDMETHODCALLTYPE *Alloc)(IHostMalloc *This, SIZE_T cbSize,
					     EMemoryCriticalLevel eCriticalLevel, void **ppMem);
	HRESULT(MN_STDMETHODCALLTYPE *DebugAlloc)(IHostMalloc *This, SIZE_T cbSize,
						  EMemoryCriticalLevel eCriticalLevel,
						  char *pszFileName, int iLineNo, void **ppMem);
	HRESULT(MN_STDMETHODCALLTYPE *Free)(IHostMalloc *This, void *pMem);
} IHostMallocVtbl;
struct IHostMalloc {
	const IHostMallocVtbl *lpVtbl;
};

typedef struct IHostMemoryManager IHostMemoryManager;
typedef struct IHostMemoryManagerVtbl {
	/* IID_IUnknown and IID_IHostMemoryManager; E_NOINTERFACE otherwise,
	   E_POINTER for NULL. */
	HRESULT(MN_STDMETHODCALLTYPE *QueryInterface)(IHostMemoryManager *This,
						      REFIID riid, void **ppvObject);
	ULONG(MN_STDMETHODCALLTYPE *AddRef)(IHostMemoryManager *This);
	/* When the count reaches 0 every registered callback is unsubscribed
	   and released. */
	ULONG(MN_STDMETHODCALLTYPE *Release)(IHostMemoryManager *This);
	/* A new heap (IHostMalloc) with one reference: MALLOC_THREADSAFE
	   (always honoured: every heap may be used from any thread at once),
	   MALLOC_EXECUTABLE (blocks in mappings with execute permission,
	   PROT_READ | PROT_WRITE | PROT_EXEC).  S_OK, E_OUTOFMEMORY; E_POINTER
	   for NULL, E_INVALIDARG for other bits (open cases). */
	HRESULT(MN_STDMETHODCALLTYPE *CreateMalloc)(IHostMemoryManager *This,
						    DWORD dwMallocType,
						    IHostMalloc **ppMalloc);
	/* mmap(2): MEM_RESERVE gives PROT_NONE, MEM_COMMIT the protection
	   flProtect; MEM_COMMIT with a NULL address reserves and commits; a
	   reservation's address is rounded down to 64 KiB (Windows'
	   allocation granularity), a commit's to the page; a commit must lie
	   in an allocation of this face.  MEM_RESET is
	   madvise(MADV_DONTNEED).  @eCriticalLevel is accepted and ignored
	   (Linux has no per-allocation criticality).  E_OUTOFMEMORY, E_FAIL;
	   E_POINTER / E_INVALIDARG for bad arguments (open cases). */
	HRESULT(MN_STDMETHODCALLTYPE *VirtualAlloc)(IHostMemoryManager *This,
						 void *pAddress, SIZE_T dwSize,
						 DWORD flAllocationType, DWORD flProtect,
						 EMemoryCriticalLevel eCriticalLevel,
						 void **ppMem);
	/* MEM_RELEASE (dwSize 0, the base VirtualAlloc returned): munmap(2);
	   MEM_DECOMMIT: madvise(MADV_DONTNEED) + mprotect(PROT_NONE).  Both
	   fire the range-invalidation callbacks. */
	HRESULT(MN_STDMETHODCALLTYPE *VirtualFree)(IHostMemoryManager *This,
						LPVOID lpAddress, SIZE_T dwSize,
						DWORD dwFreeType);
	/* lpBuffer is a MEMORY_BASIC_INFORMATION.  Lock-free and
	   allocation-free (the CLR calls it with threads suspended).  For
	   this face's own allocations, from its record: RegionSize never
	   passes the allocation's end, committed pages (PAGE_NOACCESS too)
	   are MEM_COMMIT, reserved ones MEM_RESERVE with Protect 0; other
	   memory from /proc/self/maps (MEM_COMMIT, the mapping as the
	   allocation). */
	HRESULT(MN_STDMETHODCALLTYPE *VirtualQuery)(IHostMemoryManager *This,
						 void *lpAddress, void *lpBuffer,
						 SIZE_T dwLength, SIZE_T *pResult);
	/* mprotect(2); *pflOldProtect from /proc/self/maps. */
	HRESULT(MN_STDMETHODCALLTYPE *VirtualProtect)(IHostMemoryManager *This,
						   void *lpAddress, SIZE_T dwSize,
						   DWORD flNewProtect, DWORD *pflOldProtect);
	/* mn_memory_status(): load in percent of the effective limit and the
	   bytes still available. */
	HRESULT(MN_STDMETHODCALLTYPE *GetMemoryLoad)(IHostMemoryManager *This,
						  DWORD *pMemoryLoad,
						  SIZE_T *pAvailableBytes);
	/* AddRef()s @pCallback and calls OnMemoryNotification with the level
	   soon after, then on every change (mn_memory_subscribe(), default
	   thresholds); E_OUTOFMEMORY, E_FAIL (no memory mechanism works
	   here); E_POINTER for NULL (an open case). */
	HRESULT(MN_STDMETHODCALLTYPE *RegisterMemoryNotificationCallback)(
		IHostMemoryManager *This, ICLRMemoryNotificationCallback *pCallback);
	/* The CLR tells the host about its address-space use.  memnotify keeps
	   no address-space budget, so these accept and return S_OK. */
	HRESULT(MN_STDMETHODCALLTYPE *NeedsVirtualAddressSpace)(IHostMemoryManager *This,
							     LPVOID startAddress,
							     SIZE_T size);
	HRESULT(MN_STDMETHODCALLTYPE *AcquiredVirtualAddressSpace)(IHostMemoryManager *This,
								LPVOID startAddress,
								SIZE_T size);
	HRESULT(MN_STDMETHODCALLTYPE *ReleasedVirtualAddressSpace)(IHostMemoryManager *This,
								LPVOID startAddress);
} IHostMemoryManagerVtbl;
struct IHostMemoryManager {
	const IHostMemoryManagerVtbl *lpVtbl;
};
#endif /* C++ or C */

/**
 * MnGetHostMemoryManager() - memnotify's IHostMemoryManager, one per
 * process, with a reference for the caller (Release() it when done).
 * @ppManager: receives the interface.
 * Return: S_OK; E_POINTER for NULL.  Thread-safe.
 */
MN_API HRESULT MnGetHostMemoryManager(IHostMemoryManager **ppManager);

#ifdef __cplusplus
}
#endif

#endif /* MEMNOTIFY_WIN32_H */
