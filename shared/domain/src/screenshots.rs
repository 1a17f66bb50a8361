//! How a browser result's screenshot is named: `<job>/<id>.jpg`, under the job that measured
//! it, so the API can hand it to that job's tenant only (and cleaning a job up finds them).

/// Where screenshots are kept in the exports bucket: `screenshots/<name>`.
pub const PREFIX: &str = "screenshots/";

/// The name of screenshot `id` of `job` (`""`: a page measured outside any job).
pub fn name(job: &str, id: &str) -> String {
    if job.is_empty() { format!("{id}.jpg") } else { format!("{job}/{id}.jpg") }
}

/// Where screenshot `name` is kept in the exports bucket.
pub fn object_key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The key prefix under which every screenshot of `job` is kept (what cleaning the job up
/// deletes).
pub fn job_prefix(job: &str) -> String {
    format!("{PREFIX}{job}/")
}

/// Where the API serves screenshot `name` (to its job's tenant): what a result links.
pub fn api_path(name: &str) -> String {
    format!("{}/screenshots/{name}", crate::paths::BASE_PATH)
}

/// The job a screenshot's name says it belongs to, if the name is one this service gives
/// (`<job>/<id>.jpg`, the id of letters, digits and dashes): anything else is no screenshot.
pub fn job_of(name: &str) -> Option<&str> {
    let (job, file) = name.split_once('/')?;
    let id = file.strip_suffix(".jpg")?;
    let plain = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (plain(job, 100) && plain(id, 64)).then_some(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_says_its_job_and_nothing_else_passes_for_one() {
        let named = name("job-1", "0193a");
        assert_eq!(named, "job-1/0193a.jpg");
        assert_eq!(job_of(&named), Some("job-1"));
        assert_eq!(api_path(&named), format!("{}/screenshots/job-1/0193a.jpg", crate::paths::BASE_PATH));
        assert_eq!(name("", "7"), "7.jpg");
        assert!(object_key(&named).starts_with(&job_prefix("job-1")));
        assert!(
            !object_key(&name("job-10", "0193a")).starts_with(&job_prefix("job-1")),
            "not a prefix of another job's"
        );
        for bad in ["7.jpg", "job/../x.jpg", "job/x.png", "/x.jpg", "job/.jpg", "a/b/c.jpg", "job/x y.jpg"] {
            assert_eq!(job_of(bad), None, "{bad}");
        }
    }
}
