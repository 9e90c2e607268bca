//! PostgreSQL's `numeric` in its binary form, both ways, exactly.
//!
//! The binary form is a header of four 16-bit words — the number of digits, the weight (the
//! power of 10000 of the first digit), the sign (or NaN / ±infinity) and the display scale (the
//! decimal places to print) — followed by the digits, each 0 to 9999 (base 10000, most
//! significant first). The value is `Σ digit[i] · 10000^(weight − i)`.

/// Why a numeric could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumericError {
    /// NaN or ±infinity, which a Decimal128 cannot hold.
    NotFinite,
    /// More digits than the target holds.
    Overflow,
    /// More decimal places than the target scale (never for a column with that scale).
    Inexact,
    /// Not PostgreSQL's binary form, or not a decimal number (text).
    Malformed,
}

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PLUS_INFINITY: u16 = 0xD000;
const MINUS_INFINITY: u16 = 0xF000;
/// The largest display scale the format holds.
const MAX_DSCALE: i32 = 0x3FFF;

/// 10^0 … 10^38, all that fits an i128. (Computed at compile time: an index out of range would
/// fail the build, not a run.)
#[allow(clippy::indexing_slicing)]
const POW10: [i128; 39] = {
    let mut table = [1_i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

fn pow10(exp: i32) -> Option<i128> {
    usize::try_from(exp)
        .ok()
        .and_then(|e| POW10.get(e).copied())
}

/// A numeric's header and its digits (still big-endian pairs of bytes).
struct Parts<'a> {
    weight: i32,
    sign: u16,
    dscale: u16,
    digits: &'a [u8],
}

fn word(raw: &[u8], at: usize) -> Option<[u8; 2]> {
    raw.get(at..at + 2).and_then(|b| b.try_into().ok())
}

fn parts(raw: &[u8]) -> Result<Parts<'_>, NumericError> {
    let header = || -> Option<Parts<'_>> {
        let ndigits = usize::from(u16::from_be_bytes(word(raw, 0)?));
        let weight = i32::from(i16::from_be_bytes(word(raw, 2)?));
        let sign = u16::from_be_bytes(word(raw, 4)?);
        let dscale = u16::from_be_bytes(word(raw, 6)?);
        let digits = raw.get(8..)?;
        (digits.len() == ndigits * 2).then_some(Parts {
            weight,
            sign,
            dscale,
            digits,
        })
    };
    header().ok_or(NumericError::Malformed)
}

fn digits<'a>(parts: &Parts<'a>) -> impl Iterator<Item = i32> + 'a {
    // `chunks_exact(2)`: every pair converts.
    parts
        .digits
        .chunks_exact(2)
        .map(|pair| i32::from(u16::from_be_bytes(pair.try_into().unwrap_or([0; 2]))))
}

/// The numeric as an integer count of 10^−scale (a Decimal128 value of that scale).
pub(super) fn to_i128(raw: &[u8], scale: i8) -> Result<i128, NumericError> {
    let parts = parts(raw)?;
    let negative = match parts.sign {
        POSITIVE => false,
        NEGATIVE => true,
        NAN | PLUS_INFINITY | MINUS_INFINITY => return Err(NumericError::NotFinite),
        _ => return Err(NumericError::Malformed),
    };
    let mut acc: i128 = 0;
    for (i, digit) in (0_i32..).zip(digits(&parts)) {
        if !(0..10_000).contains(&digit) {
            return Err(NumericError::Malformed);
        }
        if digit == 0 {
            continue;
        }
        let digit = i128::from(digit);
        // The power of ten of this digit's unit in the scaled integer.
        let exp = 4 * (parts.weight - i) + i32::from(scale);
        let value = if exp >= 0 {
            pow10(exp)
                .and_then(|p| digit.checked_mul(p))
                .ok_or(NumericError::Overflow)?
        } else {
            let divisor = pow10(-exp).ok_or(NumericError::Inexact)?;
            if digit % divisor != 0 {
                return Err(NumericError::Inexact);
            }
            digit / divisor
        };
        acc = acc.checked_add(value).ok_or(NumericError::Overflow)?;
    }
    Ok(if negative { -acc } else { acc })
}

