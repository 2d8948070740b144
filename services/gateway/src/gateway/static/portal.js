// Progressive enhancement only: every page works without this file.
// Stops a second submit of the same form (double clicks on "Continue",
// "Email me a sign-in link"): the server is safe either way, this just
// spares the customer a confusing second page.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.submitted === "true") {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "true";
  var buttons = form.querySelectorAll("button[type=submit]");
  for (var i = 0; i < buttons.length; i++) buttons[i].setAttribute("aria-disabled", "true");
});

// Coming back with the Back button restores the page from cache: re-arm forms.
window.addEventListener("pageshow", function () {
  var forms = document.querySelectorAll("form[data-submitted]");
  for (var i = 0; i < forms.length; i++) delete forms[i].dataset.submitted;
});

// Copy buttons of license keys: shown only when the clipboard can be written;
// without this file the key stays selectable in its read-only field.
(function () {
  if (!navigator.clipboard) return;
  var buttons = document.querySelectorAll("button[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) {
    var button = buttons[i];
    button.hidden = false;
    button.addEventListener("click", function (event) {
      var target = event.currentTarget;
      var field = document.getElementById(target.dataset.copyTarget);
      if (!field) return;
      navigator.clipboard.writeText(field.value).then(function () {
        var label = target.firstChild;
        var original = label.nodeValue;
        label.nodeValue = target.dataset.copiedLabel;
        setTimeout(function () { label.nodeValue = original; }, 2000);
      });
    });
  }
})();
