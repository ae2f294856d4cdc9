// SPDX-License-Identifier: MIT
//
// memnotify/win32.h in C++ after Wine's <windows.h>: the CLR interfaces are
// classes (IUnknown is Wine's, so they derive from MnIUnknown and keep the
// platform convention), a callback class derives from
// ICLRMemoryNotificationCallback, and CreateMalloc's heap works.  Built by
// tools/check-wine-headers.sh.
#include <windows.h>
#include <psapi.h>
#include <memnotify/win32.h>

namespace {
struct Listener final : public ICLRMemoryNotificationCallback {
	HRESULT MN_STDMETHODCALLTYPE QueryInterface(REFIID, void **ppv) override
	{
		*ppv = this;
		return S_OK;
	}
	ULONG MN_STDMETHODCALLTYPE AddRef() override { return ++refs; }
	ULONG MN_STDMETHODCALLTYPE Release() override { return --refs; }
	HRESULT MN_STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable) override
	{
		return S_OK;
	}
	ULONG refs = 1;
};
} // namespace

int main()
{
	IHostMemoryManager *m = nullptr;
	IHostMalloc *h = nullptr;
	void *p = nullptr;
	Listener cb;

	if (MnGetHostMemoryManager(&m) != S_OK ||
	    m->CreateMalloc(MALLOC_THREADSAFE, &h) != S_OK ||
	    h->Alloc(10, eTaskCritical, &p) != S_OK || h->Free(p) != S_OK)
		return 1;
	h->Release();
	if (m->RegisterMemoryNotificationCallback(&cb) != S_OK || cb.refs != 2)
		return 2;
	m->Release();
	return cb.refs == 1 ? 0 : 3;
}
