/*
 * cc_common.h: status codes, the monotonic clocks and small helpers shared by
 * every file in csrc/.  Nothing in csrc/ includes Python.h: these files move
 * indices and pointers around and never call back into the interpreter, so no
 * function here can re-enter a cache.
 *
 * Clocks.  A TTL check on a cache hit must cost a few nanoseconds, but a
 * precise CLOCK_MONOTONIC read costs about 23 ns on this kind of machine.  The
 * kernel also keeps a coarse copy of the same clock (CLOCK_MONOTONIC_COARSE,
 * about 3 ns, updated every tick), which is never ahead of the precise clock
 * and lags it by less than one tick.  So:
 *
 *     coarse + slack < deadline   =>  precise < deadline   (not expired)
 *
 * and only an entry within `slack` of its deadline pays for a precise read.
 * The answer is always the precise clock's answer.  Where no coarse clock
 * exists the slack is 0 and every check reads the precise clock.
 */
#ifndef CC_COMMON_H
#define CC_COMMON_H

/* clock_gettime and CLOCK_MONOTONIC_COARSE under -std=c11 (Python.h defines
 * this too, for the files that include it first) */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

/* Status codes: 0 is success, failures are negative. */
#define CC_OK 0
#define CC_ENOMEM (-1)   /* an allocation failed; nothing was changed */
#define CC_EFULL (-2)    /* the index space (2**32 - 2 entries) is exhausted */
#define CC_EINVAL (-3)   /* an argument out of range (a capacity of 0); nothing changed */

/* The "no index" value for links, slots and positions. */
#define CC_NIL UINT32_MAX
/* Largest number of entries one structure can index. */
#define CC_MAX_ENTRIES (UINT32_MAX - 1u)

/* Deadline of an entry that never expires. */
#define CC_NEVER HUGE_VAL

#if defined(__GNUC__) || defined(__clang__)
#define CC_LIKELY(x) __builtin_expect(!!(x), 1)
#define CC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CC_INLINE static inline __attribute__((always_inline))
#else
#define CC_LIKELY(x) (x)
#define CC_UNLIKELY(x) (x)
#define CC_INLINE static inline
#endif

/* deadline == CC_NEVER, as one integer compare of its bits (+inf's, which
 * no other double has) rather than a floating-point compare: on a hit path
 * the few instructions show. */
CC_INLINE int cc_is_never(double deadline)
{
    uint64_t bits;
    memcpy(&bits, &deadline, sizeof bits);
    return bits == UINT64_C(0x7FF0000000000000);
}

/* CC_DEBUG (set by CORECACHE_DEBUG_BUILD) turns on the consistency checks
 * that run after every mutation; they abort with a message on failure. */
#ifdef CC_DEBUG
#define CC_CHECK(expr) ((expr) ? (void)0 : cc_check_failed(#expr, __FILE__, __LINE__))
void cc_check_failed(const char *expr, const char *file, int line);
#else
#define CC_CHECK(expr) ((void)0)
#endif

/* ---- clocks (seconds, monotonic) ---------------------------------------- */

/* Seconds the coarse clock may lag the precise one; set by cc_clock_init. */
extern double cc_clock_slack;

/* Call once before the first clock read (idempotent). */
void cc_clock_init(void);
double cc_clock_precise(void);

#if defined(__linux__) || defined(__FreeBSD__) || defined(__APPLE__)
#include <time.h>
#endif

#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
#define CC_HAVE_COARSE_CLOCK 1
/* The vDSO's own clock_gettime when it can be found (libc's wrapper around
 * it costs about a nanosecond more), else libc's. */
extern int (*cc_clock_gettime)(clockid_t, struct timespec *);
CC_INLINE double cc_clock_coarse(void)
{
    struct timespec ts;
    cc_clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#else
#define cc_clock_coarse cc_clock_precise
#endif

/* The precise answer, for deadlines within reach of the coarse clock. */
int cc_clock_passed_slow(double deadline);

/* Has `deadline` passed, by the precise clock?  Cheap unless it is close:
 * coarse < tv_sec + 1 and precise < coarse + slack, so a deadline after
 * tv_sec + 1 + slack has not passed, known from one coarse read. */
CC_INLINE int cc_clock_passed(double deadline)
{
#ifdef CC_HAVE_COARSE_CLOCK
    struct timespec ts;
    if (CC_LIKELY(deadline == CC_NEVER))
        return 0;
    cc_clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    if (CC_LIKELY((double)ts.tv_sec + 1.0 + cc_clock_slack < deadline))
        return 0;
#else
    if (CC_LIKELY(deadline == CC_NEVER))
        return 0;
#endif
    return cc_clock_passed_slow(deadline);
}

#endif /* CC_COMMON_H */
