/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The in-memory backend of the C tests; see p9synth.h. */
#define _GNU_SOURCE
#include "p9synth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <time.h>

enum Kind { K_DIR, K_FILE, K_BLOCKING, K_XATTR_COUNT, K_SYMLINK, K_SPECIAL,
            K_EINTR };

typedef struct Xattr {
    char *name;
    uint8_t *value;
    size_t size;
    struct Xattr *next;
} Xattr;

typedef struct Node {
    char name[NAME_MAX + 1];
    enum Kind kind;
    uint32_t mode;              /* type and permission bits */
    uint32_t uid, gid;
    uint64_t ino, rdev;
    bool writable;              /* directory: entries may change; file: data */
    bool removed;               /* unlinked; kept alive while paths refer */
    struct Node *parent;
    struct Node **kids;
    size_t nkids, capkids;
    uint8_t *data;              /* file content or symlink target */
    size_t size;
    Xattr *xattrs;
    struct timespec atime, mtime, ctime;
    struct Node *all_next;      /* every node ever made, for freeing */
} Node;

typedef struct Open {
    Node *node;
    int flags;
    unsigned eintr;             /* EINTRs returned so far (/Flush/WriteEintr) */
} Open;

struct P9Synth {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    Node *root;
    Node *all;
    uint64_t next_ino;
    const QrsP9Server *server;
    bool release;               /* blocking reads may return */
    unsigned entered;
    unsigned opens, closes;
    bool forbid;
    pthread_t forbidden;
    unsigned forbidden_calls;
    unsigned eintr_calls;       /* pwritev calls on /Flush/WriteEintr */
    unsigned io_calls;          /* preadv/pwritev calls on regular files */
    unsigned gen_calls;         /* get_st_gen calls */
    unsigned fstat_calls;
    int fstat_mode;             /* 0, EBADF or EOPNOTSUPP */
};

enum { SYNTH_DEV = 0x9f9f };

/* Every backend function starts here: notes calls on a forbidden thread. */
static void enter(P9Synth *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->forbid && pthread_equal(pthread_self(), s->forbidden)) {
        s->forbidden_calls++;
    }
}

static void leave(P9Synth *s)
{
    pthread_mutex_unlock(&s->lock);
}

static Node *node_of(const QrsP9Path *p)
{
    Node *n = NULL;

    if (p && p->size == sizeof(n)) {
        memcpy(&n, p->data, sizeof(n));
    }
    return n;
}

/* A node's live state: NULL if the path is bad or the node was removed. */
static Node *live(const QrsP9Path *p)
{
    Node *n = node_of(p);

    return n && !n->removed ? n : NULL;
}

static Node *new_node(P9Synth *s, Node *parent, const char *name,
                      enum Kind kind, uint32_t mode)
{
    Node *n = calloc(1, sizeof(*n));

    snprintf(n->name, sizeof(n->name), "%s", name);
    n->kind = kind;
    n->mode = mode;
    n->ino = s->next_ino++;
    n->parent = parent ? parent : n;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->atime = n->ctime = n->mtime;
    n->all_next = s->all;
    s->all = n;
    if (parent) {
        if (parent->nkids == parent->capkids) {
            parent->capkids = parent->capkids ? parent->capkids * 2 : 8;
            parent->kids = realloc(parent->kids,
                                   parent->capkids * sizeof(*parent->kids));
        }
        parent->kids[parent->nkids++] = n;
        parent->mtime = parent->ctime = n->mtime;
    }
    return n;
}

static Node *lookup(Node *dir, const char *name)
{
    size_t i;

    for (i = 0; i < dir->nkids; i++) {
        if (strcmp(dir->kids[i]->name, name) == 0) {
            return dir->kids[i];
        }
    }
    return NULL;
}

static void detach(Node *n)
{
    Node *p = n->parent;
    size_t i;

    for (i = 0; i < p->nkids; i++) {
        if (p->kids[i] == n) {
            memmove(&p->kids[i], &p->kids[i + 1],
                    (p->nkids - i - 1) * sizeof(*p->kids));
            p->nkids--;
            break;
        }
    }
    clock_gettime(CLOCK_REALTIME, &p->mtime);
    p->ctime = p->mtime;
}

static void mark_removed(Node *n)
{
    size_t i;

    n->removed = true;
    for (i = 0; i < n->nkids; i++) {
        mark_removed(n->kids[i]);
    }
}

