//! Measurements from `/proc` and the file system: bytes written, RSS, directory sizes.

use std::fs;
use std::path::Path;

/// Bytes a process (all its threads, and its reaped children) caused to be sent to the storage
/// layer, from `/proc/<pid>/io`: (`write_bytes`, `cancelled_write_bytes`). The second counts
/// dirty page-cache bytes dropped before writeback (a file deleted or truncated in time), so the
/// difference is what reached the device.
pub(crate) fn proc_write_bytes(pid: &str) -> Option<(u64, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    Some((field("write_bytes:")?, field("cancelled_write_bytes:").unwrap_or(0)))
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in KiB.
pub(crate) fn proc_status_kb(pid: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Where a workload's memory measurement starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RssMark {
    /// Whether `VmHWM` could be reset to the current RSS (Linux 4.0+, `/proc/self/clear_refs`).
    pub(crate) reset: bool,
    /// RSS at the start, KiB.
    pub(crate) start_kb: Option<u64>,
}

pub(crate) fn rss_mark() -> RssMark {
    let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
    RssMark { reset, start_kb: proc_status_kb("self", "VmRSS:") }
}

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie not yet reaped).
pub(crate) fn proc_state(pid: u32) -> Option<char> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Space used under `dir`: (allocated bytes as `du` counts them, apparent bytes). Allocated is
/// the one that counts: fjall pre-sizes its journal as a sparse file, whose apparent size is
/// far from what it occupies.
pub(crate) fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = fs::read_dir(dir) else { return (0, 0) };
    entries.filter_map(Result::ok).fold((0, 0), |(alloc, apparent), e| match e.metadata() {
        Ok(m) if m.is_dir() => {
            let (a, b) = dir_size(&e.path());
            (alloc + a, apparent + b)
        }
        Ok(m) => (alloc + m.blocks() * 512, apparent + m.len()),
        Err(_) => (alloc, apparent),
    })
}

/// The file-system type of the mount that holds `path` (longest mount-point prefix).
pub(crate) fn fs_type(path: &Path) -> Option<String> {
    let path = fs::canonicalize(path).ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_dev, mnt, ty) = (parts.next()?, parts.next()?, parts.next()?);
            Some((mnt.replace("\\040", " "), ty.to_string()))
        })
        .filter(|(mnt, _)| path.starts_with(mnt))
        .max_by_key(|(mnt, _)| mnt.len())
        .map(|(_, ty)| ty)
}
