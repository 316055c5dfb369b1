// ragchat web chat: talks to the /v1 API of the server that served this page.
// The conversation lives on the server (and its store), never only in this tab: on
// every load the page asks the API for the session named in the URL.
// Beside this file: drawer.js (the list on phones), welcome.js (a new conversation's
// view), sources.js (opening a cited passage), rename.js (renaming the conversation),
// search.js (searching every conversation), time.js (relative times).
import { setupDrawer } from "/drawer.js";
import { showWelcome, hideWelcome } from "/welcome.js";
import { setupSources } from "/sources.js";
import { timeElement, refreshTimes } from "/time.js";
import { setupRename } from "/rename.js";
import { setupSearch } from "/search.js";

const $ = (id) => document.getElementById(id);
const ui = {
  messages: $("messages"), input: $("input"), send: $("send"), stop: $("stop"),
  composer: $("composer"), sessions: $("sessions"), newChat: $("new-chat"),
  keyForm: $("key-form"), apiKey: $("api-key"), keyStatus: $("key-status"),
  sessionName: $("session-name"), status: $("status"), conversation: $("conversation"),
  welcome: $("welcome"), corpusSummary: $("corpus-summary"), documents: $("documents"),
  examples: $("examples"), sourceDialog: $("source-dialog"), sourceTitle: $("source-title"),
  sourceWhere: $("source-where"), sourceError: $("source-error"), sourceText: $("source-text"),
};
const KEY_STORAGE = "ragchat.apiKey";
const SESSION_STORAGE = "ragchat.session";
const SESSION_ID = /^[A-Za-z0-9._-]{1,64}$/;

let session = null;
let inFlight = null; // AbortController of the streaming turn
const titles = new Map(); // session id -> title, as the list last showed them
const drawer = setupDrawer({
  menu: $("menu"), sidebar: $("sidebar"), closeButton: $("close-sidebar"),
  backdrop: $("backdrop"), main: $("main"),
});
const openSource = setupSources(ui, api);
setupRename(
  { button: $("rename"), form: $("rename-form"), input: $("rename-input"), name: ui.sessionName },
  { api, current: () => session, renamed: () => loadSessions(), setStatus },
);

setupSearch(
  { form: $("search-form"), input: $("search-input"), results: $("search-results"), status: $("search-status") },
  { api, open: openAt, titleOf: (id) => titles.get(id) || id, timeElement },
);

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function headers(extra = {}) {
  const h = { ...extra };
  const key = localStorage.getItem(KEY_STORAGE);
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

async function errorFrom(response) {
  let code = "http_" + response.status, message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) { code = body.error.code; message = body.error.message; }
  } catch (_) { /* not JSON */ }
  if (response.status === 401) askForKey(message);
  return new ApiError(response.status, code, message);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

function askForKey(reason) {
  ui.keyForm.hidden = false;
  ui.keyStatus.textContent = localStorage.getItem(KEY_STORAGE)
    ? "The saved API key was refused (" + reason + "); paste another."
    : "This server needs an API key; it stays in this browser.";
}

function setStatus(text) { ui.status.textContent = text || ""; }

const NEW_CONVERSATION = "New conversation";

/// The conversation's title: its first question on one line, as the server titles it.
function titleOf(question) {
  const line = question.split(/\s+/).filter(Boolean).join(" ");
  return line.length > 80 ? line.slice(0, 79).trimEnd() + "…" : line;
}

function scrollToEnd() { ui.conversation.scrollTop = ui.conversation.scrollHeight; }

function newSessionId() {
  const rand = new Uint8Array(4);
  crypto.getRandomValues(rand);
  const hex = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  return "chat-" + Date.now().toString(36) + "-" + hex;
}

function sessionFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const id = params.get("session");
  return id && SESSION_ID.test(id) ? id : null;
}

/// "conversation “Trip to Lisbon”, 2026-11-20": a recalled message of the caller's
/// conversations, cited by an answer or remembered by a turn.
function describeConversation(c) {
  return "conversation “" + (titles.get(c.session) || c.session) + "”, " + String(c.created_at).slice(0, 10);
}

function describeSource(s) {
  if (s.conversation) return describeConversation(s.conversation);
  let text = s.path;
  if (s.heading) text += " — " + s.heading;
  // Same rendering as the terminal (`line_range` in the CLI): "(line 3)", "(lines 3-5)".
  if (s.line_start && s.line_end && s.line_end > s.line_start) {
    text += " (lines " + s.line_start + "-" + s.line_end + ")";
  } else if (s.line_start) {
    text += " (line " + s.line_start + ")";
  }
  return text;
}

