//! `cargo xtask`: socklab's automation (see `HELP`). Few dependencies, so it compiles fast:
//! anyhow and serde_json, and for `bench-page` a WebDriver client on tokio with plain HTTP.
//!
//! Adding a subcommand: one arm in [`dispatch`], one function, one paragraph in `HELP`.

mod bench;
mod cmd;
mod cycles;
mod page;
mod soak;
mod tools;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::tools::Toolbox;

const HELP: &str = "\
cargo xtask: build, run and test socklab

USAGE
    cargo xtask <COMMAND> [OPTIONS]

COMMANDS
    run [--] [SERVER FLAGS...]
        Install the page's tools if missing, build the page (trunk, release) into dist/,
        build both binaries (release: target/release/socklab-server and socklab-client, which
        the page's join commands offer), then run
        `socklab-server --static-dir dist/ SERVER FLAGS...`, with --capture (socklab's
        own packets) when run as root.
        Example: cargo xtask run -- --http 127.0.0.1:8081

    test [--no-browser] [-- TEST RUNNER ARGS...]
        Install what is missing (page tools; Chromium, chromedriver and CJK fonts from apt and
        axe-core from npm for the browser tests; haproxy, redis-server, nginx and
        libnginx-mod-stream from apt for the cluster tests; prometheus from apt for the metrics
        tests), build the page, then run every test in the workspace: doctests with
        `cargo test --doc` and the rest with `cargo nextest run` (or everything with `cargo test`
        when nextest is not installed). The tests get SOCKLAB_DIST=dist/,
        SOCKLAB_REQUIRE_BROWSER=1, CHROMIUM=/usr/bin/chromium,
        CHROMEDRIVER=/usr/bin/chromedriver, SOCKLAB_AXE=<axe-core's axe.min.js>,
        SOCKLAB_REQUIRE_CLUSTER=1, SOCKLAB_REQUIRE_PROMETHEUS=1 and SOCKLAB_REQUIRE_IPV6=1 (a
        missing haproxy/redis-server, prometheus or IPv6 loopback fails its tests, as it does
        wherever CI is set). A test that may skip records `name: reason` in the file
        SOCKLAB_SKIP_LOG names (target/test-skips.txt); the last line counts them:
        N tests skipped (name: reason; ...).
        --no-browser: install no browser and do not set SOCKLAB_REQUIRE_BROWSER (nor CHROMIUM,
        CHROMEDRIVER), so browser tests skip where no browser is installed (quick local loops).
        Args after `--` go to the test runner (e.g. a test name filter; doctests are then skipped).

    lint
        cargo fmt --all --check; cargo clippy --workspace --all-targets -- -D warnings;
        cargo clippy -p socklab-web --target wasm32-unknown-unknown -- -D warnings; and
        rustfmt and clippy for bench/uring-relay (its own workspace); and the module-cycle
        check (below).

    cycles
        The module-cycle check alone: in every target of every workspace crate, no module may
        import (through `use` or a path, directly or through others) from a module that
        imports it. Each cycle is printed as `a -> b -> a`. See ARCHITECTURE.md.

    bench [--quick]
        Benchmarks on loopback, each figure beside its baseline in the same run: TCP echo vs a
        bare tokio echo; the /ws bridge (also with --threads 1) vs direct TCP, a bare TCP relay
        (the floor), websocat and websockify (installed at pinned versions); RSS and fds at 1k
        and 10k idle bridged sessions; the page (if dist/ is built): size, first paint, its
        RTT beside a plain JS WebSocket, main-thread ms per echoed message. The load generator
        and the bare echo and relay are socklab-loadgen (bench/loadgen, release build).
        Writes target/bench/report.md and report.json. About 11 minutes on 2 cores. --quick: a smoke run (under a minute) that installs
        nothing and measures less. Section 5 is bench-scale's, section 7 bench-metrics'.

    bench-load [--quick] [--compare PATH]
        Only the load sections, with the rows issue 18's goals are read from: TCP echo vs the
        bare tokio echo; the /ws bridge vs direct TCP, the floor (the bare current-thread
        relay) and websocat (installed at its pinned version unless --quick); at 100 and
        1,000 sessions, in the full bench's interleaved rounds. Prints each goal with met or
        missed and writes target/bench/load.md and load.json. About 5 minutes (--quick: one
        1 s round each, under a minute). --compare PATH: another socklab-server binary (say,
        main's, built into another target dir) measured beside this build in the same rounds,
        its goals beside this build's.

    bench-scale [--quick]
        Only the scaling section: one socklab-server direct, then 1, 2 and 3 behind HAProxy
        (installed from apt unless --quick), TCP echo and /ws, 200 connections (50 with
        --quick). Writes target/bench/scale.md and scale.json. About 2 minutes.

    bench-capture [--quick]
        What --capture costs (run as root): socklab's echo and /ws bridge with capture off and
        on, side by side at 100 connections: server CPU per message, and the packets read,
        captured and dropped (by the kernel, by the queue) meanwhile. Writes
        target/bench/capture.md and capture.json. About 2 minutes (--quick: 20 s).

    bench-page [--quick] [--long-log]
        Only the page section (build the page first: trunk build --release --offline): size,
        first paint, page RTT ÷ plain JS RTT in the same tab, main-thread ms per echoed message
        (CDP Performance.getMetrics). Writes target/bench/page.md and page.json. Under a minute.
        --long-log: 230 messages typed first (page and floor page), so the page's log is nearly
        full (about 490 of its 500 rows) while the messages are measured.

    bench-metrics [--quick]
        Only the metrics section: echo and /ws bridge CPU µs per message with metrics recording
        on (as shipped) and off (the same binary with SOCKLAB_BENCH_METRICS_OFF set), side by
        side, a fresh pair of servers each round; goal on/off <= 1.03. Writes
        target/bench/metrics.md and metrics.json. About 3 minutes (--quick: 3 rounds of 1 s
        instead of 9 of 3 s).

    soak [--minutes N] [--fuzz-seconds S] [--no-fuzz]
        The long checks, bounded: 500 mixed clients (raw TCP, bridge, UDP) with random
        disconnects against socklab-server for N minutes (default 5; release build), checking
        every byte comes back once, in order, and printing bytes, sessions, the server's RSS
        and fd count; then each cargo-fuzz target in fuzz/ for S seconds (default 60), on the
        stable toolchain with RUSTC_BOOTSTRAP=1. Installs cargo-fuzz 0.13.2 if missing.

    tools [--no-browser]
        Only install what is missing, and report what was present and what was installed.

    help
        This text.

Tools are installed only when missing or at another version: the wasm32 target (rustup),
trunk 0.21.14 and wasm-bindgen-cli at Cargo.lock's wasm-bindgen version (cargo install, into
$CARGO_HOME/bin), binaryen 132.0.0 (wasm-opt) and axe-core 4.14.1 (npm install --prefix
target/tools/node: project-local, never global), apt packages as root or through sudo. Both
$CARGO_HOME/bin and target/tools/node/node_modules/.bin are put first on PATH for every
command xtask runs, so Trunk finds that wasm-opt and never downloads one.
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    match command {
        "run" => run(rest),
        "test" => test(rest),
        "lint" => lint(rest),
        "cycles" => {
            parse("cycles", rest, &[])?;
            module_cycles()
        }
        "tools" => tools_cmd(rest),
        "soak" => soak::soak(rest),
        "bench" => {
            let args = parse("bench", rest, &["--quick"])?;
            bench::bench(args.flags.contains(&"--quick"))
        }
        "bench-load" => bench_load(rest),
        "bench-scale" => {
            let args = parse("bench-scale", rest, &["--quick"])?;
            bench::scale_only(args.flags.contains(&"--quick"))
        }
        "bench-capture" => {
            let args = parse("bench-capture", rest, &["--quick"])?;
            bench::capture_only(args.flags.contains(&"--quick"))
        }
        "bench-page" => {
            let args = parse("bench-page", rest, &["--quick", "--long-log"])?;
            bench::page_only(
                args.flags.contains(&"--quick"),
                args.flags.contains(&"--long-log"),
            )
        }
        "bench-metrics" => {
            let args = parse("bench-metrics", rest, &["--quick"])?;
            bench::metrics_only(args.flags.contains(&"--quick"))
        }
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{HELP}"),
    }
}

