//! SPEC §6 watched files, without any signal: a replaced `thumbprints.files` file, and a
//! Kubernetes Secret volume update (`..data` symlink swap) of the server certificate, are picked
//! up within 10 s; a broken certificate written that way is a failed reload and the old serves on.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::support::pki::Identity;
use crate::support::*;

/// SPEC §6: a watched change is picked up within this long.
const PICKUP: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_replaced_thumbprints_file_is_picked_up_without_a_signal() {
    let pki = Pki::get();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .set("thumbprints.allow", Vec::<String>::new())
        .set("thumbprints.files", vec!["pins.txt"])
        .file(
            "pins.txt",
            format!("# the sender\n{}\n", pki.client.sha256_hex()),
        )
        .start()
        .await;
    assert_eq!(gate.post("/before", "{}", &[]).await.status, 200);
    let other = TlsClient::new(Some(&pki.other_client));
    let _ = other.expect_alert(gate.addr).await;

    write_atomically(
        &gate.dir().join("pins.txt"),
        format!("# rotated\n{}\n", pki.other_client.sha1_hex()),
    );
    let took = eventually("a reload after the file changed", PICKUP, || async {
        reloads(&gate, "success").await >= 1.0
    })
    .await;
    let ok = post_as(&gate, &pki.other_client, HEADER_SECRET, "/after").await;
    assert_eq!(ok.status, 200, "picked up after {took:?}");
    let _ = gate.client().expect_alert(gate.addr).await;
    assert_eq!(reloads(&gate, "failure").await, 0.0);
    gate.expect_metric(
        "hookgate_allowlist_entries",
        &[("list", "thumbprints")],
        1.0,
    )
    .await;
}

/// Writes `certs/<version>/tls.crt` and `tls.key` for `id` (a Secret volume's timestamped dir).
fn write_version(dir: &Path, version: &str, cert_pem: &str, key_pem: &str) {
    let d = dir.join("certs").join(version);
    std::fs::create_dir_all(&d).expect("create version dir");
    std::fs::write(d.join("tls.crt"), cert_pem).expect("write tls.crt");
    std::fs::write(d.join("tls.key"), key_pem).expect("write tls.key");
}

/// What the kubelet does: point `..data` at the new version with one atomic `rename`.
fn swap_data(dir: &Path, version: &str) {
    let certs = dir.join("certs");
    let tmp = certs.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).expect("temporary symlink");
    std::fs::rename(&tmp, certs.join("..data")).expect("rename over ..data");
}

#[tokio::test]
async fn a_kubernetes_secret_symlink_swap_rotates_the_served_certificate_without_a_signal() {
    let pki = Pki::get();
    let up = Upstream::start();
    let v1 = |f: &str| format!("certs/..2026_11_29_v1/{f}");
    let Identity {
        cert_pem, key_pem, ..
    } = &pki.server;
    let gate = GateConfig::new(&up.url)
        .set("tls.cert", "certs/tls.crt")
        .set("tls.key", "certs/tls.key")
        .file(&v1("tls.crt"), cert_pem.clone())
        .file(&v1("tls.key"), key_pem.clone())
        .symlink("certs/..data", "..2026_11_29_v1")
        .symlink("certs/tls.crt", "..data/tls.crt")
        .symlink("certs/tls.key", "..data/tls.key")
        .start()
        .await;
    assert_eq!(served_leaf(&gate, &pki.client).await, pki.server.der);
    let before = cert_not_after(&gate).await;

    let rotated = &pki.server_rotated;
    write_version(
        gate.dir(),
        "..2026_11_29_v2",
        &rotated.cert_pem,
        &rotated.key_pem,
    );
    swap_data(gate.dir(), "..2026_11_29_v2");
    let took = eventually("the rotated certificate is served", PICKUP, || async {
        served_leaf(&gate, &pki.client).await == rotated.der
    })
    .await;
    assert_eq!(
        cert_not_after(&gate).await,
        ROTATED_NOT_AFTER,
        "after {took:?}"
    );
    assert_ne!(before, ROTATED_NOT_AFTER);
    assert!(reloads(&gate, "success").await >= 1.0);
    assert_eq!(reloads(&gate, "failure").await, 0.0);
    assert_eq!(gate.post("/rotated", "{}", &[]).await.status, 200);

    // A broken update delivered the same way: a failed reload, the rotated cert serves on.
    write_version(
        gate.dir(),
        "..2026_11_29_v3",
        "-----BEGIN CERTIFICATE-----\nYnJva2Vu\n-----END CERTIFICATE-----\n",
        &rotated.key_pem,
    );
    swap_data(gate.dir(), "..2026_11_29_v3");
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
        PICKUP,
    )
    .await;
    assert_eq!(served_leaf(&gate, &pki.client).await, rotated.der);
    assert_eq!(cert_not_after(&gate).await, ROTATED_NOT_AFTER);
    assert_eq!(gate.post("/still", "{}", &[]).await.status, 200);
}

#[tokio::test]
async fn an_edited_config_file_is_picked_up_without_a_signal() {
    const NEW_HEADER: &str = "hdr-secret-watched-4c1d";
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .file("header.secret", format!("{NEW_HEADER}\n"))
        .start()
        .await;
    edit_config(
        &gate,
        &[(
            "required_header.values",
            toml::Value::Array(vec![toml::Value::Table(
                [("file".to_owned(), "header.secret".into())]
                    .into_iter()
                    .collect(),
            )]),
        )],
    );
    let took = eventually("a reload after the config changed", PICKUP, || async {
        reloads(&gate, "success").await >= 1.0
    })
    .await;
    let pki = Pki::get();
    let ok = post_as(&gate, &pki.client, NEW_HEADER, "/new").await;
    assert_eq!(ok.status, 200, "picked up after {took:?}");
    post_as(&gate, &pki.client, HEADER_SECRET, "/old")
        .await
        .assert_error(403, "forbidden");
    assert_eq!(reloads(&gate, "failure").await, 0.0);
}

#[tokio::test]
async fn a_file_the_new_config_names_is_picked_up_when_it_appears_after_a_failed_reload() {
    // Kubernetes updates a ConfigMap and a Secret independently: the config may name a file
    // before the volume holding it is updated. The reload fails; when the file appears it must
    // be picked up without a signal.
    let pki = Pki::get();
    let up = Upstream::start();
    let gate = GateConfig::new(&up.url).start().await;
    edit_config(
        &gate,
        &[
            ("thumbprints.allow", Vec::<String>::new().into()),
            ("thumbprints.files", vec!["later/pins.txt"].into()),
        ],
    );
    gate.expect_metric_at_least(
        "hookgate_config_reloads_total",
        &[("result", "failure")],
        1.0,
        PICKUP,
    )
    .await;
    assert_eq!(gate.post("/old-config", "{}", &[]).await.status, 200);
    std::fs::create_dir(gate.dir().join("later")).expect("create dir");
    write_atomically(
        &gate.dir().join("later/pins.txt"),
        format!("{}\n", pki.other_client.sha256_hex()),
    );
    eventually("a reload once the named file exists", PICKUP, || async {
        reloads(&gate, "success").await >= 1.0
    })
    .await;
    let ok = post_as(&gate, &pki.other_client, HEADER_SECRET, "/new-pin").await;
    assert_eq!(ok.status, 200);
}
