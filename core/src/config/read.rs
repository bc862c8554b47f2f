//! Reading a configuration file from disk: a bounded read of a regular file of
//! UTF-8 text, and the first look at what kind of document it is.

use std::path::Path;

use super::errors::{file_error, ConfigError};

/// Largest configuration file read (plans and accounts files are a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a configuration file: a regular file of at most [`MAX_CONFIG_BYTES`]
/// of UTF-8 text. A directory, FIFO, socket or device is refused without being
/// opened for reading, and the read is bounded whatever the file turns into.
///
/// # Errors
/// `FILE: message` (or `FILE:LINE: message` for a bad byte).
pub fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let meta =
        std::fs::metadata(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(file_error(
            path,
            0,
            format!("is {what}; a configuration file must be a regular file"),
        ));
    }
    let too_big = || {
        file_error(
            path,
            0,
            format!(
                "is larger than {} MiB; a configuration file is a few KiB of TOML",
                MAX_CONFIG_BYTES / (1024 * 1024)
            ),
        )
    };
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(path, 0, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    let line_at = |at: usize| bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(file_error(
            path,
            line_at(at),
            "not a text file (a NUL byte); expected TOML",
        ));
    }
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(file_error(
            path,
            line_at(e.valid_up_to()),
            "not UTF-8 text; a configuration file is TOML in UTF-8",
        ));
    }
    Ok(String::from_utf8(bytes).unwrap_or_default())
}

/// Whether a document holds nothing but blank lines and comments.
pub(super) fn is_blank(src: &str) -> bool {
    src.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

/// What kind of file a TOML document in `plans/` is.
pub fn is_accounts_file(src: &str) -> bool {
    src.lines().any(|l| l.trim() == "[admin]")
}
