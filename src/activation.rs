//! systemd socket activation (sd_listen_fds(3)): when `LISTEN_PID` is this process,
//! `LISTEN_FDS` counts the sockets passed from fd 3 on. The TLS listener is the one named
//! `listen` in `LISTEN_FDNAMES` and the admin listener the one named `admin`; when no socket has
//! either name (no `LISTEN_FDNAMES`, or systemd's default, the unit's name), the first is
//! `listen` and the second `admin`. A listener not passed is bound from the config as usual.
//!
//! [`take`] runs first thing in `run`, before hookgate opens a descriptor of its own, so a count
//! naming a descriptor that was not passed finds it closed (an error) rather than one of ours.
//! The variables stay set: unsetting them takes `env::remove_var`, which races with other
//! threads reading the environment, and they name this process only.

use std::net::TcpListener;
use std::os::fd::OwnedFd;

/// The descriptor systemd passes first (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// Which listener a passed socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `listen.address`: the TLS listener.
    Listen,
    /// `admin.address`: `/healthz`, `/readyz`, `/metrics`, the store API.
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Listen => "listen",
            Role::Admin => "admin",
        }
    }
}

/// What the environment passes: fd `3 + i` serves `roles[i]`; each role at most once.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    roles: Vec<Role>,
}

/// Decides from the values of `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` (`None`: unset)
/// which passed socket serves which listener, for the process `our_pid`. `Ok(None)`: nothing is
/// passed to this process (no `LISTEN_PID`, another process's, no `LISTEN_FDS`, or 0).
pub(crate) fn plan(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    our_pid: u32,
) -> Result<Option<Plan>, String> {
    let Some(pid) = pid else { return Ok(None) };
    let pid: u32 = pid
        .parse()
        .map_err(|_| format!("LISTEN_PID={pid:?} is not a process id"))?;
    let Some(fds) = fds.filter(|_| pid == our_pid) else {
        return Ok(None);
    };
    let count: u32 = fds
        .parse()
        .map_err(|_| format!("LISTEN_FDS={fds:?} is not a number of file descriptors"))?;
    if count == 0 {
        return Ok(None);
    }
    let names: Vec<&str> = names
        .filter(|n| !n.is_empty())
        .map_or_else(Vec::new, |n| n.split(':').collect());
    if !names.is_empty() && names.len() != count as usize {
        return Err(format!(
            "LISTEN_FDNAMES={:?} names {} file descriptors, LISTEN_FDS={count} passes {count}",
            names.join(":"),
            names.len()
        ));
    }
    let roles = if names.iter().any(|n| *n == "listen" || *n == "admin") {
        let by_name = names.iter().zip(FIRST_FD..).map(|(name, fd)| match *name {
            "listen" => Ok(Role::Listen),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "LISTEN_FDNAMES: fd {fd} is named {other:?}; hookgate takes only sockets named \
                 \"listen\" and \"admin\" (FileDescriptorName=)"
            )),
        });
        by_name.collect::<Result<Vec<_>, _>>()?
    } else if count <= 2 {
        [Role::Listen, Role::Admin][..count as usize].to_vec()
    } else {
        return Err(format!(
            "LISTEN_FDS={count}: hookgate takes at most two sockets, the TLS listener and then \
             the admin listener (or the ones named \"listen\" and \"admin\" in LISTEN_FDNAMES)"
        ));
    };
    for role in [Role::Listen, Role::Admin] {
        let at: Vec<String> = (FIRST_FD..)
            .zip(&roles)
            .filter(|(_, r)| **r == role)
            .map(|(fd, _)| fd.to_string())
            .collect();
        if at.len() > 1 {
            return Err(format!(
                "LISTEN_FDNAMES names more than one socket {:?} (fds {})",
                role.name(),
                at.join(", ")
            ));
        }
    }
    Ok(Some(Plan { roles }))
}

/// A listener passed by socket activation: its descriptor number (for the log) and the socket,
/// non-blocking and close-on-exec.
#[derive(Debug)]
pub(crate) struct PassedListener {
    pub fd: i32,
    pub listener: TcpListener,
}

/// The listeners passed to this process; both `None` when not socket-activated.
#[derive(Debug, Default)]
pub(crate) struct Passed {
    pub listen: Option<PassedListener>,
    pub admin: Option<PassedListener>,
}

impl Passed {
    pub(crate) fn any(&self) -> bool {
        self.listen.is_some() || self.admin.is_some()
    }
}

