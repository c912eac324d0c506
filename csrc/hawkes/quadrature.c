#include "hawkes/quadrature.h"

#include <math.h>

int lamp_quadrature_nodes(int scheme, int64_t order, double *nodes, double *weights, lamp_error *err)
{
    if (order < 1 || order > 1000)
        return lamp_error_set(err, LAMP_EVALUE, "order must be in 1..1000, got %lld", (long long)order);
    if (scheme == LAMP_QUAD_GAUSS_LEGENDRE) {
        /* roots of P_G by Newton's method from Chebyshev guesses, mapped from [-1, 1] to [0, 1] */
        for (int64_t i = 0; i < order; i++) {
            double x = cos(M_PI * ((double)i + 0.75) / ((double)order + 0.5)), dp = 1.0;
            for (int iter = 0; iter < 100; iter++) {
                double p0 = 1.0, p1 = x;
                for (int64_t k = 2; k <= order; k++) {
                    double pk = ((2.0 * (double)k - 1.0) * x * p1 - ((double)k - 1.0) * p0) / (double)k;
                    p0 = p1;
                    p1 = pk;
                }
                dp = (double)order * (x * p1 - p0) / (x * x - 1.0);
                double step = p1 / dp;
                x -= step;
                if (fabs(step) < 1e-15)
                    break;
            }
            nodes[order - 1 - i] = 0.5 * (x + 1.0);
            weights[order - 1 - i] = 1.0 / ((1.0 - x * x) * dp * dp); /* 2/((1-x^2)P'^2), halved for [0, 1] */
        }
        return LAMP_OK;
    }
    if (scheme == LAMP_QUAD_EASYTPP_MEAN || scheme == LAMP_QUAD_EASYTPP_TRAPEZOID) {
        if (scheme == LAMP_QUAD_EASYTPP_TRAPEZOID && order < 2)
            return lamp_error_set(err, LAMP_EVALUE, "the trapezoid rule needs at least 2 points");
        for (int64_t i = 0; i < order; i++) {
            /* as numpy.linspace computes it (EasyTPP's grid), to the last bit */
            nodes[i] = order == 1 ? 0.0 : (i == order - 1 ? 1.0 : (double)i * (1.0 / (double)(order - 1)));
            if (scheme == LAMP_QUAD_EASYTPP_MEAN)
                weights[i] = 1.0 / (double)order;
            else
                weights[i] = (i == 0 || i == order - 1 ? 0.5 : 1.0) / (double)(order - 1);
        }
        return LAMP_OK;
    }
    return lamp_error_set(err, LAMP_EVALUE, "unknown quadrature scheme %d", scheme);
}

int lamp_integrate_intervals(const double *starts, const double *ends, int64_t n, const double *values,
                             const double *weights, int64_t order, double *out, lamp_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(starts[i]) || !isfinite(ends[i]) || ends[i] < starts[i])
            return lamp_error_set(err, LAMP_EVALUE, "interval %lld: [%g, %g] is not a finite interval", (long long)i,
                                  starts[i], ends[i]);
        double s = 0.0;
        for (int64_t g = 0; g < order; g++)
            s += weights[g] * values[i * order + g];
        out[i] = (ends[i] - starts[i]) * s;
    }
    return LAMP_OK;
}
