//! From the cells of a file to a [`Bom`]: the header and the column roles (detected or from a
//! given profile), the cleanup of each row, the tree, the row issues and the assembly's part number.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::grid::Grid;
use crate::profile::{self, ColumnRole, Encoding, Format, Hierarchy, ImportProfile, Role};
use crate::{Bom, BomError, BomRow, ReadOptions, RootPart, RootSource, RowIssue, Severity};

/// Rows searched for the header.
const HEADER_SEARCH: usize = 30;

/// What was read from the file, before the profile.
pub(crate) struct Source {
    pub(crate) format: Format,
    pub(crate) grid: Grid,
    pub(crate) sheets: Vec<String>,
    pub(crate) sheet: Option<String>,
    pub(crate) delimiter: Option<char>,
    pub(crate) encoding: Option<Encoding>,
}

/// The column indexes of the roles.
#[derive(Debug, Default)]
struct Columns {
    position: Option<usize>,
    level: Option<usize>,
    parent: Option<usize>,
    part: usize,
    description: Option<usize>,
    quantity: Option<usize>,
    unit: Option<usize>,
}

/// The header's names: a blank one is `Column N`, a repeated one gets ` (2)`, ` (3)`…
fn header_names(grid: &Grid, header: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(grid.width(header));
    for (i, cell) in grid.row(header).enumerate() {
        let base = if cell.is_empty() {
            format!("Column {}", i.saturating_add(1))
        } else {
            cell.to_owned()
        };
        let mut name = base.clone();
        let mut n = 2u32;
        while names.contains(&name) {
            name = format!("{base} ({n})");
            n = n.saturating_add(1);
        }
        names.push(name);
    }
    names
}

fn column_name(names: &[String], column: usize) -> String {
    names
        .get(column)
        .cloned()
        .unwrap_or_else(|| format!("Column {}", column.saturating_add(1)))
}

/// Whole numbers a spreadsheet wrote as floats (`545636.0`) back to `545636`.
fn unfloat(s: &str) -> &str {
    match s.split_once('.') {
        Some((whole, frac))
            if !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b == b'0') =>
        {
            whole
        }
        _ => s,
    }
}

/// A quantity: `8`, `8.0`, `0.25`, `1,5` (decimal comma), `1,234.5`, `1.234,5`.
pub(crate) fn parse_quantity(s: &str) -> Option<Decimal> {
    let s = s.trim().trim_start_matches('\'');
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let last_dot = s.rfind('.');
    let last_comma = s.rfind(',');
    let normalized: String = match (last_dot, last_comma) {
        (Some(d), Some(c)) if c > d => s.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => s.replace(',', ""),
        (None, Some(_)) if s.matches(',').count() == 1 => s.replace(',', "."),
        (None, Some(_)) => s.replace(',', ""),
        _ => s.to_owned(),
    };
    let normalized = normalized.replace([' ', '\u{a0}'], "");
    if normalized.contains(['e', 'E']) {
        return Decimal::from_scientific(&normalized).ok();
    }
    Decimal::from_str(&normalized).ok()
}

/// A level: `2`, `'2'`, `2.0`.
fn parse_level(s: &str) -> Option<u32> {
    let s = s.trim().trim_matches('\'').trim();
    unfloat(s).parse().ok()
}

/// A dotted item number in its normal form: segments trimmed, leading zeros of numeric segments
/// dropped, joined with `.` (`02 . 010` → `2.10`, `1,1` → `1.1`).
#[derive(Debug, PartialEq, Eq)]
struct DottedPath {
    path: String,
    /// Segments less one: 0 at the top level.
    depth: usize,
    /// The length of the parent's path, a prefix of `path` (0 at the top level).
    parent_len: usize,
}

impl DottedPath {
    fn parse(position: &str, separator: char) -> Option<Self> {
        let mut path = String::with_capacity(position.len());
        let mut depth = 0usize;
        let mut parent_len = 0usize;
        for (i, seg) in position.split(separator).enumerate() {
            let seg = seg.trim();
            if seg.is_empty() {
                return None;
            }
            let seg = if seg.bytes().all(|b| b.is_ascii_digit()) {
                let t = seg.trim_start_matches('0');
                if t.is_empty() { "0" } else { t }
            } else {
                seg
            };
            if i > 0 {
                parent_len = path.len();
                path.push('.');
            }
            path.push_str(seg);
            depth = i;
        }
        Some(Self {
            path,
            depth,
            parent_len,
        })
    }

