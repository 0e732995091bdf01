/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The 9P client of the C tests; see p9client.h. */
#define _GNU_SOURCE
#include "p9client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Big enough for every T-message the helpers build (Twrite's data aside). */
enum { SMALL_MSG = 8192 };

void p9m_begin(P9Msg *m, uint8_t *buf, size_t cap, uint8_t type, uint16_t tag)
{
    m->buf = buf;
    m->cap = cap;
    m->len = 0;
    m->overflow = false;
    p9m_u32(m, 0);              /* size, filled in by p9m_end */
    p9m_u8(m, type);
    p9m_u16(m, tag);
}

static uint8_t *room(P9Msg *m, size_t n)
{
    uint8_t *p;

    if (m->overflow || m->cap - m->len < n) {
        m->overflow = true;
        return NULL;
    }
    p = m->buf + m->len;
    m->len += n;
    return p;
}

static void put_le(P9Msg *m, uint64_t v, size_t n)
{
    uint8_t *p = room(m, n);
    size_t i;

    for (i = 0; p && i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void p9m_u8(P9Msg *m, uint8_t v) { put_le(m, v, 1); }
void p9m_u16(P9Msg *m, uint16_t v) { put_le(m, v, 2); }
void p9m_u32(P9Msg *m, uint32_t v) { put_le(m, v, 4); }
void p9m_u64(P9Msg *m, uint64_t v) { put_le(m, v, 8); }

void p9m_bytes(P9Msg *m, const void *src, size_t n)
{
    uint8_t *p = room(m, n);

    if (p && n) {
        memcpy(p, src, n);
    }
}

void p9m_str(P9Msg *m, const char *s)
{
    size_t n = strlen(s);

    if (n > 0xffff) {
        m->overflow = true;
        return;
    }
    p9m_u16(m, (uint16_t)n);
    p9m_bytes(m, s, n);
}

size_t p9m_end(P9Msg *m)
{
    size_t i;

    if (m->overflow || m->len > 0xffffffffu) {
        return 0;
    }
    for (i = 0; i < 4; i++) {
        m->buf[i] = (uint8_t)(m->len >> (8 * i));
    }
    return m->len;
}

static uint64_t get_le(P9Reader *r, size_t n)
{
    uint64_t v = 0;
    size_t i;

    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return 0;
    }
    for (i = 0; i < n; i++) {
        v |= (uint64_t)r->p[r->pos + i] << (8 * i);
    }
    r->pos += n;
    return v;
}

uint8_t p9r_u8(P9Reader *r) { return (uint8_t)get_le(r, 1); }
uint16_t p9r_u16(P9Reader *r) { return (uint16_t)get_le(r, 2); }
uint32_t p9r_u32(P9Reader *r) { return (uint32_t)get_le(r, 4); }
uint64_t p9r_u64(P9Reader *r) { return get_le(r, 8); }

void p9r_qid(P9Reader *r, P9Qid *q)
{
    P9Qid tmp;

    if (!q) {
        q = &tmp;
    }
    q->type = p9r_u8(r);
    q->version = p9r_u32(r);
    q->path = p9r_u64(r);
}

const uint8_t *p9r_bytes(P9Reader *r, size_t n)
{
    const uint8_t *p;

    if (r->bad || r->len - r->pos < n) {
        r->bad = true;
        return NULL;
    }
    p = r->p + r->pos;
    r->pos += n;
    return p;
}

size_t p9r_str(P9Reader *r, char *out, size_t cap)
{
    size_t n = p9r_u16(r), c;
    const uint8_t *p = p9r_bytes(r, n);

    if (out && cap) {
        c = p ? (n < cap - 1 ? n : cap - 1) : 0;
        if (c) {
            memcpy(out, p, c);
        }
        out[c] = 0;
    }
    return p ? n : 0;
}

bool p9r_done(const P9Reader *r)
{
    return !r->bad && r->pos == r->len;
}

int p9_parse_reply(const uint8_t *reply, size_t len, uint16_t tag,
                   uint8_t want, P9Reader *r)
{
    uint32_t size;
    uint8_t type;

    *r = (P9Reader){ .p = reply, .len = len };
    if (!reply || len < P9_HDR) {
        return -1;
    }
    size = p9r_u32(r);
    type = p9r_u8(r);
    if (size != len || p9r_u16(r) != tag) {
        return -1;
    }
    if (type == want) {
        return 0;
    }
    if (type == P9_RLERROR) {
        uint32_t e = p9r_u32(r);

        return p9r_done(r) && e > 0 && e < 4096 ? (int)e : -1;
    }
    if (type == P9_RERROR) {
        uint32_t e;

        p9r_str(r, NULL, 0);
        if (r->len - r->pos != 4) {
            return r->pos == r->len && !r->bad ? EPROTO : -1;
        }
        e = p9r_u32(r);
        return e > 0 && e < 4096 ? (int)e : -1;
    }
    return -1;
}

void p9c_init(P9Client *c, P9RpcFn *rpc, void *ctx)
{
    memset(c, 0, sizeof(*c));
    c->rpc = rpc;
    c->ctx = ctx;
    c->next_tag = 1;
}

uint16_t p9c_tag(P9Client *c)
{
    uint16_t t = c->next_tag++;

    if (c->next_tag == P9_NOTAG) {
        c->next_tag = 1;
    }
    return t;
}

int p9c_call(P9Client *c, const uint8_t *req, size_t len, uint16_t tag,
             uint8_t want, uint8_t **reply, size_t *reply_len, P9Reader *r)
{
    *reply = NULL;
    *reply_len = 0;
    if (len == 0 || c->rpc(c->ctx, req, len, reply, reply_len) != 0) {
        return -1;
    }
    return p9_parse_reply(*reply, *reply_len, tag, want, r);
}

/*
 * The body of most helpers: build with @m (already begun with @tag), send,
 * check the reply type, and leave the reader in @r; the caller frees *@out.
 */
static int finish(P9Client *c, P9Msg *m, uint16_t tag, uint8_t want,
                  uint8_t **out, P9Reader *r)
{
    size_t len = p9m_end(m), rlen;

    return p9c_call(c, m->buf, len, tag, want, out, &rlen, r);
}

/* Finish a reply that must be fully consumed. */
static int done(int rc, P9Reader *r, uint8_t *reply)
{
    if (rc == 0 && !p9r_done(r)) {
        rc = -1;
    }
    free(reply);
    return rc;
}

#define BEGIN(type)                                                       \
    uint8_t buf_[SMALL_MSG];                                              \
    P9Msg m_;                                                             \
    P9Reader r_;                                                          \
    uint8_t *reply_ = NULL;                                               \
    uint16_t tag_ = p9c_tag(c);                                           \
    int rc_;                                                              \
    p9m_begin(&m_, buf_, sizeof(buf_), (type), tag_)
#define CALL(type) (rc_ = finish(c, &m_, tag_, (uint8_t)((type) + 1), &reply_, &r_))
#define END() return done(rc_, &r_, reply_)

int p9_version(P9Client *c, uint32_t msize, const char *version,
               uint32_t *msize_out, char *version_out, size_t cap)
{
    uint8_t buf[SMALL_MSG];
    P9Msg m;
    P9Reader r;
    uint8_t *reply = NULL;
    uint32_t ms;
    int rc;

    /* Tversion always uses NOTAG. */
    p9m_begin(&m, buf, sizeof(buf), P9_TVERSION, P9_NOTAG);
    p9m_u32(&m, msize);
    p9m_str(&m, version);
    rc = finish(c, &m, P9_NOTAG, P9_TVERSION + 1, &reply, &r);
    if (rc == 0) {
        ms = p9r_u32(&r);
        p9r_str(&r, version_out, cap);
        if (msize_out) {
            *msize_out = ms;
        }
        c->dotu = version_out && strcmp(version_out, "9P2000.u") == 0;
    }
    return done(rc, &r, reply);
}

int p9_attach(P9Client *c, uint32_t fid, const char *uname, const char *aname,
              uint32_t n_uname, P9Qid *qid)
{
    BEGIN(P9_TATTACH);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, P9_NOFID);
    p9m_str(&m_, uname);
    p9m_str(&m_, aname);
    p9m_u32(&m_, n_uname);
    if (CALL(P9_TATTACH) == 0) {
        p9r_qid(&r_, qid);
    }
    END();
}

