//! A zero-trust agent (`serve_stream` over in-memory pipes, as the relay would forward) with a
//! `HostTrust` built here: an owner root, a grant for the operator `ana`, a fresh revocation
//! list; and the operator's side (signing, opening a channel, sealing) written out plainly, so
//! each test can play an honest operator or a relay that changes what it forwards.

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cm_agent::config::{OpencodeConfig, Workspace};
use cm_agent::ops::frames::{FrameReader, write_frame};
use cm_agent::trust::HostTrust;
use cm_agent::workspaces::Workspaces;
use cm_client::e2e::{Channel, ChannelId, HostKeyPair, Side, seal_stream};
use parking_lot::Mutex;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::Role;
use proto::trust::header::{SignInput, body_hash, sign};
use proto::trust::{
    Cert, CertBody, DeviceKey, E2eOpen, E2eOpened, RevocationBody, RevocationList, Root, Subject,
};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub(crate) const HOST: &str = "box";
pub(crate) const WS: &str = "secret-project-name";
pub(crate) const DAY: u64 = 86_400_000;

pub(crate) fn now() -> u64 {
    cm_client::time::now_ms()
}

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).expect("a 32-byte seed")
}

/// A grant signed by `issuer`.
pub(crate) fn grant(
    issuer: &DeviceKey,
    serial: &str,
    user: &str,
    k: &DeviceKey,
    role: Role,
) -> Cert {
    grant_until(issuer, serial, user, k, role, now() + DAY)
}

/// A grant valid until `not_after_ms`.
pub(crate) fn grant_until(
    issuer: &DeviceKey,
    serial: &str,
    user: &str,
    k: &DeviceKey,
    role: Role,
    not_after_ms: u64,
) -> Cert {
    Cert::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from(user),
                device_keys: vec![k.public()],
                host: HOST.into(),
                role,
            },
            not_before_ms: now() - DAY,
            not_after_ms,
        },
        issuer,
    )
}

/// A revocation list by `issuer`.
pub(crate) fn revocations(
    issuer: &DeviceKey,
    seq: u64,
    issued_ms: u64,
    serials: &[&str],
) -> RevocationList {
    RevocationList::sign(
        &RevocationBody {
            issuer_user: UserId::from("owner"),
            seq,
            issued_ms,
            serials: serials.iter().map(|s| (*s).to_owned()).collect(),
            keys: Vec::new(),
        },
        issuer,
    )
}

/// Log lines the agent wrote (the `cm_agent::audit` ones among them).
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One zero-trust agent and the people around it.
pub(crate) struct Fixture {
    pub(crate) owner: DeviceKey,
    pub(crate) ana: DeviceKey,
    pub(crate) host_key: HostKeyPair,
    pub(crate) trust: Arc<HostTrust>,
    pub(crate) workspaces: Arc<Workspaces>,
    /// The certificates `ana` shows.
    pub(crate) certs: Vec<Cert>,
    pub(crate) logs: Logs,
    _log_guard: tracing::subscriber::DefaultGuard,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    /// A zero-trust host whose newest owner list was issued at `list_issued_ms`; `ana` holds
    /// `role` by a root-signed grant.
    pub(crate) fn new(role: Role, list_issued_ms: u64) -> Result<Self> {
        Self::with_trust(Some(role), list_issued_ms)
    }

    /// The same host, relay-trusted (no `HostTrust`).
    pub(crate) fn relay_trusted() -> Result<Self> {
        Self::with_trust(None, now())
    }

    fn with_trust(role: Option<Role>, list_issued_ms: u64) -> Result<Self> {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join(WS);
        std::fs::create_dir(&root)?;
        let list = vec![Workspace {
            name: WS.into(),
            root: std::fs::canonicalize(&root)?,
            permissions: Default::default(),
            sandbox: cm_agent::sandbox::SandboxConfig {
                mode: cm_agent::sandbox::Mode::Off,
                ..Default::default()
            },
        }];
        let workspaces =
            Workspaces::spawn(&list, OpencodeConfig::default(), &tmp.path().join("state"));
        let owner = key(1);
        let ana = key(2);
        let host_key = HostKeyPair::from_secret([9; 32]);
        let trust = Arc::new(HostTrust::new(
            HostId::from(HOST),
            vec![Root {
                user: UserId::from("owner"),
                key: owner.public(),
            }],
            host_key.secret(),
            DAY,
        ));
        trust.accept_revocations(&[revocations(&owner, 1, list_issued_ms, &[])], now());
        if role.is_some() {
            workspaces.set_trust(Arc::clone(&trust));
        }
        let certs = vec![grant(
            &owner,
            "g-ana",
            "ana",
            &ana,
            role.unwrap_or(Role::Viewer),
        )];
        Ok(Self {
            owner,
            ana,
            host_key,
            trust,
            workspaces,
            certs,
            logs,
            _log_guard: guard,
            _tmp: tmp,
        })
    }

