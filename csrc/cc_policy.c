/* cc_policy.c: see cc_policy.h for the structure, its invariants and how a
 * binding drives it.  Every step here has its twin, line for line, in
 * corecache/_pure/adaptive.py; change both or neither.  The exceptions are
 * shortcuts that change no decision: the fast paths inlined in cc_policy.h,
 * and admits() skipping counters whose value cannot change the outcome.
 *
 * The climber.  Every VOTES ghost votes it decides:
 *   - densities: once the window is the larger part, compare hits per entry
 *     since the last decision in the window and in main (ghost votes
 *     overrate the window near the top, where a tiny main space cannot show
 *     what it would admit);
 *   - the window grows when the votes lead for it by more than VOTE_MARGIN
 *     and the densities agree, shrinks when the votes lead for main or the
 *     densities disagree, and stays otherwise;
 *   - the step doubles while the direction holds and halves when it turns
 *     or stays (Rprop), within capacity/256 .. capacity/2.
 * A shift: a round with 2/3 of its votes for the window, after calm rounds
 * (running share < 3/5) and with a miss ratio 5/4 of the running one, halves
 * the sketch twice and, unless the window is large already, raises it to
 * 9/10 of the capacity for 5/2 x capacity requests before it returns.
 */
#include "cc_policy.h"

#include <stdlib.h>
#include <string.h>

#define SEG_OF(tag) ((unsigned)(tag) & CC_SEG_MASK)
#define PENDING_OF(tag) (((unsigned)(tag) & CC_PENDING_MASK) >> 2)

#define SAMPLE_FACTOR 10u
#define VOTES 32u
#define VOTE_MARGIN 6
#define EMA_ONE 1024u
#define EMA_KEEP 7u
#define GHOST_SEQ UINT64_C(0x7FFFFFFF)
#define RESET_MASK UINT64_C(0x7777777777777777)

/* ---- sizes ---------------------------------------------------------------- */

static void set_limits(cc_policy_t *p)
{
    uint32_t cap = p->capacity;
    p->window_limit = cap - cap / 100 > 1 ? cap - cap / 100 : 1;
    p->step_min = cap / 256 > 1 ? cap / 256 : 1;
    p->step_max = cap / 2 > 1 ? cap / 2 : 1;
    p->delta = cap / 16 > 1 ? cap / 16 : 1;
    p->sample = (uint64_t)SAMPLE_FACTOR * cap;
}

static size_t sketch_words_for(uint32_t capacity)
{
    size_t n = 8;
    while ((uint64_t)n * 4 < (uint64_t)capacity * 3)
        n *= 2;
    return n;
}

static uint64_t ghost_slots_for(uint32_t delta)
{
    uint64_t n = 8;
    while (n < 2 * (uint64_t)delta)
        n *= 2;
    return n;
}

static uint64_t requests(const cc_policy_t *p)
{
    return p->hits_window + p->hits_main + p->misses;
}

/* next_event after next_age, burst_end or the sketch changed. */
static void schedule(cc_policy_t *p)
{
    uint64_t e = p->sketch != NULL ? p->next_age : UINT64_MAX;
    if (p->burst_end && p->burst_end < e)
        e = p->burst_end;
    p->next_event = e;
}

int cc_policy_init(cc_policy_t *p, uint32_t capacity)
{
    if (capacity < 1)
        return CC_EINVAL;
    memset(p, 0, sizeof(*p));
    p->capacity = capacity;
    set_limits(p);
    p->window_max = capacity / 100 > 1 ? capacity / 100 : 1;
    p->step = p->step_min;
    p->first_probation = CC_NIL;
    p->first_window = CC_NIL;
    p->bound_of = CC_NIL;
    p->ema = EMA_ONE / 2;
    return CC_OK;
}

void cc_policy_free(cc_policy_t *p)
{
    free(p->tags);
    free(p->sketch);
    free(p->ghost);
    p->tags = NULL;
    p->sketch = NULL;
    p->ghost = NULL;
    p->tags_cap = 0;
}

