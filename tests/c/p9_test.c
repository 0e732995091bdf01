/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The 9P server through the C API alone, in both host modes:
 * - thread mode (config.threads = 2, qrs_p9_submit): the server's threads
 *   call the transport;
 * - coroutine mode (threads = 0): qrs_p9_receive on the home thread (main),
 *   then qrs_p9_handle in a cohost coroutine; backend calls must go to the
 *   offload workers, transport calls must stay on the home thread.
 * Backends: p9synth.c (the C vtable, modelled on QEMU's 9p-synth) and the
 * native backend on a temporary directory.  The transport hands out reply
 * buffers of exactly the size asked, so ASan catches overruns.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cohost.h"
#include "harness.h"
#include "p9client.h"
#include "p9synth.h"
#include "qemurs.h"

typedef enum { MODE_THREAD, MODE_CO } Mode;

enum { MAX_RB = 4, MSIZE = 65536, WAIT_SECONDS = 30 };

/* Linux open flags, as 9P2000.L carries them. */
enum { L_RDONLY = 0, L_WRONLY = 1, L_RDWR = 2, L_CREAT = 0100, L_EXCL = 0200,
       L_TRUNC = 01000, L_DIRECTORY = 0200000 };

typedef struct Conn Conn;

/* One request: its bytes, the reply buffers handed out, the reply. */
typedef struct Pdu {
    Conn *conn;
    uint8_t *req;
    struct iovec req_iov[2];
    struct iovec iov[MAX_RB];
    size_t nbufs;
    uint8_t *reply;
    size_t reply_len;
    bool done;
    unsigned seq;               /* completion order, from 1 */
    unsigned gseq;              /* completion order across connections */
    QrsP9Request *r;
    unsigned traced;            /* trace calls (hooks) */
    uint8_t trace_reply;
    int32_t trace_err;
    bool park;                  /* reply_buffers waits for conn->unpark */
    bool unpark_on_complete;    /* complete sets conn->unpark */
} Pdu;

enum { MAX_LOG = 64 };

/* What the optional transport hooks saw (CONN_HOOKS). */
typedef struct Hooks {
    int session[MAX_LOG];       /* the `attached` of each session call */
    unsigned nsession;
    int session_fail;           /* errno session(1) fails with, or 0 */
    unsigned throttles;
    int throttle_write[MAX_LOG];
    size_t throttle_bytes[MAX_LOG];
    unsigned throttle_io[MAX_LOG];  /* p9synth_io_calls() when called */
    unsigned throttle_suspends;
    unsigned bad;               /* a hook called where it must not be */
} Hooks;

/* conn_new_full() flags. */
enum { CONN_NATIVE = 1, CONN_HOOKS = 2, CONN_NO_FSTAT = 4, CONN_NO_GEN = 8,
       CONN_ROOM = 16 };

/* conn_new_full() makes thread-mode servers on this pool when set. */
static QrsP9Pool *conn_pool;

struct Conn {
    Mode mode;
    QrsP9Server *server;
    P9Synth *synth;             /* NULL: native backend on dir */
    char dir[64];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned completed;
    pthread_t main;
    unsigned wrong_thread;      /* transport calls on the wrong thread */
    unsigned oversized;         /* replies longer than the buffers asked */
    unsigned rb_failures;
    bool hooks;                 /* the transport with hooks */
    Hooks h;
    bool unpark;                /* parked reply_buffers may go on */
    unsigned park_timeouts;     /* thread mode: gave up waiting */
    P9Client c;
};

/* ---- transport ---- */

static unsigned global_seq;     /* completions, across connections */
static unsigned room_calls;     /* the transport's room hook */

static void check_thread(Conn *conn)
{
    bool on_main = pthread_equal(pthread_self(), conn->main);

    /* Coroutine mode: the home thread only; thread mode: server threads. */
    if (on_main != (conn->mode == MODE_CO)) {
        __atomic_fetch_add(&conn->wrong_thread, 1, __ATOMIC_SEQ_CST);
    }
}

static int32_t t_reply_buffers(void *opaque, void *pdu_, size_t size,
                               const struct iovec **iov, size_t *niov)
{
    Conn *conn = opaque;
    Pdu *pdu = pdu_;

    check_thread(conn);
    if (pdu->park) {
        /*
         * Hold the request here, as Xen's ring does when full: coroutine
         * mode suspends (requeueing itself until released, so the home
         * keeps running other requests); thread mode blocks its thread.
         */
        pdu->park = false;
        if (conn->mode == MODE_CO) {
            while (!conn->unpark) {
                co_wake(co_self());
                co_yield();
            }
        } else {
            struct timespec deadline;
            int r = 0;

            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 10;
            pthread_mutex_lock(&conn->lock);
            while (!conn->unpark && r == 0) {
                r = pthread_cond_timedwait(&conn->cond, &conn->lock, &deadline);
            }
            if (!conn->unpark) {
                conn->park_timeouts++;
            }
            pthread_mutex_unlock(&conn->lock);
        }
    }
    if (pdu->nbufs == MAX_RB || size == 0) {
        __atomic_fetch_add(&conn->rb_failures, 1, __ATOMIC_SEQ_CST);
        return -ENOBUFS;
    }
    /* Exactly the size asked: a longer reply is an ASan error. */
    pdu->iov[pdu->nbufs].iov_base = malloc(size);
    pdu->iov[pdu->nbufs].iov_len = size;
    *iov = &pdu->iov[pdu->nbufs];
    *niov = 1;
    pdu->nbufs++;
    return 0;
}

static void t_complete(void *opaque, void *pdu_, size_t len)
{
    Conn *conn = opaque;
    Pdu *pdu = pdu_;
    size_t i;

    check_thread(conn);
    if (pdu->traced != (conn->hooks ? 1u : 0u)) {
        __atomic_fetch_add(&conn->h.bad, 1, __ATOMIC_SEQ_CST);
    }
    if (len) {
        if (pdu->nbufs == 0 || len > pdu->iov[pdu->nbufs - 1].iov_len) {
            __atomic_fetch_add(&conn->oversized, 1, __ATOMIC_SEQ_CST);
        } else {
            pdu->reply = malloc(len);
            memcpy(pdu->reply, pdu->iov[pdu->nbufs - 1].iov_base, len);
            pdu->reply_len = len;
        }
    }
    for (i = 0; i < pdu->nbufs; i++) {
        free(pdu->iov[i].iov_base);
    }
    pdu->nbufs = 0;
    free(pdu->req);
    pdu->req = NULL;
    pdu->gseq = __atomic_add_fetch(&global_seq, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&conn->lock);
    pdu->seq = ++conn->completed;
    pdu->done = true;
    if (pdu->unpark_on_complete) {
        conn->unpark = true;
    }
    pthread_cond_broadcast(&conn->cond);
    pthread_mutex_unlock(&conn->lock);
}

static const QrsP9Transport transport = {
    .reply_buffers = t_reply_buffers,
    .complete = t_complete,
};

/* ---- the optional hooks ---- */

static void t_throttle(void *opaque, void *pdu_, int is_write, size_t bytes)
{
    Conn *conn = opaque;
    Hooks *h = &conn->h;
    unsigned i;

    (void)pdu_;
    check_thread(conn);
    pthread_mutex_lock(&conn->lock);
    i = h->throttles++;
    if (i < MAX_LOG) {
        h->throttle_write[i] = is_write;
        h->throttle_bytes[i] = bytes;
        h->throttle_io[i] = conn->synth ? p9synth_io_calls(conn->synth) : 0;
    }
    pthread_mutex_unlock(&conn->lock);
    if (conn->mode == MODE_CO) {
        /* QEMU's throttle sleeps the coroutine: suspend, come back later. */
        if (!co_self()) {
            __atomic_fetch_add(&h->bad, 1, __ATOMIC_SEQ_CST);
            return;
        }
        h->throttle_suspends++;
        co_wake(co_self());
        co_yield();
    }
}

static int32_t t_session(void *opaque, int attached)
{
    Conn *conn = opaque;
    Hooks *h = &conn->h;
    int32_t r = 0;

    /* Coroutine mode: the home thread (the tests reset from there too). */
    if (conn->mode == MODE_CO && !pthread_equal(pthread_self(), conn->main)) {
        __atomic_fetch_add(&h->bad, 1, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_lock(&conn->lock);
    if (h->nsession < MAX_LOG) {
        h->session[h->nsession] = attached;
    }
    h->nsession++;
    if (attached && h->session_fail) {
        r = -h->session_fail;
    }
    pthread_mutex_unlock(&conn->lock);
    return r;
}

static void t_trace(void *opaque, void *pdu_, uint8_t reply, int32_t err)
{
    Conn *conn = opaque;
    Pdu *pdu = pdu_;

    check_thread(conn);
    if (pdu->done) {
        __atomic_fetch_add(&conn->h.bad, 1, __ATOMIC_SEQ_CST);
    }
    pdu->traced++;
    pdu->trace_reply = reply;
    pdu->trace_err = err;
}

static void t_room(void *opaque)
{
    (void)opaque;
    __atomic_fetch_add(&room_calls, 1, __ATOMIC_SEQ_CST);
}

static const QrsP9Transport transport_room = {
    .reply_buffers = t_reply_buffers,
    .complete = t_complete,
    .room = t_room,
};

static const QrsP9Transport transport_hooks = {
    .reply_buffers = t_reply_buffers,
    .complete = t_complete,
    .throttle = t_throttle,
    .session = t_session,
    .trace = t_trace,
};

/* ---- sending ---- */

static void co_handle(void *arg)
{
    Pdu *pdu = arg;

    qrs_p9_handle(pdu->conn->server, pdu->r);
}

/* conn_send_full() flags. */
enum {
    SEND_PARK = 1,      /* its reply_buffers waits for conn->unpark */
    SEND_UNPARK = 2,    /* its completion sets conn->unpark */
};

/*
 * Send a request, followed by @pad bytes of garbage in the same buffers
 * (a descriptor chain longer than the message; with padding the request
 * is split over two iovecs); coroutine mode runs it until it first
 * suspends.
 */
static Pdu *conn_send_full(Conn *conn, const uint8_t *req, size_t len,
                           size_t pad, unsigned how)
{
    Pdu *pdu = calloc(1, sizeof(*pdu));
    int niov = 1;
    int r;

    pdu->conn = conn;
    pdu->park = how & SEND_PARK;
    pdu->unpark_on_complete = how & SEND_UNPARK;
    pdu->req = malloc(len + pad ? len + pad : 1);
    memcpy(pdu->req, req, len);
    memset(pdu->req + len, 0xee, pad);
    pdu->req_iov[0].iov_base = pdu->req;
    pdu->req_iov[0].iov_len = len + pad;
    if (pad) {
        pdu->req_iov[0].iov_len = len / 2;
        pdu->req_iov[1].iov_base = pdu->req + len / 2;
        pdu->req_iov[1].iov_len = len - len / 2 + pad;
        niov = 2;
    }
    if (conn->mode == MODE_THREAD) {
        r = qrs_p9_submit(conn->server, pdu, pdu->req_iov, niov);
        CHECK(r == 0);
    } else {
        r = qrs_p9_receive(conn->server, pdu, pdu->req_iov, niov, &pdu->r);
        CHECK(r == 0);
        if (r == 0) {
            co_enter(co_create(co_handle, pdu));
        }
    }
    if (r != 0) {
        free(pdu->req);
        free(pdu);
        return NULL;
    }
    return pdu;
}

static Pdu *conn_send(Conn *conn, const uint8_t *req, size_t len)
{
    return conn_send_full(conn, req, len, 0, 0);
}

/* Wait for @pdu to complete; coroutine mode runs the home until idle. */
static bool conn_wait(Conn *conn, Pdu *pdu)
{
    struct timespec deadline;
    int r = 0;

    if (conn->mode == MODE_CO) {
        cohome_run(cohome_self());
        CHECK(pdu->done);
        return pdu->done;
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&conn->lock);
    while (!pdu->done && r == 0) {
        r = pthread_cond_timedwait(&conn->cond, &conn->lock, &deadline);
    }
    pthread_mutex_unlock(&conn->lock);
    CHECK(pdu->done);
    return pdu->done;
}

static void pdu_free(Pdu *pdu)
{
    if (pdu) {
        free(pdu->reply);
        free(pdu);
    }
}

static int conn_rpc(void *ctx, const uint8_t *req, size_t len,
                    uint8_t **reply, size_t *reply_len)
{
    Conn *conn = ctx;
    Pdu *pdu = conn_send(conn, req, len);

    if (!pdu) {
        return -1;
    }
    if (!conn_wait(conn, pdu)) {
        return -1;              /* leaked on purpose: a thread may still use it */
    }
    *reply = pdu->reply;
    *reply_len = pdu->reply_len;
    pdu->reply = NULL;
    pdu_free(pdu);
    return 0;
}

/* ---- connections ---- */

static Conn *conn_new_full(Mode mode, unsigned flags, QrsP9Config *cfg)
{
    Conn *conn = calloc(1, sizeof(*conn));
    QrsP9Config def;
    QrsP9Backend *b = NULL;
    bool native = flags & CONN_NATIVE;
    unsigned synth_flags = 0;
    int r;

    if (!cfg) {
        qrs_p9_config_init(&def);
        cfg = &def;
    }
    cfg->threads = mode == MODE_THREAD ? 2 : 0;
    conn->mode = mode;
    conn->main = pthread_self();
    pthread_mutex_init(&conn->lock, NULL);
    pthread_cond_init(&conn->cond, NULL);
    if (native) {
        snprintf(conn->dir, sizeof(conn->dir), "/tmp/qrs-p9test.XXXXXX");
        if (!mkdtemp(conn->dir)) {
            perror("mkdtemp");
            abort();
        }
        r = qrs_p9_backend_native_new(conn->dir, QRS_P9_SECURITY_NONE, &b);
    } else {
        conn->synth = p9synth_new();
        synth_flags |= flags & CONN_NO_FSTAT ? P9SYNTH_NO_FSTAT : 0;
        synth_flags |= flags & CONN_NO_GEN ? P9SYNTH_NO_GEN : 0;
        r = p9synth_backend_new_flags(conn->synth, synth_flags, &b);
    }
    CHECK(r == 0);
    conn->hooks = flags & CONN_HOOKS;
    if (mode == MODE_THREAD && conn_pool) {
        r = qrs_p9_server_new_on_pool(cfg, conn_pool, b,
                                      flags & CONN_ROOM ? &transport_room : &transport,
                                      conn, &conn->server);
    } else {
        r = qrs_p9_server_new(cfg, b,
                              conn->hooks ? &transport_hooks
                              : flags & CONN_ROOM ? &transport_room : &transport,
                              conn, &conn->server);
    }
    CHECK(r == 0);
    if (r != 0) {
        DIAG("  qrs_p9_server_new: %d", r);
        abort();
    }
    if (conn->synth) {
        p9synth_set_server(conn->synth, conn->server);
        if (mode == MODE_CO) {
            p9synth_forbid_thread(conn->synth, conn->main);
        }
    }
    p9c_init(&conn->c, conn_rpc, conn);
    return conn;
}

static Conn *conn_new_cfg(Mode mode, bool native, QrsP9Config *cfg)
{
    return conn_new_full(mode, native ? CONN_NATIVE : 0, cfg);
}

static Conn *conn_new(Mode mode, bool native)
{
    return conn_new_cfg(mode, native, NULL);
}

static void co_reset(void *arg)
{
    Conn *conn = arg;

    CHECK(qrs_p9_server_reset(conn->server) == 0);
}

/* Reset as a host would (in a coroutine in coroutine mode). */
static void conn_reset(Conn *conn)
{
    if (conn->mode == MODE_CO) {
        co_enter(co_create(co_reset, conn));
        cohome_run(cohome_self());
    } else {
        CHECK(qrs_p9_server_reset(conn->server) == 0);
    }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void conn_free(Conn *conn)
{
    QrsP9Stats st;

    conn_reset(conn);
    CHECK(qrs_p9_server_stats(conn->server, &st) == 0);
    CHECK(st.fids == 0);
    CHECK(st.active == 0);
    CHECK(st.open_handles == 0);
    CHECK(conn->wrong_thread == 0);
    CHECK(conn->oversized == 0);
    CHECK(conn->rb_failures == 0);
    CHECK(conn->h.bad == 0);
    CHECK(conn->park_timeouts == 0);
    if (conn->mode == MODE_CO && st.requests > 2) {
        CHECK(st.offloads > 0);     /* backend work went to the workers */
    }
    qrs_p9_server_free(conn->server);
    if (conn->synth) {
        CHECK(p9synth_forbidden_calls(conn->synth) == 0);
        CHECK(p9synth_opens(conn->synth) == p9synth_closes(conn->synth));
        p9synth_free(conn->synth);
    } else {
        nftw(conn->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    pthread_cond_destroy(&conn->cond);
    pthread_mutex_destroy(&conn->lock);
    free(conn);
}

static QrsP9Stats stats(Conn *conn)
{
    QrsP9Stats st;

    memset(&st, 0, sizeof(st));
    CHECK(qrs_p9_server_stats(conn->server, &st) == 0);
    return st;
}

/* Wait until no request is active (thread mode finishes after complete). */
static bool wait_idle(Conn *conn)
{
    struct timespec ts = { 0, 1000 * 1000 };
    int i;

    for (i = 0; i < WAIT_SECONDS * 1000; i++) {
        if (stats(conn).active == 0) {
            return true;
        }
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Tversion 9P2000.L and Tattach of fid 0. */
static void session(Conn *conn)
{
    char ver[32];
    uint32_t msize = 0;
    P9Qid root;

    CHECK(p9_version(&conn->c, MSIZE, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    CHECK(msize == MSIZE);
    CHECK(strcmp(ver, "9P2000.L") == 0);
    CHECK(p9_attach(&conn->c, 0, "", "", 0, &root) == 0);
    CHECK(root.type == 0x80);
}

/* Read a whole small file through a new fid; returns the byte count. */
static int read_file(Conn *conn, const char *path, uint8_t *buf, uint32_t cap)
{
    P9Client *c = &conn->c;
    uint32_t got = 0, total = 0;

    if (p9_walk_path(c, 0, 900, path, NULL) != 0) {
        return -1;
    }
    CHECK(p9_lopen(c, 900, L_RDONLY, NULL, NULL) == 0);
    do {
        got = 0;
        CHECK(p9_read(c, 900, total, cap - total, buf + total, &got) == 0);
        total += got;
    } while (got && total < cap);
    CHECK(p9_clunk(c, 900) == 0);
    return (int)total;
}

static uint64_t synth_xattr_count(Conn *conn)
{
    uint8_t b[8];
    uint64_t v = 0;
    int i;

    CHECK(read_file(conn, "stat/xattr_count", b, 8) == 8);
    for (i = 0; i < 8; i++) {
        v |= (uint64_t)b[i] << (8 * i);
    }
    return v;
}

/* ---- synth tests ---- */

static void t_version_attach(Mode mode)
{
    QrsP9Config cfg;
    Conn *conn;
    P9Client *c;
    char ver[32];
    uint32_t msize;
    P9Qid q;

    qrs_p9_config_init(&cfg);
    cfg.msize_max = 16384;
    conn = conn_new_cfg(mode, false, &cfg);
    c = &conn->c;
    /* Before Tversion nothing but Tversion is understood. */
    CHECK(p9_attach(c, 0, "", "", 0, &q) > 0);
    /* msize is capped to msize_max. */
    CHECK(p9_version(c, 1 << 20, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    CHECK(msize == 16384 && strcmp(ver, "9P2000.L") == 0);
    CHECK(p9_version(c, 8192, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    CHECK(msize == 8192);
    CHECK(p9_attach(c, 0, "", "", 0, &q) == 0);
    CHECK(q.type == 0x80);
    CHECK(p9_attach(c, 0, "", "", 0, &q) == EINVAL);    /* fid in use */
    CHECK(p9_walk_path(c, 0, 1, "ReadDirDir", NULL) == 0);
    CHECK(stats(conn).fids == 2);
    /* Renegotiation clunks every fid. */
    CHECK(p9_version(c, 8192, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    CHECK(stats(conn).fids == 0);
    CHECK(p9_walk_path(c, 0, 2, "ReadDirDir", NULL) == ENOENT);
    CHECK(p9_clunk(c, 1) == ENOENT);
    CHECK(p9_attach(c, 0, "", "", 0, &q) == 0);
    /* An unknown version: "unknown", and the session is gone. */
    CHECK(p9_version(c, 8192, "9P2000.X", &msize, ver, sizeof(ver)) == 0);
    CHECK(strcmp(ver, "unknown") == 0);
    CHECK(stats(conn).fids == 0);
    /* 9P2000.u is allowed by default. */
    CHECK(p9_version(c, 8192, "9P2000.u", &msize, ver, sizeof(ver)) == 0);
    CHECK(strcmp(ver, "9P2000.u") == 0);
    conn_free(conn);
}

static void t_walk(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    const char *names[17];
    P9Qid qids[17], q, q2;
    unsigned n = 99, i;
    P9Attr a;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "ReadFileSyscall", &q) == 0);
    CHECK(q.type == 0);
    CHECK(p9_walk_path(c, 0, 2, "Flush/BlockingRead", &q2) == 0);
    CHECK(q2.path != q.path);
    /* 16 names: ReadDirDir/.. eight times, back at the root. */
    for (i = 0; i < 16; i++) {
        names[i] = i % 2 ? ".." : "ReadDirDir";
    }
    CHECK(p9_walk(c, 0, 3, 16, names, qids, &n) == 0);
    CHECK(n == 16);
    CHECK(qids[0].type == 0x80 && qids[15].type == 0x80);
    CHECK(qids[0].path != qids[15].path);
    CHECK(qids[1].path == qids[15].path);
    CHECK(p9_getattr(c, 3, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.qid.path == qids[15].path);
    /* 17 names are refused. */
    names[16] = "ReadDirDir";
    CHECK(p9_walk(c, 0, 4, 17, names, qids, &n) > 0);
    CHECK(p9_clunk(c, 4) == ENOENT);
    /* Partial walk: the qids reached; newfid not made. */
    names[0] = "ReadDirDir";
    names[1] = "nonexistent";
    names[2] = "x";
    n = 99;
    CHECK(p9_walk(c, 0, 5, 3, names, qids, &n) == 0);
    CHECK(n == 1);
    CHECK(p9_clunk(c, 5) == ENOENT);
    /* First name missing: an error. */
    CHECK(p9_walk(c, 0, 5, 1, &names[1], qids, &n) == ENOENT);
    CHECK(p9_clunk(c, 5) == ENOENT);
    /* No names: a clone. */
    CHECK(p9_walk(c, 1, 6, 0, NULL, NULL, &n) == 0);
    CHECK(n == 0);
    CHECK(p9_getattr(c, 6, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.qid.path == q.path);
    /* newfid in use; unknown fid. */
    CHECK(p9_walk_path(c, 0, 6, "ReadDirDir", NULL) == EINVAL);
    CHECK(p9_walk_path(c, 77, 78, "ReadDirDir", NULL) == ENOENT);
    /* Walking fid onto itself. */
    CHECK(p9_walk_path(c, 3, 3, "ReadDirDir/file.5", &q) == 0);
    CHECK(p9_getattr(c, 3, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.qid.path == q.path && a.size == 0);
    /* Distinct files, distinct qids. */
    CHECK(p9_walk_path(c, 0, 7, "ReadDirDir/file.6", &q2) == 0);
    CHECK(q2.path != q.path);
    CHECK(stats(conn).fids == 6);     /* 0 1 2 3 6 7 */
    conn_free(conn);
}

static void t_getattr_statfs(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    P9Attr a, r;
    P9StatFs st;
    QrsP9Stats s0, s1;

    session(conn);
    CHECK(wait_idle(conn));
    s0 = stats(conn);
    CHECK(p9_getattr(c, 0, P9_GETATTR_ALL, &r) == 0);
    CHECK((r.valid & P9_GETATTR_BASIC) == P9_GETATTR_BASIC);
    CHECK((r.mode & S_IFMT) == S_IFDIR && r.nlink == 2);
    CHECK(p9_walk_path(c, 0, 1, "ReadFileSyscall", NULL) == 0);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.mode == (S_IFREG | 0444));
    CHECK(a.size == P9SYNTH_READ_SIZE);
    CHECK(a.nlink == 1);
    CHECK(a.blocks == (P9SYNTH_READ_SIZE + 511) / 512);
    CHECK(a.qid.type == 0 && a.qid.path != r.qid.path);
    CHECK(a.mtime_sec > 1600000000);
    CHECK(p9_getattr(c, 42, P9_GETATTR_BASIC, &a) == ENOENT);
    CHECK(p9_statfs(c, 1, &st) == 0);
    CHECK(st.type == 0x01021997);
    CHECK(st.namelen == 255);
    /* Scaled to the I/O size (9p.c v9fs_fill_statfs). */
    CHECK(st.bsize % 4096 == 0 && st.bsize <= MSIZE - 24 && st.bsize >= 4096);
    CHECK(st.bsize && st.blocks == 1000 / (st.bsize / 4096));
    CHECK(st.files == 100000 && st.ffree == 90000);
    CHECK(wait_idle(conn));
    s1 = stats(conn);
    CHECK(s1.requests == s0.requests + 5);
    if (mode == MODE_CO) {
        CHECK(s1.offloads > s0.offloads);
    }
    conn_free(conn);
}

static void t_open_read_write(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint8_t *buf = malloc(MSIZE), wbuf[3000];
    uint32_t got, iounit = 0, w, off = 0;
    bool same = true;
    P9Qid q;
    P9Attr a;
    int i;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "ReadFileSyscall", NULL) == 0);
    /* Unopened: no reads. */
    CHECK(p9_read(c, 1, 0, 10, buf, &got) == EINVAL);
    CHECK(p9_lopen(c, 1, L_RDONLY, &q, &iounit) == 0);
    CHECK(q.type == 0);
    CHECK(iounit > 0 && iounit <= MSIZE - 24);
    CHECK(p9_lopen(c, 1, L_RDONLY, &q, &iounit) == EINVAL);   /* open twice */
    while (off < P9SYNTH_READ_SIZE) {
        got = 0;
        CHECK(p9_read(c, 1, off, 1000, buf, &got) == 0);
        CHECK(got == 1000 || off + got == P9SYNTH_READ_SIZE);
        if (got == 0) {
            break;
        }
        for (i = 0; i < (int)got; i++) {
            same = same && buf[i] == p9synth_pattern(off + i);
        }
        off += got;
    }
    CHECK(same && off == P9SYNTH_READ_SIZE);
    got = 1;
    CHECK(p9_read(c, 1, P9SYNTH_READ_SIZE, 100, buf, &got) == 0);
    CHECK(got == 0);
    /* Counts up to msize - 11 are served; above, EMSGSIZE (README). */
    CHECK(p9_read(c, 1, 0, MSIZE - 11, buf, &got) == 0);
    CHECK(got == P9SYNTH_READ_SIZE);
    CHECK(p9_read(c, 1, 0, MSIZE - 10, buf, &got) == EMSGSIZE);
    CHECK(p9_read(c, 1, 0, 1 << 24, buf, &got) == EMSGSIZE);
    CHECK(p9_write(c, 1, 0, "x", 1, &w) == EBADF);          /* read-only open */
    CHECK(p9_walk_path(c, 0, 2, "ReadFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_WRONLY, NULL, NULL) == EACCES);
    /* A directory opens; reading it in 9P2000.L does not work. */
    CHECK(p9_walk_path(c, 0, 3, "ReadDirDir", NULL) == 0);
    CHECK(p9_lopen(c, 3, L_RDONLY | L_DIRECTORY, &q, NULL) == 0);
    CHECK(q.type == 0x80);
    CHECK(p9_read(c, 3, 0, 100, buf, &got) == EOPNOTSUPP);
    CHECK(p9_write(c, 3, 0, "x", 1, &w) == EINVAL);

    CHECK(p9_walk_path(c, 0, 4, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 4, L_RDWR, NULL, NULL) == 0);
    for (i = 0; i < (int)sizeof(wbuf); i++) {
        wbuf[i] = (uint8_t)(i * 13);
    }
    CHECK(p9_write(c, 4, 0, wbuf, sizeof(wbuf), &w) == 0);
    CHECK(w == sizeof(wbuf));
    CHECK(p9_write(c, 4, 5000, "tail", 4, &w) == 0 && w == 4);
    CHECK(p9_getattr(c, 4, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.size == 5004);
    CHECK(p9_read(c, 4, 0, sizeof(wbuf), buf, &got) == 0);
    CHECK(got == sizeof(wbuf) && memcmp(buf, wbuf, sizeof(wbuf)) == 0);
    CHECK(p9_read(c, 4, 4000, 2000, buf, &got) == 0);
    CHECK(got == 1004 && buf[0] == 0 && memcmp(buf + 1000, "tail", 4) == 0);
    CHECK(p9_fsync(c, 4, 0) == 0);
    CHECK(p9_fsync(c, 0, 0) == EBADF);                       /* not open */
    CHECK(stats(conn).open_handles == 3);
    CHECK(p9_clunk(c, 4) == 0);
    CHECK(p9_clunk(c, 4) == ENOENT);
    CHECK(stats(conn).open_handles == 2);
    free(buf);
    conn_free(conn);
}

static void t_readdir(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    int seen[P9SYNTH_DIR_ENTRIES + 2] = { 0 };
    uint64_t offset = 0, next;
    uint8_t *data, type;
    uint32_t len;
    unsigned calls = 0, entries = 0, i;
    char name[256];
    bool bad = false, ok = true;
    P9Qid q, fq;
    P9Reader r;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "ReadDirDir", NULL) == 0);
    CHECK(p9_readdir(c, 1, 0, 200, &data, &len) == ENOTDIR);   /* not open */
    CHECK(p9_lopen(c, 1, L_RDONLY | L_DIRECTORY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "ReadDirDir/file.42", &fq) == 0);
    /* Small counts: many Treaddirs, each resuming at the last offset. */
    for (;;) {
        CHECK(p9_readdir(c, 1, offset, 150, &data, &len) == 0);
        calls++;
        if (!data || len == 0 || calls > 500) {
            free(data);
            break;
        }
        CHECK(len <= 150);
        r = (P9Reader){ .p = data, .len = len };
        while (p9_dirent_next(&r, &q, &next, &type, name, sizeof(name), &bad)) {
            entries++;
            offset = next;
            if (strcmp(name, ".") == 0) {
                seen[0]++;
                ok = ok && type == DT_DIR;
            } else if (strcmp(name, "..") == 0) {
                seen[1]++;
                ok = ok && type == DT_DIR;
            } else if (sscanf(name, "file.%u", &i) == 1 &&
                       i < P9SYNTH_DIR_ENTRIES) {
                seen[i + 2]++;
                ok = ok && type == DT_REG;
                if (i == 42) {
                    ok = ok && q.path == fq.path;
                }
            } else {
                ok = false;
            }
        }
        CHECK(!bad);
        free(data);
    }
    CHECK(ok);
    CHECK(calls > 5);
    CHECK(entries == P9SYNTH_DIR_ENTRIES + 2);
    for (i = 0; i < P9SYNTH_DIR_ENTRIES + 2; i++) {
        CHECK(seen[i] == 1);
    }
    /* Offset 0 rewinds; a big count takes everything at once. */
    CHECK(p9_readdir(c, 1, 0, MSIZE, &data, &len) == 0);
    r = (P9Reader){ .p = data, .len = len };
    entries = 0;
    while (p9_dirent_next(&r, &q, &next, &type, name, sizeof(name), &bad)) {
        entries++;
    }
    CHECK(!bad && entries == P9SYNTH_DIR_ENTRIES + 2);
    free(data);
    /* Unknown fid: EINVAL (9p.c); a file: ENOTDIR. */
    CHECK(p9_readdir(c, 55, 0, 200, &data, &len) == EINVAL);
    CHECK(p9_lopen(c, 2, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_readdir(c, 2, 0, 200, &data, &len) == ENOTDIR);
    conn_free(conn);
}

static void t_xattr(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint64_t size = 0;
    uint32_t w = 0, got = 0;
    char buf[64];

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrwalk(c, 1, 2, "user.foo", &size) == ENODATA);
    CHECK(p9_clunk(c, 2) == ENOENT);
    /* Create: xattrcreate, write the value, clunk to commit. */
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 3, "user.foo", 5, 0) == 0);
    CHECK(stats(conn).xattr_fids == 1);
    CHECK(p9_xattrcreate(c, 3, "user.foo", 5, 0) == EINVAL); /* not plain */
    CHECK(p9_write(c, 3, 0, "hel", 3, &w) == 0 && w == 3);
    CHECK(p9_write(c, 3, 3, "lo!!", 4, &w) == 0 && w == 2); /* within size */
    CHECK(p9_write(c, 3, 9, "x", 1, &w) == ENOSPC);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(stats(conn).xattr_fids == 0);
    /* Read it back. */
    CHECK(p9_xattrwalk(c, 1, 4, "user.foo", &size) == 0);
    CHECK(size == 5);
    CHECK(stats(conn).xattr_fids == 1);
    CHECK(p9_read(c, 4, 0, 64, buf, &got) == 0);
    CHECK(got == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK(p9_read(c, 4, 2, 64, buf, &got) == 0);
    CHECK(got == 3 && memcmp(buf, "llo", 3) == 0);
    CHECK(p9_write(c, 4, 0, "x", 1, &w) == EINVAL);          /* walk fid */
    CHECK(p9_clunk(c, 4) == 0);
    /* The list. */
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 3, "user.bar", 2, 0) == 0);
    CHECK(p9_write(c, 3, 0, "hi", 2, &w) == 0);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_xattrwalk(c, 1, 4, "", &size) == 0);
    CHECK(size == strlen("user.foo") + strlen("user.bar") + 2);
    CHECK(p9_read(c, 4, 0, 64, buf, &got) == 0);
    CHECK(got == size);
    CHECK(got == size && (memmem(buf, got, "user.foo\0", 9) != NULL) &&
          (memmem(buf, got, "user.bar\0", 9) != NULL));
    CHECK(p9_clunk(c, 4) == 0);
    /* XATTR_CREATE on an existing name fails at clunk. */
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 3, "user.foo", 1, XATTR_CREATE) == 0);
    CHECK(p9_write(c, 3, 0, "z", 1, &w) == 0);
    CHECK(p9_clunk(c, 3) == EEXIST);
    /* A partial write is not committed. */
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 3, "user.part", 4, 0) == 0);
    CHECK(p9_write(c, 3, 0, "ab", 2, &w) == 0);
    CHECK(p9_clunk(c, 3) == EINVAL);
    CHECK(p9_xattrwalk(c, 1, 4, "user.part", &size) == ENODATA);
    /* Size 0 removes. */
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 3, "user.bar", 0, 0) == 0);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_xattrwalk(c, 1, 4, "user.bar", &size) == ENODATA);
    CHECK(p9_xattrwalk(c, 1, 4, "user.foo", &size) == 0 && size == 5);
    CHECK(p9_clunk(c, 4) == 0);
    /* Unknown fid: EINVAL for xattrcreate (9p.c), ENOENT for xattrwalk. */
    CHECK(p9_xattrcreate(c, 99, "user.x", 1, 0) == EINVAL);
    CHECK(p9_xattrwalk(c, 99, 4, "user.foo", &size) == ENOENT);
    CHECK(stats(conn).xattr_fids == 0);
    conn_free(conn);
}

enum { XATTR_LIMIT = 10, TEST_XATTR_SIZE = 100 };

/* QEMU's fs_synth_xattr_limit_custom qtest, with a smaller limit. */
static void t_xattr_limit(Mode mode)
{
    QrsP9Config cfg;
    Conn *conn;
    P9Client *c;
    uint8_t data[TEST_XATTR_SIZE];
    uint32_t w, i;

    memset(data, 'X', sizeof(data));
    qrs_p9_config_init(&cfg);
    cfg.max_xattr = XATTR_LIMIT;
    conn = conn_new_cfg(mode, false, &cfg);
    c = &conn->c;
    session(conn);
    CHECK(synth_xattr_count(conn) == 0);
    for (i = 0; i < XATTR_LIMIT; i++) {
        CHECK(p9_walk_path(c, 0, 10 + i, "WriteFileSyscall", NULL) == 0);
        CHECK(p9_xattrcreate(c, 10 + i, "user.test", TEST_XATTR_SIZE, 0) == 0);
        CHECK(p9_write(c, 10 + i, 0, data, sizeof(data), &w) == 0);
        CHECK(w == sizeof(data));
        CHECK(synth_xattr_count(conn) == i + 1);
        CHECK(stats(conn).xattr_fids == i + 1);
    }
    CHECK(p9_walk_path(c, 0, 100, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 100, "user.test_exceed", TEST_XATTR_SIZE, 0) == ENOSPC);
    CHECK(synth_xattr_count(conn) == XATTR_LIMIT);
    /* xattrwalk takes a slot too. */
    CHECK(p9_walk_path(c, 0, 101, "WriteFileSyscall", NULL) == 0);
    {
        uint64_t size;

        CHECK(p9_xattrwalk(c, 101, 102, "", &size) == ENOSPC);
    }
    for (i = 0; i < XATTR_LIMIT; i++) {
        CHECK(p9_clunk(c, 10 + i) == 0);
    }
    CHECK(p9_clunk(c, 100) == 0);
    CHECK(synth_xattr_count(conn) == 0);
    CHECK(stats(conn).xattr_fids == 0);
    conn_free(conn);
}

static void t_create_remove(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    const char *names[16];
    char dname[16][8], buf[64];
    P9Qid q, qids[16];
    P9Attr a;
    uint32_t w, iounit = 0, got;
    unsigned n, i;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "dir", NULL) == 0);
    CHECK(p9_mkdir(c, 1, "sub", 0750, 0, &q) == 0);
    CHECK(q.type == 0x80);
    CHECK(p9_mkdir(c, 1, "sub", 0750, 0, &q) == EEXIST);
    CHECK(p9_mkdir(c, 0, "nope", 0750, 0, &q) == EPERM);    /* fixed tree */
    CHECK(p9_mkdir(c, 77, "x", 0750, 0, &q) == ENOENT);
    CHECK(p9_walk_path(c, 0, 2, "dir/sub", NULL) == 0);
    CHECK(p9_getattr(c, 2, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.mode == (S_IFDIR | 0750));
    /* lcreate: the fid becomes the open new file. */
    CHECK(p9_lcreate(c, 2, "f", L_RDWR, 0640, 0, &q, &iounit) == 0);
    CHECK(q.type == 0 && iounit > 0);
    CHECK(p9_write(c, 2, 0, "0123456789", 10, &w) == 0 && w == 10);
    CHECK(p9_read(c, 2, 2, 64, buf, &got) == 0);
    CHECK(got == 8 && memcmp(buf, "23456789", 8) == 0);
    CHECK(p9_clunk(c, 2) == 0);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/f", NULL) == 0);
    CHECK(p9_getattr(c, 3, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.mode == (S_IFREG | 0640) && a.size == 10);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_walk_path(c, 0, 2, "dir/sub", NULL) == 0);
    CHECK(p9_lcreate(c, 2, "f", L_RDWR | L_EXCL, 0640, 0, &q, NULL) == EEXIST);
    /* symlink, readlink, renameat. */
    CHECK(p9_symlink(c, 2, "ln", "f", 0, &q) == 0);
    CHECK(q.type == 0x02);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/ln", NULL) == 0);
    CHECK(p9_readlink(c, 3, buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "f") == 0);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_renameat(c, 2, "ln", 1, "ln2") == 0);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/ln", NULL) == ENOENT);
    CHECK(p9_walk_path(c, 0, 3, "dir/ln2", NULL) == 0);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_unlinkat(c, 1, "ln2", 0) == 0);
    /* mknod (a FIFO); Trename of a fid needs path names: EOPNOTSUPP. */
    CHECK(p9_mknod(c, 2, "fifo", S_IFIFO | 0600, 0, 0, 0, &q) == 0);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/fifo", NULL) == 0);
    CHECK(p9_getattr(c, 3, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.mode == (S_IFIFO | 0600) && a.qid.path == q.path);
    CHECK(p9_rename(c, 3, 1, "fifo2") == EOPNOTSUPP);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_link(c, 1, 0, "hard") == EPERM);               /* p9synth */
    CHECK(p9_unlinkat(c, 2, "fifo", 0) == 0);
    /* unlinkat: file, then the directory (AT_REMOVEDIR). */
    CHECK(p9_unlinkat(c, 1, "sub", 0x200) == ENOTEMPTY);
    CHECK(p9_unlinkat(c, 2, "f", 0) == 0);
    CHECK(p9_unlinkat(c, 2, "f", 0) == ENOENT);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/f", NULL) == ENOENT);
    CHECK(p9_unlinkat(c, 0, "ReadFileSyscall", 0) == EPERM);
    /* Tremove: removes and clunks. */
    CHECK(p9_walk_path(c, 0, 3, "dir/sub", NULL) == 0);
    CHECK(p9_lcreate(c, 3, "g", L_WRONLY, 0600, 0, &q, NULL) == 0);
    CHECK(p9_clunk(c, 3) == 0);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/g", NULL) == 0);
    CHECK(p9_remove(c, 3) == 0);
    CHECK(p9_clunk(c, 3) == ENOENT);
    CHECK(p9_walk_path(c, 0, 3, "dir/sub/g", NULL) == ENOENT);
    CHECK(p9_remove(c, 3) == EINVAL);                       /* unknown fid */
    CHECK(p9_clunk(c, 2) == 0);
    CHECK(p9_unlinkat(c, 1, "sub", 0x200) == 0);
    /* A 15-deep chain, then one 16-name walk down it. */
    CHECK(p9_walk_path(c, 0, 4, "dir", NULL) == 0);
    names[0] = "dir";
    for (i = 1; i < 16; i++) {
        snprintf(dname[i], sizeof(dname[i]), "d%u", i);
        names[i] = dname[i];
        CHECK(p9_mkdir(c, 4, dname[i], 0755, 0, &q) == 0);
        CHECK(p9_walk(c, 4, 4, 1, &names[i], qids, &n) == 0 && n == 1);
        CHECK(qids[0].path == q.path);
    }
    CHECK(p9_walk(c, 0, 5, 16, names, qids, &n) == 0);
    CHECK(n == 16 && qids[15].path == q.path);
    CHECK(p9_getattr(c, 5, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.qid.path == q.path);
    conn_free(conn);
}

/* Tflush of a read blocked in the backend (QEMU's fs_flush_success). */
static void t_flush(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint8_t buf[64];
    P9Msg m;
    P9Reader r;
    size_t len;
    Pdu *rd, *fl;
    int rc;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    p9m_begin(&m, buf, sizeof(buf), P9_TREAD, 100);
    p9m_u32(&m, 1);
    p9m_u64(&m, 0);
    p9m_u32(&m, 64);
    len = p9m_end(&m);
    rd = conn_send(conn, buf, len);
    CHECK(p9synth_wait_blocking_entered(conn->synth, 1) == 0);
    p9m_begin(&m, buf, sizeof(buf), P9_TFLUSH, 101);
    p9m_u16(&m, 100);
    len = p9m_end(&m);
    fl = conn_send(conn, buf, len);
    if (mode == MODE_THREAD) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    /* Rflush waits for the read. */
    CHECK(rd && fl && !rd->done && !fl->done);
    p9synth_release_blocking(conn->synth);
    if (rd && fl && conn_wait(conn, rd) && conn_wait(conn, fl)) {
        CHECK(rd->seq < fl->seq);
        CHECK(p9_parse_reply(fl->reply, fl->reply_len, 101, P9_TFLUSH + 1, &r) == 0);
        CHECK(p9r_done(&r));
        /* The read: no reply, Rread, or EINTR. */
        if (rd->reply_len) {
            rc = p9_parse_reply(rd->reply, rd->reply_len, 100, P9_TREAD + 1, &r);
            CHECK(rc == 0 || rc == EINTR);
        }
    }
    pdu_free(rd);
    pdu_free(fl);
    /* Flushing an unknown tag answers at once. */
    p9m_begin(&m, buf, sizeof(buf), P9_TFLUSH, 102);
    p9m_u16(&m, 555);
    len = p9m_end(&m);
    fl = conn_send(conn, buf, len);
    if (fl && conn_wait(conn, fl)) {
        CHECK(p9_parse_reply(fl->reply, fl->reply_len, 102, P9_TFLUSH + 1, &r) == 0);
    }
    pdu_free(fl);
    /* Thread mode finishes a request just after its complete(). */
    CHECK(wait_idle(conn));
    conn_free(conn);
}

/* A Tflush of a request queued behind a blocked one (thread mode, one
 * thread busy): the target never starts and completes with no reply. */
static void t_flush_queued(void)
{
    QrsP9Config cfg;
    Conn *conn;
    P9Client *c;
    uint8_t buf[64];
    P9Msg m;
    P9Reader r;
    Pdu *rd, *q, *fl;
    QrsP9Stats st;
    size_t len;

    qrs_p9_config_init(&cfg);
    conn = conn_new_cfg(MODE_THREAD, false, &cfg);
    c = &conn->c;
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_RDONLY, NULL, NULL) == 0);
    /* Two blocking reads take both server threads. */
    p9m_begin(&m, buf, sizeof(buf), P9_TREAD, 200);
    p9m_u32(&m, 1); p9m_u64(&m, 0); p9m_u32(&m, 8);
    len = p9m_end(&m);
    rd = conn_send(conn, buf, len);
    p9m_begin(&m, buf, sizeof(buf), P9_TREAD, 201);
    p9m_u32(&m, 2); p9m_u64(&m, 0); p9m_u32(&m, 8);
    len = p9m_end(&m);
    q = conn_send(conn, buf, len);
    CHECK(p9synth_wait_blocking_entered(conn->synth, 2) == 0);
    /* A third request waits for a thread; flush it. */
    {
        Pdu *g;
        p9m_begin(&m, buf, sizeof(buf), P9_TGETATTR, 202);
        p9m_u32(&m, 0); p9m_u64(&m, P9_GETATTR_BASIC);
        len = p9m_end(&m);
        g = conn_send(conn, buf, len);
        p9m_begin(&m, buf, sizeof(buf), P9_TFLUSH, 203);
        p9m_u16(&m, 202);
        len = p9m_end(&m);
        fl = conn_send(conn, buf, len);
        p9synth_release_blocking(conn->synth);
        if (g && fl && conn_wait(conn, g) && conn_wait(conn, fl)) {
            CHECK(g->seq < fl->seq);
            CHECK(g->reply_len == 0);       /* cancelled before it started */
            CHECK(p9_parse_reply(fl->reply, fl->reply_len, 203, P9_TFLUSH + 1, &r) == 0);
        }
        pdu_free(g);
        pdu_free(fl);
    }
    if (rd && conn_wait(conn, rd)) {
        CHECK(p9_parse_reply(rd->reply, rd->reply_len, 200, P9_TREAD + 1, &r) == 0);
    }
    if (q && conn_wait(conn, q)) {
        CHECK(p9_parse_reply(q->reply, q->reply_len, 201, P9_TREAD + 1, &r) == 0);
    }
    pdu_free(rd);
    pdu_free(q);
    st = stats(conn);
    CHECK(st.cancelled == 1);
    conn_free(conn);
}

