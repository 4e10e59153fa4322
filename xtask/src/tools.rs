//! Installing what the commands need, only when it is missing or at the wrong version.
//!
//! Each helper checks first and installs second, and records the outcome, so `cargo xtask tools`
//! can say what was already there and what it installed. A new tool is one line in
//! [`page_tools`] or [`browser_tools`] (or a new group function like them).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, command, probe};

/// The page's compilation target.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Trunk is pinned: 0.22 needs a newer Rust than the workspace's 1.95.
pub const TRUNK_VERSION: &str = "0.21.14";
/// wasm-opt, from npm's `binaryen` (a release page build runs it; see `Trunk.toml`'s `[tools]`,
/// which must name the same version).
pub const BINARYEN_VERSION: &str = "132.0.0";
/// The JavaScript minifier a release page build runs on wasm-bindgen's glue (Trunk's own cannot
/// parse it): `web/minify-glue.mjs`, a Trunk post-build hook.
pub const TERSER_VERSION: &str = "5.51.2";
/// The accessibility checker the browser tests inject into the page.
pub const AXE_CORE_VERSION: &str = "4.14.1";
/// Where the browser tests expect Debian's Chromium and its WebDriver.
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether `cargo install` may use `--locked` for a crate (some crates' lock files no longer
/// build; wasm-bindgen-cli's is one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Locked,
    Unlocked,
}

/// What the page build needs: the wasm target, trunk, and wasm-bindgen-cli at the exact version
/// of the `wasm-bindgen` crate in `Cargo.lock` (the CLI and the library must match).
/// Also wasm-opt (npm's binaryen, in the project-local npm prefix), which shrinks the wasm, and
/// terser (npm, the same prefix), which minifies the JavaScript glue.
pub fn page_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_rust_target(WASM_TARGET)?;
    tools.ensure_npm("binaryen", BINARYEN_VERSION)?;
    tools.ensure_npm("terser", TERSER_VERSION)?;
    tools.ensure_cargo_bin("trunk", "trunk", TRUNK_VERSION, Lock::Locked)?;
    match locked_version(&cmd::root().join("Cargo.lock"), "wasm-bindgen")? {
        Some(version) => {
            tools.ensure_cargo_bin("wasm-bindgen", "wasm-bindgen-cli", &version, Lock::Unlocked)?;
        }
        None => tools.skipped(
            "wasm-bindgen-cli",
            "the wasm-bindgen crate is not in Cargo.lock yet (the page does not use it)",
        ),
    }
    Ok(())
}

/// What the browser tests need: Debian's Chromium, its WebDriver, CJK fonts for the Chinese
/// half of the page, and axe-core (npm, project-local) for the accessibility checks.
pub fn browser_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_npm("axe-core", AXE_CORE_VERSION)?;
    tools.ensure_apt_packages(&[
        AptPackage::new("chromium").providing(CHROMIUM),
        AptPackage::new("chromium-driver").providing(CHROMEDRIVER),
        AptPackage::new("fonts-noto-cjk"),
    ])
}

/// What the cluster tests need (several instances behind a proxy, one monitor through Redis):
/// Debian's HAProxy, Redis, and nginx with its stream module for the config check.
pub fn cluster_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_apt(&["haproxy", "redis-server", "nginx", "libnginx-mod-stream"])
}

/// What the metrics tests need: Prometheus and its promtool (tests/tests/metrics.rs).
pub fn prometheus_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_apt(&["prometheus"])
}

/// What the capture tests need: Debian's tshark, to read the pcap files the server writes, and
/// setpriv, to start the server without CAP_NET_RAW.
pub fn capture_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_apt_packages(&[
        AptPackage::new("tshark").providing("/usr/bin/tshark"),
        AptPackage::new("util-linux").providing("/usr/bin/setpriv"),
    ])
}

/// What `cargo xtask lint` needs besides the wasm target.
pub fn lint_tools(tools: &mut Toolbox) -> Result<()> {
    tools.ensure_rustup_component("rustfmt")?;
    tools.ensure_rustup_component("clippy")?;
    tools.ensure_rust_target(WASM_TARGET)
}