P9Synth *p9synth_new(void)
{
    P9Synth *s = calloc(1, sizeof(*s));
    Node *dir, *n;
    int i;

    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->next_ino = 1;
    s->root = new_node(s, NULL, "", K_DIR, S_IFDIR | 0755);

    n = new_node(s, s->root, "ReadFileSyscall", K_FILE, S_IFREG | 0444);
    n->size = P9SYNTH_READ_SIZE;
    n->data = malloc(n->size);
    for (i = 0; i < P9SYNTH_READ_SIZE; i++) {
        n->data[i] = p9synth_pattern(i);
    }
    n = new_node(s, s->root, "WriteFileSyscall", K_FILE, S_IFREG | 0666);
    n->writable = true;

    dir = new_node(s, s->root, "Flush", K_DIR, S_IFDIR | 0555);
    new_node(s, dir, "BlockingRead", K_BLOCKING, S_IFREG | 0444);
    n = new_node(s, dir, "WriteEintr", K_EINTR, S_IFREG | 0222);
    n->writable = true;

    dir = new_node(s, s->root, "ReadDirDir", K_DIR, S_IFDIR | 0555);
    for (i = 0; i < P9SYNTH_DIR_ENTRIES; i++) {
        char name[32];

        snprintf(name, sizeof(name), "file.%d", i);
        new_node(s, dir, name, K_FILE, S_IFREG | 0444);
    }

    dir = new_node(s, s->root, "stat", K_DIR, S_IFDIR | 0555);
    new_node(s, dir, "xattr_count", K_XATTR_COUNT, S_IFREG | 0444);

    dir = new_node(s, s->root, "dir", K_DIR, S_IFDIR | 0777);
    dir->writable = true;
    return s;
}

static void free_xattrs(Xattr *x)
{
    while (x) {
        Xattr *next = x->next;

        free(x->name);
        free(x->value);
        free(x);
        x = next;
    }
}

void p9synth_free(P9Synth *s)
{
    Node *n = s->all;

    while (n) {
        Node *next = n->all_next;

        free(n->kids);
        free(n->data);
        free_xattrs(n->xattrs);
        free(n);
        n = next;
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void p9synth_set_server(P9Synth *s, const QrsP9Server *server)
{
    pthread_mutex_lock(&s->lock);
    s->server = server;
    pthread_mutex_unlock(&s->lock);
}

void p9synth_forbid_thread(P9Synth *s, pthread_t thread)
{
    pthread_mutex_lock(&s->lock);
    s->forbid = true;
    s->forbidden = thread;
    pthread_mutex_unlock(&s->lock);
}

void p9synth_allow_all_threads(P9Synth *s)
{
    pthread_mutex_lock(&s->lock);
    s->forbid = false;
    pthread_mutex_unlock(&s->lock);
}

static unsigned read_counter(P9Synth *s, unsigned *c)
{
    unsigned v;

    pthread_mutex_lock(&s->lock);
    v = *c;
    pthread_mutex_unlock(&s->lock);
    return v;
}

unsigned p9synth_forbidden_calls(P9Synth *s) { return read_counter(s, &s->forbidden_calls); }
unsigned p9synth_blocking_entered(P9Synth *s) { return read_counter(s, &s->entered); }
unsigned p9synth_opens(P9Synth *s) { return read_counter(s, &s->opens); }
unsigned p9synth_closes(P9Synth *s) { return read_counter(s, &s->closes); }
unsigned p9synth_eintr_calls(P9Synth *s) { return read_counter(s, &s->eintr_calls); }
unsigned p9synth_io_calls(P9Synth *s) { return read_counter(s, &s->io_calls); }
unsigned p9synth_gen_calls(P9Synth *s) { return read_counter(s, &s->gen_calls); }
unsigned p9synth_fstat_calls(P9Synth *s) { return read_counter(s, &s->fstat_calls); }

void p9synth_set_fstat_mode(P9Synth *s, int mode)
{
    pthread_mutex_lock(&s->lock);
    s->fstat_mode = mode;
    pthread_mutex_unlock(&s->lock);
}

int p9synth_wait_eintr_calls(P9Synth *s, unsigned n)
{
    struct timespec deadline;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&s->lock);
    while (s->eintr_calls < n && r == 0) {
        r = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    }
    r = s->eintr_calls >= n ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int p9synth_wait_blocking_entered(P9Synth *s, unsigned n)
{
    struct timespec deadline;
    int r = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&s->lock);
    while (s->entered < n && r == 0) {
        r = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    }
    r = s->entered >= n ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&s->lock);
    return r;
}

