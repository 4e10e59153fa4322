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

/// One complete event on the page's main thread within the measured window, with its own
/// time: its duration less that of the events nested in it.
struct Timed<'a> {
    name: &'a str,
    own_us: f64,
    event: &'a Value,
}

/// The page's main-thread events between the last two [`MARK`]s, each with its own time, or
/// why there are none.
fn window(events: &[Value]) -> Result<Vec<Timed<'_>>, String> {
    let marks: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "TimeStamp" && e["args"]["data"]["message"] == MARK)
        .collect();
    // The last two marks (earlier ones are a warm-up's); they come from the page's main thread
    // (other renderers may be in the trace).
    let (Some(first), Some(last)) = (marks.len().checked_sub(2).map(|i| marks[i]), marks.last())
    else {
        return Err(format!(
            "{} `{MARK}` marks in the trace, not 2",
            marks.len()
        ));
    };
    let (Some(from), Some(to)) = (first["ts"].as_f64(), last["ts"].as_f64()) else {
        return Err("a mark without a time".to_owned());
    };
    let main = (&first["pid"], &first["tid"]);
    let mut xs: Vec<(f64, f64, &str, &Value)> = events
        .iter()
        .filter(|e| e["ph"] == "X" && (&e["pid"], &e["tid"]) == main)
        .filter_map(|e| {
            Some((
                e["ts"].as_f64()?,
                e["dur"].as_f64()?,
                e["name"].as_str()?,
                e,
            ))
        })
        .filter(|&(ts, ..)| (from..=to).contains(&ts))
        .collect();
    xs.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut timed: Vec<Timed> = Vec::with_capacity(xs.len());
    // The enclosing events still open: (end, index in `timed`).
    let mut open: Vec<(f64, usize)> = Vec::new();
    for (ts, dur, name, event) in xs {
        while open.last().is_some_and(|&(end, _)| end <= ts) {
            open.pop();
        }
        if let Some(&(_, parent)) = open.last() {
            timed[parent].own_us -= dur;
        }
        open.push((ts + dur, timed.len()));
        timed.push(Timed {
            name,
            own_us: dur,
            event,
        });
    }
    Ok(timed)
}

/// Per message (`n`): each phase's ms on the renderer's main thread between the last two
/// [`MARK`]s, and the frames committed.
pub fn phases(events: &[Value], n: usize) -> Value {
    let timed = match window(events) {
        Ok(timed) => timed,
        Err(error) => return json!({ "error": error }),
    };
    let mut own: HashMap<&'static str, f64> = HashMap::new();
    for t in &timed {
        *own.entry(phase(t.name)).or_default() += t.own_us;
    }
    let per_msg = |us: f64| us / 1000.0 / n.max(1) as f64;
    let commits = timed.iter().filter(|t| t.name == "Commit").count();
    let mut out = json!({ "frames_per_msg": commits as f64 / n.max(1) as f64 });
    for p in ["script", "style", "layout", "paint", "commit", "other"] {
        out[format!("{p}_ms_per_msg")] = json!(per_msg(own.get(p).copied().unwrap_or(0.0)));
    }
    out
}

/// Where the paint phase's `Paint` time went, per message (`n`): one entry per painted layer
/// (Chromium names each by the DOM node that roots it, as a backend node id), most costly
/// first. A layer is repainted when something in it changed; its own time is its recording,
/// less the layers nested in it.
pub fn paint_layers(events: &[Value], n: usize) -> Vec<PaintLayer> {
    let Ok(timed) = window(events) else {
        return Vec::new();
    };
    let mut layers: Vec<PaintLayer> = Vec::new();
    for t in timed.iter().filter(|t| t.name == "Paint") {
        let Some(node) = t.event["args"]["data"]["nodeId"].as_i64() else {
            continue;
        };
        let i = match layers.iter().position(|l| l.node == node) {
            Some(i) => i,
            None => {
                layers.push(PaintLayer {
                    node,
                    repaints_per_msg: 0.0,
                    ms_per_msg: 0.0,
                });
                layers.len() - 1
            }
        };
        layers[i].repaints_per_msg += 1.0 / n.max(1) as f64;
        layers[i].ms_per_msg += t.own_us / 1000.0 / n.max(1) as f64;
    }
    layers.sort_by(|a, b| b.ms_per_msg.total_cmp(&a.ms_per_msg));
    layers
}

/// One painted layer in [`paint_layers`].
#[derive(Debug, PartialEq)]
pub struct PaintLayer {
    /// The backend DOM node id of the element that roots it (`DOM.describeNode` names it).
    pub node: i64,
    pub repaints_per_msg: f64,
    pub ms_per_msg: f64,
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

    fn paint(ts: f64, dur: f64, node: i64) -> Value {
        let mut e = x(ts, dur, "Paint");
        e["args"] = json!({ "data": { "nodeId": node } });
        e
    }

    #[test]
    fn a_layer_gets_its_own_paint_time_not_its_nested_layers() {
        let events = vec![
            mark(0.0),
            // Two frames. The document (node 2) painted in both, the log (node 9) nested in
            // it in both, the teaching strip (node 5) in the second only.
            paint(1000.0, 3000.0, 2),
            paint(1500.0, 1000.0, 9),
            paint(10000.0, 6000.0, 2),
            paint(10500.0, 1000.0, 9),
            paint(12000.0, 3000.0, 5),
            // Not a paint: not counted.
            x(20000.0, 4000.0, "Layout"),
            mark(30000.0),
        ];
        let layers = paint_layers(&events, 2);
        let l = |node, repaints_per_msg, ms_per_msg| PaintLayer {
            node,
            repaints_per_msg,
            ms_per_msg,
        };
        assert_eq!(layers, vec![l(2, 1.0, 2.0), l(5, 0.5, 1.5), l(9, 1.0, 1.0)]);
    }

    #[test]
    fn no_window_no_layers() {
        assert_eq!(paint_layers(&[paint(0.0, 1.0, 2)], 1), vec![]);
    }
}
