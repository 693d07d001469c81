//! Names a mistyped word may have meant: the "did you mean …?" of
//! commands, options and client endpoint names.

/// The `names` a mistyped `word` may have meant, closest first (at most
/// three): one edit away for short words, two for longer ones, a swap of
/// two letters counting as one and case not at all. `word` itself is not
/// among them.
pub fn near<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let lower = word.to_lowercase();
    let most = if lower.chars().count() <= 4 { 1 } else { 2 };
    let mut close: Vec<(usize, &str)> = names
        .into_iter()
        .filter(|n| *n != word)
        .map(|n| (strsim::damerau_levenshtein(&lower, &n.to_lowercase()), n))
        .filter(|&(d, _)| d <= most)
        .collect();
    close.sort();
    close.dedup_by_key(|(_, n)| *n);
    close.into_iter().take(3).map(|(_, n)| n).collect()
}

/// `, did you mean `NAME`?` for the closest of `names` to `word`, or
/// nothing.
pub fn hint<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    near(word, names)
        .first()
        .map_or_else(String::new, |close| format!(", did you mean `{close}`?"))
}

#[cfg(test)]
mod tests {
    use super::near;

    const COMMANDS: &[&str] = &["read", "write", "observe", "execute", "delete", "discover"];

    #[test]
    fn a_swap_or_one_letter_off_finds_the_name() {
        assert_eq!(near("raed", COMMANDS.iter().copied()), ["read"]);
        assert_eq!(near("rea", COMMANDS.iter().copied()), ["read"]);
        assert_eq!(near("obsreve", COMMANDS.iter().copied()), ["observe"]);
        assert_eq!(near("exectue", COMMANDS.iter().copied()), ["execute"]);
    }

    #[test]
    fn short_words_allow_one_edit_longer_ones_two() {
        assert!(near("rxyd", COMMANDS.iter().copied()).is_empty());
        assert_eq!(near("dlete", COMMANDS.iter().copied()), ["delete"]);
        assert_eq!(near("dscovr", COMMANDS.iter().copied()), ["discover"]);
        assert!(near("qqqqqq", COMMANDS.iter().copied()).is_empty());
    }

    #[test]
    fn case_does_not_count_and_the_word_itself_is_not_suggested() {
        assert_eq!(near("READ", COMMANDS.iter().copied()), ["read"]);
        assert!(near("read", ["read"]).is_empty());
        assert_eq!(near("Alpha", ["alpha", "Alpha"]), ["alpha"]);
    }

    #[test]
    fn closest_first_and_at_most_three() {
        let names = ["ep-1", "ep-2", "ep-3", "ep-4", "ep-11"];
        let got = near("ep-1x", names.iter().copied());
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], "ep-1");
    }
}
