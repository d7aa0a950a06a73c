// The sandbox page: a small Slack client for the people of the sandbox workspace.
//
// It reads what the chosen person sees from /ui/state, redraws when /ui/events says the
// workspace changed, and posts what the person does. Text is never inserted as HTML.

import { renderMrkdwn, emojify } from "./mrkdwn.js";
import { renderBlocks } from "./blocks.js";

const ui = {
  me: "",
  channel: "",
  pane: "channel", // "channel" or "home"
  thread: null, // ts of the open thread
  file: null, // { id, title }
  data: null,
  fetchedAt: 0,
  modalKey: null,
  form: null,
  showPins: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// --- talking to the sandbox ------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ as: ui.me, ...body }),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { data = {}; }
  if (!response.ok || data.ok === false) {
    notice(data.error || `The sandbox answered ${response.status}.`);
    return null;
  }
  return data;
}

let noticeTimer = null;
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

let loading = false;
let again = false;
async function refresh() {
  if (loading) { again = true; return; }
  loading = true;
  try {
    const query = new URLSearchParams({ as: ui.me, channel: ui.channel });
    const response = await fetch(`/ui/state?${query}`);
    if (response.ok) {
      ui.data = await response.json();
      ui.fetchedAt = performance.now();
      render();
    }
  } catch (_) {
    // The sandbox stopped or restarted: the event stream reconnects and asks again.
  } finally {
    loading = false;
    if (again) { again = false; refresh(); }
  }
}

function listen() {
  const events = new EventSource("/ui/events");
  events.onmessage = () => refresh();
  events.onerror = () => { $("connection").hidden = false; };
  events.onopen = () => { $("connection").hidden = true; };
}

// --- context for the renderers ---------------------------------------------------------

function person(id) {
  return (ui.data && ui.data.people.find((p) => p.id === id)) || null;
}

function context(extra) {
  return {
    userName: (id, label) => (person(id) ? person(id).name : (label || id)),
    channelName: (id, label) => {
      const found = ui.data && ui.data.channels.find((c) => c.id === id);
      return found ? found.name : (label || "private-channel");
    },
    groupHandle: (id, label) => {
      const found = ui.data && ui.data.groups.find((g) => g.id === id);
      return found ? found.handle : (label || id).replace(/^@/, "");
    },
    now: sandboxNow,
    openChannel: (id) => {
      if (ui.data && ui.data.channels.some((c) => c.id === id)) openChannel(id);
    },
    people: () => ui.data.people.filter((p) => !p.is_bot)
      .map((p) => ({ id: p.id, label: `${p.name} (${p.real_name})` })),
    channels: () => ui.data.channels.filter((c) => c.kind === "channel" && !c.archived),
    onAction: () => {},
    ...extra,
  };
}

function sandboxNow() {
  if (!ui.data) return Date.now() / 1000;
  const { now, speed } = ui.data.clock;
  return now + ((performance.now() - ui.fetchedAt) / 1000) * speed;
}

// --- choosing who you are and where you are --------------------------------------------

function saveLocation() {
  const hash = new URLSearchParams({ as: ui.me });
  if (ui.pane === "home") hash.set("home", "1");
  else if (ui.channel) hash.set("c", ui.channel);
  history.replaceState(null, "", `#${hash}`);
}

function choose(me) {
  ui.me = me;
  ui.thread = null;
  ui.file = null;
  ui.modalKey = null;
  saveLocation();
  refresh();
}

function openChannel(id) {
  ui.channel = id;
  ui.pane = "channel";
  ui.thread = null;
  ui.file = null;
  ui.showPins = false;
  saveLocation();
  refresh();
}

async function openHome() {
  ui.pane = "home";
  ui.thread = null;
  ui.file = null;
  saveLocation();
  render();
  await post("/ui/home", {});
}

// --- drawing ---------------------------------------------------------------------------

function render() {
  const data = ui.data;
  if (!data) return;
  renderPeople(data);
  if (!person(ui.me) || person(ui.me).is_bot) {
    $("app").classList.add("nobody");
    renderWelcome(data);
    return;
  }
  $("app").classList.remove("nobody");
  if (!ui.channel || !data.channels.some((c) => c.id === ui.channel)) {
    const general = data.channels.find((c) => c.name === "general") || data.channels[0];
    ui.channel = general ? general.id : "";
    if (ui.channel && ui.pane === "channel") { saveLocation(); refresh(); }
  }
  renderSidebar(data);
  if (ui.pane === "home") renderHome(data); else renderChannel(data);
  renderThread(data);
  renderModal(data);
}

