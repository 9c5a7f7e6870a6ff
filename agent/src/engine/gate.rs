//! The engine's literal prefilter: whether any rule of the pack could match
//! an event, decided before `rsigma` sees it.
//!
//! Each rule's detection is reduced, once at load, to a necessary condition:
//! an AND/OR tree over cheap atoms — "field F is present", "field F contains
//! one of these literals" (ASCII case-insensitive), "some field contains one
//! of these literals" (keywords). Everything the reduction cannot express
//! soundly (negations, regexes, encodings, null values, ...) becomes `true`
//! or a presence test, so the gate only ever over-approximates: an event it
//! turns away matches no rule. A detection item's literals are searched
//! with one Aho-Corasick automaton (`is_match`, which stops at the first
//! hit and skips ahead with its prefilter), or compared one by one when
//! there are few. Automata are case-sensitive over the lower-case literals
//! and search the value lower-cased into a reused buffer: an automaton
//! built ASCII-case-insensitive gets no prefilter and walks every byte. Most log lines (a `CRON` session line, a `200` for a
//! page) match no rule and never reach `rsigma`'s candidate index, rule
//! evaluation and correlation machinery.

use std::borrow::Cow;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use rsigma_parser::{
    ConditionExpr, Detection, DetectionItem, LogSource, Modifier, SigmaRule, SigmaValue, StringPart,
};

use crate::event::{Event, EventKind, FieldName, FieldValue};

mod operators;
mod regex_literals;

use operators::NumTest;

/// A necessary condition of a rule, over the atoms of [`Gate`]. Where
/// the rule says exactly what an atom tests (see [`NeedleSet::exact`]),
/// and the tree holds no `True` standing for something unknown, the
/// condition is also sufficient: the rule matches when it holds.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    /// Not known: the engine decides.
    True,
    /// The field (slot) is present.
    Present(usize),
    /// The field (slot) matches a literal of the set.
    Any {
        slot: usize,
        set: usize,
    },
    /// Some field contains a literal of the set.
    Keyword(usize),
    /// The field (slot) passes the numeric test (see [`operators`]).
    Num {
        slot: usize,
        test: usize,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// What the gate knows of a rule and an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The rule does not match.
    No,
    /// The rule may match: the engine decides.
    Maybe,
    /// The rule matches (its whole detection was decided by the gate).
    Yes,
}

/// How a set's literals are compared with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Contains,
    Equals,
    StartsWith,
    EndsWith,
}

/// Sets with more literals than this get an automaton; fewer are compared
/// one by one (cheaper on the short values they are mostly asked of).
const AUTOMATON_MIN_NEEDLES: usize = 4;

/// Slot state before its field was looked up.
const UNKNOWN: u32 = u32::MAX;
/// Slot state when the event lacks the field.
const ABSENT: u32 = u32::MAX - 1;

/// A DFA over lower-case patterns, built the first time it is searched:
/// building is most of the gate's start-up, and a host that sees only
/// one kind of event never searches the other kinds' automata (a packet
/// capture, the web rules' long literal lists).
#[derive(Debug)]
struct LazyAutomaton {
    patterns: Vec<String>,
    kind: MatchKind,
    /// `None` inside when it could not be built: the caller then compares
    /// the patterns itself.
    built: OnceLock<Option<AhoCorasick>>,
}

impl LazyAutomaton {
    fn new(patterns: Vec<String>, kind: MatchKind) -> Self {
        LazyAutomaton {
            patterns,
            kind,
            built: OnceLock::new(),
        }
    }

    fn get(&self) -> Option<&AhoCorasick> {
        self.built
            .get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(self.kind)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&self.patterns)
                    .ok()
            })
            .as_ref()
    }
}

/// Literals, lower-case, any of which satisfies an atom.
#[derive(Debug)]
struct NeedleSet {
    needles: Vec<String>,
    compare: Compare,
    /// The set is exactly the rule's test for ASCII values: its literals
    /// are the rule's whole values (no wildcards), ASCII, compared as the
    /// rule compares them, case-insensitively (as the engine does for
    /// ASCII text, which it lower-cases before comparing).
    exact: bool,
    /// Searched with an automaton (more than [`AUTOMATON_MIN_NEEDLES`]
    /// contains-literals), else compared one by one.
    automaton: Option<LazyAutomaton>,
    /// Its bit in its field's [`FieldScan`], when it is searched with the
    /// field's other sets.
    bit: Option<u32>,
    /// Its bit in its field's remembered matches (see [`ValueMemo`]), when
    /// the field's values are remembered.
    memo_bit: Option<u32>,
}

/// The contains-sets asked of one field, searched together: one
/// overlapping pass over the value marks every set with a hit (instead
/// of one pass per set).
#[derive(Debug)]
struct FieldScan {
    automaton: LazyAutomaton,
    /// Per pattern: the bit of the set it belongs to.
    pattern_bit: Vec<u32>,
    /// Every set's bit.
    all: u64,
}

impl FieldScan {
    /// The sets of `sets` (at most 64, all `Contains`), as one automaton.
    fn new(sets: &[&NeedleSet]) -> Self {
        let mut patterns = Vec::new();
        let mut pattern_bit = Vec::new();
        for (bit, set) in sets.iter().enumerate() {
            for n in &set.needles {
                patterns.push(n.to_ascii_lowercase());
                pattern_bit.push(bit as u32);
            }
        }
        let all = if sets.len() == 64 {
            u64::MAX
        } else {
            (1u64 << sets.len()) - 1
        };
        FieldScan {
            automaton: LazyAutomaton::new(patterns, MatchKind::Standard),
            pattern_bit,
            all,
        }
    }

    /// The bits of the sets with a literal in `value` (all of them for
    /// text that is not ASCII, as [`NeedleSet::matches`] has it); `lower`
    /// is a buffer for the lower-cased value.
    fn hits(&self, value: &str, lower: &mut Vec<u8>) -> u64 {
        if !value.is_ascii() {
            return self.all;
        }
        let lowered = ascii_lowercase(value, lower);
        let Some(found) = self
            .automaton
            .get()
            .and_then(|ac| ac.try_find_overlapping_iter(lowered).ok())
        else {
            return self.hits_one_by_one(lowered);
        };
        let mut hits = 0u64;
        for m in found {
            hits |= 1 << self.pattern_bit[m.pattern().as_usize()];
            if hits == self.all {
                break;
            }
        }
        hits
    }

    /// [`FieldScan::hits`] of a lower-cased ASCII value without the
    /// automaton (when it could not be built): each pattern on its own.
    fn hits_one_by_one(&self, lowered: &[u8]) -> u64 {
        let mut hits = 0u64;
        for (p, &bit) in self.automaton.patterns.iter().zip(&self.pattern_bit) {
            if memchr::memmem::find(lowered, p.as_bytes()).is_some() {
                hits |= 1 << bit;
            }
        }
        hits
    }
}

impl NeedleSet {
    fn new(needles: Vec<String>, compare: Compare, exact: bool) -> Self {
        let exact = exact && needles.iter().all(|n| n.is_ascii());
        let automaton = (compare == Compare::Contains && needles.len() > AUTOMATON_MIN_NEEDLES)
            .then(|| {
                LazyAutomaton::new(
                    needles.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    MatchKind::LeftmostFirst,
                )
            });
        NeedleSet {
            needles,
            compare,
            exact,
            automaton,
            bit: None,
            memo_bit: None,
        }
    }

    /// Whether ASCII-case-insensitively one of the literals matches
    /// `value` (occurs in it, equals it, starts or ends it); assumed so for
    /// text that is not ASCII (which could match only after Unicode case
    /// folding). `lower` is a buffer for the lower-cased value.
    fn matches(&self, value: &str, lower: &mut Vec<u8>) -> bool {
        !value.is_ascii() || self.matches_ascii(value, lower)
    }