static void t_reset(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    QrsP9Stats st;
    uint64_t size;
    uint32_t w;
    char ver[32], buf[8];

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "ReadFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "ReadDirDir", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_RDONLY | L_DIRECTORY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 3, L_RDWR, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 4, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 4, "user.reset", 3, 0) == 0);
    CHECK(p9_write(c, 4, 0, "abc", 3, &w) == 0);
    st = stats(conn);
    CHECK(st.fids == 5 && st.open_handles == 3 && st.xattr_fids == 1);
    CHECK(p9synth_opens(conn->synth) == 3 && p9synth_closes(conn->synth) == 0);
    conn_reset(conn);
    st = stats(conn);
    CHECK(st.fids == 0 && st.open_handles == 0 && st.xattr_fids == 0);
    CHECK(st.active == 0);
    CHECK(p9synth_opens(conn->synth) == p9synth_closes(conn->synth));
    /* The session is gone: Tversion again; the pending xattr committed. */
    CHECK(p9_attach(c, 0, "", "", 0, NULL) > 0);
    CHECK(p9_version(c, MSIZE, "9P2000.L", NULL, ver, sizeof(ver)) == 0);
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 1, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrwalk(c, 1, 2, "user.reset", &size) == 0 && size == 3);
    CHECK(p9_read(c, 2, 0, 8, buf, &w) == 0 && w == 3 && memcmp(buf, "abc", 3) == 0);
    conn_free(conn);
}

