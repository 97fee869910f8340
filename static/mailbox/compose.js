// Compose: autosave (debounced, and on leaving the page), attachment upload with progress, and
// address suggestions from the user's contacts. The form works without this file: a plain POST
// saves the draft. Loaded as an external script (the CSP allows no inline code).
(function () {
  "use strict";

  var form = document.getElementById("compose-form");
  if (!form) return;

  var AUTOSAVE_DELAY_MS = 1500;
  var SUGGEST_DELAY_MS = 150;
  var statusEl = document.getElementById("save-status");
  var fileInput = document.getElementById("id_files");
  var attachmentList = document.getElementById("attachment-list");
  var progressList = document.getElementById("upload-progress");
  var timer = null;
  var inflight = null;
  var dirty = false;
  var conflicted = false;

  function field(name) { return form.elements.namedItem(name); }
  function csrfToken() { return field("csrfmiddlewaretoken").value; }
  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", !!isError);
  }

  function formPayload() {
    var data = new FormData(form);
    data.delete("files");
    data.delete("action");
    data.delete("remove_attachment");
    return data;
  }

  function applySaved(result) {
    field("draft").value = result.draft;
    field("version").value = result.version;
    form.action = result.url;
    form.dataset.uploadUrl = result.upload_url;
    if (window.location.pathname !== result.url) window.history.replaceState(null, "", result.url);
    ["to", "cc", "bcc"].forEach(function (name) {
      var problem = document.getElementById("id_" + name + "-problem");
      if (problem) problem.textContent = (result.problems && result.problems[name]) || "";
    });
    setStatus("Saved " + result.saved_at, false);
  }

  // Saves the form now; resolves when the server has answered (whatever it said).
  function saveNow() {
    if (inflight) return inflight.then(saveNow);
    if (conflicted) return Promise.resolve();
    clearTimeout(timer);
    timer = null;
    dirty = false;
    setStatus("Saving…", false);
    inflight = fetch(form.dataset.autosaveUrl, {
      method: "POST",
      body: formPayload(),
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      credentials: "same-origin",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) {
          applySaved(body);
        } else if (response.status === 409) {
          conflicted = true;
          setStatus(body.error || "This draft was changed elsewhere.", true);
        } else {
          dirty = true;
          setStatus(body.error || "Could not save the draft (" + response.status + ").", true);
        }
      });
    }, function () {
      dirty = true;
      setStatus("Not saved: the connection failed. Your text is still here.", true);
    }).finally(function () { inflight = null; });
    return inflight;
  }

  function scheduleSave() {
    dirty = true;
    clearTimeout(timer);
    timer = setTimeout(saveNow, AUTOSAVE_DELAY_MS);
  }

  form.addEventListener("input", function (event) {
    if (event.target === fileInput) return;
    scheduleSave();
  });
  form.addEventListener("change", function (event) {
    if (event.target.name === "body_format") scheduleSave();
  });

  // Leaving the page: send what is unsaved with keepalive so the request outlives the page.
  function saveOnLeave() {
    if (!dirty || conflicted || inflight) return;
    dirty = false;
    clearTimeout(timer);
    fetch(form.dataset.autosaveUrl, {
      method: "POST", body: formPayload(), keepalive: true, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() },
    });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") saveOnLeave();
  });
  window.addEventListener("pagehide", saveOnLeave);

  // A normal submit (Send, Save, Discard, Remove) waits for a background save in flight, so it
  // posts the version that save produced.
  var submitting = false;
  form.addEventListener("submit", function (event) {
    if (submitting) return;
    clearTimeout(timer);
    if (!inflight) { submitting = true; dirty = false; return; }
    event.preventDefault();
    var submitter = event.submitter;
    inflight.then(function () {
      submitting = true;
      dirty = false;
      form.requestSubmit(submitter);
    });
  });

  // Enter in a one-line field saves in the background and stays: it must not reach the form's
  // implicit submission (the hidden Save draft button without this file). Address fields handle
  // their own Enter first (see attachSuggestions).
  form.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.defaultPrevented || event.isComposing) return;
    var target = event.target;
    if (target.tagName !== "INPUT" || /^(file|submit|button|reset|image)$/.test(target.type)) return;
    event.preventDefault();
    saveNow();
  });

  // --- Attachments ----------------------------------------------------------------------------

  function uploadRow(file) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.className = "filename";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    var note = document.createElement("span");
    note.className = "upload-note";
    li.append(name, " ", bar, " ", note);
    progressList.append(li);
    return { li: li, bar: bar, note: note };
  }

  function attachedRow(result) {
    var li = document.createElement("li");
    li.dataset.attachment = result.id;
    var name = document.createElement("span");
    name.className = "filename";
    name.textContent = result.filename;
    var size = document.createElement("span");
    size.className = "size";
    size.textContent = result.size_text;
    var remove = document.createElement("button");
    remove.type = "submit";
    remove.name = "remove_attachment";
    remove.value = result.id;
    remove.className = "link";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", "Remove " + result.filename);
    li.append(name, " ", size, " ", remove);
    attachmentList.append(li);
  }

  function upload(file) {
    var row = uploadRow(file);
    var limit = Number(form.dataset.maxAttachmentBytes);
    if (file.size > limit) {
      row.bar.remove();
      row.note.textContent = "Too large: attachments can be at most " + form.dataset.maxAttachmentText + ".";
      row.li.classList.add("error");
      return;
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) return;
      var percent = Math.round((event.loaded / event.total) * 100);
      row.bar.value = percent;
      row.note.textContent = percent + "%";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 200 && xhr.response) {
        row.li.remove();
        attachedRow(xhr.response);
      } else {
        row.bar.remove();
        row.li.classList.add("error");
        row.note.textContent = (xhr.response && xhr.response.error) || "Upload failed (" + xhr.status + ").";
      }
    });
    xhr.addEventListener("error", function () {
      row.bar.remove();
      row.li.classList.add("error");
      row.note.textContent = "Upload failed: the connection broke.";
    });
    var data = new FormData();
    data.append("file", file);
    xhr.send(data);
  }

  fileInput.addEventListener("change", function () {
    var files = Array.prototype.slice.call(fileInput.files);
    fileInput.value = "";
    if (!files.length) return;
    var ready = field("draft").value ? Promise.resolve() : saveNow();
    ready.then(function () {
      if (!form.dataset.uploadUrl) {
        setStatus("Save the draft before attaching files.", true);
        return;
      }
      files.forEach(upload);
    });
  });

  // --- Address suggestions --------------------------------------------------------------------

  function lastToken(value) {
    var parts = value.split(/[,;]/);
    return parts[parts.length - 1].trim();
  }

  function attachSuggestions(input) {
    var list = document.getElementById(input.id + "-suggestions");
    var suggestTimer = null;
    var active = -1;
    var requestSeq = 0;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");

    function close() {
      list.hidden = true;
      list.textContent = "";
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function choose(value) {
      var parts = input.value.split(/([,;])/);
      parts[parts.length - 1] = (parts.length > 1 ? " " : "") + value;
      input.value = parts.join("") + ", ";
      close();
      input.focus();
      scheduleSave();
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) return;
      active = (index + options.length) % options.length;
      options.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
      input.setAttribute("aria-activedescendant", options[active].id);
    }

    function show(results) {
      list.textContent = "";
      results.forEach(function (result, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.value = result.value;
        option.textContent = result.value;
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          choose(result.value);
        });
        list.append(option);
      });
      list.hidden = results.length === 0;
      input.setAttribute("aria-expanded", results.length ? "true" : "false");
      active = -1;
    }

    function suggest() {
      var query = lastToken(input.value);
      if (!query) { close(); return; }
      var seq = ++requestSeq;
      var url = form.dataset.autocompleteUrl + "?q=" + encodeURIComponent(query);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (body) { if (seq === requestSeq) show(body.results || []); })
        .catch(close);
    }

    input.addEventListener("input", function () {
      clearTimeout(suggestTimer);
      suggestTimer = setTimeout(suggest, SUGGEST_DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.isComposing) {
        // Enter accepts the highlighted suggestion, else the address as typed; it never submits.
        event.preventDefault();
        if (!list.hidden && active >= 0) choose(list.querySelectorAll("[role=option]")[active].dataset.value);
        else if (lastToken(input.value)) choose(lastToken(input.value));
        else close();
        return;
      }
      if (list.hidden) return;
      if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
      else if (event.key === "Escape") { close(); }
    });
    input.addEventListener("blur", function () { setTimeout(close, 100); });
  }

  ["id_to", "id_cc", "id_bcc"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input) attachSuggestions(input);
  });
})();
