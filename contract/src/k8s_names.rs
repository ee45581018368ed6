//! Kubernetes' name rules, as the API server applies them (`k8s.io/apimachinery`
//! `validation.IsDNS1123Label`, `IsDNS1123Subdomain`, `IsQualifiedName`), so a value that
//! passes here is one the API server takes in an object name, a path segment or a condition type.

/// Which rule a name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Namespaces, container names: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    DnsLabel,
    /// Most object names (Jobs, Pods): DNS labels joined by `.`, at most 253 characters.
    DnsSubdomain,
    /// Condition types, label keys: an optional DNS-subdomain prefix and `/`, then a name of at
    /// most 63 characters `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
    QualifiedName,
}

/// Longest DNS label.
pub const DNS_LABEL_MAX: usize = 63;
/// Longest DNS subdomain.
pub const DNS_SUBDOMAIN_MAX: usize = 253;
/// Longest name part of a qualified name.
pub const QUALIFIED_NAME_MAX: usize = 63;

impl NameRule {
    /// The rule in words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            NameRule::DnsLabel => {
                "a DNS label: at most 63 characters, lower-case letters, digits and '-', starting and ending with a letter or digit"
            }
            NameRule::DnsSubdomain => {
                "a DNS subdomain: at most 253 characters, lower-case letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit"
            }
            NameRule::QualifiedName => {
                "a qualified name: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and '/' (e.g. Available or example.com/DNSReady)"
            }
        }
    }

    /// Whether `name` follows the rule.
    pub fn check(self, name: &str) -> bool {
        match self {
            NameRule::DnsLabel => is_dns_label(name),
            NameRule::DnsSubdomain => is_dns_subdomain(name),
            NameRule::QualifiedName => is_qualified_name(name),
        }
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= DNS_LABEL_MAX && is_dns_label_shaped(s)
}

/// DNS labels (of any length) joined by `.`, at most 253 characters in all.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= DNS_SUBDOMAIN_MAX && s.split('.').all(is_dns_label_shaped)
}

/// `[prefix/]name`: prefix a DNS subdomain, name at most 63 characters
/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
pub fn is_qualified_name(s: &str) -> bool {
    let name = match s.split_once('/') {
        None => s,
        Some((prefix, name)) => {
            if prefix.is_empty() || !is_dns_subdomain(prefix) {
                return false;
            }
            name
        }
    };
    name.len() <= QUALIFIED_NAME_MAX
        && shaped(
            name,
            |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
            |c| c.is_ascii_alphanumeric(),
        )
}

/// A DNS label of any length: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns_label_shaped(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    shaped(s, |c| alnum(c) || c == '-', alnum)
}

/// Non-empty, every character `inner`, the first and the last also `edge`.
fn shaped(s: &str, inner: impl Fn(char) -> bool, edge: impl Fn(char) -> bool) -> bool {
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else {
        return false;
    };
    edge(first) && edge(last) && s.chars().all(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_table() {
        let long = |n| "a".repeat(n);
        let cases: &[(NameRule, &str, bool)] = &[
            (NameRule::DnsLabel, "default", true),
            (NameRule::DnsLabel, "a-1", true),
            (NameRule::DnsLabel, "1", true),
            (NameRule::DnsLabel, "", false),
            (NameRule::DnsLabel, "-a", false),
            (NameRule::DnsLabel, "a-", false),
            (NameRule::DnsLabel, "A", false),
            (NameRule::DnsLabel, "a.b", false),
            (NameRule::DnsLabel, "a_b", false),
            (NameRule::DnsLabel, "a/../b", false),
            (NameRule::DnsSubdomain, "adapter-job", true),
            (NameRule::DnsSubdomain, "a.b-c.d", true),
            (NameRule::DnsSubdomain, "a..b", false),
            (NameRule::DnsSubdomain, ".a", false),
            (NameRule::DnsSubdomain, "a.", false),
            (NameRule::DnsSubdomain, "a_b", false),
            (NameRule::DnsSubdomain, "a/../../b", false),
            (NameRule::DnsSubdomain, "Job", false),
            (NameRule::QualifiedName, "Available", true),
            (NameRule::QualifiedName, "DNS_Ready.v2", true),
            (NameRule::QualifiedName, "example.com/DNSReady", true),
            (NameRule::QualifiedName, "a/b c", false),
            (NameRule::QualifiedName, "/a", false),
            (NameRule::QualifiedName, "a/", false),
            (NameRule::QualifiedName, "a/b/c", false),
            (NameRule::QualifiedName, "Example.com/a", false),
            (NameRule::QualifiedName, "_a", false),
            (NameRule::QualifiedName, "a.", false),
            (NameRule::QualifiedName, "é", false),
            (NameRule::QualifiedName, "", false),
        ];
        for (rule, name, want) in cases {
            assert_eq!(rule.check(name), *want, "{rule:?} {name:?}");
        }
        // Lengths at and past each limit.
        assert!(is_dns_label(&long(63)) && !is_dns_label(&long(64)));
        let subdomain = format!("{}.{}", long(126), long(126));
        assert!(is_dns_subdomain(&subdomain) && !is_dns_subdomain(&format!("{subdomain}ab")));
        assert!(is_qualified_name(&long(63)) && !is_qualified_name(&long(64)));
        assert!(is_qualified_name(&format!("{}/{}", long(253), long(63))));
        assert!(!is_qualified_name(&format!("{}/{}", long(254), long(63))));
    }
}
