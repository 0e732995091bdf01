/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * metaload: the guest side of the 9P benchmarks, one system call per step
 * so that the shell's own cost stays out of the measurement.
 *
 *   metaload create DIR N     create (open O_CREAT|O_EXCL + close) f0..fN-1
 *   metaload stat DIR N       stat f0..fN-1
 *   metaload list DIR         readdir DIR and lstat every entry (ls -l)
 *   metaload rename DIR N     rename fI to gI
 *   metaload unlink DIR N     unlink gI
 *   metaload meta DIR N       all five in order (the parallel workload)
 *   metaload walk DIR         lstat every entry of the tree (find + stat)
 *   metaload randread FILE N  N preads of 4 KiB at random 4 KiB offsets
 *
 * Prints nothing on success; on the first failure prints the step and
 * errno and exits 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
    fprintf(stderr, "metaload: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void name(char *buf, size_t size, const char *dir, char c, long i)
{
    snprintf(buf, size, "%s/%c%ld", dir, c, i);
}

static void create_files(const char *dir, long n)
{
    char p[4096];
    for (long i = 0; i < n; i++) {
        name(p, sizeof(p), dir, 'f', i);
        int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
        if (fd < 0) {
            die("create", p);
        }
        close(fd);
    }
}

static void stat_files(const char *dir, long n)
{
    char p[4096];
    struct stat st;
    for (long i = 0; i < n; i++) {
        name(p, sizeof(p), dir, 'f', i);
        if (stat(p, &st) < 0) {
            die("stat", p);
        }
    }
}

static void list_dir(const char *dir)
{
    char p[4096];
    struct stat st;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) {
        die("opendir", dir);
    }
    while ((e = readdir(d))) {
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &st) < 0) {
            die("lstat", p);
        }
    }
    closedir(d);
}

static void rename_files(const char *dir, long n)
{
    char a[4096], b[4096];
    for (long i = 0; i < n; i++) {
        name(a, sizeof(a), dir, 'f', i);
        name(b, sizeof(b), dir, 'g', i);
        if (rename(a, b) < 0) {
            die("rename", a);
        }
    }
}

static void unlink_files(const char *dir, long n)
{
    char p[4096];
    for (long i = 0; i < n; i++) {
        name(p, sizeof(p), dir, 'g', i);
        if (unlink(p) < 0) {
            die("unlink", p);
        }
    }
}

static int walk_one(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    struct stat again;
    (void)st; (void)flag; (void)ftw;
    /* find's own lstat is in nftw; stat(1) makes another. */
    if (lstat(path, &again) < 0) {
        die("lstat", path);
    }
    return 0;
}

static void rand_read(const char *file, long n)
{
    static char buf[4096];
    struct stat st;
    int fd = open(file, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0) {
        die("open", file);
    }
    long blocks = st.st_size / 4096;
    if (blocks < 1) {
        errno = EINVAL;
        die("size", file);
    }
    srandom(42);
    for (long i = 0; i < n; i++) {
        off_t off = (off_t)(random() % blocks) * 4096;
        if (pread(fd, buf, sizeof(buf), off) != (ssize_t)sizeof(buf)) {
            die("pread", file);
        }
    }
    close(fd);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *path = argc > 2 ? argv[2] : "";
    long n = argc > 3 ? atol(argv[3]) : 0;

    if (!strcmp(mode, "create")) {
        create_files(path, n);
    } else if (!strcmp(mode, "stat")) {
        stat_files(path, n);
    } else if (!strcmp(mode, "list")) {
        list_dir(path);
    } else if (!strcmp(mode, "rename")) {
        rename_files(path, n);
    } else if (!strcmp(mode, "unlink")) {
        unlink_files(path, n);
    } else if (!strcmp(mode, "meta")) {
        create_files(path, n);
        stat_files(path, n);
        list_dir(path);
        rename_files(path, n);
        unlink_files(path, n);
    } else if (!strcmp(mode, "walk")) {
        if (nftw(path, walk_one, 64, FTW_PHYS) < 0) {
            die("nftw", path);
        }
    } else if (!strcmp(mode, "randread")) {
        rand_read(path, n);
    } else {
        fprintf(stderr, "usage: metaload create|stat|list|rename|unlink|meta|walk|randread PATH [N]\n");
        return 2;
    }
    return 0;
}
