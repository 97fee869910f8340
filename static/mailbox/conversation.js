// Conversation view: a collapsed message's body document is loaded only when it is expanded;
// the unread messages shown are marked read by a POST once the page is visible (never by the
// GET: prefetchers and previews load pages nobody reads); the delivery lines of a sent message
// shown here are fetched again when the server says they changed (a "delivery.updated" event on
// the mailbox's websocket); when this conversation is merged into another (in another tab), the
// page moves there ("thread.removed" with merged_into); when it changes in place ("thread.updated":
// a message split off or moved out, conversations merged into it, new mail, starred or labelled
// elsewhere), its messages, chips and toolbar follow. Every opening of the socket, the first one
// included, catches up from the domain event log since the page's render (live.js), and the tab's
// own mark-read, named by its tab id, comes back as a change it already shows.
(function () {
  "use strict";
  var main = document.querySelector("main.conversation");
  var live = main ? window.MailsiteLive(main, applyCatchUp) : null;

  function markRead() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!main || !main.dataset.unread || main.dataset.markRead || !field) { return; }
    main.dataset.markRead = "sending";
    var data = new FormData();
    data.append("csrfmiddlewaretoken", field.value);
    main.dataset.unread.split(",").forEach(function (id) { data.append("message", id); });
    fetch(main.dataset.markReadUrl, {
      method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json", "X-Mailsite-Tab": live.tab }
    }).then(function (response) {
      main.dataset.markRead = response.ok ? "done" : "";
    }).catch(function () { main.dataset.markRead = ""; });  // tried again when next shown
  }
  function markReadWhenShown() {
    if (document.visibilityState === "visible" && !document.prerendering) { markRead(); }
  }
  document.addEventListener("visibilitychange", markReadWhenShown);
  document.addEventListener("prerenderingchange", markReadWhenShown);
  markReadWhenShown();
  function loadBody(card) {
    var frame = card.querySelector("iframe.message-body[data-src]");
    if (frame && card.open) {
      frame.src = frame.getAttribute("data-src");
      frame.removeAttribute("data-src");
    }
  }
  function watchCard(card) {
    card.addEventListener("toggle", function () { loadBody(card); });
  }
  document.querySelectorAll("details.message-card").forEach(watchCard);

  function refreshDeliveries(messageId) {
    var list = document.querySelector('ul.deliveries[data-message="' + Number(messageId) + '"]');
    if (!list) { return; }
    fetch(list.dataset.deliveriesUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        // Our own server-rendered, auto-escaped fragment.
        var fresh = document.createRange().createContextualFragment(html);
        list.replaceChildren(fresh);
      })
      .catch(function () { /* the next event refreshes it */ });
  }

  var threadId = main ? Number(main.dataset.threadId) : 0;

  function conversationRemoved(data) {
    if (data.merged_into) {
      window.location.replace("/t/" + Number(data.merged_into) + "/");
      return;
    }
    if (document.getElementById("conversation-gone")) { return; }
    var note = document.createElement("p");
    note.id = "conversation-gone";
    note.className = "conversation-gone";
    note.setAttribute("role", "alert");
    note.textContent = "This conversation is no longer here: it was deleted or its messages moved. ";
    var back = document.createElement("a");
    back.href = "/";
    back.textContent = "Back to the Inbox";
    note.appendChild(back);
    main.insertBefore(note, main.firstChild);
  }

  // The page follows the server's (the same template a reload renders), fetched with this page's
  // address (the list it came from decides the toolbar's actions): cards already shown stay as
  // they are (open or closed, body loaded), except their actions and "why here" line; new ones
  // come in date order; those gone are dropped; the label chips and the toolbar (Star or Unstar,
  // the label menus) are the server's. Refreshes run one at a time, and changes that arrive
  // meanwhile are fetched once more after it. The fetch says it is a refresh, so it leaves the
  // undo notice of an action to the page that action leads to.
  var refreshing = false, refreshAgain = false;
  function refreshConversation() {
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    fetch(window.location.pathname + window.location.search, { credentials: "same-origin", headers: { "X-Mailsite-Refresh": "1" } })
      .then(function (response) {
        if (response.redirected) { window.location.replace(response.url); return null; }  // merged away
        if (response.status === 404) { conversationRemoved({}); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) { applyConversation(html); } })
      .catch(function () { /* the next event refreshes it */ })
      .then(function () {
        refreshing = false;
        if (refreshAgain) { refreshAgain = false; refreshConversation(); }
      });
  }

  function applyConversation(html) {
    // Our own server-rendered, auto-escaped page; parsing it runs none of its scripts.
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var list = main.querySelector("ol.messages");
    var freshList = fresh.querySelector("main.conversation ol.messages");
    if (!list || !freshList) { return; }
    var shown = {};
    Array.prototype.forEach.call(list.children, function (li) { shown[li.id] = li; });
    var previous = null;
    Array.prototype.slice.call(freshList.children).forEach(function (li) {
      var item = shown[li.id];
      if (item) {
        delete shown[li.id];
        ["div.message-actions", "dd.thread-reason"].forEach(function (part) {
          var mine = item.querySelector(part), theirs = li.querySelector(part);
          if (mine && theirs) { mine.replaceWith(document.adoptNode(theirs)); }
        });
      } else {
        item = document.adoptNode(li);
        watchCard(item.querySelector("details.message-card"));
      }
      var place = previous ? previous.nextElementSibling : list.firstElementChild;
      if (place !== item) { list.insertBefore(item, place); }
      previous = item;
    });
    Object.keys(shown).forEach(function (id) { shown[id].remove(); });
    [".conversation-head h1", ".conversation-head .count"].forEach(function (part) {
      var mine = main.querySelector(part), theirs = fresh.querySelector(part);
      if (mine && theirs) { mine.textContent = theirs.textContent; }
    });
    ["div.thread-chips", "div.thread-toolbar"].forEach(function (part) {
      var mine = main.querySelector(part), theirs = fresh.querySelector("main.conversation " + part);
      if (mine && theirs) { keepChoices(mine, theirs); mine.replaceWith(document.adoptNode(theirs)); }
    });
    document.title = fresh.title;
  }
  // A label or folder picked in a menu stays picked when the toolbar is redrawn, if still offered.
  function keepChoices(mine, theirs) {
    mine.querySelectorAll("select[id]").forEach(function (select) {
      var again = theirs.querySelector("select#" + select.id);
      if (again && again.querySelector("option[value='" + Number(select.value) + "']")) { again.value = select.value; }
    });
  }

  function dropLabelOption(labelId) {
    document.querySelectorAll("select[name=label] option[value='" + Number(labelId) + "']").forEach(function (o) { o.remove(); });
    document.querySelectorAll(".thread-labels .label-chip[data-label='" + Number(labelId) + "']").forEach(function (chip) { chip.remove(); });
  }

  // What the log holds after the cursor that this tab has not heard (its own changes left out):
  // one refetch of the page if this conversation is among the threads changed or a label was
  // created, renamed or recoloured (the chips and menus show labels by name and colour).
  function applyCatchUp(data, threads) {
    (data.labels_deleted || []).forEach(dropLabelOption);
    if ((data.labels_changed || []).length || threads.indexOf(threadId) !== -1) { refreshConversation(); }
  }

  function handle(data) {
    live.hear(data);
    if (data.tab === live.tab) { return; }  // this tab's own change: the page shows it already
    if (data.type === "delivery.updated") { refreshDeliveries(data.message_id); }
    else if (data.type === "thread.removed" && Number(data.thread_id) === threadId) { conversationRemoved(data); }
    else if (data.type === "thread.updated" && Number(data.thread_id) === threadId) { refreshConversation(); }
    else if (data.type === "label.deleted") { dropLabelOption(data.label_id); }
    else if (data.type === "label.changed") { refreshConversation(); }
  }

  var retryDelay = 1000;
  function connect() {
    if (!window.WebSocket || !main) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/mailbox/");
    socket.addEventListener("message", function (e) {
      var data;
      try { data = JSON.parse(e.data); } catch (err) { return; }
      if (data) { handle(data); }
    });
    socket.addEventListener("open", function () {
      document.body.dataset.live = "connected";
      retryDelay = 1000;
      // What changed between the page's render (or the last catch-up) and this socket's join.
      live.catchUp();
      // A delivery's timeline also grows by tracking events that move no status, which the log does
      // not hold: the delivery lines are fetched again on every opening.
      document.querySelectorAll("ul.deliveries").forEach(function (list) {
        refreshDeliveries(list.dataset.message);
      });
    });
    socket.addEventListener("close", function () {
      document.body.dataset.live = "disconnected";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }
  connect();
})();
