// The new-conversation view: which documents the answers come from and three example
// questions drawn from them; clicking one asks it. /v1/about is read once per page load
// (the server's documents do not change while it runs).

let about = null; // the promise of /v1/about, once asked

function loadAbout(api) {
  about ??= api("/v1/about").catch((error) => {
    about = null; // ask again next time (e.g. after an API key is given)
    throw error;
  });
  return about;
}

function plural(n, one, many) {
  return n + " " + (n === 1 ? one : many);
}

/// "33 documents (219 passages) are loaded; answers quote them, offline."
function summary(info) {
  const how = info.answerer === "extractive"
    ? "answers quote them, offline"
    : "answers are written from them by " + info.answerer;
  return plural(info.document_count, "document", "documents") + " ("
    + plural(info.chunk_count, "passage", "passages") + ") are loaded; " + how + ".";
}

/// Shows the view and fills it in; `ask(question)` sends a question.
export async function showWelcome(ui, api, ask) {
  ui.welcome.hidden = false;
  try {
    const info = await loadAbout(api);
    if (ui.welcome.hidden) return; // a question was asked meanwhile
    ui.corpusSummary.textContent = summary(info);
    ui.documents.replaceChildren(...info.documents.map((d) => {
      const li = document.createElement("li");
      li.textContent = d.title && d.title !== d.path ? d.title + " (" + d.path + ")" : d.path;
      return li;
    }));
    if (info.documents_truncated) {
      const li = document.createElement("li");
      li.textContent = "… and " + (info.document_count - info.documents.length) + " more";
      ui.documents.appendChild(li);
    }
    ui.examples.replaceChildren(...info.example_questions.map((question) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "example";
      button.textContent = question;
      button.addEventListener("click", () => ask(question));
      li.appendChild(button);
      return li;
    }));
  } catch (e) {
    // Without a key the key form is the next step; the view comes back once it works.
    if (e.status === 401) hideWelcome(ui);
    else ui.corpusSummary.textContent = "Could not tell which documents are loaded: " + e.message;
  }
}

export function hideWelcome(ui) {
  ui.welcome.hidden = true;
}
