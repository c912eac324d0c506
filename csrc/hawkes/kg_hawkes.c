#include "hawkes/kg_hawkes.h"

#include "common/grow.h"
#include "common/hashmap.h"
#include "common/topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Decayed accumulators: S values and a last-update time per slot. */

typedef struct {
    double *values; /* slots x S */
    double *last;   /* slots */
    int64_t slots, capacity;
    int scales;
} accumulators;

static int acc_init(accumulators *a, int64_t capacity, int scales)
{
    a->capacity = capacity < 16 ? 16 : capacity;
    a->slots = 0;
    a->scales = scales;
    a->values = calloc((size_t)(a->capacity * scales), sizeof(double));
    a->last = calloc((size_t)a->capacity, sizeof(double));
    return (a->values && a->last) ? 0 : -1;
}

static void acc_free(accumulators *a)
{
    free(a->values);
    free(a->last);
}

static int64_t acc_new_slot(accumulators *a)
{
    if (a->slots == a->capacity) {
        int64_t cap = 2 * a->capacity;
        if (LAMP_RESIZE(a->values, cap * a->scales) < 0 || LAMP_RESIZE(a->last, cap) < 0)
            return -1;
        memset(a->values + a->slots * a->scales, 0, (size_t)((cap - a->slots) * a->scales) * sizeof(double));
        memset(a->last + a->slots, 0, (size_t)(cap - a->slots) * sizeof(double));
        a->capacity = cap;
    }
    return a->slots++;
}

static void acc_add(accumulators *a, int64_t slot, double t, const double *rates)
{
    double *v = a->values + slot * a->scales;
    double dt = t - a->last[slot];
    for (int k = 0; k < a->scales; k++)
        v[k] = v[k] * exp(-rates[k] * dt) + 1.0;
    a->last[slot] = t;
}

static void acc_read(const accumulators *a, int64_t slot, double t, const double *rates, double *out)
{
    if (slot < 0) {
        for (int k = 0; k < a->scales; k++)
            out[k] = 0.0;
        return;
    }
    const double *v = a->values + slot * a->scales;
    double dt = t - a->last[slot];
    for (int k = 0; k < a->scales; k++)
        out[k] = v[k] * exp(-rates[k] * dt);
}

/* A keyed family: a map from key to accumulator slot. */
typedef struct {
    lamp_hashmap index;
    accumulators acc;
} family;

static int family_init(family *f, int64_t capacity, int scales)
{
    int a = lamp_hashmap_init(&f->index, capacity), b = acc_init(&f->acc, capacity, scales);
    return (a < 0 || b < 0) ? -1 : 0;
}

static void family_free(family *f)
{
    lamp_hashmap_free(&f->index);
    acc_free(&f->acc);
}

/* Adds one event to key's accumulator; *added says whether the key is new. -1 on allocation failure. */
static int family_add(family *f, uint64_t key, double t, const double *rates, int *added)
{
    int64_t slot = lamp_hashmap_get_or_put(&f->index, key, f->acc.slots, added);
    if (slot == -2)
        return -1;
    if (*added && acc_new_slot(&f->acc) < 0)
        return -1;
    acc_add(&f->acc, slot, t, rates);
    return 0;
}

static void family_read(const family *f, uint64_t key, double t, const double *rates, double *out)
{
    acc_read(&f->acc, lamp_hashmap_get(&f->index, key), t, rates, out);
}

/* ---------------------------------------------------------------------------
 * Adjacency lists: key -> growing array of ids. */

typedef struct {
    int64_t *items;
    int64_t n, capacity;
} id_list;

typedef struct {
    lamp_hashmap index;
    id_list *lists;
    int64_t count, capacity;
} list_family;

static int lists_init(list_family *l, int64_t capacity)
{
    l->capacity = capacity < 16 ? 16 : capacity;
    l->count = 0;
    l->lists = calloc((size_t)l->capacity, sizeof(id_list));
    return (lamp_hashmap_init(&l->index, capacity) < 0 || !l->lists) ? -1 : 0;
}

static void lists_free(list_family *l)
{
    for (int64_t i = 0; i < l->count; i++)
        free(l->lists[i].items);
    free(l->lists);
    lamp_hashmap_free(&l->index);
}

static int lists_append(list_family *l, uint64_t key, int64_t id)
{
    int added;
    int64_t which = lamp_hashmap_get_or_put(&l->index, key, l->count, &added);
    if (which == -2)
        return -1;
    if (added) {
        if (l->count == l->capacity) {
            if (LAMP_RESIZE(l->lists, 2 * l->capacity) < 0)
                return -1;
            memset(l->lists + l->capacity, 0, (size_t)l->capacity * sizeof(id_list));
            l->capacity *= 2;
        }
        l->count++;
    }
    id_list *list = &l->lists[which];
    if (list->n == list->capacity) {
        int64_t cap = list->capacity ? 2 * list->capacity : 4;
        if (LAMP_RESIZE(list->items, cap) < 0)
            return -1;
        list->capacity = cap;
    }
    list->items[list->n++] = id;
    return 0;
}

