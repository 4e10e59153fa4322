//! The whole bench's report: the goals with their verdicts, the floor, and each section's
//! tables, as Markdown.

use serde_json::Value;

use super::load::{COMPARE_BRIDGE, COMPARE_ECHO, ONE_THREAD, RELAY, URING_RELAY};
use super::stats::{f, ratio};
use super::{capacity, metrics, page, scale, webtransport};

fn load_table(md: &mut String, section: &Value, baseline: &str) {
    md.push_str(
        "| target | conns | msgs/s | × baseline | p50 µs | p99 µs | p99.9 µs | CPU µs/msg | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in section["cells"].as_array().into_iter().flatten() {
        let name = c["target"].as_str().unwrap_or("");
        let n = c["connections"].as_u64().unwrap_or(0);
        let r = ratio(section, name, baseline, n, "msgs_per_s")
            .map_or("–".to_owned(), |r| format!("{r:.2}"));
        md.push_str(&format!(
            "| {name} | {n} | {} | {r} | {} | {} | {} | {} | {} |\n",
            f(&c["msgs_per_s"], 0),
            f(&c["p50_us"], 0),
            f(&c["p99_us"], 0),
            f(&c["p999_us"], 0),
            f(&c["cpu_us_per_msg"], 1),
            c["errors"].as_u64().unwrap_or(0),
        ));
    }
    for c in section["cells"].as_array().into_iter().flatten() {
        if let Some(err) = c["first_error"].as_str() {
            md.push_str(&format!(
                "\n{} ×{}: first error: {err}\n",
                c["target"].as_str().unwrap_or(""),
                c["connections"]
            ));
        }
    }
}

/// (goal, measured, met?) lines.
type Goals = Vec<(String, String, Option<bool>)>;

/// Adds a goal: its text, the measured value (`None`: not measured), how to show it, whether
/// it meets the goal.
fn add(
    g: &mut Goals,
    goal: &str,
    value: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
    ok: &dyn Fn(f64) -> bool,
) {
    g.push((
        goal.to_owned(),
        value.map_or("not measured".to_owned(), fmt),
        value.map(ok),
    ));
}

/// `v` as a ratio.
fn x(v: f64) -> String {
    format!("{v:.2}×")
}

/// Every goal, in the report's order.
fn goals(r: &Value) -> Goals {
    let mut g = Goals::new();
    load_goals(&mut g, r);
    capacity_and_page_goals(&mut g, r);
    g
}

/// Sections 1 and 2's goals: issue 4's and issue 8's at 100 connections, and issue 18's (the
/// default server as cheap per message as the floor, the bare relay on one current-thread
/// runtime; cheaper and faster than websocat) at 100 and at 1,000.
fn load_goals(g: &mut Goals, r: &Value) {
    let tcp = &r["tcp_echo"];
    let br = &r["bridge"];
    add(
        g,
        "bridge ≥ 0.5× direct TCP (100 sessions, msgs/s; issue 4)",
        ratio(br, "socklab /ws", "direct TCP", 100, "msgs_per_s"),
        &x,
        &|v| v >= 0.5,
    );
    add(
        g,
        "bridge ≥ 4× websockify (100 sessions, msgs/s)",
        ratio(br, "socklab /ws", "websockify", 100, "msgs_per_s"),
        &x,
        &|v| v >= 4.0,
    );
    for n in [100, 1000] {
        floor_goals(g, tcp, br, n, SOCKLAB);
    }
}

/// The rows of one socklab-server binary: its echo's and its bridge's, and what its goals
/// are called.
struct Subject {
    echo: &'static str,
    bridge: &'static str,
    label: &'static str,
}

/// The socklab-server under test.
const SOCKLAB: Subject = Subject {
    echo: "socklab echo",
    bridge: "socklab /ws",
    label: "",
};

/// `bench-load --compare PATH`'s other binary.
const COMPARED: Subject = Subject {
    echo: COMPARE_ECHO,
    bridge: COMPARE_BRIDGE,
    label: ", --compare binary",
};

