#include <math.h>
#include <stdint.h>

#include "hawkes/quadrature.h"
#include "tests/check.h"

static void test_gauss_legendre_exact_on_cubic(void)
{
    double nodes[2], weights[2];
    lamp_error err;
    CHECK(lamp_quadrature_nodes(LAMP_QUAD_GAUSS_LEGENDRE, 2, nodes, weights, &err) == LAMP_OK);
    CHECK_CLOSE(nodes[0], 0.5 - 0.5 / sqrt(3.0), 1e-14);
    double start[1] = {1.0}, end[1] = {3.0}, values[2], out[1];
    for (int g = 0; g < 2; g++) {
        double t = 1.0 + 2.0 * nodes[g];
        values[g] = t * t * t;
    }
    CHECK(lamp_integrate_intervals(start, end, 1, values, weights, 2, out, &err) == LAMP_OK);
    CHECK_CLOSE(out[0], (81.0 - 1.0) / 4.0, 1e-12);
}

static void test_bad_input(void)
{
    double nodes[1], weights[1];
    lamp_error err;
    CHECK(lamp_quadrature_nodes(LAMP_QUAD_EASYTPP_TRAPEZOID, 1, nodes, weights, &err) == LAMP_EVALUE);
    CHECK(lamp_quadrature_nodes(7, 3, nodes, weights, &err) == LAMP_EVALUE);
    double start[1] = {2.0}, end[1] = {1.0}, values[1] = {1.0}, out[1];
    CHECK(lamp_integrate_intervals(start, end, 1, values, weights, 1, out, &err) == LAMP_EVALUE);
}

int main(void)
{
    RUN(test_gauss_legendre_exact_on_cubic);
    RUN(test_bad_input);
    return CHECK_SUMMARY("test_quadrature");
}