int p9_walk(P9Client *c, uint32_t fid, uint32_t newfid, unsigned nwname,
            const char *const *names, P9Qid *qids, unsigned *nqid)
{
    unsigned i, n;

    BEGIN(P9_TWALK);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, newfid);
    p9m_u16(&m_, (uint16_t)nwname);
    for (i = 0; i < nwname; i++) {
        p9m_str(&m_, names[i]);
    }
    if (CALL(P9_TWALK) == 0) {
        n = p9r_u16(&r_);
        if (n > nwname || n > P9_MAXWELEM) {
            rc_ = -1;
        } else {
            for (i = 0; i < n; i++) {
                p9r_qid(&r_, qids ? &qids[i] : NULL);
            }
            if (nqid) {
                *nqid = n;
            }
        }
    }
    END();
}

int p9_walk_path(P9Client *c, uint32_t fid, uint32_t newfid, const char *path,
                 P9Qid *last)
{
    char copy[1024], *save = NULL, *tok;
    const char *names[P9_MAXWELEM];
    P9Qid qids[P9_MAXWELEM];
    unsigned n = 0, got = 0;
    int rc;

    snprintf(copy, sizeof(copy), "%s", path);
    for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (n == P9_MAXWELEM) {
            return -1;
        }
        names[n++] = tok;
    }
    rc = p9_walk(c, fid, newfid, n, names, qids, &got);
    if (rc == 0 && got != n) {
        return ENOENT;          /* a partial walk */
    }
    if (rc == 0 && last && n) {
        *last = qids[n - 1];
    }
    return rc;
}

