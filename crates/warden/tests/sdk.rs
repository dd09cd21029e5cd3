//! The official Python SDKs (openai, anthropic, google-genai) against a real gateway.
//!
//! Each test runs one pytest file from `tests/sdk/` with `WARDEN_BIN` set to this build's
//! `warden` binary; the Python fixtures start `warden mock-upstream` and `warden serve` and point
//! the SDK at the gateway by base URL only. The Python environment comes from `WARDEN_PYTHON`
//! when set, else from `scripts/sdk-venv.sh` (a venv under `target/sdk-venv`, created once and
//! reused; needs python3 and PyPI the first time).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Upper bound for one pytest file, venv excluded; the suites take seconds.
const PYTEST_TIMEOUT: Duration = Duration::from_secs(600);

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The venv's python, created at most once per test process (the script itself also holds a
/// file lock, so parallel test processes do not race either).
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("WARDEN_PYTHON").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let root = repo_root();
        let script = root.join("scripts/sdk-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(&root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!(
                "{} failed ({}); set WARDEN_PYTHON to a python with tests/sdk/requirements.txt \
                 installed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                script.display(),
                out.status
            ));
        }
        stdout
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| format!("{} printed no python path\n{stderr}", script.display()))
    });
    match found {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `tests/sdk/<file>` under pytest and fails with pytest's whole output if it fails.
fn pytest(file: &str) {
    let python = python();
    let root = repo_root();
    let mut child = Command::new(python)
        .args([
            "-m",
            "pytest",
            &format!("tests/sdk/{file}"),
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(&root)
        .env("WARDEN_BIN", env!("CARGO_BIN_EXE_warden"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));

    // Drain both pipes on threads so a chatty run never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));

    let deadline = Instant::now() + PYTEST_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for pytest") {
            Some(status) => break Some(status),
            None if Instant::now() >= deadline => {
                // SIGKILL pytest; the gateway and mock it started get SIGTERM from the kernel
                // (conftest sets PR_SET_PDEATHSIG on Linux).
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => println!("{stdout}{stderr}"),
        Some(s) => panic!(
            "pytest tests/sdk/{file} failed ({s})\n--- pytest stdout ---\n{stdout}\n--- pytest stderr ---\n{stderr}"
        ),
        None => panic!(
            "pytest tests/sdk/{file} did not finish within {PYTEST_TIMEOUT:?}; killed\n--- pytest stdout ---\n{stdout}\n--- pytest stderr ---\n{stderr}"
        ),
    }
}

#[test]
fn openai_sdk() {
    pytest("test_openai.py");
}

#[test]
fn anthropic_sdk() {
    pytest("test_anthropic.py");
}

#[test]
fn gemini_sdk() {
    pytest("test_gemini.py");
}

#[test]
fn governance_sdk() {
    pytest("test_governance.py");
}

#[test]
fn protect_sdk() {
    pytest("test_protect.py");
}

/// Tool-call governance and human approval through the official SDKs.
#[test]
fn tools_sdk() {
    pytest("test_tools.py");
}
