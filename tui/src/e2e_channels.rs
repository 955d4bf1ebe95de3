//! Host streams, signed and sealed (issue #20): the one place cm-tui opens a stream to a host's
//! agent, for the scripting commands ([`crate::remote`]), the app ([`crate::net`]) and port
//! forwards ([`crate::forward_cli`]).
//!
//! On a zero-trust profile (an [`OperatorTrust`] with roots), each host gets one end-to-end
//! channel per connection: its key comes from a host certificate that chains to this laptop's
//! roots (fetched from the relay with `trust_fetch` when missing, checked here), the channel is
//! opened with a signed `e2e_open`, and every stream to the host then carries a header signed
//! with this laptop's device key (fresh nonce, time, channel id, body hash) and the channel's
//! MAC over that signature (`proto::trust::header_mac`: the host authenticates the header by it
//! and verifies the signature beside the work), followed by sealed records only. A host without a valid certificate is used relay-trusted (plaintext, as before,
//! and shown so) unless a certificate vouched for it once ([`OperatorTrust::pinned_hosts`]):
//! then it is refused, never sent plaintext. Relay operations (no host) stay plaintext and
//! unsigned: the relay answers them itself.
//!
//! Over 600 lines because opening, signing, sealing, sniffing the first frame and retrying on a
//! lost channel are one state machine per host stream.

mod auto_certify;
mod prefixed;
mod sealed_template;
#[cfg(test)]
mod tests;
mod vouched;

pub use prefixed::Prefixed;

use crate::profile::Profile;
use crate::trust::OperatorTrust;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cm_client::LinkError;
use cm_client::e2e::{self, Channel, ChannelId, MaybeSealedRecv, MaybeSealedSend, Side};
use cm_client::framed::{FramedRecv, StreamError, WRITE_TIMEOUT, send_frame, write_within};
use cm_client::time::{now_ms, random32};
use proto::frame::{LEN_PREFIX, MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::Bytes32;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::op;
use proto::operation::{BodyKind, Operation, Unary};
use proto::trust::header::{self as signed_header, SignInput};
use proto::trust::header_mac;
use proto::trust::{E2eOpen, E2eOpened, TrustBundle, TrustQuery, X25519Public};
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt as _};

/// The wire name of the agent's "I do not know this channel" error (it restarted, or the
/// channel expired): the channel is opened again and the request retried once.
pub const CHANNEL_UNKNOWN: &str = "e2e_channel_unknown";

/// Request ids of this module's own requests (`e2e_open`, `trust_fetch`) start here, apart from
/// the app's, the watches' and the forwards' (logs only).
const OWN_REQ_BASE: u64 = 1 << 42;

/// The receive half of a host stream: sealed on a verified host, plain otherwise.
pub type HostRecvStream = MaybeSealedRecv<Prefixed<quinn::RecvStream>>;
/// The framed receive half of a host stream.
pub type HostRecv = FramedRecv<HostRecvStream>;
/// The send half of a host stream.
pub type HostSend = MaybeSealedSend<quinn::SendStream>;

/// Tells the host the operator stopped reading.
pub fn stop(recv: &mut HostRecv, code: u32) {
    let _ = recv
        .get_mut()
        .get_mut()
        .get_mut()
        .stop(quinn::VarInt::from_u32(code));
}

/// How this laptop talks to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMode {
    /// End-to-end: its key is vouched for by a certificate from this laptop's roots, every
    /// request is signed and every byte after the header sealed.
    Verified,
    /// Plaintext through the relay, as before zero-trust (no roots here, or no host
    /// certificate yet): the relay could read and change what goes there.
    RelayTrusted,
}

impl HostMode {
    /// The marker the host list shows.
    pub fn label(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::RelayTrusted => "relay-trusted",
        }
    }
}

/// What to do with the send half once the body is out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// End the send half after the body (every operation but `port_forward`).
    pub finish: bool,
    /// QUIC send priority, if not the default.
    pub priority: Option<i32>,
}

impl OpenOptions {
    /// Body, then end of the send half.
    pub const FINISH: Self = Self {
        finish: true,
        priority: None,
    };
}

/// An opened host stream, its body sent; the first reply is next on `recv`.
#[derive(Debug)]
pub struct HostStream {
    /// Send half (already ended when opened with [`OpenOptions::finish`]).
    pub send: HostSend,
    /// Receive half.
    pub recv: HostRecv,
}

