//! A real sidecar per test: the memory backend on a free loopback port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metaparticle_sync::{Client, Error};

/// `$MSYNC_NODE $MSYNC_DAEMON_MAIN` (set by `npm test`), or the repository's
/// own node and dist/daemon/main.js, stopped when dropped.
pub struct Daemon {
    process: Child,
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// A sidecar whose leases last 2 s and whose holders are told lost after
    /// 1 s without a renewal: heartbeats come about every 0.7 s.
    pub fn start_short_lease() -> Daemon {
        Daemon::start_with(&["--lease-duration=2s", "--renew-deadline=1s"])
    }

    pub fn start_with(flags: &[&str]) -> Daemon {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let node = env_or("MSYNC_NODE", root.join("node_modules/.bin/node"));
        let main = env_or("MSYNC_DAEMON_MAIN", root.join("dist/daemon/main.js"));
        let mut command = tied(&node);
        command
            .arg(&main)
            .args(["--listen=127.0.0.1:0", "--backend=memory", "--shutdown-timeout=1s"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut process = command
            .spawn()
            .unwrap_or_else(|err| panic!("start the daemon {node:?} {main:?}: {err}"));

        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_sender, address) = mpsc::channel();
        let stderr = process.stderr.take().expect("stderr is piped");
        let lines = log.clone();
        std::thread::spawn(move || {
            let mut listening = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let message = entry["msg"].as_str().unwrap_or_default();
                if message == "gRPC server listening" {
                    listening = entry["address"].as_str().map(str::to_owned);
                } else if message.starts_with("ready") {
                    let _ = address_sender.send(listening.clone());
                }
            }
        });
        let mut daemon = Daemon {
            process,
            address: String::new(),
            log,
        };
        match address.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(address)) => daemon.address = address,
            _ => panic!(
                "the daemon did not get ready within 30 s; its log:\n{}",
                daemon.log.lock().unwrap().join("\n")
            ),
        }
        daemon
    }

    pub fn client(&self) -> Client {
        Client::with_address(&self.address).expect("the daemon's address is host:port")
    }

    /// Stops the daemon (SIGSTOP) until thaw or drop.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        let result = unsafe { libc::kill(self.process.id() as libc::pid_t, signal) };
        assert_eq!(result, 0, "signal {signal} to the daemon");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.thaw();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Runs `program` under util-linux setpriv, if present, so that the kernel
/// kills it when the test process dies, even outright.
fn tied(program: &PathBuf) -> Command {
    match which("setpriv") {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "SIGKILL", "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn env_or(variable: &str, fallback: PathBuf) -> PathBuf {
    std::env::var_os(variable)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or(fallback)
}

/// Awaits `future` for at most `seconds`, failing the test with `what`.
pub async fn within<T>(seconds: u64, what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {seconds} s"))
}

/// Awaits `call` to a frozen sidecar, which must fail with
/// `Error::DeadlineExceeded` at its deadline `timeout`, not before and not
/// much after.
pub async fn fails_at_its_deadline<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, Error>>,
) {
    let started = std::time::Instant::now();
    let err = within(5, what, call).await.unwrap_err();
    let took = started.elapsed();
    eprintln!("{what} on a frozen sidecar returned after {took:?}: {err}");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{what}: {err:?}");
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(700),
        "{what}: {took:?}"
    );
}