/// `cargo xtask bench-load [--quick] [--compare PATH]`.
fn bench_load(args: &[String]) -> Result<()> {
    let (mut quick, mut compare) = (false, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--compare" => match args.next() {
                Some(path) => compare = Some(std::path::PathBuf::from(path)),
                None => bail!("`cargo xtask bench-load --compare` needs a socklab-server binary"),
            },
            bad => bail!("`cargo xtask bench-load` does not take `{bad}`\n\n{HELP}"),
        }
    }
    bench::load_only(quick, compare.as_deref())
}

/// Flags before an optional `--`, and the arguments after it.
struct Args<'a> {
    flags: Vec<&'a str>,
    passthrough: &'a [String],
}

/// Splits at the first `--`; accepts only `allowed` flags before it.
fn parse<'a>(command: &str, args: &'a [String], allowed: &[&str]) -> Result<Args<'a>> {
    let split = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let (before, after) = args.split_at(split);
    let flags: Vec<&str> = before.iter().map(String::as_str).collect();
    if let Some(bad) = flags.iter().find(|f| !allowed.contains(f)) {
        bail!("`cargo xtask {command}` does not take `{bad}`\n\n{HELP}");
    }
    Ok(Args {
        flags,
        passthrough: after.get(1..).unwrap_or_default(),
    })
}

