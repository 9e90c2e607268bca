//! Times [`lockstep_bom::read`] on a generated SOLIDWORKS-style indented BOM, once as a UTF-8
//! CSV and once as an XLSX with shared strings, then [`lockstep_bom::tree`] and
//! [`lockstep_bom::parts`] on what was read. Prints a Markdown table (run by `bench/bom.sh`).
//!
//! ```sh
//! cargo run --release -p lockstep-bom --example bom_bench
//! RUNS=9 LINES=20000 BOM_BENCH_DIR=/tmp/bom cargo run --release -p lockstep-bom --example bom_bench
//! ```
//!
//! Each file is generated and measured in a child process of its own (`bom_bench --one csv`,
//! `--one xlsx`). Knobs: `RUNS` (5) reads per file, `LINES` (100000) BOM lines below the header,
//! `BOM_BENCH_DIR` (unset) a folder to write the two generated files into, to profile a read
//! of them on their own. Peak RSS is the process's `VmHWM`, reset before each file's reads by
//! writing `5` to `/proc/self/clear_refs`, so it is the peak of that file's reads; the resident
//! set before them (the generated file, held in memory) is shown beside it. Speed is measured
//! here, never asserted in tests.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::io::{Cursor, Write as _};
use std::time::{Duration, Instant};

use lockstep_bom::{Bom, ReadOptions};
use zip::write::SimpleFileOptions;

/// SplitMix64: a fixed sequence, so every run reads the same files.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        let len = u64::try_from(from.len()).unwrap_or(1).max(1);
        let at = usize::try_from(self.next() % len).unwrap_or(0);
        from.get(at).copied().unwrap_or("")
    }
}

/// One line of the BOM, as SOLIDWORKS writes it.
#[derive(Debug)]
struct Line {
    item: String,
    part: String,
    description: String,
    quantity: String,
    material: &'static str,
    vendor: &'static str,
    finish: &'static str,
}

const COLUMNS: [&str; 7] = [
    "ITEM NO.",
    "PART NUMBER",
    "DESCRIPTION",
    "QTY.",
    "MATERIAL",
    "VENDOR",
    "FINISH",
];
const TITLE: &str = "$PRPSHEET:{Description}";
/// Levels below the top (item numbers of up to 6 segments).
const MAX_DEPTH: u32 = 5;

const KINDS: [(&str, &str); 10] = [
    ("SCR", "SOCKET HEAD CAP SCREW M{a}X{b} DIN912"),
    ("NUT", "HEX NUT M{a} DIN934"),
    ("WSH", "FLAT WASHER M{a}, DIN125"),
    ("PLT", "PLATE {b}X{a}0 MM, LASER CUT"),
    ("BRK", "BRACKET {a}0° BENT"),
    ("SHF", "SHAFT Ø{a} X {b}0"),
    ("BRG", "BALL BEARING 6{a}0{b}-2RS"),
    ("TUB", "SQUARE TUBE {a}0X{a}0X2, L={b}00"),
    ("PIN", "DOWEL PIN Ø{a} X {b}"),
    ("LBL", "LABEL \"CAUTION\" {a}X{b}"),
];
const MATERIALS: [&str; 6] = [
    "AISI 1020",
    "AISI 304",
    "AL 6061-T6",
    "ABS",
    "Brass C360",
    "",
];
const VENDORS: [&str; 5] = ["McMaster-Carr", "Misumi", "Würth", "In-house", ""];
const FINISHES: [&str; 4] = ["Zinc plated", "Anodized, black", "Powder coat RAL 7035", ""];

fn part_line(rng: &mut Rng, item: String) -> Line {
    let kind = usize::try_from(rng.next() % 10).unwrap_or(0);
    let (prefix, template) = KINDS.get(kind).copied().unwrap_or(KINDS[0]);
    // A pool of about 3,000 parts per kind: parts repeat across assemblies, as in a real BOM.
    let number = rng.range(1, 3_000);
    let (a, b) = (number % 9 + 2, number % 40 + 4);
    let description = template
        .replace("{a}", &a.to_string())
        .replace("{b}", &b.to_string());
    let quantity = if prefix == "TUB" {
        format!("{}.{}", rng.range(0, 3), rng.range(1, 99))
    } else if rng.chance(70) {
        rng.range(1, 4).to_string()
    } else {
        rng.range(5, 64).to_string()
    };
    Line {
        item,
        part: format!("{prefix}-{number:05}"),
        description,
        quantity,
        material: rng.pick(&MATERIALS),
        vendor: rng.pick(&VENDORS),
        finish: rng.pick(&FINISHES),
    }
}

