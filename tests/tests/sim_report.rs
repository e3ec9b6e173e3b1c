//! `meshlog run --report`: the page through the real binary. The same seed gives the same
//! digest with or without it, a failed run's page names the missing ids, and headless
//! Chromium draws the page from disk (the elements its script makes are in the DOM).

mod backend_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};
use backend_support::meshlog_bin;
use backend_support::report::{drawn_dom, embedded_report};

/// Carol is cut off for good: she ends lacking what the others wrote after 10 s.
const CUT_OFF: &str = r#"
name = "cut-off"
seed = 3
duration = "1m"
devices = ["alice", "bob", "carol"]

[workload]
messages_per_hour = 600

[[fault]]
at = "10s"
partition = [["carol"], ["alice", "bob"]]
permanent = true

[expect]
converged_within = "20s"
"#;

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

fn run(args: &[&str]) -> Result<Output> {
    Ok(Command::new(meshlog_bin()).arg("run").args(args).output()?)
}

fn digest_of(out: &Output) -> Result<String> {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("trace "))
        .with_context(|| format!("no trace line in {text}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().to_owned())
}

fn with_report(scenario: &Path, seed: &str, page: &Path, extra: &[&str]) -> Result<Output> {
    let scenario = scenario.display().to_string();
    let page = page.display().to_string();
    let mut args = vec![scenario.as_str(), "--seed", seed, "--report", page.as_str()];
    args.extend(extra);
    run(&args)
}

#[test]
fn the_same_seed_gives_the_same_digest_with_and_without_a_report() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let page = dir.path().join("run.html");
    for name in ["crash-restart", "replay-storm"] {
        let scenario = shipped(name);
        let plain = run(&[&scenario.display().to_string(), "--seed", "11"])?;
        let reported = with_report(&scenario, "11", &page, &["--report-window", "10s..40s"])?;
        ensure!(
            plain.status.success() && reported.status.success(),
            "{name}"
        );
        assert_eq!(digest_of(&plain)?, digest_of(&reported)?, "{name}");
        let html = std::fs::read_to_string(&page)?;
        assert!(
            html.contains(&digest_of(&plain)?),
            "the page shows the digest"
        );
        // Self-contained: nothing fetched from anywhere (the one URL is SVG's namespace name).
        let without_namespace = html.replace("\"http://www.w3.org/2000/svg\"", "");
        for outside in [
            "http://", "https://", "src=", "href=", "url(", "@import", "fetch(",
        ] {
            assert!(
                !without_namespace.contains(outside),
                "{name}: {outside} in the page"
            );
        }
        assert!(html.len() < 400_000, "{name}: {} bytes", html.len());
    }
    Ok(())
}

#[test]
fn a_failed_runs_page_names_the_missing_ids() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = dir.path().join("cut-off.toml");
    std::fs::write(&scenario, CUT_OFF)?;
    let page = dir.path().join("cut-off.html");
    let trace = dir.path().join("cut-off.trace");
    let out = with_report(
        &scenario,
        "3",
        &page,
        &["--trace", &trace.display().to_string()],
    )?;
    ensure!(!out.status.success(), "the run must fail");
    let html = std::fs::read_to_string(&page)?;
    let report = embedded_report(&html)?;
    assert_eq!(report["passed"], false);
    let carol = report["missing"]
        .as_array()
        .context("missing")?
        .iter()
        .find(|m| m["device"] == "carol")
        .context("carol lacks events")?;
    // What carol lacks, from the trace: every id appended elsewhere and never stored by her.
    let trace = std::fs::read_to_string(&trace)?;
    let mut appended = Vec::new();
    let mut carol_has = Vec::new();
    for line in trace.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match (words.get(1), words.get(2), words.get(3)) {
            (Some(&"append"), Some(&who), Some(id)) => {
                appended.push(id.to_string());
                if who == "carol" {
                    carol_has.push(id.to_string());
                }
            }
            (Some(&"insert"), Some(&"carol"), Some(id)) => carol_has.push(id.to_string()),
            _ => {}
        }
    }
    let lacks: Vec<&String> = appended
        .iter()
        .filter(|id| !carol_has.contains(id))
        .collect();
    assert!(!lacks.is_empty());
    assert_eq!(carol["count"].as_u64(), Some(lacks.len() as u64));
    for listed in carol["ids"].as_array().context("ids")? {
        let id = listed["id"].as_str().context("id")?;
        assert!(lacks.iter().any(|l| *l == id), "{id} is one carol lacks");
        assert!(html.contains(id));
        let held_by = listed["held_by"].as_array().context("held_by")?;
        assert!(held_by.iter().all(|d| d != "carol") && !held_by.is_empty());
    }
    Ok(())
}

#[test]
fn chromium_draws_the_page_from_disk() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let scenario = dir.path().join("cut-off.toml");
    std::fs::write(&scenario, CUT_OFF)?;
    let page = dir.path().join("cut-off.html");
    with_report(&scenario, "3", &page, &[])?;
    let Some(dom) = drawn_dom(&page)? else {
        return Ok(());
    };
    // Made by the page's script, not in the file itself.
    for made in [
        "data-rendered=\"yes\"",
        "class=\"lane\"",
        "class=\"fault-mark\"",
        "class=\"link-row\"",
        "class=\"missing-id\"",
        "class=\"arrow sent\"",
        "class=\"arrow lost\"",
        "class=\"lifeline\"",
    ] {
        assert!(dom.contains(made), "{made} not in the drawn page");
    }
    let html = std::fs::read_to_string(&page)?;
    assert!(
        !html.contains("class=\"lane\""),
        "lanes are drawn, not written"
    );
    Ok(())
}
