//! `--report FILE.html`: one self-contained page drawn from a [`RunReport`].
//!
//! The data is made in the simulator (`meshlog_sim::report`); drawing it lives here, beside
//! the verbs that write files (`run`, `replay`), so the simulator needs no JSON and
//! no page. The page embeds the report as JSON and a script that draws it with SVG: no network,
//! no library, it opens from disk.

use std::path::Path;

use anyhow::Context;
use meshlog_sim::RunReport;

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// The whole page, headed `title`.
pub fn render(report: &RunReport, title: &str) -> anyhow::Result<String> {
    // `<` only ever appears inside JSON strings, where `\u003c` means the same: no text from
    // the run can close the script element.
    let data = serde_json::to_string(report)?.replace('<', "\\u003c");
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body><h1>{}</h1>\
         <noscript>This report is drawn by its own inline script; enable JavaScript.</noscript>\
         <div id=\"report\"></div>\n<script type=\"application/json\" id=\"report-data\">{data}</script>\n\
         <script>{SCRIPT}</script>\n</body></html>\n",
        escape(title),
        escape(title)
    ))
}

/// Writes the page, headed `title`, to `path`.
pub fn write(report: &RunReport, title: &str, path: &Path) -> anyhow::Result<()> {
    let page = render(report, title)?;
    std::fs::write(path, page)
        .with_context(|| format!("cannot write the report {}", path.display()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_text_cannot_close_the_script() {
        let report = RunReport {
            scenario: "x</script><script>alert(1)</script>".to_owned(),
            failures: vec!["<img src=x onerror=alert(1)>".to_owned()],
            ..RunReport::default()
        };
        let page = render(&report, "t</title><script>").unwrap();
        assert_eq!(
            page.matches("</script>").count(),
            2,
            "only the page's own two"
        );
        assert!(!page.contains("<img"));
        let json = page
            .split("id=\"report-data\">")
            .nth(1)
            .and_then(|rest| rest.split("</script>").next())
            .unwrap();
        let back: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back["failures"][0], "<img src=x onerror=alert(1)>");
    }
}
