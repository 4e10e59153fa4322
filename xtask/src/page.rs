//! Building the page: `trunk build --release --offline` from the root `Trunk.toml` into `dist/`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cmd::{self, command};

/// Where the built page goes; the server's `--static-dir` and the tests' `SOCKLAB_DIST`.
pub fn dist_dir() -> PathBuf {
    cmd::root().join("dist")
}

/// Builds the page into [`dist_dir`]. Returns `false` (and says so) when the workspace has no
/// `Trunk.toml`, i.e. there is no page to build yet.
///
/// `--offline` makes trunk use the `wasm-bindgen` on `PATH` instead of downloading one (and
/// `wasm-opt`, which a release build runs unless `index.html` sets `data-wasm-opt="0"`); it also
/// passes `--offline` to its `cargo build`, so the crates are fetched first with `cargo fetch`.
pub fn build() -> Result<bool> {
    let root = cmd::root();
    if !root.join("Trunk.toml").is_file() {
        println!(
            "page: no Trunk.toml in {}: no page to build, skipping",
            root.display()
        );
        return Ok(false);
    }
    if cmd::which("trunk").is_none() {
        bail!("trunk is not installed: run `cargo xtask tools`");
    }
    println!("page: fetching crates, then building with trunk into dist/");
    cmd::run(cmd::cargo().arg("fetch").current_dir(&root))?;
    cmd::run(
        command("trunk")
            .args(["build", "--release", "--dist"])
            .arg(dist_dir())
            .arg("--offline")
            .current_dir(&root),
    )?;
    Ok(true)
}
