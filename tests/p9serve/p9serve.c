/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * p9serve: serve a host directory over 9P on a stream socket, with only
 * libqemurs.a and include/qemurs.h (the native backend, thread mode).
 *
 *   p9serve [--threads N]
 *           [--security none|passthrough|mapped-xattr|mapped|mapped-file]
 *           [--msize N] [--once]
 *           [--max-connections N] [--max-requests N] [--max-bytes N]
 *           [--private-pools] (--unix PATH | --tcp HOST:PORT) DIR
 *
 * Framing is plain 9P as Linux's trans=fd/tcp uses it: every message starts
 * with its own little-endian size[4].  A 9P session belongs to a connection:
 * one server per connection, all of them on one shared pool of --threads
 * request threads (--private-pools: a pool of --threads threads per
 * connection instead, the old design, kept for comparison).
 *
 * Threads: the main thread (waits for SIGINT/SIGTERM), one event-loop
 * thread (epoll: accepts, reads every connection, writes replies a
 * connection could not take at once), one reaper thread (frees the
 * servers of closed connections, which waits for their running requests),
 * and the pool: --threads + 3 in all, whatever the number of connections.
 * Replies are written by the pool's threads without blocking; what a
 * connection cannot take yet is queued and written by the event loop.
 *
 * Bounds, per connection: at most --max-requests requests and --max-bytes
 * bytes in flight (QrsP9Config.max_requests / max_bytes: a request costs
 * its bytes plus, for Tread/Treaddir, its count), and at most as many
 * replies and reply bytes not yet written.  At a bound p9serve stops reading the
 * connection (the client's writes block) until there is room again;
 * besides, a connection holds at most one frame being read (up to msize)
 * and 64 KiB read past a frame that did not fit.  At most
 * --max-connections connections: one more is accepted and closed at once
 * (the client reads EOF).  A connection that reaches EOF or fails is taken
 * as gone: its queued requests are dropped unrun, its running ones finish.
 *
 * Prints "p9serve: listening on ..." once ready.  SIGINT/SIGTERM stop it
 * cleanly (connections closed, servers freed); --once exits after the
 * first connection closes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qemurs.h"

enum { READ_CHUNK = 64 * 1024, MAX_EVENTS = 64 };

/* One request: its bytes and, once asked for, its reply buffer; while its
 * reply waits to be written, it sits in its connection's out queue. */
struct pdu {
    struct pdu *next;           /* out queue */
    uint8_t *req;
    struct iovec req_iov;
    uint8_t *reply;
    struct iovec reply_iov;
    size_t out_off, out_len;    /* reply bytes written, and its length */
};

struct conn {
    struct conn *next, *prev;   /* live connections (event loop only) */
    int fd;
    QrsP9Server *server;

    /* Event loop only. */
    uint8_t hdr[4];
    unsigned hdr_got;
    struct pdu *cur;            /* frame being read */
    size_t cur_size, cur_got;
    struct pdu *refused;        /* a whole frame qrs_p9_submit refused */
    uint8_t *rest;              /* bytes read past it */
    size_t rest_len;
    bool dead;                  /* closed, handed to the reaper */
    struct conn *reap_next;

    /* Under lock (shared with the pool's threads). */
    pthread_mutex_t lock;
    uint32_t events;            /* registered with epoll */
    bool paused;                /* reading stopped: a frame was refused */
    bool room;                  /* the server has room for it again */
    bool closing;               /* no more writes or epoll changes */
    bool write_failed;
    struct pdu *out_head, *out_tail;
    size_t out_bytes;           /* reply bytes not yet written */
    uint32_t out_count;         /* replies not yet (fully) written */
};

static QrsP9Config config;
static uint32_t security = QRS_P9_SECURITY_NONE;
static const char *root_dir;
static bool once;
static bool private_pools;
static uint32_t max_connections = 256;
static QrsP9Pool *pool;
static int listen_fd = -1;
static int epfd = -1;
static int stop_fd = -1;        /* eventfd: stop the event loop */
static int spare_fd = -1;       /* given up to accept (and close) at EMFILE */
static pthread_t main_thread;

/* Event loop only. */
static struct conn *conns;
static uint32_t nconns;
static bool accepted_once;
static uint8_t loop_buf[READ_CHUNK];

/* The reaper's queue. */
static pthread_mutex_t reap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reap_cond = PTHREAD_COND_INITIALIZER;
static struct conn *reap_head;
static bool reap_stop;

static void die(const char *what, int err)
{
    fprintf(stderr, "p9serve: %s: %s\n", what, strerror(err));
    exit(1);
}

static void pdu_free(struct pdu *pdu)
{
    free(pdu->req);
    free(pdu->reply);
    free(pdu);
}

/* ----- epoll interest (under c->lock) ----- */

static void update_events(struct conn *c)
{
    uint32_t ev = 0;
    bool backlog = (config.max_bytes && c->out_bytes >= config.max_bytes) ||
                   (config.max_requests && c->out_count >= config.max_requests);

    if (c->closing) {
        return;
    }
    if (!c->paused && !backlog) {
        ev |= EPOLLIN;
    }
    /* EPOLLOUT also wakes the loop to resubmit a refused frame. */
    if (c->out_head || c->room) {
        ev |= EPOLLOUT;
    }
    if (ev != c->events) {
        struct epoll_event e = { .events = ev, .data.ptr = c };

        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) == 0) {
            c->events = ev;
        }
    }
}

