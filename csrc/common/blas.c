#include "common/blas.h"

#include <cblas.h>
#include <pthread.h>

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
static int blas_users = 0, blas_saved = 1;

void lamp_blas_single_begin(void)
{
    pthread_mutex_lock(&blas_lock);
    if (blas_users++ == 0) {
        blas_saved = openblas_get_num_threads();
        if (blas_saved > 1)
            openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_lock);
}

void lamp_blas_single_end(void)
{
    pthread_mutex_lock(&blas_lock);
    if (--blas_users == 0 && blas_saved > 1)
        openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_lock);
}
