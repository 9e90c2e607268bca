//! Comparing a CAD BOM with an ERP's: the differences a person finds by hand between the
//! SOLIDWORKS and SyteLine exports of the same products, and each status on small inputs.

use lockstep_bom::{Change, LineStatus, Matching, ReadOptions, compare, read};

use crate::{at, dec, read_csv, read_file, testdata};

#[test]
fn acv0158450_solidworks_against_syteline() {
    let ours = read_file("solidworks/ACV0158450_sw.csv");
    let theirs = read_file("erp/ACV0158450_syteline.xlsx");
    let c = compare(&ours, &theirs, &Matching::default());
    // SOLIDWORKS' top-level rows hang under the assembly named by the file; SyteLine's level-0
    // row is that assembly.
    assert_eq!(c.ours_root.as_deref(), Some("ACV0158450"));
    assert_eq!(c.theirs_root.as_deref(), Some("ACV0158450"));

    // Found by hand, opening both files:
    // 1. Gasket 3510-0400-001 directly in the pump subassembly: 2 in CAD (2.23), 1 in the ERP
    //    (row 112).
    let gasket = c.line(Some("ACV0158450-1"), "3510-0400-001").unwrap();
    assert_eq!(gasket.status, LineStatus::Update);
    assert_eq!(
        gasket.changes,
        [Change {
            field: "quantity".into(),
            ours: Some("2".into()),
            theirs: Some("1".into()),
        }]
    );
    assert_eq!(gasket.ours_rows, [at(&ours, "2.23").row]);
    assert_eq!(theirs.rows[gasket.theirs_rows[0]].line, 112);
    // …while the same gasket in the flange assembly agrees (2 and 2).
    let flange_gasket = c.line(Some("3230-0400-009"), "3510-0400-001").unwrap();
    assert_eq!(flange_gasket.status, LineStatus::Unchanged);

    // 2. U-bolts in the pipe support: 3 in CAD (7.3), 2 in the ERP (row 288).
    let ubolt = c.line(Some("ACV0158450-6"), "3825-0400-000").unwrap();
    assert_eq!(ubolt.status, LineStatus::Update);
    assert_eq!(
        (ubolt.ours_quantity, ubolt.theirs_quantity),
        (Some(dec("3")), Some(dec("2")))
    );

    // 3. The vacuum gauge kit 3180-UNV2-001 is an assembly in CAD, a purchased part in the ERP:
    //    its elbow and nipple are nowhere in the ERP, its bushing is (in the drain piping).
    assert_eq!(
        c.line(Some("3180-UNV2-001"), "3012-0025-001")
            .unwrap()
            .status,
        LineStatus::Create
    );
    assert_eq!(
        c.line(Some("3180-UNV2-001"), "3086-2530-002")
            .unwrap()
            .status,
        LineStatus::Create
    );
    assert_eq!(
        c.line(Some("3180-UNV2-001"), "3002-3825-001")
            .unwrap()
            .status,
        LineStatus::Link
    );
    assert_eq!(
        c.line(Some("6890-ACV0158450-2"), "3002-3825-001")
            .unwrap()
            .status,
        LineStatus::Unchanged
    );

    // 4. Pipes: CAD counts cut pieces (5.2.6–5.2.8, 2 + 2 + 1), the ERP feet (4.32 FT).
    let pipe = c.line(Some("6875-2025-412"), "5500-0400-002").unwrap();
    assert_eq!(pipe.status, LineStatus::Update);
    assert_eq!(
        (pipe.ours_quantity, pipe.theirs_quantity),
        (Some(dec("5")), Some(dec("4.32")))
    );
    assert_eq!(pipe.ours_rows.len(), 3);

    // 5. The weld nuts under the baseplate (2.17.1–3) have no part number: nothing to match.
    assert_eq!(
        c.unmatched_rows,
        [
            at(&ours, "2.17.1").row,
            at(&ours, "2.17.2").row,
            at(&ours, "2.17.3").row
        ]
    );

    // 6. The ERP holds what CAD does not draw: paint and nameplates on the assembly, and the
    //    pump 1951002025's own BOM (a leaf in CAD, 2.33).
    let paint = c.line(None, "5474-0001-081").unwrap();
    assert_eq!(paint.status, LineStatus::DestinationOnly);
    assert_eq!(paint.theirs_quantity, Some(dec("0.5")));
    assert_eq!(
        c.line(Some("1951002025"), "LR550KB4").unwrap().status,
        LineStatus::DestinationOnly
    );
    assert_eq!(
        c.line(Some("ACV0158450-1"), "1951002025").unwrap().status,
        LineStatus::Unchanged
    );

    // What agrees: the baseplate on top, 20 flange bolts in the pump subassembly.
    assert_eq!(
        c.line(None, "0300-2025-367").unwrap().status,
        LineStatus::Unchanged
    );
    let bolts = c.line(Some("ACV0158450-1"), "3800-6220-001").unwrap();
    assert_eq!(
        (bolts.status, bolts.ours_quantity),
        (LineStatus::Unchanged, Some(dec("20")))
    );

    assert_eq!(c.count(LineStatus::Create), 6);
    assert_eq!(c.count(LineStatus::Link), 1);
    assert_eq!(c.count(LineStatus::Update), 17);
    assert_eq!(c.count(LineStatus::DestinationOnly), 156);
}

