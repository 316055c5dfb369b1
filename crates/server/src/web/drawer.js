// The conversation list as a drawer on narrow screens (phones): the menu button opens it
// over the page; Escape, the close button, a tap outside or choosing something closes it
// and gives the focus back to the menu button. While it is open the rest of the page is
// inert and Tab cycles inside it, so keyboard and screen-reader users stay in it. On wide
// screens the list is always shown and none of this applies.

const NARROW = window.matchMedia("(max-width: 700px)");
const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), textarea, [tabindex]:not([tabindex='-1'])";

export function setupDrawer({ menu, sidebar, closeButton, backdrop, main }) {
  const isOpen = () => document.body.classList.contains("drawer-open");
  const focusable = () => [...sidebar.querySelectorAll(FOCUSABLE)].filter((e) => e.offsetParent !== null);

  function open() {
    document.body.classList.add("drawer-open");
    menu.setAttribute("aria-expanded", "true");
    // A modal dialog while it covers the page (the attributes go when it closes).
    sidebar.setAttribute("role", "dialog");
    sidebar.setAttribute("aria-modal", "true");
    sidebar.setAttribute("aria-label", "Conversations");
    main.inert = true;
    backdrop.hidden = false;
    focusable()[0]?.focus();
  }

  function close({ restoreFocus = true } = {}) {
    if (!isOpen()) return;
    document.body.classList.remove("drawer-open");
    menu.setAttribute("aria-expanded", "false");
    sidebar.removeAttribute("role");
    sidebar.removeAttribute("aria-modal");
    sidebar.removeAttribute("aria-label");
    main.inert = false;
    backdrop.hidden = true;
    if (restoreFocus && NARROW.matches) menu.focus();
  }

  menu.addEventListener("click", () => (isOpen() ? close() : open()));
  closeButton.addEventListener("click", () => close());
  backdrop.addEventListener("click", () => close());
  document.addEventListener("keydown", (event) => {
    if (!isOpen()) return;
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab") {
      const items = focusable();
      if (items.length === 0) return;
      const first = items[0], last = items[items.length - 1];
      const inside = sidebar.contains(document.activeElement);
      if (event.shiftKey && (document.activeElement === first || !inside)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  // Widening the window turns the drawer back into a sidebar.
  NARROW.addEventListener("change", () => {
    if (!NARROW.matches) close({ restoreFocus: false });
  });
  return { close };
}
