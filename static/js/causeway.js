// Causeway's small behaviours. No inline scripts anywhere (CSP script-src 'self').
(function () {
  "use strict";

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx requests carry the CSRF token like forms do.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  // Light/dark toggle, remembered per browser.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    var root = document.documentElement;
    var next = root.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
    root.setAttribute("data-bs-theme", next);
    try { localStorage.setItem("causeway-theme", next); } catch (e) { /* private mode */ }
  });

  // Copy buttons: data-copy-target="#element-id".
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Forms that ask before doing something that cannot be undone.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });

  // Plotly figures built in Python: <script type="application/json" id="fig-x">{data, layout}</script>
  // with <div data-plotly-src="fig-x">, or the JSON inline in data-plotly="...".
  function drawFigures(root) {
    if (typeof window.Plotly === "undefined") return;
    root.querySelectorAll("[data-plotly], [data-plotly-src]").forEach(function (el) {
      var raw = el.getAttribute("data-plotly");
      if (!raw) {
        var src = document.getElementById(el.getAttribute("data-plotly-src"));
        raw = src ? src.textContent : null;
      }
      if (!raw) return;
      try {
        var figure = JSON.parse(raw);
        window.Plotly.react(el, figure.data || [], figure.layout || {}, { responsive: true, displaylogo: false });
      } catch (e) {
        el.textContent = "This chart could not be drawn.";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawFigures(event.detail.target); });
})();
