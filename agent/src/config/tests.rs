use super::*;

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("agent.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn valid_file_with_workspaces() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let p = write(
        tmp.path(),
        &format!(
            "relay = \"127.0.0.1:7443\"\npin = \"blake3:00\"\nhost = \"box\"\nheartbeat_interval = \"500ms\"\n\n[[workspace]]\nname = \"demo\"\npath = \"{}\"\n",
            ws.display()
        ),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.host, HostId::from("box"));
    assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
    assert_eq!(c.relay_timeout, DEFAULT_RELAY_TIMEOUT);
    assert_eq!(c.workspaces[0].root, std::fs::canonicalize(&ws).unwrap());
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\nallow_shel = true\n",
    );
    let err = ConfigFile::load(&p).unwrap_err().to_string();
    assert!(err.contains("allow_shel"), "{err}");
    assert!(err.contains(&p.display().to_string()), "{err}");
}

#[test]
fn bad_values_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "relay = \"a:1\"\npin = \"sha1:00\"\nhost = \"box\"\n",
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pin"), "{err}");
    let p = write(
        tmp.path(),
        "relay = \"a:1\"\npin = \"blake3:0\"\nhost = \"box\"\n[[workspace]]\nname = \"w\"\npath = \"rel\"\n",
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be absolute"), "{err}");
    let missing = ConfigFile::load(&tmp.path().join("none.toml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cm-agent enroll"), "{missing}");
}

#[test]
fn opencode_table_is_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
    let p = write(
        tmp.path(),
        &format!(
            "{base}[opencode]\nbinary = \"/opt/oc/opencode\"\nmodel = \"mock/mock-model\"\nidle_stop = \"0\"\nready_timeout = \"5s\"\n\n[opencode.provider.mock]\nnpm = \"@ai-sdk/openai-compatible\"\noptions = {{ baseURL = \"http://127.0.0.1:1/v1\", apiKey = \"k\" }}\nmodels = {{ mock-model = {{ name = \"Mock\", tool_call = true, limit = {{ context = 128000, output = 4096 }} }} }}\n"
        ),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    let oc = c.opencode;
    assert_eq!(oc.binary.as_deref(), Some(Path::new("/opt/oc/opencode")));
    assert_eq!(oc.small_model.as_deref(), Some("mock/mock-model"));
    assert_eq!(oc.idle_stop, None);
    assert_eq!(oc.ready_timeout, Duration::from_secs(5));
    assert_eq!(oc.enabled_providers, Some(vec!["mock".to_owned()]));
    let provider = serde_json::Value::Object(oc.provider.unwrap());
    assert_eq!(
        provider["mock"]["models"]["mock-model"]["limit"]["context"],
        128000
    );
    assert_eq!(
        provider["mock"]["options"]["baseURL"],
        "http://127.0.0.1:1/v1"
    );

    let p = write(
        tmp.path(),
        &format!("{base}[opencode]\nallowed_models = [\"mock/*\", \"paid/big\"]\n"),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.opencode.allowed_models, ["mock/*", "paid/big"]);

    // Defaults without the table.
    let p = write(tmp.path(), base);
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.opencode, OpencodeConfig::default());
    assert_eq!(c.opencode.idle_stop, Some(DEFAULT_IDLE_STOP));

    for (bad, needle) in [
        ("[opencode]\nbinary = \"rel/opencode\"\n", "absolute"),
        ("[opencode]\nmodel = \"nomodel\"\n", "provider/model"),
        ("[opencode]\nready_timeout = \"0s\"\n", "ready_timeout"),
        ("[opencode]\nidle_stop = \"soon\"\n", "idle_stop"),
        (
            "[opencode]\nallowed_models = [\"mock\"]\n",
            "allowed_models: \"mock\" must look like provider/model",
        ),
    ] {
        let p = write(tmp.path(), &format!("{base}{bad}"));
        let err = ConfigFile::load(&p)
            .unwrap()
            .validate(&p)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let p = write(tmp.path(), &format!("{base}[opencode]\nbinry = \"/x\"\n"));
    let err = ConfigFile::load(&p).unwrap_err().to_string();
    assert!(err.contains("binry"), "{err}");
}

