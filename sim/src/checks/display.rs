//! How a failure reads in `meshlog run` and the test output: the device, what went wrong and
//! by how much, and enough ids to start looking.

use std::fmt;

use super::verdict::{Failure, Missing};

fn ms(us: u64) -> String {
    format!("{}.{:03}s", us / 1_000_000, us % 1_000_000 / 1_000)
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holders = if self.held_by.is_empty() {
            "nobody".to_owned()
        } else {
            self.held_by.join(" ")
        };
        write!(f, "{} in {} held by {holders}", self.id, self.bucket)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotConverged {
                device,
                missing,
                total,
                ids,
            } => {
                write!(
                    f,
                    "convergence: {device} lacks {missing} of {total} events at the end"
                )?;
                let listed: Vec<String> = ids.iter().map(Missing::to_string).collect();
                if !listed.is_empty() {
                    write!(f, ": {}", listed.join("; "))?;
                }
                if *missing > ids.len() {
                    write!(f, "; +{} more", missing - ids.len())?;
                }
                Ok(())
            }
            Failure::Invented { device, count, ids } => write!(
                f,
                "invented: {device} holds {count} events nobody appended ({})",
                ids.join(", ")
            ),
            Failure::Altered { device, count, ids } => write!(
                f,
                "altered: {device} holds {count} events that differ from what was appended ({})",
                ids.join(", ")
            ),
            Failure::Liveness {
                device,
                converged_after_us,
                bound_us,
            } => match converged_after_us {
                Some(after) => write!(
                    f,
                    "liveness: {device} converged {}ms after the heal, bound {}ms",
                    after / 1_000,
                    bound_us / 1_000
                ),
                None => write!(
                    f,
                    "liveness: {device} did not converge within {}ms of the heal",
                    bound_us / 1_000
                ),
            },
            Failure::PushLate {
                from,
                to,
                count,
                first,
                first_sent_at_us,
                first_due_us,
                first_arrived_us,
            } => {
                let arrived = match first_arrived_us {
                    Some(at) => format!("arrived {}", ms(*at)),
                    None => "not there by then".to_owned(),
                };
                write!(
                    f,
                    "prompt delivery: {count} of {from}'s appends reached {to} late over a \
                     clean link (first {first}, appended {}, due by {}, {arrived})",
                    ms(*first_sent_at_us),
                    ms(*first_due_us)
                )
            }
            Failure::HopLate {
                from,
                to,
                hops,
                count,
                first,
                first_sent_at_us,
                first_due_us,
                first_arrived_us,
            } => {
                let arrived = match first_arrived_us {
                    Some(at) => format!("arrived {}", ms(*at)),
                    None => "not there by then".to_owned(),
                };
                write!(
                    f,
                    "hop latency: {count} of {from}'s appends reached {to} ({hops} hops) late \
                     over clean links (first {first}, appended {}, due by {}, {arrived})",
                    ms(*first_sent_at_us),
                    ms(*first_due_us)
                )
            }
            Failure::PastTheDoor {
                device,
                from,
                cause,
                count,
                first_at_us,
                first,
            } => write!(
                f,
                "door: {count} {cause} datagrams claiming {from} got past {device}'s packet \
                 layer (first at {}: {first})",
                ms(*first_at_us)
            ),
            Failure::ReplayAccepted {
                device,
                from,
                count,
                first_at_us,
                first,
            } => write!(
                f,
                "replay: {device} did not drop {count} replays of {from}'s datagrams as \
                 `replayed` (first at {}ms: {first})",
                first_at_us / 1_000
            ),
            Failure::IndexDiffers {
                device,
                when,
                at_us,
                index_only,
                store_only,
                ids,
            } => write!(
                f,
                "index: {device}'s index differs from its store at {when} ({}): {index_only} \
                 ids only in the index, {store_only} only in the store ({})",
                ms(*at_us),
                ids.join(", ")
            ),
            Failure::FileIncomplete {
                device,
                file,
                groups_have,
                groups_total,
            } => write!(
                f,
                "files: {device} holds {groups_have} of file {file}'s {groups_total} groups"
            ),
            Failure::FileBytesDiffer { device, groups } => write!(
                f,
                "files: {device} stored {groups} groups that differ from the file's bytes"
            ),
            Failure::FileGoodput {
                device,
                file,
                goodput_bytes_per_s,
                bound_bytes_per_s,
            } => write!(
                f,
                "files: {device} took file {file} at {goodput_bytes_per_s} B/s in steady state, \
                 under the {bound_bytes_per_s} B/s the link's capacity and loss allow"
            ),
            Failure::ResumeWasteful {
                device,
                file,
                missing_bytes,
                received_bytes,
            } => write!(
                f,
                "files: {device} restarted missing {missing_bytes} bytes of file {file} and \
                 received {received_bytes} shard bytes before holding it whole"
            ),
            Failure::OwnEventLost {
                device,
                cause,
                at_us,
                count,
                ids,
            } => write!(
                f,
                "durability: a {cause} at {} took {count} events {device} had appended ({})",
                ms(*at_us),
                ids.join(", ")
            ),
            Failure::ClockOrder { count, breaks } => {
                write!(
                    f,
                    "clock order: {count} events sort before what they follow"
                )?;
                for (rule, earlier, earlier_us, later, later_us) in breaks {
                    write!(
                        f,
                        "; {rule}: {later} at {later_us}us is not after {earlier} at {earlier_us}us"
                    )?;
                }
                Ok(())
            }
            Failure::OverBudget {
                device,
                peer,
                sends,
                first_at_us,
                answered,
                bound,
            } => write!(
                f,
                "budget: {device} answered {peer} over budget with {sends} datagrams from {}ms \
                 (worst: {answered} B answered, bound {bound} B)",
                first_at_us / 1_000
            ),
            Failure::Inefficient {
                measure,
                value,
                bound,
            } => write!(f, "efficiency: {measure} {value:.2}, bound {bound:.2}"),
            Failure::DatagramTooLarge {
                device,
                count,
                first_at_us,
                first_to,
                first_kind,
                first_bytes,
                bound,
            } => write!(
                f,
                "datagram size: {device} sent {count} datagrams over {bound} B, the first at {} \
                 to {first_to}: {first_kind} of {first_bytes} B",
                ms(*first_at_us)
            ),
            Failure::RosterDiffers {
                device,
                what,
                key_epoch,
                key_epoch_expected,
                settled_after_us,
                bound_us,
            } => {
                write!(
                    f,
                    "roster: {device} {what} (key epoch {key_epoch}, expected \
                     {key_epoch_expected})"
                )?;
                if let Some(after) = settled_after_us {
                    write!(
                        f,
                        "; last changed {} after the last membership change or fault, bound {}",
                        ms(*after),
                        ms(*bound_us)
                    )?;
                }
                Ok(())
            }
            Failure::Readable {
                device,
                count,
                source,
                first,
                first_author,
                first_sealed_at_us,
                removal_known_at_us,
            } => write!(
                f,
                "confidentiality: removed {device} opened {count} events sealed after their \
                 authors knew of its removal (from its {source}); the first {first} by \
                 {first_author}, sealed at {}, its author knew at {}",
                ms(*first_sealed_at_us),
                ms(*removal_known_at_us)
            ),
            Failure::HeldAfterRemoval {
                device,
                count,
                first,
                first_author,
                first_created_at_us,
                bound_us,
            } => write!(
                f,
                "confidentiality: removed {device} stores {count} events created after its \
                 removal and the grace; the first {first} by {first_author}, created at {}, \
                 bound {}",
                ms(*first_created_at_us),
                ms(*bound_us)
            ),
            Failure::OpenedPastRetention {
                device,
                stolen_at_us,
                count,
                of,
                first,
                first_epoch,
                first_source,
                replaced_at_us,
            } => write!(
                f,
                "forward secrecy: keys taken from {device} at {} opened {count} of {of} \
                 recorded events sealed under epochs replaced more than the retention before; \
                 the first {first} (from its {first_source}), epoch {first_epoch}, replaced \
                 there at {}",
                ms(*stolen_at_us),
                ms(*replaced_at_us)
            ),
            Failure::NothingPastRetention {
                device,
                stolen_at_us,
            } => write!(
                f,
                "forward secrecy: keys taken from {device} at {} met no recorded event sealed \
                 under an epoch replaced more than the retention before: nothing was judged",
                ms(*stolen_at_us)
            ),
            Failure::RemovedAccepted {
                device,
                from,
                count,
                first,
                first_at_us,
            } => write!(
                f,
                "removed refused: {device} stored {count} events {from} sent it after knowing \
                 {from} was removed, the first {first} at {}",
                ms(*first_at_us)
            ),
            Failure::Joined {
                device,
                what,
                caught_up_after_us,
                bound_us,
            } => write!(
                f,
                "joined: {device} {what} (caught up {} after its welcome, bound {})",
                caught_up_after_us.map_or("never".to_owned(), ms),
                ms(*bound_us)
            ),
            Failure::JoinAttack {
                device,
                attack,
                what,
            } => write!(f, "join attack: {device} ({attack}): {what}"),
            Failure::NotDirect {
                pair,
                path,
                direct_after_us,
                bound_us,
            } => write!(
                f,
                "nat: {pair} could go direct: direct both ways {} (bound {}), {path:?} at the end",
                direct_after_us.map_or("never".to_owned(), |at| format!("at {}", ms(at))),
                ms(*bound_us)
            ),
            Failure::NotDiscovered {
                device,
                missing,
                found_after_us,
                bound_us,
            } => write!(
                f,
                "discovery: {device} had not found every member it shares a link or a path with \
                 by {} (all found {}; lacking at the end: {})",
                ms(*bound_us),
                found_after_us.map_or("never".to_owned(), |at| format!("at {}", ms(at))),
                if missing.is_empty() {
                    "none".to_owned()
                } else {
                    missing.join(" ")
                }
            ),
            Failure::Stranger {
                device,
                what,
                count,
                first_at_us,
            } => write!(
                f,
                "strangers: {device} {what} ({count} times, the first at {})",
                ms(*first_at_us)
            ),
            Failure::Roaming {
                device,
                peer,
                what,
                at_us,
            } => write!(
                f,
                "roaming: {peer}'s address at {device} {what} at {}",
                ms(*at_us)
            ),
            Failure::ForgedStored {
                device,
                count,
                first,
                forger,
            } => write!(
                f,
                "forged author: {device} stored {count} events {forger} forged in another \
                 member's name, the first {first}"
            ),
        }
    }
}