fn run(args: &[String]) -> Result<()> {
    // Everything is for the server; a leading `--` is optional.
    let server_args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let mut toolbox = Toolbox::default();
    tools::page_tools(&mut toolbox)?;
    page::build()?;
    // Both binaries: the page offers `target/release/socklab-client HOST:PORT` to copy.
    cmd::run(
        cmd::cargo()
            .args(["build", "--release", "-p", "socklab-server", "--bins"])
            .current_dir(cmd::root()),
    )?;
    let mut server = cmd::cargo();
    server
        .args([
            "run",
            "--release",
            "-p",
            "socklab-server",
            "--bin",
            "socklab-server",
            "--",
        ])
        .arg("--static-dir")
        .arg(page::dist_dir())
        .args(server_args)
        .current_dir(cmd::root());
    // Packet capture needs Linux and CAP_NET_RAW: root has it, and a rebuilt binary loses a
    // setcap. Elsewhere the server refuses --capture.
    let root = cmd::probe(cmd::command("id").arg("-u")).is_some_and(|uid| uid == "0");
    if !cfg!(target_os = "linux") {
        println!("packet capture off: it needs Linux (AF_PACKET)");
    } else if root && !server_args.iter().any(|a| a == "--capture") {
        server.arg("--capture");
    } else if !root {
        println!(
            "packet capture off (not root): `sudo setcap cap_net_raw+ep \
             target/release/socklab-server`, then run it with --capture"
        );
    }
    println!("$ {}", cmd::display(&server));
    exec(server)
}

/// Replaces this process with `cmd` (so Ctrl-C and the exit status are the server's own).
#[cfg(unix)]
fn exec(mut cmd: std::process::Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    bail!("could not start `{}`: {err}", cmd::display(&cmd))
}

#[cfg(not(unix))]
fn exec(mut cmd: std::process::Command) -> Result<()> {
    let status = cmd.status()?;
    if !status.success() {
        bail!("`{}` failed ({status})", cmd::display(&cmd));
    }
    Ok(())
}

fn test(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let args = parse("test", args, &["--no-browser"])?;
    let browser = !args.flags.contains(&"--no-browser");
    install_test_tools(browser)?;
    let page_built = page::build()?;
    let skip_log = fresh_skip_log()?;
    let results = run_test_runners(args.passthrough, |cmd| test_env(cmd, browser, &skip_log));
    let summary = format!(
        "{}; {}; {}; {} s",
        skipped_tests(&skip_log)?,
        if page_built {
            "page built into dist/"
        } else {
            "no page (no Trunk.toml)"
        },
        if browser {
            "browser tests required"
        } else {
            "browser not required (--no-browser)"
        },
        started.elapsed().as_secs()
    );
    report_tests(&results, &summary)
}

/// Every tool the tests use (the browser's only when they must run).
fn install_test_tools(browser: bool) -> Result<()> {
    let mut toolbox = Toolbox::default();
    tools::page_tools(&mut toolbox)?;
    if browser {
        tools::browser_tools(&mut toolbox)?;
    }
    tools::cluster_tools(&mut toolbox)?;
    tools::prometheus_tools(&mut toolbox)?;
    tools::capture_tools(&mut toolbox)
}

