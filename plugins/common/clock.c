/*
 * clock.c - the two clocks the plugins read: the monotonic one for
 * deadlines and timeouts (immune to clock steps), the real-time one for
 * what is persisted or shown.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

#include <time.h>

static int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t pp_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

int64_t pp_mono_ms(void)
{
	return pp_mono_ns() / 1000000;
}

int64_t pp_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}
