// Causeway's small behaviours. No inline scripts anywhere (CSP script-src 'self').
(function () {
  "use strict";

  var THEME_KEY = "causeway-theme";
  var root = document.documentElement;

  // --- Colour mode --------------------------------------------------------------------------
  // theme-init.js (in <head>) already set data-bs-theme before the first paint; this repeats it
  // so pages that do not load theme-init.js behave the same, and follows the system setting
  // while the user has not picked one.
  function storedTheme() {
    try { return localStorage.getItem(THEME_KEY); } catch (e) { return null; } // private mode
  }
  function systemTheme() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function applyTheme(theme) {
    root.setAttribute("data-bs-theme", theme);
    document.querySelectorAll("[data-theme-toggle]").forEach(function (el) {
      el.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
    });
    restyleFigures();
  }
  applyTheme(storedTheme() || systemTheme());
  if (window.matchMedia) {
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    var onSystemChange = function () { if (!storedTheme()) applyTheme(systemTheme()); };
    if (query.addEventListener) query.addEventListener("change", onSystemChange);
  }
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (!toggle) return;
    var next = root.getAttribute("data-bs-theme") === "dark" ? "light" : "dark";
    try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode */ }
    applyTheme(next);
  });

  // --- htmx: requests carry the CSRF token like forms do ---------------------------------------
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) event.detail.headers["X-CSRFToken"] = token;
  });

  // --- Copy buttons: data-copy-target="#element-id" -------------------------------------------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-HTTP fallback: the Clipboard API only exists in secure contexts.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) resolve(); else reject(new Error("copy failed"));
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) return;
    var text = (/^(INPUT|TEXTAREA)$/.test(source.tagName) ? source.value : source.textContent).trim();
    copyText(text).then(function () {
      if (!button.hasAttribute("data-copy-label")) button.setAttribute("data-copy-label", button.textContent);
      button.textContent = "Copied";
      clearTimeout(button._copyTimer);
      button._copyTimer = setTimeout(function () {
        button.textContent = button.getAttribute("data-copy-label");
      }, 1500);
    }).catch(function () { /* leave the text selectable for a manual copy */ });
  });

  // --- Forms that ask before doing something that cannot be undone -----------------------------
  // <form data-confirm="..."> or a submit button with its own data-confirm.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // --- Plotly figures built in Python ---------------------------------------------------------
  // <script type="application/json" id="fig-x">{"data": [...], "layout": {...}}</script>
  // <div data-plotly-src="fig-x"></div>    (JSON script tags are never executed: CSP-safe)
  // or the JSON inline: <div data-plotly='{"data": [...], "layout": {...}}'></div>
  var PLOT_CONFIG = { responsive: true, displaylogo: false };
  function themeLayout() {
    var style = getComputedStyle(document.body || root);
    var color = style.getPropertyValue("--bs-body-color").trim() || style.color;
    var grid = style.getPropertyValue("--bs-border-color").trim();
    var axis = grid ? { gridcolor: grid, zerolinecolor: grid, linecolor: grid } : {};
    return {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: color },
      xaxis: axis,
      yaxis: axis,
    };
  }
  function mergeTheme(layout) {
    // Figures that chose their own colours keep them; others follow the page's colour mode.
    var theme = themeLayout();
    var out = Object.assign({}, layout);
    if (!("paper_bgcolor" in out)) out.paper_bgcolor = theme.paper_bgcolor;
    if (!("plot_bgcolor" in out)) out.plot_bgcolor = theme.plot_bgcolor;
    out.font = Object.assign({ color: theme.font.color }, out.font || {});
    ["xaxis", "yaxis"].forEach(function (name) {
      out[name] = Object.assign({}, theme[name], out[name] || {});
    });
    return out;
  }
  function figureSource(el) {
    var raw = el.getAttribute("data-plotly");
    if (raw) return raw;
    var src = el.getAttribute("data-plotly-src");
    var script = src ? document.getElementById(src) : null;
    return script ? script.textContent : null;
  }
  function drawFigures(scope) {
    if (typeof window.Plotly === "undefined" || !scope) return;
    var selector = "[data-plotly], [data-plotly-src]";
    var nodes = Array.prototype.slice.call(scope.querySelectorAll ? scope.querySelectorAll(selector) : []);
    if (scope.matches && scope.matches(selector)) nodes.unshift(scope);
    nodes.forEach(function (el) {
      if (el._causewayPlotted || !el.isConnected) return;
      var raw = figureSource(el);
      if (!raw) return;
      try {
        var figure = JSON.parse(raw);
        el._causewayPlotted = true;
        el._causewayFigure = figure;
        window.Plotly.newPlot(el, figure.data || [], mergeTheme(figure.layout || {}), PLOT_CONFIG);
      } catch (e) {
        el.textContent = "This chart could not be drawn.";
      }
    });
  }
  function restyleFigures() {
    if (typeof window.Plotly === "undefined") return;
    document.querySelectorAll("[data-plotly], [data-plotly-src]").forEach(function (el) {
      var figure = el._causewayFigure;
      if (figure) window.Plotly.react(el, figure.data || [], mergeTheme(figure.layout || {}), PLOT_CONFIG);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail && event.detail.target;
    // An outerHTML swap replaces the target itself: then look through the whole page.
    drawFigures(target && target.isConnected ? target : document);
  });
  // Charts drawn inside a hidden tab or collapsed panel have no width: resize when shown.
  ["shown.bs.tab", "shown.bs.collapse", "shown.bs.modal"].forEach(function (name) {
    document.addEventListener(name, function () {
      if (typeof window.Plotly === "undefined") return;
      document.querySelectorAll("[data-plotly], [data-plotly-src]").forEach(function (el) {
        if (el._causewayPlotted && el.offsetParent !== null) window.Plotly.Plots.resize(el);
      });
    });
  });
})();
