//! IPv4 CIDR blocks as EC2 accepts them (RFC 4632 notation, no host bits set).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A canonical IPv4 CIDR block: `network/prefix` with every host bit zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

/// Why a string is not a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrParseError;

impl Ipv4Cidr {
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// The last address (the broadcast address).
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !self.mask())
    }

    pub fn contains_addr(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == self.network
    }

    /// Whether `other` lies entirely within this block.
    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains_addr(other.network())
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The addresses EC2 hands out in a subnet: it reserves the first four and the last.
    pub fn assignable(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let first = u64::from(self.network) + 4;
        let last = u64::from(u32::from(self.last()));
        // `last` is reserved (broadcast); the range is empty for tiny blocks.
        (first..last).map(|a| Ipv4Addr::from(a as u32))
    }

    /// Whether EC2 would let an interface use `addr` in this block.
    pub fn is_assignable(&self, addr: Ipv4Addr) -> bool {
        let a = u64::from(u32::from(addr));
        self.contains_addr(addr)
            && a >= u64::from(self.network) + 4
            && a < u64::from(u32::from(self.last()))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or(CidrParseError)?;
        // `Ipv4Addr` parsing already refuses leading zeros and out-of-range octets.
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrParseError)?;
        if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CidrParseError);
        }
        let prefix: u8 = prefix.parse().map_err(|_| CidrParseError)?;
        if prefix > 32 {
            return Err(CidrParseError);
        }
        let cidr = Ipv4Cidr {
            network: u32::from(addr),
            prefix,
        };
        if cidr.network & !cidr.mask() != 0 {
            return Err(CidrParseError);
        }
        Ok(cidr)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_canonical_blocks_only() {
        assert_eq!(c("10.0.0.0/16").to_string(), "10.0.0.0/16");
        assert_eq!(c("0.0.0.0/0").prefix(), 0);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.1/16",
            "10.0.0/16",
            "010.0.0.0/16",
            "10.0.0.0/+8",
            "10.0.0.0/016",
            "::1/128",
            "abc",
            "",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let vpc = c("10.0.0.0/16");
        assert!(vpc.contains(&c("10.0.1.0/24")));
        assert!(vpc.contains(&vpc));
        assert!(!vpc.contains(&c("10.1.0.0/24")));
        assert!(!vpc.contains(&c("10.0.0.0/15")));
        assert!(c("10.0.1.0/24").overlaps(&c("10.0.1.128/25")));
        assert!(!c("10.0.1.0/24").overlaps(&c("10.0.2.0/24")));
    }

    #[test]
    fn assignable_addresses_skip_the_reserved_ones() {
        let s = c("10.0.1.0/28");
        let all: Vec<_> = s.assignable().collect();
        assert_eq!(all.len(), 11);
        assert_eq!(all[0], Ipv4Addr::new(10, 0, 1, 4));
        assert_eq!(all[10], Ipv4Addr::new(10, 0, 1, 14));
        assert!(!s.is_assignable(Ipv4Addr::new(10, 0, 1, 3)));
        assert!(!s.is_assignable(Ipv4Addr::new(10, 0, 1, 15)));
        assert!(s.is_assignable(Ipv4Addr::new(10, 0, 1, 4)));
        assert_eq!(c("255.255.255.240/28").assignable().count(), 11);
    }
}
