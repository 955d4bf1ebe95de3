use super::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// `json` decodes as `T`, encodes back to the same JSON (no field lost, renamed or added) and
/// decodes again to an equal value.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(what: &str, json: &str) {
    let sample: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {e}"));
    let decoded: T =
        serde_json::from_value(sample.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let encoded = serde_json::to_value(&decoded).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(encoded, sample, "{what} does not encode back to its sample");
    let again: T = serde_json::from_value(encoded).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(again, decoded, "{what}");
}

/// One operation's samples: its body (`None` for a body-less operation) and its reply.
fn check<O: Operation>(body: Option<&str>, reply: &str)
where
    O::Body: PartialEq,
    O::Reply: PartialEq,
{
    let name = O::OP.as_str();
    match (O::BODY, body) {
        (BodyKind::None, None) => {
            let absent = O::absent_body().map(|b| serde_json::to_value(b).ok());
            assert_eq!(
                absent,
                Some(Some(Value::Null)),
                "{name}: a body-less op's body is ()"
            );
        }
        (BodyKind::Optional, Some(json)) => {
            round_trip::<O::Body>(&format!("{name} body"), json);
            let absent = O::absent_body().unwrap_or_else(|| panic!("{name}: no default body"));
            round_trip::<O::Body>(
                &format!("{name} default body"),
                &serde_json::to_string(&absent).unwrap_or_default(),
            );
        }
        (BodyKind::Required, Some(json)) => {
            round_trip::<O::Body>(&format!("{name} body"), json);
            assert!(
                O::absent_body().is_none(),
                "{name}: a required body has no default"
            );
        }
        (kind, body) => panic!("{name}: body kind {kind:?} but sample {body:?}"),
    }
    round_trip::<O::Reply>(&format!("{name} reply"), reply);
    // The reply travels in the envelope.
    round_trip::<message::Reply<O::Reply>>(
        &format!("{name} reply frame"),
        &format!(r#"{{"ok":{reply}}}"#),
    );
}

fn check_item<O: Streaming>(item: &str)
where
    O::Item: PartialEq,
{
    round_trip::<O::Item>(&format!("{} item", O::OP.as_str()), item);
}

const HOST_UPDATE: &str = r#"{"now_ms":1700000000000,"reset":true,"upsert":[{"host":"box","online":true,"last_heartbeat_ms":1699999998000,"status":{"hostname":"box","os":"linux 6.1","agent_version":"0.1.0","uptime_s":5,"load":[0.5,0.25,0.0],"mem_total_kib":1024,"mem_available_kib":512,"workspaces":["demo"]}}],"roles":{"box":"operator"},"remove":["gone"],"global_role":null,"more":false}"#;
const SESSION: &str = r#"{"id":"ses_1","title":"t","created_ms":1,"updated_ms":2,"status":{"type":"retry","attempt":2,"message":"x"},"parent":"ses_0"}"#;
const OPENCODE: &str =
    r#"{"workspace":"demo","state":"ready","version":"1.18.33","restarts":1,"last_error":null}"#;
const ADMIN_DONE: &str = r#"{"summary":"bob is operator on box","invite":"inv"}"#;
const GIT_STATUS: &str = r#"{"branch":"main","head":"abc","upstream":null,"ahead":1,"behind":0,"entries":[{"path":"b","index":"R","worktree":".","from":"a"}],"truncated":false}"#;
const GIT_BRANCHES: &str = r#"{"current":"main","branches":[{"name":"main","current":true,"remote":false,"upstream":"origin/main"}]}"#;
const GRANT: &str = r#"{"id":"grant_1","session":"ses_1","permission":"edit","patterns":["*"],"granted_by":"ann","granted_at_ms":5,"uses":2}"#;
const QUEUE_ENTRY: &str = r#"{"id":"q_1","host":"box","workspace":"demo","session":"ses_1","user":"ann","preview":"hi","created_ms":1,"expires_ms":2,"state":"cancelled"}"#;

/// Samples for every operation in the list; the test fails naming any operation without one.
const TEMPLATE_SUMMARY: &str = r#"{"name":"team","version":2,"hash":"blake3:00","author":"alice","published_ms":5,"description":"d","mcp":["docs"]}"#;
const TEMPLATE: &str = r#"{"name":"team","version":2,"hash":"blake3:00","author":"alice","published_ms":5,"content":{"opencode":{"model":"a/b"},"mcp":{"docs":{"type":"remote","url":"https://mcp.example.com"}}}}"#;

fn samples() -> Vec<(Op, fn())> {
    macro_rules! table {
        ($($name:ident: $body:expr, $reply:expr;)*) => {
            vec![$((Op::$name, (|| check::<op::$name>($body, $reply)) as fn())),*]
        };
    }
    table! {
        HostList: None, HOST_UPDATE;
        WatchHosts: None, HOST_UPDATE;
        WorkspaceList: None, &format!(
            r#"[{{"name":"demo","available":true,"opencode":{OPENCODE},"sandbox":{{"state":"enforced","detail":"landlock"}}}}]"#
        );
        SessionList: None, &format!("[{SESSION}]");
        SessionCreate: Some(r#"{"title":"t"}"#), SESSION;
        SessionDelete: None, "true";
        Prompt: Some(r#"{"text":"hi","idempotency_key":"k1"}"#),
            r#"{"session":"ses_1","message_id":"msg_1","duplicate":false}"#;
        Abort: None, r#"{"rejected_permissions":["per_1"]}"#;
        Messages: Some(r#"{"limit":5}"#), r#"[{"id":"msg_1","role":"assistant","created_ms":1,"finish":"stop","error":null,"parts":[{"type":"text","id":"prt_1","text":"hi"},{"type":"tool","id":"prt_2","tool":"bash","status":"completed","title":null,"input":{"command":"ls"},"output":"a","error":null},{"type":"other","id":"prt_3","kind":"step-start"}]}]"#;
        Diff: Some(r#"{"scope":"session","message_id":"msg_1"}"#),
            r#"[{"file":"a.rs","patch":"@@","additions":1,"deletions":0,"status":"modified"}]"#;
        PermissionList: None, r#"{"permissions":[{"id":"per_1","session":"ses_1","permission":"bash","patterns":["ls"],"metadata":{"command":"ls"},"always":["ls *"]}],"questions":[{"id":"que_1","session":"ses_1","questions":[{"question":"?"}]}]}"#;
        PermissionReply: Some(r#"{"request_id":"per_1","answer":"always","message":null,"always_patterns":["ls *"]}"#), "true";
        QuestionReply: Some(r#"{"request_id":"que_1","answers":[["yes"]]}"#), "true";
        WatchEvents: Some(r#"{"after_seq":7}"#), "8";
        OpencodeStart: None, OPENCODE;
        OpencodeStop: None, OPENCODE;
        OpencodeStatus: None, OPENCODE;
        HostAdd: Some(r#"{"name":"box","relay_addr":"r:4433"}"#), r#"{"name":"box","token":"tok"}"#;
        HostRevoke: Some(r#"{"name":"box"}"#), r#"{"summary":"box revoked"}"#;
        UserManage: Some(r#"{"action":"grant","name":"bob","role":"operator","host":"box"}"#), ADMIN_DONE;
        Kill: Some(r#"{"target":"cred","id":"c1"}"#), ADMIN_DONE;
        AuditRead: Some(r#"{"user":"ann","host":null,"before_id":9,"limit":10}"#), r#"[{"id":1,"ts_ms":2,"actor":"ann","role":"admin","host":null,"op":"kill","target":"c1","decision":"allow","reason":null,"hash":"ab"}]"#;
        GrantAdmin: Some(r#"{"action":"add","name":"eve","role":"admin","host":"*"}"#), ADMIN_DONE;
        RelaySettings: None, "null";
        Logout: None, "true";
        FsList: Some(r#"{"path":"src"}"#), r#"{"path":"src","entries":[{"name":"lib","kind":"dir"},{"name":"a.rs","kind":"file","size":3}],"truncated":false}"#;
        FsMkdir: Some(r#"{"path":"a/b"}"#), r#"{"path":"a/b"}"#;
        FsRename: Some(r#"{"from":"a","to":"b"}"#), r#"{"path":"b"}"#;
        FsRmdir: Some(r#"{"path":"a"}"#), r#"{"path":"a"}"#;
        GitStatus: Some(r#"{"dir":"sub"}"#), GIT_STATUS;
        GitDiff: Some(r#"{"dir":"","staged":true,"paths":["a.rs"]}"#), r#"{"patch":"@@","truncated":false}"#;
        GitLog: Some(r#"{"dir":"","limit":5,"rev":"main"}"#), r#"{"commits":[{"id":"abc","author":"ann","time":5,"subject":"s"}]}"#;
        GitBranchList: Some(r#"{"dir":""}"#), GIT_BRANCHES;
        GitAdd: Some(r#"{"dir":"","paths":["."]}"#), GIT_STATUS;
        GitCommit: Some(r#"{"dir":"","message":"m","all":true}"#), r#"{"id":"abc","branch":"main"}"#;
        GitBranchCreate: Some(r#"{"dir":"","name":"b","start":null,"checkout":true}"#), GIT_BRANCHES;
        GitCheckout: Some(r#"{"dir":"","branch":"main"}"#), GIT_BRANCHES;
        GitPull: Some(r#"{"dir":"","remote":"origin","branch":null}"#), r#"{"output":"ok"}"#;
        GitPush: Some(r#"{"dir":"","remote":null,"branch":"main"}"#), r#"{"output":"ok"}"#;
        UserList: None, r#"[{"name":"ann","has_password":true,"grants":[{"host":"*","role":"owner"}]}]"#;
        HostRotate: Some(r#"{"action":"rotate","name":"box"}"#), r#"{"name":"box","token":"tok"}"#;
        CredsList: Some(r#"{"user":"ann","all":true}"#), r#"[{"id":"c1","user":"ann","created_ms":1,"expires_ms":2,"revoked":false,"label":"laptop"}]"#;
        CredsRevoke: Some(r#"{"id":"c1"}"#), r#"{"summary":"c1 revoked"}"#;
        QueueList: None, &format!(r#"{{"entries":[{QUEUE_ENTRY}]}}"#);
        QueueCancel: Some(r#"{"id":"q_1"}"#), QUEUE_ENTRY;
        PermissionGrants: None, &format!("[{GRANT}]");
        PermissionRevoke: Some(r#"{"id":"grant_1"}"#), GRANT;
        SessionRename: Some(r#"{"title":"new"}"#), SESSION;
        ModelList: None, r#"{"models":[{"provider":"mock","model":"m","name":"M","default":true}],"default":"mock/m","agents":[{"name":"build","description":null}],"allowed":["mock/*"]}"#;
        GitInit: Some(r#"{"dir":"new"}"#), r#"{"dir":"new"}"#;
        GitClone: Some(r#"{"url":"https://github.com/a/b.git","dir":"b"}"#), r#"{"dir":"b"}"#;
        GitConfig: Some(r#"{"dir":"b","key":"user.name","value":"Ada"}"#), r#"{"key":"user.name","value":"Ada"}"#;
        TemplateList: None, &format!("[{TEMPLATE_SUMMARY}]");
        TemplateShow: Some(r#"{"name":"team","version":2}"#), TEMPLATE;
        TemplatePublish: Some(r#"{"name":"team","content":{"opencode":{"model":"a/b"}}}"#), TEMPLATE_SUMMARY;
        TemplateApply: Some(&format!(r#"{{"name":"team","resolved":{TEMPLATE}}}"#)),
            r#"{"template":{"name":"team","version":2,"hash":"blake3:00"},"restart":true}"#;
        McpList: None, r#"[{"name":"docs","kind":"remote","status":"connected","template":{"name":"team","version":2,"hash":"blake3:00"}}]"#;
        WorkspaceCandidates: None, r#"{"candidates":[{"root":"src","folder":"app","is_git":true,"branch":"main","workspace":"app"},{"root":"src","folder":"notes","is_git":false}],"truncated":false}"#;
        WorkspaceAdd: Some(r#"{"folder":"app","name":"my-app"}"#), &format!(
            r#"{{"name":"my-app","available":true,"opencode":{OPENCODE}}}"#
        );
        WorkspaceRemove: None, r#"{"name":"my-app","root":"src","folder":"app"}"#;
        PortList: None, r#"[{"port":8000,"addr":"0.0.0.0","pid":42,"process":"python3","workspace":"demo","forwardable":true}]"#;
        PortForward: Some(r#"{"port":8000}"#), r#"{"port":8000,"addr":"127.0.0.1"}"#;
        E2eOpen: Some(r#"{"msg1":"AAEC"}"#), r#"{"msg2":"AwQF"}"#;
        TrustFetch: Some(r#"{"host":"box"}"#), r#"{"roots":[],"certs":[],"revocations":[],"claims":[{"host":"box","host_key":"0404040404040404040404040404040404040404040404040404040404040404","mac":"ab"}],"pending":[]}"#;
        TrustPublish: Some(r#"{"roots":[],"certs":[],"revocations":[],"claims":[],"pending":[]}"#), ADMIN_DONE;
        NotifyAdd: Some(r#"{"name":"phone","target":{"kind":"ntfy","server":"https://ntfy.sh","topic":"t"},"secret":null,"events":["permission"],"quiet":{"start_min":1320,"end_min":420,"utc_offset_min":0},"ignore_presence":false}"#),
            r#"{"name":"phone","target":{"kind":"ntfy","server":"https://ntfy.sh","topic":"t"},"has_secret":false,"events":["permission"],"quiet":null,"ignore_presence":false,"delivered":1,"last_ok_ms":5,"last_error_ms":null,"last_error":null,"failures":0}"#;
        NotifyList: None, "[]";
        NotifyTest: Some(r#"{"name":"phone"}"#), r#"{"delivered":false,"error":"HTTP 500"}"#;
        NotifyRemove: Some(r#"{"name":"phone"}"#), "true";
        NotifyFocus: Some(r#"{"host":"box","workspace":"api","session":"ses_1"}"#), "null";
    }
}

#[test]
fn every_operation_body_and_reply_round_trips() {
    let samples = samples();
    let covered: BTreeSet<&str> = samples.iter().map(|(op, _)| op.as_str()).collect();
    let missing: Vec<&str> = Op::ALL
        .iter()
        .map(|op| op.as_str())
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without samples: {missing:?}"
    );
    assert_eq!(samples.len(), OP_COUNT, "one sample per operation");
    for (_, check) in samples {
        check();
    }
}

#[test]
fn stream_items_and_the_other_replies_round_trip() {
    check_item::<op::HostList>(&format!(r#"{{"ok":{HOST_UPDATE}}}"#));
    check_item::<op::WatchHosts>(r#"{"error":{"code":"unavailable","message":"m"}}"#);
    check_item::<op::WatchEvents>(r#"{"seq":8,"event":{"type":"session_idle","session":"ses_1"}}"#);
    check_item::<op::GitClone>(
        r#"{"progress":{"phase":"Receiving objects","percent":45,"bytes":2048}}"#,
    );
    check_item::<op::GitClone>(
        r#"{"done":{"dir":"b","branch":"main","head":"abc","progress":{"phase":"Resolving deltas","percent":100}}}"#,
    );
    check_item::<op::GitClone>(r#"{"failed":{"code":"conflict","message":"git clone failed: x"}}"#);
    // Replies with more than one shape.
    round_trip::<<op::HostRotate as Operation>::Reply>(
        "host_rotate list",
        r#"[{"name":"box","revoked":false,"created_ms":1}]"#,
    );
    round_trip::<<op::Prompt as Operation>::Reply>(
        "prompt queued",
        r#"{"queued":{"id":"q_1","expires_ms":5}}"#,
    );
}

#[test]
fn the_table_matches_the_enum() {
    let streams: Vec<&str> = OPERATIONS
        .iter()
        .filter(|i| i.item_type.is_some())
        .map(|i| i.op.as_str())
        .collect();
    assert_eq!(
        streams,
        [
            "host_list",
            "watch_hosts",
            "watch_events",
            "git_clone",
            "template_apply",
            "port_forward"
        ]
    );
    for (info, op) in OPERATIONS.iter().zip(Op::ALL) {
        assert_eq!(info.op, op);
        assert_eq!(op.info(), Some(*info));
        assert_eq!(info.relay_local, op.is_relay_local(), "{}", op.as_str());
        assert_eq!(
            info.body == BodyKind::None,
            info.body_type == "()",
            "{}: a body-less operation's body is ()",
            op.as_str()
        );
    }
    assert_eq!(Op::Unknown.info(), None);
    let names: BTreeSet<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
    assert_eq!(names.len(), OP_COUNT, "wire names are unique");
}

/// The wire names in the first column of `docs/protocol.md`'s operation table.
fn documented_ops(markdown: &str) -> BTreeSet<String> {
    let table = markdown
        .split("### Operations")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    let mut names = BTreeSet::new();
    for row in table.skip(2) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                names.insert(part.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_operation_has_a_row_in_the_protocol_docs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let markdown = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let documented = documented_ops(&markdown);
    let missing: Vec<&str> = Op::ALL
        .iter()
        .map(|op| op.as_str())
        .filter(|name| !documented.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a row in docs/protocol.md's operation table: {missing:?}"
    );
    let unknown: Vec<&String> = documented
        .iter()
        .filter(|name| name.as_str() != "unknown")
        .filter(|name| !Op::ALL.iter().any(|op| op.as_str() == name.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/protocol.md's operation table names operations not in the list: {unknown:?}"
    );
}

#[test]
fn the_docs_check_notices_a_missing_row() {
    let docs =
        "### Operations\n\n| wire name | by |\n|---|---|\n| `host_list`, `kill` | relay |\n\nmore";
    let found = documented_ops(docs);
    assert_eq!(
        found,
        ["host_list", "kill"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
}