int cc_policy_grow(cc_policy_t *p, const cc_lru_t *t)
{
    if ((uint64_t)p->tags_cap < (uint64_t)t->used + 1) {
        uint64_t cap = p->tags_cap ? (uint64_t)p->tags_cap * 2 : 8;
        uint8_t *tags;
        if (cap < (uint64_t)t->used + 1)
            cap = (uint64_t)t->used + 1;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        tags = (uint8_t *)realloc(p->tags, (size_t)cap);
        if (tags == NULL)
            return CC_ENOMEM;
        memset(tags + p->tags_cap, 0, (size_t)(cap - p->tags_cap));
        p->tags = tags;
        p->tags_cap = (uint32_t)cap;
    }
    if (p->sketch == NULL && ((uint64_t)t->count + 1) * 2 >= p->capacity) {
        size_t words = sketch_words_for(p->capacity);
        uint64_t slots = ghost_slots_for(p->delta);
        uint64_t *sketch = (uint64_t *)calloc(words, sizeof(uint64_t));
        uint64_t *ghost = (uint64_t *)calloc((size_t)(2 * slots), sizeof(uint64_t));
        if (sketch == NULL || ghost == NULL) {
            free(sketch);
            free(ghost);
            return CC_ENOMEM;
        }
        p->sketch = sketch;
        p->sketch_words = words;
        p->block_mask = words / 8 - 1;
        p->next_age = requests(p) + p->sample;
        p->ghost = ghost;
        p->ghost_mask = slots - 1;
        schedule(p);
    }
    return CC_OK;
}

/* ---- the sketch ----------------------------------------------------------- */

/* The counters of mixed hash m: block BLOCK (8 words; m's low bits), and
 * in it row i's counter is nibble NIBBLE_SHIFT / 4 of word WORD: 2i + bit
 * 32 + 8i of m, the nibble's index being bits 33-36 + 8i (taken already
 * shifted into place, times 4). */
#define BLOCK(p, m) ((p)->sketch + ((size_t)((m) & (p)->block_mask) << 3))
#define WORD(m, i) (2 * (i) + (size_t)(((m) >> (32 + 8 * (i))) & 1))
#define NIBBLE_SHIFT(m, i) ((unsigned)((m) >> (31 + 8 * (i))) & 0x3Cu)

/* Add n to the four counters of mixed hash m, each saturating at 15. */
static void sketch_add(cc_policy_t *p, uint64_t m, unsigned n)
{
    uint64_t *b;
    unsigned i;
    if (p->sketch == NULL)
        return;
    b = BLOCK(p, m);
    for (i = 0; i < 4; i++) {
        uint64_t *w = &b[WORD(m, i)];
        unsigned s = NIBBLE_SHIFT(m, i);
        unsigned v = (unsigned)(*w >> s) & 15;
        unsigned nv = v + n < 15 ? v + n : 15;
        *w += (uint64_t)(nv - v) << s;
    }
}

/* sketch_add(p, m, 1), the insert's: a counter at 15 stays. */
static void sketch_inc(cc_policy_t *p, uint64_t m)
{
    uint64_t *b;
    unsigned i;
    if (p->sketch == NULL)
        return;
    b = BLOCK(p, m);
    for (i = 0; i < 4; i++) {
        uint64_t *w = &b[WORD(m, i)];
        unsigned s = NIBBLE_SHIFT(m, i);
        if (((*w >> s) & 15) != 15)
            *w += (uint64_t)1 << s;
    }
}

static unsigned sketch_freq(const cc_policy_t *p, uint64_t m)
{
    const uint64_t *b;
    unsigned i, f = 15;
    if (p->sketch == NULL)
        return 0;
    b = BLOCK(p, m);
    for (i = 0; i < 4; i++) {
        unsigned v = (unsigned)(b[WORD(m, i)] >> NIBBLE_SHIFT(m, i)) & 15;
        if (v < f)
            f = v;
    }
    return f;
}

