//! Every real export in `shared/testdata/bom` reads into the tree a person sees in it: row
//! count, depth, and named nodes checked against the file opened by hand.

use lockstep_bom::{
    Encoding, Format, Hierarchy, ReadOptions, Role, RootSource, Severity, children_of, read, tree,
};

use crate::{at, dec, max_depth, messages, part, read_file, read_file_with, testdata};

#[test]
fn solidworks_indented_csv_acv0158450() {
    let bom = read_file("solidworks/ACV0158450_sw.csv");
    let p = &bom.profile;
    assert_eq!(p.format, Format::Csv);
    assert_eq!(p.encoding, Some(Encoding::Windows1252));
    assert_eq!(p.delimiter, Some(','));
    // Row 1 is the `$PRPSHEET:"SW-File Name"` title; the header is row 2.
    assert_eq!(p.header_row, 2);
    assert_eq!(p.hierarchy, Hierarchy::Dotted { separator: '.' });
    assert_eq!(p.column_for(Role::Position), Some("ITEM NO."));
    assert_eq!(p.column_for(Role::Quantity), Some("QTY."));
    assert_eq!(p.column_for(Role::PartNumber), Some("PART NUMBER"));
    assert_eq!(p.column_for(Role::Description), Some("DESCRIPTION"));
    assert_eq!(bom.rows.len(), 157);
    // 2.21.3.1.1 is five levels deep.
    assert_eq!(max_depth(&bom), 4);
    assert_eq!(at(&bom, "2.21.3.1.1").depth, 4);

    let root = bom.root.as_ref().expect("root");
    assert_eq!(root.part_number, "ACV0158450");
    assert_eq!(root.source, RootSource::FileName);

    // The assembly itself is not a row: item 1 is top level.
    let first = at(&bom, "1");
    assert_eq!((first.depth, first.parent_row), (0, None));
    assert_eq!(first.part_number, "0300-2025-367");
    assert_eq!(first.line, 3);

    // 2.17.1, a weld nut, under 2.17, quantity 8, blank part number: an error on that row.
    let baseplate = at(&bom, "2.17");
    assert_eq!(baseplate.part_number, "0300-1980-003");
    assert_eq!(baseplate.property("Dwg no."), Some("1980003"));
    let nut = at(&bom, "2.17.1");
    assert_eq!(nut.parent_row, Some(baseplate.row));
    assert_eq!(nut.depth, 2);
    assert_eq!(nut.quantity, Some(dec("8")));
    assert_eq!(
        nut.description.as_deref(),
        Some("5/8\"-11 UNC HEX WELD NUT")
    );
    assert_eq!(nut.part_number, "");
    assert!(nut.has_errors());
    assert_eq!(nut.issues[0].field, "PART NUMBER");
    assert_eq!(nut.line, 22);
    assert_eq!(children_of(&bom, baseplate.row).len(), 3);

    // Leading spaces of child part numbers are trimmed; `°` read from Windows-1252.
    let elbow = at(&bom, "2.1");
    assert_eq!(elbow.part_number, "3012-0100-001");
    assert_eq!(
        elbow.description.as_deref(),
        Some("ELBOW 1.0\" SR 90° FNPT 150# 316SS")
    );
    // 2.10 is not 2.1.
    assert_eq!(at(&bom, "2.10").part_number, "3800-3110-001");
    assert_eq!(at(&bom, "2.10").parent_row, Some(at(&bom, "2").row));
    // The pipe's cut length is a property.
    assert_eq!(at(&bom, "2.14").property("LENGTH"), Some("10.00"));

    // The rows that are wrong: the three weld nuts; the two `PURCHASE` parts under one bolt set
    // (a placeholder part number used for two different things); 4.2.5, the same stock flat
    // cut to the same 32" as 4.2.2 under the same bracket (one line of quantity 2 was meant).
    let errors: Vec<&str> = bom
        .rows
        .iter()
        .filter(|r| r.has_errors())
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        errors,
        ["2.17.1", "2.17.2", "2.17.3", "2.21.3.1.2", "4.2.5"]
    );
    assert!(messages(at(&bom, "4.2.5"))[0].contains("line 104"));
    assert!(messages(at(&bom, "2.21.3.1.2"))[0].contains("line 39"));

    // The tree: 7 top-level items, 2 has 33 children.
    let nodes = tree(&bom, None);
    assert_eq!(nodes.len(), 7);
    assert_eq!(nodes[1].children.len(), 33);
    let shallow = tree(&bom, Some(0));
    assert!(shallow.iter().all(|n| n.children.is_empty()));
}