    /// The parent's path; `None` at the top level.
    fn parent(&self) -> Option<&str> {
        if self.depth == 0 {
            return None;
        }
        self.path.get(..self.parent_len)
    }
}

/// A part-number key: trimmed, case-insensitive.
pub(crate) fn part_key(part: &str) -> String {
    part.trim().to_uppercase()
}

fn looks_like_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '$' | '"' | ':'))
}

fn find_header(grid: &Grid) -> Option<usize> {
    (0..grid.len().min(HEADER_SEARCH)).find(|&i| {
        let cells: Vec<&str> = grid.row(i).collect();
        profile::recognised_count(&cells) >= 2
    })
}

/// The hierarchy a detected profile uses: a parent column wins, then a level column (base set
/// later from the data), then item numbers (dotted, `,` when no `.` appears), else flat.
fn detect_hierarchy(grid: &Grid, header: usize, columns: &Columns) -> Hierarchy {
    if columns.parent.is_some() {
        return Hierarchy::Parent;
    }
    if let Some(level) = columns.level {
        let base = (header.saturating_add(1)..grid.len())
            .filter_map(|i| parse_level(grid.cell(i, level)))
            .min()
            .unwrap_or(0);
        return Hierarchy::Level {
            base: u8::from(base >= 1),
        };
    }
    if let Some(position) = columns.position {
        let mut comma = false;
        for i in header.saturating_add(1)..grid.len() {
            let p = grid.cell(i, position);
            if p.contains('.') {
                return Hierarchy::Dotted { separator: '.' };
            }
            comma |= p.contains(',');
        }
        return Hierarchy::Dotted {
            separator: if comma { ',' } else { '.' },
        };
    }
    Hierarchy::Flat
}

fn issue(field: &str, severity: Severity, message: impl Into<String>) -> RowIssue {
    RowIssue {
        field: field.to_owned(),
        message: message.into(),
        severity,
    }
}

