// The chat page: talks to this server's own OpenAI-compatible endpoint, streaming, and shows
// each answer with its sources grouped by article: every cited passage's supporting sentence
// in view, a link to the original page that scrolls to that sentence (a text fragment), and a
// reader view of the whole article (GET /documents/{id}) with the passage highlighted at its
// exact offsets. Text from articles is only ever set as textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const history = []; // {role, content} turns sent with each question, for follow-ups
const articles = new Map(); // document_id -> GET /documents/{id} (the reader view's text)
let turnCount = 0;
const EXAMPLES = 3;

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

const plural = (n, word) => `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;

// a URL that opens the page scrolled to `sentence` (its first words, as a text fragment)
function fragmentLink(url, sentence) {
  if (!sentence) return url;
  const words = sentence.split(/\s+/).filter(Boolean).slice(0, 8).join(" ");
  return `${url.split("#")[0]}#:~:text=${encodeURIComponent(words).replace(/-/g, "%2D")}`;
}

// the empty state: what is indexed, and questions to start from (drawn from its articles)
function renderWelcome(total, docs) {
  const sources = new Set(docs.map((d) => d.source).filter(Boolean));
  const dates = docs.map((d) => d.published_date).filter(Boolean).sort();
  let size = `The index holds ${plural(total, "article")}`;
  if (sources.size) size += ` from ${plural(sources.size, "source")}`;
  if (dates.length) size += `, published ${dates[0]} to ${dates[dates.length - 1]}`;
  $("size").textContent = size + ".";
  const picked = [];
  const seen = new Set();
  for (const d of docs) { // newest first: one article per source, then any
    if (picked.length < EXAMPLES && !seen.has(d.source)) { picked.push(d); seen.add(d.source); }
  }
  for (const d of docs) if (picked.length < EXAMPLES && !picked.includes(d)) picked.push(d);
  $("examples").replaceChildren(...picked.map((d) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "example";
    b.textContent = `What does the article “${d.title}” report?`;
    b.addEventListener("click", () => {
      $("question").value = b.textContent;
      $("ask").requestSubmit();
    });
    li.append(b);
    return li;
  }));
  $("examples-intro").hidden = picked.length === 0;
}

async function loadStatus() {
  let total;
  try {
    total = (await (await fetch("/health")).json()).documents;
    $("status").textContent = `${plural(total, "article")} indexed`;
  } catch (err) {
    $("status").textContent = "the server does not answer";
    return;
  }
  let docs = [];
  try {
    const page = await fetch("/documents?limit=1000", { headers: headers() });
    if (page.ok) docs = (await page.json()).documents;
  } catch (err) { /* reads may need a key: the page still works without the examples */ }
  $("sources").replaceChildren(...[...new Set(docs.map((d) => d.source).filter(Boolean))]
    .sort().map((s) => new Option(s)));
  renderWelcome(total, docs);
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
    a.addEventListener("click", (event) => {
      const li = document.getElementById(`c-${turn}-${part}`);
      if (!li) return;
      event.preventDefault(); // a fragment navigation would take the focus back
      li.classList.add("flash");
      li.scrollIntoView({ block: "nearest" });
      li.querySelector("button.read").focus();
    });
    el.append(a);
  });
}

// the passage's text with its supporting sentence marked
function passageNodes(c) {
  const h = c.highlight;
  const start = h ? h.char_start - c.char_start : -1;
  const end = h ? h.char_end - c.char_start : -1;
  if (!(h && start >= 0 && end <= c.text.length && start < end)) return [c.text];
  const mark = document.createElement("mark");
  mark.textContent = c.text.slice(start, end);
  return [c.text.slice(0, start), mark, c.text.slice(end)];
}

function byline(c) {
  return [c.author, c.source, c.published_date].filter(Boolean).join(" · ");
}

