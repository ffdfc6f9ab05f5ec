/* stage5 review room. Vanilla JS, no network but this server. Part of stage5 (MIT licence). */
"use strict";
(function () {
  const token = document.querySelector('meta[name="stage5-token"]').content;
  const allow = document.querySelector('meta[name="stage5-allow-placeholder"]').content === "1";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const msg = $("#message");

  function say(text, bad) {
    msg.hidden = !text;
    msg.textContent = text || "";
    msg.className = bad ? "bad" : "good";
  }

  async function api(path, data, opts) {
    const resp = await fetch(path, Object.assign({
      method: "POST", credentials: "same-origin",
      headers: {"X-Stage5-Token": token, "Content-Type": "application/json"},
      body: JSON.stringify(data || {}),
    }, opts || {}));
    let body = {};
    try { body = await resp.json(); } catch (err) { body = {error: "the server answered " + resp.status}; }
    if (!resp.ok) { const e = new Error(body.error || ("error " + resp.status)); e.body = body; throw e; }
    return body;
  }

  function reload() {
    sessionStorage.setItem("stage5-scroll", String(window.scrollY));
    window.location.replace("/" + (allow ? "?allow_placeholder=1" : ""));
  }

  async function act(path, data, done) {
    try {
      const out = await api(path, data);
      if (done) { done(out); } else { sessionStorage.setItem("stage5-message", out.message || "done"); reload(); }
    } catch (err) { say(err.message, true); }
  }

  // ---- swatches (CSP: colours are set here, not in style attributes) ----
  $$(".swatch").forEach(s => { s.style.background = s.dataset.colour; });

  // ---- filters and search (kept across reloads) ----
  const search = $("#search"), ftype = $("#filter-type");
  function applyFilters() {
    if (!search) return;
    const q = search.value.trim().toLowerCase(), t = ftype.value;
    const on = $$(".filter").filter(c => c.checked).map(c => c.value);
    $$(".card").forEach(c => {
      let show = (!q || c.dataset.search.includes(q)) && (!t || c.dataset.type === t);
      if (on.includes("conflicts")) show = show && c.dataset.conflicts === "1";
      if (on.includes("missing")) show = show && (c.dataset.state === "missing" || c.dataset.state === "failed");
      if (on.includes("stale")) show = show && (c.dataset.state === "stale" || c.dataset.state === "off-style");
      if (on.includes("locked")) show = show && c.dataset.locked === "1";
      c.hidden = !show;
    });
    $$("h3.group").forEach(h => { h.hidden = !!t && h.dataset.type !== t; });
    sessionStorage.setItem("stage5-filters", JSON.stringify({q: search.value, t: t, on: on}));
  }
  if (search) {
    try {
      const f = JSON.parse(sessionStorage.getItem("stage5-filters") || "{}");
      search.value = f.q || ""; ftype.value = f.t || "";
      $$(".filter").forEach(c => { c.checked = (f.on || []).includes(c.value); });
    } catch (err) { /* no saved filters */ }
    search.addEventListener("input", applyFilters);
    ftype.addEventListener("change", applyFilters);
    $$(".filter").forEach(c => c.addEventListener("change", applyFilters));
    applyFilters();
  }
  const scroll = sessionStorage.getItem("stage5-scroll");
  if (scroll) { window.scrollTo(0, Number(scroll)); sessionStorage.removeItem("stage5-scroll"); }
  const note = sessionStorage.getItem("stage5-message");
  if (note) { say(note, false); sessionStorage.removeItem("stage5-message"); }

  // ---- autosave: 1 s after the last keystroke ----
  const timers = {}, saving = new Set();
  function stateOf(id) { return $('.save-state[data-id="' + id + '"]'); }
  function showState(id, text, cls, retry) {
    const el = stateOf(id);
    el.textContent = text; el.className = "save-state " + (cls || "");
    if (retry) {
      const b = document.createElement("button");
      b.textContent = "retry"; b.className = "retry";
      b.addEventListener("click", () => save(id));
      el.append(" ", b);
    }
  }
  async function save(id) {
    const ta = $('textarea.description[data-id="' + id + '"]');
    showState(id, "saving…", "saving");
    saving.add(id);
    try {
      const out = await api("/api/assets/" + id + "/description",
                            {description: ta.value, updated_at: ta.dataset.updated});
      ta.dataset.updated = out.updated_at; ta.dataset.dirty = "";
      showState(id, out.overwrote ? "saved (it replaced a change made elsewhere)" : "saved", "saved");
    } catch (err) {
      showState(id, "failed — " + err.message, "failed", true);
    } finally { saving.delete(id); }
  }
  $$("textarea.description").forEach(ta => {
    ta.addEventListener("input", () => {
      const id = ta.dataset.id;
      ta.dataset.dirty = "1";
      showState(id, "editing…", "editing");
      clearTimeout(timers[id]);
      timers[id] = setTimeout(() => save(id), 1000);
    });
  });

  // ---- selection and merge ----
  function picked() { return $$(".pick").filter(c => c.checked).map(c => c.value); }
  $$(".pick").forEach(c => c.addEventListener("change", () => {
    const b = $("#merge-btn"); if (b) b.disabled = picked().length < 2;
  }));
  function nameOf(id) { return $('.card[data-id="' + id + '"]').dataset.name; }

  // ---- progress of extract / generate ----
  let running = false;
  async function poll() {
    try {
      const resp = await fetch("/api/state" + (allow ? "?allow_placeholder=1" : ""), {credentials: "same-origin"});
      const s = await resp.json();
      const job = s.job || {}, box = $("#progress");
      if (job.status === "running") {
        running = true;
        if (box) {
          box.hidden = false;
          const pct = job.total ? Math.round(100 * job.done / job.total) : 5;
          $(".bar", box).style.width = pct + "%";
          $(".label", box).textContent = job.kind + " " + job.done + "/" + job.total + " " + (job.label || "");
        }
      } else if (running) { running = false; reload(); return; }
      // another tab or the CLI changed a description
      $$("textarea.description").forEach(ta => {
        const at = (s.updated_at || {})[ta.dataset.id];
        if (saving.has(ta.dataset.id)) return;
        if (at && ta.dataset.updated && at !== ta.dataset.updated) {
          showState(ta.dataset.id, ta.dataset.dirty ? "changed elsewhere: your next save replaces it"
                                                    : "changed elsewhere — reload to see it", "elsewhere");
        }
      });
    } catch (err) { /* the server may be restarting */ }
    setTimeout(poll, running ? 400 : 2000);
  }
  poll();

  // ---- the gate ----
  const ap = $("#allow-placeholder");
  if (ap) ap.addEventListener("change", () => {
    window.location.replace("/" + (ap.checked ? "?allow_placeholder=1" : ""));
  });

  // ---- buttons ----
  document.addEventListener("click", async ev => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const id = b.dataset.id, a = b.dataset.action;
    say("");
    if (a === "style-lock") return act("/api/style/lock", {style_id: b.dataset.style});
    if (a === "branch-create") return act("/api/branch/create", {name: $("#branch-name").value, style: $("#branch-style").value});
    if (a === "branch-switch") return act("/api/branch/switch", {name: $("#branch-switch").value});
    if (a === "extract") {
      const file = $("#upload").files[0];
      let script = $("#script").value;
      if (file) {
        try {
          const resp = await fetch("/api/upload?name=" + encodeURIComponent(file.name), {
            method: "POST", credentials: "same-origin", headers: {"X-Stage5-Token": token}, body: file});
          const out = await resp.json();
          if (!resp.ok) return say(out.error, true);
          script = out.script;
        } catch (err) { return say(err.message, true); }
      }
      return act("/api/extract", {script: script, model: $("#model").value}, () => { running = true; poll(); });
    }
    if (a === "generate-missing") return act("/api/generate", {which: "missing"}, () => { running = true; });
    if (a === "generate-all") return act("/api/generate", {which: "all", yes: true}, () => { running = true; });
    if (a === "generate") return act("/api/generate", {assets: [Number(id)], yes: true}, out => {
      if (out.started) running = true; else say(out.message || "nothing to generate");
    });
    if (a === "lock") return act("/api/assets/" + id + "/lock");
    if (a === "unlock") return act("/api/assets/" + id + "/unlock");
    if (a === "promote") return act("/api/assets/" + id + "/promote", {}, out =>
      say("promoted " + out.done.map(d => d.asset + " (" + d.action + ")").join(", ")));
    if (a === "remove") {
      if (!window.confirm("Remove " + nameOf(id) + "? (its image goes to the trash; undo restores it)")) return;
      return act("/api/assets/" + id + "/remove", {}, out => {
        sessionStorage.setItem("stage5-message", "removed " + out.removed.join(", ") + " — Undo the last change restores it");
        reload();
      });
    }
    if (a === "mentions") {
      const box = $('.card[data-id="' + id + '"] .mentions');
      if (!box.hidden) { box.hidden = true; return; }
      try {
        const resp = await fetch("/api/assets/" + id + "/mentions", {credentials: "same-origin"});
        const out = await resp.json();
        if (!resp.ok) return say(out.error, true);
        box.replaceChildren(...out.mentions.map(m => {
          const p = document.createElement("p");
          p.textContent = "scene " + m.scene_number + ": " + m.context; return p;
        }));
        (out.jobs || []).filter(j => j.error).forEach(j => {
          const p = document.createElement("p"); p.className = "bad"; p.textContent = "job failed: " + j.error; box.append(p);
        });
        box.hidden = false;
      } catch (err) { say(err.message, true); }
      return;
    }
    if (a === "merge") {
      const ids = picked(), tgt = $("#merge-target"), desc = $("#merge-desc");
      tgt.replaceChildren(...ids.map(i => new Option(nameOf(i), i)));
      desc.replaceChildren(...ids.map(i => new Option(nameOf(i), i)));
      $("#merge-panel").hidden = false;
      return;
    }
    if (a === "merge-cancel") { $("#merge-panel").hidden = true; return; }
    if (a === "merge-go") {
      const target = $("#merge-target").value, d = $("#merge-desc").value;
      return act("/api/merge", {target: target, sources: picked().filter(i => i !== target),
                                description_from: d === target ? null : d});
    }
    if (a === "add") return act("/api/add", {name: $("#add-name").value, type: $("#add-type").value,
                                             description: $("#add-description").value});
    if (a === "suggest") {
      return act("/api/assets/" + id + "/suggest", {}, s => {
        const box = $('.conflict[data-id="' + id + '"] .suggestion');
        box.replaceChildren();
        const p = document.createElement("p"); p.textContent = "suggestion (" + s.method + "): " + s.description;
        const w = document.createElement("p"); w.className = "muted"; w.textContent = "why: " + s.reasoning;
        box.append(p, w);
        if (s.usable) {
          const ap2 = document.createElement("button"); ap2.textContent = "Apply the suggestion";
          ap2.dataset.action = "apply"; ap2.dataset.id = id; box.append(ap2);
        }
        box.hidden = false;
      });
    }
    if (a === "apply") return act("/api/assets/" + id + "/apply");
    if (a === "resolve") return act("/api/assets/" + id + "/resolve",
                                   {text: $('.conflict[data-id="' + id + '"] .resolve-text').value});
    if (a === "undo") return act("/api/undo", {}, out => {
      sessionStorage.setItem("stage5-message", "undid " + out.undid + ": " + out.summary); reload();
    });
    if (a === "lock-all") {
      const ac = $("#accept-conflicts");
      return act("/api/lock-all", {allow_placeholder: allow, accept_conflicts: !!(ac && ac.checked)}, out => {
        sessionStorage.setItem("stage5-message", "stage 5 locked: " + out.locked.length + " asset(s)"); reload();
      });
    }
  });
})();
