//! `speedbatch-chaos [all|quick|<scenario>...] [--out FILE]`: runs the reliability suite
//! against the deployed chaos stack (`make chaos-stack`) and writes RELIABILITY.md. Exits 1
//! when any check did not hold.

use chaos::report::{Section, document};
use chaos::rig::Rig;
use chaos::{Scale, scenarios};

const SCENARIOS: [&str; 12] = [
    "crashes",
    "duplicates",
    "poison",
    "load",
    "neighbour",
    "hostile",
    "callbacks",
    "security",
    "fuzz",
    "schemathesis",
    "outage",
    "logs",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) if i + 1 < args.len() => {
            let out = args.remove(i + 1);
            args.remove(i);
            Some(out)
        }
        Some(_) => usage("--out needs a file"),
        None => None,
    };
    let (scale, wanted): (Scale, Vec<String>) = match args.first().map(String::as_str) {
        None | Some("all") => (Scale::FULL, SCENARIOS.iter().map(|s| s.to_string()).collect()),
        Some("quick") => (Scale::QUICK, SCENARIOS.iter().map(|s| s.to_string()).collect()),
        Some(_) => (Scale::FULL, args.clone()),
    };
    if let Some(unknown) = wanted.iter().find(|w| !SCENARIOS.contains(&w.as_str())) {
        usage(&format!("no scenario {unknown:?}"));
    }
    let rig = match Rig::new().await {
        Ok(rig) => rig,
        Err(err) => {
            eprintln!("speedbatch-chaos: {err}");
            std::process::exit(1);
        }
    };
    let started = std::time::Instant::now();
    let mut sections: Vec<Section> = Vec::new();
    // The outage restarts the emulator, so it runs after everything that needs it steady;
    // the log scan runs last, over everything the run wrote.
    for name in SCENARIOS.iter().filter(|s| wanted.iter().any(|w| w == *s)) {
        eprintln!("==> {name} ({:.0} s into the run)", started.elapsed().as_secs_f64());
        sections.push(match *name {
            "crashes" => scenarios::crashes::run(&rig, &scale).await,
            "duplicates" => scenarios::duplicates::run(&rig, &scale).await,
            "poison" => scenarios::poison::run(&rig, &scale).await,
            "load" => scenarios::load::run(&rig, &scale).await,
            "neighbour" => scenarios::neighbour::run(&rig, &scale).await,
            "hostile" => scenarios::hostile::run(&rig).await,
            "callbacks" => scenarios::callbacks::run(&rig).await,
            "security" => scenarios::security::run(&rig).await,
            "fuzz" => scenarios::tools::fuzz(&scale).await,
            "schemathesis" => scenarios::tools::schemathesis().await,
            "outage" => scenarios::outage::run(&rig, &scale).await,
            _ => scenarios::security::logs(&rig).await,
        });
    }
    let held = sections.iter().all(Section::held);
    let markdown = document(&preamble(&scale, started.elapsed().as_secs()), &sections);
    match out {
        Some(path) => {
            if let Err(err) = std::fs::write(&path, &markdown) {
                eprintln!("speedbatch-chaos: write {path}: {err}");
                std::process::exit(1);
            }
            eprintln!("==> wrote {path}");
        }
        None => println!("{markdown}"),
    }
    if !held {
        eprintln!("speedbatch-chaos: some checks did not hold (see the report)");
        std::process::exit(1);
    }
}

fn preamble(scale: &Scale, seconds: u64) -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "# Reliability and security\n\n\
         Written by `make chaos` (`speedbatch-chaos all`) at commit `{commit}`, {date}, in {minutes} minutes, on \
         the local stack: ministack 1.5.33 on a 2-core machine, the functions' release builds as local processes. \
         It runs against `speedbatch-chaos`, a second deployment of `template.yaml` beside the dev stack, with \
         the address policy strict (but for the suite's own site on 127.0.0.2), the analyzer's timeout at 70 s \
         and the queues' visibility timeout at 80 s, so that a killed analyzer's URLs come back in 80 s rather \
         than 16 minutes. Scale: crashes {crash} URLs, outage {outage} URLs for {down} s, duplicates {dup} \
         URLs, {poison} poison messages, load {clients} × {urls} URLs, noisy neighbour {noisy_jobs} × \
         {noisy_urls} URLs, fuzzing {fuzz} s per target. The stack gives a host 20 places (`HostConcurrency`, \
         the most) because every page the suite serves is on 127.0.0.2; the noisy neighbour's jobs ask for 4. \
         `make test` \
         runs the quick parts (`chaos/tests/quick.rs`) at a smaller scale.\n",
        date = domain::time::rfc3339(domain::time::now_millis()),
        minutes = seconds.div_ceil(60),
        crash = scale.crash_urls,
        outage = scale.outage_urls,
        down = scale.outage_seconds,
        dup = scale.duplicate_urls,
        poison = scale.poison_messages,
        clients = scale.load_clients,
        urls = scale.load_urls,
        noisy_jobs = scale.noisy_jobs,
        noisy_urls = scale.noisy_urls,
        fuzz = scale.fuzz_seconds,
    )
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "speedbatch-chaos: {problem}\nusage: speedbatch-chaos [all|quick|{}...] [--out FILE]",
        SCENARIOS.join("|")
    );
    std::process::exit(1);
}
