//! The peers the bridge is compared with, websocat and websockify: installed at pinned
//! versions (issue 8: "install the peers in the bench script at pinned versions"), or the
//! reason they are not.

use serde_json::{Value, json};

use crate::cmd::{self, command, probe};
use crate::tools::{Lock, Toolbox};

/// The pinned versions.
pub const WEBSOCAT_VERSION: &str = "1.14.1";
pub const WEBSOCKIFY_VERSION: &str = "0.13.0";

/// websocat and websockify: installed at pinned versions, or the reason they are not.
pub struct Peers {
    pub websocat: std::result::Result<(), String>,
    pub websockify: std::result::Result<(), String>,
}

impl Peers {
    /// Full runs install what is missing; `--quick` only uses what is already there.
    pub fn ensure(toolbox: &mut Toolbox, quick: bool) -> Peers {
        let websocat = if quick {
            present("websocat", WEBSOCAT_VERSION)
        } else {
            install_websocat(toolbox)
        };
        let websockify = if quick {
            present("websockify", WEBSOCKIFY_VERSION)
        } else {
            toolbox
                .ensure_pip("websockify", WEBSOCKIFY_VERSION)
                .map_err(|e| format!("{e:#}"))
        };
        for (name, r) in [("websocat", &websocat), ("websockify", &websockify)] {
            if let Err(why) = r {
                println!("bench: {name} is not available, its rows are skipped: {why}");
            }
        }
        Peers {
            websocat,
            websockify,
        }
    }

    /// websocat only (`cargo xtask bench-load`), as [`Peers::ensure`] does it.
    pub fn ensure_websocat(toolbox: &mut Toolbox, quick: bool) -> Peers {
        let websocat = if quick {
            present("websocat", WEBSOCAT_VERSION)
        } else {
            install_websocat(toolbox)
        };
        if let Err(why) = &websocat {
            println!("bench: websocat is not available, its rows are skipped: {why}");
        }
        Peers {
            websocat,
            websockify: Err("not measured by bench-load".to_owned()),
        }
    }

    pub fn json(&self) -> Value {
        let state = |r: &std::result::Result<(), String>, v: &str| match r {
            Ok(()) => json!({ "version": v }),
            Err(why) => json!({ "version": v, "missing": why }),
        };
        json!({
            "websocat": state(&self.websocat, WEBSOCAT_VERSION),
            "websockify": state(&self.websockify, WEBSOCKIFY_VERSION),
        })
    }
}

/// websocat at the pinned version, installed if missing.
fn install_websocat(toolbox: &mut Toolbox) -> std::result::Result<(), String> {
    // No TLS (loopback ws:// only), so it needs no OpenSSL headers.
    toolbox
        .ensure_cargo_bin_with(
            "websocat",
            "websocat",
            WEBSOCAT_VERSION,
            Lock::Locked,
            &[
                "--no-default-features",
                "--features",
                "signal_handler,unix_stdio",
            ],
        )
        .map_err(|e| format!("{e:#}"))
}

fn present(bin: &str, version: &str) -> std::result::Result<(), String> {
    let out = probe(command(bin).arg("--version"));
    match out {
        Some(_) if bin == "websockify" => Ok(()),
        Some(out) if out.contains(version) => Ok(()),
        Some(out) => Err(format!(
            "{bin} reports {out:?}, not {version}; run the full bench once to install it"
        )),
        None if bin == "websockify" && cmd::which(bin).is_some() => Ok(()),
        None => Err(format!(
            "{bin} is not installed; run the full bench once to install it"
        )),
    }
}