pub(crate) fn build(
    source: Source,
    file_name: &str,
    options: &ReadOptions,
) -> Result<Bom, BomError> {
    let grid = &source.grid;
    if grid.len() == 0 {
        return Err(BomError::Empty);
    }
    let limits = &options.limits;
    let given = options.profile.as_ref();
    let header = match given {
        Some(p) => grid
            .index_of_line(p.header_row)
            .ok_or_else(|| BomError::InvalidProfile {
                reason: format!("the header row {} is blank or missing", p.header_row),
            })?,
        None => find_header(grid).ok_or(BomError::NoHeader {
            searched: HEADER_SEARCH,
        })?,
    };
    let header_line = grid.line(header);
    let names = header_names(grid, header);

    // Roles per column.
    let roles: Vec<Role> = match given {
        Some(p) => {
            let mut roles = vec![Role::Property; names.len()];
            for ColumnRole { column, role } in &p.columns {
                let at = names
                    .iter()
                    .position(|n| n == column.trim())
                    .or_else(|| {
                        let f = profile::fold(column);
                        names.iter().position(|n| profile::fold(n) == f)
                    })
                    .ok_or_else(|| BomError::MissingColumn {
                        column: column.clone(),
                    })?;
                if let Some(r) = roles.get_mut(at) {
                    *r = *role;
                }
            }
            roles
        }
        None => profile::roles_for(&names),
    };
    let find = |role: Role| roles.iter().position(|r| *r == role);
    let Some(part) = find(Role::PartNumber) else {
        return Err(match given {
            Some(_) => BomError::InvalidProfile {
                reason: "no column has the role part_number".into(),
            },
            None => BomError::NoPartNumberColumn { line: header_line },
        });
    };
    let columns = Columns {
        position: find(Role::Position),
        level: find(Role::Level),
        parent: find(Role::Parent),
        part,
        description: find(Role::Description),
        quantity: find(Role::Quantity),
        unit: find(Role::Unit),
    };
    let hierarchy = match given {
        Some(p) => {
            let (needed, role) = match p.hierarchy {
                Hierarchy::Dotted { separator } => {
                    if separator != '.' && separator != ',' {
                        return Err(BomError::InvalidProfile {
                            reason: "a dotted hierarchy's separator must be `.` or `,`".into(),
                        });
                    }
                    (columns.position, Role::Position)
                }
                Hierarchy::Level { base } => {
                    if base > 1 {
                        return Err(BomError::InvalidProfile {
                            reason: "a level hierarchy's base must be 0 or 1".into(),
                        });
                    }
                    (columns.level, Role::Level)
                }
                Hierarchy::Parent => (columns.parent, Role::Parent),
                Hierarchy::Flat => (Some(0), Role::Property),
            };
            if needed.is_none() {
                return Err(BomError::InvalidProfile {
                    reason: format!(
                        "the hierarchy needs a column with the role {}",
                        role.as_str()
                    ),
                });
            }
            p.hierarchy
        }
        None => detect_hierarchy(grid, header, &columns),
    };

    let profile = ImportProfile {
        format: source.format,
        sheet: source.sheet.clone(),
        header_row: header_line,
        delimiter: source.delimiter,
        encoding: source.encoding,
        columns: names
            .iter()
            .zip(&roles)
            .map(|(n, r)| ColumnRole {
                column: n.clone(),
                role: *r,
            })
            .collect(),
        hierarchy,
    };

    // The rows.
    let name_of = |c: usize| column_name(&names, c);
    let part_name = name_of(columns.part);
    let mut rows: Vec<BomRow> = Vec::new();
    let mut skipped_lines = Vec::new();
    let mut levels: Vec<Option<u32>> = Vec::new();
    let mut parents: Vec<String> = Vec::new();
    let data = header.saturating_add(1)..grid.len();
    if data.len() > limits.max_rows {
        return Err(BomError::TooManyRows {
            limit: limits.max_rows,
        });
    }
    for i in data {
        let line = grid.line(i);
        let part_number = unfloat(grid.cell(i, columns.part)).to_owned();
        let quantity_text = columns.quantity.map_or("", |c| grid.cell(i, c));
        if part_number.is_empty() && quantity_text.is_empty() {
            let filled = grid.row(i).filter(|c| !c.is_empty()).count();
            if filled <= 1 {
                skipped_lines.push(line);
                continue;
            }
        }
        let mut issues = Vec::new();
        if part_number.is_empty() {
            issues.push(issue(
                &part_name,
                Severity::Error,
                "the part number is blank",
            ));
        }
        let quantity = match columns.quantity {
            None => None,
            Some(c) if quantity_text.is_empty() => {
                issues.push(issue(&name_of(c), Severity::Error, "the quantity is blank"));
                None
            }
            Some(c) => {
                let q = parse_quantity(quantity_text);
                if q.is_none() {
                    issues.push(issue(
                        &name_of(c),
                        Severity::Error,
                        "the quantity is not a number",
                    ));
                }
                q
            }
        };
        let text = |c: Option<usize>| {
            c.map(|c| grid.cell(i, c))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let position = columns
            .position
            .map(|c| unfloat(grid.cell(i, c)))
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(c) = columns.level {
            levels.push(parse_level(grid.cell(i, c)));
        }
        if let Some(c) = columns.parent {
            parents.push(part_key(unfloat(grid.cell(i, c))));
        }
        let mut properties = Vec::new();
        for (c, value) in grid.row(i).enumerate() {
            if value.is_empty() {
                continue;
            }
            if roles.get(c).copied().unwrap_or(Role::Property) == Role::Property {
                properties.push((name_of(c), value.to_owned()));
            }
        }
        rows.push(BomRow {
            row: rows.len(),
            line,
            path: String::new(),
            parent_row: None,
            depth: 0,
            position,
            part_number,
            description: text(columns.description),
            quantity,
            unit: text(columns.unit),
            properties,
            issues,
        });
    }

    let max_depth = limits.max_depth;
    match hierarchy {
        Hierarchy::Dotted { separator } => {
            let field = columns.position.map(name_of).unwrap_or_default();
            dotted(&mut rows, separator, max_depth, &field);
        }
        Hierarchy::Level { base } => {
            let field = columns.level.map(name_of).unwrap_or_default();
            by_level(&mut rows, &levels, u32::from(base), max_depth, &field);
        }
        Hierarchy::Parent => {
            let field = columns.parent.map(name_of).unwrap_or_default();
            by_parent(&mut rows, &parents, max_depth, &field);
        }
        Hierarchy::Flat => {
            for (i, row) in rows.iter_mut().enumerate() {
                row.path = i.saturating_add(1).to_string();
            }
        }
    }
    if !matches!(hierarchy, Hierarchy::Dotted { .. }) {
        sibling_paths(&mut rows);
    }
    duplicates(&mut rows, &part_name);

    let root = root_part(grid, header, &rows, hierarchy, file_name, options);
    Ok(Bom {
        profile,
        sheets: source.sheets,
        root,
        rows,
        skipped_lines,
    })
}

/// Dotted item numbers: a row's parent is the row whose item number is its own without the last
/// segment, wherever it is in the file.
fn dotted(rows: &mut [BomRow], separator: char, max_depth: u32, field: &str) {
    // Each row's path, `None` when its place in the tree is unknown.
    let mut paths: Vec<Option<DottedPath>> = Vec::with_capacity(rows.len());
    for row in rows.iter_mut() {
        let parsed = row
            .position
            .as_deref()
            .and_then(|p| DottedPath::parse(p, separator));
        let Some(parsed) = parsed else {
            let message = if row.position.is_none() {
                "no item number: the row's place in the tree is unknown, kept at the top level"
            } else {
                "the item number is not a dotted number: kept at the top level"
            };
            row.issues.push(issue(field, Severity::Error, message));
            row.path = format!("?{}", row.line);
            paths.push(None);
            continue;
        };
        let depth = u32::try_from(parsed.depth).unwrap_or(u32::MAX);
        if depth > max_depth {
            row.issues.push(issue(
                field,
                Severity::Error,
                format!("nested deeper than {max_depth} levels: kept at the top level"),
            ));
            row.path = format!("?{}", row.line);
            paths.push(None);
            continue;
        }
        row.depth = depth;
        paths.push(Some(parsed));
    }
    // The first row of each path.
    let mut by_path: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    for (i, path) in paths.iter().enumerate() {
        let Some(path) = path else { continue };
        match by_path.entry(path.path.as_str()) {
            Entry::Occupied(first) => {
                let first_line = rows.get(*first.get()).map_or(0, |r| r.line);
                if let Some(row) = rows.get_mut(i) {
                    row.issues.push(issue(
                        field,
                        Severity::Error,
                        format!("the item number {} is also on line {first_line}", path.path),
                    ));
                }
            }
            Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    for (i, (row, path)) in rows.iter_mut().zip(&paths).enumerate() {
        let Some(parent_path) = path.as_ref().and_then(DottedPath::parent) else {
            continue;
        };
        match by_path.get(parent_path) {
            Some(&p) if p != i => row.parent_row = Some(p),
            _ => {
                row.issues.push(issue(
                    field,
                    Severity::Error,
                    format!("its parent item {parent_path} is missing"),
                ));
            }
        }
    }
    drop(by_path);
    for (row, path) in rows.iter_mut().zip(paths) {
        if let Some(path) = path {
            row.path = path.path;
        }
    }
}

/// A level column: a row's parent is the closest row above with the level one less.
fn by_level(rows: &mut [BomRow], levels: &[Option<u32>], base: u32, max_depth: u32, field: &str) {
    // The open ancestors by depth; `None` where a level was skipped.
    let mut stack: Vec<Option<usize>> = Vec::new();
    for (row, level) in rows.iter_mut().zip(levels) {
        let Some(level) = *level else {
            row.issues.push(issue(
                field,
                Severity::Error,
                "the level is not a number: kept at the top level",
            ));
            continue;
        };
        let Some(depth) = level.checked_sub(base) else {
            row.issues.push(issue(
                field,
                Severity::Error,
                format!("the level is below the top level {base}: kept at the top level"),
            ));
            continue;
        };
        if depth > max_depth {
            row.issues.push(issue(
                field,
                Severity::Error,
                format!("nested deeper than {max_depth} levels: kept at the top level"),
            ));
            continue;
        }
        let d = usize::try_from(depth).unwrap_or(usize::MAX);
        row.depth = depth;
        if d > 0 {
            let direct = stack.get(d.saturating_sub(1)).copied().flatten();
            match direct {
                Some(p) => row.parent_row = Some(p),
                None => {
                    let nearest = stack
                        .get(..d.min(stack.len()))
                        .and_then(|s| s.iter().rev().find_map(|p| *p));
                    row.parent_row = nearest;
                    row.issues.push(issue(
                        field,
                        Severity::Error,
                        format!(
                            "its parent is missing: the level jumps to {level} with no row of level {} above",
                            level.saturating_sub(1)
                        ),
                    ));
                }
            }
        }
        stack.truncate(d);
        while stack.len() < d {
            stack.push(None);
        }
        stack.push(Some(row.row));
    }
}

/// A parent-code column: a row's parent is the closest row above whose part number is the code.
fn by_parent(rows: &mut [BomRow], parents: &[String], max_depth: u32, field: &str) {
    let mut last_seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut depths: Vec<u32> = Vec::with_capacity(rows.len());
    for (i, parent) in parents.iter().enumerate() {
        let mut depth = 0;
        if let Some(row) = rows.get_mut(i) {
            if !parent.is_empty() {
                match last_seen.get(parent) {
                    Some(&p) => {
                        let d = depths.get(p).copied().unwrap_or(0).saturating_add(1);
                        if d > max_depth {
                            row.issues.push(issue(
                                field,
                                Severity::Error,
                                format!(
                                    "nested deeper than {max_depth} levels: kept at the top level"
                                ),
                            ));
                        } else {
                            row.parent_row = Some(p);
                            depth = d;
                        }
                    }
                    None => row.issues.push(issue(
                        field,
                        Severity::Error,
                        format!("its parent {parent} is not on any row above"),
                    )),
                }
            }
            row.depth = depth;
            if !row.part_number.is_empty() {
                last_seen.insert(part_key(&row.part_number), i);
            }
        }
        depths.push(depth);
    }
}

/// Paths from 1-based sibling order, for hierarchies without item numbers. Rows are in file
/// order and a parent is always above its children here.
fn sibling_paths(rows: &mut [BomRow]) {
    let mut counts: Vec<usize> = vec![0; rows.len()];
    let mut top = 0usize;
    for i in 0..rows.len() {
        let parent = rows.get(i).and_then(|r| r.parent_row);
        let prefix = match parent {
            Some(p) if p < i => {
                let n = counts.get_mut(p).map(|c| {
                    *c = c.saturating_add(1);
                    *c
                });
                rows.get(p)
                    .map(|r| format!("{}.{}", r.path, n.unwrap_or(0)))
            }
            _ => None,
        };
        let path = prefix.unwrap_or_else(|| {
            top = top.saturating_add(1);
            top.to_string()
        });
        if let Some(row) = rows.get_mut(i) {
            row.path = path;
        }
    }
}

/// The same part twice under one parent: an error when the rows are alike, a warning when a
/// property tells them apart (SOLIDWORKS lists one part per cut length).
fn duplicates(rows: &mut [BomRow], field: &str) {
    let mut first: HashMap<(Option<usize>, String), usize> = HashMap::with_capacity(rows.len());
    let mut found: Vec<(usize, usize)> = Vec::new();
    for row in rows.iter() {
        if row.part_number.is_empty() {
            continue;
        }
        match first.entry((row.parent_row, part_key(&row.part_number))) {
            Entry::Occupied(o) => found.push((row.row, *o.get())),
            Entry::Vacant(v) => {
                v.insert(row.row);
            }
        }
    }
    for (dup, orig) in found {
        let (Some(o), Some(d)) = (rows.get(orig), rows.get(dup)) else {
            continue;
        };
        let differing: Vec<&str> = d
            .properties
            .iter()
            .filter(|(n, v)| o.property(n) != Some(v.as_str()))
            .chain(o.properties.iter().filter(|(n, _)| d.property(n).is_none()))
            .map(|(n, _)| n.as_str())
            .collect();
        let line = o.line;
        let new = if differing.is_empty() {
            issue(
                field,
                Severity::Error,
                format!("the same part is already on line {line} under the same parent"),
            )
        } else {
            let mut names = differing;
            names.dedup();
            issue(
                field,
                Severity::Warning,
                format!(
                    "the same part is also on line {line} under the same parent, with a different {}",
                    names.join(", ")
                ),
            )
        };
        if let Some(d) = rows.get_mut(dup) {
            d.issues.push(new);
        }
    }
}

/// The assembly's part number: the option, else the file's single top-level row (level and
/// parent hierarchies), else the file name's stem before `_`, else a lone part number in the
/// first title row.
fn root_part(
    grid: &Grid,
    header: usize,
    rows: &[BomRow],
    hierarchy: Hierarchy,
    file_name: &str,
    options: &ReadOptions,
) -> Option<RootPart> {
    if let Some(p) = options.root_part.as_deref().map(str::trim)
        && !p.is_empty()
    {
        return Some(RootPart {
            part_number: p.to_owned(),
            source: RootSource::Option,
            row: rows
                .iter()
                .position(|r| part_key(&r.part_number) == part_key(p)),
        });
    }
    if matches!(hierarchy, Hierarchy::Level { .. } | Hierarchy::Parent) {
        let mut tops = rows.iter().filter(|r| r.parent_row.is_none());
        if let (Some(first), None) = (tops.next(), tops.next())
            && first.row == 0
            && rows.len() > 1
            && !first.part_number.is_empty()
        {
            return Some(RootPart {
                part_number: first.part_number.clone(),
                source: RootSource::Row,
                row: Some(0),
            });
        }
    }
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    if let Some((before, _)) = stem.split_once('_')
        && looks_like_part(before)
    {
        return Some(RootPart {
            part_number: before.to_owned(),
            source: RootSource::FileName,
            row: None,
        });
    }
    if header > 0 {
        let mut cells = grid.row(0).filter(|c| !c.is_empty());
        if let (Some(only), None) = (cells.next(), cells.next())
            && looks_like_part(only)
        {
            return Some(RootPart {
                part_number: only.to_owned(),
                source: RootSource::TitleRow,
                row: None,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let q = |s: &str| parse_quantity(s).map(|d| d.normalize().to_string());
        assert_eq!(q("8"), Some("8".into()));
        assert_eq!(q("8.0"), Some("8".into()));
        assert_eq!(q(" 1,5 "), Some("1.5".into()));
        assert_eq!(q("1.234,5"), Some("1234.5".into()));
        assert_eq!(q("1,234.5"), Some("1234.5".into()));
        assert_eq!(q("1,000,000"), Some("1000000".into()));
        assert_eq!(q("'2"), Some("2".into()));
        assert_eq!(q("2.5E1"), Some("25".into()));
        assert_eq!(q("-1"), Some("-1".into()));
        assert_eq!(q("eight"), None);
        assert_eq!(q(""), None);
        assert_eq!(q(&"9".repeat(100)), None);
    }

    #[test]
    fn floats_back_to_whole_numbers() {
        assert_eq!(unfloat("545636.0"), "545636");
        assert_eq!(unfloat("2.00"), "2");
        assert_eq!(unfloat("2.10"), "2.10");
        assert_eq!(unfloat(".0"), ".0");
        assert_eq!(unfloat("A.0"), "A.0");
    }

    #[test]
    fn dotted_paths() {
        let path = |s: &str, sep: char| {
            DottedPath::parse(s, sep)
                .map(|p| (p.path.clone(), p.depth, p.parent().map(str::to_owned)))
        };
        assert_eq!(
            path("2.17.1", '.'),
            Some(("2.17.1".into(), 2, Some("2.17".into())))
        );
        assert_eq!(
            path("02 . 010", '.'),
            Some(("2.10".into(), 1, Some("2".into())))
        );
        assert_eq!(path("1,1", ','), Some(("1.1".into(), 1, Some("1".into()))));
        // With `,` as the separator a segment may hold a `.`: the parent is the segments before.
        assert_eq!(
            path("1,2.5", ','),
            Some(("1.2.5".into(), 1, Some("1".into())))
        );
        assert_eq!(path("1..2", '.'), None);
        assert_eq!(path("1.", '.'), None);
        assert_eq!(path("0", '.'), Some(("0".into(), 0, None)));
        assert_eq!(path("A.b", '.'), Some(("A.b".into(), 1, Some("A".into()))));
    }
}