/// How one host is reached on this connection.
#[derive(Clone)]
enum Route {
    Plain,
    Sealed(Channel),
}

/// Hears when the trust state changed (certificates fetched, a host pinned), to save it.
pub type OnChange = Box<dyn Fn(&OperatorTrust) + Send + Sync>;

/// Hears how a host is reached once that is known.
pub type OnMode = Box<dyn Fn(&HostId, HostMode) + Send + Sync>;

/// Per host: its route once known; the lock makes concurrent first requests share one open.
type Slot = Arc<tokio::sync::Mutex<Option<Route>>>;

/// One connection's host streams and end-to-end channels.
pub struct HostStreams {
    conn: quinn::Connection,
    trust: Option<Mutex<OperatorTrust>>,
    slots: Mutex<HashMap<HostId, Slot>>,
    modes: Mutex<HashMap<HostId, HostMode>>,
    next_req: AtomicU64,
    on_change: Option<OnChange>,
    on_mode: Option<OnMode>,
    /// Bind secrets of the hosts this laptop added (`admin host add`): their proven key
    /// claims are certified here on first contact ([`auto_certify`]).
    binds: Mutex<BTreeMap<HostId, Bytes32>>,
}

impl std::fmt::Debug for HostStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostStreams")
            .field("zero_trust", &self.trust.is_some())
            .finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn protocol(what: impl std::fmt::Display) -> LinkError {
    LinkError::Protocol(what.to_string())
}

fn nonce16() -> Result<[u8; 16], LinkError> {
    let r = random32().map_err(|e| protocol(format!("no randomness for a stream nonce: {e}")))?;
    let mut n = [0u8; 16];
    n.copy_from_slice(&r[..16]);
    Ok(n)
}

/// What the first frame of a sealed stream turned out to be.
enum Sniffed {
    /// The agent's plain verdict (`{"ok":null}`: it accepted the header and the channel), or
    /// a sealed record at once (or nothing yet): read on through the sealed half.
    Sealed,
    /// A plaintext refusal (the relay's, or the agent's before it could seal).
    Refused(WireError),
    /// The agent does not know the channel.
    ChannelUnknown,
}

/// The loose shape of a plaintext error, so an error code this build does not know yet
/// (`e2e_channel_unknown`) is still recognised.
#[derive(serde::Deserialize)]
struct LooseReply {
    error: LooseError,
}

#[derive(serde::Deserialize)]
struct LooseError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads the first frame of a sealed stream raw: the agent's plain verdict is consumed, a
/// plaintext refusal is returned as such, anything else is put back for the sealed reader
/// (which refuses what does not open). Whoever wrote a plain frame, it can only stop the
/// stream, never put bytes into what the sealed half yields.
async fn sniff(recv: &mut Prefixed<quinn::RecvStream>) -> Result<Sniffed, LinkError> {
    let inner = recv.get_mut();
    let mut got = Vec::new();
    let complete = read_up_to(inner, &mut got, LEN_PREFIX).await?;
    let mut verdict = Sniffed::Sealed;
    if complete {
        let mut len = [0u8; LEN_PREFIX];
        len.copy_from_slice(&got[..LEN_PREFIX]);
        let len = u32::from_be_bytes(len) as usize;
        if len <= MAX_FRAME_LEN && read_up_to(inner, &mut got, LEN_PREFIX + len).await? {
            let body = &got[LEN_PREFIX..];
            if is_accepted(body) {
                return Ok(Sniffed::Sealed);
            }
            verdict = plaintext_refusal(body).unwrap_or(Sniffed::Sealed);
        }
    }
    if matches!(verdict, Sniffed::Sealed) {
        recv.put_back(got);
    }
    Ok(verdict)
}

/// Reads from `inner` until `buf` holds `want` bytes; false when the stream ended first.
async fn read_up_to(
    inner: &mut quinn::RecvStream,
    buf: &mut Vec<u8>,
    want: usize,
) -> Result<bool, LinkError> {
    while buf.len() < want {
        let mut chunk = vec![0u8; want - buf.len()];
        let n = AsyncReadExt::read(inner, &mut chunk)
            .await
            .map_err(StreamError::Read)?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(true)
}

/// Whether `body` is the agent's plain verdict accepting the stream (`{"ok":null}`).
fn is_accepted(body: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<Reply<serde_json::Value>>(body),
        Ok(Reply::Ok(serde_json::Value::Null))
    )
}

