//! `hookgate store list|retry|purge --config FILE` (SPEC §9.6): the store API of that config's
//! admin listener, called with its `admin.token`, printed as a table.

use std::path::Path;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};

use crate::config::Config;
use crate::store::Listed;

/// What `hookgate store` was asked to do.
#[derive(Debug, Clone)]
pub enum StoreAction {
    List {
        state: Option<String>,
        route: Option<String>,
    },
    Retry {
        ids: Vec<String>,
        /// Every dead request (of `route`, if given).
        dead: bool,
        route: Option<String>,
    },
    Purge {
        ids: Vec<String>,
    },
}

pub(crate) fn run(config: &Path, action: StoreAction) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(act(config, action)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

struct Admin {
    address: std::net::SocketAddr,
    token: String,
}

async fn act(config: &Path, action: StoreAction) -> Result<(), String> {
    let c = Config::load(config).map_err(|e| e.to_string())?;
    let address = c.admin.ok_or_else(|| {
        c.error(
            "admin.address",
            "is disabled, so the store API cannot be reached",
        )
        .to_string()
    })?;
    let source = c.admin_token.as_ref().ok_or_else(|| {
        c.error("admin.token", "is not set, so the store API answers 404")
            .to_string()
    })?;
    let token = source
        .resolve(&c.dir)
        .map_err(|e| c.error("admin.token", e.to_string()).to_string())?;
    let admin = Admin {
        address,
        token: String::from_utf8_lossy(token.expose()).into_owned(),
    };
    match action {
        StoreAction::List { state, route } => {
            let rows = list(&admin, state.as_deref(), route.as_deref()).await?;
            print!("{}", table(&rows));
            Ok(())
        }
        StoreAction::Retry {
            mut ids,
            dead,
            route,
        } => {
            if dead {
                ids.extend(
                    list(&admin, Some("dead"), route.as_deref())
                        .await?
                        .into_iter()
                        .map(|r| r.request_id),
                );
            }
            each(&admin, Method::POST, &ids, "/retry", "pending again").await
        }
        StoreAction::Purge { ids } => each(&admin, Method::DELETE, &ids, "", "removed").await,
    }
}

async fn list(
    admin: &Admin,
    state: Option<&str>,
    route: Option<&str>,
) -> Result<Vec<Listed>, String> {
    let mut target = "/store?limit=10000".to_owned();
    if let Some(s) = state {
        target.push_str(&format!("&state={s}"));
    }
    if let Some(r) = route {
        target.push_str(&format!("&route={r}"));
    }
    let (status, body) = call(admin, Method::GET, &target).await?;
    if status != 200 {
        return Err(format!(
            "GET {target}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        .map_err(|e| format!("GET {target}: not a JSON array: {e}"))
        .map(|rows| rows.into_iter().filter_map(row).collect())
}

fn row(v: serde_json::Value) -> Option<Listed> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some(Listed {
        request_id: s("request_id")?,
        route: s("route").unwrap_or_default(),
        method: s("method").unwrap_or_default(),
        path: s("path").unwrap_or_default(),
        received_at: s("received_at").unwrap_or_default(),
        state: s("state").unwrap_or_default(),
        attempts: v.get("attempts").and_then(|x| x.as_u64()).unwrap_or(0) as u32,
        next_attempt_at: s("next_attempt_at"),
        last_error: s("last_error"),
        body_bytes: v.get("body_bytes").and_then(|x| x.as_u64()).unwrap_or(0),
    })
}

async fn each(
    admin: &Admin,
    method: Method,
    ids: &[String],
    suffix: &str,
    done: &str,
) -> Result<(), String> {
    if ids.is_empty() {
        println!("nothing to do");
        return Ok(());
    }
    let mut failed = 0;
    println!("{:<34} RESULT", "REQUEST_ID");
    for id in ids {
        let target = format!("/store/{id}{suffix}");
        let (status, body) = call(admin, method.clone(), &target).await?;
        if status == 200 {
            println!("{id:<34} {done}");
        } else {
            failed += 1;
            println!("{id:<34} {status} {}", String::from_utf8_lossy(&body));
        }
    }
    if failed > 0 {
        Err(format!("{failed} of {} failed", ids.len()))
    } else {
        Ok(())
    }
}

async fn call(admin: &Admin, method: Method, target: &str) -> Result<(u16, Bytes), String> {
    let tcp = tokio::net::TcpStream::connect(admin.address)
        .await
        .map_err(|e| format!("cannot reach the admin listener at {}: {e}", admin.address))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, admin.address.to_string())
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", admin.token),
        )
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// The rows as an aligned table.
fn table(rows: &[Listed]) -> String {
    let mut out = format!(
        "{:<34} {:<16} {:<9} {:>8} {:<24} {:<24} {}\n",
        "REQUEST_ID", "ROUTE", "STATE", "ATTEMPTS", "RECEIVED_AT", "NEXT_ATTEMPT_AT", "LAST_ERROR"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<34} {:<16} {:<9} {:>8} {:<24} {:<24} {}\n",
            r.request_id,
            r.route,
            r.state,
            r.attempts,
            r.received_at,
            r.next_attempt_at.as_deref().unwrap_or("-"),
            r.last_error.as_deref().unwrap_or("-"),
        ));
    }
    out
}
