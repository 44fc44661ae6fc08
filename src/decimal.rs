//! Exact decimal arithmetic for objectives, budgets and thresholds, so that objective 99.95
//! yields an error budget of 0.0005 in the rules, not 0.0004999999999999449.

use std::fmt;

/// `mantissa / 10^scale`.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    pub const fn new(mantissa: i128, scale: u32) -> Self {
        Self { mantissa, scale }
    }

    /// The decimal a person wrote: the shortest representation that round-trips the f64
    /// (what YAML and JSON parsers produce for `99.95`).
    pub fn from_f64(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let text = format!("{v}");
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.len() > 30 {
            return None;
        }
        let mantissa: i128 = format!("{int}{frac}").parse().ok()?;
        Some(
            Self {
                mantissa,
                scale: frac.len() as u32,
            }
            .normalized(),
        )
    }

    fn normalized(mut self) -> Self {
        while self.scale > 0 && self.mantissa % 10 == 0 {
            self.mantissa /= 10;
            self.scale -= 1;
        }
        self
    }

    fn rescaled(self, scale: u32) -> Option<Self> {
        let factor = 10i128.checked_pow(scale.checked_sub(self.scale)?)?;
        Some(Self {
            mantissa: self.mantissa.checked_mul(factor)?,
            scale,
        })
    }

    pub fn checked_sub(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.rescaled(scale)?, other.rescaled(scale)?);
        Some(
            Self {
                mantissa: a.mantissa.checked_sub(b.mantissa)?,
                scale,
            }
            .normalized(),
        )
    }

    pub fn checked_mul(self, other: Self) -> Option<Self> {
        Some(
            Self {
                mantissa: self.mantissa.checked_mul(other.mantissa)?,
                scale: self.scale + other.scale,
            }
            .normalized(),
        )
    }

    /// Divides by a power of ten exactly (percent → fraction).
    pub fn shift_left(self, places: u32) -> Self {
        Self {
            mantissa: self.mantissa,
            scale: self.scale + places,
        }
        .normalized()
    }

    pub fn to_f64(self) -> f64 {
        // Parsing the exact text gives the nearest f64.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    pub fn is_positive(self) -> bool {
        self.mantissa > 0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.normalized();
        let sign = if n.mantissa < 0 { "-" } else { "" };
        let digits = n.mantissa.unsigned_abs().to_string();
        let scale = n.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(objective: f64) -> String {
        Decimal::new(100, 0)
            .checked_sub(Decimal::from_f64(objective).unwrap())
            .unwrap()
            .shift_left(2)
            .to_string()
    }

    #[test]
    fn budgets_are_exact() {
        assert_eq!(budget(99.95), "0.0005");
        assert_eq!(budget(99.9), "0.001");
        assert_eq!(budget(99.0), "0.01");
        assert_eq!(budget(95.0), "0.05");
        assert_eq!(budget(99.999), "0.00001");
        assert_eq!(budget(50.5), "0.495");
        assert_eq!(budget(0.1), "0.999");
    }

    #[test]
    fn products_are_exact() {
        let b = Decimal::from_f64(0.001).unwrap();
        assert_eq!(
            Decimal::from_f64(14.4).unwrap().checked_mul(b).unwrap().to_string(),
            "0.0144"
        );
        assert_eq!(Decimal::from_f64(6.0).unwrap().to_string(), "6");
        assert_eq!(Decimal::from_f64(1e-7).unwrap().to_string(), "0.0000001");
    }
}
