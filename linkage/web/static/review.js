// One key per decision on the pair page (m / n / u) and on a household correspondence's page
// (its buttons name their key in data-key); Esc leaves the note box. On the page that
// asks to confirm a decision, Enter confirms (the button has the focus) and Esc goes back.
(function () {
  "use strict";
  var back = document.getElementById("confirm-back");
  var yes = document.getElementById("confirm-yes");
  if (back && yes) {
    // Focused now, not when the browser gets round to `autofocus` (after load): an Enter
    // pressed as soon as the page shows must confirm.
    yes.focus();
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); back.click(); }
      if (e.key === "Enter" && e.target === document.body) { e.preventDefault(); yes.click(); }
    });
  }
  var form = document.getElementById("decide");
  if (!form) { return; }
  var keys = { m: "match", n: "non_match", u: "unsure" };
  var sent = false;
  form.addEventListener("submit", function (e) {
    if (sent) { e.preventDefault(); return; }
    sent = true;
    document.body.classList.add("sending");
  });
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      if (e.key === "Escape") { t.blur(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var key = (e.key || "").toLowerCase();
    if (!/^[a-z]$/.test(key)) { return; }
    var button = form.querySelector('button[name="decision"][data-key="' + key + '"]');
    if (!button && keys[key]) {
      button = form.querySelector('button[name="decision"][value="' + keys[key] + '"]');
    }
    if (button) { e.preventDefault(); button.click(); }
  });
})();
