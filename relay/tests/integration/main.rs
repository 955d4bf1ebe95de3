//! Relay integration tests: real QUIC on 127.0.0.1 with OS-chosen ports. One test binary
//! (submodules) to save link time.

mod bad_input;
mod harness;
mod presence;
