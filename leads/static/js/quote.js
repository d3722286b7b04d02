// Progressive enhancement for the quote form; the form works fully without it.
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

  // The language menu on the form's page sends the answers typed so far with it (nothing is
  // checked or stored), so the form comes back in the chosen language still filled in.
  function keepAnswersAcrossLanguages(form) {
    Array.prototype.forEach.call(document.querySelectorAll(".language-menu a"), function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        var marker = document.createElement("input");
        marker.type = "hidden";
        marker.name = "switch_language";
        marker.value = "1";
        form.appendChild(marker);
        form.action = link.href;
        form.submit();
      });
    });
  }

  function init() {
    var form = document.querySelector("form.quote-form");
    if (form) {
      keepAnswersAcrossLanguages(form);
    }
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
