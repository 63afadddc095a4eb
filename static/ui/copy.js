// The strategy page's two small behaviours, no outside code:
// <button data-copy="ID"> copies the text of #ID (the webhook URL, the alert message, a new passphrase);
// <form data-confirm="…"> asks before submitting (rotating a passphrase breaks alerts still using the old one).
(function () {
  "use strict";

  // The Clipboard API needs a secure context (https or localhost); on plain http inside a network the
  // old selection-and-copy still works.
  function copyBySelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "0";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
    document.body.removeChild(area);
    return copied;
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return copyBySelection(text); }
      );
    }
    return Promise.resolve(copyBySelection(text));
  }

  function say(button, words) {
    if (!button.dataset.label) button.dataset.label = button.textContent;
    button.textContent = words;
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(function () { button.textContent = button.dataset.label; }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    copy(source.textContent).then(function (copied) { say(button, copied ? "Copied" : "Select and copy by hand"); });
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
