//! The page's main-thread time by rendering phase, from Chromium's `devtools.timeline` trace:
//! what `Performance.getMetrics` lumps together (paint, layerize, commit are in none of its
//! script, layout or style durations) split out, and the frames drawn per message.

use std::collections::HashMap;

use serde_json::{Value, json};

/// The phase a trace event's own time (less its children's) belongs to.
fn phase(name: &str) -> &'static str {
    match name {
        "FunctionCall"
        | "EvaluateScript"
        | "RunMicrotasks"
        | "TimerFire"
        | "EventDispatch"
        | "FireAnimationFrame"
        | "FireIdleCallback"
        | "XHRReadyStateChange" => "script",
        n if n.starts_with("V8.") || n.starts_with("v8.") || n.ends_with("GC") => "script",
        "UpdateLayoutTree" | "RecalcStyle" | "ParseAuthorStyleSheet" => "style",
        "Layout" | "IntersectionObserverController::computeIntersections" => "layout",
        "PrePaint" | "Paint" | "PaintImage" | "Layerize" | "UpdateLayer" | "ScrollLayer" => "paint",
        "Commit" => "commit",
        _ => "other",
    }
}

/// The `console.timeStamp` label that marks the start and the end of the measured window.
pub const MARK: &str = "socklab-messages";

/// Per message (`n`): each phase's ms on the renderer's main thread between the last two
/// [`MARK`]s, and the frames committed.
pub fn phases(events: &[Value], n: usize) -> Value {
    let marks: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "TimeStamp" && e["args"]["data"]["message"] == MARK)
        .collect();
    // The last two marks (earlier ones are a warm-up's); they come from the page's main thread
    // (other renderers may be in the trace).
    let (Some(first), Some(last)) = (marks.len().checked_sub(2).map(|i| marks[i]), marks.last())
    else {
        return json!({ "error": format!("{} `{MARK}` marks in the trace, not 2", marks.len()) });
    };
    let (Some(from), Some(to)) = (first["ts"].as_f64(), last["ts"].as_f64()) else {
        return json!({ "error": "a mark without a time" });
    };
    let main = (first["pid"].clone(), first["tid"].clone());
    let mut xs: Vec<(f64, f64, &str)> = events
        .iter()
        .filter(|e| e["ph"] == "X" && (e["pid"].clone(), e["tid"].clone()) == main)
        .filter_map(|e| Some((e["ts"].as_f64()?, e["dur"].as_f64()?, e["name"].as_str()?)))
        .filter(|&(ts, _, _)| (from..=to).contains(&ts))
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut own: HashMap<&'static str, f64> = HashMap::new();
    // The enclosing events still open: (end, phase).
    let mut open: Vec<(f64, &'static str)> = Vec::new();
    for &(ts, dur, name) in &xs {
        while open.last().is_some_and(|&(end, _)| end <= ts) {
            open.pop();
        }
        if let Some(&(_, parent)) = open.last() {
            *own.entry(parent).or_default() -= dur;
        }
        let p = phase(name);
        *own.entry(p).or_default() += dur;
        open.push((ts + dur, p));
    }
    let per_msg = |us: f64| us / 1000.0 / n.max(1) as f64;
    let commits = xs.iter().filter(|e| e.2 == "Commit").count();
    let mut out = json!({ "frames_per_msg": commits as f64 / n.max(1) as f64 });
    for p in ["script", "style", "layout", "paint", "commit", "other"] {
        out[format!("{p}_ms_per_msg")] = json!(per_msg(own.get(p).copied().unwrap_or(0.0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(ts: f64, dur: f64, name: &str) -> Value {
        json!({ "ph": "X", "pid": 1, "tid": 2, "ts": ts, "dur": dur, "name": name })
    }

    fn mark(ts: f64) -> Value {
        json!({ "ph": "I", "pid": 1, "tid": 2, "ts": ts, "name": "TimeStamp", "args": { "data": { "message": MARK } } })
    }

    #[test]
    fn a_phase_gets_its_own_time_not_its_childrens() {
        let events = vec![
            // A warm-up's window, and a paint in it: not counted.
            mark(-900.0),
            x(-500.0, 400.0, "Paint"),
            mark(-100.0),
            mark(0.0),
            // A script task of 5 ms that forced 2 ms of layout, then a frame: 1 ms paint,
            // 1 ms commit; and another thread's layout, not counted.
            x(0.0, 5000.0, "FunctionCall"),
            x(1000.0, 2000.0, "Layout"),
            x(6000.0, 1000.0, "Paint"),
            x(7000.0, 1000.0, "Commit"),
            json!({ "ph": "X", "pid": 1, "tid": 3, "ts": 0.0, "dur": 9000.0, "name": "Layout" }),
            mark(9000.0),
        ];
        let p = phases(&events, 2);
        assert_eq!(p["script_ms_per_msg"], 1.5);
        assert_eq!(p["layout_ms_per_msg"], 1.0);
        assert_eq!(p["paint_ms_per_msg"], 0.5);
        assert_eq!(p["commit_ms_per_msg"], 0.5);
        assert_eq!(p["frames_per_msg"], 0.5);
    }
}