    /// [`NeedleSet::matches`] for ASCII `value`.
    fn matches_ascii(&self, value: &str, lower: &mut Vec<u8>) -> bool {
        let v = value.as_bytes();
        match (
            self.automaton.as_ref().and_then(LazyAutomaton::get),
            self.compare,
        ) {
            (Some(ac), _) => ac.is_match(ascii_lowercase(value, lower)),
            (None, Compare::Contains) => self.needles.iter().any(|n| {
                let n = n.as_bytes();
                n.len() <= v.len() && v.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
            }),
            (None, Compare::Equals) => self
                .needles
                .iter()
                .any(|n| v.eq_ignore_ascii_case(n.as_bytes())),
            (None, Compare::StartsWith) => self.needles.iter().any(|n| {
                let n = n.as_bytes();
                v.get(..n.len()).is_some_and(|p| p.eq_ignore_ascii_case(n))
            }),
            (None, Compare::EndsWith) => self.needles.iter().any(|n| {
                let n = n.as_bytes();
                v.len() >= n.len() && v[v.len() - n.len()..].eq_ignore_ascii_case(n)
            }),
        }
    }

    /// [`NeedleSet::matches`] as a verdict on the atom: certain for an
    /// exact set and an ASCII value.
    fn verdict(&self, value: &str, lower: &mut Vec<u8>) -> Verdict {
        if !value.is_ascii() {
            // Matches as far as the gate knows; never certain.
            return Verdict::Maybe;
        }
        match (self.matches_ascii(value, lower), self.exact) {
            (false, _) => Verdict::No,
            (true, true) => Verdict::Yes,
            (true, false) => Verdict::Maybe,
        }
    }

    /// The verdict on the atom when whether it matches `value` is known.
    fn verdict_of(&self, matched: bool, value: &str) -> Verdict {
        if !matched {
            Verdict::No
        } else if self.exact && value.is_ascii() {
            Verdict::Yes
        } else {
            Verdict::Maybe
        }
    }
}

/// `value` with ASCII letters lower-cased, copied into `buf`: what the
/// gate's case-sensitive automata (built from lower-case literals) search.
fn ascii_lowercase<'b>(value: &str, buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(value.as_bytes());
    buf.make_ascii_lowercase();
    buf
}

/// The per-event field lookups, reused between events.
#[derive(Debug, Default)]
pub struct Scratch {
    /// A value lower-cased for the automata (see [`ascii_lowercase`]).
    lower: Vec<u8>,
    /// Per slot: [`UNKNOWN`], [`ABSENT`], or the index of the field in the event.
    field: Vec<u32>,
    /// Per slot with a [`FieldScan`] and no memo: its hits, once scanned
    /// for this event.
    hits: Vec<Option<u64>>,
    /// Per slot with a memo: which of its sets the value matches, once
    /// known for this event.
    matched: Vec<SlotMatches>,
    /// Per slot with a memo: the values seen lately and what they matched.
    memos: Vec<ValueMemo>,
    /// Per set: its verdict on this event, once known (a set belongs to
    /// one field, and rules share sets with the same literals).
    verdicts: Vec<Option<Verdict>>,
    /// The field lookups of recent events by their field names (see
    /// [`Layout`]), direct-mapped.
    layouts: Vec<Layout>,
    /// Where in `layouts` the current event's names are kept, when they
    /// are all static.
    layout: Option<usize>,
}

/// The slots' lookups for events with these field names in this order:
/// where a name is found depends on the names alone, and a decoder
/// writes the same names in the same order for every event of a kind
/// (every `conn_attempt`, every `flow_end`), so each slot is looked up
/// once per name list instead of once per event. Only names that are
/// `&'static str` are kept and compared, by address: static text never
/// changes, so the same address and length is the same name.
#[derive(Debug, Default)]
struct Layout {
    names: Vec<&'static str>,
    /// Per slot: [`UNKNOWN`] (not asked yet), [`ABSENT`] or the index.
    field: Vec<u32>,
}

/// Entries of [`Scratch::layouts`] (a power of two).
const LAYOUTS: usize = 16;

/// Events with more fields than this are looked up every time.
const LAYOUT_MAX_FIELDS: usize = 32;

impl Scratch {
    /// Forgets the last event's lookups, hits and verdicts (not the memos:
    /// what a value matches does not change between events), and takes
    /// the lookups known for `event`'s field names.
    fn forget(&mut self, event: &Event) {
        self.hits.fill(None);
        self.matched.fill(SlotMatches::Unknown);
        self.verdicts.fill(None);
        self.layout = self.take_layout(&event.fields);
        if self.layout.is_none() {
            self.field.fill(UNKNOWN);
        }
    }

    /// The entry of `layouts` for these field names, its lookups copied
    /// into `field`; a new entry (nothing looked up yet) when they were
    /// not kept; `None` when the names are not all static, or too many.
    fn take_layout(&mut self, fields: &[(FieldName, FieldValue)]) -> Option<usize> {
        let name = |i: usize| match &fields[i].0 {
            Cow::Borrowed(n) => Some(*n),
            Cow::Owned(_) => None,
        };
        if fields.len() > LAYOUT_MAX_FIELDS || self.field.is_empty() {
            return None;
        }
        // The first and last names' addresses and the count pick the entry.
        let (first, last) = (name(0)?, name(fields.len() - 1)?);
        let mixed =
            ((first.as_ptr() as usize) ^ (last.as_ptr() as usize).rotate_left(17) ^ fields.len())
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let at = (mixed >> 32) & (LAYOUTS - 1);
        if self.layouts.is_empty() {
            self.layouts = (0..LAYOUTS).map(|_| Layout::default()).collect();
        }
        let entry = &mut self.layouts[at];
        let same = entry.names.len() == fields.len()
            && entry.names.iter().zip(fields).all(
                |(kept, (name, _))| matches!(name, Cow::Borrowed(n) if std::ptr::eq(*kept, *n)),
            );
        if same {
            self.field.copy_from_slice(&entry.field);
            return Some(at);
        }
        if !fields.iter().all(|(n, _)| matches!(n, Cow::Borrowed(_))) {
            return None;
        }
        entry.names.clear();
        entry.names.extend((0..fields.len()).filter_map(name));
        entry.field.clear();
        entry.field.resize(self.field.len(), UNKNOWN);
        self.field.fill(UNKNOWN);
        Some(at)
    }

    /// Keeps this event's lookups with its field names, for the next
    /// event with the same names.
    fn remember(&mut self) {
        if let Some(at) = self.layout {
            self.layouts[at].field.copy_from_slice(&self.field);
        }
    }
}

/// What a memoised slot's value matched, for the current event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotMatches {
    /// Not looked at yet.
    Unknown,
    /// The value is not ASCII: every set matches as far as the gate knows
    /// ([`NeedleSet::matches`]), never certainly.
    NotAscii,
    /// Bit `memo_bit` of each of the slot's sets: whether it matches.
    Bits(u64),
}

/// Values of one field lately seen and the bits of the sets they matched:
/// field values repeat (the same pages, the same user agents, over and
/// over in an access log), and one lookup here costs a hash and a compare
/// where searching the value costs a pass of an automaton per set or
/// field. Direct-mapped (a colliding value replaces the entry), so a flood
/// of distinct values costs a miss each and never more memory than
/// [`MEMO_ENTRIES`] values of at most [`MEMO_MAX_VALUE`] bytes.
#[derive(Debug, Default)]
struct ValueMemo {
    /// `MEMO_ENTRIES` entries once used (empty until the first value).
    entries: Vec<MemoEntry>,
}

#[derive(Debug, Default, Clone)]
struct MemoEntry {
    /// The value's hash; 0 for an entry never filled (a value hashing to
    /// 0 is looked up but never remembered).
    hash: u64,
    bits: u64,
    value: Vec<u8>,
}

/// Entries of a field's [`ValueMemo`] (a power of two).
const MEMO_ENTRIES: usize = 4096;
/// Longer values are searched every time, not remembered.
const MEMO_MAX_VALUE: usize = 512;