void p9synth_release_blocking(P9Synth *s)
{
    pthread_mutex_lock(&s->lock);
    s->release = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- QrsP9BackendOps ---- */

static ptrdiff_t synth_name_to_path(void *opaque, const QrsP9Path *dir,
                                    const char *name, uint8_t *out,
                                    size_t out_size)
{
    P9Synth *s = opaque;
    Node *d, *n = NULL;

    if (out_size < sizeof(n)) {
        return -ENAMETOOLONG;
    }
    enter(s);
    if (!dir) {
        n = s->root;
    } else if ((d = node_of(dir)) == NULL) {
        leave(s);
        return -EINVAL;
    } else if (strcmp(name, ".") == 0) {
        n = d;
    } else if (strcmp(name, "..") == 0) {
        n = d->parent;
    } else if (d->kind == K_DIR) {
        n = lookup(d, name);
    }
    leave(s);
    if (!n) {
        return -ENOENT;         /* as 9p-synth: only existing nodes have paths */
    }
    memcpy(out, &n, sizeof(n));
    return sizeof(n);
}

static void fill_stat(const Node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_dev = SYNTH_DEV;
    st->st_ino = n->ino;
    st->st_mode = n->mode;
    st->st_nlink = n->kind == K_DIR ? 2 : 1;
    st->st_uid = n->uid;
    st->st_gid = n->gid;
    st->st_rdev = n->rdev;
    st->st_size = n->kind == K_DIR ? 4096 : (off_t)n->size;
    st->st_blksize = 4096;
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = n->atime;
    st->st_mtim = n->mtime;
    st->st_ctim = n->ctime;
}

static int synth_lstat(void *opaque, const QrsP9Path *path, struct stat *st)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        fill_stat(n, st);
        r = 0;
    }
    leave(s);
    return r;
}

static ptrdiff_t synth_readlink(void *opaque, const QrsP9Path *path,
                                char *buf, size_t size)
{
    P9Synth *s = opaque;
    Node *n;
    ptrdiff_t r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        if (n->kind != K_SYMLINK) {
            r = -EINVAL;
        } else {
            r = n->size < size ? n->size : size;
            memcpy(buf, n->data, r);
        }
    }
    leave(s);
    return r;
}

static int synth_statfs(void *opaque, const QrsP9Path *path, struct statfs *st)
{
    P9Synth *s = opaque;
    int r = -ENOENT;

    enter(s);
    if (live(path)) {
        memset(st, 0, sizeof(*st));
        st->f_type = 0x01021997;        /* V9FS_MAGIC, as 9p-synth */
        st->f_bsize = 4096;
        st->f_blocks = 1000;
        st->f_bfree = 500;
        st->f_bavail = 400;
        st->f_files = 100000;
        st->f_ffree = 90000;
        st->f_namelen = NAME_MAX;
        r = 0;
    }
    leave(s);
    return r;
}

static void touch_ctime(Node *n)
{
    clock_gettime(CLOCK_REALTIME, &n->ctime);
}

static int synth_chmod(void *opaque, const QrsP9Path *path, const QrsP9Cred *cred)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        n->mode = (n->mode & S_IFMT) | (cred->mode & 07777);
        touch_ctime(n);
        r = 0;
    }
    leave(s);
    return r;
}

static int synth_chown(void *opaque, const QrsP9Path *path, const QrsP9Cred *cred)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        if (cred->uid != (uint32_t)-1) {
            n->uid = cred->uid;
        }
        if (cred->gid != (uint32_t)-1) {
            n->gid = cred->gid;
        }
        touch_ctime(n);
        r = 0;
    }
    leave(s);
    return r;
}

static void set_time(struct timespec *t, const struct timespec *want)
{
    if (want->tv_nsec == UTIME_OMIT) {
        return;
    }
    if (want->tv_nsec == UTIME_NOW) {
        clock_gettime(CLOCK_REALTIME, t);
    } else {
        *t = *want;
    }
}

static int synth_utimensat(void *opaque, const QrsP9Path *path,
                           const struct timespec *times)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        set_time(&n->atime, &times[0]);
        set_time(&n->mtime, &times[1]);
        touch_ctime(n);
        r = 0;
    }
    leave(s);
    return r;
}