/* ---- EINTR, fstat, st_gen, padded requests, hooks ---- */

enum { P9_STATS_GEN = 0x1000, P9_RFLUSH = P9_TFLUSH + 1 };

/* A Twrite of @len bytes of @data to @fid at offset 0. */
static size_t twrite(uint8_t *buf, size_t cap, uint16_t tag, uint32_t fid,
                     const void *data, uint32_t len)
{
    P9Msg m;

    p9m_begin(&m, buf, cap, P9_TWRITE, tag);
    p9m_u32(&m, fid);
    p9m_u64(&m, 0);
    p9m_u32(&m, len);
    p9m_bytes(&m, data, len);
    return p9m_end(&m);
}

static size_t tflush(uint8_t *buf, size_t cap, uint16_t tag, uint16_t oldtag)
{
    P9Msg m;

    p9m_begin(&m, buf, cap, P9_TFLUSH, tag);
    p9m_u16(&m, oldtag);
    return p9m_end(&m);
}

/*
 * Flush a Twrite of /Flush/WriteEintr (fid, opened for writing) whose
 * backend write fails with EINTR until the request is cancelled (QEMU's
 * synth/flush/success qtest): the write ends with no reply, and the Rflush
 * comes after it.  @pad: the Tflush arrives in buffers this much longer.
 * Returns the flushed write's Pdu (freed by the caller) or NULL.
 */
