//! The network log: packet events rendered for people, kept in a bounded ring.

use std::collections::VecDeque;
use std::fmt::{Display, Write as _};

use meshlog_core::{NodeEvent, PacketKind};
use meshlog_net::{DriverEvent, NetEventKind};
use serde::Serialize;

/// Newest entries kept; older ones fall off (`GET /api/network-events` says so by its `next`).
pub const NETLOG_LEN_MAX: usize = 1_000;

/// One line of the network log, as `docs/API.md` defines `NetEvent`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, ts_rs::TS)]
pub struct NetEvent {
    pub seq: u64,
    pub at_ms: u64,
    #[ts(type = "\"sent\" | \"received\" | \"dropped\" | \"rejected\"")]
    pub direction: &'static str,
    pub from: String,
    pub to: String,
    pub kind: &'static str,
    pub bytes: u64,
    pub summary: String,
    pub reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct NetLog {
    entries: VecDeque<NetEvent>,
    next_seq: u64,
}

impl NetLog {
    /// Renders a driver event for the log; `None` for events that are not about packets.
    pub fn push(&mut self, me: &str, event: &DriverEvent) -> Option<NetEvent> {
        let entry = render(me, event, self.next_seq)?;
        Some(self.push_with(|_| entry))
    }

    /// Adds an entry built elsewhere (simulated mode renders the virtual network's packets);
    /// `make` gets the entry's sequence number.
    pub fn push_with(&mut self, make: impl FnOnce(u64) -> NetEvent) -> NetEvent {
        let entry = make(self.next_seq);
        self.next_seq += 1;
        if self.entries.len() == NETLOG_LEN_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back(entry.clone());
        entry
    }

    /// Entries with `seq >= since` still in the ring, and the `since` to ask with next time.
    pub fn since(&self, since: u64) -> (Vec<NetEvent>, u64) {
        let events = self
            .entries
            .iter()
            .filter(|e| e.seq >= since)
            .cloned()
            .collect();
        (events, self.next_seq)
    }
}

fn render(me: &str, event: &DriverEvent, seq: u64) -> Option<NetEvent> {
    let line = |direction,
                from: String,
                to: String,
                kind: &'static str,
                size: usize,
                note: &dyn Display| {
        NetEvent {
            seq,
            at_ms: event.at.as_millis(),
            direction,
            summary: summary(&from, &to, kind, note, size),
            from,
            to,
            kind,
            bytes: size as u64,
            reason: None,
        }
    };
    Some(match &event.kind {
        NetEventKind::Sent {
            to,
            kind,
            size,
            note,
        } => line(
            "sent",
            me.to_owned(),
            to.to_string(),
            kind.name(),
            *size,
            note,
        ),
        NetEventKind::SendFailed {
            to,
            kind,
            size,
            error,
        } => {
            let mut entry = line(
                "dropped",
                me.to_owned(),
                to.to_string(),
                kind.name(),
                *size,
                &"",
            );
            entry.summary = format!("{} not sent: {error}", entry.summary);
            entry.reason = Some(error.clone());
            entry
        }
        NetEventKind::Blocked {
            peer,
            outbound,
            kind,
            size,
        } => {
            let kind = kind.map_or("UNKNOWN", |k| k.name());
            let (from, to) = if *outbound {
                (me.to_owned(), peer.to_string())
            } else {
                (peer.to_string(), me.to_owned())
            };
            let mut entry = line("dropped", from, to, kind, *size, &"");
            entry.summary = format!("{} dropped: {peer} is blocked", entry.summary);
            entry.reason = Some("blocked".to_owned());
            entry
        }
        NetEventKind::Node(NodeEvent::PacketReceived {
            from,
            kind,
            size,
            note,
        }) => line(
            "received",
            from.to_string(),
            me.to_owned(),
            kind.name(),
            *size,
            note,
        ),
        NetEventKind::Node(NodeEvent::PacketDropped {
            claimed,
            size,
            reason,
        }) => {
            let (kind, from) = match claimed {
                Some((kind, from)) => (kind.name(), from.clone()),
                None => ("UNKNOWN", "?".to_owned()),
            };
            let mut entry = line("dropped", from, me.to_owned(), kind, *size, &"");
            entry.summary = format!("{} dropped: {reason}", entry.summary);
            entry.reason = Some(reason.code().to_owned());
            entry
        }
        NetEventKind::Node(NodeEvent::EventRejected { from, reason }) => {
            let kind = PacketKind::Event.name();
            let mut entry = line("rejected", from.to_string(), me.to_owned(), kind, 0, &"");
            entry.summary = format!("{from} → {me} EVENT rejected: {reason}");
            entry.reason = Some(reason.code().to_owned());
            entry
        }
        NetEventKind::Node(_) | NetEventKind::PeerLearned { .. } => return None,
    })
}

/// `alice → bob FILTER b3* 39 ids reply (1,104 B)`, the seed's log line. The note (a
/// packet's facts, or text) is formatted straight into the line; an empty one leaves no gap.
pub fn summary(from: &str, to: &str, kind: &str, note: impl Display, size: usize) -> String {
    let mut line = format!("{from} → {to} {kind} ");
    let before = line.len();
    write!(line, "{note}").expect("writing to a String cannot fail");
    if line.len() == before {
        line.pop();
    }
    write!(line, " ({} B)", thousands(size as u64)).expect("writing to a String cannot fail");
    line
}

/// 1104 -> "1,104".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_the_seed() {
        assert_eq!(
            summary("alice", "bob", "FILTER", "b3* 39 ids reply", 1104),
            "alice → bob FILTER b3* 39 ids reply (1,104 B)"
        );
        assert_eq!(
            summary("alice", "bob", "SUMMARY", "", 10),
            "alice → bob SUMMARY (10 B)"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn ring_keeps_the_newest_thousand() {
        let mut log = NetLog::default();
        let event = DriverEvent {
            at: meshlog_core::Instant::from_millis(5),
            kind: NetEventKind::SendFailed {
                to: meshlog_core::DeviceId::new("bob").unwrap(),
                kind: PacketKind::Summary,
                size: 10,
                error: "x".into(),
            },
        };
        for _ in 0..1_500 {
            log.push("alice", &event);
        }
        let (events, next) = log.since(0);
        assert_eq!(events.len(), NETLOG_LEN_MAX);
        assert_eq!(events[0].seq, 500);
        assert_eq!(next, 1_500);
        assert_eq!(log.since(1_499).0.len(), 1);
        assert!(log.since(1_500).0.is_empty());
    }
}