/// Adds a message bubble; returns an object to update it while it streams.
function addMessage(role, content, status) {
  const el = document.createElement("article");
  el.className = "msg " + role;
  el.dataset.status = status || "complete";
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = content || "";
  el.appendChild(text);
  ui.messages.appendChild(el);
  scrollToEnd();
  return {
    el,
    append(delta) { text.textContent += delta; scrollToEnd(); },
    setText(value) { text.textContent = value; },
    setSources(sources) {
      el.querySelector(".sources")?.remove();
      if (!sources || sources.length === 0) return;
      const list = document.createElement("ol");
      list.className = "sources";
      list.setAttribute("aria-label", "Sources");
      sources.forEach((s, i) => {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = describeSource(s);
        if (s.conversation) {
          // A recalled message: open its conversation there.
          button.addEventListener("click", () => openAt(s.conversation.session, s.conversation.message_id));
        } else {
          button.setAttribute("aria-haspopup", "dialog");
          // The answer's id is known once it is stored (the `done` event).
          button.disabled = !el.dataset.id;
          button.addEventListener("click", () =>
            openSource(button, session, el.dataset.id, i + 1, describeSource));
        }
        li.appendChild(button);
        list.appendChild(li);
      });
      el.appendChild(list);
    },
    setRecalled(recalled) {
      el.querySelector(".recalled")?.remove();
      if (!recalled || recalled.length === 0) return;
      const note = document.createElement("div");
      note.className = "recalled muted";
      note.append("Remembered: ");
      recalled.forEach((c, i) => {
        if (i > 0) note.append(" · ");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.textContent = describeConversation(c);
        button.addEventListener("click", () => openAt(c.session, c.message_id));
        note.appendChild(button);
      });
      el.appendChild(note);
    },
    finish(message) {
      el.dataset.id = message.id;
      el.dataset.status = message.status;
      text.textContent = message.content;
      this.setSources(message.sources);
      if (message.status === "incomplete") {
        const note = document.createElement("div");
        note.className = "note";
        note.textContent = "(incomplete: the answer was interrupted)";
        el.appendChild(note);
      }
    },
    fail(error) { el.classList.add("error"); el.dataset.status = "error"; text.textContent = error.message; },
  };
}

function renderStored(message) {
  const view = addMessage(message.role, message.content, message.status);
  view.finish(message);
}

async function loadConversation() {
  ui.messages.replaceChildren();
  ui.sessionName.textContent = NEW_CONVERSATION;
  let after = null;
  let empty = true;
  try {
    for (;;) {
      const query = after ? "?after=" + encodeURIComponent(after) : "";
      const page = await api("/v1/sessions/" + encodeURIComponent(session) + "/messages" + query);
      if (empty) {
        const first = page.messages.find((m) => m.role === "user" && m.content.trim());
        if (first) ui.sessionName.textContent = titleOf(first.content);
      }
      empty = empty && page.messages.length === 0;
      page.messages.forEach(renderStored);
      if (!page.has_more || !page.next_cursor) break;
      after = page.next_cursor;
    }
    setStatus("");
  } catch (e) {
    // 404: a conversation not started yet; 401: the key form says what to do.
    if (e.status !== 404 && e.status !== 401) setStatus("Could not load the conversation: " + e.message);
  }
  if (empty) showWelcome(ui, api, ask);
  else hideWelcome(ui);
  document.body.dataset.loaded = session;
}

/// One entry of the conversation list.
function sessionItem(id, title, updatedAt, messageCount) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.session = id;
  if (id === session) {
    li.className = "current";
    button.setAttribute("aria-current", "true");
  }
  const name = document.createElement("span");
  name.className = "title";
  name.textContent = title;
  name.title = title; // the whole title, where the list cuts it short
  button.appendChild(name);
  const meta = document.createElement("span");
  meta.className = "meta";
  if (updatedAt) {
    meta.append(timeElement(updatedAt), " · " + messageCount + (messageCount === 1 ? " message" : " messages"));
  } else {
    meta.textContent = "not started";
  }
  button.appendChild(meta);
  button.addEventListener("click", () => {
    drawer.close();
    if (id !== session) openSession(id);
  });
  li.appendChild(button);
  return li;
}

