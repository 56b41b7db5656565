//! Advisory file locks (`flock`): released by the kernel when the process
//! dies, so a SIGKILLed writer never leaves a stale lock behind.
//!
//! Waiting for a lock that another process holds is bounded: after
//! [`LockWait::FIRST_REPORT`] and then every [`LockWait::EVERY`] the wait
//! is reported to the hook set with [`set_lock_wait_hook`] (the Python
//! bindings log it on `ssmd.archive`), and after the timeout the wait
//! fails with `TimedOut`. Whoever takes a lock writes `pid N (what)` into
//! the lock file, so a waiter can say who it waits for.
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Default bound on waiting for the manifest lock.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A wait for a lock held by another process, as reported to the hook.
#[derive(Clone, Debug)]
pub struct LockWait<'a> {
    pub path: &'a Path,
    /// What waits (`manifest update by writer h1`).
    pub what: &'a str,
    /// Who holds it, as the holder wrote it (`pid 123 (…)`), if known.
    pub holder: Option<String>,
    pub waited: Duration,
    pub timeout: Duration,
}

impl LockWait<'_> {
    /// First report after this long.
    pub const FIRST_REPORT: Duration = Duration::from_secs(1);
    /// Then one every this long.
    pub const EVERY: Duration = Duration::from_secs(5);

    /// One line for a log.
    pub fn message(&self) -> String {
        format!(
            "{}: waiting {:.1} s for the lock {} held by {}; giving up after {} s",
            self.what,
            self.waited.as_secs_f64(),
            self.path.display(),
            self.holder.as_deref().unwrap_or("another process"),
            self.timeout.as_secs_f64()
        )
    }
}

type Hook = Box<dyn Fn(&LockWait<'_>) + Send + Sync>;
static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Where waits for a lock are reported (replaces the previous hook).
pub fn set_lock_wait_hook(hook: Hook) {
    *HOOK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hook);
}

fn report(w: &LockWait<'_>) {
    if let Some(h) = HOOK
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
    {
        h(w);
    }
}

/// An exclusive advisory lock held while this value lives.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Take the exclusive lock on `path` (created if missing), waiting at
    /// most `timeout` for another holder to let go (see the module comment);
    /// `what` names the waiter in reports and in the lock file.
    pub(crate) fn acquire(path: &Path, timeout: Duration, what: &str) -> io::Result<FileLock> {
        let file = open(path)?;
        let start = Instant::now();
        let mut next_report = LockWait::FIRST_REPORT;
        let mut pause = Duration::from_millis(2);
        loop {
            match flock(&file, true) {
                Ok(()) => {
                    mark(&file, what);
                    return Ok(FileLock { _file: file });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            let waited = start.elapsed();
            let wait = || LockWait {
                path,
                what,
                holder: holder(&file),
                waited,
                timeout,
            };
            if waited >= timeout {
                let w = wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "held by {} for {:.1} s: gave up",
                        w.holder.as_deref().unwrap_or("another process"),
                        waited.as_secs_f64()
                    ),
                ));
            }
            if waited >= next_report {
                report(&wait());
                next_report += LockWait::EVERY;
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Take the lock without waiting; `Ok(None)` when another holder has it.
    pub(crate) fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open(path)?;
        match flock(&file, true) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Write `pid N (what)` into a lock file just taken (best effort).
fn mark(mut file: &File, what: &str) {
    let _ = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "pid {} ({what})", std::process::id()));
}

/// What the holder wrote into the lock file, if anything.
fn holder(mut file: &File) -> Option<String> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(256).read_to_string(&mut s).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(unix)]
fn flock(file: &File, nonblocking: bool) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let op = libc::LOCK_EX | if nonblocking { libc::LOCK_NB } else { 0 };
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(not(unix))]
fn flock(_file: &File, _nonblocking: bool) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let a = FileLock::try_acquire(&p).unwrap();
        assert!(a.is_some());
        // flock locks belong to the open file description: a second open in
        // the same process conflicts too.
        assert!(FileLock::try_acquire(&p).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_acquire(&p).unwrap().is_some());
    }

    #[test]
    fn waiting_is_bounded_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let held = FileLock::acquire(&p, Duration::from_secs(1), "first").unwrap();
        let start = Instant::now();
        let e = FileLock::acquire(&p, Duration::from_millis(300), "second").unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let pid = std::process::id();
        assert_eq!(
            e.to_string()[..e.to_string().find(" for ").unwrap()],
            format!("held by pid {pid} (first)")
        );
        drop(held);
        assert!(FileLock::acquire(&p, Duration::from_millis(300), "third").is_ok());
    }
}