#[test]
fn workspace_permissions_can_be_relaxed_but_not_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let base = format!(
        "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n[[workspace]]\nname = \"w\"\npath = \"{}\"\n",
        tmp.path().display()
    );
    let p = write(tmp.path(), &base);
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.workspaces[0].permissions, ToolPermissions::default());
    let p = write(
        tmp.path(),
        &format!("{base}permission = {{ edit = \"allow\", bash = \"deny\" }}\n"),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    let perms = c.workspaces[0].permissions;
    assert_eq!(perms.edit, ToolPermission::Allow);
    assert_eq!(perms.bash, ToolPermission::Deny);
    assert_eq!(perms.webfetch, ToolPermission::Ask);
    let p = write(
        tmp.path(),
        &format!("{base}permission = {{ edit = \"yes\" }}\n"),
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("permission.edit"), "{err}");
    let p = write(
        tmp.path(),
        &format!("{base}permission = {{ external_directory = \"allow\" }}\n"),
    );
    let err = ConfigFile::load(&p).unwrap_err().to_string();
    assert!(err.contains("external_directory"), "{err}");
}

/// The documented example (docs/agent.example.toml) stays loadable as the options change.
#[test]
fn documented_example_loads() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agent.example.toml");
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.workspaces.len(), 1);
    assert_eq!(c.opencode, OpencodeConfig::default());
    assert_eq!(
        c.policy.disabled_ops,
        [proto::header::Op::GitPush].into_iter().collect()
    );
    assert_eq!(
        c.policy.min_role.get(&proto::header::Op::SessionDelete),
        Some(&proto::rbac::Role::Admin)
    );
    assert_eq!(c.launch_lease, DEFAULT_LAUNCH_LEASE);
}

#[test]
fn git_table_is_validated() {
    use crate::git::policy::GitSettings;
    let tmp = tempfile::tempdir().unwrap();
    let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
    let p = write(tmp.path(), base);
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.git, GitSettings::default());
    let p = write(
        tmp.path(),
        &format!(
            "{base}[git]\nclone_from = [\"https://github.com/*\"]\nsubmodules = true\nclone_timeout = \"30s\"\nclone_max_size = \"500MiB\"\nssh_key = \"/etc/cm/key\"\n"
        ),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.git.clone_from, ["https://github.com/*"]);
    assert!(c.git.submodules);
    assert_eq!(c.git.clone_timeout, Duration::from_secs(30));
    assert_eq!(c.git.clone_max_bytes, 500 << 20);
    assert_eq!(c.git.ssh_key.as_deref(), Some(Path::new("/etc/cm/key")));
    for (bad, needle) in [
        ("clone_from = [\"file:///srv/*\"]\n", "clone_from"),
        ("clone_from = [\"/srv/*\"]\n", "clone_from"),
        ("clone_from = [\"ext::*\"]\n", "clone_from"),
        ("clone_max_size = \"lots\"\n", "clone_max_size"),
        ("clone_max_size = \"0\"\n", "clone_max_size"),
        ("clone_timeout = \"0s\"\n", "clone_timeout"),
        ("ssh_key = \"key\"\n", "ssh_key"),
        ("credential_helper = \"x\"\n", "credential_helper"),
    ] {
        let p = write(tmp.path(), &format!("{base}[git]\n{bad}"));
        let e = ConfigFile::load(&p)
            .map_err(|e| e.to_string())
            .and_then(|f| f.validate(&p).map_err(|e| e.to_string()))
            .unwrap_err();
        assert!(e.contains(needle), "{bad}: {e}");
    }
}

#[test]
fn policy_table_is_validated() {
    use proto::header::Op;
    use proto::rbac::Role;
    let tmp = tempfile::tempdir().unwrap();
    let base = "relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n";
    let p = write(
        tmp.path(),
        &format!(
            "{base}[policy]\ndisabled_ops = [\"git_push\", \"fs_rmdir\"]\nmin_role = {{ prompt = \"admin\" }}\nallow_shell = false\nlaunch_lease = \"2s\"\n"
        ),
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert!(c.policy.disabled_ops.contains(&Op::GitPush));
    assert!(c.policy.disabled_ops.contains(&Op::FsRmdir));
    assert_eq!(c.policy.min_role.get(&Op::Prompt), Some(&Role::Admin));
    assert_eq!(c.launch_lease, Duration::from_secs(2));
    let p = write(tmp.path(), base);
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert!(c.policy.disabled_ops.is_empty());
    assert_eq!(c.launch_lease, DEFAULT_LAUNCH_LEASE);
    for (bad, needles) in [
        (
            "disabled_ops = [\"git_push\", \"shell\", \"rm_rf\"]\n",
            &["disabled_ops", "shell, rm_rf"][..],
        ),
        (
            "min_role = { teleport = \"admin\" }\n",
            &["min_role", "teleport"][..],
        ),
        (
            "min_role = { prompt = \"root\" }\n",
            &["min_role.prompt", "root"][..],
        ),
        (
            "allow_shell = true\n",
            &["allow_shell", "no shell operation"][..],
        ),
        ("launch_lease = \"0s\"\n", &["launch_lease"][..]),
    ] {
        let p = write(tmp.path(), &format!("{base}[policy]\n{bad}"));
        let err = ConfigFile::load(&p)
            .unwrap()
            .validate(&p)
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(err.contains(n), "{n}: {err}");
        }
    }
}

