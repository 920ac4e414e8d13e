/*
 * fz_alloc.h: forced into every csrc/ file of the fuzz build (clang
 * -include), so that the harness can make any one allocation fail and then
 * check the promise of each csrc/ function that can fail: CC_ENOMEM leaves
 * the structure as it was.
 */
#ifndef FZ_ALLOC_H
#define FZ_ALLOC_H

/* first, as cc_common.h would: memrchr and memmem are GNU extensions */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdlib.h>

void *fz_malloc(size_t n);
void *fz_calloc(size_t n, size_t size);
void *fz_realloc(void *p, size_t n);

#define malloc fz_malloc
#define calloc fz_calloc
#define realloc fz_realloc

#endif
