// SPDX-License-Identifier: GPL-2.0-or-later
//! Malformed frames, each on a fresh connection: the server answers with
//! an error or drops the connection, and still serves afterwards.

use std::sync::Arc;

use p9_client::Client;
use p9_wire::consts::getattr;
use p9_wire::msgtype::{RERROR, RLERROR, TVERSION, TWALK};

use crate::runner::{e, frame, raw_outcome, CheckResult, Rng, Runner, MSIZE, PATIENCE};

/// Malformed frames, each on a fresh connection.
pub(crate) fn malformed(r: &mut Runner) {
    // answered_or_dropped: the outcome of `bytes` after a session is set
    // up (when `version`), and then whether the connection still works.
    fn answered_or_dropped(r: &Runner, version: bool, bytes: Vec<u8>) -> CheckResult {
        let t = r.connect()?;
        let c = Client::new(Arc::clone(&t));
        if version {
            e("Tversion", c.version(MSIZE, "9P2000.L"))?;
        }
        match raw_outcome(&t, bytes) {
            None => Err("neither a reply nor a closed connection".into()),
            Some(None) => {
                ensure!(t.is_closed(), "no reply yet the connection is open");
                Ok("connection dropped".into())
            }
            Some(Some(reply)) => {
                ensure!(
                    reply[4] == RLERROR || reply[4] == RERROR,
                    "reply of type {} is not an error",
                    reply[4]
                );
                // The connection goes on: a Tversion still works.
                let v = frame(TVERSION, 0xffff, &{
                    let mut b = 8192u32.to_le_bytes().to_vec();
                    b.extend_from_slice(&8u16.to_le_bytes());
                    b.extend_from_slice(b"9P2000.L");
                    b
                });
                match raw_outcome(&t, v) {
                    Some(Some(rv)) if rv[4] == TVERSION + 1 => {
                        Ok(format!("error reply, type {}", reply[4]))
                    }
                    other => Err(format!("after the error reply, Tversion gave {other:?}")),
                }
            }
        }
    }

    /// Send `bytes` as they are, half-close, and expect the server to end
    /// the connection (any replies before that are fine).
    fn dropped_after(r: &Runner, bytes: &[u8], half_close: bool) -> CheckResult {
        let t = r.connect()?;
        t.send_bytes(bytes).map_err(|x| x.to_string())?;
        if half_close {
            // The server sees EOF where it waits for more of the frame.
            t.shutdown_write().map_err(|x| x.to_string())?;
        }
        ensure!(t.wait_closed(PATIENCE), "connection still open");
        Ok(String::new())
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    r.check("malformed: garbage body with a valid size", |r| {
        let mut body = rng.bytes(40);
        body[0] = 0xff; // a fid no one attached
        answered_or_dropped(r, true, frame(TWALK, 3, &body))
    });
    r.check(
        "malformed: truncated body (Twalk of 3 names, 1 sent)",
        |r| {
            let mut body = Vec::new();
            body.extend_from_slice(&1u32.to_le_bytes());
            body.extend_from_slice(&2u32.to_le_bytes());
            body.extend_from_slice(&3u16.to_le_bytes());
            body.extend_from_slice(&3u16.to_le_bytes());
            body.extend_from_slice(b"abc");
            answered_or_dropped(r, true, frame(TWALK, 4, &body))
        },
    );
    r.check("malformed: unknown message type 200", |r| {
        answered_or_dropped(r, true, frame(200, 5, b"\x01\x02\x03"))
    });
    r.check("malformed: request before Tversion", |r| {
        answered_or_dropped(r, false, frame(TWALK, 6, &[0; 10]))
    });
    r.check("malformed: frame cut short, then EOF", |r| {
        let mut f = frame(TWALK, 7, &[0; 93]);
        f.truncate(20);
        dropped_after(r, &f, true)
    });
    r.check("malformed: size field 3", |r| {
        dropped_after(r, &[3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], false)
    });
    r.check("malformed: size field 4 GiB - 1", |r| {
        let mut f = vec![0xff; 4];
        f.extend(rng.bytes(64));
        dropped_after(r, &f, false)
    });
    r.check("malformed: size above msize_max", |r| {
        let mut f = (64u32 << 20).to_le_bytes().to_vec();
        f.extend([TWALK, 0, 0]);
        dropped_after(r, &f, false)
    });
    for round in 0..4 {
        r.check(&format!("malformed: 4 KiB of random bytes #{round}"), |r| {
            let mut bytes = rng.bytes(4096);
            if round % 2 == 1 {
                // A plausible size, so the body gets parsed as a message.
                bytes[..4].copy_from_slice(&200u32.to_le_bytes());
            }
            dropped_after(r, &bytes, true)
        });
    }
    r.check("server still serves a new connection", |r| {
        let (c, root) = r.session()?;
        let st = e("Tgetattr", c.getattr(root, getattr::BASIC))?;
        ensure!(st.qid.typ & 0x80 != 0, "root is not a directory");
        e("Tclunk", c.clunk(root))?;
        Ok(String::new())
    });
}