    /// The agent started again on the same state directory (what it kept on disk survives,
    /// its memory does not).
    pub(crate) fn restart(&mut self) -> Result<()> {
        let list = vec![Workspace {
            name: WS.into(),
            root: std::fs::canonicalize(self._tmp.path().join(WS))?,
            permissions: Default::default(),
            sandbox: cm_agent::sandbox::SandboxConfig {
                mode: cm_agent::sandbox::Mode::Off,
                ..Default::default()
            },
        }];
        self.workspaces = Workspaces::spawn(
            &list,
            OpencodeConfig::default(),
            &self._tmp.path().join("state"),
        );
        self.workspaces.set_trust(Arc::clone(&self.trust));
        Ok(())
    }

    /// The relay's forward header around `header`: it says `ana`, operator.
    pub(crate) fn forward(header: StreamHeader) -> ForwardHeader {
        ForwardHeader {
            header,
            principal: UserId::from("ana"),
            role: Role::Operator,
            cred_id: CredId::from("cred-ana"),
        }
    }

    /// Sends `fwd` and then `after` (raw bytes: frames, plain or sealed) to a fresh
    /// `serve_stream`, ends the operator's side, and returns everything the agent wrote.
    pub(crate) async fn exchange(&self, fwd: &ForwardHeader, after: &[u8]) -> Result<Vec<u8>> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (server_r, server_w) = tokio::io::split(server);
        let ws = Arc::clone(&self.workspaces);
        let agent = tokio::spawn(async move {
            cm_agent::ops::serve_stream(&ws, server_r, server_w, std::future::pending()).await;
        });
        let (mut client_r, mut client_w) = tokio::io::split(client);
        write_frame(&mut client_w, fwd, MAX_HEADER_LEN).await?;
        client_w.write_all(after).await?;
        client_w.shutdown().await?;
        let mut out = Vec::new();
        client_r.read_to_end(&mut out).await?;
        agent.await?;
        Ok(out)
    }
}

/// One operator request, signed.
pub(crate) struct Signed {
    pub(crate) header: StreamHeader,
    pub(crate) nonce: [u8; 16],
}

/// `header` for `op`, signed by `key` as `user`.
pub(crate) fn signed(
    user: &str,
    key: &DeviceKey,
    op: Op,
    workspace: Option<&str>,
    body: Option<&[u8]>,
    channel: Option<ChannelId>,
) -> Result<Signed> {
    signed_at(now(), user, key, op, workspace, body, channel)
}

/// A `workspace_list` signed by `ana` on `channel` (the request most tests send).
pub(crate) fn signed_listing(fx: &Fixture, channel: ChannelId) -> Result<Signed> {
    signed("ana", &fx.ana, Op::WorkspaceList, None, None, Some(channel))
}

/// As [`signed`], signed at `ts_ms`, for session `ses_1` when `op` is a prompt.
pub(crate) fn signed_at(
    ts_ms: u64,
    user: &str,
    key: &DeviceKey,
    op: Op,
    workspace: Option<&str>,
    body: Option<&[u8]>,
    channel: Option<ChannelId>,
) -> Result<Signed> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).context("randomness")?;
    let mut header = StreamHeader {
        op,
        req_id: ReqId(7),
        host: Some(HostId::from(HOST)),
        workspace: workspace.map(str::to_owned),
        session: (op == Op::Prompt).then(|| "ses_1".to_owned()),
        auth: None,
        mac: None,
    };
    sign(
        &mut header,
        SignInput {
            user: &UserId::from(user),
            key,
            nonce,
            now_ms: ts_ms,
            body: body.map(body_hash),
            channel: channel.map(|c| c.to_hex()),
            template: None,
        },
    )?;
    Ok(Signed { header, nonce })
}

/// `s` with `channel`'s MAC over its signature, as cm-tui sends a stream on a channel.
pub(crate) fn with_mac(mut s: Signed, channel: &Channel) -> Result<Signed> {
    proto::trust::header_mac::attach_mac(&mut s.header, &channel.header_mac_key())?;
    Ok(s)
}