/* sketch_freq when only an estimate above `floor` matters: the estimate, or
 * the first counter not above `floor` (so at most `floor`) without reading
 * the others. */
static unsigned sketch_freq_above(const cc_policy_t *p, uint64_t m, unsigned floor)
{
    const uint64_t *b;
    unsigned i, f = 15;
    if (p->sketch == NULL)
        return 0;
    b = BLOCK(p, m);
    for (i = 0; i < 4; i++) {
        unsigned v = (unsigned)(b[WORD(m, i)] >> NIBBLE_SHIFT(m, i)) & 15;
        if (v <= floor)
            return v;
        if (v < f)
            f = v;
    }
    return f;
}

uint32_t cc_policy_frequency(const cc_policy_t *p, int64_t hash)
{
    return sketch_freq(p, cc_mix64((uint64_t)hash));
}

/* Halve every counter, and every entry's pending count with them. */
static void age(cc_policy_t *p)
{
    size_t i;
    if (p->sketch == NULL)
        return;
    p->bound_of = CC_NIL;
    for (i = 0; i < p->sketch_words; i++)
        p->sketch[i] = (p->sketch[i] >> 1) & RESET_MASK;
    for (i = 0; i < p->tags_cap; i++) {
        unsigned tag = p->tags[i];
        p->tags[i] = (uint8_t)((tag & CC_SEG_MASK) | ((tag >> 1) & 0x1Cu));
    }
    p->agings++;
}

/* Hand entry i's pending hits to the sketch. */
CC_INLINE void flush(cc_policy_t *p, const cc_lru_t *t, uint32_t i)
{
    unsigned tag = p->tags[i];
    if (tag & CC_PENDING_MASK) {
        sketch_add(p, cc_mix64((uint64_t)t->entries[i].hash), PENDING_OF(tag));
        p->tags[i] = (uint8_t)(tag & CC_SEG_MASK);
    }
}

/* ---- list moves ----------------------------------------------------------- */

static void list_unlink(cc_lru_t *t, uint32_t i)
{
    cc_entry_t *e = t->entries;
    if (e[i].prev == CC_NIL)
        t->head = e[i].next;
    else
        e[e[i].prev].next = e[i].next;
    if (e[i].next == CC_NIL)
        t->tail = e[i].prev;
    else
        e[e[i].next].prev = e[i].prev;
}

/* Link i just before `at`, or at the tail when `at` is CC_NIL. */
static void list_insert_before(cc_lru_t *t, uint32_t i, uint32_t at)
{
    cc_entry_t *e = t->entries;
    if (at == CC_NIL) {
        e[i].prev = t->tail;
        e[i].next = CC_NIL;
        if (t->tail == CC_NIL)
            t->head = i;
        else
            e[t->tail].next = i;
        t->tail = i;
        return;
    }
    e[i].prev = e[at].prev;
    e[i].next = at;
    if (e[at].prev == CC_NIL)
        t->head = i;
    else
        e[e[at].prev].next = i;
    e[at].prev = i;
}

static void set_seg(cc_policy_t *p, uint32_t i, unsigned seg)
{
    p->tags[i] = (uint8_t)((p->tags[i] & ~CC_SEG_MASK) | seg);
}

/* The oldest protected entry (the table's head) to protected's newest end. */
static void protected_to_tail(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    uint32_t after = p->n[CC_SEG_PROBATION] ? p->first_probation : p->first_window;
    if (t->entries[i].next == after)
        return;                       /* the only protected entry */
    list_unlink(t, i);
    list_insert_before(t, i, after);
}

/* The oldest protected entry to probation's newest end. */
static void protected_to_probation(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    if (t->entries[i].next != p->first_window) {
        list_unlink(t, i);
        list_insert_before(t, i, p->first_window);
    }
    set_seg(p, i, CC_SEG_PROBATION);
    p->n[CC_SEG_PROTECTED]--;
    p->n[CC_SEG_PROBATION]++;
    if (p->first_probation == CC_NIL)
        p->first_probation = i;
}

