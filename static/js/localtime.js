// Times in the reader's own zone and language. The server writes every time as
// <time datetime="…Z" data-format="when|clock|age|hour|day-hour"> with UTC text
// (and says "UTC"); this rewrites the text with the browser's zone and the page's
// language, keeps relative ages current, and does the same after every htmx swap. The chart's SVG labels carry data-hour (and data-text, a template with
// {hour}); data-local-text replaces a "in UTC" note. No inline code (CSP).
(function () {
  "use strict";

  var lang = document.documentElement.lang || undefined;
  var FORMATS = {
    when: { dateStyle: "medium", timeStyle: "medium" },
    clock: { timeStyle: "medium" },
    hour: { hour: "2-digit", minute: "2-digit" },
    "day-hour": { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" },
    full: { dateStyle: "full", timeStyle: "long" },
  };
  var UNITS = [
    ["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60], ["second", 1],
  ];

  function format(date, kind) {
    return new Intl.DateTimeFormat(lang, FORMATS[kind]).format(date);
  }

  function relative(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    var rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto", style: "short" });
    for (var i = 0; i < UNITS.length; i++) {
      var unit = UNITS[i];
      if (Math.abs(seconds) >= unit[1] || unit[0] === "second") {
        return rtf.format(Math.round(seconds / unit[1]), unit[0]);
      }
    }
  }

  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    if (root.matches && root.matches(selector)) found.unshift(root);
    return found;
  }

  function render(root) {
    within(root, "time[datetime][data-format]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var kind = el.dataset.format;
      el.textContent = kind === "age" ? relative(date) : format(date, kind);
      el.title = format(date, "full");
    });
    within(root, "[data-hour]").forEach(function (el) {
      var date = new Date(el.dataset.hour);
      if (isNaN(date.getTime())) return;
      var hour = format(date, "hour");
      el.textContent = el.dataset.text
        ? el.dataset.text.replace("{hour}", function () { return hour; })
        : hour;
    });
    within(root, "[data-local-text]").forEach(function (el) {
      el.textContent = el.dataset.localText;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { render(document); });
  // Right after a swap, before the browser paints it (htmx:load would come after the settle).
  document.addEventListener("htmx:afterSwap", function () { render(document.body); });
  document.addEventListener("htmx:oobAfterSwap", function () { render(document.body); });
  // Relative ages ("2 min ago") go stale on a page left open.
  setInterval(function () {
    within(document, 'time[data-format="age"]').forEach(function (el) {
      el.textContent = relative(new Date(el.getAttribute("datetime")));
    });
  }, 30000);
})();
