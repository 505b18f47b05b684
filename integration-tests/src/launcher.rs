//! Runs the real `promshard` binary as child processes, the way it runs in production.
//!
//! Contract with the binary: a server process prints exactly one line to stdout once its
//! listeners are bound, `listening grpc=127.0.0.1:40001 http=127.0.0.1:40002` (name=address
//! pairs), and logs to stderr. Tests pass `127.0.0.1:0` listen addresses and read the real ones
//! from that line, so tests never race each other for ports.
//!
//! Each process's stderr goes straight to a file under `target/test-logs/<test binary>/<test>/`,
//! kept after the run: the log survives a crash of the child or of the test, and its path is
//! printed when a test panics while the process is alive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::server::lock;

/// How long a process may take to print its `listening` line.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// How long [`Process::terminate`] waits for a graceful exit.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// A running `promshard` process. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    pid: u32,
    addrs: BTreeMap<String, SocketAddr>,
    log_path: PathBuf,
    exit: Option<ExitStatus>,
    /// Whether dropping during a panic prints the log (not when the panic message has it).
    report_on_panic: bool,
}

impl Process {
    /// Starts `promshard ARGS...` and waits until it has printed its `listening` line.
    ///
    /// `name` only labels the process (log file `<name>.log`, messages), e.g. `"worker-1"`;
    /// `args` is the whole command line after the binary, e.g.
    /// `&["worker", "--listen-http", "127.0.0.1:0", ...]`.
    ///
    /// Panics, with the log's path and tail, if the process exits or stays silent for
    /// [`STARTUP_DEADLINE`], or if the first line of stdout does not follow the contract.
    pub async fn spawn(name: &str, args: &[&str]) -> Process {
        Process::spawn_with_env(name, args, &[]).await
    }

    /// [`Process::spawn`] with extra environment variables (e.g. `RUST_LOG`).
    pub async fn spawn_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        Process::spawn_program(&promshard_bin(), name, args, env).await
    }

    /// [`Process::spawn_with_env`] for another program that follows the same stdout contract
    /// (a stand-in binary, or a shell script in this crate's own tests).
    pub async fn spawn_program(
        bin: &Path,
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Process {
        remember_panic_messages();
        let log_path = log_path(name);
        let log = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create log file {}: {e}", log_path.display()));
        let mut command = Command::new(bin);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if std::env::var_os("RUST_BACKTRACE").is_none() {
            command.env("RUST_BACKTRACE", "1");
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} for {name}: {e}", bin.display()));
        let pid = child.id().expect("a just-spawned child has a pid");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut process = Process {
            name: name.to_owned(),
            child,
            pid,
            addrs: BTreeMap::new(),
            log_path,
            exit: None,
            report_on_panic: true,
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(STARTUP_DEADLINE, lines.next_line()).await;
        let line = match first {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                // stdout closed: the process is exiting, or closed it and lives on (bounded).
                let waited =
                    tokio::time::timeout(Duration::from_secs(5), process.child.wait()).await;
                let status = waited.ok().and_then(Result::ok);
                process.exit = status;
                process.report_on_panic = false;
                let status =
                    status.map_or_else(|| "or closed stdout".to_owned(), |s| s.to_string());
                panic!(
                    "{name} ({} {}) exited ({status}) before printing its \
                     `listening` line\n{}",
                    bin.display(),
                    args.join(" "),
                    process.log_tail()
                );
            }
            Err(_) => {
                process.report_on_panic = false;
                panic!(
                    "{name} ({} {}) printed no `listening` line within {STARTUP_DEADLINE:?}\n{}",
                    bin.display(),
                    args.join(" "),
                    process.log_tail()
                )
            }
        };
        process.addrs = parse_listening_line(&line).unwrap_or_else(|e| {
            process.report_on_panic = false;
            panic!(
                "{name}: first stdout line breaks the startup contract ({e}): {line:?}\n{}",
                process.log_tail()
            )
        });
        tokio::spawn(drain_stdout(lines, process.log_path.clone()));
        process
    }

    /// The address the process reported for listener `name` (e.g. `"grpc"`, `"http"`).
    pub fn addr(&self, name: &str) -> SocketAddr {
        match self.addrs.get(name) {
            Some(addr) => *addr,
            None => panic!(
                "{} reported no `{name}` listener; it reported {:?}",
                self.name, self.addrs
            ),
        }
    }

    /// Every listener the process reported.
    pub fn addrs(&self) -> &BTreeMap<String, SocketAddr> {
        &self.addrs
    }

    /// `http://ADDR` of listener `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}", self.addr(name))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process wrote to stderr so far (lossy UTF-8).
    pub fn log_contents(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()))
    }

    /// Kills the process with SIGKILL (a crash, no cleanup) and reaps it.
    pub async fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let _ = self.child.start_kill();
        let status = self
            .child
            .wait()
            .await
            .unwrap_or_else(|e| panic!("waiting for {} after SIGKILL: {e}", self.name));
        self.exit = Some(status);
        status
    }

    /// Sends SIGTERM and waits up to [`SHUTDOWN_DEADLINE`] for the process to exit; panics with
    /// the log's tail if it does not.
    pub async fn terminate(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        // `kill(1)` rather than libc, so the workspace can keep `unsafe_code = "forbid"`.
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        if !matches!(sent, Ok(status) if status.success()) {
            // The process may already have exited on its own; wait() below tells.
            tracing::debug!(name = %self.name, ?sent, "kill -TERM did not succeed");
        }
        self.wait_exit(SHUTDOWN_DEADLINE).await
    }

    /// Waits up to `deadline` for the process to exit by itself; panics if it does not.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exit = Some(status);
                status
            }
            Ok(Err(e)) => panic!("waiting for {}: {e}", self.name),
            Err(_) => panic!(
                "{} did not exit within {deadline:?}\n{}",
                self.name,
                self.log_tail()
            ),
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    fn log_tail(&self) -> String {
        log_tail(&self.name, &self.log_path)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() && self.report_on_panic {
            eprintln!("{}", self.log_tail());
            // CI shows the end of the output: the failure must not scroll away behind the logs.
            if let Some(message) = lock(&PANIC_MESSAGES).get(&std::thread::current().id()) {
                eprintln!("--- the test failed (repeated after the log above) ---\n{message}");
            }
        }
        // kill_on_drop sends the SIGKILL; tokio reaps the child in the background.
    }
}