/* The oldest window entry becomes probation's newest: only the boundary moves. */
static void window_to_probation(cc_policy_t *p, const cc_lru_t *t, uint32_t i)
{
    p->first_window = p->n[CC_SEG_WINDOW] > 1 ? t->entries[i].next : CC_NIL;
    set_seg(p, i, CC_SEG_PROBATION);
    p->n[CC_SEG_WINDOW]--;
    p->n[CC_SEG_PROBATION]++;
    if (p->first_probation == CC_NIL)
        p->first_probation = i;
}

/* The oldest probation entry becomes protected's newest: the boundary moves. */
static void probation_to_protected(cc_policy_t *p, const cc_lru_t *t, uint32_t i)
{
    p->first_probation = p->n[CC_SEG_PROBATION] > 1 ? t->entries[i].next : CC_NIL;
    set_seg(p, i, CC_SEG_PROTECTED);
    p->n[CC_SEG_PROBATION]--;
    p->n[CC_SEG_PROTECTED]++;
}

/* Forget entry i (its pending hits must have been flushed) and unlink it
 * from the table. */
CC_INLINE void drop(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    unsigned seg = SEG_OF(p->tags[i]);
    if (seg == CC_SEG_WINDOW && i == p->first_window)
        p->first_window = p->n[seg] > 1 ? t->entries[i].next : CC_NIL;
    else if (seg == CC_SEG_PROBATION && i == p->first_probation)
        p->first_probation = p->n[seg] > 1 ? t->entries[i].next : CC_NIL;
    p->n[seg]--;
    p->tags[i] = 0;
    if (i == p->bound_of)
        p->bound_of = CC_NIL;
    cc_lru_remove(t, i);
}

/* drop() of the oldest window entry (a rejected candidate): the same
 * steps, with its segment known. */
CC_INLINE void drop_first_window(cc_policy_t *p, cc_lru_t *t, uint32_t c)
{
    p->first_window = p->n[CC_SEG_WINDOW] > 1 ? t->entries[c].next : CC_NIL;
    p->n[CC_SEG_WINDOW]--;
    p->tags[c] = 0;
    if (c == p->bound_of)
        p->bound_of = CC_NIL;
    cc_lru_remove(t, c);
}

/* ---- ghosts and the climber ----------------------------------------------- */

/* Remember the entry of mixed hash m, evicted from main or rejected. */
static void ghost_record(cc_policy_t *p, uint64_t m, int main)
{
    uint64_t slot;
    if (p->ghost == NULL)
        return;
    slot = m & p->ghost_mask;
    if (main)
        p->ghost[slot + p->ghost_mask + 1] = ((m >> 32) << 32) | (p->main_seq & GHOST_SEQ);
    else
        p->ghost[slot] = ((m >> 32) << 32) | (p->window_seq & GHOST_SEQ);
}

static uint32_t clamp_window(const cc_policy_t *p, int64_t w)
{
    if (w < 1)
        return 1;
    if (w > (int64_t)p->window_limit)
        return p->window_limit;
    return (uint32_t)w;
}

/* Popularity shifted: forget faster, and let recency in for a while (returns
 * 1) unless the window is large already. */
static int shift(cc_policy_t *p)
{
    uint32_t w = p->window_max;
    age(p);
    age(p);
    if (p->burst_end == 0 && (uint64_t)w * 10 < (uint64_t)p->capacity * 9) {
        uint64_t len = (uint64_t)p->capacity * 5 / 2;
        uint32_t big = (uint32_t)((uint64_t)p->capacity * 9 / 10);
        p->burst_from = w;
        p->window_max = big > 1 ? big : 1;
        p->burst_end = requests(p) + (len > 1 ? len : 1);
        schedule(p);
        p->step = p->step_max;
        p->last_dir = 1;
        p->bursts++;
        return 1;
    }
    return 0;
}

