//! Upstream TLS: the gateway speaks HTTPS to an upstream with rustls, trusts a private CA only
//! where `ca_file` says so, and refuses an untrusted certificate with a clear 502.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// A CA and a leaf certificate for 127.0.0.1/localhost, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Warden Test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

fn tls_mock(dir: &Path) -> (Proc, String) {
    let log = dir.join("mock.log");
    let mut child = Command::new(BIN)
        .args(["mock-upstream", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(dir.join("leaf.pem"))
        .arg("--tls-key")
        .arg(dir.join("leaf.key"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("https://"), "{line}");
    let addr = url.trim_start_matches("https://").parse().unwrap();
    (
        Proc {
            child,
            addr,
            data_dir: dir.to_path_buf(),
            log,
        },
        url,
    )
}

#[tokio::test]
async fn https_upstream_with_a_private_ca() {
    let dir = temp_dir("tls");
    make_certs(&dir);
    let (_mock, url) = tls_mock(&dir);
    std::fs::write(
        dir.join("warden.toml"),
        format!(
            "[upstreams.secure]\nprovider = \"openai\"\nurl = \"{url}\"\nca_file = \"ca.pem\"\n\n\
             [upstreams.untrusted]\nprovider = \"openai\"\nurl = \"{url}\"\n"
        ),
    )
    .unwrap();
    let gw = gateway_with_args(&[
        "--config".into(),
        dir.join("warden.toml").display().to_string(),
    ]);
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;

    let r = post_json(
        &format!("{}/secure/v1/chat/completions", gw.url()),
        &[("x-mock-scenario", r#"{"text":"over TLS"}"#)],
        body,
    )
    .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log_text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "over TLS");

    // The same server without the CA: the certificate is not trusted, and the client is told.
    let r = post_json(
        &format!("{}/untrusted/v1/chat/completions", gw.url()),
        &[],
        body,
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("untrusted") && msg.to_lowercase().contains("certificate"),
        "{msg}"
    );
}

#[test]
fn ca_file_errors_name_the_key_and_line() {
    let dir = temp_dir("tlscfg");
    std::fs::write(dir.join("not-a-cert.pem"), "hello").unwrap();
    std::fs::write(
        dir.join("warden.toml"),
        "[upstreams.secure]\nprovider = \"openai\"\nurl = \"https://example.com\"\nca_file = \"not-a-cert.pem\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "warden.toml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warden.toml:4") && err.contains("upstreams.secure.ca_file"),
        "{err}"
    );
}
