//! Folder operations: links out, linked parents, `..` chains, absolute paths, NUL, long names,
//! renames out, non-empty folders, special files and the root itself.

use super::{Fixture, WS};
use proto::fs::{FsDone, FsKind, FsListing};
use proto::header::Op;
use proto::message::Reply;
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use serde_json::json;
use std::os::unix::fs::symlink;

#[tokio::test]
async fn folder_operations_work_inside_the_root() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    let done: FsDone = f.ok(Op::FsMkdir, json!({ "path": "src" })).await?;
    assert_eq!(done.path, "src");
    f.ok::<FsDone>(Op::FsMkdir, json!({ "path": "./src//lib/" }))
        .await?;
    std::fs::write(f.root.join("src/a.rs"), "fn main() {}\n")?;
    symlink("/etc", f.root.join("src/etc"))?;
    let l: FsListing = f.ok(Op::FsList, json!({ "path": "src" })).await?;
    let got: Vec<_> = l
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("lib", FsKind::Dir),
            ("a.rs", FsKind::File),
            ("etc", FsKind::Symlink)
        ]
    );
    // The root without a body.
    let root: FsListing = match f
        .env
        .call_as::<FsListing>(Role::Operator, Op::FsList, Some(WS), None, None)
        .await?
    {
        Reply::Ok(l) => l,
        Reply::Error(e) => anyhow::bail!("{e}"),
    };
    assert!(
        root.entries
            .iter()
            .any(|e| e.name == "src" && e.kind == FsKind::Dir)
    );
    let done: FsDone = f
        .ok(Op::FsRename, json!({ "from": "src/lib", "to": "lib2" }))
        .await?;
    assert_eq!(done.path, "lib2");
    f.ok::<FsDone>(Op::FsRmdir, json!({ "path": "lib2" }))
        .await?;
    assert!(!f.root.join("lib2").exists());
    // A viewer may not change folders (the agent's own check behind the relay's).
    let r = f
        .env
        .call_as::<FsDone>(
            Role::Viewer,
            Op::FsMkdir,
            Some(WS),
            None,
            Some(json!({"path": "v"})),
        )
        .await?;
    assert!(matches!(r, Reply::Error(e) if e.code == ErrorCode::Forbidden));
    assert!(!f.root.join("v").exists());
    f.assert_sentinel_unchanged("normal use");
    Ok(())
}

#[tokio::test]
async fn links_out_of_the_root_are_never_followed() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    symlink("/etc", f.root.join("etc"))?;
    symlink(&f.sentinel, f.root.join("out"))?;
    std::fs::create_dir(f.root.join("d"))?;
    symlink(&f.sentinel, f.root.join("d/link"))?;
    std::fs::create_dir(f.root.join("mine"))?;

    // Symlink to /etc.
    f.refused(Op::FsList, json!({ "path": "etc" }), "symlink")
        .await?;
    f.refused(Op::FsList, json!({ "path": "etc/ssl" }), "symlink")
        .await?;
    f.refused(Op::FsMkdir, json!({ "path": "etc/cm-test" }), "symlink")
        .await?;
    f.refused(Op::FsRmdir, json!({ "path": "etc" }), "symlink")
        .await?;
    assert!(f.root.join("etc").is_symlink(), "the link itself stays");

    // A link to the sentinel, as the target and as a parent.
    let e = f
        .refused(Op::FsList, json!({ "path": "out" }), "symlink")
        .await?;
    assert!(
        e.message.contains("out is a symbolic link"),
        "{}",
        e.message
    );
    f.refused(Op::FsList, json!({ "path": "out/full" }), "symlink")
        .await?;
    f.refused(Op::FsMkdir, json!({ "path": "out/new" }), "symlink")
        .await?;
    f.refused(Op::FsRmdir, json!({ "path": "out/empty" }), "symlink")
        .await?;
    f.refused(
        Op::FsRename,
        json!({ "from": "out/secret.txt", "to": "stolen.txt" }),
        "symlink",
    )
    .await?;
    f.refused(
        Op::FsRename,
        json!({ "from": "out/full", "to": "stolen" }),
        "symlink",
    )
    .await?;

    // A linked parent deeper down: the error names that component.
    let e = f
        .refused(Op::FsRmdir, json!({ "path": "d/link/empty" }), "symlink")
        .await?;
    assert!(e.message.contains("d/link"), "{}", e.message);
    f.refused(Op::FsMkdir, json!({ "path": "d/link/x/y" }), "symlink")
        .await?;
    f.refused(Op::FsList, json!({ "path": "d/link" }), "symlink")
        .await?;

    // Rename onto a path outside: through a link, with `..`, or absolute.
    f.refused(
        Op::FsRename,
        json!({ "from": "mine", "to": "out/mine" }),
        "symlink",
    )
    .await?;
    f.refused(
        Op::FsRename,
        json!({ "from": "mine", "to": "d/link/mine" }),
        "symlink",
    )
    .await?;
    f.refused(
        Op::FsRename,
        json!({ "from": "mine", "to": "../mine" }),
        "parent_reference",
    )
    .await?;
    let abs = f.sentinel.join("mine");
    f.refused(
        Op::FsRename,
        json!({ "from": "mine", "to": abs }),
        "absolute_path",
    )
    .await?;
    assert!(f.root.join("mine").is_dir());
    Ok(())
}

