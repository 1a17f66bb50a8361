//! Security through the deployed stack: the SSRF table, tenant isolation on every endpoint,
//! keys only hashed at rest, and no key or secret in any log line of the run.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use testkit::logs::{Logs, group_of};
use testkit::ssrf::{DIRECT, REDIRECTS};

use crate::report::Section;
use crate::rig::{Rig, pages};
use crate::scenarios;

pub async fn run(rig: &Rig) -> Section {
    let mut section = Section::new(
        "Security",
        "The chaos stack is deployed as on AWS (`AllowPrivateTargets=false`), except that the suite's own \
         site on 127.0.0.2 is exempt (`ExemptTarget`), so redirects from it are judged exactly as a deployed \
         analyzer judges them. Tenants are API keys of their own. The table is read with a full Scan.",
    );
    if let Err(err) = ssrf(rig, &mut section).await {
        section.broke("the SSRF table through the deployed stack", err);
    }
    if let Err(err) = isolation(rig, &mut section).await {
        section.broke("tenant isolation", err);
    }
    if let Err(err) = keys_at_rest(rig, &mut section).await {
        section.broke("keys at rest", err);
    }
    section
}

async fn ssrf(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let mut targets: Vec<String> = DIRECT.iter().map(|t| t.to_string()).collect();
    for to in REDIRECTS {
        let query: String = url::form_urlencoded::byte_serialize(to.as_bytes()).collect();
        targets.push(rig.site.url(&format!("/redirect?to={query}")));
    }
    let hits_before = rig.site.hits();
    let body = json!({"urls": targets, "engine": "http", "max_retries": 0, "name": "chaos: ssrf"});
    let created = rig.api.ok(reqwest::Method::POST, "/start", Some(&body)).await?;
    let mut outcome: HashMap<String, String> = HashMap::new();
    for rejected in created["rejected"].as_array().into_iter().flatten() {
        let input = rejected["input"].as_str().unwrap_or_default().to_owned();
        outcome.insert(input, format!("refused at submission: {}", rejected["reason"].as_str().unwrap_or("?")));
    }
    let id = created["batch_job_id"].as_str().ok_or("no job id")?.to_owned();
    scenarios::watch(&rig.api, &id, Duration::from_secs(300), async |_| Ok(())).await?;
    let mut blocked = 0;
    let mut leaked = Vec::new();
    for row in scenarios::all_results(&rig.api, &id).await? {
        let url = row["url"].as_str().unwrap_or_default().to_owned();
        let kind = row["error_kind"].as_str().unwrap_or("none");
        if kind == "blocked" {
            blocked += 1;
        } else {
            leaked.push(format!("{url}: {} ({kind})", row["status"]));
        }
        let original = targets.iter().find(|t| url.contains(t.as_str()) || t.contains(&url)).cloned().unwrap_or(url);
        outcome.insert(original, format!("refused by the analyzer: {}", row["error"].as_str().unwrap_or("?")));
    }
    let refused = created["rejected"].as_array().map_or(0, Vec::len);
    let fetched = rig.site.hits() - hits_before;
    section.check(
        format!(
            "the SSRF table of `tests/integration/ssrf.rs` as one job ({} direct targets, {} redirects)",
            DIRECT.len(),
            REDIRECTS.len()
        ),
        format!("{} targets", targets.len()),
        format!(
            "{refused} refused at submission, {blocked} refused by the analyzer (blocked by policy), {} reached; the \
             site served only the {fetched} redirect pages{}",
            leaked.len(),
            if leaked.is_empty() { String::new() } else { format!(": {}", leaked.join("; ")) }
        ),
        leaked.is_empty() && refused + blocked == targets.len() && fetched == REDIRECTS.len(),
    );
    for target in &targets {
        let what = outcome.get(target).cloned().unwrap_or_else(|| "no outcome found".into());
        section.note(format!("`{target}`: {what}"));
    }
    Ok(())
}

