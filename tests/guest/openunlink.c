/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Open-unlink in the guest test: a file stays usable through its open
 * descriptor after its last name is gone (what 9p.c serves with fstat and
 * the fid's open fd instead of the vanished path).
 *   openunlink NAME PATH
 * creates PATH, writes, unlinks it, then fstat()s, reads, writes, reads
 * back, ftruncates and closes through the descriptor;
 * prints one `GUEST ok NAME/STEP` or `GUEST FAIL NAME/STEP: why` line per
 * step.
 *   openunlink NAME PATH strict
 * also requires what upstream's path-based `local` driver cannot do on an
 * unlinked file (ftruncate, fchmod, futimens through the open file);
 *   openunlink NAME PATH strict-data
 * the same, but fchmod may fail with ENOENT: security_model=mapped-file
 * keeps the mode in a metadata file named after the entry, so a file with
 * no name left has nowhere to keep one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *name;
static int failures;
static int strict;       /* ftruncate and futimens must work unlinked */
static int strict_mode;  /* and fchmod too */

static void report(const char *step, int ok, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        printf("GUEST ok %s/%s\n", name, step);
        return;
    }
    failures++;
    printf("GUEST FAIL %s/%s: ", name, step);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* fstat through fd, checking size and link count. */
static void check_fstat(const char *step, int fd, off_t size, nlink_t nlink)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        report(step, 0, "fstat: %s", strerror(errno));
        return;
    }
    report(step, st.st_size == size && st.st_nlink == nlink,
           "size %lld nlink %lu, expected size %lld nlink %lu",
           (long long)st.st_size, (unsigned long)st.st_nlink,
           (long long)size, (unsigned long)nlink);
}

/* pread len bytes at 0 and compare them with want[0..want_len). */
static void check_read(const char *step, int fd, const char *want, size_t want_len)
{
    static char got[16384];
    ssize_t n = pread(fd, got, sizeof(got), 0);

    if (n < 0) {
        report(step, 0, "pread: %s", strerror(errno));
        return;
    }
    report(step, (size_t)n == want_len && memcmp(got, want, want_len) == 0,
           "read %zd bytes, expected %zu%s", n, want_len,
           (size_t)n == want_len ? " (content differs)" : "");
}

int main(int argc, char **argv)
{
    static char data[8000];
    struct stat st;
    ssize_t n;
    int fd, r;
    size_t i;

    if (argc == 4 && strcmp(argv[3], "strict") == 0) {
        strict = strict_mode = 1;
    } else if (argc == 4 && strcmp(argv[3], "strict-data") == 0) {
        strict = 1;
    } else if (argc != 3) {
        fprintf(stderr, "usage: openunlink NAME PATH [strict|strict-data]\n");
        return 2;
    }
    name = argv[1];
    for (i = 0; i < sizeof(data); i++) {
        data[i] = (char)('A' + (i * 7 + i / 251) % 26);
    }

    fd = open(argv[2], O_CREAT | O_EXCL | O_RDWR, 0644);
    report("open", fd >= 0, "open: %s", strerror(errno));
    if (fd < 0) {
        return 1;
    }
    n = pwrite(fd, data, 5000, 0);
    report("write-before-unlink", n == 5000, "pwrite returned %zd (%s)", n, strerror(errno));
    r = unlink(argv[2]);
    report("unlink", r == 0, "unlink: %s", strerror(errno));
    r = stat(argv[2], &st);
    report("name-gone", r < 0 && errno == ENOENT, "stat by name after unlink: %s",
           r == 0 ? "still exists" : strerror(errno));

    check_fstat("fstat", fd, 5000, 0);
    check_read("read", fd, data, 5000);

    n = pwrite(fd, data + 5000, 3000, 5000);
    report("write", n == 3000, "pwrite returned %zd (%s)", n, strerror(errno));
    check_fstat("fstat-after-write", fd, 8000, 0);
    check_read("read-back", fd, data, 8000);

    /*
     * Upstream 9p.c (10.0) truncates by the fid's path even for an open fid,
     * so after the unlink it answers ENOENT.  Accept that one refusal (the
     * file must then be unchanged); a server that truncates through the
     * open file must get it right.
     */
    r = ftruncate(fd, 1000);
    if (r == 0) {
        report("ftruncate", 1, "");
        check_fstat("fstat-after-ftruncate", fd, 1000, 0);
        check_read("read-after-ftruncate", fd, data, 1000);
    } else if (errno == ENOENT && !strict) {
        printf("GUEST ok %s/ftruncate: ENOENT, truncated by path (accepted)\n", name);
        check_fstat("fstat-after-ftruncate", fd, 8000, 0);
        check_read("read-after-ftruncate", fd, data, 8000);
    } else {
        report("ftruncate", 0, "ftruncate: %s", strerror(errno));
    }

    /*
     * Attributes through the open file, only asked of a strict server:
     * upstream's local driver changes them by path, and with mapped-file
     * that even creates a metadata file for the vanished name.
     */
    if (!strict) {
        goto done;
    }
    r = fchmod(fd, 0600);
    if (r == 0) {
        r = fstat(fd, &st);
        report("fchmod", r == 0 && (st.st_mode & 07777) == 0600,
               "mode %o after fchmod 0600", (unsigned)(st.st_mode & 07777));
    } else if (errno == ENOENT && !strict_mode) {
        printf("GUEST ok %s/fchmod: ENOENT, by path (accepted)\n", name);
    } else {
        report("fchmod", 0, "fchmod: %s", strerror(errno));
    }
    {
        const struct timespec times[2] = {
            { .tv_sec = 1000000000, .tv_nsec = 0 },
            { .tv_sec = 1234567890, .tv_nsec = 0 },
        };

        r = futimens(fd, times);
        if (r == 0) {
            r = fstat(fd, &st);
            report("futimens", r == 0 && st.st_mtim.tv_sec == 1234567890,
                   "mtime %lld after futimens 1234567890",
                   (long long)st.st_mtim.tv_sec);
        } else {
            report("futimens", 0, "futimens: %s", strerror(errno));
        }
    }

done:
    r = close(fd);
    report("close", r == 0, "close: %s", strerror(errno));
    return failures != 0;
}
