// Relative times ("2 hours ago") for the conversation list, from the browser's clock.
// The exact local time stays available as the <time> element's tooltip.

const STEPS = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];
const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/// "just now", "5 minutes ago", "2 hours ago", "yesterday", "3 weeks ago"...
/// A time slightly in the future (clocks differ between machines) is "just now".
export function relativeTime(date, now = Date.now()) {
  const seconds = Math.floor((now - date.getTime()) / 1000);
  for (const [unit, size] of STEPS) {
    if (seconds >= size) return relative.format(-Math.floor(seconds / size), unit);
  }
  return "just now";
}

/// A <time> element for an RFC 3339 timestamp, showing the relative time.
export function timeElement(iso) {
  const el = document.createElement("time");
  el.dateTime = iso;
  el.title = new Date(iso).toLocaleString();
  el.textContent = relativeTime(new Date(iso));
  return el;
}

/// Brings every relative time under `root` up to date (they age while the page is open).
export function refreshTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    el.textContent = relativeTime(new Date(el.dateTime));
  }
}