/* Resize a file's data; the caller holds the lock. */
static int resize(Node *n, uint64_t size)
{
    uint8_t *d;

    if (size > (64u << 20)) {
        return -EFBIG;
    }
    d = realloc(n->data, size ? size : 1);
    if (!d) {
        return -ENOMEM;
    }
    if (size > n->size) {
        memset(d + n->size, 0, size - n->size);
    }
    n->data = d;
    n->size = size;
    return 0;
}

static int synth_truncate(void *opaque, const QrsP9Path *path, int64_t size)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        if (n->kind == K_DIR) {
            r = -EISDIR;
        } else if (n->kind != K_FILE || !n->writable) {
            r = -EPERM;
        } else if (size < 0) {
            r = -EINVAL;
        } else if ((r = resize(n, size)) == 0) {
            clock_gettime(CLOCK_REALTIME, &n->mtime);
            n->ctime = n->mtime;
        }
    }
    leave(s);
    return r;
}

/* Check that @name may be made in @dir; the caller holds the lock. */
static int can_create(const QrsP9Path *dirp, const char *name, Node **dir)
{
    Node *d = live(dirp);

    if (!d) {
        return -ENOENT;
    }
    if (d->kind != K_DIR) {
        return -ENOTDIR;
    }
    if (!d->writable) {
        return -EPERM;          /* 9p-synth refuses changes to its tree */
    }
    if (strlen(name) > NAME_MAX) {
        return -ENAMETOOLONG;
    }
    if (lookup(d, name)) {
        return -EEXIST;
    }
    *dir = d;
    return 0;
}

static Node *make(P9Synth *s, Node *dir, const char *name, enum Kind kind,
                  const QrsP9Cred *cred, uint32_t type)
{
    Node *n = new_node(s, dir, name, kind, type | (cred->mode & 07777));

    n->uid = cred->uid;
    n->gid = cred->gid == (uint32_t)-1 ? 0 : cred->gid;
    n->writable = true;
    return n;
}

static int synth_mknod(void *opaque, const QrsP9Path *dirp, const char *name,
                       const QrsP9Cred *cred)
{
    P9Synth *s = opaque;
    Node *d, *n;
    int r;

    enter(s);
    if ((r = can_create(dirp, name, &d)) == 0) {
        n = make(s, d, name, K_SPECIAL, cred, cred->mode & S_IFMT);
        n->rdev = cred->rdev;
    }
    leave(s);
    return r;
}

static int synth_mkdir(void *opaque, const QrsP9Path *dirp, const char *name,
                       const QrsP9Cred *cred)
{
    P9Synth *s = opaque;
    Node *d;
    int r;

    enter(s);
    if ((r = can_create(dirp, name, &d)) == 0) {
        make(s, d, name, K_DIR, cred, S_IFDIR);
    }
    leave(s);
    return r;
}

static int synth_symlink(void *opaque, const char *target, const QrsP9Path *dirp,
                         const char *name, const QrsP9Cred *cred)
{
    P9Synth *s = opaque;
    Node *d, *n;
    int r;

    enter(s);
    if ((r = can_create(dirp, name, &d)) == 0) {
        QrsP9Cred c = *cred;

        c.mode = 0777;
        n = make(s, d, name, K_SYMLINK, &c, S_IFLNK);
        n->size = strlen(target);
        n->data = (uint8_t *)strdup(target);
    }
    leave(s);
    return r;
}

static int synth_link(void *opaque, const QrsP9Path *target,
                      const QrsP9Path *dir, const char *name)
{
    (void)opaque; (void)target; (void)dir; (void)name;
    return -EPERM;              /* a node has one parent here */
}

