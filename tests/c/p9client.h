/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small 9P client for the C tests: encodes T-messages, decodes and checks
 * R-messages (size, tag, type), one helper per operation.  Helpers return 0
 * on success, the errno of an Rlerror/Rerror (positive), or -1 when the
 * reply is missing or malformed.
 */
#ifndef P9CLIENT_H
#define P9CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types (9P2000.L, and the 9P2000/.u ones the tests use). */
enum {
    P9_RLERROR = 7,
    P9_TSTATFS = 8, P9_TLOPEN = 12, P9_TLCREATE = 14, P9_TSYMLINK = 16,
    P9_TMKNOD = 18, P9_TRENAME = 20, P9_TREADLINK = 22, P9_TGETATTR = 24,
    P9_TSETATTR = 26, P9_TXATTRWALK = 30, P9_TXATTRCREATE = 32,
    P9_TREADDIR = 40, P9_TFSYNC = 50, P9_TLOCK = 52, P9_TGETLOCK = 54,
    P9_TLINK = 70, P9_TMKDIR = 72, P9_TRENAMEAT = 74, P9_TUNLINKAT = 76,
    P9_TVERSION = 100, P9_TAUTH = 102, P9_TATTACH = 104, P9_RERROR = 107,
    P9_TFLUSH = 108, P9_TWALK = 110, P9_TREAD = 116, P9_TWRITE = 118,
    P9_TCLUNK = 120, P9_TREMOVE = 122, P9_TSTAT = 124,
};

enum { P9_NOTAG = 0xffff, P9_NOFID = 0xffffffffu, P9_MAXWELEM = 16 };
enum { P9_HDR = 7, P9_QID_SIZE = 13 };

/* Tgetattr masks and Tsetattr valid bits. */
#define P9_GETATTR_BASIC 0x7ffULL
#define P9_GETATTR_ALL 0x3fffULL
enum {
    P9_SETATTR_MODE = 1, P9_SETATTR_UID = 2, P9_SETATTR_GID = 4,
    P9_SETATTR_SIZE = 8, P9_SETATTR_ATIME = 16, P9_SETATTR_MTIME = 32,
    P9_SETATTR_CTIME = 64, P9_SETATTR_ATIME_SET = 128,
    P9_SETATTR_MTIME_SET = 256,
};
enum { P9_LOCK_RDLCK = 0, P9_LOCK_WRLCK = 1, P9_LOCK_UNLCK = 2 };
enum { P9_LOCK_SUCCESS = 0, P9_LOCK_BLOCKED = 1 };

typedef struct P9Qid {
    uint8_t type;
    uint32_t version;
    uint64_t path;
} P9Qid;

typedef struct P9Attr {
    uint64_t valid;
    P9Qid qid;
    uint32_t mode, uid, gid;
    uint64_t nlink, rdev, size, blksize, blocks;
    uint64_t atime_sec, atime_nsec, mtime_sec, mtime_nsec;
    uint64_t ctime_sec, ctime_nsec, btime_sec, btime_nsec;
    uint64_t gen, data_version;
} P9Attr;

typedef struct P9StatFs {
    uint32_t type, bsize;
    uint64_t blocks, bfree, bavail, files, ffree, fsid;
    uint32_t namelen;
} P9StatFs;

/* ---- encoding ---- */

typedef struct P9Msg {
    uint8_t *buf;
    size_t len, cap;
    bool overflow;
} P9Msg;

void p9m_begin(P9Msg *m, uint8_t *buf, size_t cap, uint8_t type, uint16_t tag);
void p9m_u8(P9Msg *m, uint8_t v);
void p9m_u16(P9Msg *m, uint16_t v);
void p9m_u32(P9Msg *m, uint32_t v);
void p9m_u64(P9Msg *m, uint64_t v);
void p9m_str(P9Msg *m, const char *s);
void p9m_bytes(P9Msg *m, const void *p, size_t n);
/* Write the size field; returns the message length, 0 if it overflowed. */
size_t p9m_end(P9Msg *m);

/* ---- decoding ---- */

typedef struct P9Reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} P9Reader;

uint8_t p9r_u8(P9Reader *r);
uint16_t p9r_u16(P9Reader *r);
uint32_t p9r_u32(P9Reader *r);
uint64_t p9r_u64(P9Reader *r);
void p9r_qid(P9Reader *r, P9Qid *q);
/* A string into @out (NUL-terminated, truncated to @cap); its length. */
size_t p9r_str(P9Reader *r, char *out, size_t cap);
const uint8_t *p9r_bytes(P9Reader *r, size_t n);
/* True when every byte was consumed and nothing overran. */
bool p9r_done(const P9Reader *r);

/*
 * Check a reply's header: size field equals @len, tag is @tag.  Returns 0
 * and positions @r after the header if the type is @want; the errno of an
 * Rlerror/Rerror (positive); -1 otherwise.
 */
int p9_parse_reply(const uint8_t *reply, size_t len, uint16_t tag,
                   uint8_t want, P9Reader *r);

