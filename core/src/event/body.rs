//! Event bodies: the four kinds, their canonical encoding and the limits a receiver enforces.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{EventId, FileId};
use crate::member::op::{decode_parents, encode_parents, MemberOp, PARENTS_MAX};

use super::{
    BLOB_SIZE_MAX, EMOJI_LEN_MAX, FILE_CHUNK_LEN_MAX, FILE_NAME_LEN_MAX, FILE_SIZE_MAX,
    MIME_LEN_MAX, TEXT_LEN_MAX,
};

/// A message's reference to an attached file. The file itself travels apart from the message,
/// one of two ways ([`Carrier`]); either way `file` is the BLAKE3 hash of its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub file: FileId,
    pub size: u64,
    pub name: String,
    pub mime: String,
    pub carrier: Carrier,
}

/// How an attached file travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// As `count` `FileChunk` events: small files (up to `FILE_SIZE_MAX`), synced like any event.
    Chunks { count: u16 },
    /// By the blob transfer (`crate::blob`): any size up to [`BLOB_SIZE_MAX`], fetched from
    /// peers that hold it, each 16 KiB group verified against `file` before it is stored.
    Blob,
}

impl FileRef {
    /// The chunk events that carry the file, if it travels as chunks.
    pub fn chunk_count(&self) -> Option<u16> {
        match self.carrier {
            Carrier::Chunks { count } => Some(count),
            Carrier::Blob => None,
        }
    }
    pub fn is_blob(&self) -> bool {
        self.carrier == Carrier::Blob
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// `auto` marks messages made by the simulation service's generator.
    Message {
        text: String,
        attachment: Option<FileRef>,
        auto: bool,
    },
    Reaction {
        message: EventId,
        emoji: String,
        remove: bool,
    },
    FileChunk {
        file: FileId,
        index: u16,
        count: u16,
        bytes: Vec<u8>,
    },
    DeviceStatus {
        online: bool,
    },
    /// A change to the roster or the key epochs (`crate::member`), naming the membership
    /// events its author held.
    Membership {
        parents: Vec<EventId>,
        /// Boxed: an op is several times the size of the other bodies.
        op: Box<MemberOp>,
    },
}

impl EventBody {
    pub fn kind_name(&self) -> &'static str {
        match self {
            EventBody::Message { .. } => "message",
            EventBody::Reaction { .. } => "reaction",
            EventBody::FileChunk { .. } => "file_chunk",
            EventBody::DeviceStatus { .. } => "device_status",
            EventBody::Membership { .. } => "membership",
        }
    }

