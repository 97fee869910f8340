// Mailsite's thread list in the browser: selection, keyboard shortcuts and live updates.
// Plain JS, no inline code (the CSP allows scripts from 'self' only). Every feature works without
// it: the toolbar and star buttons are ordinary form POSTs.
(function () {
  "use strict";

  var body = document.body;
  var list = document.getElementById("thread-list");
  var bulk = document.getElementById("bulk");
  var listKey = body.dataset.list || "";

  function rows() { return list ? Array.prototype.slice.call(list.querySelectorAll("li.thread")) : []; }
  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  // --- Selection --------------------------------------------------------------------------
  function selected() { return rows().filter(function (r) { return r.querySelector("input.select").checked; }); }
  function refreshToolbar() {
    if (!bulk) { return; }
    var count = selected().length;
    // On a narrow screen, CSS shows the actions only once something is selected.
    bulk.classList.add("collapsible");
    bulk.classList.toggle("has-selection", count > 0);
    bulk.querySelectorAll("button[name=action]").forEach(function (b) {
      if (!b.classList.contains("always")) { b.disabled = count < Number(b.dataset.min || 1); }
    });
    rows().forEach(function (r) { r.classList.toggle("selected", r.querySelector("input.select").checked); });
    var all = document.getElementById("select-all");
    if (all) { var n = rows().length; all.checked = n > 0 && selected().length === n; }
  }
  if (list) { list.addEventListener("change", function (e) { if (e.target.matches("input.select")) { refreshToolbar(); } }); }
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      rows().forEach(function (r) { r.querySelector("input.select").checked = selectAll.checked; });
      refreshToolbar();
    });
  }
  refreshToolbar();

  // --- Live updates -----------------------------------------------------------------------
  var live = list ? window.MailsiteLive(body, applyCatchUp) : null;
  var firstPage = body.dataset.firstPage === "yes";

  // The star of a row toggles in place and our own refetch redraws the row: the change names this
  // tab (X-Mailsite-Tab), so its live event, which would fetch the row again, is let be.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList.contains("star-form") || !e.submitter) { return; }
    e.preventDefault();
    var data = new FormData(form);
    data.append("thread", e.submitter.value);
    var headers = { Accept: "application/json" };
    if (live) { headers["X-Mailsite-Tab"] = live.tab; }
    fetch(form.getAttribute("action"), { method: "POST", body: data, headers: headers, credentials: "same-origin" })
      .then(function () { refreshRow(Number(e.submitter.value)); });
  });

  function updateCounts(header) {
    if (!header) { return; }
    var counts;
    try { counts = JSON.parse(header); } catch (err) { return; }
    document.querySelectorAll("[data-unread-for]").forEach(function (el) {
      var n = counts[el.dataset.unreadFor];
      var go = el.closest("a").dataset.go;
      el.textContent = n && go !== "sent" && go !== "trash" ? String(n) : "";
    });
    if (body.dataset.titleName) {
      var mine = counts[body.dataset.listLabel];
      document.title = body.dataset.titleName + (mine ? " (" + mine + ")" : "") + " · " + body.dataset.titleRest;
    }
  }

  // Rows sort newest first by (time of the latest message, thread id), as the server's keyset.
  function newer(a, b) {
    var ta = Number(a.dataset.sort), tb = Number(b.dataset.sort);
    return ta !== tb ? ta > tb : Number(a.dataset.thread) > Number(b.dataset.thread);
  }
  function place(row) {
    var existing = document.getElementById(row.id);
    var wasSelected = existing && existing.querySelector("input.select").checked;
    var hadCursor = existing && existing.classList.contains("cursor");
    if (existing) { existing.remove(); }
    var others = rows();
    var before = others.filter(function (r) { return newer(row, r); })[0];
    // Past the end of a full page it belongs to an older page.
    if (!before && others.length >= 50) { return; }
    list.insertBefore(row, before || null);
    if (wasSelected) { row.querySelector("input.select").checked = true; }
    if (hadCursor) { row.classList.add("cursor"); }
  }
  function showEmpty() { var e = document.getElementById("empty"); if (e) { e.classList.toggle("hidden", rows().length > 0); } }

  function refreshRow(threadId) {
    if (!list || !threadId) { return Promise.resolve(); }
    // The row's link carries this page's address, so its conversation comes back here.
    var here = window.location.pathname + window.location.search;
    var url = "/t/" + threadId + "/row/?label=" + encodeURIComponent(listKey) + "&back=" + encodeURIComponent(here);
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(function (response) {
      updateCounts(response.headers.get("X-Unread-Counts"));
      if (response.status === 200) {
        return response.text().then(function (html) {
          var holder = document.createElement("ul");
          holder.innerHTML = html.trim();
          var row = holder.firstElementChild;
          if (!row) { return; }
          var existing = document.getElementById(row.id);
          if (!existing && !firstPage) { return; }
          place(row);
        });
      }
      removeRow(threadId);
    }).then(function () { showEmpty(); refreshToolbar(); });
  }
  function removeRow(threadId) {
    var row = document.getElementById("thread-" + threadId);
    if (row) { row.remove(); }
    showEmpty();
  }

  // A label deleted in another tab: its sidebar entry, chips and menu options go; a tab showing
  // that label's list says so (reloading it would find no such label).
  function dropLabel(labelId) {
    var id = String(Number(labelId));
    document.querySelectorAll(".sidebar a[data-list='" + id + "']").forEach(function (a) { a.closest("li").remove(); });
    document.querySelectorAll(".label-chip[data-label='" + id + "']").forEach(function (chip) { chip.remove(); });
    document.querySelectorAll("select[name=label] option[value='" + id + "'], select[name=move_to] option[value='" + id + "']").forEach(function (o) { o.remove(); });
    if (body.dataset.listLabel === id) {
      rows().forEach(function (r) { r.remove(); });
      var empty = document.getElementById("empty");
      if (empty) { empty.textContent = "This label was deleted."; }
      showEmpty();
      refreshToolbar();
    }
  }

  // A label created, renamed or recoloured in another tab: the sidebar and the label menus are
  // redrawn from the server's partials (those of a full page), rows showing its chip refetched.
  function refreshLabels(labelIds) {
    fetch("/labels/sidebar/?current=" + encodeURIComponent(listKey), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("nav.sidebar"), sidebar = document.querySelector("nav.sidebar");
        if (fresh && sidebar) { sidebar.replaceWith(fresh); renameList(fresh); }
        // Each menu (Label, Move to) takes the options of its namesake in the partial.
        document.querySelectorAll("select[name=label], select[name=move_to]").forEach(function (select) {
          var options = holder.querySelectorAll("select[name=" + select.name + "] option");
          var chosen = select.value;
          select.querySelectorAll("option:not([value=''])").forEach(function (o) { o.remove(); });
          options.forEach(function (o) { select.appendChild(o.cloneNode(true)); });
          select.value = chosen;
        });
      });
    labelIds.forEach(function (labelId) {
      document.querySelectorAll(".label-chip[data-label='" + Number(labelId) + "']").forEach(function (chip) {
        var row = chip.closest("li.thread");
        if (row) { refreshRow(Number(row.dataset.thread)); }
      });
    });
  }
  // The list's own label renamed: its heading and the page title follow.
  function renameList(sidebar) {
    var entry = body.dataset.listLabel && sidebar.querySelector("a[data-list='" + body.dataset.listLabel + "'] .name");
    if (!entry || !body.dataset.titleName || entry.textContent === body.dataset.titleName) { return; }
    var heading = document.querySelector("main h1");
    if (heading && heading.textContent === body.dataset.titleName) { heading.textContent = entry.textContent; }
    body.dataset.titleName = entry.textContent;
    var count = entry.parentNode.querySelector("[data-unread-for]");
    var n = count ? count.textContent : "";
    document.title = entry.textContent + (n ? " (" + n + ")" : "") + " · " + body.dataset.titleRest;
  }

  function handle(event) {
    live.hear(event);
    if (event.tab === live.tab) { return; }  // this tab's own change: it has redrawn the row already
    if (event.type === "thread.updated") { refreshRow(event.thread_id); }
    else if (event.type === "thread.removed") {
      removeRow(event.thread_id);
      if (event.merged_into) { refreshRow(event.merged_into); }
    }
    else if (event.type === "label.deleted") { dropLabel(event.label_id); }
    else if (event.type === "label.changed") { refreshLabels([event.label_id]); }
  }

  function applyCatchUp(data, threads) {
    (data.labels_deleted || []).forEach(dropLabel);
    if ((data.labels_changed || []).length) { refreshLabels(data.labels_changed); }
    threads.forEach(refreshRow);
  }

  var retryDelay = 500;
  function connect() {
    if (!list || !window.WebSocket) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/mailbox/");
    socket.addEventListener("open", function () {
      body.dataset.live = "connected";
      retryDelay = 500;
      // What happened between the page's render (or the last catch-up) and this socket's join.
      live.catchUp();
    });
    socket.addEventListener("message", function (e) {
      try { handle(JSON.parse(e.data)); } catch (err) { /* a malformed event is ignored */ }
    });
    socket.addEventListener("close", function (e) {
      body.dataset.live = "disconnected";
      if (e.code === 4401) { return; }  // logged out: reconnecting cannot help
      var wait = retryDelay + Math.random() * retryDelay / 2;
      retryDelay = Math.min(retryDelay * 2, 30000);
      window.setTimeout(connect, wait);
    });
  }
  connect();

  // --- Keyboard shortcuts -----------------------------------------------------------------
  if (body.dataset.shortcuts !== "on") { return; }
  var help = document.getElementById("help");
  var pendingG = false;

  function cursorRow() { return list ? list.querySelector("li.thread.cursor") : null; }
  function moveCursor(step) {
    var all = rows();
    if (!all.length) { return; }
    var current = cursorRow();
    var index = current ? all.indexOf(current) + step : 0;
    index = Math.max(0, Math.min(all.length - 1, index));
    if (current) { current.classList.remove("cursor"); }
    all[index].classList.add("cursor");
    all[index].querySelector("a.open").focus();
  }
  function targets() {
    var picked = selected();
    if (picked.length) { return picked; }
    var current = cursorRow() || (document.activeElement && document.activeElement.closest && document.activeElement.closest("li.thread"));
    return current ? [current] : [];
  }
  function post(url, action, threadIds, next) {
    var form = document.createElement("form");
    form.setAttribute("method", "post");
    form.setAttribute("action", url);
    form.className = "hidden";
    function field(name, value) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = value; form.appendChild(input);
    }
    field("csrfmiddlewaretoken", csrfToken());
    field("action", action);
    field("current", listKey);
    field("next", next);
    threadIds.forEach(function (id) { field("thread", id); });
    document.body.appendChild(form);
    form.submit();
  }
  function act(action) {
    var chosen = targets();
    if (!bulk || !chosen.length) { return; }
    var ids = chosen.map(function (row) { return row.dataset.thread; });
    post(bulk.getAttribute("action"), action, ids, window.location.pathname + window.location.search);
  }
  // In a conversation: an action on its thread that stays on the page (the Star form's target).
  function actHere(action) {
    var stay = document.querySelector(".thread-actions.stay");
    if (!stay) { return; }
    var thread = stay.querySelector("input[name=thread]").value;
    post(stay.getAttribute("action"), action, [thread], stay.querySelector("input[name=next]").value);
  }
  // In a conversation: the next (j) or previous (k) conversation of the list it was opened from.
  function followKey(key) {
    var link = document.querySelector(".conversation-head a[data-key='" + key + "']");
    if (link) { window.location.href = link.href; }
  }
  // In a conversation: r, a, f answer the latest open message; thread actions press the page's buttons.
  function messageLink(key) {
    var links = document.querySelectorAll("details.message-card[open] a[data-key='" + key + "']");
    if (links.length) { window.location.href = links[links.length - 1].href; }
  }
  function threadButton(action) {
    var button = document.querySelector(".thread-actions button[value='" + action + "']");
    if (button) { button.click(); }
    return Boolean(button);
  }
  // Back to the list the conversation was opened from (its back link says which).
  function backToList() {
    var back = document.querySelector(".conversation-head a.back");
    window.location.href = back ? back.href : "/";
  }
  // Pages without the sidebar (a conversation) know the folders by their addresses.
  var FOLDERS = { inbox: "/", starred: "/starred/", sent: "/search/?q=in%3Asent", drafts: "/drafts/" };
  function go(role) {
    var link = document.querySelector(".sidebar a[data-go='" + role + "']");
    window.location.href = link ? link.href : FOLDERS[role];
  }
  function toggleHelp(show) {
    if (!help) { return; }
    help.classList.toggle("hidden", !show);
    if (show) { help.focus(); }
  }
  var closeHelp = document.getElementById("help-close");
  if (closeHelp) { closeHelp.addEventListener("click", function () { toggleHelp(false); }); }

  function typing(target) {
    return target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName);
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) { return; }
    var key = e.key;
    if (pendingG) {
      pendingG = false;
      var where = { i: "inbox", s: "starred", t: "sent", d: "drafts" }[key];
      if (where) { e.preventDefault(); go(where); }
      return;
    }
    var handled = true;
    switch (key) {
      case "j": if (list) { moveCursor(1); } else { followKey("j"); } break;
      case "k": if (list) { moveCursor(-1); } else { followKey("k"); } break;
      case "o": case "Enter": {
        var row = cursorRow();
        if (row) { window.location.href = row.querySelector("a.open").href; } else { handled = false; }
        break;
      }
      case "u": if (list) { handled = false; } else { backToList(); } break;
      case "x": {
        var current = cursorRow();
        if (current) { var box = current.querySelector("input.select"); box.checked = !box.checked; refreshToolbar(); }
        break;
      }
      case "r": case "a": case "f": if (list) { handled = false; } else { messageLink(key); } break;
      case "s": {
        if (!list) { if (!threadButton("star")) { threadButton("unstar"); } break; }
        var star = targets()[0];
        if (star) { star.querySelector("button.star").click(); }
        break;
      }
      case "e": if (list) { act("archive"); } else { threadButton("archive"); } break;
      case "#": if (list) { act("trash"); } else { threadButton("trash"); } break;
      case "I": if (list) { act("read"); } else { actHere("read"); } break;
      case "U": if (list) { act("unread"); } else { threadButton("unread"); } break;
      case "z": { var undo = document.getElementById("undo-form"); if (undo) { undo.submit(); } break; }
      case "c": window.location.href = "/compose/"; break;
      case "/": { var search = document.getElementById("search-q"); if (search) { search.focus(); } break; }
      case "g": pendingG = true; break;
      case "?": toggleHelp(help && help.classList.contains("hidden")); break;
      case "Escape": toggleHelp(false); break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });
}());