/// Issue 18's goals at `n` connections for `who`.
fn floor_goals(g: &mut Goals, tcp: &Value, br: &Value, n: u64, who: Subject) {
    let goal = |what: &str| format!("{what} ({n} sessions{})", who.label);
    let bridge = who.bridge;
    add(
        g,
        &goal("TCP echo msgs/s ≥ 1.0× bare tokio echo's"),
        ratio(tcp, who.echo, "bare tokio echo", n, "msgs_per_s"),
        &x,
        &|v| v >= 1.0,
    );
    add(
        g,
        &goal("bridge CPU per message ≤ 1.1× the floor's"),
        ratio(br, bridge, RELAY, n, "cpu_us_per_msg"),
        &x,
        &|v| v <= 1.1,
    );
    add(
        g,
        &goal("bridge CPU per message ≤ 0.8× websocat's"),
        ratio(br, bridge, "websocat", n, "cpu_us_per_msg"),
        &x,
        &|v| v <= 0.8,
    );
    add(
        g,
        &goal("bridge msgs/s ≥ 1.2× websocat's"),
        ratio(br, bridge, "websocat", n, "msgs_per_s"),
        &x,
        &|v| v >= 1.2,
    );
    // Against the better peer (the lower p99): the larger of the paired ratios.
    let better_p99 = ["websocat", "websockify"]
        .iter()
        .filter_map(|p| ratio(br, bridge, p, n, "p99_us"))
        .reduce(f64::max);
    add(
        g,
        &goal("bridge p99 RTT ≤ the better peer's"),
        better_p99,
        &x,
        &|v| v <= 1.0,
    );
}

/// The memory goal (section 3) and the page's (section 4).
fn capacity_and_page_goals(g: &mut Goals, r: &Value) {
    let per_session = r["capacity"].as_array().and_then(|rows| {
        rows.iter()
            .filter_map(|c| c["kib_per_session"].as_f64())
            .reduce(f64::max)
    });
    add(
        g,
        "≤ 40 KiB RSS per idle bridged session (bridge process, worst size measured)",
        per_session,
        &|v| format!("{v:.1} KiB"),
        &|v| v <= 40.0,
    );
    let [(rtt_goal, rtt), (ms_goal, ms), (wait_goal, wait)] = page::goals(&r["page"]);
    add(
        g,
        "page RTT p50 ≤ 1.5× a plain JS WebSocket's, same tab",
        rtt,
        &x,
        &|v| v <= rtt_goal,
    );
    add(
        g,
        "page main thread ≤ 5 ms per echoed message",
        ms,
        &|v| format!("{v:.2} ms"),
        &|v| v <= ms_goal,
    );
    add(
        g,
        "page input waits ≤ 100 ms during a 10,000-line burst and 200 chatting clients",
        wait,
        &|v| format!("{v:.0} ms"),
        &|v| v <= wait_goal,
    );
    let gz = r["page"]["gzip_bytes"].as_f64();
    add(
        g,
        "page ≤ 200 KB gzip (wasm + js)",
        gz,
        &|v| format!("{:.1} KB", v / 1000.0),
        &|v| v <= 200_000.0,
    );
}

/// The floor's rows: what, the peer it is read against, the figure, and the goal.
const FLOOR_ROWS: [(&str, &str, &str, f64); 3] = [
    (
        "msgs/s vs direct TCP (goal ≥ 0.5×)",
        "direct TCP",
        "msgs_per_s",
        0.5,
    ),
    (
        "msgs/s vs websocat (goal ≥ 1.2×)",
        "websocat",
        "msgs_per_s",
        1.2,
    ),
    // A negative goal: lower is better.
    (
        "CPU per message vs websocat (goal ≤ 0.8×)",
        "websocat",
        "cpu_us_per_msg",
        -0.8,
    ),
];

/// What the bare relay, which does no WebSocket work at all, reaches on the bridge goals: a
/// goal the floor itself misses is out of reach for any bridge that forwards over TCP here.
fn floor(md: &mut String, br: &Value) {
    let rows: String = FLOOR_ROWS
        .iter()
        .filter_map(|row| floor_row(br, row))
        .collect();
    if rows.is_empty() {
        return;
    }
    floor_head(md);
    md.push_str(&rows);
    floor_overhead(md, br);
}

/// One row of the floor's table; `None` when the epoll relay has no figure for it.
fn floor_row(br: &Value, &(what, peer, key, goal): &(&str, &str, &str, f64)) -> Option<String> {
    let ours = ratio(br, "socklab /ws", peer, 100, key);
    let epoll = ratio(br, RELAY, peer, 100, key)?;
    let uring = ratio(br, URING_RELAY, peer, 100, key);
    let one = ratio(br, ONE_THREAD, peer, 100, key);
    let verdict = floor_verdict(epoll, uring, goal);
    Some(format!(
        "| {what} | {} | {} | {epoll:.2}× | {} | {verdict} |\n",
        ratio_cell(ours),
        ratio_cell(one),
        ratio_cell(uring),
    ))
}

