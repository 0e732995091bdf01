// SPDX-License-Identifier: GPL-2.0-or-later
//! A [`Transport`] over a stream socket with plain 9P framing (each
//! message carries its own little-endian `size[4]`), as Linux's
//! `trans=fd` / `trans=tcp` use it.
//!
//! Requests are written whole, under a lock, in submission order.  A reader
//! thread reads the replies and hands each to the oldest request waiting
//! for its tag.  Since a stream says nothing about a request a Tflush
//! cancelled, the Rflush of a Tflush also settles the request it names
//! ("no reply") if that one has not been answered: a server answers a
//! flushed request, if at all, before the Rflush.  When the connection
//! ends (EOF, a read or write error, a reply whose size cannot be a 9P
//! message, or [`StreamTransport::close`]) every request still waiting
//! gets "no reply", and so does every later one.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use p9_wire::msgtype::{RFLUSH, TFLUSH};

use crate::transport::Transport;

/// A reply bigger than this is taken for a broken stream (9P's msize is a
/// `u32`, but no server negotiates more than a few MiB).
const MAX_REPLY: u32 = 1 << 28;

type Done = Box<dyn FnOnce(Option<Vec<u8>>) + Send>;

/// A Unix or TCP stream.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

/// A request waiting for its reply.
struct Waiter {
    seq: u64,
    done: Done,
    /// For a Tflush: the `seq` of the request it flushes, if one was
    /// waiting when it was sent.
    flushes: Option<(u16, u64)>,
}

#[derive(Default)]
struct State {
    /// By tag, oldest first (a tag may be reused while in flight by tests).
    waiting: HashMap<u16, VecDeque<Waiter>>,
    /// Requests too short to carry a tag: settled when the connection ends.
    untagged: Vec<Done>,
    next_seq: u64,
    closed: bool,
    /// Replies that matched no waiting request.
    stray: u64,
}

struct Shared {
    state: Mutex<State>,
    closed_cv: Condvar,
    writer: Mutex<Stream>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn writer(&self) -> MutexGuard<'_, Stream> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection is over: settle everything still waiting.
    fn close(&self) {
        let (waiting, untagged) = {
            let mut st = self.lock();
            st.closed = true;
            (
                std::mem::take(&mut st.waiting),
                std::mem::take(&mut st.untagged),
            )
        };
        self.closed_cv.notify_all();
        for w in waiting.into_values().flatten() {
            (w.done)(None);
        }
        for d in untagged {
            d(None);
        }
    }

    /// Deliver one reply (called on the reader thread, without locks held).
    fn deliver(&self, reply: Vec<u8>) {
        let tag = u16::from_le_bytes([reply[5], reply[6]]);
        let (done, flushed) = {
            let mut st = self.lock();
            let Some(w) = take_waiter(&mut st.waiting, tag, None) else {
                st.stray += 1;
                return;
            };
            let flushed = match (w.flushes, reply[4]) {
                (Some((old, seq)), RFLUSH) => take_waiter(&mut st.waiting, old, Some(seq)),
                _ => None,
            };
            (w.done, flushed)
        };
        // The flushed request settles before the Rflush is handed out, as
        // with the in-process host.
        if let Some(f) = flushed {
            (f.done)(None);
        }
        done(Some(reply));
    }
}

/// Remove the oldest waiter for `tag` (or the one numbered `seq`).
fn take_waiter(
    waiting: &mut HashMap<u16, VecDeque<Waiter>>,
    tag: u16,
    seq: Option<u64>,
) -> Option<Waiter> {
    let q = waiting.get_mut(&tag)?;
    let w = match seq {
        None => q.pop_front(),
        Some(seq) => {
            let i = q.iter().position(|w| w.seq == seq)?;
            q.remove(i)
        }
    };
    if q.is_empty() {
        waiting.remove(&tag);
    }
    w
}

