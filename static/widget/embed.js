/* docschat loader (docs/widget.md): a launcher; the chat opens in an iframe from our origin. */
(() => {
  "use strict";
  const d = document, w = window, NS = "docschat";
  const me = d.currentScript || [...d.querySelectorAll("script[src]")]
    .filter((s) => /\/widget\.js([?#]|$)/.test(s.src)).pop();
  if (!me || w.DocsChat) return;
  const origin = new URL(me.src, location.href).origin;

  // Every option is read and resolved here, once; invalid values fall back to defaults.
  const ds = me.dataset;
  const opt = {
    title: ds.title || "Ask the docs",
    welcome: ds.welcome ?? "Hi! Ask me anything about these docs.",
    info: ds.info || "",
    position: ds.position === "bottom-left" ? "bottom-left" : "bottom-right",
    theme: /^(light|dark)$/.test(ds.theme) ? ds.theme : "auto",
    accent: ds.accent && CSS.supports("color", ds.accent) ? ds.accent : "",
    onAccent: "", // found below
    label: ds.label || "Ask AI",
  };

  let keys = null;
  if (ds.shortcut) {
    keys = { k: "+" };
    for (let p of ds.shortcut.toLowerCase().split("+")) {
      if (p === "mod") p = /Mac|iP/.test(navigator.platform) ? "meta" : "ctrl";
      if (/^(ctrl|alt|shift|meta)$/.test(p)) keys[p] = true;
      else if (p) keys.k = p;
    }
  }
  const matches = (e) => !!keys && (e.key || "").toLowerCase() === keys.k &&
    ["ctrl", "alt", "shift", "meta"].every((m) => !!keys[m] === e[m + "Key"]);

  const host = d.createElement("div");
  host.setAttribute("data-docschat", "");
  const root = host.attachShadow({ mode: "open" });
  // A constructed sheet in a shadow root: apart from the page's CSS, allowed by a strict CSP.
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(":host{all:initial}" +
    ".l{position:fixed;z-index:2147483000;bottom:20px;right:20px;display:flex;align-items:center;" +
    "gap:8px;height:48px;padding:0 18px;border:0;border-radius:24px;cursor:pointer;" +
    "background:var(--a,#2557d6);color:var(--f,#fff);font:600 15px/1 system-ui,sans-serif;" +
    "box-shadow:0 4px 14px #0004}" +
    ".l:focus-visible{outline:3px solid #111;outline-offset:2px;box-shadow:0 0 0 6px #fff}" +
    ".l svg{width:20px;height:20px}" +
    ".p{position:fixed;z-index:2147483001;bottom:80px;right:20px;width:400px;" +
    "height:min(640px,calc(100vh - 100px));border-radius:14px;overflow:hidden;box-shadow:0 0 0 1px #8885,0 8px 32px #0005}" +
    ".left .l,.left .p{right:auto;left:20px}" +
    ".p.x{bottom:20px;width:min(960px,calc(100vw - 40px));height:calc(100vh - 40px)}" +
    ".p[hidden]{display:none}iframe{display:block;border:0;width:100%;height:100%}" +
    "@media (max-width:600px){.p,.p.x{inset:0;width:auto;height:auto;border-radius:0}}");
  root.adoptedStyleSheets = [sheet];
  const wrap = d.createElement("div");
  if (opt.position === "bottom-left") wrap.className = "left";
  wrap.innerHTML = '<button class="l" type="button" aria-haspopup="dialog" aria-expanded="false">' +
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/></svg><span></span></button>' +
    '<div class="p" hidden></div>';
  root.append(wrap);
  const btn = wrap.firstChild, panel = wrap.lastChild;
  let frame = null, open = false, ready = false;
  btn.lastChild.textContent = opt.label;
  const narrow = w.matchMedia("(max-width:600px)");
  const store = (on) => {
    try {
      if (on) sessionStorage.setItem("docschat:open", "1");
      else sessionStorage.removeItem("docschat:open");
    } catch { /* storage blocked */ }
  };

  const post = (m) => ready && frame.contentWindow.postMessage({ ...m, ns: NS }, origin);
  const show = (focus) => {
    if (!frame) {
      const q = new URLSearchParams({ host: location.origin });
      for (const k of ["title", "welcome", "info", "theme", "accent", "onAccent"]) {
        if (opt[k] || k === "welcome") q.set(k, opt[k]);
      }
      if (keys) q.set("keys", JSON.stringify(keys));
      frame = d.createElement("iframe");
      frame.title = opt.title;
      frame.allow = "clipboard-write";
      frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups " +
        "allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation");
      // Options go in the fragment: never sent to the server.
      frame.src = origin + "/widget/#" + q;
      panel.append(frame);
    }
    panel.hidden = false;
    open = true;
    btn.setAttribute("aria-expanded", "true");
    store(1);
    if (focus !== false) frame.focus();
    post({ type: "open", focus: focus !== false, full: narrow.matches });
  };
  const hide = () => {
    if (!open) return;
    open = false;
    panel.hidden = true;
    btn.setAttribute("aria-expanded", "false");
    store(0);
    btn.focus();
  };
  const toggle = () => (open ? hide() : show());

  btn.addEventListener("click", toggle);
  d.addEventListener("keydown", (e) => {
    const t = e.composedPath()[0];
    const typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (matches(e) && !(typing && !e.ctrlKey && !e.altKey && !e.metaKey)) {
      e.preventDefault();
      toggle();
    } else if (e.key === "Escape" && open && t && t.getRootNode() === root) {
      hide();
    }
  });
  w.addEventListener("message", (e) => {
    const m = e.data;
    if (e.origin !== origin || !frame || e.source !== frame.contentWindow || !m || m.ns !== NS) return;
    if (m.type === "close") hide();
    else if (m.type === "expand") panel.classList.toggle("x", !!m.expanded);
    else if (m.type === "ready") {
      ready = true;
      if (open) post({ type: "open", focus: d.activeElement === host, full: narrow.matches });
    }
  });
  narrow.addEventListener("change", () => post({ type: "layout", full: narrow.matches }));

  w.DocsChat = { open: show, close: hide, toggle };
  (d.body || d.documentElement).append(host);
  if (opt.accent) {
    // Black or white text, whichever contrasts more with the accent (WCAG luminance).
    btn.style.color = opt.accent;
    const [r, g, b] = (getComputedStyle(btn).color.match(/[\d.]+/g) || [0, 0, 0]).map((x) => {
      x /= 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    const L = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    btn.style.color = "";
    btn.style.setProperty("--a", opt.accent);
    opt.onAccent = (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? "#111" : "#fff";
    btn.style.setProperty("--f", opt.onAccent);
  }
  // Reopen after the reader followed a link from the chat to another page.
  try {
    if (sessionStorage.getItem("docschat:open")) show(false);
  } catch { /* storage blocked */ }
})();
