//! scbe-agent library.
