// Searching the caller's conversations from the sidebar: GET /v1/search as they type
// (after a short pause) or press Enter; each hit shows its conversation, when, and the
// snippet with the matched words marked; choosing one opens the conversation at that
// message. Snippets come from the server as HTML (matches in <mark>, the rest escaped);
// they are rebuilt here from text and <mark> nodes only, so nothing else in them is
// ever rendered.

const PAUSE_MS = 300;

/// The snippet as DOM nodes: text, and <mark> elements holding text.
function snippetNodes(html) {
  const parsed = new DOMParser().parseFromString("<body>" + html + "</body>", "text/html");
  return [...parsed.body.childNodes].map((node) => {
    if (node.nodeName === "MARK") {
      const mark = document.createElement("mark");
      mark.textContent = node.textContent;
      return mark;
    }
    return document.createTextNode(node.textContent);
  });
}

export function setupSearch(ui, { api, open, titleOf, timeElement }) {
  let timer = null;
  let asked = 0; // the latest search; older answers arriving late are dropped

  function clear() {
    ui.results.replaceChildren();
    ui.results.hidden = true;
    ui.status.textContent = "";
  }

  function hitItem(hit) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.session = hit.session;
    button.dataset.message = hit.message_id;
    const where = document.createElement("span");
    where.className = "meta";
    where.append(titleOf(hit.session) + " · " + (hit.role === "user" ? "you" : "assistant") + " · ",
      timeElement(hit.created_at));
    const snippet = document.createElement("span");
    snippet.className = "snippet";
    snippet.append(...snippetNodes(hit.snippet));
    button.append(snippet, where);
    button.addEventListener("click", () => open(hit.session, hit.message_id));
    li.appendChild(button);
    return li;
  }

  async function run() {
    const q = ui.input.value.trim();
    const mine = ++asked;
    if (!q) return clear();
    ui.status.textContent = "Searching…";
    try {
      const page = await api("/v1/search?limit=20&q=" + encodeURIComponent(q));
      if (mine !== asked) return;
      ui.results.replaceChildren(...page.hits.map(hitItem));
      ui.results.hidden = page.hits.length === 0;
      ui.status.textContent = page.hits.length === 0
        ? "No messages match."
        : page.hits.length + (page.hits.length === 1 ? " message matches." : " messages match.");
    } catch (e) {
      if (mine !== asked) return;
      ui.results.hidden = true;
      ui.status.textContent = e.status === 501 ? "Search is not available: " + e.message
        : "Could not search: " + e.message;
    }
  }

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run();
  });
  ui.input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, PAUSE_MS);
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && ui.input.value) {
      event.preventDefault();
      event.stopPropagation();
      ui.input.value = "";
      asked++;
      clear();
    }
  });
}
