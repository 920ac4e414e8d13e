/*
 * policy_micro.c: instruction counts of the adaptive policy against the
 * plain LRU table, for callgrind (not a test, not part of the package):
 *
 *   gcc -std=c11 -O3 -Icsrc csrc/cc_policy.c csrc/cc_lru.c csrc/cc_expiry.c \
 *       csrc/cc_clock.c tests/c/policy_micro.c -o policy_micro -lm
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       --toggle-collect=run_<case> ./policy_micro <case> <entries> <ops>
 *
 * Each case is one noinline function, so --toggle-collect counts exactly
 * its instructions; divide by <ops>.  Cases (the table holds <entries>
 * int-keyed entries and is full):
 *   lru_hit        probe the index for a present key, cc_lru_move_to_end
 *   policy_hit     probe, cc_policy_hit (most entries are in the main space)
 *   window_hit     probe, cc_policy_hit with the window stretched to 99 %
 *   lru_set        a new key: cc_lru_insert, evict the head (cc_lru_remove)
 *   policy_set     a new key: reserve, cc_lru_insert, cc_policy_insert
 *                  (and its first eviction), cc_policy_evict until CC_NIL
 * The probe is the same for both (what a binding does before a hit), so
 * the difference is the policy's own cost.  Hits go to the keys in a
 * shuffled order; sets always miss.
 */
#include "cc_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cc_lru_t table;
static cc_policy_t policy;
static int use_policy;

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* the binding's lookup: probe from the home slot, compare hash and key */
static uint32_t probe(int64_t hash, uintptr_t key)
{
    size_t p = cc_lru_home(&table, hash);
    for (;;) {
        uint32_t i = table.slots[p];
        if (i == CC_NIL)
            return CC_NIL;
        if (table.entries[i].hash == hash && (uintptr_t)table.entries[i].key == key)
            return i;
        p = (p + 1) & table.mask;
    }
}

/* the live keys, in a shuffled order */
static void collect(uintptr_t *live, size_t entries)
{
    uint32_t i;
    size_t k = 0;
    for (i = table.head; i != CC_NIL && k < entries; i = table.entries[i].next)
        live[k++] = (uintptr_t)table.entries[i].key;
    for (k = entries; k > 1; k--) {
        size_t j = (size_t)(rnd() % k);
        uintptr_t t = live[k - 1];
        live[k - 1] = live[j];
        live[j] = t;
    }
}

static void insert(uintptr_t key)
{
    uint32_t i, v;
    int64_t hash = (int64_t)key;              /* hash(int) is the int */
    if (use_policy && cc_policy_reserve(&policy, &table) != CC_OK)
        exit(3);
    if (cc_lru_insert(&table, (void *)key, NULL, hash, &i) != CC_OK)
        exit(3);
    if (use_policy) {
        for (v = cc_policy_insert(&policy, &table, i); v != CC_NIL;
             v = cc_policy_evict(&policy, &table))
            (void)table.entries[v].key;       /* the binding releases it here */
    }
    else if (table.count > policy.capacity) {
        cc_lru_remove(&table, table.head);
    }
}

__attribute__((noinline)) void run_lru_hit(const uintptr_t *keys, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++) {
        uint32_t i = probe((int64_t)keys[k], keys[k]);
        cc_lru_move_to_end(&table, i);
    }
}

__attribute__((noinline)) void run_policy_hit(const uintptr_t *keys, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++) {
        uint32_t i = probe((int64_t)keys[k], keys[k]);
        cc_policy_hit(&policy, &table, i);
    }
}

__attribute__((noinline)) void run_window_hit(const uintptr_t *keys, size_t n)
{
    run_policy_hit(keys, n);
}

__attribute__((noinline)) void run_lru_set(const uintptr_t *keys, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        insert(keys[k]);
}

__attribute__((noinline)) void run_policy_set(const uintptr_t *keys, size_t n)
{
    run_lru_set(keys, n);
}

int main(int argc, char **argv)
{
    const char *which;
    size_t entries, ops, k;
    uintptr_t *live, *stream;
    if (argc != 4)
        return 1;
    which = argv[1];
    entries = (size_t)strtoull(argv[2], NULL, 10);
    ops = (size_t)strtoull(argv[3], NULL, 10);
    use_policy = strstr(which, "lru") == NULL;
    cc_lru_init(&table);
    cc_policy_init(&policy, (uint32_t)entries);
    live = (uintptr_t *)malloc(entries * sizeof(uintptr_t));
    stream = (uintptr_t *)malloc(ops * sizeof(uintptr_t));
    if (live == NULL || stream == NULL)
        return 1;
    /* fill (keys spread like ints above the small-int cache), then warm the
     * policy with a pass of hits so that most entries sit in the main space */
    for (k = 0; k < entries; k++)
        insert((uintptr_t)(1u << 30) + k * 7919u);
    if (use_policy) {
        /* churn with hits in between, so that entries reach protected */
        for (k = 0; k < 2 * entries; k++) {
            uintptr_t old = (uintptr_t)(1u << 30) + (rnd() % entries) * 7919u;
            uint32_t i = probe((int64_t)old, old);
            insert((uintptr_t)(1u << 31) + k);
            if (i != CC_NIL && probe((int64_t)old, old) == i)
                cc_policy_hit(&policy, &table, i);
        }
    }
    if (strcmp(which, "window_hit") == 0) {
        /* every entry in the window */
        policy.window_max = policy.window_limit;
        for (k = 0; k < 2 * entries; k++)
            insert((uintptr_t)(1u << 31) + (1u << 28) + k);
    }
    collect(live, entries);
    for (k = 0; k < ops; k++)
        stream[k] = strstr(which, "set") ? (uintptr_t)(1ull << 40) + k : live[rnd() % entries];
    if (strcmp(which, "lru_hit") == 0)
        run_lru_hit(stream, ops);
    else if (strcmp(which, "policy_hit") == 0)
        run_policy_hit(stream, ops);
    else if (strcmp(which, "window_hit") == 0)
        run_window_hit(stream, ops);
    else if (strcmp(which, "lru_set") == 0)
        run_lru_set(stream, ops);
    else if (strcmp(which, "policy_set") == 0)
        run_policy_set(stream, ops);
    else
        return 1;
    printf("%s: %u entries, window %u, probation %u, protected %u\n", which, table.count,
           policy.n[CC_SEG_WINDOW], policy.n[CC_SEG_PROBATION], policy.n[CC_SEG_PROTECTED]);
    return 0;
}
