//! Error plumbing every layer shares: `Cause`, the source an error variant keeps (an `Arc`, so
//! errors stay `Clone` for moka's coalesced loads), and `Chain`, which displays an error with
//! all its sources for the one log line where the error is handled.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The underlying error of a variant, kept whole (not flattened into a string).
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// `e` as a cause.
pub fn cause(e: impl Error + Send + Sync + 'static) -> Cause {
    Arc::new(e)
}

/// A cause that is only a message (nothing underneath it failed: a writer thread that has
/// stopped, an item without a body).
pub fn message(text: impl Into<String>) -> Cause {
    Arc::new(Message(text.into()))
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

/// Displays an error and its sources: `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the store is unavailable")]
    struct Outer(#[source] Cause);

    #[test]
    fn a_chain_shows_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Outer(cause(io));
        assert_eq!(Chain(&e).to_string(), "the store is unavailable: refused");
        let plain = Outer(message("the writer has stopped"));
        assert_eq!(
            Chain(&plain).to_string(),
            "the store is unavailable: the writer has stopped"
        );
    }
}
