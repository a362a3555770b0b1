//! Plain-text tables for the terminal: a header, aligned columns, numbers on the right.

/// A table built row by row and rendered with [`Table::render`].
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles, every column left-aligned.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|title| (*title).to_owned()).collect(),
            right_aligned: vec![false; header.len()],
            rows: Vec::new(),
        }
    }

    /// Right-align the columns at these positions (numbers).
    pub fn right(mut self, columns: &[usize]) -> Self {
        for &column in columns {
            self.right_aligned[column] = true;
        }
        self
    }

    /// Add a row; missing cells are empty, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines: the header, a rule, then the rows; columns two spaces apart.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|column| {
                std::iter::once(&self.header[column])
                    .chain(self.rows.iter().map(|row| &row[column]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = self.line(&self.header, &widths);
        let rule: Vec<String> = widths.iter().map(|&width| "─".repeat(width)).collect();
        out.push_str(&self.line(&rule, &widths));
        for row in &self.rows {
            out.push_str(&self.line(row, &widths));
        }
        out
    }

    fn line(&self, cells: &[String], widths: &[usize]) -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(&self.right_aligned)
            .map(|((cell, &width), &right)| {
                if right {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    }
}

/// `label  value` lines with the values aligned after the longest label.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_numbers_right_aligned() {
        let mut table = Table::new(&["lane", "count"]).right(&[1]);
        table.row(vec!["email".into(), "7".into()]);
        table.row(vec!["reports".into(), "1234".into()]);
        assert_eq!(
            table.render(),
            "lane     count\n───────  ─────\nemail        7\nreports   1234\n"
        );
    }

    #[test]
    fn short_rows_are_padded() {
        let mut table = Table::new(&["a", "b"]);
        table.row(vec!["x".into()]);
        assert!(!table.is_empty());
        assert_eq!(table.render(), "a  b\n─  ─\nx\n");
    }

    #[test]
    fn fields_align_their_values() {
        assert_eq!(
            fields(&[("lane", "email".into()), ("state", "completed".into())]),
            "lane   email\nstate  completed\n"
        );
    }
}
