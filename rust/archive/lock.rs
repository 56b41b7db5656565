//! Advisory file locks (`flock`): released by the kernel when the process
//! dies, so a SIGKILLed writer never leaves a stale lock behind.
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// An exclusive advisory lock held while this value lives.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Block until the exclusive lock on `path` (created if missing) is held.
    pub(crate) fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = open(path)?;
        flock(&file, false)?;
        Ok(FileLock { _file: file })
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
}
