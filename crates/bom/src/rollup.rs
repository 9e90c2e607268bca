//! Walking a read BOM: a row's children, the tree, and each part's total quantity rolled up
//! through the assemblies above it.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::build::part_key;
use crate::{Bom, Severity};

/// One part's total over the whole BOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartTotal {
    /// The part number, as first seen.
    pub part_number: String,
    /// Its description, from its first row that has one.
    pub description: Option<String>,
    /// Its unit, from its first row that has one.
    pub unit: Option<String>,
    /// The quantity needed for one of the BOM: for every row of the part, the product of the
    /// quantities along its path from the top, summed.
    pub quantity: Decimal,
    /// The rows it is on.
    pub occurrences: usize,
}

/// A row and its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The row's index in [`Bom::rows`].
    pub row: usize,
    /// Its children, in file order; empty below the depth asked for.
    pub children: Vec<Node>,
}

/// The rows whose parent is `row`, in file order.
pub fn children_of(bom: &Bom, row: usize) -> Vec<usize> {
    bom.rows
        .iter()
        .filter(|r| r.parent_row == Some(row))
        .map(|r| r.row)
        .collect()
}

/// The tree: the top-level rows with their children, down to `max_depth` (0 = the top level
/// only; `None` = all, bounded by the deepest row any read can produce).
pub fn tree(bom: &Bom, max_depth: Option<u32>) -> Vec<Node> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); bom.rows.len()];
    let mut tops = Vec::new();
    for r in &bom.rows {
        match r.parent_row.and_then(|p| children.get_mut(p)) {
            Some(c) if r.parent_row != Some(r.row) => c.push(r.row),
            _ => tops.push(r.row),
        }
    }
    // A hand-made Bom could hold a cycle; no path read from a file is deeper than this.
    let limit = max_depth
        .unwrap_or(u32::from(u16::MAX))
        .min(u32::from(u16::MAX));
    fn build(row: usize, depth: u32, limit: u32, children: &[Vec<usize>]) -> Node {
        let kids = if depth < limit {
            children
                .get(row)
                .map(|c| {
                    c.iter()
                        .map(|&k| build(k, depth.saturating_add(1), limit, children))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Node {
            row,
            children: kids,
        }
    }
    // Recursion depth is bounded by the tree's depth, which `Limits::max_depth` bounds for a
    // read BOM; iterate the top level.
    tops.into_iter()
        .map(|t| build(t, 0, limit.min(1024), &children))
        .collect()
}

/// Each part's total quantity for one of the BOM, in order of first appearance.
///
/// A row's multiplier is its quantity times its parent's multiplier (a row without a quantity
/// column counts as 1). Rows whose total cannot be computed are left out, with everything below
/// them: a quantity that is not a number, or a parent that is missing (the row was kept at the
/// top level, so its multiplier is unknown). A row with a blank part number is left out, but its
/// children are counted. Other row issues (a duplicate part under one parent) do not stop the
/// rollup.
pub fn parts(bom: &Bom) -> Vec<PartTotal> {
    let n = bom.rows.len();
    // None = not computed yet; Some(None) = cannot be computed.
    let mut multiplier: Vec<Option<Option<Decimal>>> = vec![None; n];
    let mut totals: Vec<PartTotal> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in &bom.rows {
        let m = multiplier_of(bom, row.row, &mut multiplier);
        let Some(m) = m else { continue };
        if row.part_number.is_empty() {
            continue;
        }
        let key = part_key(&row.part_number);
        let at = *index.entry(key).or_insert_with(|| {
            totals.push(PartTotal {
                part_number: row.part_number.clone(),
                description: None,
                unit: None,
                quantity: Decimal::ZERO,
                occurrences: 0,
            });
            totals.len().saturating_sub(1)
        });
        if let Some(t) = totals.get_mut(at) {
            t.quantity = t.quantity.checked_add(m).unwrap_or(t.quantity);
            t.occurrences = t.occurrences.saturating_add(1);
            if t.description.is_none() {
                t.description.clone_from(&row.description);
            }
            if t.unit.is_none() {
                t.unit.clone_from(&row.unit);
            }
        }
    }
    totals
}

/// Whether a row's own issues stop its total: a bad quantity or a missing parent.
fn blocks_total(bom: &Bom, row: usize) -> bool {
    let Some(r) = bom.rows.get(row) else {
        return true;
    };
    let quantity_column = bom.profile.column_for(crate::Role::Quantity);
    if quantity_column.is_some() && r.quantity.is_none() {
        return true;
    }
    // A row whose place in the tree is wrong: its parent is missing, its level or item number
    // unreadable, or it is nested too deep.
    let hierarchy_column = match bom.profile.hierarchy {
        crate::Hierarchy::Dotted { .. } => bom.profile.column_for(crate::Role::Position),
        crate::Hierarchy::Level { .. } => bom.profile.column_for(crate::Role::Level),
        crate::Hierarchy::Parent => bom.profile.column_for(crate::Role::Parent),
        crate::Hierarchy::Flat => None,
    };
    hierarchy_column.is_some_and(|column| {
        r.issues
            .iter()
            .any(|i| i.severity == Severity::Error && i.field == column)
    })
}

fn multiplier_of(bom: &Bom, row: usize, memo: &mut [Option<Option<Decimal>>]) -> Option<Decimal> {
    // Walk up to the first row already computed (or the top), then back down.
    let mut chain = Vec::new();
    let mut at = Some(row);
    while let Some(r) = at {
        if memo.get(r).copied().flatten().is_some() || chain.len() > 4096 || chain.contains(&r) {
            break;
        }
        chain.push(r);
        at = bom.rows.get(r).and_then(|x| x.parent_row);
    }
    let mut above: Option<Decimal> = match at {
        Some(r) => memo.get(r).copied().flatten().flatten(),
        None => Some(Decimal::ONE),
    };
    if at.is_some_and(|r| chain.contains(&r)) {
        above = None;
    }
    for &r in chain.iter().rev() {
        let own = if blocks_total(bom, r) {
            None
        } else {
            match bom.rows.get(r).and_then(|x| x.quantity) {
                Some(q) => Some(q),
                None => Some(Decimal::ONE),
            }
        };
        let m = match (above, own) {
            (Some(a), Some(o)) => a.checked_mul(o),
            _ => None,
        };
        if let Some(slot) = memo.get_mut(r) {
            *slot = Some(m);
        }
        above = m;
    }
    memo.get(row).copied().flatten().flatten()
}