/// Takes the sockets the environment passes, each checked to be a listening TCP socket; an
/// error names the variable and the descriptor.
pub(crate) fn take() -> Result<Passed, String> {
    let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
    let Some(plan) = plan(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )?
    else {
        return Ok(Passed::default());
    };
    let count = plan.roles.len();
    // `plan` accepted the same variables sd-listen-fds reads, so it yields `count` descriptors.
    let fds: Vec<OwnedFd> = sd_listen_fds::get()
        .map_err(|e| format!("LISTEN_FDS: {e}"))?
        .into_iter()
        .map(|(_, fd)| fd.into_std())
        .collect();
    // A descriptor that is not open is not ours to close (the number may be reused): forgotten.
    let mut not_open = None;
    let mut open = Vec::with_capacity(count);
    for (fd, number) in fds.into_iter().zip(FIRST_FD..) {
        match rustix::io::fcntl_getfd(&fd) {
            Ok(_) => open.push(fd),
            Err(e) => {
                std::mem::forget(fd);
                not_open
                    .get_or_insert(format!("LISTEN_FDS={count}: fd {number} is not open ({e})"));
            }
        }
    }
    if let Some(e) = not_open {
        return Err(e);
    }
    if open.len() != count {
        return Err(format!(
            "LISTEN_FDS={count}: {} file descriptors were passed",
            open.len()
        ));
    }
    let mut passed = Passed::default();
    for ((fd, number), role) in open.into_iter().zip(FIRST_FD..).zip(&plan.roles) {
        let what = format!("LISTEN_FDS={count}: fd {number} ({})", role.name());
        let listener = PassedListener {
            fd: number,
            listener: listener(fd).map_err(|e| format!("{what} {e}"))?,
        };
        match role {
            Role::Listen => passed.listen = Some(listener),
            Role::Admin => passed.admin = Some(listener),
        }
    }
    Ok(passed)
}

/// Checks that `fd` is a listening TCP socket and makes it non-blocking and close-on-exec.
fn listener(fd: OwnedFd) -> Result<TcpListener, String> {
    use rustix::io::{Errno, FdFlags};
    use rustix::net::{sockopt, AddressFamily, SocketType};
    let kind = sockopt::socket_type(&fd).map_err(|e| match e {
        Errno::NOTSOCK => "is not a socket".to_owned(),
        e => format!("cannot be inspected: {e}"),
    })?;
    let family = sockopt::socket_domain(&fd).map_err(|e| format!("cannot be inspected: {e}"))?;
    if kind != SocketType::STREAM || ![AddressFamily::INET, AddressFamily::INET6].contains(&family)
    {
        return Err("is not a TCP socket".into());
    }
    if !sockopt::socket_acceptconn(&fd).map_err(|e| format!("cannot be inspected: {e}"))? {
        return Err("is a TCP socket that is not listening".into());
    }
    rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC)
        .map_err(|e| format!("cannot be made close-on-exec: {e}"))?;
    let listener = TcpListener::from(fd);
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot be made non-blocking: {e}"))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::{Admin, Listen};

    const PID: u32 = 4242;

    fn roles(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
    ) -> Result<Option<Vec<Role>>, String> {
        plan(pid, fds, names, PID).map(|p| p.map(|p| p.roles))
    }

    #[test]
    fn not_activated_without_our_pid_or_without_descriptors() {
        assert_eq!(roles(None, Some("2"), None), Ok(None));
        assert_eq!(roles(Some("1"), Some("2"), Some("listen:admin")), Ok(None));
        assert_eq!(roles(Some("4242"), None, None), Ok(None));
        assert_eq!(roles(Some("4242"), Some("0"), None), Ok(None));
        // Another process's variables are not read further, even when malformed.
        assert_eq!(roles(Some("1"), Some("many"), None), Ok(None));
    }

    #[test]
    fn without_names_the_first_is_listen_and_the_second_admin() {
        assert_eq!(roles(Some("4242"), Some("1"), None), Ok(Some(vec![Listen])));
        assert_eq!(
            roles(Some("4242"), Some("2"), Some("")),
            Ok(Some(vec![Listen, Admin]))
        );
        // systemd's default names (the socket unit's) name neither: by position too.
        assert_eq!(
            roles(
                Some("4242"),
                Some("2"),
                Some("hookgate.socket:hookgate.socket")
            ),
            Ok(Some(vec![Listen, Admin]))
        );
    }

    #[test]
    fn names_decide_in_any_order_and_either_alone() {
        assert_eq!(
            roles(Some("4242"), Some("2"), Some("admin:listen")),
            Ok(Some(vec![Admin, Listen]))
        );
        assert_eq!(
            roles(Some("4242"), Some("1"), Some("admin")),
            Ok(Some(vec![Admin]))
        );
        assert_eq!(
            roles(Some("4242"), Some("1"), Some("listen")),
            Ok(Some(vec![Listen]))
        );
    }

    #[test]
    fn malformed_values_are_errors_naming_the_variable() {
        let err = |pid, fds, names| roles(Some(pid), Some(fds), names).unwrap_err();
        assert!(err("x", "2", None).starts_with("LISTEN_PID=\"x\""));
        assert!(err("4242", "two", None).starts_with("LISTEN_FDS=\"two\""));
        assert!(err("4242", "-1", None).starts_with("LISTEN_FDS=\"-1\""));
        assert!(err("4242", "3", None).starts_with("LISTEN_FDS=3: hookgate takes at most two"));
        let e = err("4242", "2", Some("listen"));
        assert!(e.starts_with("LISTEN_FDNAMES=\"listen\" names 1"), "{e}");
        let e = err("4242", "2", Some("listen:metrics"));
        assert!(e.contains("fd 4 is named \"metrics\""), "{e}");
        let e = err("4242", "2", Some("listen:listen"));
        assert!(
            e.contains("more than one socket \"listen\" (fds 3, 4)"),
            "{e}"
        );
    }
}
