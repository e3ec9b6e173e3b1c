//! Paging and search of a device's messages: the one rule that real devices (SQL and FTS5 in
//! `store::query`) and simulated ones (`sim_mode::api`, over rows in memory) both follow.
//! `tests` below runs one table of searches and pages through both.
//!
//! - **Request** (`GET /api/messages?before=&limit=&q=`): [`PageRequest::parse`] checks it
//!   once for both.
//! - **Order**: newest first by (creation time in µs, event id as bytes).
//! - **Page**: up to `limit` (1..=[`PAGE_LIMIT_MAX`], default [`PAGE_LIMIT_DEFAULT`]) messages
//!   strictly older than `before`; `next` is the oldest one's [`Cursor`] when older ones
//!   remain ([`page_of`] is the rule; the SQL says the same in `ORDER BY ... LIMIT`).
//! - **Cursor**: `<created_at_us>-<id hex>`, a stable form (`docs/API.md`): the page makes
//!   one to page back past what it keeps in memory.
//! - **Search** ([`Search`]): `q` (at most [`SEARCH_LEN_MAX`] bytes) is terms separated by
//!   spaces; a term is a word or a `"quoted phrase"` (`""` inside is a quote), and a `*` right
//!   after it makes its last word a prefix. A message matches when every term's words appear,
//!   in order and next to each other, in its text or in its attachment's name (not across the
//!   two). Words are runs of letters and digits, case-folded, with diacritics removed: what
//!   SQLite FTS5's `unicode61 remove_diacritics 2` tokenizer does, which the real devices'
//!   index uses; [`words`] does the same for Latin, Greek and combining accents (the table
//!   below was read from SQLite's tokenizer), so a simulated device finds what a real one
//!   does. A term without words (`!!`) is left out; a search with none matches nothing. FTS5's
//!   operators (`OR`, `NOT`, `NEAR`, columns) are not part of it: they are words here.

use meshlog_core::EventId;
use thiserror::Error;

/// Messages per page when the client does not say.
pub const PAGE_LIMIT_DEFAULT: usize = 100;
/// Most messages one page may ask for: bounds a response to about 1 MB of text and keeps one
/// page from holding a reader connection for long.
pub const PAGE_LIMIT_MAX: usize = 500;
/// A search query longer than this is refused: no person types more, and the search's work
/// grows with the number of terms.
pub const SEARCH_LEN_MAX: usize = 256;

/// A request the rule refuses (a `400` with this text).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PageError {
    #[error("before: {0:?} is not a cursor from `next`")]
    Cursor(String),
    #[error("limit: {0}, must be 1 to {PAGE_LIMIT_MAX}")]
    Limit(usize),
    #[error("q: {0} bytes, at most {SEARCH_LEN_MAX}")]
    SearchLen(usize),
    #[error("q: a quote is not closed")]
    Unclosed,
}

/// Where a page ends: the (time, id) of its oldest message. Shown to clients as the string
/// `<created_at_us>-<id hex>`, a form clients may rely on (`docs/API.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub created_at_us: i64,
    pub id: EventId,
}

impl Cursor {
    /// A message's place in the order.
    pub fn at(created_at_us: u64, id: EventId) -> Self {
        Cursor {
            created_at_us: i64::try_from(created_at_us).unwrap_or(i64::MAX),
            id,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('-')?;
        Some(Cursor {
            created_at_us: at.parse().ok().filter(|at: &i64| *at >= 0)?,
            id: EventId::from_hex(id)?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.created_at_us, self.id.to_hex())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Only messages strictly older than this; `None` starts at the newest.
    pub before: Option<Cursor>,
    /// 1..=`PAGE_LIMIT_MAX`.
    pub limit: usize,
    pub search: Option<Search>,
}

impl PageRequest {
    /// The query string's fields, checked: a cursor from an earlier page, a limit within
    /// bounds, a short search (empty or blank: none).
    pub fn parse(
        before: Option<&str>,
        limit: Option<usize>,
        q: Option<&str>,
    ) -> Result<Self, PageError> {
        let before = match before {
            None | Some("") => None,
            Some(text) => Some(Cursor::parse(text).ok_or_else(|| PageError::Cursor(text.into()))?),
        };
        let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
        if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
            return Err(PageError::Limit(limit));
        }
        let search = match q {
            None => None,
            Some(q) if q.trim().is_empty() => None,
            Some(q) => Some(Search::parse(q)?),
        };
        Ok(PageRequest {
            before,
            limit,
            search,
        })
    }
}

/// A parsed search: what every message must contain (see the module's rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    /// Folded words, at least one.
    words: Vec<String>,
    /// The last word is a prefix.
    prefix: bool,
}

impl Search {
    pub fn parse(q: &str) -> Result<Search, PageError> {
        if q.len() > SEARCH_LEN_MAX {
            return Err(PageError::SearchLen(q.len()));
        }
        let mut terms = Vec::new();
        let mut rest = q.trim_start();
        while !rest.is_empty() {
            let text = match rest.strip_prefix('"') {
                Some(quoted) => {
                    let (phrase, after) = quoted_phrase(quoted)?;
                    rest = after;
                    phrase
                }
                None => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"' || c == '*')
                        .unwrap_or(rest.len());
                    let word = rest[..end].to_owned();
                    rest = &rest[end..];
                    word
                }
            };
            let prefix = rest.starts_with('*');
            if prefix {
                rest = &rest[1..];
            }
            let words = words(&text);
            if !words.is_empty() {
                terms.push(Term { words, prefix });
            }
            rest = rest.trim_start();
        }
        Ok(Search { terms })
    }

