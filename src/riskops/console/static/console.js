// The little the console needs beyond HTML; every page works without it except the live updates.
"use strict";

// A form or button that asks first: data-confirm="Close the incident?".
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});

// Copy a text: <button data-copy="element-id">.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.getAttribute("data-copy"));
  if (source && navigator.clipboard) navigator.clipboard.writeText(source.innerText);
});

// Score preview: a form with data-score-table (the id of a JSON block: "likelihood,impact" -> score, level, colours)
// shows the score and level of the chosen ratings in the element named by data-score-output.
function preview(form) {
  const table = JSON.parse(document.getElementById(form.dataset.scoreTable).textContent);
  for (const output of form.querySelectorAll("[data-score-output]")) {
    const prefix = output.dataset.scoreOutput;
    const likelihood = form.elements[prefix + "likelihood"];
    const impact = form.elements[prefix + "impact"];
    const cell = likelihood && impact ? table[likelihood.value + "," + impact.value] : undefined;
    if (!cell) { output.textContent = output.dataset.none || ""; continue; }
    output.textContent = "";
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.style.background = cell.color;
    badge.style.color = cell.text;
    badge.textContent = cell.level;
    output.append(cell.score + " ", badge);
  }
}
for (const form of document.querySelectorAll("form[data-score-table]")) {
  form.addEventListener("change", () => preview(form));
  preview(form);
}

// A treatment offered by the type of risk: <select data-treatment-for="f-type"> holds an <optgroup data-group> per
// type ("either" for both); only the chosen type's groups stay open. A choice the type cannot take becomes the blank
// one where offered, else the type's usual treatment (data-defaults). Without the script the API names a wrong pair.
for (const select of document.querySelectorAll("select[data-treatment-for]")) {
  const type = document.getElementById(select.dataset.treatmentFor);
  if (!type) continue;
  const defaults = JSON.parse(select.dataset.defaults || "{}");
  const offer = () => {
    for (const group of select.querySelectorAll("optgroup[data-group]")) {
      const fits = group.dataset.group === "either" || group.dataset.group === type.value;
      group.disabled = !fits;
      group.hidden = !fits;
    }
    const chosen = select.selectedOptions[0];
    if (chosen && chosen.parentElement.disabled) {
      select.value = select.querySelector('option[value=""]') ? "" : defaults[type.value] || "";
    }
  };
  type.addEventListener("change", offer);
  offer();
}

// Live parts: <div data-live="/console/...fragment" data-live-every="3"> is replaced by the fragment's HTML when it
// changes (the fragment's ETag tells), so everyone in an incident room sees the same timeline without a reload.
for (const part of document.querySelectorAll("[data-live]")) {
  let tag = null;
  const every = 1000 * Number(part.dataset.liveEvery || 3);
  const refresh = async () => {
    try {
      const answer = await fetch(part.dataset.live, {
        headers: tag ? { "If-None-Match": tag } : {}, credentials: "same-origin", cache: "no-store",
      });
      if (answer.status === 200) {
        tag = answer.headers.get("ETag");
        const html = await answer.text();
        const typing = part.contains(document.activeElement) && document.activeElement.matches("input, textarea, select");
        if (part.innerHTML !== html && !typing) part.innerHTML = html;
        else if (typing) tag = null; // not shown yet: fetch it again next round
      }
    } catch (error) {
      // offline for a moment: the next round tries again
    }
    window.setTimeout(refresh, every);
  };
  window.setTimeout(refresh, every);
}