static const id_list *lists_get(const list_family *l, uint64_t key)
{
    int64_t which = lamp_hashmap_get(&l->index, key);
    return which < 0 ? NULL : &l->lists[which];
}

/* ---------------------------------------------------------------------------
 * The history state. */

typedef struct {
    const lamp_kg_config *cfg;
    int64_t E, R2;
    family triple;    /* (h, rr, t) */
    family head_rel;  /* (h, rr): sum over t of triple */
    family pair;      /* (h, t) */
    family rel_tail;  /* (rr, t) */
    accumulators head_total; /* per h: sum over t of pair (dense E) */
    accumulators rel_total;  /* per rr (dense 2R) */
    accumulators activity;   /* per entity as tail (dense E) */
    accumulators global;     /* one slot */
    double *tail_count;      /* E */
    double *rel_count;       /* 2R */
    double total_tail;
    list_family tails_of_head_rel; /* (h, rr) -> t */
    list_family tails_of_head;     /* h -> t (any relation) */
    list_family tails_of_rel;      /* rr -> t */
    list_family rels_of_pair;      /* (h, t) -> rr */
} kg_state;

static uint64_t key2(uint64_t a, uint64_t b, uint64_t nb) { return a * nb + b; }
static uint64_t key3(uint64_t a, uint64_t b, uint64_t c, uint64_t nb, uint64_t nc) { return (a * nb + b) * nc + c; }

static int dense_init(accumulators *a, int64_t n, int scales)
{
    if (acc_init(a, n, scales) < 0)
        return -1;
    a->slots = n;
    return 0;
}

static void state_free(kg_state *st)
{
    family_free(&st->triple);
    family_free(&st->head_rel);
    family_free(&st->pair);
    family_free(&st->rel_tail);
    acc_free(&st->head_total);
    acc_free(&st->rel_total);
    acc_free(&st->activity);
    acc_free(&st->global);
    free(st->tail_count);
    free(st->rel_count);
    lists_free(&st->tails_of_head_rel);
    lists_free(&st->tails_of_head);
    lists_free(&st->tails_of_rel);
    lists_free(&st->rels_of_pair);
}

static int state_init(kg_state *st, const lamp_kg_config *cfg, int64_t expected_events)
{
    memset(st, 0, sizeof *st);
    st->cfg = cfg;
    st->E = cfg->num_entities;
    st->R2 = 2 * cfg->num_relations;
    int S = cfg->num_scales;
    int64_t cap = 2 * expected_events + 16;
    int bad = 0;
    bad |= family_init(&st->triple, cap, S);
    bad |= family_init(&st->head_rel, cap, S);
    bad |= family_init(&st->pair, cap, S);
    bad |= family_init(&st->rel_tail, cap, S);
    bad |= dense_init(&st->head_total, st->E, S);
    bad |= dense_init(&st->rel_total, st->R2, S);
    bad |= dense_init(&st->activity, st->E, S);
    bad |= dense_init(&st->global, 1, S);
    bad |= lists_init(&st->tails_of_head_rel, cap);
    bad |= lists_init(&st->tails_of_head, st->E);
    bad |= lists_init(&st->tails_of_rel, st->R2);
    bad |= lists_init(&st->rels_of_pair, cap);
    st->tail_count = calloc((size_t)st->E, sizeof(double));
    st->rel_count = calloc((size_t)st->R2, sizeof(double));
    if (bad || !st->tail_count || !st->rel_count) {
        state_free(st);
        return -1;
    }
    return 0;
}

/* Inserts one directed event (h, rr, t) at time `when`. */
static int state_insert_directed(kg_state *st, int64_t h, int64_t rr, int64_t t, double when)
{
    const double *rates = st->cfg->rates;
    uint64_t E = (uint64_t)st->E, R2 = (uint64_t)st->R2;
    int added;
    if (family_add(&st->triple, key3((uint64_t)h, (uint64_t)rr, (uint64_t)t, R2, E), when, rates, &added) < 0)
        return -1;
    if (added && (lists_append(&st->tails_of_head_rel, key2((uint64_t)h, (uint64_t)rr, R2), t) < 0 ||
                  lists_append(&st->rels_of_pair, key2((uint64_t)h, (uint64_t)t, E), rr) < 0))
        return -1;
    if (family_add(&st->head_rel, key2((uint64_t)h, (uint64_t)rr, R2), when, rates, &added) < 0)
        return -1;
    if (family_add(&st->pair, key2((uint64_t)h, (uint64_t)t, E), when, rates, &added) < 0)
        return -1;
    if (added && lists_append(&st->tails_of_head, (uint64_t)h, t) < 0)
        return -1;
    if (family_add(&st->rel_tail, key2((uint64_t)rr, (uint64_t)t, E), when, rates, &added) < 0)
        return -1;
    if (added && lists_append(&st->tails_of_rel, (uint64_t)rr, t) < 0)
        return -1;
    acc_add(&st->head_total, h, when, rates);
    acc_add(&st->rel_total, rr, when, rates);
    acc_add(&st->activity, t, when, rates);
    acc_add(&st->global, 0, when, rates);
    st->tail_count[t] += 1.0;
    st->rel_count[rr] += 1.0;
    st->total_tail += 1.0;
    return 0;
}