#[test]
fn save_then_load_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("sub/agent.toml");
    let f = ConfigFile {
        relay: "r:1".into(),
        pin: "blake3:ab".into(),
        host: "h".into(),
        workspaces: vec![WorkspaceEntry {
            name: "w".into(),
            path: "/tmp".into(),
            permission: Some(PermissionEntry {
                edit: Some("allow".into()),
                ..PermissionEntry::default()
            }),
            sandbox: None,
            subworkspaces: None,
        }],
        opencode: Some(OpencodeSection {
            model: Some("mock/m".into()),
            ..OpencodeSection::default()
        }),
        ..ConfigFile::default()
    };
    f.save(&p).unwrap();
    let back = ConfigFile::load(&p).unwrap();
    assert_eq!(back.relay, "r:1");
    assert_eq!(back.workspaces, f.workspaces);
    assert_eq!(back.opencode, f.opencode);
}

#[test]
fn environment_overrides_the_file_and_is_validated_like_it() {
    let mut f = ConfigFile {
        relay: "file:1".into(),
        pin: "blake3:00".into(),
        host: "box".into(),
        heartbeat_interval: Some("3s".into()),
        ..ConfigFile::default()
    };
    f.apply_env(|k| match k {
        "CM_AGENT_RELAY" => Some("env:2".into()),
        "CM_AGENT_HEARTBEAT_INTERVAL" => Some("soon".into()),
        _ => None,
    });
    assert_eq!(f.relay, "env:2");
    assert_eq!(f.host, "box");
    let err = f.validate(Path::new("agent.toml")).unwrap_err().to_string();
    assert!(err.contains("heartbeat_interval"), "{err}");
}

#[test]
fn relay_takes_an_array_and_relay_connections_is_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "relay = [\"127.0.0.1:7443\", \"relay-b.example.com:7443\"]\nrelay_connections = 3\npin = \"blake3:00\"\nhost = \"box\"\n",
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(
        c.relays.entries,
        vec!["127.0.0.1:7443", "relay-b.example.com:7443"]
    );
    assert_eq!(c.relays.connections, 3);
    let p = write(
        tmp.path(),
        "relay = \"a:1\"\nrelay_connections = 0\npin = \"blake3:00\"\nhost = \"box\"\n",
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("relay_connections must be at least 1"),
        "{err}"
    );
    assert!(err.contains(&p.display().to_string()), "{err}");
    let p = write(
        tmp.path(),
        "relay = [\"a:1\", \"b\"]\npin = \"blake3:00\"\nhost = \"box\"\n",
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"b\" has no port; write host:port"), "{err}");
}

#[test]
fn transport_keys_are_read_from_the_file_and_bad_ones_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(
        tmp.path(),
        "relay = \"a:7443\"\npin = \"blake3:00\"\nhost = \"box\"\ntransport = \"tcp\"\nrelay_tcp = \"a:443\"\nproxy = \"http://proxy:3128\"\ntcp_delay_ms = 100\nquic_probe_secs = 20\n",
    );
    let c = ConfigFile::load(&p).unwrap().validate(&p).unwrap();
    assert_eq!(c.transport.mode, cm_client::transport::TransportMode::Tcp);
    assert_eq!(c.transport.relay_tcp.as_deref(), Some("a:443"));
    assert_eq!(c.transport.tcp_delay, Duration::from_millis(100));
    let state = tmp.path().join("state");
    assert_eq!(
        c.transport_in(&state).memory_file,
        Some(state.join(cm_client::transport::MEMORY_FILE_NAME))
    );
    let p = write(
        tmp.path(),
        "relay = \"a:7443\"\npin = \"blake3:00\"\nhost = \"box\"\ntransport = \"udp-only\"\n",
    );
    let err = ConfigFile::load(&p)
        .unwrap()
        .validate(&p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("udp-only") && err.contains(&p.display().to_string()),
        "{err}"
    );
}
