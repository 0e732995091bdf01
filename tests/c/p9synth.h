/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An in-memory 9P backend for the C tests, implementing QrsP9BackendOps the
 * way QEMU's 9p-synth does: paths are opaque node pointers, a fixed tree is
 * built at init, plus a writable directory for create/mkdir/unlink tests.
 *
 *   /ReadFileSyscall        P9SYNTH_READ_SIZE bytes of p9synth_pattern()
 *   /WriteFileSyscall       writable, starts empty
 *   /Flush/BlockingRead     reads block until p9synth_release_blocking()
 *   /Flush/WriteEintr       writes whose first byte is 1 fail with EINTR
 *                           (always), 2 fail with EINTR twice per open
 *   /ReadDirDir/file.N      P9SYNTH_DIR_ENTRIES empty files
 *   /stat/xattr_count       reads the server's live xattr fid count (u64)
 *   /dir/                   writable: mkdir, create, symlink, unlink, rename
 *
 * Thread-safe: one mutex around the tree, not held while a read blocks.
 */
#ifndef P9SYNTH_H
#define P9SYNTH_H

#include <pthread.h>
#include <stdint.h>

#include "qemurs.h"

enum {
    P9SYNTH_READ_SIZE = 12345,
    P9SYNTH_DIR_ENTRIES = 100,
};

typedef struct P9Synth P9Synth;

P9Synth *p9synth_new(void);
/* Free the tree; the backend made from it must be freed first. */
void p9synth_free(P9Synth *s);
/*
 * A backend over @s (the caller owns it, as for qrs_p9_backend_c_new).
 * Its get_st_gen gives regular files 0x5000 + their inode number and fails
 * (-ENOTTY) for anything else; its fstat answers for open-but-unlinked
 * files (see p9synth_set_fstat_mode).
 */
int p9synth_backend_new(P9Synth *s, QrsP9Backend **out);
/* The same without some optional functions (P9SYNTH_NO_* bits). */
enum { P9SYNTH_NO_FSTAT = 1, P9SYNTH_NO_GEN = 2 };
int p9synth_backend_new_flags(P9Synth *s, unsigned flags, QrsP9Backend **out);
/* The server whose stats /stat/xattr_count reports. */
void p9synth_set_server(P9Synth *s, const QrsP9Server *server);
/* Count backend calls made on @thread (the coroutine home must see none). */
void p9synth_forbid_thread(P9Synth *s, pthread_t thread);
void p9synth_allow_all_threads(P9Synth *s);
unsigned p9synth_forbidden_calls(P9Synth *s);

/* Reads of /Flush/BlockingRead that entered the backend so far. */
unsigned p9synth_blocking_entered(P9Synth *s);
/* Wait until at least @n blocking reads entered (for at most ~10s). */
int p9synth_wait_blocking_entered(P9Synth *s, unsigned n);
/* Let blocked (and later) blocking reads return. */
void p9synth_release_blocking(P9Synth *s);

/* Handles opened (open, opendir, open2) and closed (close, closedir). */
unsigned p9synth_opens(P9Synth *s);
unsigned p9synth_closes(P9Synth *s);

/* pwritev calls on /Flush/WriteEintr; wait until at least @n (~10s). */
unsigned p9synth_eintr_calls(P9Synth *s);
int p9synth_wait_eintr_calls(P9Synth *s, unsigned n);
/* preadv/pwritev calls on regular files (not the special ones). */
unsigned p9synth_io_calls(P9Synth *s);
/* get_st_gen and fstat calls. */
unsigned p9synth_gen_calls(P9Synth *s);
unsigned p9synth_fstat_calls(P9Synth *s);
/*
 * fstat's behaviour: 0 (works), EBADF (fails with -EBADF: no usable
 * descriptor) or EOPNOTSUPP (fills the stat with uid 4242, then fails with
 * -EOPNOTSUPP, as 9p-local's mapped-file model).
 */
void p9synth_set_fstat_mode(P9Synth *s, int mode);

/* Byte @i of /ReadFileSyscall. */
static inline uint8_t p9synth_pattern(uint64_t i)
{
    return (uint8_t)(i * 7 + 3);
}

#endif
