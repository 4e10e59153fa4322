//! The processes the bench starts and what it reads about them from `/proc`: CPU ticks of a
//! process tree, RSS, open fds; free loopback ports and waiting for a listener.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, command};

/// A process the bench started, in its own process group; killed (group and all) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    /// Held open: the bare echo, the bare relay and `socklab-loadgen hold` exit when it closes.
    stdin: Option<ChildStdin>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Result<Proc> {
        let log = fs::File::create(log_dir.join(format!("{name}.log")))?;
        cmd.stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let line = cmd::display(&cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let stdin = child.stdin.take();
        Ok(Proc {
            name: name.to_owned(),
            child,
            stdin,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited (it could not bind, say).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); see target/bench/logs/{}.log",
                self.name,
                self.name
            );
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let group = format!("-{}", self.child.id());
        let _ = command("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until something accepts on `port`.
pub fn wait_port(proc: &mut Proc, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        proc.check_alive()?;
        if TcpStream::connect_timeout(&local(port), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} does not listen on port {port} after 15 s", proc.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// utime + stime of `pid` and all its descendants, plus what its reaped children used
/// (cutime + cstime): websockify forks one process per connection.
pub fn tree_ticks(pid: u32) -> u64 {
    let mut procs = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((ppid, ticks)) = stat(p) {
                procs.push((p, ppid, ticks));
            }
        }
    }
    let mut tree = vec![pid];
    let mut total = 0;
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        for &(child, ppid, ticks) in &procs {
            if child == p {
                total += ticks;
            }
            if ppid == p && !tree.contains(&child) {
                tree.push(child);
            }
        }
        i += 1;
    }
    total
}

/// (ppid, utime + stime + cutime + cstime) from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = (11..15)
        .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Some((ppid, ticks))
}

pub fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

pub fn fd_count(pid: u32) -> u64 {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// This process's hard open-files limit (what children can raise their soft limit to).
pub fn nofile_hard() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(4)?.parse().ok()
}
