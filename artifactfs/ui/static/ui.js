// artifactfs ui: comfort only. Every page works without this script (links and forms do the
// work); it adds copy buttons, zoom on an image, live filtering of listed rows, arrow keys
// for previous/next. Served from this origin; the page's policy allows no other script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "copied";
      } catch (e) {
        const range = document.createRange();  // no clipboard access: select it instead
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "selected: Ctrl-C";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    });
  }
  for (const button of document.querySelectorAll("button[data-zoom]")) {
    const img = document.querySelector(button.dataset.zoom);
    if (!img) continue;
    const toggle = () => {
      const zoomed = img.classList.toggle("zoomed");
      img.parentElement.classList.toggle("zoomed", zoomed);
      button.textContent = zoomed ? "fit" : "zoom";
    };
    button.addEventListener("click", toggle);
    img.addEventListener("click", toggle);
  }
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const rows = () => document.querySelectorAll(input.dataset.filter);
    input.addEventListener("input", () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      for (const row of rows()) {
        const text = (row.dataset.text || row.textContent).toLowerCase();
        row.hidden = !words.every((w) => text.includes(w));
      }
    });
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, textarea, select") || event.altKey || event.ctrlKey || event.metaKey) return;
    const link = event.key === "ArrowLeft" ? document.getElementById("prev-image")
      : event.key === "ArrowRight" ? document.getElementById("next-image") : null;
    if (link) link.click();
  });
});
