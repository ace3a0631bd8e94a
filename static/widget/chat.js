/* docschat chat page: runs in the loader's iframe (or alone) and talks to the API and WebSocket
 * of its own origin. Answers arrive as sanitized HTML and are sanitized again here. */
(() => {
  "use strict";
  const NS = "docschat";
  const $ = (id) => document.getElementById(id);
  const h = (tag, cls, text) => {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  };
  const enc = encodeURIComponent;
  const cpLen = (s) => [...(s || "")].length; // the server counts code points, not UTF-16 units

  // ---- options: from the loader, in the URL fragment (never sent to the server) -------------
  // The loader has applied the defaults, picked the text colour for the accent and parsed the
  // shortcut; this page takes the values as they come. Opened alone, it runs with none.
  const opt = Object.fromEntries(new URLSearchParams(location.hash.slice(1)));
  const framed = window.parent !== window;
  let host = framed ? opt.host || "" : "";
  const anc = location.ancestorOrigins;
  if (framed && anc && anc.length && anc[0] !== "null") host = anc[0];

  const app = $("app"), log = $("log"), msgs = $("msgs"), input = $("input"), sendBtn = $("send");
  const banner = $("banner"), jump = $("jump"), live = $("announce"), expandBtn = $("expand");
  const root = document.documentElement;

  // ---- look: title, theme, accent, welcome, info ---------------------------------------------
  if (opt.title) $("title").textContent = opt.title;
  document.title = $("title").textContent;
  const darkMq = matchMedia("(prefers-color-scheme: dark)");
  const theme = () => {
    const dark = opt.theme === "dark" || (opt.theme !== "light" && darkMq.matches);
    root.dataset.theme = dark ? "dark" : "light";
  };
  theme();
  darkMq.addEventListener("change", theme);
  // Checked again: anyone can link to this page with any fragment.
  for (const [name, colour] of [["--accent", opt.accent], ["--on-accent", opt.onAccent]]) {
    if (colour && CSS.supports("color", colour)) root.style.setProperty(name, colour);
  }
  if (opt.welcome) {
    const w = h("div", "msg bot welcome");
    w.append(h("div", "bubble", opt.welcome));
    msgs.append(w);
  }
  if (opt.info) {
    $("info").textContent = opt.info;
    $("info").hidden = false;
  }
  if (!framed) {
    $("close").hidden = true;
    expandBtn.hidden = true;
  }

  // ---- talking to the loader -------------------------------------------------------------------
  const post = (m) => framed && host && parent.postMessage({ ...m, ns: NS }, host);
  const close = () => post({ type: "close" });
  addEventListener("message", (ev) => {
    const m = ev.data;
    if (!framed || ev.source !== parent || ev.origin !== host || !m || m.ns !== NS) return;
    if (m.type === "open") {
      if (m.focus) input.focus();
      stick();
    }
    if (m.type === "open" || m.type === "layout") expandBtn.hidden = !!m.full;
  });
  $("close").addEventListener("click", close);
  expandBtn.addEventListener("click", () => {
    const on = expandBtn.getAttribute("aria-pressed") !== "true";
    expandBtn.setAttribute("aria-pressed", String(on));
    post({ type: "expand", expanded: on });
    stick();
  });

  // ---- keyboard: Esc and the shortcut close, Tab stays inside the dialog ------------------------
  // The shortcut as the loader parsed it: {k: the key, ctrl/alt/shift/meta: true} (`mod` resolved).
  let keys = null;
  try { keys = JSON.parse(opt.keys || "null"); } catch { /* not from the loader */ }
  const MODS = ["ctrl", "alt", "shift", "meta"];
  const shortcut = (e) => !!keys && (e.key || "").toLowerCase() === keys.k &&
    MODS.every((m) => !!keys[m] === e[m + "Key"]) &&
    (MODS.some((m) => keys[m]) || e.target !== input); // a bare key still types into the box
  document.addEventListener("keydown", (e) => {
    // An Escape the search list took (closing itself) leaves the chat open.
    if (framed && ((e.key === "Escape" && !e.defaultPrevented) || shortcut(e))) {
      e.preventDefault();
      close();
      return;
    }
    if (e.key !== "Tab") return;
    const f = [...app.querySelectorAll("button,a[href],textarea,[tabindex]:not([tabindex='-1'])")]
      .filter((el) => !el.disabled && el.getClientRects().length);
    if (!f.length) return;
    const at = f.indexOf(document.activeElement);
    if (e.shiftKey && at <= 0) {
      e.preventDefault();
      f[f.length - 1].focus();
    } else if (!e.shiftKey && (at === f.length - 1 || at < 0)) {
      e.preventDefault();
      f[0].focus();
    }
  });

  // ---- storage: the session id, per embedding site ---------------------------------------------
  const KEY = "docschat:session:" + (host || location.origin);
  let memory = null;
  const store = {
    get() { try { return localStorage.getItem(KEY); } catch { return memory; } },
    set(v) { memory = v; try { localStorage.setItem(KEY, v); } catch { /* blocked */ } },
    del() { memory = null; try { localStorage.removeItem(KEY); } catch { /* blocked */ } },
  };

  // ---- the API ---------------------------------------------------------------------------------
  let down = false; // the server did not answer the last request
  async function api(method, path, body) {
    let r;
    try {
      r = await fetch("/api" + path, {
        method,
        headers: body ? { "Content-Type": "application/json" } : {},
        body: body ? JSON.stringify(body) : undefined,
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      reachable(false);
      const err = new Error("Can't reach the assistant.");
      err.network = true;
      throw err;
    }
    reachable(true);
    const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
    if (!r.ok) {
      const e = data.error || {};
      const err = new Error(e.message || `Something went wrong (${r.status}).`);
      err.status = r.status;
      err.code = e.code;
      err.retryAfter = r.headers.get("Retry-After");
      throw err;
    }
    return data;
  }

  function reachable(ok) {
    if (!navigator.onLine) return showBanner("You're offline. The chat will catch up when you're back.");
    if (ok === down) {
      down = !ok;
      if (down) schedule(2000);
      else if (sid && !ws) connect(); // back: reconnect now rather than at the next backoff
    }
    showBanner(down ? "Can't reach the assistant right now. Retrying…" : "");
  }
  function showBanner(text) {
    banner.textContent = text;
    banner.hidden = !text;
  }
  addEventListener("offline", () => reachable(false));
  addEventListener("online", () => {
    showBanner("");
    down = false;
    if (sid) {
      sync();
      connect();
    }
  });

  // ---- messages --------------------------------------------------------------------------------
  let sid = store.get();
  const byId = new Map(); // server id -> entry {id, m, el, cp, at}
  const locals = []; // optimistic user messages not yet confirmed by the server
  let clock = 0; // bumps on every live change, so an older list response never undoes a newer one

  const terminal = (s) => s === "done" || s === "error";
  const busy = () => locals.length > 0 || [...byId.values()].some((e) => !terminal(e.m.status));

  function place(e) {
    const before = [...msgs.children].find((x) => x.dataset.local || +x.dataset.id > e.id);
    msgs.insertBefore(e.el, before || null);
  }

  /** Add or update a server message; `quiet` for history that should not be announced. */
  function upsert(m, quiet, at) {
    if (!m || typeof m.id !== "number") return;
    let e = byId.get(m.id);
    if (!e && m.role === "user") {
      const i = locals.findIndex((l) => l.text === m.text);
      if (i >= 0) {
        e = locals.splice(i, 1)[0];
        delete e.el.dataset.local;
        e.el.classList.remove("sending");
        e.id = m.id;
        byId.set(m.id, e);
      }
    }
    if (!e) {
      e = { id: m.id, el: h("article", "msg " + (m.role === "user" ? "user" : "bot")) };
      byId.set(m.id, e);
      place(e);
    } else if (at != null && e.at > at) {
      return; // a live event changed it after this list was asked for
    } else if (e.m && e.m.status === "streaming" && m.status === "streaming" && e.cp > cpLen(m.text)) {
      return; // we already show more of the stream than the stored copy
    }
    e.at = at == null ? ++clock : Math.max(e.at || 0, at);
    const was = e.m && e.m.status;
    e.m = m;
    e.cp = cpLen(m.text);
    draw(e);
    if (m.role === "assistant" && terminal(m.status) && !terminal(was) && (was || !quiet)) {
      const copy = e.el.querySelector(".bubble").cloneNode(true);
      copy.querySelectorAll("button").forEach((b) => b.remove());
      const text = copy.textContent.replace(/\s+/g, " ").trim().slice(0, 1000);
      say((m.status === "error" ? "The answer failed: " : "Answer: ") + text);
    }
    stick();
  }

  function draw(e) {
    const m = e.m, el = e.el;
    const srcs = (m.sources || []).filter((s) => s && (s.title || s.url));
    const sig = [m.status, m.text, m.html, m.stopped, JSON.stringify(srcs), !!e.stopping]
      .join("\n");
    if (sig !== e.sig) {
      e.sig = sig;
      el.dataset.id = m.id;
      el.dataset.status = m.status;
      el.replaceChildren();
      const bubble = h("div", "bubble");
      el.append(bubble);
      if (m.role === "user") {
        bubble.textContent = m.text;
      } else if (m.status === "pending") {
        const t = h("span", "thinking", "Thinking");
        const dots = h("span", "dots");
        dots.setAttribute("aria-hidden", "true");
        dots.append(h("i"), h("i"), h("i"));
        t.append(dots);
        bubble.append(t);
      } else if (m.status === "streaming") {
        bubble.classList.add("plain");
        e.node = document.createTextNode(m.text);
        const cursor = h("span", "cursor");
        cursor.setAttribute("aria-hidden", "true");
        bubble.append(e.node, cursor);
      } else if (m.status === "error") {
        bubble.classList.add("failed");
        bubble.append(h("p", "", m.text || "Sorry, something went wrong while answering."));
        el.append(button("chip", "Retry", "Retry this question", () => retry(e)));
      } else {
        bubble.append(m.html ? clean(m.html) : plainParagraphs(m.text));
        decorate(bubble);
        if (m.stopped) el.append(h("p", "note", "Stopped"));
        if (srcs.length) el.append(sources(srcs));
        const fb = h("div", "feedback");
        fb.setAttribute("role", "group");
        fb.setAttribute("aria-label", "Rate this answer");
        fb.append(
          button("icon fb", THUMB, "Helpful", () => rate(e, "up"), true),
          button("icon fb down", THUMB, "Not helpful", () => rate(e, "down"), true),
        );
        el.append(fb);
      }
      if (m.status === "pending" || m.status === "streaming") {
        const b = button("chip", e.stopping ? "Stopping…" : "Stop", "Stop answering", () => stop(e, b));
        b.disabled = !!e.stopping;
        el.append(b);
      }
    }
    el.querySelectorAll(".fb").forEach((b, i) => {
      b.setAttribute("aria-pressed", String(m.feedback === (i ? "down" : "up")));
    });
      offer(e);
  }

  // ---- hand-off: "Contact support" under an answer without a source or after a thumbs-down ----
  const HANDOFF = (document.querySelector('meta[name="docschat-handoff"]') || {}).content || "";
  function offer(e) {
    const m = e.m;
    const want = HANDOFF && m.role === "assistant" && m.status === "done" &&
      (!(m.sources || []).length || m.feedback === "down");
    const shown = e.el.querySelector(".handoff");
    if (!want || shown) {
      if (!want && shown) shown.remove();
      return;
    }
    let q = e.el.previousElementSibling;
    while (q && !q.classList.contains("user")) q = q.previousElementSibling;
    const a = h("a", "handoff", "Contact support");
    a.href = HANDOFF.split("{question}").join(encodeURIComponent(q ? q.textContent.trim() : ""));
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.addEventListener("click", () => handoff("followed"));
    e.el.append(a);
    if (!e.offered) {
      e.offered = true;
      handoff("offered");
    }
  }

  function handoff(event) {
    if (sid) api("POST", `/sessions/${enc(sid)}/handoff`, { event }).catch(() => {});
  }

  const THUMB = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M7 11v9H4v-9h3zm0 0 4-8a2 2 ' +
    '0 0 1 2 2v4h5.5a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.3 20H7"/></svg>';

  function button(cls, content, label, onClick, svg) {
    const b = h("button", cls);
    b.type = "button";
    if (svg) b.innerHTML = content; // constant markup of ours, never data
    else b.textContent = content;
    if (label !== content) b.setAttribute("aria-label", label);
    if (svg) b.title = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function plainParagraphs(text) {
    const f = document.createDocumentFragment();
    for (const part of (text || "").split(/\n{2,}/)) f.append(h("p", "", part));
    return f;
  }

  function sources(list) {
    const box = h("div", "sources");
    box.append(h("p", "sources-title", "Sources"));
    const ol = h("ol");
    for (const s of list) {
      const li = h("li");
      const url = safeUrl(s.url);
      const title = (s.title || s.url) + (s.section ? " \u203a " + s.section : "");
      if (url) li.append(link(h("a", "", title), url));
      else li.append(title);
      ol.append(li);
    }
    box.append(ol);
    return box;
  }

  /** Copy buttons on code blocks; wide tables scroll on their own. */
  function decorate(bubble) {
    bubble.querySelectorAll("pre").forEach((pre) => {
      const wrap = h("div", "code");
      pre.replaceWith(wrap);
      const b = button("chip copy", "Copy", "Copy code", () => copy(pre.textContent, b));
      wrap.append(pre, b);
    });
    bubble.querySelectorAll("table").forEach((t) => {
      const wrap = h("div", "table");
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", "Table");
      t.replaceWith(wrap);
      wrap.append(t);
    });
  }

  async function copy(text, b) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const t = h("textarea");
      t.value = text;
      app.append(t);
      t.select();
      document.execCommand("copy");
      t.remove();
    }
    b.textContent = "Copied";
    say("Code copied.");
    setTimeout(() => { b.textContent = "Copy"; }, 1500);
  }

  // ---- the sanitising path ---------------------------------------------------------------------
  // Answer HTML never reaches the browser's HTML parser: a small tokenizer reads tags and text,
  // and only allowlisted elements with checked attributes are built in this document. Other
  // elements are dropped (script-like ones with their content) or unwrapped to their text.
  // The allow-list is the server renderer's own (allowlist.json), inlined into this page when the
  // server serves it; without it nothing is built and answers read as plain text.
  let allow = {};
  try { allow = JSON.parse($("allowlist").textContent); } catch { /* answers stay text */ }
  const KEEP = new Set(allow.tags);
  const ATTRIBUTES = allow.attributes || {}; // tag -> the attribute names it may carry
  const SCHEMES = allow.url_schemes || [];
  // How each attribute's value is checked before it is set; one the list allows but that has no
  // check here is dropped.
  const SETTERS = {
    href: (el, v) => { const url = safeUrl(v); if (url) link(el, url); },
    title: (el, v) => { el.title = v; },
    class: (el, v) => { if (/^language-[\w+#-]{1,32}$/.test(v)) el.className = v; },
    align: (el, v) => {
      if (/^(left|right|center)$/i.test(v)) el.className = "al-" + v.toLowerCase();
    },
  };
  const VOID = /^(br|hr|img|image|input|meta|link|base|source|track|embed|area|col|wbr|param|keygen)$/;
  const DROP = /^(script|style|iframe|frame|frameset|object|embed|applet|img|image|svg|math|template|link|meta|base|form|input|button|textarea|select|option|video|audio|source|track|picture|canvas|noscript|noembed|noframes|xmp|plaintext|portal|title|head|dialog|area|map)$/;
  const TOKEN = /<!--[\s\S]*?(?:-->|$)|<(\/?)([a-zA-Z][\w-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|[^<]+|</g;
  const ATTR = /([^\s"'=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
  const ENTITY = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };
  const decode = (s) => s.replace(/&(#x[\da-f]+|#\d+|[a-z]+);/gi, (m, e) => {
    if (e[0] !== "#") return ENTITY[e.toLowerCase()] ?? m;
    const n = /x/i.test(e[1]) ? parseInt(e.slice(2), 16) : +e.slice(1);
    return n > 0 && n < 0x110000 && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : "\ufffd";
  });

  function clean(html) {
    const out = document.createDocumentFragment();
    const open = [{ el: out, tag: "" }];
    let skip = "";
    for (const [token, close, name, attrs] of String(html).matchAll(TOKEN)) {
      const tag = (name || "").toLowerCase();
      if (skip) {
        if (close && tag === skip) skip = "";
        continue;
      }
      const top = open[open.length - 1].el;
      if (!name) {
        if (!token.startsWith("<!--")) top.append(decode(token));
      } else if (close) {
        const at = open.map((o) => o.tag).lastIndexOf(tag);
        if (at > 0) open.length = at;
      } else if (DROP.test(tag)) {
        if (!VOID.test(tag)) skip = tag; // its content goes too
      } else if (KEEP.has(tag) && open.length < 32) {
        const heading = /^h([1-6])$/.exec(tag);
        const el = document.createElement(heading ? "h" + Math.min(6, +heading[1] + 2) : tag);
        const allowed = ATTRIBUTES[tag] || [];
        for (const [, k, v1, v2, v3] of attrs.matchAll(ATTR)) {
          const set = allowed.includes(k.toLowerCase()) && SETTERS[k.toLowerCase()];
          if (set) set(el, decode(v1 ?? v2 ?? v3 ?? ""));
        }
        top.append(el);
        if (!VOID.test(tag)) open.push({ el, tag });
      }
    }
    return out;
  }

  function safeUrl(raw) {
    try {
      const u = new URL(String(raw || "").trim());
      return SCHEMES.includes(u.protocol.slice(0, -1)) ? u.href : null; // "https:" -> "https"
    } catch {
      return null;
    }
  }

  /** Links to the embedding site open in the host page; others in a new tab. */
  function link(a, url) {
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = host && new URL(url).origin === host ? "_top" : "_blank";
    return a;
  }

  // ---- live region ---------------------------------------------------------------------------
  function say(text) {
    live.textContent = "";
    setTimeout(() => { live.textContent = text; }, 60);
  }

  // ---- scrolling: pinned to the newest message while the reader is at the bottom ------------------
  let pinned = true;
  const atBottom = () => log.scrollHeight - log.scrollTop - log.clientHeight < 32;
  function stick(force) {
    if (force) pinned = true;
    if (pinned) log.scrollTop = log.scrollHeight;
    jump.hidden = pinned || atBottom();
  }
  log.addEventListener("scroll", () => {
    pinned = atBottom();
    jump.hidden = pinned;
  });
  const unpin = () => {
    pinned = false;
  };
  log.addEventListener("wheel", (e) => e.deltaY < 0 && unpin(), { passive: true });
  log.addEventListener("touchmove", unpin, { passive: true });
  log.addEventListener("keydown", (e) => {
    if (/^(ArrowUp|PageUp|Home)$/.test(e.key) || (e.key === " " && e.shiftKey)) unpin();
  });
  jump.addEventListener("click", () => {
    stick(true);
    input.focus();
  });
  new ResizeObserver(() => stick()).observe(log);

  // ---- the composer --------------------------------------------------------------------------
  const grow = () => {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  };
  const ready = () => {
    sendBtn.disabled = !input.value.trim();
  };
  input.addEventListener("input", () => {
    grow();
    ready();
    lookup();
  });
  input.addEventListener("keydown", (e) => {
    if (hitKey(e)) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  // ---- instant search: pages that match what is typed, before anything is asked ---------------
  const hits = $("hits");
  let hitTimer = 0, hitAsk = null, hitAt = -1;
  function lookup() {
    clearTimeout(hitTimer);
    const q = input.value.trim();
    if (q.length < 3 || q.length > 200) return showHits([]);
    hitTimer = setTimeout(async () => {
      hitAsk?.abort();
      const ask = (hitAsk = new AbortController());
      try {
        const r = await fetch(`/api/search?q=${enc(q)}&limit=5`, { signal: ask.signal, credentials: "omit" });
        const data = r.ok ? await r.json() : { results: [] };
        if (ask === hitAsk && input.value.trim() === q) showHits(data.results || []);
      } catch { /* aborted, or offline: the question still goes through */ }
    }, 250);
  }
  function showHits(list) {
    hits.replaceChildren();
    hitAt = -1;
    list.forEach((x, i) => {
      const url = safeUrl(x.url);
      if (!url) return;
      const a = link(h("a"), url);
      a.id = "hit" + i;
      a.setAttribute("role", "option");
      a.tabIndex = -1;
      const name = x.title || url;
      a.append(h("b", "", x.section ? `${name} › ${x.section}` : name), h("span", "", x.snippet || ""));
      const li = h("li");
      li.setAttribute("role", "none"); // the listbox's options are the links
      li.append(a);
      hits.append(li);
    });
    const open = hits.children.length > 0;
    hits.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    input.removeAttribute("aria-activedescendant");
    if (open) say(`${hits.children.length} matching page${hits.children.length > 1 ? "s" : ""}; arrow keys to browse`);
  }
  /** Arrow keys move through the matches, Enter opens the highlighted one, Escape closes. */
  function hitKey(e) {
    const options = [...hits.querySelectorAll("a")];
    if (hits.hidden || !options.length) return false;
    if (e.key === "Escape") {
      showHits([]);
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      // -1 is the box itself: from there down goes to the first page, up to the last.
      const step = e.key === "ArrowDown" ? 1 : -1;
      hitAt = ((hitAt + 1 + step + options.length + 1) % (options.length + 1)) - 1;
      options.forEach((o, i) => {
        o.classList.toggle("on", i === hitAt);
        o.setAttribute("aria-selected", String(i === hitAt));
      });
      if (hitAt >= 0) {
        input.setAttribute("aria-activedescendant", options[hitAt].id);
        options[hitAt].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    } else if (e.key === "Enter" && hitAt >= 0 && !e.shiftKey) {
      options[hitAt].click();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });

  let creating = null;
  let queue = Promise.resolve();
  function ensureSession() {
    if (sid) return Promise.resolve(sid);
    creating = creating || api("POST", "/sessions").then((d) => {
      sid = d.session_id;
      store.set(sid);
      connect();
      return sid;
    }).finally(() => { creating = null; });
    return creating;
  }

  async function send() {
    const text = input.value.trim();
    if (!text) return;
    clearTimeout(hitTimer);
    hitAsk?.abort();
    showHits([]);
    // Clear at once: a second press finds nothing to send.
    input.value = "";
    grow();
    ready();
    const e = { text, el: h("article", "msg user sending") };
    e.el.dataset.local = "1";
    e.el.append(h("div", "bubble", text));
    locals.push(e);
    msgs.append(e.el);
    stick(true);
    // One question at a time to the server, so they are stored in the order they were typed.
    const turn = queue;
    let done;
    queue = new Promise((resolve) => { done = resolve; });
    await turn;
    try {
      await ensureSession();
      const ask = () => api("POST", `/sessions/${enc(sid)}/messages`, { text });
      let r;
      try {
        r = await ask();
      } catch (err) {
        if (err.status !== 404) throw err;
        forget(true); // the session is gone: start a new one and ask there
        await ensureSession();
        r = await ask();
      }
      adopt(e, r.message);
      schedule(wsUp ? 10000 : 500);
    } catch (err) {
      reject(e, err);
    } finally {
      done();
    }
  }

  /** The server took an optimistic message: it becomes that message (unless events beat us). */
  function adopt(e, m) {
    const i = locals.indexOf(e);
    if (i < 0 || !m || typeof m.id !== "number") return;
    locals.splice(i, 1);
    delete e.el.dataset.local;
    e.el.classList.remove("sending");
    if (byId.has(m.id)) {
      e.el.remove();
    } else {
      e.id = m.id;
      byId.set(m.id, e);
    }
    upsert(m);
  }

  function reject(e, err) {
    const i = locals.indexOf(e);
    if (i >= 0) locals.splice(i, 1);
    delete e.el.dataset.local;
    e.el.classList.remove("sending");
    e.el.classList.add("rejected");
    let why = err.message;
    if (err.code === "rate_limited" && err.retryAfter) why += ` Try again in ${err.retryAfter} s.`;
    const note = h("p", "note failed-text", "Not sent: " + why);
    e.el.append(note);
    say(note.textContent);
    if (!input.value) {
      input.value = e.text;
      grow();
      ready();
    }
    stick();
  }

  async function act(e, what, body) {
    const r = await api("POST", `/sessions/${enc(sid)}/messages/${e.id}/${what}`, body);
    return r;
  }

  async function stop(e, b) {
    e.stopping = true;
    b.disabled = true;
    b.textContent = "Stopping…";
    try {
      upsert((await act(e, "stop")).message);
      schedule(wsUp ? 3000 : 300);
    } catch (err) {
      e.stopping = false;
      e.sig = null;
      draw(e);
      say("Could not stop: " + err.message);
    }
  }

  async function retry(e) {
    try {
      e.stopping = false;
      upsert((await act(e, "retry")).message);
      schedule(wsUp ? 10000 : 500);
    } catch (err) {
      say("Could not retry: " + err.message);
    }
  }

  async function rate(e, rating) {
    const before = e.m.feedback;
    e.m.feedback = rating;
    draw(e);
    try {
      await act(e, "feedback", { rating });
      say("Thanks for the feedback.");
    } catch (err) {
      e.m.feedback = before;
      draw(e);
      say("Feedback not saved: " + err.message);
    }
  }

  $("new").addEventListener("click", async () => {
    if (sid) {
      try {
        await api("DELETE", `/sessions/${enc(sid)}`);
      } catch (err) {
        if (err.status !== 404) {
          say("Could not start a new conversation: " + err.message);
          return;
        }
      }
    }
    forget();
    input.focus();
    say("New conversation.");
  });

  /** Drop the session: the view empties (except unsent messages when asked), the socket closes. */
  function forget(keepLocals) {
    sid = null;
    store.del();
    closeSocket();
    clearView(keepLocals);
  }

  function clearView(keepLocals) {
    for (const e of byId.values()) e.el.remove();
    byId.clear();
    if (!keepLocals) locals.splice(0).forEach((e) => e.el.remove());
    msgs.querySelectorAll(".rejected").forEach((el) => el.remove());
    stick(true);
  }

  // ---- live updates: WebSocket with backoff; polling the list while it is down ------------------
  let ws = null, wsUp = false, fails = 0, retryTimer = null;
  let timer = null, due = 0;

  function connect() {
    if (!sid || ws) return;
    clearTimeout(retryTimer);
    const mine = sid;
    const sock = new WebSocket(
      `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/sessions/${enc(mine)}/events`,
    );
    ws = sock;
    sock.onopen = () => {
      wsUp = true;
      fails = 0;
      reachable(true);
      sync();
    };
    sock.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === "message") upsert(m.message);
      else if (m.type === "delta") delta(m);
      else if (m.type === "cleared") clearView(true);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      wsUp = false;
      if (ev.code === 4404) {
        forget(true);
        return;
      }
      fails += 1;
      schedule(0); // poll the list until the socket is back
      const wait = Math.min(15000, 500 * 2 ** Math.min(fails, 5)) * (0.5 + Math.random() / 2);
      retryTimer = setTimeout(connect, wait);
    };
  }

  function closeSocket() {
    clearTimeout(retryTimer);
    const sock = ws;
    ws = null;
    wsUp = false;
    if (sock) sock.close();
  }

  function delta(ev) {
    const e = byId.get(ev.message_id);
    if (!e || typeof ev.text !== "string" || typeof ev.offset !== "number") return resyncSoon();
    if (terminal(e.m.status)) return;
    if (ev.offset > e.cp) return resyncSoon(); // a piece is missing: wait for the full message
    const chars = [...ev.text];
    const skip = e.cp - ev.offset;
    if (skip >= chars.length) return;
    const piece = chars.slice(skip).join("");
    if (e.m.status === "pending") {
      e.m = { ...e.m, status: "streaming", text: "" };
      draw(e);
    }
    e.m.text += piece;
    e.cp += chars.length - skip;
    e.node.appendData(piece);
    e.at = ++clock;
    stick();
  }

  let resyncTimer = null;
  function resyncSoon() {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(sync, 400);
  }

  async function sync(quiet) {
    if (!sid) return;
    const mine = sid, at = clock;
    try {
      const data = await api("GET", `/sessions/${enc(mine)}/messages`);
      if (mine !== sid) return;
      const seen = new Set();
      for (const m of data.messages || []) {
        seen.add(m.id);
        upsert(m, quiet, at);
      }
      for (const [id, e] of byId) {
        if (!seen.has(id) && e.at <= at) {
          e.el.remove();
          byId.delete(id);
        }
      }
    } catch (err) {
      if (err.status === 404 && mine === sid) forget(true);
    }
  }

  /** One timer for all polling: the list while the socket is down, a slow check while it is up. */
  function schedule(ms) {
    const at = Date.now() + ms;
    if (timer && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(tick, ms);
  }
  async function tick() {
    timer = null;
    if (!sid) {
      if (down) {
        await fetch("/healthz", { cache: "no-store" }).then(() => reachable(true), () => reachable(false));
        if (down) schedule(2000);
      }
      return;
    }
    if (wsUp && !busy()) return;
    await sync();
    if (!wsUp) schedule(down ? 2000 : busy() ? 1000 : 3000);
    else if (busy()) schedule(10000);
  }

  addEventListener("storage", (ev) => {
    if (ev.key !== KEY || ev.newValue === sid) return;
    closeSocket();
    clearView(true);
    sid = ev.newValue;
    if (sid) {
      sync(true);
      connect();
    }
  });

  // ---- start -----------------------------------------------------------------------------------
  if (sid) {
    sync(true).then(() => stick(true));
    connect();
  }
  post({ type: "ready" });
})();
