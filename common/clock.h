/*
 * clock.h: the monotonic clock in milliseconds, for deadlines and ages (never wall time:
 * CLOCK_MONOTONIC does not jump when the clock is set).
 *
 * Thread safety: safe from any thread.
 */
#ifndef SECRETD_COMMON_CLOCK_H
#define SECRETD_COMMON_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC (since an unspecified start). */
uint64_t sd_now_ms(void);

#endif
