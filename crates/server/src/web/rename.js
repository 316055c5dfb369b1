// Renaming the current conversation: the pencil button beside its name opens a text
// field in place of the name. Enter saves (PATCH /v1/sessions/{id}; an empty title
// clears the given one, so the conversation is titled by its first question again),
// Escape cancels; either way the focus goes back to the button.

export function setupRename({ button, form, input, name }, { api, current, renamed, setStatus }) {
  function open() {
    input.value = name.textContent;
    // The heading stays for screen readers; the field takes its place on screen.
    name.classList.add("visually-hidden");
    button.hidden = true;
    form.hidden = false;
    input.focus();
    input.select();
  }

  function close() {
    form.hidden = true;
    name.classList.remove("visually-hidden");
    button.hidden = false;
    button.focus();
  }

  button.addEventListener("click", open);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const title = input.value.trim();
    try {
      const summary = await api("/v1/sessions/" + encodeURIComponent(current()), {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ title: title === "" ? null : title }),
      });
      name.textContent = summary.title || name.textContent;
      close();
      await renamed();
    } catch (e) {
      setStatus("Could not rename: " + e.message);
    }
  });
}
