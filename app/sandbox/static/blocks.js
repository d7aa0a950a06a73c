// Block Kit as DOM nodes: messages, the Home tab and modals.
//
// The lists below are what this renderer draws; anything else shows as "Unsupported …" (and a
// test checks that every block and element the bot sends is in them).

import { renderMrkdwn, renderPlain, renderTextObject, emojify } from "./mrkdwn.js";

export const BLOCK_TYPES = ["actions", "context", "divider", "header", "image", "input", "rich_text", "section"];
export const ELEMENT_TYPES = ["button", "channels_select", "checkboxes", "conversations_select", "datepicker", "datetimepicker", "email_text_input", "image", "multi_channels_select", "multi_conversations_select", "multi_static_select", "multi_users_select", "number_input", "overflow", "plain_text_input", "radio_buttons", "static_select", "timepicker", "url_text_input", "users_select"];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function unsupported(what, type) {
  const node = el("div", "unsupported", `Unsupported ${what}: ${String(type)}`);
  node.dataset.unsupported = String(type);
  return node;
}

function optionsOf(element) {
  const options = [...(element.options || [])];
  for (const group of element.option_groups || []) options.push(...(group.options || []));
  return options;
}

// Choices offered by a select: its options, or the workspace's people or channels.
function choices(element, ctx) {
  const kind = element.type.replace(/^multi_/, "");
  if (kind === "users_select") {
    return ctx.people().map((p) => ({ value: p.id, label: p.label }));
  }
  if (kind === "conversations_select" || kind === "channels_select") {
    return ctx.channels().map((c) => ({ value: c.id, label: `#${c.name}` }));
  }
  return optionsOf(element).map((o) => ({ value: String(o.value), label: emojify(String((o.text && o.text.text) || o.value)) }));
}

function initialValues(element) {
  const single = element.initial_user || element.initial_conversation || element.initial_channel
    || (element.initial_option && element.initial_option.value);
  if (single) return [String(single)];
  const many = element.initial_users || element.initial_conversations || element.initial_channels
    || (element.initial_options || []).map((o) => o.value);
  return (many || []).map(String);
}

function selectElement(element, ctx) {
  const multiple = element.type.startsWith("multi_");
  const select = el("select", "bk-select");
  select.multiple = multiple;
  const initial = initialValues(element);
  if (!multiple) {
    const none = el("option", "", (element.placeholder && element.placeholder.text) || "Choose…");
    none.value = "";
    select.appendChild(none);
  }
  for (const choice of choices(element, ctx)) {
    const option = el("option", "", choice.label);
    option.value = choice.value;
    option.selected = initial.includes(choice.value);
    select.appendChild(option);
  }
  const read = () => (multiple
    ? [...select.selectedOptions].map((o) => o.value)
    : (select.value || null));
  return { node: select, read };
}

function choiceList(element, ctx) {
  const radio = element.type === "radio_buttons";
  const box = el("div", "bk-choices");
  const name = `c${Math.random().toString(36).slice(2)}`;
  const initial = initialValues(element);
  const inputs = [];
  for (const option of optionsOf(element)) {
    const label = el("label", "bk-choice");
    const input = el("input");
    input.type = radio ? "radio" : "checkbox";
    input.name = name;
    input.value = String(option.value);
    input.checked = initial.includes(input.value);
    label.appendChild(input);
    const text = el("span", "bk-choice-text");
    text.appendChild(renderTextObject(option.text, ctx));
    label.appendChild(text);
    if (option.description) {
      const description = el("span", "bk-choice-description");
      description.appendChild(renderTextObject(option.description, ctx));
      label.appendChild(description);
    }
    inputs.push(input);
    box.appendChild(label);
  }
  const read = () => {
    const chosen = inputs.filter((i) => i.checked).map((i) => i.value);
    return radio ? (chosen[0] || null) : chosen;
  };
  return { node: box, read };
}

function pad(n) { return String(n).padStart(2, "0"); }

