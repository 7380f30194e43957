// The task list's bulk actions. The bar: a box that ticks every row, how many rows
// are ticked, its buttons off while none is, and a confirmation naming the action
// and the count. Cancel-all
// and cancel-by-type: a confirmation with the counts the page was drawn with,
// the type, and whether running tasks are included. Without JavaScript the forms
// post as they are (the server answers "nothing selected" itself).
(function () {
  "use strict";

  var ROWS = 'input[name="task_ids"][form="bulk-form"]';

  function ticked() {
    return document.querySelectorAll(ROWS + ":checked").length;
  }

  function update() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var count = ticked();
    var all = document.querySelectorAll(ROWS).length;
    var pickAll = document.getElementById("pick-all");
    pickAll.hidden = all === 0;
    pickAll.checked = all > 0 && count === all;
    pickAll.indeterminate = count > 0 && count < all;
    form.querySelector(".bulk-count").textContent = form.dataset.countText.replace("{n}", count);
    form.querySelectorAll("button[name=action]").forEach(function (button) {
      button.disabled = count === 0;
    });
  }

  // Which button submits the bar, so the confirmation can name its action.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("#bulk-form button[name=action]");
    if (button) button.form.dataset.action = button.value;
  });

  function cancelQuestion(form) {
    var section = form.closest(".bulk-cancel");
    var counts = JSON.parse(section.dataset.counts);
    var byType = form.dataset.confirm === "type";
    var queued = 0, running = 0, type = "";
    Object.keys(counts).forEach(function (name) {
      var select = form.querySelector("select[name=task_type]");
      if (byType && name !== select.value) return;
      queued += counts[name].queued;
      running += counts[name].running;
    });
    if (byType) {
      var chosen = form.querySelector("select[name=task_type]");
      type = chosen.options[chosen.selectedIndex].text;
    }
    var also = form.querySelector("input[name=cancel_running]").checked;
    var key = (byType ? "type" : "all") + (also ? "Running" : "Queued");
    // Replacer functions: a "$" in a pipeline's title must not be read as a pattern.
    return section.dataset[key]
      .replace("{q}", function () { return queued; })
      .replace("{r}", function () { return running; })
      .replace("{type}", function () { return type; });
  }

  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    var question;
    if (form.id === "bulk-form") {
      var action = form.dataset.action === "retry" ? "Retry" : "Cancel";
      question = form.dataset["confirm" + action].replace("{n}", ticked());
    } else if (form.dataset.confirm) {
      question = cancelQuestion(form);
    } else {
      return;  // htmx asks its own question (hx-confirm)
    }
    event.preventDefault();
    if (window.confirm(question)) event.detail.issueRequest(true);
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "pick-all") {
      document.querySelectorAll(ROWS).forEach(function (box) {
        box.checked = event.target.checked;
      });
    }
    if (event.target.id === "pick-all" || event.target.matches(ROWS)) update();
  });
  document.addEventListener("htmx:afterSettle", update);  // rows re-polled, page swapped
  document.addEventListener("DOMContentLoaded", update);
})();