/// Whether the relays reach `goal`: the epoll floor, else the io_uring one (when measured).
fn floor_verdict(epoll: f64, uring: Option<f64>, goal: f64) -> &'static str {
    match (meets(epoll, goal), uring.map(|u| meets(u, goal))) {
        (true, _) => "reachable",
        (false, Some(true)) => "**beyond the epoll floor**; reached on io_uring",
        (false, Some(false)) => "**beyond both floors**",
        (false, None) => "**beyond the epoll floor**",
    }
}

/// Whether `v` meets `goal` (a positive goal: at least it; a negative one: at most its size).
fn meets(v: f64, goal: f64) -> bool {
    if goal > 0.0 { v >= goal } else { v <= -goal }
}

/// A ratio's table cell: `1.23×`, or `–` when not measured.
fn ratio_cell(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}×"))
}

/// The floor's heading, what its two relays are, and its table's head.
fn floor_head(md: &mut String) {
    md.push_str(
        "\n### The floor\n\n\
         Two relays forward bytes between the load generator and the same echo with no \
         WebSocket work at all (and a plain TCP load generator, cheaper than a WebSocket \
         client). `bare TCP relay (floor)` (`socklab-loadgen bare-relay`) runs on \
         tokio, that is epoll: the same `epoll_wait` plus one `recv` and one `send` syscall per \
         hop as socklab's bridge and websocat. A goal it misses is out of reach for a bridge \
         built that way on this machine. `io_uring relay (experiment)` (`bench/uring-relay`) \
         is the same relay on io_uring, one thread queueing every `recv` and `send` and \
         submitting them together: how far a bridge whose I/O layer were rewritten for \
         io_uring could go. 100 sessions:\n\n\
         | figure | socklab /ws | socklab /ws --threads 1 | epoll relay | io_uring relay | goal |\n\
         |---|---:|---:|---:|---:|---|\n",
    );
}

/// What socklab's bridge costs per message over the epoll relay, when both were measured.
fn floor_overhead(md: &mut String, br: &Value) {
    let over = ratio(br, "socklab /ws", RELAY, 100, "cpu_us_per_msg");
    let over_one = ratio(br, ONE_THREAD, RELAY, 100, "cpu_us_per_msg");
    if let Some(over) = over {
        let one = over_one.map_or_else(String::new, |v| format!(" ({v:.2}× with `--threads 1`)"));
        md.push_str(&format!(
            "\nsocklab's bridge costs **{over:.2}×** the epoll relay's CPU per message{one}: that \
             is what its WebSocket work (framing, masking, UTF-8 checks, lines) and its \
             scheduling add.\n"
        ));
    }
}

/// The whole report: method, goals, the floor, then each section.
pub fn markdown(r: &Value) -> String {
    let mut md = String::new();
    head(&mut md, r);
    goals_table(&mut md, r);
    floor(&mut md, &r["bridge"]);
    load_markdown(&mut md, r);
    capacity::markdown(&mut md, &r["capacity"]);
    page::markdown(&mut md, &r["page"]);
    scale::markdown(&mut md, &r["scale"]);
    webtransport::markdown(&mut md, &r["webtransport"]);
    metrics::markdown(&mut md, &r["metrics"]);
    md
}

/// The title, the machine and the method.
fn head(md: &mut String, r: &Value) {
    md.push_str(&format!(
        "# socklab benchmark report\n\n\
         Machine: {} cores, {}, Linux {}. Loopback only. Whole measured run: {:.0} s{}.\n\n",
        r["machine"]["cores"],
        r["machine"]["cpu"].as_str().unwrap_or("?"),
        r["machine"]["kernel"].as_str().unwrap_or("?"),
        r["seconds"].as_f64().unwrap_or(0.0),
        if r["quick"].as_bool() == Some(true) {
            " (--quick: a smoke run, not for conclusions)"
        } else {
            ""
        },
    ));
    method(md, &r["method"]);
}

