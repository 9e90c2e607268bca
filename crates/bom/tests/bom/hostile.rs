//! Hostile input: zip bombs, huge rows, huge cells, absurd nesting and random bytes end in a
//! clear error or a bounded result, never a panic, a hang or exhausted memory.

use std::io::{Cursor, Write};

use lockstep_bom::{BomError, Limits, ReadOptions, children_of, parts, read, tree};
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

/// A minimal workbook around one worksheet's `<sheetData>` content (inline strings).
fn xlsx_with(sheet_data: &str, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let files: [(&str, String); 5] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.into(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.into(),
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="BOM" sheetId="1" r:id="rId1"/></sheets></workbook>"#.into(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.into(),
        ),
        (
            "xl/worksheets/sheet1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{sheet_data}</sheetData></worksheet>"#
            ),
        ),
    ];
    for (name, content) in &files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    for (name, content) in extra {
        zip.start_file(*name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn inline(cell: &str, text: &str) -> String {
    format!(r#"<c r="{cell}" t="inlineStr"><is><t>{text}</t></is></c>"#)
}

const HEADER_ROW: &str = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>ITEM NO.</t></is></c><c r="B1" t="inlineStr"><is><t>QTY.</t></is></c><c r="C1" t="inlineStr"><is><t>PART NUMBER</t></is></c></row>"#;

fn small_limits() -> ReadOptions {
    ReadOptions {
        limits: Limits {
            max_uncompressed_bytes: 1024 * 1024,
            ..Limits::default()
        },
        ..ReadOptions::default()
    }
}

#[test]
fn a_minimal_workbook_reads() {
    let data = format!(
        r#"{HEADER_ROW}<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>8</v></c>{}</row>"#,
        inline("C2", "P-1")
    );
    let bom = read(&xlsx_with(&data, &[]), "made.xlsx", &ReadOptions::default()).unwrap();
    assert_eq!(bom.sheets, ["BOM"]);
    assert_eq!(bom.rows.len(), 1);
    assert_eq!(bom.rows[0].part_number, "P-1");
}

#[test]
fn zip_bomb_is_refused_before_it_is_inflated() {
    // 8 MiB of zeros deflates to a few KiB; the limit is 1 MiB.
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let bomb = xlsx_with(HEADER_ROW, &[("xl/media/bomb.bin", &zeros)]);
    assert!(bomb.len() < 64 * 1024);
    let err = read(&bomb, "bomb.xlsx", &small_limits()).unwrap_err();
    assert!(
        matches!(err, BomError::TooLarge { limit: 1_048_576 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the workbook inflates to more than 1048576 bytes"
    );
}

/// Sets every declared uncompressed size of entry `name` (local header and central directory).
fn patch_declared_size(zip: &mut [u8], name: &str, size: u32) {
    let name = name.as_bytes();
    let mut i = 0;
    while i + 4 <= zip.len() {
        let sig = &zip[i..i + 4];
        let (size_at, name_len_at, name_at) = if sig == b"PK\x03\x04" {
            (i + 22, i + 26, i + 30)
        } else if sig == b"PK\x01\x02" {
            (i + 24, i + 28, i + 46)
        } else {
            i += 1;
            continue;
        };
        let len = usize::from(u16::from_le_bytes([zip[name_len_at], zip[name_len_at + 1]]));
        if zip.get(name_at..name_at + len) == Some(name) {
            zip[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
        }
        i += 4;
    }
}

#[test]
fn a_declared_size_over_the_limit_is_refused_unread() {
    let mut zip = xlsx_with(HEADER_ROW, &[("xl/media/big.bin", b"small")]);
    patch_declared_size(&mut zip, "xl/media/big.bin", 3_000_000_000);
    let err = read(&zip, "big.xlsx", &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, BomError::TooLarge { .. }), "{err}");
}

#[test]
fn a_declared_size_that_lies_is_caught_while_inflating() {
    let zeros = vec![0u8; 8 * 1024 * 1024];
    let mut zip = xlsx_with(HEADER_ROW, &[("xl/media/liar.bin", &zeros)]);
    patch_declared_size(&mut zip, "xl/media/liar.bin", 10);
    let err = read(&zip, "liar.xlsx", &small_limits()).unwrap_err();
    assert!(
        matches!(err, BomError::TooLarge { .. } | BomError::Unreadable { .. }),
        "{err}"
    );
}

#[test]
fn a_cell_at_the_far_corner_of_a_sheet_costs_nothing() {
    // Calamine's dense ranges would allocate 16384 × 1048576 cells for this; the sheet is
    // streamed instead. A blank far cell is ignored, a filled one is past the column limit.
    let blank_far = format!(
        r#"{HEADER_ROW}<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>1</v></c>{}</row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t></t></is></c></row>"#,
        inline("C2", "P-1")
    );
    let bom = read(
        &xlsx_with(&blank_far, &[]),
        "far.xlsx",
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(bom.rows.len(), 1);
    let filled_far = format!(
        r#"{HEADER_ROW}<row r="1048576">{}</row>"#,
        inline("XFD1048576", "x")
    );
    let err = read(
        &xlsx_with(&filled_far, &[]),
        "far.xlsx",
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "line 1048576 has more than 512 columns");
}

#[test]
fn ten_thousand_columns() {
    let mut wide = String::from("ITEM NO.,QTY.,PART NUMBER");
    for i in 0..10_000 {
        wide.push_str(&format!(",C{i}"));
    }
    wide.push_str("\n1,1,P-1\n");
    let err = read(wide.as_bytes(), "wide.csv", &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            BomError::TooManyColumns {
                line: 1,
                limit: 512
            }
        ),
        "{err}"
    );
    // Trailing blank cells past the limit are harmless.
    let mut padded = String::from("ITEM NO.,QTY.,PART NUMBER");
    padded.push_str(&",".repeat(10_000));
    padded.push_str("\n1,1,P-1\n");
    let bom = read(padded.as_bytes(), "padded.csv", &ReadOptions::default()).unwrap();
    assert_eq!(bom.rows.len(), 1);
    assert_eq!(bom.profile.columns.len(), 3);
}

#[test]
fn a_one_mebibyte_cell() {
    let secret = "S".repeat(1024 * 1024);
    let text = format!("ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\n1,1,{secret},P-1\n");
    let err = read(text.as_bytes(), "big.csv", &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            BomError::CellTooLarge {
                line: 2,
                column: 3,
                limit: 32_768
            }
        ),
        "{err}"
    );
    // The message names where, never what.
    let message = err.to_string();
    assert_eq!(
        message,
        "the cell in column 3 of line 2 is larger than 32768 bytes"
    );
    assert!(!message.contains("SSS"));
}

#[test]
fn too_many_rows() {
    let options = ReadOptions {
        limits: Limits {
            max_rows: 100,
            ..Limits::default()
        },
        ..ReadOptions::default()
    };
    let mut text = String::from("ITEM NO.,QTY.,PART NUMBER\n");
    for i in 1..=101 {
        text.push_str(&format!("{i},1,P-{i}\n"));
    }
    let err = read(text.as_bytes(), "long.csv", &options).unwrap_err();
    assert!(matches!(err, BomError::TooManyRows { limit: 100 }), "{err}");
}

#[test]
fn a_dotted_path_ten_thousand_deep() {
    let deep = vec!["1"; 10_000].join(".");
    let text = format!("ITEM NO.,QTY.,PART NUMBER\n1,1,TOP\n{deep},1,DEEP\n2,1,NEXT\n");
    let bom = read(text.as_bytes(), "deep.csv", &ReadOptions::default()).unwrap();
    let row = &bom.rows[1];
    assert!(row.has_errors());
    assert_eq!(
        row.issues[0].message,
        "nested deeper than 64 levels: kept at the top level"
    );
    assert_eq!((row.parent_row, row.depth), (None, 0));
    assert_eq!(bom.rows[2].path, "2");
    // Its total cannot be computed; the others can.
    assert_eq!(parts(&bom).len(), 2);
}

#[test]
fn ten_thousand_levels() {
    let mut text = String::from("Level,Part Number,Qty\n");
    for level in 0..10_000 {
        text.push_str(&format!("{level},P-{level},2\n"));
    }
    let bom = read(text.as_bytes(), "levels.csv", &ReadOptions::default()).unwrap();
    assert_eq!(bom.rows.len(), 10_000);
    assert!(bom.rows.iter().all(|r| r.depth <= 64));
    assert!(bom.rows[64].issues.is_empty());
    assert!(bom.rows[65].has_errors());
    // The tree and the totals stay bounded.
    let nodes = tree(&bom, None);
    assert_eq!(nodes.len(), 1 + (10_000 - 65));
    assert_eq!(children_of(&bom, 63), [64]);
    let totals = parts(&bom);
    // P-0..P-64: 2, 4, … 2^65 overflows nothing (decimal holds 2^96).
    assert_eq!(totals.len(), 65);
    assert_eq!(totals[10].quantity, lockstep_bom::Decimal::from(2048));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        name in prop::sample::select(vec!["x.csv", "x.xlsx", "x.xls", "upload"]),
    ) {
        let _ = read(&bytes, name, &ReadOptions::default());
    }

    #[test]
    fn random_text_never_panics(text in "[0-9a-zA-Z.,;\t\"' \n\r-]{0,400}") {
        let header = format!("ITEM NO.,Level,QTY.,PART NUMBER,CODIGO_PAI\n{text}");
        if let Ok(bom) = read(header.as_bytes(), "x.csv", &ReadOptions::default()) {
            let _ = parts(&bom);
            let _ = tree(&bom, None);
        }
    }

    #[test]
    fn a_damaged_real_workbook_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = std::fs::read(crate::testdata().join("solidworks/JZ099238_sw.xlsx")).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = read(&bytes, "x.xlsx", &ReadOptions::default());
    }
}

/// A BIFF8 record.
fn record(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut out = typ.to_le_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// An Excel 97 file with one sheet whose records follow its BOF.
fn xls_with(sheet_records: &[Vec<u8>]) -> Vec<u8> {
    let bof = |kind: u16| {
        let mut d = vec![0x00, 0x06];
        d.extend_from_slice(&kind.to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        record(0x0809, &d)
    };
    let globals_len = bof(0x0005).len() + record(0x0085, &[0; 9]).len() + record(0x000A, &[]).len();
    let mut boundsheet = u32::try_from(globals_len).unwrap().to_le_bytes().to_vec();
    boundsheet.extend_from_slice(&[0, 0, 1, 0, b'S']);
    let mut stream = bof(0x0005);
    stream.extend(record(0x0085, &boundsheet));
    stream.extend(record(0x000A, &[]));
    stream.extend(bof(0x0010));
    for r in sheet_records {
        stream.extend_from_slice(r);
    }
    stream.extend(record(0x000A, &[]));
    let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
    file.create_stream("/Workbook")
        .unwrap()
        .write_all(&stream)
        .unwrap();
    file.flush().unwrap();
    file.into_inner().into_inner()
}

/// A Number cell.
fn number(row: u16, col: u16, value: f64) -> Vec<u8> {
    let mut d = row.to_le_bytes().to_vec();
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&value.to_le_bytes());
    record(0x0203, &d)
}

/// A Label cell (BIFF8, 8-bit characters).
fn label(row: u16, col: u16, text: &str) -> Vec<u8> {
    let mut d = row.to_le_bytes().to_vec();
    d.extend_from_slice(&col.to_le_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
    d.push(0);
    d.extend_from_slice(text.as_bytes());
    record(0x0204, &d)
}

#[test]
fn an_xls_whose_allocation_table_lists_a_sector_cut_short_reads() {
    // Found by the `bom` fuzz target. The header's list of allocation-table sectors names the
    // last sector (the mini stream's) after a free slot, and the file ends 10 bytes early, in the
    // middle of a 4-byte entry. The cfb crate stops the list at the free slot; calamine read on,
    // took the short sector as part of the table and panicked on its odd length. Calamine now
    // gets the workbook stream, read by the cfb crate, in a fresh container.
    let mut xls = xls_with(&[
        label(0, 0, "ITEM NO."),
        label(0, 1, "PART NUMBER"),
        label(0, 2, "QTY."),
        number(1, 0, 1.0),
        label(1, 1, "P-1"),
        number(1, 2, 2.0),
    ]);
    // Version 4, 4096-byte sectors: the header, then sectors 0-3 (allocation table, directory,
    // mini table, mini stream).
    assert_eq!(xls.len(), 5 * 4096);
    let last_sector = 3u32;
    assert_eq!(xls[80..84], [0xFF; 4], "slot 1 is free");
    xls[84..88].copy_from_slice(&last_sector.to_le_bytes());
    xls.truncate(xls.len() - 10);
    let bom = read(&xls, "cut.xls", &ReadOptions::default()).unwrap();
    assert_eq!(bom.rows.len(), 1);
    assert_eq!(bom.rows[0].part_number, "P-1");
    assert_eq!(bom.rows[0].quantity, Some(lockstep_bom::Decimal::from(2)));
}

#[test]
fn an_xls_declaring_billions_of_rows_is_refused_before_calamine_reserves_them() {
    let mut dims = 0u32.to_le_bytes().to_vec();
    dims.extend_from_slice(&4_000_000_000u32.to_le_bytes());
    dims.extend_from_slice(&0u16.to_le_bytes());
    dims.extend_from_slice(&255u16.to_le_bytes());
    dims.extend_from_slice(&[0, 0]);
    let xls = xls_with(&[record(0x0200, &dims), number(0, 0, 1.0)]);
    assert!(xls.len() < 64 * 1024);
    let err = read(&xls, "dims.xls", &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, BomError::TooManyCells { .. }), "{err}");
}

#[test]
fn an_xls_with_cells_at_opposite_corners_is_refused() {
    let xls = xls_with(&[number(0, 0, 1.0), number(65_535, 255, 2.0)]);
    let err = read(&xls, "corners.xls", &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(err, BomError::TooManyCells { limit: 4_000_000 }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the workbook's sheets span more than 4000000 cells"
    );
}

#[test]
fn a_sheet_pointing_outside_the_workbook_is_an_error() {
    let mut xls_bytes = xls_with(&[number(0, 0, 1.0)]);
    // Not a valid compound file any more once truncated.
    xls_bytes.truncate(700);
    assert!(read(&xls_bytes, "cut.xls", &ReadOptions::default()).is_err());
}

#[test]
fn shared_strings_declaring_a_trillion_entries_are_refused() {
    // Calamine reserves room for `uniqueCount` strings up front: from a 1 KiB file, terabytes.
    let sst = br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1000000000000"><si><t>P-1</t></si></sst>"#;
    let data = format!(
        r#"{HEADER_ROW}<row r="2"><c r="A2"><v>1</v></c><c r="B2"><v>1</v></c><c r="C2" t="s"><v>0</v></c></row>"#
    );
    let xlsx = xlsx_with(&data, &[("xl/sharedStrings.xml", sst)]);
    let err = read(&xlsx, "sst.xlsx", &ReadOptions::default()).unwrap_err();
    assert!(matches!(err, BomError::Unreadable { .. }), "{err}");
    // An honest count reads.
    let honest = br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>P-1</t></si></sst>"#;
    let xlsx = xlsx_with(&data, &[("xl/sharedStrings.xml", honest)]);
    let bom = read(&xlsx, "sst.xlsx", &ReadOptions::default()).unwrap();
    assert_eq!(bom.rows[0].part_number, "P-1");
}
