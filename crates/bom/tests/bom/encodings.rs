//! Encodings and delimiters on small in-test files: what Excel, SOLIDWORKS and ERPs write.

use lockstep_bom::{Encoding, Format, ReadOptions, detect_format, read};

use crate::{dec, read_csv};

const SAMPLE: &str =
    "ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\r\n1,2,ELBOW 90° Ø25,P-1\r\n1.1,0.25,PIPE,P-2\r\n";

fn check_sample(bom: &lockstep_bom::Bom) {
    assert_eq!(bom.rows.len(), 2);
    assert_eq!(bom.rows[0].description.as_deref(), Some("ELBOW 90° Ø25"));
    assert_eq!(bom.rows[0].part_number, "P-1");
    assert_eq!(bom.rows[1].parent_row, Some(0));
    assert_eq!(bom.rows[1].quantity, Some(dec("0.25")));
}

#[test]
fn utf8_with_and_without_byte_order_mark() {
    let plain = read_csv(SAMPLE.as_bytes());
    check_sample(&plain);
    assert_eq!(plain.profile.encoding, Some(Encoding::Utf8));

    let mut with_mark = vec![0xEF, 0xBB, 0xBF];
    with_mark.extend_from_slice(SAMPLE.as_bytes());
    let bom = read_csv(&with_mark);
    check_sample(&bom);
    assert_eq!(bom.profile.encoding, Some(Encoding::Utf8));
    // The mark is not part of the first header name.
    assert_eq!(bom.profile.columns[0].column, "ITEM NO.");
}

#[test]
fn utf16_with_byte_order_marks() {
    let mut le = vec![0xFF, 0xFE];
    let mut be = vec![0xFE, 0xFF];
    for unit in SAMPLE.encode_utf16() {
        le.extend_from_slice(&unit.to_le_bytes());
        be.extend_from_slice(&unit.to_be_bytes());
    }
    let bom = read_csv(&le);
    check_sample(&bom);
    assert_eq!(bom.profile.encoding, Some(Encoding::Utf16Le));
    let bom = read_csv(&be);
    check_sample(&bom);
    assert_eq!(bom.profile.encoding, Some(Encoding::Utf16Be));
}

#[test]
fn windows_1252_when_not_utf8() {
    // `°` is 0xB0 and `Ø` 0xD8 in Windows-1252: not valid UTF-8.
    let bytes: Vec<u8> = SAMPLE
        .chars()
        .map(|c| match c {
            '°' => 0xB0,
            'Ø' => 0xD8,
            c => u8::try_from(c).unwrap(),
        })
        .collect();
    assert!(std::str::from_utf8(&bytes).is_err());
    let bom = read_csv(&bytes);
    check_sample(&bom);
    assert_eq!(bom.profile.encoding, Some(Encoding::Windows1252));
}

#[test]
fn semicolons_with_decimal_commas() {
    let text = "Pos;Menge;Bezeichnung;Sachnummer;Einheit\n1;1,5;Blech;S-1;kg\n2;8;Schraube;S-2;Stk\n2.1;0,25;Scheibe;S-3;Stk\n";
    let bom = read_csv(text.as_bytes());
    assert_eq!(bom.profile.delimiter, Some(';'));
    assert_eq!(bom.rows.len(), 3);
    assert_eq!(bom.rows[0].quantity, Some(dec("1.5")));
    assert_eq!(bom.rows[0].unit.as_deref(), Some("kg"));
    assert_eq!(bom.rows[0].description.as_deref(), Some("Blech"));
    assert_eq!(bom.rows[2].quantity, Some(dec("0.25")));
    assert_eq!(bom.rows[2].parent_row, Some(1));
}

#[test]
fn tabs() {
    let text = "Level\tPart Number\tDescription\tQuantity\tUnit\n0\tA-1\tAssembly, top\t1\tEA\n1\tB-1\tPlate\t8.0\tEA\n";
    let bom = read_csv(text.as_bytes());
    assert_eq!(bom.profile.delimiter, Some('\t'));
    // A comma inside a cell is not a delimiter here.
    assert_eq!(bom.rows[0].description.as_deref(), Some("Assembly, top"));
    // 8.0 and 8 are the same quantity.
    assert_eq!(bom.rows[1].quantity, Some(dec("8")));
    assert_eq!(bom.rows[1].parent_row, Some(0));
}

#[test]
fn quoted_cells_with_delimiters_and_newlines() {
    let text = "ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\n1,1,\"ELBOW 1.0\"\" SR, 90\",P-1\n2,1,\"two\nlines\",P-2\n3,1,x,P-3\n";
    let bom = read_csv(text.as_bytes());
    assert_eq!(
        bom.rows[0].description.as_deref(),
        Some("ELBOW 1.0\" SR, 90")
    );
    assert_eq!(bom.rows[1].description.as_deref(), Some("two\nlines"));
    // Line numbers are where each record starts in the file.
    assert_eq!(
        bom.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        [2, 3, 5]
    );
}

#[test]
fn format_from_the_name_else_the_magic_bytes() {
    assert_eq!(detect_format(b"a,b", "bom.CSV"), Format::Csv);
    assert_eq!(detect_format(b"", "bom.xlsx"), Format::Xlsx);
    assert_eq!(detect_format(b"", "bom.xls"), Format::Xls);
    assert_eq!(detect_format(b"PK\x03\x04", "upload"), Format::Xlsx);
    assert_eq!(
        detect_format(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1], "upload.bin"),
        Format::Xls
    );
    assert_eq!(detect_format(b"ITEM NO.,QTY.", "upload"), Format::Csv);
    // A real XLSX without an extension reads as one.
    let bytes = std::fs::read(crate::testdata().join("solidworks/JZ099238_sw.xlsx")).unwrap();
    let bom = read(&bytes, "upload", &ReadOptions::default()).unwrap();
    assert_eq!(bom.profile.format, Format::Xlsx);
    assert_eq!(bom.rows.len(), 18);
}

#[test]
fn line_endings_lf_crlf_and_lone_cr() {
    for eol in ["\n", "\r\n", "\r"] {
        let text = ["title", "ITEM NO.,QTY.,PART NUMBER", "1,1,A", "1.1,2,B"].join(eol);
        let bom = read_csv(text.as_bytes());
        assert_eq!(bom.profile.header_row, 2, "{eol:?}");
        assert_eq!(
            bom.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [3, 4],
            "{eol:?}"
        );
        assert_eq!(bom.rows[1].parent_row, Some(0));
    }
}