function localDateTime(epoch) {
  const d = new Date(epoch * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function textInput(element) {
  const kinds = { email_text_input: "email", url_text_input: "url", number_input: "number" };
  const multiline = element.type === "plain_text_input" && element.multiline;
  const input = el(multiline ? "textarea" : "input", "bk-text");
  if (!multiline) input.type = kinds[element.type] || "text";
  if (multiline) input.rows = 4;
  if (element.max_length) input.maxLength = element.max_length;
  if (element.placeholder) input.placeholder = element.placeholder.text || "";
  if (element.initial_value !== undefined) input.value = String(element.initial_value);
  if (element.type === "number_input" && !element.is_decimal_allowed) input.step = "1";
  return { node: input, read: () => (input.value === "" ? null : input.value) };
}

function picker(element) {
  const input = el("input", "bk-picker");
  if (element.type === "datepicker") {
    input.type = "date";
    if (element.initial_date) input.value = element.initial_date;
    return { node: input, read: () => input.value || null };
  }
  if (element.type === "timepicker") {
    input.type = "time";
    if (element.initial_time) input.value = element.initial_time;
    return { node: input, read: () => input.value || null };
  }
  input.type = "datetime-local";
  if (element.initial_date_time) input.value = localDateTime(element.initial_date_time);
  // The page's local time, as Slack's picker shows it; sent as seconds since 1970.
  return {
    node: input,
    read: () => (input.value ? String(Math.floor(new Date(input.value).getTime() / 1000)) : null),
  };
}

// An element that takes input: its node and how to read what the person chose.
export function inputElement(element, ctx) {
  const type = element.type;
  if (["plain_text_input", "email_text_input", "url_text_input", "number_input"].includes(type)) {
    return textInput(element);
  }
  if (/select$/.test(type)) return selectElement(element, ctx);
  if (type === "checkboxes" || type === "radio_buttons") return choiceList(element, ctx);
  if (["datepicker", "timepicker", "datetimepicker"].includes(type)) return picker(element);
  return null;
}

function button(element, blockId, ctx) {
  const node = el("button", `bk-button ${element.style || "default"}`);
  node.type = "button";
  node.appendChild(renderPlain(element.text));
  node.dataset.actionId = element.action_id || "";
  if (element.url) {
    node.addEventListener("click", () => {
      const link = el("a");
      try {
        const url = new URL(element.url);
        if (url.protocol !== "http:" && url.protocol !== "https:") return;
        link.href = url.href;
      } catch (_) {
        return;
      }
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.click();
    });
  }
  if (element.action_id) {
    node.addEventListener("click", () => ctx.onAction(element, blockId, undefined, node));
  }
  return node;
}

// An interactive element in a message, the Home tab or a modal (not an input block).
function actionElement(element, blockId, ctx) {
  if (!element || !ELEMENT_TYPES.includes(element.type)) {
    return unsupported("element", element && element.type);
  }
  if (element.type === "button") return button(element, blockId, ctx);
  if (element.type === "image") return image(element);
  if (element.type === "overflow") {
    const { node } = selectElement({ ...element, type: "static_select", placeholder: { text: "⋯" } }, ctx);
    node.addEventListener("change", () => node.value && ctx.onAction(element, blockId, node.value, node));
    return node;
  }
  const made = inputElement(element, ctx);
  if (!made) return unsupported("element", element.type);
  const fire = () => ctx.onAction(element, blockId, made.read(), made.node);
  made.node.addEventListener("change", fire);
  return made.node;
}

function image(element) {
  // Pictures from elsewhere are not loaded (nothing leaves this machine): their text and link.
  const node = el("span", "bk-image", `🖼 ${element.alt_text || "image"}`);
  return node;
}

function section(block, ctx) {
  const node = el("div", "bk-section");
  const main = el("div", "bk-section-main");
  if (block.text) main.appendChild(renderTextObject(block.text, ctx));
  if (block.fields && block.fields.length) {
    const fields = el("div", "bk-fields");
    for (const field of block.fields) {
      const cell = el("div", "bk-field");
      cell.appendChild(renderTextObject(field, ctx));
      fields.appendChild(cell);
    }
    main.appendChild(fields);
  }
  node.appendChild(main);
  if (block.accessory) {
    const side = el("div", "bk-accessory");
    side.appendChild(actionElement(block.accessory, block.block_id || "", ctx));
    node.appendChild(side);
  }
  return node;
}

function context(block, ctx) {
  const node = el("div", "bk-context");
  for (const element of block.elements || []) {
    if (element.type === "mrkdwn" || element.type === "plain_text") {
      const part = el("span", "bk-context-part");
      part.appendChild(renderTextObject(element, ctx));
      node.appendChild(part);
    } else if (element.type === "image") {
      node.appendChild(image(element));
    } else {
      node.appendChild(unsupported("element", element.type));
    }
  }
  return node;
}

function actions(block, ctx) {
  const node = el("div", "bk-actions");
  for (const element of block.elements || []) {
    node.appendChild(actionElement(element, block.block_id || "", ctx));
  }
  return node;
}

function richText(block, ctx) {
  // The few rich_text parts a bot is likely to send, shown as mrkdwn-like text.
  const node = el("div", "bk-rich-text");
  const inline = (parts, parent) => {
    for (const part of parts || []) {
      let piece;
      if (part.type === "text") piece = el("span", "", part.text || "");
      else if (part.type === "link") {
        piece = renderMrkdwn(`<${String(part.url || "").replace(/[<>|]/g, "")}|${(part.text || part.url || "").replace(/[<>]/g, "")}>`, ctx);
      } else if (part.type === "user") piece = renderMrkdwn(`<@${part.user_id}>`, ctx);
      else if (part.type === "channel") piece = renderMrkdwn(`<#${part.channel_id}>`, ctx);
      else if (part.type === "emoji") piece = el("span", "", emojify(`:${part.name}:`));
      else piece = el("span", "", "");
      const style = part.style || {};
      if (style.bold) piece.classList.add("bold");
      if (style.italic) piece.classList.add("italic");
      if (style.strike) piece.classList.add("strike");
      if (style.code) piece.classList.add("inline-code");
      parent.appendChild(piece);
    }
  };
  for (const element of block.elements || []) {
    if (element.type === "rich_text_section") {
      const p = el("div"); inline(element.elements, p); node.appendChild(p);
    } else if (element.type === "rich_text_quote") {
      const q = el("blockquote", "quote"); inline(element.elements, q); node.appendChild(q);
    } else if (element.type === "rich_text_preformatted") {
      const pre = el("pre", "code-block"); inline(element.elements, pre); node.appendChild(pre);
    } else if (element.type === "rich_text_list") {
      const list = el(element.style === "ordered" ? "ol" : "ul", "list");
      for (const item of element.elements || []) {
        const li = el("li"); inline(item.elements, li); list.appendChild(li);
      }
      node.appendChild(list);
    } else {
      node.appendChild(unsupported("rich text part", element.type));
    }
  }
  return node;
}

// An input block of a modal; registers how to read its value in ctx.form.
function input(block, ctx) {
  const node = el("div", "bk-input");
  const blockId = block.block_id || "";
  node.dataset.blockId = blockId;
  const label = el("label", "bk-label");
  label.appendChild(renderPlain(block.label));
  if (block.optional) label.appendChild(el("span", "bk-optional", " (optional)"));
  node.appendChild(label);
  const made = block.element && ELEMENT_TYPES.includes(block.element.type)
    ? inputElement(block.element, ctx) : null;
  if (!made) {
    node.appendChild(unsupported("element", block.element && block.element.type));
    return node;
  }
  made.node.dataset.blockId = blockId;
  made.node.classList.add("bk-field-input");
  node.appendChild(made.node);
  if (block.hint) node.appendChild(el("div", "bk-hint", block.hint.text || ""));
  const error = el("div", "bk-error");
  error.dataset.errorFor = blockId;
  node.appendChild(error);
  if (ctx.form) ctx.form.set(blockId, made.read);
  return node;
}

export function renderBlock(block, ctx) {
  const type = block && block.type;
  if (!BLOCK_TYPES.includes(type)) return unsupported("block", type);
  switch (type) {
    case "header": {
      const node = el("div", "bk-header");
      node.appendChild(renderPlain(block.text));
      return node;
    }
    case "section": return section(block, ctx);
    case "context": return context(block, ctx);
    case "divider": return el("hr", "bk-divider");
    case "actions": return actions(block, ctx);
    case "image": {
      const node = el("div", "bk-image-block");
      if (block.title) node.appendChild(el("div", "bk-image-title", block.title.text || ""));
      node.appendChild(image(block));
      return node;
    }
    case "rich_text": return richText(block, ctx);
    case "input": return input(block, ctx);
    default: return unsupported("block", type);
  }
}

export function renderBlocks(blocks, ctx) {
  const out = el("div", "blocks");
  for (const block of blocks || []) out.appendChild(renderBlock(block, ctx));
  return out;
}
