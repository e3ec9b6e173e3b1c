//! Bounds-checked little-endian byte encoding shared by events and packets.
//!
//! Decoding never panics: every read checks the remaining length and returns a
//! `DecodeError` naming what was short or wrong.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} more bytes for {what}")]
    Truncated { what: &'static str, needed: usize },
    #[error("bad {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl DecodeError {
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        DecodeError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.bytes.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// LEB128: counts are usually small, so a summary stays small.
    pub fn varint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.bytes.push(byte);
                return self;
            }
            self.bytes.push(byte | 0x80);
        }
    }
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(v);
        self
    }
    /// Length-prefixed (u8) bytes. Callers bound the length before writing.
    pub fn bytes_u8(&mut self, v: &[u8]) -> &mut Self {
        assert!(
            v.len() <= u8::MAX as usize,
            "field longer than its u8 length prefix"
        );
        self.u8(v.len() as u8).raw(v)
    }
    /// Length-prefixed (u16) bytes.
    pub fn bytes_u16(&mut self, v: &[u8]) -> &mut Self {
        assert!(
            v.len() <= u16::MAX as usize,
            "field longer than its u16 length prefix"
        );
        self.u16(v.len() as u16).raw(v)
    }

    /// A socket address: family (4 or 6), the IP's 4 or 16 bytes, the port. One encoding for
    /// every address on the wire (address records, introductions).
    pub fn socket_addr(&mut self, addr: &SocketAddr) -> &mut Self {
        match addr.ip() {
            IpAddr::V4(ip) => self.u8(4).raw(&ip.octets()),
            IpAddr::V6(ip) => self.u8(6).raw(&ip.octets()),
        };
        self.u16(addr.port())
    }
}

#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated {
                what,
                needed: n - self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N, what)?.try_into().expect("took N bytes"))
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                if shift == 63 && byte > 1 {
                    return Err(DecodeError::invalid(what, "varint overflows u64"));
                }
                return Ok(value);
            }
        }
        Err(DecodeError::invalid(what, "varint longer than 10 bytes"))
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::invalid(what, format!("{other} is not 0 or 1"))),
        }
    }
    pub fn bytes_u8(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u8(what)? as usize;
        self.take(len, what)
    }
    pub fn bytes_u16(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(what)? as usize;
        self.take(len, what)
    }
    pub fn str_u8(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes_u8(what)?)
            .map_err(|_| DecodeError::invalid(what, "not UTF-8"))
    }
    pub fn str_u16(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes_u16(what)?)
            .map_err(|_| DecodeError::invalid(what, "not UTF-8"))
    }
    /// A socket address as [`Writer::socket_addr`] writes it; `what` names it in errors.
    pub fn socket_addr(&mut self, what: &'static str) -> Result<SocketAddr, DecodeError> {
        let ip = match self.u8(what)? {
            4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?)),
            6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?)),
            other => {
                return Err(DecodeError::invalid(
                    what,
                    format!("address family {other}, not 4 or 6"),
                ))
            }
        };
        Ok(SocketAddr::new(ip, self.u16(what)?))
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
    /// Every field read: anything left over is an encoding error, not padding.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.bytes.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut w = Writer::new();
            w.varint(v);
            let mut r = Reader::new(&w.bytes);
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xff; 11];
        assert!(Reader::new(&bytes).varint("v").is_err());
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&overflow).varint("v").is_err());
    }

    #[test]
    fn short_reads_say_what_was_short() {
        let err = Reader::new(&[1]).u32("count").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                what: "count",
                needed: 3
            }
        );
    }
}
