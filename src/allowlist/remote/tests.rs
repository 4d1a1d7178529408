use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::test_support::{closed_port, silent_listener, source, ListReply, ListServer};
use super::*;

const REFRESH: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Applied(Vec<String>),
    Reported(RefreshResult),
}

struct Recorder(mpsc::UnboundedSender<Event>);

impl RefreshHooks<String> for Recorder {
    fn apply(&mut self, mut entries: Vec<String>) {
        entries.sort();
        let _ = self.0.send(Event::Applied(entries));
    }
    fn report(&mut self, result: RefreshResult) {
        let _ = self.0.send(Event::Reported(result));
    }
}

fn hex(s: &str) -> Option<String> {
    (s.len() >= 4 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

fn applied(entries: &[&str]) -> Event {
    Event::Applied(entries.iter().map(|s| s.to_string()).collect())
}

const SUCCESS: Event = Event::Reported(RefreshResult::Success);
const FAILURE: Event = Event::Reported(RefreshResult::Failure);

struct Running {
    events: mpsc::UnboundedReceiver<Event>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(source: RemoteSource, cache: Option<PathBuf>) -> Running {
        let (tx, events) = mpsc::unbounded_channel();
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(run_refresh(
            source,
            cache,
            REFRESH,
            hex,
            Recorder(tx),
            shutdown,
            Default::default(),
        ));
        Running { events, stop, task }
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .expect("an event in time")
            .expect("the loop is running")
    }

    /// Events up to and including the first one equal to `last`.
    async fn until(&mut self, last: &Event) -> Vec<Event> {
        let mut seen = Vec::new();
        while seen.last() != Some(last) {
            seen.push(self.next().await);
        }
        seen
    }

    async fn stops_within_a_second(self) {
        tokio::time::timeout(Duration::from_secs(1), self.task)
            .await
            .expect("the loop stops promptly")
            .expect("the loop does not panic");
    }
}

#[tokio::test]
async fn applies_and_keeps_the_last_good_list_across_failures() {
    let server = ListServer::start(ListReply::text("aaaa\n"));
    let mut run = Running::start(source(&server.url("/ips")), None);
    assert_eq!(run.next().await, applied(&["aaaa"]));
    assert_eq!(run.next().await, SUCCESS);

    let failing = [
        (1, ListReply::status(500)),
        (2, ListReply::text(r#"["zz", "not hex"]"#)),
    ];
    for (failing_mode, reply) in failing {
        server.set(reply);
        let mut events = run.until(&FAILURE).await;
        events.extend([run.next().await, run.next().await]);
        // A refresh already under way may still see mode 0; nothing else may be applied.
        let bad: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, Event::Applied(_)) && **e != applied(&["aaaa"]))
            .collect();
        assert!(bad.is_empty(), "mode {failing_mode}: {events:?}");
        assert_eq!(
            events[events.len() - 2..],
            [FAILURE, FAILURE],
            "mode {failing_mode}"
        );
    }

    server.set(ListReply::text(r#"{"data":{"ips":["bbbb","cccc"]}}"#));
    let events = run.until(&applied(&["bbbb", "cccc"])).await;
    assert!(events
        .iter()
        .all(|e| !matches!(e, Event::Applied(_)) || e == events.last().expect("last")));
    assert_eq!(run.next().await, SUCCESS);
    run.stop.send(true).expect("loop listening");
    run.stops_within_a_second().await;
}

#[tokio::test]
async fn reports_not_modified_as_success_without_reapplying() {
    // 304 to the If-None-Match of the one ETag it sends.
    let server = ListServer::start(ListReply::text("aaaa").with_etag("\"v1\""));
    let mut run = Running::start(source(&server.url("/")), None);
    assert_eq!(run.next().await, applied(&["aaaa"]));
    for _ in 0..4 {
        assert_eq!(run.next().await, SUCCESS);
    }
    assert!(server.requests().len() >= 4);
    assert!(server.requests()[1..]
        .iter()
        .all(|s| s.headers.contains_key(http::header::IF_NONE_MATCH)));
}

#[tokio::test]
async fn never_lets_a_304_confirm_a_body_that_had_no_entries() {
    let server = ListServer::start(ListReply::text("junk only\n").with_etag("\"bad\""));
    let mut run = Running::start(source(&server.url("/")), None);
    for _ in 0..3 {
        assert_eq!(run.next().await, FAILURE);
    }
    assert!(server
        .requests()
        .iter()
        .all(|s| !s.headers.contains_key(http::header::IF_NONE_MATCH)));
}

/// The cache serves from start-up (`refresh::sync` applies it before this task runs); the
/// task itself never re-applies it: a server that is down only reports failures.
#[tokio::test]
async fn a_server_that_is_down_reports_failures_and_applies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("thumbprints.cache");
    store_cache(&cache, b"# last good\naaaa\nbbbb\n").expect("seed cache");
    let url = format!("https://{}/", closed_port());
    let mut run = Running::start(source(&url), Some(cache.clone()));
    for _ in 0..3 {
        assert_eq!(run.next().await, FAILURE);
    }
    assert_eq!(
        std::fs::read(&cache).expect("cache"),
        b"# last good\naaaa\nbbbb\n",
        "left as it was"
    );
    drop(run.stop);
    tokio::time::timeout(Duration::from_secs(1), run.task)
        .await
        .expect("stops")
        .expect("ok");
}

#[tokio::test]
async fn prefers_a_fresh_fetch_over_the_cache_and_rewrites_the_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("ips.cache");
    store_cache(&cache, b"aaaa\n").expect("seed cache");
    let server = ListServer::start(ListReply::text("[\"cccc\"]"));
    let mut run = Running::start(source(&server.url("/")), Some(cache.clone()));
    assert_eq!(run.next().await, applied(&["cccc"]));
    assert_eq!(run.next().await, SUCCESS);
    assert_eq!(std::fs::read(&cache).expect("cache"), b"[\"cccc\"]");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "no temp file left"
    );
}

#[tokio::test]
async fn keeps_refreshing_when_the_cache_cannot_be_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("missing-dir").join("ips.cache");
    let server = ListServer::start(ListReply::text("aaaa"));
    let mut run = Running::start(source(&server.url("/")), Some(cache));
    assert_eq!(run.next().await, applied(&["aaaa"]));
    assert_eq!(run.next().await, SUCCESS);
    assert_eq!(run.next().await, applied(&["aaaa"]));
}

#[tokio::test]
async fn stops_mid_fetch_when_the_shutdown_sender_is_dropped() {
    let silent = silent_listener();
    let url = format!("https://{}/", silent.local_addr().expect("addr"));
    let run = Running::start(source(&url), None);
    tokio::time::sleep(Duration::from_millis(100)).await; // let the fetch start and hang
    drop(run.stop);
    tokio::time::timeout(Duration::from_secs(1), run.task)
        .await
        .expect("stops")
        .expect("ok");
}
