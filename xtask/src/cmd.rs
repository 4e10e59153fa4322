//! Running child commands: every one is printed before it runs, gets `$CARGO_HOME/bin` (where
//! `cargo install` puts trunk and wasm-bindgen) and the project's npm tools (wasm-opt) first on
//! its `PATH`, and has its exit status checked.

use std::env;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The cargo that runs us (`$CARGO`, set by `cargo run`), else `cargo` from `PATH`.
pub fn cargo() -> Command {
    command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Where `cargo install` puts binaries: `$CARGO_HOME/bin`, else `~/.cargo/bin`.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .map(|home| home.join("bin"))
}

/// The build's target directory: `$CARGO_TARGET_DIR`, else `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root().join(dir),
        None => root().join("target"),
    }
}

/// The project-local npm prefix (`npm install --prefix`): `<target>/tools/node`. Nothing npm
/// installs for socklab goes anywhere global.
pub fn node_prefix() -> PathBuf {
    target_dir().join("tools").join("node")
}

/// Where the npm packages' executables are (`wasm-opt` from binaryen).
pub fn node_bin_dir() -> PathBuf {
    node_prefix().join("node_modules").join(".bin")
}

/// `PATH` with the npm tools and the cargo bin directory in front (unless already on it): the
/// pinned tools xtask installed win over any other copy.
pub fn path_var() -> OsString {
    let current = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = env::split_paths(&current).collect();
    for bin in [cargo_bin_dir(), Some(node_bin_dir())]
        .into_iter()
        .flatten()
    {
        if !dirs.contains(&bin) {
            dirs.insert(0, bin);
        }
    }
    env::join_paths(dirs).unwrap_or(current)
}

/// Finds an executable on [`path_var`].
pub fn which(name: &str) -> Option<PathBuf> {
    env::split_paths(&path_var())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file() || path.with_extension("exe").is_file()
    }
}

/// A command for `program` with the augmented `PATH`. A bare program name is looked up on that
/// `PATH`, so freshly installed cargo binaries are found even if the caller's `PATH` lacks them.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let program = program.as_ref();
    let resolved = match program.to_str() {
        Some(name) if !name.contains(std::path::MAIN_SEPARATOR) => {
            which(name).map_or_else(|| program.to_os_string(), PathBuf::into_os_string)
        }
        _ => program.to_os_string(),
    };
    let mut cmd = Command::new(resolved);
    cmd.env("PATH", path_var());
    cmd
}

/// `program arg arg`, for messages.
pub fn display(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program())
        .to_string_lossy()
        .into_owned();
    cmd.get_args().fold(program, |mut line, arg| {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
        line
    })
}

/// Runs `cmd` with inherited stdio; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its trimmed stdout, or `None` if it cannot start or fails.
/// For probes such as `trunk --version`, where "not there" is an answer, not an error.
pub fn probe(cmd: &mut Command) -> Option<String> {
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
