//! Comparing two BOMs line by line — a CAD export (ours) against what an ERP holds (theirs):
//! a line is a (parent part, child part) pair.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::build::part_key;
use crate::{Bom, BomRow};

/// How lines and parts are matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matching {
    /// A part whose number is blank or not in theirs is matched by its description (trimmed,
    /// spaces collapsed, case-insensitive) when theirs has exactly that description.
    pub by_description: bool,
    /// Quantities that differ make an update.
    pub compare_quantity: bool,
    /// Units that differ (both given) make an update.
    pub compare_unit: bool,
    /// Mapped properties compared: (our column, their column).
    pub properties: Vec<(String, String)>,
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            by_description: true,
            compare_quantity: true,
            compare_unit: true,
            properties: Vec::new(),
        }
    }
}

/// What a line needs in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// The part is not in theirs at all.
    Create,
    /// The part is in theirs, but not as a child of this parent.
    Link,
    /// The line is in theirs with a different quantity, unit or mapped property.
    Update,
    /// The line is in theirs as it is in ours.
    Unchanged,
    /// A line theirs has and ours does not (shown, never deleted by default).
    DestinationOnly,
}

/// One value that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `quantity`, `unit`, or the mapped property as `ours column → theirs column`.
    pub field: String,
    /// Our value.
    pub ours: Option<String>,
    /// Their value.
    pub theirs: Option<String>,
}

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineComparison {
    /// What the line needs.
    pub status: LineStatus,
    /// The parent's part number; `None` for a child of the assembly itself.
    pub parent: Option<String>,
    /// The child's part number (ours, or theirs for a destination-only line; theirs when ours
    /// was matched by description).
    pub part_number: String,
    /// The child's description.
    pub description: Option<String>,
    /// Our quantity per parent (the rows of the part under one parent occurrence added up).
    pub ours_quantity: Option<Decimal>,
    /// Their quantity per parent.
    pub theirs_quantity: Option<Decimal>,
    /// Our rows of this line.
    pub ours_rows: Vec<usize>,
    /// Their rows of this line.
    pub theirs_rows: Vec<usize>,
    /// What differs, for an update.
    pub changes: Vec<Change>,
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Our assembly's part number.
    pub ours_root: Option<String>,
    /// Their assembly's part number. Both roots are taken as the same assembly (the one being
    /// compared), even when their numbers differ.
    pub theirs_root: Option<String>,
    /// Ours' lines in order of first appearance, then theirs' destination-only lines.
    pub lines: Vec<LineComparison>,
    /// Our rows that could not be matched to any part: a blank part number and no description
    /// theirs has.
    pub unmatched_rows: Vec<usize>,
}

impl Comparison {
    /// The line of `part` under `parent` (`None` = under the assembly).
    pub fn line(&self, parent: Option<&str>, part: &str) -> Option<&LineComparison> {
        let parent = parent.map(part_key);
        let part = part_key(part);
        self.lines.iter().find(|l| {
            l.parent.as_deref().map(part_key) == parent && part_key(&l.part_number) == part
        })
    }

    /// How many lines have `status`.
    pub fn count(&self, status: LineStatus) -> usize {
        self.lines.iter().filter(|l| l.status == status).count()
    }
}

/// A description folded for matching: words separated by one space, upper case.
fn description_key(d: &str) -> String {
    let mut out = String::with_capacity(d.len());
    for word in d.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_uppercase));
    }
    out
}

/// Where a row hangs: under the assembly, under a part, or under a row we cannot name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ParentKey {
    Root,
    Part(String),
    Unknown(usize),
}

/// The rows under the assembly: the children of the root row when the file has one, else the
/// top-level rows.
fn is_root_row(bom: &Bom, row: &BomRow) -> bool {
    bom.root.as_ref().and_then(|r| r.row) == Some(row.row)
}

fn parent_key(bom: &Bom, row: &BomRow, keys: &[Option<String>]) -> ParentKey {
    match row.parent_row.and_then(|p| bom.rows.get(p)) {
        None => ParentKey::Root,
        Some(p) if is_root_row(bom, p) => ParentKey::Root,
        Some(p) => keys
            .get(p.row)
            .cloned()
            .flatten()
            .map_or(ParentKey::Unknown(p.row), ParentKey::Part),
    }
}