/// `json` as one frame (length prefix and bytes).
pub(crate) fn frame(json: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(json.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(json);
    out
}

/// The first frame of `bytes` parsed as a reply, and what follows it.
pub(crate) async fn first_reply<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Reply<T>, Vec<u8>)> {
    let mut r = FrameReader::new(bytes, MAX_FRAME_LEN);
    let reply = r.expect::<Reply<T>>().await?;
    let rest = r.take_buffered().to_vec();
    let mut tail = Vec::new();
    r.into_inner().read_to_end(&mut tail).await?;
    Ok((reply, [rest, tail].concat()))
}

/// A queued prompt's body: `prompt` sealed to `fx`'s host key.
pub(crate) fn sealed_prompt(fx: &Fixture, prompt: &[u8]) -> Result<Vec<u8>> {
    let sealed = cm_client::e2e::seal_to_host(&fx.host_key.public(), prompt)?;
    Ok(serde_json::to_vec(
        &serde_json::json!({ "sealed": URL_SAFE_NO_PAD.encode(sealed) }),
    )?)
}

/// `e2e_open` body for the certificates `certs` to `fx`'s host key: the body bytes and the
/// operator's pending handshake.
pub(crate) fn open_body(
    fx: &Fixture,
    certs: &[Cert],
) -> Result<(Vec<u8>, cm_client::e2e::PendingChannel)> {
    open_body_in(fx, certs, Some(cm_client::e2e::RECORD_FORMAT))
}

/// [`open_body`] saying it seals records in `records` (`None`: a build from before the field).
pub(crate) fn open_body_in(
    fx: &Fixture,
    certs: &[Cert],
    records: Option<u32>,
) -> Result<(Vec<u8>, cm_client::e2e::PendingChannel)> {
    let payload = serde_json::to_vec(certs)?;
    let (pending, msg1) = cm_client::e2e::open_channel(&fx.host_key.public(), &payload)?;
    let body = serde_json::to_vec(&E2eOpen {
        msg1: URL_SAFE_NO_PAD.encode(msg1),
        records,
    })?;
    Ok((body, pending))
}

/// Opens a channel as `ana` showing `certs`; the agent's refusal as an error.
pub(crate) async fn open_channel(fx: &Fixture, certs: &[Cert]) -> Result<Channel> {
    let (body, pending) = open_body(fx, certs)?;
    let s = signed("ana", &fx.ana, Op::E2eOpen, None, Some(&body), None)?;
    let out = fx
        .exchange(&Fixture::forward(s.header), &frame(&body))
        .await?;
    match first_reply::<E2eOpened>(&out).await?.0 {
        Reply::Ok(opened) => {
            let msg2 = URL_SAFE_NO_PAD.decode(opened.msg2)?;
            Ok(pending.finish(&msg2)?)
        }
        Reply::Error(e) => bail!("e2e_open refused: {e}"),
    }
}

/// What came back on a channel stream.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Refused in a plain error frame.
    Refused(proto::wire_error::WireError),
    /// Accepted: the sealed reply, and the bytes as the relay saw them.
    Sealed(Reply<Value>, Vec<u8>),
}

/// Sends `fwd` with `body` sealed on `channel` (keys from `nonce`), and reads the answer.
pub(crate) async fn call_sealed(
    fx: &Fixture,
    channel: &Channel,
    nonce: &[u8; 16],
    fwd: &ForwardHeader,
    body: Option<&[u8]>,
) -> Result<Answer> {
    let keys = channel.stream_keys(nonce, Side::Operator);
    let mut sealed = Vec::new();
    {
        let (_, mut send) = seal_stream(keys.clone(), tokio::io::empty(), &mut sealed);
        if let Some(body) = body {
            send.write_all(&frame(body)).await?;
        }
        send.shutdown().await?;
    }
    let out = fx.exchange(fwd, &sealed).await?;
    // A refusal is one plain error frame; anything else is sealed (as cm-tui reads it).
    if let Ok((Reply::Error(e), _)) = first_reply::<serde::de::IgnoredAny>(&out).await {
        return Ok(Answer::Refused(e));
    }
    let (mut recv, _) = seal_stream(keys, out.as_slice(), tokio::io::sink());
    let mut plain = Vec::new();
    recv.read_to_end(&mut plain).await?;
    let (reply, _) = first_reply::<Value>(&plain).await?;
    Ok(Answer::Sealed(reply, out))
}