static int64_t inverse_relation(int64_t rr, int64_t R)
{
    return rr < R ? rr + R : rr - R;
}

/* ---------------------------------------------------------------------------
 * Validation shared by both passes. */

static int check_inputs(const lamp_kg_config *cfg, const lamp_kg_stream *s, const lamp_kg_queries *q, int task,
                        lamp_error *err)
{
    if (cfg->num_entities <= 0 || cfg->num_relations <= 0)
        return lamp_error_set(err, LAMP_EVALUE, "num_entities and num_relations must be positive");
    if (cfg->num_scales < 1 || cfg->num_scales > LAMP_KG_MAX_SCALES)
        return lamp_error_set(err, LAMP_EVALUE, "the number of decay scales must be in 1..%d", LAMP_KG_MAX_SCALES);
    for (int k = 0; k < cfg->num_scales; k++)
        if (!(cfg->rates[k] > 0.0) || !isfinite(cfg->rates[k]))
            return lamp_error_set(err, LAMP_EVALUE, "decay rate %d is %g; rates must be positive and finite", k,
                                  cfg->rates[k]);
    double E = (double)cfg->num_entities, R2 = 2.0 * (double)cfg->num_relations;
    if (E * R2 * E >= 9.0e18)
        return lamp_error_set(err, LAMP_EVALUE, "too many entities and relations for 64-bit keys");
    if (task != LAMP_KG_TASK_OBJECT && task != LAMP_KG_TASK_RELATION)
        return lamp_error_set(err, LAMP_EVALUE, "unknown task %d", task);
    for (int64_t i = 0; i < s->n; i++) {
        if (s->subjects[i] < 0 || s->subjects[i] >= cfg->num_entities || s->objects[i] < 0 ||
            s->objects[i] >= cfg->num_entities)
            return lamp_error_set(err, LAMP_EVALUE, "history event %lld: entity id out of range [0, %lld)",
                                  (long long)i, (long long)cfg->num_entities);
        if (s->relations[i] < 0 || s->relations[i] >= cfg->num_relations)
            return lamp_error_set(err, LAMP_EVALUE, "history event %lld: relation %lld out of range [0, %lld)",
                                  (long long)i, (long long)s->relations[i], (long long)cfg->num_relations);
        if (!isfinite(s->times[i]) || (i > 0 && s->times[i] < s->times[i - 1]))
            return lamp_error_set(err, LAMP_EVALUE, "history event %lld: time %g is not finite or not sorted",
                                  (long long)i, s->times[i]);
    }
    for (int64_t i = 0; i < q->n; i++) {
        if (q->subjects[i] < 0 || q->subjects[i] >= cfg->num_entities)
            return lamp_error_set(err, LAMP_EVALUE, "query %lld: subject id out of range", (long long)i);
        if (!isfinite(q->times[i]) || (i > 0 && q->times[i] < q->times[i - 1]))
            return lamp_error_set(err, LAMP_EVALUE, "query %lld: time %g is not finite or not sorted",
                                  (long long)i, q->times[i]);
        if (task == LAMP_KG_TASK_OBJECT) {
            if (q->relations[i] < 0 || q->relations[i] >= 2 * cfg->num_relations)
                return lamp_error_set(err, LAMP_EVALUE, "query %lld: relation %lld out of range [0, 2R)",
                                      (long long)i, (long long)q->relations[i]);
            if (q->targets && (q->targets[i] < -1 || q->targets[i] >= cfg->num_entities))
                return lamp_error_set(err, LAMP_EVALUE, "query %lld: target entity out of range", (long long)i);
        } else {
            if (q->objects[i] < 0 || q->objects[i] >= cfg->num_entities)
                return lamp_error_set(err, LAMP_EVALUE, "query %lld: object id out of range", (long long)i);
            if (q->targets && (q->targets[i] < -1 || q->targets[i] >= cfg->num_relations))
                return lamp_error_set(err, LAMP_EVALUE, "query %lld: target relation out of range", (long long)i);
        }
    }
    return LAMP_OK;
}