/* ---- a session ---- */

/*
 * Send @len bytes, return the reply (malloc'd; the caller frees it) and its
 * length in *@reply_len (0 and NULL: no reply).  Returns 0 or -1.
 */
typedef int P9RpcFn(void *ctx, const uint8_t *req, size_t len,
                    uint8_t **reply, size_t *reply_len);

typedef struct P9Client {
    P9RpcFn *rpc;
    void *ctx;
    uint16_t next_tag;
    bool dotu;          /* Rerror carries the .u errno field */
} P9Client;

void p9c_init(P9Client *c, P9RpcFn *rpc, void *ctx);
uint16_t p9c_tag(P9Client *c);

/* One request/reply: @m is a finished message with tag @tag. */
int p9c_call(P9Client *c, const uint8_t *req, size_t len, uint16_t tag,
             uint8_t want, uint8_t **reply, size_t *reply_len, P9Reader *r);

int p9_version(P9Client *c, uint32_t msize, const char *version,
               uint32_t *msize_out, char *version_out, size_t cap);
int p9_attach(P9Client *c, uint32_t fid, const char *uname, const char *aname,
              uint32_t n_uname, P9Qid *qid);
/* Twalk; *@nqid gets the number of qids returned (partial walks). */
int p9_walk(P9Client *c, uint32_t fid, uint32_t newfid, unsigned nwname,
            const char *const *names, P9Qid *qids, unsigned *nqid);
/* Twalk along a '/'-separated path (at most 16 names); full walks only. */
int p9_walk_path(P9Client *c, uint32_t fid, uint32_t newfid, const char *path,
                 P9Qid *last);
int p9_lopen(P9Client *c, uint32_t fid, uint32_t flags, P9Qid *qid,
             uint32_t *iounit);
int p9_lcreate(P9Client *c, uint32_t fid, const char *name, uint32_t flags,
               uint32_t mode, uint32_t gid, P9Qid *qid, uint32_t *iounit);
int p9_read(P9Client *c, uint32_t fid, uint64_t offset, uint32_t count,
            void *buf, uint32_t *got);
int p9_write(P9Client *c, uint32_t fid, uint64_t offset, const void *data,
             uint32_t count, uint32_t *written);
int p9_clunk(P9Client *c, uint32_t fid);
int p9_remove(P9Client *c, uint32_t fid);
int p9_getattr(P9Client *c, uint32_t fid, uint64_t mask, P9Attr *a);
int p9_setattr(P9Client *c, uint32_t fid, uint32_t valid, uint32_t mode,
               uint32_t uid, uint32_t gid, uint64_t size, uint64_t atime_sec,
               uint64_t atime_nsec, uint64_t mtime_sec, uint64_t mtime_nsec);
int p9_statfs(P9Client *c, uint32_t fid, P9StatFs *st);
/* Treaddir: the entries' bytes (malloc'd) in *@data, *@len bytes. */
int p9_readdir(P9Client *c, uint32_t fid, uint64_t offset, uint32_t count,
               uint8_t **data, uint32_t *len);
/* Next entry of Rreaddir data; false at the end (or *@bad on garbage). */
bool p9_dirent_next(P9Reader *r, P9Qid *qid, uint64_t *offset, uint8_t *type,
                    char *name, size_t cap, bool *bad);
int p9_xattrwalk(P9Client *c, uint32_t fid, uint32_t newfid, const char *name,
                 uint64_t *size);
int p9_xattrcreate(P9Client *c, uint32_t fid, const char *name, uint64_t size,
                   uint32_t flags);
int p9_mkdir(P9Client *c, uint32_t dfid, const char *name, uint32_t mode,
             uint32_t gid, P9Qid *qid);
int p9_symlink(P9Client *c, uint32_t dfid, const char *name,
               const char *target, uint32_t gid, P9Qid *qid);
int p9_mknod(P9Client *c, uint32_t dfid, const char *name, uint32_t mode,
             uint32_t major, uint32_t minor, uint32_t gid, P9Qid *qid);
int p9_readlink(P9Client *c, uint32_t fid, char *buf, size_t cap);
int p9_link(P9Client *c, uint32_t dfid, uint32_t fid, const char *name);
int p9_rename(P9Client *c, uint32_t fid, uint32_t dfid, const char *name);
int p9_renameat(P9Client *c, uint32_t olddfid, const char *oldname,
                uint32_t newdfid, const char *newname);
int p9_unlinkat(P9Client *c, uint32_t dfid, const char *name, uint32_t flags);
int p9_fsync(P9Client *c, uint32_t fid, uint32_t datasync);
int p9_lock(P9Client *c, uint32_t fid, uint8_t type, uint32_t flags,
            uint64_t start, uint64_t length, uint32_t proc_id,
            const char *client_id, uint8_t *status);
int p9_getlock(P9Client *c, uint32_t fid, uint8_t *type, uint64_t *start,
               uint64_t *length, uint32_t *proc_id, const char *client_id);

#endif