/// Every endpoint a job id reaches, as another tenant and without a key.
async fn isolation(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let a = rig.tenant("a").await?;
    let b = rig.tenant("b").await?;
    let finished = a.submit(&json!({"urls": pages(&rig.site, "/page", 600_000, 3), "engine": "http"})).await?;
    a.finished(&finished, Duration::from_secs(300)).await?;
    let slow = pages(&rig.site, "/slow", 600_100, 10);
    let running = a.submit(&json!({"urls": slow, "engine": "http", "batch_size": 1})).await?;

    let probes: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::GET, format!("/progress/{finished}")),
        (reqwest::Method::GET, format!("/results/{finished}")),
        (reqwest::Method::GET, format!("/results/{finished}?format=csv")),
        (reqwest::Method::POST, format!("/cancel/{running}")),
        (reqwest::Method::GET, format!("/progress/{running}")),
    ];
    let mut answers = Vec::new();
    for (method, path) in &probes {
        let (status, _) = b.call(method.clone(), path, None).await?;
        answers.push((
            format!("{method} {}", path.replace(&finished, "{A's job}").replace(&running, "{A's running job}")),
            status,
        ));
    }
    let (status, listed) = b.call(reqwest::Method::GET, "/jobs?limit=100", None).await?;
    let listed = listed.to_string();
    let list_hides = status == 200 && !listed.contains(&finished) && !listed.contains(&running);
    let (_, cleanup) = b.call(reqwest::Method::DELETE, "/cleanup?older_than_days=0", None).await?;
    let a_still = a.progress(&finished).await.is_ok();
    let secret_a =
        a.ok(reqwest::Method::GET, "/callback-secret", None).await?["secret"].as_str().unwrap_or_default().to_owned();
    let secret_b =
        b.ok(reqwest::Method::GET, "/callback-secret", None).await?["secret"].as_str().unwrap_or_default().to_owned();
    rig.remember_secret("tenant a's callback secret", &secret_a);
    rig.remember_secret("tenant b's callback secret", &secret_b);
    let running_after = a.finished(&running, Duration::from_secs(600)).await?;
    let all_404 = answers.iter().all(|(_, status)| *status == 404);
    section.check(
        "tenant B reads, exports, cancels and lists tenant A's jobs",
        format!("{} calls", answers.len()),
        format!(
            "{}; B's job list {} A's jobs; B's cleanup deleted {} job(s) and A's finished job is {}; A's running job \
             ended {}; the callback secrets {}",
            answers.iter().map(|(what, status)| format!("{what} → {status}")).collect::<Vec<_>>().join(", "),
            if list_hides { "does not show" } else { "SHOWS" },
            cleanup["jobs_deleted"],
            if a_still { "still there" } else { "GONE" },
            running_after["status"],
            if secret_a != secret_b && !secret_a.is_empty() { "differ" } else { "ARE THE SAME" }
        ),
        all_404
            && list_hides
            && a_still
            && running_after["status"] == "completed"
            && secret_a != secret_b
            && !secret_a.is_empty(),
    );

    let endpoints: Vec<(reqwest::Method, String)> = vec![
        (reqwest::Method::POST, "/start".into()),
        (reqwest::Method::GET, format!("/progress/{finished}")),
        (reqwest::Method::GET, "/jobs".into()),
        (reqwest::Method::POST, format!("/cancel/{finished}")),
        (reqwest::Method::GET, format!("/results/{finished}")),
        (reqwest::Method::DELETE, "/cleanup?older_than_days=0".into()),
        (reqwest::Method::GET, "/queue/status".into()),
        (reqwest::Method::GET, "/callback-secret".into()),
    ];
    let nobody = rig.api.with_key("");
    let stranger = rig.api.with_key(&domain::auth::generate_key());
    let mut wrong = Vec::new();
    for (method, path) in &endpoints {
        for (who, client) in [("no key", &nobody), ("an unknown key", &stranger)] {
            let body = (*method == reqwest::Method::POST).then(|| json!({"urls": ["https://example.com/"]}));
            let (status, _) = client.call(method.clone(), path, body.as_ref()).await?;
            if status != 401 {
                wrong.push(format!("{method} {path} with {who} → {status}"));
            }
        }
    }
    section.check(
        "every endpoint that needs a key, with none and with an unknown one",
        format!("{} calls", endpoints.len() * 2),
        if wrong.is_empty() { "every one answered 401".to_owned() } else { wrong.join("; ") },
        wrong.is_empty(),
    );
    Ok(())
}

