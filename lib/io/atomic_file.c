/* O_TMPFILE, AT_EMPTY_PATH and linkat's use of them are Linux's. */
#define _GNU_SOURCE

#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t length = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *folder = malloc(length + 1);
    if (!folder) return NULL;
    memcpy(folder, !slash ? "." : path, length);
    folder[length] = '\0';
    return folder;
}

/* Whether the nearest existing folder above path lets us create files. */
static int check_folder(const char *path, const char *what, nn_error *err) {
    char *folder = folder_of(path);
    if (!folder) return nn_error_oom(err, "a folder name");
    int status = 0;
    struct stat st;
    while (stat(folder, &st) != 0 && strcmp(folder, ".") && strcmp(folder, "/")) {
        char *up = folder_of(folder);
        free(folder);
        if (!(folder = up)) return nn_error_oom(err, "a folder name");
    }
    if (stat(folder, &st) == 0 && !S_ISDIR(st.st_mode))
        status = nn_error_set(err, NN_ERR_INPUT, "%s: cannot write the %s: '%s' is not a folder", path, what, folder);
    else if (access(folder, W_OK | X_OK) != 0)
        status = nn_error_set(err, NN_ERR_INPUT, "%s: cannot write the %s: folder '%s' is not writable (%s)", path,
                              what, folder, strerror(errno));
    free(folder);
    return status;
}

int nn_output_check(const char *path, const char *what, nn_error *err) {
    struct stat st;
    if (!*path) return nn_error_set(err, NN_ERR_INPUT, "an empty file name for the %s", what);
    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write the %s: %s", path, what, strerror(errno));
        struct stat link;
        if (lstat(path, &link) == 0)
            return nn_error_set(err, NN_ERR_INPUT, "%s: cannot write the %s: a symbolic link to nothing", path, what);
        return check_folder(path, what, err);
    }
    if (S_ISDIR(st.st_mode))
        return nn_error_set(err, NN_ERR_INPUT, "%s: is a folder (expected a file name for the %s)", path, what);
    if (!S_ISREG(st.st_mode))
        return nn_error_set(err, NN_ERR_INPUT,
                            "%s: exists and is not a regular file (%s): nnseq replaces only regular files%s", path,
                            S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) ? "a character device"
                            : S_ISBLK(st.st_mode) ? "a block device" : S_ISSOCK(st.st_mode) ? "a socket"
                                                                             : "not a file",
                            strcmp(what, "checkpoint") ? "" : " (to train without one, use --no-checkpoint)");
    /* Root may write anything, but a file nobody may write is meant to stay. */
    if ((st.st_mode & 0222) == 0 || access(path, W_OK) != 0)
        return nn_error_set(err, NN_ERR_INPUT, "%s: the %s is read-only: not replacing it", path, what);
    return check_folder(path, what, err);
}

/* The umask, read from /proc because umask() can only be read by changing
 * it, which would race with other threads creating files. */
static int read_umask(mode_t *mask) {
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return -1;
    char line[256];
    unsigned value;
    int found = 0;
    while (!found && fgets(line, sizeof line, status)) found = sscanf(line, "Umask: %o", &value) == 1;
    fclose(status);
    if (found) *mask = (mode_t)value;
    return found ? 0 : -1;
}

/* mkstemp creates the file 0600. A file that replaces another keeps its
 * permissions; a new one gets what any other file the user writes gets
 * (0666 less the umask). Where neither is known, or fchmod fails, it stays
 * 0600: private, never a reason to lose the file. */
static void match_permissions(int fd, const char *path) {
    struct stat old;
    mode_t mode = 0600, mask;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode)) mode = old.st_mode & 0777;
    else if (read_umask(&mask) == 0) mode = 0666 & ~mask;
    (void)fchmod(fd, mode);
}

static void release(nn_atomic_file *atomic) {
    free(atomic->temp_path);
    free(atomic->folder);
    free(atomic->resolved_path);
    atomic->temp_path = atomic->folder = atomic->resolved_path = NULL;
    atomic->file = NULL;
}