/// The lines of an indented BOM: top-level items, each an assembly or a part; an assembly's
/// children follow it, numbered `2.17`, `2.17.1`…, down to [`MAX_DEPTH`].
fn generate(lines: usize) -> Vec<Line> {
    let mut rng = Rng(0x10C5_7E9B_0A11_0001);
    let mut out = Vec::with_capacity(lines);
    let mut assemblies = 0u32;
    let mut top = 0u32;
    while out.len() < lines {
        top += 1;
        children(
            &mut rng,
            &mut out,
            lines,
            &top.to_string(),
            0,
            &mut assemblies,
        );
    }
    out
}

/// Emits the line `item` at `depth` and, for an assembly, its children.
fn children(
    rng: &mut Rng,
    out: &mut Vec<Line>,
    lines: usize,
    item: &str,
    depth: u32,
    assemblies: &mut u32,
) {
    // Assemblies are common near the top and rare deep down.
    let assembly = depth < MAX_DEPTH && rng.chance(u64::from(70 - depth * 12));
    if !assembly {
        let line = part_line(rng, item.to_owned());
        out.push(line);
        return;
    }
    *assemblies += 1;
    out.push(Line {
        item: item.to_owned(),
        part: format!("ASM-{:06}", *assemblies),
        description: format!("WELDMENT {} - SUBASSEMBLY", *assemblies),
        quantity: rng.range(1, 4).to_string(),
        material: "",
        vendor: "In-house",
        finish: rng.pick(&FINISHES),
    });
    let count = rng.range(2, 14);
    for k in 1..=count {
        if out.len() >= lines {
            return;
        }
        children(
            rng,
            out,
            lines,
            &format!("{item}.{k}"),
            depth + 1,
            assemblies,
        );
    }
}

fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The BOM as SOLIDWORKS saves it to CSV (here UTF-8, CRLF): the title row, the header, the lines.
fn to_csv(lines: &[Line]) -> Vec<u8> {
    let mut out = String::with_capacity(lines.len() * 100);
    out.push_str(TITLE);
    out.push_str(&",".repeat(COLUMNS.len() - 1));
    out.push_str("\r\n");
    out.push_str(&COLUMNS.join(","));
    out.push_str("\r\n");
    for line in lines {
        let fields = [
            line.item.as_str(),
            &line.part,
            &line.description,
            &line.quantity,
            line.material,
            line.vendor,
            line.finish,
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn xml_escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Column letters for the first 26 columns.
fn column_letter(column: usize) -> char {
    char::from(b'A' + u8::try_from(column % 26).unwrap_or(0))
}

/// Shared strings, numbered in order of first use, as a spreadsheet program writes them.
#[derive(Debug, Default)]
struct SharedStrings {
    index: HashMap<String, usize>,
    order: Vec<String>,
    uses: usize,
}

impl SharedStrings {
    fn get(&mut self, value: &str) -> usize {
        self.uses += 1;
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = self.order.len();
        self.order.push(value.to_owned());
        self.index.insert(value.to_owned(), i);
        i
    }
}

/// The BOM as a spreadsheet program saves it to XLSX: text in shared strings, quantities as
/// numbers, the title in row 1 and the header in row 2, deflated.
fn to_xlsx(lines: &[Line]) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut strings = SharedStrings::default();
    let mut sheet = String::with_capacity(lines.len() * 300);
    sheet.push_str(concat!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#,
        "\r\n",
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" "#,
        r#"xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">"#
    ));
    let _ = write!(
        sheet,
        r#"<dimension ref="A1:G{}"/><sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetFormatPr defaultRowHeight="15"/><sheetData>"#,
        lines.len() + 2
    );
    let mut text_cell = |sheet: &mut String, column: usize, row: usize, value: &str| {
        if value.is_empty() {
            return;
        }
        let _ = write!(
            sheet,
            r#"<c r="{}{row}" t="s"><v>{}</v></c>"#,
            column_letter(column),
            strings.get(value)
        );
    };
    let _ = write!(sheet, r#"<row r="1" spans="1:7">"#);
    text_cell(&mut sheet, 0, 1, TITLE);
    sheet.push_str("</row>");
    let _ = write!(sheet, r#"<row r="2" spans="1:7">"#);
    for (c, name) in COLUMNS.iter().enumerate() {
        text_cell(&mut sheet, c, 2, name);
    }
    sheet.push_str("</row>");
    for (i, line) in lines.iter().enumerate() {
        let row = i + 3;
        let _ = write!(sheet, r#"<row r="{row}" spans="1:7">"#);
        text_cell(&mut sheet, 0, row, &line.item);
        text_cell(&mut sheet, 1, row, &line.part);
        text_cell(&mut sheet, 2, row, &line.description);
        let _ = write!(sheet, r#"<c r="D{row}"><v>{}</v></c>"#, line.quantity);
        text_cell(&mut sheet, 4, row, line.material);
        text_cell(&mut sheet, 5, row, line.vendor);
        text_cell(&mut sheet, 6, row, line.finish);
        sheet.push_str("</row>");
    }
    sheet.push_str(r#"</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>"#);

    let mut sst = String::with_capacity(strings.order.len() * 40);
    let _ = write!(
        sst,
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{}<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{}" uniqueCount="{}">"#,
        "\r\n",
        strings.uses,
        strings.order.len()
    );
    for s in &strings.order {
        sst.push_str("<si><t>");
        xml_escape(&mut sst, s);
        sst.push_str("</t></si>");
    }
    sst.push_str("</sst>");

    let entries: [(&str, &str); 7] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><bookViews><workbookView/></bookViews><sheets><sheet name="BOM" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#,
        ),
        (
            "xl/styles.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs></styleSheet>"#,
        ),
        ("xl/sharedStrings.xml", &sst),
        ("xl/worksheets/sheet1.xml", &sheet),
    ];
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(name, options)?;
        zip.write_all(content.as_bytes())?;
    }
    Ok(zip.finish()?.into_inner())
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM`, `VmRSS`), in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib as f64 / 1024.0)
}

/// Resets the peak resident set to the current one (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The time this thread has spent on a CPU (`/proc/thread-self/schedstat`, in ns): unlike the
/// wall clock, it does not grow when other processes take the cores.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Minimum and median of the samples, in ms.
fn min_median(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let min = samples.first().copied().unwrap_or_default();
    let median = samples.get(samples.len() / 2).copied().unwrap_or_default();
    (ms(min), ms(median))
}

#[derive(Debug)]
struct Measured {
    file: &'static str,
    bytes: usize,
    rows: usize,
    errors: usize,
    read: (f64, f64),
    read_cpu: Option<(f64, f64)>,
    tree: (f64, f64),
    parts: (f64, f64),
    part_count: usize,
    peak_mib: Option<f64>,
    before_mib: Option<f64>,
}

fn measure(
    file: &'static str,
    name: &str,
    bytes: &[u8],
    runs: usize,
) -> Result<Measured, Box<dyn Error>> {
    let options = ReadOptions::default();
    reset_peak_rss();
    let before_mib = status_mib("VmRSS");
    let mut reads = Vec::with_capacity(runs);
    let mut read_cpus = Vec::with_capacity(runs);
    let mut trees = Vec::with_capacity(runs);
    let mut totals = Vec::with_capacity(runs);
    let mut last: Option<(Bom, usize)> = None;
    for _ in 0..runs {
        // The previous read is dropped first, so the peak is one read's.
        drop(last.take());
        let cpu_start = cpu_time();
        let start = Instant::now();
        let bom = lockstep_bom::read(bytes, name, &options)?;
        reads.push(start.elapsed());
        if let (Some(a), Some(b)) = (cpu_start, cpu_time()) {
            read_cpus.push(b.saturating_sub(a));
        }
        let start = Instant::now();
        let nodes = lockstep_bom::tree(&bom, None);
        trees.push(start.elapsed());
        drop(nodes);
        let start = Instant::now();
        let part_totals = lockstep_bom::parts(&bom);
        totals.push(start.elapsed());
        last = Some((bom, part_totals.len()));
    }
    let peak_mib = status_mib("VmHWM");
    let (bom, part_count) = last.ok_or("RUNS must be at least 1")?;
    Ok(Measured {
        file,
        bytes: bytes.len(),
        rows: bom.rows.len(),
        errors: bom.rows.iter().filter(|r| r.has_errors()).count(),
        read: min_median(&mut reads),
        read_cpu: (read_cpus.len() == reads.len()).then(|| min_median(&mut read_cpus)),
        tree: min_median(&mut trees),
        parts: min_median(&mut totals),
        part_count,
        peak_mib,
        before_mib,
    })
}

fn env_number(name: &str, default: usize) -> Result<usize, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a number"))?),
        Err(_) => Ok(default),
    }
}

/// The table row of one file's measurements.
fn table_row(m: &Measured) -> String {
    format!(
        "| {} | {:.1} MiB | {} | {} | {:.0} | {:.0} | {} | {:.1} (min {:.1}) | {:.1} (min {:.1}) | {} | {} |",
        m.file,
        m.bytes as f64 / (1024.0 * 1024.0),
        m.rows,
        m.errors,
        m.read.0,
        m.read.1,
        m.read_cpu.map_or_else(
            || "n/a".to_owned(),
            |(min, median)| format!("{median:.0} (min {min:.0})")
        ),
        m.tree.1,
        m.tree.0,
        m.parts.1,
        m.parts.0,
        m.part_count,
        match (m.peak_mib, m.before_mib) {
            (Some(p), Some(b)) => format!("{p:.0} MiB ({b:.0})"),
            _ => "n/a".to_owned(),
        },
    )
}

/// Measures one format in this process: `--one csv` or `--one xlsx`.
fn one(format: &str, runs: usize, count: usize) -> Result<String, Box<dyn Error>> {
    let lines = generate(count);
    let measured = match format {
        "csv" => {
            let csv = to_csv(&lines);
            drop(lines);
            measure("CSV (UTF-8)", "bench_bom.csv", &csv, runs)?
        }
        "xlsx" => {
            let xlsx = to_xlsx(&lines)?;
            drop(lines);
            measure("XLSX (shared strings)", "bench_bom.xlsx", &xlsx, runs)?
        }
        other => return Err(format!("unknown format {other}: csv or xlsx").into()),
    };
    Ok(table_row(&measured))
}

fn main() -> Result<(), Box<dyn Error>> {
    let runs = env_number("RUNS", 5)?.max(1);
    let count = env_number("LINES", 100_000)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, format] = args.as_slice()
        && flag == "--one"
    {
        let row = one(format, runs, count)?;
        writeln!(std::io::stdout().lock(), "{row}")?;
        return Ok(());
    }

    let lines = generate(count);
    let depth = lines
        .iter()
        .map(|l| l.item.matches('.').count())
        .max()
        .unwrap_or(0);
    if let Some(dir) = std::env::var_os("BOM_BENCH_DIR") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("bench_bom.csv"), to_csv(&lines))?;
        std::fs::write(dir.join("bench_bom.xlsx"), to_xlsx(&lines)?)?;
    }
    drop(lines);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "BOM read, {count} lines (item numbers up to {} levels), {runs} runs each; times in ms",
        depth + 1
    );
    out.push('\n');
    out.push_str("| file | size | rows read | rows with errors | read min | read median | read CPU median | tree median | parts median | parts | peak RSS (before) |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    // Each file in a process of its own, so that one's peak memory is not the other's.
    let exe = std::env::current_exe()?;
    for format in ["csv", "xlsx"] {
        let child = std::process::Command::new(&exe)
            .args(["--one", format])
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !child.status.success() {
            return Err(format!("measuring {format} failed: {}", child.status).into());
        }
        out.push_str(&String::from_utf8_lossy(&child.stdout));
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