static int synth_renameat(void *opaque, const QrsP9Path *olddirp,
                          const char *oldname, const QrsP9Path *newdirp,
                          const char *newname)
{
    P9Synth *s = opaque;
    Node *od, *nd, *n, *victim;
    int r = 0;

    enter(s);
    od = live(olddirp);
    nd = live(newdirp);
    if (!od || !nd) {
        r = -ENOENT;
    } else if (od->kind != K_DIR || nd->kind != K_DIR) {
        r = -ENOTDIR;
    } else if (!od->writable || !nd->writable) {
        r = -EPERM;
    } else if ((n = lookup(od, oldname)) == NULL) {
        r = -ENOENT;
    } else if (strlen(newname) > NAME_MAX) {
        r = -ENAMETOOLONG;
    } else {
        victim = lookup(nd, newname);
        if (victim == n) {
            goto out;
        }
        if (victim) {
            if (victim->kind == K_DIR && victim->nkids) {
                r = -ENOTEMPTY;
                goto out;
            }
            detach(victim);
            mark_removed(victim);
        }
        detach(n);
        snprintf(n->name, sizeof(n->name), "%s", newname);
        n->parent = nd;
        if (nd->nkids == nd->capkids) {
            nd->capkids = nd->capkids ? nd->capkids * 2 : 8;
            nd->kids = realloc(nd->kids, nd->capkids * sizeof(*nd->kids));
        }
        nd->kids[nd->nkids++] = n;
        touch_ctime(n);
    }
out:
    leave(s);
    return r;
}

/* Remove @n from its directory; the caller holds the lock. */
static int remove_node(Node *n, int want_dir)
{
    if (!n->parent->writable || n == n->parent) {
        return -EPERM;
    }
    if (want_dir >= 0 && (n->kind == K_DIR) != want_dir) {
        return want_dir ? -ENOTDIR : -EISDIR;
    }
    if (n->kind == K_DIR && n->nkids) {
        return -ENOTEMPTY;
    }
    detach(n);
    n->removed = true;
    return 0;
}

static int synth_unlinkat(void *opaque, const QrsP9Path *dirp, const char *name,
                          int flags)
{
    P9Synth *s = opaque;
    Node *d, *n;
    int r;

    enter(s);
    d = live(dirp);
    if (!d) {
        r = -ENOENT;
    } else if (d->kind != K_DIR) {
        r = -ENOTDIR;
    } else if ((n = lookup(d, name)) == NULL) {
        r = -ENOENT;
    } else {
        r = remove_node(n, (flags & AT_REMOVEDIR) != 0);
    }
    leave(s);
    return r;
}

static int synth_remove(void *opaque, const QrsP9Path *path)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    if ((n = live(path)) != NULL) {
        r = remove_node(n, -1);
    }
    leave(s);
    return r;
}

/* Make the open state; the caller holds the lock. */
static void *new_open(P9Synth *s, Node *n, int flags)
{
    Open *o = malloc(sizeof(*o));

    o->node = n;
    o->flags = flags;
    o->eintr = 0;
    s->opens++;
    return o;
}

static int synth_open(void *opaque, const QrsP9Path *path, int flags,
                      void **handle)
{
    P9Synth *s = opaque;
    Node *n;
    int r = 0;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else if (flags & O_CREAT) {
        r = -EINVAL;            /* the contract: never O_CREAT here */
    } else if (n->kind == K_DIR) {
        r = -EISDIR;
    } else if (n->kind == K_SYMLINK) {
        r = -ELOOP;
    } else if ((flags & O_ACCMODE) != O_RDONLY && !n->writable) {
        r = -EACCES;
    } else {
        if ((flags & O_TRUNC) && n->kind == K_FILE) {
            resize(n, 0);
        }
        *handle = new_open(s, n, flags);
    }
    leave(s);
    return r;
}

static int synth_opendir(void *opaque, const QrsP9Path *path, void **handle)
{
    P9Synth *s = opaque;
    Node *n;
    int r = 0;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else if (n->kind != K_DIR) {
        r = -ENOTDIR;
    } else {
        *handle = new_open(s, n, O_RDONLY | O_DIRECTORY);
    }
    leave(s);
    return r;
}

static int synth_open2(void *opaque, const QrsP9Path *dirp, const char *name,
                       int flags, const QrsP9Cred *cred, void **handle)
{
    P9Synth *s = opaque;
    Node *d, *n;
    int r;

    enter(s);
    if (!(flags & O_CREAT)) {
        r = -EINVAL;
    } else if ((r = can_create(dirp, name, &d)) == 0) {
        n = make(s, d, name, K_FILE, cred, S_IFREG);
        *handle = new_open(s, n, flags);
    } else if (r == -EEXIST && !(flags & O_EXCL)) {
        /* O_CREAT without O_EXCL opens what is there */
        n = lookup(live(dirp), name);
        if (n->kind != K_FILE) {
            r = -EISDIR;
        } else {
            if (flags & O_TRUNC) {
                resize(n, 0);
            }
            *handle = new_open(s, n, flags);
            r = 0;
        }
    }
    leave(s);
    return r;
}