async function loadSessions() {
  try {
    const { sessions } = await api("/v1/sessions");
    sessions.forEach((s) => titles.set(s.session, s.title || s.session));
    const items = sessions.map((s) =>
      sessionItem(s.session, s.title || "Untitled conversation", s.updated_at, s.message_count));
    // The conversation being started is not stored until its first question.
    if (!sessions.some((s) => s.session === session)) {
      items.unshift(sessionItem(session, NEW_CONVERSATION, null, 0));
    }
    ui.sessions.replaceChildren(...items);
    // The stored title (given by a person, else the first question) names the conversation.
    const current = sessions.find((s) => s.session === session);
    if (current && current.title) ui.sessionName.textContent = current.title;
    $("rename").hidden = !current || !$("rename-form").hidden;
  } catch (e) {
    if (e.status !== 401) setStatus("Could not list conversations: " + e.message);
  }
}

async function openSession(id) {
  session = id;
  localStorage.setItem(SESSION_STORAGE, id);
  if (sessionFromUrl() !== id) history.replaceState(null, "", "#session=" + encodeURIComponent(id));
  await loadConversation();
  await loadSessions();
}

/// Opens a conversation at one of its messages (a search hit): shown, marked, focused.
async function openAt(id, messageId) {
  drawer.close();
  if (id !== session) await openSession(id);
  ui.messages.querySelector(".msg.found")?.classList.remove("found");
  const el = [...ui.messages.querySelectorAll(".msg")].find((m) => m.dataset.id === messageId);
  if (!el) return setStatus("That message is no longer in the conversation.");
  el.classList.add("found");
  el.tabIndex = -1;
  el.scrollIntoView({ block: "center" });
  el.focus({ preventScroll: true });
}

/// Parses a server-sent event stream from a fetch body, calling onEvent(name, data).
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // keep-alive comment
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? "" : line.slice(colon + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (field === "event") name = v;
        else if (field === "data") data.push(v);
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

/// Asks `content` in the current conversation (the composer, or an example question).
function ask(content) {
  if (!content.trim() || inFlight) return;
  send(content);
}

async function send(content) {
  hideWelcome(ui);
  if (ui.sessionName.textContent === NEW_CONVERSATION) ui.sessionName.textContent = titleOf(content);
  renderStored({ role: "user", content, status: "complete", sources: [] });
  const answer = addMessage("assistant", "", "streaming");
  inFlight = new AbortController();
  ui.send.disabled = true;
  ui.stop.hidden = false;
  setStatus("Answering…");
  let finished = false;
  try {
    const response = await fetch("/v1/sessions/" + encodeURIComponent(session) + "/messages", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
      body: JSON.stringify({ content }),
      signal: inFlight.signal,
    });
    if (!response.ok) throw await errorFrom(response);
    await readEvents(response.body, (name, data) => {
      const payload = JSON.parse(data);
      if (name === "token") answer.append(payload.text);
      else if (name === "recalled") answer.setRecalled(payload);
      else if (name === "sources") answer.setSources(payload);
      else if (name === "done") { answer.finish(payload); finished = true; }
      else if (name === "error") { answer.fail(payload.error); finished = true; }
    });
    if (!finished) answer.fail(new Error("The connection closed before the answer was complete."));
    setStatus("");
  } catch (e) {
    if (e.name === "AbortError") {
      answer.el.dataset.status = "incomplete";
      setStatus("Stopped: the partial answer is kept as incomplete.");
    } else {
      answer.fail(e);
      setStatus("");
    }
  } finally {
    inFlight = null;
    ui.send.disabled = false;
    ui.stop.hidden = true;
    loadSessions();
  }
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = ui.input.value;
  if (!content.trim() || inFlight) return;
  ui.input.value = "";
  ask(content);
});

ui.input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.stop.addEventListener("click", () => inFlight?.abort());
ui.newChat.addEventListener("click", () => {
  drawer.close();
  openSession(newSessionId());
});
setInterval(() => refreshTimes(ui.sessions), 30_000);

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = ui.apiKey.value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  ui.apiKey.value = "";
  ui.keyForm.hidden = true;
  ui.keyStatus.textContent = "Key saved in this browser.";
  openSession(session);
});

window.addEventListener("hashchange", () => {
  const id = sessionFromUrl();
  if (id && id !== session) openSession(id);
});

const remembered = localStorage.getItem(SESSION_STORAGE);
openSession(sessionFromUrl() || (remembered && SESSION_ID.test(remembered) ? remembered : newSessionId()));