int p9_lopen(P9Client *c, uint32_t fid, uint32_t flags, P9Qid *qid,
             uint32_t *iounit)
{
    uint32_t io;

    BEGIN(P9_TLOPEN);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, flags);
    if (CALL(P9_TLOPEN) == 0) {
        p9r_qid(&r_, qid);
        io = p9r_u32(&r_);
        if (iounit) {
            *iounit = io;
        }
    }
    END();
}

int p9_lcreate(P9Client *c, uint32_t fid, const char *name, uint32_t flags,
               uint32_t mode, uint32_t gid, P9Qid *qid, uint32_t *iounit)
{
    uint32_t io;

    BEGIN(P9_TLCREATE);
    p9m_u32(&m_, fid);
    p9m_str(&m_, name);
    p9m_u32(&m_, flags);
    p9m_u32(&m_, mode);
    p9m_u32(&m_, gid);
    if (CALL(P9_TLCREATE) == 0) {
        p9r_qid(&r_, qid);
        io = p9r_u32(&r_);
        if (iounit) {
            *iounit = io;
        }
    }
    END();
}

int p9_read(P9Client *c, uint32_t fid, uint64_t offset, uint32_t count,
            void *buf, uint32_t *got)
{
    uint32_t n;
    const uint8_t *p;

    BEGIN(P9_TREAD);
    p9m_u32(&m_, fid);
    p9m_u64(&m_, offset);
    p9m_u32(&m_, count);
    if (CALL(P9_TREAD) == 0) {
        n = p9r_u32(&r_);
        if (n > count) {
            rc_ = -1;
        } else if ((p = p9r_bytes(&r_, n)) != NULL) {
            memcpy(buf, p, n);
            *got = n;
        }
    }
    END();
}

int p9_write(P9Client *c, uint32_t fid, uint64_t offset, const void *data,
             uint32_t count, uint32_t *written)
{
    uint8_t *buf = malloc(P9_HDR + 16 + (size_t)count);
    P9Msg m;
    P9Reader r;
    uint8_t *reply = NULL;
    uint16_t tag = p9c_tag(c);
    uint32_t n;
    int rc;

    p9m_begin(&m, buf, P9_HDR + 16 + (size_t)count, P9_TWRITE, tag);
    p9m_u32(&m, fid);
    p9m_u64(&m, offset);
    p9m_u32(&m, count);
    p9m_bytes(&m, data, count);
    rc = finish(c, &m, tag, P9_TWRITE + 1, &reply, &r);
    free(buf);
    if (rc == 0) {
        n = p9r_u32(&r);
        if (n > count) {
            rc = -1;
        } else if (written) {
            *written = n;
        }
    }
    return done(rc, &r, reply);
}

static int fid_only(P9Client *c, uint8_t type, uint32_t fid)
{
    BEGIN(type);
    p9m_u32(&m_, fid);
    CALL(type);
    END();
}

int p9_clunk(P9Client *c, uint32_t fid) { return fid_only(c, P9_TCLUNK, fid); }
int p9_remove(P9Client *c, uint32_t fid) { return fid_only(c, P9_TREMOVE, fid); }