/// The quantity of a line: its rows under the first parent occurrence, added up.
fn line_quantity(bom: &Bom, rows: &[usize]) -> Option<Decimal> {
    let first = rows.first().and_then(|&r| bom.rows.get(r))?;
    let mut total = Decimal::ZERO;
    for r in rows.iter().filter_map(|&r| bom.rows.get(r)) {
        if r.parent_row == first.parent_row {
            total = total.checked_add(r.quantity?)?;
        }
    }
    Some(total.normalize())
}

#[derive(Debug, Default)]
struct Lines {
    order: Vec<(ParentKey, String)>,
    rows: HashMap<(ParentKey, String), Vec<usize>>,
}

impl Lines {
    fn add(&mut self, key: (ParentKey, String), row: usize) {
        match self.rows.get_mut(&key) {
            Some(rows) => rows.push(row),
            None => {
                self.order.push(key.clone());
                self.rows.insert(key, vec![row]);
            }
        }
    }
}

/// Each part key's spelling, as first seen.
fn spellings(bom: &Bom) -> HashMap<String, String> {
    let mut out = HashMap::with_capacity(bom.rows.len());
    for r in &bom.rows {
        if !r.part_number.is_empty() {
            out.entry(part_key(&r.part_number))
                .or_insert_with(|| r.part_number.clone());
        }
    }
    out
}

