//! The file-system shell of `certs`: reads an existing CA from the out dir, writes every file
//! (atomically, keys owner-only), and reports what it did.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use super::args::{CertsArgs, validate};
use super::issue::{CaPem, Issued, issue};
use super::render::{
    ca_bundle_base64, ca_bundle_pem, render_ca_bundle_patch, render_kustomization, render_secret,
};
use super::{CertsError, Result};

/// Runs the subcommand: writes the files into `--out-dir`, a summary on stderr, and the
/// base64 caBundle on stdout (so `CA_BUNDLE=$(status-reporter-webhook certs)` works).
pub fn run(args: &CertsArgs) -> Result<()> {
    let sans = validate(args)?;
    let dir = &args.out_dir;
    let base = resolve_base(args)?;
    std::fs::create_dir_all(dir).map_err(|source| CertsError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    // Written first: keys must never land in git, even if a later step fails.
    write_file(&dir.join(".gitignore"), "*\n", false)?;

    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let previous_path = dir.join("ca.previous.crt");
    let existing = read_existing_ca(&ca_crt, &ca_key)?;
    let (existing_for_issue, retired) = match existing {
        Some(ca) if args.rotate_ca => (None, Some(ca.cert)),
        other => (other, None),
    };
    let issued = issue(
        args,
        &sans,
        existing_for_issue.as_ref(),
        jiff::Timestamp::now(),
    )?;

    if let Some(old) = &retired {
        write_file(&previous_path, old, false)?;
    }
    let previous = read_optional(&previous_path)?;
    if issued.new_ca {
        write_file(&ca_key, &issued.ca.key, true)?;
        write_file(&ca_crt, &issued.ca.cert, false)?;
    }
    write_file(&dir.join("tls.key"), &issued.tls_key, true)?;
    write_file(&dir.join("tls.crt"), &issued.tls_cert, false)?;
    write_file(
        &dir.join("secret.yaml"),
        &render_secret(args, &issued)?,
        true,
    )?;
    let bundle_pem = ca_bundle_pem(&issued, previous.as_deref());
    write_file(&dir.join("ca-bundle.crt"), &bundle_pem, false)?;
    let bundle = ca_bundle_base64(&bundle_pem);
    write_file(
        &dir.join("cabundle-patch.yaml"),
        &render_ca_bundle_patch(args, &bundle)?,
        false,
    )?;
    if let Some(base) = &base {
        write_file(
            &dir.join("kustomization.yaml"),
            &render_kustomization(base),
            false,
        )?;
    }

    let text = summary(args, &issued, previous.is_some(), base.as_deref());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    println!("{bundle}");
    Ok(())
}

/// What was written, for the person who ran the command, and what to do next.
fn summary(args: &CertsArgs, issued: &Issued, previous_ca: bool, base: Option<&str>) -> String {
    let dir = args.out_dir.display();
    let ca_note = if issued.new_ca {
        "new CA"
    } else {
        "existing CA reused, caBundle unchanged"
    };
    let mut out = format!("wrote {dir}:\n  ca.crt, ca.key          ({ca_note})\n");
    if previous_ca {
        out.push_str(
            "  ca.previous.crt         (old CA, still in the caBundle: delete it and re-run once every webhook pod serves the new certificate)\n",
        );
    }
    let _ = writeln!(
        out,
        "  tls.crt, tls.key        (valid until {}, for {})",
        issued.not_after,
        issued.sans.join(", ")
    );
    let _ = writeln!(
        out,
        "  secret.yaml             (Secret {}/{})",
        args.namespace, args.secret_name
    );
    let _ = writeln!(
        out,
        "  ca-bundle.crt, cabundle-patch.yaml (caBundle of {} / {})",
        args.webhook_config, args.webhook_name
    );
    match base {
        Some(base) => {
            let _ = writeln!(
                out,
                "  kustomization.yaml      ({base} + Secret + caBundle)\nnext: kubectl apply -k {dir}"
            );
        }
        None => out.push_str(
            "no kustomization.yaml (no --kustomize-base and no ./manifests): apply secret.yaml and patch the caBundle printed on stdout\n",
        ),
    }
    out
}

/// Finds the kustomize base and returns it relative to the out dir, as kustomize wants it.
fn resolve_base(args: &CertsArgs) -> Result<Option<String>> {
    let (base, explicit) = match &args.kustomize_base {
        Some(b) => (b.clone(), true),
        None => (PathBuf::from("manifests"), false),
    };
    if !base.join("kustomization.yaml").is_file() {
        return if explicit {
            Err(CertsError::KustomizeBase { path: base })
        } else {
            Ok(None)
        };
    }
    let base_abs = normalized(&base);
    let out_abs = normalized(&args.out_dir);
    Ok(Some(relative(&out_abs, &base_abs).display().to_string()))
}

/// `p` made absolute with `..` resolved lexically: the out dir may not exist yet, so
/// `canonicalize` cannot be used, and `std::path::absolute` keeps `..`.
fn normalized(p: &Path) -> PathBuf {
    let joined = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `to` expressed relative to the directory `from` (both absolute and normalised).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

fn read_existing_ca(crt: &Path, key: &Path) -> Result<Option<CaPem>> {
    match (read_optional(crt)?, read_optional(key)?) {
        (Some(cert), Some(key)) => Ok(Some(CaPem { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(CertsError::IncompleteCa {
            present: crt.to_path_buf(),
            missing: key.to_path_buf(),
        }),
        (None, Some(_)) => Err(CertsError::IncompleteCa {
            present: key.to_path_buf(),
            missing: crt.to_path_buf(),
        }),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CertsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes via a temporary file and a rename, so an interrupted run never leaves half a key;
/// `private` files are created owner-only (0600).
fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    let err = |source| CertsError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_walk_up_to_the_common_parent() {
        assert_eq!(
            relative(Path::new("/r/out"), Path::new("/r/manifests")),
            PathBuf::from("../manifests")
        );
        assert_eq!(
            relative(Path::new("/r/a/b"), Path::new("/r/manifests/overlays/x")),
            PathBuf::from("../../manifests/overlays/x")
        );
        assert_eq!(
            relative(Path::new("/r"), Path::new("/r")),
            PathBuf::from(".")
        );
    }

    #[test]
    fn normalized_paths_resolve_dot_dot_without_touching_the_disk() {
        assert_eq!(
            normalized(Path::new("/r/a/../b/./c")),
            PathBuf::from("/r/b/c")
        );
        assert!(normalized(Path::new("x/../y")).is_absolute());
    }
}
