//! A real PostgreSQL server per test: `initdb` into a tempdir, listening on a loopback port of
//! its own with its unix socket in that tempdir, password (SCRAM) authentication over TCP;
//! stopped (and its files removed) on drop. postgres refuses to run as root, so as root it runs
//! as the system user `hookgate-pg` (created when missing). No binaries: the test FAILS with the
//! command that installs them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The unprivileged user the server runs as when the tests run as root.
const PG_USER: &str = "hookgate-pg";
/// The superuser `initdb` creates, and its password.
pub const USER: &str = "hookgate";
pub const PASSWORD: &str = "pg-test-pw-8d3c41";

/// A running server; stopped on drop.
pub struct Postgres {
    bin: PathBuf,
    dir: TempDir,
    pub addr: SocketAddr,
    as_user: bool,
    /// Serves TLS with the test server certificate (`localhost`, `127.0.0.1`; signed by the
    /// test CA that every gate directory holds as `ca.pem`).
    tls: bool,
}

impl Postgres {
    /// initdb + start. Panics (with the install command) when PostgreSQL is not installed.
    pub fn start() -> Postgres {
        Postgres::init(false)
    }

    /// Like [`Postgres::start`], with `ssl = on` and the test server certificate.
    pub fn start_tls() -> Postgres {
        Postgres::init(true)
    }

    fn init(tls: bool) -> Postgres {
        let bin = find_bin();
        let as_user = rustix::process::geteuid().is_root();
        if as_user {
            ensure_user();
        }
        let dir = tempfile::tempdir().expect("tempdir");
        if as_user {
            let (uid, gid) = ids_of(PG_USER);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown tempdir");
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("write pwfile");
        if as_user {
            let (uid, gid) = ids_of(PG_USER);
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown pwfile");
        }
        if tls {
            let pki = super::pki::Pki::get();
            for (name, pem) in [
                ("server.crt", &pki.server.cert_pem),
                ("server.key", &pki.server.key_pem),
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, pem).expect("write TLS file");
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .expect("chmod TLS file");
                if as_user {
                    let (uid, gid) = ids_of(PG_USER);
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown TLS file");
                }
            }
        }
        let pg = Postgres {
            bin,
            addr: super::free_port(),
            dir,
            as_user,
            tls,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile.display().to_string(),
                "--no-sync",
                "--encoding=UTF8",
                "--no-instructions",
            ],
        );
        pg.start_again();
        pg
    }

    /// `postgres://hookgate:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
            self.addr.port()
        )
    }

    /// `pg_ctl start` (again, after [`Postgres::stop`]), waiting until it accepts connections.
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60",
            self.addr.port(),
            self.dir.path().display()
        );
        if self.tls {
            let d = self.dir.path().display();
            options += &format!(
                " -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key"
            );
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: clients are disconnected, the server shuts down cleanly.
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// A client connection for the test's own queries.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    /// The server log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
        assert!(
            out.status.success(),
            "{program} {args:?} failed ({}): {}{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The directory holding `initdb` and `pg_ctl`: the newest `/usr/lib/postgresql/N/bin`
/// (Debian, Ubuntu), else `pg_config --bindir`.
fn find_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    let from_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match from_config {
        Some(bin) if bin.join("initdb").exists() => bin,
        _ => panic!(
            "PostgreSQL (initdb, pg_ctl) is required by this test but was not found; install it: apt-get install -y postgresql"
        ),
    }
}

fn ensure_user() {
    if id(PG_USER).is_some() {
        return;
    }
    // Parallel tests may race to create it: whoever loses finds it made.
    let _ = Command::new("useradd")
        .args(["-r", "-M", "-s", "/usr/sbin/nologin", PG_USER])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        id(PG_USER).is_some(),
        "cannot create the system user {PG_USER} to run postgres as (postgres refuses root)"
    );
}

fn id(user: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .flatten()
}

fn ids_of(user: &str) -> (u32, u32) {
    let uid = id(user).expect("user exists");
    let gid = Command::new("id")
        .args(["-g", user])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .expect("group of user");
    (uid, gid)
}
