/* docschat loader: <script src="https://HOST/widget.js" data-title="..." async></script>
 * Adds a launcher button to the page; on first open adds an iframe with the chat page from HOST.
 * Options: docs/widget.md. No dependencies, no build step. */
(function () {
  "use strict";
  var d = document, w = window, NS = "docschat";
  var me = d.currentScript || [].slice.call(d.querySelectorAll("script[src]"))
    .filter(function (s) { return /\/widget\.js([?#]|$)/.test(s.src); }).pop();
  if (!me || w.DocsChat) return;
  var origin = new URL(me.src, location.href).origin;

  // Every option is read here, once. Anything invalid falls back to its default.
  var ds = me.dataset, ok = function (v, re) { return re.test(v || ""); };
  var opt = {
    title: ds.title || "Ask the docs",
    welcome: ds.welcome == null ? "Hi! Ask me anything about these docs." : ds.welcome,
    info: ds.info || "",
    position: ds.position === "bottom-left" ? "bottom-left" : "bottom-right",
    theme: ok(ds.theme, /^(light|dark|auto)$/) ? ds.theme : "auto",
    accent: ds.accent && w.CSS && CSS.supports("color", ds.accent) ? ds.accent : "",
    shortcut: ds.shortcut || "",
    label: ds.label || "Ask AI"
  };

  var keys = null;
  if (opt.shortcut) {
    keys = { k: "" };
    opt.shortcut.toLowerCase().split("+").forEach(function (p) {
      if (p === "mod") p = /Mac|iP/.test(navigator.platform) ? "meta" : "ctrl";
      if (ok(p, /^(ctrl|alt|shift|meta)$/)) keys[p] = true; else keys.k = p || "+";
    });
  }
  function matches(e) {
    return !!keys && (e.key || "").toLowerCase() === keys.k && !!keys.ctrl === e.ctrlKey &&
      !!keys.alt === e.altKey && !!keys.shift === e.shiftKey && !!keys.meta === e.metaKey;
  }

  // Text colour with the better contrast on a background colour (WCAG relative luminance).
  function onColor(c, probe) {
    probe.style.color = c;
    var v = (getComputedStyle(probe).color.match(/[\d.]+/g) || [0, 0, 0]).slice(0, 3)
      .map(function (x) { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    var L = 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
    return (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? "#111" : "#fff";
  }

  var host = d.createElement("div");
  host.setAttribute("data-docschat", "");
  var root = host.attachShadow({ mode: "open" });
  var css = ":host{all:initial}" +
    ".l{position:fixed;z-index:2147483000;bottom:20px;right:20px;display:flex;align-items:center;" +
    "gap:8px;height:48px;padding:0 18px;border:0;border-radius:24px;cursor:pointer;" +
    "background:var(--a,#2557d6);color:var(--f,#fff);font:600 15px/1 system-ui,sans-serif;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25)}" +
    ".l:focus-visible{outline:3px solid #111;outline-offset:2px;box-shadow:0 0 0 6px #fff}" +
    ".l svg{width:20px;height:20px}" +
    ".p{position:fixed;z-index:2147483001;bottom:80px;right:20px;width:400px;" +
    "height:min(640px,calc(100vh - 100px));border-radius:14px;overflow:hidden;" +
    "box-shadow:0 8px 32px rgba(0,0,0,.3)}" +
    ".left .l,.left .p{right:auto;left:20px}" +
    ".p.x{bottom:20px;width:min(960px,calc(100vw - 40px));height:calc(100vh - 40px)}" +
    ".p[hidden]{display:none}iframe{display:block;border:0;width:100%;height:100%}" +
    "@media (max-width:600px){.p,.p.x{top:0;left:0;right:0;bottom:0;width:auto;height:auto;border-radius:0}}";
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
  } catch (e) { // Older browsers: a style element (needs the host page's CSP to allow it).
    var st = d.createElement("style");
    st.textContent = css;
    root.appendChild(st);
  }
  var wrap = d.createElement("div");
  wrap.className = opt.position === "bottom-left" ? "left" : "";
  wrap.innerHTML = '<button class="l" type="button" aria-haspopup="dialog" aria-expanded="false">' +
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">' +
    '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 21l1.9-5.4A8 8 0 1 1 21 12z"/></svg><span></span></button>' +
    '<div class="p" hidden></div>';
  root.appendChild(wrap);
  var btn = wrap.firstChild, panel = wrap.lastChild, frame = null, open = false, ready = false;
  btn.lastChild.textContent = opt.label;
  if (opt.accent) {
    btn.style.setProperty("--a", opt.accent);
    btn.style.setProperty("--f", onColor(opt.accent, btn));
    btn.style.color = "";
  }
  var narrow = w.matchMedia("(max-width:600px)");

  function post(m) {
    if (ready && frame.contentWindow) {
      m.ns = NS;
      frame.contentWindow.postMessage(m, origin);
    }
  }
  function show(focus) {
    if (!frame) {
      var q = new URLSearchParams({ host: location.origin });
      ["title", "welcome", "info", "theme", "accent", "shortcut"].forEach(function (k) {
        if (opt[k] || k === "welcome") q.set(k, opt[k]);
      });
      frame = d.createElement("iframe");
      frame.title = opt.title;
      frame.allow = "clipboard-write";
      frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups " +
        "allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation");
      // The fragment is never sent to the server: the options stay in the browser.
      frame.src = origin + "/widget/#" + q;
      panel.appendChild(frame);
    }
    panel.hidden = false;
    open = true;
    btn.setAttribute("aria-expanded", "true");
    try { sessionStorage.setItem("docschat:open", "1"); } catch (e) { /* storage blocked */ }
    if (focus !== false) frame.focus();
    post({ type: "open", focus: focus !== false, full: narrow.matches });
  }
  function hide() {
    if (!open) return;
    open = false;
    panel.hidden = true;
    btn.setAttribute("aria-expanded", "false");
    try { sessionStorage.removeItem("docschat:open"); } catch (e) { /* storage blocked */ }
    btn.focus();
  }
  function toggle() { if (open) hide(); else show(); }

  btn.addEventListener("click", toggle);
  d.addEventListener("keydown", function (e) {
    var t = e.composedPath()[0] || e.target;
    var typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (matches(e) && !(typing && !e.ctrlKey && !e.altKey && !e.metaKey)) {
      e.preventDefault();
      toggle();
    } else if (e.key === "Escape" && open && e.composedPath().indexOf(host) >= 0) {
      hide();
    }
  });
  w.addEventListener("message", function (e) {
    var m = e.data;
    if (e.origin !== origin || !frame || e.source !== frame.contentWindow || !m || m.ns !== NS) return;
    if (m.type === "close") hide();
    else if (m.type === "expand") panel.classList.toggle("x", !!m.expanded);
    else if (m.type === "ready" && (ready = true) && open) post({ type: "open", focus: d.activeElement === host, full: narrow.matches });
  });
  narrow.addEventListener("change", function () { post({ type: "layout", full: narrow.matches }); });

  w.DocsChat = { open: show, close: hide, toggle: toggle };
  (d.body || d.documentElement).appendChild(host);
  // Reopen after the reader followed a link from the chat to another page of the site.
  try { if (sessionStorage.getItem("docschat:open")) show(false); } catch (e) { /* storage blocked */ }
})();
