#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hawkes/kg_hawkes.h"
#include "tests/check.h"

/* The arrays of a single query. */
typedef struct {
    int64_t s[1], r[1], o[1], target[1];
    double t[1];
} one_query;

/* A single object query (s, r, ?) at time t whose true object is `target`, held in *q. */
static lamp_kg_queries object_query(one_query *q, int64_t s, int64_t r, int64_t target, double t)
{
    *q = (one_query){{s}, {r}, {-1}, {target}, {t}};
    return (lamp_kg_queries){q->s, q->r, q->o, q->target, q->t, 1};
}

/* One event (0, r0, 1) at t = 0, a query (0, r0, ?) at t = 1: closed forms. */
static void test_single_event_closed_form(void)
{
    int64_t s[] = {0}, r[] = {0}, o[] = {1};
    double t[] = {0.0};
    lamp_kg_config cfg = {.num_entities = 3, .num_relations = 2, .num_scales = 1, .rates = {0.5}};
    lamp_kg_stream stream = {s, r, o, t, 1};
    one_query query;
    lamp_kg_queries q = object_query(&query, 0, 0, 1, 1.0);
    double phi[7], total[7];
    lamp_error err;
    lamp_error_clear(&err);
    CHECK(lamp_kg_features(&cfg, &stream, &q, LAMP_KG_TASK_OBJECT, phi, total, &err) == LAMP_OK);
    double d = exp(-0.5);
    CHECK_CLOSE(phi[0], 1.0, 1e-15);
    CHECK_CLOSE(phi[1], 1.0, 1e-15); /* object 1 was a tail once */
    CHECK_CLOSE(phi[2], d, 1e-15);   /* triple */
    CHECK_CLOSE(phi[3], 0.0, 1e-15); /* inverse */
    CHECK_CLOSE(phi[4], d, 1e-15);   /* pair */
    CHECK_CLOSE(phi[5], d, 1e-15);   /* relation-object */
    CHECK_CLOSE(phi[6], d, 1e-15);   /* activity */
    CHECK_CLOSE(total[0], 3.0, 1e-15);
    CHECK_CLOSE(total[1], 2.0, 1e-15); /* two directed events */
    CHECK_CLOSE(total[6], 2.0 * d, 1e-15);
}

static void test_same_time_is_not_history(void)
{
    int64_t s[] = {0}, r[] = {0}, o[] = {1};
    double t[] = {1.0};
    lamp_kg_config cfg = {.num_entities = 3, .num_relations = 1, .num_scales = 1, .rates = {0.5}};
    lamp_kg_stream stream = {s, r, o, t, 1};
    one_query query;
    lamp_kg_queries q = object_query(&query, 0, 0, 1, 1.0);
    double w[7] = {1, 1, 1, 1, 1, 1, 1}, score[3], rank;
    int64_t ids[3];
    lamp_error err;
    CHECK(lamp_kg_score(&cfg, &stream, &q, LAMP_KG_TASK_OBJECT, w, 3, ids, score, NULL, NULL, &rank, &err) ==
          LAMP_OK);
    /* nothing is history: all candidates tie at the constant; ties go to the smaller id */
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 2);
    CHECK_CLOSE(score[0], 1.0, 1e-15);
    CHECK_CLOSE(rank, 2.0, 1e-15); /* 1 + 0 better + 2 equal / 2 */
}

static void test_bad_input(void)
{
    int64_t s[] = {0, 5}, r[] = {0, 0}, o[] = {1, 1};
    double t[] = {0.0, 1.0};
    lamp_kg_config cfg = {.num_entities = 3, .num_relations = 1, .num_scales = 1, .rates = {0.5}};
    lamp_kg_stream stream = {s, r, o, t, 2};
    one_query query;
    lamp_kg_queries q = object_query(&query, 0, 0, 1, 3.0);
    double phi[7], total[7];
    lamp_error err;
    CHECK(lamp_kg_features(&cfg, &stream, &q, LAMP_KG_TASK_OBJECT, phi, total, &err) == LAMP_EVALUE);
    CHECK(strstr(err.message, "history event 1") != NULL);
    cfg.rates[0] = -1.0;
    s[1] = 0;
    CHECK(lamp_kg_features(&cfg, &stream, &q, LAMP_KG_TASK_OBJECT, phi, total, &err) == LAMP_EVALUE);
    cfg.rates[0] = 0.5;
    CHECK(lamp_kg_features(&cfg, &stream, &q, 7, phi, total, &err) == LAMP_EVALUE);
}

static void test_many_events_grow_tables(void)
{
    enum { N = 5000 };
    int64_t *s = malloc(N * sizeof *s), *r = malloc(N * sizeof *r), *o = malloc(N * sizeof *o);
    double *t = malloc(N * sizeof *t);
    for (int i = 0; i < N; i++) {
        s[i] = (i * 7) % 97;
        r[i] = i % 5;
        o[i] = (i * 13) % 89;
        t[i] = i / 10;
    }
    lamp_kg_config cfg = {.num_entities = 100, .num_relations = 5, .num_scales = 2, .rates = {0.1, 0.01}};
    lamp_kg_stream stream = {s, r, o, t, N};
    one_query query;
    lamp_kg_queries q = object_query(&query, 3, 2, 4, 1000.0);
    double phi[12], total[12];
    lamp_error err;
    CHECK(lamp_kg_features(&cfg, &stream, &q, LAMP_KG_TASK_OBJECT, phi, total, &err) == LAMP_OK);
    CHECK_CLOSE(total[1], 2.0 * N, 1e-12);
    free(s);
    free(r);
    free(o);
    free(t);
}

int main(void)
{
    RUN(test_single_event_closed_form);
    RUN(test_same_time_is_not_history);
    RUN(test_bad_input);
    RUN(test_many_events_grow_tables);
    return CHECK_SUMMARY("test_kg");
}
