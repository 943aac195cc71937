// The "Show code" dialog: tabs for curl, Python and JavaScript, rendered from the current form.

import { $ } from "./dom.js";
import { readInput } from "./form.js";
import { SNIPPETS } from "./snippets.js";

let codeLang = "curl";

function renderCode() {
  $("code").textContent = SNIPPETS[codeLang](readInput(), window.location);
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.lang === codeLang;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) $("code-panel").setAttribute("aria-labelledby", tab.id);
  }
  $("copy-status").textContent = "";
}

function onTabKey(event) {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const index = tabs.indexOf(event.currentTarget);
  const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -index, End: tabs.length - 1 - index };
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = tabs[(index + moves[event.key] + tabs.length) % tabs.length];
  codeLang = next.dataset.lang;
  renderCode();
  next.focus();
}

async function onCopy() {
  const text = $("code").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copy-status").textContent = "Copied.";
  } catch {
    // No clipboard access (e.g. plain HTTP on another host): select the text for a manual copy.
    window.getSelection().selectAllChildren($("code"));
    $("copy-status").textContent = "Press Ctrl+C (⌘C) to copy the selected code.";
  }
}

export function initCodeDialog() {
  $("show-code").addEventListener("click", () => {
    renderCode();
    $("code-dialog").showModal();
  });
  $("close-code").addEventListener("click", () => $("code-dialog").close());
  for (const tab of document.querySelectorAll('[role="tab"]')) {
    tab.addEventListener("click", () => {
      codeLang = tab.dataset.lang;
      renderCode();
    });
    tab.addEventListener("keydown", onTabKey);
  }
  $("copy-code").addEventListener("click", onCopy);
}