// one entry per article (in the order of its first citation), its passages under it
function renderCitations(container, citations, turn) {
  const groups = new Map();
  for (const c of citations) {
    if (!groups.has(c.document_id)) groups.set(c.document_id, []);
    groups.get(c.document_id).push(c);
  }
  const list = document.createElement("ol");
  list.className = "sources";
  list.setAttribute("aria-label", "Sources");
  for (const group of groups.values()) {
    const first = group[0];
    const item = $("source-template").content.firstElementChild.cloneNode(true);
    const title = item.querySelector("a.title");
    const lead = group.find((c) => c.cited && c.highlight) || group.find((c) => c.highlight);
    title.href = fragmentLink(first.url, lead && lead.highlight.text);
    title.textContent = first.title || first.url;
    item.querySelector(".byline").textContent = byline(first);
    const passages = item.querySelector(".passages");
    for (const c of group) {
      const li = $("passage-template").content.firstElementChild.cloneNode(true);
      li.id = `c-${turn}-${c.n}`;
      if (!c.cited) li.classList.add("uncited");
      li.querySelector(".n").textContent = `[${c.n}]`;
      li.querySelector(".support").textContent = c.highlight ? c.highlight.text : c.text;
      const original = li.querySelector("a.original");
      original.href = fragmentLink(c.url, c.highlight && c.highlight.text);
      li.querySelector(".passage").append(...passageNodes(c));
      const read = li.querySelector("button.read");
      read.addEventListener("click", () => openReader(c, group));
      passages.append(li);
    }
    list.append(item);
  }
  container.append(list);
}

// the article's text with the citations' spans marked: `chosen` whole (its supporting sentence
// marked within), the article's other cited passages where they do not overlap it
function renderArticle(body, chosen, group) {
  const spans = [{ start: chosen.char_start, end: chosen.char_end, c: chosen }];
  for (const c of group) {
    if (c === chosen) continue;
    const clear = spans.every((s) => c.char_end <= s.start || c.char_start >= s.end);
    if (clear) spans.push({ start: c.char_start, end: c.char_end, c });
  }
  spans.sort((a, b) => a.start - b.start);
  const el = $("reader-body");
  el.replaceChildren();
  let at = 0;
  for (const s of spans) {
    el.append(body.slice(at, s.start));
    const mark = document.createElement("mark");
    mark.className = s.c === chosen ? "span chosen" : "span";
    mark.dataset.n = s.c.n;
    if (s.c === chosen) {
      mark.id = "reader-chosen";
      const h = s.c.highlight;
      if (h && h.char_start >= s.start && h.char_end <= s.end) {
        const support = document.createElement("strong");
        support.className = "support";
        support.textContent = body.slice(h.char_start, h.char_end);
        mark.append(body.slice(s.start, h.char_start), support, body.slice(h.char_end, s.end));
      } else {
        mark.textContent = body.slice(s.start, s.end);
      }
    } else {
      mark.textContent = body.slice(s.start, s.end);
    }
    el.append(mark);
    at = s.end;
  }
  el.append(body.slice(at));
}

async function openReader(c, group) {
  const dialog = $("reader");
  const opener = document.activeElement;
  $("reader-title").textContent = c.title || c.url;
  $("reader-byline").textContent = byline(c);
  $("reader-original").href = fragmentLink(c.url, c.highlight && c.highlight.text);
  $("reader-body").textContent = "loading…";
  dialog.addEventListener("close", () => opener && opener.focus(), { once: true });
  dialog.showModal();
  try {
    if (!articles.has(c.document_id)) {
      const r = await fetch(`/documents/${encodeURIComponent(c.document_id)}`,
        { headers: headers() });
      if (!r.ok) {
        const err = await r.json().catch(() => ({}));
        throw new Error((err.error && err.error.message) || `HTTP ${r.status}`);
      }
      articles.set(c.document_id, await r.json());
    }
    renderArticle(articles.get(c.document_id).body, c, group);
    $("reader-chosen").scrollIntoView({ block: "center" });
  } catch (err) {
    $("reader-body").textContent = "The article could not be loaded: " + err.message;
  }
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
  $("welcome").hidden = true;
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
  // the page reads the citations from the last chunk; no source events for it
  const body = { model: "rag", stream: true, messages: history.slice(-12),
                 rag: { sources: "none" } };
  const f = filters();
  if (f) body.rag.filters = f;
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
  $("welcome").hidden = false;
});
$("reader-close").addEventListener("click", () => $("reader").close());
$("apikey").value = localStorage.getItem("rag-api-key") || "";
$("apikey").addEventListener("change", () => {
  localStorage.setItem("rag-api-key", $("apikey").value.trim());
  loadStatus();
});
loadStatus();
