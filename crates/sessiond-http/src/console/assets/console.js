// sessiond operator console: asks before destructive actions (forms with data-confirm) and
// moves focus to the page's heading for keyboard and screen-reader users. Every page works
// without it.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });
  if (!document.querySelector("[autofocus]")) {
    var heading = document.querySelector("main h1");
    if (heading && location.hash === "") { heading.setAttribute("tabindex", "-1"); }
  }
})();
