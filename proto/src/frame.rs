//! Length-prefixed JSON framing: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! The decoder checks the announced length against the limit *before* it reserves memory, so a
//! peer cannot make us allocate by lying about a length. "Not enough bytes yet" is `Ok(None)`,
//! never an error (the mini-redis convention).

use bytes::{Buf, BufMut, BytesMut};
use serde::{Serialize, de::DeserializeOwned};

/// Size of the length prefix in bytes.
pub const LEN_PREFIX: usize = 4;

/// Largest frame body accepted after the handshake (1 MiB): large enough for a diff page or a
/// message history page, small enough that a hostile peer cannot pin much memory per stream.
pub const MAX_FRAME_LEN: usize = 1024 * 1024;

/// Largest handshake or stream-header frame (64 KiB): these are read before the peer is
/// authorized for anything, so they get a tighter bound.
pub const MAX_HEADER_LEN: usize = 64 * 1024;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the limit allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversize {
        /// Announced length.
        len: usize,
        /// Limit in force.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({have} of {need} bytes)")]
    Truncated {
        /// Bytes received (including the prefix).
        have: usize,
        /// Bytes the frame needed (including the prefix).
        need: usize,
    },
    /// The body is not valid JSON for the expected message.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// The parser's explanation.
        reason: String,
    },
}

/// An incremental decoder with a fixed maximum body length.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_len: usize,
}

impl FrameDecoder {
    /// A decoder that refuses bodies longer than `max_len`.
    pub fn new(max_len: usize) -> Self {
        Self { max_len }
    }

    /// The limit in force.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes one frame body off the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; `buf` is untouched then. On success the frame's
    /// bytes are consumed. An oversize prefix is reported as soon as the prefix is complete.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(len) = self.peek_len(buf)? else {
            return Ok(None);
        };
        if buf.len() < LEN_PREFIX + len {
            // Reserve only what is announced and already known to be within the limit.
            buf.reserve(LEN_PREFIX + len - buf.len());
            return Ok(None);
        }
        buf.advance(LEN_PREFIX);
        Ok(Some(buf.split_to(len)))
    }

    /// Decodes one frame and parses it as `T`.
    pub fn decode_json<T: DeserializeOwned>(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<T>, FrameError> {
        match self.decode(buf)? {
            None => Ok(None),
            Some(body) => parse_json(&body).map(Some),
        }
    }

    /// What to report when the stream ends with `buf` still holding bytes: `Ok(())` for a clean
    /// end between frames, [`FrameError::Truncated`] for an end inside one.
    pub fn finish(&self, buf: &BytesMut) -> Result<(), FrameError> {
        if buf.is_empty() {
            return Ok(());
        }
        let need = match self.peek_len(buf)? {
            Some(len) => LEN_PREFIX + len,
            None => LEN_PREFIX,
        };
        Err(FrameError::Truncated {
            have: buf.len(),
            need,
        })
    }

    fn peek_len(&self, buf: &BytesMut) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.get(..LEN_PREFIX) else {
            return Ok(None);
        };
        let mut raw = [0u8; LEN_PREFIX];
        raw.copy_from_slice(prefix);
        let len = u32::from_be_bytes(raw) as usize;
        if len > self.max_len {
            return Err(FrameError::Oversize {
                len,
                max: self.max_len,
            });
        }
        Ok(Some(len))
    }
}

/// Parses a frame body as `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed {
        reason: e.to_string(),
    })
}

/// Encodes `value` as one frame appended to `out`.
///
/// Fails with [`FrameError::Oversize`] if the body would exceed `max_len` (a sender must never
/// produce a frame its peer is bound to refuse).
pub fn encode<T: Serialize>(
    value: &T,
    max_len: usize,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(value).map_err(|e| FrameError::Malformed {
        reason: e.to_string(),
    })?;
    encode_raw(&body, max_len, out)
}

/// Encodes an already serialized body as one frame appended to `out`.
pub fn encode_raw(body: &[u8], max_len: usize, out: &mut BytesMut) -> Result<(), FrameError> {
    if body.len() > max_len {
        return Err(FrameError::Oversize {
            len: body.len(),
            max: max_len,
        });
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::Oversize {
        len: body.len(),
        max: max_len,
    })?;
    out.reserve(LEN_PREFIX + body.len());
    out.put_u32(len);
    out.put_slice(body);
    Ok(())
}

/// Encodes `value` as a fresh frame.
pub fn to_frame<T: Serialize>(value: &T, max_len: usize) -> Result<BytesMut, FrameError> {
    let mut out = BytesMut::new();
    encode(value, max_len, &mut out)?;
    Ok(out)
}

