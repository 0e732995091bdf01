// SPDX-License-Identifier: GPL-2.0-or-later
//! What a client sends requests through.

use std::sync::Arc;

use p9_engine::backend::Backend;
use p9_engine::host::ThreadHost;

/// Carries request bytes to a 9P server and reply bytes back.
///
/// `submit` must not wait for the reply: it queues the request and calls
/// `done` later (on any thread) with the reply bytes, or `None` when the
/// server sends no reply (a flushed request).  Requests are delivered in
/// the order they were submitted.
pub trait Transport: Send + Sync + 'static {
    /// Queue the request `req` (one whole 9P message, or any bytes for
    /// malformed-input tests); `done` gets the reply.
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>);
}

impl<B: Backend> Transport for ThreadHost<B> {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        ThreadHost::submit(self, req, done);
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        (**self).submit(req, done);
    }
}