impl ValueMemo {
    /// The bits remembered for `value`, or those `compute` gives, which are
    /// then remembered.
    fn bits(&mut self, value: &[u8], compute: impl FnOnce() -> u64) -> u64 {
        if value.len() > MEMO_MAX_VALUE {
            return compute();
        }
        let hash = std::hash::BuildHasher::hash_one(&MEMO_HASH, value);
        if self.entries.is_empty() {
            self.entries = vec![MemoEntry::default(); MEMO_ENTRIES];
        }
        let e = &mut self.entries[hash as usize & (MEMO_ENTRIES - 1)];
        if e.hash == hash && hash != 0 && e.value == value {
            return e.bits;
        }
        let bits = compute();
        if hash != 0 {
            e.hash = hash;
            e.bits = bits;
            e.value.clear();
            e.value.extend_from_slice(value);
        }
        bits
    }
}

/// The memos' hash: fixed, so runs are repeatable (a value crafted to
/// collide only costs its own misses).
static MEMO_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x57a2_d1e0);

/// The prefilter over a pack's detection rules (see the module docs).
#[derive(Debug)]
pub struct Gate {
    /// Field names rules ask about.
    slots: Vec<String>,
    sets: Vec<NeedleSet>,
    /// Numeric tests, by [`Cond::Num`]'s index.
    nums: Vec<NumTest>,
    /// Per slot: the field's contains-sets searched together, when it has
    /// two or more.
    scans: Vec<Option<FieldScan>>,
    /// Per slot: the sets asked of the field, by their `memo_bit`, when
    /// its values are remembered (see [`ValueMemo`]); empty when not.
    memo_sets: Vec<Vec<usize>>,
    /// Per event kind ([`kind_index`]): the rules that can apply to it (by
    /// their index in the list the gate was built from, ascending), each
    /// with its necessary condition.
    by_kind: [Vec<(usize, Cond)>; 4],
    /// Per event kind: the narrowing of its rules by one field's value
    /// (see [`Dispatch`]), when most of them name that field.
    dispatch: [Option<Dispatch>; 4],
}

/// The rules of one event kind narrowed by the value of one field that
/// most of them require to equal one of a few literals (`program` for
/// the Linux rules): an event is judged only against the rules its value
/// can satisfy and those that do not require the field. The rules left
/// out would fail that required equality, so their verdict is `No`
/// either way (the conditions of the rules judged are evaluated whole).
#[derive(Debug)]
struct Dispatch {
    /// The field.
    slot: usize,
    /// Per literal (lower-case, distinct): the positions in the kind's
    /// rule list to judge when the value equals it, ascending.
    keys: Vec<(String, Vec<usize>)>,
    /// Per literal (as `keys`): the verdict of every equality set asked
    /// of the field, known once the value equals the literal (an ASCII
    /// value equals a literal of a set exactly when the set holds that
    /// literal), so the rules judged need not compare it again.
    known: Vec<Vec<(usize, Verdict)>>,
    /// The positions of the rules that do not require the field: what is
    /// judged when the field is absent or equals no literal.
    always: Vec<usize>,
    /// Every position: for values that are not ASCII (which the gate
    /// leaves to the engine).
    all: Vec<usize>,
}

impl Dispatch {
    /// The dispatch of `rules` (one kind's list) on the slot most of them
    /// require to equal a literal; `None` when fewer than two do.
    /// `set_slots` gives each set's slot.
    fn new(
        rules: &[(usize, Cond)],
        sets: &[NeedleSet],
        set_slots: &[Option<usize>],
    ) -> Option<Self> {
        // Per rule: the equality sets it requires on each slot it requires.
        let required: Vec<Vec<(usize, Vec<usize>)>> = rules
            .iter()
            .map(|(_, c)| {
                let mut slots = Vec::new();
                let mut found = Vec::new();
                atoms(c, &mut found);
                for (slot, _) in found {
                    if slots.iter().any(|(s, _)| *s == slot) {
                        continue;
                    }
                    let mut ids = Vec::new();
                    if required_equals_sets(c, slot, sets, &mut ids) {
                        slots.push((slot, ids));
                    }
                }
                slots
            })
            .collect();
        let mut count: Vec<(usize, usize)> = Vec::new();
        for slots in &required {
            for (slot, _) in slots {
                match count.iter_mut().find(|(s, _)| s == slot) {
                    Some((_, n)) => *n += 1,
                    None => count.push((*slot, 1)),
                }
            }
        }
        // The most rules; the first found on a tie.
        let mut best: Option<(usize, usize)> = None;
        for (s, n) in count {
            if best.is_none_or(|(_, bn)| n > bn) {
                best = Some((s, n));
            }
        }
        let (slot, n) = best?;
        if n < 2 {
            return None;
        }
        let mut keys: Vec<(String, Vec<usize>)> = Vec::new();
        let mut always = Vec::new();
        for (pos, slots) in required.iter().enumerate() {
            let Some((_, ids)) = slots.iter().find(|(s, _)| *s == slot) else {
                always.push(pos);
                continue;
            };
            for needle in ids.iter().flat_map(|&id| &sets[id].needles) {
                match keys.iter_mut().find(|(k, _)| k == needle) {
                    Some((_, list)) => list.push(pos),
                    None => keys.push((needle.clone(), vec![pos])),
                }
            }
        }
        for (_, list) in &mut keys {
            list.extend(&always);
            list.sort_unstable();
            list.dedup();
        }
        let known = keys
            .iter()
            .map(|(key, _)| {
                (0..sets.len())
                    .filter(|&id| {
                        set_slots[id] == Some(slot) && sets[id].compare == Compare::Equals
                    })
                    .map(|id| {
                        let set = &sets[id];
                        let v = set.verdict_of(set.needles.iter().any(|n| n == key), key);
                        (id, v)
                    })
                    .collect()
            })
            .collect();
        Some(Dispatch {
            slot,
            keys,
            known,
            always,
            all: (0..rules.len()).collect(),
        })
    }

    /// The positions to judge for an event whose field is `value`, and
    /// the verdicts of the field's sets then known.
    fn positions(&self, value: Option<&str>) -> (&[usize], &[(usize, Verdict)]) {
        let Some(value) = value else {
            return (&self.always, &[]);
        };
        if !value.is_ascii() {
            return (&self.all, &[]);
        }
        // Keys are distinct and lower-case, so at most one equals the
        // value ignoring ASCII case; decoders write lower-case values, so
        // an exact comparison mostly finds it, before the slower one.
        let exact = self.keys.iter().position(|(k, _)| k == value);
        match exact.or_else(|| {
            self.keys
                .iter()
                .position(|(k, _)| value.eq_ignore_ascii_case(k))
        }) {
            Some(i) => (&self.keys[i].1, &self.known[i]),
            None => (&self.always, &[]),
        }
    }
}

/// The equality sets on `slot` that `c` requires one of: the value must
/// equal a literal of one of them for `c` to hold (empty when `c` does
/// not require `slot`: `false`).
fn required_equals_sets(c: &Cond, slot: usize, sets: &[NeedleSet], out: &mut Vec<usize>) -> bool {
    match c {
        Cond::Any { slot: s, set } if *s == slot && sets[*set].compare == Compare::Equals => {
            out.push(*set);
            true
        }
        // One required conjunct is enough.
        Cond::And(xs) => xs.iter().any(|x| required_equals_sets(x, slot, sets, out)),
        // Every branch must require it; the sets of all branches together.
        Cond::Or(xs) => {
            let mut all = Vec::new();
            for x in xs {
                if !required_equals_sets(x, slot, sets, &mut all) {
                    return false;
                }
            }
            out.extend(all);
            !xs.is_empty()
        }
        _ => false,
    }
}

fn kind_index(kind: EventKind) -> usize {
    match kind {
        EventKind::Unknown => 0,
        EventKind::Syslog => 1,
        EventKind::WebAccess => 2,
        EventKind::Network => 3,
    }
}

/// Whether a rule's logsource can apply to an event of `kind` (the engine's
/// own pruning, made more lenient: custom dimensions are ignored).
fn applies(rule: &LogSource, event: Option<&LogSource>) -> bool {
    let Some(event) = event else {
        return true;
    };
    let conflicts = |r: &Option<String>, e: &Option<String>| match (r, e) {
        (Some(r), Some(e)) => !r.eq_ignore_ascii_case(e),
        _ => false,
    };
    !(conflicts(&rule.product, &event.product)
        || conflicts(&rule.service, &event.service)
        || conflicts(&rule.category, &event.category))
}

