/* OpenBLAS's own threading, switched off while a kernel runs its own threads.
 *
 * A kernel that splits its work over threads of its own (csrc/common/threads.h) and calls BLAS from
 * them brackets the call with lamp_blas_single_begin / _end: OpenBLAS runs single-threaded in
 * between, so that its worker threads do not compete with the kernel's for the cores, and every
 * BLAS call runs in the same mode whatever the kernel's thread count (results independent of
 * it).  Calls may overlap (from several Python threads); the previous setting is restored when
 * the last one ends.
 */
#ifndef LAMP_BLAS_H
#define LAMP_BLAS_H

void lamp_blas_single_begin(void);
void lamp_blas_single_end(void);

#endif
