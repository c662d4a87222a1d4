//! "Did you mean": the expected key closest to a misspelt one in serde's unknown-field message.

/// serde's `unknown field `X`, expected one of `a`, `b`` with `; did you mean `b`?` when one
/// expected key is a likely misspelling of X (`-` for `_`, a swapped, missing, extra or wrong
/// letter or two).
pub(super) fn with_suggestion(message: &str) -> String {
    let suggestion = (|| {
        let rest = message.strip_prefix("unknown field `")?;
        let (given, rest) = rest.split_once('`')?;
        let expected = rest.split_once("expected one of ")?.1;
        let wanted = given.replace('-', "_").to_ascii_lowercase();
        expected
            .split(", ")
            .map(|k| k.trim_matches('`'))
            .map(|k| (edit_distance(&wanted, k), k))
            .filter(|(d, k)| *d <= 2 && *d < k.len())
            .min()
            .map(|(_, k)| k.to_string())
    })();
    match suggestion {
        Some(k) => format!("{message}; did you mean `{k}`?"),
        None => message.to_string(),
    }
}

/// Levenshtein distance, with a swap of two neighbouring letters counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    if let Some(first) = d.first_mut() {
        for (j, v) in first.iter_mut().enumerate() {
            *v = j;
        }
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}
