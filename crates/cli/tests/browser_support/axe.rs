//! axe-core's accessibility audit, run inside the page.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::Cdp;

/// The axe-core major version the audit runs.
const AXE_CORE: &str = "axe-core@4";

/// `axe.min.js`, installed with npm from the npm registry into a cache under the target
/// dir on first use (nothing is downloaded when the cache holds it). `None`, with a note
/// on stderr, when npm cannot install it; with `CI` set that fails the test instead.
pub(super) fn axe_source() -> Option<String> {
    static SOURCE: OnceLock<Option<String>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("axe-core-cache");
            let script = dir.join("node_modules/axe-core/axe.min.js");
            if !script.is_file() {
                std::fs::create_dir_all(&dir).expect("axe-core cache dir");
                let installed = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                    .arg(&dir)
                    .arg(AXE_CORE)
                    .output();
                let failure = match &installed {
                    Ok(out) if out.status.success() => None,
                    Ok(out) => Some(String::from_utf8_lossy(&out.stderr).into_owned()),
                    Err(e) => Some(format!("cannot run npm: {e}")),
                };
                if let Some(why) = failure {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "npm could not install {AXE_CORE}, and CI must run the accessibility audit: {why}"
                    );
                    eprintln!("skipping the axe-core audit: npm could not install {AXE_CORE}: {why}");
                    return None;
                }
            }
            Some(std::fs::read_to_string(&script).expect("read axe.min.js"))
        })
        .clone()
}

impl Cdp {
    /// Runs axe-core in the page; its violations of impact `serious` or `critical`.
    /// `None` when axe-core could not be installed (and `CI` is not set).
    pub(crate) async fn serious_accessibility_violations(
        &mut self,
        context: &str,
    ) -> Option<Vec<Value>> {
        let source = axe_source()?;
        let loaded = self.eval("typeof window.axe === 'object'").await;
        if loaded != json!(true) {
            self.eval(&format!("{source}\n;true")).await;
        }
        let results = self
            .eval("axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary) })))")
            .await;
        let all = results.as_array().expect("axe violations").clone();
        for minor in all
            .iter()
            .filter(|v| !matches!(v["impact"].as_str(), Some("serious" | "critical")))
        {
            eprintln!(
                "axe ({context}), {}: {} {}",
                minor["impact"], minor["id"], minor["help"]
            );
        }
        Some(
            all.into_iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect(),
        )
    }
}

/// Asserts that axe-core finds no serious or critical accessibility violation in the
/// page (skipped, with a note, when npm cannot install axe-core outside CI).
pub(crate) async fn assert_accessible(page: &mut Cdp, context: &str) {
    if let Some(violations) = page.serious_accessibility_violations(context).await {
        assert!(
            violations.is_empty(),
            "axe-core ({context}): {}",
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }
}
