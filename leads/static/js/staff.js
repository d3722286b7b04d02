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
  // Filter forms leave empty fields out of the URL, so a shared link shows only what matters.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-strip-empty") || event.defaultPrevented) return;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (field.name && !field.disabled && field.value === "") {
        field.disabled = true;
        field.setAttribute("data-stripped", "");
      }
    });
  });
  // Coming back with the browser's Back button, give the stripped fields back.
  window.addEventListener("pageshow", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-stripped]"), function (field) {
      field.disabled = false;
      field.removeAttribute("data-stripped");
    });
  });
  // Browsers without autofocus on non-form elements: move focus to the page's summary (its errors,
  // or the result of the last action; templates/_summaries.html), as autofocus does.
  var summary = document.querySelector("[autofocus]");
  if (summary && document.activeElement !== summary) summary.focus();
})();
