//! Part totals rolled up through the assemblies: on a hand-made tree, and on real files against
//! sums worked out by hand (and against the TOTVS export's own QTD_TOTAL).

use lockstep_bom::{Decimal, PartTotal, parts};

use crate::{dec, read_csv, read_file};

fn total<'a>(totals: &'a [PartTotal], part: &str) -> &'a PartTotal {
    totals
        .iter()
        .find(|t| t.part_number == part)
        .unwrap_or_else(|| panic!("no total for {part}"))
}

#[test]
fn a_hand_made_tree() {
    let bom = read_csv(
        b"ITEM NO.,QTY.,DESCRIPTION,PART NUMBER\n\
          1,2,frame,A\n\
          1.1,3,beam,B\n\
          1.1.1,4,bolt,C\n\
          1.2,1,bolt,C\n\
          2,1,beam,B\n\
          2.1,0.5,pipe,D\n\
          3,x,kit,E\n\
          3.1,1,in the kit,F\n\
          4,1,weld nut,\n\
          4.1,5,under the nut,G\n\
          9.1,1,orphan,H\n",
    );
    let totals = parts(&bom);
    let names: Vec<&str> = totals.iter().map(|t| t.part_number.as_str()).collect();
    // In order of first appearance; E (no quantity), F (below it), the blank part number and H
    // (parent 9 missing) cannot be totalled.
    assert_eq!(names, ["A", "B", "C", "D", "G"]);
    assert_eq!(total(&totals, "A").quantity, dec("2"));
    // B: 2 × 3 under A, plus 1 at the top.
    assert_eq!(total(&totals, "B").quantity, dec("7"));
    assert_eq!(total(&totals, "B").occurrences, 2);
    // C: 2 × 3 × 4 + 2 × 1.
    assert_eq!(total(&totals, "C").quantity, dec("26"));
    assert_eq!(total(&totals, "C").description.as_deref(), Some("bolt"));
    assert_eq!(total(&totals, "D").quantity, dec("0.5"));
    // The weld nut has no part number, but what is under it counts: 1 × 5.
    assert_eq!(total(&totals, "G").quantity, dec("5"));
}

#[test]
fn solidworks_acv0158450_by_hand() {
    let totals = parts(&read_file("solidworks/ACV0158450_sw.csv"));
    // Gasket 3510-0400-001: 2.21.2 (2 × 1 × 2) + 2.23 (2 × 2) + 5.5 (1 × 1) = 9.
    let gasket = total(&totals, "3510-0400-001");
    assert_eq!((gasket.quantity, gasket.occurrences), (dec("9"), 3));
    // Tubing 7215-0200-001: 3.1.1 + 3.1.4 (2 + 2) and 4.2.1 + 4.2.4 (2 + 2) = 8.
    let tubing = total(&totals, "7215-0200-001");
    assert_eq!((tubing.quantity, tubing.occurrences), (dec("8"), 4));
    // Elbow 3012-0100-001: 2.1 (1 × 2) + 2.29.5 (2 × 1 × 2) = 6.
    assert_eq!(total(&totals, "3012-0100-001").quantity, dec("6"));
    // The pump subassembly itself: 2.
    assert_eq!(total(&totals, "ACV0158450-1").quantity, dec("2"));
    // The weld nuts have no part number: no total.
    assert!(totals.iter().all(|t| !t.part_number.is_empty()));
}

#[test]
fn syteline_acv0158450_by_hand() {
    let totals = parts(&read_file("erp/ACV0158450_syteline.xlsx"));
    // Paint 5474-0001-081 on six rows: 0.25 × 1 × 2 (in the pump's 1951002025) + 0.25 + 0.25
    // (brackets of the panel and the VFD) + 0.2 × 2 + 0.03 (the pipe supports) + 0.5 (top).
    let paint = total(&totals, "5474-0001-081");
    assert_eq!(paint.quantity, dec("1.93"));
    assert_eq!(paint.occurrences, 6);
    assert_eq!(paint.unit.as_deref(), Some("EA"));
    // The assembly row itself is a part of its own BOM, once.
    assert_eq!(total(&totals, "ACV0158450").quantity, Decimal::ONE);
}

#[test]
fn totvs_totals_agree_with_its_own_qtd_total() {
    let bom = read_file("erp/totvs_bom_hierarquica_v6.xlsx");
    let totals = parts(&bom);
    // TOTVS writes each row's rolled-up quantity in QTD_TOTAL: per part, their sum is our total.
    let mut checked = 0;
    for t in &totals {
        let expected: Decimal = bom
            .rows
            .iter()
            .filter(|r| r.part_number == t.part_number)
            .map(|r| dec(r.property("QTD_TOTAL").unwrap()))
            .sum();
        // QTD_TOTAL is a float in the file (160.270000000000001): compare to 6 places.
        assert_eq!(
            t.quantity.round_dp(6),
            expected.round_dp(6),
            "{}",
            t.part_number
        );
        checked += 1;
    }
    assert!(checked > 300, "{checked}");
    // By hand: sheet C-008-100-040 is on one row, 1.2 KG per gear E2971-001-828, of which the
    // drive E7000-001-025 (1 per structure, 1 per buffer) takes 2: 2.4 KG.
    let sheet = total(&totals, "C-008-100-040");
    assert_eq!((sheet.quantity, sheet.occurrences), (dec("2.4"), 1));
    assert_eq!(sheet.unit.as_deref(), Some("KG"));
}
