/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * p9serve: serve a host directory over 9P on a stream socket, with only
 * libqemurs.a and include/qemurs.h (the native backend, thread mode).
 *
 *   p9serve [--threads N] [--security none|passthrough] [--msize N] [--once]
 *           (--unix PATH | --tcp HOST:PORT) DIR
 *
 * Framing is plain 9P as Linux's trans=fd/tcp uses it: every message starts
 * with its own little-endian size[4].  One reader thread and one server
 * per connection (a 9P session belongs to a connection); replies are
 * written by the server's threads under a per-connection mutex.  Prints
 * "p9serve: listening on ..." once ready.  SIGINT/SIGTERM stop it cleanly
 * (connections shut down, servers freed); --once exits after the first
 * connection closes.
 */
#define _GNU_SOURCE
#include <errno.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qemurs.h"

struct conn {
    struct conn *next;
    int fd;                 /* -1 once closed (under conns_lock) */
    pthread_t thread;
    bool done;              /* the thread has finished (under conns_lock) */
    QrsP9Server *server;
    pthread_mutex_t write_lock;
    bool write_failed;      /* under write_lock */
};

/* One request: its bytes and, once asked for, its reply buffer. */
struct pdu {
    struct conn *conn;
    uint8_t *req;
    struct iovec req_iov;
    uint8_t *reply;
    struct iovec reply_iov;
};

static QrsP9Config config;
static uint32_t security = QRS_P9_SECURITY_NONE;
static const char *root_dir;
static bool once;
static int listen_fd = -1;
static pthread_t main_thread;

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *conns;
static bool stopping;       /* under conns_lock */

static void die(const char *what, int err)
{
    fprintf(stderr, "p9serve: %s: %s\n", what, strerror(err));
    exit(1);
}

/* ----- transport ----- */

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

/* Write all of buf; false on error (the peer went away). */
static bool send_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static void complete(void *opaque, void *pdu_, size_t len)
{
    struct conn *c = opaque;
    struct pdu *pdu = pdu_;

    if (len > 0 && pdu->reply) {
        if (len > pdu->reply_iov.iov_len)
            len = pdu->reply_iov.iov_len;
        pthread_mutex_lock(&c->write_lock);
        if (!c->write_failed && !send_all(c->fd, pdu->reply, len)) {
            c->write_failed = true;
            /* Wake the reader: the session is lost either way. */
            shutdown(c->fd, SHUT_RDWR);
        }
        pthread_mutex_unlock(&c->write_lock);
    }
    free(pdu->reply);
    free(pdu->req);
    free(pdu);
}

static const QrsP9Transport transport = {
    .reply_buffers = reply_buffers,
    .complete = complete,
};

/* ----- connections ----- */

/* Read exactly len bytes: 1, or 0 on EOF / error (including EOF midway). */
static int recv_all(int fd, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        buf += n;
        len -= (size_t)n;
    }
    return 1;
}

static void serve_connection(struct conn *c)
{
    QrsP9Backend *backend;
    int32_t r = qrs_p9_backend_native_new(root_dir, security, &backend);
    if (r < 0) {
        fprintf(stderr, "p9serve: backend for %s: %s\n", root_dir, strerror(-r));
        return;
    }
    r = qrs_p9_server_new(&config, backend, &transport, c, &c->server);
    if (r < 0) {
        fprintf(stderr, "p9serve: server: %s\n", strerror(-r));
        return;
    }
    for (;;) {
        uint8_t hdr[4];
        if (!recv_all(c->fd, hdr, sizeof(hdr)))
            break;
        uint32_t size = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                        (uint32_t)hdr[3] << 24;
        /* Bad framing cannot be resynchronised: drop the connection. */
        if (size < 7 || size > config.msize_max) {
            fprintf(stderr, "p9serve: bad message size %u, closing the connection\n", size);
            break;
        }
        struct pdu *pdu = calloc(1, sizeof(*pdu));
        uint8_t *req = malloc(size);
        if (!pdu || !req) {
            free(pdu);
            free(req);
            fprintf(stderr, "p9serve: out of memory, closing the connection\n");
            break;
        }
        memcpy(req, hdr, sizeof(hdr));
        if (!recv_all(c->fd, req + sizeof(hdr), size - sizeof(hdr))) {
            free(pdu);
            free(req);
            break;
        }
        pdu->conn = c;
        pdu->req = req;
        pdu->req_iov = (struct iovec){ .iov_base = req, .iov_len = size };
        r = qrs_p9_submit(c->server, pdu, &pdu->req_iov, 1);
        if (r < 0) {
            /* complete is not called for a failed submit. */
            free(pdu);
            free(req);
            fprintf(stderr, "p9serve: qrs_p9_submit: %s\n", strerror(-r));
            break;
        }
    }
    /* Waits for the requests in flight, whose replies still use the fd. */
    qrs_p9_server_free(c->server);
    c->server = NULL;
}

