// Progressive enhancement for the quote form; the form works fully without it (the language
// menu's buttons send the answers typed so far by themselves: templates/base.html).
(function () {
  "use strict";

  // Offer only the conditions the chosen treatment is offered for (the server checks it anyway).
  function filterConditions(treatment, condition) {
    var chosen = treatment.value;
    Array.prototype.forEach.call(condition.querySelectorAll("option[data-treatments]"), function (option) {
      var fits = !chosen || option.getAttribute("data-treatments").split(" ").indexOf(chosen) !== -1;
      option.disabled = !fits;
      if (!fits && option.selected) {
        condition.value = "";
      }
    });
  }

  function init() {
    var condition = document.querySelector("select[data-filter-by]");
    var treatment = condition && document.getElementById(condition.getAttribute("data-filter-by"));
    if (treatment) {
      treatment.addEventListener("change", function () { filterConditions(treatment, condition); });
      filterConditions(treatment, condition);
    }
    // Browsers without autofocus on non-form elements: move focus to the page's summary
    // (templates/_summaries.html), as autofocus does.
    var summary = document.querySelector("[autofocus]");
    if (summary && document.activeElement !== summary) {
      summary.focus();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
