/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The descriptor budget in the guest test: hold more files open on a
 * share than QEMU may have descriptors, then use every one of them.
 *
 *   fdhold DIR STOP
 *
 * Opens every regular file under DIR (read-only) and keeps them all open;
 * prints "held N" (or "open PATH: ERRNO" on the first failure) and waits
 * until the file STOP exists.  Then reads each open file from offset 0 and
 * compares it with what the host wrote into it, its path below DIR and a
 * newline; prints "read N ok" (or the first mismatch), closes them all.
 * Raises its own RLIMIT_NOFILE to hold them (the guest runs as root).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_FILES 8192

static const char *root;
static size_t root_len;
static int fds[MAX_FILES];
static char *names[MAX_FILES];
static int held;

static int open_one(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st; (void)ftw;
    if (flag != FTW_F) {
        return 0;
    }
    if (held == MAX_FILES) {
        printf("more than %d files\n", MAX_FILES);
        return 1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf("open %s: %s\n", path, strerror(errno));
        return 1;
    }
    fds[held] = fd;
    names[held] = strdup(path + root_len + 1);
    held++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fdhold DIR STOP\n");
        return 2;
    }
    struct rlimit lim = { MAX_FILES + 64, MAX_FILES + 64 };
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        printf("setrlimit: %s\n", strerror(errno));
        return 0;
    }
    root = argv[1];
    root_len = strlen(root);
    /* FTW_PHYS: the walk itself holds few descriptors (nopenfd 16). */
    if (nftw(root, open_one, 16, FTW_PHYS) != 0) {
        return 0;
    }
    printf("held %d\n", held);
    fflush(stdout);
    while (access(argv[2], F_OK) != 0) {
        usleep(100000);
    }
    for (int i = 0; i < held; i++) {
        char want[512], got[512];
        int len = snprintf(want, sizeof(want), "%s\n", names[i]);
        ssize_t n = pread(fds[i], got, sizeof(got), 0);
        if (n != len || memcmp(got, want, len) != 0) {
            printf("read %s: %zd bytes (%s)\n", names[i], n,
                   n < 0 ? strerror(errno) : "wrong content");
            return 0;
        }
    }
    for (int i = 0; i < held; i++) {
        close(fds[i]);
        free(names[i]);
    }
    printf("read %d ok\n", held);
    return 0;
}
