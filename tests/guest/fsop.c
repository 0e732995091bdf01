/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One system call for the guest test, with its errno printed by name, so the
 * init script can assert the exact error (busybox's messages vary by applet):
 *   fsop create PATH          open(O_CREAT|O_EXCL|O_WRONLY)
 *   fsop openw PATH           open(O_WRONLY) of an existing file
 *   fsop mkdir PATH | rmdir PATH | unlink PATH
 *   fsop rename OLD NEW | link OLD NEW | symlink TARGET PATH
 *   fsop chmod PATH OCTAL | chown PATH UID GID | truncate PATH SIZE
 *   fsop setxattr PATH NAME VALUE
 *   fsop writeas UID GID PATH  as that user and group: open(O_WRONLY|O_APPEND)
 *                              and write one line
 * Prints "ok" or the errno's name (e.g. "EROFS"); exit status 0 either way,
 * 2 on a usage error.
 */
#define _GNU_SOURCE  /* setresuid, setresgid */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/xattr.h>
#include <unistd.h>

static const char *errno_name(int e)
{
    static char buf[64];

    switch (e) {
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EXDEV: return "EXDEV";
    case ENOSPC: return "ENOSPC";
    case EBADF: return "EBADF";
    }
    snprintf(buf, sizeof(buf), "errno%d(%s)", e, strerror(e));
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: fsop OP ARGS... (see fsop.c)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *op = argc > 1 ? argv[1] : "";
    int n = argc - 2, r, fd;

    if (!strcmp(op, "create") && n == 1) {
        fd = open(argv[2], O_CREAT | O_EXCL | O_WRONLY, 0644);
        r = fd < 0 ? -1 : close(fd);
    } else if (!strcmp(op, "openw") && n == 1) {
        fd = open(argv[2], O_WRONLY);
        r = fd < 0 ? -1 : close(fd);
    } else if (!strcmp(op, "mkdir") && n == 1) {
        r = mkdir(argv[2], 0755);
    } else if (!strcmp(op, "rmdir") && n == 1) {
        r = rmdir(argv[2]);
    } else if (!strcmp(op, "unlink") && n == 1) {
        r = unlink(argv[2]);
    } else if (!strcmp(op, "rename") && n == 2) {
        r = rename(argv[2], argv[3]);
    } else if (!strcmp(op, "link") && n == 2) {
        r = link(argv[2], argv[3]);
    } else if (!strcmp(op, "symlink") && n == 2) {
        r = symlink(argv[2], argv[3]);
    } else if (!strcmp(op, "chmod") && n == 2) {
        r = chmod(argv[2], (mode_t)strtol(argv[3], NULL, 8));
    } else if (!strcmp(op, "chown") && n == 3) {
        r = chown(argv[2], (uid_t)atoi(argv[3]), (gid_t)atoi(argv[4]));
    } else if (!strcmp(op, "truncate") && n == 2) {
        r = truncate(argv[2], atoll(argv[3]));
    } else if (!strcmp(op, "writeas") && n == 3) {
        uid_t uid = (uid_t)atoi(argv[2]);
        gid_t gid = (gid_t)atoi(argv[3]);

        r = setgroups(1, &gid);
        if (r == 0) {
            r = setresgid(gid, gid, gid);
        }
        if (r == 0) {
            r = setresuid(uid, uid, uid);
        }
        if (r == 0) {
            fd = open(argv[4], O_WRONLY | O_APPEND);
            r = fd < 0 ? -1 : (int)write(fd, "written\n", 8);
            if (fd >= 0 && r >= 0) {
                r = close(fd);
            }
        }
    } else if (!strcmp(op, "setxattr") && n == 3) {
        r = setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0);
    } else {
        return usage();
    }
    puts(r < 0 ? errno_name(errno) : "ok");
    return 0;
}