static void end_burst(cc_policy_t *p)
{
    p->burst_end = 0;
    p->window_max = clamp_window(p, p->burst_from);
    p->step = p->step_min;
    p->last_dir = 0;
    p->votes_window = p->votes_main = 0;
}

static void decide(cc_policy_t *p)
{
    uint64_t vw = p->votes_window, vm = p->votes_main;
    uint64_t hw = p->hits_window - p->snap_window;
    uint64_t hm = p->hits_main - p->snap_main;
    uint64_t dm = p->misses - p->snap_misses, dr, ratio, w, m;
    int64_t lead;
    int calm, surge, dense, vote, dir;

    p->votes_window = p->votes_main = 0;
    if (hw > UINT32_MAX)
        hw = UINT32_MAX;
    if (hm > UINT32_MAX)
        hm = UINT32_MAX;
    p->snap_window = p->hits_window;
    p->snap_main = p->hits_main;
    p->snap_misses = p->misses;

    calm = (uint64_t)p->ema * 5 < 3 * (uint64_t)EMA_ONE;
    p->ema = (uint32_t)(((uint64_t)p->ema * EMA_KEEP + vw * EMA_ONE / (vw + vm) * (8 - EMA_KEEP)) / 8);
    dr = dm + hw + hm;
    ratio = dr ? dm * EMA_ONE / dr : 0;
    surge = ratio * 4 >= (uint64_t)p->miss_ema * 5;
    p->miss_ema = p->miss_ema ? (uint32_t)(((uint64_t)p->miss_ema * 7 + ratio) / 8) : (uint32_t)ratio;
    if (calm && surge && vw * 3 >= 2 * (vw + vm) && shift(p))
        return;

    w = p->window_max;
    m = p->capacity > w + 1 ? p->capacity - w : 1;
    dense = (w < m || hw * m > hm * w) ? 1 : -1;
    lead = (int64_t)vw - (int64_t)vm;
    vote = lead > VOTE_MARGIN ? 1 : lead < -VOTE_MARGIN ? -1 : 0;
    if (vote > 0 && dense > 0)
        dir = 1;
    else if (vote != 0)
        dir = -1;
    else
        dir = 0;
    if (dir == 0) {
        p->step = p->step / 2 > p->step_min ? p->step / 2 : p->step_min;
        return;
    }
    if (dir == p->last_dir)
        p->step = (uint64_t)p->step * 2 < p->step_max ? p->step * 2 : p->step_max;
    else
        p->step = p->step / 2 > p->step_min ? p->step / 2 : p->step_min;
    p->last_dir = dir;
    p->window_max = clamp_window(p, (int64_t)w + (int64_t)dir * p->step);
}

static void vote(cc_policy_t *p, int window)
{
    if (window)
        p->votes_window++;
    else
        p->votes_main++;
    if (p->votes_window + p->votes_main >= VOTES)
        decide(p);
}

/* A miss on a key evicted lately (a ghost) votes for the part that would
 * have kept it. */
static void ghost_check(cc_policy_t *p, uint64_t m)
{
    uint64_t *gw, *gm;
    if (p->ghost == NULL)
        return;
    gw = &p->ghost[m & p->ghost_mask];     /* the window's record */
    gm = gw + p->ghost_mask + 1;           /* main's */
    /* A record is m's when its top 32 bits are m's (and it is not empty:
     * ruled out below, as an empty one passes only when m's are 0). */
    if (CC_LIKELY(((*gw ^ m) >> 32) != 0 && ((*gm ^ m) >> 32) != 0))
        return;
    if (*gw && ((*gw ^ m) >> 32) == 0) {
        uint64_t rec = *gw;
        *gw = 0;
        if (((p->window_seq - rec) & GHOST_SEQ) < p->delta)
            vote(p, 1);
    }
    if (*gm && ((*gm ^ m) >> 32) == 0) {
        uint64_t rec = *gm;
        *gm = 0;
        if (((p->main_seq - rec) & GHOST_SEQ) < p->delta)
            vote(p, 0);
    }
}

