//! An invertible Bloom lookup table (IBLT) of the whole id set, kept current on insert, that
//! settles a small difference in one round trip.
//!
//! Each id goes into one cell of each of `PARTITIONS` partitions. A cell holds a wrapping
//! count, the XOR of the ids' 8-byte heads (their depth-16 bucket, so the holder finds the
//! full id) and the XOR of a 32-bit check of each head. Subtracting a peer's table from ours
//! leaves only the difference; cells holding one id (count ±1, check matching) are peeled
//! until nothing is left (decoded) or nothing peels (too large a difference: fall back to the
//! prefix descent).
//!
//! Why an IBLT rather than a minisketch-style sketch: both fit one datagram at the sizes that
//! matter, but an IBLT updates in O(partitions) per insert and decodes in O(cells), with no
//! field arithmetic, and its failure is detected (cells left) rather than silent.
//!
//! Why foldable partitions: a cell's position is `hash mod WIDTH_MAX`; folding a partition in
//! half (XOR cell `i` with cell `i + width/2`) gives the table at half the width with
//! positions `hash mod width/2`, for free. So one table of `WIDTH_MAX` is maintained and sent
//! at the smallest width the expected difference needs: 9 cells (117 bytes) for one missing
//! event, 72 for a few dozen. Measured decode rates are in this file's tests.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::EventId;

/// Cells an id lands in: one per partition. Three peels best at these sizes.
pub const PARTITIONS: usize = 3;
/// Cells per partition at the widest. 24 folds to 12, 6 and 3; 3 × 24 cells of 13 bytes (936)
/// fit a 1200-byte datagram beside any header.
pub const WIDTH_MAX: usize = 24;
/// The widths a table is sent at, narrowest first.
pub const WIDTHS: [usize; 4] = [3, 6, 12, 24];
/// Bytes per cell on the wire: count, head, check.
pub const CELL_LEN: usize = 1 + 8 + 4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cell {
    /// Wrapping: after subtraction only small counts matter, and a pure cell is ±1.
    count: u8,
    head: u64,
    check: u32,
}

impl Cell {
    fn toggle(&mut self, head: u64, add: bool) {
        self.count = if add {
            self.count.wrapping_add(1)
        } else {
            self.count.wrapping_sub(1)
        };
        self.head ^= head;
        self.check ^= check_of(head);
    }
    fn is_empty(&self) -> bool {
        *self == Cell::default()
    }
}

/// An IBLT of `PARTITIONS × width` cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    width: usize,
    cells: Vec<Cell>,
}

/// What a decoded difference holds: heads only we have, heads only the peer has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    pub ours: Vec<u64>,
    pub theirs: Vec<u64>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            width: WIDTH_MAX,
            cells: vec![Cell::default(); PARTITIONS * WIDTH_MAX],
        }
    }
}

/// An id's 8-byte head: its bucket at the deepest prefix.
pub fn head_of(id: &EventId) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
}

/// splitmix64's finaliser: ids are uniform already, this only decorrelates the partitions.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn check_of(head: u64) -> u32 {
    (mix(head ^ 0x6d65_7368_6c6f_6763) >> 32) as u32
}

fn position(head: u64, partition: usize, width: usize) -> usize {
    let salt = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(partition as u64 + 1);
    partition * width + (mix(head ^ salt) % WIDTH_MAX as u64) as usize % width
}

