//! URL lists from files: a text file with one URL per line (blank lines and `#` comments
//! skipped), or a CSV whose `url` column (else its first column) holds them.

use std::path::Path;

use crate::error::CliError;

/// Reads `path` (`-` is standard input). A `.csv` name, or a first line with a comma, is CSV.
pub fn read_urls(path: &str) -> Result<Vec<String>, CliError> {
    let text = if path == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
        .map_err(|e| CliError::File { path: path.to_owned(), reason: e.to_string() })?;
    let is_csv = Path::new(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let urls = if is_csv { from_csv(&text) } else { from_lines(&text) };
    if urls.is_empty() {
        return Err(CliError::File { path: path.to_owned(), reason: "holds no URL".into() });
    }
    Ok(urls)
}

fn from_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).map(str::to_owned).collect()
}

fn from_csv(text: &str) -> Vec<String> {
    let mut rows = text.lines().filter(|line| !line.trim().is_empty()).map(fields);
    let Some(first) = rows.next() else { return Vec::new() };
    // A header names its columns; a first row that is already a URL is data.
    let (column, header) = match first.iter().position(|f| f.trim().eq_ignore_ascii_case("url")) {
        Some(column) => (column, true),
        None => (0, !first.first().is_some_and(|f| f.contains('.'))),
    };
    let first = (!header).then_some(first);
    first
        .into_iter()
        .chain(rows)
        .filter_map(|row| row.into_iter().nth(column))
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .collect()
}

/// One CSV record's fields (RFC 4180 quoting; a record does not span lines here).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_one_url_per_line() {
        assert_eq!(from_lines("a.com\n\n  # mine\n b.com/x \r\n"), ["a.com", "b.com/x"]);
    }

    #[test]
    fn csv_takes_the_url_column_or_the_first() {
        assert_eq!(
            from_csv("name,url\nhome,https://a.com\n\"shop, main\",\"https://b.com/?q=\"\"x\"\"\"\n"),
            ["https://a.com", "https://b.com/?q=\"x\""]
        );
        assert_eq!(from_csv("https://a.com,1\nhttps://b.com,2\n"), ["https://a.com", "https://b.com"]);
        assert_eq!(from_csv("address,notes\na.com,x\n"), ["a.com"], "a header without `url`: the first column");
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_that_names_it() {
        let err = read_urls("/nonexistent/urls.txt").unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/urls.txt: "), "{err}");
    }
}
