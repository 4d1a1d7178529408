//! Source networks: the CIDR allow list, as merged sorted ranges for a fast lookup per connection.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// One allow-list entry: a CIDR or a bare address (a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Network(pub(crate) IpNet);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not an IP network: expected a CIDR like 203.0.113.0/24 or 2001:db8::/32, or a bare address")]
pub(crate) struct BadNetwork(pub(crate) String);

impl FromStr for Network {
    type Err = BadNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let net = match s.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => IpNet::from(
                s.parse::<IpAddr>()
                    .map_err(|_| BadNetwork(s.chars().take(100).collect()))?,
            ),
        };
        Ok(Network(net))
    }
}

/// IPv4-mapped IPv6 peers (`::ffff:203.0.113.7`, seen on dual-stack `[::]` listeners) are IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The allowed networks as disjoint sorted inclusive ranges, per family.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SourceNetworks {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl SourceNetworks {
    pub(crate) fn new(nets: impl IntoIterator<Item = Network>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for Network(net) in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()))),
            }
        }
        SourceNetworks {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// Number of disjoint ranges (what the entries gauge reports after merging overlaps).
    pub(crate) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }
}

fn merge<T: Ord + Copy + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1.succ() => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], addr: T) -> bool {
    // The last range starting at or before addr is the only candidate.
    let idx = ranges.partition_point(|&(start, _)| start <= addr);
    idx > 0 && addr <= ranges[idx - 1].1
}

mod num_like {
    /// Saturating successor, so adjacent ranges merge.
    pub(crate) trait Succ {
        fn succ(self) -> Self;
    }
    impl Succ for u32 {
        fn succ(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Self {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> SourceNetworks {
        SourceNetworks::new(list.iter().map(|s| s.parse::<Network>().expect("valid")))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn matches_inside_and_not_outside_a_cidr() {
        let n = nets(&["203.0.113.0/24"]);
        assert!(n.contains(ip("203.0.113.0")));
        assert!(n.contains(ip("203.0.113.255")));
        assert!(!n.contains(ip("203.0.112.255")));
        assert!(!n.contains(ip("203.0.114.0")));
    }

    #[test]
    fn bare_addresses_are_single_hosts() {
        let n = nets(&["198.51.100.7", "2001:db8::1"]);
        assert!(n.contains(ip("198.51.100.7")));
        assert!(!n.contains(ip("198.51.100.8")));
        assert!(n.contains(ip("2001:db8::1")));
        assert!(!n.contains(ip("2001:db8::2")));
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_entries() {
        let n = nets(&["127.0.0.0/8"]);
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        assert!(!n.contains(ip("::1")));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let n = nets(&["10.0.0.0/25", "10.0.0.128/25", "10.0.0.5", "0.0.0.0/0"]);
        assert_eq!(n.len(), 1);
        let n = nets(&["10.0.0.0/25", "10.0.0.128/25", "192.168.0.0/16"]);
        assert_eq!(n.len(), 2);
        assert!(n.contains(ip("10.0.0.200")));
        assert!(!n.contains(ip("10.0.1.0")));
    }

    #[test]
    fn host_bits_in_a_cidr_are_ignored() {
        let n = nets(&["10.1.2.3/16"]);
        assert!(n.contains(ip("10.1.255.255")));
    }

    #[test]
    fn empty_set_denies_everything() {
        assert!(!SourceNetworks::default().contains(ip("127.0.0.1")));
    }

    #[test]
    fn rejects_garbage_entries() {
        for bad in [
            "",
            "10.0.0.0/33",
            "300.1.1.1",
            "example.com",
            "10.0.0.0/8/8",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad:?}");
        }
    }
}