int p9_getattr(P9Client *c, uint32_t fid, uint64_t mask, P9Attr *a)
{
    BEGIN(P9_TGETATTR);
    p9m_u32(&m_, fid);
    p9m_u64(&m_, mask);
    if (CALL(P9_TGETATTR) == 0) {
        a->valid = p9r_u64(&r_);
        p9r_qid(&r_, &a->qid);
        a->mode = p9r_u32(&r_);
        a->uid = p9r_u32(&r_);
        a->gid = p9r_u32(&r_);
        a->nlink = p9r_u64(&r_);
        a->rdev = p9r_u64(&r_);
        a->size = p9r_u64(&r_);
        a->blksize = p9r_u64(&r_);
        a->blocks = p9r_u64(&r_);
        a->atime_sec = p9r_u64(&r_);
        a->atime_nsec = p9r_u64(&r_);
        a->mtime_sec = p9r_u64(&r_);
        a->mtime_nsec = p9r_u64(&r_);
        a->ctime_sec = p9r_u64(&r_);
        a->ctime_nsec = p9r_u64(&r_);
        a->btime_sec = p9r_u64(&r_);
        a->btime_nsec = p9r_u64(&r_);
        a->gen = p9r_u64(&r_);
        a->data_version = p9r_u64(&r_);
    }
    END();
}

int p9_setattr(P9Client *c, uint32_t fid, uint32_t valid, uint32_t mode,
               uint32_t uid, uint32_t gid, uint64_t size, uint64_t atime_sec,
               uint64_t atime_nsec, uint64_t mtime_sec, uint64_t mtime_nsec)
{
    BEGIN(P9_TSETATTR);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, valid);
    p9m_u32(&m_, mode);
    p9m_u32(&m_, uid);
    p9m_u32(&m_, gid);
    p9m_u64(&m_, size);
    p9m_u64(&m_, atime_sec);
    p9m_u64(&m_, atime_nsec);
    p9m_u64(&m_, mtime_sec);
    p9m_u64(&m_, mtime_nsec);
    CALL(P9_TSETATTR);
    END();
}

int p9_statfs(P9Client *c, uint32_t fid, P9StatFs *st)
{
    BEGIN(P9_TSTATFS);
    p9m_u32(&m_, fid);
    if (CALL(P9_TSTATFS) == 0) {
        st->type = p9r_u32(&r_);
        st->bsize = p9r_u32(&r_);
        st->blocks = p9r_u64(&r_);
        st->bfree = p9r_u64(&r_);
        st->bavail = p9r_u64(&r_);
        st->files = p9r_u64(&r_);
        st->ffree = p9r_u64(&r_);
        st->fsid = p9r_u64(&r_);
        st->namelen = p9r_u32(&r_);
    }
    END();
}

int p9_readdir(P9Client *c, uint32_t fid, uint64_t offset, uint32_t count,
               uint8_t **data, uint32_t *len)
{
    uint32_t n;
    const uint8_t *p;

    *data = NULL;
    *len = 0;
    {
        BEGIN(P9_TREADDIR);
        p9m_u32(&m_, fid);
        p9m_u64(&m_, offset);
        p9m_u32(&m_, count);
        if (CALL(P9_TREADDIR) == 0) {
            n = p9r_u32(&r_);
            if (n > count) {
                rc_ = -1;
            } else if ((p = p9r_bytes(&r_, n)) != NULL) {
                *data = malloc(n ? n : 1);
                memcpy(*data, p, n);
                *len = n;
            }
        }
        if (rc_ == 0 && !p9r_done(&r_)) {
            free(*data);
            *data = NULL;
            *len = 0;
        }
        END();
    }
}

bool p9_dirent_next(P9Reader *r, P9Qid *qid, uint64_t *offset, uint8_t *type,
                    char *name, size_t cap, bool *bad)
{
    if (r->pos == r->len && !r->bad) {
        return false;
    }
    p9r_qid(r, qid);
    *offset = p9r_u64(r);
    *type = p9r_u8(r);
    p9r_str(r, name, cap);
    if (r->bad) {
        *bad = true;
        return false;
    }
    return true;
}

int p9_xattrwalk(P9Client *c, uint32_t fid, uint32_t newfid, const char *name,
                 uint64_t *size)
{
    BEGIN(P9_TXATTRWALK);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, newfid);
    p9m_str(&m_, name);
    if (CALL(P9_TXATTRWALK) == 0) {
        *size = p9r_u64(&r_);
    }
    END();
}

int p9_xattrcreate(P9Client *c, uint32_t fid, const char *name, uint64_t size,
                   uint32_t flags)
{
    BEGIN(P9_TXATTRCREATE);
    p9m_u32(&m_, fid);
    p9m_str(&m_, name);
    p9m_u64(&m_, size);
    p9m_u32(&m_, flags);
    CALL(P9_TXATTRCREATE);
    END();
}

int p9_mkdir(P9Client *c, uint32_t dfid, const char *name, uint32_t mode,
             uint32_t gid, P9Qid *qid)
{
    BEGIN(P9_TMKDIR);
    p9m_u32(&m_, dfid);
    p9m_str(&m_, name);
    p9m_u32(&m_, mode);
    p9m_u32(&m_, gid);
    if (CALL(P9_TMKDIR) == 0) {
        p9r_qid(&r_, qid);
    }
    END();
}

