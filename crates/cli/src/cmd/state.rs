//! `state`: the derived state a command maps at open (`DATA_DIR/state/`).

use crate::Global;
use anyhow::Result;
use cointrail_engine::state_file;

#[derive(clap::Subcommand)]
#[command(after_help = "Examples:
  cointrail state verify                      # every byte of every state file against its checksum
  cointrail state verify --remove-damaged     # and remove the damaged ones: the next command rebuilds them
Commands check a state file's header, length, head and trailer when they open it (whatever its
size), and every byte only when the file is written: `state verify` checks every byte again.")]
pub enum StateCmd {
    /// Check every state file in full against its checksum (exit status 1 if one is damaged).
    Verify {
        /// Remove the damaged files, so that the next command builds them again from the
        /// sources.
        #[arg(long)]
        remove_damaged: bool,
    },
}

pub fn run(cmd: StateCmd, g: &Global) -> Result<()> {
    match cmd {
        StateCmd::Verify { remove_damaged } => {
            let reports = state_file::verify_dir(&g.data_dir)?;
            let damaged: Vec<_> = reports.iter().filter(|r| r.damage.is_some()).collect();
            let mut removed = Vec::new();
            if remove_damaged {
                for r in &damaged {
                    std::fs::remove_file(&r.path)?;
                    removed.push(r.path.clone());
                }
            }
            if g.json {
                crate::print_json(&serde_json::json!({
                    "files": reports,
                    "damaged": damaged.len(),
                    "removed": removed,
                }))?;
            } else {
                if reports.is_empty() {
                    println!(
                        "no state files in {} (the next query command builds them)",
                        state_file::state_dir(&g.data_dir).display()
                    );
                }
                for r in &reports {
                    match (&r.verified, &r.damage) {
                        (Some(v), _) => println!(
                            "{}: ok ({}, {} bytes, {} sections, checksum {})",
                            r.path.display(),
                            v.kind,
                            v.bytes,
                            v.sections,
                            v.checksum
                        ),
                        (None, Some(m)) => println!(
                            "{}: DAMAGED: {m}{}",
                            r.path.display(),
                            if remove_damaged {
                                "; removed: the next command builds it again"
                            } else {
                                "; remove it (or run `cointrail state verify --remove-damaged`) and the next command builds it again"
                            }
                        ),
                        (None, None) => {}
                    }
                }
            }
            if !damaged.is_empty() {
                anyhow::bail!(
                    "{} of {} state files damaged{}",
                    damaged.len(),
                    reports.len(),
                    if remove_damaged { " (removed)" } else { "" }
                );
            }
            Ok(())
        }
    }
}
