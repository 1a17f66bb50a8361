//! The function processes the emulator runs on this host (each a `bootstrap`), found through
//! /proc: their peak memory for the bench, and their pids for the chaos suite to kill.

pub struct FunctionProcess {
    pub pid: u32,
    /// `AWS_LAMBDA_FUNCTION_NAME` of the process.
    pub function: String,
    /// Peak resident memory (VmHWM), kB.
    pub peak_rss_kb: Option<u64>,
    /// Open sockets now: an instance in the middle of a batch holds its pages' connections
    /// beside the one to the Runtime API.
    pub sockets: usize,
}

pub fn function_processes() -> Vec<FunctionProcess> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse().ok()) else { continue };
        let path = entry.path();
        let Ok(exe) = std::fs::read_link(path.join("exe")) else { continue };
        if !exe.ends_with("bootstrap") {
            continue;
        }
        let environ = std::fs::read(path.join("environ")).unwrap_or_default();
        let function = environ
            .split(|b| *b == 0)
            .filter_map(|var| std::str::from_utf8(var).ok())
            .find_map(|var| var.strip_prefix("AWS_LAMBDA_FUNCTION_NAME="))
            .unwrap_or("unknown")
            .to_owned();
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let peak_rss_kb = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        let sockets = std::fs::read_dir(path.join("fd"))
            .map(|fds| {
                fds.flatten()
                    .filter(|fd| {
                        std::fs::read_link(fd.path()).is_ok_and(|to| to.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0);
        found.push(FunctionProcess { pid, function, peak_rss_kb, sockets });
    }
    found
}