static Pdu *flush_eintr_write(Conn *conn, uint32_t fid, uint16_t tag,
                              size_t pad, Pdu **flush)
{
    uint8_t buf[64], one = 1;
    unsigned calls = p9synth_eintr_calls(conn->synth);
    uint64_t cancelled = stats(conn).cancelled;
    P9Reader r;
    size_t len;
    Pdu *wr, *fl;

    len = twrite(buf, sizeof(buf), tag, fid, &one, 1);
    wr = conn_send(conn, buf, len);
    /* Coroutine mode: run it on until it is in its offload (a throttle
     * hook may have suspended it before). */
    if (conn->mode == MODE_CO) {
        int i;

        for (i = 0; i < 10000 && p9synth_eintr_calls(conn->synth) == calls; i++) {
            struct timespec ts = { 0, 1000 * 1000 };

            cohome_poll(cohome_self(), 100);
            nanosleep(&ts, NULL);
        }
    }
    /* Inside its backend call, failing with EINTR again and again. */
    CHECK(p9synth_wait_eintr_calls(conn->synth, calls + 3) == 0);
    CHECK(wr && !wr->done);
    len = tflush(buf, sizeof(buf), tag + 1, tag);
    fl = conn_send_full(conn, buf, len, pad, 0);
    *flush = fl;
    if (!wr || !fl || !conn_wait(conn, wr) || !conn_wait(conn, fl)) {
        return wr;
    }
    CHECK(wr->reply_len == 0);              /* cancelled: no reply */
    CHECK(wr->seq < fl->seq);
    CHECK(p9_parse_reply(fl->reply, fl->reply_len, tag + 1, P9_RFLUSH, &r) == 0);
    CHECK(p9r_done(&r));
    CHECK(wait_idle(conn));
    CHECK(stats(conn).cancelled == cancelled + 1);
    return wr;
}

/* Backend reads and writes that fail with EINTR are retried (9p.c). */
static void t_eintr(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint8_t two[4] = { 2, 'a', 'b', 'c' };
    unsigned calls;
    uint32_t w = 0;
    Pdu *wr, *fl = NULL;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/WriteEintr", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_WRONLY, NULL, NULL) == 0);
    /* EINTR twice, then success: a normal Rwrite. */
    calls = p9synth_eintr_calls(conn->synth);
    CHECK(p9_write(c, 1, 0, two, sizeof(two), &w) == 0);
    CHECK(w == sizeof(two));
    CHECK(p9synth_eintr_calls(conn->synth) == calls + 3);
    /* EINTR until flushed: no reply to the write, then the Rflush. */
    wr = flush_eintr_write(conn, 1, 100, 0, &fl);
    pdu_free(wr);
    pdu_free(fl);
    /* The fid still works afterwards. */
    CHECK(p9_write(c, 1, 0, "x", 1, &w) == 0 && w == 1);
    conn_free(conn);
}

/* Tgetattr of an open fid goes through fstat (9p.c v9fs_getattr). */
static void t_fstat(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    unsigned n;
    uint32_t w;
    uint8_t status, lt;
    uint64_t start, length;
    uint32_t pid;
    P9Attr a;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "dir", NULL) == 0);
    CHECK(p9_lcreate(c, 1, "f", L_RDWR, 0640, 0, NULL, NULL) == 0);
    CHECK(p9_write(c, 1, 0, "hello", 5, &w) == 0 && w == 5);
    CHECK(p9_walk_path(c, 0, 2, "dir/f", NULL) == 0);       /* not open */
    n = p9synth_fstat_calls(conn->synth);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.size == 5 && a.mode == (S_IFREG | 0640));
    CHECK(p9synth_fstat_calls(conn->synth) == n + 1);
    CHECK(p9_getattr(c, 2, P9_GETATTR_BASIC, &a) == 0 && a.size == 5);
    CHECK(p9synth_fstat_calls(conn->synth) == n + 1);       /* lstat */
    /* An open directory: fstat with is_dir (p9synth checks it). */
    CHECK(p9_walk_path(c, 0, 3, "dir", NULL) == 0);
    CHECK(p9_lopen(c, 3, L_RDONLY | L_DIRECTORY, NULL, NULL) == 0);
    CHECK(p9_getattr(c, 3, P9_GETATTR_BASIC, &a) == 0);
    CHECK((a.mode & S_IFMT) == S_IFDIR);
    CHECK(p9synth_fstat_calls(conn->synth) == n + 2);
    /* Open but unlinked: only the open fid answers. */
    CHECK(p9_unlinkat(c, 3, "f", 0) == 0);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0 && a.size == 5);
    CHECK(p9_getattr(c, 2, P9_GETATTR_BASIC, &a) == ENOENT);
    /* Locks: the fstat check, then granted / none (9p.c). */
    n = p9synth_fstat_calls(conn->synth);
    CHECK(p9_lock(c, 1, P9_LOCK_WRLCK, 0, 0, 0, 7, "cid", &status) == 0);
    CHECK(status == P9_LOCK_SUCCESS);
    lt = P9_LOCK_WRLCK; start = 0; length = 1; pid = 7;
    CHECK(p9_getlock(c, 1, &lt, &start, &length, &pid, "cid") == 0);
    CHECK(lt == P9_LOCK_UNLCK);
    CHECK(p9synth_fstat_calls(conn->synth) == n + 2);
    CHECK(p9_lock(c, 2, P9_LOCK_WRLCK, 0, 0, 0, 7, "cid", &status) == EBADF);
    /* EBADF: no usable handle: lstat for Tgetattr; locks fail. */
    CHECK(p9_walk_path(c, 0, 4, "dir", NULL) == 0);
    CHECK(p9_lcreate(c, 4, "g", L_RDWR, 0600, 0, NULL, NULL) == 0);
    p9synth_set_fstat_mode(conn->synth, EBADF);
    CHECK(p9_getattr(c, 4, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.mode == (S_IFREG | 0600));
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == ENOENT);  /* unlinked */
    CHECK(p9_lock(c, 4, P9_LOCK_WRLCK, 0, 0, 0, 7, "cid", &status) == EBADF);
    lt = P9_LOCK_WRLCK;
    CHECK(p9_getlock(c, 4, &lt, &start, &length, &pid, "cid") == EBADF);
    /* EOPNOTSUPP: lstat of the path, or fstat's partial result when the
     * file is gone (uid 4242 marks it); locks go on. */
    p9synth_set_fstat_mode(conn->synth, EOPNOTSUPP);
    CHECK(p9_getattr(c, 4, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.uid == 0 && a.mode == (S_IFREG | 0600));
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.uid == 4242 && a.size == 5);
    CHECK(p9_lock(c, 4, P9_LOCK_WRLCK, 0, 0, 0, 7, "cid", &status) == 0);
    CHECK(status == P9_LOCK_SUCCESS);
    p9synth_set_fstat_mode(conn->synth, 0);
    conn_free(conn);

    /* Without fstat in the vtable: lstat; locks granted. */
    conn = conn_new_full(mode, CONN_NO_FSTAT, NULL);
    c = &conn->c;
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "dir", NULL) == 0);
    CHECK(p9_lcreate(c, 1, "f", L_RDWR, 0640, 0, NULL, NULL) == 0);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(p9_walk_path(c, 0, 2, "dir", NULL) == 0);
    CHECK(p9_unlinkat(c, 2, "f", 0) == 0);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == ENOENT);
    CHECK(p9_lock(c, 1, P9_LOCK_WRLCK, 0, 0, 0, 7, "cid", &status) == 0);
    CHECK(status == P9_LOCK_SUCCESS);
    CHECK(p9synth_fstat_calls(conn->synth) == 0);
    conn_free(conn);
}