/* ----- writing (under c->lock) ----- */

/* The peer cannot take replies any more: the session is lost. */
static void write_failed(struct conn *c)
{
    c->write_failed = true;
    while (c->out_head) {
        struct pdu *p = c->out_head;

        c->out_head = p->next;
        pdu_free(p);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->out_count = 0;
    /* The loop sees EPOLLHUP and closes the connection. */
    shutdown(c->fd, SHUT_RDWR);
}

/* Write queued replies until the socket is full. */
static void flush_out(struct conn *c)
{
    while (c->out_head) {
        struct pdu *p = c->out_head;
        ssize_t n = send(c->fd, p->reply + p->out_off, p->out_len - p->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                write_failed(c);
            }
            return;
        }
        p->out_off += (size_t)n;
        c->out_bytes -= (size_t)n;
        if (p->out_off < p->out_len) {
            return;
        }
        c->out_head = p->next;
        if (!c->out_head) {
            c->out_tail = NULL;
        }
        c->out_count--;
        pdu_free(p);
    }
}

/* ----- transport (the pool's threads) ----- */

static int32_t reply_buffers(void *opaque, void *pdu_, size_t size, const struct iovec **iov,
                             size_t *niov)
{
    struct pdu *pdu = pdu_;
    (void)opaque;
    /* Asked again: the reply goes in the last buffers given. */
    free(pdu->reply);
    pdu->reply = malloc(size ? size : 1);
    if (!pdu->reply) {
        pdu->reply_iov = (struct iovec){ 0 };
        return -ENOMEM;
    }
    pdu->reply_iov.iov_base = pdu->reply;
    pdu->reply_iov.iov_len = size;
    *iov = &pdu->reply_iov;
    *niov = 1;
    return 0;
}

static void complete(void *opaque, void *pdu_, size_t len)
{
    struct conn *c = opaque;
    struct pdu *pdu = pdu_;

    free(pdu->req);
    pdu->req = NULL;
    if (len == 0 || !pdu->reply) {
        pdu_free(pdu);
        return;
    }
    if (len > pdu->reply_iov.iov_len) {
        len = pdu->reply_iov.iov_len;
    }
    pdu->out_len = len;
    pthread_mutex_lock(&c->lock);
    if (c->closing || c->write_failed) {
        pthread_mutex_unlock(&c->lock);
        pdu_free(pdu);
        return;
    }
    pdu->next = NULL;
    if (c->out_tail) {
        c->out_tail->next = pdu;
    } else {
        c->out_head = pdu;
    }
    c->out_tail = pdu;
    c->out_bytes += len;
    c->out_count++;
    /* Replies go in order; usually this one goes out at once. */
    flush_out(c);
    update_events(c);
    pthread_mutex_unlock(&c->lock);
}

