// Slack mrkdwn as DOM nodes.
//
// Nothing here parses HTML: every character of a message ends up in a text node (or in an
// attribute set through the DOM: a link's href, only for http, https and mailto). Slack's three
// escapes (&amp; &lt; &gt;) are shown as the characters they stand for.

const PLACEHOLDER = /[\uE000-\uF8FF]/g;
const FIRST_PLACEHOLDER = 0xe000;

export const EMOJI = {
  alarm_clock: "⏰", bell: "🔔", bulb: "💡", bust_in_silhouette: "👤", calendar: "📆",
  clipboard: "📋", clock1: "🕐", construction: "🚧", eyes: "👀", fire: "🔥",
  heavy_check_mark: "✔️", hourglass: "⌛", hourglass_flowing_sand: "⏳", information_source: "ℹ️",
  large_blue_circle: "🔵", large_green_circle: "🟢", large_orange_circle: "🟠",
  large_yellow_circle: "🟡", link: "🔗", lock: "🔒", mag: "🔍", memo: "📝", no_entry: "⛔",
  no_entry_sign: "🚫", page_facing_up: "📄", pager: "📟", pushpin: "📌", red_circle: "🔴",
  rotating_light: "🚨", spiral_note_pad: "🗒️", sunny: "☀️", tada: "🎉", thumbsup: "👍",
  "+1": "👍", warning: "⚠️", white_check_mark: "✅", white_circle: "⚪", white_square: "⬜",
  x: "❌", zap: "⚡", speech_balloon: "💬", arrow_up: "⬆️", arrow_down: "⬇️",
  busts_in_silhouette: "👥", chart_with_upwards_trend: "📈", hammer_and_wrench: "🛠️",
  raising_hand: "🙋", wave: "👋", question: "❓", exclamation: "❗", sparkles: "✨",
};

