// The task list's bulk bar: how many rows are ticked, its buttons off while none
// is, and a confirmation that names the action and the count. Without JavaScript
// the bar still posts (the server answers "nothing selected" itself).
(function () {
  "use strict";

  function ticked() {
    return document.querySelectorAll('input[name="task_ids"][form="bulk-form"]:checked').length;
  }

  function update() {
    var form = document.getElementById("bulk-form");
    if (!form) return;
    var count = ticked();
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

  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (form.id !== "bulk-form") return;
    event.preventDefault();
    var question = form.dataset["confirm" + (form.dataset.action === "retry" ? "Retry" : "Cancel")];
    if (window.confirm(question.replace("{n}", ticked()))) event.detail.issueRequest(true);
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches('input[name="task_ids"]')) update();
  });
  document.addEventListener("htmx:afterSettle", update);  // rows re-polled, page swapped
  document.addEventListener("DOMContentLoaded", update);
})();
