/* Integrating intensities given on nodes of each inter-event interval (models without a closed form).
 *
 * Nodes are positions in [0, 1] within each interval and weights sum to 1, so
 * integral_i = (end_i - start_i) * sum_g weights[g] * values[i, g].
 * Schemes: Gauss-Legendre of any order (exact for polynomials of degree
 * 2G - 1), and EasyTPP's own grid for parity: linspace(0, 1, G) with equal
 * weights (its use_mc_samples: true) or trapezoid weights (false). */
#ifndef LAMP_QUADRATURE_H
#define LAMP_QUADRATURE_H

#include <stdint.h>

#include "common/lamp_error.h"

enum { LAMP_QUAD_GAUSS_LEGENDRE = 0, LAMP_QUAD_EASYTPP_MEAN = 1, LAMP_QUAD_EASYTPP_TRAPEZOID = 2 };

int lamp_quadrature_nodes(int scheme, int64_t order, double *nodes, double *weights, lamp_error *err);

int lamp_integrate_intervals(const double *starts, const double *ends, int64_t n, const double *values,
                             const double *weights, int64_t order, double *out, lamp_error *err);

#endif
