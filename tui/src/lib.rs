//! `cm-tui`: the operator's terminal. Scripting commands (`login`, `hosts`) and the full-screen
//! app share the profile, credential and connection code here.

pub mod action;
pub mod admin_cli;
pub mod admin_trust_cli;
pub mod app;
pub mod call;
pub mod command_error;
pub mod commands;
pub mod config;
pub mod connect;
pub mod e2e_channels;
pub mod effect;
pub mod event;
pub mod exit_code;
pub mod forward_cli;
pub mod fs_git_cli;
pub mod grants_cli;
pub mod key_context;
pub mod keymap;
pub mod login;
pub mod mcp_cli;
pub mod models_cli;
pub mod net;
pub mod profile;
pub mod queue_cli;
pub mod relay_call;
pub mod remote;
pub mod runtime;
pub mod sessions_cli;
pub mod status_cli;
pub mod templates_cli;
pub mod transcript;
pub mod trust;
pub mod ui;
pub mod view;
pub mod workspaces_cli;
