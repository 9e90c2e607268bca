//! Each kind of row error: kept on its row, never dropped; a gap in the numbering is no error.

use lockstep_bom::Severity;

use crate::{at, dec, messages, read_csv};

#[test]
fn blank_part_number_and_bad_quantities() {
    let bom = read_csv(
        b"ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\n1,1,plate,P-1\n2,3,weld nut,\n3,two,bolt,P-3\n4,,nut,P-4\n5,1e2,washer,P-5\n",
    );
    assert_eq!(bom.rows.len(), 5);
    let blank = at(&bom, "2");
    assert_eq!(blank.part_number, "");
    assert_eq!(blank.quantity, Some(dec("3")));
    assert_eq!(blank.issues.len(), 1);
    assert_eq!(blank.issues[0].field, "PART NUMBER");
    assert_eq!(blank.issues[0].severity, Severity::Error);
    assert_eq!(messages(blank), ["the part number is blank"]);

    let words = at(&bom, "3");
    assert_eq!(words.quantity, None);
    assert_eq!(words.issues[0].field, "QTY.");
    assert_eq!(messages(words), ["the quantity is not a number"]);
    assert_eq!(messages(at(&bom, "4")), ["the quantity is blank"]);
    // Scientific notation (what a spreadsheet may write) is a number.
    assert_eq!(at(&bom, "5").quantity, Some(dec("100")));
    assert!(at(&bom, "1").issues.is_empty());
}

#[test]
fn dotted_child_without_parent() {
    let bom =
        read_csv(b"ITEM NO.,QTY.,PART NUMBER\n1,1,A\n1.1,1,B\n3.2,1,C\n3.2.1,1,D\n2.1.1.1,1,E\n");
    let orphan = at(&bom, "3.2");
    assert_eq!(orphan.parent_row, None);
    assert_eq!(orphan.depth, 1);
    assert!(orphan.has_errors());
    assert_eq!(orphan.issues[0].field, "ITEM NO.");
    assert_eq!(messages(orphan), ["its parent item 3 is missing"]);
    // Its own child still finds it.
    assert_eq!(at(&bom, "3.2.1").parent_row, Some(orphan.row));
    assert!(at(&bom, "3.2.1").issues.is_empty());
    assert_eq!(
        messages(at(&bom, "2.1.1.1")),
        ["its parent item 2.1.1 is missing"]
    );
    assert!(at(&bom, "1.1").issues.is_empty());
}

#[test]
fn a_gap_in_the_numbering_is_fine() {
    let bom = read_csv(b"ITEM NO.,QTY.,PART NUMBER\n1,1,A\n2,1,B\n2.1,1,C\n2.3,1,D\n5,1,E\n");
    assert!(bom.rows.iter().all(|r| r.issues.is_empty()));
    assert_eq!(at(&bom, "2.3").parent_row, Some(at(&bom, "2").row));
}

#[test]
fn comma_separated_positions_and_leading_zeros() {
    // A `;` file whose item numbers use `,` between levels.
    let bom = read_csv(b"Pos;Qty;Part No.\n1;1;A\n1,1;2;B\n1,1,01;3;C\n");
    assert_eq!(
        bom.profile.hierarchy,
        lockstep_bom::Hierarchy::Dotted { separator: ',' }
    );
    assert_eq!(at(&bom, "1.1.1").parent_row, Some(at(&bom, "1.1").row));
    assert_eq!(at(&bom, "1.1.1").position.as_deref(), Some("1,1,01"));
}

#[test]
fn missing_item_number_is_an_error_kept_at_the_top_level() {
    // A real row without its item number: its place in the tree is unknown. It stays, at the
    // top level, with an error, so a person puts it where it belongs.
    let bom = read_csv(b"ITEM NO.,QTY.,PART NUMBER\n1,1,A\n1.1,1,B\n,4,C\n2,1,D\n");
    let lost = &bom.rows[2];
    assert_eq!(lost.part_number, "C");
    assert_eq!((lost.parent_row, lost.depth), (None, 0));
    assert_eq!(lost.path, "?4");
    assert!(lost.has_errors());
    assert!(messages(lost)[0].starts_with("no item number"));
    assert!(at(&bom, "2").issues.is_empty());
}

#[test]
fn duplicate_item_numbers() {
    let bom = read_csv(b"ITEM NO.,QTY.,PART NUMBER\n1,1,A\n1,1,B\n");
    assert!(bom.rows[0].issues.is_empty());
    assert_eq!(
        messages(&bom.rows[1]),
        ["the item number 1 is also on line 2"]
    );
}