/* get_st_gen only for Tgetattr with P9_STATS_GEN. */
static void t_st_gen(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    P9Attr a;
    P9Qid q;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "ReadFileSyscall", &q) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "dir", NULL) == 0);
    CHECK(p9_lcreate(c, 2, "new", L_RDWR, 0600, 0, NULL, NULL) == 0);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK((a.valid & P9_STATS_GEN) == 0 && a.gen == 0);
    CHECK(p9_getattr(c, 0, P9_GETATTR_BASIC, &a) == 0);
    CHECK(p9synth_gen_calls(conn->synth) == 0);
    /* Asked for: one call, its value and the GEN bit. */
    CHECK(p9_getattr(c, 1, P9_GETATTR_ALL, &a) == 0);
    CHECK(p9synth_gen_calls(conn->synth) == 1);
    CHECK((a.valid & P9_STATS_GEN) != 0);
    CHECK(a.gen == 0x5000 + q.path);
    CHECK(p9_getattr(c, 2, P9_STATS_GEN, &a) == 0);
    CHECK((a.valid & P9_STATS_GEN) != 0 && a.gen > 0x5000);
    CHECK(p9synth_gen_calls(conn->synth) == 2);
    /* A failing get_st_gen: no GEN bit, the request still succeeds. */
    CHECK(p9_getattr(c, 0, P9_GETATTR_ALL, &a) == 0);
    CHECK((a.valid & P9_STATS_GEN) == 0 && a.gen == 0);
    CHECK((a.mode & S_IFMT) == S_IFDIR);
    CHECK(p9synth_gen_calls(conn->synth) == 3);
    conn_free(conn);

    /* No get_st_gen: GEN reported as 0 (9p.c without the hook). */
    conn = conn_new_full(mode, CONN_NO_GEN, NULL);
    c = &conn->c;
    session(conn);
    CHECK(p9_getattr(c, 0, P9_GETATTR_ALL, &a) == 0);
    CHECK((a.valid & P9_STATS_GEN) != 0 && a.gen == 0);
    CHECK(p9synth_gen_calls(conn->synth) == 0);
    conn_free(conn);
}

/* Requests in buffers longer than the message: the size field rules. */
static void t_padded(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint8_t buf[128], rd[64];
    uint32_t got = 0;
    size_t len;
    P9Reader r;
    P9Attr a;
    Pdu *p, *fl = NULL;

    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDWR, NULL, NULL) == 0);
    /* Twrite over two iovecs, 100 bytes of garbage after it. */
    len = twrite(buf, sizeof(buf), 50, 1, "0123456789", 10);
    p = conn_send_full(conn, buf, len, 100, 0);
    if (p && conn_wait(conn, p)) {
        CHECK(p9_parse_reply(p->reply, p->reply_len, 50, P9_TWRITE + 1, &r) == 0);
        CHECK(p9r_u32(&r) == 10 && p9r_done(&r));
    }
    pdu_free(p);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0 && a.size == 10);
    CHECK(p9_read(c, 1, 0, sizeof(rd), rd, &got) == 0);
    CHECK(got == 10 && memcmp(rd, "0123456789", 10) == 0);
    /* A padded Tflush still finds and cancels its target. */
    CHECK(p9_walk_path(c, 0, 2, "Flush/WriteEintr", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_WRONLY, NULL, NULL) == 0);
    p = flush_eintr_write(conn, 2, 60, 7, &fl);
    pdu_free(p);
    pdu_free(fl);
    /* Buffers shorter than the size field: still an error. */
    len = twrite(buf, sizeof(buf), 70, 1, "abc", 3);
    buf[0] = (uint8_t)(len + 1);
    p = conn_send(conn, buf, len);
    if (p && conn_wait(conn, p)) {
        CHECK(p9_parse_reply(p->reply, p->reply_len, 70, P9_TWRITE + 1, &r) == EINVAL);
    }
    pdu_free(p);
    conn_free(conn);
}

/*
 * Send Tread(@fid) parked in reply_buffers, then Tclunk(@fid), whose
 * completion lets the read go on; both complete.
 */
static void park_read_then_clunk(Conn *conn, uint32_t fid, Pdu **rd, Pdu **cl)
{
    uint8_t buf[64];
    P9Msg m;
    size_t len;

    conn->unpark = false;
    p9m_begin(&m, buf, sizeof(buf), P9_TREAD, 300);
    p9m_u32(&m, fid); p9m_u64(&m, 0); p9m_u32(&m, 64);
    len = p9m_end(&m);
    *rd = conn_send_full(conn, buf, len, 0, SEND_PARK);
    CHECK(*rd && !(*rd)->done);
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 301);
    p9m_u32(&m, fid);
    len = p9m_end(&m);
    *cl = conn_send_full(conn, buf, len, 0, SEND_UNPARK);
    if (*rd && *cl && conn_wait(conn, *cl) && conn_wait(conn, *rd)) {
        CHECK((*cl)->seq < (*rd)->seq);
    }
}

/*
 * No lock is held across reply_buffers (which may suspend, as Xen's ring
 * does): a Tclunk of the xattr fid a Tread is reading runs to completion
 * while the Tread waits there for it.
 */
static void t_no_lock_across_reply_buffers(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    uint64_t size = 0;
    uint32_t w = 0;
    P9Reader r;
    Pdu *rd = NULL, *cl = NULL;
    const uint8_t *data;

    alarm(120);                 /* a deadlock fails the run, not hangs it */
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 2, "user.park", 5, 0) == 0);
    CHECK(p9_write(c, 2, 0, "hello", 5, &w) == 0 && w == 5);
    CHECK(p9_clunk(c, 2) == 0);
    /* A Txattrwalk fid: the read gets its value. */
    CHECK(p9_xattrwalk(c, 1, 3, "user.park", &size) == 0 && size == 5);
    park_read_then_clunk(conn, 3, &rd, &cl);
    if (rd && cl && rd->done && cl->done) {
        CHECK(p9_parse_reply(cl->reply, cl->reply_len, 301, P9_TCLUNK + 1, &r) == 0);
        CHECK(p9_parse_reply(rd->reply, rd->reply_len, 300, P9_TREAD + 1, &r) == 0);
        CHECK(p9r_u32(&r) == 5);
        data = p9r_bytes(&r, 5);
        CHECK(data && memcmp(data, "hello", 5) == 0);
    }
    pdu_free(rd);
    pdu_free(cl);
    /* A Txattrcreate fid, committed by the Tclunk meanwhile: the read
     * fails cleanly. */
    CHECK(p9_walk_path(c, 0, 4, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_xattrcreate(c, 4, "user.p2", 3, 0) == 0);
    CHECK(p9_write(c, 4, 0, "abc", 3, &w) == 0 && w == 3);
    park_read_then_clunk(conn, 4, &rd, &cl);
    if (rd && cl && rd->done && cl->done) {
        CHECK(p9_parse_reply(cl->reply, cl->reply_len, 301, P9_TCLUNK + 1, &r) == 0);
        CHECK(p9_parse_reply(rd->reply, rd->reply_len, 300, P9_TREAD + 1, &r) == EINVAL);
    }
    pdu_free(rd);
    pdu_free(cl);
    CHECK(p9_xattrwalk(c, 1, 5, "user.p2", &size) == 0 && size == 3);
    CHECK(conn->park_timeouts == 0);
    conn_free(conn);
    alarm(0);
}

/* The session hook's calls so far, as a string of 0s and 1s. */
static const char *session_log(Conn *conn, char *out, size_t cap)
{
    unsigned i, n;

    pthread_mutex_lock(&conn->lock);
    n = conn->h.nsession < MAX_LOG ? conn->h.nsession : MAX_LOG;
    for (i = 0; i < n && i + 1 < cap; i++) {
        out[i] = conn->h.session[i] ? '1' : '0';
    }
    out[i] = 0;
    pthread_mutex_unlock(&conn->lock);
    return out;
}

#define SESSION_IS(conn, want)                                             \
    do {                                                                   \
        char log_[MAX_LOG + 1];                                            \
        CHECK(wait_idle(conn));                                            \
        if (strcmp(session_log(conn, log_, sizeof(log_)), want) != 0) {    \
            DIAG("  session calls %s, want %s", log_, want);                \
            CHECK(!"session calls");                                       \
        }                                                                  \
    } while (0)

/* The transport's optional hooks: session, throttle, trace. */
static void t_hooks(Mode mode)
{
    Conn *conn = conn_new_full(mode, CONN_HOOKS, NULL);
    P9Client *c = &conn->c;
    Hooks *h = &conn->h;
    uint8_t buf[4096];
    uint32_t w = 0, got = 0, msize;
    uint64_t size;
    char ver[32];
    unsigned n, io;
    size_t len;
    Pdu *p, *fl = NULL;
    P9Msg m;

    /* session: 1 on the first Tattach only, 0 when the last fid goes. */
    CHECK(p9_version(c, MSIZE, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    SESSION_IS(conn, "");
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == 0);
    SESSION_IS(conn, "1");
    CHECK(p9_attach(c, 1, "", "", 0, NULL) == 0);
    CHECK(p9_attach(c, 1, "", "", 0, NULL) == EINVAL);      /* fid in use */
    CHECK(p9_walk_path(c, 0, 2, "ReadDirDir", NULL) == 0);
    CHECK(p9_clunk(c, 0) == 0);
    CHECK(p9_remove(c, 2) == EPERM);                         /* still clunked */
    SESSION_IS(conn, "1");
    CHECK(p9_clunk(c, 1) == 0);
    SESSION_IS(conn, "10");
    CHECK(p9_clunk(c, 1) == ENOENT);
    SESSION_IS(conn, "10");
    /* Tversion's clunk of everything; then a reset. */
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 1, "ReadDirDir", NULL) == 0);
    SESSION_IS(conn, "101");
    CHECK(p9_version(c, MSIZE, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    SESSION_IS(conn, "1010");
    CHECK(p9_version(c, MSIZE, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    SESSION_IS(conn, "1010");
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == 0);
    SESSION_IS(conn, "10101");
    conn_reset(conn);
    SESSION_IS(conn, "101010");
    CHECK(stats(conn).fids == 0);
    /* A failing session(1) fails the Tattach with its errno: no fid, and
     * no session(0) for it. */
    CHECK(p9_version(c, MSIZE, "9P2000.L", &msize, ver, sizeof(ver)) == 0);
    pthread_mutex_lock(&conn->lock);
    h->session_fail = EBUSY;
    pthread_mutex_unlock(&conn->lock);
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == EBUSY);
    SESSION_IS(conn, "1010101");
    CHECK(stats(conn).fids == 0);
    CHECK(p9_clunk(c, 0) == ENOENT);
    SESSION_IS(conn, "1010101");
    pthread_mutex_lock(&conn->lock);
    h->session_fail = 0;
    pthread_mutex_unlock(&conn->lock);
    CHECK(p9_attach(c, 0, "", "", 0, NULL) == 0);
    SESSION_IS(conn, "10101011");
    CHECK(stats(conn).fids == 1);

    /* throttle: before each file read and write, with the byte count. */
    CHECK(p9_walk_path(c, 0, 1, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDWR, NULL, NULL) == 0);
    CHECK(p9_read(c, 1, 0, 10, buf, &got) == 0);             /* empty */
    memset(buf, 'w', 3000);
    io = p9synth_io_calls(conn->synth);
    CHECK(p9_write(c, 1, 0, buf, 3000, &w) == 0 && w == 3000);
    CHECK(p9_read(c, 1, 1000, 1500, buf, &got) == 0 && got == 1500);
    CHECK(buf[0] == 'w' && buf[1499] == 'w');
    CHECK(p9_read(c, 1, 0, 1 << 20, buf, &got) == EMSGSIZE); /* no I/O */
    CHECK(p9_read(c, 0, 0, 10, buf, &got) == EINVAL);        /* not open */
    CHECK(p9_xattrwalk(c, 1, 2, "", &size) == 0);
    CHECK(p9_read(c, 2, 0, 10, buf, &got) == 0);             /* xattr: none */
    CHECK(h->throttles == 3);
    if (h->throttles == 3) {
        CHECK(h->throttle_write[0] == 0 && h->throttle_bytes[0] == 10);
        CHECK(h->throttle_write[1] == 1 && h->throttle_bytes[1] == 3000);
        CHECK(h->throttle_write[2] == 0 && h->throttle_bytes[2] == 1500);
        /* Before the backend call. */
        CHECK(h->throttle_io[1] == io && h->throttle_io[2] == io + 1);
    }
    CHECK(p9synth_io_calls(conn->synth) == io + 2);
    if (mode == MODE_CO) {
        CHECK(h->throttle_suspends == 3);
    }

    /* trace: the reply type and errno of every request, before complete. */
    p9m_begin(&m, buf, sizeof(buf), P9_TGETATTR, 400);
    p9m_u32(&m, 0);
    p9m_u64(&m, P9_GETATTR_BASIC);
    p = conn_send(conn, buf, p9m_end(&m));
    if (p && conn_wait(conn, p)) {
        CHECK(p->traced == 1 && p->trace_reply == P9_TGETATTR + 1);
        CHECK(p->trace_err == 0 && p->reply_len > 0);
    }
    pdu_free(p);
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 401);
    p9m_u32(&m, 77);
    p = conn_send(conn, buf, p9m_end(&m));
    if (p && conn_wait(conn, p)) {
        CHECK(p->traced == 1 && p->trace_reply == P9_RLERROR);
        CHECK(p->trace_err == ENOENT);
    }
    pdu_free(p);
    /* Too short to answer: no reply. */
    p = conn_send(conn, (const uint8_t *)"\x05\x00\x00", 3);
    if (p && conn_wait(conn, p)) {
        CHECK(p->traced == 1 && p->trace_reply == 0 && p->trace_err == 0);
    }
    pdu_free(p);
    /* A flushed request: 0; its Tflush: Rflush. */
    CHECK(p9_walk_path(c, 0, 3, "Flush/WriteEintr", NULL) == 0);
    CHECK(p9_lopen(c, 3, L_WRONLY, NULL, NULL) == 0);
    n = h->throttles;
    p = flush_eintr_write(conn, 3, 410, 0, &fl);
    if (p && fl && p->done && fl->done) {
        CHECK(p->traced == 1 && p->trace_reply == 0 && p->trace_err == 0);
        CHECK(fl->traced == 1 && fl->trace_reply == P9_RFLUSH);
        CHECK(fl->trace_err == 0);
    }
    CHECK(h->throttles == n + 1);
    pdu_free(p);
    pdu_free(fl);
    /* Tversion's own error reply, and 9P2000.u's Rerror. */
    p9m_begin(&m, buf, sizeof(buf), P9_TVERSION, 420);
    p9m_u32(&m, 1000);
    p9m_str(&m, "9P2000.L");
    p = conn_send(conn, buf, p9m_end(&m));
    if (p && conn_wait(conn, p)) {
        CHECK(p->trace_reply == P9_RLERROR && p->trace_err == EMSGSIZE);
    }
    pdu_free(p);
    SESSION_IS(conn, "101010110");          /* it clunked every fid */
    CHECK(p9_version(c, MSIZE, "9P2000.u", &msize, ver, sizeof(ver)) == 0);
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 421);
    p9m_u32(&m, 77);
    len = p9m_end(&m);
    p = conn_send(conn, buf, len);
    if (p && conn_wait(conn, p)) {
        CHECK(p->trace_reply == P9_RERROR && p->trace_err == ENOENT);
    }
    pdu_free(p);
    conn_reset(conn);           /* no fid: no call */
    SESSION_IS(conn, "101010110");
    conn_free(conn);
}

