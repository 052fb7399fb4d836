/* keymux dashboard: one page over the documented admin API (/admin/keys, /admin/pins, /admin/usage,
   /admin/requests).
   No build step, no framework; charts by uPlot (vendor/). The master key lives in sessionStorage and travels
   only in the Authorization header. */
(function () {
  "use strict";

  var KEY_STORE = "keymux.master";
  var THEME_STORE = "keymux.theme";
  var POLL_MS = 2000;
  var TRAFFIC_MS = 10000;
  var RANGES = { "1h": { bucket: "minute", step: 60 }, "24h": { bucket: "hour", step: 3600 },
                 "7d": { bucket: "hour", step: 3600 } };
  var OUTCOMES = [["ok", "ok"], ["rate_limited", "rate-limited"], ["queued", "queued"], ["refused", "refused"],
                  ["error", "error"]];
  var ATTEMPT_WHY = {
    ok: "answered",
    rate_limited: "per-minute quota hit (429): key parked, the request moved to another key",
    daily_exhausted: "daily quota used up: key parked until midnight Pacific, the request moved on",
    backoff: "429 without quota details: key backed off, the request moved on",
    invalid_key: "key rejected by the provider (invalid, leaked or suspended): key disabled",
    upstream_error: "provider error (5xx, overload or unreadable answer): tried elsewhere",
    timeout: "the provider did not answer in time: tried elsewhere",
    client_error: "the request's own fault: the provider's answer was returned as is"
  };

  var state = { keys: null, keyStates: {}, pins: null, requests: [], selected: null, view: "keys", timer: null,
                trafficAt: 0, charts: [], syncing: false, loadingTraffic: false, groups: [] };
  var nf = new Intl.NumberFormat();

  // -- small DOM helpers ------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") el.textContent = v;
        else if (k === "class") el.className = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : v);
      });
    }
    (function add(children) {  // strings, nodes and (nested) arrays of them; null / false are skipped
      children.forEach(function (x) {
        if (Array.isArray(x)) add(x);
        else if (x !== null && x !== undefined && x !== false) el.appendChild(typeof x === "string" ? document.createTextNode(x) : x);
      });
    })(Array.prototype.slice.call(arguments, 2));
    return el;
  }
  function announce(text) { $("status").textContent = text; }
  function problem(text) { var p = $("problem"); p.textContent = text || ""; p.hidden = !text; }
  function money(x) { return "$" + (x && x < 0.01 ? Number(x.toPrecision(2)).toString() : (x || 0).toFixed(2)); }
  function secs(x) {
    if (x === null || x === undefined) return "–";
    return x < 1 ? Math.round(x * 1000) + " ms" : (x < 10 ? x.toFixed(2) : x.toFixed(1)) + " s";
  }
  function duration(s) {
    s = Math.max(0, Math.ceil(s));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function clock(t) {
    var d = new Date(t * 1000);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // -- the admin API ---------------------------------------------------------------------------
  function ApiError(status, message) { this.status = status; this.message = message; }
  function api(method, path, body, key) {
    var headers = { "authorization": "Bearer " + (key || sessionStorage.getItem(KEY_STORE) || "") };
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(path, { method: method, headers: headers, cache: "no-store", credentials: "omit",
                         body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (resp) {
        return resp.text().then(function (text) {
          var doc = null;
          try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
          if (!resp.ok) {
            var msg = doc && doc.error && doc.error.message ? doc.error.message : resp.status + " " + resp.statusText;
            throw new ApiError(resp.status, msg);
          }
          return doc;
        });
      }, function () { throw new ApiError(0, "cannot reach keymux (network error)"); });
  }
  function failed(err) {
    if (err && err.status === 401) { signOut("Your master key is no longer accepted: sign in again."); return; }
    problem(err && err.message ? err.message : String(err));
  }

  // -- sign in / out ---------------------------------------------------------------------------
  function showLogin(message) {
    $("app").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("master").focus();
  }
  function signIn(ev) {
    ev.preventDefault();
    var input = $("master");
    var key = input.value;
    if (!key) { $("login-error").textContent = "Enter the master key."; return; }
    $("login-error").textContent = "Checking…";
    api("GET", "/admin/keys", undefined, key).then(function (doc) {
      sessionStorage.setItem(KEY_STORE, key);
      input.value = "";
      $("login-error").textContent = "";
      start(doc);
    }, function (err) {
      $("login-error").textContent = err.status === 401
        ? "Wrong master key: keymux did not accept it."
        : err.status === 403 ? err.message : "Could not sign in: " + err.message;
      input.select();
    });
  }
  function signOut(message) {
    sessionStorage.removeItem(KEY_STORE);
    clearTimeout(state.timer);
    state.timer = null;
    state.keys = null; state.keyStates = {}; state.requests = []; state.selected = null;
    destroyCharts();
    $("keys").replaceChildren();
    $("requests").tBodies[0].replaceChildren();
    $("detail").hidden = true;
    problem("");
    announce("");
    showLogin(message || "Signed out.");
  }
  function start(keysDoc) {
    $("login").hidden = true;
    $("app").hidden = false;
    if (keysDoc) { renderEgress(keysDoc.egress); renderKeys(keysDoc); }
    select(state.view, false);
    schedule(0);
  }

  // -- tabs ------------------------------------------------------------------------------------
  var VIEWS = ["keys", "traffic", "requests", "clients"];
  function select(view, focus) {
    state.view = view;
    VIEWS.forEach(function (v) {
      var tab = $("tab-" + v), on = v === view;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      $("view-" + v).hidden = !on;
    });
    if (focus) $("tab-" + view).focus();
    if (view === "traffic") { state.trafficAt = 0; }
    schedule(0);
  }
  function tabKeys(ev) {
    var i = VIEWS.indexOf(state.view), next = null;
    if (ev.key === "ArrowRight") next = VIEWS[(i + 1) % VIEWS.length];
    else if (ev.key === "ArrowLeft") next = VIEWS[(i + VIEWS.length - 1) % VIEWS.length];
    else if (ev.key === "Home") next = VIEWS[0];
    else if (ev.key === "End") next = VIEWS[VIEWS.length - 1];
    if (next) { ev.preventDefault(); select(next, true); }
  }

  // -- polling ---------------------------------------------------------------------------------
  function schedule(ms) {
    clearTimeout(state.timer);
    state.timer = setTimeout(tick, ms);
  }
  function tick() {
    if (!sessionStorage.getItem(KEY_STORE)) return;
    var work;
    if (state.view === "keys") work = loadKeys();
    else if (state.view === "requests") work = Promise.all([loadRequests(), state.keys ? null : loadKeys()]);
    else if (state.view === "clients") work = loadClients();
    else work = Date.now() - state.trafficAt >= TRAFFIC_MS ? loadTraffic() : Promise.resolve();
    work.then(function () { problem(""); }, failed).then(function () {
      if (sessionStorage.getItem(KEY_STORE)) schedule(POLL_MS);
    });
  }

  // -- keys ------------------------------------------------------------------------------------
  function loadKeys() {
    return Promise.all([api("GET", "/admin/keys"), api("GET", "/admin/pins")]).then(function (res) {
      state.pins = {};
      res[1].data.forEach(function (p) { state.pins[p.key] = p; });
      renderEgress(res[0].egress);
      renderKeys(res[0]);
      renderPins(res[1]);
    });
  }

  // -- pinned resources (interactions, files, caches, batches live in one key's project) -------------
  var KIND_NAMES = { interactions: ["interaction", "interactions"], files: ["file", "files"],
                     cachedContents: ["cache", "caches"], batches: ["batch", "batches"] };
  function pinnedText(p) {
    return Object.keys(KIND_NAMES).filter(function (k) { return p.pinned[k]; }).map(function (k) {
      return nf.format(p.pinned[k]) + " " + KIND_NAMES[k][p.pinned[k] === 1 ? 0 : 1];
    }).join(" · ");
  }
  function renderPins(doc) {
    var body = $("pins-table").tBodies[0];
    body.replaceChildren.apply(body, doc.data.map(function (p) {
      return h("tr", { "data-key": p.key }, h("td", null, h("code", { text: p.key })),
        Object.keys(KIND_NAMES).map(function (k) { return h("td", { class: "num", "data-kind": k, text: nf.format(p.pinned[k] || 0) }); }),
        h("td", { class: "num", "data-kind": "waits", text: nf.format(p.waits) }));
    }));
    $("pins-running").textContent = doc.batches_running
      ? doc.batches_running + (doc.batches_running === 1 ? " batch" : " batches") + " still running: " +
        "usage is recorded when each ends" : "";
    var waits = doc.recent_waits, table = $("pin-waits");
    table.hidden = !waits.length;
    $("pin-waits-empty").hidden = !!waits.length;
    table.tBodies[0].replaceChildren.apply(table.tBodies[0], waits.map(function (w) {
      return h("tr", null,
        h("td", { text: clock(w.at), title: new Date(w.at * 1000).toISOString() }), h("td", null, h("code", { text: w.key })),
        h("td", { text: (KIND_NAMES[w.kind] || [w.kind])[0] }), h("td", { text: w.operation }),
        h("td", { class: "num", text: secs(w.wait) }), h("td", { text: w.outcome + " (" + w.status + ")" }));
    }));
  }

  // A provider backing off as a whole: most of its keys got 429s at once, so the limit is this host's IP.
  function renderEgress(egress) {
    var box = $("egress"), names = Object.keys(egress || {});
    box.hidden = names.length === 0;
    box.replaceChildren.apply(box, names.map(function (p) {
      return h("span", null, h("strong", { text: p + " backing off " + duration(egress[p].until_in) + ": " }),
               egress[p].reason + " ");
    }));
  }

  function bar(name, lim) {
    if (!lim) return null;
    var used = lim.used || 0, limit = lim.limit;
    var pct = limit ? Math.min(100, (used / limit) * 100) : 0;
    var cls = "bar" + (limit && used >= limit ? " full" : pct >= 80 ? " high" : "");
    var text = limit ? nf.format(used) + " / " + nf.format(limit) : nf.format(used) + " (no limit)";
    return [h("span", { text: name }),
            h("div", { class: cls, role: "meter", "aria-label": name + " used", "aria-valuemin": "0",
                       "aria-valuemax": String(limit || 0), "aria-valuenow": String(used),
                       "aria-valuetext": text },
              h("span", { style: null, "data-pct": String(pct) })),
            h("span", { class: "val", text: text })];
  }

  function modelItem(m) {
    var until = m.until_in, why = m.why;
    var line = null;
    if (m.state === "disabled") line = h("p", { class: "why" }, "Out until enabled: ", h("strong", { text: why || "disabled" }));
    else if (m.state !== "ready") {
      line = h("p", { class: "why" },
        "Usable again in ", h("span", { class: "countdown", "data-deadline": String(performance.now() + (until || 0) * 1000),
                                         text: duration(until || 0) }),
        " — ", h("span", { text: why || m.state }));
    } else if (why) line = h("p", { class: "why muted", text: why });
    var bars = h("div", { class: "bars" }, bar("rpm", m.limits.rpm), bar("rpd", m.limits.rpd), bar("tpm", m.limits.tpm),
                 m.limits.tpd && m.limits.tpd.limit ? bar("tpd", m.limits.tpd) : null,
                 m.limits.max_parallel_requests && m.limits.max_parallel_requests.limit ? bar("parallel", m.limits.max_parallel_requests) : null);
    return h("li", { class: "model", "data-model": m.model },
      h("div", { class: "model-head" }, h("span", { class: "badge " + m.state, text: m.state }),
        h("code", { text: m.model }), h("span", { class: "muted", text: "in " + m.groups.join(", ") })),
      line, bars);
  }

  function action(label, fp, verb, extra) {
    return h("button", Object.assign({ type: "button", "data-fid": verb + ":" + fp, "data-key": fp, "data-action": verb,
                                       "aria-label": label + " " + fp, text: label, onclick: onAction }, extra || {}));
  }

  function keyTile(k) {
    var t = k.today;
    var anyDisabled = k.models.some(function (m) { return m.state === "disabled"; });
    var today = t ? h("p", { class: "today" }, "Today: ", h("strong", { text: nf.format(t.requests) }), t.requests === 1 ? " request · " : " requests · ",
                      h("strong", { text: nf.format(t.errors) }), t.errors === 1 ? " error · " : " errors · ",
                      h("strong", { text: nf.format(t.tokens) }), " tokens · ",
                      h("strong", { text: money(t.cost) }), t.value > t.cost ? " (list price " + money(t.value) + ")" : "")
                  : h("p", { class: "today muted", text: "Today: usage unavailable (ledger down)" });
    return h("article", { class: "key " + k.state, "data-key": k.key, "aria-label": "key " + k.key + ", " + k.state },
      h("div", { class: "key-head" }, h("h3", null, h("code", { text: k.key })),
        h("span", { class: "badge " + k.state, text: k.state }),
        k.added_at_run_time ? h("span", { class: "badge runtime", text: "added at run time" }) : null),
      h("p", { class: "meta", text: k.provider + " · groups: " + k.groups.join(", ") +
               (k.project ? " · project: " + k.project : "") }),
      h("ul", { class: "models" }, k.models.map(modelItem)),
      today,
      state.pins && state.pins[k.key] && state.pins[k.key].total
        ? h("p", { class: "pinned", text: "Pinned here: " + pinnedText(state.pins[k.key]) }) : null,
      h("div", { class: "actions" },
        anyDisabled ? action("Enable", k.key, "enable") : action("Disable", k.key, "disable"),
        action("Reset", k.key, "reset", { title: "clear cooldowns, backoff and failure counts" }),
        action("Remove", k.key, "remove", k.added_at_run_time ? { class: "danger" }
          : { class: "danger", disabled: true, title: "keys from the config file are removed by editing it and reloading" })));
  }

  function renderKeys(doc) {
    var keys = doc.data;
    var focused = document.activeElement && document.activeElement.getAttribute("data-fid");
    var changes = [];
    keys.forEach(function (k) {
      var summary = k.models.map(function (m) { return m.state; }).join(",");
      var before = state.keyStates[k.key];
      if (state.keys && before !== summary) {
        var m = k.models.find(function (x) { return x.state !== "ready"; });
        changes.push(k.key + " is " + k.state + (m && m.why ? " (" + m.why + ")" : ""));
      }
      state.keyStates[k.key] = summary;
    });
    state.keys = keys;
    var tiles = keys.map(keyTile);
    $("keys").replaceChildren.apply($("keys"), tiles);
    document.querySelectorAll(".bar > span[data-pct]").forEach(function (s) { s.style.width = s.getAttribute("data-pct") + "%"; });
    if (focused) {
      var again = document.querySelector('[data-fid="' + CSS.escape(focused) + '"]');
      if (again && !again.disabled) again.focus();
    }
    var counts = {};
    keys.forEach(function (k) { counts[k.state] = (counts[k.state] || 0) + 1; });
    $("keys-summary").textContent = keys.length + " keys: " + ["ready", "cooling", "exhausted", "disabled"]
      .filter(function (s) { return counts[s]; }).map(function (s) { return counts[s] + " " + s; }).join(", ") +
      (doc.ledger_error ? " · ledger unavailable: " + doc.ledger_error : "");
    if (changes.length) announce(changes.join("; "));
    var groups = [];
    keys.forEach(function (k) { k.groups.forEach(function (g) { if (groups.indexOf(g) < 0) groups.push(g); }); });
    groups.sort();
    if (groups.join("\n") !== state.groups.join("\n")) {
      state.groups = groups;
      var sel = $("add-group"), current = sel.value;
      sel.replaceChildren.apply(sel, groups.map(function (g) { return h("option", { value: g, text: g }); }));
      if (groups.indexOf(current) >= 0) sel.value = current;
    }
  }

  function tickCountdowns() {
    var now = performance.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      el.textContent = duration((parseFloat(el.getAttribute("data-deadline")) - now) / 1000);
    });
  }

  function onAction(ev) {
    var btn = ev.currentTarget, fp = btn.getAttribute("data-key"), verb = btn.getAttribute("data-action");
    var req;
    if (verb === "remove") {
      if (!window.confirm("Remove key " + fp + "? Requests in flight finish; it takes no new ones.")) return;
      req = api("DELETE", "/admin/keys/" + encodeURIComponent(fp));
    } else {
      req = api("POST", "/admin/keys/" + encodeURIComponent(fp) + "/" + verb);
    }
    btn.disabled = true;
    req.then(function () {
      announce(fp + ": " + { disable: "disabled", enable: "enabled", reset: "reset", remove: "removed" }[verb]);
      return loadKeys();
    }).catch(failed).then(function () { btn.disabled = false; });
  }

  function addKey(ev) {
    ev.preventDefault();
    var apiKey = $("add-api-key"), out = $("add-result");
    var body = { group: $("add-group").value, api_key: apiKey.value };
    if (!body.group || !body.api_key) { out.className = "bad"; out.textContent = "Choose a group and paste the API key."; return; }
    ["rpm", "rpd"].forEach(function (n) { var v = $("add-" + n).value; if (v) body[n] = parseInt(v, 10); });
    apiKey.value = "";  // sent once, never kept
    out.className = ""; out.textContent = "Adding…";
    api("POST", "/admin/keys", body).then(function (doc) {
      body = null;
      out.className = "ok";
      out.textContent = "Added " + doc.key + " to " + doc.group + " (" + doc.model + ").";
      $("add-rpm").value = ""; $("add-rpd").value = "";
      return loadKeys();
    }, function (err) {
      body = null;
      if (err.status === 401) return failed(err);
      out.className = "bad";
      out.textContent = "Not added: " + err.message;
    });
  }

  // -- clients (gateway keys: /admin/clients) --------------------------------------------------
  function loadClients() { return api("GET", "/admin/clients").then(renderClients); }
  function limitsText(c) {
    var parts = ["rpm", "tpm", "rpd", "max_parallel"].filter(function (n) { return c[n]; })
      .map(function (n) { return n + " " + c[n]; });
    return parts.join(", ") || "none";
  }
  function clientAction(label, name, verb) {
    return h("button", { type: "button", text: label, "data-client": name, "data-action": verb,
                         "aria-label": label + " " + name });
  }
  function renderClients(doc) {
    var rows = doc.data || [];
    state.clients = rows;
    var body = document.querySelector("#clients tbody");
    body.replaceChildren.apply(body, rows.map(function (c) {
      var u = c.usage || {}, b = c.budget;
      var budget = b ? money(b.usd) + "/" + b.period + (u.budget_resets ? " (resets " + u.budget_resets + ")" : "") : "none";
      var st = c.disabled ? "disabled" : (c.expires && c.expires * 1000 < Date.now() ? "expired" :
               (c.admin ? "read-only admin" : "active"));
      if (u.over_soft_budget) st += ", over soft budget";
      var actions = c.source === "config" ? ["from config file"] : [
        clientAction(c.disabled ? "Enable" : "Disable", c.name, c.disabled ? "enable" : "disable"),
        clientAction("Rotate", c.name, "rotate"), clientAction("Delete", c.name, "delete")];
      return h("tr", { "data-client": c.name }, [
        h("th", { scope: "row", text: c.name }), h("td", { text: c.fingerprint }),
        h("td", { text: c.models.length ? c.models.join(", ") : "all" }), h("td", { text: limitsText(c) }),
        h("td", { class: "num", text: nf.format(u.requests_today || 0) }),
        h("td", { class: "num spent", text: money(u.spent || 0) }), h("td", { text: budget }),
        h("td", { class: "num", text: nf.format(u.refused || 0) }), h("td", { class: "state", text: st }),
        h("td", {}, actions)]);
    }));
    body.querySelectorAll("button[data-client]").forEach(function (btn) { btn.addEventListener("click", onClientAction); });
    $("clients-empty").hidden = rows.length > 0;
    $("clients-summary").textContent = rows.length + " gateway key" + (rows.length === 1 ? "" : "s");
  }
  function showSecret(secret) {
    $("client-secret").textContent = secret;
    $("client-secret-box").hidden = false;
  }
  function onClientAction(ev) {
    var btn = ev.currentTarget, name = btn.getAttribute("data-client"), verb = btn.getAttribute("data-action");
    var path = "/admin/clients/" + encodeURIComponent(name), req;
    if (verb === "delete") {
      if (!window.confirm("Delete gateway key " + name + "? Its key stops working at once.")) return;
      req = api("DELETE", path);
    } else req = api("POST", path + "/" + verb);
    btn.disabled = true;
    req.then(function (doc) {
      if (doc && doc.key) showSecret(doc.key);
      announce(name + ": " + { enable: "enabled", disable: "disabled", rotate: "new key made", delete: "deleted" }[verb]);
      return loadClients();
    }).catch(failed).then(function () { btn.disabled = false; });
  }
  function addClient(ev) {
    ev.preventDefault();
    var out = $("client-result"), body = { name: $("client-name").value.trim() };
    var models = $("client-models").value.split(",").map(function (m) { return m.trim(); }).filter(Boolean);
    if (models.length) body.models = models;
    if ($("client-rpm").value) body.rpm = parseInt($("client-rpm").value, 10);
    if ($("client-budget").value.trim()) body.budget = $("client-budget").value.trim();
    out.className = ""; out.textContent = "Creating…";
    api("POST", "/admin/clients", body).then(function (doc) {
      out.className = "ok";
      out.textContent = "Created " + doc.name + " (" + doc.fingerprint + ").";
      showSecret(doc.key);
      ["client-name", "client-models", "client-rpm", "client-budget"].forEach(function (id) { $(id).value = ""; });
      return loadClients();
    }, function (err) {
      if (err.status === 401) return failed(err);
      out.className = "bad";
      out.textContent = "Not created: " + err.message;
    });
  }

  // -- traffic ---------------------------------------------------------------------------------
  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function palette() { return ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6", "--c7", "--c8"].map(css); }

  function destroyCharts() {
    state.charts.forEach(function (c) { c.plot.destroy(); });
    state.charts = [];
  }

  function usageUrl(params) {
    return "/admin/usage?" + Object.keys(params).filter(function (k) { return params[k]; })
      .map(function (k) { return k + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  function loadTraffic() {
    var range = $("range").value, split = $("split").value, r = RANGES[range];
    state.trafficAt = Date.now();
    var total = api("GET", usageUrl({ since: range, bucket: r.bucket, metrics: "outcomes,latency" }));
    var parts = split ? api("GET", usageUrl({ by: split, since: range, bucket: r.bucket, metrics: "latency" }))
                      : Promise.resolve(null);
    return Promise.all([total, parts]).then(function (res) { renderTraffic(res[0], res[1], split, r.step); });
  }

  function axisTimes(doc, step) {
    var first = Math.floor(doc.since / step) * step, last = Math.floor((doc.until - 1) / step) * step, xs = [];
    for (var t = first; t <= last; t += step) xs.push(t);
    return xs;
  }

  function column(xs, rows, pick, empty) {
    var at = {};
    rows.forEach(function (r) { at[r.bucket] = r; });
    return xs.map(function (x) { return at[x] ? pick(at[x]) : empty; });
  }

  function renderTraffic(doc, parts, split, step) {
    var xs = axisTimes(doc, step), colors = palette();
    var t = doc.total, o = t.outcomes || {};
    $("traffic-totals").textContent = nf.format(t.requests || 0) + " requests · " +
      OUTCOMES.slice(1).map(function (p) {
        var n = (o[p[0]] || 0) + (p[0] === "error" ? (o.client_error || 0) : 0);
        return nf.format(n) + " " + p[1];
      }).join(" · ") + " · " + nf.format(t.total_tokens || 0) + " tokens · " + money(t.cost) + " cost (" +
      money(t.value) + " at list price) · latency p50 " + secs(t.latency_p50) + ", p95 " + secs(t.latency_p95) +
      " · queue wait p95 " + secs(t.queue_wait_p95);

    var charts = [];
    charts.push(["fig-outcomes", OUTCOMES.map(function (p, i) {
      return { label: p[1], stroke: [colors[0], colors[1], colors[2], colors[5], colors[3]][i],
               values: column(xs, doc.data, function (r) {
                 return (r.outcomes[p[0]] || 0) + (p[0] === "error" ? (r.outcomes.client_error || 0) : 0);
               }, 0) };
    })]);
    var groups = [];
    if (parts) {
      var totals = {};
      parts.data.forEach(function (r) { var k = r[split] === null ? "(no key)" : r[split]; totals[k] = (totals[k] || 0) + r.requests; });
      groups = Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; }).slice(0, 8);
    }
    function perGroup(pick, empty) {
      return groups.map(function (g, i) {
        return { label: g, stroke: colors[i % colors.length],
                 values: column(xs, parts.data.filter(function (r) { return (r[split] === null ? "(no key)" : r[split]) === g; }), pick, empty) };
      });
    }
    $("fig-requests").hidden = !parts;
    document.querySelector("#fig-requests .split-name").textContent = split;
    if (parts) charts.push(["fig-requests", perGroup(function (r) { return r.requests; }, 0)]);
    charts.push(["fig-tokens", parts ? perGroup(function (r) { return r.total_tokens; }, 0) : [
      { label: "prompt", stroke: colors[4], values: column(xs, doc.data, function (r) { return r.prompt_tokens; }, 0) },
      { label: "completion", stroke: colors[2], values: column(xs, doc.data, function (r) { return r.completion_tokens; }, 0) },
      { label: "total", stroke: colors[7], values: column(xs, doc.data, function (r) { return r.total_tokens; }, 0) }]]);
    charts.push(["fig-cost", parts ? perGroup(function (r) { return r.cost; }, 0) : [
      { label: "cost", stroke: colors[3], values: column(xs, doc.data, function (r) { return r.cost; }, 0) },
      { label: "list price", stroke: colors[5], values: column(xs, doc.data, function (r) { return r.value; }, 0) }]]);
    charts.push(["fig-latency", parts ? perGroup(function (r) { return r.latency_p95; }, null).map(function (s) {
      s.label += " p95"; return s; }) : [
      { label: "latency p50", stroke: colors[4], values: column(xs, doc.data, function (r) { return r.latency_p50; }, null) },
      { label: "latency p95", stroke: colors[2], values: column(xs, doc.data, function (r) { return r.latency_p95; }, null) },
      { label: "queue wait p95", stroke: colors[1], values: column(xs, doc.data, function (r) { return r.queue_wait_p95; }, null) }]]);
    drawCharts(xs, charts);
  }

  function drawCharts(xs, charts) {
    var signature = charts.map(function (c) { return c[0] + ":" + c[1].map(function (s) { return s.label; }).join("|"); }).join(";") +
      ";" + (document.documentElement.getAttribute("data-theme") || "") + ";" + matchMedia("(prefers-color-scheme: dark)").matches;
    var zoom = null;
    if (state.charts.length && state.signature === signature) {
      var x = state.charts[0].plot.scales.x, d = state.charts[0].plot.data[0];
      if (d.length && (x.min > d[0] || x.max < d[d.length - 1])) zoom = { min: x.min, max: x.max };
      state.charts.forEach(function (c, i) {
        c.plot.setData([xs].concat(charts[i][1].map(function (s) { return s.values; })));
        var fig = $(c.id);
        fig.setAttribute("data-points", String(countPoints(charts[i][1])));
      });
      if (zoom) state.charts[0].plot.setScale("x", zoom);
      return;
    }
    destroyCharts();
    state.signature = signature;
    var axis = { stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 }, ticks: { stroke: css("--grid"), width: 1 } };
    charts.forEach(function (c) {
      var fig = $(c[0]), el = fig.querySelector(".plot");
      var fmt = c[0] === "fig-latency" ? secs : c[0] === "fig-cost" ? money : function (v) {
        return v === null || v === undefined ? "–" : nf.format(v); };
      el.replaceChildren();
      var opts = {
        width: Math.max(260, el.clientWidth || fig.clientWidth - 20), height: 220,
        cursor: { sync: { key: "keymux-traffic" }, drag: { x: true, y: false } },
        scales: { x: { time: true } },
        axes: [Object.assign({}, axis), Object.assign({ size: 64, values: function (u, splits) { return splits.map(fmt); } }, axis)],
        series: [{}].concat(c[1].map(function (s) {
          return { label: s.label, stroke: s.stroke, width: 2, spanGaps: false, value: function (u, v) { return fmt(v); },
                   points: { size: 6, filter: function (u, si) {  // dots only where something happened
                     var out = []; u.data[si].forEach(function (v, i) { if (v) out.push(i); }); return out; } } };
        })),
        hooks: { setScale: [function (u, key) { if (key === "x") follow(u); }] }
      };
      var plot = new uPlot(opts, [xs].concat(c[1].map(function (s) { return s.values; })), el);
      fig.setAttribute("data-points", String(countPoints(c[1])));
      state.charts.push({ id: c[0], plot: plot });
    });
  }

  function countPoints(series) {
    var n = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v) n++; }); });
    return n;
  }

  function follow(source) {
    if (state.syncing) return;
    state.syncing = true;
    var x = source.scales.x;
    state.charts.forEach(function (c) {
      if (c.plot !== source) c.plot.setScale("x", { min: x.min, max: x.max });
    });
    state.syncing = false;
  }

  function resizeCharts() {
    state.charts.forEach(function (c) {
      var el = $(c.id).querySelector(".plot");
      var w = Math.max(260, el.clientWidth);
      if (Math.abs(w - c.plot.width) > 4) c.plot.setSize({ width: w, height: 220 });
    });
  }

  // -- requests --------------------------------------------------------------------------------
  function loadRequests() {
    return api("GET", "/admin/requests?limit=200").then(function (doc) { state.requests = doc.data; renderRequests(); });
  }

  function classes(r) {
    var out = [];
    if (r.outcome === "ok" || r.outcome === "cache_hit") out.push("ok");
    if (r.outcome === "refused") out.push("refused");
    if (r.outcome === "failed" || r.outcome === "broken" || r.outcome === "client_error") out.push("error");
    if (r.attempts.some(function (a) { return ["rate_limited", "daily_exhausted", "backoff"].indexOf(a[1]) >= 0; })) out.push("rate_limited");
    if (r.queue_wait && r.queue_wait >= 0.01) out.push("queued");
    return out;
  }

  function matches(r, text, outcome) {
    if (outcome && classes(r).indexOf(outcome) < 0) return false;
    if (!text) return true;
    var hay = [r.client, r.group, r.key, r.request_id, r.status, r.outcome, r.upstream_model, r.detail,
               r.attempts.map(function (a) { return a.join(" "); }).join(" ")].join(" ").toLowerCase();
    return text.toLowerCase().split(/\s+/).every(function (w) { return hay.indexOf(w) >= 0; });
  }

  function renderRequests() {
    var text = $("filter").value.trim(), outcome = $("outcome").value;
    var rows = state.requests.filter(function (r) { return matches(r, text, outcome); });
    var focused = document.activeElement && document.activeElement.getAttribute("data-fid");
    var body = $("requests").tBodies[0];
    body.replaceChildren.apply(body, rows.map(function (r) {
      var cls = classes(r);
      return h("tr", { class: state.selected === r.id ? "selected" : null, "data-id": r.id },
        h("td", { "data-label": "Time" }, h("button", { type: "button", class: "link", "data-fid": "req:" + r.id,
          "aria-label": "Details of request " + r.request_id + " at " + clock(r.at), text: clock(r.at),
          title: new Date(r.at * 1000).toISOString(), onclick: function () { showDetail(r.id, true); } })),
        h("td", { "data-label": "Client", text: r.client }),
        h("td", { "data-label": "Group", text: r.group }),
        h("td", { "data-label": "Key" }, h("code", { text: r.key || "–" })),
        h("td", { "data-label": "Status" }, h("span", { class: "outcome " + (cls[0] || ""), text: r.status + " " + r.outcome.replace("_", " ") }),
          cls.indexOf("rate_limited") >= 0 && r.outcome === "ok" ? h("span", { class: "outcome rate_limited", text: " (rate-limited)" }) : null,
          cls.indexOf("queued") >= 0 ? h("span", { class: "outcome queued", text: " (queued " + secs(r.queue_wait) + ")" }) : null),
        h("td", { "data-label": "Attempts", text: String(r.attempts.length) }),
        h("td", { "data-label": "Tokens", class: "num", text: nf.format(r.total_tokens) }),
        h("td", { "data-label": "Cost", class: "num", text: money(r.cost) }),
        h("td", { "data-label": "Latency", class: "num", text: secs(r.latency) }));
    }));
    $("requests-empty").hidden = rows.length > 0;
    if (focused) {
      var again = document.querySelector('[data-fid="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
    if (state.selected) showDetail(state.selected, false);
  }

  function showDetail(id, focus) {
    var r = state.requests.find(function (x) { return x.id === id; });
    if (!r) return;
    state.selected = id;
    document.querySelectorAll("#requests tbody tr").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-id") === id);
    });
    var tried = r.attempts.map(function (a) { return a[0]; });
    var others = (state.keys || []).filter(function (k) { return k.groups.indexOf(r.group) >= 0 && tried.indexOf(k.key) < 0; });
    var rows = [["Request id", r.request_id], ["When", new Date(r.at * 1000).toISOString()], ["Client", r.client],
                ["Surface", r.surface], ["Operation", r.operation || "–"], ["Group", r.group], ["Model", r.upstream_model || "–"],
                ["Answered by", r.key || "no key"], ["Status", r.status + " " + r.outcome],
                ["Queue wait", secs(r.queue_wait)], ["First byte", secs(r.ttfb)], ["Latency", secs(r.latency)],
                ["Tokens", nf.format(r.prompt_tokens) + " in, " + nf.format(r.completion_tokens) + " out" +
                  (r.reasoning_tokens ? ", " + nf.format(r.reasoning_tokens) + " reasoning" : "")],
                ["Cost", money(r.cost) + (r.free_tier ? " (free tier; list price " + money(r.value) + ")" : "")]];
    // Tokens priced at their own modality's rate (a generated image, audio input): shown where they differ from text
    if (r.modal_cost) rows.push(["Priced by modality", Object.keys(r.modal_cost).map(function (m) {
      var parts = m.split("_");
      return parts.slice(1).join(" ") + " " + parts[0] + " " + money(r.modal_cost[m]);
    }).join(", ") + " (at list price)"]);
    rows.push(["Stream", r.stream ? "yes" : "no"]);
    var body = $("detail-body");
    body.replaceChildren(h("div", null,
      h("dl", null, rows.map(function (p) { return [h("dt", { text: p[0] }), h("dd", { text: String(p[1]) })]; })),
      h("h4", { text: "Attempts" }),
      r.attempts.length ? h("ol", { class: "attempts" }, r.attempts.map(function (a) {
        return h("li", null, h("code", { text: a[0] }), " — ", h("strong", { text: a[1].replace("_", " ") }), ": ",
                 ATTEMPT_WHY[a[1]] || a[1]);
      })) : h("p", { class: "muted", text: r.outcome === "cache_hit" ? "Answered from the response cache: no key was used."
                                                                      : "No key was tried." }),
      r.detail ? [h("h4", { text: "Why" }), h("p", { class: "why", text: r.detail })] : null,
      others.length ? [h("h4", { text: "Other keys of " + r.group }),
        h("ul", null, others.map(function (k) {
          return h("li", null, h("code", { text: k.key }), " — not tried" +
            (r.outcome === "ok" && !r.attempts.some(function (a) { return a[1] !== "ok"; }) ? " (not needed)"
              : " (the pool did not offer it: busy, cooling, exhausted or disabled at the time; see Why)") +
            "; now " + k.state);
        }))] : null));
    $("detail-title").textContent = "Request " + clock(r.at) + " · " + r.status + " " + r.outcome;
    $("detail").hidden = false;
    document.querySelector(".split-pane").classList.add("open");
    if (focus) $("detail-title").focus();
  }

  function closeDetail() {
    var id = state.selected;
    state.selected = null;
    $("detail").hidden = true;
    document.querySelector(".split-pane").classList.remove("open");
    document.querySelectorAll("#requests tbody tr.selected").forEach(function (tr) { tr.classList.remove("selected"); });
    var back = id && document.querySelector('[data-fid="req:' + CSS.escape(id) + '"]');
    if (back) back.focus();
  }

  // -- theme -----------------------------------------------------------------------------------
  function applyTheme(theme) {
    if (theme === "light" || theme === "dark") document.documentElement.setAttribute("data-theme", theme);
    else document.documentElement.removeAttribute("data-theme");
    var label = theme === "light" || theme === "dark" ? theme : "auto";
    $("theme").textContent = "Theme: " + label;
    $("theme").setAttribute("aria-label", "Theme: " + label + " (change)");
    if (state.charts.length) { destroyCharts(); state.trafficAt = 0; if (state.view === "traffic") schedule(0); }
  }
  function cycleTheme() {
    var order = ["auto", "light", "dark"], current = localStorage.getItem(THEME_STORE) || "auto";
    var next = order[(order.indexOf(current) + 1) % order.length];
    localStorage.setItem(THEME_STORE, next);
    applyTheme(next);
    announce("Theme: " + next);
  }

  // -- wiring ----------------------------------------------------------------------------------
  function init() {
    applyTheme(localStorage.getItem(THEME_STORE) || "auto");
    $("login-form").addEventListener("submit", signIn);
    $("logout").addEventListener("click", function () { signOut("Signed out."); });
    $("theme").addEventListener("click", cycleTheme);
    VIEWS.forEach(function (v) { $("tab-" + v).addEventListener("click", function () { select(v, false); }); });
    $("tabs").addEventListener("keydown", tabKeys);
    $("add-key").addEventListener("submit", addKey);
    $("add-client").addEventListener("submit", addClient);
    $("range").addEventListener("change", function () { state.trafficAt = 0; schedule(0); });
    $("split").addEventListener("change", function () { state.trafficAt = 0; schedule(0); });
    $("filter").addEventListener("input", renderRequests);
    $("outcome").addEventListener("change", renderRequests);
    $("detail-close").addEventListener("click", closeDetail);
    $("detail").addEventListener("keydown", function (ev) { if (ev.key === "Escape") closeDetail(); });
    window.addEventListener("resize", resizeCharts);
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { applyTheme(localStorage.getItem(THEME_STORE) || "auto"); });
    setInterval(tickCountdowns, 1000);
    if (sessionStorage.getItem(KEY_STORE)) {
      api("GET", "/admin/keys").then(start, function (err) {
        if (err.status === 401) { sessionStorage.removeItem(KEY_STORE); showLogin("Your master key is no longer accepted: sign in again."); }
        else { start(null); failed(err); }
      });
    } else showLogin("");
  }
  // For tests and the curious: the page's state (never the key) and "poll now".
  window.keymuxDashboard = { state: state, refresh: function () { state.trafficAt = 0; schedule(0); } };
  init();
})();