impl Sketch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn width(&self) -> usize {
        self.width
    }
    /// Bytes its cells take on the wire.
    pub fn cells_len(width: usize) -> usize {
        PARTITIONS * width * CELL_LEN
    }

    /// Adds an id (the full-width table only; folded copies are made for sending).
    pub fn insert(&mut self, id: &EventId) {
        assert_eq!(self.width, WIDTH_MAX, "only the full table is kept current");
        let head = head_of(id);
        for p in 0..PARTITIONS {
            self.cells[position(head, p, WIDTH_MAX)].toggle(head, true);
        }
    }

    /// The table at `width` (one of `WIDTHS`, at most this table's own).
    pub fn folded(&self, width: usize) -> Sketch {
        assert!(WIDTHS.contains(&width) && width <= self.width);
        let mut cells = vec![Cell::default(); PARTITIONS * width];
        for p in 0..PARTITIONS {
            for i in 0..self.width {
                let from = self.cells[p * self.width + i];
                let to = &mut cells[p * width + i % width];
                to.count = to.count.wrapping_add(from.count);
                to.head ^= from.head;
                to.check ^= from.check;
            }
        }
        Sketch { width, cells }
    }

    /// Peels `self − theirs` (both at `theirs.width`). `None` if it does not fully decode.
    pub fn difference(&self, theirs: &Sketch) -> Option<Difference> {
        let mine = self.folded(theirs.width);
        let width = theirs.width;
        let mut cells: Vec<Cell> = mine
            .cells
            .iter()
            .zip(&theirs.cells)
            .map(|(a, b)| Cell {
                count: a.count.wrapping_sub(b.count),
                head: a.head ^ b.head,
                check: a.check ^ b.check,
            })
            .collect();
        let mut out = Difference::default();
        // Each peel empties at least one cell for good, so cells.len() passes suffice; the
        // bound also stops a hostile table from looping.
        let mut progress = true;
        let mut peels = 0;
        while progress && peels <= cells.len() {
            progress = false;
            for i in 0..cells.len() {
                let cell = cells[i];
                let sign = cell.count as i8;
                if (sign != 1 && sign != -1) || cell.check != check_of(cell.head) {
                    continue;
                }
                let head = cell.head;
                for p in 0..PARTITIONS {
                    cells[position(head, p, width)].toggle(head, sign != 1);
                }
                if sign == 1 {
                    out.ours.push(head);
                } else {
                    out.theirs.push(head);
                }
                peels += 1;
                progress = true;
            }
        }
        cells.iter().all(Cell::is_empty).then(|| {
            out.ours.sort_unstable();
            out.theirs.sort_unstable();
            out
        })
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u8(self.width as u8);
        for cell in &self.cells {
            w.u8(cell.count).u64(cell.head).u32(cell.check);
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Sketch, DecodeError> {
        let width = r.u8("sketch width")? as usize;
        if !WIDTHS.contains(&width) {
            return Err(DecodeError::invalid("sketch width", format!("{width}")));
        }
        // Sized up front: collecting `Result`s cannot know the length, so the vector grew
        // by doubling, and a sketch arrives with most datagrams.
        let mut cells = Vec::with_capacity(PARTITIONS * width);
        for _ in 0..PARTITIONS * width {
            cells.push(Cell {
                count: r.u8("sketch cell count")?,
                head: r.u64("sketch cell head")?,
                check: r.u32("sketch cell check")?,
            });
        }
        Ok(Sketch { width, cells })
    }

    /// Bytes it takes on the wire.
    pub fn encoded_len(&self) -> usize {
        1 + Self::cells_len(self.width)
    }
}

/// The largest difference a table is sent for: beyond it the widest table mostly fails to
/// decode and the prefix descent is cheaper than a table plus the descent.
pub const DIFFERENCE_MAX: u32 = 32;

/// The narrowest width expected to decode `difference` ids, `None` above `DIFFERENCE_MAX`.
/// From the measured rates in `decode_rates_by_width` below: each width decodes at least 95%
/// of the differences it is chosen for.
pub fn width_for(difference: u32) -> Option<usize> {
    const DECODES_UP_TO: [(usize, u32); 4] = [(3, 2), (6, 4), (12, 12), (24, DIFFERENCE_MAX)];
    DECODES_UP_TO
        .iter()
        .find(|(_, up_to)| difference <= *up_to)
        .map(|(width, _)| *width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32, salt: u32) -> Vec<EventId> {
        (0..n)
            .map(|i| EventId::of_bytes(&[i.to_le_bytes(), salt.to_le_bytes()].concat()))
            .collect()
    }

    fn sketch_of(ids: &[EventId]) -> Sketch {
        let mut s = Sketch::new();
        ids.iter().for_each(|id| s.insert(id));
        s
    }

    #[test]
    fn a_small_two_sided_difference_decodes_at_every_width() {
        let shared = ids(5_000, 0);
        let (only_a, only_b) = (ids(1, 1), ids(1, 2));
        let a = sketch_of(&[shared.clone(), only_a.clone()].concat());
        let b = sketch_of(&[shared, only_b.clone()].concat());
        for width in WIDTHS {
            let diff = a.difference(&b.folded(width)).expect("decodes");
            assert_eq!(diff.ours, vec![head_of(&only_a[0])], "width {width}");
            assert_eq!(diff.theirs, vec![head_of(&only_b[0])]);
        }
        assert_eq!(a.difference(&a.folded(3)), Some(Difference::default()));
    }

    #[test]
    fn too_large_a_difference_fails_instead_of_lying() {
        let a = sketch_of(&ids(1_000, 0));
        let b = sketch_of(&ids(900, 0));
        assert_eq!(a.difference(&b.folded(24)), None);
    }

    #[test]
    fn wire_form_round_trips_and_bad_widths_are_refused() {
        let s = sketch_of(&ids(100, 3)).folded(12);
        let mut w = Writer::new();
        s.encode(&mut w);
        assert_eq!(w.bytes.len(), s.encoded_len());
        let mut r = Reader::new(&w.bytes);
        assert_eq!(Sketch::decode(&mut r).unwrap(), s);
        r.finish().unwrap();
        assert!(Sketch::decode(&mut Reader::new(&[5])).is_err());
        assert!(Sketch::decode(&mut Reader::new(&[3, 1, 2])).is_err());
    }

    /// What `mine` against `theirs` decodes to, checked: a difference must explain their
    /// table exactly (our set, less what it says only we hold, plus what it says only they
    /// hold, sketches to their table), so the only other honest answer is `None`.
    fn honest_difference(mine: &[EventId], theirs: &Sketch) -> Option<Difference> {
        let diff = sketch_of(mine).difference(theirs)?;
        let mut heads: std::collections::BTreeSet<u64> = mine.iter().map(head_of).collect();
        for head in &diff.ours {
            assert!(
                heads.remove(head),
                "says only we hold {head:x}, which we do not"
            );
        }
        for head in &diff.theirs {
            assert!(
                heads.insert(*head),
                "says only they hold {head:x}, which we hold"
            );
        }
        let theirs_rebuilt: Vec<EventId> = heads
            .iter()
            .map(|head| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&head.to_be_bytes());
                EventId(id)
            })
            .collect();
        assert_eq!(
            &sketch_of(&theirs_rebuilt).folded(theirs.width()),
            theirs,
            "the decoded difference does not explain their table: {diff:?}"
        );
        Some(diff)
    }

    /// A hostile table (all cells "pure" with garbage) ends in bounded time and is refused:
    /// no set sketches to it, so any difference decoded from it would be a wrong answer.
    #[test]
    fn hostile_cells_end_in_bounded_time() {
        let mine = ids(50, 4);
        let mut w = Writer::new();
        w.u8(24);
        for i in 0..PARTITIONS * 24 {
            w.u8(1).u64(i as u64).u32(check_of(i as u64));
        }
        let theirs = Sketch::decode(&mut Reader::new(&w.bytes)).unwrap();
        assert_eq!(honest_difference(&mine, &theirs), None);
        // The checker itself accepts a true answer.
        let (shared, extra) = (ids(300, 5), ids(4, 6));
        let theirs = sketch_of(&[shared.clone(), extra.clone()].concat()).folded(12);
        let diff = honest_difference(&shared, &theirs).expect("a difference of 4 decodes at 12");
        assert_eq!(diff.theirs.len(), 4);
    }

    /// Decode rates behind `width_for`: each width decodes its listed difference at least 95%
    /// of the time (300 trials each; half one-sided, half split between both sides).
    #[test]
    fn decode_rates_by_width() {
        let base = sketch_of(&ids(2_000, 9));
        let rate = |width: usize, d: u32| {
            let trials = 300u32;
            let decoded = (0..trials)
                .filter(|t| {
                    let theirs_n = if t % 2 == 1 { d / 2 } else { 0 };
                    let (mut a, mut b) = (base.clone(), base.clone());
                    ids(d - theirs_n, 100 + t)
                        .iter()
                        .for_each(|id| a.insert(id));
                    ids(theirs_n, 10_000 + t).iter().for_each(|id| b.insert(id));
                    a.difference(&b.folded(width)).is_some()
                })
                .count() as u32;
            decoded * 100 / trials
        };
        if std::env::var_os("MESHLOG_SKETCH_RATES").is_some() {
            for width in WIDTHS {
                let row: Vec<String> = (1..=40)
                    .map(|d| format!("{d}:{}", rate(width, d)))
                    .collect();
                println!("width {width}: {}", row.join(" "));
            }
        }
        for d in 1..=DIFFERENCE_MAX {
            if let Some(width) = width_for(d) {
                assert!(rate(width, d) >= 95, "width {width}, d = {d}");
            }
        }
        assert_eq!(width_for(0), Some(3));
        assert_eq!(width_for(DIFFERENCE_MAX + 1), None);
    }
}
