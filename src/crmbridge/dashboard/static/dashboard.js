// Says so on the board when a refresh fails, so that old figures are never read as live ones.
(function () {
  "use strict";

  function banner(text) {
    var node = document.getElementById("connection");
    if (!node) { return; }
    node.textContent = text;
    node.hidden = !text;
    document.body.classList.toggle("stale", Boolean(text));
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail && event.detail.xhr ? event.detail.xhr.status : 0;
    if (status === 401) {
      // Asking again every few seconds cannot sign the board back in: stop polling, keep the last figures.
      var board = document.getElementById("board");
      if (board) { board.replaceWith(board.cloneNode(true)); }
      banner("Signed out: open the dashboard link again. The figures below are no longer updated.");
      return;
    }
    banner("Live updates paused: the figures below are the last ones received.");
  });
  document.addEventListener("htmx:sendError", function () {
    banner("Connection lost: the figures below are the last ones received.");
  });
  document.addEventListener("htmx:afterSwap", function () { banner(""); });
}());