/* ---- operations ----------------------------------------------------------- */

static void demote_protected(cc_policy_t *p, cc_lru_t *t)
{
    uint32_t pmax = (uint32_t)((uint64_t)(p->capacity - p->window_max) * 4 / 5);
    while (p->n[CC_SEG_PROTECTED] > pmax) {
        uint32_t i = t->head;
        int counted = (p->tags[i] & CC_PENDING_MASK) != 0;
        flush(p, t, i);
        if (counted)
            protected_to_tail(p, t, i);
        else
            protected_to_probation(p, t, i);
    }
}

/* victim's loop, once the oldest probation entry is counted or there is none. */
static uint32_t find_victim(cc_policy_t *p, cc_lru_t *t)
{
    while (p->n[CC_SEG_PROBATION]) {
        uint32_t i = p->first_probation;
        if (!(p->tags[i] & CC_PENDING_MASK))
            return i;
        flush(p, t, i);
        probation_to_protected(p, t, i);
        demote_protected(p, t);
    }
    while (p->n[CC_SEG_PROTECTED]) {
        uint32_t i = t->head;
        if (!(p->tags[i] & CC_PENDING_MASK))
            return i;
        flush(p, t, i);
        protected_to_tail(p, t, i);
    }
    return CC_NIL;
}

/* Does the candidate of mixed hash mc (flushed) win over victim v: is its
 * estimate higher, the candidate losing ties?  v's estimate is at least
 * `floor` (0, or p->bound: see cc_policy_t), so a candidate not above it
 * loses, as soon as one of its counters says so and without reading v's. */
CC_INLINE int admits(cc_policy_t *p, const cc_lru_t *t, uint64_t mc, uint32_t v)
{
    unsigned floor = v == p->bound_of ? p->bound : 0;
    unsigned fc = sketch_freq_above(p, mc, floor), fv;
    if (fc <= floor)
        return 0;
    fv = sketch_freq(p, cc_mix64((uint64_t)t->entries[v].hash));
    p->bound_of = v;
    p->bound = fv;
    return fc > fv;
}

/* The oldest uncounted probation entry, promoting counted ones on the way;
 * else the oldest uncounted protected entry; else CC_NIL. */
CC_INLINE uint32_t victim(cc_policy_t *p, cc_lru_t *t)
{
    if (p->n[CC_SEG_PROBATION] && !(p->tags[p->first_probation] & CC_PENDING_MASK))
        return p->first_probation;
    return find_victim(p, t);
}

/* cc_policy_rebalance's work, inline in cc_policy_insert too (its first
 * eviction, without a second call). */
CC_INLINE uint32_t rebalance(cc_policy_t *p, cc_lru_t *t)
{
    uint32_t c, v;
    uint64_t mc;
    while (p->n[CC_SEG_WINDOW] > p->window_max) {
        c = p->first_window;
        if (t->count <= p->capacity) {
            flush(p, t, c);
            window_to_probation(p, t, c);
            continue;
        }
        v = victim(p, t);
        p->window_seq++;
        flush(p, t, c);
        mc = cc_mix64((uint64_t)t->entries[c].hash);
        if (v != CC_NIL && admits(p, t, mc, v)) {
            drop(p, t, v);
            p->main_seq++;
            ghost_record(p, cc_mix64((uint64_t)t->entries[v].hash), 1);
            window_to_probation(p, t, c);
            CC_POLICY_CHECK(p, t);
            return v;
        }
        drop_first_window(p, t, c);
        ghost_record(p, mc, 0);
        CC_POLICY_CHECK(p, t);
        return c;
    }
    if (t->count > p->capacity) {
        v = victim(p, t);
        if (v == CC_NIL) {
            c = p->first_window;
            p->window_seq++;
            flush(p, t, c);
            drop_first_window(p, t, c);
            ghost_record(p, cc_mix64((uint64_t)t->entries[c].hash), 0);
            CC_POLICY_CHECK(p, t);
            return c;
        }
        drop(p, t, v);
        p->main_seq++;
        ghost_record(p, cc_mix64((uint64_t)t->entries[v].hash), 1);
        CC_POLICY_CHECK(p, t);
        return v;
    }
    return CC_NIL;
}

