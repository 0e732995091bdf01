/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Concurrent create/write/read/rename/unlink load for the guest test:
 *   hammer NAME DIR NPROC SECONDS
 * forks NPROC workers, each in its own directory DIR/wK, looping for
 * SECONDS: create a file (O_EXCL) with content unique to (worker,
 * iteration), read it back, rename it, check the new name has it and the
 * old name is gone, unlink it, check it is gone and the directory empty.
 * Every result is checked.  Each worker prints
 * `GUEST ok NAME/wK: N iterations` or `GUEST FAIL NAME/wK: ...` (with its
 * first failure); zero iterations is a failure too.  Exit status 0 when
 * every worker passed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536

static char first[256];
static unsigned long failures;

/* Count a failure, keep the first one's message; returns -1. */
static int fail(const char *fmt, ...)
{
    va_list ap;

    if (failures++ == 0) {
        va_start(ap, fmt);
        vsnprintf(first, sizeof(first), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Read all of path into buf (at most cap bytes + 1 to notice extra data). */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    ssize_t total = 0, n;
    int fd = open(path, O_RDONLY);

    if (fd < 0) {
        return -1;
    }
    while ((size_t)total <= cap && (n = read(fd, buf + total, cap + 1 - total)) > 0) {
        total += n;
    }
    if (n < 0 || close(fd) < 0) {
        return -1;
    }
    return total;
}

/* Names left in dir besides . and .., or -1 on error. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    }
    closedir(d);
    return n;
}

/* One iteration; returns -1 after the first failed step. */
static int iteration(const char *dir, int k, unsigned long i, char *want, char *got)
{
    char a[512], b[512];
    size_t size = 1 + (i * 7919 + k * 104729) % MAX_SIZE, j;
    unsigned long x = i * 2654435761u + k;
    struct stat st;
    ssize_t n;
    int fd;

    snprintf(a, sizeof(a), "%s/f%lu", dir, i % 8);
    snprintf(b, sizeof(b), "%s/r%lu", dir, i % 8);
    for (j = 0; j < size; j++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        want[j] = (char)(x >> 56);
    }

    fd = open(a, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) {
        return fail("iteration %lu: create %s: %s", i, a, strerror(errno));
    }
    n = write(fd, want, size);
    if (n != (ssize_t)size) {
        close(fd);
        return fail("iteration %lu: write %zu bytes returned %zd (%s)", i, size, n, strerror(errno));
    }
    if (close(fd) < 0) {
        return fail("iteration %lu: close after write: %s", i, strerror(errno));
    }
    n = read_file(a, got, MAX_SIZE);
    if (n != (ssize_t)size || memcmp(got, want, size)) {
        return fail("iteration %lu: read back %zd bytes of %zu%s", i, n, size,
                    n == (ssize_t)size ? ", content differs" : "");
    }
    if (rename(a, b) < 0) {
        return fail("iteration %lu: rename: %s", i, strerror(errno));
    }
    if (lstat(a, &st) == 0 || errno != ENOENT) {
        return fail("iteration %lu: old name after rename: %s", i,
                    errno == ENOENT ? "still exists" : strerror(errno));
    }
    if (lstat(b, &st) < 0 || st.st_size != (off_t)size) {
        return fail("iteration %lu: new name after rename: size %lld of %zu (%s)", i,
                    (long long)st.st_size, size, strerror(errno));
    }
    n = read_file(b, got, MAX_SIZE);
    if (n != (ssize_t)size || memcmp(got, want, size)) {
        return fail("iteration %lu: read after rename: %zd bytes of %zu%s", i, n, size,
                    n == (ssize_t)size ? ", content differs" : "");
    }
    if (unlink(b) < 0) {
        return fail("iteration %lu: unlink: %s", i, strerror(errno));
    }
    if (lstat(b, &st) == 0 || errno != ENOENT) {
        return fail("iteration %lu: after unlink: %s", i,
                    errno == ENOENT ? "still exists" : strerror(errno));
    }
    n = entries(dir);
    if (n != 0) {
        return fail("iteration %lu: directory has %zd entries after unlink", i, n);
    }
    return 0;
}

static int worker(const char *name, const char *top, int k, double seconds)
{
    static char want[MAX_SIZE + 1], got[MAX_SIZE + 1];
    char dir[256];
    double end = now() + seconds;
    unsigned long i = 0;

    snprintf(dir, sizeof(dir), "%s/w%d", top, k);
    if (mkdir(dir, 0755) < 0) {
        fail("mkdir %s: %s", dir, strerror(errno));
    } else {
        while (now() < end) {
            if (iteration(dir, k, i++, want, got) < 0) {
                /* Start the next iteration from a clean directory. */
                char p[512];

                snprintf(p, sizeof(p), "%s/f%lu", dir, (i - 1) % 8);
                unlink(p);
                snprintf(p, sizeof(p), "%s/r%lu", dir, (i - 1) % 8);
                unlink(p);
            }
        }
    }
    if (i == 0 && failures == 0) {
        fail("no iteration in %.0f s", seconds);
    }
    if (failures) {
        printf("GUEST FAIL %s/w%d: %lu iterations, %lu failures, first: %s\n",
               name, k, i, failures, first);
    } else {
        printf("GUEST ok %s/w%d: %lu iterations\n", name, k, i);
    }
    fflush(stdout);
    return failures != 0;
}

int main(int argc, char **argv)
{
    int nproc, k, status, bad = 0;
    pid_t pid;

    if (argc != 5 || (nproc = atoi(argv[3])) <= 0) {
        fprintf(stderr, "usage: hammer NAME DIR NPROC SECONDS\n");
        return 2;
    }
    for (k = 0; k < nproc; k++) {
        pid = fork();
        if (pid < 0) {
            printf("GUEST FAIL %s/w%d: fork: %s\n", argv[1], k, strerror(errno));
            bad = 1;
        } else if (pid == 0) {
            _exit(worker(argv[1], argv[2], k, atof(argv[4])));
        }
    }
    while (wait(&status) > 0) {
        bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return bad;
}
