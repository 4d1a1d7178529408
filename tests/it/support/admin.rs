//! The admin listener from the outside: a plain HTTP/1.1 GET, and a small Prometheus text parser
//! that finds one sample by name and label set (label order does not matter).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` on the admin listener: `(status, body)`.
pub async fn get(admin: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let exchange = async {
        let mut s = TcpStream::connect(admin).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "admin request timed out")
        })??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// One `/metrics` scrape.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the sample `name{labels}`, summed over the series that have these labels
    /// and others (such as `route`), if any has them.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let matching: Vec<f64> = self
            .0
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (n, got) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.strip_suffix('}')?),
                    None => (series, ""),
                };
                if n != name {
                    return None;
                }
                let got: Vec<&str> = got.split(',').filter(|s| !s.is_empty()).collect();
                let has_all = want.iter().all(|w| got.contains(&w.as_str()));
                has_all.then(|| value.parse().ok()).flatten()
            })
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    /// Every line of one family, for failure messages.
    pub fn family(&self, name: &str) -> String {
        self.0
            .lines()
            .filter(|l| l.starts_with(name))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
