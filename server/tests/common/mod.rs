//! Helpers shared by the test binaries that run `socklab-server` as a process.

use tokio::process::{Child, Command};

/// Every listener on port 0, so tests never collide.
pub fn port_zero_flags() -> Vec<&'static str> {
    socklab_server::Config::PORT_ZERO_FLAGS.to_vec()
}

/// Sends SIGTERM to `child`.
pub async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
}
