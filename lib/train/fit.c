#include "train/fit.h"

#include <string.h>

int nn_fit(nn_trainer *t, const nn_fit_callbacks *cb, nn_fit_result *result, nn_error *err) {
    const nn_config *c = t->config;
    memset(result, 0, sizeof *result);
    while (t->epoch < c->train.epochs) {
        if (cb->epoch_start) cb->epoch_start(cb->user, t->epoch + 1);
        nn_epoch_report report;
        if (nn_trainer_epoch(t, &report, cb->progress, cb->should_stop, cb->user, err) != 0) return -1;
        if (report.interrupted) {
            if (nn_trainer_gather_epoch(t, err) != 0) return -1;
            result->interrupted = true;
            result->interrupted_epoch = report.epoch;
            result->interrupted_position = report.position;
            return cb->save ? cb->save(cb->user, t, false, err) : 0;
        }
        result->epochs_run++;
        if (cb->epoch_end && cb->epoch_end(cb->user, &report, err) != 0) return -1;
        if (cb->save && cb->save(cb->user, t, false, err) != 0) return -1;
        if (cb->save && report.improved && c->train.early_stop && cb->save(cb->user, t, true, err) != 0) return -1;
        if (report.stop) {
            result->stopped_early = true;
            result->stop_epoch = report.epoch;
            break;
        }
        bool stop = false;
        if (t->epoch < c->train.epochs && cb->should_stop &&
            nn_trainer_agree_stop(t, cb->should_stop(cb->user), &stop, err) != 0)
            return -1;
        if (stop) {
            result->interrupted = true;
            result->interrupted_epoch = t->epoch + 1;
            return 0;
        }
    }
    if (result->epochs_run == 0 && cb->save && cb->save(cb->user, t, false, err) != 0) return -1;
    if (t->test.count > 0) {
        result->has_test = true;
        if (nn_trainer_evaluate(t, &t->test, 0, t->test.count, &result->test, err) != 0) return -1;
    }
    return 0;
}
