//! Writing JSON text without a JSON library (the guest stays small): strings and arrays of
//! strings. SQLite's JSON1 functions do the reading.

/// `value` as a JSON string literal, quoted and escaped.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if u32::from(ch) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(ch))),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// A JSON array of strings.
pub fn string_array<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = values.into_iter().map(string).collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[test]
    fn sqlite_reads_back_what_we_write() {
        let db = TestDb::new();
        for tricky in [
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\ttab",
            "\u{1}ctl",
            "ünïcødé ✓",
        ] {
            let literal = string(tricky).replace('\'', "''");
            assert_eq!(
                db.one(&format!("SELECT json_extract('{literal}', '$')")),
                tricky
            );
        }
        let array = string_array(["a", "b\"c"]).replace('\'', "''");
        assert_eq!(db.one(&format!("SELECT json_array_length('{array}')")), "2");
        assert_eq!(
            db.one(&format!("SELECT json_extract('{array}', '$[1]')")),
            "b\"c"
        );
        assert_eq!(string_array([]), "[]");
    }
}
