//! `cm-tui`: the operator's terminal. Scripting commands (`login`, `hosts`) and the full-screen
//! app share the profile, credential and connection code here.

pub mod connect;
pub mod login;
pub mod profile;
pub mod runtime;