#[test]
fn jz099238_top_level_solidworks_against_syteline() {
    let ours = read_file("solidworks/JZ099238_sw.xlsx");
    let theirs = read_file("erp/JZ099238_syteline.xlsx");
    let c = compare(&ours, &theirs, &Matching::default());
    // Found by hand: item 5, nipple 3086-2025-025 (2.5" long), is not in the ERP at all; the
    // 17 other top-level lines agree; the ERP's deeper levels are not in this top-level BOM.
    let creates: Vec<&str> = c
        .lines
        .iter()
        .filter(|l| l.status == LineStatus::Create)
        .map(|l| l.part_number.as_str())
        .collect();
    assert_eq!(creates, ["3086-2025-025"]);
    assert_eq!(c.count(LineStatus::Unchanged), 17);
    assert_eq!(c.count(LineStatus::Update) + c.count(LineStatus::Link), 0);
    assert!(
        c.lines
            .iter()
            .filter(|l| l.status == LineStatus::DestinationOnly)
            .all(|l| l.parent.is_some())
    );
    assert_eq!(
        c.line(None, "6910-0100-003").unwrap().ours_quantity,
        Some(dec("2"))
    );

    // Saved under another name, the SOLIDWORKS title row names the assembly JZ99238 (a typo):
    // the two roots are still the same assembly, the comparison says both names.
    let bytes = std::fs::read(testdata().join("solidworks/JZ099238_sw.xlsx")).unwrap();
    let renamed = read(&bytes, "Book1.xlsx", &ReadOptions::default()).unwrap();
    let c = compare(&renamed, &theirs, &Matching::default());
    assert_eq!(c.ours_root.as_deref(), Some("JZ99238"));
    assert_eq!(c.theirs_root.as_deref(), Some("JZ099238"));
    assert_eq!(c.count(LineStatus::Unchanged), 17);
}

const THEIRS: &[u8] = b"Level,Item,Description,Qty Per,U/M,Finish\n\
0,TOP,Machine,1,EA,\n\
1,FRAME,Frame,1,EA,paint\n\
2,BOLT,Bolt M8,4,EA,zinc\n\
2,NUT,Nut M8,4,EA,\n\
1,MOTOR,Motor 2kW,1,EA,\n\
1,LABEL,Label,1,EA,\n";