static int synth_close(void *opaque, void *handle)
{
    P9Synth *s = opaque;

    enter(s);
    s->closes++;
    leave(s);
    free(handle);
    return 0;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    int i;

    for (i = 0; i < iovcnt; i++) {
        n += iov[i].iov_len;
    }
    return n;
}

/* Scatter @len bytes of @src into @iov. */
static void to_iov(const struct iovec *iov, int iovcnt, const uint8_t *src,
                   size_t len)
{
    int i;

    for (i = 0; i < iovcnt && len; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;

        memcpy(iov[i].iov_base, src, n);
        src += n;
        len -= n;
    }
}

static ptrdiff_t synth_preadv(void *opaque, void *handle,
                              const struct iovec *iov, int iovcnt,
                              int64_t offset)
{
    P9Synth *s = opaque;
    Open *o = handle;
    Node *n = o->node;
    size_t want = iov_total(iov, iovcnt);
    ptrdiff_t r = 0;

    if (offset < 0) {
        return -EINVAL;
    }
    if ((o->flags & O_ACCMODE) == O_WRONLY) {
        return -EBADF;
    }
    if (n->kind == K_BLOCKING) {
        /* Announce the read, then wait (without the tree lock held). */
        enter(s);
        s->entered++;
        pthread_cond_broadcast(&s->cond);
        while (!s->release) {
            pthread_cond_wait(&s->cond, &s->lock);
        }
        leave(s);
        if (want) {
            to_iov(iov, iovcnt, (const uint8_t *)"B", 1);
        }
        return want ? 1 : 0;
    }
    if (n->kind == K_XATTR_COUNT) {
        QrsP9Stats st;
        uint8_t le[8];
        const QrsP9Server *server;
        int i;

        enter(s);
        server = s->server;
        leave(s);
        /* Outside the tree lock: the stats are the server's own. */
        if (!server || qrs_p9_server_stats(server, &st) != 0) {
            return -EIO;
        }
        if (offset >= 8) {
            return 0;
        }
        if (want < 8) {
            return -ENOSPC;     /* as 9p-synth: the count in one piece */
        }
        for (i = 0; i < 8; i++) {
            le[i] = (uint8_t)(st.xattr_fids >> (8 * i));
        }
        to_iov(iov, iovcnt, le, 8);
        return 8;
    }
    enter(s);
    s->io_calls++;
    if ((uint64_t)offset < n->size) {
        r = n->size - offset < want ? n->size - offset : want;
        to_iov(iov, iovcnt, n->data + offset, r);
        clock_gettime(CLOCK_REALTIME, &n->atime);
    }
    leave(s);
    return r;
}

static ptrdiff_t synth_pwritev(void *opaque, void *handle,
                               const struct iovec *iov, int iovcnt,
                               int64_t offset)
{
    P9Synth *s = opaque;
    Open *o = handle;
    Node *n = o->node;
    size_t want = iov_total(iov, iovcnt), done = 0;
    ptrdiff_t r;
    int i;

    if (offset < 0) {
        return -EINVAL;
    }
    if ((o->flags & O_ACCMODE) == O_RDONLY) {
        return -EBADF;
    }
    enter(s);
    if (n->kind == K_EINTR) {
        uint8_t first = 0;

        /*
         * As 9p-synth's flush write: a first byte of 1 fails with EINTR
         * every time (the server retries until the request is flushed);
         * 2 fails twice per open, then succeeds; else success.
         */
        s->eintr_calls++;
        pthread_cond_broadcast(&s->cond);
        if (iovcnt > 0 && iov[0].iov_len > 0) {
            first = *(const uint8_t *)iov[0].iov_base;
        }
        if (first == 1 || (first == 2 && o->eintr < 2)) {
            o->eintr++;
            r = -EINTR;
        } else {
            r = want;
        }
        leave(s);
        return r;
    }
    s->io_calls++;
    if (o->flags & O_APPEND) {
        offset = n->size;
    }
    if (n->kind != K_FILE || !n->writable) {
        r = -EPERM;
    } else if ((uint64_t)offset + want > n->size &&
               (r = resize(n, offset + want)) < 0) {
        /* r set */
    } else {
        for (i = 0; i < iovcnt; i++) {
            memcpy(n->data + offset + done, iov[i].iov_base, iov[i].iov_len);
            done += iov[i].iov_len;
        }
        clock_gettime(CLOCK_REALTIME, &n->mtime);
        n->ctime = n->mtime;
        r = done;
    }
    leave(s);
    return r;
}

