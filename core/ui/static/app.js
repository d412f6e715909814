// postee status page: refreshes the live part of the page (#live) by
// polling the same page's fragment, keeping opened details open. No other
// script runs on the page (its Content-Security-Policy forbids inline
// scripts).
(function () {
  'use strict';
  var body = document.body;
  var live = document.getElementById('live');
  if (!live) {
    return;
  }
  var url = live.getAttribute('data-live') || '';
  var prefix = body.getAttribute('data-prefix') || '/ui/';
  if (url.indexOf(prefix) !== 0) {
    return; // only ever fetch this page's own fragments
  }
  var every = parseInt(body.getAttribute('data-refresh'), 10) || 2000;
  var busy = false;

  function openDetails() {
    var open = {};
    live.querySelectorAll('details[open][data-id]').forEach(function (d) {
      open[d.getAttribute('data-id')] = true;
    });
    return open;
  }

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: 'same-origin', cache: 'no-store', redirect: 'error' })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign(body.getAttribute('data-login'));
          return null;
        }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) {
          return;
        }
        var open = openDetails();
        live.innerHTML = html; // server-rendered, escaped by html/template
        live.querySelectorAll('details[data-id]').forEach(function (d) {
          if (open[d.getAttribute('data-id')]) {
            d.open = true;
          }
        });
        live.setAttribute('data-refreshed', String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        busy = false;
      });
  }

  window.setInterval(refresh, every);
  document.addEventListener('visibilitychange', refresh);
})();
