// Progressive enhancement for staff pages; everything works without it.
(function () {
  "use strict";
  // "/" jumps to the queue search, as in many web apps (not while typing in a field).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    var search = document.getElementById("q");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });
  // Forms marked data-confirm ask once before an action that is awkward to undo.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
  // Move focus to an error summary so screen readers announce it.
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
})();