/// Every item of the table, as text, searched for every key and secret handed out.
async fn keys_at_rest(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let table = rig.stack.value("TABLE_NAME")?;
    let mut items = 0;
    let mut key_items = 0;
    let mut found = Vec::new();
    let secrets = rig.secrets();
    let hashes: Vec<String> = secrets.iter().map(|(_, v)| domain::auth::hash_key(v)).collect();
    let mut hashed = 0;
    let mut start = None;
    loop {
        let page = rig
            .dynamo
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| format!("Scan: {e:?}"))?;
        for item in page.items() {
            items += 1;
            let text = format!("{item:?}");
            if text.contains("KEY#") {
                key_items += 1;
            }
            hashed += hashes.iter().filter(|h| text.contains(h.as_str())).count();
            for (what, value) in &secrets {
                if what.contains("API key") && text.contains(value.as_str()) {
                    found.push(what.clone());
                }
            }
        }
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    let keys = secrets.iter().filter(|(what, _)| what.contains("API key")).count();
    section.check(
        "the whole table scanned for the API keys of the run",
        format!("{items} items, {keys} keys"),
        format!(
            "{} raw key(s) found; {key_items} key items, {hashed} of them the SHA-256 of a key of the run",
            found.len()
        ),
        found.is_empty() && hashed >= keys,
    );
    Ok(())
}

/// Every log line of the run (the chaos stack's three functions, and the emulator's own log,
/// which also carries the functions' output) searched for every key and secret of the run.
pub async fn logs(rig: &Rig) -> Section {
    let mut section = Section::new(
        "Secrets in logs",
        "Run last: every line the chaos stack's functions logged to CloudWatch Logs since the suite started, \
         and the emulator's own log (`.local/ministack.log`, where it also copies each invocation's output), \
         searched for every API key and callback secret the run handed out or read.",
    );
    if let Err(err) = scan_logs(rig, &mut section).await {
        section.broke("read the logs", err);
    }
    section
}

async fn scan_logs(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let logs = Logs::new(rig.stack.endpoint());
    let stack = rig.stack_name().to_owned();
    let mut lines = Vec::new();
    for function in ["api", "analyzer", "tracker"] {
        lines.extend(logs.messages(|group| group_of(group, &stack, function), rig.started_ms).await?);
    }
    let emulator_log = testkit::stack::local_dir().join("ministack.log");
    let emulator = std::fs::read_to_string(&emulator_log).map_err(|e| format!("{}: {e}", emulator_log.display()))?;
    let secrets = rig.secrets();
    let mut found: Vec<String> = Vec::new();
    for (what, value) in &secrets {
        let in_functions = lines.iter().filter(|line| line.contains(value.as_str())).count();
        let in_emulator = emulator.lines().filter(|line| line.contains(value.as_str())).count();
        if in_functions + in_emulator > 0 {
            found.push(format!("{what}: {in_functions} function lines, {in_emulator} emulator lines"));
        }
    }
    section.check(
        "every log line of the run searched for every key and secret",
        format!(
            "{} function lines, {} emulator lines, {} secrets",
            lines.len(),
            emulator.lines().count(),
            secrets.len()
        ),
        if found.is_empty() { "none found".to_owned() } else { found.join("; ") },
        found.is_empty() && !lines.is_empty(),
    );
    Ok(())
}
