//! A bill-of-materials export uploaded to the hub: the first byte picks the file's name (`.csv`,
//! `.xlsx`, `.xls`, `.txt`, or none, so the format comes from the magic bytes), whether the
//! caller names the assembly and the sheet; the rest is the file. It is read with the default
//! limits and with small ones, read again with the profile it was detected with (as an
//! Administrator saves it), and what parses is walked as the hub walks it: the tree, the part
//! totals, and a comparison with itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_bom::{Bom, Limits, Matching, ReadOptions};

const NAMES: [&str; 4] = ["bom.csv", "bom.xlsx", "bom.xls", "bom.txt"];

/// Small enough that every limit is reached by inputs of a few hundred bytes.
const SMALL: Limits = Limits {
    max_rows: 8,
    max_columns: 6,
    max_cell_bytes: 16,
    max_depth: 3,
    max_uncompressed_bytes: 64 * 1024,
};

fn options(pick: u8, limits: Limits) -> ReadOptions {
    ReadOptions {
        sheet: (pick & 0x10 != 0).then(|| "bom".to_owned()),
        profile: None,
        root_part: (pick & 0x08 != 0).then(|| "P-1".to_owned()),
        limits,
    }
}

/// Walks a BOM as the hub does and checks what every read BOM must satisfy.
fn walk(bom: &Bom, limits: &Limits) {
    let n = bom.rows.len();
    assert!(n <= limits.max_rows, "more rows than the limit");
    for (i, row) in bom.rows.iter().enumerate() {
        assert_eq!(row.row, i, "a row's index is its place");
        assert!(row.depth <= limits.max_depth, "deeper than the limit");
        // (A row of a level BOM whose parent is missing keeps its level as its depth.)
        if let Some(p) = row.parent_row {
            assert!(p < n && p != i, "a parent is another row");
            let parent_depth = bom.rows.get(p).map_or(0, |r| r.depth);
            assert!(parent_depth < row.depth, "a parent is above its child");
        }
    }
    // Every row is in the tree exactly once.
    fn count(nodes: &[lockstep_bom::Node]) -> usize {
        nodes
            .iter()
            .map(|node| 1usize.saturating_add(count(&node.children)))
            .sum()
    }
    assert_eq!(
        count(&lockstep_bom::tree(bom, None)),
        n,
        "the tree holds every row"
    );
    let _ = lockstep_bom::tree(bom, Some(1));
    let totals = lockstep_bom::parts(bom);
    assert!(totals.len() <= n);
    let comparison = lockstep_bom::compare(bom, bom, &Matching::default());
    let _ = comparison.count(lockstep_bom::LineStatus::Unchanged);
    let _ = lockstep_bom::compare(
        bom,
        bom,
        &Matching {
            by_description: false,
            properties: vec![("MATERIAL".into(), "MATERIAL".into())],
            ..Matching::default()
        },
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, contents)) = data.split_first() else {
        return;
    };
    let name = if pick & 0x04 != 0 {
        "ACV0158450_upload"
    } else {
        NAMES[usize::from(pick & 3)]
    };
    for limits in [Limits::default(), SMALL] {
        let options = options(pick, limits);
        let Ok(bom) = lockstep_bom::read(contents, name, &options) else {
            continue;
        };
        walk(&bom, &limits);
        // The detected profile, given back, reads the file the same way.
        let again = ReadOptions {
            profile: Some(bom.profile.clone()),
            ..options
        };
        match lockstep_bom::read(contents, name, &again) {
            Ok(same) => assert_eq!(
                same, bom,
                "the detected profile reads the file again the same"
            ),
            Err(e) => panic!("the detected profile cannot read the file again: {e}"),
        }
    }
});