/* Malformed and refused messages. */
static void t_bad_messages(Mode mode)
{
    Conn *conn = conn_new(mode, true);
    P9Client *c = &conn->c;
    uint8_t buf[256], *reply;
    size_t len, rlen;
    char ver[32];
    uint32_t msize;
    P9Msg m;
    P9Reader r;
    Pdu *p;

    /* msize below 4096: Rlerror EMSGSIZE (9p.c), no session. */
    CHECK(p9_version(c, 1000, "9P2000.L", &msize, ver, sizeof(ver)) == EMSGSIZE);
    CHECK(p9_attach(c, 0, "", "", 0, NULL) > 0);
    session(conn);
    /* Truncated Twalk: size field matches, the names are cut. */
    p9m_begin(&m, buf, sizeof(buf), P9_TWALK, 7);
    p9m_u32(&m, 0);
    p9m_u32(&m, 1);
    p9m_u16(&m, 2);
    p9m_str(&m, "ReadDirDir");
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 7, P9_TWALK + 1, &reply, &rlen, &r) == EINVAL);
    free(reply);
    /* A size field larger than the message. */
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 8);
    p9m_u32(&m, 0);
    len = p9m_end(&m);
    buf[0] = (uint8_t)(len + 4);
    CHECK(p9c_call(c, buf, len, 8, P9_TCLUNK + 1, &reply, &rlen, &r) == EINVAL);
    free(reply);
    /* Trailing bytes. */
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 9);
    p9m_u32(&m, 0);
    p9m_u32(&m, 0);
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 9, P9_TCLUNK + 1, &reply, &rlen, &r) == EINVAL);
    free(reply);
    /* Unknown type; a .u message in a 9P2000.L session; Tauth. */
    p9m_begin(&m, buf, sizeof(buf), 250, 10);
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 10, 251, &reply, &rlen, &r) == EOPNOTSUPP);
    free(reply);
    p9m_begin(&m, buf, sizeof(buf), P9_TSTAT, 11);
    p9m_u32(&m, 0);
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 11, P9_TSTAT + 1, &reply, &rlen, &r) == EOPNOTSUPP);
    free(reply);
    p9m_begin(&m, buf, sizeof(buf), P9_TAUTH, 12);
    p9m_u32(&m, 5);
    p9m_str(&m, "u");
    p9m_str(&m, "");
    p9m_u32(&m, 0);
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 12, P9_TAUTH + 1, &reply, &rlen, &r) == EOPNOTSUPP);
    free(reply);
    /* Shorter than a header: no tag, so no reply, but it completes. */
    p = conn_send(conn, (const uint8_t *)"\x05\x00\x00", 3);
    if (p && conn_wait(conn, p)) {
        CHECK(p->reply_len == 0);
    }
    pdu_free(p);
    /* An empty request too. */
    p = conn_send(conn, buf, 0);
    if (p && conn_wait(conn, p)) {
        CHECK(p->reply_len == 0);
    }
    pdu_free(p);
    /* The session survived. */
    CHECK(p9_walk(c, 0, 1, 0, NULL, NULL, NULL) == 0);
    /* 9P2000.u: errors are Rerror with an errno. */
    CHECK(p9_version(c, MSIZE, "9P2000.u", &msize, ver, sizeof(ver)) == 0);
    CHECK(strcmp(ver, "9P2000.u") == 0);
    p9m_begin(&m, buf, sizeof(buf), P9_TCLUNK, 13);
    p9m_u32(&m, 1234);
    len = p9m_end(&m);
    CHECK(p9c_call(c, buf, len, 13, P9_TCLUNK + 1, &reply, &rlen, &r) == ENOENT);
    CHECK(rlen > 7 && reply && reply[4] == P9_RERROR);
    free(reply);
    conn_free(conn);
}

static void t_dotl_only(Mode mode)
{
    QrsP9Config cfg;
    Conn *conn;
    char ver[32];
    uint32_t msize;

    qrs_p9_config_init(&cfg);
    cfg.versions = QRS_P9_VERSION_DOTL;
    conn = conn_new_cfg(mode, true, &cfg);
    CHECK(p9_version(&conn->c, MSIZE, "9P2000.u", &msize, ver, sizeof(ver)) == 0);
    CHECK(strcmp(ver, "unknown") == 0);
    CHECK(p9_version(&conn->c, MSIZE, "9P2000", &msize, ver, sizeof(ver)) == 0);
    CHECK(strcmp(ver, "unknown") == 0);
    session(conn);
    conn_free(conn);
}

/* ---- native backend ---- */

static void t_readonly(Mode mode)
{
    QrsP9Config cfg;
    Conn *conn;
    P9Client *c;
    char path[256], buf[16];
    uint32_t got;
    P9Qid q;
    int fd;

    qrs_p9_config_init(&cfg);
    cfg.readonly = 1;
    conn = conn_new_cfg(mode, true, &cfg);
    c = &conn->c;
    snprintf(path, sizeof(path), "%s/f", conn->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && write(fd, "ro", 2) == 2);
    close(fd);
    session(conn);
    CHECK(p9_mkdir(c, 0, "d", 0755, 0, &q) == EROFS);
    CHECK(p9_walk_path(c, 0, 1, "f", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDWR, NULL, NULL) == EROFS);
    CHECK(p9_setattr(c, 1, P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0) == EROFS);
    CHECK(p9_unlinkat(c, 0, "f", 0) == EROFS);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_read(c, 1, 0, sizeof(buf), buf, &got) == 0);
    CHECK(got == 2 && memcmp(buf, "ro", 2) == 0);
    conn_free(conn);
}

static void t_native(Mode mode)
{
    Conn *conn = conn_new(mode, true);
    P9Client *c = &conn->c;
    char path[256], buf[256];
    struct stat hs;
    P9Qid q;
    P9Attr a;
    uint32_t w, got, ltype, pid;
    uint64_t start, length;
    uint8_t status, lt;
    int fd;
    ssize_t n;

    session(conn);
    /* lcreate + write, read back on the host. */
    CHECK(p9_walk(c, 0, 1, 0, NULL, NULL, NULL) == 0);
    CHECK(p9_lcreate(c, 1, "a.txt", L_RDWR, 0644, 0, &q, NULL) == 0);
    CHECK(p9_write(c, 1, 0, "hello native", 12, &w) == 0 && w == 12);
    CHECK(p9_fsync(c, 1, 0) == 0);
    CHECK(p9_fsync(c, 1, 1) == 0);
    snprintf(path, sizeof(path), "%s/a.txt", conn->dir);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    n = read(fd, buf, sizeof(buf));
    close(fd);
    CHECK(n == 12 && memcmp(buf, "hello native", 12) == 0);
    CHECK(stat(path, &hs) == 0);
    CHECK(q.path != 0);
    /* Written on the host, read through 9P. */
    snprintf(path, sizeof(path), "%s/host.txt", conn->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    CHECK(fd >= 0 && write(fd, "from host", 9) == 9);
    close(fd);
    CHECK(p9_walk_path(c, 0, 2, "host.txt", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_read(c, 2, 0, sizeof(buf), buf, &got) == 0);
    CHECK(got == 9 && memcmp(buf, "from host", 9) == 0);
    /* Locks (granted; then none reported). */
    CHECK(p9_lopen(c, 1, L_RDWR, NULL, NULL) == EINVAL);    /* already open */
    CHECK(p9_lock(c, 1, P9_LOCK_WRLCK, 0, 0, 0, 42, "cid", &status) == 0);
    CHECK(status == P9_LOCK_SUCCESS);
    lt = P9_LOCK_WRLCK; start = 0; length = 10; pid = 42;
    CHECK(p9_getlock(c, 1, &lt, &start, &length, &pid, "cid") == 0);
    CHECK(lt == P9_LOCK_UNLCK);
    CHECK(p9_lock(c, 1, P9_LOCK_UNLCK, 0, 0, 0, 42, "cid", &status) == 0);
    CHECK(status == P9_LOCK_SUCCESS);
    CHECK(p9_lock(c, 0, P9_LOCK_WRLCK, 0, 0, 0, 42, "cid", &status) == EBADF);
    (void)ltype;
    /* getattr matches the host. */
    snprintf(path, sizeof(path), "%s/a.txt", conn->dir);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(stat(path, &hs) == 0);
    CHECK(a.size == 12 && a.mode == hs.st_mode && a.nlink == hs.st_nlink);
    CHECK(a.qid.path == q.path);
    /* setattr: mode, size, mtime. */
    CHECK(p9_setattr(c, 1, P9_SETATTR_MODE | P9_SETATTR_SIZE, 0600, 0, 0, 3,
                     0, 0, 0, 0) == 0);
    CHECK(p9_setattr(c, 1, P9_SETATTR_MTIME | P9_SETATTR_MTIME_SET, 0, 0, 0, 0,
                     0, 0, 1000000000, 5) == 0);
    CHECK(stat(path, &hs) == 0);
    CHECK((hs.st_mode & 07777) == 0600 && hs.st_size == 3);
    CHECK(hs.st_mtim.tv_sec == 1000000000 && hs.st_mtim.tv_nsec == 5);
    CHECK(p9_getattr(c, 1, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.size == 3 && a.mtime_sec == 1000000000 && a.mtime_nsec == 5);
    CHECK(p9_clunk(c, 1) == 0);
    /* mkdir. */
    CHECK(p9_mkdir(c, 0, "d", 0755, 0, &q) == 0 && q.type == 0x80);
    snprintf(path, sizeof(path), "%s/d", conn->dir);
    CHECK(stat(path, &hs) == 0 && S_ISDIR(hs.st_mode));
    CHECK(p9_mkdir(c, 0, "d", 0755, 0, &q) == EEXIST);
    /* symlink + readlink, through 9P and on the host. */
    CHECK(p9_symlink(c, 0, "ln", "a.txt", 0, &q) == 0 && q.type == 0x02);
    CHECK(p9_walk_path(c, 0, 3, "ln", NULL) == 0);
    CHECK(p9_readlink(c, 3, buf, sizeof(buf)) == 0 && strcmp(buf, "a.txt") == 0);
    snprintf(path, sizeof(path), "%s/ln", conn->dir);
    n = readlink(path, buf, sizeof(buf));
    CHECK(n == 5 && memcmp(buf, "a.txt", 5) == 0);
    /* renameat into the new directory. */
    CHECK(p9_walk_path(c, 0, 4, "d", NULL) == 0);
    CHECK(p9_renameat(c, 0, "a.txt", 4, "b.txt") == 0);
    snprintf(path, sizeof(path), "%s/a.txt", conn->dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/d/b.txt", conn->dir);
    CHECK(access(path, F_OK) == 0);
    CHECK(p9_walk_path(c, 0, 5, "d/b.txt", NULL) == 0);
    CHECK(p9_renameat(c, 0, "nonexistent", 4, "x") == ENOENT);
    /* statfs. */
    {
        P9StatFs st;

        CHECK(p9_statfs(c, 5, &st) == 0);
        CHECK(st.bsize > 0 && st.namelen > 0);
    }
    /* unlinkat file and directory; Tremove. */
    CHECK(p9_unlinkat(c, 4, "b.txt", 0) == 0);
    CHECK(access(path, F_OK) != 0);
    CHECK(p9_unlinkat(c, 0, "ln", 0) == 0);
    CHECK(p9_unlinkat(c, 0, "d", 0x200) == 0);
    snprintf(path, sizeof(path), "%s/d", conn->dir);
    CHECK(access(path, F_OK) != 0);
    /* Tlink, then Trename of a fid. */
    CHECK(p9_walk_path(c, 0, 6, "host.txt", NULL) == 0);
    CHECK(p9_link(c, 0, 6, "hard.txt") == 0);
    snprintf(path, sizeof(path), "%s/hard.txt", conn->dir);
    CHECK(stat(path, &hs) == 0 && hs.st_nlink == 2);
    CHECK(p9_walk_path(c, 0, 8, "hard.txt", NULL) == 0);
    CHECK(p9_rename(c, 8, 0, "moved.txt") == 0);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/moved.txt", conn->dir);
    CHECK(access(path, F_OK) == 0);
    CHECK(p9_getattr(c, 8, P9_GETATTR_BASIC, &a) == 0 && a.nlink == 2);
    CHECK(p9_remove(c, 8) == 0);
    CHECK(access(path, F_OK) != 0);
    CHECK(p9_remove(c, 6) == 0);
    snprintf(path, sizeof(path), "%s/host.txt", conn->dir);
    CHECK(access(path, F_OK) != 0);
    /* Escapes stay inside the export. */
    CHECK(p9_walk_path(c, 0, 7, "..", &q) == 0);
    CHECK(p9_getattr(c, 0, P9_GETATTR_BASIC, &a) == 0);
    CHECK(a.qid.path == q.path);
    if (mode == MODE_CO) {
        CHECK(stats(conn).offloads > 10);
    }
    conn_free(conn);
}

/* ---- API errors ---- */

static void t_api_errors(void)
{
    QrsP9Config cfg, bad;
    QrsP9Transport half = { .reply_buffers = t_reply_buffers };
    QrsP9Backend *b = NULL;
    QrsP9Server *s = NULL;
    QrsP9Request *req = NULL;
    QrsP9Stats st;
    QrsP9BackendOps ops;
    struct iovec iov = { NULL, 5 };
    char tmpl[] = "/tmp/qrs-p9file.XXXXXX";
    int fd;
    Conn *conn;

    qrs_p9_config_init(NULL);
    qrs_p9_config_init(&cfg);
    CHECK(cfg.msize_max == (1024 - 2) * 4096);
    CHECK(cfg.versions == (QRS_P9_VERSION_DOTL | QRS_P9_VERSION_DOTU));
    CHECK(cfg.multidevs == QRS_P9_MULTIDEVS_WARN);
    CHECK(cfg.max_xattr == 1024 && cfg.fids_max > 0 && cfg.threads == 0);
    CHECK(cfg.readonly == 0 && cfg.open_high_water == 0);

    qrs_p9_backend_free(NULL);
    qrs_p9_server_free(NULL);
    CHECK(qrs_p9_server_reset(NULL) == -EINVAL);
    CHECK(qrs_p9_server_stats(NULL, &st) == -EINVAL);
    CHECK(qrs_p9_submit(NULL, NULL, NULL, 0) == -EINVAL);
    CHECK(qrs_p9_receive(NULL, NULL, NULL, 0, &req) == -EINVAL);
    qrs_p9_handle(NULL, NULL);

    CHECK(qrs_p9_backend_native_new(NULL, QRS_P9_SECURITY_NONE, &b) == -EINVAL);
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, NULL) == -EINVAL);
    CHECK(qrs_p9_backend_native_new("/tmp", 9, &b) == -EINVAL);
    b = NULL;
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_MAPPED_XATTR, &b) == 0);
    qrs_p9_backend_free(b);
    b = NULL;
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_MAPPED_FILE, &b) == 0);
    qrs_p9_backend_free(b);
    CHECK(qrs_p9_backend_native_new("/nonexistent/qrs", QRS_P9_SECURITY_NONE, &b) == -ENOENT);

    /* With options: NULL, an unknown model, modes beyond 0777 refused. */
    {
        QrsP9NativeOpts o = {
            .model = QRS_P9_SECURITY_MAPPED_FILE,
            .fmode = QRS_P9_NATIVE_FMODE_DEFAULT,
            .dmode = QRS_P9_NATIVE_DMODE_DEFAULT,
        };
        CHECK(QRS_P9_NATIVE_FMODE_DEFAULT == 0600 && QRS_P9_NATIVE_DMODE_DEFAULT == 0700);
        CHECK(qrs_p9_backend_native_new_opts("/tmp", NULL, &b) == -EINVAL);
        CHECK(qrs_p9_backend_native_new_opts(NULL, &o, &b) == -EINVAL);
        CHECK(qrs_p9_backend_native_new_opts("/tmp", &o, NULL) == -EINVAL);
        o.fmode = 01644;
        CHECK(qrs_p9_backend_native_new_opts("/tmp", &o, &b) == -EINVAL);
        o.fmode = 0644;
        o.dmode = 04755;
        CHECK(qrs_p9_backend_native_new_opts("/tmp", &o, &b) == -EINVAL);
        o.dmode = 0755;
        o.model = 9;
        CHECK(qrs_p9_backend_native_new_opts("/tmp", &o, &b) == -EINVAL);
        o.model = QRS_P9_SECURITY_MAPPED_XATTR;
        b = NULL;
        CHECK(qrs_p9_backend_native_new_opts("/tmp", &o, &b) == 0 && b);
        qrs_p9_backend_free(b);
        CHECK(qrs_p9_backend_native_new_opts("/nonexistent/qrs", &o, &b) == -ENOENT);
    }
    fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    CHECK(qrs_p9_backend_native_new(tmpl, QRS_P9_SECURITY_NONE, &b) == -ENOTDIR);
    close(fd);
    unlink(tmpl);

    /* The C backend: NULL ops or out, or a required function missing. */
    CHECK(qrs_p9_backend_c_new(NULL, NULL, &b) == -EINVAL);
    memset(&ops, 0, sizeof(ops));
    CHECK(qrs_p9_backend_c_new(&ops, NULL, NULL) == -EINVAL);
    b = NULL;
    CHECK(qrs_p9_backend_c_new(&ops, NULL, &b) == -EINVAL);
    qrs_p9_backend_free(b);     /* in case it was wrongly made */

    /* Invalid configs are refused (the backend is taken anyway). */
