//! The Beta-Binomial posterior of a conversion rate, and how two variants compare.
//!
//! With a Beta(1, 1) prior, `c` conversions out of `n` visitors give the posterior
//! Beta(1 + c, 1 + n - c). Its mean and 95% credible interval come from the regularized
//! incomplete beta function (a continued fraction, inverted by bisection); the probability
//! that a variant beats the control and the expected loss of choosing it use the closed
//! forms for whole-number parameters (Evan Miller; Chris Stucchio), exact up to floating
//! point. `api/tests/fixtures/posterior.json` holds values computed independently, by
//! numerical integration with SciPy (`posterior.py` beside it says how).

use serde::Serialize;

/// A Beta distribution with whole-number parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beta {
    /// α: 1 + conversions.
    pub alpha: f64,
    /// β: 1 + visitors without a conversion.
    pub beta: f64,
}

impl Beta {
    /// The posterior after `conversions` of `visitors`, from the uniform prior.
    pub fn posterior(visitors: u64, conversions: u64) -> Self {
        let conversions = conversions.min(visitors);
        Self {
            alpha: 1.0 + conversions as f64,
            beta: 1.0 + (visitors - conversions) as f64,
        }
    }

    /// The mean, α / (α + β).
    pub fn mean(self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// P(X <= x).
    pub fn cdf(self, x: f64) -> f64 {
        incomplete_beta(self.alpha, self.beta, x)
    }

    /// The `p` quantile, by bisection on the cdf (to 1e-12).
    pub fn quantile(self, p: f64) -> f64 {
        let (mut low, mut high) = (0.0_f64, 1.0_f64);
        while high - low > 1e-12 {
            let middle = (low + high) / 2.0;
            if self.cdf(middle) < p {
                low = middle;
            } else {
                high = middle;
            }
        }
        (low + high) / 2.0
    }
}

/// ln Γ(x), Lanczos (g = 7, n = 9): about 15 significant digits for x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        sum += g / (x + i as f64);
    }
    let t = x + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ln B(a, b).
fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction (the
/// symmetry I_x(a, b) = 1 - I_{1-x}(b, a) keeps it converging fast).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b)).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * continued_fraction(a, b, x) / a
    } else {
        1.0 - front * continued_fraction(b, a, 1.0 - x) / b
    }
}

/// Lentz's method for the incomplete beta's continued fraction.
fn continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// P(X > Y) for independent X ~ `x`, Y ~ `y`; `x.alpha` must be a whole number (it is for
/// every posterior here). A sum of `x.alpha` terms in log space.
pub fn prob_greater(x: Beta, y: Beta) -> f64 {
    let terms = x.alpha.round() as u64;
    let mut total = 0.0;
    for i in 0..terms {
        let i = i as f64;
        total += (ln_beta(y.alpha + i, y.beta + x.beta)
            - (x.beta + i).ln()
            - ln_beta(1.0 + i, x.beta)
            - ln_beta(y.alpha, y.beta))
        .exp();
    }
    total.clamp(0.0, 1.0)
}

/// E[max(control - variant, 0)]: what choosing `variant` over `control` is expected to
/// cost in conversion rate.
pub fn expected_loss(variant: Beta, control: Beta) -> f64 {
    let control_up = Beta {
        alpha: control.alpha + 1.0,
        ..control
    };
    let variant_up = Beta {
        alpha: variant.alpha + 1.0,
        ..variant
    };
    let loss = control.mean() * prob_greater(control_up, variant)
        - variant.mean() * prob_greater(control, variant_up);
    loss.max(0.0)
}

/// What `results_aggregates.posterior` holds for one variant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Posterior {
    /// α of Beta(α, β).
    pub alpha: f64,
    /// β of Beta(α, β).
    pub beta: f64,
    /// The posterior mean conversion rate.
    pub mean: f64,
    /// The 2.5% quantile.
    pub ci_low: f64,
    /// The 97.5% quantile.
    pub ci_high: f64,
    /// P(this variant's rate > the control's); 0.5 for the control itself.
    pub prob_beat_control: f64,
    /// E[max(control - this, 0)]; 0 for the control itself.
    pub expected_loss: f64,
}

impl Posterior {
    /// The posterior of `variant` against `control` (equal for the control itself).
    pub fn of(variant: Beta, control: Beta, is_control: bool) -> Self {
        Self {
            alpha: variant.alpha,
            beta: variant.beta,
            mean: variant.mean(),
            ci_low: variant.quantile(0.025),
            ci_high: variant.quantile(0.975),
            prob_beat_control: if is_control {
                0.5
            } else {
                prob_greater(variant, control)
            },
            expected_loss: if is_control {
                0.0
            } else {
                expected_loss(variant, control)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incomplete_beta_matches_known_values() {
        // I_x(1, 1) = x; I_0.5(a, a) = 0.5; I_x(2, 1) = x².
        assert!((incomplete_beta(1.0, 1.0, 0.3) - 0.3).abs() < 1e-12);
        assert!((incomplete_beta(7.0, 7.0, 0.5) - 0.5).abs() < 1e-12);
        assert!((incomplete_beta(2.0, 1.0, 0.4) - 0.16).abs() < 1e-12);
        assert!(
            (Beta {
                alpha: 1.0,
                beta: 1.0
            }
            .quantile(0.975)
                - 0.975)
                .abs()
                < 1e-9
        );
    }

    /// Against SciPy's numerical integration, to 3 decimals (and in fact much closer).
    #[test]
    fn posteriors_match_values_computed_independently() {
        let cases: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/posterior.json"))
                .unwrap_or_default();
        let cases = cases.as_array().cloned().unwrap_or_default();
        assert_eq!(cases.len(), 6);
        for case in cases {
            let pair = |key: &str| {
                let n = |i: usize| case[key][i].as_u64().unwrap_or(u64::MAX);
                Beta::posterior(n(0), n(1))
            };
            let got = Posterior::of(pair("variant"), pair("control"), false);
            for (name, value) in [
                ("mean", got.mean),
                ("ciLow", got.ci_low),
                ("ciHigh", got.ci_high),
                ("probBeatControl", got.prob_beat_control),
                ("expectedLoss", got.expected_loss),
            ] {
                let expected = case[name].as_f64().unwrap_or(f64::NAN);
                assert!(
                    (value - expected).abs() < 5e-7,
                    "{name} of {case}: {value} vs {expected}"
                );
            }
        }
    }

    #[test]
    fn equal_posteriors_tie() {
        let a = Beta::posterior(1000, 50);
        assert!((prob_greater(a, a) - 0.5).abs() < 1e-9);
    }
}