fn and(mut parts: Vec<Cond>) -> Cond {
    // Unknown parts cannot make the AND fail, but they keep it from being
    // certain: one `True` stays (last, so the known parts are tried first).
    let unknown = parts.contains(&Cond::True);
    parts.retain(|c| *c != Cond::True);
    if unknown && !parts.is_empty() {
        parts.push(Cond::True);
    }
    match parts.len() {
        0 => Cond::True,
        1 => parts.pop().unwrap_or(Cond::True),
        _ => Cond::And(parts),
    }
}

fn or(mut parts: Vec<Cond>) -> Cond {
    // An empty OR is left to the engine (`true`), whatever it makes of it.
    if parts.is_empty() || parts.contains(&Cond::True) {
        return Cond::True;
    }
    if parts.len() == 1 {
        return parts.pop().unwrap_or(Cond::True);
    }
    Cond::Or(parts)
}

/// The longest literal run of a string value, lower-cased; `None` when it
/// has none (only wildcards, or empty).
fn literal(s: &rsigma_parser::SigmaString) -> Option<String> {
    s.parts
        .iter()
        .filter_map(|p| match p {
            StringPart::Plain(t) if !t.is_empty() => Some(t),
            _ => None,
        })
        .max_by_key(|t| t.len())
        .map(|t| t.to_lowercase())
}

/// The literals of keyword values; `None` when one has none.
fn keyword_literals(values: &[SigmaValue]) -> Option<Vec<String>> {
    values
        .iter()
        .map(|v| match v {
            SigmaValue::String(s) => literal(s),
            _ => None,
        })
        .collect()
}

#[derive(Default)]
struct Builder {
    slots: Vec<String>,
    sets: Vec<NeedleSet>,
    /// Per set: the slot it is asked of (`None` for keywords).
    set_slots: Vec<Option<usize>>,
    /// Numeric tests, by [`Cond::Num`]'s index.
    nums: Vec<NumTest>,
}

impl Builder {
    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s == name) {
            return i;
        }
        self.slots.push(name.to_string());
        self.slots.len() - 1
    }

    /// The set of these literals asked of `slot` (`None`: of every value),
    /// shared by every item that asks the same.
    fn set(
        &mut self,
        slot: Option<usize>,
        needles: Vec<String>,
        compare: Compare,
        exact: bool,
    ) -> usize {
        let same = |(i, s): (usize, &NeedleSet)| {
            (self.set_slots[i] == slot
                && s.needles == needles
                && s.compare == compare
                && s.exact == (exact && needles.iter().all(|n| n.is_ascii())))
            .then_some(i)
        };
        if let Some(i) = self.sets.iter().enumerate().find_map(same) {
            return i;
        }
        self.sets.push(NeedleSet::new(needles, compare, exact));
        self.set_slots.push(slot);
        self.sets.len() - 1
    }

    fn keywords(&mut self, values: &[SigmaValue]) -> Cond {
        match keyword_literals(values) {
            Some(needles) if !needles.is_empty() => {
                Cond::Keyword(self.set(None, needles, Compare::Contains, false))
            }
            _ => Cond::True,
        }
    }

    fn rule(&mut self, rule: &SigmaRule) -> Cond {
        let d = &rule.detection;
        let conds = d
            .conditions
            .iter()
            .map(|c| self.condition(c, rule))
            .collect();
        or(conds)
    }

    fn condition(&mut self, c: &ConditionExpr, rule: &SigmaRule) -> Cond {
        let named = &rule.detection.named;
        match c {
            ConditionExpr::And(xs) => and(xs.iter().map(|x| self.condition(x, rule)).collect()),
            ConditionExpr::Or(xs) => or(xs.iter().map(|x| self.condition(x, rule)).collect()),
            ConditionExpr::Not(_) => Cond::True,
            ConditionExpr::Identifier(name) => match named.get(name) {
                Some(det) => self.detection(det),
                None => Cond::True,
            },
            // Any quantifier needs at least one of the selected detections
            // (`all of` more, but one is enough for a necessary condition).
            ConditionExpr::Selector {
                quantifier,
                pattern,
            } => {
                let one = match quantifier {
                    rsigma_parser::Quantifier::Count(0) => return Cond::True,
                    rsigma_parser::Quantifier::Any | rsigma_parser::Quantifier::Count(1) => true,
                    _ => false,
                };
                // The parser's own selection of names, as the engine uses it.
                let mut names: Vec<&String> = named
                    .keys()
                    .filter(|n| pattern.matches_detection_name(n))
                    .collect();
                names.sort();
                let parts = names
                    .into_iter()
                    .map(|n| self.detection(&named[n]))
                    .collect();
                if one {
                    or(parts)
                } else {
                    // One is needed, not enough.
                    and(vec![or(parts), Cond::True])
                }
            }
        }
    }

    fn detection(&mut self, d: &Detection) -> Cond {
        match d {
            Detection::AllOf(items) => and(items.iter().map(|i| self.item(i)).collect()),
            Detection::AnyOf(ds) => or(ds.iter().map(|d| self.detection(d)).collect()),
            Detection::And(ds) => and(ds.iter().map(|d| self.detection(d)).collect()),
            Detection::Keywords(values) => self.keywords(values),
            // Array scopes and conditional bodies: left to the engine.
            Detection::ArrayMatch { .. } | Detection::Conditional { .. } => Cond::True,
        }
    }

    fn item(&mut self, item: &DetectionItem) -> Cond {
        let Some(name) = item.field.name.as_deref() else {
            return self.keywords(&item.values);
        };
        // Positional (`args[0]`) and escaped paths are resolved by the engine
        // its own way.
        if name.contains(['[', '\\']) {
            return Cond::True;
        }
        if let Some(c) = self.operator_item(name, item) {
            return c;
        }
        let mut substring = true;
        let mut all = false;
        let mut compare = Compare::Equals;
        // Whether the set built below is exactly the item's test.
        let mut exact = true;
        for m in &item.field.modifiers {
            let place = match m {
                Modifier::Contains => Some(Compare::Contains),
                Modifier::StartsWith => Some(Compare::StartsWith),
                Modifier::EndsWith => Some(Compare::EndsWith),
                _ => None,
            };
            if let Some(place) = place {
                if compare != Compare::Equals {
                    // Two of them: contains covers both.
                    exact = false;
                    compare = Compare::Contains;
                } else {
                    compare = place;
                }
                continue;
            }
            match m {
                // Case-sensitive: the case-insensitive test covers it.
                Modifier::Cased => exact = false,
                Modifier::All => all = true,
                // Missing fields may satisfy these.
                Modifier::Neq => return Cond::True,
                Modifier::Exists => {
                    return match item.values.as_slice() {
                        [SigmaValue::Bool(true)] => Cond::Present(self.slot(name)),
                        _ => Cond::True,
                    };
                }
                // The value is transformed or compared another way: the
                // field must still be there.
                _ => substring = false,
            }
        }
        let slot = self.slot(name);
        let mut needles = Vec::new();
        let mut present = false;
        for v in &item.values {
            match v {
                // Null or empty: a missing field may match.
                SigmaValue::Null => return Cond::True,
                SigmaValue::String(s) if s.original.is_empty() => return Cond::True,
                SigmaValue::String(s) if substring => match s.parts.as_slice() {
                    // The whole value, compared as the rule says.
                    [StringPart::Plain(t)] if !t.is_empty() => needles.push(t.to_lowercase()),
                    // Wildcards: the longest literal run must occur somewhere.
                    _ => match literal(s) {
                        Some(n) => {
                            needles.push(n);
                            compare = Compare::Contains;
                            exact = false;
                        }
                        // Only wildcards: any value.
                        None => present = true,
                    },
                },
                _ => present = true,
            }
        }
        if all && !present {
            // Every value is needed: each literal on its own.
            let parts = needles
                .into_iter()
                .map(|n| Cond::Any {
                    slot,
                    set: self.set(Some(slot), vec![n], compare, exact),
                })
                .collect();
            return and(parts);
        }
        if present || needles.is_empty() {
            return Cond::Present(slot);
        }
        Cond::Any {
            slot,
            set: self.set(Some(slot), needles, compare, exact),
        }
    }
}

