//! The figures' arithmetic and formatting: medians of rounds, paired ratios, table cells.

use serde_json::{Value, json};

pub fn median(runs: &[Value], key: &str) -> Value {
    let mut xs: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
    if xs.is_empty() {
        return Value::Null;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    let m = if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    };
    json!(m)
}

pub fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "–".to_owned(),
    }
}

/// `x ÷ base` to two places for a table, `–` when either is unknown or `base` is not positive.
pub fn ratio_text(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
        _ => "–".to_owned(),
    }
}

fn cell<'a>(section: &'a Value, target: &str, n: u64) -> Option<&'a Value> {
    section["cells"]
        .as_array()?
        .iter()
        .find(|c| c["target"].as_str() == Some(target) && c["connections"].as_u64() == Some(n))
}

/// `a ÷ b` for `key`: the median of the per-round ratios (each round runs the targets back to
/// back, so a drift in the machine's load moves both sides of a ratio alike), or the ratio of
/// the medians when the rounds do not pair up.
pub fn ratio(section: &Value, a: &str, b: &str, n: u64, key: &str) -> Option<f64> {
    let (ca, cb) = (cell(section, a, n)?, cell(section, b, n)?);
    let pairs = |c: &Value| -> Vec<Option<f64>> {
        c["rounds"]
            .as_array()
            .map(|runs| runs.iter().map(|r| r[key].as_f64()).collect())
            .unwrap_or_default()
    };
    let (ra, rb) = (pairs(ca), pairs(cb));
    if !ra.is_empty() && ra.len() == rb.len() {
        let per_round: Vec<Value> = ra
            .iter()
            .zip(&rb)
            .filter_map(|(x, y)| x.zip(*y).filter(|&(_, y)| y > 0.0).map(|(x, y)| x / y))
            .map(|r| json!({ "r": r }))
            .collect();
        if per_round.len() == ra.len() {
            return median(&per_round, "r").as_f64();
        }
    }
    let x = ca[key].as_f64()?;
    let y = cb[key].as_f64()?;
    (y > 0.0).then(|| x / y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(cells: &[(&str, &[f64])]) -> Value {
        let cells: Vec<Value> = cells
            .iter()
            .map(|(target, rounds)| {
                let runs: Vec<Value> = rounds.iter().map(|v| json!({ "msgs_per_s": v })).collect();
                json!({
                    "target": target,
                    "connections": 100,
                    "msgs_per_s": median(&runs, "msgs_per_s"),
                    "rounds": runs,
                })
            })
            .collect();
        json!({ "cells": cells })
    }

    #[test]
    fn goal_ratios_pair_up_rounds() {
        // Per round: 2, 0.5, 2 → 2; the medians alone (20 vs 40) would say 0.5.
        let s = section(&[("a", &[10.0, 20.0, 100.0]), ("b", &[5.0, 40.0, 50.0])]);
        assert_eq!(ratio(&s, "a", "b", 100, "msgs_per_s"), Some(2.0));
    }

    #[test]
    fn unpaired_rounds_fall_back_to_the_medians() {
        let s = section(&[("a", &[10.0, 20.0, 100.0]), ("b", &[40.0])]);
        assert_eq!(ratio(&s, "a", "b", 100, "msgs_per_s"), Some(0.5));
        assert_eq!(ratio(&s, "a", "missing", 100, "msgs_per_s"), None);
    }
}
