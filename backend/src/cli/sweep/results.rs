//! What a sweep records per seed, in the forms other tools read: JSON Lines (one object per
//! seed, written as runs finish, so a killed sweep keeps what it ran) and JUnit XML (one test
//! case per seed, which CI systems show natively).

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// One seed of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The scenario's `name`.
    pub scenario: String,
    /// The scenario file as given on the command line: what the repro command needs.
    pub file: String,
    pub seed: u64,
    /// The sweep's whole range, `A..B`, and this process's shard of it (`I/N`), so a merge can
    /// tell whether every seed was run.
    pub seeds: String,
    pub shard: Option<String>,
    pub passed: bool,
    /// What failed; `None` when `passed`.
    pub failure: Option<String>,
    /// The trace digest; `None` if the world could not be built or the run panicked.
    pub digest: Option<String>,
    pub virtual_time_us: Option<u64>,
    /// Wall time of this run alone.
    pub wall_ms: f64,
}

impl SeedResult {
    pub fn reproduce(&self) -> String {
        format!("meshlog run {} --seed {}", self.file, self.seed)
    }

    /// Everything but the wall time, which no two runs share.
    pub fn same_run(&self, other: &SeedResult) -> bool {
        SeedResult {
            wall_ms: 0.0,
            seeds: String::new(),
            shard: None,
            ..self.clone()
        } == SeedResult {
            wall_ms: 0.0,
            seeds: String::new(),
            shard: None,
            ..other.clone()
        }
    }

    /// The report line for a failure, with the command that reproduces it.
    pub fn failure_line(&self) -> Option<String> {
        let what = self.failure.as_deref()?;
        Some(format!(
            "FAIL {} seed {}: {what}\n  reproduce: {}",
            self.scenario,
            self.seed,
            self.reproduce()
        ))
    }

    /// Sort key: by file, then seed.
    pub fn key(&self) -> (&str, u64) {
        (&self.file, self.seed)
    }
}

/// Appends one JSON line and flushes it, so it is on disk when the next run starts.
pub fn write_line(out: &mut impl Write, result: &SeedResult) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, result)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Every result in a JSON Lines file. A torn last line (a sweep killed mid-write) is skipped
/// with a warning; a bad line elsewhere is an error naming it.
pub fn read_lines(path: &Path) -> anyhow::Result<Vec<SeedResult>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut results = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(result) => results.push(result),
            Err(_) if i + 1 == lines.len() => {
                eprintln!("{}: skipping a torn last line", path.display());
            }
            Err(err) => anyhow::bail!("{}:{}: not a sweep result: {err}", path.display(), i + 1),
        }
    }
    Ok(results)
}

/// JUnit XML: one test suite per scenario, one test case per seed; a failure carries the
/// repro command.
pub fn junit(results: &[SeedResult]) -> String {
    let mut suites: std::collections::BTreeMap<&str, Vec<&SeedResult>> = Default::default();
    for r in results {
        suites.entry(&r.scenario).or_default().push(r);
    }
    let failures = results.iter().filter(|r| !r.passed).count();
    let seconds = |ms: f64| ms / 1_000.0;
    let total_ms: f64 = results.iter().map(|r| r.wall_ms).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"meshlog sweep\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
        results.len(),
        seconds(total_ms)
    );
    for (scenario, cases) in suites {
        let failed = cases.iter().filter(|r| !r.passed).count();
        let ms: f64 = cases.iter().map(|r| r.wall_ms).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" time=\"{:.3}\">",
            escape(scenario),
            cases.len(),
            seconds(ms)
        );
        for case in cases {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
                escape(scenario),
                case.seed,
                seconds(case.wall_ms)
            );
            match &case.failure {
                None => xml.push_str("/>\n"),
                Some(what) => {
                    let _ = writeln!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(what),
                        escape(&case.reproduce())
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Text as XML attribute or element content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write most control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, failure: Option<&str>) -> SeedResult {
        SeedResult {
            scenario: "loss<30>".into(),
            file: "scenarios/loss-30.toml".into(),
            seed,
            seeds: "0..2".into(),
            shard: None,
            passed: failure.is_none(),
            failure: failure.map(str::to_owned),
            digest: Some("ab".into()),
            virtual_time_us: Some(5),
            wall_ms: 12.5,
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let mut file = std::fs::File::create(&path).unwrap();
        write_line(&mut file, &result(0, None)).unwrap();
        write_line(&mut file, &result(1, Some("not converged"))).unwrap();
        file.write_all(b"{\"scenario\": \"lo").unwrap();
        let read = read_lines(&path).unwrap();
        assert_eq!(
            read,
            vec![result(0, None), result(1, Some("not converged"))]
        );
    }

    #[test]
    fn junit_has_a_case_per_seed_and_escapes() {
        let xml = junit(&[result(0, None), result(1, Some("a \"b\" < c & d"))]);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(xml.contains("<testsuite name=\"loss&lt;30&gt;\""), "{xml}");
        assert!(xml.contains("name=\"seed 0\" time=\"0.013\"/>"), "{xml}");
        assert!(
            xml.contains("message=\"a &quot;b&quot; &lt; c &amp; d\">meshlog run scenarios/loss-30.toml --seed 1</failure>"),
            "{xml}"
        );
    }
}
