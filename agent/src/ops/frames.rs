//! Length-prefixed JSON frames over any `AsyncRead`/`AsyncWrite`: the one reader and writer
//! (with its write timeout) is `cm_client::framed`; these are its names on the agent's side.

pub use cm_client::framed::{
    FramedRecv as FrameReader, StreamError as FrameIoError, send_frame as write_frame,
};
