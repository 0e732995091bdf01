// SPDX-License-Identifier: GPL-2.0-or-later
//! `encode_rwalk` (a server's Rwalk from qids on its stack) gives the
//! bytes `Rmessage::Walk` gives.

use p9_wire::{encode_rwalk, rwalk_size, Qid, Rmessage};

#[test]
fn rwalk_without_a_vector_is_the_same_bytes() {
    for n in [0usize, 1, 3, 16] {
        let qids: Vec<Qid> = (0..n)
            .map(|i| Qid {
                typ: i as u8,
                version: 7 * i as u32,
                path: 1 << i,
            })
            .collect();
        let msg = Rmessage::Walk {
            wqids: qids.clone(),
        };
        let want = msg.encode_to_vec(9).unwrap();
        assert_eq!(rwalk_size(&qids), want.len());
        let mut buf = vec![0u8; want.len()];
        assert_eq!(
            encode_rwalk(9, &qids, &mut [&mut buf[..]]).unwrap(),
            want.len()
        );
        assert_eq!(buf, want);
        // Across buffers too.
        let (mut a, mut b) = (vec![0u8; 5], vec![0u8; want.len() - 5]);
        encode_rwalk(9, &qids, &mut [&mut a[..], &mut b[..]]).unwrap();
        assert_eq!([a, b].concat(), want);
    }
}
