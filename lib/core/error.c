#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int nn_error_set(nn_error *err, int status, const char *format, ...) {
    if (!err) return -1;
    err->status = status;
    va_list ap;
    va_start(ap, format);
    vsnprintf(err->message, sizeof err->message, format, ap);
    va_end(ap);
    return -1;
}

int nn_error_prefix(nn_error *err, const char *format, ...) {
    if (!err) return -1;
    char prefix[512], old[sizeof err->message];
    va_list ap;
    va_start(ap, format);
    vsnprintf(prefix, sizeof prefix, format, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
    return -1;
}

int nn_error_oom(nn_error *err, const char *what) {
    return nn_error_set(err, NN_ERR_RUNTIME, "out of memory allocating %s", what);
}