/* Inserts history events with time < t, starting at *next. */
static int advance(kg_state *st, const lamp_kg_stream *s, int64_t *next, double t)
{
    int64_t R = st->cfg->num_relations;
    while (*next < s->n && s->times[*next] < t) {
        int64_t i = *next;
        if (state_insert_directed(st, s->subjects[i], s->relations[i], s->objects[i], s->times[i]) < 0 ||
            state_insert_directed(st, s->objects[i], s->relations[i] + R, s->subjects[i], s->times[i]) < 0)
            return -1;
        (*next)++;
    }
    return 0;
}

/* The per-scale part of a phi (or Phi) vector: after its two constants, S rows of
 * LAMP_KG_FEATURES_PER_SCALE columns, each column one decayed count read at time t. */
typedef struct {
    const double *rates;
    double t;
    int S;
    double *f;
} scale_features;

/* Column c: the accumulator of key in a family. */
static void put_family(const scale_features *b, int c, const family *fam, uint64_t key)
{
    double tmp[LAMP_KG_MAX_SCALES];
    family_read(fam, key, b->t, b->rates, tmp);
    for (int k = 0; k < b->S; k++)
        b->f[k * LAMP_KG_FEATURES_PER_SCALE + c] = tmp[k];
}

/* Column c: slot `slot` of a dense accumulator. */
static void put_acc(const scale_features *b, int c, const accumulators *a, int64_t slot)
{
    double tmp[LAMP_KG_MAX_SCALES];
    acc_read(a, slot, b->t, b->rates, tmp);
    for (int k = 0; k < b->S; k++)
        b->f[k * LAMP_KG_FEATURES_PER_SCALE + c] = tmp[k];
}

/* phi for one object candidate o of query (s, rr) at time t. */
static void object_phi(const kg_state *st, int64_t s, int64_t rr, int64_t o, double t, double *phi)
{
    uint64_t E = (uint64_t)st->E, R2 = (uint64_t)st->R2;
    int64_t inv = inverse_relation(rr, st->cfg->num_relations);
    const scale_features b = {st->cfg->rates, t, st->cfg->num_scales, phi + 2};
    phi[0] = 1.0;
    phi[1] = st->tail_count[o];
    put_family(&b, 0, &st->triple, key3((uint64_t)s, (uint64_t)rr, (uint64_t)o, R2, E));
    put_family(&b, 1, &st->triple, key3((uint64_t)s, (uint64_t)inv, (uint64_t)o, R2, E));
    put_family(&b, 2, &st->pair, key2((uint64_t)s, (uint64_t)o, E));
    put_family(&b, 3, &st->rel_tail, key2((uint64_t)rr, (uint64_t)o, E));
    put_acc(&b, 4, &st->activity, o);
}

/* Phi (sum over all object candidates) from running totals. */
static void object_totals(const kg_state *st, int64_t s, int64_t rr, double t, double *total)
{
    uint64_t R2 = (uint64_t)st->R2;
    int64_t inv = inverse_relation(rr, st->cfg->num_relations);
    const scale_features b = {st->cfg->rates, t, st->cfg->num_scales, total + 2};
    total[0] = (double)st->E;
    total[1] = st->total_tail;
    put_family(&b, 0, &st->head_rel, key2((uint64_t)s, (uint64_t)rr, R2));
    put_family(&b, 1, &st->head_rel, key2((uint64_t)s, (uint64_t)inv, R2));
    put_acc(&b, 2, &st->head_total, s);
    put_acc(&b, 3, &st->rel_total, rr);
    put_acc(&b, 4, &st->global, 0);
}

/* phi for one relation candidate r (original, < R) of query (s, ?, o) at time t. */
static void relation_phi(const kg_state *st, int64_t s, int64_t r, int64_t o, double t, double *phi)
{
    uint64_t E = (uint64_t)st->E, R2 = (uint64_t)st->R2;
    int64_t R = st->cfg->num_relations;
    const scale_features b = {st->cfg->rates, t, st->cfg->num_scales, phi + 2};
    phi[0] = 1.0;
    phi[1] = st->rel_count[r];
    put_family(&b, 0, &st->triple, key3((uint64_t)s, (uint64_t)r, (uint64_t)o, R2, E));
    put_family(&b, 1, &st->triple, key3((uint64_t)s, (uint64_t)(r + R), (uint64_t)o, R2, E));
    put_family(&b, 2, &st->head_rel, key2((uint64_t)s, (uint64_t)r, R2));
    put_family(&b, 3, &st->rel_tail, key2((uint64_t)r, (uint64_t)o, E));
    put_acc(&b, 4, &st->rel_total, r);
}