/// The panic message of each panicking test thread, for [`Process`]'s drop to repeat.
static PANIC_MESSAGES: LazyLock<Mutex<HashMap<std::thread::ThreadId, String>>> =
    LazyLock::new(Mutex::default);

/// Chains a panic hook that keeps each thread's panic message (the default hook still prints).
fn remember_panic_messages() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            lock(&PANIC_MESSAGES).insert(std::thread::current().id(), info.to_string());
            previous(info);
        }));
    });
}

/// The last lines of a log file, with its path, for failure messages.
pub(crate) fn log_tail(name: &str, path: &Path) -> String {
    const LINES: usize = 40;
    let text = std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LINES)..];
    format!(
        "--- {name} log: {} (last {} of {} lines) ---\n{}\n--- end of {name} log ---",
        path.display(),
        tail.len(),
        lines.len(),
        tail.join("\n")
    )
}

/// Anything printed to stdout after the contract line goes to the log, so it is neither lost
/// nor able to block the child on a full pipe.
async fn drain_stdout(mut lines: tokio::io::Lines<BufReader<ChildStdout>>, log_path: PathBuf) {
    let mut log = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .await
        .ok();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(log) = log.as_mut() {
            let _ = log.write_all(format!("[stdout] {line}\n").as_bytes()).await;
        }
    }
}

