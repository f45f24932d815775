// The Share dialog: a refused or invalid change answers 400 with the dialog re-rendered and
// its message; htmx does not swap error responses by default, so let these through.
(function () {
  "use strict";
  if (window.causewaySharing) return; // the script is included once per Share button
  window.causewaySharing = true;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.closest && target.closest("[data-share-dialog]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