/// A 9P [`Transport`] over a Unix or TCP stream socket.
///
/// Dropping it closes the connection (requests still waiting get "no
/// reply") and joins the reader thread.
pub struct StreamTransport {
    shared: Arc<Shared>,
    /// To shut the socket down from any thread without the writer lock.
    control: Stream,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl StreamTransport {
    /// Connect to `unix:PATH` or `tcp:HOST:PORT`.
    ///
    /// # Errors
    /// A malformed address, or the connection's error.
    pub fn connect(addr: &str) -> io::Result<StreamTransport> {
        if let Some(path) = addr.strip_prefix("unix:") {
            Self::connect_unix(path)
        } else if let Some(hp) = addr.strip_prefix("tcp:") {
            Self::connect_tcp(hp)
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("address {addr:?}: want unix:PATH or tcp:HOST:PORT"),
            ))
        }
    }

    /// Connect to the Unix socket at `path`.
    ///
    /// # Errors
    /// The connection's error.
    pub fn connect_unix(path: impl AsRef<Path>) -> io::Result<StreamTransport> {
        Self::from_unix(UnixStream::connect(path)?)
    }

    /// Connect over TCP (with `TCP_NODELAY`: 9P is request/reply).
    ///
    /// # Errors
    /// The connection's error.
    pub fn connect_tcp(addr: impl ToSocketAddrs) -> io::Result<StreamTransport> {
        Self::from_tcp(TcpStream::connect(addr)?)
    }

    /// Use a connected Unix stream.
    ///
    /// # Errors
    /// If the stream cannot be cloned or the reader thread spawned.
    pub fn from_unix(s: UnixStream) -> io::Result<StreamTransport> {
        Self::start(Stream::Unix(s))
    }

    /// Use a connected TCP stream.
    ///
    /// # Errors
    /// If the stream cannot be cloned or the reader thread spawned.
    pub fn from_tcp(s: TcpStream) -> io::Result<StreamTransport> {
        s.set_nodelay(true)?;
        Self::start(Stream::Tcp(s))
    }

    fn start(stream: Stream) -> io::Result<StreamTransport> {
        let reader_stream = stream.try_clone()?;
        let control = stream.try_clone()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            closed_cv: Condvar::new(),
            writer: Mutex::new(stream),
        });
        let s = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("p9-stream-reader".into())
            .spawn(move || read_loop(reader_stream, &s))?;
        Ok(StreamTransport {
            shared,
            control,
            reader: Mutex::new(Some(reader)),
        })
    }

    /// Write `bytes` as they are, without waiting for anything (frames
    /// that are not 9P messages, for malformed-input tests).
    ///
    /// # Errors
    /// The write's error (the connection is then closed).
    pub fn send_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let r = self.shared.writer().write_all(bytes);
        if r.is_err() {
            self.close();
        }
        r
    }

    /// Half-close: tell the server no more requests come (it sees EOF);
    /// replies are still read.
    ///
    /// # Errors
    /// The socket's error.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.control.shutdown(Shutdown::Write)
    }

    /// Close the connection; requests still waiting get "no reply".
    pub fn close(&self) {
        let _ = self.control.shutdown(Shutdown::Both);
        self.shared.close();
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Wait at most `timeout` for the connection to end (the server closed
    /// it, or [`StreamTransport::close`]); whether it did.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while !st.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .closed_cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// How many replies matched no waiting request so far.
    pub fn stray_replies(&self) -> u64 {
        self.shared.lock().stray
    }
}

impl Transport for StreamTransport {
    fn submit(&self, req: Vec<u8>, done: Box<dyn FnOnce(Option<Vec<u8>>) + Send>) {
        {
            let mut st = self.shared.lock();
            if st.closed {
                drop(st);
                done(None);
                return;
            }
            // Registered before it is written, so the reply cannot win.
            if req.len() < 7 {
                st.untagged.push(done);
            } else {
                let tag = u16::from_le_bytes([req[5], req[6]]);
                let flushes = if req[4] == TFLUSH && req.len() >= 9 {
                    let old = u16::from_le_bytes([req[7], req[8]]);
                    st.waiting
                        .get(&old)
                        .and_then(|q| q.back())
                        .map(|w| (old, w.seq))
                } else {
                    None
                };
                let seq = st.next_seq;
                st.next_seq += 1;
                st.waiting
                    .entry(tag)
                    .or_default()
                    .push_back(Waiter { seq, done, flushes });
            }
        }
        // A failed write ends the connection, which settles this request.
        let _ = self.send_bytes(&req);
    }
}

impl Drop for StreamTransport {
    fn drop(&mut self) {
        self.close();
        let reader = self
            .reader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(r) = reader {
            let _ = r.join();
        }
    }
}

fn read_loop(mut s: Stream, shared: &Shared) {
    while let Some(reply) = p9_wire::stream::read_frame(&mut s, MAX_REPLY) {
        shared.deliver(reply);
    }
    let _ = s.shutdown(Shutdown::Both);
    shared.close();
}