/// Parses `listening grpc=127.0.0.1:1 http=127.0.0.1:2`.
pub fn parse_listening_line(line: &str) -> Result<BTreeMap<String, SocketAddr>, String> {
    let mut words = line.split_whitespace();
    if words.next() != Some("listening") {
        return Err("it does not start with `listening`".to_owned());
    }
    let mut addrs = BTreeMap::new();
    for word in words {
        let (name, addr) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}` is not name=address"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("`{addr}` is not a socket address: {e}"))?;
        if addrs.insert(name.to_owned(), addr).is_some() {
            return Err(format!("listener `{name}` appears twice"));
        }
    }
    if addrs.is_empty() {
        return Err("it names no listener".to_owned());
    }
    Ok(addrs)
}

/// Runs a one-shot `promshard` command (e.g. `check config FILE`) to completion and returns its
/// output. Panics if it runs longer than `deadline`.
pub async fn run_promshard(args: &[&str], deadline: Duration) -> Output {
    let bin = promshard_bin();
    let mut command = Command::new(&bin);
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(deadline, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("cannot run {}: {e}", bin.display()),
        Err(_) => panic!("promshard {} ran longer than {deadline:?}", args.join(" ")),
    }
}

/// The `promshard` binary under test: `$PROMSHARD_BIN`, else `promshard` in the cargo profile
/// directory this test executable was built into (`target/<profile>/deps/<test>` → `target/<profile>/promshard`).
pub fn promshard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMSHARD_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PROMSHARD_BIN={} does not exist",
            path.display()
        );
        return path;
    }
    let path = profile_dir().join("promshard");
    assert!(
        path.is_file(),
        "the promshard binary is missing at {}: build it with `cargo build` (or set PROMSHARD_BIN)",
        path.display()
    );
    // `cargo test -p promshard-integration-tests` does not rebuild the root package's binary,
    // and testing yesterday's binary passes or fails for the wrong reasons.
    if let Some(newer) = newer_source(&path) {
        panic!(
            "the promshard binary at {} is older than {}: rebuild it with `cargo build` \
             (./scripts/test.sh does), or set PROMSHARD_BIN",
            path.display(),
            newer.display()
        );
    }
    path
}

/// A workspace source file modified after `bin`, if any.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok()?;
    let newer = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > built)
    };
    // Cargo's dep-info file lists exactly the sources compiled into the binary, so a test-only
    // file (a `#[cfg(test)] mod tests;`) edited after the build does not count as staleness.
    let mut dep_info = bin.as_os_str().to_owned();
    dep_info.push(".d");
    if let Ok(text) = std::fs::read_to_string(&dep_info) {
        let first = text.lines().next()?;
        let deps = first.split_once(": ")?.1;
        // Paths are space-separated, with spaces inside a path escaped as `\ `.
        let mut path = String::new();
        let mut chars = deps.chars().peekable();
        let mut found = None;
        let mut check = |path: &mut String| {
            if !path.is_empty() && found.is_none() && newer(Path::new(path.as_str())) {
                found = Some(PathBuf::from(path.as_str()));
            }
            path.clear();
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    path.push(' ');
                    chars.next();
                }
                ' ' => check(&mut path),
                c => path.push(c),
            }
        }
        check(&mut path);
        return found;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let mut stack: Vec<PathBuf> = ["src", "proto", "model", "master", "worker"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if !p.ends_with("tests") && !p.ends_with("benches") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|e| e == "rs" || e == "proto") && newer(&p) {
                return Some(p);
            }
        }
    }
    None
}