int lamp_kg_features(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q,
                     int task, double *true_features, double *total_features, lamp_error *err)
{
    int rc = check_inputs(cfg, stream, q, task, err);
    if (rc != LAMP_OK)
        return rc;
    if (!q->targets)
        return lamp_error_set(err, LAMP_EVALUE, "fitting needs the true targets of the queries");
    for (int64_t i = 0; i < q->n; i++)
        if (q->targets[i] < 0)
            return lamp_error_set(err, LAMP_EVALUE, "query %lld has no target (-1); fitting needs one",
                                  (long long)i);
    kg_state st;
    if (state_init(&st, cfg, stream->n) < 0)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory for the history indexes");
    int64_t F = LAMP_KG_NUM_FEATURES(cfg->num_scales), next = 0;
    double *phi = malloc((size_t)F * sizeof(double));
    if (!phi) {
        state_free(&st);
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < q->n && rc == LAMP_OK; i++) {
        double t = q->times[i];
        if (advance(&st, stream, &next, t) < 0) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory while indexing the history");
            break;
        }
        double *truef = true_features + i * F, *totalf = total_features + i * F;
        if (task == LAMP_KG_TASK_OBJECT) {
            object_phi(&st, q->subjects[i], q->relations[i], q->targets[i], t, truef);
            object_totals(&st, q->subjects[i], q->relations[i], t, totalf);
        } else {
            relation_phi(&st, q->subjects[i], q->targets[i], q->objects[i], t, truef);
            memset(totalf, 0, (size_t)F * sizeof(double));
            for (int64_t r = 0; r < cfg->num_relations; r++) {
                relation_phi(&st, q->subjects[i], r, q->objects[i], t, phi);
                for (int64_t f = 0; f < F; f++)
                    totalf[f] += phi[f];
            }
        }
    }
    free(phi);
    state_free(&st);
    return rc;
}

