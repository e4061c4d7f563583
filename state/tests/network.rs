//! The address allocator against its promise: whatever is held, the address it hands out is
//! in the subnet, free, and neither the gateway nor the network or broadcast address; and it
//! finds one whenever one exists.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use moor_state::network::{allocate, first_host, Subnet};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../proptest-regressions/network.txt"
        )))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn allocation_never_hands_out_a_held_or_reserved_address(
        base in any::<u32>(),
        len in 22u8..=30,
        held_offsets in proptest::collection::vec(0u32..1024, 0..300),
    ) {
        let s = Subnet::new(Ipv4Addr::from(base), len).expect("subnet");
        let gw = first_host(s);
        let (first, last) = s.bounds();
        let held: BTreeSet<Ipv4Addr> = held_offsets
            .iter()
            .map(|o| Ipv4Addr::from(first + o % (last - first + 1)))
            .collect();
        match allocate(s, gw, &held) {
            Some(ip) => {
                prop_assert!(s.contains(ip));
                prop_assert!(!held.contains(&ip));
                prop_assert!(ip != gw);
                prop_assert!(u32::from(ip) != first && u32::from(ip) != last);
            }
            None => {
                let free = (first + 1..last)
                    .map(Ipv4Addr::from)
                    .filter(|a| *a != gw && !held.contains(a));
                prop_assert_eq!(free.count(), 0);
            }
        }
    }
}
