/* A marked Hawkes process on temporal knowledge-graph quadruples (s, r, o, t).
 *
 * The intensity of a candidate is linear in a few non-negative weights:
 *     lambda(c) = w . phi(c),
 * where phi(c) holds a constant, a popularity count and, for each of S decay
 * scales, exponentially decayed counts of past events that excite c: the
 * same triple recurring, the inverse triple, the same entity pair under any
 * relation, the relation-object pair, and the candidate's recent activity.
 * The probability of the observed candidate among all candidates is
 * lambda(c*) / sum_c lambda(c); with lambda linear in w that is
 *     (w . phi(c*)) / (w . Phi),  Phi = sum_c phi(c),
 * so fitting needs only phi(c*) and Phi per query, which one streaming pass
 * over the history produces (Phi from running totals, not by enumerating
 * candidates).
 *
 * The stream is augmented with inverse events: (s, r, o, t) also inserts
 * (o, r + R, s, t), so an object query (o, r + R, ?) asks for the subject.
 * History of a query at time t is every event with time < t (events at the
 * same timestamp are not history).  Decays are lazy: every accumulator
 * stores its value at its last update time.
 */
#ifndef LAMP_KG_HAWKES_H
#define LAMP_KG_HAWKES_H

#include <stdint.h>

#include "common/lamp_error.h"

#define LAMP_KG_MAX_SCALES 8

enum { LAMP_KG_TASK_OBJECT = 0, LAMP_KG_TASK_RELATION = 1 };

/* Feature layout: [const, popularity, then for each scale k:
 *   object task:   triple, inverse, pair, relation-object, activity
 *   relation task: triple, inverse, subject-relation, relation-object, activity]
 */
#define LAMP_KG_FEATURES_PER_SCALE 5
#define LAMP_KG_NUM_FEATURES(S) (2 + LAMP_KG_FEATURES_PER_SCALE * (S))

typedef struct {
    int64_t num_entities;  /* E */
    int64_t num_relations; /* R (original relations; the stream uses 2R) */
    int num_scales;        /* S, 1..LAMP_KG_MAX_SCALES */
    double rates[LAMP_KG_MAX_SCALES]; /* decay rates (1 / time unit), > 0 */
} lamp_kg_config;

/* Events of the history, sorted by time (non-decreasing), original relations in [0, R). */
typedef struct {
    const int64_t *subjects, *relations, *objects;
    const double *times;
    int64_t n;
} lamp_kg_stream;

/* Queries sorted by time.  relations may be in [0, 2R) (>= R: inverse queries).
 * For the object task targets[i] is the true object (or -1 when unknown), for
 * the relation task the true relation in [0, R) and objects[i] the given object. */
typedef struct {
    const int64_t *subjects, *relations, *objects, *targets;
    const double *times;
    int64_t n;
} lamp_kg_queries;

/* Fitting pass: for every query, phi(c*) into true_features (n x F) and Phi into
 * total_features (n x F).  F = LAMP_KG_NUM_FEATURES(S). */
int lamp_kg_features(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q,
                     int task, double *true_features, double *total_features, lamp_error *err);

/* Scoring pass: lambda(c) for every candidate of every query, the top m
 * (ids and intensities, best first; ties go to the smaller id), and, when
 * ranks is not NULL, the filtered rank of targets[i]: 1 + #{better} +
 * #{equal}/2 over candidates that are not in the query's filter set
 * filter_ids[filter_offsets[i] .. filter_offsets[i+1]) (the other true
 * answers of the same query, the time-aware filter).  ranks[i] = 0 when the
 * target is -1.  weights has F entries, all >= 0. */
int lamp_kg_score(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q, int task,
                  const double *weights, int64_t m, int64_t *top_ids, double *top_scores,
                  const int64_t *filter_offsets, const int64_t *filter_ids, double *ranks, lamp_error *err);

/* Negative mean log-likelihood of weights w given features from lamp_kg_features,
 * and its gradient (F entries):  -1/n sum_i [log(w.phi_i) - log(w.Phi_i)]. */
int lamp_kg_nll(const double *true_features, const double *total_features, int64_t n, int64_t num_features,
                const double *weights, double *nll, double *grad, lamp_error *err);

#endif

/* Pair task: score every (relation, object) pair of each query (s, ?, ?, t) with the object
 * task's intensity lambda(s, r, o) = w . phi (weights fitted for the object task), r < R.
 * Writes the top m pairs (ids r * E + o, best first; ties to the smaller id) and, when
 * ranks is not NULL, the rank of the target pair target_rel[i] * E + target_obj[i]:
 * 1 + #better + #equal / 2 over all R * E pairs except the query's filter set
 * (pair ids filter_ids[filter_offsets[i] .. filter_offsets[i+1])).
 * The score splits into D(o) (constant, popularity, activity, entity pair) plus a sparse
 * T(r, o) (triple, inverse, relation-object): the top m lie among the sparse pairs and the
 * first unseen relations of the m best objects by D, so nothing dense is enumerated. */
int lamp_kg_score_pairs(const lamp_kg_config *cfg, const lamp_kg_stream *stream, const lamp_kg_queries *q,
                        const double *weights, int64_t m, int64_t *top_ids, double *top_scores,
                        const int64_t *filter_offsets, const int64_t *filter_ids, double *ranks, lamp_error *err);
