//! File descriptors for `--max-connections`: each connection holds one, and the process needs
//! some of its own (the listener, epoll, inotify, certificate files, the log pipe). At start
//! the soft `RLIMIT_NOFILE` is raised as far as the connections need, up to the hard limit
//! (as Go's runtime raises it); a hard limit too low for the cap is an error naming both
//! numbers, so the webhook never refuses connections at accept for want of descriptors.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::error::{Error, Result};

/// Descriptors kept for the process itself, beyond one per connection.
pub const RESERVED: u64 = 64;

/// Makes sure `max_connections` connections can be open at once.
pub fn reserve_for(max_connections: usize) -> Result<()> {
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = raised_soft_limit(max_connections, limit.current, limit.maximum)? else {
        return Ok(());
    };
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(soft),
            maximum: limit.maximum,
        },
    )
    .map_err(|e| Error::Config {
        flag: "max-connections",
        value: max_connections.to_string(),
        accepted: format!(
            "a cap whose {soft} file descriptors the process can open (raising RLIMIT_NOFILE from {} failed: {e})",
            limit.current.unwrap_or_default()
        ),
    })?;
    tracing::info!(
        soft_limit = soft,
        "raised RLIMIT_NOFILE for --max-connections"
    );
    Ok(())
}

/// The soft limit to raise to, if any, for `max_connections` under the limits `soft` and
/// `hard` (`None`: unlimited); an error when even the hard limit is too low.
pub fn raised_soft_limit(
    max_connections: usize,
    soft: Option<u64>,
    hard: Option<u64>,
) -> Result<Option<u64>> {
    let needed = max_connections as u64 + RESERVED;
    if soft.is_none_or(|soft| soft >= needed) {
        return Ok(None);
    }
    match hard {
        Some(hard) if hard < needed => Err(Error::Config {
            flag: "max-connections",
            value: max_connections.to_string(),
            accepted: format!(
                "at most {}: the process may open {hard} file descriptors (RLIMIT_NOFILE hard limit), one per connection and {RESERVED} for itself; raise the limit or lower the cap",
                hard.saturating_sub(RESERVED)
            ),
        }),
        _ => Ok(Some(needed)),
    }
}
