//! Scripted failures: make the stand-in answer some requests with an error, hang, or hang up.

/// One scripted failure: the next `count` requests whose method and path match get `kind`
/// instead of their normal answer. Faults are consumed in the order they were injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// HTTP method to match (upper case, e.g. `"PATCH"`); `None` matches any method.
    pub method: Option<String>,
    /// Substring of the request path (and `?query`) to match; `""` matches every path.
    pub path_contains: String,
    /// How many matching requests this fault applies to.
    pub count: usize,
    /// What happens to a matching request.
    pub kind: FaultKind,
}

/// What a [`Fault`] does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP code and a real `Status` body (500 `InternalError`,
    /// 503 `ServiceUnavailable`, 429 `TooManyRequests`, ...), with `Retry-After` when set.
    Status {
        /// HTTP status code of the answer.
        code: u16,
        /// Value of the `Retry-After` header, in seconds.
        retry_after_seconds: Option<u64>,
    },
    /// Accept the request and never answer (until the client gives up). Other requests,
    /// on other connections, are served normally.
    Hang,
    /// Close the TCP connection without sending any response.
    DropConnection,
}

/// Anything that names the method a [`Fault`] matches: `"PATCH"`, `String`, `Some("GET")`,
/// or `None` / `"*"` / `""` for any method.
pub trait MethodMatch {
    /// The upper-case method, or `None` for any.
    fn into_method(self) -> Option<String>;
}

impl MethodMatch for &str {
    fn into_method(self) -> Option<String> {
        match self.trim() {
            "" | "*" => None,
            m => Some(m.to_ascii_uppercase()),
        }
    }
}

impl MethodMatch for String {
    fn into_method(self) -> Option<String> {
        self.as_str().into_method()
    }
}

impl MethodMatch for Option<&str> {
    fn into_method(self) -> Option<String> {
        self.and_then(MethodMatch::into_method)
    }
}

impl Fault {
    /// Answers `count` matching requests with `code` and a real `Status` body. 429 and 503
    /// carry `Retry-After: 1`, as the real server does; change it with [`Fault::retry_after`].
    pub fn status(method: impl MethodMatch, path_contains: &str, code: u16, count: usize) -> Fault {
        let retry_after_seconds = matches!(code, 429 | 503).then_some(1);
        Fault {
            method: method.into_method(),
            path_contains: path_contains.to_owned(),
            count,
            kind: FaultKind::Status {
                code,
                retry_after_seconds,
            },
        }
    }

    /// Never answers `count` matching requests.
    pub fn hang(method: impl MethodMatch, path_contains: &str, count: usize) -> Fault {
        Fault {
            method: method.into_method(),
            path_contains: path_contains.to_owned(),
            count,
            kind: FaultKind::Hang,
        }
    }

    /// Closes the connection of `count` matching requests without a response.
    pub fn drop(method: impl MethodMatch, path_contains: &str, count: usize) -> Fault {
        Fault {
            method: method.into_method(),
            path_contains: path_contains.to_owned(),
            count,
            kind: FaultKind::DropConnection,
        }
    }

    /// Sets (or replaces) the `Retry-After` seconds of a [`FaultKind::Status`] fault.
    pub fn retry_after(mut self, seconds: u64) -> Fault {
        if let FaultKind::Status {
            retry_after_seconds,
            ..
        } = &mut self.kind
        {
            *retry_after_seconds = Some(seconds);
        }
        self
    }

    /// Whether this fault applies to a request; `target` is the path plus `?query` if any.
    pub(crate) fn matches(&self, method: &str, target: &str) -> bool {
        self.count > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && target.contains(&self.path_contains)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_forms_all_convert() {
        assert_eq!(Fault::status(None, "/x", 500, 1).method, None);
        assert_eq!(Fault::status("*", "/x", 500, 1).method, None);
        assert_eq!(
            Fault::status("patch", "/x", 500, 1).method.as_deref(),
            Some("PATCH")
        );
        assert_eq!(
            Fault::status(Some("GET"), "/x", 500, 1).method.as_deref(),
            Some("GET")
        );
        assert_eq!(
            Fault::hang(String::from("PUT"), "/x", 1).method.as_deref(),
            Some("PUT")
        );
    }

    #[test]
    fn retry_after_defaults_for_throttling_codes_only() {
        let kind = |f: Fault| f.kind;
        assert_eq!(
            kind(Fault::status(None, "", 429, 1)),
            FaultKind::Status {
                code: 429,
                retry_after_seconds: Some(1)
            }
        );
        assert_eq!(
            kind(Fault::status(None, "", 500, 1)),
            FaultKind::Status {
                code: 500,
                retry_after_seconds: None
            }
        );
        assert_eq!(
            kind(Fault::status(None, "", 500, 1).retry_after(7)),
            FaultKind::Status {
                code: 500,
                retry_after_seconds: Some(7)
            }
        );
    }

    #[test]
    fn matching_uses_method_path_and_count() {
        let f = Fault::status("PATCH", "/status", 500, 1);
        assert!(f.matches("PATCH", "/apis/batch/v1/namespaces/a/jobs/j/status"));
        assert!(!f.matches("GET", "/apis/batch/v1/namespaces/a/jobs/j/status"));
        assert!(!f.matches("PATCH", "/apis/batch/v1/namespaces/a/jobs/j"));
        assert!(!Fault { count: 0, ..f }.matches("PATCH", "/status"));
    }
}
