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