/// A plaintext error frame, if `body` is one.
fn plaintext_refusal(body: &[u8]) -> Option<Sniffed> {
    let loose: LooseReply = serde_json::from_slice(body).ok()?;
    if loose.error.code == CHANNEL_UNKNOWN {
        return Some(Sniffed::ChannelUnknown);
    }
    Some(Sniffed::Refused(
        serde_json::from_slice::<Reply<serde::de::IgnoredAny>>(body)
            .ok()
            .and_then(|r| r.into_result().err())
            .unwrap_or_else(|| WireError::new(ErrorCode::Internal, loose.error.message)),
    ))
}

impl HostStreams {
    /// Host streams on `conn`; `trust` makes them zero-trust when it has roots. `on_change` hears
    /// of each host a certificate vouched for the first time (to save the trust file).
    pub fn new(
        conn: quinn::Connection,
        trust: Option<OperatorTrust>,
        on_change: Option<OnChange>,
    ) -> Self {
        Self {
            conn,
            trust: trust.filter(OperatorTrust::zero_trust).map(Mutex::new),
            slots: Mutex::new(HashMap::new()),
            modes: Mutex::new(HashMap::new()),
            next_req: AtomicU64::new(OWN_REQ_BASE),
            on_change,
            on_mode: None,
            binds: Mutex::new(BTreeMap::new()),
        }
    }

    /// The same, certifying on first contact the hosts whose bind secrets are in `binds`.
    #[must_use]
    pub fn with_binds(mut self, binds: BTreeMap<HostId, Bytes32>) -> Self {
        self.binds = Mutex::new(binds);
        self
    }

    /// Notes the bind secret of a host this laptop just enrolled (from the administration
    /// screen), so that its key claim is certified on first contact in this session too.
    pub fn add_bind(&self, host: HostId, bind: Bytes32) {
        locked(&self.binds).insert(host, bind);
    }

    /// The same, telling `on_mode` how each host is reached once that is known.
    #[must_use]
    pub fn with_on_mode(mut self, on_mode: OnMode) -> Self {
        self.on_mode = Some(on_mode);
        self
    }

    /// The QUIC connection.
    pub fn conn(&self) -> &quinn::Connection {
        &self.conn
    }

    /// How `host` is reached: relay-trusted for every host on a profile without roots;
    /// otherwise known once a stream went to it (`None` before).
    pub fn host_mode(&self, host: &HostId) -> Option<HostMode> {
        if self.trust.is_none() {
            return Some(HostMode::RelayTrusted);
        }
        locked(&self.modes).get(host).copied()
    }

    /// Whether this profile verifies hosts (has roots).
    pub fn zero_trust(&self) -> bool {
        self.trust.is_some()
    }

    /// One request of operation `O`: `O`'s body in, `O`'s reply out (signed and sealed to a
    /// verified host).
    ///
    /// # Errors
    /// [`LinkError::Refused`] carries the typed error of a refused request.
    pub async fn call<O: Unary>(
        &self,
        header: &StreamHeader,
        body: &O::Body,
    ) -> Result<O::Reply, LinkError> {
        let header = StreamHeader {
            op: O::OP,
            ..header.clone()
        };
        let body = (O::BODY != BodyKind::None).then_some(body);
        self.request(&header, body).await
    }

