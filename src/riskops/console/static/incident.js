// The incident room: when console.js replaces the live part with news, what this reader opened (instructions, a
// message's text, a skip form) stays open and what they typed and have not sent yet stays typed.
"use strict";

for (const part of document.querySelectorAll("[data-live]")) {
  const opened = new Set();
  const typing = new Map();
  part.addEventListener("toggle", (event) => {
    const details = event.target;
    if (!details.id) return;
    if (details.open) opened.add(details.id);
    else opened.delete(details.id);
  }, true);
  part.addEventListener("input", (event) => {
    if (event.target.id) typing.set(event.target.id, event.target.value);
  });
  new MutationObserver(() => {
    for (const id of opened) {
      const details = document.getElementById(id);
      if (details && !details.open) details.open = true;
    }
    for (const [id, value] of typing) {
      const field = document.getElementById(id);
      if (field && !field.value) field.value = value;
    }
  }).observe(part, { childList: true });
}
