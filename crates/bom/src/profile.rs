//! The import profile: how one BOM export's columns map to roles, detected from the file or
//! given back corrected by an Administrator, and the column names we recognise.

use serde::{Deserialize, Serialize};

/// The file format a BOM was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Delimited text (`,`, `;` or tab).
    Csv,
    /// Office Open XML workbook.
    Xlsx,
    /// Excel 97–2003 workbook.
    Xls,
}

/// The text encoding of a CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8, with or without a byte-order mark.
    Utf8,
    /// UTF-16 little-endian (with a byte-order mark).
    Utf16Le,
    /// UTF-16 big-endian (with a byte-order mark).
    Utf16Be,
    /// Windows-1252, what Excel and SOLIDWORKS write on western Windows.
    Windows1252,
}

impl Encoding {
    pub(crate) fn encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Self::Utf8 => encoding_rs::UTF_8,
            Self::Utf16Le => encoding_rs::UTF_16LE,
            Self::Utf16Be => encoding_rs::UTF_16BE,
            Self::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The item number (`ITEM NO.`, `Pos`, `Find Num`), dotted in indented BOMs (`2.17.1`).
    Position,
    /// The level of the row in the tree (`Level`, `NIVEL`).
    Level,
    /// The part number of the row's parent (`CODIGO_PAI`, `Parent`).
    Parent,
    /// The part number (`PART NUMBER`, SyteLine's `Item`, `CODIGO`).
    PartNumber,
    /// The description.
    Description,
    /// The quantity per parent (`QTY.`, `Qty Per`, `QTD_NIVEL`).
    Quantity,
    /// The unit of measure (`U/M`, `UNIDADE`).
    Unit,
    /// Anything else, kept as a named property.
    Property,
}

impl Role {
    /// The role's name as used in row issues when no column names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Position => "position",
            Self::Level => "level",
            Self::Parent => "parent",
            Self::PartNumber => "part_number",
            Self::Description => "description",
            Self::Quantity => "quantity",
            Self::Unit => "unit",
            Self::Property => "property",
        }
    }
}

/// One column of the header and the role it plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnRole {
    /// The column's name as the header row spells it, trimmed. An empty header cell is named
    /// `Column N` (1-based); a repeated name gets ` (2)`, ` (3)`… appended.
    pub column: String,
    /// What the column holds.
    pub role: Role,
}

/// How the rows form a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Hierarchy {
    /// Dotted item numbers (`2.17.1` is a child of `2.17`), any depth.
    Dotted {
        /// `.` or `,`.
        separator: char,
    },
    /// A level column; `base` is the level of a top-level row (0 or 1).
    Level {
        /// The level of a top-level row.
        base: u8,
    },
    /// A parent part-number column: a row's parent is the closest row above with that part number.
    Parent,
    /// No hierarchy: every row is top level.
    Flat,
}

/// How a BOM export is read: detected by [`crate::read`], shown to an Administrator, corrected and
/// saved, then handed back in [`crate::ReadOptions::profile`] to read the next file the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProfile {
    /// The file format.
    pub format: Format,
    /// The worksheet (XLSX/XLS); `None` reads the first.
    #[serde(default)]
    pub sheet: Option<String>,
    /// The header's row number in the file, 1-based (what a spreadsheet shows; for CSV the
    /// record number, which is the line number unless a quoted cell above spans lines).
    pub header_row: usize,
    /// The CSV delimiter (`,`, `;` or tab); `None` for workbooks.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// The CSV encoding; `None` for workbooks.
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// Every column of the header with its role. A column of the file that is not listed is kept
    /// as a property.
    pub columns: Vec<ColumnRole>,
    /// How the rows form a tree.
    pub hierarchy: Hierarchy,
}

impl ImportProfile {
    /// The column that plays `role`, if any (the first one).
    pub fn column_for(&self, role: Role) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.role == role)
            .map(|c| c.column.as_str())
    }
}

