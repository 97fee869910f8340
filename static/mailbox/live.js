// What a list (app.js) and a conversation (conversation.js) share of their live updates: the tab's
// id, and the catch-up that every opening of their socket runs.
//
// A page starts from the cursor it was rendered with (data-live-cursor: a database snapshot, see
// live_cursor in mailbox/selectors.py) and only a catch-up's answer moves it on. An event heard on
// the socket cannot move it: an event of a transaction that committed earlier may still be on its
// way, and a reconnect must not read past it. So an answer repeats the events heard live since the
// cursor: the threads whose events were all heard are left out; and once many were heard, the tab
// asks again, only to move its cursor, so that what a reconnect reads again stays short.
(function () {
  "use strict";

  var ADVANCE_AFTER = 100;  // events heard live before a catch-up that only moves the cursor on
  var HEARD_KEPT = 2000;  // event ids remembered at most (a forgotten one costs a refetch)

  // This tab's name on the changes it makes (see mailbox/live.py): random, for this page only.
  function tabId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // holder: the element whose data-live-cursor the page was rendered with (kept up to date there,
  // where a test can read it); apply(answer, threadIds): what the page does with a catch-up's
  // answer, given the threads it has not heard of yet.
  window.MailsiteLive = function (holder, apply) {
    var tab = tabId();
    var heard = {}, heardCount = 0, heardSinceAsked = 0, asking = 0;

    function unheard(answer) {
      var events = answer.thread_events || {};
      return answer.threads.filter(function (threadId) {
        var ids = events[String(threadId)] || [];
        return !ids.length || ids.some(function (id) { return !heard[id]; });
      });
    }

    function catchUp() {
      heardSinceAsked = 0;
      asking += 1;
      fetch("/events/?after=" + encodeURIComponent(holder.dataset.liveCursor || "0") + "&tab=" + tab, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer) { return; }
          if (!answer.complete) { window.location.reload(); return; }
          holder.dataset.liveCursor = String(answer.latest);
          var threads = unheard(answer);
          if (heardCount > HEARD_KEPT) { heard = {}; heardCount = 0; }
          apply(answer, threads);
        })
        .catch(function () { /* the next opening catches up */ })
        .then(function () { asking -= 1; });
    }

    // An event that came over the socket: its thread need not be fetched again by a catch-up.
    function hear(event) {
      if (!event.event_id || heard[event.event_id]) { return; }
      heard[event.event_id] = true;
      heardCount += 1;
      heardSinceAsked += 1;
      if (heardSinceAsked >= ADVANCE_AFTER && !asking) { catchUp(); }
    }

    return { tab: tab, catchUp: catchUp, hear: hear };
  };
}());
