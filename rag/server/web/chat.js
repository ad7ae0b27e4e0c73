// The chat page: talks to this server's own OpenAI-compatible endpoint, streaming, and shows
// each answer with numbered citations (title, author, date, link) whose passages expand with
// the supporting sentence highlighted. Text from articles is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const history = []; // {role, content} turns sent with each question, for follow-ups
let turnCount = 0;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function filters() {
  const f = {};
  const source = $("source").value.trim();
  if (source) f.sources = [source];
  if ($("after").value) f.published_after = $("after").value;
  if ($("before").value) f.published_before = $("before").value;
  return Object.keys(f).length ? f : null;
}

async function loadStatus() {
  try {
    const health = await (await fetch("/health")).json();
    $("status").textContent = `${health.documents} article(s) indexed`;
    const page = await fetch("/documents?limit=1000", { headers: headers() });
    if (!page.ok) return;
    const sources = new Set((await page.json()).documents.map((d) => d.source).filter(Boolean));
    $("sources").replaceChildren(...[...sources].sort().map((s) => new Option(s)));
  } catch (err) {
    $("status").textContent = "the server does not answer";
  }
}

// "text [1] more [2][3]" -> text nodes and links to the citations of this turn
function renderContent(el, text, turn) {
  el.replaceChildren();
  const parts = text.split(/\[(\d+)\]/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) { if (part) el.append(part); return; }
    const a = document.createElement("a");
    a.className = "cite";
    a.href = `#c-${turn}-${part}`;
    a.textContent = `[${part}]`;
    a.addEventListener("click", () => {
      const li = document.getElementById(`c-${turn}-${part}`);
      if (li) { li.querySelector("details").open = true; li.classList.add("flash"); }
    });
    el.append(a);
  });
}

function renderCitations(container, citations, turn) {
  const list = document.createElement("ol");
  list.className = "citations";
  for (const c of citations) {
    const li = $("citation-template").content.firstElementChild.cloneNode(true);
    li.id = `c-${turn}-${c.n}`;
    if (!c.cited) li.classList.add("uncited");
    li.querySelector(".n").textContent = `[${c.n}]`;
    const link = li.querySelector("a.title");
    link.href = c.url;
    link.textContent = c.title || c.url;
    li.querySelector(".byline").textContent =
      [c.author, c.source, c.published_date].filter(Boolean).join(" · ");
    const passage = li.querySelector(".passage");
    const h = c.highlight;
    const start = h ? h.char_start - c.char_start : -1;
    const end = h ? h.char_end - c.char_start : -1;
    if (h && start >= 0 && end <= c.text.length && start < end) {
      const mark = document.createElement("mark");
      mark.textContent = c.text.slice(start, end);
      passage.append(c.text.slice(0, start), mark, c.text.slice(end));
    } else {
      passage.textContent = c.text;
    }
    list.append(li);
  }
  container.append(list);
}

// server-sent events from fetch: call onEvent(json) for each "data:" line until [DONE]
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function ask(question) {
  const turn = ++turnCount;
  const box = document.createElement("section");
  box.className = "turn";
  const user = document.createElement("div");
  user.className = "user";
  user.textContent = question;
  const reply = document.createElement("div");
  reply.className = "assistant";
  reply.dataset.turn = turn;
  const content = document.createElement("div");
  content.className = "content";
  content.textContent = "…";
  reply.append(content);
  box.append(user, reply);
  $("log").append(box);

  history.push({ role: "user", content: question });
  const body = { model: "rag", stream: true, messages: history.slice(-12) };
  const f = filters();
  if (f) body.rag = { filters: f };
  let text = "";
  try {
    const response = await fetch("/v1/chat/completions",
      { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      const err = await response.json().catch(() => ({}));
      throw new Error((err.error && err.error.message) || `HTTP ${response.status}`);
    }
    await readEvents(response, (event) => {
      if (event.error) throw new Error(event.error.message);
      for (const choice of event.choices || []) {
        if (choice.delta && choice.delta.content) {
          text += choice.delta.content;
          renderContent(content, text, turn);
        }
      }
      if (event.citations) {
        if (!event.rag.found) reply.classList.add("notfound");
        renderCitations(reply, event.citations, turn);
      }
    });
    history.push({ role: "assistant", content: text });
    reply.classList.add("done");
  } catch (err) {
    history.pop();
    reply.classList.add("error", "done");
    content.textContent = "Error: " + err.message;
  }
}

$("ask").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  $("send").disabled = true;
  try { await ask(question); } finally { $("send").disabled = false; $("question").focus(); }
});
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("ask").requestSubmit();
  }
});
$("clear").addEventListener("click", () => {
  history.length = 0;
  $("log").replaceChildren();
});
$("apikey").value = localStorage.getItem("rag-api-key") || "";
$("apikey").addEventListener("change", () => {
  localStorage.setItem("rag-api-key", $("apikey").value.trim());
  loadStatus();
});
loadStatus();
