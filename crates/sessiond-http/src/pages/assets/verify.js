// sessiond hosted verification pages: deliver a finished result to the page that opened or
// embeds this one, and put keyboard focus where the user needs it. No other behaviour.
(function () {
  "use strict";
  var result = document.getElementById("sessiond-result");
  if (result) {
    var message = JSON.parse(result.getAttribute("data-message"));
    var origins = JSON.parse(result.getAttribute("data-origins"));
    var wantParent = result.getAttribute("data-target") === "parent";
    var target = wantParent ? window.parent : (window.opener || window.parent);
    var status = document.getElementById("sessiond-delivery");
    if (target && target !== window && origins.length) {
      // Sent once per allowed origin: the browser delivers only to the one that matches the
      // receiving page, so a results key never reaches any other site.
      origins.forEach(function (origin) {
        try { target.postMessage(message, origin); } catch (e) { /* not that origin */ }
      });
      if (status) status.textContent = "The result was sent back. You can close this window.";
    } else if (status) {
      status.textContent = "Return to the site that sent you here to continue.";
    }
  }
  var invalid = document.querySelector("[aria-invalid=true]");
  var heading = document.querySelector("h1");
  if (invalid) { invalid.focus(); }
  else if (heading && !document.querySelector("[autofocus]")) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
})();
