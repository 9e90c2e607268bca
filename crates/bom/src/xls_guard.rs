//! Measures an XLS before calamine parses it, and repacks it. Calamine builds a dense grid for
//! every sheet of an XLS as it opens it, sized by the sheet's declared dimensions and by the
//! cells' positions, so a few hundred hostile bytes could ask it for terabytes. This walks the
//! workbook stream's records the way calamine does and refuses a workbook whose grids would
//! exceed a budget.
//!
//! Calamine's own reader of the compound-file container panics on some damaged containers (a
//! sector cut short in the middle of an allocation-table entry, the header listing a data sector
//! as part of the table). So calamine never sees the uploaded container: the workbook stream is
//! read through the cfb crate, which checks the container's sector chains, and written alone
//! into a fresh compound file that calamine opens instead. Calamine reads nothing else from an
//! XLS, so what it reads is the same.

use std::io::{Cursor, Read, Write as _};

use crate::BomError;

/// Cells all the sheets' grids may hold together (about 128 MiB of calamine cells).
const MAX_CELLS: u64 = 4_000_000;

fn unreadable(reason: &str) -> BomError {
    BomError::Unreadable {
        format: "xls",
        reason: reason.into(),
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Some(u32::from_le_bytes(a))
}

/// The records of a BIFF stream from an offset: (type, data).
struct Records<'a> {
    stream: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let typ = u16_at(self.stream, 0)?;
        let len = usize::from(u16_at(self.stream, 2)?);
        let end = len.checked_add(4)?;
        let data = self.stream.get(4..end)?;
        self.stream = self.stream.get(end..)?;
        Some((typ, data))
    }
}

/// The workbook stream (`Workbook`, or `Book` for BIFF5), read whole.
fn workbook_stream(bytes: &[u8]) -> Result<Vec<u8>, BomError> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|_| unreadable("not a valid Excel 97-2003 file"))?;
    let name = ["/Workbook", "/Book", "/WORKBOOK", "/BOOK"]
        .into_iter()
        .find(|n| file.is_stream(n))
        .ok_or_else(|| unreadable("the file holds no workbook"))?;
    let mut stream = file
        .open_stream(name)
        .map_err(|_| unreadable("the workbook stream cannot be read"))?;
    // A stream is made of the file's own sectors: it is never larger than the file.
    let limit = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if stream.len() > limit {
        return Err(unreadable("the workbook stream is larger than the file"));
    }
    let mut out = Vec::new();
    stream
        .by_ref()
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| unreadable("the workbook stream cannot be read"))?;
    Ok(out)
}

/// The workbook stream alone in a compound file written afresh (version 3, 512-byte sectors),
/// for calamine.
fn repack(stream: &[u8]) -> Result<Vec<u8>, BomError> {
    let failed = |_| unreadable("the workbook stream cannot be repacked");
    let mut file =
        cfb::CompoundFile::create_with_version(cfb::Version::V3, Cursor::new(Vec::new()))
            .map_err(failed)?;
    file.create_stream("/Workbook")
        .map_err(failed)?
        .write_all(stream)
        .map_err(failed)?;
    file.flush().map_err(failed)?;
    Ok(file.into_inner().into_inner())
}

/// Refuses an XLS whose sheets calamine would hold in more than [`MAX_CELLS`] cells; else
/// returns the workbook repacked for calamine (see the module's documentation).
pub(crate) fn check_xls(bytes: &[u8]) -> Result<Vec<u8>, BomError> {
    let stream = workbook_stream(bytes)?;
    measure(&stream)?;
    repack(&stream)
}