/// Appends the numeric as PostgreSQL prints it (`numeric_out`): every digit of the display scale,
/// `NaN`, `Infinity`, `-Infinity`.
pub(super) fn write_text(raw: &[u8], out: &mut String) -> Result<(), NumericError> {
    let parts = parts(raw)?;
    match parts.sign {
        POSITIVE => {}
        NEGATIVE => out.push('-'),
        NAN => {
            out.push_str("NaN");
            return Ok(());
        }
        PLUS_INFINITY => {
            out.push_str("Infinity");
            return Ok(());
        }
        MINUS_INFINITY => {
            out.push_str("-Infinity");
            return Ok(());
        }
        _ => return Err(NumericError::Malformed),
    }
    if digits(&parts).any(|d| !(0..10_000).contains(&d)) {
        return Err(NumericError::Malformed);
    }
    let digit_at = |group: i32| -> u32 {
        // Group `g` has the weight `weight − g`; outside the stored digits it is 0.
        usize::try_from(parts.weight - group)
            .ok()
            .and_then(|i| parts.digits.get(i * 2..i * 2 + 2))
            .and_then(|pair| pair.try_into().ok())
            .map_or(0, |pair: [u8; 2]| u32::from(u16::from_be_bytes(pair)))
    };
    if parts.weight < 0 {
        out.push('0');
    } else {
        push_decimal_group(out, digit_at(parts.weight), false);
        for group in (0..parts.weight).rev() {
            push_decimal_group(out, digit_at(group), true);
        }
    }
    let dscale = usize::from(parts.dscale);
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut group = -1;
        while out.len() - start < dscale {
            push_decimal_group(out, digit_at(group), true);
            group -= 1;
        }
        out.truncate(start + dscale);
    }
    Ok(())
}

/// Appends a base-10000 digit (0–9999) in decimal: four digits with `pad`, else without leading
/// zeros (at least one).
fn push_decimal_group(out: &mut String, group: u32, pad: bool) {
    let mut started = pad;
    for place in [1000, 100, 10, 1] {
        let digit = group / place % 10;
        if started || digit != 0 || place == 1 {
            started = true;
            out.push(char::from_digit(digit, 10).unwrap_or('0'));
        }
    }
}

/// Appends a value field (its length, then the numeric) for `±mag · 10^−scale`; the display
/// scale is `scale` (0 when negative). Used for Decimal128 (and integers, scale 0).
pub(super) fn encode_i128(out: &mut Vec<u8>, value: i128, scale: i32) -> Result<(), NumericError> {
    let negative = value < 0;
    let mut mag = value.unsigned_abs();
    // Groups aligned on the decimal point: the lowest group holds `4 − pad` digits of `mag`,
    // shifted up by `pad` places, so that `scale + pad` is a multiple of four.
    let pad = (4 - scale.rem_euclid(4)) % 4;
    let shifted_scale = scale + pad;
    let mut groups = [0_u16; 12];
    let mut count = 0;
    if mag != 0 {
        let first = 10_u128.pow(u32::try_from(4 - pad).unwrap_or(4));
        let low = (mag % first) * 10_u128.pow(u32::try_from(pad).unwrap_or(0));
        mag /= first;
        push_group(&mut groups, &mut count, low)?;
        while mag > u128::from(u64::MAX) {
            push_group(&mut groups, &mut count, mag % 10_000)?;
            mag /= 10_000;
        }
        let mut small = u64::try_from(mag).map_err(|_| NumericError::Overflow)?;
        while small != 0 {
            push_group(&mut groups, &mut count, u128::from(small % 10_000))?;
            small /= 10_000;
        }
    }
    // `groups[..count]` is least significant first; trailing zero groups are not stored.
    let stored = groups.get(..count).ok_or(NumericError::Overflow)?;
    let skip = stored.iter().take_while(|g| **g == 0).count();
    let kept = stored.get(skip..).unwrap_or(&[]);
    let count_i32 = i32::try_from(count).map_err(|_| NumericError::Overflow)?;
    let weight = if kept.is_empty() {
        0
    } else {
        count_i32 - 1 - shifted_scale / 4
    };
    write_numeric(
        out,
        if kept.is_empty() { false } else { negative },
        weight,
        scale.max(0),
        kept.iter().rev().copied(),
        kept.len(),
    )
}

fn push_group(groups: &mut [u16; 12], count: &mut usize, value: u128) -> Result<(), NumericError> {
    let slot = groups.get_mut(*count).ok_or(NumericError::Overflow)?;
    *slot = u16::try_from(value).map_err(|_| NumericError::Overflow)?;
    *count += 1;
    Ok(())
}

