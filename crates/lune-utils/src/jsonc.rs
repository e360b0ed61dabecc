//! JSON with comments and trailing commas (`.luaurc`, `serde.decode("jsonc")`)
//! turned into plain JSON, keeping line breaks so parse errors still point at
//! the right line.

/// Removes `//` and `/* */` comments and trailing commas outside strings.
#[must_use]
pub fn strip(text: &str) -> String {
    remove_trailing_commas(&remove_comments(text))
}

/// Drops comments outside string literals, keeping their line breaks.
fn remove_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => {
                    if let Some(escaped) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut previous = ' ';
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        out.push('\n');
                    }
                    if previous == '*' && skipped == '/' {
                        break;
                    }
                    previous = skipped;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn remove_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(&escaped) = chars.get(i + 1) {
                    out.push(escaped);
                    i += 1;
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}' | ']')) {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn comments_and_trailing_commas() {
        let text = "{ // c\n \"aliases\": { \"a\": \"./x\", /* b */ },\n \"list\": [1, 2,],\n}";
        assert_eq!(
            strip(text),
            "{ \n \"aliases\": { \"a\": \"./x\"  },\n \"list\": [1, 2]\n}"
        );
    }

    #[test]
    fn strings_keep_their_contents() {
        let text = r#"{"url": "http://x/y // no", "q": "a,]", "e": "\"/*"}"#;
        assert_eq!(strip(text), text);
    }

    #[test]
    fn line_breaks_survive_block_comments() {
        assert_eq!(strip("/* a\nb */1"), "\n1");
    }
}
