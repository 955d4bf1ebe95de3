//! The tunnel's record format, without any I/O: inside the outer TLS every QUIC datagram
//! travels as one record, a big-endian `u16` length followed by that many bytes. Empty records
//! and records above the receiver's limit are refused: no QUIC datagram is empty, and none is
//! larger than the tunnel's MTU, so either means the peer does not speak this protocol.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 2;

/// Why a record cannot be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A zero length.
    #[error(
        "an empty tunnel record: the peer is not speaking the CodeMantle TCP tunnel (check that the address is the relay's TCP port)"
    )]
    Empty,
    /// A length above the limit.
    #[error(
        "a tunnel record of {len} bytes is larger than the {max}-byte limit: the peer is not speaking the CodeMantle TCP tunnel, or runs a version with a larger MTU"
    )]
    TooLarge {
        /// The announced or given length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

fn check(len: usize, max: usize) -> Result<(), RecordError> {
    let max = max.min(usize::from(u16::MAX));
    if len == 0 {
        Err(RecordError::Empty)
    } else if len > max {
        Err(RecordError::TooLarge { len, max })
    } else {
        Ok(())
    }
}

/// Appends `datagram` as one record to `out`.
///
/// # Errors
/// An empty datagram, or one longer than `max` (at most `u16::MAX`).
pub fn encode(datagram: &[u8], max: usize, out: &mut BytesMut) -> Result<(), RecordError> {
    check(datagram.len(), max)?;
    let len = u16::try_from(datagram.len()).map_err(|_| RecordError::TooLarge {
        len: datagram.len(),
        max: usize::from(u16::MAX),
    })?;
    out.reserve(HEADER_LEN + datagram.len());
    out.put_u16(len);
    out.put_slice(datagram);
    Ok(())
}

/// Splits records off the front of a receive buffer.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max: usize,
}

impl Decoder {
    /// A decoder refusing records longer than `max`.
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// The next whole record in `buf` (removed from it), or `None` until more bytes arrive.
    /// A bad length is reported as soon as its two bytes are in, before the body.
    ///
    /// # Errors
    /// An empty or oversized record; the stream cannot be resynchronised after it.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, RecordError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        check(len, self.max)?;
        if buf.len() < HEADER_LEN + len {
            buf.reserve(HEADER_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(datagrams: &[&[u8]]) -> BytesMut {
        let mut out = BytesMut::new();
        for d in datagrams {
            encode(d, 1000, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_record_is_a_big_endian_length_then_the_bytes() {
        assert_eq!(&encoded(&[b"abc"])[..], &[0, 3, b'a', b'b', b'c']);
        let mut buf = encoded(&[b"abc", b"de"]);
        let d = Decoder::new(1000);
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(d.decode(&mut buf).unwrap().as_deref(), Some(&b"de"[..]));
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_record_split_anywhere_waits_for_the_rest() {
        let whole = encoded(&[b"hello", b"world!"]);
        for cut in 0..whole.len() {
            let d = Decoder::new(1000);
            let mut buf = BytesMut::from(&whole[..cut]);
            let mut out = Vec::new();
            while let Some(r) = d.decode(&mut buf).unwrap() {
                out.push(r);
            }
            buf.extend_from_slice(&whole[cut..]);
            while let Some(r) = d.decode(&mut buf).unwrap() {
                out.push(r);
            }
            assert_eq!(out, vec![&b"hello"[..], &b"world!"[..]], "cut at {cut}");
        }
    }

    #[test]
    fn empty_and_oversized_records_are_refused_before_their_body_arrives() {
        let d = Decoder::new(4);
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert_eq!(d.decode(&mut buf), Err(RecordError::Empty));
        // The header alone is enough to refuse: garbage never makes the reader wait for 64 KiB.
        let mut buf = BytesMut::from(&[0u8, 5][..]);
        let err = d.decode(&mut buf).unwrap_err();
        assert_eq!(err, RecordError::TooLarge { len: 5, max: 4 });
        assert!(
            err.to_string()
                .contains("not speaking the CodeMantle TCP tunnel")
        );
        // An HTTP request is refused at once too ("GE" = 18245 bytes).
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
        assert!(matches!(
            Decoder::new(16_384).decode(&mut buf),
            Err(RecordError::TooLarge { len: 18_245, .. })
        ));
        let mut out = BytesMut::new();
        assert_eq!(encode(b"", 4, &mut out), Err(RecordError::Empty));
        assert!(matches!(
            encode(b"12345", 4, &mut out),
            Err(RecordError::TooLarge { len: 5, max: 4 })
        ));
        assert!(matches!(
            encode(&vec![1; 70_000], usize::MAX, &mut out),
            Err(RecordError::TooLarge { max: 65_535, .. })
        ));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn records_round_trip_however_the_stream_is_chunked(
            datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20),
            chunk in 1usize..64,
        ) {
            let mut wire = BytesMut::new();
            for d in &datagrams {
                encode(d, 300, &mut wire).unwrap();
            }
            let d = Decoder::new(300);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(r) = d.decode(&mut buf).unwrap() {
                    out.push(r.to_vec());
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out, datagrams);
        }
    }
}