/// Appends a value field for decimal text: `[+-]digits[.digits][e[+-]digits]`, `NaN`,
/// `Infinity`, `-Infinity` (surrounding spaces allowed), as PostgreSQL's `numeric_in` reads it.
pub(super) fn encode_text(out: &mut Vec<u8>, text: &str) -> Result<(), NumericError> {
    let text = text.trim();
    let special = |sign: u16, out: &mut Vec<u8>| {
        write_numeric_header(out, 0, 0, sign, 0);
        Ok(())
    };
    if text.len() <= 9 && text.bytes().any(|b| b.is_ascii_alphabetic()) {
        let is = |words: &[&str]| words.iter().any(|w| text.eq_ignore_ascii_case(w));
        if is(&["nan"]) {
            return special(NAN, out);
        }
        if is(&["infinity", "+infinity", "inf", "+inf"]) {
            return special(PLUS_INFINITY, out);
        }
        if is(&["-infinity", "-inf"]) {
            return special(MINUS_INFINITY, out);
        }
    }
    let bytes = text.as_bytes();
    let (negative, rest) = match bytes.first() {
        Some(b'-') => (true, bytes.get(1..).unwrap_or(&[])),
        Some(b'+') => (false, bytes.get(1..).unwrap_or(&[])),
        _ => (false, bytes),
    };
    let mantissa_end = rest
        .iter()
        .position(|b| *b == b'e' || *b == b'E')
        .unwrap_or(rest.len());
    let (mantissa, exponent) = rest.split_at(mantissa_end);
    let exponent: i32 = match exponent.get(1..) {
        None => 0,
        Some(e) => std::str::from_utf8(e)
            .ok()
            .filter(|e| !e.is_empty() && e.len() <= 6)
            .and_then(|e| e.parse().ok())
            .ok_or(NumericError::Malformed)?,
    };
    let (int_part, frac_part) = match mantissa.iter().position(|b| *b == b'.') {
        Some(dot) => (
            mantissa.get(..dot).unwrap_or(&[]),
            mantissa.get(dot + 1..).unwrap_or(&[]),
        ),
        None => (mantissa, &[][..]),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.iter().chain(frac_part).all(u8::is_ascii_digit)
    {
        return Err(NumericError::Malformed);
    }
    let frac_len = i32::try_from(frac_part.len()).map_err(|_| NumericError::Overflow)?;
    let scale = frac_len - exponent;
    let digits = || {
        int_part
            .iter()
            .chain(frac_part)
            .skip_while(|d| **d == b'0')
            .map(|d| d - b'0')
    };
    encode_digits(out, negative, digits(), digits().count(), scale)
}

/// Appends a value field for `±digits · 10^−scale` (digits 0–9, most significant first, no
/// leading zeros).
fn encode_digits(
    out: &mut Vec<u8>,
    negative: bool,
    digits: impl Iterator<Item = u8>,
    len: usize,
    scale: i32,
) -> Result<(), NumericError> {
    let dscale = scale.max(0);
    if dscale > MAX_DSCALE {
        return Err(NumericError::Overflow);
    }
    if len == 0 {
        return write_numeric(out, false, 0, dscale, std::iter::empty(), 0);
    }
    let n = i32::try_from(len).map_err(|_| NumericError::Overflow)?;
    // The power of ten of the first digit, and of the last.
    let first_exp = n - scale - 1;
    let last_exp = -scale;
    let weight = first_exp.div_euclid(4);
    let last_group = last_exp.div_euclid(4);
    let count = usize::try_from(weight - last_group + 1).map_err(|_| NumericError::Overflow)?;
    // Most values need a few groups: those stay on the stack.
    let mut small = [0_u16; 16];
    let mut large = Vec::new();
    let groups = match small.get_mut(..count) {
        Some(groups) => groups,
        None => {
            large.resize(count, 0_u16);
            large.as_mut_slice()
        }
    };
    for (j, digit) in (0_i32..).zip(digits) {
        let exp = first_exp - j;
        let index =
            usize::try_from(weight - exp.div_euclid(4)).map_err(|_| NumericError::Overflow)?;
        let place = 10_u16.pow(u32::try_from(exp.rem_euclid(4)).unwrap_or(0));
        if let Some(group) = groups.get_mut(index) {
            *group += u16::from(digit) * place;
        }
    }
    let kept = groups.len() - groups.iter().rev().take_while(|g| **g == 0).count();
    let groups = groups.get(..kept).unwrap_or(&[]);
    write_numeric(
        out,
        negative,
        weight,
        dscale,
        groups.iter().copied(),
        groups.len(),
    )
}

fn write_numeric(
    out: &mut Vec<u8>,
    negative: bool,
    weight: i32,
    dscale: i32,
    groups: impl Iterator<Item = u16>,
    count: usize,
) -> Result<(), NumericError> {
    let weight = i16::try_from(weight).map_err(|_| NumericError::Overflow)?;
    let dscale = u16::try_from(dscale).map_err(|_| NumericError::Overflow)?;
    let ndigits = u16::try_from(count).map_err(|_| NumericError::Overflow)?;
    let length = i32::try_from(8 + 2 * count).map_err(|_| NumericError::Overflow)?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&(if negative { NEGATIVE } else { POSITIVE }).to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Ok(())
}

fn write_numeric_header(out: &mut Vec<u8>, ndigits: u16, weight: i16, sign: u16, dscale: u16) {
    out.extend_from_slice(&8_i32.to_be_bytes());
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A value field's numeric without its length.
    fn body(field: &[u8]) -> &[u8] {
        let length = i32::from_be_bytes(field[..4].try_into().unwrap());
        assert_eq!(length as usize, field.len() - 4);
        &field[4..]
    }

    fn text_of(raw: &[u8]) -> String {
        let mut s = String::new();
        write_text(raw, &mut s).unwrap();
        s
    }

    fn via_text(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_text(&mut out, text).unwrap();
        out
    }

    fn via_i128(value: i128, scale: i32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_i128(&mut out, value, scale).unwrap();
        out
    }

    #[test]
    fn text_round_trips_exactly() {
        for (input, printed) in [
            ("0", "0"),
            ("0.000", "0.000"),
            ("-0.5", "-0.5"),
            ("12345678901234.123456", "12345678901234.123456"),
            ("-12345678901234.123456", "-12345678901234.123456"),
            ("1e-30", "0.000000000000000000000000000001"),
            (
                "12345678901234567890.1234567890",
                "12345678901234567890.1234567890",
            ),
            ("1.5e3", "1500"),
            ("10000", "10000"),
            ("0.0001", "0.0001"),
            ("99999999", "99999999"),
            ("  7 ", "7"),
            ("NaN", "NaN"),
            ("nan", "NaN"),
            ("-Infinity", "-Infinity"),
            ("INF", "Infinity"),
            ("+infinity", "Infinity"),
            ("-inf", "-Infinity"),
            ("1e4", "10000"),
            ("0001000.0100", "1000.0100"),
            ("-0.000", "0.000"),
            ("9999.9999", "9999.9999"),
            ("100000000.00000001", "100000000.00000001"),
            (
                "123456789012345678901234567890123456789012345678901234567890.5",
                "123456789012345678901234567890123456789012345678901234567890.5",
            ),
        ] {
            assert_eq!(text_of(body(&via_text(input))), printed, "{input}");
        }
        for bad in ["", "-", "1.2.3", "1e", "abc", "1,5", "--1"] {
            let mut out = Vec::new();
            assert_eq!(
                encode_text(&mut out, bad),
                Err(NumericError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn decimal128_both_ways() {
        for (value, scale, printed) in [
            (12_345_678_901_234_123_456_i128, 6, "12345678901234.123456"),
            (-1, 6, "-0.000001"),
            (0, 2, "0.00"),
            (5, 0, "5"),
            (123, -2, "12300"),
            (10_000, 4, "1.0000"),
            (
                i128::MAX / 10,
                10,
                "1701411834604692317316873037.1588410572",
            ),
            (
                -(10_i128.pow(38) - 1),
                0,
                "-99999999999999999999999999999999999999",
            ),
        ] {
            let field = via_i128(value, scale);
            assert_eq!(text_of(body(&field)), printed, "{value} {scale}");
            assert_eq!(
                to_i128(body(&field), scale as i8),
                Ok(value),
                "{value} {scale}"
            );
            // PostgreSQL's own form (from text) decodes the same.
            assert_eq!(to_i128(body(&via_text(printed)), scale as i8), Ok(value));
        }
        assert_eq!(
            to_i128(body(&via_text("NaN")), 2),
            Err(NumericError::NotFinite)
        );
        assert_eq!(
            to_i128(body(&via_text("0.001")), 2),
            Err(NumericError::Inexact)
        );
        assert_eq!(
            to_i128(body(&via_text("1e40")), 0),
            Err(NumericError::Overflow)
        );
        assert_eq!(to_i128(&[0, 1], 0), Err(NumericError::Malformed));
    }

    #[test]
    fn binary_layout_matches_postgresql() {
        // 12345.678 (dscale 3): digits 1, 2345, 6780; weight 1.
        assert_eq!(
            via_text("12345.678"),
            [
                0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1A, 0x7C
            ]
        );
        assert_eq!(via_i128(12_345_678, 3), via_text("12345.678"));
    }
}