/// A test that cannot run here appends `name: reason` to this file (socklab_tests::skip), so
/// the summary can count every skip; a fresh file per run.
fn fresh_skip_log() -> Result<PathBuf> {
    let skip_log = cmd::target_dir().join("test-skips.txt");
    match std::fs::remove_file(&skip_log) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            bail!("cannot remove {}: {err}", skip_log.display())
        }
        _ => Ok(skip_log),
    }
}

/// What the tests read from their environment: where the page and the tools are, and which
/// parts must run rather than skip.
fn test_env(cmd: &mut std::process::Command, browser: bool, skip_log: &Path) {
    cmd.current_dir(cmd::root())
        .env("SOCKLAB_DIST", page::dist_dir())
        .env("SOCKLAB_SKIP_LOG", skip_log)
        .env("SOCKLAB_REQUIRE_CLUSTER", "1")
        .env("SOCKLAB_REQUIRE_PROMETHEUS", "1")
        .env("SOCKLAB_REQUIRE_IPV6", "1");
    if browser {
        cmd.env("SOCKLAB_REQUIRE_BROWSER", "1")
            .env("CHROMIUM", tools::CHROMIUM)
            .env("CHROMEDRIVER", tools::CHROMEDRIVER)
            .env(
                "SOCKLAB_AXE",
                tools::npm_package_dir("axe-core").join("axe.min.js"),
            );
    } else {
        // The browser tests then run if a browser happens to be installed, else skip.
        cmd.env_remove("SOCKLAB_REQUIRE_BROWSER");
    }
}

/// One line for the whole run (and each failure's error); an error if any runner failed.
fn report_tests(results: &[(&str, Result<()>)], summary: &str) -> Result<()> {
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, result)| result.is_err())
        .map(|(what, _)| *what)
        .collect();
    if failed.is_empty() {
        let ran: Vec<&str> = results.iter().map(|(what, _)| *what).collect();
        println!("xtask test: OK: {} passed; {summary}", ran.join(" and "));
        return Ok(());
    }
    for (what, result) in results {
        if let Err(err) = result {
            eprintln!("xtask test: {what}: {err:#}");
        }
    }
    println!(
        "xtask test: FAILED: {} failed; {summary}",
        failed.join(" and ")
    );
    bail!("tests failed")
}

/// Runs doctests (`cargo test --doc`) then the rest with nextest, or everything with `cargo
/// test` when nextest is missing; (what, result) for each runner, in order.
fn run_test_runners(
    passthrough: &[String],
    env_for: impl Fn(&mut std::process::Command),
) -> Vec<(&'static str, Result<()>)> {
    let nextest = cmd::probe(cmd::cargo().args(["nextest", "--version"])).is_some();
    let mut results: Vec<(&str, Result<()>)> = Vec::new();
    if nextest {
        // Doctests go first so that nextest's summary is the last thing the log shows.
        if passthrough.is_empty() {
            let mut doc = cmd::cargo();
            doc.args(["test", "--doc", "--workspace"]);
            env_for(&mut doc);
            results.push(("doctests", cmd::run(&mut doc)));
        } else {
            println!("test: a test filter was given, so doctests are skipped");
        }
        let mut run = cmd::cargo();
        run.args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(passthrough);
        env_for(&mut run);
        results.push(("nextest", cmd::run(&mut run)));
    } else {
        println!("test: cargo-nextest is not installed, using cargo test");
        let mut run = cmd::cargo();
        run.args(["test", "--workspace", "--no-fail-fast"]);
        if !passthrough.is_empty() {
            run.arg("--").args(passthrough);
        }
        env_for(&mut run);
        results.push(("cargo test", cmd::run(&mut run)));
    }
    results
}

/// "0 tests skipped", or "N tests skipped (name: reason; …)" from the skip log.
fn skipped_tests(skip_log: &std::path::Path) -> Result<String> {
    let text = match std::fs::read_to_string(skip_log) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => bail!("cannot read {}: {err}", skip_log.display()),
    };
    Ok(skip_summary(&text))
}

