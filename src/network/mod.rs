//! Container networking: the NAT table and published ports (`nat`, `ports`).

pub mod nat;
pub mod ports;