/// Ensures tools and remembers, for the summary, which were present and which it installed.
#[derive(Debug, Default)]
pub struct Toolbox {
    present: Vec<String>,
    installed: Vec<String>,
    skipped: Vec<String>,
    apt_updated: bool,
}

impl Toolbox {
    fn present(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("tools: present    {what}");
        self.present.push(what);
    }

    fn installed(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("tools: installed  {what}");
        self.installed.push(what);
    }

    fn skipped(&mut self, what: &str, why: &str) {
        println!("tools: skipped    {what}: {why}");
        self.skipped.push(what.to_owned());
    }

    /// One line: what was present, what was installed, what was skipped.
    pub fn summary(&self) -> String {
        fn list(items: &[String]) -> String {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(", ")
            }
        }
        let mut line = format!(
            "tools: {} present ({}); {} installed ({})",
            self.present.len(),
            list(&self.present),
            self.installed.len(),
            list(&self.installed),
        );
        if !self.skipped.is_empty() {
            line.push_str(&format!("; skipped: {}", list(&self.skipped)));
        }
        line
    }

    /// `rustup target add TARGET` unless `rustup target list --installed` has it.
    pub fn ensure_rust_target(&mut self, target: &str) -> Result<()> {
        let what = format!("rust target {target}");
        let installed = probe(command("rustup").args(["target", "list", "--installed"]))
            .context("`rustup target list --installed` failed: is rustup installed?")?;
        if installed.lines().any(|line| line.trim() == target) {
            self.present(what);
            return Ok(());
        }
        println!("tools: installing {what}");
        cmd::run(command("rustup").args(["target", "add", target]))?;
        self.installed(what);
        Ok(())
    }

    /// `rustup component add NAME` unless `rustup component list --installed` has it.
    pub fn ensure_rustup_component(&mut self, component: &str) -> Result<()> {
        let what = format!("rustup component {component}");
        let installed = probe(command("rustup").args(["component", "list", "--installed"]))
            .context("`rustup component list --installed` failed: is rustup installed?")?;
        let prefix = format!("{component}-");
        if installed
            .lines()
            .any(|line| line.trim() == component || line.starts_with(&prefix))
        {
            self.present(what);
            return Ok(());
        }
        println!("tools: installing {what}");
        cmd::run(command("rustup").args(["component", "add", component]))?;
        self.installed(what);
        Ok(())
    }

    /// `cargo install KRATE --version VERSION` unless `BIN --version` already reports VERSION.
    pub fn ensure_cargo_bin(
        &mut self,
        bin: &str,
        krate: &str,
        version: &str,
        lock: Lock,
    ) -> Result<()> {
        self.ensure_cargo_bin_with(bin, krate, version, lock, &[])
    }

    /// [`Toolbox::ensure_cargo_bin`] with more `cargo install` flags (features, say).
    pub fn ensure_cargo_bin_with(
        &mut self,
        bin: &str,
        krate: &str,
        version: &str,
        lock: Lock,
        install_flags: &[&str],
    ) -> Result<()> {
        let what = format!("{bin} {version}");
        let found = bin_version(bin);
        if found
            .as_deref()
            .is_some_and(|out| reports_version(out, version))
        {
            self.present(what);
            return Ok(());
        }
        let found = found.map_or_else(|| "not installed".to_owned(), |out| format!("has {out:?}"));
        println!("tools: installing {what} with cargo install ({found}); this can take minutes");
        let mut install = cmd::cargo();
        install.arg("install");
        if lock == Lock::Locked {
            install.arg("--locked");
        }
        cmd::run(
            install
                .args([krate, "--version", version])
                .args(install_flags),
        )?;
        match bin_version(bin) {
            Some(out) if reports_version(&out, version) => {}
            other => bail!(
                "installed {krate} {version}, but `{bin} --version` now reports {other:?} \
                 (from {:?}): another {bin} earlier on PATH shadows it",
                cmd::which(bin)
            ),
        }
        self.installed(what);
        Ok(())
    }

    /// `apt-get install -y` for the packages that `dpkg` does not report installed
    /// (`apt-get update` first, once per run).
    pub fn ensure_apt(&mut self, packages: &[&str]) -> Result<()> {
        let packages: Vec<AptPackage> =
            packages.iter().map(|&name| AptPackage::new(name)).collect();
        self.ensure_apt_packages(&packages)
    }

    /// Like [`Toolbox::ensure_apt`], but a package also counts as missing when a file it
    /// provides is gone.
    pub fn ensure_apt_packages(&mut self, packages: &[AptPackage<'_>]) -> Result<()> {
        let mut missing = Vec::new();
        for package in packages {
            let what = format!("apt {}", package.name);
            let file_ok = package.file.is_none_or(|file| Path::new(file).exists());
            if dpkg_installed(package.name) && file_ok {
                self.present(what);
            } else {
                missing.push(package.name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if cmd::which("apt-get").is_none() {
            bail!(
                "missing {}, and there is no apt-get here: install them yourself",
                missing.join(", ")
            );
        }
        if !self.apt_updated {
            println!("tools: updating the apt package lists");
            cmd::run(&mut apt_get(["update"]))?;
            self.apt_updated = true;
        }
        println!("tools: installing {} with apt-get", missing.join(", "));
        // `--reinstall` also repairs a package whose files were removed behind dpkg's back.
        let mut install = apt_get(["install", "-y", "--reinstall"]);
        cmd::run(install.args(&missing))?;
        for package in packages.iter().filter(|p| missing.contains(&p.name)) {
            if let Some(file) = package.file
                && !Path::new(file).exists()
            {
                bail!("installed {}, but {file} is still missing", package.name);
            }
            self.installed(format!("apt {}", package.name));
        }
        Ok(())
    }

    /// `python3 -m pip install PKG==VERSION` unless `pip show PKG` reports VERSION.
    pub fn ensure_pip(&mut self, package: &str, version: &str) -> Result<()> {
        let what = format!("pip {package} {version}");
        let shown = probe(command("python3").args([
            "-m",
            "pip",
            "show",
            "--disable-pip-version-check",
            package,
        ]));
        let found = shown.as_deref().and_then(|out| {
            out.lines()
                .find_map(|line| line.strip_prefix("Version:"))
                .map(str::trim)
        });
        if found == Some(version) {
            self.present(what);
            return Ok(());
        }
        println!(
            "tools: installing {what} with pip (found: {})",
            found.unwrap_or("not installed")
        );
        cmd::run(command("python3").args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            &format!("{package}=={version}"),
        ]))?;
        self.installed(what);
        Ok(())
    }
}

impl Toolbox {
    /// `npm install --prefix <target>/tools/node PKG@VERSION` unless that prefix already holds
    /// PKG at VERSION. Project-local: nothing global is needed or changed.
    pub fn ensure_npm(&mut self, package: &str, version: &str) -> Result<()> {
        let what = format!("npm {package} {version}");
        let found = npm_version(package);
        if found.as_deref() == Some(version) {
            self.present(what);
            return Ok(());
        }
        if cmd::which("npm").is_none() {
            bail!(
                "{what} is needed, and there is no npm here: install Node.js and npm \
                 (Debian: `apt-get install npm`)"
            );
        }
        println!(
            "tools: installing {what} with npm into {} (found: {})",
            cmd::node_prefix().display(),
            found.as_deref().unwrap_or("not installed")
        );
        fs::create_dir_all(cmd::node_prefix())
            .with_context(|| format!("could not create {}", cmd::node_prefix().display()))?;
        cmd::run(
            command("npm")
                .arg("install")
                .arg("--prefix")
                .arg(cmd::node_prefix())
                .args(["--no-audit", "--no-fund", "--save-exact"])
                .arg(format!("{package}@{version}")),
        )?;
        match npm_version(package) {
            Some(v) if v == version => {}
            other => bail!("installed {what}, but its package.json now says {other:?}"),
        }
        self.installed(what);
        Ok(())
    }
}

/// The version in the project-local npm prefix's `node_modules/PKG/package.json`, if any.
fn npm_version(package: &str) -> Option<String> {
    let manifest = npm_package_dir(package).join("package.json");
    let text = fs::read_to_string(manifest).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["version"].as_str().map(str::to_owned)
}

/// Where npm puts `package` in the project-local prefix.
pub fn npm_package_dir(package: &str) -> std::path::PathBuf {
    cmd::node_prefix().join("node_modules").join(package)
}

/// A Debian package, and optionally a file whose absence also means "install it".
#[derive(Clone, Copy, Debug)]
pub struct AptPackage<'a> {
    name: &'a str,
    file: Option<&'a str>,
}