/* The server has room again after refusing a frame: wake the loop. */
static void room(void *opaque)
{
    struct conn *c = opaque;

    pthread_mutex_lock(&c->lock);
    c->room = true;
    update_events(c);
    pthread_mutex_unlock(&c->lock);
}

static const QrsP9Transport transport = {
    .reply_buffers = reply_buffers,
    .complete = complete,
    .room = room,
};

/* ----- connections (the event loop) ----- */

static void close_conn(struct conn *c, struct conn **reap)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    pthread_mutex_lock(&c->lock);
    c->closing = true;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    while (c->out_head) {
        struct pdu *p = c->out_head;

        c->out_head = p->next;
        pdu_free(p);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    c->out_count = 0;
    pthread_mutex_unlock(&c->lock);
    /* Queued requests are dropped unrun; running ones finish. */
    qrs_p9_server_shutdown(c->server);
    if (c->cur) {
        pdu_free(c->cur);
        c->cur = NULL;
    }
    if (c->refused) {
        pdu_free(c->refused);
        c->refused = NULL;
    }
    free(c->rest);
    c->rest = NULL;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    nconns--;
    /* Handed to the reaper after this round of events. */
    c->reap_next = *reap;
    *reap = c;
}

/* Submit a whole frame: true if taken; false if refused (kept, reading
 * paused until there is room) or if the connection was closed. */
static bool submit(struct conn *c, struct pdu *pdu, struct conn **reap)
{
    int32_t r = qrs_p9_submit(c->server, pdu, &pdu->req_iov, 1);

    if (r == 0) {
        return true;
    }
    if (r == -EAGAIN) {
        c->refused = pdu;
        pthread_mutex_lock(&c->lock);
        c->paused = true;
        update_events(c);
        pthread_mutex_unlock(&c->lock);
        return false;
    }
    /* complete is not called for a failed submit. */
    pdu_free(pdu);
    fprintf(stderr, "p9serve: qrs_p9_submit: %s\n", strerror(-r));
    close_conn(c, reap);
    return false;
}

/* Cut the bytes read into frames and submit them; on a refusal keep the
 * rest (at most one read's worth) for later. */
static void feed(struct conn *c, const uint8_t *p, size_t n, struct conn **reap)
{
    while (n > 0 && !c->dead) {
        size_t k;

        if (!c->cur) {
            uint32_t size;

            k = sizeof(c->hdr) - c->hdr_got;
            k = k < n ? k : n;
            memcpy(c->hdr + c->hdr_got, p, k);
            c->hdr_got += k;
            p += k;
            n -= k;
            if (c->hdr_got < sizeof(c->hdr)) {
                return;
            }
            c->hdr_got = 0;
            size = (uint32_t)c->hdr[0] | (uint32_t)c->hdr[1] << 8 |
                   (uint32_t)c->hdr[2] << 16 | (uint32_t)c->hdr[3] << 24;
            /* Bad framing cannot be resynchronised: drop the connection. */
            if (size < 7 || size > config.msize_max) {
                fprintf(stderr, "p9serve: bad message size %u, closing the connection\n", size);
                close_conn(c, reap);
                return;
            }
            c->cur = calloc(1, sizeof(*c->cur));
            if (c->cur) {
                c->cur->req = malloc(size);
            }
            if (!c->cur || !c->cur->req) {
                fprintf(stderr, "p9serve: out of memory, closing the connection\n");
                close_conn(c, reap);
                return;
            }
            memcpy(c->cur->req, c->hdr, sizeof(c->hdr));
            c->cur_size = size;
            c->cur_got = sizeof(c->hdr);
        }
        k = c->cur_size - c->cur_got;
        k = k < n ? k : n;
        memcpy(c->cur->req + c->cur_got, p, k);
        c->cur_got += k;
        p += k;
        n -= k;
        if (c->cur_got == c->cur_size) {
            struct pdu *pdu = c->cur;

            c->cur = NULL;
            pdu->req_iov = (struct iovec){ .iov_base = pdu->req, .iov_len = c->cur_size };
            if (!submit(c, pdu, reap)) {
                if (!c->dead && n > 0) {
                    c->rest = malloc(n);
                    if (!c->rest) {
                        close_conn(c, reap);
                        return;
                    }
                    memcpy(c->rest, p, n);
                    c->rest_len = n;
                }
                return;
            }
        }
    }
}

