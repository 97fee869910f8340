// Conversation view: a collapsed message's body document is loaded only when it is expanded.
(function () {
  "use strict";
  function loadBody(card) {
    var frame = card.querySelector("iframe.message-body[data-src]");
    if (frame && card.open) {
      frame.src = frame.getAttribute("data-src");
      frame.removeAttribute("data-src");
    }
  }
  document.querySelectorAll("details.message-card").forEach(function (card) {
    card.addEventListener("toggle", function () { loadBody(card); });
  });
})();
