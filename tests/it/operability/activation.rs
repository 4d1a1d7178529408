//! systemd socket activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`): every gate the
//! harness starts is handed its listeners this way; here, that the configured addresses are then
//! not bound and the log names the descriptors, and that a bad `LISTEN_FDS` makes `run` exit 1
//! naming it.

use std::os::fd::{AsFd, BorrowedFd};

use crate::support::hookgate::Activation;
use crate::support::*;

#[tokio::test]
async fn a_socket_activated_gate_serves_on_the_passed_sockets_and_binds_no_configured_address() {
    let up = Upstream::start();
    // The configured addresses are taken (held here): binding either would fail the start.
    let taken_listen = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_admin = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gate = GateConfig::new(&up.url)
        .set(
            "listen.address",
            taken_listen.local_addr().expect("addr").to_string(),
        )
        .set(
            "admin.address",
            taken_admin.local_addr().expect("addr").to_string(),
        )
        .start()
        .await;
    assert_eq!(gate.post("/activated", "{}", &[]).await.status, 200);
    assert_eq!(up.single().target, "/activated");
    let line = gate
        .expect_log("naming the socket activation", |v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("socket activation (LISTEN_FDS)"))
        })
        .await;
    assert_eq!(line["listen"], "fd 3", "{line}");
    assert_eq!(line["admin"], "fd 4", "{line}");
    let listening = gate
        .expect_log("listening", |v| v["msg"] == "listening")
        .await;
    assert_eq!(listening["address"], gate.addr.to_string(), "{listening}");
    assert_eq!(listening["admin"], gate.admin().to_string(), "{listening}");
}

/// `hookgate run` with these descriptors as 3, 4, … must exit 1 before listening, with an
/// `error:` line naming `LISTEN_FDS` and saying `detail`.
fn refused(what: &str, activation: Activation<'_>, detail: &str) {
    let exited = GateConfig::new("http://127.0.0.1:9").run_to_exit(&activation);
    let error = exited
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default()
        .to_owned();
    assert_eq!(exited.code, Some(1), "{what}: {}", exited.stderr);
    assert!(
        error.contains("LISTEN_FDS") && error.contains(detail),
        "{what}: want LISTEN_FDS and {detail:?} in the error: {}",
        exited.stderr
    );
    assert!(
        !exited.stdout.contains("listening"),
        "{what}: {}",
        exited.stdout
    );
}

fn pass<'a>(fds: Vec<BorrowedFd<'a>>, count: &str, names: Option<&str>) -> Activation<'a> {
    Activation {
        fds,
        listen_fds: count.into(),
        names: names.map(str::to_owned),
    }
}

#[test]
fn a_bad_listen_fds_makes_run_exit_1_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let file = tempfile::tempfile().expect("tempfile");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let connected =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    refused(
        "two announced, one passed",
        pass(vec![listener.as_fd()], "2", None),
        "fd 4 is not open",
    );
    refused(
        "a file",
        pass(vec![file.as_fd()], "1", Some("listen")),
        "fd 3 (listen) is not a socket",
    );
    refused(
        "a UDP socket",
        pass(vec![listener.as_fd(), udp.as_fd()], "2", None),
        "fd 4 (admin) is not a TCP socket",
    );
    refused(
        "a connected TCP socket",
        pass(vec![connected.as_fd()], "1", None),
        "fd 3 (listen) is a TCP socket that is not listening",
    );
    refused(
        "not a number",
        pass(vec![listener.as_fd()], "two", None),
        "is not a number",
    );
}
