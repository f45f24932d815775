// Loaded in <head> so the page is drawn in the right colour mode from the first frame.
(function () {
  var stored = null;
  try { stored = localStorage.getItem("causeway-theme"); } catch (e) { /* private mode */ }
  var prefersDark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.setAttribute("data-bs-theme", stored || (prefersDark ? "dark" : "light"));
})();
