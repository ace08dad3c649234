//! Resource quantities (`100m`, `1.5Gi`, `2e3`) parsed into an exact fixed-point value, so
//! that requests can be compared with limits and summed for the QoS class. Only reading
//! and arithmetic: the original strings are what objects keep and print.

use std::cmp::Ordering;
use std::ops::Add;

/// Kubernetes' message for a string that is not a quantity.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{}", QUANTITY_FORMAT_ERROR)]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// A quantity in units of 10⁻⁹ (Kubernetes' smallest scale), saturating at the bounds
/// of `i128`; values below a nano unit round up, as Kubernetes rounds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    nanos: i128,
}

impl Quantity {
    /// The zero quantity.
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// Parses Kubernetes' quantity syntax: a signed decimal number and an optional suffix
    /// (`n u m k M G T P E`, `Ki Mi Gi Ti Pi Ei`, or an exponent `e3`/`E-2`).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        let (negative, rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        if number.is_empty() || number == "." {
            return Err(QuantityError::FormatWrong);
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => {
                if f.contains('.') {
                    return Err(QuantityError::Numeric);
                }
                (i, f)
            }
            None => (number, ""),
        };
        let mut mantissa: i128 = 0;
        let mut dropped_nonzero = false;
        let mut frac_digits: i32 = 0;
        for c in int_part.chars() {
            mantissa = mantissa
                .saturating_mul(10)
                .saturating_add(i128::from(c as u8 - b'0'));
        }
        for c in frac_part.chars() {
            // Keep at most 18 fractional digits; anything beyond only rounds up.
            if frac_digits < 18 {
                mantissa = mantissa
                    .saturating_mul(10)
                    .saturating_add(i128::from(c as u8 - b'0'));
                frac_digits += 1;
            } else if c != '0' {
                dropped_nonzero = true;
            }
        }
        let (pow2, pow10) = parse_suffix(suffix)?;
        let mut value = mantissa;
        for _ in 0..pow2 {
            value = value.saturating_mul(2);
        }
        let exp10 = pow10 - frac_digits + 9;
        let mut inexact = dropped_nonzero;
        if exp10 >= 0 {
            for _ in 0..exp10 {
                value = value.saturating_mul(10);
            }
        } else {
            for _ in 0..(-exp10) {
                if value % 10 != 0 {
                    inexact = true;
                }
                value /= 10;
            }
        }
        if inexact {
            value = value.saturating_add(1);
        }
        Ok(Quantity {
            nanos: if negative { -value } else { value },
        })
    }

    /// The value in units of 10⁻⁹.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up (`100m` is 100).
    pub fn milli_value(&self) -> i128 {
        ceil_div(self.nanos, 1_000_000)
    }

    /// The value rounded up to a whole number (`1500m` is 2, `1Ki` is 1024).
    pub fn value(&self) -> i128 {
        ceil_div(self.nanos, 1_000_000_000)
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Compares like Kubernetes' `Quantity.Cmp`.
    pub fn cmp_to(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Add for Quantity {
    type Output = Quantity;
    fn add(self, rhs: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(rhs.nanos),
        }
    }
}

impl std::str::FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 {
        q + 1
    } else {
        q
    }
}

/// The suffix as (power of two, power of ten).
fn parse_suffix(s: &str) -> Result<(u32, i32), QuantityError> {
    Ok(match s {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        _ => {
            let Some(exp) = s.strip_prefix(['e', 'E']) else {
                return Err(
                    if s.chars().all(|c| "eEinumkKMGTP+-0123456789".contains(c)) {
                        QuantityError::Suffix
                    } else {
                        QuantityError::FormatWrong
                    },
                );
            };
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(QuantityError::Suffix);
            }
            let e: i32 = exp.parse().map_err(|_| QuantityError::Suffix)?;
            if !(-60..=60).contains(&e) {
                return Err(QuantityError::Suffix);
            }
            (0, e)
        }
    })
}

#[cfg(test)]
mod tests;