function renderPeople(data) {
  const select = $("who");
  const humans = data.people.filter((p) => !p.is_bot);
  const key = humans.map((p) => p.id).join(",");
  if (select.dataset.key !== key) {
    clear(select);
    const none = el("option", "", "Pick who you are…");
    none.value = "";
    select.appendChild(none);
    for (const p of humans) {
      const roles = p.functions.length ? ` — ${p.functions.join(", ")}` : "";
      const option = el("option", "", `${p.name} (${p.real_name})${roles}`);
      option.value = p.id;
      select.appendChild(option);
    }
    select.dataset.key = key;
  }
  select.value = ui.me;
}

function sidebarItem(channel) {
  const item = el("li", "nav-item");
  item.dataset.channelName = channel.name;
  item.dataset.channelId = channel.id;
  if (channel.archived) item.classList.add("archived");
  if (!channel.member && channel.kind === "channel") item.classList.add("not-member");
  if (ui.pane === "channel" && channel.id === ui.channel) item.classList.add("current");
  const icon = channel.kind === "im" ? "● " : channel.private ? "🔒 " : "# ";
  item.appendChild(el("span", "nav-icon", icon));
  item.appendChild(el("span", "nav-name", channel.name));
  if (channel.archived) item.appendChild(el("span", "nav-note", "archived"));
  item.addEventListener("click", () => openChannel(channel.id));
  return item;
}

function renderWelcome(data) {
  const box = $("welcome-people");
  const humans = data.people.filter((p) => !p.is_bot);
  draw(box, humans.map((p) => ({
    key: JSON.stringify(p),
    node: () => {
      const button = el("button", "welcome-person");
      button.type = "button";
      button.dataset.user = p.id;
      button.appendChild(el("span", "welcome-name", `Be ${p.name}`));
      button.appendChild(el("span", "welcome-role", p.functions.join(", ") || p.real_name));
      button.addEventListener("click", () => choose(p.id));
      return button;
    },
  })));
}

function renderSidebar(data) {
  const items = (kinds) => data.channels.filter((c) => kinds.includes(c.kind)).map((channel) => ({
    key: JSON.stringify([channel.id, channel.name, channel.kind, channel.private, channel.archived,
      channel.member, ui.pane === "channel" && channel.id === ui.channel]),
    node: () => sidebarItem(channel),
  }));
  draw($("channels"), items(["channel"]));
  draw($("dms"), items(["im", "mpim"]));
  $("home-link").classList.toggle("current", ui.pane === "home");
}

function authorName(message) {
  const who = person(message.user);
  return who ? (who.is_bot ? who.name : who.name) : message.user;
}

function fileCard(file) {
  const card = el("div", "file");
  card.dataset.fileId = file.id;
  card.appendChild(el("span", "file-icon", "📄"));
  const text = el("span", "file-text");
  text.appendChild(el("span", "file-title", file.title));
  text.appendChild(el("span", "file-meta", `${file.name} · ${file.size} bytes`));
  card.appendChild(text);
  const open = el("button", "file-open", "Open");
  open.type = "button";
  open.addEventListener("click", () => openFile(file));
  card.appendChild(open);
  return card;
}

function clockOf(ts) {
  return new Date(Number(ts) * 1000).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
}

function messageNode(message, channel, options = {}) {
  const node = el("div", "message");
  node.dataset.ts = message.ts;
  const who = person(message.user);
  if (who && who.is_bot) node.classList.add("from-bot");
  const avatar = el("div", "avatar", (authorName(message) || "?").slice(0, 1).toUpperCase());
  node.appendChild(avatar);
  const body = el("div", "message-body");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "author", authorName(message)));
  if (who && who.is_bot) meta.appendChild(el("span", "badge", "APP"));
  const time = el("span", "time", clockOf(message.ts));
  time.title = new Date(Number(message.ts) * 1000).toString();
  meta.appendChild(time);
  if (message.pinned) meta.appendChild(el("span", "pinned", "📌 Pinned"));
  if (message.edited) meta.appendChild(el("span", "edited", "(edited)"));
  if (message.broadcast) meta.appendChild(el("span", "edited", "replied to a thread"));
  body.appendChild(meta);
  const ctx = context({
    onAction: (element, blockId, value, control) => click(
      { kind: "message", channel: channel.id, ts: message.ts }, element, blockId, value, control,
    ),
  });
  const content = el("div", "content");
  if (message.blocks && message.blocks.length) content.appendChild(renderBlocks(message.blocks, ctx));
  else if (message.text) content.appendChild(renderMrkdwn(message.text, ctx));
  body.appendChild(content);
  for (const file of message.files || []) body.appendChild(fileCard(file));
  if (message.reactions && message.reactions.length) {
    const reactions = el("div", "reactions");
    for (const reaction of message.reactions) {
      const chip = el("span", "reaction", `${emojify(`:${reaction.name}:`)} ${reaction.users.length}`);
      chip.title = reaction.users.map((u) => (person(u) ? person(u).name : u)).join(", ");
      chip.dataset.reaction = reaction.name;
      reactions.appendChild(chip);
    }
    body.appendChild(reactions);
  }
  if (!options.inThread && message.reply_count) {
    const replies = el("button", "replies", `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`);
    replies.type = "button";
    replies.addEventListener("click", () => { ui.thread = message.ts; ui.file = null; render(); });
    body.appendChild(replies);
  }
  node.appendChild(body);
  if (!channel.archived) node.appendChild(messageTools(message, channel, options));
  return node;
}

