// SPDX-License-Identifier: GPL-2.0-or-later
//! The plain 9P stream framing (Linux `trans=fd`/`trans=tcp`): messages
//! back to back, each starting with its own little-endian `size[4]`.

use std::io::Read;

/// Read one whole message (its size field included) from `r`.  `None` at
/// end of stream, on a read error, or when the size field is below the
/// 7-byte header or above `max`: framing that cannot be trusted cannot be
/// resynchronised, so the caller drops the connection.
pub fn read_frame(r: &mut impl Read, max: u32) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    r.read_exact(&mut size).ok()?;
    let n = u32::from_le_bytes(size);
    if !(7..=max).contains(&n) {
        return None;
    }
    let mut msg = vec![0u8; n as usize];
    msg[..4].copy_from_slice(&size);
    r.read_exact(&mut msg[4..]).ok()?;
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_and_bad_sizes_refused() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[8, 0, 0, 0, 1, 2, 3, 4]);
        bytes.extend_from_slice(&[7, 0, 0, 0, 9, 9, 9]);
        let mut r = &bytes[..];
        assert_eq!(read_frame(&mut r, 100), Some(vec![8, 0, 0, 0, 1, 2, 3, 4]));
        assert_eq!(read_frame(&mut r, 100), Some(vec![7, 0, 0, 0, 9, 9, 9]));
        assert_eq!(read_frame(&mut r, 100), None, "end of stream");
        assert_eq!(read_frame(&mut &[6u8, 0, 0, 0, 0, 0][..], 100), None);
        assert_eq!(read_frame(&mut &[101u8, 0, 0, 0][..], 100), None);
        assert_eq!(
            read_frame(&mut &[9u8, 0, 0, 0, 1][..], 100),
            None,
            "cut short"
        );
    }
}