#[test]
fn each_status_on_hand_made_boms() {
    let ours = read_csv(
        b"ITEM NO.,QTY.,DESCRIPTION,PART NUMBER,FINISH\n\
          1,1,Frame,frame ,paint\n\
          1.1,6,Bolt M8,BOLT,zinc\n\
          1.2,4,Nut M8,NUT,\n\
          1.3,2,Washer,WASHER,\n\
          2,1,Motor 2kW,MOTOR,\n\
          2.1,2,Bolt M8,BOLT,zinc\n",
    );
    let theirs = read_csv(THEIRS);
    let c = compare(&ours, &theirs, &Matching::default());
    // Part numbers match trimmed and case-insensitive: `frame ` is FRAME.
    assert_eq!(c.line(None, "FRAME").unwrap().status, LineStatus::Unchanged);
    let bolt = c.line(Some("FRAME"), "BOLT").unwrap();
    assert_eq!(bolt.status, LineStatus::Update);
    assert_eq!(
        (bolt.ours_quantity, bolt.theirs_quantity),
        (Some(dec("6")), Some(dec("4")))
    );
    assert_eq!(
        c.line(Some("FRAME"), "NUT").unwrap().status,
        LineStatus::Unchanged
    );
    assert_eq!(
        c.line(Some("FRAME"), "WASHER").unwrap().status,
        LineStatus::Create
    );
    // The bolt exists in theirs, not under the motor.
    assert_eq!(
        c.line(Some("MOTOR"), "BOLT").unwrap().status,
        LineStatus::Link
    );
    let label = c.line(None, "LABEL").unwrap();
    assert_eq!(label.status, LineStatus::DestinationOnly);
    assert_eq!(label.theirs_quantity, Some(dec("1")));
    assert_eq!(c.lines.len(), 7);

    // A mapped property that differs is an update, with both values.
    let matching = Matching {
        properties: vec![("FINISH".into(), "Finish".into())],
        ..Matching::default()
    };
    let ours = read_csv(b"ITEM NO.,QTY.,PART NUMBER,FINISH\n1,1,FRAME,powder\n1.1,4,BOLT,zinc\n");
    let c = compare(&ours, &theirs, &matching);
    let frame = c.line(None, "FRAME").unwrap();
    assert_eq!(frame.status, LineStatus::Update);
    assert_eq!(
        frame.changes,
        [Change {
            field: "FINISH → Finish".into(),
            ours: Some("powder".into()),
            theirs: Some("paint".into()),
        }]
    );
    assert_eq!(
        c.line(Some("FRAME"), "BOLT").unwrap().status,
        LineStatus::Unchanged
    );
}

#[test]
fn quantities_compare_exactly_and_units_when_both_have_one() {
    let theirs = read_csv(THEIRS);
    // 4.0 is 4; the cut bolts (two rows, 1 + 3) add up to the ERP's 4.
    let ours = read_csv(
        b"Level,Part Number,Qty,Unit,Length\n0,TOP,1,EA,\n1,FRAME,1,EA,\n2,BOLT,1,EA,10\n2,BOLT,3.0,EA,12\n2,NUT,4.0,PC,\n",
    );
    let c = compare(&ours, &theirs, &Matching::default());
    assert_eq!(
        c.line(Some("FRAME"), "BOLT").unwrap().status,
        LineStatus::Unchanged
    );
    let nut = c.line(Some("FRAME"), "NUT").unwrap();
    assert_eq!(nut.status, LineStatus::Update);
    assert_eq!(
        nut.changes,
        [Change {
            field: "unit".into(),
            ours: Some("PC".into()),
            theirs: Some("EA".into()),
        }]
    );
    let no_units = Matching {
        compare_unit: false,
        ..Matching::default()
    };
    let c = compare(&ours, &theirs, &no_units);
    assert_eq!(
        c.line(Some("FRAME"), "NUT").unwrap().status,
        LineStatus::Unchanged
    );
}

#[test]
fn by_description_when_the_part_number_is_blank_or_unknown() {
    let theirs = read_csv(THEIRS);
    let ours = read_csv(b"ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\n1,1,Frame,FRAME\n1.1,4,  bolt   m8 ,\n1.2,4,Nut M8,N-8\n");
    let c = compare(&ours, &theirs, &Matching::default());
    // The blank part number is matched by description, spaces and case aside.
    let bolt = c.line(Some("FRAME"), "BOLT").unwrap();
    assert_eq!(bolt.status, LineStatus::Unchanged);
    assert_eq!(bolt.ours_rows, [1]);
    // An unknown part number with a known description is the same part.
    assert_eq!(
        c.line(Some("FRAME"), "NUT").unwrap().status,
        LineStatus::Unchanged
    );
    assert!(c.unmatched_rows.is_empty());

    let strict = Matching {
        by_description: false,
        ..Matching::default()
    };
    let c = compare(&ours, &theirs, &strict);
    assert_eq!(c.unmatched_rows, [1]);
    assert_eq!(
        c.line(Some("FRAME"), "N-8").unwrap().status,
        LineStatus::Create
    );
    assert_eq!(
        c.line(Some("FRAME"), "BOLT").unwrap().status,
        LineStatus::DestinationOnly
    );
}
