/*
 * policy_driver.c: drives csrc/cc_policy.c over a real cc_lru_t table from a
 * line protocol on stdin, for tests/test_policy_c.py (which compiles it; it
 * is not part of the package).  Tokens name entries (0 <= token < MAX_TOKENS);
 * every command prints one line of what the policy decided:
 *
 *   n <capacity>          new policy and table            -> "ok"
 *   i <token> <hash>      miss: insert, then evict         -> "e <tokens evicted>"
 *   h <token>             hit                              -> "h"
 *   r <token>             remove                           -> "r"
 *   s <capacity>          resize, then evict               -> "e <tokens evicted>"
 *   c                     clear                            -> "c"
 *   k                     compact                          -> "k"
 *   q <hash>              sketch frequency of a hash       -> "f <n>"
 *   d                     state and order                  -> "d <state> | <order>"
 *
 * After every command the table and the policy are checked in full; a
 * failed check prints "BROKEN <command>" and exits 2.
 */
#include "cc_policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS (1u << 20)

static cc_lru_t table;
static cc_policy_t policy;
static uint32_t *index_of;   /* token -> entry index, CC_NIL if absent */

static uint32_t token_of(uint32_t i)
{
    return (uint32_t)((uintptr_t)table.entries[i].key - 1);
}

/* Report v (the first entry to go, or CC_NIL) and every further one. */
static void evict_from(uint32_t v)
{
    printf("e");
    for (; v != CC_NIL; v = cc_policy_evict(&policy, &table)) {
        uint32_t tok = token_of(v);
        index_of[tok] = CC_NIL;
        printf(" %" PRIu32, tok);
    }
    printf("\n");
}

static void evict_all(void)
{
    evict_from(cc_policy_evict(&policy, &table));
}

static void reset(uint32_t capacity)
{
    uint32_t k;
    cc_policy_free(&policy);
    cc_lru_free(&table);
    cc_lru_init(&table);
    if (cc_policy_init(&policy, capacity) != CC_OK) {
        printf("EINVAL\n");
        exit(2);
    }
    for (k = 0; k < MAX_TOKENS; k++)
        index_of[k] = CC_NIL;
}

static void dump(void)
{
    const cc_policy_t *p = &policy;
    uint32_t i;
    printf("d %" PRIu32 " %" PRIu32 " %d %" PRIu32 " %" PRIu32 " %" PRIu32
           " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32
           " %" PRIu64 " %" PRIu64 " %" PRIu64 " |",
           p->window_max, p->step, (int)p->last_dir, p->n[CC_SEG_WINDOW],
           p->n[CC_SEG_PROBATION], p->n[CC_SEG_PROTECTED], p->votes_window, p->votes_main,
           p->window_seq, p->main_seq, p->ema, p->miss_ema, p->burst_end, p->agings,
           p->bursts);
    for (i = table.head; i != CC_NIL; i = table.entries[i].next) {
        unsigned tag = p->tags[i];
        printf(" %" PRIu32 ":%u:%u", token_of(i), tag & CC_SEG_MASK, (tag & CC_PENDING_MASK) >> 2);
    }
    printf("\n");
}

int main(void)
{
    char cmd[8];
    index_of = (uint32_t *)malloc(MAX_TOKENS * sizeof(uint32_t));
    if (index_of == NULL)
        return 1;
    cc_lru_init(&table);
    cc_policy_init(&policy, 1);
    while (scanf("%7s", cmd) == 1) {
        uint32_t tok, cap;
        int64_t hash;
        switch (cmd[0]) {
        case 'n':
            if (scanf("%" SCNu32, &cap) != 1)
                return 1;
            reset(cap);
            printf("ok\n");
            break;
        case 'i': {
            uint32_t i;
            if (scanf("%" SCNu32 " %" SCNd64, &tok, &hash) != 2 || tok >= MAX_TOKENS)
                return 1;
            if (cc_policy_reserve(&policy, &table) != CC_OK ||
                cc_lru_insert(&table, (void *)(uintptr_t)(tok + 1), NULL, hash, &i) != CC_OK)
                return 3;
            index_of[tok] = i;
            evict_from(cc_policy_insert(&policy, &table, i));
            break;
        }
        case 'h':
            if (scanf("%" SCNu32, &tok) != 1 || tok >= MAX_TOKENS || index_of[tok] == CC_NIL)
                return 1;
            cc_policy_hit(&policy, &table, index_of[tok]);
            printf("h\n");
            break;
        case 'r':
            if (scanf("%" SCNu32, &tok) != 1 || tok >= MAX_TOKENS || index_of[tok] == CC_NIL)
                return 1;
            cc_policy_remove(&policy, &table, index_of[tok]);
            index_of[tok] = CC_NIL;
            printf("r\n");
            break;
        case 's':
            if (scanf("%" SCNu32, &cap) != 1)
                return 1;
            if (cc_policy_resize(&policy, cap) != CC_OK)
                return 3;
            evict_all();
            break;
        case 'c': {
            cc_lru_t old;
            uint32_t i;
            for (i = table.head; i != CC_NIL; i = table.entries[i].next)
                index_of[token_of(i)] = CC_NIL;
            cc_lru_detach(&table, &old);
            cc_lru_free(&old);
            cc_policy_clear(&policy);
            printf("c\n");
            break;
        }
        case 'k': {
            uint32_t i;
            if (cc_policy_compact(&policy, &table) != CC_OK)
                return 3;
            for (i = table.head; i != CC_NIL; i = table.entries[i].next)
                index_of[token_of(i)] = i;
            printf("k\n");
            break;
        }
        case 'q':
            if (scanf("%" SCNd64, &hash) != 1)
                return 1;
            printf("f %" PRIu32 "\n", cc_policy_frequency(&policy, hash));
            break;
        case 'd':
            dump();
            break;
        default:
            return 1;
        }
        if (!cc_lru_check(&table) || !cc_policy_check(&policy, &table)) {
            printf("BROKEN %s\n", cmd);
            return 2;
        }
    }
    cc_policy_free(&policy);
    cc_lru_free(&table);
    free(index_of);
    return 0;
}
