/* What hawkes_one.c shares with the instances of the one-type kernel (the template
 * hawkes_one_template.h, compiled once per vector width as hawkes_one_v2.c, hawkes_one_v4.c and
 * hawkes_one_v8.c). */
#ifndef LAMP_HAWKES_ONE_INTERNAL_H
#define LAMP_HAWKES_ONE_INTERNAL_H

#include <stdint.h>

#include "common/vmath.h"

/* Events per lane per block. */
#define LAMP_HAWKES_ONE_SPAN 128

/* lamp_hawkes_loglik_one (hawkes.h) at 2, 4 or 8 lanes: 1 with the results when the fast path applies,
 * 0 otherwise.  The 4- and 8-lane versions exist on x86-64 only (LAMP_X86_DISPATCH) and need AVX2 and
 * AVX-512 respectively. */
int lamp_hawkes_loglik_one_v2(const double *times, const int64_t *marks, int64_t n, double mu, double alpha,
                              double b, double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta);
#if LAMP_X86_DISPATCH
int lamp_hawkes_loglik_one_v4(const double *times, const int64_t *marks, int64_t n, double mu, double alpha,
                              double b, double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta);
int lamp_hawkes_loglik_one_v8(const double *times, const int64_t *marks, int64_t n, double mu, double alpha,
                              double b, double end_time, double *loglik, double *dmu, double *dalpha, double *dbeta);
#endif

#endif