static int synth_fsync(void *opaque, void *handle, int is_dir, int datasync)
{
    Open *o = handle;

    (void)opaque; (void)datasync;
    return (o->node->kind == K_DIR) == (is_dir != 0) ? 0 : -EINVAL;
}

typedef struct DirSnap {
    char name[NAME_MAX + 1];
    uint64_t ino;
    unsigned char type;
} DirSnap;

static unsigned char dtype(const Node *n)
{
    switch (n->mode & S_IFMT) {
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFREG: return DT_REG;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    default: return DT_UNKNOWN;
    }
}

/*
 * Positions: entry i ("." is 0, ".." is 1, then the children in order) has
 * d_off i + 1, so resuming at a d_off continues with the next entry.
 */
static int synth_readdir(void *opaque, void *handle, int64_t offset,
                         QrsP9DirentFn emit, void *ctx)
{
    P9Synth *s = opaque;
    Open *o = handle;
    Node *d = o->node;
    DirSnap *snap;
    size_t n, i;
    struct dirent *de;

    if (offset < 0) {
        return -EINVAL;
    }
    /* Snapshot under the lock; emit without it. */
    enter(s);
    n = d->nkids + 2;
    snap = calloc(n, sizeof(*snap));
    strcpy(snap[0].name, ".");
    snap[0].ino = d->ino;
    snap[0].type = DT_DIR;
    strcpy(snap[1].name, "..");
    snap[1].ino = d->parent->ino;
    snap[1].type = DT_DIR;
    for (i = 0; i < d->nkids; i++) {
        snprintf(snap[i + 2].name, sizeof(snap[i + 2].name), "%s", d->kids[i]->name);
        snap[i + 2].ino = d->kids[i]->ino;
        snap[i + 2].type = dtype(d->kids[i]);
    }
    leave(s);

    de = calloc(1, sizeof(*de));
    for (i = offset; i < n; i++) {
        memset(de, 0, sizeof(*de));
        de->d_ino = snap[i].ino;
        de->d_off = i + 1;
        de->d_reclen = sizeof(*de);
        de->d_type = snap[i].type;
        snprintf(de->d_name, sizeof(de->d_name), "%s", snap[i].name);
        if (emit(ctx, de)) {
            break;
        }
    }
    free(de);
    free(snap);
    return 0;
}

static Xattr *find_xattr(Node *n, const char *name, Xattr ***link)
{
    Xattr **p;

    for (p = &n->xattrs; *p; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            if (link) {
                *link = p;
            }
            return *p;
        }
    }
    return NULL;
}

static ptrdiff_t synth_lgetxattr(void *opaque, const QrsP9Path *path,
                                 const char *name, void *value, size_t size)
{
    P9Synth *s = opaque;
    Node *n;
    Xattr *x;
    ptrdiff_t r;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else if ((x = find_xattr(n, name, NULL)) == NULL) {
        r = -ENODATA;
    } else if (size == 0) {
        r = x->size;
    } else if (size < x->size) {
        r = -ERANGE;
    } else {
        memcpy(value, x->value, x->size);
        r = x->size;
    }
    leave(s);
    return r;
}

static ptrdiff_t synth_llistxattr(void *opaque, const QrsP9Path *path,
                                  void *list, size_t size)
{
    P9Synth *s = opaque;
    Node *n;
    Xattr *x;
    size_t need = 0;
    ptrdiff_t r;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else {
        for (x = n->xattrs; x; x = x->next) {
            need += strlen(x->name) + 1;
        }
        if (size == 0) {
            r = need;
        } else if (size < need) {
            r = -ERANGE;
        } else {
            char *p = list;

            for (x = n->xattrs; x; x = x->next) {
                size_t l = strlen(x->name) + 1;

                memcpy(p, x->name, l);
                p += l;
            }
            r = need;
        }
    }
    leave(s);
    return r;
}

