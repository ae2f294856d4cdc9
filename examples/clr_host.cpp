// SPDX-License-Identifier: MIT
//
// clr_host.cpp — a small CLR-style host written as against the Windows SDK
// (mscoree.h): it derives its memory-notification callback class from
// ICLRMemoryNotificationCallback, registers it with the host memory
// manager, and gives its runtime heaps from CreateMalloc — an ordinary one
// and an executable one for generated code.  Built unchanged on Linux with
// memnotify's Windows face, in one command:
//
//   c++ -o clr_host clr_host.cpp $(pkg-config --cflags --libs memnotify)
//   ./clr_host
#include <memnotify/win32.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

bool SameIid(REFIID a, REFIID b)
{
	return std::memcmp(&a, &b, sizeof(IID)) == 0;
}

// The runtime's side of memory pressure: the host calls it on its thread.
class MemoryPressureListener final : public ICLRMemoryNotificationCallback {
public:
	HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppv) override
	{
		if (!ppv)
			return E_POINTER;
		if (SameIid(riid, IID_IUnknown) ||
		    SameIid(riid, IID_ICLRMemoryNotificationCallback)) {
			AddRef();
			*ppv = this;
			return S_OK;
		}
		*ppv = nullptr;
		return E_NOINTERFACE;
	}
	ULONG STDMETHODCALLTYPE AddRef() override { return ++refs_; }
	// A static object: the count only tells who still holds it.
	ULONG STDMETHODCALLTYPE Release() override { return --refs_; }

	HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable level) override
	{
		last_.store(level);
		++calls_;
		return S_OK;
	}

	int Calls() const { return calls_.load(); }
	EMemoryAvailable Last() const { return last_.load(); }
	ULONG Refs() const { return refs_.load(); }

private:
	std::atomic<ULONG> refs_{1};
	std::atomic<int> calls_{0};
	std::atomic<EMemoryAvailable> last_{eMemoryAvailableNeutral};
};

const char *LevelName(EMemoryAvailable level)
{
	switch (level) {
	case eMemoryAvailableLow: return "low";
	case eMemoryAvailableHigh: return "high";
	default: return "neutral";
	}
}

MemoryPressureListener g_listener;

} // namespace

int main()
{
	IHostMemoryManager *host = nullptr;
	if (MnGetHostMemoryManager(&host) != S_OK) {
		std::fprintf(stderr, "no host memory manager\n");
		return 1;
	}
	HRESULT hr = host->RegisterMemoryNotificationCallback(&g_listener);
	if (hr != S_OK)
		std::printf("RegisterMemoryNotificationCallback: 0x%08x (no memory "
			    "mechanism here)\n", (unsigned)hr);

	// The runtime's heaps.
	IHostMalloc *heap = nullptr, *codeHeap = nullptr;
	if (host->CreateMalloc(MALLOC_THREADSAFE, &heap) != S_OK ||
	    host->CreateMalloc(MALLOC_THREADSAFE | MALLOC_EXECUTABLE, &codeHeap) != S_OK) {
		std::fprintf(stderr, "CreateMalloc failed\n");
		return 1;
	}
	void *objects = nullptr;
	if (heap->Alloc(1 << 16, eAppDomainCritical, &objects) != S_OK)
		return 1;
	std::memset(objects, 0, 1 << 16);

	void *code = nullptr;
	if (codeHeap->Alloc(64, eTaskCritical, &code) != S_OK)
		return 1;
	int jitted = 42;
#if defined(__x86_64__)
	// "JIT" a function: mov eax, 42; ret.
	static const unsigned char ret42[] = { 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 };
	std::memcpy(code, ret42, sizeof(ret42));
	int (*fn)();
	std::memcpy(&fn, &code, sizeof(fn));
	jitted = fn();
#endif

	// Reserve address space for a GC heap, commit its first segment.
	void *reserve = nullptr, *segment = nullptr;
	MEMORY_BASIC_INFORMATION mbi;
	SIZE_T got = 0;
	if (host->VirtualAlloc(nullptr, 1 << 20, MEM_RESERVE, PAGE_READWRITE,
			       eProcessCritical, &reserve) != S_OK ||
	    host->VirtualAlloc(reserve, 1 << 16, MEM_COMMIT, PAGE_READWRITE,
			       eProcessCritical, &segment) != S_OK ||
	    host->VirtualQuery(reserve, &mbi, sizeof(mbi), &got) != S_OK) {
		std::fprintf(stderr, "VirtualAlloc/VirtualQuery failed\n");
		return 1;
	}
	std::memset(segment, 1, 1 << 16);
	std::printf("segment: %zu bytes committed of a %u-state region at %p\n",
		    (size_t)mbi.RegionSize, (unsigned)mbi.State, mbi.AllocationBase);

	DWORD load = 0;
	SIZE_T avail = 0;
	if (host->GetMemoryLoad(&load, &avail) == S_OK)
		std::printf("memory load %u%%, %zu bytes available\n", (unsigned)load,
			    (size_t)avail);

	// The host tells the runtime the level soon after registering.
	for (int i = 0; hr == S_OK && i < 50 && g_listener.Calls() == 0; i++)
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	if (g_listener.Calls())
		std::printf("memory is %s (%d notification(s))\n",
			    LevelName(g_listener.Last()), g_listener.Calls());

	host->VirtualFree(reserve, 0, MEM_RELEASE);
	codeHeap->Free(code);
	heap->Free(objects);
	codeHeap->Release();
	heap->Release();
	host->Release(); // the last reference: the callback is released
	std::printf("jitted code returned %d; callback references left: %u\n", jitted,
		    (unsigned)g_listener.Refs());
	return jitted == 42 && g_listener.Refs() == 1 ? 0 : 1;
}