/// `target/<profile>`, derived from the running executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running executable");
    let mut dir = exe
        .parent()
        .expect("an executable lives in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Paths handed out in this process, so a restarted `worker-1` gets `worker-1.2.log` rather
/// than overwriting the log of the first one.
static USED_LOG_PATHS: LazyLock<Mutex<HashSet<PathBuf>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

/// A fresh log file path `target/test-logs/<test binary>/<test name>/<name>.log`
/// (`$PROMSHARD_TEST_LOGS` replaces `target/test-logs`).
pub(crate) fn log_path(name: &str) -> PathBuf {
    let root = std::env::var_os("PROMSHARD_TEST_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| match profile_dir().parent() {
            Some(target) => target.join("test-logs"),
            None => std::env::temp_dir().join("promshard-test-logs"),
        });
    let exe = std::env::current_exe().ok();
    // Test executables are `<crate>-<hash>`; the hash only makes paths harder to find.
    let binary = exe
        .as_deref()
        .and_then(Path::file_stem)
        .and_then(|stem| stem.to_str())
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem.to_owned(),
        })
        .unwrap_or_else(|| "unknown".to_owned());
    // libtest names each test's thread after the test; `#[tokio::test]` runs the body on it.
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .map(|name| name.replace("::", "."))
        .unwrap_or_else(|| format!("pid-{}", std::process::id()));
    let dir = root.join(sanitize(&binary)).join(sanitize(&test));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create log directory {}: {e}", dir.display()));
    let mut used = lock(&USED_LOG_PATHS);
    let mut path = dir.join(format!("{}.log", sanitize(name)));
    let mut n = 1;
    while !used.insert(path.clone()) {
        n += 1;
        path = dir.join(format!("{}.{n}.log", sanitize(name)));
    }
    path
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A loopback port that was free a moment ago, for programs that cannot report the port they
/// bound (Prometheus). Racy by nature: prefer `127.0.0.1:0` plus a reported address.
pub fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding 127.0.0.1:0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        let addrs =
            parse_listening_line("listening grpc=127.0.0.1:40001 http=127.0.0.1:40002").unwrap();
        assert_eq!(
            addrs,
            BTreeMap::from([
                ("grpc".to_owned(), "127.0.0.1:40001".parse().unwrap()),
                ("http".to_owned(), "127.0.0.1:40002".parse().unwrap()),
            ])
        );
    }

    #[test]
    fn rejects_lines_that_break_the_contract() {
        assert_eq!(
            parse_listening_line("starting up").unwrap_err(),
            "it does not start with `listening`"
        );
        assert_eq!(
            parse_listening_line("listening").unwrap_err(),
            "it names no listener"
        );
        assert_eq!(
            parse_listening_line("listening http").unwrap_err(),
            "`http` is not name=address"
        );
        assert!(
            parse_listening_line("listening http=localhost:80")
                .unwrap_err()
                .starts_with("`localhost:80` is not a socket address")
        );
        assert_eq!(
            parse_listening_line("listening http=127.0.0.1:1 http=127.0.0.1:2").unwrap_err(),
            "listener `http` appears twice"
        );
    }

    #[test]
    fn log_paths_are_per_test_and_never_reused() {
        let first = log_path("worker-1");
        let second = log_path("worker-1");
        assert_eq!(first.file_name().unwrap(), "worker-1.log");
        assert_eq!(second.file_name().unwrap(), "worker-1.2.log");
        let test_dir = first.parent().unwrap();
        assert!(
            test_dir.ends_with("launcher.tests.log_paths_are_per_test_and_never_reused"),
            "{}",
            test_dir.display()
        );
    }

    fn sh() -> &'static Path {
        Path::new("/bin/sh")
    }

    #[tokio::test]
    async fn spawns_reads_addresses_and_keeps_the_log() {
        let script = "echo 'listening grpc=127.0.0.1:7001 http=127.0.0.1:7002'; \
                      echo 'to stderr' >&2; echo 'late stdout'; exec sleep 60";
        let mut process = Process::spawn_program(sh(), "fake", &["-c", script], &[]).await;
        assert_eq!(process.addr("grpc"), "127.0.0.1:7001".parse().unwrap());
        assert_eq!(process.url("http"), "http://127.0.0.1:7002");
        assert!(process.pid() > 0);
        let log = crate::eventually(Duration::from_secs(10), "both log lines", || {
            let log = process.log_contents();
            async move {
                if log.contains("[stdout] late stdout") {
                    Ok(log)
                } else {
                    Err(log)
                }
            }
        })
        .await;
        assert!(log.starts_with("to stderr\n"), "{log:?}");
        assert_eq!(process.try_exit_status(), None);
        let status = process.terminate().await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15));
    }

    #[tokio::test]
    async fn kill_is_sigkill() {
        let script = "echo 'listening http=127.0.0.1:1'; trap '' TERM; exec sleep 60";
        let mut process = Process::spawn_program(sh(), "stubborn", &["-c", script], &[]).await;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(process.kill().await.signal(), Some(9));
        // Once reaped, the status stays available.
        assert_eq!(process.try_exit_status().and_then(|s| s.signal()), Some(9));
    }

    #[tokio::test]
    #[should_panic(
        expected = "exited (exit status: 3) before printing its `listening` line\n--- dies log: "
    )]
    async fn spawn_panics_when_the_process_dies_first() {
        Process::spawn_program(sh(), "dies", &["-c", "echo boom >&2; exit 3"], &[]).await;
    }

    #[tokio::test]
    #[should_panic(expected = "breaks the startup contract (it does not start with `listening`)")]
    async fn spawn_panics_on_a_wrong_first_line() {
        Process::spawn_program(sh(), "chatty", &["-c", "echo hello; sleep 60"], &[]).await;
    }

    #[test]
    fn free_loopback_port_can_be_bound() {
        let port = free_loopback_port();
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
