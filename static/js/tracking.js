// Experiment tracking pages: run selection for the compare page, autosubmitting choice forms,
// the "only differences" switch. No inline scripts (CSP script-src 'self').
(function () {
  "use strict";

  // --- Runs table: tick 2–10 runs, then Compare ------------------------------------------------
  function compareForm() {
    return document.querySelector("[data-compare-form]");
  }
  function choices() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-compare-choice]"));
  }
  function updateCompare() {
    var form = compareForm();
    if (!form) return;
    var max = parseInt(form.getAttribute("data-compare-max"), 10) || 10;
    var ticked = choices().filter(function (box) { return box.checked; }).length;
    var button = form.querySelector("[data-compare-button]");
    var count = form.querySelector("[data-compare-count]");
    var hint = form.querySelector("[data-compare-hint]");
    if (count) count.textContent = String(ticked);
    if (button) button.disabled = ticked < 2 || ticked > max;
    if (hint) {
      hint.textContent = ticked > max
        ? "At most " + max + " runs can be compared; untick " + (ticked - max) + "."
        : "Tick 2 to " + max + " runs to compare them.";
      hint.classList.toggle("text-danger", ticked > max);
    }
    var all = document.querySelector("[data-select-all]");
    if (all) {
      var boxes = choices();
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      choices().forEach(function (box) { box.checked = target.checked; });
      updateCompare();
    } else if (target.matches && target.matches("[data-compare-choice]")) {
      updateCompare();
    }
  });
  document.addEventListener("DOMContentLoaded", updateCompare);
  document.addEventListener("htmx:afterSwap", updateCompare);

  // --- Forms that apply as soon as a choice changes: <form data-autosubmit> ---------------------
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (!form || !form.hasAttribute("data-autosubmit")) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  // --- Compare page: show only the params that differ ------------------------------------------
  function applyDiffToggle(toggle) {
    var table = document.querySelector(toggle.getAttribute("data-diff-toggle"));
    if (!table) return;
    table.querySelectorAll("tr[data-same]").forEach(function (row) {
      row.classList.toggle("d-none", toggle.checked);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-diff-toggle]")) applyDiffToggle(event.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-diff-toggle]").forEach(applyDiffToggle);
  });
})();