#define REFUSED(field, value)                                              \
    do {                                                                   \
        bad = cfg;                                                         \
        bad.field = (value);                                               \
        b = NULL;                                                          \
        CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, &b) == 0); \
        s = NULL;                                                          \
        CHECK(qrs_p9_server_new(&bad, b, &transport, NULL, &s) == -EINVAL); \
        CHECK(s == NULL);                                                  \
    } while (0)
    REFUSED(msize_max, 100);
    REFUSED(msize_max, 4095);
    REFUSED(versions, 0);
    REFUSED(versions, 4);
    REFUSED(multidevs, 7);
    REFUSED(fids_max, 0);
#undef REFUSED
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, &b) == 0);
    CHECK(qrs_p9_server_new(NULL, b, &transport, NULL, &s) == -EINVAL);
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, &b) == 0);
    CHECK(qrs_p9_server_new(&cfg, b, NULL, NULL, &s) == -EINVAL);
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, &b) == 0);
    CHECK(qrs_p9_server_new(&cfg, b, &half, NULL, &s) == -EINVAL);
    CHECK(qrs_p9_backend_native_new("/tmp", QRS_P9_SECURITY_NONE, &b) == 0);
    CHECK(qrs_p9_server_new(&cfg, b, &transport, NULL, NULL) == -EINVAL);
    CHECK(qrs_p9_server_new(&cfg, NULL, &transport, NULL, &s) == -EINVAL);

    /* A live coroutine-mode server: submit is refused, bad iovecs too. */
    conn = conn_new(MODE_CO, true);
    CHECK(qrs_p9_submit(conn->server, NULL, &iov, 0) == -EOPNOTSUPP);
    CHECK(qrs_p9_receive(conn->server, NULL, NULL, 1, &req) == -EINVAL);
    CHECK(qrs_p9_receive(conn->server, NULL, &iov, 1, &req) == -EINVAL);
    CHECK(qrs_p9_receive(conn->server, NULL, &iov, 0, NULL) == -EINVAL);
    CHECK(qrs_p9_server_stats(conn->server, NULL) == -EINVAL);
    qrs_p9_handle(conn->server, NULL);
    CHECK(stats(conn).active == 0);
    conn_free(conn);
    conn = conn_new(MODE_THREAD, true);
    CHECK(qrs_p9_submit(conn->server, NULL, NULL, 1) == -EINVAL);
    CHECK(qrs_p9_submit(conn->server, NULL, &iov, 1) == -EINVAL);
    CHECK(stats(conn).active == 0);
    conn_free(conn);
}


/* ---- Tflushes naming Tflushes ---- */

/*
 * Receive a request without running it yet: coroutine mode creates its
 * coroutine only in conn_start() (a host may receive several requests in
 * arrival order before running any); thread mode submits it.
 */
static Pdu *conn_queue(Conn *conn, const uint8_t *req, size_t len)
{
    Pdu *pdu;
    int r;

    if (conn->mode == MODE_THREAD) {
        return conn_send(conn, req, len);
    }
    pdu = calloc(1, sizeof(*pdu));
    pdu->conn = conn;
    pdu->req = malloc(len);
    memcpy(pdu->req, req, len);
    pdu->req_iov[0].iov_base = pdu->req;
    pdu->req_iov[0].iov_len = len;
    r = qrs_p9_receive(conn->server, pdu, pdu->req_iov, 1, &pdu->r);
    CHECK(r == 0);
    if (r != 0) {
        free(pdu->req);
        free(pdu);
        return NULL;
    }
    return pdu;
}

static void conn_start(Conn *conn, Pdu *pdu)
{
    if (conn->mode == MODE_CO && pdu) {
        co_enter(co_create(co_handle, pdu));
    }
}

/* Wait (bounded) for @pdu without waiting for every coroutine. */
static bool conn_wait_one(Conn *conn, Pdu *pdu)
{
    struct timespec ts = { 0, 1000 * 1000 };
    int i;

    for (i = 0; i < WAIT_SECONDS * 1000; i++) {
        if (__atomic_load_n(&pdu->done, __ATOMIC_SEQ_CST)) {
            return true;
        }
        if (conn->mode == MODE_CO) {
            cohome_poll(cohome_self(), 100);
        }
        nanosleep(&ts, NULL);
    }
    CHECK(pdu->done);
    return false;
}

static Pdu *send_tread(Conn *conn, uint16_t tag, uint32_t fid, bool queue)
{
    uint8_t buf[64];
    P9Msg m;
    size_t len;

    p9m_begin(&m, buf, sizeof(buf), P9_TREAD, tag);
    p9m_u32(&m, fid);
    p9m_u64(&m, 0);
    p9m_u32(&m, 8);
    len = p9m_end(&m);
    return queue ? conn_queue(conn, buf, len) : conn_send(conn, buf, len);
}

static Pdu *send_getattr(Conn *conn, uint16_t tag)
{
    uint8_t buf[64];
    P9Msg m;
    size_t len;

    p9m_begin(&m, buf, sizeof(buf), P9_TGETATTR, tag);
    p9m_u32(&m, 0);
    p9m_u64(&m, P9_GETATTR_BASIC);
    len = p9m_end(&m);
    return conn_send(conn, buf, len);
}

enum { MAX_FLUSHES = 8 };

/*
 * Tflushes (tag, oldtag) received back to back before any runs: thread
 * mode holds both server threads in blocking reads meanwhile; coroutine
 * mode receives them all, then starts their coroutines.  Each must end
 * with its Rflush (as in 9p.c, even one a later Tflush named), and the
 * Tflush a later one named answers first.  Later requests are answered
 * and the server resets.
 */
static void flush_scenario(Mode mode, const uint16_t (*fl)[2], int n)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    Pdu *blk[2] = { NULL, NULL }, *p[MAX_FLUSHES];
    P9Attr a;
    uint8_t buf[64];
    P9Reader r;
    int i, j;

    session(conn);
    if (mode == MODE_THREAD) {
        for (i = 0; i < 2; i++) {
            CHECK(p9_walk_path(c, 0, 1 + i, "Flush/BlockingRead", NULL) == 0);
            CHECK(p9_lopen(c, 1 + i, L_RDONLY, NULL, NULL) == 0);
            blk[i] = send_tread(conn, 40000 + i, 1 + i, false);
        }
        CHECK(p9synth_wait_blocking_entered(conn->synth, 2) == 0);
    }
    for (i = 0; i < n; i++) {
        p[i] = conn_queue(conn, buf, tflush(buf, sizeof(buf), fl[i][0], fl[i][1]));
    }
    for (i = 0; i < n; i++) {
        conn_start(conn, p[i]);
    }
    if (mode == MODE_THREAD) {
        p9synth_release_blocking(conn->synth);
        for (i = 0; i < 2; i++) {
            if (blk[i] && conn_wait_one(conn, blk[i])) {
                CHECK(p9_parse_reply(blk[i]->reply, blk[i]->reply_len, 40000 + i,
                                     P9_TREAD + 1, &r) == 0);
            }
            pdu_free(blk[i]);
        }
    }
    for (i = 0; i < n; i++) {
        if (p[i] && conn_wait_one(conn, p[i])) {
            CHECK(p9_parse_reply(p[i]->reply, p[i]->reply_len, fl[i][0], P9_RFLUSH, &r) == 0);
        }
    }
    /* Order: the Tflush a later one named (sent before it) answers first. */
    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (p[i] && p[j] && p[i]->done && fl[j][0] == fl[i][1]) {
                CHECK(p[j]->done && p[j]->seq < p[i]->seq);
            }
        }
    }
    CHECK(p9_getattr(c, 0, P9_GETATTR_BASIC, &a) == 0);
    for (i = 0; i < n; i++) {
        pdu_free(p[i]);
    }
    CHECK(wait_idle(conn));
    conn_free(conn);
}

static void t_flush_cycles(Mode mode)
{
    static const uint16_t mutual[][2] = { { 41001, 41002 }, { 41002, 41001 } };
    static const uint16_t cycle3[][2] = {
        { 41011, 41013 }, { 41012, 41011 }, { 41013, 41012 } };
    static const uint16_t forward[][2] = {
        { 41021, 41022 }, { 41022, 41023 }, { 41023, 41024 }, { 41024, 41025 } };
    static const uint16_t backward[][2] = {
        { 41031, 41030 }, { 41032, 41031 }, { 41033, 41032 }, { 41034, 41033 } };
    static const uint16_t mixed[][2] = {
        { 41041, 41045 }, { 41042, 41041 }, { 41043, 41043 }, { 41044, 41042 },
        { 41045, 41044 }, { 41046, 41041 }, { 41047, 41046 }, { 41048, 41047 } };

    alarm(120);                 /* a deadlock fails the run, not hangs it */
    flush_scenario(mode, mutual, 2);
    flush_scenario(mode, cycle3, 3);
    flush_scenario(mode, forward, 4);
    flush_scenario(mode, backward, 4);
    flush_scenario(mode, mixed, 8);
    alarm(0);
}

/*
 * Tflushes of Tflushes of a read blocked in the backend: another request
 * is answered while they wait (thread mode: they hold no thread);
 * released, the read replies first, then the last Tflush's Rflush.
 */
static void t_flush_of_flush(Mode mode)
{
    Conn *conn = conn_new(mode, false);
    P9Client *c = &conn->c;
    Pdu *rd, *f[3], *g;
    uint8_t buf[64];
    P9Reader r;
    int i;

    alarm(120);
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    rd = send_tread(conn, 42000, 1, false);
    CHECK(p9synth_wait_blocking_entered(conn->synth, 1) == 0);
    for (i = 0; i < 3; i++) {
        f[i] = conn_send(conn, buf, tflush(buf, sizeof(buf), 42001 + i, 42000 + i));
    }
    g = send_getattr(conn, 42010);
    if (g && conn_wait_one(conn, g)) {
        CHECK(p9_parse_reply(g->reply, g->reply_len, 42010, P9_TGETATTR + 1, &r) == 0);
    }
    CHECK(rd && !rd->done);
    for (i = 0; i < 3; i++) {
        CHECK(f[i] && !f[i]->done);
    }
    p9synth_release_blocking(conn->synth);
    if (rd && conn_wait_one(conn, rd)) {
        /* It was in its backend call: it replies (Rread, or EINTR). */
        CHECK(rd->reply_len > 0);
    }
    for (i = 0; i < 3; i++) {
        if (f[i] && conn_wait_one(conn, f[i])) {
            CHECK(p9_parse_reply(f[i]->reply, f[i]->reply_len, 42001 + i, P9_RFLUSH, &r) == 0);
            /* The read, then each Tflush in turn. */
            CHECK(rd && rd->seq < f[i]->seq);
            CHECK(i == 0 || (f[i - 1] && f[i - 1]->seq < f[i]->seq));
        }
    }
    pdu_free(rd);
    pdu_free(g);
    for (i = 0; i < 3; i++) {
        pdu_free(f[i]);
    }
    CHECK(wait_idle(conn));
    conn_free(conn);
    alarm(0);
}

/* ---- thread mode: a shared pool, bounds, shutdown ---- */

/* Submit without CHECKing the result; the Pdu is freed on failure. */
static int try_submit(Conn *conn, const uint8_t *req, size_t len, Pdu **out)
{
    Pdu *pdu = calloc(1, sizeof(*pdu));
    int r;

    pdu->conn = conn;
    pdu->req = malloc(len);
    memcpy(pdu->req, req, len);
    pdu->req_iov[0].iov_base = pdu->req;
    pdu->req_iov[0].iov_len = len;
    r = qrs_p9_submit(conn->server, pdu, pdu->req_iov, 1);
    if (r != 0) {
        free(pdu->req);
        free(pdu);
        pdu = NULL;
    }
    *out = pdu;
    return r;
}

static size_t tread_msg(uint8_t *buf, size_t cap, uint16_t tag, uint32_t fid, uint32_t count)
{
    P9Msg m;

    p9m_begin(&m, buf, cap, P9_TREAD, tag);
    p9m_u32(&m, fid);
    p9m_u64(&m, 0);
    p9m_u32(&m, count);
    return p9m_end(&m);
}

/*
 * One pool for two servers: both are served; with the pool's only thread
 * blocked by server A, a flood queued on A does not delay B's request
 * behind it (round robin); freeing the pool's handle first leaves the
 * servers working.
 */