    /// Sends `header` and `body`, reads one reply.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn request<B: Serialize, T: DeserializeOwned>(
        &self,
        header: &StreamHeader,
        body: Option<&B>,
    ) -> Result<T, LinkError> {
        let mut stream = self.open(header, body, OpenOptions::FINISH).await?;
        let reply: Reply<T> = stream.recv.expect().await?;
        reply.into_result().map_err(LinkError::Refused)
    }

    /// Opens a stream: `header` (signed for a verified host), then `body` (sealed for one).
    /// A refusal that came before the first sealed byte (from the relay, or the agent) is
    /// returned here; an agent that lost the channel gets a new one and the stream once more.
    ///
    /// # Errors
    /// Refusals (among them a host whose key is no longer vouched for), transport failures.
    pub async fn open<B: Serialize>(
        &self,
        header: &StreamHeader,
        body: Option<&B>,
        options: OpenOptions,
    ) -> Result<HostStream, LinkError> {
        let frame = body
            .map(|b| proto::frame::to_frame(b, MAX_FRAME_LEN))
            .transpose()
            .map_err(StreamError::from)?;
        let frame = frame.as_deref();
        // The relay answers its own operations: they stay plaintext and unsigned, whatever
        // host the header names.
        let host = match &header.host {
            Some(host) if !header.op.is_relay_local() => host.clone(),
            _ => return self.open_plain(header, frame, options).await,
        };
        let mut retried = false;
        loop {
            let channel = match self.route(&host).await {
                Ok(Route::Plain) => return self.open_plain(header, frame, options).await,
                Ok(Route::Sealed(channel)) => channel,
                // No channel to an offline host: a prompt is sealed to its key and queued.
                Err(LinkError::Refused(w))
                    if w.code == ErrorCode::HostOffline && header.op == Op::Prompt =>
                {
                    return self.open_queued(&host, header, frame, options).await;
                }
                Err(e) => return Err(e),
            };
            // A template goes to a verified host inside the sealed body, fetched here.
            let (filled, template) = if header.op == Op::TemplateApply
                && let Some(frame) = frame
            {
                let (filled, id) = sealed_template::fill(self, frame).await?;
                (Some(filled), Some(id))
            } else {
                (None, None)
            };
            let frame = filled.as_deref().or(frame);
            match self
                .open_sealed(&channel, header, frame, options, template)
                .await?
            {
                Ok(stream) => return Ok(stream),
                Err(()) if !retried => {
                    tracing::info!(%host, "the host lost the end-to-end channel; opening a new one");
                    self.forget(&host, channel.id()).await;
                    retried = true;
                }
                Err(()) => {
                    return Err(protocol(format!(
                        "host {host} lost a fresh end-to-end channel at once; try again"
                    )));
                }
            }
        }
    }

    async fn open_plain(
        &self,
        header: &StreamHeader,
        frame: Option<&[u8]>,
        options: OpenOptions,
    ) -> Result<HostStream, LinkError> {
        let (mut send, recv) = self.conn.open_bi().await?;
        if let Some(p) = options.priority {
            let _ = send.set_priority(p);
        }
        send_frame(&mut send, header, MAX_HEADER_LEN).await?;
        if let Some(frame) = frame {
            write_within(&mut send, frame, WRITE_TIMEOUT).await?;
        }
        if options.finish {
            let _ = send.finish();
        }
        let recv = MaybeSealedRecv::Plain(Prefixed::new(recv));
        Ok(HostStream {
            send: MaybeSealedSend::Plain(send),
            recv: FramedRecv::new(recv, MAX_FRAME_LEN),
        })
    }

    /// A sealed stream on `channel`; `Err(())` inside when the agent does not know it.
    /// `template` is the template the body carries (`template_apply`), named in the signature.
    async fn open_sealed(
        &self,
        channel: &Channel,
        header: &StreamHeader,
        frame: Option<&[u8]>,
        options: OpenOptions,
        template: Option<proto::template::TemplateRef>,
    ) -> Result<Result<HostStream, ()>, LinkError> {
        let nonce = nonce16()?;
        let mut header = header.clone();
        let body = frame.map(|f| signed_header::body_hash(&f[LEN_PREFIX..]));
        self.sign(&mut header, nonce, body, Some(channel.id()), template)?;
        header_mac::attach_mac(&mut header, &channel.header_mac_key()).map_err(protocol)?;
        let (mut send, recv) = self.conn.open_bi().await?;
        if let Some(p) = options.priority {
            let _ = send.set_priority(p);
        }
        send_frame(&mut send, &header, MAX_HEADER_LEN).await?;
        let keys = channel.stream_keys(&nonce, Side::Operator);
        let (mut recv, mut send) = e2e::seal_stream(keys, Prefixed::new(recv), send);
        if let Some(frame) = frame {
            write_within(&mut send, frame, WRITE_TIMEOUT).await?;
        }
        if options.finish {
            tokio::time::timeout(WRITE_TIMEOUT, send.shutdown())
                .await
                .map_err(|_| StreamError::WriteTimeout(WRITE_TIMEOUT))?
                .map_err(StreamError::Write)?;
        }
        match sniff(recv.get_mut()).await? {
            Sniffed::Sealed => Ok(Ok(HostStream {
                send: MaybeSealedSend::Sealed(send),
                recv: FramedRecv::new(MaybeSealedRecv::Sealed(recv), MAX_FRAME_LEN),
            })),
            Sniffed::Refused(w) => Err(LinkError::Refused(w)),
            Sniffed::ChannelUnknown => Ok(Err(())),
        }
    }

    /// A prompt for a verified host that is offline: its body sealed to the host's certified
    /// key (`{"sealed": base64url}`) under a header signed without a channel, over the prompt
    /// JSON's hash; the relay keeps it opaque until the host is back (see the agent's
    /// `ops::e2e::queued`).
    async fn open_queued(
        &self,
        host: &HostId,
        header: &StreamHeader,
        frame: Option<&[u8]>,
        options: OpenOptions,
    ) -> Result<HostStream, LinkError> {
        let prompt = frame
            .and_then(|f| f.get(LEN_PREFIX..))
            .ok_or_else(|| protocol("a prompt without a body"))?;
        let key = self.vouched_key(host).await?.ok_or_else(|| {
            LinkError::Refused(WireError::new(
                ErrorCode::HostOffline,
                format!(
                    "host {host} is offline and no certificate vouches for its key, so the \
                     prompt cannot be sealed for it; try again when it is online"
                ),
            ))
        })?;
        let sealed = e2e::seal_to_host(&key.0, prompt).map_err(protocol)?;
        let body = serde_json::json!({ "sealed": URL_SAFE_NO_PAD.encode(sealed) });
        let sealed_frame =
            proto::frame::to_frame(&body, MAX_FRAME_LEN).map_err(StreamError::from)?;
        let mut header = header.clone();
        self.sign(
            &mut header,
            nonce16()?,
            Some(signed_header::body_hash(prompt)),
            None,
            None,
        )?;
        self.open_plain(&header, Some(&sealed_frame), options).await
    }

    /// Signs `header` with this laptop's device key.
    fn sign(
        &self,
        header: &mut StreamHeader,
        nonce: [u8; 16],
        body: Option<String>,
        channel: Option<ChannelId>,
        template: Option<proto::template::TemplateRef>,
    ) -> Result<(), LinkError> {
        let trust = self
            .trust
            .as_ref()
            .ok_or_else(|| protocol("no device key"))?;
        let trust = locked(trust);
        let input = SignInput {
            user: &trust.user,
            key: &trust.key,
            nonce,
            now_ms: now_ms(),
            body,
            channel: channel.map(|c| c.to_hex()),
            template,
        };
        signed_header::sign(header, input).map_err(protocol)
    }

    fn slot(&self, host: &HostId) -> Slot {
        Arc::clone(locked(&self.slots).entry(host.clone()).or_default())
    }

    /// The route to `host`, established by the first caller (the others wait for it).
    async fn route(&self, host: &HostId) -> Result<Route, LinkError> {
        if self.trust.is_none() {
            self.note_mode(host, HostMode::RelayTrusted);
            return Ok(Route::Plain);
        }
        let slot = self.slot(host);
        let mut known = slot.lock().await;
        if let Some(route) = known.as_ref() {
            return Ok(route.clone());
        }
        let route = self.establish(host).await?;
        let mode = match route {
            Route::Plain => HostMode::RelayTrusted,
            Route::Sealed(_) => HostMode::Verified,
        };
        self.note_mode(host, mode);
        *known = Some(route.clone());
        Ok(route)
    }

    /// Records how `host` is reached, telling `on_mode` when that is news.
    fn note_mode(&self, host: &HostId, mode: HostMode) {
        let before = locked(&self.modes).insert(host.clone(), mode);
        if before != Some(mode)
            && let Some(on_mode) = &self.on_mode
        {
            on_mode(host, mode);
        }
    }

    /// Drops `host`'s channel `id` (the agent lost it), unless another caller replaced it.
    async fn forget(&self, host: &HostId, id: ChannelId) {
        let slot = self.slot(host);
        let mut known = slot.lock().await;
        if matches!(known.as_ref(), Some(Route::Sealed(c)) if c.id() == id) {
            *known = None;
        }
    }

    async fn establish(&self, host: &HostId) -> Result<Route, LinkError> {
        let Some(key) = self.vouched_key(host).await? else {
            let pinned = self
                .trust
                .as_ref()
                .is_some_and(|t| locked(t).pinned_hosts.contains_key(host));
            if pinned {
                return Err(LinkError::Refused(WireError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "host {host}'s key is no longer vouched for; refusing to send it \
                         plaintext (an owner or admin must certify it again: \
                         `cm-tui admin host certify {host}`)"
                    ),
                )));
            }
            // A host this laptop enrolled is zero-trust: until it has proven its key, nothing
            // goes to it (a relay withholding or forging its claim cannot get plaintext).
            if locked(&self.binds).contains_key(host) {
                return Err(LinkError::Refused(WireError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "host {host} has not proven its end-to-end key yet (this laptop added \
                         it and refuses to send it plaintext); start its agent (`cm-agent run`) \
                         so it connects and claims its key, then try again"
                    ),
                )));
            }
            tracing::warn!(%host, "no host certificate: relay-trusted (plaintext through the relay)");
            return Ok(Route::Plain);
        };
        match self.open_channel(host, &key).await {
            // The host accepts none of the grants held here (an owner re-signed them after
            // rotating their root, or renewed them): fetch the relay's certificates, once.
            Err(LinkError::Refused(w)) if w.message.contains("no valid certificate grants") => {
                self.refresh_certs(host).await?;
                self.open_channel(host, &key).await.map(Route::Sealed)
            }
            opened => opened.map(Route::Sealed),
        }
    }

    /// Takes the relay's certificates (and owners' root rotations) into this laptop's trust
    /// state, checked against its roots, and saves it.
    async fn refresh_certs(&self, host: &HostId) -> Result<(), LinkError> {
        let Some(trust) = self.trust.as_ref() else {
            return Ok(());
        };
        let bundle = self.trust_fetch(host).await?;
        let mut t = locked(trust);
        let merged = t.merge_bundle(bundle, now_ms());
        tracing::info!(%host, ?merged, "certificates fetched again after the host refused ours");
        if let Some(on_change) = &self.on_change {
            on_change(&t);
        }
        Ok(())
    }

    /// `host`'s key from a certificate chaining to this laptop's roots, asking the relay for
    /// certificates when none does yet; pins the host once vouched for.
    async fn vouched_key(&self, host: &HostId) -> Result<Option<X25519Public>, LinkError> {
        let Some(trust) = self.trust.as_ref() else {
            return Ok(None);
        };
        let now = now_ms();
        let mut key = locked(trust).host_key(host, now).ok();
        let mut changed = false;
        if key.is_none() {
            match self.trust_fetch(host).await {
                Ok(bundle) => {
                    let claims = bundle.claims.clone();
                    {
                        let mut t = locked(trust);
                        let merged = t.merge_bundle(bundle, now);
                        tracing::debug!(%host, ?merged, "certificates from the relay");
                        key = t.host_key(host, now).ok();
                    }
                    if key.is_none() {
                        key = auto_certify::certify(self, trust, host, &claims, now).await;
                    }
                    changed = true;
                }
                Err(LinkError::Refused(w)) => {
                    tracing::warn!(%host, error = %w, "the relay gave no certificates");
                }
                Err(e) => return Err(e),
            }
        }
        let mut t = locked(trust);
        if let Some(key) = key {
            changed |= t.pinned_hosts.insert(host.clone(), key) != Some(key);
        }
        if changed && let Some(on_change) = &self.on_change {
            on_change(&t);
        }
        Ok(key)
    }

    /// The relay's certificates for `host` (a relay operation: unsigned, plaintext).
    async fn trust_fetch(&self, host: &HostId) -> Result<TrustBundle, LinkError> {
        let query: <op::TrustFetch as Operation>::Body = TrustQuery {
            host: Some(host.clone()),
        };
        let frame = proto::frame::to_frame(&query, MAX_FRAME_LEN).map_err(StreamError::from)?;
        let header = StreamHeader::new(Op::TrustFetch, self.next_req_id());
        let mut stream = self
            .open_plain(&header, Some(&frame), OpenOptions::FINISH)
            .await?;
        let reply: Reply<TrustBundle> = stream.recv.expect().await?;
        reply.into_result().map_err(LinkError::Refused)
    }

    /// Opens an end-to-end channel to `host`: a signed `e2e_open` carrying Noise msg1 (with
    /// this laptop's certificates inside), the host's msg2 back.
    async fn open_channel(&self, host: &HostId, key: &X25519Public) -> Result<Channel, LinkError> {
        let certs = match self.trust.as_ref() {
            Some(t) => locked(t).my_certs(now_ms()),
            None => Vec::new(),
        };
        let payload = serde_json::to_vec(&certs).map_err(protocol)?;
        let (pending, msg1) = e2e::open_channel(&key.0, &payload).map_err(protocol)?;
        let body = E2eOpen {
            msg1: URL_SAFE_NO_PAD.encode(msg1),
            records: Some(e2e::RECORD_FORMAT),
        };
        let frame = proto::frame::to_frame(&body, MAX_FRAME_LEN).map_err(StreamError::from)?;
        let mut header = StreamHeader::new(Op::E2eOpen, self.next_req_id());
        header.host = Some(host.clone());
        let hash = signed_header::body_hash(&frame[LEN_PREFIX..]);
        self.sign(&mut header, nonce16()?, Some(hash), None, None)?;
        let mut stream = self
            .open_plain(&header, Some(&frame), OpenOptions::FINISH)
            .await?;
        let reply: Reply<<op::E2eOpen as Operation>::Reply> = stream.recv.expect().await?;
        let E2eOpened { msg2, records } = reply.into_result().map_err(LinkError::Refused)?;
        let peer = format!("host {host}'s cm-agent");
        if let Some(why) = e2e::record_format_mismatch("this cm-tui", &peer, records) {
            return Err(protocol(why));
        }
        let msg2 = URL_SAFE_NO_PAD
            .decode(msg2)
            .map_err(|e| protocol(format!("host {host}'s e2e_open answer: {e}")))?;
        pending.finish(&msg2).map_err(|e| {
            protocol(format!(
                "host {host} did not prove it holds its certified key ({e}); the relay may be \
                 tampering"
            ))
        })
    }

    fn next_req_id(&self) -> ReqId {
        ReqId(self.next_req.fetch_add(1, Ordering::Relaxed))
    }
}

