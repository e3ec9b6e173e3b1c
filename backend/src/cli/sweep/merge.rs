//! `meshlog sweep merge FILES...`: the JSON Lines of a sweep's shards (from many machines, CI
//! jobs or pods) as one sweep: a summary, every failure with its repro command, the seeds no
//! shard ran, and optionally one merged JSON Lines file and a JUnit report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use super::results::{self, SeedResult};
use super::seeds::{self, SeedRange};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// JSON Lines files written by `meshlog sweep --json`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write every result, sorted by scenario file and seed, as one JSON Lines file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

/// The shards' results as one sweep, sorted by scenario file and seed. A seed found in two
/// files must be the same run (same verdict and digest); otherwise the shards disagree, which
/// is a determinism bug worth stopping for.
pub fn merge(parts: Vec<Vec<SeedResult>>) -> anyhow::Result<Vec<SeedResult>> {
    let mut by_key: BTreeMap<(String, u64), SeedResult> = BTreeMap::new();
    for result in parts.into_iter().flatten() {
        let key = (result.file.clone(), result.seed);
        match by_key.get(&key) {
            Some(seen) if !seen.same_run(&result) => bail!(
                "{} seed {} differs between shards: {:?} vs {:?} (digest {:?} vs {:?})",
                result.file,
                result.seed,
                seen.failure,
                result.failure,
                seen.digest,
                result.digest
            ),
            Some(_) => {}
            None => {
                by_key.insert(key, result);
            }
        }
    }
    Ok(by_key.into_values().collect())
}

/// Seeds of each scenario file's declared range that no shard ran.
pub fn missing(results: &[SeedResult]) -> BTreeMap<String, Vec<u64>> {
    let mut ranges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut ran: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for r in results {
        ranges.entry(&r.file).or_default().insert(&r.seeds);
        ran.entry(&r.file).or_default().insert(r.seed);
    }
    let mut missing = BTreeMap::new();
    for (file, declared) in ranges {
        let seen = &ran[file];
        let absent: Vec<u64> = declared
            .iter()
            .filter_map(|text| seeds::parse_seeds(text).ok())
            .flat_map(|SeedRange { start, end }| start..end)
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .filter(|seed| !seen.contains(seed))
            .collect();
        if !absent.is_empty() {
            missing.insert(file.to_owned(), absent);
        }
    }
    missing
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let parts = args
        .files
        .iter()
        .map(|path| results::read_lines(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let merged = merge(parts)?;
    if let Some(path) = &args.json {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for result in &merged {
            results::write_line(&mut out, result)?;
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, results::junit(&merged))?;
    }
    for line in merged.iter().filter_map(SeedResult::failure_line) {
        println!("{line}");
    }
    let gaps = missing(&merged);
    for (file, seeds) in &gaps {
        let shown: Vec<String> = seeds.iter().take(10).map(u64::to_string).collect();
        let more = seeds.len().saturating_sub(10);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        println!(
            "MISSING {file}: {} seed(s) no shard ran: {}{more}",
            seeds.len(),
            shown.join(", ")
        );
    }
    let failed = merged.iter().filter(|r| !r.passed).count();
    let scenarios: BTreeSet<&str> = merged.iter().map(|r| r.file.as_str()).collect();
    println!(
        "merged {} file(s): {} scenario(s), {} runs, {} passed, {failed} failed, {} missing",
        args.files.len(),
        scenarios.len(),
        merged.len(),
        merged.len() - failed,
        gaps.values().map(Vec::len).sum::<usize>()
    );
    Ok(if failed == 0 && gaps.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, digest: &str, seeds: &str) -> SeedResult {
        SeedResult {
            scenario: "s".into(),
            file: "s.toml".into(),
            seed,
            seeds: seeds.into(),
            shard: Some("1/2".into()),
            passed: true,
            failure: None,
            digest: Some(digest.into()),
            virtual_time_us: Some(1),
            wall_ms: seed as f64,
        }
    }

    #[test]
    fn shards_merge_sorted_and_gaps_are_named() {
        let merged = merge(vec![
            vec![result(2, "c", "0..5"), result(0, "a", "0..5")],
            vec![result(1, "b", "0..5"), result(0, "a", "0..5")],
        ])
        .unwrap();
        let seeds: Vec<u64> = merged.iter().map(|r| r.seed).collect();
        assert_eq!(seeds, [0, 1, 2]);
        assert_eq!(
            missing(&merged),
            BTreeMap::from([("s.toml".to_owned(), vec![3, 4])])
        );
    }

    #[test]
    fn a_seed_that_differs_between_shards_is_an_error() {
        let err = merge(vec![
            vec![result(0, "a", "0..1")],
            vec![result(0, "b", "0..1")],
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("differs between shards"), "{err}");
    }
}
