//! Forwarding tests.
