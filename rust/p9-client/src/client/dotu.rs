// SPDX-License-Identifier: GPL-2.0-or-later
//! The 9P2000.u operations of [`Client`]: Topen, Tcreate, Tstat, Twstat
//! and directory reads (stats, not Treaddir entries).

use p9_wire::{max_read_count, Errno, Qid, Rmessage, SgView, Stat, Tmessage};

use super::{Client, MAX_DIR_CALLS};
use crate::transport::Transport;

impl<T: Transport> Client<T> {
    /// Topen with an [`p9_wire::consts::omode`] byte: the qid and iounit.
    pub fn open(&self, fid: u32, mode: u8) -> Result<(Qid, u32), Errno> {
        let msg = Tmessage::Open { fid, mode };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Open { qid, iounit } => (qid, iounit)))
    }

    /// Tcreate: `name` in directory `fid` (which becomes the new file's
    /// fid) with `perm` ([`p9_wire::consts::dm`] type bits included),
    /// `mode` and the .u `extension`.  The qid and iounit.
    pub fn create(
        &self,
        fid: u32,
        name: impl AsRef<[u8]>,
        perm: u32,
        mode: u8,
        extension: impl AsRef<[u8]>,
    ) -> Result<(Qid, u32), Errno> {
        let msg = Tmessage::Create {
            fid,
            name: name.as_ref().into(),
            perm,
            mode,
            extension: extension.as_ref().into(),
        };
        Ok(expect_msg!(self.call(&msg)?, Rmessage::Create { qid, iounit } => (qid, iounit)))
    }

    /// Tstat.
    pub fn stat(&self, fid: u32) -> Result<Stat, Errno> {
        let r = self.call(&Tmessage::Stat { fid })?;
        Ok(expect_msg!(r, Rmessage::Stat { stat } => stat))
    }

    /// Twstat (start from [`Stat::dont_touch`] and set what changes).
    pub fn wstat(&self, fid: u32, stat: &Stat) -> Result<(), Errno> {
        let msg = Tmessage::Wstat {
            fid,
            stat: stat.clone(),
        };
        self.call(&msg).map(drop)
    }

    /// One Tread on an open 9P2000.u directory: the stats in the reply.
    ///
    /// # Panics
    /// When the stats do not parse.
    pub fn read_dir_u(&self, fid: u32, offset: u64, count: u32) -> Result<Vec<Stat>, Errno> {
        Ok(self.read_dir_u_bytes(fid, offset, count)?.1)
    }

    fn read_dir_u_bytes(
        &self,
        fid: u32,
        offset: u64,
        count: u32,
    ) -> Result<(usize, Vec<Stat>), Errno> {
        let data = self.read(fid, offset, count)?;
        let stats = Stat::iter(SgView::from_slice(&data))
            .map(|s| s.unwrap_or_else(|e| panic!("p9-client: bad stat in directory read: {e}")))
            .collect();
        Ok((data.len(), stats))
    }

    /// Read a whole 9P2000.u directory (offsets advance by the bytes
    /// returned, as 9P2000 requires).
    ///
    /// # Panics
    /// When the server never reaches the end.
    pub fn read_dir_u_all(&self, fid: u32) -> Result<Vec<Stat>, Errno> {
        let count = max_read_count(self.msize().min(1 << 24));
        let mut offset = 0u64;
        let mut out = Vec::new();
        for _ in 0..MAX_DIR_CALLS {
            let (n, stats) = self.read_dir_u_bytes(fid, offset, count)?;
            if n == 0 {
                return Ok(out);
            }
            offset += n as u64;
            out.extend(stats);
        }
        panic!("p9-client: directory read on fid {fid} never reached the end");
    }
}
