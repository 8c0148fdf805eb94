/* The table of learning-rate schedules (one file per kind: sched_*.c) and
 * the helpers scheduler.h declares for a configured schedule. */
#include <stdlib.h>

#include "core/registry.h"
#include "optim/scheduler.h"

/* Defined in sched_*.c; only this table needs them by name. */
extern const nn_scheduler_kind nn_sched_step, nn_sched_multistep, nn_sched_cosine, nn_sched_exponential,
    nn_sched_linear, nn_sched_constant, nn_sched_polynomial, nn_sched_onecycle, nn_sched_cosine_restarts,
    nn_sched_plateau, nn_sched_sequential;

/* The order messages list them in: the three nnseq has had longest first. */
static const nn_scheduler_kind *const kinds[] = {
    &nn_sched_step,     &nn_sched_multistep,  &nn_sched_cosine,   &nn_sched_exponential,
    &nn_sched_linear,   &nn_sched_constant,   &nn_sched_polynomial, &nn_sched_onecycle,
    &nn_sched_cosine_restarts, &nn_sched_plateau, &nn_sched_sequential,
};

NN_REGISTRY(nn_scheduler_kind, nn_scheduler_kind, kinds, false)

bool nn_schedule_per_step(const nn_schedule *schedule) {
    if (!schedule->kind) return false;
    if (schedule->kind->per_step) return true;
    for (int i = 0; i < schedule->child_count; i++)
        if (nn_schedule_per_step(&schedule->children[i])) return true;
    return false;
}

void nn_schedule_clear(nn_schedule *schedule) {
    for (int i = 0; i < schedule->child_count; i++) nn_schedule_clear(&schedule->children[i]);
    free(schedule->children);
    schedule->children = NULL;
    schedule->child_count = 0;
}

int nn_schedule_copy(nn_schedule *dst, const nn_schedule *src, nn_error *err) {
    *dst = *src;
    dst->children = NULL;
    dst->child_count = 0;
    if (src->child_count <= 0) return 0;
    if (!(dst->children = calloc((size_t)src->child_count, sizeof *dst->children)))
        return nn_error_oom(err, "a copy of the schedules");
    /* Counted as they are copied, so that clearing after a failure frees only those. */
    for (int i = 0; i < src->child_count; i++, dst->child_count++)
        if (nn_schedule_copy(&dst->children[i], &src->children[i], err)) {
            nn_schedule_clear(dst);
            return -1;
        }
    return 0;
}