function messageTools(message, channel, options) {
  const tools = el("div", "tools");
  const tool = (label, title, work) => {
    const b = el("button", "tool", label);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", work);
    tools.appendChild(b);
  };
  if (!message.pinned) {
    tool("Pin", "Pin to this conversation", () => post("/ui/pin", { channel: channel.id, ts: message.ts }));
  }
  const mine = (message.reactions || []).some((r) => r.name === "pushpin" && r.users.includes(ui.me));
  if (!mine) {
    tool("📌 React", "React with :pushpin:", () => post("/ui/react", { channel: channel.id, ts: message.ts, name: "pushpin" }));
  }
  if (!options.inThread && channel.kind !== "im") {
    tool("Reply", "Reply in thread", () => { ui.thread = message.ts; ui.file = null; render(); });
  }
  return tools;
}

function ephemeralNode(shown, channel) {
  const node = el("div", "message ephemeral");
  node.dataset.ephemeral = shown.id;
  node.appendChild(el("div", "avatar", "W"));
  const body = el("div", "message-body");
  const meta = el("div", "meta");
  meta.appendChild(el("span", "author", "warroom"));
  meta.appendChild(el("span", "badge", "APP"));
  meta.appendChild(el("span", "time", clockOf(shown.ts)));
  meta.appendChild(el("span", "only-you", "Only visible to you"));
  body.appendChild(meta);
  const ctx = context({
    onAction: (element, blockId, value, control) => click(
      { kind: "ephemeral", id: shown.id }, element, blockId, value, control,
    ),
  });
  const content = el("div", "content");
  if (shown.blocks && shown.blocks.length) content.appendChild(renderBlocks(shown.blocks, ctx));
  else content.appendChild(renderMrkdwn(shown.text, ctx));
  body.appendChild(content);
  node.appendChild(body);
  return node;
}

function timeline(messages, ephemeral, channel, options) {
  const items = [
    ...messages.map((m) => ({ ts: m.ts, data: m, node: () => messageNode(m, channel, options) })),
    ...ephemeral.map((e) => ({ ts: e.ts, data: e, node: () => ephemeralNode(e, channel) })),
  ];
  items.sort((a, b) => Number(a.ts) - Number(b.ts));
  return items.map((item) => ({
    key: JSON.stringify([item.data, channel.id, channel.archived, channel.kind, ui.me, options]),
    node: item.node,
  }));
}

// Draws a list of { key, node() } into a container, keeping the nodes whose key did not change
// (so a click, a hover or a selection survives the redraw that another person's message causes).
const drawn = new WeakMap();
function draw(container, items, empty) {
  const before = drawn.get(container) || new Map();
  const after = new Map();
  const nodes = [];
  for (const item of items) {
    const node = before.get(item.key) || item.node();
    before.delete(item.key);
    after.set(item.key, node);
    nodes.push(node);
  }
  drawn.set(container, after);
  const current = [...container.children];
  if (current.length === nodes.length && current.every((node, i) => node === nodes[i])) return;
  clear(container);
  if (!nodes.length && empty) container.appendChild(el("div", "empty", empty));
  for (const node of nodes) container.appendChild(node);
}

// Redraws a scrolling list: at the bottom it stays there (new messages show), elsewhere it
// stays put; a list showing another conversation than last time starts at the bottom.
function keepScroll(list, what, work) {
  const moved = list.dataset.showing !== what;
  const atBottom = moved || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const top = list.scrollTop;
  work();
  list.dataset.showing = what;
  list.scrollTop = atBottom ? list.scrollHeight : top;
}

