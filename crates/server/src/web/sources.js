// Opening a cited passage: each source under an answer is a button that fetches the
// passage from /v1/sessions/{session}/messages/{id}/sources/{n} and shows it in a modal
// dialog. Escape, Close or a click beside the dialog closes it, and the focus goes back
// to the source that opened it.

export function setupSources(ui, api) {
  let opener = null;
  ui.sourceDialog.addEventListener("click", (event) => {
    if (event.target === ui.sourceDialog) ui.sourceDialog.close(); // the backdrop
  });
  ui.sourceDialog.addEventListener("close", () => {
    opener?.focus();
    opener = null;
  });

  /// Shows source `n` of message `messageId` in `session`; `describe(passage)` renders
  /// where it is ("path — heading (lines 3–5)").
  return async function openSource(button, session, messageId, n, describe) {
    opener = button;
    ui.sourceTitle.textContent = "[" + n + "]";
    ui.sourceWhere.textContent = "Loading…";
    ui.sourceText.textContent = "";
    ui.sourceError.hidden = true;
    if (!ui.sourceDialog.open) ui.sourceDialog.showModal();
    const path = "/v1/sessions/" + encodeURIComponent(session) + "/messages/"
      + encodeURIComponent(messageId) + "/sources/" + n;
    try {
      const passage = await api(path);
      ui.sourceTitle.textContent = "[" + n + "] " + (passage.heading || passage.title || passage.path);
      ui.sourceWhere.textContent = describe(passage);
      ui.sourceText.textContent = passage.text;
    } catch (e) {
      ui.sourceWhere.textContent = "";
      ui.sourceError.textContent = "Could not open this source: " + e.message;
      ui.sourceError.hidden = false;
    }
  };
}
