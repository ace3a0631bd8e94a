// docschat operator console. Every value that came from readers (questions, answers, comments,
// page titles) reaches the page as text: nodes are built with textContent, never from markup.
(() => {
  'use strict';
  const KEY = 'docschat:admin-token';
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  let convOffset = 0;

  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === 'class') node.className = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid == null || kid === false) continue;
      node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }

  const when = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16).replace('T', ' ') : '');
  const day = (iso) => (iso ? iso.slice(0, 10) : '');

  // A link only for web addresses: a stored source could name javascript: or data: URLs.
  function safeLink(url, text) {
    let ok = false;
    try { ok = ['http:', 'https:'].includes(new URL(url, location.href).protocol); } catch (e) { ok = false; }
    return ok ? el('a', {href: url, target: '_blank', rel: 'noopener noreferrer'}, text || url) : el('span', {}, text || url);
  }

  class Unauthorized extends Error {}

  async function api(path, options = {}) {
    const token = sessionStorage.getItem(KEY);
    if (!token) throw new Unauthorized();
    const headers = {Authorization: 'Bearer ' + token};
    const response = await fetch('/api/admin/' + path, {...options, headers, cache: 'no-store', credentials: 'omit'});
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok) {
      let message = 'The server answered ' + response.status + '.';
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    if (response.status === 204) return null;
    return (response.headers.get('Content-Type') || '').includes('json') ? response.json() : response.text();
  }

  function problem(err) {
    if (err instanceof Unauthorized) return signOut('Your token was not accepted. Please sign in again.');
    $('problem').textContent = err.message || String(err);
    $('problem').hidden = false;
  }

  // --- sign-in -----------------------------------------------------------------------------

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $('app').hidden = true;
    $('signin').hidden = false;
    $('signin-error').textContent = message || '';
    $('token').value = '';
    $('token').focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) return;
    sessionStorage.setItem(KEY, token);
    const response = await fetch('/api/admin/overview?days=1', {headers: {Authorization: 'Bearer ' + token}, cache: 'no-store'});
    if (!response.ok) {
      sessionStorage.removeItem(KEY);
      $('signin-error').textContent = response.status === 429
        ? 'Too many wrong tokens. Please wait a minute.' : 'That token is not right.';
      return;
    }
    $('token').value = '';
    start();
  }

  function start() {
    $('signin').hidden = true;
    $('app').hidden = false;
    route();
  }

  // --- views -------------------------------------------------------------------------------

  function show(name) {
    $('problem').hidden = true;
    for (const view of document.querySelectorAll('[data-view]')) view.hidden = view.dataset.view !== name;
    for (const link of document.querySelectorAll('[data-nav]')) {
      if (link.dataset.nav === name || (name === 'conversation' && link.dataset.nav === 'conversations')) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function route() {
    if ($('app').hidden) return;
    const [name, arg] = location.hash.slice(1).split('/');
    if (name === 'gaps') { show('gaps'); loadGaps().catch(problem); }
    else if (name === 'conversations') { show('conversations'); loadConversations(true).catch(problem); }
    else if (name === 'conversation' && arg) { show('conversation'); loadTranscript(decodeURIComponent(arg)).catch(problem); }
    else { show('overview'); loadOverview().catch(problem); }
  }

  // --- overview ----------------------------------------------------------------------------

  function card(value, label) {
    return el('div', {class: 'card'}, el('b', {}, value), el('span', {}, label));
  }

  async function loadOverview() {
    const data = await api('overview?days=30');
    $('ov-since').textContent = 'last 30 days, since ' + day(data.since);
    const a = data.answers;
    const sec = (v) => (v == null ? '–' : v.toFixed(1) + ' s');
    const cap = data.today.token_cap ? ' of ' + data.today.token_cap.toLocaleString('en') : ' (no cap)';
    $('cards').replaceChildren(
      card(data.questions, 'questions'),
      card(a.answered, 'answered with sources'),
      card(a.uncovered, 'uncovered (no source)'),
      card(a.failed, 'failed'),
      card(data.feedback.up, 'thumbs up'),
      card(data.feedback.down, 'thumbs down'),
      card(sec(data.answer_seconds.p50), 'answer time p50'),
      card(sec(data.answer_seconds.p95), 'answer time p95'),
      card(data.today.tokens.toLocaleString('en'), 'tokens today' + cap),
      card(data.handoff.offered + ' / ' + data.handoff.followed, 'support offered / followed'),
    );
    chart($('chart'), data.per_day);
    $('top-pages').replaceChildren(...data.top_pages.map((p) =>
      el('li', {}, safeLink(p.url, p.title || p.url), ' ', el('span', {class: 'meta'}, '(' + p.count + ')'))));
    if (!data.top_pages.length) $('top-pages').append(el('li', {class: 'hint'}, 'No cited pages yet.'));
    const s = data.settings;
    $('settings').replaceChildren(
      el('dt', {}, 'Retention'), el('dd', {id: 'retention'}, s.retention_days ? s.retention_days + ' days' : 'off (kept forever)'),
      el('dt', {}, 'Hand-off'), el('dd', {}, s.handoff ? 'on' : 'off'),
      el('dt', {}, 'Answers today'), el('dd', {}, data.today.answers + (data.today.answer_cap ? ' of ' + data.today.answer_cap : '')),
    );
  }

  // Bars of questions per day, drawn as inline SVG (no chart library).
  function chart(box, days) {
    const W = 720, H = 200, left = 34, bottom = 22, top = 10;
    const max = Math.max(1, ...days.map((d) => d.questions));
    const step = (W - left) / days.length;
    const g = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Questions per day, last ' + days.length + ' days'});
    const y = (v) => H - bottom - (v / max) * (H - bottom - top);
    for (const v of [0, max]) {
      g.append(svg('line', {x1: left, x2: W, y1: y(v), y2: y(v)}));
      g.append(svg('text', {x: left - 4, y: y(v) + 4, 'text-anchor': 'end'}, String(v)));
    }
    days.forEach((d, i) => {
      const h = H - bottom - y(d.questions);
      const bar = svg('rect', {class: 'bar-day', x: (left + i * step + 1).toFixed(1), y: y(d.questions).toFixed(1),
        width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1), 'data-date': d.date, 'data-count': d.questions});
      bar.append(svg('title', {}, d.date + ': ' + d.questions + ' questions'));
      g.append(bar);
      if (i === 0 || i === days.length - 1 || (i % 7 === 0 && days.length - 1 - i >= 3)) {
        const last = i === days.length - 1;
        const x = last ? W : i === 0 ? left : left + i * step + step / 2;
        g.append(svg('text', {x, y: H - 6, 'text-anchor': last ? 'end' : i === 0 ? 'start' : 'middle'}, d.date.slice(5)));
      }
    });
    box.replaceChildren(g);
  }

  // --- gaps --------------------------------------------------------------------------------

  const gapQuery = () => 'days=' + encodeURIComponent($('gap-days').value);

  async function loadGaps() {
    const data = await api('gaps?' + gapQuery() + ($('gap-resolved').checked ? '&resolved=1' : ''));
    $('gap-list').replaceChildren(...data.groups.map(gapGroup));
    $('gap-empty').hidden = data.groups.length > 0;
  }

  function reason(q) {
    return el('span', {class: 'reason ' + q.reason}, q.reason === 'uncovered' ? 'no source' : 'thumbs-down');
  }

  function gapGroup(group) {
    const questions = el('ol', {class: 'questions'}, group.questions.map(gapQuestion));
    const resolve = el('button', {type: 'button', class: 'resolve', on: {click: async () => {
      resolve.disabled = true;
      try {
        if (group.resolved) await api('gaps/' + encodeURIComponent(group.id) + '/resolve', {method: 'DELETE'});
        else await api('gaps/' + encodeURIComponent(group.id) + '/resolve?' + gapQuery(), {method: 'POST'});
        await loadGaps();
      } catch (err) { resolve.disabled = false; problem(err); }
    }}}, group.resolved ? 'Reopen' : 'Mark resolved');
    const r = group.reasons;
    return el('li', {class: 'group' + (group.resolved ? ' resolved' : ''), 'data-group': group.id},
      el('details', {},
        el('summary', {},
          el('span', {class: 'count', title: 'times asked'}, group.count),
          el('span', {class: 'label'}, group.label),
          el('span', {class: 'meta'}, 'first ' + day(group.first_asked) + ', last ' + day(group.last_asked)),
          el('span', {class: 'meta'}, r.uncovered + ' no source, ' + r.disliked + ' thumbs-down')),
        questions, el('div', {class: 'bar'}, resolve)));
  }

  function gapQuestion(q) {
    const body = el('div', {class: 'transcript'});
    const details = el('details', {class: 'question'},
      el('summary', {}, reason(q), el('span', {class: 'qtext'}, q.text), ' ',
        el('span', {class: 'meta'}, when(q.asked_at))),
      q.comment ? el('p', {class: 'comment'}, 'Comment: ', q.comment) : null, body);
    details.addEventListener('toggle', () => {
      if (details.open && !body.childElementCount && q.conversation) {
        api('conversations/' + encodeURIComponent(q.conversation)).then((t) => renderTranscript(body, t)).catch(problem);
      }
    });
    return el('li', {}, details);
  }

  async function exportGaps(format) {
    const text = await api('gaps/export?format=' + format + '&' + gapQuery());
    const type = format === 'csv' ? 'text/csv' : 'text/markdown';
    const url = URL.createObjectURL(new Blob([text], {type}));
    const link = el('a', {href: url, download: 'docschat-gaps.' + (format === 'csv' ? 'csv' : 'md')});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // --- conversations -----------------------------------------------------------------------

  function filterQuery() {
    const form = $('filters');
    const params = new URLSearchParams();
    for (const name of ['uncovered', 'disliked', 'failed']) if (form.elements[name].checked) params.set(name, '1');
    for (const name of ['q', 'from', 'to']) if (form.elements[name].value) params.set(name, form.elements[name].value);
    return params;
  }

  async function loadConversations(fresh) {
    if (fresh) convOffset = 0;
    const params = filterQuery();
    params.set('offset', convOffset);
    const data = await api('conversations?' + params);
    const rows = data.conversations.map((c) => el('tr', {'data-conversation': c.id, tabindex: 0,
      on: {click: () => { location.hash = 'conversation/' + encodeURIComponent(c.id); },
        keydown: (e) => { if (e.key === 'Enter') location.hash = 'conversation/' + encodeURIComponent(c.id); }}},
      el('td', {}, when(c.started_at)), el('td', {class: 'q'}, c.first_question), el('td', {}, c.questions),
      el('td', {}, c.uncovered), el('td', {}, c.disliked), el('td', {}, c.failed)));
    if (fresh) $('conv-list').replaceChildren(...rows);
    else $('conv-list').append(...rows);
    convOffset += data.conversations.length;
    $('conv-count').textContent = data.total + (data.total === 1 ? ' conversation' : ' conversations');
    $('conv-more').hidden = convOffset >= data.total;
  }

  async function loadTranscript(id) {
    $('conv-id').textContent = id;
    $('transcript').replaceChildren();
    renderTranscript($('transcript'), await api('conversations/' + encodeURIComponent(id)));
  }

  function renderTranscript(box, t) {
    box.replaceChildren(...t.messages.map((m) => {
      const who = m.role === 'user' ? 'Reader' : 'Assistant';
      const status = m.status !== 'done' ? ' · ' + m.status : (m.role === 'assistant' && !m.sources.length ? ' · no source' : '');
      const fb = m.feedback;
      return el('article', {class: 'msg ' + m.role + (m.status === 'error' ? ' error' : '')},
        el('div', {class: 'meta'}, who + ' · ' + when(m.created_at) + status),
        el('div', {class: 'text'}, m.text),
        m.sources.length ? el('ul', {class: 'sources'}, m.sources.map((s) => el('li', {}, safeLink(s.url, s.title)))) : null,
        fb ? el('p', {class: 'rating'}, 'Rated: ' + (fb.rating === 'up' ? 'thumbs up' : 'thumbs down'),
          fb.comment ? el('span', {class: 'comment'}, ' — ', fb.comment) : null) : null);
    }));
  }

  // --- wiring ------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (e) => signIn(e).catch((err) => { $('signin-error').textContent = err.message; }));
    $('signout').addEventListener('click', () => signOut(''));
    $('gap-days').addEventListener('change', () => loadGaps().catch(problem));
    $('gap-resolved').addEventListener('change', () => loadGaps().catch(problem));
    $('export-csv').addEventListener('click', () => exportGaps('csv').catch(problem));
    $('export-md').addEventListener('click', () => exportGaps('markdown').catch(problem));
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); loadConversations(true).catch(problem); });
    $('conv-more').addEventListener('click', () => loadConversations(false).catch(problem));
    window.addEventListener('hashchange', route);
    if (sessionStorage.getItem(KEY)) start();
    else signOut('');
  });
})();
