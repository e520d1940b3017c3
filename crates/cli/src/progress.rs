//! Progress bars on stderr, hidden with --quiet, --json or when stderr is not a terminal.

use crate::Global;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(g: &Global, len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if g.quiet || g.json {
        b.set_draw_target(ProgressDrawTarget::hidden());
    }
    b.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg} (eta {eta})",
        )
        .expect("valid template"),
    );
    b.set_prefix(what.to_string());
    b
}