#[test]
fn solidworks_indented_csv_acv0121010() {
    let bom = read_file("solidworks/ACV0121010_sw.csv");
    assert_eq!(bom.rows.len(), 189);
    assert_eq!(max_depth(&bom), 2);
    assert_eq!(
        bom.root.as_ref().map(|r| r.part_number.as_str()),
        Some("ACV0121010")
    );
    let piping = at(&bom, "14");
    assert_eq!(piping.part_number, "6890-ACV0121010-1");
    assert_eq!(piping.description.as_deref(), Some("INPUT PIPING CS"));
    let filter = at(&bom, "14.1");
    assert_eq!(filter.parent_row, Some(piping.row));
    assert_eq!(filter.part_number, "2926-0125-001");
    assert_eq!(filter.quantity, Some(dec("3")));
    assert_eq!(at(&bom, "16.39").property("Dwg no."), Some("X"));
    // Pipes cut to two lengths under one parent: a warning, not an error.
    let pipe = at(&bom, "14.20");
    assert_eq!(pipe.part_number, "5500-0200-000");
    assert_eq!(pipe.issues.len(), 1);
    assert_eq!(pipe.issues[0].severity, Severity::Warning);
    assert!(pipe.issues[0].message.contains("LENGTH"));
    assert!(bom.rows.iter().all(|r| !r.has_errors()));
}

#[test]
fn solidworks_subassembly_csvs_have_the_assembly_in_the_title_row() {
    let bom = read_file("solidworks/3180-UNV2-000_sw.csv");
    assert_eq!(bom.rows.len(), 3);
    assert_eq!(max_depth(&bom), 0);
    assert_eq!(at(&bom, "3").part_number, "3086-0230-025");
    assert_eq!(at(&bom, "3").property("Lchk"), Some("3.00"));
    assert_eq!(
        at(&bom, "2").description.as_deref(),
        Some("ELBOW 0.25\" 90°")
    );

    // Saved under another name, the title row names the assembly.
    let bytes = std::fs::read(testdata().join("solidworks/3180-UNV2-000_sw.csv")).unwrap();
    let renamed = read(&bytes, "export.csv", &ReadOptions::default()).unwrap();
    let root = renamed.root.expect("root from the title row");
    assert_eq!(root.part_number, "3180-UNV2-000");
    assert_eq!(root.source, RootSource::TitleRow);

    let bom = read_file("solidworks/6890-DVT0161720-02_sw.csv");
    assert_eq!(bom.rows.len(), 25);
    assert_eq!(bom.profile.header_row, 2);
    assert_eq!(
        bom.root.as_ref().map(|r| r.part_number.as_str()),
        Some("6890-DVT0161720-02")
    );
    // Item 14 is item 13's part cut to another length.
    let second = at(&bom, "14");
    assert_eq!(second.part_number, "3086-0535-025");
    assert_eq!(second.property("LENGTH"), Some("3.50"));
    assert_eq!(second.issues[0].severity, Severity::Warning);
    // This title row is an unresolved `$PRPSHEET` placeholder: not a part number.
    let bytes = std::fs::read(testdata().join("solidworks/6890-DVT0161720-02_sw.csv")).unwrap();
    let renamed = read(&bytes, "export.csv", &ReadOptions::default()).unwrap();
    assert_eq!(renamed.root, None);
}

