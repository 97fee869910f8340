// Time zones: the compose form tells the server the browser's zone (used for a Send later time
// while the mailbox has none chosen, and then adopted as its zone) and names it beside the field;
// the Settings page preselects it while none is chosen. Without this file, UTC.
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (err) { return; }
  if (!zone) { return; }

  var hidden = document.querySelector('input[name="browser_timezone"]');
  if (hidden) { hidden.value = zone; }
  var sendAt = document.querySelector('input[name="send_at"][data-zone-chosen="0"]');
  var label = sendAt && sendAt.id ? document.querySelector('label[for="' + sendAt.id + '"]') : null;
  if (label) { label.textContent = "Send later (" + zone + ")"; }

  var select = document.querySelector('select[name="timezone"]');
  if (select && select.value === "") {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) { select.value = zone; break; }
    }
  }
})();