/// How the load sections measure (`method`: the plan as the report's JSON has it).
fn method(md: &mut String, m: &Value) {
    md.push_str(&format!(
        "Method: closed loop, pipeline depth 1 (each connection sends one {}-byte message, \
         `\\n` included, and waits for the whole reply); {} s warm-up, then {} s measured; \
         {} round(s) ({} at 100 connections, where the goals are read), interleaved; figures \
         are the {}. CPU µs/msg is the serving process's own \
         utime + stime (children included) over the whole run divided by every reply in it. \
         Every server is a separate release-build process; the load generator is \
         `socklab-loadgen load` in another.\n\n",
        m["message_bytes"],
        m["warmup_s"],
        m["measured_s"],
        m["rounds"],
        m["goal_rounds"],
        m["figures"].as_str().unwrap_or(""),
    ));
}

/// Each goal with what was measured and its verdict.
fn goals_table(md: &mut String, r: &Value) {
    md.push_str(
        "The optimisations made so far and their measured effect are in docs/benchmarks.md.\n\n",
    );
    goal_rows(md, goals(r));
}

/// The goals' table.
fn goal_rows(md: &mut String, goals: Goals) {
    md.push_str("## Goals\n\n| goal | measured | verdict |\n|---|---:|---|\n");
    for (goal, value, ok) in goals {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        md.push_str(&format!("| {goal} | {value} | {verdict} |\n"));
    }
}

/// Sections 1 and 2: the load tables, the rows skipped, the peers' versions.
fn load_markdown(md: &mut String, r: &Value) {
    md.push_str(
        "\n## 1. TCP echo: socklab vs a bare tokio echo\n\n\
         The bare echo (`socklab-loadgen bare-echo`) reads and writes back, no \
         framing, no stamp; socklab stamps every line.\n\n",
    );
    load_table(md, &r["tcp_echo"], "bare tokio echo");

    md.push_str(
        "\n## 2. Bridge: socklab /ws vs direct TCP, the floor and the peers\n\n\
         Every bridge forwards to the same bare tokio echo; binary WebSocket messages \
         (websockify takes binary only). `direct TCP` is the load generator talking TCP to \
         that echo; its CPU is the echo's. `bare TCP relay (floor)` is a byte relay in front \
         of that echo with no WebSocket at all, loaded over plain TCP",
    );
    let has = |name: &str| {
        let cells = r["bridge"]["cells"].as_array();
        cells.is_some_and(|cells| cells.iter().any(|c| c["target"] == name))
    };
    if has(URING_RELAY) {
        md.push_str(
            ", and `io_uring relay (experiment)` the same on io_uring, at 100 sessions only \
             (see \"The floor\")",
        );
    }
    md.push_str(".\n\n");
    load_table(md, &r["bridge"], "direct TCP");
    for s in r["bridge"]["skipped"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "\n{} not measured: {}\n",
            s["target"].as_str().unwrap_or(""),
            s["why"].as_str().unwrap_or("")
        ));
    }
    let peers = &r["peers"];
    let how = [
        ("websocat", "`websocat --binary ws-l:ADDR tcp:ECHO`"),
        ("websockify", "`websockify ADDR ECHO`"),
    ];
    let named: Vec<String> = how
        .iter()
        .filter(|(p, _)| peers[p]["missing"].is_null())
        .map(|(p, how)| format!("{p} {} ({how})", f_str(&peers[p]["version"])))
        .collect();
    if !named.is_empty() {
        md.push_str(&format!("\nPeers: {}.\n", named.join(", ")));
    }
}

fn f_str(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// `cargo xtask bench-load`'s report: the method, issue 18's goals at 100 and 1,000 sessions
/// with their verdicts (also for the `--compare` binary when there is one), then sections 1
/// and 2's tables.
pub fn load_only_markdown(md: &mut String, r: &Value) {
    method(md, &r["method"]);
    let (tcp, br) = (&r["tcp_echo"], &r["bridge"]);
    let mut g = Goals::new();
    let compared = r["compare"].as_str();
    for n in [100, 1000] {
        floor_goals(&mut g, tcp, br, n, SOCKLAB);
        if compared.is_some() {
            floor_goals(&mut g, tcp, br, n, COMPARED);
        }
    }
    goal_rows(md, g);
    if let Some(path) = compared {
        md.push_str(&format!(
            "\n`--compare` binary: `{path}`, measured in the same rounds as this build \
             (rows `{COMPARE_ECHO}` and `{COMPARE_BRIDGE}`).\n"
        ));
    }
    load_markdown(md, r);
}