/* The server has room: resubmit the refused frame, then what followed. */
static void resume(struct conn *c, struct conn **reap)
{
    uint8_t *rest;
    size_t len;
    struct pdu *pdu = c->refused;

    if (!pdu || c->dead) {
        return;
    }
    c->refused = NULL;
    if (!submit(c, pdu, reap)) {
        return;
    }
    rest = c->rest;
    len = c->rest_len;
    c->rest = NULL;
    c->rest_len = 0;
    feed(c, rest, len, reap);
    free(rest);
    if (!c->refused && !c->dead) {
        pthread_mutex_lock(&c->lock);
        c->paused = false;
        update_events(c);
        pthread_mutex_unlock(&c->lock);
    }
}

static void on_conn_event(struct conn *c, uint32_t ev, struct conn **reap)
{
    if (c->dead) {
        return;
    }
    if (ev & EPOLLOUT) {
        bool again;

        pthread_mutex_lock(&c->lock);
        flush_out(c);
        again = c->room;
        c->room = false;
        update_events(c);
        pthread_mutex_unlock(&c->lock);
        if (again) {
            resume(c, reap);
        }
    }
    if (c->dead) {
        return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        ssize_t n;

        if (c->paused && !(ev & (EPOLLHUP | EPOLLERR))) {
            return;
        }
        n = recv(c->fd, loop_buf, sizeof(loop_buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return;
        }
        if (n <= 0) {
            /* EOF or an error: the peer is gone. */
            close_conn(c, reap);
            return;
        }
        if (c->paused) {
            /* Hung up with data left: nobody will read the replies. */
            close_conn(c, reap);
            return;
        }
        feed(c, loop_buf, (size_t)n, reap);
    }
}

static void accept_one(void)
{
    static time_t last_warning;
    QrsP9Backend *backend;
    struct conn *c;
    struct epoll_event e;
    int one = 1, r;
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
            /* Accept and close it, so that it does not stay pending. */
            if (spare_fd >= 0) {
                close(spare_fd);
                fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0) {
                    close(fd);
                }
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
        }
        return;
    }
    if (once && accepted_once) {
        close(fd);
        return;
    }
    if (nconns >= max_connections) {
        time_t now = time(NULL);

        if (now != last_warning) {
            last_warning = now;
            fprintf(stderr, "p9serve: %u connections (--max-connections): closing a new one\n",
                    nconns);
        }
        close(fd);
        return;
    }
    /* Fails harmlessly on Unix sockets. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    pthread_mutex_init(&c->lock, NULL);
    r = qrs_p9_backend_native_new(root_dir, security, &backend);
    if (r == 0) {
        r = private_pools ? qrs_p9_server_new(&config, backend, &transport, c, &c->server)
                          : qrs_p9_server_new_on_pool(&config, pool, backend, &transport, c,
                                                      &c->server);
    }
    if (r == 0) {
        c->events = EPOLLIN;
        e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
            r = -errno;
            qrs_p9_server_free(c->server);
        }
    }
    if (r < 0) {
        fprintf(stderr, "p9serve: new connection: %s\n", strerror(-r));
        pthread_mutex_destroy(&c->lock);
        free(c);
        close(fd);
        return;
    }
    c->next = conns;
    if (conns) {
        conns->prev = c;
    }
    conns = c;
    nconns++;
    if (once) {
        accepted_once = true;
    }
}

static void reap_push(struct conn *list)
{
    if (!list) {
        return;
    }
    pthread_mutex_lock(&reap_lock);
    while (list) {
        struct conn *c = list;

        list = c->reap_next;
        c->reap_next = reap_head;
        reap_head = c;
    }
    pthread_cond_signal(&reap_cond);
    pthread_mutex_unlock(&reap_lock);
}

static void *loop_thread(void *arg)
{
    struct epoll_event evs[MAX_EVENTS];
    bool stop = false;

    (void)arg;
    while (!stop) {
        struct conn *reap = NULL;
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait", errno);
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;

            if (p == &listen_fd) {
                accept_one();
            } else if (p == &stop_fd) {
                stop = true;
            } else {
                on_conn_event(p, evs[i].events, &reap);
            }
        }
        if (stop) {
            while (conns) {
                close_conn(conns, &reap);
            }
        }
        reap_push(reap);
    }
    return NULL;
}

static void *reaper_thread(void *arg)
{
    (void)arg;
    for (;;) {
        struct conn *c;

        pthread_mutex_lock(&reap_lock);
        while (!reap_head && !reap_stop) {
            pthread_cond_wait(&reap_cond, &reap_lock);
        }
        c = reap_head;
        if (!c) {
            pthread_mutex_unlock(&reap_lock);
            return NULL;
        }
        reap_head = c->reap_next;
        pthread_mutex_unlock(&reap_lock);
        /* Waits for the running requests; their replies are dropped. */
        qrs_p9_server_free(c->server);
        close(c->fd);
        pthread_mutex_destroy(&c->lock);
        free(c);
        if (once) {
            pthread_kill(main_thread, SIGTERM);
        }
    }
}

