//! Why an end-to-end operation failed. Every message names the likely cause.

/// An end-to-end handshake, record or sealed box failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E2eError {
    /// The OS gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The Noise library refused (bad parameters or a key of the wrong shape).
    #[error("end-to-end handshake setup failed: {0}")]
    Setup(String),
    /// The handshake payload (the operator's certificate chain) does not fit one Noise message.
    #[error(
        "end-to-end handshake payload of {len} bytes exceeds the maximum {max}; send fewer certificates"
    )]
    PayloadTooLarge {
        /// Payload size.
        len: usize,
        /// Largest payload that fits.
        max: usize,
    },
    /// msg1 did not decrypt for this host: it was made for another host key, or was altered.
    #[error(
        "end-to-end handshake message 1 failed to open: it was made for another host key or \
         altered on the way (relay tampering?)"
    )]
    Msg1Rejected,
    /// msg2 did not decrypt: the answer does not come from the holder of the certified host key.
    #[error(
        "end-to-end handshake message 2 failed to open: the answer does not come from the holder \
         of the certified host key, or was altered on the way (relay tampering?)"
    )]
    Msg2Rejected,
    /// A record did not authenticate.
    #[error(
        "end-to-end record failed to open (tampered, wrong key, or cm-tui and cm-agent of \
         versions with different record ciphers: update both)"
    )]
    RecordOpen,
    /// A record length prefix is larger than any record a peer seals.
    #[error(
        "end-to-end record of {len} bytes exceeds the maximum {max} (corrupt stream, or the peer \
         does not seal this stream)"
    )]
    RecordTooLarge {
        /// The announced ciphertext length.
        len: usize,
        /// The largest valid ciphertext length.
        max: usize,
    },
    /// A record length prefix is smaller than the smallest record.
    #[error(
        "end-to-end record of {len} bytes is shorter than the minimum {min} (corrupt stream, or \
         the peer does not seal this stream)"
    )]
    RecordTooShort {
        /// The announced ciphertext length.
        len: usize,
        /// The smallest valid ciphertext length.
        min: usize,
    },
    /// An authenticated record carries an unknown flag or a fin with data (a peer bug).
    #[error("end-to-end record has an invalid flag {0} (peer speaks another record version?)")]
    RecordFlag(u8),
    /// The inner stream ended before the fin record.
    #[error("stream ended without its end-to-end fin record (truncated by the relay?)")]
    Truncated,
    /// Bytes followed the fin record.
    #[error("data after the end-to-end fin record (injected by the relay?)")]
    DataAfterFin,
    /// The writer was used after its fin record was queued.
    #[error("write after the end-to-end stream was shut down")]
    WriteAfterShutdown,
    /// 2^64 records on one stream: never in practice, refused rather than reusing a nonce.
    #[error("end-to-end record counter exhausted; open a new stream")]
    CounterExhausted,
    /// The stream failed earlier; it stays failed.
    #[error("end-to-end stream already failed: {0}")]
    Failed(Box<Self>),
    /// A sealed box is shorter than its fixed header.
    #[error("sealed box of {len} bytes is too short (minimum {min}); it is not a sealed box")]
    SealedTooShort {
        /// Its length.
        len: usize,
        /// Its minimum length.
        min: usize,
    },
    /// A sealed box failed to open.
    #[error(
        "sealed box failed to open: it was sealed to another host key or altered (relay tampering?)"
    )]
    SealedOpen,
    /// A channel id that is not 32 hex digits.
    #[error("end-to-end channel id must be 32 hex digits, got {0:?}")]
    ChannelIdHex(String),
}

impl E2eError {
    /// The error as an `std::io::Error` of kind `InvalidData` (its source is `self`).
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, self)
    }
}

impl From<E2eError> for std::io::Error {
    fn from(e: E2eError) -> Self {
        e.into_io()
    }
}
