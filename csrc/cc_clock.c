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
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/auxv.h>
#endif

double cc_clock_slack = 0.0;

#ifdef CC_HAVE_COARSE_CLOCK
int (*cc_clock_gettime)(clockid_t, struct timespec *) = clock_gettime;

/* The address of a function the vDSO exports, from the ELF image the kernel
 * maps into every process (found through the auxiliary vector, so without
 * dlopen: that would tie wheels to the newest glibc).  NULL if absent or if
 * the image has no DT_HASH table to count its symbols with. */
static void *vdso_function(const char *name)
{
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
    const ElfW(Phdr) *ph;
    const ElfW(Dyn) *dyn = NULL;
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    const Elf32_Word *hash = NULL;
    uintptr_t base = 0;
    int have_base = 0;
    size_t i;

    if (eh == NULL || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
        return NULL;
    ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    for (i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !have_base) {
            base = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
            have_base = 1;
        }
        else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const ElfW(Dyn) *)((const char *)eh + ph[i].p_offset);
        }
    }
    if (!have_base || dyn == NULL)
        return NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            sym = (const ElfW(Sym) *)(base + dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB)
            str = (const char *)(base + dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_HASH)
            hash = (const Elf32_Word *)(base + dyn->d_un.d_ptr);
    }
    if (sym == NULL || str == NULL || hash == NULL)
        return NULL;
    for (i = 0; i < hash[1]; i++) {            /* hash[1]: number of symbols */
        if (sym[i].st_name != 0 && (sym[i].st_info & 0xf) == STT_FUNC &&
            sym[i].st_shndx != SHN_UNDEF && strcmp(str + sym[i].st_name, name) == 0)
            return (void *)(base + sym[i].st_value);
    }
    return NULL;
}

static void find_vdso_clock(void)
{
    static const char *names[] = {"__vdso_clock_gettime", "__kernel_clock_gettime"};
    size_t i;
    struct timespec a, b;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int (*fn)(clockid_t, struct timespec *);
        *(void **)&fn = vdso_function(names[i]);
        /* use it only if it agrees with libc on both clocks we read */
        if (fn != NULL && fn(CLOCK_MONOTONIC_COARSE, &a) == 0 &&
            clock_gettime(CLOCK_MONOTONIC_COARSE, &b) == 0 &&
            b.tv_sec - a.tv_sec <= 1 && a.tv_sec - b.tv_sec <= 1 &&
            fn(CLOCK_MONOTONIC, &a) == 0 && clock_gettime(CLOCK_MONOTONIC, &b) == 0 &&
            b.tv_sec - a.tv_sec <= 1 && a.tv_sec - b.tv_sec <= 1) {
            cc_clock_gettime = fn;
            break;
        }
    }
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