function renderChannel(data) {
  $("home").hidden = true;
  $("conversation").hidden = false;
  const open = data.open;
  if (!open) return;
  $("channel-title").textContent = open.kind === "im" ? open.name : `# ${open.name}`;
  $("channel-title").dataset.channelName = open.name;
  $("channel-archived").hidden = !open.archived;
  const topic = $("channel-topic");
  topic.textContent = open.topic || (open.kind === "im" ? "Your direct messages with the app" : "No topic");
  const pins = $("pins-toggle");
  pins.textContent = `📌 ${open.pins.length} pinned`;
  pins.hidden = open.pins.length === 0;
  const pinList = $("pins");
  pinList.hidden = !(ui.showPins && open.pins.length);
  draw(pinList, timeline(open.pins, [], open, { inThread: true, pins: true }));
  const list = $("messages");
  keepScroll(list, `${ui.me}:${open.id}`, () => {
    const top = open.ephemeral.filter((e) => !e.thread_ts);
    draw(list, timeline(open.messages, top, open, {}), "No messages yet.");
  });
  const input = $("composer-input");
  input.disabled = open.archived;
  input.placeholder = open.archived
    ? "This channel has been archived."
    : open.kind === "im"
      ? "Only commands here: try /incident list"
      : open.name === "general"
        ? "Message #general — try /incident declare sev2 Checkout errors"
        : `Message #${open.name} — /incident help lists the commands`;
}

function renderHome(data) {
  $("conversation").hidden = true;
  const home = $("home");
  home.hidden = false;
  const body = $("home-body");
  const view = data.home;
  const key = view ? `${view.id}:${view.hash}` : "none";
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  clear(body);
  if (!view) {
    body.appendChild(el("div", "empty", "Opening the Home tab…"));
    return;
  }
  const ctx = context({
    onAction: (element, blockId, value, control) => click(
      { kind: "view", view_id: view.id }, element, blockId, value, control,
    ),
  });
  body.appendChild(renderBlocks(view.blocks, ctx));
}

function renderThread(data) {
  const pane = $("side");
  const open = data.open;
  if (ui.file) {
    pane.hidden = false;
    $("thread").hidden = true;
    $("file-pane").hidden = false;
    return;
  }
  $("file-pane").hidden = true;
  const parent = open && ui.thread && open.messages.find((m) => m.ts === ui.thread);
  if (!parent || ui.pane !== "channel") {
    pane.hidden = true;
    ui.thread = null;
    return;
  }
  pane.hidden = false;
  $("thread").hidden = false;
  $("thread-title").textContent = `Thread in #${open.name}`;
  const list = $("thread-messages");
  keepScroll(list, `${ui.me}:${open.id}:${parent.ts}`, () => {
    const replies = open.threads[parent.ts] || [];
    const count = `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`;
    const shown = open.ephemeral.filter((e) => e.thread_ts === parent.ts);
    draw(list, [
      ...timeline([parent], [], open, { inThread: true, parent: true }),
      { key: `count:${count}`, node: () => el("div", "thread-count", count) },
      ...timeline(replies, shown, open, { inThread: true }),
    ]);
  });
  $("thread-input").disabled = open.archived;
}

async function openFile(file) {
  ui.file = file;
  ui.thread = null;
  $("file-title").textContent = file.title;
  const text = $("file-text");
  text.textContent = "Loading…";
  const raw = $("file-raw");
  raw.href = `/ui/files/${encodeURIComponent(file.id)}?as=${encodeURIComponent(ui.me)}`;
  render();
  const response = await fetch(raw.href);
  text.textContent = response.ok ? await response.text() : "This file cannot be opened.";
}

// --- modals ----------------------------------------------------------------------------

function renderModal(data) {
  const view = data.modal;
  const backdrop = $("modal-backdrop");
  if (!view) {
    backdrop.hidden = true;
    ui.modalKey = null;
    return;
  }
  const key = `${view.id}:${view.hash}`;
  backdrop.hidden = false;
  if (ui.modalKey === key) return; // keep what the person typed
  ui.modalKey = key;
  const modal = $("modal");
  modal.dataset.viewId = view.id;
  modal.dataset.callbackId = view.callback_id || "";
  $("modal-title").textContent = emojify((view.title && view.title.text) || "");
  $("modal-submit").textContent = (view.submit && view.submit.text) || "Submit";
  $("modal-submit").hidden = !view.submit;
  $("modal-cancel").textContent = (view.close && view.close.text) || "Cancel";
  $("modal-error").textContent = "";
  ui.form = new Map();
  const ctx = context({
    form: ui.form,
    onAction: (element, blockId, value, control) => click(
      { kind: "view", view_id: view.id }, element, blockId, value, control,
    ),
  });
  const body = $("modal-body");
  clear(body);
  body.appendChild(renderBlocks(view.blocks, ctx));

  const first = body.querySelector("input, textarea, select");
  if (first) first.focus();
}

