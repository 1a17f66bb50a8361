//! RELIABILITY.md: one section per scenario, a row per check (what was tried, how often, what
//! happened, whether it held), and a summary of every row on top.

use testkit::markdown::Table;

pub struct Check {
    pub tried: String,
    pub times: String,
    pub happened: String,
    pub held: bool,
}

pub struct Section {
    pub title: &'static str,
    pub method: String,
    pub checks: Vec<Check>,
    /// Measurements and observations beyond pass or fail.
    pub notes: Vec<String>,
}

impl Section {
    pub fn new(title: &'static str, method: impl Into<String>) -> Section {
        Section { title, method: method.into(), checks: Vec::new(), notes: Vec::new() }
    }

    pub fn check(
        &mut self,
        tried: impl Into<String>,
        times: impl Into<String>,
        happened: impl Into<String>,
        held: bool,
    ) {
        let check = Check { tried: tried.into(), times: times.into(), happened: happened.into(), held };
        eprintln!(
            "[{}] {}: {} — {}",
            if check.held { "held" } else { "BROKEN" },
            self.title,
            check.tried,
            check.happened
        );
        self.checks.push(check);
    }

    /// A step that could not be carried out: the scenario failed, and says where.
    pub fn broke(&mut self, tried: impl Into<String>, error: impl Into<String>) {
        self.check(tried, "1", format!("could not be carried out: {}", error.into()), false);
    }

    /// The section, with the step that could not be carried out when `result` says so.
    pub fn settle(mut self, step: &str, result: Result<(), String>) -> Section {
        if let Err(err) = result {
            self.broke(step, err);
        }
        self
    }

    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("[note] {}: {note}", self.title);
        self.notes.push(note);
    }

    /// True when every check held (and there was at least one).
    pub fn held(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.held)
    }

    pub fn markdown(&self) -> String {
        let mut table = Table::new(&["tried", "how often", "what happened", ""]);
        for check in &self.checks {
            table.row(vec![
                check.tried.clone(),
                check.times.clone(),
                check.happened.clone(),
                verdict(check.held).into(),
            ]);
        }
        let mut out = format!("## {}\n\n{}\n\n{}", self.title, self.method, table.render());
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                out.push_str(&format!("- {note}\n"));
            }
        }
        out
    }
}

fn verdict(held: bool) -> &'static str {
    if held { "held" } else { "**broken**" }
}

/// The whole document: a summary row per check, then every section.
pub fn document(preamble: &str, sections: &[Section]) -> String {
    let mut summary = Table::new(&["scenario", "tried", "how often", ""]);
    for section in sections {
        for check in &section.checks {
            summary.row(vec![
                section.title.into(),
                check.tried.clone(),
                check.times.clone(),
                verdict(check.held).into(),
            ]);
        }
    }
    let held = sections.iter().flat_map(|s| &s.checks).filter(|c| c.held).count();
    let total = sections.iter().map(|s| s.checks.len()).sum::<usize>();
    let mut out = format!("{preamble}\n**{held} of {total} checks held.**\n\n{}", summary.render());
    for section in sections {
        out.push('\n');
        out.push_str(&section.markdown());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_holds_only_when_every_check_did() {
        let mut section = Section::new("Duplicates", "method");
        assert!(!section.held(), "no check is no proof");
        section.check("resend", "100", "counts unchanged", true);
        assert!(section.held());
        section.broke("read the queue", "timed out");
        assert!(!section.held());
        let doc = document("# R", &[section]);
        assert!(doc.contains("**1 of 2 checks held.**"), "{doc}");
        assert!(doc.contains("| Duplicates | read the queue | 1 | **broken** |"), "{doc}");
    }
}