static void top_m(const double *scores, int64_t n, int64_t m, int64_t *out_ids, double *out_scores)
{
    lamp_topk heap = {out_scores, out_ids, 0, m, 0};
    for (int64_t c = 0; c < n; c++)
        lamp_topk_push(&heap, scores[c], c);
    lamp_topk_finish(&heap);
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Intensities of every object candidate; the parts that only depend on time
 * (constant, popularity, activity) are recomputed only when the time changes. */
static void object_scores(const kg_state *st, int64_t s, int64_t rr, double t, const double *w, double *base,
                          double *base_time, double *scores)
{
    const double *rates = st->cfg->rates;
    int S = st->cfg->num_scales;
    int64_t E = st->E, R = st->cfg->num_relations;
    const double *wf = w + 2;
    double tmp[LAMP_KG_MAX_SCALES];
    if (*base_time != t) {
        for (int64_t o = 0; o < E; o++) {
            double v = w[0] + w[1] * st->tail_count[o];
            acc_read(&st->activity, o, t, rates, tmp);
            for (int k = 0; k < S; k++)
                v += wf[k * 5 + 4] * tmp[k];
            base[o] = v;
        }
        *base_time = t;
    }
    memcpy(scores, base, (size_t)E * sizeof(double));
    uint64_t E64 = (uint64_t)E, R2 = (uint64_t)st->R2;
    const id_list *lists[4] = {
        lists_get(&st->tails_of_head_rel, key2((uint64_t)s, (uint64_t)rr, R2)),
        lists_get(&st->tails_of_head_rel, key2((uint64_t)s, (uint64_t)inverse_relation(rr, R), R2)),
        lists_get(&st->tails_of_head, (uint64_t)s),
        lists_get(&st->tails_of_rel, (uint64_t)rr),
    };
    for (int which = 0; which < 4; which++) {
        const id_list *list = lists[which];
        if (!list)
            continue;
        for (int64_t j = 0; j < list->n; j++) {
            int64_t o = list->items[j];
            switch (which) {
            case 0:
                family_read(&st->triple, key3((uint64_t)s, (uint64_t)rr, (uint64_t)o, R2, E64), t, rates, tmp);
                break;
            case 1:
                family_read(&st->triple, key3((uint64_t)s, (uint64_t)inverse_relation(rr, R), (uint64_t)o, R2, E64),
                            t, rates, tmp);
                break;
            case 2:
                family_read(&st->pair, key2((uint64_t)s, (uint64_t)o, E64), t, rates, tmp);
                break;
            default:
                family_read(&st->rel_tail, key2((uint64_t)rr, (uint64_t)o, E64), t, rates, tmp);
                break;
            }
            for (int k = 0; k < S; k++)
                scores[o] += wf[k * 5 + which] * tmp[k];
        }
    }
}

int lamp_kg_score(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q, int task,
                  const double *weights, int64_t m, int64_t *top_ids, double *top_scores,
                  const int64_t *filter_offsets, const int64_t *filter_ids, double *ranks, lamp_error *err)
{
    int rc = check_inputs(cfg, stream, q, task, err);
    if (rc != LAMP_OK)
        return rc;
    int64_t F = LAMP_KG_NUM_FEATURES(cfg->num_scales);
    for (int64_t f = 0; f < F; f++)
        if (!(weights[f] >= 0.0) || !isfinite(weights[f]))
            return lamp_error_set(err, LAMP_EVALUE, "weight %lld is %g; weights must be finite and >= 0",
                                  (long long)f, weights[f]);
    int64_t n_cand = task == LAMP_KG_TASK_OBJECT ? cfg->num_entities : cfg->num_relations;
    if (m < 1 || m > n_cand)
        return lamp_error_set(err, LAMP_EVALUE, "m=%lld must be in 1..%lld (the number of candidates)",
                              (long long)m, (long long)n_cand);
    if (ranks && filter_offsets) {
        for (int64_t i = 0; i < q->n; i++)
            if (filter_offsets[i + 1] < filter_offsets[i])
                return lamp_error_set(err, LAMP_EVALUE, "filter offsets must be non-decreasing");
        for (int64_t j = 0; j < filter_offsets[q->n]; j++)
            if (filter_ids[j] < 0 || filter_ids[j] >= n_cand)
                return lamp_error_set(err, LAMP_EVALUE, "filter id %lld out of range", (long long)filter_ids[j]);
    }
    kg_state st;
    if (state_init(&st, cfg, stream->n) < 0)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory for the history indexes");
    double *scores = malloc((size_t)n_cand * sizeof(double));
    double *base = malloc((size_t)n_cand * sizeof(double));
    double *phi = malloc((size_t)F * sizeof(double));
    unsigned char *filtered = calloc((size_t)n_cand, 1);
    double base_time = NAN;
    int64_t next = 0;
    if (!scores || !base || !phi || !filtered) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        goto finally;
    }
    for (int64_t i = 0; i < q->n; i++) {
        double t = q->times[i];
        if (advance(&st, stream, &next, t) < 0) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory while indexing the history");
            goto finally;
        }
        if (task == LAMP_KG_TASK_OBJECT) {
            object_scores(&st, q->subjects[i], q->relations[i], t, weights, base, &base_time, scores);
        } else {
            for (int64_t r = 0; r < n_cand; r++) {
                relation_phi(&st, q->subjects[i], r, q->objects[i], t, phi);
                scores[r] = dot(weights, phi, F);
            }
        }
        top_m(scores, n_cand, m, top_ids + i * m, top_scores + i * m);
        if (ranks) {
            int64_t target = q->targets ? q->targets[i] : -1;
            if (target < 0) {
                ranks[i] = 0.0;
                continue;
            }
            if (filter_offsets)
                for (int64_t j = filter_offsets[i]; j < filter_offsets[i + 1]; j++)
                    filtered[filter_ids[j]] = 1;
            double st_score = scores[target], greater = 0.0, equal = 0.0;
            for (int64_t c = 0; c < n_cand; c++) {
                if (c == target || filtered[c])
                    continue;
                if (scores[c] > st_score)
                    greater += 1.0;
                else if (scores[c] == st_score)
                    equal += 1.0;
            }
            ranks[i] = 1.0 + greater + 0.5 * equal;
            if (filter_offsets)
                for (int64_t j = filter_offsets[i]; j < filter_offsets[i + 1]; j++)
                    filtered[filter_ids[j]] = 0;
        }
    }
finally:
    free(scores);
    free(base);
    free(phi);
    free(filtered);
    state_free(&st);
    return rc;
}

int lamp_kg_nll(const double *true_features, const double *total_features, int64_t n, int64_t num_features,
                const double *weights, double *nll, double *grad, lamp_error *err)
{
    if (n <= 0)
        return lamp_error_set(err, LAMP_EVALUE, "no queries");
    double total = 0.0;
    for (int64_t f = 0; f < num_features; f++)
        grad[f] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *a = true_features + i * num_features, *b = total_features + i * num_features;
        double la = dot(weights, a, num_features), lb = dot(weights, b, num_features);
        if (!(la > 0.0) || !(lb > 0.0))
            return lamp_error_set(err, LAMP_EVALUE,
                                  "query %lld: the intensity of the observed candidate is %g (must be > 0; "
                                  "give the constant weight a positive value)", (long long)i, la);
        total += log(la) - log(lb);
        for (int64_t f = 0; f < num_features; f++)
            grad[f] -= a[f] / la - b[f] / lb;
    }
    *nll = -total / (double)n;
    for (int64_t f = 0; f < num_features; f++)
        grad[f] /= (double)n;
    return LAMP_OK;
}

