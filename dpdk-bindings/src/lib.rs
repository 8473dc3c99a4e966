//! Placeholder: the dpdk-bindings helper fills this in.