static void *connection_thread(void *arg)
{
    struct conn *c = arg;
    serve_connection(c);
    pthread_mutex_lock(&conns_lock);
    close(c->fd);
    c->fd = -1;
    c->done = true;
    pthread_mutex_unlock(&conns_lock);
    if (once)
        pthread_kill(main_thread, SIGTERM);
    return NULL;
}

/* Join and free the connections whose threads finished (all when `all`,
 * after shutting the live ones down). */
static void reap(bool all)
{
    pthread_mutex_lock(&conns_lock);
    if (all) {
        for (struct conn *c = conns; c; c = c->next)
            if (c->fd >= 0)
                shutdown(c->fd, SHUT_RDWR);
    }
    struct conn **pp = &conns;
    struct conn *finished = NULL;
    while (*pp) {
        struct conn *c = *pp;
        if (c->done || all) {
            *pp = c->next;
            c->next = finished;
            finished = c;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&conns_lock);
    while (finished) {
        struct conn *c = finished;
        finished = c->next;
        pthread_join(c->thread, NULL);
        pthread_mutex_destroy(&c->write_lock);
        free(c);
    }
}

static void *accept_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            break; /* shut down by the main thread */
        }
        int one = 1;
        /* Fails harmlessly on Unix sockets. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        reap(false);
        struct conn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        pthread_mutex_init(&c->write_lock, NULL);
        pthread_mutex_lock(&conns_lock);
        if (stopping) {
            pthread_mutex_unlock(&conns_lock);
            close(fd);
            pthread_mutex_destroy(&c->write_lock);
            free(c);
            break;
        }
        int err = pthread_create(&c->thread, NULL, connection_thread, c);
        if (err) {
            pthread_mutex_unlock(&conns_lock);
            fprintf(stderr, "p9serve: pthread_create: %s\n", strerror(err));
            close(fd);
            pthread_mutex_destroy(&c->write_lock);
            free(c);
            continue;
        }
        c->next = conns;
        conns = c;
        pthread_mutex_unlock(&conns_lock);
        if (once)
            break;
    }
    return NULL;
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
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
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
            "usage: p9serve [--threads N] [--security none|passthrough] [--msize N] [--once]\n"
            "               (--unix PATH | --tcp HOST:PORT) DIR\n");
    exit(2);
}

static uint32_t parse_u32(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > UINT32_MAX)
        usage();
    return (uint32_t)v;
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
            config.threads = parse_u32(argv[++i]);
        } else if (!strcmp(a, "--msize") && has_value) {
            config.msize_max = parse_u32(argv[++i]);
        } else if (!strcmp(a, "--security") && has_value) {
            const char *m = argv[++i];
            if (!strcmp(m, "none"))
                security = QRS_P9_SECURITY_NONE;
            else if (!strcmp(m, "passthrough"))
                security = QRS_P9_SECURITY_PASSTHROUGH;
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
    if (!root_dir || !unix_path == !tcp || config.threads == 0)
        usage();

    /* Check the directory and the configuration once, up front. */
    QrsP9Backend *probe;
    int32_t r = qrs_p9_backend_native_new(root_dir, security, &probe);
    if (r < 0)
        die(root_dir, -r);
    qrs_p9_backend_free(probe);

    /* SIGINT/SIGTERM are taken by sigwait below; every thread inherits
     * the mask.  Replies use MSG_NOSIGNAL, but ignore SIGPIPE anyway. */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    main_thread = pthread_self();

    char desc[2048];
    listen_fd = unix_path ? listen_unix(unix_path, desc, sizeof(desc))
                          : listen_tcp(tcp, desc, sizeof(desc));
    if (listen(listen_fd, 64) < 0)
        die("listen", errno);

    pthread_t acceptor;
    int err = pthread_create(&acceptor, NULL, accept_thread, NULL);
    if (err)
        die("pthread_create", err);
    printf("p9serve: listening on %s serving %s (%u threads)\n", desc, root_dir, config.threads);
    fflush(stdout);

    int sig;
    sigwait(&sigs, &sig);

    pthread_mutex_lock(&conns_lock);
    stopping = true;
    pthread_mutex_unlock(&conns_lock);
    /* Wakes accept() with EINVAL. */
    shutdown(listen_fd, SHUT_RDWR);
    pthread_join(acceptor, NULL);
    reap(true);
    close(listen_fd);
    if (unix_path)
        unlink(unix_path);
    fprintf(stderr, "p9serve: stopped\n");
    return 0;
}