/// A header name folded for matching: lower case, accents removed, only letters and digits.
pub(crate) fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' | 'å' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
                'a'
            }
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
            'ç' | 'Ç' => 'c',
            'ñ' | 'Ñ' => 'n',
            'ß' => 's',
            c => c,
        };
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The role a folded header name plays on its own, before the ambiguous names are settled.
pub(crate) fn recognise(folded: &str) -> Option<Role> {
    let role = match folded {
        "itemno" | "itemnumber" | "itemnr" | "pos" | "position" | "posnr" | "posicao"
        | "posicion" | "findnum" | "findnumber" | "findno" | "balloon" | "bubbleno" => {
            Role::Position
        }
        "level" | "lvl" | "nivel" | "niveau" | "ebene" | "stufe" | "bomlevel" => Role::Level,
        "codigopai" | "parent" | "parentitem" | "parentpart" | "parentpartnumber" | "parentno"
        | "parentcode" | "pai" => Role::Parent,
        "partnumber"
        | "partno"
        | "partnum"
        | "partnr"
        | "pn"
        | "codigo"
        | "mpn"
        | "manufacturerpartnumber"
        | "mfrpartnumber"
        | "mfrpn"
        | "partnumberpn"
        | "sachnummer"
        | "artikelnummer"
        | "materialnumber"
        | "itemcode"
        | "codigoitem"
        | "numeroparte"
        | "part" => Role::PartNumber,
        "description" | "descricao" | "descripcion" | "desc" | "beschreibung" | "designation"
        | "bezeichnung" | "denominacao" => Role::Description,
        "qty" | "qtyper" | "quantity" | "qtdnivel" | "qnty" | "qtd" | "quantidade" | "cantidad"
        | "menge" | "qte" | "quantite" | "quantityper" => Role::Quantity,
        "um" | "uom" | "unit" | "units" | "unidade" | "unidad" | "einheit" | "unite"
        | "unitofmeasure" | "me" => Role::Unit,
        _ => return None,
    };
    Some(role)
}

/// Roles for a header row: one per column, the ambiguous names settled by what else is there.
///
/// - `Item` is the part number when no other column is (SyteLine's `Item`), else the position.
/// - KiCad's `Reference` is the list of designators, kept as a property; its `Value` is the part
///   number when no other column is one (KiCad groups its rows by value and footprint; the
///   footprint stays a property).
pub(crate) fn roles_for(names: &[String]) -> Vec<Role> {
    let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
    let mut roles: Vec<Option<Role>> = folded.iter().map(|f| recognise(f)).collect();
    let has_part = roles.contains(&Some(Role::PartNumber));
    let kicad = folded.iter().any(|f| f == "footprint" || f == "reference");
    let mut assigned_part = has_part;
    for (role, f) in roles.iter_mut().zip(&folded) {
        if role.is_some() {
            continue;
        }
        if f == "item" {
            if assigned_part {
                *role = Some(Role::Position);
            } else {
                *role = Some(Role::PartNumber);
                assigned_part = true;
            }
        }
    }
    if !assigned_part && kicad {
        for (role, f) in roles.iter_mut().zip(&folded) {
            if role.is_none() && f == "value" {
                *role = Some(Role::PartNumber);
                break;
            }
        }
    }
    // Only the first column of a role plays it; later ones are properties.
    let mut seen: Vec<Role> = Vec::new();
    roles
        .into_iter()
        .map(|r| match r {
            Some(r) if !seen.contains(&r) => {
                seen.push(r);
                r
            }
            _ => Role::Property,
        })
        .collect()
}

/// How many columns of a candidate header row are recognised names.
pub(crate) fn recognised_count(cells: &[&str]) -> usize {
    let mut roles: Vec<Role> = Vec::new();
    let mut item = false;
    for cell in cells {
        let f = fold(cell);
        if let Some(r) = recognise(&f) {
            if !roles.contains(&r) {
                roles.push(r);
            }
        } else if f == "item" || f == "value" || f == "reference" {
            item = true;
        }
    }
    roles.len() + usize::from(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_without_case_accents_punctuation_or_spaces() {
        assert_eq!(fold(" ITEM NO. "), "itemno");
        assert_eq!(fold("Nível"), "nivel");
        assert_eq!(fold("QTD_NIVEL"), "qtdnivel");
        assert_eq!(fold("U/M"), "um");
        assert_eq!(fold("Código"), "codigo");
        assert_eq!(recognise(&fold("DESCRIÇÃO")), Some(Role::Description));
        assert_eq!(recognise(&fold("QTD_TOTAL")), None);
    }

    #[test]
    fn item_is_the_part_number_only_when_nothing_else_is() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            roles_for(&names(&["Level", "Item", "Qty Per"])),
            [Role::Level, Role::PartNumber, Role::Quantity]
        );
        assert_eq!(
            roles_for(&names(&["Item", "Part No.", "Qty"])),
            [Role::Position, Role::PartNumber, Role::Quantity]
        );
        // KiCad: designators are a property, the value the part number.
        assert_eq!(
            roles_for(&names(&["Reference", "Quantity", "Value", "Footprint"])),
            [
                Role::Property,
                Role::Quantity,
                Role::PartNumber,
                Role::Property
            ]
        );
        // A second quantity column is a property.
        assert_eq!(
            roles_for(&names(&["PART NUMBER", "QTY", "Quantity"])),
            [Role::PartNumber, Role::Quantity, Role::Property]
        );
    }
}