int lamp_kg_score_pairs(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q,
                        const double *weights, int64_t m, int64_t *top_ids, double *top_scores,
                        const int64_t *filter_offsets, const int64_t *filter_ids, double *ranks, lamp_error *err)
{
    int rc = check_inputs(cfg, stream, q, LAMP_KG_TASK_OBJECT, err);
    if (rc != LAMP_OK)
        return rc;
    const int64_t E = cfg->num_entities, R = cfg->num_relations, F = LAMP_KG_NUM_FEATURES(cfg->num_scales);
    const int S = cfg->num_scales;
    for (int64_t f = 0; f < F; f++)
        if (!(weights[f] >= 0.0) || !isfinite(weights[f]))
            return lamp_error_set(err, LAMP_EVALUE, "weight %lld is %g; weights must be finite and >= 0",
                                  (long long)f, weights[f]);
    if (m < 1 || m > E * R)
        return lamp_error_set(err, LAMP_EVALUE, "m=%lld must be in 1..%lld", (long long)m, (long long)(E * R));
    for (int64_t i = 0; i < q->n; i++)
        if (q->relations[i] < 0 || q->relations[i] >= R || (ranks && (!q->targets || q->objects[i] < 0 ||
                                                                        q->objects[i] >= E)))
            return lamp_error_set(err, LAMP_EVALUE, "pair query %lld: needs an original relation and, for ranks, "
                                  "the target object", (long long)i);
    kg_state st;
    if (state_init(&st, cfg, stream->n) < 0)
        return lamp_error_set(err, LAMP_ENOMEM, "out of memory for the history indexes");
    double *D = malloc((size_t)E * sizeof(double)), *base = malloc((size_t)E * sizeof(double));
    double *T = calloc((size_t)E, sizeof(double));
    int64_t *touched = malloc((size_t)E * sizeof(int64_t)), *sparse_count = calloc((size_t)E, sizeof(int64_t));
    int64_t *sp_ids = NULL, sp_n = 0, sp_cap = 0;
    double *sp_scores = NULL, base_time = NAN;
    int64_t *obj_ids = malloc((size_t)m * sizeof(int64_t));
    double *obj_scores = malloc((size_t)m * sizeof(double));
    unsigned char *sparse_mark = calloc((size_t)(E * R + 7) / 8, 1);
    int64_t next = 0;
    const double *wf = weights + 2;
    if (!D || !base || !T || !touched || !sparse_count || !obj_ids || !obj_scores || !sparse_mark) {
        rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory");
        goto finally;
    }
    for (int64_t i = 0; i < q->n; i++) {
        double t = q->times[i], tmp[LAMP_KG_MAX_SCALES];
        int64_t s = q->subjects[i];
        if (advance(&st, stream, &next, t) < 0) {
            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory while indexing the history");
            goto finally;
        }
        /* D(o): the object scores of relation 0 minus its relation-specific terms = base + entity pair */
        object_scores(&st, s, 0, t, weights, base, &base_time, D); /* refreshes base (time-dependent part) */
        {
            memcpy(D, base, (size_t)E * sizeof(double));
            const id_list *pair_list = lists_get(&st.tails_of_head, (uint64_t)s);
            for (int64_t j = 0; pair_list && j < pair_list->n; j++) {
                int64_t o = pair_list->items[j];
                family_read(&st.pair, key2((uint64_t)s, (uint64_t)o, (uint64_t)E), t, cfg->rates, tmp);
                for (int k = 0; k < S; k++)
                    D[o] += wf[k * 5 + 2] * tmp[k];
            }
        }
        /* sparse pairs, relation by relation */
        sp_n = 0;
        lamp_topk heap = {top_scores + i * m, top_ids + i * m, 0, m, 0};
        for (int64_t r = 0; r < R; r++) {
            int64_t n_touched = 0;
            const id_list *lists[3] = {
                lists_get(&st.tails_of_head_rel, key2((uint64_t)s, (uint64_t)r, (uint64_t)st.R2)),
                lists_get(&st.tails_of_head_rel, key2((uint64_t)s, (uint64_t)(r + R), (uint64_t)st.R2)),
                lists_get(&st.tails_of_rel, (uint64_t)r)};
            for (int which = 0; which < 3; which++) {
                const id_list *list = lists[which];
                for (int64_t j = 0; list && j < list->n; j++) {
                    int64_t o = list->items[j];
                    if (which == 0)
                        family_read(&st.triple, key3((uint64_t)s, (uint64_t)r, (uint64_t)o, (uint64_t)st.R2,
                                                     (uint64_t)E), t, cfg->rates, tmp);
                    else if (which == 1)
                        family_read(&st.triple, key3((uint64_t)s, (uint64_t)(r + R), (uint64_t)o, (uint64_t)st.R2,
                                                     (uint64_t)E), t, cfg->rates, tmp);
                    else
                        family_read(&st.rel_tail, key2((uint64_t)r, (uint64_t)o, (uint64_t)E), t, cfg->rates, tmp);
                    double add = 0.0;
                    for (int k = 0; k < S; k++)
                        add += wf[k * 5 + (which == 2 ? 3 : which)] * tmp[k];
                    if (T[o] == 0.0 && add > 0.0)
                        touched[n_touched++] = o;
                    T[o] += add;
                }
            }
            for (int64_t j = 0; j < n_touched; j++) {
                int64_t o = touched[j], id = r * E + o;
                double score = D[o] + T[o];
                T[o] = 0.0;
                sparse_mark[id >> 3] |= (unsigned char)(1u << (id & 7));
                sparse_count[o]++;
                lamp_topk_push(&heap, score, id);
                if (ranks) {
                    if (sp_n == sp_cap) {
                        sp_cap = sp_cap ? 2 * sp_cap : 1024;
                        if (LAMP_RESIZE(sp_ids, sp_cap) < 0 || LAMP_RESIZE(sp_scores, sp_cap) < 0) {
                            rc = lamp_error_set(err, LAMP_ENOMEM, "out of memory"); /* finally frees both */
                            goto finally;
                        }
                    }
                    sp_ids[sp_n] = id;
                    sp_scores[sp_n++] = score;
                }
            }
        }
        /* dense pairs: the m best objects by D, each with its first m relations that are not sparse */
        lamp_topk objects = {obj_scores, obj_ids, 0, m < E ? m : E, 0};
        for (int64_t o = 0; o < E; o++)
            lamp_topk_push(&objects, D[o], o);
        int64_t n_obj = lamp_topk_finish(&objects);
        for (int64_t a = 0; a < n_obj; a++) {
            int64_t o = obj_ids[a], pushed = 0;
            for (int64_t r = 0; r < R && pushed < m; r++) {
                int64_t id = r * E + o;
                if (sparse_mark[id >> 3] & (1u << (id & 7)))
                    continue;
                lamp_topk_push(&heap, D[o], id);
                pushed++;
            }
        }
        int64_t size = lamp_topk_finish(&heap);
        for (int64_t j = size; j < m; j++) {
            top_ids[i * m + j] = -1;
            top_scores[i * m + j] = -INFINITY;
        }
        if (ranks) {
            int64_t tr = q->targets[i], to = q->objects[i], tid = tr * E + to;
            int target_sparse = (sparse_mark[tid >> 3] >> (tid & 7)) & 1;
            double ts = D[to];
            for (int64_t j = 0; j < sp_n; j++)
                if (sp_ids[j] == tid)
                    ts = sp_scores[j];
            double greater = 0.0, equal = 0.0;
            for (int64_t j = 0; j < sp_n; j++) {
                if (sp_ids[j] == tid)
                    continue;
                greater += sp_scores[j] > ts;
                equal += sp_scores[j] == ts;
            }
            for (int64_t o = 0; o < E; o++) {
                double dense = (double)(R - sparse_count[o]) - ((o == to && !target_sparse) ? 1.0 : 0.0);
                if (D[o] > ts)
                    greater += dense;
                else if (D[o] == ts)
                    equal += dense;
            }
            if (filter_offsets)
                for (int64_t j = filter_offsets[i]; j < filter_offsets[i + 1]; j++) {
                    int64_t fid = filter_ids[j];
                    if (fid == tid || fid < 0 || fid >= E * R)
                        continue;
                    double fs = D[fid % E];
                    for (int64_t k = 0; k < sp_n; k++)
                        if (sp_ids[k] == fid)
                            fs = sp_scores[k];
                    greater -= fs > ts;
                    equal -= fs == ts;
                }
            ranks[i] = 1.0 + greater + 0.5 * equal;
        }
        for (int64_t j = 0; j < sp_n; j++)
            sparse_mark[sp_ids[j] >> 3] = 0;
        /* clear marks and counts without ranks' list: walk the top ids and sparse counts */
        if (!ranks)
            memset(sparse_mark, 0, (size_t)(E * R + 7) / 8);
        memset(sparse_count, 0, (size_t)E * sizeof(int64_t));
    }
finally:
    free(D);
    free(base);
    free(T);
    free(touched);
    free(sparse_count);
    free(sp_ids);
    free(sp_scores);
    free(obj_ids);
    free(obj_scores);
    free(sparse_mark);
    state_free(&st);
    return rc;
}
