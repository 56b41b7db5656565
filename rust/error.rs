//! The one error type of the core. Each variant maps to one Python class
//! (see [`ErrorClass`]); the bindings raise it through a cached import of
//! `ssmd.errors` (`rust/python/errors.rs`), never by looking a name up.
//!
//! Batch calls do not raise for bad frames (they come back as `malformed`
//! lines); these errors are for bad arguments, bad settings, strict parses
//! and failing sinks.

use crate::archive::ArchiveError;

/// An error the core reports to its caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An invalid setting or argument value (`ssmd.errors.ConfigError`).
    #[error("{0}")]
    Config(String),
    /// One strict parse failed (`ssmd.errors.ParseError`).
    #[error("{0}")]
    Parse(String),
    /// Writing or reading the archive failed (`ssmd.errors.SinkError`).
    #[error("{0}")]
    Sink(String),
    /// An argument of the wrong type (Python's `TypeError`: a caller bug).
    #[error("{0}")]
    Type(String),
}

/// The Python class a variant is raised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Config,
    Parse,
    Sink,
    Type,
}

impl ErrorClass {
    /// Every class, for the test that checks each one resolves.
    pub const ALL: [ErrorClass; 4] = [
        ErrorClass::Config,
        ErrorClass::Parse,
        ErrorClass::Sink,
        ErrorClass::Type,
    ];

    /// Name of the Python class (in `ssmd.errors`, or the builtin `TypeError`).
    pub fn python_name(self) -> &'static str {
        match self {
            ErrorClass::Config => "ConfigError",
            ErrorClass::Parse => "ParseError",
            ErrorClass::Sink => "SinkError",
            ErrorClass::Type => "TypeError",
        }
    }
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Config(_) => ErrorClass::Config,
            Error::Parse(_) => ErrorClass::Parse,
            Error::Sink(_) => ErrorClass::Sink,
            Error::Type(_) => ErrorClass::Type,
        }
    }

    /// The core error for an archive error: a caller mistake is `Config`,
    /// everything else a sink failure.
    #[cold]
    pub fn from_archive(e: &ArchiveError) -> Error {
        if e.is_config() {
            Error::Config(e.to_string())
        } else {
            Error::Sink(e.to_string())
        }
    }
}

impl From<ArchiveError> for Error {
    fn from(e: ArchiveError) -> Self {
        Error::from_archive(&e)
    }
}

/// Result of core calls.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_listed_class() {
        for e in [
            Error::Config(String::new()),
            Error::Parse(String::new()),
            Error::Sink(String::new()),
            Error::Type(String::new()),
        ] {
            assert!(ErrorClass::ALL.contains(&e.class()));
        }
    }

    #[test]
    fn archive_errors_map_by_kind() {
        let c = Error::from(ArchiveError::Config("bad codec".into()));
        assert_eq!(c, Error::Config("bad codec".into()));
        let s = Error::from(ArchiveError::State("closed".into()));
        assert_eq!(s.class(), ErrorClass::Sink);
    }
}
