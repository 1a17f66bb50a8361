//! Markdown tables for the reports the bench and the chaos suite write.

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        // A cell's own `|` or line break would end the row early.
        let cell = |text: &String| text.replace('|', "\\|").replace('\n', " ");
        let line = |cells: &[String]| format!("| {} |\n", cells.iter().map(cell).collect::<Vec<_>>().join(" | "));
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_owned(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn renders_a_header_a_rule_and_escaped_rows() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["1|2".into(), "x\ny".into()]);
        assert_eq!(table.render(), "| a | b |\n| --- | --- |\n| 1\\|2 | x y |\n");
    }
}