    /// No term has a word: nothing matches.
    pub fn matches_nothing(&self) -> bool {
        self.terms.is_empty()
    }

    /// The search as an FTS5 query over the index of text and attachment names: each term a
    /// quoted phrase of its folded words (letters and digits only, so nothing to escape).
    pub fn fts5(&self) -> String {
        let mut query = String::new();
        for term in &self.terms {
            if !query.is_empty() {
                query.push(' ');
            }
            query.push('"');
            query.push_str(&term.words.join(" "));
            query.push('"');
            if term.prefix {
                query.push('*');
            }
        }
        query
    }

    /// Whether a message with this text and attachment name matches: the same answer as the
    /// FTS5 index gives, worked out in memory.
    pub fn matches(&self, text: &str, file_name: Option<&str>) -> bool {
        if self.matches_nothing() {
            return false;
        }
        // " w1 w2 \n n1 n2 ": each needle " a b " (or " a b" for a prefix) lands on word
        // boundaries and cannot span the text and the name.
        let mut hay = String::with_capacity(text.len() + 8);
        hay.push(' ');
        push_words(&mut hay, text);
        hay.push_str("\n ");
        push_words(&mut hay, file_name.unwrap_or(""));
        self.terms.iter().all(|term| {
            let mut needle = String::with_capacity(32);
            needle.push(' ');
            needle.push_str(&term.words.join(" "));
            if !term.prefix {
                needle.push(' ');
            }
            hay.contains(&needle)
        })
    }
}

/// A phrase after its opening quote, up to the closing one (`""` is a quote inside), and what
/// follows it.
fn quoted_phrase(quoted: &str) -> Result<(String, &str), PageError> {
    let mut phrase = String::new();
    let mut chars = quoted.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            phrase.push(c);
        } else if chars.peek().is_some_and(|&(_, next)| next == '"') {
            phrase.push('"');
            chars.next();
        } else {
            return Ok((phrase, &quoted[i + 1..]));
        }
    }
    Err(PageError::Unclosed)
}

/// Pushes `text`'s folded words, each followed by a space.
fn push_words(out: &mut String, text: &str) {
    let mut in_word = false;
    for c in text.chars() {
        match fold(c) {
            Folded::Char(c) => {
                out.push(c);
                in_word = true;
            }
            Folded::Lower(c) => {
                out.extend(c.to_lowercase());
                in_word = true;
            }
            Folded::Dropped => {}
            Folded::Separator => {
                if in_word {
                    out.push(' ');
                    in_word = false;
                }
            }
        }
    }
    if in_word {
        out.push(' ');
    }
}

/// `text`'s words as the index holds them: letters and digits, case-folded, diacritics off.
pub fn words(text: &str) -> Vec<String> {
    let mut out = String::new();
    push_words(&mut out, text);
    out.split_whitespace().map(str::to_owned).collect()
}

enum Folded {
    Char(char),
    Lower(char),
    /// A combining accent: part of the word, removed from it.
    Dropped,
    Separator,
}

fn fold(c: char) -> Folded {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            Folded::Char(c.to_ascii_lowercase())
        } else {
            Folded::Separator
        };
    }
    if let Ok(i) = FOLD.binary_search_by_key(&c, |&(from, _)| from) {
        return Folded::Char(FOLD[i].1);
    }
    if DROPPED.binary_search(&c).is_ok() {
        return Folded::Dropped;
    }
    if c.is_alphanumeric() {
        Folded::Lower(c)
    } else {
        Folded::Separator
    }
}

