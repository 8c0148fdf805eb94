/* realpath is XSI; O_NOFOLLOW and O_CLOEXEC are POSIX 2008. */
#define _XOPEN_SOURCE 700

#include "io/output_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file the lock stands for: through a symbolic link to what it names,
 * else the path with its folder resolved, so that "runs/x.ckpt" and
 * "./runs/../runs/x.ckpt" share one lock. */
static char *canonical_target(const char *path) {
    char resolved[PATH_MAX];
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && realpath(path, resolved)) return strdup(resolved);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char folder[PATH_MAX];
    if (!slash) snprintf(folder, sizeof folder, ".");
    else snprintf(folder, sizeof folder, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (!realpath(folder, resolved)) return strdup(path);
    size_t size = strlen(resolved) + strlen(name) + 2;
    char *target = malloc(size);
    if (target) snprintf(target, size, "%s/%s", strcmp(resolved, "/") ? resolved : "", name);
    return target;
}

/* Removes what killed writers of target left: "NAME.tmp-" and six
 * characters, mkstemp's and the atomic writer's pattern. */
static void remove_stale_temporaries(const char *target) {
    const char *slash = strrchr(target, '/');
    if (!slash) return;
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%.*s", slash == target ? 1 : (int)(slash - target), target);
    const char *name = slash + 1;
    size_t length = strlen(name);
    DIR *dir = opendir(folder);
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        const char *e = entry->d_name;
        if (strncmp(e, name, length) == 0 && strncmp(e + length, ".tmp-", 5) == 0 && strlen(e + length + 5) == 6) {
            char stale[PATH_MAX];
            if (snprintf(stale, sizeof stale, "%s/%s", folder, e) < (int)sizeof stale) unlink(stale);
        }
    }
    closedir(dir);
}

int nn_output_lock_take(nn_output_lock *lock, const char *path, const char *what, nn_error *err) {
    lock->fd = -1;
    lock->lock_path = NULL;
    char *target = canonical_target(path);
    size_t size = target ? strlen(target) + sizeof ".lock" : 0;
    char *lock_path = target ? malloc(size) : NULL;
    if (!lock_path) {
        free(target);
        return nn_error_oom(err, "the lock file's name");
    }
    snprintf(lock_path, size, "%s.lock", target);
    int status = -1;
    bool reported = false;
    /* A holder that releases removes the file: whoever locked the old one
     * then holds a lock nobody else can see, so it checks that the file it
     * locked is still the one at the path, and tries again if not. */
    for (int attempt = 0; attempt < 100 && status != 0; attempt++) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (fd < 0) {
            nn_error_set(err, NN_ERR_INPUT, "%s: cannot lock the %s: cannot open %s: %s", path, what, lock_path,
                         errno == ELOOP ? "it is a symbolic link" : strerror(errno));
            reported = true;
            break;
        }
        struct stat held, now;
        if (fstat(fd, &held) != 0 || !S_ISREG(held.st_mode)) {
            nn_error_set(err, NN_ERR_INPUT, "%s: cannot lock the %s: %s is not a regular file", path, what, lock_path);
            close(fd);
            reported = true;
            break;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int error = errno;
            char text[32] = "";
            ssize_t got = pread(fd, text, sizeof text - 1, 0);
            text[got > 0 ? got : 0] = '\0';
            long pid = strtol(text, NULL, 10);
            close(fd);
            if (error == EWOULDBLOCK) {
                if (pid > 0)
                    nn_error_set(err, NN_ERR_INPUT, "%s: another nnseq (pid %ld) is writing this %s: wait for it to "
                                 "finish, or write elsewhere", path, pid, what);
                else
                    nn_error_set(err, NN_ERR_INPUT, "%s: another nnseq is writing this %s (it holds %s): wait for it "
                                 "to finish, or write elsewhere", path, what, lock_path);
            } else {
                nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot lock the %s: %s", path, what, strerror(error));
            }
            reported = true;
            break;
        }
        if (stat(lock_path, &now) != 0 || now.st_ino != held.st_ino || now.st_dev != held.st_dev) {
            close(fd);
            continue;
        }
        char text[32];
        int length = snprintf(text, sizeof text, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)length, 0) != length) {
            nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot write the lock file %s: %s", path, lock_path,
                         strerror(errno));
            unlink(lock_path);
            close(fd);
            reported = true;
            break;
        }
        lock->fd = fd;
        status = 0;
    }
    if (status != 0 && !reported)
        nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot lock the %s: its lock file keeps changing", path, what);
    if (status == 0) {
        remove_stale_temporaries(target);
        lock->lock_path = lock_path;
    } else {
        free(lock_path);
    }
    free(target);
    return status;
}

void nn_output_lock_release(nn_output_lock *lock) {
    if (lock->fd < 0) return;
    /* Removed while still held, so nobody can take a lock on it that the
     * next writer would not see (see the retry above). */
    unlink(lock->lock_path);
    close(lock->fd);
    free(lock->lock_path);
    lock->fd = -1;
    lock->lock_path = NULL;
}
