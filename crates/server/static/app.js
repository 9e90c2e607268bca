// Lockstep's only script of its own. Everything works without it except where noted; no
// inline handlers anywhere (the Content-Security-Policy forbids them), so behaviour hangs off
// data- attributes here.
(function () {
  "use strict";

  // <button data-confirm="Question?">: ask before the form is sent.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <input data-fragment-token>: links in mails carry their token after '#', which browsers
  // never send to a server. Move it into the form, then drop it from the address bar.
  function takeFragmentToken() {
    var input = document.querySelector("input[data-fragment-token]");
    if (!input || !window.location.hash || window.location.hash.length < 2) return;
    input.value = decodeURIComponent(window.location.hash.slice(1));
    history.replaceState(null, "", window.location.pathname + window.location.search);
    var row = input.closest("[data-hide-when-filled]");
    if (row) row.hidden = true;
  }

  // <a data-follow>: a page whose only job is to send the browser on (OAuth authorization).
  function follow() {
    var link = document.querySelector("a[data-follow]");
    if (link) window.location.assign(link.href);
  }

  // <button data-add-row="template-id" data-into="tbody-id">: adds a row to a table from a
  // <template>; <button data-remove-row> removes its row. Field names carry the row index.
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    if (add) {
      event.preventDefault();
      var template = document.getElementById(add.getAttribute("data-add-row"));
      var body = document.getElementById(add.getAttribute("data-into"));
      if (!template || !body) return;
      // Rows are numbered from a counter, so a removed row's number is never reused.
      var index = Number(body.getAttribute("data-next-index") || body.querySelectorAll("tr").length);
      body.setAttribute("data-next-index", String(index + 1));
      var html = template.innerHTML.replace(/__index__/g, String(index));
      body.insertAdjacentHTML("beforeend", html);
      var first = body.lastElementChild && body.lastElementChild.querySelector("input,select,textarea");
      if (first) first.focus();
      return;
    }
    var remove = event.target.closest("[data-remove-row]");
    if (remove) {
      event.preventDefault();
      var row = remove.closest("tr");
      if (row) row.remove();
    }
  });

  // <button data-copy="element-id">: copies that element's text.
  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (!copy || !navigator.clipboard) return;
    var source = document.getElementById(copy.getAttribute("data-copy"));
    if (source) {
      navigator.clipboard.writeText(source.textContent.trim());
      copy.textContent = "Copied";
    }
  });

  // <select data-show-group>: shows the fieldsets whose data-group matches the chosen value
  // (for example the fields of a connection kind). Without the script every group shows.
  function showGroups(select) {
    var scope = select.closest("form") || document;
    var value = select.value;
    scope.querySelectorAll("[data-group-of='" + select.name + "']").forEach(function (group) {
      var match = group.getAttribute("data-group").split(" ").indexOf(value) >= 0;
      group.hidden = !match;
      group.querySelectorAll("input,select,textarea").forEach(function (field) {
        field.disabled = !match;
      });
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-show-group]")) showGroups(event.target);
  });

  // Password forms check in the page what the hub checks again: <input data-same-as="password">
  // must equal that field, and a password the strength meter's answer refuses (too short, too
  // long, too common: <p data-password-refused>) stops the form with that reason.
  function checkSame(input) {
    var other = input.form && input.form.elements.namedItem(input.getAttribute("data-same-as"));
    if (!other) return;
    var differs = input.value !== "" && input.value !== other.value;
    input.setCustomValidity(differs ? "The two passwords differ." : "");
  }
  document.addEventListener("input", function (event) {
    var form = event.target.form;
    if (!form) return;
    form.querySelectorAll("input[data-same-as]").forEach(checkSame);
    // A changed password is not refused for what the meter said of the one before: the
    // meter's next answer decides (and the hub checks again on submit).
    if (event.target.name === "password" && typeof event.target.setCustomValidity === "function") {
      event.target.setCustomValidity("");
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var meter = event.detail && event.detail.target;
    if (!meter || meter.id !== "strength") return;
    var form = meter.closest("form");
    var password = form && form.elements.namedItem("password");
    if (!password || typeof password.setCustomValidity !== "function") return;
    var refused = meter.querySelector("[data-password-refused]");
    password.setCustomValidity(refused ? refused.textContent.trim() : "");
  });

  // ?notice=created says what the last change did; once shown it is dropped from the address,
  // so a reload or a later action does not say it again.
  function dropNotice() {
    var params = new URLSearchParams(window.location.search);
    if (!params.has("notice")) return;
    params.delete("notice");
    var query = params.toString();
    history.replaceState(null, "", window.location.pathname + (query ? "?" + query : "") + window.location.hash);
  }

  window.addEventListener("hashchange", takeFragmentToken);
  document.addEventListener("DOMContentLoaded", function () {
    takeFragmentToken();
    dropNotice();
    document.querySelectorAll("select[data-show-group]").forEach(showGroups);
    follow();
  });
})();
