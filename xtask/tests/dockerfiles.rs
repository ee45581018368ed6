//! `Dockerfile.reporter`/`Dockerfile.webhook` (for users with a container engine) and
//! `cargo xtask images` (without one) build the same images: the binary at the same path, the
//! same user, entrypoint, default arguments, exposed port and labels. Each Dockerfile's
//! dependency stage also copies every workspace member's manifest: one it misses fails the
//! engine build ("failed to load manifest for workspace member").

use std::collections::BTreeMap;
use std::path::Path;

use xtask::images::{PRODUCTS, Product};
use xtask::oci::RunConfig;
use xtask::workspace::Workspace;

/// The label the Dockerfiles carry and the xtask images cannot: they have no base image.
const BASE_NAME: &str = "org.opencontainers.image.base.name";

/// `(INSTRUCTION, arguments)`, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// Words as the shell would split them: double quotes group and are removed.
fn words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut escaped, mut started) = (false, false, false);
    for c in args.chars() {
        match c {
            _ if escaped => {
                word.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// What a Dockerfile's final stage says about the image.
#[derive(Debug, Default)]
struct FinalStage {
    base: String,
    copy_destinations: Vec<String>,
    config: RunConfig,
}

fn final_stage(dockerfile: &str) -> FinalStage {
    let all = instructions(dockerfile);
    let start = all
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("a FROM");
    let mut stage = FinalStage {
        base: all[start].1.clone(),
        ..FinalStage::default()
    };
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let json_array = |value: &str| -> Vec<String> {
        serde_json::from_str(value).unwrap_or_else(|e| panic!("not a JSON array: {value}: {e}"))
    };
    for (keyword, value) in &all[start + 1..] {
        match keyword.as_str() {
            "ARG" => {
                let (name, default) = value.split_once('=').unwrap_or((value, ""));
                args.insert(name.to_owned(), default.to_owned());
            }
            "LABEL" => {
                for word in words(value) {
                    let (key, mut label) = word.split_once('=').expect("LABEL key=value");
                    let mut substituted = label.to_owned();
                    for (name, default) in &args {
                        substituted = substituted.replace(&format!("${{{name}}}"), default);
                    }
                    label = &substituted;
                    stage.config.labels.insert(key.to_owned(), label.to_owned());
                }
            }
            "COPY" => {
                let destination = words(value).pop().expect("COPY destination");
                stage.copy_destinations.push(destination);
            }
            "USER" => stage.config.user = Some(value.clone()),
            "ENTRYPOINT" => stage.config.entrypoint = json_array(value),
            "CMD" => stage.config.cmd = json_array(value),
            "EXPOSE" => {
                for port in value.split_whitespace() {
                    stage.config.exposed_ports.push(if port.contains('/') {
                        port.to_owned()
                    } else {
                        format!("{port}/tcp")
                    });
                }
            }
            _ => {}
        }
    }
    stage
}

/// Every way the Dockerfile's image differs from the xtask's for `product`.
fn differences(dockerfile: &str, product: &Product, xtask: &RunConfig) -> Vec<String> {
    let docker = final_stage(dockerfile);
    let mut found = Vec::new();
    let mut differ = |what: &str, docker: &dyn std::fmt::Debug, xtask: &dyn std::fmt::Debug| {
        let (d, x) = (format!("{docker:?}"), format!("{xtask:?}"));
        if d != x {
            found.push(format!("{what}: Dockerfile {d}, xtask {x}"));
        }
    };
    differ(
        "binary path (COPY destination)",
        &docker.copy_destinations,
        &vec![product.binary_path()],
    );
    differ("USER", &docker.config.user, &xtask.user);
    differ("ENTRYPOINT", &docker.config.entrypoint, &xtask.entrypoint);
    differ("CMD", &docker.config.cmd, &xtask.cmd);
    differ("EXPOSE", &docker.config.exposed_ports, &xtask.exposed_ports);
    let mut docker_labels = docker.config.labels.clone();
    differ(
        "LABEL org.opencontainers.image.base.name (the FROM image)",
        &docker_labels.remove(BASE_NAME),
        &Some(docker.base.clone()),
    );
    differ("LABELs", &docker_labels, &xtask.labels);
    found
}

/// The member manifests a Dockerfile's dependency stage does not copy and stub.
fn members_missing(dockerfile: &str, member_dirs: &[String]) -> Vec<String> {
    let all = instructions(dockerfile);
    member_dirs
        .iter()
        .filter(|dir| {
            let manifest = format!("{dir}/Cargo.toml");
            let copied = all
                .iter()
                .any(|(k, v)| k == "COPY" && words(v) == [manifest.clone(), format!("{dir}/")]);
            let stubbed = all.iter().any(|(k, v)| {
                k == "RUN"
                    && v.contains("for toml in")
                    && v.split([' ', ';']).any(|word| word == manifest)
            });
            !(copied && stubbed)
        })
        .cloned()
        .collect()
}

fn workspace() -> Workspace {
    Workspace::current().expect("cargo metadata")
}

fn dockerfile(workspace: &Workspace, product: &Product) -> String {
    let path = workspace.root.join(product.dockerfile);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn xtask_config(workspace: &Workspace, product: &Product) -> RunConfig {
    let package = workspace.package(product.package).expect("package");
    // "unknown" is the Dockerfiles' REVISION default, as it is the xtask's.
    product.config(package, "amd64", "unknown")
}

#[test]
fn the_dockerfiles_and_the_xtask_build_the_same_image() {
    let workspace = workspace();
    for product in &PRODUCTS {
        let found = differences(
            &dockerfile(&workspace, product),
            product,
            &xtask_config(&workspace, product),
        );
        assert!(
            found.is_empty(),
            "{} and `cargo xtask images` disagree:\n{}",
            product.dockerfile,
            found.join("\n")
        );
    }
}

#[test]
fn the_dockerfiles_copy_every_workspace_member_manifest() {
    let workspace = workspace();
    let member_dirs: Vec<String> = workspace
        .packages()
        .iter()
        .map(|p| {
            let dir = p.manifest_path.parent().expect("member dir");
            dir.strip_prefix(&workspace.root)
                .unwrap_or(Path::new("?"))
                .display()
                .to_string()
        })
        .collect();
    assert!(member_dirs.contains(&"xtask".to_owned()), "{member_dirs:?}");
    for product in &PRODUCTS {
        let missing = members_missing(&dockerfile(&workspace, product), &member_dirs);
        assert!(
            missing.is_empty(),
            "{}: the dependency stage neither copies nor stubs {missing:?}: add \
             `COPY <dir>/Cargo.toml <dir>/` and the manifest to the `for toml in` list",
            product.dockerfile
        );
    }
}

/// The comparison sees a drift on either side.
#[test]
fn a_drift_on_either_side_is_named() {
    let workspace = workspace();
    let product = &xtask::images::WEBHOOK;
    let text = dockerfile(&workspace, product);
    let config = xtask_config(&workspace, product);
    assert!(differences(&text, product, &config).is_empty());

    for (from, to, named) in [
        ("USER 65532:65532", "USER 65534:65534", "USER"),
        ("EXPOSE 8443", "EXPOSE 9443", "EXPOSE"),
        (
            "CMD [\"serve\"]",
            "CMD [\"serve\", \"--listen\", \"0.0.0.0:9443\"]",
            "CMD",
        ),
        (
            "/usr/local/bin/status-reporter-webhook\n",
            "/bin/status-reporter-webhook\n",
            "binary path",
        ),
        (
            "ENTRYPOINT [\"/usr/local/bin/status-reporter-webhook\"]",
            "ENTRYPOINT [\"/bin/status-reporter-webhook\"]",
            "ENTRYPOINT",
        ),
        ("ARG VERSION=0.1.0", "ARG VERSION=0.2.0", "LABELs"),
        (
            "      org.opencontainers.image.licenses=\"Apache-2.0\" \\\n",
            "",
            "LABELs",
        ),
        (
            "gcr.io/distroless/cc-debian12:nonroot\nARG",
            "gcr.io/distroless/cc-debian13:nonroot\nARG",
            "base.name",
        ),
    ] {
        assert!(text.contains(from), "the Dockerfile no longer has {from:?}");
        let drifted = text.replacen(from, to, 1);
        let found = differences(&drifted, product, &config);
        assert!(
            found.iter().any(|d| d.contains(named)),
            "Dockerfile {from:?} -> {to:?} not named: {found:?}"
        );
    }

    let mut drifted = config.clone();
    drifted.user = Some("0:0".to_owned());
    drifted.entrypoint = vec!["/status-reporter-webhook".to_owned()];
    drifted.labels.remove("org.opencontainers.image.source");
    drifted.exposed_ports.clear();
    let found = differences(&text, product, &drifted).join("\n");
    for named in ["USER", "ENTRYPOINT", "LABELs", "EXPOSE"] {
        assert!(
            found.contains(named),
            "xtask drift in {named} not named: {found}"
        );
    }

    let without_xtask = text.replace("COPY xtask/Cargo.toml xtask/\n", "");
    assert_eq!(
        members_missing(&without_xtask, &["contract".to_owned(), "xtask".to_owned()]),
        ["xtask"]
    );
}
