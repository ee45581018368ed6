//! An image name, `REPOSITORY:TAG`, checked once where it enters (the command line) so that a
//! bad one never reaches an archive.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A checked image name with a tag, e.g. `localhost/status-reporter:0.1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    repository: String,
    tag: String,
}

impl Reference {
    /// `PREFIX/NAME:TAG`, where `PREFIX` is a registry with an optional path
    /// (`localhost`, `ghcr.io/openshift-hyperfleet`).
    pub fn new(prefix: &str, name: &str, tag: &str) -> Result<Self, Error> {
        format!("{}/{name}:{tag}", prefix.trim_end_matches('/')).parse()
    }

    /// The repository, e.g. `localhost/status-reporter`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, e.g. `0.1.0`.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        let invalid = |problem| Error::ImageName {
            name: name.to_owned(),
            problem,
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, tag),
            _ => return Err(invalid("no tag")),
        };
        if tag.is_empty()
            || tag.len() > 128
            || tag.starts_with(['.', '-'])
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(invalid("bad tag"));
        }
        let mut components = repository.split('/');
        let registry = components.next().unwrap_or_default();
        let registry_host = match registry.split_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            Some(_) => return Err(invalid("bad registry port")),
            None => registry,
        };
        let lowercase_component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        };
        if !repository.contains('/') {
            return Err(invalid("no registry (e.g. localhost/NAME:TAG)"));
        }
        if !lowercase_component(registry_host) || !components.all(lowercase_component) {
            return Err(invalid("bad repository"));
        }
        Ok(Self {
            repository: repository.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_registry_paths_ports_and_tags() {
        for name in [
            "localhost/status-reporter:0.1.0",
            "localhost/test/pause:0.1",
            "localhost:5000/status-reporter:v1_2-rc.1",
            "ghcr.io/openshift-hyperfleet/status-reporter-webhook:latest",
        ] {
            let reference: Reference = name.parse().expect(name);
            assert_eq!(reference.to_string(), name);
        }
        let r = Reference::new("ghcr.io/org/", "status-reporter", "0.1.0").unwrap();
        assert_eq!(r.repository(), "ghcr.io/org/status-reporter");
        assert_eq!(r.tag(), "0.1.0");
    }

    #[test]
    fn refuses_what_a_runtime_would_refuse_naming_the_problem() {
        for (name, problem) in [
            ("localhost/status-reporter", "no tag"),
            ("localhost:5000/status-reporter", "no tag"),
            ("status-reporter:0.1.0", "no registry"),
            ("localhost/Status-Reporter:0.1.0", "bad repository"),
            ("localhost//status-reporter:0.1.0", "bad repository"),
            ("localhost/status reporter:0.1.0", "bad repository"),
            ("localhost:port/status-reporter:0.1.0", "bad registry port"),
            ("localhost/status-reporter:", "bad tag"),
            ("localhost/status-reporter:-rc", "bad tag"),
            ("localhost/status-reporter:a+b", "bad tag"),
        ] {
            let err = name.parse::<Reference>().expect_err(name).to_string();
            assert!(
                err.contains(problem) && err.contains("accepted:"),
                "{name}: {err}"
            );
        }
        let long = format!("localhost/x:{}", "a".repeat(129));
        assert!(long.parse::<Reference>().is_err());
    }
}
