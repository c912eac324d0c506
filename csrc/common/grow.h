/* Growing heap arrays, shared by the kernels. */
#ifndef LAMP_GROW_H
#define LAMP_GROW_H

#include <stdlib.h>

/* Resizes the heap array `ptr` (an lvalue of pointer type, NULL or from malloc/realloc) to n elements with
 * realloc.  Evaluates to 0, or to -1 when out of memory, leaving ptr and its block as they were (still the
 * caller's to free).  A GNU statement expression, as the C core is built with -std=gnu11. */
#define LAMP_RESIZE(ptr, n)                                                          \
    __extension__({                                                                  \
        __typeof__(ptr) lamp_resized_ = realloc((ptr), (size_t)(n) * sizeof *(ptr)); \
        if (lamp_resized_)                                                           \
            (ptr) = lamp_resized_;                                                   \
        lamp_resized_ ? 0 : -1;                                                      \
    })

#endif
