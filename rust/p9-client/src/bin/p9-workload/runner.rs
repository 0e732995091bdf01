// SPDX-License-Identifier: GPL-2.0-or-later
//! Running checks: [`Runner`] counts and prints them, opens connections
//! and sessions; raw frames and a deterministic PRNG for the malformed
//! ones.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use p9_client::{Client, StreamTransport, Transport};
use p9_wire::consts::NOFID;
use p9_wire::Errno;

pub(crate) const MSIZE: u32 = 1 << 20;
/// How long a reply, or the end of a connection, may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) type Conn = Client<Arc<StreamTransport>>;

pub(crate) type CheckResult = Result<String, String>;

/// The checks' bookkeeping and how to reach the server and the export.
pub(crate) struct Runner {
    /// The server's address (`unix:PATH` or `tcp:HOST:PORT`).
    pub(crate) addr: String,
    /// The exported host directory.
    pub(crate) host: PathBuf,
    pub(crate) passed: u32,
    pub(crate) failed: u32,
}

/// `Result<_, Errno>` into the check's error.
pub(crate) fn e<T>(what: &str, r: Result<T, Errno>) -> Result<T, String> {
    r.map_err(|err| format!("{what}: {err}"))
}

impl Runner {
    pub(crate) fn check(&mut self, name: &str, f: impl FnOnce(&mut Self) -> CheckResult) {
        // The client panics on malformed replies: that is a failed check.
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(Ok(note)) if note.is_empty() => {
                self.passed += 1;
                println!("ok   {name}");
            }
            Ok(Ok(note)) => {
                self.passed += 1;
                println!("ok   {name} ({note})");
            }
            Ok(Err(msg)) => {
                self.failed += 1;
                println!("FAIL {name}: {msg}");
            }
            Err(p) => {
                self.failed += 1;
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panic".into());
                println!("FAIL {name}: panicked: {msg}");
            }
        }
    }

    pub(crate) fn connect(&self) -> Result<Arc<StreamTransport>, String> {
        StreamTransport::connect(&self.addr)
            .map(Arc::new)
            .map_err(|err| format!("connecting to {}: {err}", self.addr))
    }

    /// A new connection with a 9P2000.L session and `root` attached.
    pub(crate) fn session(&self) -> Result<(Conn, u32), String> {
        let c = Client::new(self.connect()?);
        let (msize, version) = e("Tversion", c.version(MSIZE, "9P2000.L"))?;
        ensure!(
            version == "9P2000.L" && (4096..=MSIZE).contains(&msize),
            "Rversion {version} msize {msize}"
        );
        let root = c.alloc_fid();
        e("Tattach", c.attach(root, NOFID, "root", "", 0))?;
        Ok((c, root))
    }
}

/// Wait for the outcome of raw `bytes` sent on `t`: `Some(Some(reply))`,
/// `Some(None)` for no reply (the connection ended), `None` on timeout.
pub(crate) fn raw_outcome(t: &StreamTransport, bytes: Vec<u8>) -> Option<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    t.submit(
        bytes,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(PATIENCE).ok()
}

pub(crate) fn frame(typ: u8, tag: u16, body: &[u8]) -> Vec<u8> {
    let size = (7 + body.len()) as u32;
    let mut v = size.to_le_bytes().to_vec();
    v.push(typ);
    v.extend_from_slice(&tag.to_le_bytes());
    v.extend_from_slice(body);
    v
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