// An error goes away once its field is changed.
function forgetError(event) {
  const input = event.target.closest("[data-block-id]");
  if (!input) return;
  const box = $("modal-body").querySelector(`[data-error-for="${CSS.escape(input.dataset.blockId)}"]`);
  if (box) { box.textContent = ""; box.closest(".bk-input").classList.remove("invalid"); }
}

function showErrors(errors) {
  for (const box of document.querySelectorAll("#modal [data-error-for]")) {
    box.textContent = errors[box.dataset.errorFor] || "";
    box.closest(".bk-input").classList.toggle("invalid", Boolean(errors[box.dataset.errorFor]));
  }
  const unplaced = Object.keys(errors).filter(
    (id) => !document.querySelector(`#modal [data-error-for="${CSS.escape(id)}"]`),
  );
  $("modal-error").textContent = unplaced.map((id) => errors[id]).join(" ");
}

async function submitModal(event) {
  event.preventDefault();
  const modal = $("modal");
  const values = {};
  for (const [blockId, read] of ui.form || []) values[blockId] = read();
  const button = $("modal-submit");
  button.disabled = true;
  try {
    const answer = await post("/ui/submit", { view_id: modal.dataset.viewId, values });
    if (!answer) return;
    if (answer.submitted) {
      $("modal-backdrop").hidden = true;
      ui.modalKey = null;
      refresh();
    } else {
      showErrors(answer.errors || {});
      if (answer.error) $("modal-error").textContent = answer.error;
    }
  } finally {
    button.disabled = false;
  }
}

async function closeModal() {
  const viewId = $("modal").dataset.viewId;
  $("modal-backdrop").hidden = true;
  ui.modalKey = null;
  if (viewId) await post("/ui/close", { view_id: viewId });
}

// --- acting ----------------------------------------------------------------------------

async function click(where, element, blockId, value, control) {
  if (control) control.disabled = true;
  const body = { where, block_id: blockId, action_id: element.action_id };
  if (value !== undefined) body.value = value;
  try {
    await post("/ui/action", body);
  } finally {
    if (control) setTimeout(() => { control.disabled = false; }, 800);
  }
}

async function send(text, threadTs) {
  const trimmed = text.trim();
  if (!trimmed) return true;
  if (trimmed.startsWith("/")) {
    if (threadTs) {
      notice("Slash commands are not supported in threads.");
      return false;
    }
    status(`Sending ${trimmed.split(/\s/)[0]}…`);
    const answer = await post("/ui/command", { channel: ui.channel, text: trimmed });
    status("");
    return answer !== null;
  }
  const body = { channel: ui.channel, text };
  if (threadTs) body.thread_ts = threadTs;
  return (await post("/ui/message", body)) !== null;
}

function status(text) {
  $("composer-status").textContent = text;
}

function composer(form, input, thread) {
  const go = async () => {
    const text = input.value;
    input.value = "";
    const sent = await send(text, thread ? ui.thread : null);
    if (!sent && !input.value) input.value = text;
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); go(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      go();
    }
  });
}

function tickClock() {
  if (ui.data) {
    const now = new Date(sandboxNow() * 1000);
    const speed = ui.data.clock.speed;
    $("clock").textContent = now.toLocaleString([], {
      weekday: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    $("speed").textContent = speed === 1 ? "real time" : `×${speed}`;
  }
}

function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  ui.me = hash.get("as") || "";
  ui.channel = hash.get("c") || "";
  ui.pane = hash.get("home") ? "home" : "channel";
  $("who").addEventListener("change", (event) => choose(event.target.value));
  $("home-link").addEventListener("click", openHome);
  $("pins-toggle").addEventListener("click", () => { ui.showPins = !ui.showPins; render(); });
  $("thread-close").addEventListener("click", () => { ui.thread = null; render(); });
  $("file-close").addEventListener("click", () => { ui.file = null; render(); });
  $("modal").addEventListener("submit", submitModal);
  $("modal-cancel").addEventListener("click", closeModal);
  $("modal-body").addEventListener("input", forgetError);
  $("modal-body").addEventListener("change", forgetError);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("modal-backdrop").hidden) closeModal();
  });
  composer($("composer"), $("composer-input"), false);
  composer($("thread-composer"), $("thread-input"), true);
  setInterval(tickClock, 250);
  listen();
  refresh().then(() => { if (ui.pane === "home" && ui.me) openHome(); });
}

start();
