//! The import profile: detected, shown as JSON, corrected by an Administrator, saved and used to
//! read the next file; a profile that does not fit the file is a clear error.

use lockstep_bom::{
    BomError, ColumnRole, Encoding, Hierarchy, ImportProfile, ReadOptions, Role, read,
};

use crate::{dec, read_file, read_file_with, testdata};

#[test]
fn the_detected_profile_round_trips_through_json() {
    let bom = read_file("solidworks/ACV0158450_sw.csv");
    let json = serde_json::to_value(&bom.profile).unwrap();
    assert_eq!(json["format"], "csv");
    assert_eq!(json["header_row"], 2);
    assert_eq!(json["delimiter"], ",");
    assert_eq!(json["encoding"], "windows1252");
    assert_eq!(
        json["hierarchy"],
        serde_json::json!({"kind": "dotted", "separator": "."})
    );
    assert_eq!(
        json["columns"][0],
        serde_json::json!({"column": "ITEM NO.", "role": "position"})
    );
    let back: ImportProfile = serde_json::from_value(json).unwrap();
    assert_eq!(back, bom.profile);

    // Read again with the saved profile: the same BOM.
    let again = read_file_with(
        "solidworks/ACV0158450_sw.csv",
        &ReadOptions {
            profile: Some(back),
            ..ReadOptions::default()
        },
    );
    assert_eq!(again.rows, bom.rows);

    let level: Hierarchy = serde_json::from_str(r#"{"kind":"level","base":1}"#).unwrap();
    assert_eq!(level, Hierarchy::Level { base: 1 });
    // A Bom is JSON too, quantities as exact decimal strings.
    let row = serde_json::to_value(&bom.rows[0]).unwrap();
    assert_eq!(row["quantity"], "1");
}

#[test]
fn a_corrected_profile_is_used_instead_of_detection() {
    // On CNC-Mill's "Have" sheet the part numbers are mostly blank; the Administrator decides
    // the part name is the part number there and the number a property.
    let detected = read_file_with(
        "solidworks/CNC-Mill_BOM.xls",
        &ReadOptions {
            sheet: Some("Have".into()),
            ..ReadOptions::default()
        },
    );
    let mut profile = detected.profile.clone();
    for c in &mut profile.columns {
        c.role = match c.column.as_str() {
            "Part Name" => Role::PartNumber,
            "Part Number" => Role::Property,
            _ => c.role,
        };
    }
    let bom = read_file_with(
        "solidworks/CNC-Mill_BOM.xls",
        &ReadOptions {
            profile: Some(profile),
            ..ReadOptions::default()
        },
    );
    // The sheet comes from the profile.
    assert_eq!(bom.profile.sheet.as_deref(), Some("Have"));
    assert_eq!(bom.rows.len(), 11);
    assert!(bom.rows.iter().all(|r| r.issues.is_empty()));
    assert_eq!(bom.rows[0].part_number, "8mm 150mm rod");
    assert_eq!(bom.rows[0].property("Part Number"), Some("634308"));
    assert_eq!(bom.rows[5].quantity, Some(dec("16")));
}

#[test]
fn a_profile_forces_encoding_delimiter_and_header() {
    // Latin-1 text that happens to be valid UTF-8 would be misread; the profile says 1252.
    let bytes = b"title\nPart;Qty;Desc\nA;1,5;caf\xc3\xa9\n";
    let profile = ImportProfile {
        format: lockstep_bom::Format::Csv,
        sheet: None,
        header_row: 2,
        delimiter: Some(';'),
        encoding: Some(Encoding::Windows1252),
        columns: vec![
            ColumnRole {
                column: "Part".into(),
                role: Role::PartNumber,
            },
            ColumnRole {
                column: "Qty".into(),
                role: Role::Quantity,
            },
            ColumnRole {
                column: "Desc".into(),
                role: Role::Description,
            },
        ],
        hierarchy: Hierarchy::Flat,
    };
    let bom = read(
        bytes,
        "x.csv",
        &ReadOptions {
            profile: Some(profile),
            ..ReadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(bom.rows.len(), 1);
    assert_eq!(bom.rows[0].quantity, Some(dec("1.5")));
    assert_eq!(bom.rows[0].description.as_deref(), Some("cafÃ©"));
}

fn with_profile(edit: impl FnOnce(&mut ImportProfile)) -> BomError {
    let path = testdata().join("solidworks/ACV0158450_sw.csv");
    let bytes = std::fs::read(&path).unwrap();
    let mut profile = read(&bytes, "ACV0158450_sw.csv", &ReadOptions::default())
        .unwrap()
        .profile;
    edit(&mut profile);
    read(
        &bytes,
        "ACV0158450_sw.csv",
        &ReadOptions {
            profile: Some(profile),
            ..ReadOptions::default()
        },
    )
    .unwrap_err()
}

#[test]
fn a_profile_that_does_not_fit_the_file_is_a_clear_error() {
    let err = with_profile(|p| {
        p.columns.push(ColumnRole {
            column: "PART NO".into(),
            role: Role::Unit,
        })
    });
    assert_eq!(
        err.to_string(),
        "the column \"PART NO\" of the import profile is not in the file's header"
    );
    let err = with_profile(|p| p.columns.retain(|c| c.role != Role::PartNumber));
    assert_eq!(
        err.to_string(),
        "the import profile cannot be used: no column has the role part_number"
    );
    let err = with_profile(|p| p.hierarchy = Hierarchy::Parent);
    assert_eq!(
        err.to_string(),
        "the import profile cannot be used: the hierarchy needs a column with the role parent"
    );
    let err = with_profile(|p| p.header_row = 400);
    assert_eq!(
        err.to_string(),
        "the import profile cannot be used: the header row 400 is blank or missing"
    );
    let err = with_profile(|p| p.delimiter = Some('x'));
    assert!(matches!(err, BomError::InvalidProfile { .. }));
    let err = with_profile(|p| p.hierarchy = Hierarchy::Level { base: 3 });
    assert!(matches!(err, BomError::InvalidProfile { .. }));
}

#[test]
fn an_explicit_root_part() {
    let bom = read_file_with(
        "solidworks/CNC-Mill_BOM.xls",
        &ReadOptions {
            root_part: Some(" MILL-1 ".into()),
            ..ReadOptions::default()
        },
    );
    let root = bom.root.unwrap();
    assert_eq!(root.part_number, "MILL-1");
    assert_eq!(root.source, lockstep_bom::RootSource::Option);
    assert_eq!(root.row, None);
}