/* ----- setup ----- */

static int listen_unix(const char *path, char *desc, size_t desc_size)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "p9serve: socket path too long: %s\n", path);
        exit(2);
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    /* A stale socket from an earlier run; never remove anything else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket", errno);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die(path, errno);
    snprintf(desc, desc_size, "unix:%s", path);
    return fd;
}

static int listen_tcp(const char *hostport, char *desc, size_t desc_size)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
        fprintf(stderr, "p9serve: --tcp wants HOST:PORT, got %s\n", hostport);
        exit(2);
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *ai;
    int err = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (err) {
        fprintf(stderr, "p9serve: %s: %s\n", hostport, gai_strerror(err));
        exit(2);
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0)
        die("socket", errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        die(hostport, errno);
    freeaddrinfo(ai);
    /* Report the port actually bound (for PORT 0). */
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        getnameinfo((struct sockaddr *)&ss, len, h, sizeof(h), p, sizeof(p),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0)
        snprintf(desc, desc_size, "tcp:%s:%s", h, p);
    else
        snprintf(desc, desc_size, "tcp:%s", hostport);
    return fd;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: p9serve [--threads N]\n"
            "               [--security none|passthrough|mapped-xattr|mapped|mapped-file]\n"
            "               [--msize N] [--once]\n"
            "               [--max-connections N] [--max-requests N] [--max-bytes N]\n"
            "               [--private-pools] (--unix PATH | --tcp HOST:PORT) DIR\n"
            "  --threads N          request threads, shared by every connection (default 2)\n"
            "  --max-connections N  connections served at once (default 256); one more\n"
            "                       is accepted and closed at once\n"
            "  --max-requests N     requests in flight per connection, and unsent replies\n"
            "                       (default %u; 0: no bound)\n"
            "  --max-bytes N        bytes in flight per connection, requests (a Tread counts\n"
            "                       its count) and unsent replies each (default %u; 0: no bound);\n"
            "                       at a bound p9serve stops reading the connection\n"
            "  --private-pools      a pool of --threads threads per connection (the old design)\n",
            (unsigned)QRS_P9_MAX_REQUESTS_DEFAULT, (unsigned)QRS_P9_MAX_BYTES_DEFAULT);
    exit(2);
}

static uint64_t parse_u64(const char *s, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-' || v > max)
        usage();
    return v;
}