#[tokio::test]
async fn malformed_paths_are_refused_by_rule() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    std::fs::create_dir(f.root.join("a"))?;
    let sentinel = f.sentinel.display().to_string();
    let long_name = "n".repeat(256);
    let long_path = vec!["d"; 2100].join("/");
    let cases: Vec<(String, &str)> = vec![
        ("..".into(), "parent_reference"),
        ("../sentinel".into(), "parent_reference"),
        ("a/../../sentinel".into(), "parent_reference"),
        ("a/../a".into(), "parent_reference"),
        ("./../../../../../../etc".into(), "parent_reference"),
        ("a/b/../../../..".into(), "parent_reference"),
        ("/etc".into(), "absolute_path"),
        (sentinel.clone(), "absolute_path"),
        (format!("{sentinel}/empty"), "absolute_path"),
        ("//etc".into(), "absolute_path"),
        ("a\0b".into(), "nul_byte"),
        ("\0".into(), "nul_byte"),
        ("a/\0/../..".into(), "nul_byte"),
        (long_name.clone(), "name_too_long"),
        (format!("a/{long_name}"), "name_too_long"),
        (long_path, "path_too_long"),
    ];
    for (path, rule) in &cases {
        f.refused(Op::FsList, json!({ "path": path }), rule).await?;
        f.refused(Op::FsMkdir, json!({ "path": path }), rule)
            .await?;
        f.refused(Op::FsRmdir, json!({ "path": path }), rule)
            .await?;
        f.refused(Op::FsRename, json!({ "from": path, "to": "x" }), rule)
            .await?;
        f.refused(Op::FsRename, json!({ "from": "a", "to": path }), rule)
            .await?;
    }
    assert!(f.root.join("a").is_dir());
    Ok(())
}

#[tokio::test]
async fn non_empty_folders_special_files_and_the_root_are_protected() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    std::fs::create_dir_all(f.root.join("full/inner"))?;
    std::fs::write(f.root.join("full/file.txt"), "x")?;
    let e = f.err(Op::FsRmdir, json!({ "path": "full" })).await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(e.message.contains("not empty"), "{}", e.message);
    assert!(f.root.join("full/file.txt").is_file());
    // rmdir never removes a file.
    f.refused(
        Op::FsRmdir,
        json!({ "path": "full/file.txt" }),
        "not_a_directory",
    )
    .await?;

    // A FIFO: listed as special, never renamed or removed.
    let st = std::process::Command::new("mkfifo")
        .arg(f.root.join("pipe"))
        .status()?;
    assert!(st.success());
    let l: FsListing = f.ok(Op::FsList, json!({ "path": "" })).await?;
    assert!(
        l.entries
            .iter()
            .any(|e| e.name == "pipe" && e.kind == FsKind::Special)
    );
    f.refused(
        Op::FsRename,
        json!({ "from": "pipe", "to": "p2" }),
        "special_file",
    )
    .await?;
    f.refused(Op::FsRmdir, json!({ "path": "pipe" }), "special_file")
        .await?;
    f.refused(Op::FsList, json!({ "path": "pipe/x" }), "special_file")
        .await?;

    // The root.
    for root in ["", ".", "./", ".//."] {
        f.refused(Op::FsRmdir, json!({ "path": root }), "root")
            .await?;
        f.refused(Op::FsMkdir, json!({ "path": root }), "root")
            .await?;
        f.refused(Op::FsRename, json!({ "from": root, "to": "moved" }), "root")
            .await?;
        f.refused(Op::FsRename, json!({ "from": "full", "to": root }), "root")
            .await?;
    }
    assert!(f.root.is_dir());
    assert!(f.root.join("full").is_dir());
    // Existing targets are never replaced.
    std::fs::create_dir(f.root.join("other"))?;
    let e = f
        .err(Op::FsRename, json!({ "from": "other", "to": "full" }))
        .await?;
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    assert!(f.root.join("full/file.txt").is_file());
    Ok(())
}

/// `.git` can never be created or renamed into place by folder operations: a `.git` file or
/// link decides which repository git uses.
#[tokio::test]
async fn nothing_becomes_a_git_directory() -> anyhow::Result<()> {
    let f = Fixture::new().await?;
    std::fs::create_dir(f.root.join("sub"))?;
    std::fs::write(
        f.root.join("gitdir.txt"),
        format!("gitdir: {}\n", f.sentinel.join("outside.git").display()),
    )?;
    symlink(f.sentinel.join("outside.git"), f.root.join("link"))?;
    std::fs::create_dir(f.root.join("folder"))?;
    for from in ["gitdir.txt", "link", "folder"] {
        for to in ["sub/.git", ".GIT", "sub/.Git"] {
            f.refused(Op::FsRename, json!({ "from": from, "to": to }), "dot_git")
                .await?;
        }
    }
    for path in ["sub/.git", "folder/.GIT"] {
        f.refused(Op::FsMkdir, json!({ "path": path }), "dot_git")
            .await?;
    }
    assert!(!f.root.join("sub/.git").exists());
    // The workspace's own `.git` cannot be moved away and replaced either.
    f.refused(
        Op::FsRename,
        json!({ "from": "folder", "to": ".git" }),
        "dot_git",
    )
    .await?;
    // Names that only contain `.git` are ordinary.
    f.ok::<FsDone>(Op::FsMkdir, json!({ "path": "sub/.github" }))
        .await?;
    f.ok::<FsDone>(Op::FsRename, json!({ "from": "folder", "to": "x.git" }))
        .await?;
    Ok(())
}
