// SPDX-License-Identifier: GPL-2.0-or-later
//! Unit tests of the thread-mode host.

use super::*;
use std::io::{IoSlice, IoSliceMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use p9_wire::errno::ENOSYS;
use p9_wire::types::StatFs;
use p9_wire::{Proto, Rmessage, Tmessage};

use crate::backend::{Attr, Cred, DirEntry, Result, SetAttr};
use crate::Config;

/// A backend that refuses everything (Tversion needs none); `attach`
/// first waits for the gate to open.
#[derive(Default)]
struct Nothing {
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Backend for Nothing {
    type Node = ();
    type Handle = ();

    fn attach(&self, _: &[u8], _: &Cred) -> Result<((), Attr)> {
        let (open, cv) = &*self.gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        Err(ENOSYS)
    }
    fn walk(&self, _: &(), _: &[&[u8]]) -> Result<Vec<((), Attr)>> {
        Err(ENOSYS)
    }
    fn clone_node(&self, _: &()) -> Result<()> {
        Err(ENOSYS)
    }
    fn getattr(&self, _: &()) -> Result<Attr> {
        Err(ENOSYS)
    }
    fn setattr(&self, _: &(), _: Option<&()>, _: &SetAttr) -> Result<()> {
        Err(ENOSYS)
    }
    fn open(&self, _: &(), _: i32) -> Result<()> {
        Err(ENOSYS)
    }
    fn opendir(&self, _: &()) -> Result<()> {
        Err(ENOSYS)
    }
    fn create(&self, _: &(), _: &[u8], _: i32, _: u32, _: &Cred) -> Result<((), (), Attr)> {
        Err(ENOSYS)
    }
    fn mkdir(&self, _: &(), _: &[u8], _: u32, _: &Cred) -> Result<Attr> {
        Err(ENOSYS)
    }
    fn symlink(&self, _: &(), _: &[u8], _: &[u8], _: &Cred) -> Result<Attr> {
        Err(ENOSYS)
    }
    fn mknod(&self, _: &(), _: &[u8], _: u32, _: u64, _: &Cred) -> Result<Attr> {
        Err(ENOSYS)
    }
    fn link(&self, _: &(), _: &(), _: &[u8]) -> Result<()> {
        Err(ENOSYS)
    }
    fn readlink(&self, _: &()) -> Result<Vec<u8>> {
        Err(ENOSYS)
    }
    fn rename(&self, _: &(), _: &[u8], _: &(), _: &[u8]) -> Result<()> {
        Err(ENOSYS)
    }
    fn unlink(&self, _: &(), _: &[u8], _: bool) -> Result<()> {
        Err(ENOSYS)
    }
    fn remove(&self, _: &()) -> Result<()> {
        Err(ENOSYS)
    }
    fn read(&self, _: &(), _: u64, _: &mut [IoSliceMut<'_>]) -> Result<usize> {
        Err(ENOSYS)
    }
    fn write(&self, _: &(), _: u64, _: &[IoSlice<'_>]) -> Result<usize> {
        Err(ENOSYS)
    }
    fn fsync(&self, _: &(), _: bool) -> Result<()> {
        Err(ENOSYS)
    }
    fn readdir(
        &self,
        _: &(),
        _: &(),
        _: u64,
        _: bool,
        _: &mut dyn FnMut(&DirEntry<'_>) -> bool,
    ) -> Result<()> {
        Err(ENOSYS)
    }
    fn statfs(&self, _: &()) -> Result<StatFs> {
        Err(ENOSYS)
    }
}

fn host(threads: usize) -> ThreadHost<Nothing> {
    ThreadHost::new(
        Arc::new(Server::new(Nothing::default(), Config::default())),
        threads,
    )
}

fn version(tag: u16, msize: u32) -> Vec<u8> {
    Tmessage::Version {
        msize,
        version: "9P2000.L".into(),
    }
    .encode_to_vec(tag)
    .unwrap()
}

#[test]
fn version_round_trip() {
    let h = host(2);
    let reply = h.call(version(0xffff, 8192)).expect("a reply");
    let (tag, msg) = Rmessage::decode_slice(&reply, Proto::DotL, 8192).unwrap();
    assert_eq!(tag, 0xffff);
    assert_eq!(
        msg,
        Rmessage::Version {
            msize: 8192,
            version: "9P2000.L".into()
        }
    );
    assert_eq!(h.server().msize(), 8192);
    assert_eq!(h.server().proto(), Proto::DotL);
}

#[test]
fn replies_carry_the_request_tag() {
    let h = host(2);
    for tag in [0, 1, 0x1234, 0xfffe, 0xffff] {
        let reply = h.call(version(tag, 8192)).expect("a reply");
        let hdr = p9_wire::Header::peek(SgView::from_slice(&reply)).unwrap();
        assert_eq!(hdr.tag, tag);
        assert_eq!(hdr.size as usize, reply.len());
    }
}

#[test]
fn flushed_reply_is_delivered_before_rflush() {
    let h = host(4);
    h.call(version(0xffff, 8192)).expect("Rversion");
    let gate = Arc::clone(&h.server().backend().gate);
    let order = Arc::new(Mutex::new(Vec::new()));
    let attach = Tmessage::Attach {
        fid: 1,
        afid: u32::MAX,
        uname: "root".into(),
        aname: "".into(),
        n_uname: 0,
    };
    let o = Arc::clone(&order);
    h.submit(attach.encode_to_vec(7).unwrap(), move |r| {
        // Slow down the flushed request's delivery: the Rflush must
        // still come after it.
        std::thread::sleep(Duration::from_millis(50));
        o.lock().unwrap().push(("attach", r.is_some()));
    });
    let (tx, rx) = mpsc::channel();
    let o = Arc::clone(&order);
    let flush = Tmessage::Flush { oldtag: 7 };
    h.submit(flush.encode_to_vec(8).unwrap(), move |r| {
        o.lock().unwrap().push(("flush", r.is_some()));
        tx.send(()).unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    {
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
    rx.recv_timeout(Duration::from_secs(10)).expect("Rflush");
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 2, "{order:?}");
    assert_eq!(order[0].0, "attach", "{order:?}");
    assert_eq!(order[1], ("flush", true), "{order:?}");
}

#[test]
fn too_short_request_gets_no_reply() {
    let h = host(2);
    assert_eq!(h.call(vec![1, 2, 3]), None);
    // The host keeps working afterwards.
    assert!(h.call(version(1, 8192)).is_some());
}

#[test]
fn default_thread_count_is_at_least_two() {
    let h = host(0);
    let threads = h.pool().threads();
    assert!(threads.len() >= 2);
    assert_eq!(threads.len(), h.pool().thread_count());
    for t in threads.iter() {
        let name = t.thread().name().unwrap();
        assert!(name.starts_with("p9-host-"), "{name}");
    }
}

#[test]
fn drop_finishes_queued_requests() {
    let replied = Arc::new(AtomicUsize::new(0));
    {
        let h = host(2);
        for tag in 0..64 {
            let replied = Arc::clone(&replied);
            h.submit(version(tag, 8192), move |r| {
                assert!(r.is_some());
                replied.fetch_add(1, Ordering::SeqCst);
            });
        }
    }
    assert_eq!(replied.load(Ordering::SeqCst), 64);
}

#[test]
fn many_submitters() {
    let h = host(4);
    std::thread::scope(|s| {
        for t in 0..8u16 {
            let h = &h;
            s.spawn(move || {
                for i in 0..50u16 {
                    let tag = t * 100 + i;
                    let reply = h.call(version(tag, 8192)).unwrap();
                    let hdr = p9_wire::Header::peek(SgView::from_slice(&reply)).unwrap();
                    assert_eq!(hdr.tag, tag);
                }
            });
        }
    });
}

#[test]
fn panicking_callback_keeps_the_pool_alive() {
    let h = host(1);
    h.submit(version(1, 8192), |_| {
        panic!("callback panics (expected in this test)")
    });
    // The single thread survives and serves the next request.
    let (tx, rx) = mpsc::channel();
    h.submit(version(2, 8192), move |r| tx.send(r.is_some()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
}
