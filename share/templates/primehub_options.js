// Server Options behaviour: group switching in place (a group's part is fetched from the hub the
// first time it is chosen: server-rendered, autoescaped HTML), image availability, GPU warning, env
// rows. Names and descriptions are only ever read from and written to text by this script.
(function () {
  var root = document.getElementById("primehub-options");
  if (!root) { return; }
  var form = root.closest("form");
  var start = form ? form.querySelector("[type=submit]") : null;
  if (!document.getElementById("primehub-group")) {
    if (start) { start.disabled = true; }
    return;
  }
  var select = document.getElementById("primehub-group");

  function sections() { return root.querySelectorAll("fieldset.primehub-group"); }
  function current() {
    return root.querySelector('fieldset.primehub-group[data-group="' + CSS.escape(select.value) + '"]');
  }

  function refreshImages(section) {
    var type = section.querySelector("input[name^='instance_type.']:checked");
    var gpu = type ? parseInt(type.dataset.gpu, 10) > 0 : false;
    var images = section.querySelectorAll("input[name^='image.']");
    images.forEach(function (image) {
      var usable = image.dataset.ready === "true" && (gpu || image.dataset.kind !== "gpu");
      image.disabled = !usable;
      if (!usable) { image.checked = false; }
    });
    if (!section.querySelector("input[name^='image.']:checked")) {
      var first = section.querySelector("input[name^='image.']:not(:disabled)");
      if (first) { first.checked = true; }
    }
    var chosen = section.querySelector("input[name^='image.']:checked");
    section.querySelector(".primehub-gpu-warning").hidden = !(gpu && chosen && chosen.dataset.kind === "cpu");
  }

  function show() {
    sections().forEach(function (section) {
      var active = section === current();
      section.hidden = !active;
      section.querySelectorAll("input").forEach(function (input) {
        if (!active) {
          if (input.dataset.wasDisabled === undefined) { input.dataset.wasDisabled = input.disabled; }
          input.disabled = true;
        }
        else if (input.dataset.wasDisabled !== undefined) {
          input.disabled = input.dataset.wasDisabled === "true"; delete input.dataset.wasDisabled;
        }
      });
      if (active) {
        if (!section.querySelector("input[name^='instance_type.']:checked")) {
          var first = section.querySelector("input[name^='instance_type.']:not(:disabled)");
          if (first) { first.checked = true; }
        }
        refreshImages(section);
      }
    });
  }

  function load(section) {
    if (!section || !section.hasAttribute("data-lazy")) { return Promise.resolve(); }
    if (section.dataset.loading) { return section.loading; }
    section.dataset.loading = "true";
    if (start) { start.disabled = true; }
    var url = root.dataset.groupUrl + "?group=" + encodeURIComponent(section.dataset.group);
    section.loading = fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        var fresh = holder.querySelector("fieldset.primehub-group");
        if (!fresh) { throw new Error("no options in the answer"); }
        section.replaceWith(fresh);
      })
      .catch(function (error) {
        delete section.dataset.loading;
        var message = document.createElement("p");
        message.className = "alert alert-danger primehub-load-error";
        message.textContent = "The options of this group could not be loaded (" + error.message + "). Choose it again to retry.";
        section.replaceChildren(message);
      })
      .finally(function () { if (start) { start.disabled = false; } });
    return section.loading;
  }

  select.addEventListener("change", function () { load(current()).then(show); show(); });
  root.addEventListener("change", function (event) {
    if (event.target.name && event.target.name.indexOf("instance_type.") === 0) { refreshImages(current()); }
    if (event.target.name && event.target.name.indexOf("image.") === 0) { refreshImages(current()); }
  });
  document.getElementById("primehub-add-env").addEventListener("click", function () {
    var rows = root.querySelectorAll(".primehub-env-row");
    var copy = rows[rows.length - 1].cloneNode(true);
    copy.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    rows[rows.length - 1].after(copy);
  });
  if (root.dataset.autolaunch === "true") {
    var box = document.getElementById("primehub-autolaunch");
    document.getElementById("primehub-autolaunch-group").textContent = select.options[select.selectedIndex].text;
    box.hidden = false;
    if (start) { start.focus(); }
  }
  // Live quota: the hub's view of each group's usage, every data-refresh-seconds while visible.
  function g3(value) {  // Python's "%.3g"
    if (value === 0) { return "0"; }
    var exponent = Math.floor(Math.log10(Math.abs(value)));
    if (exponent < -4 || exponent >= 3) {
      return value.toExponential(2).replace(/\.?0+e/, "e").replace(/e([+-])(\d)$/, "e$10$2");
    }
    return String(Number(value.toPrecision(3)));
  }
  function memory(bytes) { return g3(bytes / 1e9) + " GB"; }
  function limit(value, format) { return value === null ? "\u221e" : format(value); }
  function setRow(row, used, quota) {
    if (!row) { return; }
    var cells = row.querySelectorAll("td");
    cells[0].textContent = String(used.cpu) + " / " + limit(quota.cpu, String);
    cells[1].textContent = memory(used.memory) + " / " + limit(quota.memory, memory);
    cells[2].textContent = String(used.gpu) + " / " + limit(quota.gpu, String);
  }
  function applyGroup(section, group) {
    setRow(section.querySelector(".primehub-user-quota"), group.usage.user, group.quota.user);
    setRow(section.querySelector(".primehub-group-quota"), group.usage.group, group.quota.group);
    group.instance_types.forEach(function (type) {
      var input = section.querySelector('input[name^="instance_type."][value="' + CSS.escape(type.name) + '"]');
      if (!input) { return; }
      var over = type.over_quota !== null;
      if (section.hidden) { input.dataset.wasDisabled = over; } else { input.disabled = over; }
      if (over) { input.checked = false; }
      var label = input.closest("label");
      var note = label.querySelector(".primehub-over-quota");
      if (over && !note) {
        note = document.createElement("small");
        note.className = "primehub-over-quota d-block text-danger";
        label.append(note);
      }
      if (note) { if (over) { note.textContent = type.over_quota; } else { note.remove(); } }
    });
    if (section === current()) { show(); }
  }
  function refreshQuota() {
    if (document.hidden) { return; }
    var xsrf = window.jhdata ? window.jhdata.xsrf_token : "";  // the hub's API asks it of cookie requests
    fetch(root.dataset.groupsUrl, {
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-XSRFToken": xsrf },
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        body.groups.forEach(function (group) {
          var section = root.querySelector('fieldset.primehub-group[data-group="' + CSS.escape(group.name) + '"]:not([data-lazy])');
          if (section) { applyGroup(section, group); }
        });
        root.dataset.quotaRefreshed = String(Date.now());
      })
      .catch(function () { /* the next round tries again */ });
  }
  var every = parseInt(root.dataset.refreshSeconds, 10);
  if (every > 0 && root.dataset.groupsUrl) { setInterval(refreshQuota, every * 1000); }
  show();
})();