export function emojify(text) {
  return text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

export function decodeEntities(text) {
  return text.replace(/&(lt|gt|amp);/g, (_, name) => ({ lt: "<", gt: ">", amp: "&" })[name]);
}

// Shown text: entities decoded, emoji shortcodes turned into emoji.
function textNode(text) {
  return document.createTextNode(emojify(decodeEntities(text)));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- dates -----------------------------------------------------------------------------

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

function ordinal(n) {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return n + ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth()
    && a.getDate() === b.getDate();
}

function pretty(date, now, fallback) {
  const yesterday = new Date(now); yesterday.setDate(now.getDate() - 1);
  const tomorrow = new Date(now); tomorrow.setDate(now.getDate() + 1);
  if (sameDay(date, now)) return "Today";
  if (sameDay(date, yesterday)) return "Yesterday";
  if (sameDay(date, tomorrow)) return "Tomorrow";
  return fallback;
}

function clockTime(date, seconds) {
  const options = { hour: "numeric", minute: "2-digit" };
  if (seconds) options.second = "2-digit";
  return date.toLocaleTimeString([], options);
}

function ago(date, now) {
  const seconds = Math.round((now - date) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let amount; let unit;
  if (s < 60) return future ? "in a few seconds" : "a few seconds ago";
  if (s < 3600) { amount = Math.round(s / 60); unit = "minute"; }
  else if (s < 86400) { amount = Math.round(s / 3600); unit = "hour"; }
  else { amount = Math.round(s / 86400); unit = "day"; }
  const words = `${amount} ${unit}${amount === 1 ? "" : "s"}`;
  return future ? `in ${words}` : `${words} ago`;
}

// `<!date^1700000000^{date_short_pretty} at {time}|fallback>`, in the reader's time zone.
export function formatDate(epoch, format, now) {
  const date = new Date(epoch * 1000);
  const long = `${MONTHS[date.getMonth()]} ${ordinal(date.getDate())}, ${date.getFullYear()}`;
  const short = `${MONTHS[date.getMonth()].slice(0, 3)} ${date.getDate()}, ${date.getFullYear()}`;
  const full = `${DAYS[date.getDay()]}, ${long}`;
  const pad = (n) => String(n).padStart(2, "0");
  const values = {
    date_num: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`,
    date: long,
    date_short: short,
    date_long: full,
    date_pretty: pretty(date, now, long),
    date_short_pretty: pretty(date, now, short),
    date_long_pretty: pretty(date, now, full),
    time: clockTime(date, false),
    time_secs: clockTime(date, true),
    ago: ago(date, now),
  };
  return format.replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? values[name] : whole));
}

// --- tokens: <@U…>, <#C…>, <!…>, <url|label> ------------------------------------------

function safeHref(url) {
  try {
    const parsed = new URL(url);
    return ["http:", "https:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

function renderToken(body, ctx) {
  const bar = body.indexOf("|");
  const target = bar === -1 ? body : body.slice(0, bar);
  const label = bar === -1 ? null : body.slice(bar + 1);
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const span = el("span", "mention", `@${ctx.userName(id, label)}`);
    span.dataset.user = id;
    return span;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    const span = el("span", "channel-ref", `#${ctx.channelName(id, label)}`);
    span.dataset.channel = id;
    span.addEventListener("click", () => ctx.openChannel && ctx.openChannel(id));
    return span;
  }
  if (target.startsWith("!")) return renderSpecial(target.slice(1), label, ctx);
  const href = safeHref(decodeEntities(target));
  const shown = decodeEntities(label !== null ? label : target);
  if (!href) return el("span", "link-text", shown);
  const link = el("a", "link", shown);
  link.href = href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  return link;
}

function renderSpecial(command, label, ctx) {
  const parts = command.split("^");
  if (parts[0] === "date" && parts.length >= 3 && /^\d{1,12}$/.test(parts[1])) {
    const epoch = Number(parts[1]);
    const span = el("time", "date", formatDate(epoch, parts[2], new Date(ctx.now() * 1000)));
    span.dateTime = new Date(epoch * 1000).toISOString();
    span.title = new Date(epoch * 1000).toString();
    return span;
  }
  if (parts[0] === "subteam" && parts[1]) {
    return el("span", "mention", `@${ctx.groupHandle(parts[1], label)}`);
  }
  if (["here", "channel", "everyone"].includes(parts[0])) {
    return el("span", "mention broadcast", `@${parts[0]}`);
  }
  return el("span", "", decodeEntities(label !== null ? label : command));
}

// --- inline: code, tokens, *bold*, _italic_, ~strike~ -----------------------------------

const EMPHASIS = [
  { mark: "*", tag: "strong" },
  { mark: "_", tag: "em" },
  { mark: "~", tag: "s" },
];

function emphasisPattern(mark) {
  const m = mark === "*" ? "\\*" : mark;
  // Opening mark at the start or after a non-word character and before a non-space; the
  // closing one is the first after a non-space and before a non-word character.
  return new RegExp(`(^|[^\\p{L}\\p{N}${m}])${m}(?=\\S)(.*?\\S)${m}(?=$|[^\\p{L}\\p{N}])`, "u");
}

const PATTERNS = EMPHASIS.map((e) => ({ ...e, re: emphasisPattern(e.mark) }));

function emitText(text, atoms, ctx, parent) {
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    if (match.index > last) parent.appendChild(textNode(text.slice(last, match.index)));
    const atom = atoms[match[0].charCodeAt(0) - FIRST_PLACEHOLDER];
    if (atom) parent.appendChild(atom.kind === "code"
      ? el("code", "inline-code", decodeEntities(atom.body))
      : renderToken(atom.body, ctx));
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.appendChild(textNode(text.slice(last)));
}

function emphasize(text, atoms, ctx, parent) {
  let best = null;
  for (const pattern of PATTERNS) {
    const match = pattern.re.exec(text);
    if (match && (best === null || match.index < best.match.index)) best = { pattern, match };
  }
  if (best === null) {
    emitText(text, atoms, ctx, parent);
    return;
  }
  const { pattern, match } = best;
  const start = match.index + match[1].length;
  emitText(text.slice(0, start), atoms, ctx, parent);
  const inner = el(pattern.tag);
  emphasize(match[2], atoms, ctx, inner);
  parent.appendChild(inner);
  emphasize(text.slice(start + match[2].length + 2), atoms, ctx, parent);
}

export function renderInline(text, ctx, parent) {
  const atoms = [];
  const clean = text.replace(PLACEHOLDER, "\uFFFD");
  const marked = clean.replace(/`([^`\n]+)`|<([^<>\n]+)>/g, (whole, code, token) => {
    if (atoms.length >= 0x18ff) return whole;
    atoms.push(code !== undefined ? { kind: "code", body: code } : { kind: "token", body: token });
    return String.fromCharCode(FIRST_PLACEHOLDER + atoms.length - 1);
  });
  emphasize(marked, atoms, ctx, parent);
}

// --- blocks: code fences, quotes, lists, lines -----------------------------------------

const BULLET = /^\s*([•◦▪‣*-])\s+(.*)$/;
const NUMBERED = /^\s*(\d{1,3})[.)]\s+(.*)$/;

function renderLines(text, ctx, parent) {
  const lines = text.split("\n");
  let i = 0;
  let first = true;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith(">")) {
      const quote = el("blockquote", "quote");
      const quoted = [];
      while (i < lines.length && lines[i].startsWith(">")) {
        quoted.push(lines[i].replace(/^>\s?/, ""));
        i += 1;
      }
      renderLines(quoted.join("\n"), ctx, quote);
      parent.appendChild(quote);
      first = true;
      continue;
    }
    const bullet = BULLET.exec(line);
    const numbered = NUMBERED.exec(line);
    if (bullet || numbered) {
      const list = el(bullet ? "ul" : "ol", "list");
      if (numbered) list.start = Number(numbered[1]);
      const pattern = bullet ? BULLET : NUMBERED;
      let item;
      while (i < lines.length && (item = pattern.exec(lines[i]))) {
        const li = el("li");
        renderInline(item[2], ctx, li);
        list.appendChild(li);
        i += 1;
      }
      parent.appendChild(list);
      first = true;
      continue;
    }
    if (!first) parent.appendChild(el("br"));
    renderInline(line, ctx, parent);
    first = false;
    i += 1;
  }
}

export function renderMrkdwn(text, ctx) {
  const out = el("div", "mrkdwn");
  const source = String(text || "");
  let last = 0;
  for (const match of source.matchAll(/```([\s\S]*?)```/g)) {
    if (match.index > last) renderLines(source.slice(last, match.index).replace(/\n$/, ""), ctx, out);
    out.appendChild(el("pre", "code-block", decodeEntities(match[1].replace(/^\n/, ""))));
    last = match.index + match[0].length;
  }
  if (last < source.length) renderLines(source.slice(last).replace(/^\n/, ""), ctx, out);
  return out;
}

// plain_text objects are shown as written (emoji shortcodes turned into emoji when asked).
export function renderPlain(textObject) {
  const text = String((textObject && textObject.text) || "");
  return document.createTextNode(textObject && textObject.emoji === false ? text : emojify(text));
}

export function renderTextObject(textObject, ctx) {
  if (!textObject) return document.createTextNode("");
  if (textObject.type === "mrkdwn") return renderMrkdwn(textObject.text, ctx);
  return renderPlain(textObject);
}