/// Every `Any` atom of `c`, as (slot, set).
fn atoms(c: &Cond, out: &mut Vec<(usize, usize)>) {
    match c {
        Cond::Any { slot, set } => out.push((*slot, *set)),
        Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| atoms(x, out)),
        Cond::True | Cond::Present(_) | Cond::Keyword(_) | Cond::Num { .. } => {}
    }
}

/// Per slot: one [`FieldScan`] over its contains-sets when it has two to
/// 64 of them (each set gets its bit).
fn field_scans<'c>(
    slots: usize,
    sets: &mut [NeedleSet],
    conds: impl Iterator<Item = &'c Cond>,
) -> Vec<Option<FieldScan>> {
    let mut found = Vec::new();
    for c in conds {
        atoms(c, &mut found);
    }
    let mut by_slot: Vec<Vec<usize>> = vec![Vec::new(); slots];
    for (slot, set) in found {
        if sets[set].compare == Compare::Contains && !by_slot[slot].contains(&set) {
            by_slot[slot].push(set);
        }
    }
    by_slot
        .into_iter()
        .map(|ids| {
            if !(2..=64).contains(&ids.len()) {
                return None;
            }
            let scan = FieldScan::new(&ids.iter().map(|&i| &sets[i]).collect::<Vec<_>>());
            for (bit, &i) in ids.iter().enumerate() {
                sets[i].bit = Some(bit as u32);
            }
            Some(scan)
        })
        .collect()
}

impl Gate {
    /// The gate of `rules` (as handed to the engine), for events whose
    /// logsource is given by `logsource_of`.
    pub fn new<'a>(
        rules: &[SigmaRule],
        logsource_of: impl Fn(EventKind) -> Option<&'a LogSource>,
    ) -> Self {
        let mut b = Builder::default();
        let conds: Vec<(Cond, &LogSource)> =
            rules.iter().map(|r| (b.rule(r), &r.logsource)).collect();
        let by_kind: [Vec<(usize, Cond)>; 4] = [
            EventKind::Unknown,
            EventKind::Syslog,
            EventKind::WebAccess,
            EventKind::Network,
        ]
        .map(|kind| {
            let ls = logsource_of(kind);
            conds
                .iter()
                .enumerate()
                .filter(|(_, (_, rule_ls))| applies(rule_ls, ls))
                .map(|(i, (c, _))| (i, c.clone()))
                .collect()
        });
        let mut sets = b.sets;
        let scans = field_scans(b.slots.len(), &mut sets, conds.iter().map(|(c, _)| c));
        let memo_sets = memo_sets(&scans, &mut sets, &b.set_slots);
        let dispatch = [0, 1, 2, 3].map(|k| Dispatch::new(&by_kind[k], &sets, &b.set_slots));
        Gate {
            slots: b.slots,
            sets,
            nums: b.nums,
            scans,
            memo_sets,
            by_kind,
            dispatch,
        }
    }

    /// A scratch area sized for this gate.
    pub fn scratch(&self) -> Scratch {
        Scratch {
            lower: Vec::new(),
            field: vec![UNKNOWN; self.slots.len()],
            hits: vec![None; self.slots.len()],
            matched: vec![SlotMatches::Unknown; self.slots.len()],
            memos: (0..self.slots.len())
                .map(|_| ValueMemo::default())
                .collect(),
            verdicts: vec![None; self.sets.len()],
            layouts: Vec::new(),
            layout: None,
        }
    }

    /// The rules that could match `event` (indexes into the rule list the
    /// gate was built from, ascending), each with [`Verdict::Maybe`] or
    /// [`Verdict::Yes`], written to `out`. A rule left out is a promise: it
    /// does not match the event (its logsource does not apply to the
    /// event's kind, or its necessary condition fails).
    pub fn candidates(
        &self,
        event: &Event,
        scratch: &mut Scratch,
        out: &mut Vec<(usize, Verdict)>,
    ) {
        out.clear();
        scratch.forget(event);
        let kind = kind_index(event.kind);
        let rules = &self.by_kind[kind];
        let Some(dispatch) = &self.dispatch[kind] else {
            for (rule, c) in rules {
                self.judge(*rule, c, event, scratch, out);
            }
            scratch.remember();
            return;
        };
        let value = self
            .field(dispatch.slot, event, scratch)
            .map(|i| event.text(&event.fields[i].1));
        let (positions, known) = dispatch.positions(value);
        for &(set, v) in known {
            scratch.verdicts[set] = Some(v);
        }
        for &pos in positions {
            let (rule, c) = &rules[pos];
            self.judge(*rule, c, event, scratch, out);
        }
        scratch.remember();
    }

    /// [`Gate::candidates`] judging every rule of the event's kind, without
    /// the [`Dispatch`] (what it must agree with).
    #[cfg(test)]
    pub(crate) fn candidates_undispatched(
        &self,
        event: &Event,
        scratch: &mut Scratch,
        out: &mut Vec<(usize, Verdict)>,
    ) {
        out.clear();
        scratch.forget(event);
        for (rule, c) in &self.by_kind[kind_index(event.kind)] {
            self.judge(*rule, c, event, scratch, out);
        }
        scratch.remember();
    }

    /// Adds `rule` to `out` with its verdict on `event`, unless it is `No`.
    fn judge(
        &self,
        rule: usize,
        c: &Cond,
        event: &Event,
        scratch: &mut Scratch,
        out: &mut Vec<(usize, Verdict)>,
    ) {
        let v = self.verdict(c, event, scratch);
        if v != Verdict::No {
            out.push((rule, v));
        }
    }

    fn verdict(&self, c: &Cond, event: &Event, scratch: &mut Scratch) -> Verdict {
        match c {
            Cond::True => Verdict::Maybe,
            Cond::Present(slot) => match self.field(*slot, event, scratch) {
                Some(_) => Verdict::Maybe,
                None => Verdict::No,
            },
            Cond::Any { slot, set: id } => {
                if let Some(v) = scratch.verdicts[*id] {
                    return v;
                }
                let set = *id;
                let v = match self.field(*slot, event, scratch) {
                    Some(i) => {
                        let value = event.text(&event.fields[i].1);
                        let set = &self.sets[set];
                        match (set.memo_bit, set.bit, &self.scans[*slot]) {
                            (Some(bit), _, _) => match self.slot_matches(*slot, value, scratch) {
                                SlotMatches::Bits(bits) if bits & (1 << bit) == 0 => Verdict::No,
                                SlotMatches::Bits(_) if set.exact => Verdict::Yes,
                                _ => Verdict::Maybe,
                            },
                            (None, Some(bit), Some(scan)) => {
                                let lower = &mut scratch.lower;
                                let hits = *scratch.hits[*slot]
                                    .get_or_insert_with(|| scan.hits(value, lower));
                                set.verdict_of(hits & (1 << bit) != 0, value)
                            }
                            _ => set.verdict(value, &mut scratch.lower),
                        }
                    }
                    None => Verdict::No,
                };
                scratch.verdicts[*id] = Some(v);
                v
            }
            Cond::Num { slot, test } => match self.field(*slot, event, scratch) {
                Some(i) => self.nums[*test].verdict(event.text(&event.fields[i].1)),
                None => Verdict::No,
            },
            Cond::Keyword(set) => {
                let lower = &mut scratch.lower;
                if event.values().any(|v| self.sets[*set].matches(v, lower)) {
                    Verdict::Maybe
                } else {
                    Verdict::No
                }
            }
            Cond::And(xs) => {
                let mut all = Verdict::Yes;
                for x in xs {
                    match self.part_verdict(x, event, scratch) {
                        Verdict::No => return Verdict::No,
                        Verdict::Maybe => all = Verdict::Maybe,
                        Verdict::Yes => {}
                    }
                }
                all
            }
            Cond::Or(xs) => {
                let mut any = Verdict::No;
                for x in xs {
                    match self.part_verdict(x, event, scratch) {
                        Verdict::Yes => return Verdict::Yes,
                        Verdict::Maybe => any = Verdict::Maybe,
                        Verdict::No => {}
                    }
                }
                any
            }
        }
    }

    /// [`Gate::verdict`] of a part of an AND or OR: an atom whose set was
    /// judged already (rules share sets, and the dispatch knows its
    /// field's) is answered without the call.
    #[inline]
    fn part_verdict(&self, c: &Cond, event: &Event, scratch: &mut Scratch) -> Verdict {
        if let Cond::Any { set, .. } = c
            && let Some(v) = scratch.verdicts[*set]
        {
            return v;
        }
        self.verdict(c, event, scratch)
    }

    /// The index of the slot's field in the event, looked up once.
    fn field(&self, slot: usize, event: &Event, scratch: &mut Scratch) -> Option<usize> {
        match scratch.field[slot] {
            ABSENT => None,
            UNKNOWN => {
                let found = event.lookup_index(&self.slots[slot]);
                scratch.field[slot] = found.map_or(ABSENT, |i| i as u32);
                found
            }
            i => Some(i as usize),
        }
    }

    /// Which of the sets of `slot` (a memoised slot) its `value` matches,
    /// from the slot's memo or searched once for this event.
    fn slot_matches(&self, slot: usize, value: &str, scratch: &mut Scratch) -> SlotMatches {
        if scratch.matched[slot] != SlotMatches::Unknown {
            return scratch.matched[slot];
        }
        let m = if value.is_ascii() {
            let lower = &mut scratch.lower;
            SlotMatches::Bits(
                scratch.memos[slot].bits(value.as_bytes(), || self.search(slot, value, lower)),
            )
        } else {
            SlotMatches::NotAscii
        };
        scratch.matched[slot] = m;
        m
    }

    /// Searches ASCII `value` for every set of `slot` (a memoised slot):
    /// the bits, by `memo_bit`, of those it matches.
    fn search(&self, slot: usize, value: &str, lower: &mut Vec<u8>) -> u64 {
        let hits = self.scans[slot]
            .as_ref()
            .map(|scan| scan.hits(value, lower));
        let mut bits = 0;
        for (memo_bit, &id) in self.memo_sets[slot].iter().enumerate() {
            let set = &self.sets[id];
            let matched = match (set.bit, hits) {
                (Some(bit), Some(hits)) => hits & (1 << bit) != 0,
                _ => set.matches_ascii(value, lower),
            };
            if matched {
                bits |= 1 << memo_bit;
            }
        }
        bits
    }
}