/* Connections cost descriptors (the socket, the export's root): use what
 * the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    const char *unix_path = NULL, *tcp = NULL;

    qrs_p9_config_init(&config);
    config.threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--threads") && has_value) {
            config.threads = (uint32_t)parse_u64(argv[++i], UINT32_MAX);
        } else if (!strcmp(a, "--msize") && has_value) {
            config.msize_max = (uint32_t)parse_u64(argv[++i], UINT32_MAX);
        } else if (!strcmp(a, "--max-connections") && has_value) {
            max_connections = (uint32_t)parse_u64(argv[++i], UINT32_MAX);
        } else if (!strcmp(a, "--max-requests") && has_value) {
            config.max_requests = (uint32_t)parse_u64(argv[++i], UINT32_MAX);
        } else if (!strcmp(a, "--max-bytes") && has_value) {
            config.max_bytes = parse_u64(argv[++i], UINT64_MAX);
        } else if (!strcmp(a, "--private-pools")) {
            private_pools = true;
        } else if (!strcmp(a, "--security") && has_value) {
            const char *m = argv[++i];
            if (!strcmp(m, "none"))
                security = QRS_P9_SECURITY_NONE;
            else if (!strcmp(m, "passthrough"))
                security = QRS_P9_SECURITY_PASSTHROUGH;
            else if (!strcmp(m, "mapped-xattr") || !strcmp(m, "mapped"))
                security = QRS_P9_SECURITY_MAPPED_XATTR;
            else if (!strcmp(m, "mapped-file"))
                security = QRS_P9_SECURITY_MAPPED_FILE;
            else
                usage();
        } else if (!strcmp(a, "--unix") && has_value) {
            unix_path = argv[++i];
        } else if (!strcmp(a, "--tcp") && has_value) {
            tcp = argv[++i];
        } else if (!strcmp(a, "--once")) {
            once = true;
        } else if (a[0] == '-' || root_dir) {
            usage();
        } else {
            root_dir = a;
        }
    }
    if (!root_dir || !unix_path == !tcp || config.threads == 0 || max_connections == 0)
        usage();

    /* Check the directory and the configuration once, up front. */
    QrsP9Backend *probe;
    int32_t r = qrs_p9_backend_native_new(root_dir, security, &probe);
    if (r < 0)
        die(root_dir, -r);
    qrs_p9_backend_free(probe);
    raise_nofile();

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits
     * the mask.  Replies use MSG_NOSIGNAL, but ignore SIGPIPE anyway. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    main_thread = pthread_self();

    if (!private_pools) {
        r = qrs_p9_pool_new(config.threads, &pool);
        if (r < 0)
            die("qrs_p9_pool_new", -r);
    }

    char desc[2048];
    listen_fd = unix_path ? listen_unix(unix_path, desc, sizeof(desc))
                          : listen_tcp(tcp, desc, sizeof(desc));
    if (listen(listen_fd, 128) < 0)
        die("listen", errno);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epfd < 0 || stop_fd < 0)
        die("epoll", errno);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = &listen_fd };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &e) < 0)
        die("epoll_ctl", errno);
    e = (struct epoll_event){ .events = EPOLLIN, .data.ptr = &stop_fd };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, stop_fd, &e) < 0)
        die("epoll_ctl", errno);

    pthread_t loop, reaper;
    int err = pthread_create(&reaper, NULL, reaper_thread, NULL);
    if (!err)
        err = pthread_create(&loop, NULL, loop_thread, NULL);
    if (err)
        die("pthread_create", err);
    printf("p9serve: listening on %s serving %s (%u threads%s, at most %u connections)\n",
           desc, root_dir, config.threads, private_pools ? " per connection" : "",
           max_connections);
    fflush(stdout);

    int sig;
    sigwait(&sigs, &sig);

    /* The loop closes every connection and hands it to the reaper. */
    uint64_t one = 1;
    if (write(stop_fd, &one, sizeof(one)) < 0)
        die("eventfd", errno);
    pthread_join(loop, NULL);
    pthread_mutex_lock(&reap_lock);
    reap_stop = true;
    pthread_cond_signal(&reap_cond);
    pthread_mutex_unlock(&reap_lock);
    pthread_join(reaper, NULL);
    qrs_p9_pool_free(pool);
    close(epfd);
    close(stop_fd);
    close(listen_fd);
    if (spare_fd >= 0)
        close(spare_fd);
    if (unix_path)
        unlink(unix_path);
    fprintf(stderr, "p9serve: stopped\n");
    return 0;
}
