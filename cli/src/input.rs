//! URL lists from files: a text file with one URL per line (blank lines and `#` comments
//! skipped), or a CSV whose `url` column (else its first column) holds them. A CSV with a
//! header gives each URL the row's other columns too: `ref` as its reference, the rest as its
//! labels (by column name), so the client's identifiers come back in every result.

use std::path::Path;

use serde_json::{Map, Value, json};

use domain::labels::MAX_LABELS;

use crate::error::CliError;

/// Reads `path` (`-` is standard input) into `urls` items: strings, or objects with the
/// CSV's other columns. A `.csv` name is CSV.
pub fn read_urls(path: &str) -> Result<Vec<Value>, CliError> {
    let file_error = |reason: String| CliError::File { path: path.to_owned(), reason };
    let text = if path == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(path) }
        .map_err(|e| file_error(e.to_string()))?;
    let is_csv = Path::new(path).extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let urls = if is_csv { from_csv(&text).map_err(file_error)? } else { from_lines(&text) };
    if urls.is_empty() {
        return Err(file_error("holds no URL".into()));
    }
    Ok(urls)
}

fn from_lines(text: &str) -> Vec<Value> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).map(Value::from).collect()
}

fn from_csv(text: &str) -> Result<Vec<Value>, String> {
    let mut rows = text.lines().filter(|line| !line.trim().is_empty()).map(fields);
    let Some(first) = rows.next() else { return Ok(Vec::new()) };
    // A header names its columns; a first row that is already a URL is data.
    let (column, header, first_data) = match first.iter().position(|f| f.trim().eq_ignore_ascii_case("url")) {
        Some(column) => (column, first, None),
        None if first.first().is_some_and(|f| f.contains('.')) => (0, Vec::new(), Some(first)),
        None => (0, first, None),
    };
    let names: Vec<String> = header.iter().map(|name| name.trim().to_owned()).collect();
    let labels = names.iter().enumerate().filter(|&(i, name)| i != column && !name.eq_ignore_ascii_case("ref")).count();
    if labels > MAX_LABELS {
        return Err(format!(
            "has {labels} columns besides url and ref; a URL takes at most {MAX_LABELS} labels (remove some columns)"
        ));
    }
    Ok(first_data
        .into_iter()
        .chain(rows)
        .filter_map(|row| {
            let url = row.get(column)?.trim().to_owned();
            if url.is_empty() {
                return None;
            }
            if names.is_empty() {
                return Some(Value::from(url));
            }
            let mut item = Map::new();
            let mut labels = Map::new();
            for (i, (name, value)) in names.iter().zip(&row).enumerate() {
                let value = value.trim();
                if i == column || value.is_empty() || name.is_empty() {
                    continue;
                }
                if name.eq_ignore_ascii_case("ref") {
                    item.insert("ref".into(), json!(value));
                } else {
                    labels.insert(name.clone(), json!(value));
                }
            }
            if item.is_empty() && labels.is_empty() {
                return Some(Value::from(url));
            }
            item.insert("url".into(), json!(url));
            if !labels.is_empty() {
                item.insert("labels".into(), Value::Object(labels));
            }
            Some(Value::Object(item))
        })
        .collect())
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
    use serde_json::json;

    use super::*;

    #[test]
    fn text_files_are_one_url_per_line() {
        assert_eq!(from_lines("a.com\n\n  # mine\n b.com/x \r\n"), ["a.com", "b.com/x"]);
    }

    #[test]
    fn csv_takes_the_url_column_or_the_first_and_the_others_as_labels() {
        assert_eq!(
            from_csv("name,url\nhome,https://a.com\n\"shop, main\",\"https://b.com/?q=\"\"x\"\"\"\n").unwrap(),
            [
                json!({"url": "https://a.com", "labels": {"name": "home"}}),
                json!({"url": "https://b.com/?q=\"x\"", "labels": {"name": "shop, main"}}),
            ]
        );
        assert_eq!(
            from_csv("https://a.com,1\nhttps://b.com,2\n").unwrap(),
            [json!("https://a.com"), json!("https://b.com")],
            "no header: no labels"
        );
        assert_eq!(
            from_csv("address,notes\na.com,x\n").unwrap(),
            [json!({"url": "a.com", "labels": {"notes": "x"}})],
            "a header without `url`: the first column"
        );
        assert_eq!(
            from_csv("Ref,URL,city,segment\nB-17,a.com,Lyon,\n,b.com,,\n").unwrap(),
            [json!({"url": "a.com", "ref": "B-17", "labels": {"city": "Lyon"}}), json!("b.com")],
            "a ref column is the reference; empty cells are no label"
        );
        let wide = format!(
            "url,{}\na.com{}\n",
            (0..11).map(|n| format!("c{n}")).collect::<Vec<_>>().join(","),
            ",x".repeat(11)
        );
        assert!(from_csv(&wide).unwrap_err().contains("11 columns besides url and ref; a URL takes at most 10 labels"));
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_that_names_it() {
        let err = read_urls("/nonexistent/urls.txt").unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/urls.txt: "), "{err}");
    }
}