#[test]
fn level_jumping_by_more_than_one() {
    let bom = read_csv(b"Level,Part Number,Qty\n0,TOP,1\n1,A,1\n3,B,2\n4,C,1\n1,D,1\n");
    let jumped = &bom.rows[2];
    assert_eq!(jumped.part_number, "B");
    assert_eq!(jumped.depth, 3);
    assert!(jumped.has_errors());
    assert_eq!(jumped.issues[0].field, "Level");
    assert!(messages(jumped)[0].contains("jumps to 3"));
    // Kept under the closest row above, and its own child finds it: one error, not a cascade.
    assert_eq!(jumped.parent_row, Some(1));
    assert_eq!(bom.rows[3].parent_row, Some(2));
    assert!(bom.rows[3].issues.is_empty());
    assert_eq!(bom.rows[4].parent_row, Some(0));
    assert_eq!(bom.rows[4].path, "1.2");
}

#[test]
fn levels_one_based_and_as_text() {
    let bom = read_csv(b"Level,Part Number,Qty\n'1',TOP,1\n'2',A,1\n'3',B,2\n'2',C,1\n");
    assert_eq!(
        bom.profile.hierarchy,
        lockstep_bom::Hierarchy::Level { base: 1 }
    );
    assert_eq!(
        bom.rows.iter().map(|r| r.depth).collect::<Vec<_>>(),
        [0, 1, 2, 1]
    );
    assert_eq!(
        bom.rows.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        ["1", "1.1", "1.1.1", "1.2"]
    );
    let bad = read_csv(b"Level,Part Number,Qty\n0,TOP,1\nx,A,1\n");
    assert!(messages(&bad.rows[1])[0].starts_with("the level is not a number"));
}

#[test]
fn parent_code_not_present() {
    let bom = read_csv(
        b"NIVEL,CODIGO,CODIGO_PAI,QTD_NIVEL\n0,TOP,,1\n1,A,TOP,2\n2,B,A,3\n1,C,NOWHERE,1\n2,D,C,1\n",
    );
    assert_eq!(bom.rows[2].parent_row, Some(1));
    let lost = &bom.rows[3];
    assert_eq!(lost.parent_row, None);
    assert_eq!(lost.issues[0].field, "CODIGO_PAI");
    assert_eq!(
        messages(lost),
        ["its parent NOWHERE is not on any row above"]
    );
    assert_eq!(bom.rows[4].parent_row, Some(3));
}

#[test]
fn same_part_twice_under_one_parent() {
    let bom = read_csv(
        b"ITEM NO.,QTY.,LENGTH,PART NUMBER\n1,1,,ASM\n1.1,2,,BOLT\n1.2,2,,bolt \n1.3,1,10,PIPE\n1.4,1,12,PIPE\n2,1,,BOLT\n",
    );
    // Alike: an error on the second row.
    let dup = at(&bom, "1.2");
    assert_eq!(dup.issues[0].severity, Severity::Error);
    assert_eq!(
        messages(dup),
        ["the same part is already on line 3 under the same parent"]
    );
    // Told apart by a property (a cut length): a warning.
    let cut = at(&bom, "1.4");
    assert_eq!(cut.issues[0].severity, Severity::Warning);
    assert!(cut.issues[0].message.contains("LENGTH"));
    assert!(!cut.has_errors());
    // The same part under another parent is fine.
    assert!(at(&bom, "2").issues.is_empty());
}

#[test]
fn title_rows_and_section_rows_are_not_bom_rows() {
    let bom = read_csv(
        b"Bill of materials\nASSY-9\n\nITEM NO.,QTY.,PART NUMBER\nSection: frame\n1,1,A\n\n2,1,B\n",
    );
    assert_eq!(bom.profile.header_row, 4);
    assert_eq!(bom.skipped_lines, [5]);
    assert_eq!(bom.rows.len(), 2);
    assert_eq!(bom.rows[1].line, 8);
}

#[test]
fn no_header_or_no_part_number_column_is_a_clear_error() {
    let err = lockstep_bom::read(b"a,b,c\n1,2,3\n", "x.csv", &Default::default()).unwrap_err();
    assert!(err.to_string().starts_with("no header row found"));
    let err =
        lockstep_bom::read(b"ITEM NO.,QTY.\n1,2\n", "x.csv", &Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the header on line 1 has no part number column"
    );
    let err = lockstep_bom::read(b"", "x.csv", &Default::default()).unwrap_err();
    assert_eq!(err.to_string(), "the file is empty");
}
