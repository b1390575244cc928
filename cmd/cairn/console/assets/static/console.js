// cairn console: forms that act without leaving the page, and a run page
// that follows its run live (server-sent events).
//
// Everything shown here that a model, a tool or a person wrote is set as
// textContent, or comes from pages the server rendered with html/template
// (parsed with DOMParser, which runs no script): never as HTML of ours.
(function () {
  'use strict';

  function csrf() {
    var m = document.querySelector('meta[name="csrf"]');
    return m ? m.content : '';
  }

  function say(out, text, isError) {
    if (!out) return;
    out.textContent = text;
    out.classList.toggle('error', !!isError);
    out.classList.toggle('ok', !isError);
  }

  // Forms marked data-js are sent with fetch; the answer is shown beside
  // them, and the run's live stream shows what follows.
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-js')) return;
    ev.preventDefault();
    var data = new FormData(form, ev.submitter || undefined);
    var out = form.querySelector('output.result');
    if (data.get('verdict') === 'reject' && !String(data.get('reason') || '').trim()) {
      say(out, 'A rejection needs a reason: the model is told why.', true);
      var reason = form.querySelector('[name="reason"]');
      if (reason) reason.focus();
      return;
    }
    var confirmText = form.getAttribute('data-confirm');
    if (confirmText && !window.confirm(confirmText)) return;
    var buttons = form.querySelectorAll('button');
    buttons.forEach(function (b) { b.disabled = true; });
    say(out, 'Sending…', false);
    fetch(form.action, {
      method: 'POST',
      body: new URLSearchParams(data),
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'X-CSRF-Token': csrf() }
    }).then(function (res) {
      return res.json().catch(function () { return { ok: false, error: 'HTTP ' + res.status }; });
    }).then(function (body) {
      if (body.ok) {
        say(out, body.notice || 'Done.', false);
        form.classList.add('sent');
        var li = form.closest('li.request');
        if (li) li.classList.add('sent');
      } else {
        say(out, body.error || 'Refused.', true);
        buttons.forEach(function (b) { b.disabled = false; });
      }
    }).catch(function (err) {
      say(out, 'Not sent: ' + err, true);
      buttons.forEach(function (b) { b.disabled = false; });
    });
  });

  var main = document.getElementById('run-main');
  if (!main || typeof EventSource === 'undefined') return;

  var state = document.getElementById('live-state');
  function setState(text) { if (state) state.textContent = text; }

  // refresh reads the page again and swaps in its sections. The pending
  // requests are swapped only when they changed, so that a reason being
  // typed is not lost.
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.pathname, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        ['run-status', 'run-summary', 'run-failure', 'run-chat', 'run-timeline', 'run-pending'].forEach(function (id) {
          var now = document.getElementById(id), next = doc.getElementById(id);
          if (!now || !next) return;
          if (id === 'run-pending' && now.getAttribute('data-key') === next.getAttribute('data-key')) return;
          now.replaceWith(document.adoptNode(next));
        });
        var ended = doc.getElementById('run-main');
        if (ended) main.setAttribute('data-ended', ended.getAttribute('data-ended'));
      })
      .catch(function (err) { setState('(could not refresh: ' + err.message + ')'); })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var live = document.getElementById('run-live');
  var liveText = document.getElementById('live-text');
  var liveEvents = document.getElementById('live-events');
  var texts = {}; // "step/attempt" -> text

  function showText() {
    var parts = [];
    Object.keys(texts).forEach(function (k) { if (texts[k] !== null) parts.push(texts[k]); });
    liveText.textContent = parts.join('\n');
  }

  function onLive(ev) {
    var e;
    try { e = JSON.parse(ev.data); } catch (_) { return; }
    live.hidden = false;
    var key = e.step + '/' + e.attempt;
    switch (e.type) {
      case 'text_delta':
        if (texts[key] !== null) texts[key] = (texts[key] || '') + (e.text || '');
        showText();
        return;
      case 'attempt_abandoned':
        texts[key] = null;
        showText();
        return;
    }
    var li = document.createElement('li');
    var what = e.type.replace(/_/g, ' ');
    var parts = [what];
    if (e.tool) parts.push(e.tool);
    if (e.by) parts.push('by ' + e.by);
    if (e.reason) parts.push('(' + e.reason + ')');
    if (e.status) parts.push(e.status);
    li.textContent = parts.join(' ');
    liveEvents.appendChild(li);
    while (liveEvents.children.length > 50) liveEvents.removeChild(liveEvents.firstChild);
  }

  if (main.getAttribute('data-ended') === 'true') return;
  var es = new EventSource(main.getAttribute('data-stream'));
  es.onopen = function () { setState('live'); };
  es.onerror = function () { setState('reconnecting…'); };
  es.addEventListener('history', refresh);
  es.addEventListener('live', onLive);
  es.addEventListener('end', function () {
    es.close();
    refresh();
    setState('');
  });
})();