static int synth_lsetxattr(void *opaque, const QrsP9Path *path,
                           const char *name, const void *value, size_t size,
                           int flags)
{
    P9Synth *s = opaque;
    Node *n;
    Xattr *x;
    int r = 0;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else if ((x = find_xattr(n, name, NULL)) != NULL) {
        if (flags & XATTR_CREATE) {
            r = -EEXIST;
        } else {
            free(x->value);
            x->value = malloc(size ? size : 1);
            memcpy(x->value, value, size);
            x->size = size;
        }
    } else if (flags & XATTR_REPLACE) {
        r = -ENODATA;
    } else {
        x = calloc(1, sizeof(*x));
        x->name = strdup(name);
        x->value = malloc(size ? size : 1);
        memcpy(x->value, value, size);
        x->size = size;
        x->next = n->xattrs;
        n->xattrs = x;
    }
    leave(s);
    return r;
}

static int synth_lremovexattr(void *opaque, const QrsP9Path *path,
                              const char *name)
{
    P9Synth *s = opaque;
    Node *n;
    Xattr *x, **link;
    int r = 0;

    enter(s);
    if ((n = live(path)) == NULL) {
        r = -ENOENT;
    } else if ((x = find_xattr(n, name, &link)) == NULL) {
        r = -ENODATA;
    } else {
        *link = x->next;
        x->next = NULL;
        free_xattrs(x);
    }
    leave(s);
    return r;
}

/* Regular files have generation 0x5000 + inode; anything else fails. */
static int synth_get_st_gen(void *opaque, const QrsP9Path *path, uint32_t mode,
                            uint64_t *gen)
{
    P9Synth *s = opaque;
    Node *n;
    int r = -ENOENT;

    enter(s);
    s->gen_calls++;
    if ((n = live(path)) != NULL) {
        if (!S_ISREG(mode) || !S_ISREG(n->mode)) {
            r = -ENOTTY;
        } else {
            *gen = 0x5000 + n->ino;
            r = 0;
        }
    }
    leave(s);
    return r;
}

/*
 * Attributes through the open state, so an unlinked file answers.  The
 * mode set by p9synth_set_fstat_mode() makes it fail with EBADF, or with
 * EOPNOTSUPP after filling in what "could be read" (uid 4242 marks it).
 */
static int synth_fstat(void *opaque, void *handle, int is_dir, struct stat *st)
{
    P9Synth *s = opaque;
    Open *o = handle;
    int r = 0;

    enter(s);
    s->fstat_calls++;
    if ((o->node->kind == K_DIR) != (is_dir != 0)) {
        r = -EINVAL;
    } else if (s->fstat_mode == EBADF) {
        r = -EBADF;
    } else {
        fill_stat(o->node, st);
        if (s->fstat_mode == EOPNOTSUPP) {
            st->st_uid = 4242;
            r = -EOPNOTSUPP;
        }
    }
    leave(s);
    return r;
}

static const QrsP9BackendOps synth_ops = {
    .flags = 0,                 /* opaque node paths, as 9p-synth */
    .name_to_path = synth_name_to_path,
    .lstat = synth_lstat,
    .readlink = synth_readlink,
    .statfs = synth_statfs,
    .chmod = synth_chmod,
    .chown = synth_chown,
    .utimensat = synth_utimensat,
    .truncate = synth_truncate,
    .mknod = synth_mknod,
    .mkdir = synth_mkdir,
    .symlink = synth_symlink,
    .link = synth_link,
    .renameat = synth_renameat,
    .unlinkat = synth_unlinkat,
    .remove = synth_remove,
    .open = synth_open,
    .opendir = synth_opendir,
    .open2 = synth_open2,
    .close = synth_close,
    .closedir = synth_close,
    .preadv = synth_preadv,
    .pwritev = synth_pwritev,
    .fsync = synth_fsync,
    .readdir = synth_readdir,
    .lgetxattr = synth_lgetxattr,
    .llistxattr = synth_llistxattr,
    .lsetxattr = synth_lsetxattr,
    .lremovexattr = synth_lremovexattr,
    .get_st_gen = synth_get_st_gen,
    .fstat = synth_fstat,
};

int p9synth_backend_new(P9Synth *s, QrsP9Backend **out)
{
    return qrs_p9_backend_c_new(&synth_ops, s, out);
}

int p9synth_backend_new_flags(P9Synth *s, unsigned flags, QrsP9Backend **out)
{
    QrsP9BackendOps ops = synth_ops;

    if (flags & P9SYNTH_NO_FSTAT) {
        ops.fstat = NULL;
    }
    if (flags & P9SYNTH_NO_GEN) {
        ops.get_st_gen = NULL;
    }
    return qrs_p9_backend_c_new(&ops, s, out);
}