uint32_t cc_policy_rebalance(cc_policy_t *p, cc_lru_t *t)
{
    return rebalance(p, t);
}

uint32_t cc_policy_insert(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    uint64_t m, r;
    p->misses++;
    r = requests(p);                /* neither end_burst nor age changes it */
    if (CC_UNLIKELY(r >= p->next_event)) {
        if (p->burst_end && r >= p->burst_end)
            end_burst(p);
        if (p->sketch != NULL && r >= p->next_age) {
            age(p);
            p->next_age = r + p->sample;
        }
        schedule(p);
    }
    m = cc_mix64((uint64_t)t->entries[i].hash);
    sketch_inc(p, m);
    ghost_check(p, m);
    p->tags[i] = CC_SEG_WINDOW;
    p->n[CC_SEG_WINDOW]++;
    if (p->first_window == CC_NIL)
        p->first_window = i;
    CC_POLICY_CHECK(p, t);
    if (p->n[CC_SEG_WINDOW] <= p->window_max && t->count <= p->capacity)
        return CC_NIL;
    return rebalance(p, t);
}

void cc_policy_remove(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    flush(p, t, i);
    drop(p, t, i);
    CC_POLICY_CHECK(p, t);
}

void cc_policy_clear(cc_policy_t *p)
{
    p->n[CC_SEG_WINDOW] = p->n[CC_SEG_PROBATION] = p->n[CC_SEG_PROTECTED] = 0;
    p->first_probation = CC_NIL;
    p->first_window = CC_NIL;
    p->bound_of = CC_NIL;
    if (p->tags)
        memset(p->tags, 0, p->tags_cap);
}

/* Nibble by nibble, the larger of two words of counters. */
static uint64_t nibble_max(uint64_t a, uint64_t b)
{
    uint64_t out = 0;
    unsigned s;
    for (s = 0; s < 64; s += 4) {
        uint64_t x = (a >> s) & 15, y = (b >> s) & 15;
        out |= (x > y ? x : y) << s;
    }
    return out;
}

int cc_policy_resize(cc_policy_t *p, uint32_t capacity)
{
    uint64_t *sketch = NULL, *ghost = NULL;
    size_t words = 0;
    uint64_t slots = 0;
    uint32_t old = p->capacity, delta = capacity / 16 > 1 ? capacity / 16 : 1;

    if (capacity < 1)
        return CC_EINVAL;
    /* allocate first, so that a failure changes nothing */
    if (p->sketch != NULL) {
        words = sketch_words_for(capacity);
        slots = ghost_slots_for(delta);
        ghost = (uint64_t *)calloc((size_t)(2 * slots), sizeof(uint64_t));
        if (ghost == NULL)
            return CC_ENOMEM;
        if (words != p->sketch_words) {
            sketch = (uint64_t *)malloc(words * sizeof(uint64_t));
            if (sketch == NULL) {
                free(ghost);
                return CC_ENOMEM;
            }
        }
    }
    if (p->burst_end) {
        p->burst_end = 0;
        p->window_max = p->burst_from;
    }
    p->capacity = capacity;
    set_limits(p);
    p->window_max = clamp_window(p, (int64_t)((uint64_t)p->window_max * capacity / old));
    if (p->step < p->step_min)
        p->step = p->step_min;
    if (p->step > p->step_max)
        p->step = p->step_max;
    if (p->sketch != NULL) {
        if (sketch != NULL) {
            size_t w, j, n = p->sketch_words;
            if (words > n) {
                /* a key's block in the larger table keeps its low bits */
                for (w = 0; w < words; w++)
                    sketch[w] = p->sketch[w & (n - 1)];
            }
            else {
                memcpy(sketch, p->sketch, words * sizeof(uint64_t));
                for (j = words; j < n; j += words)
                    for (w = 0; w < words; w++)
                        if (sketch[w] != p->sketch[j + w])
                            sketch[w] = nibble_max(sketch[w], p->sketch[j + w]);
            }
            free(p->sketch);
            p->sketch = sketch;
            p->sketch_words = words;
            p->block_mask = words / 8 - 1;
        }
        p->next_age = requests(p) + p->sample;
        free(p->ghost);
        p->ghost = ghost;
        p->ghost_mask = slots - 1;
    }
    schedule(p);
    p->votes_window = p->votes_main = 0;
    p->bound_of = CC_NIL;
    return CC_OK;
}

