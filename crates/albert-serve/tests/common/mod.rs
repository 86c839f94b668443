//! Starting `albert-serve` as a user would (the binary, on 127.0.0.1 and a port the OS picks) on
//! tiny random-weight exports of every task, and the references the tests compare it with.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test files

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use albert_core::Task;

/// A running server; killed when dropped.
pub struct Server {
    pub url: String,
    pub child: Child,
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `albert-serve MODELS… ARGS…` on port 0 and waits for its address line.
    pub fn start(models: &[String], args: &[&str], cache: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_albert-serve"))
            .args(models)
            .args(["--host", "127.0.0.1", "--port", "0", "--cache-dir"])
            .arg(cache)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start albert-serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "albert-serve did not start; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Server {
            url,
            child,
            stderr: log,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM (as a container runtime does).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit and returns its status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "albert-serve did not exit within {limit:?}; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `albert-serve MODELS… ARGS…` expecting it to refuse to start: waits (bounded) for it to
/// exit and returns its exit status and stderr. A server that starts instead is killed and fails
/// the test.
pub fn start_failure(
    models: &[String],
    args: &[&str],
    cache: &Path,
) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_albert-serve"))
        .args(models)
        .args(["--host", "127.0.0.1", "--port", "0", "--cache-dir"])
        .arg(cache)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start albert-serve");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("albert-serve did not exit within 120 s; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

/// Exports of every task the server serves, made once per test under `dir`: (name, directory).
pub fn exports(dir: &Path) -> Vec<(Task, PathBuf)> {
    [
        Task::Base,
        Task::SequenceClassification,
        Task::TokenClassification,
        Task::QuestionAnswering,
        Task::MaskedLm,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, task)| (task, albert_e2e::exported(dir, task, 40 + i as u64).1))
    .collect()
}

/// The `NAME=DIR` arguments for these exports (names are the task names).
pub fn model_args(exports: &[(Task, PathBuf)]) -> Vec<String> {
    exports
        .iter()
        .map(|(task, dir)| format!("{}={}", task.name(), dir.display()))
        .collect()
}

pub fn floats(value: &serde_json::Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

/// The bundled model served on one tract thread in small batches: a batch of long texts takes a
/// good fraction of a second, so a test's requests are surely still in flight when it acts.
pub fn slow_server(cache: &Path, extra: &[&str]) -> Server {
    let bundled = albert_e2e::root().join("models/albert-tiny-en");
    let mut args = vec![
        "--backend",
        "tract",
        "--threads",
        "1",
        "--max-batch-requests",
        "2",
    ];
    args.extend_from_slice(extra);
    Server::start(&[format!("tiny={}", bundled.display())], &args, cache)
}

/// `n` texts of the model's full length (truncated to it).
pub fn long_texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "text {i}: {}",
                "the sailors hauled the long ropes across the deck at dawn ".repeat(20)
            )
        })
        .collect()
}