fn skip_summary(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.len() {
        0 => "0 tests skipped".to_owned(),
        n => format!("{n} tests skipped ({})", lines.join("; ")),
    }
}

/// What `cargo xtask lint` runs, in order: (what, cargo's arguments).
const LINT_CHECKS: [(&str, &[&str]); 5] = [
    ("rustfmt", &["fmt", "--all", "--check"]),
    (
        "clippy (native)",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ),
    (
        "clippy (page, wasm32)",
        &[
            "clippy",
            "-p",
            "socklab-web",
            "--target",
            tools::WASM_TARGET,
            "--",
            "-D",
            "warnings",
        ],
    ),
    // The bench's io_uring relay is its own workspace (it needs `unsafe`).
    (
        "rustfmt (bench/uring-relay)",
        &[
            "fmt",
            "--manifest-path",
            "bench/uring-relay/Cargo.toml",
            "--check",
        ],
    ),
    (
        "clippy (bench/uring-relay)",
        &[
            "clippy",
            "--locked",
            "--manifest-path",
            "bench/uring-relay/Cargo.toml",
            "--target-dir",
            "target/uring-relay",
            "--",
            "-D",
            "warnings",
        ],
    ),
];

fn lint(args: &[String]) -> Result<()> {
    parse("lint", args, &[])?;
    let mut toolbox = Toolbox::default();
    tools::lint_tools(&mut toolbox)?;
    // Run every check, then report, so one run shows every problem.
    let failed = run_lint_checks();
    report_lint(&failed)
}

/// Runs every check of [`LINT_CHECKS`], then the module-cycle check; the ones that failed.
fn run_lint_checks() -> Vec<&'static str> {
    let mut failed = Vec::new();
    for (what, cargo_args) in LINT_CHECKS {
        if let Err(err) = cmd::run(cmd::cargo().args(cargo_args).current_dir(cmd::root())) {
            eprintln!("xtask lint: {what}: {err:#}");
            failed.push(what);
        }
    }
    if let Err(err) = module_cycles() {
        eprintln!("xtask lint: module cycles: {err:#}");
        failed.push("module cycles");
    }
    failed
}

/// One line naming every check when all passed; else an error naming those that failed.
fn report_lint(failed: &[&str]) -> Result<()> {
    if failed.is_empty() {
        let mut all: Vec<&str> = LINT_CHECKS.iter().map(|(what, _)| *what).collect();
        all.push("module cycles");
        println!("xtask lint: OK: {}", all.join(", "));
        Ok(())
    } else {
        bail!("lint failed: {}", failed.join(", "))
    }
}

/// Fails when any target of any workspace crate has a module import cycle, naming each.
fn module_cycles() -> Result<()> {
    let mut metadata = cmd::cargo();
    metadata
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(cmd::root());
    let json = cmd::probe(&mut metadata).context("`cargo metadata` failed")?;
    let metadata: serde_json::Value =
        serde_json::from_str(&json).context("`cargo metadata` printed no JSON")?;
    let roots = cycles::workspace_roots(&metadata);
    let found = cycles::check(&roots, cycles::ALLOWED)?;
    if found.is_empty() {
        println!(
            "module cycles: none in {} crate targets ({} known, listed in cycles::ALLOWED)",
            roots.len(),
            cycles::ALLOWED.len()
        );
        return Ok(());
    }
    for cycle in &found {
        eprintln!("module cycle: {cycle}");
    }
    bail!(
        "{} module import cycle(s); see ARCHITECTURE.md for the layers",
        found.len()
    )
}

fn tools_cmd(args: &[String]) -> Result<()> {
    let args = parse("tools", args, &["--no-browser"])?;
    let mut toolbox = Toolbox::default();
    tools::page_tools(&mut toolbox)?;
    if !args.flags.contains(&"--no-browser") {
        tools::browser_tools(&mut toolbox)?;
    }
    println!("{}", toolbox.summary());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skip_summary_counts_each_skip_with_its_reason() {
        assert_eq!(skip_summary(""), "0 tests skipped");
        assert_eq!(
            skip_summary("a: no browser\nb: no IPv6 loopback\n"),
            "2 tests skipped (a: no browser; b: no IPv6 loopback)"
        );
    }
}