/// Per slot: the sets asked of the field, numbered by their `memo_bit`,
/// for the fields worth a [`ValueMemo`]: searched by an automaton (a
/// [`FieldScan`] or a large set), with at most 64 sets. Other fields get
/// an empty list (their few literals are cheaper to compare than a
/// value is to hash).
fn memo_sets(
    scans: &[Option<FieldScan>],
    sets: &mut [NeedleSet],
    set_slots: &[Option<usize>],
) -> Vec<Vec<usize>> {
    (0..scans.len())
        .map(|slot| {
            let ids: Vec<usize> = (0..sets.len())
                .filter(|&i| set_slots[i] == Some(slot))
                .collect();
            let searched =
                scans[slot].is_some() || ids.iter().any(|&i| sets[i].automaton.is_some());
            if !searched || ids.len() > 64 {
                return Vec::new();
            }
            for (bit, &i) in ids.iter().enumerate() {
                sets[i].memo_bit = Some(bit as u32);
            }
            ids
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn rules(yaml: &str) -> Vec<SigmaRule> {
        rsigma_parser::parse_sigma_yaml(yaml).expect("parses").rules
    }

    fn event(kind: EventKind, fields: &[(&'static str, &str)]) -> Event {
        let mut e = Event::new(Utc::now(), "h", "o");
        e.kind = kind;
        for (k, v) in fields {
            e.set(*k, *v);
        }
        e
    }

    fn gate(yaml: &str) -> Gate {
        Gate::new(&rules(yaml), |_| None)
    }

    /// Whether some rule could match `e`.
    fn may_match(g: &Gate, e: &Event) -> bool {
        !verdicts(g, e).is_empty()
    }

    fn verdicts(g: &Gate, e: &Event) -> Vec<(usize, Verdict)> {
        let mut out = Vec::new();
        g.candidates(e, &mut g.scratch(), &mut out);
        out
    }

    /// The verdicts on `e` with `shared` (holding what earlier events
    /// left: memos, kept lookups), or both lists when they differ from
    /// those with a fresh scratch.
    fn verdicts_after(
        g: &Gate,
        e: &Event,
        shared: &mut Scratch,
    ) -> Result<Vec<(usize, Verdict)>, String> {
        let (mut after, mut fresh) = (Vec::new(), Vec::new());
        g.candidates(e, shared, &mut after);
        g.candidates(e, &mut g.scratch(), &mut fresh);
        if after == fresh {
            Ok(fresh)
        } else {
            Err(format!("{after:?} against {fresh:?}"))
        }
    }

    fn may(g: &Gate, fields: &[(&'static str, &str)]) -> bool {
        may_match(g, &event(EventKind::Unknown, fields))
    }

    #[test]
    fn literals_in_and_or_trees() {
        let g = gate(
            r#"
title: t
logsource: {product: linux}
detection:
    sel:
        program: sshd
        action: [login, max_auth_attempts]
    other:
        c-uri|contains: ['../', 'UNION SELECT']
    condition: sel or other
"#,
        );
        assert!(may(&g, &[("program", "sshd"), ("action", "LOGIN")]));
        assert!(!may(&g, &[("program", "sshd"), ("action", "session")]));
        assert!(!may(&g, &[("action", "login")]));
        assert!(may(&g, &[("c-uri", "/a?q=1 union select 2")]));
        assert!(may(&g, &[("c-uri", "/../../etc")]));
        assert!(!may(&g, &[("c-uri", "/index.html")]));
        // Non-ASCII text is left to the engine.
        assert!(may(&g, &[("c-uri", "/\u{212A}")]));
    }

    #[test]
    fn many_literals_go_through_one_automaton() {
        let needles: Vec<String> = (0..20).map(|i| format!("'needle{i}x'")).collect();
        let g = gate(&format!(
            "title: t\nlogsource: {{category: webserver}}\ndetection:\n    sel: {{c-uri|contains: [{}]}}\n    condition: sel\n",
            needles.join(", ")
        ));
        assert!(g.sets[0].automaton.is_some());
        assert!(may(&g, &[("c-uri", "/a/NEEDLE17X/b")]));
        assert!(!may(&g, &[("c-uri", "/a/needle17/b")]));
        assert!(may(&g, &[("c-uri", "/caf\u{e9}")]));
    }

    #[test]
    fn a_fields_sets_are_searched_together_and_shared() {
        let g = gate(
            r#"
title: a
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: [one1, two2, three3, four4, five5, six6]}
    condition: sel
---
title: b
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: ['../']}
    condition: sel
---
title: c
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: ['../'], cs-method: POST}
    condition: sel
---
title: d
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: [six6, zzz]}
    condition: sel
"#,
        );
        assert!(g.scans.iter().flatten().count() == 1);
        // The same literals on the same field are one set.
        assert_eq!(g.sets.len(), 4);
        // The automata are built on first use, and find what searching
        // for each literal on its own finds (what a scan whose automaton
        // could not be built does, and a set with no automaton).
        let scan = g.scans.iter().flatten().next().expect("one scan");
        let big = g
            .sets
            .iter()
            .find(|s| s.automaton.is_some())
            .expect("a large set");
        assert!(scan.automaton.built.get().is_none(), "built before use");
        let mut lower = Vec::new();
        for v in [
            "/",
            "/TWO2/../x",
            "/six6",
            "/a/zzz",
            "/one1/five5/../",
            "/Four4",
        ] {
            let lowered = v.to_ascii_lowercase();
            let one_by_one = scan.hits_one_by_one(lowered.as_bytes());
            assert_eq!(scan.hits(v, &mut lower), one_by_one, "{v}");
            let in_big = big.needles.iter().any(|n| lowered.contains(n.as_str()));
            assert_eq!(big.matches_ascii(v, &mut lower), in_big, "{v}");
        }
        assert!(scan.automaton.built.get().is_some_and(Option::is_some));
        let v = |uri: &str| {
            verdicts(
                &g,
                &event(EventKind::Unknown, &[("c-uri", uri), ("cs-method", "POST")]),
            )
        };
        use Verdict::Yes;
        assert_eq!(v("/../FIVE5"), [(0, Yes), (1, Yes), (2, Yes)]);
        // A literal of two sets marks both.
        assert_eq!(v("/a/six6"), [(0, Yes), (3, Yes)]);
        assert_eq!(v("/a/ZZZ"), [(3, Yes)]);
        assert_eq!(v("/.."), []);
        assert_eq!(v("/x/../"), [(1, Yes), (2, Yes)]);
        assert_eq!(
            v("/\u{e9}"),
            [
                (0, Verdict::Maybe),
                (1, Verdict::Maybe),
                (2, Verdict::Maybe),
                (3, Verdict::Maybe)
            ]
        );
    }

    #[test]
    fn aliases_resolve_as_in_the_engine() {
        let g = gate(
            "title: t\nlogsource: {category: webserver}\ndetection:\n    sel: {cs-user-agent|contains: sqlmap}\n    condition: sel\n",
        );
        assert!(may(&g, &[("c-useragent", "sqlmap/1.7")]));
        assert!(!may(&g, &[("c-useragent", "curl/8")]));
    }

    #[test]
    fn what_it_cannot_judge_passes() {
        for detection in [
            "sel: {c-uri|re: '[a-z]+'}\n    condition: sel",
            "sel: {c-uri: 'x'}\n    condition: not sel",
            "sel: {c-uri: null}\n    condition: sel",
            "sel: {c-uri: '*'}\n    condition: sel",
        ] {
            let g = gate(&format!(
                "title: t\nlogsource: {{product: linux}}\ndetection:\n    {detection}\n"
            ));
            let present = may(&g, &[("c-uri", "/index.html")]);
            assert!(present, "{detection}");
        }
        // A regex needs at least the field.
        let g = gate(
            "title: t\nlogsource: {product: linux}\ndetection:\n    sel: {c-uri|re: 'a.*b'}\n    condition: sel\n",
        );
        assert!(!may(&g, &[("program", "x")]));
    }

    #[test]
    fn keywords_search_every_value_and_selectors_widen() {
        let g = gate(
            r#"
title: t
logsource: {product: linux}
detection:
    keywords: ['*segfault at*']
    selection_a: {user: root}
    selection_b: {user: admin}
    condition: keywords or 1 of selection_*
"#,
        );
        assert!(may(&g, &[("message", "x: Segfault at 0")]));
        assert!(may(&g, &[("user", "admin")]));
        assert!(!may(&g, &[("user", "bob"), ("message", "ok")]));
    }

    #[test]
    fn rules_of_another_logsource_do_not_open_the_gate() {
        let yaml = "title: t\nlogsource: {category: webserver}\ndetection:\n    sel: {sc-status: '404'}\n    condition: sel\n";
        let syslog = LogSource {
            category: Some("ward-syslog".into()),
            ..Default::default()
        };
        let g = Gate::new(&rules(yaml), |k| match k {
            EventKind::Syslog => Some(&syslog),
            _ => None,
        });
        let e = event(EventKind::Syslog, &[("sc-status", "404")]);
        assert!(!may_match(&g, &e));
        let e = event(EventKind::WebAccess, &[("sc-status", "404")]);
        assert!(may_match(&g, &e));
    }

    #[test]
    fn candidates_are_the_rules_that_could_match_in_order() {
        let yaml = r#"
title: a
logsource: {product: linux}
detection:
    sel: {program: sshd}
    condition: sel
---
title: b
logsource: {category: webserver}
detection:
    sel: {sc-status: '404'}
    condition: sel
---
title: c
logsource: {product: linux}
detection:
    sel: {c-uri|re: 'x'}
    condition: not sel
---
title: d
logsource: {product: linux}
detection:
    sel: {program: [sudo, sshd]}
    condition: sel
"#;
        let syslog = LogSource {
            product: Some("linux".into()),
            category: Some("ward-syslog".into()),
            ..Default::default()
        };
        let g = Gate::new(&rules(yaml), |k| match k {
            EventKind::Syslog => Some(&syslog),
            _ => None,
        });
        use Verdict::{Maybe, Yes};
        let e = event(
            EventKind::Syslog,
            &[("program", "sshd"), ("sc-status", "404")],
        );
        assert_eq!(verdicts(&g, &e), [(0, Yes), (2, Maybe), (3, Yes)]);
        let e = event(EventKind::Syslog, &[("program", "cron")]);
        assert_eq!(verdicts(&g, &e), [(2, Maybe)]);
        // Not ASCII: left to the engine.
        let e = event(EventKind::Syslog, &[("program", "sshd\u{e9}")]);
        assert_eq!(verdicts(&g, &e), [(0, Maybe), (2, Maybe), (3, Maybe)]);
        // No logsource known: every rule applies.
        let e = event(EventKind::Unknown, &[("sc-status", "404")]);
        assert_eq!(verdicts(&g, &e), [(1, Yes), (2, Maybe)]);
    }

    #[test]
    fn rules_are_dispatched_on_the_field_most_of_them_require() {
        let yaml = r#"
title: a
logsource: {product: linux}
detection:
    sel: {program: sshd, action: login}
    condition: sel
---
title: b
logsource: {product: linux}
detection:
    sel: {program: [sudo, SU]}
    condition: sel
---
title: c
logsource: {product: linux}
detection:
    s_one: {program: cron, user: root}
    s_two: {program: sshd, user: admin}
    condition: 1 of s_*
---
title: d
logsource: {product: linux}
detection:
    s_one: {program: cron}
    s_two: {action: pam_auth}
    condition: 1 of s_*
---
title: e
logsource: {product: linux}
detection:
    sel: {program|contains: ssh}
    condition: sel
"#;
        let g = gate(yaml);
        let d = g.dispatch[0].as_ref().expect("dispatched");
        assert_eq!(g.slots[d.slot], "program");
        // d (an OR with a branch without `program`) and e (a containment)
        // are judged on every event.
        assert_eq!(d.always, [3, 4]);
        let both = |fields: &[(&'static str, &str)]| {
            let e = event(EventKind::Unknown, fields);
            let mut out = Vec::new();
            g.candidates_undispatched(&e, &mut g.scratch(), &mut out);
            let dispatched = verdicts(&g, &e);
            assert_eq!(dispatched, out, "{fields:?}");
            dispatched.into_iter().map(|(r, _)| r).collect::<Vec<_>>()
        };
        assert_eq!(both(&[("program", "SSHD"), ("action", "login")]), [0, 4]);
        assert_eq!(both(&[("program", "sshd"), ("user", "admin")]), [2, 4]);
        assert_eq!(both(&[("program", "su")]), [1]);
        assert_eq!(both(&[("program", "ftpd"), ("action", "pam_auth")]), [3]);
        assert_eq!(both(&[("action", "pam_auth")]), [3]);
        assert_eq!(both(&[("program", "cron"), ("user", "root")]), [2, 3]);
        // Not ASCII: every rule is judged, as without the dispatch (the
        // gate leaves the value to the engine).
        assert_eq!(both(&[("program", "sshd\u{e9}")]), [1, 3, 4]);
        // One rule naming a field is no dispatch.
        assert!(gate("title: t\nlogsource: {product: linux}\ndetection:\n    sel: {program: sshd}\n    condition: sel\n").dispatch[0].is_none());
    }

    #[test]
    fn only_whole_tests_are_certain() {
        let g = gate(
            r#"
title: t
logsource: {product: linux}
detection:
    sel:
        program: sshd
        c-uri|contains: ['../', 'etc/passwd']
        c-uri|endswith: '.php'
        cs-method|startswith: PO
    wild: {c-useragent: '*nikto*'}
    cased: {user|cased: Root}
    condition: sel or wild or cased
"#,
        );
        let e = |f: &[(&'static str, &str)]| verdicts(&g, &event(EventKind::Unknown, f));
        let sel = [
            ("program", "SSHD"),
            ("c-uri", "/a/../x.PHP"),
            ("cs-method", "POST"),
        ];
        assert_eq!(e(&sel), [(0, Verdict::Yes)]);
        // Equality, not containment; suffix and prefix where they are.
        assert!(
            e(&[
                ("program", "sshd-session"),
                ("c-uri", "/../x.php"),
                ("cs-method", "POST")
            ])
            .is_empty()
        );
        assert!(
            e(&[
                ("program", "sshd"),
                ("c-uri", "/../x.php?"),
                ("cs-method", "POST")
            ])
            .is_empty()
        );
        assert!(
            e(&[
                ("program", "sshd"),
                ("c-uri", "/../x.php"),
                ("cs-method", "GPOST")
            ])
            .is_empty()
        );
        // Wildcards and case-sensitive values are left to the engine.
        assert_eq!(e(&[("c-useragent", "Nikto/2")]), [(0, Verdict::Maybe)]);
        assert_eq!(e(&[("user", "root")]), [(0, Verdict::Maybe)]);
        // `all of` needs more than one: never certain from one.
        let g = gate(
            "title: t\nlogsource: {product: linux}\ndetection:\n    s_a: {program: sshd}\n    s_b: {user: root}\n    condition: all of s_*\n",
        );
        assert_eq!(
            verdicts(
                &g,
                &event(EventKind::Unknown, &[("program", "sshd"), ("user", "root")])
            ),
            [(0, Verdict::Maybe)]
        );
    }

    /// With the values of searched fields remembered between events (one
    /// scratch for all), every verdict is the one a fresh scratch (nothing
    /// remembered) gives: repeated, changed, non-ASCII and over-long values,
    /// and the same value in another field.
    #[test]
    fn remembered_values_give_the_verdicts_of_searched_ones() {
        let g = gate(
            r#"
title: paths
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: ['../', '/etc/passwd']}
    condition: sel
---
title: sqli
logsource: {category: webserver}
detection:
    sel: {c-uri|contains: ['union select', "' or 1=1", 'sleep(']}
    condition: sel
---
title: scanners
logsource: {category: webserver}
detection:
    sel: {c-useragent|contains: [sqlmap, nikto, nmap, masscan, zgrab, nuclei]}
    status: {sc-status: '200'}
    condition: sel and status
---
title: shell
logsource: {category: webserver}
detection:
    sel: {c-uri|endswith: [cmd.php, c99.php], c-useragent: curl}
    condition: sel
"#,
        );
        assert!(
            !g.memo_sets.iter().all(Vec::is_empty),
            "no field is remembered"
        );
        let long = format!("/{}../", "a".repeat(MEMO_MAX_VALUE));
        let uris = [
            "/index.html",
            "/a/../../etc/passwd",
            "/q?id=1' OR 1=1--",
            "/Ünïcode/../x",
            long.as_str(),
            "/shell/cmd.php",
            "/SLEEP(5)",
        ];
        let agents = ["Mozilla/5.0", "sqlmap/1.7", "curl", "Nikto", "Mözilla nmap"];
        let mut shared = g.scratch();
        let mut seen = 0;
        for round in 0..3 {
            for (i, uri) in uris.iter().enumerate() {
                for (j, ua) in agents.iter().enumerate() {
                    let status = if (i + j + round) % 2 == 0 {
                        "200"
                    } else {
                        "404"
                    };
                    let mut e = event(
                        EventKind::WebAccess,
                        &[("c-uri", uri), ("c-useragent", ua), ("sc-status", status)],
                    );
                    // The same text in another field must not answer for it.
                    if round == 2 {
                        e.set("c-uri", *ua);
                        e.set("c-useragent", *uri);
                    }
                    let found = verdicts_after(&g, &e, &mut shared).unwrap_or_else(|diff| {
                        panic!("{uri} / {ua} / {status}, round {round}: {diff}")
                    });
                    seen += usize::from(!found.is_empty());
                }
            }
        }
        assert!(seen > 10, "only {seen} events could match");
    }

    /// Lookups kept by field names give the verdicts of fresh lookups:
    /// the same names in other orders, subsets of them, aliases, names
    /// that are not static (never kept), and more name lists than there
    /// are entries (colliding lists replace each other).
    #[test]
    fn lookups_kept_by_field_names_give_fresh_verdicts() {
        let g = gate(
            r#"
title: ssh
logsource: {product: linux}
detection:
    sel: {program: sshd, action: [failed, invalid_user]}
    condition: sel
---
title: uri
logsource: {product: linux}
detection:
    sel: {cs-uri|contains: ['../', 'passwd']}
    condition: sel
---
title: port
logsource: {product: linux}
detection:
    sel: {dst_port: ['22', '3389'], proto: tcp}
    condition: sel
"#,
        );
        let names = ["program", "action", "c-uri", "dst_port", "proto", "user"];
        let values = ["sshd", "failed", "/../etc/passwd", "22", "tcp", "root"];
        let mut shared = g.scratch();
        let mut seen = 0;
        // Every non-empty subset of the names, in two orders, with static
        // names and then with owned ones.
        for owned in [false, true] {
            for round in 0..2 {
                for mask in 1u32..(1 << names.len()) {
                    let mut picked: Vec<usize> =
                        (0..names.len()).filter(|i| mask & (1 << i) != 0).collect();
                    if round == 1 {
                        picked.reverse();
                    }
                    let mut e = Event::new(Utc::now(), "h", "o");
                    for &i in &picked {
                        let name: FieldName = if owned {
                            Cow::Owned(names[i].to_string())
                        } else {
                            Cow::Borrowed(names[i])
                        };
                        // Values that differ between rounds: only the
                        // lookups are kept, never what they found.
                        let value = if (mask as usize + i + round).is_multiple_of(3) {
                            "other"
                        } else {
                            values[i]
                        };
                        e.push_pair((name, value));
                    }
                    let found = verdicts_after(&g, &e, &mut shared).unwrap_or_else(|diff| {
                        panic!("{picked:?}, round {round}, owned {owned}: {diff}")
                    });
                    seen += usize::from(!found.is_empty());
                }
            }
        }
        assert!(seen > 20, "only {seen} events could match");
        // The static lists were kept (and replaced one another).
        assert!(
            shared
                .layouts
                .iter()
                .filter(|l| !l.names.is_empty())
                .count()
                > 1
        );
    }

    /// A memo holds at most its entry count of values, none longer than
    /// the limit; a value met again is answered from it, one evicted by a
    /// collision is searched again.
    #[test]
    fn a_value_memo_is_bounded() {
        let mut memo = ValueMemo::default();
        let searches = std::cell::Cell::new(0);
        let bits = |memo: &mut ValueMemo, v: &str, found: u64| {
            memo.bits(v.as_bytes(), || {
                searches.set(searches.get() + 1);
                found
            })
        };
        for i in 0..3 * MEMO_ENTRIES {
            let v = format!("/page/{i}");
            assert_eq!(bits(&mut memo, &v, v.len() as u64), v.len() as u64);
        }
        let long = "x".repeat(MEMO_MAX_VALUE + 1);
        bits(&mut memo, &long, 1);
        bits(&mut memo, &long, 1);
        assert_eq!(memo.entries.len(), MEMO_ENTRIES);
        assert!(memo.entries.iter().all(|e| e.value.len() <= MEMO_MAX_VALUE));
        assert_eq!(searches.get(), 3 * MEMO_ENTRIES + 2);
        searches.set(0);
        bits(&mut memo, "/index.html", 0);
        // Answered from the memo: the bits first found, not these.
        assert_eq!(bits(&mut memo, "/index.html", 7), 0);
        assert_eq!(searches.get(), 1);
        // The last values written are all still there, bar collisions.
        let kept = (2 * MEMO_ENTRIES..3 * MEMO_ENTRIES)
            .filter(|i| {
                let v = format!("/page/{i}");
                let h = std::hash::BuildHasher::hash_one(&MEMO_HASH, v.as_bytes());
                memo.entries[h as usize & (MEMO_ENTRIES - 1)].value == v.as_bytes()
            })
            .count();
        assert!(kept > MEMO_ENTRIES / 2, "{kept}");
    }
}
