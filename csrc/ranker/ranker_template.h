/* The ranker's batched forward/backward pass, written once for both precisions: a template.
 *
 * Included once by each of ranker_f64.c and ranker_f32.c, after they define its parameters:
 *   REAL          the computation's float type (double or float); inputs and outputs stay double
 *   IREAL         the signed integer type of REAL's width (lane masks of the 8-lane vectors)
 *   SFX           the suffix of every name the template defines (f64, f32): F(name) is name_SFX
 *   GEMM, GEMV    the CBLAS matrix-matrix and matrix-vector products in REAL
 *   EXP, TANH     exp (of x <= 0) and tanh in REAL
 *   VEXP_V8F      1: exp of 8 lanes at once with lamp_fast_expf_neg_v8 (float); 0: EXP lane by lane
 *   OWN_GEMM      1: the forward pass's products by the template's own AVX-512 kernel when the CPU
 *                 has it and the width is a multiple of 32 (float); 0: always GEMM
 *   SINCOS_ARRAY  optional: sin and cos of an array at once (float); undefined: libm's, one by one
 * It defines lamp_ranker_forward_backward_<SFX> (declared in ranker_internal.h), which ranker.c
 * calls.
 *
 * Every dense product runs as one BLAS-3 call over all tokens (or all
 * candidates) of a chunk of queries: the projections Q/K/V (one call with the
 * stacked [Aq; Ak; Av]), the attention output, the feed-forward layers, the
 * readout's keys/values ([Wk; Wv]), query and MLP, and all their gradients.
 * Only the attention itself (L x L per head and candidate) is a small loop,
 * split over two threads.  The embedding tables stay float64 in params and
 * are read (and their gradients written) directly; the dense weights are
 * converted to REAL once per call.
 *
 * The template is in five parts, in the order they are included:
 *   ranker_template_kernels.h   BLAS wrappers, 8-lane vector helpers, the own AVX-512 product
 *   ranker_template_state.h     the per-call state and its accessors
 *   ranker_template_forward.h   the forward pass of a chunk
 *   ranker_template_backward.h  the backward pass of a chunk
 *   ranker_template_call.h      workers, buffers and the whole call
 * No include guard: it is meant to be included once per precision.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "common/threads.h"
#include "common/vmath.h"
#include "ranker/ranker_internal.h"

#define CAT2_(a, b) a##_##b
#define CAT2(a, b) CAT2_(a, b)
#define F(name) CAT2(name, SFX)

#include "ranker/ranker_template_kernels.h"
#include "ranker/ranker_template_state.h"
#include "ranker/ranker_template_forward.h"
#include "ranker/ranker_template_backward.h"
#include "ranker/ranker_template_call.h"
