/* Error reporting shared by every pure-C kernel.
 *
 * Kernels never include Python.h.  They return LAMP_OK (0) or a negative
 * code and, on failure, fill a caller-owned lamp_error with a message that
 * the binding layer turns into a Python exception of the matching type.
 */
#ifndef LAMP_ERROR_H
#define LAMP_ERROR_H

#include <stdarg.h>
#include <stdio.h>

enum {
    LAMP_OK = 0,
    LAMP_EVALUE = -1,   /* bad argument value   -> ValueError   */
    LAMP_ENOMEM = -2,   /* allocation failed    -> MemoryError  */
    LAMP_ERUNTIME = -3, /* anything else        -> RuntimeError */
    LAMP_EINTR = -4     /* interrupted by caller's flag -> KeyboardInterrupt */
};

typedef struct {
    int code;
    char message[512];
} lamp_error;

static inline void lamp_error_clear(lamp_error *err)
{
    if (err) {
        err->code = LAMP_OK;
        err->message[0] = '\0';
    }
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static inline int lamp_error_set(lamp_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

#endif
