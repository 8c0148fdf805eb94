#include "core/registry.h"

#include <string.h>
#include <strings.h>

bool nn_registry_matches(const char *name, const char *alias, const char *query, bool ignore_case) {
    if (ignore_case) return !strcasecmp(name, query) || (alias && !strcasecmp(alias, query));
    return !strcmp(name, query) || (alias && !strcmp(alias, query));
}
