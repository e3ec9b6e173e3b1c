//! `meshlog sweep --json/--junit` and `meshlog sweep merge`, through the real binary: shards
//! merged equal the unsharded sweep seed by seed, and failures and gaps fail the merge.

mod backend_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};
use backend_support::meshlog_bin;
use serde_json::Value;

const SHARDS: u32 = 3;

const NEVER_HEALS: &str = r#"
name = "never-heals"
seed = 1
duration = "1m"
devices = ["alice", "bob"]

[workload]
messages_per_hour = 600

[[fault]]
at = "1s"
partition = [["alice"], ["bob"]]
permanent = true
"#;

fn scenarios() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    vec![root.join("loss-30.toml"), root.join("crash-restart.toml")]
}

fn meshlog(args: &[&str]) -> Result<Output> {
    let out = Command::new(meshlog_bin()).args(args).output()?;
    Ok(out)
}

fn sweep(dir: &Path, name: &str, files: &[PathBuf], extra: &[&str]) -> Result<Output> {
    let json = dir.join(name);
    let mut args: Vec<String> = vec!["sweep".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["--seeds", "0..12", "--jobs", "2", "--json"].map(String::from));
    args.push(json.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    meshlog(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The results of a JSON Lines file, without what differs between any two runs (wall time)
/// or between a shard and the whole (its shard), sorted by file and seed.
fn runs(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut runs: Vec<Value> = text
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<_, _>>()?;
    for run in &mut runs {
        let object = run.as_object_mut().context("an object per line")?;
        object.remove("wall_ms");
        object.remove("shard");
    }
    runs.sort_by_key(|r| (r["file"].to_string(), r["seed"].as_u64()));
    Ok(runs)
}

#[test]
fn merged_shards_equal_the_unsharded_sweep_seed_by_seed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let files = scenarios();
    let junit = dir.path().join("whole.xml");
    let whole = sweep(
        dir.path(),
        "whole.jsonl",
        &files,
        &["--junit", junit.to_str().unwrap()],
    )?;
    ensure!(whole.status.success(), "{whole:?}");
    let mut shard_files = Vec::new();
    for i in 1..=SHARDS {
        let name = format!("shard-{i}.jsonl");
        let shard = format!("{i}/{SHARDS}");
        let out = sweep(dir.path(), &name, &files, &["--shard", &shard])?;
        ensure!(out.status.success(), "{out:?}");
        shard_files.push(dir.path().join(name).display().to_string());
    }
    let merged_path = dir.path().join("merged.jsonl");
    let mut args = vec!["sweep", "merge"];
    args.extend(shard_files.iter().map(String::as_str));
    args.extend(["--json", merged_path.to_str().unwrap()]);
    let merged = meshlog(&args)?;
    let stdout = String::from_utf8_lossy(&merged.stdout);
    ensure!(merged.status.success(), "{merged:?}");
    ensure!(
        stdout.contains("24 runs, 24 passed, 0 failed, 0 missing"),
        "{stdout}"
    );

    let whole_runs = runs(&dir.path().join("whole.jsonl"))?;
    let merged_runs = runs(&merged_path)?;
    assert_eq!(whole_runs.len(), 24);
    assert_eq!(merged_runs, whole_runs, "seed by seed, digests included");
    let xml = std::fs::read_to_string(&junit)?;
    assert_eq!(xml.matches("<testcase ").count(), 24, "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");

    // Two of three shards: the merge names the seeds nobody ran and fails.
    let partial = meshlog(&["sweep", "merge", &shard_files[0], &shard_files[2]])?;
    let stdout = String::from_utf8_lossy(&partial.stdout);
    ensure!(!partial.status.success(), "{stdout}");
    ensure!(stdout.contains("MISSING"), "{stdout}");
    ensure!(stdout.contains("1, 4, 7, 10"), "{stdout}");
    Ok(())
}

#[test]
fn a_failing_seed_is_reported_with_its_repro_in_json_junit_and_merge() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A partition that never heals: every seed fails to converge.
    let strict = dir.path().join("never-heals.toml");
    std::fs::write(&strict, NEVER_HEALS)?;
    let junit = dir.path().join("r.xml");
    let out = sweep(
        dir.path(),
        "r.jsonl",
        std::slice::from_ref(&strict),
        &["--junit", junit.to_str().unwrap()],
    )?;
    ensure!(!out.status.success(), "{out:?}");
    let lines = runs(&dir.path().join("r.jsonl"))?;
    assert_eq!(lines.len(), 12);
    assert!(lines
        .iter()
        .all(|l| l["passed"] == false && l["failure"].is_string()));
    let xml = std::fs::read_to_string(&junit)?;
    assert_eq!(xml.matches("<failure ").count(), 12, "{xml}");
    let repro = format!("meshlog run {} --seed 3", strict.display());
    assert!(xml.contains(&repro), "{xml}");
    let merged = meshlog(&[
        "sweep",
        "merge",
        dir.path().join("r.jsonl").to_str().unwrap(),
    ])?;
    let stdout = String::from_utf8_lossy(&merged.stdout);
    ensure!(!merged.status.success(), "{stdout}");
    ensure!(stdout.contains(&format!("reproduce: {repro}")), "{stdout}");
    Ok(())
}
