//! Progress bars for pretraining and fine-tuning, and the lines printed beside them.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps drawn with `template` (indicatif's syntax).
pub fn bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Prints a line above the bar; where the bar is not drawn (stderr is not a terminal: a log file,
/// CI, `nohup`), indicatif would drop the line, so it goes to stderr directly.
pub fn report(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
