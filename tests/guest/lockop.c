/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Byte-range locks in the guest test, one operation per run:
 *   lockop try  FILE START LEN        F_SETLK F_WRLCK, then exit: prints
 *                                     "ok" or the errno's name (EAGAIN)
 *   lockop get  FILE START LEN        F_GETLK for a write lock: prints
 *                                     "unlocked" or "TYPE START LEN" of
 *                                     the conflicting lock
 *   lockop hold FILE START LEN STOP   F_SETLK F_WRLCK, print "held" (or
 *                                     the errno), keep it until the file
 *                                     STOP exists, then exit
 * The exit status is 0 whenever the operation could be attempted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *errno_name(int e)
{
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case ENOLCK: return "ENOLCK";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    const char *op;
    int fd;

    if (argc < 5 || (strcmp(argv[1], "hold") == 0) != (argc == 6)) {
        fprintf(stderr, "usage: lockop try|get|hold FILE START LEN [STOP]\n");
        return 2;
    }
    op = argv[1];
    fl.l_start = strtoll(argv[3], NULL, 0);
    fl.l_len = strtoll(argv[4], NULL, 0);
    fd = open(argv[2], O_RDWR);
    if (fd < 0) {
        printf("open: %s\n", errno_name(errno));
        return 1;
    }
    if (strcmp(op, "get") == 0) {
        if (fcntl(fd, F_GETLK, &fl) < 0) {
            printf("%s\n", errno_name(errno));
        } else if (fl.l_type == F_UNLCK) {
            printf("unlocked\n");
        } else {
            printf("%s %lld %lld\n", fl.l_type == F_WRLCK ? "write" : "read",
                   (long long)fl.l_start, (long long)fl.l_len);
        }
        return 0;
    }
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        printf("%s\n", errno_name(errno));
        return 0;
    }
    if (strcmp(op, "try") == 0) {
        printf("ok\n");
        return 0;
    }
    printf("held\n");
    fflush(stdout);
    while (access(argv[5], F_OK) != 0) {
        usleep(100000);
    }
    return 0;
}