#[test]
fn solidworks_top_level_xlsx() {
    let bom = read_file("solidworks/JZ099238_sw.xlsx");
    assert_eq!(bom.profile.format, Format::Xlsx);
    assert_eq!(bom.profile.sheet.as_deref(), Some("Sheet1"));
    assert_eq!(bom.profile.header_row, 2);
    assert_eq!(bom.rows.len(), 18);
    assert_eq!(max_depth(&bom), 0);
    // The file name says JZ099238; the title row says JZ99238 (a typo a person spots).
    assert_eq!(
        bom.root.as_ref().map(|r| r.part_number.as_str()),
        Some("JZ099238")
    );
    let bytes = std::fs::read(testdata().join("solidworks/JZ099238_sw.xlsx")).unwrap();
    let renamed = read(&bytes, "Book1.xlsx", &ReadOptions::default()).unwrap();
    assert_eq!(
        renamed.root.map(|r| r.part_number),
        Some("JZ99238".to_owned())
    );

    let switch = at(&bom, "15");
    assert_eq!(switch.part_number, "6910-0100-003");
    assert_eq!(switch.quantity, Some(dec("2")));
    // Numbers in cells: LENGTH 2.5 and 3 (not 3.0), item numbers 1, 2… (not 1.0).
    assert_eq!(at(&bom, "5").property("LENGTH"), Some("2.5"));
    assert_eq!(at(&bom, "6").property("LENGTH"), Some("3"));
    assert_eq!(
        at(&bom, "4").description.as_deref(),
        Some("ELBOW 2.5\" SR 90° FNPT 150# 316SS")
    );
    assert_eq!(at(&bom, "17").part_number, "JZ0200D-KA3");

    let cut = read_file("solidworks/0300-2021-766_sw.xlsx");
    assert_eq!(cut.rows.len(), 12);
    assert_eq!(cut.profile.column_for(Role::Quantity), Some("QTY."));
    // Tubing 7215-0200-001 five times with different lengths: four warnings, no error.
    let tubing: Vec<_> = cut
        .rows
        .iter()
        .filter(|r| r.part_number == "7215-0200-001")
        .collect();
    assert_eq!(tubing.len(), 5);
    assert!(tubing[0].issues.is_empty());
    assert!(
        tubing[1..]
            .iter()
            .all(|r| r.issues.len() == 1 && r.issues[0].severity == Severity::Warning)
    );
    assert_eq!(at(&cut, "12").quantity, Some(dec("4")));
    assert_eq!(at(&cut, "12").property("LENGTH"), Some("23.5"));
}

