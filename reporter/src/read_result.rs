//! Reading the adapter's result file: never blocking on a FIFO, never reading more than the
//! contract's cap, and telling a missing file from an invalid one. What the bytes must say is
//! the contract's (`contract::result`).

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use contract::result::{AdapterResult, MAX_RESULT_FILE_SIZE, ResultError, parse};

/// Reads the result file without ever blocking on a FIFO and without reading more than
/// cap+1 bytes, then parses it.
pub fn read_file(path: &Path) -> Result<AdapterResult, ResultError> {
    let bytes = read_capped(path)?;
    parse(&bytes)
}

/// Reads at most [`MAX_RESULT_FILE_SIZE`] bytes of a regular file.
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ResultError> {
    let shown = path.display().to_string();
    let io_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ResultError::NotFound {
                path: shown.clone(),
            }
        } else {
            ResultError::Io {
                path: shown.clone(),
                cause: e.to_string(),
            }
        }
    };
    // O_NONBLOCK: opening a FIFO with no writer would otherwise block the reporter forever.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "directory"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "device"
        } else {
            "other"
        };
        return Err(ResultError::NotRegularFile { path: shown, kind });
    }
    let mut data = Vec::with_capacity(meta.len().min(MAX_RESULT_FILE_SIZE + 1) as usize);
    file.take(MAX_RESULT_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io_err)?;
    if data.len() as u64 > MAX_RESULT_FILE_SIZE {
        return Err(ResultError::TooLarge {
            path: shown,
            size: meta.len().max(data.len() as u64),
            max: MAX_RESULT_FILE_SIZE,
        });
    }
    if data.is_empty() {
        return Err(ResultError::Empty { path: shown });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::result::ResultStatus;

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        assert!(matches!(read_file(&p), Err(ResultError::NotFound { .. })));
        std::fs::write(&p, "").unwrap();
        assert_eq!(
            read_file(&p).unwrap_err().to_string(),
            format!("result file is empty: path={}", p.display())
        );
        std::fs::write(&p, vec![b' '; (MAX_RESULT_FILE_SIZE + 10) as usize]).unwrap();
        assert_eq!(
            read_file(&p).unwrap_err().to_string(),
            format!(
                "result file too large: path={} size=1048586 max=1048576",
                p.display()
            )
        );
        // Exactly 1 MiB of valid JSON (padded with spaces) is accepted.
        let mut body = br#"{"status":"success"}"#.to_vec();
        body.resize(MAX_RESULT_FILE_SIZE as usize, b' ');
        std::fs::write(&p, &body).unwrap();
        assert_eq!(read_file(&p).unwrap().status, ResultStatus::Success);
        let sub = dir.path().join("d");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(
            read_file(&sub),
            Err(ResultError::NotRegularFile {
                kind: "directory",
                ..
            })
        ));
    }

    #[test]
    fn fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&p)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            read_file(&p),
            Err(ResultError::NotRegularFile { kind: "fifo", .. })
        ));
    }
}
