//! Formatting for people: times, durations, sizes and tables.

use chrono::{DateTime, Utc};
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};

/// "12 s ago", "5 min ago", "3 h ago", "2 days ago", or the date.
pub(crate) fn ago(t: DateTime<Utc>) -> String {
    let secs = (Utc::now() - t).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs} s ago"),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        86_400..=604_799 => format!("{} days ago", secs / 86_400),
        _ => t.format("%Y-%m-%d").to_string(),
    }
}

/// A TTL for people: "59 min 12 s", "never".
pub(crate) fn ttl(secs: Option<u64>) -> String {
    match secs {
        None => "never expires".to_string(),
        Some(s) if s >= 3600 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        Some(s) if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        Some(s) => format!("{s} s"),
    }
}

/// Bytes for people: "812 B", "1.5 KiB", "3.2 MiB".
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A local timestamp, to the second.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A borderless table with a header row, sized to the terminal.
pub(crate) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// Prints a value as one line of JSON.
pub(crate) fn json_line<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints a one-line warning on stderr when memory ran degraded or has messages
/// waiting in the local journal.
pub(crate) async fn warn_if_degraded(manager: &ragchat_memory::SessionManager) {
    let Ok(status) = manager.status().await else {
        return;
    };
    if status.mode == ragchat_memory::Mode::Normal && status.pending_sync == 0 {
        return;
    }
    let journal = status
        .journal
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    eprintln!(
        "warning: {} is unreachable; {} message(s) are kept in the local journal {journal} and will be replayed when it answers (or run `ragchat sessions sync`)",
        status.store, status.pending_sync
    );
}

/// The `tier` column's word for a conversation (`sessions list`).
pub(crate) fn tier_name(tier: Option<ragchat_memory::Tier>) -> &'static str {
    match tier {
        Some(ragchat_memory::Tier::Hot) => "hot",
        Some(ragchat_memory::Tier::Archived) => "archived",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_and_ttls() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(ttl(None), "never expires");
        assert_eq!(ttl(Some(42)), "42 s");
        assert_eq!(ttl(Some(3599)), "59 min 59 s");
        assert_eq!(ttl(Some(7260)), "2 h 1 min");
    }
}