#[test]
fn solidworks_xls_with_floats_newlines_gaps_and_extra_sheets() {
    let bom = read_file("solidworks/CNC-Mill_BOM.xls");
    assert_eq!(bom.profile.format, Format::Xls);
    assert_eq!(bom.sheets, ["Sheet1", "Sheet5", "Cut", "Order", "Have"]);
    assert_eq!(bom.profile.sheet.as_deref(), Some("Sheet1"));
    assert_eq!(bom.profile.header_row, 1);
    assert_eq!(bom.rows.len(), 32);
    assert_eq!(max_depth(&bom), 0);
    // `545636.0` in the cell reads back as the part number 545636; item numbers 8.0 → 8.
    let hub = at(&bom, "8");
    assert_eq!(hub.part_number, "545636");
    assert_eq!(hub.position.as_deref(), Some("8"));
    assert_eq!(hub.quantity, Some(dec("16")));
    // The newline inside a cell is kept.
    assert_eq!(
        at(&bom, "2").part_number,
        "SCS8UU-8mm linear \nbearing 8-32"
    );
    assert_eq!(at(&bom, "32").part_number, "634314-8mm 300mm \nrod");
    // Items 9, 17 and 18 are missing: a gap in the numbering, not an error.
    assert_eq!(at(&bom, "10").part_number, "spindle slide bracket");
    assert!(bom.rows.iter().all(|r| r.issues.is_empty()));
    assert_eq!(part(&bom, "92196A148").quantity, Some(dec("104")));

    // Another sheet by name.
    let have = read_file_with(
        "solidworks/CNC-Mill_BOM.xls",
        &ReadOptions {
            sheet: Some("Have".into()),
            ..ReadOptions::default()
        },
    );
    assert_eq!(have.profile.sheet.as_deref(), Some("Have"));
    assert_eq!(
        have.profile.column_for(Role::PartNumber),
        Some("Part Number")
    );
    assert_eq!(have.profile.hierarchy, Hierarchy::Flat);
    assert_eq!(have.rows.len(), 11);
    assert_eq!(have.rows[0].part_number, "634308");
    assert_eq!(have.rows[0].property("Part Name"), Some("8mm 150mm rod"));
    // Rows without a part number there are errors on those rows, kept.
    assert_eq!(have.rows.iter().filter(|r| r.has_errors()).count(), 6);

    let missing = read(
        &std::fs::read(testdata().join("solidworks/CNC-Mill_BOM.xls")).unwrap(),
        "CNC-Mill_BOM.xls",
        &ReadOptions {
            sheet: Some("Sheet9".into()),
            ..ReadOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        missing.to_string(),
        "the workbook has no sheet named \"Sheet9\""
    );
}

#[test]
fn syteline_indented_export_with_text_levels() {
    let bom = read_file("erp/ACV0158450_syteline.xlsx");
    let p = &bom.profile;
    assert_eq!(p.header_row, 1);
    assert_eq!(p.hierarchy, Hierarchy::Level { base: 0 });
    assert_eq!(p.column_for(Role::Level), Some("Level"));
    // SyteLine's `Item` is the part number.
    assert_eq!(p.column_for(Role::PartNumber), Some("Item"));
    assert_eq!(p.column_for(Role::Quantity), Some("Qty Per"));
    assert_eq!(p.column_for(Role::Unit), Some("U/M"));
    // Row 2, `Group Item: ACV0158450`, is a section title, not a BOM row.
    assert_eq!(bom.skipped_lines, [2]);
    assert_eq!(bom.rows.len(), 292);
    assert_eq!(max_depth(&bom), 7);
    assert!(bom.rows.iter().all(|r| r.issues.is_empty()));

    // The level-0 row is the assembly.
    let root = bom.root.as_ref().expect("root");
    assert_eq!(
        (root.part_number.as_str(), root.source, root.row),
        ("ACV0158450", RootSource::Row, Some(0))
    );
    assert_eq!(bom.rows[0].depth, 0);
    assert_eq!(bom.rows.iter().filter(|r| r.depth == 0).count(), 1);

    let pump = part(&bom, "ACV0158450-1");
    assert_eq!((pump.depth, pump.parent_row, pump.line), (1, Some(0), 5));
    assert_eq!(pump.quantity, Some(dec("2")));
    assert_eq!(pump.path, "1.2");
    let baseplate = part(&bom, "0300-1980-003");
    assert_eq!(baseplate.parent_row, Some(pump.row));
    assert_eq!(baseplate.property("Revision"), Some("E"));
    // Level '7' under '6' under '5'…, depth first.
    let cast = part(&bom, "1000-0054-C00");
    assert_eq!(cast.depth, 7);
    assert_eq!(
        bom.rows[cast.parent_row.unwrap()].part_number,
        "1000-0054-M00"
    );
    // Padded part numbers and descriptions are trimmed; units per row.
    let element = part(&bom, "2302-1000-001");
    assert_eq!(
        element.description.as_deref(),
        Some("DRIVE CPLG ELMNT 10S EPDM SPLIT")
    );
    let pipe = part(&bom, "5500-0600-004");
    assert_eq!(
        (pipe.quantity, pipe.unit.as_deref()),
        (Some(dec("0.229")), Some("FT"))
    );
    assert_eq!(part(&bom, "3848-0510-000").unit.as_deref(), Some("BOX"));

    let bom = read_file("erp/ACV0121010_syteline.xlsx");
    assert_eq!(bom.rows.len(), 275);
    assert_eq!(max_depth(&bom), 5);
    assert_eq!(
        bom.root.as_ref().map(|r| r.part_number.as_str()),
        Some("ACV0121010")
    );
    assert_eq!(part(&bom, "5472-0005-004").quantity, Some(dec("0.1")));

    // JZ099238's export has numeric levels and no `Group Item` row.
    let bom = read_file("erp/JZ099238_syteline.xlsx");
    assert_eq!(bom.rows.len(), 172);
    assert!(bom.skipped_lines.is_empty());
    assert_eq!(max_depth(&bom), 3);
    assert_eq!(bom.profile.column_for(Role::Unit), Some("UM"));
    let angle = part(&bom, "6600-0025-001");
    assert_eq!(
        bom.rows[angle.parent_row.unwrap()].part_number,
        "0300-2021-766"
    );
    assert_eq!(
        (angle.quantity, angle.unit.as_deref()),
        (Some(dec("2.17")), Some("FT"))
    );
}

#[test]
fn totvs_parent_codes() {
    let bom = read_file("erp/totvs_bom_hierarquica_v6.xlsx");
    let p = &bom.profile;
    assert_eq!(p.hierarchy, Hierarchy::Parent);
    assert_eq!(p.column_for(Role::Parent), Some("CODIGO_PAI"));
    assert_eq!(p.column_for(Role::PartNumber), Some("CODIGO"));
    assert_eq!(p.column_for(Role::Quantity), Some("QTD_NIVEL"));
    assert_eq!(p.column_for(Role::Unit), Some("UNIDADE"));
    assert_eq!(p.column_for(Role::Description), Some("DESCRICAO"));
    assert_eq!(p.column_for(Role::Level), Some("NIVEL"));
    assert_eq!(bom.rows.len(), 756);
    assert_eq!(max_depth(&bom), 6);
    assert!(bom.rows.iter().all(|r| r.issues.is_empty()));
    assert_eq!(
        bom.root.as_ref().map(|r| r.part_number.as_str()),
        Some("E7047-001-001")
    );

    let shaft = part(&bom, "E7047-001-015");
    assert_eq!(
        shaft.description.as_deref(),
        Some("EIXO ACOPLAMENTO MOTOREDUTOR Ø50X565")
    );
    assert_eq!(
        bom.rows[shaft.parent_row.unwrap()].part_number,
        "E7000-001-025"
    );
    assert_eq!(shaft.depth, 3);
    let bar = &bom.rows[shaft.row + 1];
    assert_eq!(bar.part_number, "C-008-002-046");
    assert_eq!(bar.parent_row, Some(shaft.row));
    assert_eq!(bar.unit.as_deref(), Some("KG"));
    let round = part(&bom, "C-008-002-036");
    assert_eq!(
        (round.quantity, round.unit.as_deref()),
        (Some(dec("4.3")), Some("KG"))
    );
    // Padded descriptions are trimmed.
    assert_eq!(
        bom.rows[0].description.as_deref(),
        Some("CONJ. BUFFER COM RODAS (2180X7780) H=2000")
    );
    // QTD_TOTAL is not the quantity: it stays a property.
    assert_eq!(
        part(&bom, "C-008-100-012").property("QTD_TOTAL"),
        Some("2.4")
    );

    // The file's NIVEL agrees with its CODIGO_PAI: read by level, every row has the same parent.
    let mut by_level = p.clone();
    by_level.hierarchy = Hierarchy::Level { base: 0 };
    let levelled = read_file_with(
        "erp/totvs_bom_hierarquica_v6.xlsx",
        &ReadOptions {
            profile: Some(by_level),
            ..ReadOptions::default()
        },
    );
    for (a, b) in bom.rows.iter().zip(&levelled.rows) {
        assert_eq!(
            (a.parent_row, a.depth),
            (b.parent_row, b.depth),
            "line {}",
            a.line
        );
    }
}

#[test]
fn kicad_grouped_csv() {
    let bom = read_file("kicad/open-source-rover_Control_Boards.csv");
    let p = &bom.profile;
    assert_eq!(p.encoding, Some(Encoding::Utf8));
    assert_eq!(p.header_row, 1);
    // Header names have leading spaces: ` Quantity`, ` Value`…
    assert_eq!(p.column_for(Role::Quantity), Some("Quantity"));
    assert_eq!(p.column_for(Role::PartNumber), Some("Value"));
    assert_eq!(p.hierarchy, Hierarchy::Flat);
    assert_eq!(bom.rows.len(), 45);
    assert_eq!(max_depth(&bom), 0);
    let caps = &bom.rows[0];
    assert_eq!(caps.part_number, "10nf");
    assert_eq!(caps.quantity, Some(dec("14")));
    // The designators (with their trailing space trimmed) and the footprint are properties.
    assert_eq!(
        caps.property("Reference"),
        Some("C2 C4 C9 C10 C13 C14 C15 C16 C17 C18 C20 C21 C33 C34")
    );
    assert_eq!(
        caps.property("Footprint"),
        Some("Resistor_THT:R_Axial_DIN0207_L6.3mm_D2.5mm_P7.62mm_Horizontal")
    );
    assert_eq!(caps.property("Datasheet"), Some("~"));
    assert_eq!(caps.path, "1");
    // `test_point` twice, on two footprints: a warning naming the footprint.
    let second = bom
        .rows
        .iter()
        .filter(|r| r.part_number == "test_point")
        .nth(1)
        .unwrap();
    assert_eq!(second.issues[0].severity, Severity::Warning);
    assert!(second.issues[0].message.contains("Footprint"));
}
