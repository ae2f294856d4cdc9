// SPDX-License-Identifier: MIT
//
// levels.cpp — the native API from C++ (C++11 and later): the capabilities
// this machine has, the memory status now, the first level a subscription
// delivers, and the counters.  The struct names that are also function
// names in C (mn_capability, mn_stats, mn_memory_status) are spelled with
// their typedefs (mn_capability_t, ...) and the functions' other names
// (mn_get_capability, ...); MN_OPTS_INIT zeroes a struct and sets its sz.
// One command builds it:
//
//   c++ -std=c++17 -Wall -Wextra -Werror -o levels levels.cpp $(pkg-config --cflags --libs memnotify)
//   ./levels
#include <memnotify.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

namespace {

struct first_level {
	std::mutex mu;
	std::condition_variable cv;
	bool seen = false;
	mn_memory_level level = MN_MEMORY_LEVEL_UNKNOWN;
};

// Thread context: a memnotify delivery thread.  Return promptly.
void on_level(const mn_memory_status_t *st, void *ctx)
{
	first_level *f = static_cast<first_level *>(ctx);
	std::lock_guard<std::mutex> lock(f->mu);
	f->level = st->level;
	f->seen = true;
	f->cv.notify_all();
}

} // namespace

int main()
{
	std::printf("memnotify %s\n", mn_version());
	for (unsigned int cap = 0; cap < MN_CAP__COUNT; cap++) {
		mn_capability_t c = MN_OPTS_INIT(mn_capability);
		if (mn_get_capability(cap, &c) == 0)
			std::printf("  %-26s %s  %s\n", c.name,
				    c.supported ? "yes" : "no ", c.detail);
	}

	mn_memory_opts opts = MN_OPTS_INIT(mn_memory_opts);
	opts.low_percent = 10;
	opts.high_percent = 30;
	mn_memory_status_t now = MN_OPTS_INIT(mn_memory_status);
	int err = mn_get_memory_status(&opts, &now);
	if (err) {
		std::fprintf(stderr, "mn_get_memory_status: %s\n", mn_strerror(err));
		return 1;
	}
	std::printf("now: %s, %llu MiB available of %llu MiB (load %u%%)\n",
		    mn_memory_level_name(now.level),
		    static_cast<unsigned long long>(now.available_bytes >> 20),
		    static_cast<unsigned long long>(now.limit_bytes >> 20),
		    now.load_percent);

	first_level f;
	mn_sub *sub = nullptr;
	err = mn_memory_subscribe(&opts, on_level, &f, &sub);
	if (err) {
		std::fprintf(stderr, "mn_memory_subscribe: %s\n", mn_strerror(err));
		return 1;
	}
	{
		std::unique_lock<std::mutex> lock(f.mu);
		if (!f.cv.wait_for(lock, std::chrono::seconds(10),
				   [&f] { return f.seen; })) {
			std::fprintf(stderr, "no initial level within 10 s\n");
			lock.unlock();
			mn_unsubscribe(sub);
			return 1;
		}
		std::printf("subscribed: initial level %s\n",
			    mn_memory_level_name(f.level));
	}
	mn_unsubscribe(sub);

	mn_stats_t st = MN_OPTS_INIT(mn_stats);
	mn_get_stats(&st);
	std::printf("stats: %llu delivered, %llu lost, %llu samples\n",
		    static_cast<unsigned long long>(st.events_delivered),
		    static_cast<unsigned long long>(st.events_lost),
		    static_cast<unsigned long long>(st.samples));
	mn_shutdown();
	return st.events_delivered >= 1 ? 0 : 1;
}
