//! Reaching nodes: running commands in them ([`transport`], the only module that spawns
//! processes), reading what `ip` prints ([`iproute`]), observing a node ([`observe`]) and
//! applying a plan to it ([`apply`]).

pub mod apply;
pub mod cluster;
pub mod host;
pub mod iproute;
pub mod lxd_api;
pub mod netlink;
pub mod networkd;
pub mod observe;
pub mod probe;
pub mod request;
pub mod rollout;
pub mod transport;
pub mod watch;
