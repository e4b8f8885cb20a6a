//! The utterance matcher: every sample utterance becomes a pattern of words and slots, and an
//! utterance is aligned with each pattern by dynamic programming. Words of the sample must
//! appear in order; extra words around and between them (carrier phrases such as "can you
//! ... for me") cost a little; slots take spans that match a slot value. The best alignment
//! wins if it explains enough of what was said.

use super::package::{IntentDef, normalize, tokenize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Score of a sample word found in the utterance.
const WORD: f32 = 1.0;
/// Score per token of a slot span that is a known value (plus one bonus per slot).
const VALUE: f32 = 1.0;
const VALUE_BONUS: f32 = 0.5;
/// Score per token of a span taken by an open slot (e.g. an artist we do not know).
const OPEN: f32 = 0.35;
/// Score per token of an open slot's span that is a word of the samples ("something",
/// "music", "to"): carrier words are rarely a name, so "play something to help me focus"
/// is a mood request with extra words, not an artist called "something to help me focus".
const CARRIER_IN_OPEN: f32 = -0.25;
/// Cost of an utterance word the sample does not have.
const EXTRA: f32 = 0.5;
/// Cost of a sample word the utterance lacks.
const MISSING: f32 = 1.0;
/// Longest span a slot may take.
const MAX_SPAN: usize = 6;
/// Share of the utterance's words a match must explain.
const MIN_COVERAGE: f32 = 0.5;

/// Known values of open slot types (the catalog's artists for `AMAZON.Musician`), which the
/// text parser looks phrases up in. A catalog of 100M tracks has some 10M artists: they
/// are looked up where they are, never copied into each locale's model.
pub trait OpenValues: Send + Sync {
    /// The slot types it knows values of.
    fn slot_types(&self) -> Vec<String>;
    /// The value (its id: the name as the catalog spells it) that `phrase`, as heard (lower
    /// case, single spaces), names among `slot_type`'s.
    fn value(&self, slot_type: &str, phrase: &str) -> Option<String>;
}

/// Open values listed up front (slot type -> values): for tests and small tools.
pub struct ListedValues(HashMap<String, HashMap<String, String>>);

impl ListedValues {
    pub fn new(values: &HashMap<String, Vec<String>>) -> Self {
        ListedValues(
            values
                .iter()
                .map(|(ty, known)| {
                    let table = known.iter().map(|v| (normalize(v), v.clone())).collect();
                    (ty.clone(), table)
                })
                .collect(),
        )
    }
}

impl OpenValues for ListedValues {
    fn slot_types(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    fn value(&self, slot_type: &str, phrase: &str) -> Option<String> {
        self.0.get(slot_type)?.get(phrase).cloned()
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Word(String),
    Slot { name: String, type_name: String },
}

#[derive(Debug)]
struct Pattern {
    intent: String,
    pieces: Vec<Piece>,
    words: usize,
    /// The distinct words, to rule a pattern out before aligning it.
    vocabulary: Vec<String>,
}

pub(super) struct Parser {
    patterns: Vec<Pattern>,
    /// Every word of every sample.
    carrier: HashSet<String>,
    /// slot type -> normalised phrase -> value id
    values: HashMap<String, HashMap<String, String>>,
    /// Known values of open slot types (the catalog's artists), looked up, not copied: one
    /// catalog serves every locale's parser.
    open: Arc<dyn OpenValues>,
    /// The slot types `open` knows values of.
    open_types: Vec<String>,
}

/// An utterance's spans: `text[j][k - 1]` is tokens `j..j + k` joined (the form slot values
/// are keyed by), and for each open slot type, the value each span names, if any.
struct Spans {
    text: Vec<Vec<String>>,
    open: HashMap<String, Vec<Vec<Option<String>>>>,
}

#[derive(Debug, PartialEq)]
pub(super) struct Parsed {
    pub intent: String,
    /// slot name -> (words heard, value id if it is a known value)
    pub slots: HashMap<String, (String, Option<String>)>,
    pub score: f32,
}

#[derive(Clone, Copy)]
struct Cell {
    score: f32,
    covered: usize,
    missing: usize,
    from: (usize, usize),
    /// The slot span taken on the step into this cell.
    slot: Option<(usize, usize)>,
}

impl Parser {
    pub fn new(
        intents: &[IntentDef],
        values: HashMap<String, HashMap<String, String>>,
        open: Arc<dyn OpenValues>,
    ) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for intent in intents {
            for sample in &intent.samples {
                let mut pieces = Vec::new();
                for raw in sample.split_whitespace() {
                    if let Some(name) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                        let slot =
                            intent
                                .slots
                                .iter()
                                .find(|s| s.name == name)
                                .ok_or_else(|| {
                                    format!(
                                        "sample {sample:?} of {} names unknown slot {name}",
                                        intent.name
                                    )
                                })?;
                        pieces.push(Piece::Slot {
                            name: name.to_owned(),
                            type_name: slot.type_name.clone(),
                        });
                    } else {
                        pieces.extend(tokenize(raw).into_iter().map(Piece::Word));
                    }
                }
                let mut vocabulary: Vec<String> = pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Word(w) => Some(w.clone()),
                        Piece::Slot { .. } => None,
                    })
                    .collect();
                let words = vocabulary.len();
                vocabulary.sort();
                vocabulary.dedup();
                patterns.push(Pattern {
                    intent: intent.name.clone(),
                    pieces,
                    words,
                    vocabulary,
                });
            }
        }
        let carrier = patterns
            .iter()
            .flat_map(|p| p.vocabulary.iter().cloned())
            .collect();
        Ok(Parser {
            patterns,
            carrier,
            values,
            open_types: open.slot_types(),
            open,
        })
    }

    pub fn parse(&self, tokens: &[String]) -> Option<Parsed> {
        let text: Vec<Vec<String>> = (0..tokens.len())
            .map(|j| {
                (1..=MAX_SPAN.min(tokens.len() - j))
                    .map(|k| tokens[j..j + k].join(" "))
                    .collect()
            })
            .collect();
        // Each span is looked up once per open type, not once per pattern that could take it.
        let open = self
            .open_types
            .iter()
            .map(|ty| {
                let named = text
                    .iter()
                    .map(|row| row.iter().map(|span| self.open.value(ty, span)).collect())
                    .collect();
                (ty.clone(), named)
            })
            .collect();
        let spans = Spans { text, open };
        let mut best: Option<Parsed> = None;
        for pattern in &self.patterns {
            // A match may lack at most one sample word: rule out patterns lacking more.
            let absent = pattern
                .vocabulary
                .iter()
                .filter(|w| !tokens.contains(w))
                .count();
            if absent > 1 {
                continue;
            }
            if let Some(found) = self.align(pattern, tokens, &spans)
                && best.as_ref().is_none_or(|b| found.score > b.score)
            {
                best = Some(found);
            }
        }
        best
    }

    /// The value id of span `j..j + k` as a value of `type_name`: a value the model lists,
    /// else one the open values know.
    fn value_id<'s>(
        &'s self,
        spans: &'s Spans,
        type_name: &str,
        j: usize,
        k: usize,
    ) -> Option<&'s String> {
        let span = &spans.text[j][k - 1];
        self.values
            .get(type_name)
            .and_then(|v| v.get(span))
            .or_else(|| spans.open.get(type_name)?[j][k - 1].as_ref())
    }

    fn align(&self, pattern: &Pattern, tokens: &[String], spans: &Spans) -> Option<Parsed> {
        let (np, nt) = (pattern.pieces.len(), tokens.len());
        let mut grid: Vec<Vec<Option<Cell>>> = vec![vec![None; nt + 1]; np + 1];
        grid[0][0] = Some(Cell {
            score: 0.0,
            covered: 0,
            missing: 0,
            from: (0, 0),
            slot: None,
        });
        let relax = |grid: &mut Vec<Vec<Option<Cell>>>, i: usize, j: usize, cand: Cell| {
            if grid[i][j].is_none_or(|c| cand.score > c.score) {
                grid[i][j] = Some(cand);
            }
        };
        for i in 0..=np {
            for j in 0..=nt {
                let Some(cell) = grid[i][j] else { continue };
                let step = |score: f32, covered: usize, missing: usize, slot| Cell {
                    score: cell.score + score,
                    covered: cell.covered + covered,
                    missing: cell.missing + missing,
                    from: (i, j),
                    slot,
                };
                if j < nt {
                    relax(&mut grid, i, j + 1, step(-EXTRA, 0, 0, None));
                }
                let Some(piece) = pattern.pieces.get(i) else {
                    continue;
                };
                match piece {
                    Piece::Word(w) => {
                        if j < nt && tokens[j] == *w {
                            relax(&mut grid, i + 1, j + 1, step(WORD, 1, 0, None));
                        }
                        relax(&mut grid, i + 1, j, step(-MISSING, 0, 1, None));
                    }
                    Piece::Slot { type_name, .. } => {
                        // A sample that is only an open slot ("{artist}", the answer to
                        // "what would you like to hear?") takes known values only, or it
                        // would take anything said.
                        let open = type_name.starts_with("AMAZON.") && pattern.words > 0;
                        for k in 1..=MAX_SPAN.min(nt - j) {
                            let score = if self.value_id(spans, type_name, j, k).is_some() {
                                VALUE * k as f32 + VALUE_BONUS
                            } else if open {
                                tokens[j..j + k]
                                    .iter()
                                    .map(|t| {
                                        if self.carrier.contains(t) {
                                            CARRIER_IN_OPEN
                                        } else {
                                            OPEN
                                        }
                                    })
                                    .sum()
                            } else {
                                continue;
                            };
                            relax(&mut grid, i + 1, j + k, step(score, k, 0, Some((j, j + k))));
                        }
                    }
                }
            }
        }
        let end = grid[np][nt]?;
        let coverage = end.covered as f32 / nt as f32;
        if coverage < MIN_COVERAGE
            || end.missing > 1
            || (pattern.words > 0 && end.missing >= pattern.words)
        {
            return None;
        }
        // Walk back to collect the slot spans.
        let mut slots = HashMap::new();
        let (mut i, mut j) = (np, nt);
        while (i, j) != (0, 0) {
            let cell = grid[i][j].expect("a reached cell has a reached predecessor");
            if let Some((a, b)) = cell.slot
                && let Piece::Slot { name, type_name } = &pattern.pieces[cell.from.0]
            {
                let span = &spans.text[a][b - a - 1];
                let id = self.value_id(spans, type_name, a, b - a).cloned();
                slots.insert(name.clone(), (span.clone(), id));
            }
            (i, j) = cell.from;
        }
        Some(Parsed {
            intent: pattern.intent.clone(),
            slots,
            score: end.score,
        })
    }
}