impl<'a> AptPackage<'a> {
    pub const fn new(name: &'a str) -> Self {
        Self { name, file: None }
    }

    pub const fn providing(self, file: &'a str) -> Self {
        Self {
            file: Some(file),
            ..self
        }
    }
}

fn dpkg_installed(package: &str) -> bool {
    probe(command("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status == "install ok installed")
}

/// `apt-get ARGS`, non-interactive, through `sudo` when we are not root.
fn apt_get<const N: usize>(args: [&str; N]) -> std::process::Command {
    let root = probe(command("id").arg("-u")).is_some_and(|uid| uid == "0");
    let mut apt = if root || cmd::which("sudo").is_none() {
        let mut apt = command("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive");
        apt
    } else {
        let mut sudo = command("sudo");
        sudo.args(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        sudo
    };
    apt.args(args);
    apt
}

/// `BIN --version`'s output, or `None` when it is not installed.
fn bin_version(bin: &str) -> Option<String> {
    cmd::which(bin)?;
    probe(command(bin).arg("--version"))
}

/// Whether a `--version` line such as `trunk 0.21.14` or `wasm-bindgen 0.2.100` names `version`.
fn reports_version(output: &str, version: &str) -> bool {
    output
        .split_whitespace()
        .any(|word| word.trim_start_matches('v') == version)
}

/// The version of `package` recorded in a `Cargo.lock` (the first entry, if several).
pub fn locked_version(lock_file: &Path, package: &str) -> Result<Option<String>> {
    let text = fs::read_to_string(lock_file)
        .with_context(|| format!("could not read {}", lock_file.display()))?;
    Ok(parse_locked_version(&text, package))
}

fn parse_locked_version(lock: &str, package: &str) -> Option<String> {
    let wanted_name = format!("name = \"{package}\"");
    lock.split("[[package]]").find_map(|entry| {
        let mut lines = entry.lines().map(str::trim);
        lines.clone().any(|line| line == wanted_name).then(|| {
            lines.find_map(|line| {
                line.strip_prefix("version = \"")
                    .and_then(|rest| rest.strip_suffix('"'))
                    .map(str::to_owned)
            })
        })?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen-backend"
version = "0.2.99"

[[package]]
name = "wasm-bindgen"
version = "0.2.100"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]
"#;

    #[test]
    fn finds_the_exact_package_not_a_prefix() {
        assert_eq!(
            parse_locked_version(LOCK, "wasm-bindgen").as_deref(),
            Some("0.2.100")
        );
        assert_eq!(
            parse_locked_version(LOCK, "wasm-bindgen-backend").as_deref(),
            Some("0.2.99")
        );
        assert_eq!(parse_locked_version(LOCK, "yew"), None);
    }

    #[test]
    fn version_output_matches_whole_words() {
        assert!(reports_version("trunk 0.21.14", "0.21.14"));
        assert!(reports_version("wasm-bindgen 0.2.100", "0.2.100"));
        assert!(reports_version("tool v1.2.3", "1.2.3"));
        assert!(!reports_version("trunk 0.21.140", "0.21.14"));
        assert!(!reports_version("trunk 0.22.1", "0.21.14"));
    }

    #[test]
    fn summary_lists_each_kind() {
        let mut tools = Toolbox::default();
        tools.present.push("trunk 0.21.14".into());
        tools.installed.push("apt chromium".into());
        assert_eq!(
            tools.summary(),
            "tools: 1 present (trunk 0.21.14); 1 installed (apt chromium)"
        );
    }
}