int cc_policy_compact(cc_policy_t *p, cc_lru_t *t)
{
    uint32_t cap = t->count > 8 ? t->count : 8, i, k = 0;
    uint8_t *tags = (uint8_t *)calloc(cap, 1);
    if (tags == NULL)
        return CC_ENOMEM;
    /* cc_lru_compact numbers the entries in list order */
    for (i = t->head; i != CC_NIL; i = t->entries[i].next)
        tags[k++] = p->tags[i];
    if (cc_lru_compact(t) != CC_OK) {
        free(tags);
        return CC_ENOMEM;
    }
    free(p->tags);
    p->tags = tags;
    p->tags_cap = cap;
    p->first_probation = p->n[CC_SEG_PROBATION] ? p->n[CC_SEG_PROTECTED] : CC_NIL;
    p->first_window = p->n[CC_SEG_WINDOW]
        ? p->n[CC_SEG_PROTECTED] + p->n[CC_SEG_PROBATION] : CC_NIL;
    p->bound_of = CC_NIL;
    CC_POLICY_CHECK(p, t);
    return CC_OK;
}

int cc_policy_check(const cc_policy_t *p, const cc_lru_t *t)
{
    uint32_t i, seen[4] = {0, 0, 0, 0}, first_b = CC_NIL, first_w = CC_NIL;
    unsigned last = CC_SEG_PROTECTED;

    if (p->capacity < 1 || p->window_limit > p->capacity || p->window_max < 1 ||
        p->window_max > p->window_limit)
        return 0;
    if (p->step < p->step_min || p->step > p->step_max || p->last_dir < -1 || p->last_dir > 1)
        return 0;
    /* an insert must not step over an aging or the end of a burst */
    if ((p->sketch != NULL && p->next_event > p->next_age) ||
        (p->burst_end && p->next_event > p->burst_end))
        return 0;
    if ((uint64_t)p->n[1] + p->n[2] + p->n[3] != t->count)
        return 0;
    if (t->count && p->tags_cap < t->used)
        return 0;
    /* the list is protected*, probation*, window*, in that order */
    for (i = t->head; i != CC_NIL; i = t->entries[i].next) {
        unsigned seg = SEG_OF(p->tags[i]);
        if (seg == 0 || seg > last)
            return 0;
        if (seg == CC_SEG_PROBATION && first_b == CC_NIL)
            first_b = i;
        if (seg == CC_SEG_WINDOW && first_w == CC_NIL)
            first_w = i;
        seen[seg]++;
        last = seg;
    }
    if (seen[1] != p->n[1] || seen[2] != p->n[2] || seen[3] != p->n[3])
        return 0;
    if (first_b != p->first_probation || first_w != p->first_window)
        return 0;
    if (p->sketch != NULL) {
        if (p->sketch_words < 8 || (p->sketch_words & (p->sketch_words - 1)) ||
            p->block_mask != p->sketch_words / 8 - 1 || p->ghost == NULL)
            return 0;
    }
    return 1;
}
