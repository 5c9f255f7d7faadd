//! The `faults` step of `cargo xtask ci`: runs the fault-injection suite (tests/it/faults.rs, whose
//! tests are #[ignore]d in the plain `test` step) and counts its scenarios for the summary.

use anyhow::{bail, Result};

use crate::util::{cargo::cargo_test_tallied, Note};

pub fn run_ci(note: &mut Note) -> Result<()> {
    let (tally, ok) = cargo_test_tallied(
        &[
            "test",
            "--locked",
            "--workspace",
            "--test",
            "it",
            "--",
            "--ignored",
            "faults::",
            "--nocapture",
            "--test-threads=2",
        ],
        &[],
    )?;
    note.set(format!(
        "{} scenarios passed, {} failed",
        tally.passed, tally.failed
    ));
    if !ok || tally.failed > 0 {
        bail!("{} fault scenario(s) failed", tally.failed.max(1));
    }
    if tally.passed == 0 {
        bail!("no fault scenario ran");
    }
    Ok(())
}
