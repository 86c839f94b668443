//! Validation metrics of the fine-tuning tasks: entity-level F1 over BIO tags (as `conlleval` and
//! seqeval's default mode count chunks) and SQuAD's exact match and token F1 (the official
//! evaluation script's normalization).

use std::collections::HashMap;

/// A labelled span of words: (type, first word, last word).
type Chunk = (String, usize, usize);

/// Whether every tag is `O` or `B-`/`I-` followed by a type, so entity F1 is meaningful.
pub fn is_bio(tags: &[String]) -> bool {
    tags.iter()
        .all(|t| t == "O" || (t.len() > 2 && (t.starts_with("B-") || t.starts_with("I-"))))
}

/// The chunks of one tag sequence, conlleval-style: a chunk starts at `B-X`, or at `I-X` after
/// anything but `B-X`/`I-X` (a lenient start, as conlleval and seqeval's default mode count
/// it), and runs over the `I-X` that follow.
fn chunks(tags: &[&str]) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize)> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (prefix, kind) = match tag.split_once('-') {
            Some((p, k)) if *tag != "O" => (p, k),
            _ => ("O", ""),
        };
        let continues = prefix == "I" && open.as_ref().is_some_and(|(k, _)| k == kind);
        if !continues {
            if let Some((k, start)) = open.take() {
                out.push((k, start, i - 1));
            }
            if prefix != "O" {
                open = Some((kind.to_string(), i));
            }
        }
    }
    if let Some((k, start)) = open {
        out.push((k, start, tags.len() - 1));
    }
    out
}

/// Micro-averaged entity precision, recall and F1 of predicted tag sequences against gold ones
/// (0 where undefined).
pub fn entity_f1<S: AsRef<str>>(gold: &[Vec<S>], predicted: &[Vec<S>]) -> (f64, f64, f64) {
    let (mut correct, mut n_gold, mut n_pred) = (0usize, 0usize, 0usize);
    for (g, p) in gold.iter().zip(predicted) {
        let g: Vec<&str> = g.iter().map(AsRef::as_ref).collect();
        let p: Vec<&str> = p.iter().map(AsRef::as_ref).collect();
        let (gc, pc) = (chunks(&g), chunks(&p));
        n_gold += gc.len();
        n_pred += pc.len();
        correct += pc.iter().filter(|c| gc.contains(c)).count();
    }
    let precision = if n_pred == 0 {
        0.0
    } else {
        correct as f64 / n_pred as f64
    };
    let recall = if n_gold == 0 {
        0.0
    } else {
        correct as f64 / n_gold as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

/// SQuAD's answer normalization: lower case, punctuation removed, the articles a/an/the
/// removed, whitespace collapsed.
pub fn normalize_answer(text: &str) -> String {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    lowered
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// SQuAD exact match (1 or 0) against the best of the gold answers.
pub fn exact_match(predicted: &str, gold: &[String]) -> f64 {
    let p = normalize_answer(predicted);
    if gold.iter().any(|g| normalize_answer(g) == p) {
        1.0
    } else {
        0.0
    }
}

/// SQuAD token F1 against the best of the gold answers.
pub fn answer_f1(predicted: &str, gold: &[String]) -> f64 {
    let p = normalize_answer(predicted);
    let p: Vec<&str> = p.split_whitespace().collect();
    gold.iter()
        .map(|g| {
            let g = normalize_answer(g);
            let g: Vec<&str> = g.split_whitespace().collect();
            if p.is_empty() || g.is_empty() {
                return if p == g { 1.0 } else { 0.0 };
            }
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for w in &g {
                *counts.entry(w).or_default() += 1;
            }
            let mut common = 0usize;
            for w in &p {
                if let Some(c) = counts.get_mut(w).filter(|c| **c > 0) {
                    *c -= 1;
                    common += 1;
                }
            }
            if common == 0 {
                return 0.0;
            }
            let precision = common as f64 / p.len() as f64;
            let recall = common as f64 / g.len() as f64;
            2.0 * precision * recall / (precision + recall)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn chunks_follow_conlleval() {
        let c = chunks(&tags("B-PER I-PER O B-LOC B-LOC I-ORG I-ORG O I-PER"));
        let expected: Vec<Chunk> = vec![
            ("PER".into(), 0, 1),
            ("LOC".into(), 3, 3),
            ("LOC".into(), 4, 4),
            ("ORG".into(), 5, 6),
            ("PER".into(), 8, 8),
        ];
        assert_eq!(c, expected);
    }

    #[test]
    fn entity_f1_by_hand() {
        // Gold: PER(0-1), LOC(3). Predicted: PER(0-1) right, LOC at 4 wrong, ORG(5) spurious.
        let gold = vec![tags("B-PER I-PER O B-LOC O O")];
        let predicted = vec![tags("B-PER I-PER O O B-LOC B-ORG")];
        let (p, r, f) = entity_f1(&gold, &predicted);
        assert!((p - 1.0 / 3.0).abs() < 1e-12);
        assert!((r - 0.5).abs() < 1e-12);
        assert!((f - 0.4).abs() < 1e-12, "{f}");
        // A truncated span counts as wrong.
        let (_, _, f) = entity_f1(&[tags("B-PER I-PER")], &[tags("B-PER O")]);
        assert_eq!(f, 0.0);
        assert!(is_bio(&["O".into(), "B-X".into(), "I-X".into()]));
        assert!(!is_bio(&["NOUN".into(), "O".into()]));
    }

    #[test]
    fn squad_metrics_by_hand() {
        let gold = vec![
            "The Eiffel Tower".to_string(),
            "Eiffel tower, Paris".to_string(),
        ];
        assert_eq!(exact_match("eiffel tower!", &gold), 1.0);
        assert_eq!(exact_match("tower", &gold), 0.0);
        // "tower" vs "eiffel tower": P 1, R 1/2 → 2/3; vs "eiffel tower paris": R 1/3 → 1/2.
        assert!((answer_f1("tower", &gold) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(answer_f1("london", &gold), 0.0);
        assert_eq!(normalize_answer("  An  apple, the pie. "), "apple pie");
    }
}
