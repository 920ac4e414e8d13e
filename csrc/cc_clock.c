/*
 * cc_clock.c: the precise monotonic clock and the slack of the coarse one
 * (see cc_common.h for why there are two).
 */
#include "cc_common.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(_WIN32)
#include <windows.h>
#elif defined(__APPLE__)
#include <mach/mach_time.h>
#endif
#ifdef CC_HAVE_COARSE_CLOCK
#include <dlfcn.h>
#endif

double cc_clock_slack = 0.0;

#ifdef CC_HAVE_COARSE_CLOCK
int (*cc_clock_gettime)(clockid_t, struct timespec *) = clock_gettime;

static void find_vdso_clock(void)
{
    static const char *names[] = {"__vdso_clock_gettime", "__kernel_clock_gettime"};
    void *vdso = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
    size_t i;
    struct timespec a, b;
    if (vdso == NULL)
        return;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int (*fn)(clockid_t, struct timespec *);
        *(void **)&fn = dlsym(vdso, names[i]);
        /* use it only if it agrees with libc on both clocks we read */
        if (fn != NULL && fn(CLOCK_MONOTONIC_COARSE, &a) == 0 &&
            clock_gettime(CLOCK_MONOTONIC_COARSE, &b) == 0 &&
            b.tv_sec - a.tv_sec <= 1 && fn(CLOCK_MONOTONIC, &a) == 0) {
            cc_clock_gettime = fn;
            break;
        }
    }
    /* the vDSO stays mapped for the life of the process */
    dlclose(vdso);
}
#endif

#if defined(_WIN32)
static double cc_qpc_period = 0.0;
#elif defined(__APPLE__)
static double cc_mach_period = 0.0;   /* seconds per mach_absolute_time tick */
#endif

void cc_clock_init(void)
{
#if defined(_WIN32)
    LARGE_INTEGER f;
    if (cc_qpc_period == 0.0) {
        QueryPerformanceFrequency(&f);
        cc_qpc_period = 1.0 / (double)f.QuadPart;
    }
#elif defined(__APPLE__)
    /* mach_absolute_time is CLOCK_UPTIME_RAW without clock_gettime, which
     * macOS only has from 10.12 on */
    mach_timebase_info_data_t tb;
    if (cc_mach_period == 0.0 && mach_timebase_info(&tb) == KERN_SUCCESS && tb.denom)
        cc_mach_period = (double)tb.numer / (double)tb.denom * 1e-9;
#endif
#ifdef CC_HAVE_COARSE_CLOCK
    struct timespec res;
    find_vdso_clock();
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0) {
        /* Twice the tick: the coarse value is published by whichever CPU
         * runs the timekeeping tick, so allow for one tick of delay in
         * publishing on top of the tick itself. */
        cc_clock_slack = 2.0 * ((double)res.tv_sec + (double)res.tv_nsec * 1e-9);
    }
    else {
        cc_clock_slack = HUGE_VAL;  /* never trust the coarse clock */
    }
#endif
}

double cc_clock_precise(void)
{
#if defined(_WIN32)
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart * cc_qpc_period;
#elif defined(__APPLE__)
    if (cc_mach_period == 0.0)
        cc_clock_init();
    return (double)mach_absolute_time() * cc_mach_period;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}

int cc_clock_passed_slow(double deadline)
{
    if (cc_clock_coarse() + cc_clock_slack < deadline)
        return 0;
    return cc_clock_precise() >= deadline;
}

#ifdef CC_DEBUG
void cc_check_failed(const char *expr, const char *file, int line)
{
    fprintf(stderr, "corecache: consistency check failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
#endif
