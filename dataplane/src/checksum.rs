//! Placeholder: owned by the wire helper.