/// Refuses a workbook stream whose sheets calamine would hold in more than [`MAX_CELLS`] cells.
fn measure(stream: &[u8]) -> Result<(), BomError> {
    // The globals: where each sheet's records start.
    let mut positions = Vec::new();
    for (typ, data) in (Records { stream }) {
        match typ {
            0x0085 => {
                let pos = u32_at(data, 0).ok_or_else(|| unreadable("a sheet record is short"))?;
                let pos = usize::try_from(pos).unwrap_or(usize::MAX);
                if pos >= stream.len() || data.len() < 6 {
                    return Err(unreadable("a sheet record points outside the workbook"));
                }
                positions.push(pos);
            }
            0x000A => break,
            _ => {}
        }
    }
    let mut total: u64 = 0;
    let too_large = || BomError::TooManyCells { limit: MAX_CELLS };
    for pos in positions {
        let Some(sheet) = stream.get(pos..) else {
            continue;
        };
        let mut bounds: Option<(u32, u32, u32, u32)> = None;
        let mut seen_bof = false;
        let mut nested = 0usize;
        let mut note = |row: u32, col_first: u32, col_last: u32| {
            let (r0, r1, c0, c1) = bounds.unwrap_or((row, row, col_first, col_last));
            bounds = Some((
                r0.min(row),
                r1.max(row),
                c0.min(col_first),
                c1.max(col_last),
            ));
        };
        for (typ, data) in (Records { stream: sheet }) {
            if nested > 0 {
                match typ {
                    0x0809 => nested = nested.saturating_add(1),
                    0x000A => nested = nested.saturating_sub(1),
                    _ => {}
                }
                continue;
            }
            match typ {
                0x0809 if seen_bof => nested = 1,
                0x0809 => seen_bof = true,
                0x000A => break,
                // Dimensions: calamine reserves rows × columns cells from it.
                0x0200 => {
                    let (rf, rl, cf, cl) = match data.len() {
                        10 => (
                            u32::from(u16_at(data, 0).unwrap_or(0)),
                            u32::from(u16_at(data, 2).unwrap_or(0)),
                            u32::from(u16_at(data, 4).unwrap_or(0)),
                            u32::from(u16_at(data, 6).unwrap_or(0)),
                        ),
                        14 | 16 => (
                            u32_at(data, 0).unwrap_or(0),
                            u32_at(data, 4).unwrap_or(0),
                            u32::from(u16_at(data, 8).unwrap_or(0)),
                            u32::from(u16_at(data, 10).unwrap_or(0)),
                        ),
                        _ => return Err(unreadable("a dimensions record is malformed")),
                    };
                    let cf = if cf > 0xFF || cl < cf { 0 } else { cf };
                    if rl >= 1 && cl >= 1 {
                        let rows = (rl - 1)
                            .checked_sub(rf)
                            .ok_or_else(|| unreadable("a dimensions record is malformed"))?;
                        let cols = (cl - 1).saturating_sub(cf);
                        let cells = u64::from(rows)
                            .saturating_add(1)
                            .saturating_mul(u64::from(cols).saturating_add(1));
                        if cells > MAX_CELLS {
                            return Err(too_large());
                        }
                    }
                }
                // Cells: Number, Label, RString, BoolErr, Rk, LabelSst, Formula.
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 => {
                    if let (Some(row), Some(col)) = (u16_at(data, 0), u16_at(data, 2)) {
                        note(u32::from(row), u32::from(col), u32::from(col));
                    }
                }
                // MulRk: a run of cells on one row.
                0x00BD => {
                    let (Some(row), Some(first), Some(last)) = (
                        u16_at(data, 0),
                        u16_at(data, 2),
                        data.len().checked_sub(2).and_then(|at| u16_at(data, at)),
                    ) else {
                        return Err(unreadable("a cell record is malformed"));
                    };
                    if last < first {
                        return Err(unreadable("a cell record is malformed"));
                    }
                    note(u32::from(row), u32::from(first), u32::from(last));
                }
                _ => {}
            }
        }
        if let Some((r0, r1, c0, c1)) = bounds {
            let cells = u64::from(r1 - r0)
                .saturating_add(1)
                .saturating_mul(u64::from(c1 - c0).saturating_add(1));
            total = total.saturating_add(cells);
            if total > MAX_CELLS {
                return Err(too_large());
            }
        }
    }
    Ok(())
}