static void t_pool(void)
{
    QrsP9Pool *pool = NULL;
    Conn *a, *b;
    Pdu *rd, *flood[50], *mine;
    P9Attr attr;
    P9Reader r;
    unsigned earlier = 0;
    int i;

    CHECK(qrs_p9_pool_new(1, NULL) == -EINVAL);
    CHECK(qrs_p9_pool_threads(NULL) == 0);
    qrs_p9_pool_free(NULL);
    {
        QrsP9Config cfg;
        QrsP9Backend *be = NULL;
        QrsP9Server *srv = NULL;
        P9Synth *syn = p9synth_new();

        qrs_p9_config_init(&cfg);
        CHECK(p9synth_backend_new(syn, &be) == 0);
        /* NULL pool: -EINVAL, and the backend is taken (ASan: no leak). */
        CHECK(qrs_p9_server_new_on_pool(&cfg, NULL, be, &transport, NULL, &srv) == -EINVAL);
        CHECK(srv == NULL);
        p9synth_free(syn);
    }
    CHECK(qrs_p9_pool_new(1, &pool) == 0);
    CHECK(qrs_p9_pool_threads(pool) == 1);
    conn_pool = pool;
    a = conn_new(MODE_THREAD, false);
    b = conn_new(MODE_THREAD, false);
    conn_pool = NULL;
    session(a);
    session(b);
    CHECK(p9_walk_path(&a->c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(&a->c, 1, L_RDONLY, NULL, NULL) == 0);
    rd = send_tread(a, 43000, 1, false);
    CHECK(p9synth_wait_blocking_entered(a->synth, 1) == 0);
    for (i = 0; i < 50; i++) {
        flood[i] = send_getattr(a, 43100 + i);
    }
    mine = send_getattr(b, 43001);
    /* The pool's only thread is A's: B waits. */
    {
        struct timespec ts = { 0, 50 * 1000 * 1000 };

        nanosleep(&ts, NULL);
    }
    CHECK(mine && !mine->done);
    /* The servers keep the pool. */
    qrs_p9_pool_free(pool);
    p9synth_release_blocking(a->synth);
    if (rd && conn_wait(a, rd)) {
        CHECK(p9_parse_reply(rd->reply, rd->reply_len, 43000, P9_TREAD + 1, &r) == 0);
    }
    if (mine && conn_wait(b, mine)) {
        CHECK(p9_parse_reply(mine->reply, mine->reply_len, 43001, P9_TGETATTR + 1, &r) == 0);
    }
    for (i = 0; i < 50; i++) {
        if (flood[i] && conn_wait(a, flood[i])) {
            CHECK(p9_parse_reply(flood[i]->reply, flood[i]->reply_len, 43100 + i,
                                 P9_TGETATTR + 1, &r) == 0);
            earlier += mine && flood[i]->gseq < mine->gseq;
        }
        pdu_free(flood[i]);
    }
    /* Round robin: at most one of A's flood before B's one request. */
    CHECK(earlier <= 1);
    pdu_free(rd);
    pdu_free(mine);
    CHECK(p9_getattr(&b->c, 0, P9_GETATTR_BASIC, &attr) == 0);
    CHECK(wait_idle(a) && wait_idle(b));
    conn_free(a);
    /* The last server on the pool joins its thread. */
    conn_free(b);
}

/*
 * The room hook runs on the server thread just after the request that made
 * room is counted finished, so after wait_idle() it may still be on its
 * way: wait for room_calls to reach want (or the usual time out), and
 * return it.
 */
static unsigned wait_room_calls(unsigned want)
{
    struct timespec ts = { 0, 1000 * 1000 };
    unsigned n = 0;
    int i;

    for (i = 0; i < WAIT_SECONDS * 1000; i++) {
        n = __atomic_load_n(&room_calls, __ATOMIC_SEQ_CST);
        if (n >= want) {
            break;
        }
        nanosleep(&ts, NULL);
    }
    return n;
}

/*
 * Bounds: beyond max_requests, or max_bytes (a Tread costs its count),
 * qrs_p9_submit says -EAGAIN and takes nothing; the room hook and
 * qrs_p9_server_wait_room tell when to retry.  Shutdown: queued requests
 * complete unrun with no reply, the running one finishes, later submits
 * fail with -EPIPE.
 */
static void t_backpressure(void)
{
    QrsP9Config cfg;
    Conn *conn;
    P9Client *c;
    Pdu *p[8], *extra = NULL;
    uint8_t buf[64];
    QrsP9Stats st;
    unsigned rooms, io;
    size_t len;
    int i;

    alarm(120);
    CHECK(qrs_p9_server_wait_room(NULL, 0, 0) == -EINVAL);
    CHECK(qrs_p9_server_shutdown(NULL) == -EINVAL);
    qrs_p9_config_init(&cfg);
    CHECK(cfg.max_requests == QRS_P9_MAX_REQUESTS_DEFAULT);
    CHECK(cfg.max_bytes == QRS_P9_MAX_BYTES_DEFAULT);
    cfg.max_requests = 3;
    conn = conn_new_full(MODE_THREAD, CONN_ROOM, &cfg);
    c = &conn->c;
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(wait_idle(conn));
    for (i = 0; i < 3; i++) {
        CHECK(try_submit(conn, buf, tread_msg(buf, sizeof(buf), 44000 + i, 1, 8), &p[i]) == 0);
    }
    CHECK(p9synth_wait_blocking_entered(conn->synth, 2) == 0);
    rooms = __atomic_load_n(&room_calls, __ATOMIC_SEQ_CST);
    len = tread_msg(buf, sizeof(buf), 44010, 1, 8);
    CHECK(try_submit(conn, buf, len, &extra) == -EAGAIN);
    CHECK(extra == NULL);
    st = stats(conn);
    CHECK(st.refused == 1 && st.active == 3);
    CHECK(qrs_p9_server_wait_room(conn->server, 0, 50) == -ETIMEDOUT);
    CHECK(__atomic_load_n(&room_calls, __ATOMIC_SEQ_CST) == rooms);
    p9synth_release_blocking(conn->synth);
    CHECK(qrs_p9_server_wait_room(conn->server, 0, 10000) == 0);
    for (i = 0; i < 3; i++) {
        if (p[i] && conn_wait(conn, p[i])) {
            CHECK(p[i]->reply_len > 0);
        }
        pdu_free(p[i]);
    }
    CHECK(wait_idle(conn));
    CHECK(wait_room_calls(rooms + 1) == rooms + 1);
    CHECK(try_submit(conn, buf, len, &extra) == 0);
    if (extra && conn_wait(conn, extra)) {
        CHECK(extra->reply_len > 0);
    }
    pdu_free(extra);
    CHECK(wait_idle(conn));
    conn_free(conn);

    /* Bytes: a Tread costs its count. */
    qrs_p9_config_init(&cfg);
    cfg.max_requests = 0;
    cfg.max_bytes = 1000;
    conn = conn_new_cfg(MODE_THREAD, false, &cfg);
    c = &conn->c;
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(wait_idle(conn));
    len = tread_msg(buf, sizeof(buf), 44100, 1, 600);
    CHECK(try_submit(conn, buf, len, &p[0]) == 0);
    CHECK(p9synth_wait_blocking_entered(conn->synth, 1) == 0);
    CHECK(stats(conn).inflight_bytes == len + 600);
    CHECK(try_submit(conn, buf, tread_msg(buf, sizeof(buf), 44101, 1, 600), &p[1]) == -EAGAIN);
    /* Small ones still fit. */
    CHECK(try_submit(conn, buf, tread_msg(buf, sizeof(buf), 44102, 1, 10), &p[1]) == 0);
    p9synth_release_blocking(conn->synth);
    for (i = 0; i < 2; i++) {
        if (p[i]) {
            conn_wait(conn, p[i]);
        }
        pdu_free(p[i]);
    }
    CHECK(wait_idle(conn));
    CHECK(stats(conn).inflight_bytes == 0);
    conn_free(conn);

    /* Shutdown drops the queued requests. */
    conn = conn_new(MODE_THREAD, false);
    c = &conn->c;
    session(conn);
    CHECK(p9_walk_path(c, 0, 1, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 1, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 2, "Flush/BlockingRead", NULL) == 0);
    CHECK(p9_lopen(c, 2, L_RDONLY, NULL, NULL) == 0);
    CHECK(p9_walk_path(c, 0, 3, "WriteFileSyscall", NULL) == 0);
    CHECK(p9_lopen(c, 3, L_RDWR, NULL, NULL) == 0);
    CHECK(wait_idle(conn));
    /* Both threads blocked, then writes queued behind them. */
    p[0] = send_tread(conn, 44200, 1, false);
    p[1] = send_tread(conn, 44201, 2, false);
    CHECK(p9synth_wait_blocking_entered(conn->synth, 2) == 0);
    io = p9synth_io_calls(conn->synth);
    for (i = 2; i < 8; i++) {
        p[i] = conn_send(conn, buf, twrite(buf, sizeof(buf), 44200 + i, 3, "abc", 3));
    }
    CHECK(qrs_p9_server_shutdown(conn->server) == 0);
    CHECK(try_submit(conn, buf, len, &extra) == -EPIPE);
    /* The dropped ones complete (no reply) on a server thread, once one
     * is free. */
    p9synth_release_blocking(conn->synth);
    for (i = 0; i < 8; i++) {
        if (p[i] && conn_wait(conn, p[i])) {
            if (i < 2) {
                CHECK(p[i]->reply_len > 0);     /* was running: replies */
            } else {
                CHECK(p[i]->reply_len == 0);    /* dropped: no reply */
            }
        }
        pdu_free(p[i]);
    }
    CHECK(p9synth_io_calls(conn->synth) == io);  /* no write ran */
    CHECK(wait_idle(conn));
    st = stats(conn);
    CHECK(st.cancelled >= 6);
    conn_free(conn);
    alarm(0);
}

#define BOTH(fn)                                                           \
    static void fn##_thread(void) { fn(MODE_THREAD); }                     \
    static void fn##_co(void) { fn(MODE_CO); }
#define ENTRIES(fn) { #fn "/thread", fn##_thread }, { #fn "/coroutine", fn##_co }

BOTH(t_version_attach)
BOTH(t_walk)
BOTH(t_getattr_statfs)
BOTH(t_open_read_write)
BOTH(t_readdir)
BOTH(t_xattr)
BOTH(t_xattr_limit)
BOTH(t_create_remove)
BOTH(t_flush)
BOTH(t_reset)
BOTH(t_bad_messages)
BOTH(t_dotl_only)
BOTH(t_native)
BOTH(t_readonly)
BOTH(t_eintr)
BOTH(t_fstat)
BOTH(t_st_gen)
BOTH(t_padded)
BOTH(t_no_lock_across_reply_buffers)
BOTH(t_hooks)
BOTH(t_flush_cycles)
BOTH(t_flush_of_flush)

static void on_alarm(int sig)
{
    static const char msg[] = "p9_test: stuck (deadlock?)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        _exit(3);
    }
    _exit(3);
}

/*
 * A backend call that blocks for a long time (an NFS export, a stuck FUSE
 * mount) must not stall every other request: 32 Treads whose backend read
 * blocks must all be in the backend at once, although the pool started
 * with 2 workers (with a fixed pool only 2 would ever enter, and 32 reads
 * of 100 ms would take 16 rounds).
 */
enum { SLOW_READS = 32 };

static void t_slow_backend(void)
{
    Conn *conn = conn_new(MODE_CO, false);
    P9Client *c = &conn->c;
    Pdu *rd[SLOW_READS];
    QrsOffloadStats before, after;
    uint8_t buf[64];
    P9Msg m;
    P9Reader r;
    size_t len;
    int i;

    session(conn);
    for (i = 0; i < SLOW_READS; i++) {
        CHECK(p9_walk_path(c, 0, 10 + i, "Flush/BlockingRead", NULL) == 0);
        CHECK(p9_lopen(c, 10 + i, L_RDONLY, NULL, NULL) == 0);
    }
    CHECK(qrs_offload_stats(&before) == 0);
    for (i = 0; i < SLOW_READS; i++) {
        p9m_begin(&m, buf, sizeof(buf), P9_TREAD, 200 + i);
        p9m_u32(&m, 10 + i);
        p9m_u64(&m, 0);
        p9m_u32(&m, 64);
        len = p9m_end(&m);
        rd[i] = conn_send(conn, buf, len);
    }
    CHECK(p9synth_wait_blocking_entered(conn->synth, SLOW_READS) == 0);
    CHECK(qrs_offload_stats(&after) == 0);
    CHECK(after.threads >= SLOW_READS && after.threads <= after.max_threads);
    CHECK(after.spawned - before.spawned >= SLOW_READS - before.threads);
    p9synth_release_blocking(conn->synth);
    for (i = 0; i < SLOW_READS; i++) {
        if (rd[i] && conn_wait(conn, rd[i])) {
            CHECK(p9_parse_reply(rd[i]->reply, rd[i]->reply_len, 200 + i,
                                 P9_TREAD + 1, &r) == 0);
        }
        pdu_free(rd[i]);
    }
    CHECK(wait_idle(conn));
    conn_free(conn);
}

int main(void)
{
    static const TestCase tests[] = {
        { "api_errors", t_api_errors },
        ENTRIES(t_native),
        ENTRIES(t_readonly),
        ENTRIES(t_version_attach),
        ENTRIES(t_bad_messages),
        ENTRIES(t_dotl_only),
        ENTRIES(t_walk),
        ENTRIES(t_getattr_statfs),
        ENTRIES(t_open_read_write),
        ENTRIES(t_readdir),
        ENTRIES(t_xattr),
        ENTRIES(t_xattr_limit),
        ENTRIES(t_create_remove),
        ENTRIES(t_flush),
        { "t_flush_queued/thread", t_flush_queued },
        ENTRIES(t_flush_cycles),
        ENTRIES(t_flush_of_flush),
        { "t_pool/thread", t_pool },
        { "t_backpressure/thread", t_backpressure },
        ENTRIES(t_reset),
        ENTRIES(t_eintr),
        ENTRIES(t_fstat),
        ENTRIES(t_st_gen),
        ENTRIES(t_padded),
        ENTRIES(t_no_lock_across_reply_buffers),
        ENTRIES(t_hooks),
        { "t_slow_backend/co", t_slow_backend },
    };
    int failed;

    signal(SIGALRM, on_alarm);
    cohost_register();
    if (qrs_offload_start(2) != 2) {
        BAIL_OUT("qrs_offload_start failed");
    }
    failed = run_tests("p9", tests, sizeof(tests) / sizeof(tests[0]));
    qrs_offload_stop();
    cohost_thread_cleanup();
    return failed != 0;
}