int nn_atomic_open(nn_atomic_file *atomic, const char *path, nn_error *err) {
    static const char suffix[] = ".tmp-XXXXXX";
    memset(atomic, 0, sizeof *atomic);
    if (nn_output_check(path, "file", err) != 0) return -1;
    /* Through a symbolic link to the file it names: renaming over the link
     * would replace the link, not the user's file. */
    struct stat link;
    char resolved[PATH_MAX];
    if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode) && realpath(path, resolved)) {
        if (!(atomic->resolved_path = strdup(resolved))) return nn_error_oom(err, "the file name");
        path = atomic->resolved_path;
    }
    atomic->path = path;
    atomic->folder = folder_of(path);
    atomic->temp_path = malloc(strlen(path) + sizeof suffix);
    if (!atomic->folder || !atomic->temp_path) {
        release(atomic);
        return nn_error_oom(err, "the temporary file name");
    }
    snprintf(atomic->temp_path, strlen(path) + sizeof suffix, "%s%s", path, suffix);
    int fd = open(atomic->folder, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    atomic->anonymous = fd >= 0;
    /* No unnamed files here (an old kernel, a file system without them):
     * a named one. */
    if (fd < 0 && errno != ENOENT && errno != EACCES) fd = mkstemp(atomic->temp_path);
    if (fd < 0) {
        if (errno == ENOENT)
            nn_error_set(err, NN_ERR_RUNTIME, "%s: folder '%s' does not exist", path, atomic->folder);
        else
            nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot create a temporary file in '%s': %s", path,
                         atomic->folder, strerror(errno));
        release(atomic);
        return -1;
    }
    match_permissions(fd, path);
    if (!(atomic->file = fdopen(fd, "wb"))) {
        nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot open a temporary file: %s", path, strerror(errno));
        close(fd);
        if (!atomic->anonymous) unlink(atomic->temp_path);
        release(atomic);
        return -1;
    }
    return 0;
}

/* Gives the unnamed file fd the name temp_path (PATH.tmp-XXXXXX, a fresh
 * suffix until one is free): through /proc/self/fd, which needs no
 * privilege, else by AT_EMPTY_PATH, which root may use without /proc. */
static int name_anonymous(int fd, char *temp_path) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char *x = temp_path + strlen(temp_path) - 6;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long long state = (unsigned long long)now.tv_nsec ^ ((unsigned long long)getpid() << 32);
    char proc_path[64];
    snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
    for (int attempt = 0; attempt < 100; attempt++) {
        for (int i = 0; i < 6; i++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = letters[(state >> 33) % (sizeof letters - 1)];
        }
        if (linkat(AT_FDCWD, proc_path, AT_FDCWD, temp_path, AT_SYMLINK_FOLLOW) == 0) return 0;
        if (errno == EEXIST) continue;
        if (linkat(fd, "", AT_FDCWD, temp_path, AT_EMPTY_PATH) == 0) return 0;
        if (errno != EEXIST) return -1;
    }
    errno = EEXIST;
    return -1;
}

/* Makes the rename durable. A folder that cannot be opened or a file system
 * that cannot sync folders (EINVAL) leaves the rename atomic, just not yet
 * on disk, so only a real I/O error fails. */
static int sync_folder(const char *path, const char *folder, nn_error *err) {
    int fd = open(folder, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return 0;
    int status = fsync(fd) == 0 || errno == EINVAL ? 0 : -1;
    if (status != 0)
        nn_error_set(err, NN_ERR_RUNTIME, "%s: written, but syncing folder '%s' failed: %s", path, folder,
                     strerror(errno));
    close(fd);
    return status;
}

int nn_atomic_commit(nn_atomic_file *atomic, nn_error *err) {
    int error = 0;
    const char *step = "writing";
    if (ferror(atomic->file) || fflush(atomic->file) != 0)
        error = errno ? errno : EIO;
    else if (fsync(fileno(atomic->file)) != 0)
        error = errno, step = "syncing";
    /* From naming the file to the rename, no signal handler runs (a second
     * ^C exits at once from one), so the name cannot be left behind. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    bool named = !atomic->anonymous;
    if (!error && atomic->anonymous) {
        if (name_anonymous(fileno(atomic->file), atomic->temp_path) == 0) named = true;
        else error = errno, step = "naming";
    }
    if (fclose(atomic->file) != 0 && !error) error = errno, step = "closing";
    int renamed = 0;
    struct stat target;
    if (error)
        nn_error_set(err, NN_ERR_RUNTIME, "%s: %s the temporary file failed: %s", atomic->path, step,
                     strerror(error));
    else if (lstat(atomic->path, &target) == 0 && !S_ISREG(target.st_mode))
        nn_error_set(err, NN_ERR_INPUT, "%s: became something other than a regular file while writing: not replacing it",
                     atomic->path);
    else if (rename(atomic->temp_path, atomic->path) != 0)
        nn_error_set(err, NN_ERR_RUNTIME, "%s: cannot rename %s over it: %s", atomic->path, atomic->temp_path,
                     strerror(errno));
    else
        renamed = 1;
    if (!renamed && named) unlink(atomic->temp_path);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int status = renamed ? sync_folder(atomic->path, atomic->folder, err) : -1;
    release(atomic);
    return status;
}

void nn_atomic_abort(nn_atomic_file *atomic) {
    if (atomic->file) fclose(atomic->file);
    if (atomic->temp_path && !atomic->anonymous) unlink(atomic->temp_path);
    release(atomic);
}