fn trimmed(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Compares `ours` with `theirs` line by line (see [`LineStatus`]). Parts are matched by part
/// number, trimmed and case-insensitive, then by description when [`Matching::by_description`].
/// The two assemblies are the same line's parent whatever their numbers: our top-level rows (or
/// our root row's children) are matched with their root row's children.
pub fn compare(ours: &Bom, theirs: &Bom, matching: &Matching) -> Comparison {
    // Theirs: parts, descriptions and lines.
    let mut their_parts: HashSet<String> = HashSet::new();
    let mut their_descriptions: HashMap<String, Option<String>> = HashMap::new();
    for r in &theirs.rows {
        if r.part_number.is_empty() {
            continue;
        }
        let key = part_key(&r.part_number);
        if let Some(d) = trimmed(r.description.as_deref()) {
            their_descriptions
                .entry(description_key(d))
                .and_modify(|k| {
                    if k.as_deref() != Some(key.as_str()) {
                        // Two parts share the description: no match by it.
                        *k = None;
                    }
                })
                .or_insert_with(|| Some(key.clone()));
        }
        their_parts.insert(key);
    }
    let their_keys: Vec<Option<String>> = theirs
        .rows
        .iter()
        .map(|r| (!r.part_number.is_empty()).then(|| part_key(&r.part_number)))
        .collect();
    let mut their_lines = Lines::default();
    for (r, k) in theirs.rows.iter().zip(&their_keys) {
        if is_root_row(theirs, r) {
            continue;
        }
        if let Some(k) = k {
            their_lines.add((parent_key(theirs, r, &their_keys), k.clone()), r.row);
        }
    }

    // Ours: each row's part as theirs knows it.
    let our_key = |r: &BomRow| -> Option<String> {
        if !r.part_number.is_empty() {
            let k = part_key(&r.part_number);
            if their_parts.contains(&k) || !matching.by_description {
                return Some(k);
            }
            let by_description = trimmed(r.description.as_deref()).and_then(|d| {
                their_descriptions
                    .get(&description_key(d))
                    .cloned()
                    .flatten()
            });
            return Some(by_description.unwrap_or(k));
        }
        if !matching.by_description {
            return None;
        }
        trimmed(r.description.as_deref()).and_then(|d| {
            their_descriptions
                .get(&description_key(d))
                .cloned()
                .flatten()
        })
    };
    let our_keys: Vec<Option<String>> = ours.rows.iter().map(our_key).collect();
    let mut our_lines = Lines::default();
    let mut unmatched_rows = Vec::new();
    for (r, k) in ours.rows.iter().zip(&our_keys) {
        if is_root_row(ours, r) {
            continue;
        }
        match k {
            Some(k) => our_lines.add((parent_key(ours, r, &our_keys), k.clone()), r.row),
            None => unmatched_rows.push(r.row),
        }
    }

    let mut lines = Vec::with_capacity(our_lines.order.len());
    let mut matched: HashSet<(ParentKey, String)> = HashSet::new();
    let our_spelling = spellings(ours);
    let their_spelling = spellings(theirs);
    let parent_name = |p: &ParentKey, bom: &Bom, their: bool| -> Option<String> {
        match p {
            ParentKey::Root => None,
            ParentKey::Part(k) => {
                // The spelling of the side the line comes from, else the other's.
                let (first, second) = if their {
                    (&their_spelling, &our_spelling)
                } else {
                    (&our_spelling, &their_spelling)
                };
                Some(first.get(k).or_else(|| second.get(k)).unwrap_or(k).clone())
            }
            ParentKey::Unknown(row) => bom
                .rows
                .get(*row)
                .map(|r| trimmed(r.description.as_deref()).unwrap_or("").to_owned()),
        }
    };
    for key in &our_lines.order {
        let rows = our_lines.rows.remove(key).unwrap_or_default();
        let Some(first) = rows.first().and_then(|&r| ours.rows.get(r)) else {
            continue;
        };
        let their_rows = their_lines.rows.get(key).cloned().unwrap_or_default();
        let their_first = their_rows.first().and_then(|&r| theirs.rows.get(r));
        let ours_quantity = line_quantity(ours, &rows);
        let theirs_quantity = line_quantity(theirs, &their_rows);
        let mut changes = Vec::new();
        let status = if !their_parts.contains(&key.1) {
            LineStatus::Create
        } else if let Some(t) = their_first {
            matched.insert(key.clone());
            if matching.compare_quantity
                && let (Some(a), Some(b)) = (ours_quantity, theirs_quantity)
                && a != b
            {
                changes.push(Change {
                    field: "quantity".into(),
                    ours: Some(a.to_string()),
                    theirs: Some(b.to_string()),
                });
            }
            if matching.compare_unit
                && let (Some(a), Some(b)) =
                    (trimmed(first.unit.as_deref()), trimmed(t.unit.as_deref()))
                && !a.eq_ignore_ascii_case(b)
            {
                changes.push(Change {
                    field: "unit".into(),
                    ours: Some(a.to_owned()),
                    theirs: Some(b.to_owned()),
                });
            }
            for (our_column, their_column) in &matching.properties {
                let a = trimmed(first.property(our_column));
                let b = trimmed(t.property(their_column));
                if a != b {
                    changes.push(Change {
                        field: format!("{our_column} → {their_column}"),
                        ours: a.map(str::to_owned),
                        theirs: b.map(str::to_owned),
                    });
                }
            }
            if changes.is_empty() {
                LineStatus::Unchanged
            } else {
                LineStatus::Update
            }
        } else {
            LineStatus::Link
        };
        let part_number = match (&status, their_first) {
            (LineStatus::Create, _) | (_, None) => {
                if first.part_number.is_empty() {
                    their_spelling.get(&key.1).unwrap_or(&key.1).clone()
                } else {
                    first.part_number.clone()
                }
            }
            (_, Some(t)) => t.part_number.clone(),
        };
        lines.push(LineComparison {
            status,
            parent: parent_name(&key.0, ours, false),
            part_number,
            description: first.description.clone(),
            ours_quantity,
            theirs_quantity,
            ours_rows: rows,
            theirs_rows: their_rows,
            changes,
        });
    }
    for key in &their_lines.order {
        if matched.contains(key) {
            continue;
        }
        let rows = their_lines.rows.get(key).cloned().unwrap_or_default();
        let Some(first) = rows.first().and_then(|&r| theirs.rows.get(r)) else {
            continue;
        };
        lines.push(LineComparison {
            status: LineStatus::DestinationOnly,
            parent: parent_name(&key.0, theirs, true),
            part_number: first.part_number.clone(),
            description: first.description.clone(),
            ours_quantity: None,
            theirs_quantity: line_quantity(theirs, &rows),
            ours_rows: Vec::new(),
            theirs_rows: rows,
            changes: Vec::new(),
        });
    }
    Comparison {
        ours_root: ours.root.as_ref().map(|r| r.part_number.clone()),
        theirs_root: theirs.root.as_ref().map(|r| r.part_number.clone()),
        lines,
        unmatched_rows,
    }
}
