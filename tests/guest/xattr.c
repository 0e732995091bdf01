/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Tiny xattr tool for the guest test (busybox has none):
 *   xattr set PATH NAME VALUE
 *   xattr get PATH NAME        (prints the value)
 */
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
    char buf[4096];
    ssize_t n;

    if (argc == 5 && strcmp(argv[1], "set") == 0) {
        if (setxattr(argv[2], argv[3], argv[4], strlen(argv[4]), 0) < 0) {
            perror("setxattr");
            return 1;
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "get") == 0) {
        n = getxattr(argv[2], argv[3], buf, sizeof(buf) - 1);
        if (n < 0) {
            perror("getxattr");
            return 1;
        }
        buf[n] = '\0';
        puts(buf);
        return 0;
    }
    fprintf(stderr, "usage: xattr set PATH NAME VALUE | xattr get PATH NAME\n");
    return 2;
}