    /// Checks the limits a receiver enforces, so a local append fails the same way.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            EventBody::Message {
                text, attachment, ..
            } => {
                check_len("text", text.len(), TEXT_LEN_MAX)?;
                if let Some(file) = attachment {
                    check_len("attachment name", file.name.len(), FILE_NAME_LEN_MAX)?;
                    check_len("attachment mime", file.mime.len(), MIME_LEN_MAX)?;
                    match file.carrier {
                        Carrier::Chunks { count } => {
                            let size = usize::try_from(file.size).unwrap_or(usize::MAX);
                            check_len("attachment size", size, FILE_SIZE_MAX)?;
                            let chunks_needed = size.div_ceil(FILE_CHUNK_LEN_MAX).max(1);
                            if count as usize != chunks_needed {
                                return Err(DecodeError::invalid(
                                    "attachment chunk count",
                                    format!(
                                        "{count} for {} bytes, expected {chunks_needed}",
                                        file.size
                                    ),
                                ));
                            }
                        }
                        Carrier::Blob => {
                            if file.size > BLOB_SIZE_MAX {
                                return Err(DecodeError::invalid(
                                    "attachment size",
                                    format!("{} bytes, at most {BLOB_SIZE_MAX}", file.size),
                                ));
                            }
                        }
                    }
                }
            }
            EventBody::Reaction { emoji, .. } => {
                if emoji.is_empty() {
                    return Err(DecodeError::invalid("emoji", "empty"));
                }
                check_len("emoji", emoji.len(), EMOJI_LEN_MAX)?;
            }
            EventBody::FileChunk {
                index,
                count,
                bytes,
                ..
            } => {
                if *count == 0 || index >= count {
                    return Err(DecodeError::invalid(
                        "chunk index",
                        format!("{index} of {count}"),
                    ));
                }
                check_len("chunk bytes", bytes.len(), FILE_CHUNK_LEN_MAX)?;
            }
            EventBody::DeviceStatus { .. } => {}
            EventBody::Membership { parents, op } => {
                if parents.len() > PARENTS_MAX {
                    return Err(DecodeError::invalid(
                        "parent count",
                        format!("{}, at most {PARENTS_MAX}", parents.len()),
                    ));
                }
                op.validate()?;
            }
        }
        Ok(())
    }

    /// The body alone, as the event's plaintext lays it out: for recordings of a node's inputs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.bytes
    }

    /// [`to_bytes`](EventBody::to_bytes) read back: the whole of `bytes`, and a valid body.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = Self::decode(&mut r)?;
        r.finish()?;
        body.validate()?;
        Ok(body)
    }

    pub(super) fn encode(&self, w: &mut Writer) {
        match self {
            EventBody::Message {
                text,
                attachment,
                auto,
            } => {
                w.u8(1).bytes_u16(text.as_bytes()).u8(u8::from(*auto));
                match attachment {
                    None => {
                        w.u8(0);
                    }
                    Some(f) => {
                        match f.carrier {
                            Carrier::Chunks { count } => {
                                let size = u32::try_from(f.size).expect("validated: chunked");
                                w.u8(1).raw(&f.file.0).u32(size).u16(count);
                            }
                            Carrier::Blob => {
                                w.u8(2).raw(&f.file.0).u64(f.size);
                            }
                        }
                        w.bytes_u8(f.name.as_bytes()).bytes_u8(f.mime.as_bytes());
                    }
                }
            }
            EventBody::Reaction {
                message,
                emoji,
                remove,
            } => {
                w.u8(2)
                    .raw(&message.0)
                    .bytes_u8(emoji.as_bytes())
                    .u8(u8::from(*remove));
            }
            EventBody::FileChunk {
                file,
                index,
                count,
                bytes,
            } => {
                w.u8(3)
                    .raw(&file.0)
                    .u16(*index)
                    .u16(*count)
                    .bytes_u16(bytes);
            }
            EventBody::DeviceStatus { online } => {
                w.u8(4).u8(u8::from(*online));
            }
            EventBody::Membership { parents, op } => {
                w.u8(5);
                encode_parents(parents, w);
                op.encode(w);
            }
        }
    }

    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let body = match r.u8("event kind")? {
            1 => {
                let text = r.str_u16("text")?.to_owned();
                let auto = r.bool("auto flag")?;
                let attachment = match r.u8("attachment flag")? {
                    0 => None,
                    flag @ (1 | 2) => {
                        let file = FileId(r.array("attachment file id")?);
                        let (size, carrier) = if flag == 1 {
                            let size = u64::from(r.u32("attachment size")?);
                            let count = r.u16("attachment chunk count")?;
                            (size, Carrier::Chunks { count })
                        } else {
                            (r.u64("attachment size")?, Carrier::Blob)
                        };
                        Some(FileRef {
                            file,
                            size,
                            name: r.str_u8("attachment name")?.to_owned(),
                            mime: r.str_u8("attachment mime")?.to_owned(),
                            carrier,
                        })
                    }
                    other => {
                        return Err(DecodeError::invalid("attachment flag", format!("{other}")))
                    }
                };
                EventBody::Message {
                    text,
                    attachment,
                    auto,
                }
            }
            2 => EventBody::Reaction {
                message: EventId(r.array("reaction target")?),
                emoji: r.str_u8("emoji")?.to_owned(),
                remove: r.bool("reaction remove flag")?,
            },
            3 => EventBody::FileChunk {
                file: FileId(r.array("chunk file id")?),
                index: r.u16("chunk index")?,
                count: r.u16("chunk count")?,
                bytes: r.bytes_u16("chunk bytes")?.to_vec(),
            },
            4 => EventBody::DeviceStatus {
                online: r.bool("online flag")?,
            },
            5 => EventBody::Membership {
                parents: decode_parents(r)?,
                op: Box::new(MemberOp::decode(r)?),
            },
            other => {
                return Err(DecodeError::invalid(
                    "event kind",
                    format!("unknown kind {other}"),
                ))
            }
        };
        body.validate()?;
        Ok(body)
    }
}

pub(super) fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        return Err(DecodeError::invalid(
            what,
            format!("{len} bytes, at most {max}"),
        ));
    }
    Ok(())
}