/// The host streams of a connection made with `profile`: zero-trust when its trust state
/// has roots; fetched certificates and newly vouched-for hosts are saved at once (a pinned
/// host is never sent plaintext again).
///
/// # Errors
/// The trust state exists but cannot be read: nothing is sent rather than plaintext.
pub async fn for_profile(
    conn: quinn::Connection,
    profile: &Profile,
) -> Result<HostStreams, LinkError> {
    let unreadable = |e: String| {
        protocol(format!(
            "cannot read this laptop's trust state ({e}); run `cm-tui login` again"
        ))
    };
    // The device key may be in the OS keyring (D-Bus): off the async threads.
    let owned = profile.clone();
    let (trust, binds) = tokio::task::spawn_blocking(move || {
        let binds = crate::trust::file::TrustFile::read(&crate::trust::file_path(&owned))
            .map(|f| f.binds)
            .unwrap_or_default();
        load_trust(&owned).map(|t| (t, binds))
    })
    .await
    .map_err(|e| unreadable(e.to_string()))?
    .map_err(unreadable)?;
    let profile = profile.clone();
    let on_change = move |t: &OperatorTrust| {
        if let Err(e) = save_trust(t, &profile) {
            tracing::warn!(error = %e, "cannot save the certificates and hosts this laptop verified");
        }
    };
    Ok(HostStreams::new(conn, trust, Some(Box::new(on_change))).with_binds(binds))
}

/// This profile's trust state (`None`: logged in before zero-trust).
fn load_trust(profile: &Profile) -> Result<Option<OperatorTrust>, String> {
    crate::trust::load(profile).map_err(|e| e.to_string())
}

/// Saves this profile's trust state.
fn save_trust(trust: &OperatorTrust, profile: &Profile) -> Result<(), String> {
    trust.save(profile).map_err(|e| e.to_string())
}
