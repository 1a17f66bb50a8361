//! The SSRF table: hostile targets every layer must refuse (the engine in
//! `tests/integration/ssrf.rs`, the deployed stack in the chaos suite).

/// Targets refused before any request: IP literals in every spelling, names that resolve to
/// private addresses, and schemes other than http(s).
pub const DIRECT: &[&str] = &[
    "http://127.0.0.1/",
    "http://127.1/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1:8080/admin",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://localhost/",
    "http://localhost./",
    "http://vm:8080/",
    "file:///etc/passwd",
    "gopher://example.com:70/",
    "ftp://example.com/",
    "data:text/html,hello",
];

/// Where the site's `/redirect?to=` sends the analyzer.
pub const REDIRECTS: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://2130706433/",
    "http://localhost/",
    "file:///etc/passwd",
];