/// The first `limit` of `items` in the rule's order (newest first) strictly older than
/// `before`, and the cursor of the last one taken when older ones remain. What
/// `store::query`'s SQL computes, for items in memory.
pub fn page_of<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> Cursor,
    request: &PageRequest,
) -> (Vec<T>, Option<Cursor>) {
    let mut keyed: Vec<(Cursor, T)> = items
        .into_iter()
        .map(|item| (key(&item), item))
        .filter(|(at, _)| request.before.as_ref().is_none_or(|before| at < before))
        .collect();
    keyed.sort_unstable_by_key(|(at, _)| std::cmp::Reverse(*at));
    let next = (keyed.len() > request.limit).then(|| keyed[request.limit - 1].0);
    keyed.truncate(request.limit);
    (keyed.into_iter().map(|(_, item)| item).collect(), next)
}

// Read from SQLite's own tokenizer (fts5vocab over `unicode61 remove_diacritics 2`) for
// U+0080..U+03FF: the characters it folds to another one (accented Latin to the bare letter,
// Greek variants), and the combining accents it removes from inside a word. Elsewhere it
// and `char::is_alphanumeric` + `to_lowercase` agree on what is a letter.
const FOLD: [(char, char); 253] = [
    ('\u{b5}', '\u{3bc}'),
    ('\u{c0}', '\u{61}'),
    ('\u{c1}', '\u{61}'),
    ('\u{c2}', '\u{61}'),
    ('\u{c3}', '\u{61}'),
    ('\u{c4}', '\u{61}'),
    ('\u{c5}', '\u{61}'),
    ('\u{c7}', '\u{63}'),
    ('\u{c8}', '\u{65}'),
    ('\u{c9}', '\u{65}'),
    ('\u{ca}', '\u{65}'),
    ('\u{cb}', '\u{65}'),
    ('\u{cc}', '\u{69}'),
    ('\u{cd}', '\u{69}'),
    ('\u{ce}', '\u{69}'),
    ('\u{cf}', '\u{69}'),
    ('\u{d1}', '\u{6e}'),
    ('\u{d2}', '\u{6f}'),
    ('\u{d3}', '\u{6f}'),
    ('\u{d4}', '\u{6f}'),
    ('\u{d5}', '\u{6f}'),
    ('\u{d6}', '\u{6f}'),
    ('\u{d9}', '\u{75}'),
    ('\u{da}', '\u{75}'),
    ('\u{db}', '\u{75}'),
    ('\u{dc}', '\u{75}'),
    ('\u{dd}', '\u{79}'),
    ('\u{e0}', '\u{61}'),
    ('\u{e1}', '\u{61}'),
    ('\u{e2}', '\u{61}'),
    ('\u{e3}', '\u{61}'),
    ('\u{e4}', '\u{61}'),
    ('\u{e5}', '\u{61}'),
    ('\u{e7}', '\u{63}'),
    ('\u{e8}', '\u{65}'),
    ('\u{e9}', '\u{65}'),
    ('\u{ea}', '\u{65}'),
    ('\u{eb}', '\u{65}'),
    ('\u{ec}', '\u{69}'),
    ('\u{ed}', '\u{69}'),
    ('\u{ee}', '\u{69}'),
    ('\u{ef}', '\u{69}'),
    ('\u{f1}', '\u{6e}'),
    ('\u{f2}', '\u{6f}'),
    ('\u{f3}', '\u{6f}'),
    ('\u{f4}', '\u{6f}'),
    ('\u{f5}', '\u{6f}'),
    ('\u{f6}', '\u{6f}'),
    ('\u{f9}', '\u{75}'),
    ('\u{fa}', '\u{75}'),
    ('\u{fb}', '\u{75}'),
    ('\u{fc}', '\u{75}'),
    ('\u{fd}', '\u{79}'),
    ('\u{ff}', '\u{79}'),
    ('\u{100}', '\u{61}'),
    ('\u{101}', '\u{61}'),
    ('\u{102}', '\u{61}'),
    ('\u{103}', '\u{61}'),
    ('\u{104}', '\u{61}'),
    ('\u{105}', '\u{61}'),
    ('\u{106}', '\u{63}'),
    ('\u{107}', '\u{63}'),
    ('\u{108}', '\u{63}'),
    ('\u{109}', '\u{63}'),
    ('\u{10a}', '\u{63}'),
    ('\u{10b}', '\u{63}'),
    ('\u{10c}', '\u{63}'),
    ('\u{10d}', '\u{63}'),
    ('\u{10e}', '\u{64}'),
    ('\u{10f}', '\u{64}'),
    ('\u{112}', '\u{65}'),
    ('\u{113}', '\u{65}'),
    ('\u{114}', '\u{65}'),
    ('\u{115}', '\u{65}'),
    ('\u{116}', '\u{65}'),
    ('\u{117}', '\u{65}'),
    ('\u{118}', '\u{65}'),
    ('\u{119}', '\u{65}'),
    ('\u{11a}', '\u{65}'),
    ('\u{11b}', '\u{65}'),
    ('\u{11c}', '\u{67}'),
    ('\u{11d}', '\u{67}'),
    ('\u{11e}', '\u{67}'),
    ('\u{11f}', '\u{67}'),
    ('\u{120}', '\u{67}'),
    ('\u{121}', '\u{67}'),
    ('\u{122}', '\u{67}'),
    ('\u{123}', '\u{67}'),
    ('\u{124}', '\u{68}'),
    ('\u{125}', '\u{68}'),
    ('\u{128}', '\u{69}'),
    ('\u{129}', '\u{69}'),
    ('\u{12a}', '\u{69}'),
    ('\u{12b}', '\u{69}'),
    ('\u{12c}', '\u{69}'),
    ('\u{12d}', '\u{69}'),
    ('\u{12e}', '\u{69}'),
    ('\u{12f}', '\u{69}'),
    ('\u{130}', '\u{69}'),
    ('\u{134}', '\u{6a}'),
    ('\u{135}', '\u{6a}'),
    ('\u{136}', '\u{6b}'),
    ('\u{137}', '\u{6b}'),
    ('\u{139}', '\u{6c}'),
    ('\u{13a}', '\u{6c}'),
    ('\u{13b}', '\u{6c}'),
    ('\u{13c}', '\u{6c}'),
    ('\u{13d}', '\u{6c}'),
    ('\u{13e}', '\u{6c}'),
    ('\u{143}', '\u{6e}'),
    ('\u{144}', '\u{6e}'),
    ('\u{145}', '\u{6e}'),
    ('\u{146}', '\u{6e}'),
    ('\u{147}', '\u{6e}'),
    ('\u{148}', '\u{6e}'),
    ('\u{14c}', '\u{6f}'),
    ('\u{14d}', '\u{6f}'),
    ('\u{14e}', '\u{6f}'),
    ('\u{14f}', '\u{6f}'),
    ('\u{150}', '\u{6f}'),
    ('\u{151}', '\u{6f}'),
    ('\u{154}', '\u{72}'),
    ('\u{155}', '\u{72}'),
    ('\u{156}', '\u{72}'),
    ('\u{157}', '\u{72}'),
    ('\u{158}', '\u{72}'),
    ('\u{159}', '\u{72}'),
    ('\u{15a}', '\u{73}'),
    ('\u{15b}', '\u{73}'),
    ('\u{15c}', '\u{73}'),
    ('\u{15d}', '\u{73}'),
    ('\u{15e}', '\u{73}'),
    ('\u{15f}', '\u{73}'),
    ('\u{160}', '\u{73}'),
    ('\u{161}', '\u{73}'),
    ('\u{162}', '\u{74}'),
    ('\u{163}', '\u{74}'),
    ('\u{164}', '\u{74}'),
    ('\u{165}', '\u{74}'),
    ('\u{168}', '\u{75}'),
    ('\u{169}', '\u{75}'),
    ('\u{16a}', '\u{75}'),
    ('\u{16b}', '\u{75}'),
    ('\u{16c}', '\u{75}'),
    ('\u{16d}', '\u{75}'),
    ('\u{16e}', '\u{75}'),
    ('\u{16f}', '\u{75}'),
    ('\u{170}', '\u{75}'),
    ('\u{171}', '\u{75}'),
    ('\u{172}', '\u{75}'),
    ('\u{173}', '\u{75}'),
    ('\u{174}', '\u{77}'),
    ('\u{175}', '\u{77}'),
    ('\u{176}', '\u{79}'),
    ('\u{177}', '\u{79}'),
    ('\u{178}', '\u{79}'),
    ('\u{179}', '\u{7a}'),
    ('\u{17a}', '\u{7a}'),
    ('\u{17b}', '\u{7a}'),
    ('\u{17c}', '\u{7a}'),
    ('\u{17d}', '\u{7a}'),
    ('\u{17e}', '\u{7a}'),
    ('\u{17f}', '\u{73}'),
    ('\u{1a0}', '\u{6f}'),
    ('\u{1a1}', '\u{6f}'),
    ('\u{1af}', '\u{75}'),
    ('\u{1b0}', '\u{75}'),
    ('\u{1cd}', '\u{61}'),
    ('\u{1ce}', '\u{61}'),
    ('\u{1cf}', '\u{69}'),
    ('\u{1d0}', '\u{69}'),
    ('\u{1d1}', '\u{6f}'),
    ('\u{1d2}', '\u{6f}'),
    ('\u{1d3}', '\u{75}'),
    ('\u{1d4}', '\u{75}'),
    ('\u{1d5}', '\u{75}'),
    ('\u{1d6}', '\u{75}'),
    ('\u{1d7}', '\u{75}'),
    ('\u{1d8}', '\u{75}'),
    ('\u{1d9}', '\u{75}'),
    ('\u{1da}', '\u{75}'),
    ('\u{1db}', '\u{75}'),
    ('\u{1dc}', '\u{75}'),
    ('\u{1de}', '\u{61}'),
    ('\u{1df}', '\u{61}'),
    ('\u{1e6}', '\u{67}'),
    ('\u{1e7}', '\u{67}'),
    ('\u{1e8}', '\u{6b}'),
    ('\u{1e9}', '\u{6b}'),
    ('\u{1ea}', '\u{6f}'),
    ('\u{1eb}', '\u{6f}'),
    ('\u{1ec}', '\u{6f}'),
    ('\u{1ed}', '\u{6f}'),
    ('\u{1f0}', '\u{6a}'),
    ('\u{1f4}', '\u{67}'),
    ('\u{1f5}', '\u{67}'),
    ('\u{1f8}', '\u{6e}'),
    ('\u{1f9}', '\u{6e}'),
    ('\u{1fa}', '\u{61}'),
    ('\u{1fb}', '\u{61}'),
    ('\u{200}', '\u{61}'),
    ('\u{201}', '\u{61}'),
    ('\u{202}', '\u{61}'),
    ('\u{203}', '\u{61}'),
    ('\u{204}', '\u{65}'),
    ('\u{205}', '\u{65}'),
    ('\u{206}', '\u{65}'),
    ('\u{207}', '\u{65}'),
    ('\u{208}', '\u{69}'),
    ('\u{209}', '\u{69}'),
    ('\u{20a}', '\u{69}'),
    ('\u{20b}', '\u{69}'),
    ('\u{20c}', '\u{6f}'),
    ('\u{20d}', '\u{6f}'),
    ('\u{20e}', '\u{6f}'),
    ('\u{20f}', '\u{6f}'),
    ('\u{210}', '\u{72}'),
    ('\u{211}', '\u{72}'),
    ('\u{212}', '\u{72}'),
    ('\u{213}', '\u{72}'),
    ('\u{214}', '\u{75}'),
    ('\u{215}', '\u{75}'),
    ('\u{216}', '\u{75}'),
    ('\u{217}', '\u{75}'),
    ('\u{218}', '\u{73}'),
    ('\u{219}', '\u{73}'),
    ('\u{21a}', '\u{74}'),
    ('\u{21b}', '\u{74}'),
    ('\u{21e}', '\u{68}'),
    ('\u{21f}', '\u{68}'),
    ('\u{226}', '\u{61}'),
    ('\u{227}', '\u{61}'),
    ('\u{228}', '\u{65}'),
    ('\u{229}', '\u{65}'),
    ('\u{22a}', '\u{6f}'),
    ('\u{22b}', '\u{6f}'),
    ('\u{22c}', '\u{6f}'),
    ('\u{22d}', '\u{6f}'),
    ('\u{22e}', '\u{6f}'),
    ('\u{22f}', '\u{6f}'),
    ('\u{230}', '\u{6f}'),
    ('\u{231}', '\u{6f}'),
    ('\u{232}', '\u{79}'),
    ('\u{233}', '\u{79}'),
    ('\u{37f}', '\u{37f}'),
    ('\u{3c2}', '\u{3c3}'),
    ('\u{3d0}', '\u{3b2}'),
    ('\u{3d1}', '\u{3b8}'),
    ('\u{3d5}', '\u{3c6}'),
    ('\u{3d6}', '\u{3c0}'),
    ('\u{3f0}', '\u{3ba}'),
    ('\u{3f1}', '\u{3c1}'),
    ('\u{3f5}', '\u{3b5}'),
];
const DROPPED: [char; 25] = [
    '\u{300}', '\u{301}', '\u{302}', '\u{303}', '\u{304}', '\u{306}', '\u{307}', '\u{308}',
    '\u{309}', '\u{30a}', '\u{30b}', '\u{30c}', '\u{30f}', '\u{311}', '\u{31b}', '\u{323}',
    '\u{324}', '\u{325}', '\u{326}', '\u{327}', '\u{328}', '\u{32d}', '\u{32e}', '\u{330}',
    '\u{331}',
];
