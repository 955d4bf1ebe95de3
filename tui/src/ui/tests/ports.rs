//! Whole-screen snapshots of the ports panel: the host's ports, a forward running with its
//! local URL and open connections, and the host's refusal. At the usual sizes and 60 columns.

use super::{both, narrow, screen, steady};
use crate::app::tests::Drive;
use crate::app::tests::ports::{at_ports, forwarding, refused};

/// The usual two sizes and a narrow one.
fn all(d: &Drive) -> String {
    format!("{}{}", both(&d.app), screen(&d.app, 60, 24))
}

#[test]
fn ports_panel_lists_port_process_workspace_and_what_may_be_forwarded() {
    let d = steady(at_ports());
    let text = screen(&d.app, 80, 24);
    for needle in ["ports on box", "8000", "python3", "demo", "postgres"] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "ports_panel_lists_port_process_workspace_and_what_may_be_forwarded_narrow",
        narrow(&d.app)
    );
}

#[test]
fn ports_panel_shows_the_forward_url_and_its_connections() {
    let (d, _) = forwarding();
    let d = steady(d);
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("forwarding http://127.0.0.1:8000 → box:8000 · 2 connections"),
        "{text}"
    );
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "ports_panel_shows_the_forward_url_and_its_connections_narrow",
        narrow(&d.app)
    );
}

#[test]
fn ports_panel_shows_the_hosts_refusal() {
    let d = steady(refused());
    let text = screen(&d.app, 140, 40);
    assert!(text.contains("cannot forward port 5432"), "{text}");
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!("ports_panel_shows_the_hosts_refusal_narrow", narrow(&d.app));
}