int p9_symlink(P9Client *c, uint32_t dfid, const char *name,
               const char *target, uint32_t gid, P9Qid *qid)
{
    BEGIN(P9_TSYMLINK);
    p9m_u32(&m_, dfid);
    p9m_str(&m_, name);
    p9m_str(&m_, target);
    p9m_u32(&m_, gid);
    if (CALL(P9_TSYMLINK) == 0) {
        p9r_qid(&r_, qid);
    }
    END();
}

int p9_mknod(P9Client *c, uint32_t dfid, const char *name, uint32_t mode,
             uint32_t major, uint32_t minor, uint32_t gid, P9Qid *qid)
{
    BEGIN(P9_TMKNOD);
    p9m_u32(&m_, dfid);
    p9m_str(&m_, name);
    p9m_u32(&m_, mode);
    p9m_u32(&m_, major);
    p9m_u32(&m_, minor);
    p9m_u32(&m_, gid);
    if (CALL(P9_TMKNOD) == 0) {
        p9r_qid(&r_, qid);
    }
    END();
}

int p9_readlink(P9Client *c, uint32_t fid, char *buf, size_t cap)
{
    BEGIN(P9_TREADLINK);
    p9m_u32(&m_, fid);
    if (CALL(P9_TREADLINK) == 0) {
        p9r_str(&r_, buf, cap);
    }
    END();
}

int p9_link(P9Client *c, uint32_t dfid, uint32_t fid, const char *name)
{
    BEGIN(P9_TLINK);
    p9m_u32(&m_, dfid);
    p9m_u32(&m_, fid);
    p9m_str(&m_, name);
    CALL(P9_TLINK);
    END();
}

int p9_rename(P9Client *c, uint32_t fid, uint32_t dfid, const char *name)
{
    BEGIN(P9_TRENAME);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, dfid);
    p9m_str(&m_, name);
    CALL(P9_TRENAME);
    END();
}

int p9_renameat(P9Client *c, uint32_t olddfid, const char *oldname,
                uint32_t newdfid, const char *newname)
{
    BEGIN(P9_TRENAMEAT);
    p9m_u32(&m_, olddfid);
    p9m_str(&m_, oldname);
    p9m_u32(&m_, newdfid);
    p9m_str(&m_, newname);
    CALL(P9_TRENAMEAT);
    END();
}

int p9_unlinkat(P9Client *c, uint32_t dfid, const char *name, uint32_t flags)
{
    BEGIN(P9_TUNLINKAT);
    p9m_u32(&m_, dfid);
    p9m_str(&m_, name);
    p9m_u32(&m_, flags);
    CALL(P9_TUNLINKAT);
    END();
}

int p9_fsync(P9Client *c, uint32_t fid, uint32_t datasync)
{
    BEGIN(P9_TFSYNC);
    p9m_u32(&m_, fid);
    p9m_u32(&m_, datasync);
    CALL(P9_TFSYNC);
    END();
}

int p9_lock(P9Client *c, uint32_t fid, uint8_t type, uint32_t flags,
            uint64_t start, uint64_t length, uint32_t proc_id,
            const char *client_id, uint8_t *status)
{
    BEGIN(P9_TLOCK);
    p9m_u32(&m_, fid);
    p9m_u8(&m_, type);
    p9m_u32(&m_, flags);
    p9m_u64(&m_, start);
    p9m_u64(&m_, length);
    p9m_u32(&m_, proc_id);
    p9m_str(&m_, client_id);
    if (CALL(P9_TLOCK) == 0) {
        *status = p9r_u8(&r_);
    }
    END();
}

int p9_getlock(P9Client *c, uint32_t fid, uint8_t *type, uint64_t *start,
               uint64_t *length, uint32_t *proc_id, const char *client_id)
{
    char id[256];

    BEGIN(P9_TGETLOCK);
    p9m_u32(&m_, fid);
    p9m_u8(&m_, *type);
    p9m_u64(&m_, *start);
    p9m_u64(&m_, *length);
    p9m_u32(&m_, *proc_id);
    p9m_str(&m_, client_id);
    if (CALL(P9_TGETLOCK) == 0) {
        *type = p9r_u8(&r_);
        *start = p9r_u64(&r_);
        *length = p9r_u64(&r_);
        *proc_id = p9r_u32(&r_);
        p9r_str(&r_, id, sizeof(id));
        if (strcmp(id, client_id) != 0) {
            rc_ = -1;
        }
    }
    END();
}
