//! `cargo xtask soak`: the long, bounded checks kept out of `cargo xtask test`: the mixed-client
//! soak against `socklab-server` as a process (`server/tests/soak.rs`, release build), then
//! every cargo-fuzz target in `fuzz/` for a fixed time each.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::tools::{Lock, Toolbox};

/// cargo-fuzz is pinned; it is installed only by this command.
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The targets in `fuzz/fuzz_targets/`.
pub const FUZZ_TARGETS: [&str; 5] = ["framer", "stamper", "splitter", "client_text", "ws_frames"];

/// The command's options.
struct Options {
    minutes: u64,
    fuzz_seconds: u64,
    fuzz: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        minutes: 5,
        fuzz_seconds: 60,
        fuzz: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u64> {
            it.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a whole number"))
        };
        match arg.as_str() {
            "--minutes" => o.minutes = number("--minutes")?,
            "--fuzz-seconds" => o.fuzz_seconds = number("--fuzz-seconds")?,
            "--no-fuzz" => o.fuzz = false,
            other => bail!("`cargo xtask soak` does not take `{other}` (see `cargo xtask help`)"),
        }
    }
    if o.minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    Ok(o)
}

/// Runs the soak, then the fuzzers; every step runs even if an earlier one failed.
pub fn soak(args: &[String]) -> Result<()> {
    let o = options(args)?;
    let started = Instant::now();
    let mut results: Vec<(String, Result<()>)> = Vec::new();

    let mut test = cmd::cargo();
    test.args([
        "test",
        "--release",
        "-p",
        "socklab-server",
        "--test",
        "soak",
        "--",
        "--ignored",
        "--nocapture",
    ])
    .env("SOCKLAB_SOAK_SECS", (o.minutes * 60).to_string())
    .current_dir(cmd::root());
    results.push((
        format!("soak ({} min, 500 clients)", o.minutes),
        cmd::run(&mut test),
    ));

    if o.fuzz {
        let mut toolbox = Toolbox::default();
        toolbox.ensure_cargo_bin("cargo-fuzz", "cargo-fuzz", CARGO_FUZZ_VERSION, Lock::Locked)?;
        let fuzz_dir = cmd::root().join("fuzz");
        for target in FUZZ_TARGETS {
            // New inputs go to a scratch corpus under fuzz/target/; the seeds in
            // fuzz/corpus/ are read, never written.
            let scratch = fuzz_dir.join("target").join("corpus").join(target);
            std::fs::create_dir_all(&scratch)
                .with_context(|| format!("creating {}", scratch.display()))?;
            let mut run = cmd::cargo();
            run.args(["fuzz", "run", target])
                .arg(&scratch)
                .arg(fuzz_dir.join("corpus").join(target))
                .args(["--", &format!("-max_total_time={}", o.fuzz_seconds)])
                // cargo-fuzz passes nightly-only flags (-Zsanitizer=address); this lets the
                // stable toolchain accept them.
                .env("RUSTC_BOOTSTRAP", "1")
                .current_dir(&fuzz_dir);
            results.push((
                format!("fuzz {target} ({} s)", o.fuzz_seconds),
                cmd::run(&mut run),
            ));
        }
    }

    let secs = started.elapsed().as_secs();
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(what, _)| what.as_str())
        .collect();
    let ran: Vec<&str> = results.iter().map(|(what, _)| what.as_str()).collect();
    if failed.is_empty() {
        println!("xtask soak: OK: {}; {secs} s", ran.join(", "));
        Ok(())
    } else {
        for (what, result) in &results {
            if let Err(err) = result {
                eprintln!("xtask soak: {what}: {err:#}");
            }
        }
        println!("xtask soak: FAILED: {}; {secs} s", failed.join(", "));
        bail!("soak failed")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse() {
        let o = options(&args(&["--minutes", "2", "--fuzz-seconds", "30"])).unwrap();
        assert_eq!((o.minutes, o.fuzz_seconds, o.fuzz), (2, 30, true));
        assert!(!options(&args(&["--no-fuzz"])).unwrap().fuzz);
        assert!(options(&args(&["--minutes"])).is_err());
        assert!(options(&args(&["--minutes", "0"])).is_err());
        assert!(options(&args(&["--bogus"])).is_err());
    }
}
