//! Handing start-up memory back to the kernel.
//!
//! Starting the agent touches code and heap that the running agent never
//! uses again: argument parsing, TLS set-up, compiling the Sigma pack,
//! loading the YARA rules, the first pass over watched files. The kernel
//! maps the executable's code in 64 KiB windows around each page used
//! (fault-around), so after start most of the binary's 22 MB of code is
//! resident although an idle agent runs a small part of it. Once start-up
//! is over, [`release_startup_memory`] returns free heap to the kernel
//! (`malloc_trim`) and asks it to page out the executable's read-only
//! mappings (`MADV_PAGEOUT`): the code the agent goes on running comes back
//! on first use, from the page cache or the file, the rest stays out.
//!
//! This module holds two of the workspace's few `unsafe` calls: both only
//! pass the kernel and the C allocator what they document as valid.
#![allow(unsafe_code)]

use std::io::BufRead;
use std::time::Duration;

/// How long after the pipeline starts [`release_after`] is usually called
/// with: time for the first rounds, the first heartbeat and a small file
/// baseline to finish.
pub const STARTUP_SETTLE: Duration = Duration::from_secs(10);

/// What [`release_startup_memory`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Whether the allocator gave memory back (`malloc_trim`'s answer).
    pub heap_trimmed: bool,
    /// Bytes of the executable's read-only mappings offered to the kernel.
    pub code_bytes_paged_out: u64,
}

/// Returns free heap to the kernel and pages out the executable's
/// read-only mappings; see the module doc. Never fails: what the kernel
/// refuses (an old kernel without `MADV_PAGEOUT`) is skipped.
pub fn release_startup_memory() -> Released {
    Released {
        heap_trimmed: trim_heap(),
        code_bytes_paged_out: page_out_executable(),
    }
}

/// Runs [`release_startup_memory`] once, `delay` from now, on a thread of
/// its own (it takes a few milliseconds; nothing waits for it).
pub fn release_after(delay: Duration) {
    let spawned = std::thread::Builder::new()
        .name("ward-release".into())
        .spawn(move || {
            std::thread::sleep(delay);
            let released = release_startup_memory();
            tracing::info!(
                heap_trimmed = released.heap_trimmed,
                code_bytes_paged_out = released.code_bytes_paged_out,
                "start-up memory handed back to the kernel"
            );
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the thread that releases start-up memory");
    }
}

/// `malloc_trim(0)`: free memory at the top of every arena and free pages
/// inside them go back to the kernel.
pub fn trim_heap() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a size (0: keep no padding), touches only
        // the allocator's free lists under its own locks, and is documented
        // as safe to call at any time from any thread.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// `MADV_PAGEOUT` over every read-only, file-backed mapping of the running
/// executable (its code and constant data). Returns the bytes advised.
pub fn page_out_executable() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return 0;
        };
        let Ok(maps) = std::fs::File::open("/proc/self/maps") else {
            return 0;
        };
        let mut advised = 0;
        for line in std::io::BufReader::new(maps).lines().map_while(Result::ok) {
            let Some(range) = read_only_mapping_of(&line, &exe) else {
                continue;
            };
            let len = range.1 - range.0;
            // SAFETY: the range is a whole mapping the kernel just listed in
            // /proc/self/maps: page aligned, and read-only and backed by the
            // executable file, so paging it out changes no content — its pages
            // are read back from the file on next use. MADV_PAGEOUT is only
            // advice; an error (an old kernel, a mapping gone meanwhile) leaves
            // memory as it was.
            let rc =
                unsafe { libc::madvise(range.0 as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
            if rc == 0 {
                advised += len as u64;
            }
        }
        advised
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The address range of a `/proc/self/maps` line when it maps `exe` without
/// write permission.
fn read_only_mapping_of(line: &str, exe: &std::path::Path) -> Option<(usize, usize)> {
    // address perms offset dev inode pathname (which may hold spaces)
    let mut rest = line;
    let mut fields = [""; 5];
    for field in &mut fields {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    let [range, perms, ..] = fields;
    if !perms.starts_with('r') || perms.as_bytes().get(1) != Some(&b'-') {
        return None;
    }
    // Another file, or "… (deleted)": the executable was replaced on disk.
    if std::path::Path::new(rest.trim()) != exe {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn only_read_only_mappings_of_the_executable_are_picked() {
        let exe = Path::new("/usr/bin/ward agent");
        for (line, want) in [
            (
                "55d0c0000000-55d0c1000000 r-xp 00400000 08:01 1234    /usr/bin/ward agent",
                Some((0x55d0c0000000, 0x55d0c1000000)),
            ),
            (
                "55d0c1000000-55d0c1400000 r--p 01400000 08:01 1234    /usr/bin/ward agent",
                Some((0x55d0c1000000, 0x55d0c1400000)),
            ),
            (
                "55d0c1400000-55d0c1500000 rw-p 01800000 08:01 1234    /usr/bin/ward agent",
                None,
            ),
            (
                "55d0c1400000-55d0c1500000 ---p 01800000 08:01 1234    /usr/bin/ward agent",
                None,
            ),
            (
                "7f0000000000-7f0000100000 r-xp 00000000 08:01 99      /usr/lib/libc.so.6",
                None,
            ),
            (
                "55d0c0000000-55d0c1000000 r-xp 00400000 08:01 1234    /usr/bin/ward agent (deleted)",
                None,
            ),
            ("7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ", None),
            (
                "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0       [stack]",
                None,
            ),
            ("zz-yy r-xp 0 08:01 1234 /usr/bin/ward agent", None),
            ("", None),
        ] {
            assert_eq!(read_only_mapping_of(line, exe), want, "{line}");
        }
    }

    #[test]
    fn the_executables_read_only_mappings_are_paged_out_and_code_still_runs() {
        let released = release_startup_memory();
        // Its code and constant data: some of the file, never more than it
        // (plus the last page of each mapping). How much leaves RSS depends
        // on who else maps the file; bench/footprint.py measures that.
        let file = std::fs::metadata("/proc/self/exe").unwrap().len();
        assert!(released.code_bytes_paged_out > 0, "{released:?}");
        assert!(
            released.code_bytes_paged_out <= file + 16 * 4096,
            "{released:?}, file {file}"
        );
        // Code paged out comes back on use.
        let v: Vec<u64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(v.iter().sum::<u64>(), 332_833_500);
        assert!(release_startup_memory().code_bytes_paged_out > 0);
    }
}
