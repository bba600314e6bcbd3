//! A real native client (xfreerdp) through the relay's HTTPS port to the RDP testbed's real servers:
//! xrdp (TLS) and freerdp-shadow (NLA). Needs `/work/shared/testbed/rdp-testbed.sh up` and its
//! environment (`eval "$(rdp-testbed.sh env)"`); `cargo xtask test` provides both.
//!
//! Run: `cargo test -p homedesk-relay --test native_testbed -- --ignored --test-threads=1`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "integration/common.rs"]
#[allow(dead_code)]
mod common;

use common::*;
use homedesk_relay::native;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const RDP_PASSWORD: &str = "Passw0rd!";

fn testbed_addr(variable: &str) -> SocketAddr {
    let value = std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: start the RDP testbed (rdp-testbed.sh up; eval \"$(rdp-testbed.sh env)\") or run via cargo xtask test")
    });
    value
        .parse()
        .unwrap_or_else(|_| panic!("{variable}={value:?} is not an address such as 127.0.0.1:3389"))
}

/// A private X server for xfreerdp (it needs a display even with `+auth-only`); killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let number = (150..250)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let display = format!(":{number}");
        let child = Command::new("Xvfb")
            .args([
                display.as_str(),
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "1024x768x24",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (installed by the RDP testbed)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/tmp/.X11-unix/X{number}")).exists() {
            assert!(Instant::now() < deadline, "Xvfb {display} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Xvfb { child, display }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xfreerdp_command(display: &str, port: u16, user: &str, password: &str) -> Command {
    let mut command = Command::new("timeout");
    command
        .args([
            "60",
            "xfreerdp",
            &format!("/v:127.0.0.1:{port}"),
            &format!("/u:{user}"),
            &format!("/p:{password}"),
        ])
        .args(["/cert:ignore", "+auth-only", "/log-level:WARN"])
        .env("DISPLAY", display)
        .stdin(Stdio::null());
    command
}

/// `xfreerdp +auth-only` through the relay; true if it exited 0 (authenticated).
async fn auth_only(display: &str, port: u16, user: &str, password: &str) -> bool {
    let mut command = xfreerdp_command(display, port, user, password);
    let output = tokio::task::spawn_blocking(move || command.output().expect("run xfreerdp"))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "xfreerdp /u:{user} via :{port} → {:?}\n{stdout}{stderr}",
        output.status.code()
    );
    output.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the RDP testbed: run via cargo xtask test"]
async fn xfreerdp_reaches_xrdp_and_shadow_through_the_relay_port() {
    let xrdp = testbed_addr("RDP_TESTBED_XRDP_ADDR");
    let shadow = testbed_addr("RDP_TESTBED_SHADOW_ADDR");
    let x = Xvfb::start();

    // What xfreerdp sends: its first packet carries `Cookie: mstshash=<user>`.
    let mut capture = Peer::start().await;
    let mut child = xfreerdp_command(&x.display, capture.addr.port(), "rdpuser1", RDP_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = capture.next().await;
    let mut packet = vec![0u8; 4];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut packet))
        .await
        .unwrap()
        .unwrap();
    let length = native::tpkt_length(packet.first_chunk().unwrap()).unwrap();
    packet.resize(length, 0);
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut packet[4..]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        native::cookie_user(&packet),
        Ok(Some("rdpuser1".to_owned())),
        "xfreerdp sends mstshash=<user>"
    );
    drop(stream);
    let _ = child.kill();
    let _ = child.wait();

    let relay = TestRelay::start().await;
    let port = relay.https_addr.port();
    relay.user_with_workstation("rdpuser1", "xrdp", xrdp).await;
    relay
        .user_with_workstation("rdpuser2", "shadow", shadow)
        .await;

    // xrdp (TLS, no NLA): the TLS handshake runs end to end through the relay.
    assert!(
        auth_only(&x.display, port, "rdpuser1", RDP_PASSWORD).await,
        "xfreerdp → relay → xrdp"
    );
    let log = logs();
    assert!(log.lines().any(|l| l.contains("native tunnel opened")
        && l.contains("user=rdpuser1")
        && l.contains("workstation=xrdp")));

    // freerdp-shadow (NLA): the right password authenticates, a wrong one is refused by the server.
    assert!(
        auth_only(&x.display, port, "rdpuser2", RDP_PASSWORD).await,
        "xfreerdp → relay → shadow (NLA)"
    );
    assert!(
        !auth_only(&x.display, port, "rdpuser2", "wrong-Passw0rd!").await,
        "shadow's NLA refuses a wrong password"
    );

    // rdpuser1 (assigned only to xrdp) forges rdpuser2's cookie to reach shadow: without rdpuser2's
    // password the workstation's NLA refuses. The cookie routes; it never authenticates.
    assert!(!auth_only(&x.display, port, "rdpuser2", "rdpuser1-does-not-know-it").await);
    // Both refusals came from shadow itself: the relay did route them (three rdpuser2 tunnels).
    let opened = |user: &str, workstation: &str| {
        let (user, workstation) = (
            format!("user={user} "),
            format!("workstation={workstation} "),
        );
        logs()
            .lines()
            .filter(|l| {
                l.contains("native tunnel opened") && l.contains(&user) && l.contains(&workstation)
            })
            .count()
    };
    assert_eq!(opened("rdpuser2", "shadow"), 3);
    assert_eq!(opened("rdpuser1", "shadow"), 0);
    // A name the relay does not know gets nowhere (refused before dialing).
    assert!(!auth_only(&x.display, port, "nosuchuser", RDP_PASSWORD).await);
    assert!(logs().contains("native RDP refused: unknown user"));

    // The plain-HTTP port serves native RDP too.
    assert!(
        auth_only(&x.display, relay.http_addr.port(), "rdpuser2", RDP_PASSWORD).await,
        "via the HTTP port"
    );

    let log = logs();
    let closed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("native tunnel closed"))
        .collect();
    assert!(
        closed.len() >= 4,
        "every tunnel is logged at close: {closed:?}"
    );
    assert!(closed.iter().all(|l| l.contains("bytes_up=")
        && l.contains("bytes_down=")
        && l.contains("ip=127.0.0.1")));
}
