//! Reading a `--report` page (`meshlog run`, `meshlog replay`): its embedded data, and the DOM
//! headless Chromium draws from it.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The report the page embeds (the JSON its script draws).
pub fn embedded_report(html: &str) -> Result<Value> {
    let data = html
        .split("id=\"report-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .context("no embedded report data")?;
    Ok(serde_json::from_str(data)?)
}

/// The page as headless Chromium draws it from disk, or `None` (said on stderr) if there is
/// no Chromium here.
pub fn drawn_dom(page: &Path) -> Result<Option<String>> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED: {CHROMIUM} is absent; the page was not opened in a browser");
        return Ok(None);
    }
    let out = Command::new(CHROMIUM)
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}