/// Length of the frame [`encode`] would produce for `value`.
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, FrameError> {
    serde_json::to_vec(value)
        .map(|b| LEN_PREFIX + b.len())
        .map_err(|e| FrameError::Malformed {
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn golden_frame_bytes() {
        let frame = to_frame(&json!({"op":"host_list","req_id":1}), MAX_FRAME_LEN).unwrap();
        let mut expected = vec![0u8, 0, 0, 29];
        expected.extend_from_slice(br#"{"op":"host_list","req_id":1}"#);
        assert_eq!(frame.as_ref(), expected.as_slice());
    }

    #[test]
    fn need_more_bytes_is_not_an_error() {
        let dec = FrameDecoder::new(MAX_FRAME_LEN);
        let full = to_frame(&json!([1, 2, 3]), MAX_FRAME_LEN).unwrap();
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(dec.decode(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut, "a partial frame must not be consumed");
        }
        let mut buf = full.clone();
        let v: Value = dec.decode_json(&mut buf).unwrap().unwrap();
        assert_eq!(v, json!([1, 2, 3]));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversize_prefix_is_refused_before_the_body_arrives() {
        let dec = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 17][..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(FrameError::Oversize { len: 17, max: 16 })
        );
        // A hostile 4 GiB prefix must not make us reserve anything near that.
        let mut huge = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            FrameDecoder::new(MAX_FRAME_LEN).decode(&mut huge),
            Err(FrameError::Oversize { .. })
        ));
        assert!(huge.capacity() < 1024);
    }

    #[test]
    fn exact_limit_is_accepted() {
        let body = vec![b'1'; 16];
        let mut out = BytesMut::new();
        encode_raw(&body, 16, &mut out).unwrap();
        assert_eq!(
            FrameDecoder::new(16)
                .decode(&mut out)
                .unwrap()
                .unwrap()
                .len(),
            16
        );
        assert!(encode_raw(&[b'1'; 17], 16, &mut BytesMut::new()).is_err());
    }

    #[test]
    fn truncated_vs_clean_end() {
        let dec = FrameDecoder::new(MAX_FRAME_LEN);
        assert_eq!(dec.finish(&BytesMut::new()), Ok(()));
        assert_eq!(
            dec.finish(&BytesMut::from(&[0u8, 0][..])),
            Err(FrameError::Truncated { have: 2, need: 4 })
        );
        assert_eq!(
            dec.finish(&BytesMut::from(&[0u8, 0, 0, 5, b'{'][..])),
            Err(FrameError::Truncated { have: 5, need: 9 })
        );
    }

    #[test]
    fn invalid_json_is_malformed() {
        let mut out = BytesMut::new();
        encode_raw(b"{not json", MAX_FRAME_LEN, &mut out).unwrap();
        let res: Result<Option<Value>, _> = FrameDecoder::new(MAX_FRAME_LEN).decode_json(&mut out);
        assert!(matches!(res, Err(FrameError::Malformed { .. })));
    }

    #[test]
    fn header_limit_plus_one_is_oversize() {
        let dec = FrameDecoder::new(MAX_HEADER_LEN);
        let prefix = u32::try_from(MAX_HEADER_LEN + 1).unwrap().to_be_bytes();
        let mut buf = BytesMut::from(&prefix[..]);
        let oversize = FrameError::Oversize {
            len: MAX_HEADER_LEN + 1,
            max: MAX_HEADER_LEN,
        };
        assert_eq!(dec.decode(&mut buf), Err(oversize.clone()));
        assert_eq!(dec.finish(&buf), Err(oversize));
        // Exactly the limit is a frame still arriving, not an error.
        let prefix = u32::try_from(MAX_HEADER_LEN).unwrap().to_be_bytes();
        let mut buf = BytesMut::from(&prefix[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), LEN_PREFIX);
    }

    /// Either random bytes, or well-formed frames of random bodies (some JSON) followed by
    /// random trailing bytes, so both the happy path and every error path are reached.
    fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
        let body = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..48),
            Just(b"{\"a\":1}".to_vec()),
            Just(b"[]".to_vec()),
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            (
                proptest::collection::vec(body, 0..6),
                proptest::collection::vec(any::<u8>(), 0..16)
            )
                .prop_map(|(bodies, tail)| {
                    let mut out = BytesMut::new();
                    for b in bodies {
                        encode_raw(&b, usize::MAX, &mut out).unwrap();
                    }
                    out.extend_from_slice(&tail);
                    out.to_vec()
                }),
        ]
    }

    /// Drains `buf` with `dec`: the frames, then how it stopped (`Ok(())` for "need more").
    fn drain(dec: FrameDecoder, buf: &mut BytesMut) -> (Vec<BytesMut>, Result<(), FrameError>) {
        let mut frames = Vec::new();
        loop {
            match dec.decode(buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e)),
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip_and_encoded_len(s in ".{0,200}", n in any::<i64>(), split in 0usize..400) {
            let value = json!({"s": s, "n": n});
            let frame = to_frame(&value, MAX_FRAME_LEN).unwrap();
            prop_assert_eq!(frame.len(), encoded_len(&value).unwrap());
            // Feed the bytes in two pieces at an arbitrary point.
            let dec = FrameDecoder::new(MAX_FRAME_LEN);
            let split = split.min(frame.len());
            let mut buf = BytesMut::from(&frame[..split]);
            let first: Option<Value> = dec.decode_json(&mut buf).unwrap();
            if split < frame.len() {
                prop_assert!(first.is_none());
                buf.extend_from_slice(&frame[split..]);
                let second: Value = dec.decode_json(&mut buf).unwrap().unwrap();
                prop_assert_eq!(second, value);
            } else {
                prop_assert_eq!(first.unwrap(), value);
            }
            prop_assert!(buf.is_empty());
        }

        /// Arbitrary input never panics; it yields frames, then either "need more" (with the
        /// rest untouched) or a typed error, and the outcome does not depend on how the bytes
        /// were split.
        #[test]
        fn arbitrary_input_never_panics(
            input in wire_bytes(),
            max_len in prop_oneof![0usize..64, Just(MAX_HEADER_LEN)],
            split in any::<prop::sample::Index>(),
        ) {
            let dec = FrameDecoder::new(max_len);
            let mut buf = BytesMut::from(&input[..]);
            let (frames, end) = drain(dec, &mut buf);

            let mut consumed = 0;
            for f in &frames {
                prop_assert!(f.len() <= max_len);
                // The frame is exactly what its prefix announced.
                let announced = &input[consumed..consumed + LEN_PREFIX];
                prop_assert_eq!(announced, &(f.len() as u32).to_be_bytes()[..]);
                prop_assert_eq!(&input[consumed + LEN_PREFIX..consumed + LEN_PREFIX + f.len()], &f[..]);
                consumed += LEN_PREFIX + f.len();
            }
            prop_assert_eq!(&buf[..], &input[consumed..], "only whole frames are consumed");
            match &end {
                Ok(()) => {
                    // Need more: an incomplete prefix, or a complete in-limit prefix whose body
                    // has not fully arrived.
                    if buf.len() >= LEN_PREFIX {
                        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                        prop_assert!(len <= max_len && buf.len() < LEN_PREFIX + len);
                    }
                    match dec.finish(&buf) {
                        Ok(()) => prop_assert!(buf.is_empty()),
                        Err(FrameError::Truncated { have, need }) => {
                            prop_assert_eq!(have, buf.len());
                            prop_assert!(have < need);
                        }
                        Err(e) => prop_assert!(false, "finish gave {:?}", e),
                    }
                }
                Err(FrameError::Oversize { len, max }) => {
                    prop_assert_eq!(*max, max_len);
                    prop_assert!(*len > max_len);
                    prop_assert_eq!(*len, u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize);
                }
                Err(e) => prop_assert!(false, "decode can only fail with Oversize, got {:?}", e),
            }

            // Typed JSON decoding of the same frames: a value or Malformed, never a panic.
            for f in &frames {
                let mut one = BytesMut::new();
                encode_raw(f, max_len, &mut one).unwrap();
                match dec.decode_json::<Value>(&mut one) {
                    Ok(Some(v)) => prop_assert_eq!(Some(v), serde_json::from_slice::<Value>(f).ok()),
                    Err(FrameError::Malformed { .. }) => {
                        prop_assert!(serde_json::from_slice::<Value>(f).is_err());
                    }
                    other => prop_assert!(false, "decode_json gave {:?}", other),
                }
            }

            // Feeding the same bytes in two pieces gives the same frames and the same end.
            let at = split.index(input.len() + 1);
            let mut buf2 = BytesMut::from(&input[..at]);
            let (mut frames2, first_end) = drain(dec, &mut buf2);
            let end2 = if first_end.is_err() {
                first_end
            } else {
                buf2.extend_from_slice(&input[at..]);
                let (more, end) = drain(dec, &mut buf2);
                frames2.extend(more);
                end
            };
            prop_assert_eq!(frames2, frames);
            prop_assert_eq!(end2, end);
        }
    }
}
