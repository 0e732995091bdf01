// SPDX-License-Identifier: GPL-2.0-or-later
//! The per-request context every operation takes: the file-system state,
//! the request's tag, session and cancellation flag, and its reply
//! buffers.  References only: building one costs no allocation, lock or
//! copy of the request.

use std::sync::Arc;

use p9_wire::errno::{Errno, EINTR, EINVAL, EMSGSIZE};
use p9_wire::{EncodeError, Rmessage};

use crate::backend::Backend;
use crate::fs::{FidOf, Fs};
use crate::request::{Cancel, LiveSession, Reply, ReplyBuffers, Session};

/// What a handler answers when the fid it names is unknown: 9p.c differs
/// from handler to handler, so each lookup says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `ENOENT`: 9p.c's `get_fid` failing, passed on as is.
    Enoent,
    /// `EINVAL`: 9p.c's handlers that check `fidp == NULL` themselves.
    Einval,
}

/// One request, as an operation sees it.
pub(crate) struct Ctx<'r, 'b, B: Backend> {
    /// The state the operations work on.
    pub(crate) fs: &'r Fs<B>,
    /// Set when a Tflush names the request.
    pub(crate) cancel: &'r Cancel,
    /// The request's tag, for replies encoded in place.
    pub(crate) tag: u16,
    /// The session the request was decoded in.
    pub(crate) session: Session,
    /// The session in force now (a concurrent Tversion may change it).
    live: &'r LiveSession,
    /// Where the reply goes.
    pub(crate) out: &'r mut dyn ReplyBuffers<'b>,
}

impl<'r, 'b, B: Backend> Ctx<'r, 'b, B> {
    /// The context of the request with `tag`, decoded in `session`.
    pub(crate) fn new(
        fs: &'r Fs<B>,
        cancel: &'r Cancel,
        tag: u16,
        session: Session,
        live: &'r LiveSession,
        out: &'r mut dyn ReplyBuffers<'b>,
    ) -> Self {
        Ctx {
            fs,
            cancel,
            tag,
            session,
            live,
            out,
        }
    }

    /// Fid `id`; an unknown one is `missing`'s errno.
    pub(crate) fn fid(&self, id: u32, missing: Missing) -> Result<Arc<FidOf<B>>, Errno> {
        self.fs.fids.get(id).map_err(|e| match missing {
            Missing::Enoent => e,
            Missing::Einval => EINVAL,
        })
    }

    /// Take fid `id` out of the table (Tclunk, Tremove), telling the
    /// session hook if it was the last; an unknown one is `missing`'s
    /// errno.
    pub(crate) fn remove_fid(&self, id: u32, missing: Missing) -> Result<Arc<FidOf<B>>, Errno> {
        let f = self.fs.fids.remove(id).map_err(|e| match missing {
            Missing::Enoent => e,
            Missing::Einval => EINVAL,
        })?;
        self.fs.fids_removed();
        Ok(f)
    }

    /// [`Fs::offload`] for this request.
    pub(crate) fn offload<R: Send>(
        &self,
        f: impl FnOnce() -> Result<R, Errno> + Send,
    ) -> Result<R, Errno> {
        self.fs.offload(self.cancel, f)
    }

    /// The host's throttle before a file read or write (cofile.c: after
    /// the cancellation check, before the backend call); `EINTR` if the
    /// request is cancelled already.  Called in the request's coroutine or
    /// thread, with no lock held.
    pub(crate) fn throttle(&mut self, write: bool, bytes: usize) -> Result<(), Errno> {
        if self.cancel.is_set() {
            return Err(EINTR);
        }
        self.out.throttle(write, bytes);
        Ok(())
    }

    /// Encode `msg` (no error reply) into the reply buffers; its length.
    /// Handlers of frequent requests call it with the message they built
    /// on their stack and return [`Reply::Written`], instead of moving the
    /// message out through their callers.
    pub(crate) fn encode(&mut self, msg: &Rmessage<'_>) -> Result<usize, Errno> {
        let tag = self.tag;
        self.encode_sized(msg.byte_size(), |out| msg.encode(tag, out))
    }

    /// [`Ctx::encode`] as a [`Reply`].
    pub(crate) fn written(&mut self, msg: &Rmessage<'_>) -> Result<Reply, Errno> {
        self.encode(msg).map(Reply::Written)
    }

    /// Encode a reply of `size` bytes with `encode` into the reply
    /// buffers, with [`Ctx::encode`]'s checks; its length.
    pub(crate) fn encode_sized(
        &mut self,
        size: usize,
        encode: impl FnOnce(&mut [&mut [u8]]) -> Result<usize, EncodeError>,
    ) -> Result<usize, Errno> {
        if size > self.session.msize.max(self.live.get().msize) as usize {
            return Err(EMSGSIZE);
        }
        encode(self.out.get(size)).map_err(|_| EMSGSIZE)
    }
}
